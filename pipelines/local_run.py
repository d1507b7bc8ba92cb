"""One way to run the pipeline locally: build (or read) the definition, check it statically, run it
with the local executor, print one summary. ``airfare run`` and ``airfare pipeline run-local``
both call :func:`run_locally` and :func:`print_summary`.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import typer

from core import pipeline_contract
from core.catalog import Catalog
from core.cli_checks import parse_date


class InvalidDefinition(ValueError):
    """The static check found problems: nothing was run."""

    def __init__(self, source: str, problems: list) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s)")
        self.source = source
        self.problems = problems


def run_locally(
    definition: dict | Path | None = None,
    *,
    parameters: dict | None = None,
    catalog: Catalog | None = None,
    execution_id: str | None = None,
    progress: bool = True,
    max_workers: int = 1,
    use_cache: bool = True,
):
    """Build-validate-run: the definition (a dict, a JSON file, or built now with the SDK) is
    statically checked, its parameters too, then run by the local executor over ``catalog``'s
    lake (its folder, or its S3 API when ``catalog.s3_endpoint_url`` is set), runs and registry folders. Returns the executor's ``ExecutionResult``.

    Raises :class:`InvalidDefinition` (problems listed), ``ValueError`` for unknown parameters and
    the executor's ``DefinitionError``; a failed step is ``result.status == "Failed"``.
    """
    from pipelines.local_executor import run_definition
    from pipelines.validate import validate_definition, validate_file

    catalog = catalog or Catalog()
    if isinstance(definition, Path):
        problems, source = validate_file(definition), str(definition)
        if not problems:
            definition = json.loads(definition.read_text())
    else:
        if definition is None:
            from pipelines.definition import DEFAULT_IMAGE_URI, definition_dict

            definition = definition_dict(image_uri=os.environ.get("AIRFARE_IMAGE_URI") or DEFAULT_IMAGE_URI, default_bucket=catalog.bucket)
        problems, source = validate_definition(definition), "built definition"
    if problems:
        raise InvalidDefinition(source, problems)
    check_parameters(parameters or {}, definition)
    return run_definition(
        definition,
        parameters=parameters,
        run_root=catalog.runs_root,
        lake_root=catalog.lake_root,
        registry_root=catalog.registry_root,
        execution_id=execution_id,
        progress=progress,
        max_workers=max_workers,
        use_cache=use_cache,
        s3_endpoint_url=catalog.s3_endpoint_url,
    )


_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_param_value(name: str, value: str, declared: dict) -> str | None:
    """Why ``value`` cannot be pipeline parameter ``name`` (its declared type, enum, and our
    conventions: dates are YYYY-MM-DD, ``*Uri`` parameters are ``s3://`` URIs), or None."""
    value = str(value)
    kind = declared.get("Type", "String")
    if kind == "Integer":
        try:
            int(value)
        except ValueError:
            return f"{name} is an Integer parameter, got {value!r}"
    elif kind == "Float":
        try:
            number = float(value)
        except ValueError:
            return f"{name} is a Float parameter, got {value!r}"
        if not math.isfinite(number):
            return f"{name} must be a finite number, got {value!r}"
    enum = declared.get("EnumValues")
    if enum and value not in enum:
        return f"{name} must be one of {', '.join(enum)}, got {value!r}"
    if name.endswith("Date") and value.strip():
        try:
            parse_date(value, name)
        except typer.BadParameter as exc:
            return f"{name}: {exc.message}"
    if name.endswith("Uri") and value.strip() and name != "ImageUri":
        if not value.startswith("s3://") or not _BUCKET_NAME.match(value[5:].split("/", 1)[0]) or "/../" in value + "/":
            return f"{name} must be an s3://BUCKET/PREFIX/ URI, got {value!r}"
    return None


def check_parameters(parameters: dict, definition: dict, *, unknown_ok: bool = False) -> None:
    """ValueError naming ``--param`` and each bad parameter: unknown names, wrong types or values."""
    declared = {p["Name"]: p for p in definition.get("Parameters") or []}
    unknown = sorted(set(parameters) - set(declared))
    if unknown and not unknown_ok:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; the definition declares: {', '.join(sorted(declared))}")
    problems = [why for name, value in parameters.items() if name in declared and (why := check_param_value(name, value, declared[name]))]
    if problems:
        raise ValueError("--param: " + "; ".join(problems))


def print_summary(console, result, registry: Path) -> None:
    """Per-step table, each model's gate metrics beside its truth-based counterpart, the reports
    to open and the registered model packages."""
    from rich.table import Table

    from evaluation.gates import check_gates
    from pipelines.registry import LocalRegistry

    colors = {"Succeeded": "green", "Failed": "red", "Skipped": "yellow", "NotRun": "dim"}
    steps = Table(title=f"Pipeline execution {result.execution_id}: {result.status}")
    for col in ("step", "type", "status", "seconds", "detail"):
        steps.add_column(col, justify="right" if col == "seconds" else "left")
    for s in result.steps:
        detail = s.failure_reason or (f"cached from {s.cached_from}" if s.cached_from else "")
        color = colors.get(s.status, "white")
        steps.add_row(s.name, s.type, f"[{color}]{s.status}[/{color}]", f"{s.seconds:.1f}" if s.seconds else "", detail)
    console.print(steps)
    if result.fail_message:
        console.print(f"[red]Fail step:[/red] {result.fail_message}")

    models = Table(title="Models (test split; anomaly labels = the incident feed; truth = the world's noise-free prices and injected anomalies)")
    for col in ("model", "metric", "value", "gate", "against truth"):
        models.add_column(col)
    for name in pipeline_contract.MODELS:
        report_path = _evaluation_report(result, name)
        if report_path is None:
            models.add_row(name, "-", "-", "not evaluated", "")
            continue
        report = json.loads(report_path.read_text())
        passed, reasons = check_gates(report, name)
        for metric, value, truth_note in _headline(name, report):
            models.add_row(name, metric, value, "[green]pass[/green]" if passed else f"[red]{'; '.join(reasons)}[/red]", truth_note)
    console.print(models)

    reports = Table(title="Reports (open in a browser)")
    reports.add_column("step")
    reports.add_column("report", overflow="fold")
    for step in (pipeline_contract.DQ_STEP, *(pipeline_contract.step_name("Evaluate", m) for m in pipeline_contract.MODELS)):
        hits = sorted(Path(result.run_dir, step).rglob(pipeline_contract.REPORT_HTML_FILE))
        if hits:
            reports.add_row(step, str(hits[0]))
    console.print(reports)

    reg = Table(title=f"Registered model packages ({registry})")
    for col in ("group", "version", "status"):
        reg.add_column(col)
    reg.add_column("model data", overflow="fold")
    for pkg in LocalRegistry(registry).list():
        reg.add_row(pkg["ModelPackageGroupName"], str(pkg["ModelPackageVersion"]), pkg["ModelApprovalStatus"], pkg["ModelDataUrl"])
    console.print(reg)
    console.print(f"run folder: {result.run_dir}")


def _evaluation_report(result, model: str) -> Path | None:
    step = next((s for s in result.steps if s.name == pipeline_contract.step_name("Evaluate", model)), None)
    if step is None or step.status != "Succeeded":
        return None
    hits = sorted(Path(result.run_dir, step.name).rglob(pipeline_contract.EVALUATION_FILE))
    return hits[0] if hits else None


def _headline(model: str, report: dict) -> list[tuple[str, str, str]]:
    """The figures a reviewer looks at first, with the truth-based counterpart beside each."""
    t = report.get("truth") or {}
    if model == "price":
        m = report["regression_metrics"]
        floor = (t.get("noise_floor_rmse") or {}).get("value")
        vs_true = (t.get("rmse_vs_true_price") or {}).get("value")
        return [
            ("RMSE $", f"{m['rmse']['value']:.2f}", f"vs noise-free price {vs_true:.2f}; noise floor {floor:.2f}" if vs_true is not None and floor is not None else ""),
            ("R²", f"{m['r2']['value']:.3f}", ""),
        ]
    if model == "demand":
        m = report["multiclass_classification_metrics"]
        base = report.get("baseline", {}).get("majority_class_accuracy", {}).get("value")
        return [("accuracy", f"{m['accuracy']['value']:.3f}", f"majority-class baseline {base:.3f}" if base is not None else "")]
    m = report["binary_classification_metrics"]

    def fmt(node) -> str:
        value = (node or {}).get("value")
        return "n/a" if value is None else f"{value:.3f}"

    share = fmt(m.get("reviewed_share_of_flags"))
    return [
        ("precision", fmt(m["precision"]), f"vs incident feed ({share} of flags reviewed); vs injected anomalies {fmt(t.get('precision'))}" if t else f"vs incident feed ({share} of flags reviewed)"),
        ("recall", fmt(m["recall"]), f"vs injected anomalies {fmt(t.get('recall'))}" if t else ""),
    ]

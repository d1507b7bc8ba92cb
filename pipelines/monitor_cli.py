"""`airfare monitor ...`: baseline a dataset, check captured traffic's data quality and model quality.

Light at import time (typer only); the analyzer loads inside the commands. Exit codes: 0 clean,
1 a constraint is violated, 2 bad input (a message naming the flag). Here, above the step packages,
because it looks the model's registered baseline up in the registry and sets up Model Monitor on
AWS (``pipelines.monitoring_deploy``); ``monitoring`` gets the baseline's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(no_args_is_help=True)
MODELS = ("price", "demand", "anomaly")


def _model(value: str) -> str:
    if value not in MODELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(MODELS)}")
    return value


ModelOpt = Annotated[str, typer.Option("--model", callback=_model, help="price | demand | anomaly")]
CaptureOpt = Annotated[Path, typer.Option("--capture", help="Data-capture folder (<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl, or any folder above).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder (statistics, violations, metrics, report.html).")]
RegistryOpt = Annotated[Path, typer.Option("--registry", help="Local model registry (the baseline's default source).")]


def _registered_baseline(model: str, registry_root: Path, status: str | None = "Approved"):
    """The newest package of ``airfare-<model>`` (Approved by default, else the newest of any
    status) and the drift-check baselines registered with it (in ``baselines/`` beside its model)."""
    from core.pipeline_contract import MODEL_PACKAGE_GROUPS
    from monitoring import monitor
    from pipelines.registry import LocalRegistry

    reg = LocalRegistry(registry_root)
    group = MODEL_PACKAGE_GROUPS[model]
    pkg = reg.latest(group, status) or reg.latest(group, None)
    if pkg is None:
        raise monitor.MonitorError(f"no {group} package in the registry {registry_root}: run the pipeline or pass --baseline DIR")
    base = monitor.baseline_from_package_dir(Path(pkg.get("ModelDataUrl", "")).parent / "baselines", pkg["ModelPackageArn"])
    base.meta = monitor.model_meta_from_package(pkg)
    return base


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command("data-quality")
def data_quality_command(
    model: ModelOpt,
    capture_dir: CaptureOpt,
    out: OutOpt,
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="Folder with statistics.json and constraints.json (default: the model's registered baseline).")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Window start (ISO 8601, inclusive).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Window end (ISO 8601, exclusive).")] = None,
    registry: RegistryOpt = Path(".lake/registry"),
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="Endpoint name for the metrics' dimensions.")] = None,
) -> None:
    """Compare captured inputs with the baseline; exit 1 on a violated constraint."""
    from monitoring import monitor
    from monitoring.capture import CaptureError

    try:
        base = monitor.baseline_from_dir(baseline) if baseline else _registered_baseline(model, registry)
        if baseline and base.meta is None:
            try:  # the registered model gives the feature order of headerless CSV captures
                base.meta = _registered_baseline(model, registry).meta
            except monitor.MonitorError:
                pass
        result = monitor.run_data_quality(model, capture_dir, out, baseline=base, since=since, until=until, endpoint=endpoint)
    except (monitor.MonitorError, CaptureError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
        return
    typer.echo(f"{result.records} records checked against {result.baseline_source}: "
               f"{len(result.violations['violations'])} violation(s); report {out / monitor.REPORT_FILE}")  # fmt: skip
    for v in result.violations["violations"]:
        typer.echo(f"  {v['constraint_check_type']:<26} {v['feature_name']}: {v['description']}")
    raise typer.Exit(0 if result.ok else 1)


@app.command("model-quality")
def model_quality_command(
    model: ModelOpt,
    capture_dir: CaptureOpt,
    ground_truth: Annotated[Path, typer.Option("--ground-truth", help="Ground-truth folder (yyyy/mm/dd/hh/*.jsonl).")],
    out: OutOpt,
    window: Annotated[str, typer.Option("--window", help="Time window of each evaluation (pandas frequency: 1h, 6h, 1D).")] = "1D",
    since: Annotated[Optional[str], typer.Option("--since")] = None,
    until: Annotated[Optional[str], typer.Option("--until")] = None,
    now: Annotated[Optional[str], typer.Option("--now", help="When the job runs: labels delivered later are not seen (default: --until or now).")] = None,
    min_labels: Annotated[int, typer.Option("--min-labels", min=1, help="Windows with fewer labels are reported, not judged.")] = 30,
    registry: RegistryOpt = Path(".lake/registry"),
    endpoint: Annotated[Optional[str], typer.Option("--endpoint")] = None,
) -> None:
    """Merge ground truth with captured predictions by event id; exit 1 when a window crosses a gate."""
    from monitoring import monitor
    from monitoring.capture import CaptureError

    constraints = None
    try:
        constraints = _registered_baseline(model, registry).model_constraints
    except monitor.MonitorError:
        pass  # no registered baseline: the gates
    try:
        result = monitor.run_model_quality(model, capture_dir, ground_truth, out, constraints=constraints, window=window,
                                           since=since, until=until, now=now, endpoint=endpoint, min_labels=min_labels)  # fmt: skip
    except (monitor.MonitorError, CaptureError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
        return
    bad = [w for w in result.windows if w.violations["violations"]]
    typer.echo(f"{len(result.windows)} window(s), {sum(w.labelled for w in result.windows)} labelled records; "
               f"{len(bad)} window(s) in violation; report {out / monitor.REPORT_FILE}")  # fmt: skip
    for w in bad:
        for v in w.violations["violations"]:
            typer.echo(f"  {w.start}: {v['description']}")
    raise typer.Exit(0 if result.ok else 1)


@app.command("baseline")
def baseline_command(
    model: ModelOpt,
    data: Annotated[Path, typer.Option("--data", help="A split folder (offers.parquet / flights.parquet), e.g. a run's Preprocess train output.")],
    out: OutOpt,
    model_dir: Annotated[Optional[Path], typer.Option("--model-dir", help="Folder with model_meta.json (default: the registered model).")] = None,
    registry: RegistryOpt = Path(".lake/registry"),
) -> None:
    """Suggest a data-quality baseline (statistics.json, constraints.json) from a split's model inputs,
    its thresholds set from the split's daily windows (docs/monitoring.md)."""
    import json

    from core import monitoring_datasets as datasets
    from core.pipeline_contract import MODEL_META_FILE
    from monitoring import job, monitor

    try:
        if model_dir:
            meta = json.loads((model_dir / MODEL_META_FILE).read_text())
        else:
            from core.pipeline_contract import MODEL_PACKAGE_GROUPS
            from pipelines.registry import LocalRegistry

            pkg = LocalRegistry(registry).latest(MODEL_PACKAGE_GROUPS[model], None)
            meta = monitor.model_meta_from_package(pkg) if pkg else None
            if meta is None:
                _fail(f"no registered {model} model in {registry}: pass --model-dir")
        from core.tables import read_table

        df, windows = datasets.data_baseline_days(meta, read_table(data, datasets.MODEL_TABLE[model]))
        # thresholds from the split's own search days (analyzer.calibrate_constraints)
        job.data_quality(df, out, overrides=monitor.comparison_overrides(list(df.columns)), windows=windows)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
        return
    typer.echo(f"baseline of {len(df)} records, {df.shape[1]} features written to {out}")


@app.command("schedule")
def schedule_command(
    model_package_arn: Annotated[str, typer.Argument(help="The Approved model package the endpoint serves (its DriftCheckBaselines are used).")],
    model: ModelOpt,
    endpoint_name: Annotated[str, typer.Option("--endpoint-name", help="The deployed endpoint (with data capture).")],
    output_uri: Annotated[str, typer.Option("--output-uri", help="s3:// prefix for the monitoring reports.")],
    role_arn: Annotated[str, typer.Option("--role-arn", envvar="MONITORING_ROLE_ARN", help="Role of the monitoring jobs.")],
    ground_truth_uri: Annotated[Optional[str], typer.Option("--ground-truth-uri", help="s3:// prefix of ground truth; omit for data quality only.")] = None,
    alarm_topic_arn: Annotated[Optional[str], typer.Option("--alarm-topic-arn", envvar="ALARM_TOPIC_ARN")] = None,
    kms_key_arn: Annotated[Optional[str], typer.Option("--kms-key-arn", envvar="KMS_KEY_ARN")] = None,
    constraints: Annotated[Optional[Path], typer.Option("--constraints", help="constraints.json to use instead of the package's, "
                           "e.g. `airfare monitor baseline`'s (thresholds measured on the split's daily windows).")] = None,
) -> None:
    """On AWS: Model Monitor job definitions, hourly schedules and CloudWatch alarms for an endpoint."""
    import json

    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines import monitoring_deploy as md

    cfg = md.MonitoringConfig(model=model, role_arn=role_arn, output_uri=output_uri, ground_truth_uri=ground_truth_uri,
                              alarm_topic_arn=alarm_topic_arn, kms_key_arn=kms_key_arn)  # fmt: skip
    if constraints is not None:
        try:
            cfg.data_constraints = json.loads(constraints.read_text())
        except (OSError, ValueError) as e:
            _fail(f"--constraints {constraints}: {e}")
            return
        if not isinstance(cfg.data_constraints, dict) or not isinstance(cfg.data_constraints.get("features"), list):
            _fail(f"--constraints {constraints}: not a Model Monitor constraints.json (no 'features' list)")
            return
    try:
        created = md.create(endpoint_name, model_package_arn, cfg)
    except md.MonitoringSetupError as e:
        _fail(str(e))
        return
    except (ClientError, BotoCoreError) as e:
        typer.echo(f"error: AWS refused: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(created, indent=2))

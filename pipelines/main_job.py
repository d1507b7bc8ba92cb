"""`airfare run`: the whole flow locally, from flight searches to registered models.

generate a world -> Glue ETL on local Spark -> build the SageMaker pipeline definition ->
static check -> run it with the local executor -> summary. Every stage is the same code that
runs on AWS; only the runtimes differ (local Spark for Glue, the local executor for SageMaker).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated

import typer

from processing.cli_checks import date_callback, out_dir_callback

app = typer.Typer()

DEFAULT_BUCKET = "airfare-lake"


@app.command("run")
def run(
    seed: Annotated[int, typer.Option(min=0, max=2**64 - 1, help="World seed (deterministic), 0 to 2^64-1.")] = 42,
    start_date: Annotated[str, typer.Option(callback=date_callback, help="First search date, YYYY-MM-DD.")] = "2026-01-05",
    days: Annotated[int, typer.Option(min=7, max=3650, help="Days of searches to generate.")] = 60,
    searches_per_day: Annotated[int, typer.Option(min=50, max=100_000_000, help="Searches per day.")] = 1500,
    lake: Annotated[Path, typer.Option(callback=out_dir_callback, help="Local folder standing for S3 (s3://BUCKET/KEY -> LAKE/BUCKET/KEY).")] = Path(".lake"),
    runs: Annotated[Path, typer.Option(callback=out_dir_callback, help="Where pipeline runs keep their steps' files and logs.")] = Path("runs"),
    registry: Annotated[Path, typer.Option(callback=out_dir_callback, help="Local model registry folder.")] = Path(".lake/registry"),
    workers: Annotated[int, typer.Option(min=1, max=64, help="Pipeline steps run at once.")] = 2,
    break_kind: Annotated[str | None, typer.Option("--break", help="Break the curated data as a faulty upstream would (see `airfare etl --help`): the run must stop at the DataQuality gate.")] = None,
    truth: Annotated[bool, typer.Option("--truth/--no-truth", help="Add the 'against truth' columns from the world's answer key (TruthDataUri); --no-truth runs as on AWS, with no truth.")] = True,
) -> None:
    """Run the whole flow locally: generate searches, ETL, and the SageMaker pipeline (no Docker, no AWS)."""
    from rich.console import Console

    console = Console()
    start = dt.date.fromisoformat(start_date)
    end = start + dt.timedelta(days=days - 1)
    from seed_infra.world import validate_options

    try:  # before anything is generated or replaced
        validate_options(seed=seed, days=days, searches_per_day=searches_per_day, anomaly_rate=0.005, start_date=start)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--start-date/--days") from None
    if break_kind is not None:
        from data_quality.breakage import KINDS

        if break_kind not in KINDS:
            raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint="--break")
    bucket_root = lake / DEFAULT_BUCKET
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    # 1. The world: raw search events as Firehose writes them, outcomes, truth.
    console.rule("[bold]1/3 Generate flight searches")
    t0 = time.perf_counter()
    from seed_infra.world import generate_world

    world = generate_world(
        bucket_root, seed=seed, start_date=start, days=days, searches_per_day=searches_per_day, progress=True
    )
    timings["generate"] = time.perf_counter() - t0

    # 2. Glue ETL on local Spark: raw -> curated Parquet (+ quarantine), counts reconciled.
    console.rule("[bold]2/3 Glue ETL (local Spark)")
    t0 = time.perf_counter()
    from seed_infra.etl.job import run_etl, spark_session

    _quiet_spark()
    spark = spark_session()
    try:
        etl_summary = run_etl(spark, str(bucket_root / "raw"), str(bucket_root / "curated"), progress=console.log)
    finally:
        spark.stop()
    if break_kind is not None:
        from data_quality.breakage import break_curated

        break_curated(bucket_root / "curated" / "offers", break_kind, seed=seed)
        console.print(f"[yellow]curated data broken on purpose:[/yellow] {break_kind}")
    timings["etl"] = time.perf_counter() - t0

    # 3. The SageMaker pipeline, built by the SDK, checked, and executed locally.
    console.rule("[bold]3/3 SageMaker pipeline (local executor)")
    t0 = time.perf_counter()
    from pipelines.definition import definition_dict
    from pipelines.local_executor import run_definition
    from pipelines.validate import validate_definition

    definition = definition_dict()
    problems = validate_definition(definition)
    if problems:
        for p in problems:
            console.print(f"[red]definition problem:[/red] {p}")
        raise typer.Exit(1)
    result = run_definition(
        definition,
        parameters={"StartDate": start.isoformat(), "EndDate": end.isoformat(),
                    "TruthDataUri": f"s3://{DEFAULT_BUCKET}/truth/offers/" if truth else ""},
        run_root=runs,
        lake_root=lake,
        registry_root=registry,
        progress=True,
        max_workers=workers,
    )
    timings["pipeline"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all

    _print_summary(console, world, etl_summary, result, timings, registry)
    if result.status != "Succeeded":
        raise typer.Exit(1)


def _quiet_spark() -> None:
    """Keep the console for the job's own progress: no hostname or pandas-version chatter from Spark."""
    import logging
    import os
    import warnings

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _print_summary(console, world, etl_summary, result, timings, registry: Path) -> None:
    from rich.table import Table

    from evaluation.gates import check_gates

    console.rule("[bold]Summary")
    console.print(
        f"world: {world.events:,} searches, {world.offers:,} offers -> ETL: "
        f"{etl_summary['curated_offers']:,} curated offers, {etl_summary['quarantined']:,} quarantined, "
        f"{etl_summary['duplicates']:,} duplicates"
    )
    steps = Table(title=f"Pipeline execution {result.execution_id}: {result.status}")
    steps.add_column("step")
    steps.add_column("type")
    steps.add_column("status")
    steps.add_column("seconds", justify="right")
    for s in result.steps:
        colour = {"Succeeded": "green", "Failed": "red"}.get(s.status, "yellow")
        steps.add_row(s.name, s.type, f"[{colour}]{s.status}[/{colour}]", f"{s.seconds:.1f}" if s.seconds else "")
    console.print(steps)
    if result.fail_message:
        console.print(f"[red]Fail step:[/red] {result.fail_message}")

    models = Table(title="Models (test split; anomaly labels = the incident feed; truth = the world's noise-free prices and injected anomalies)")
    for col in ("model", "metric", "value", "gate", "against truth"):
        models.add_column(col)
    for name in ("price", "demand", "anomaly"):
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
    for step_name in ("DataQuality", "EvaluatePrice", "EvaluateDemand", "EvaluateAnomaly"):
        hits = sorted(Path(result.run_dir, step_name).rglob("report.html"))
        if hits:
            reports.add_row(step_name, str(hits[0]))
    console.print(reports)

    from pipelines.registry import LocalRegistry

    reg = Table(title=f"Registered model packages ({registry})")
    for col in ("group", "version", "status"):
        reg.add_column(col)
    reg.add_column("model data", overflow="fold")
    for pkg in LocalRegistry(registry).list():
        reg.add_row(pkg["ModelPackageGroupName"], str(pkg["ModelPackageVersion"]), pkg["ModelApprovalStatus"], pkg["ModelDataUrl"])
    console.print(reg)
    console.print(
        "timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()) + f"; run folder: {result.run_dir}"
    )


def _evaluation_report(result, model: str) -> Path | None:
    step = next((s for s in result.steps if s.name == f"Evaluate{model.capitalize()}"), None)
    if step is None or step.status != "Succeeded":
        return None
    hits = sorted(Path(result.run_dir, step.name).rglob("evaluation.json"))
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

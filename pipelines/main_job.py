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

app = typer.Typer()

DEFAULT_BUCKET = "airfare-lake"


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from exc


@app.command("run")
def run(
    seed: Annotated[int, typer.Option(help="World seed (deterministic).")] = 42,
    start_date: Annotated[str, typer.Option(help="First search date, YYYY-MM-DD.")] = "2026-01-05",
    days: Annotated[int, typer.Option(min=7, help="Days of searches to generate.")] = 60,
    searches_per_day: Annotated[int, typer.Option(min=50, help="Searches per day.")] = 1500,
    lake: Annotated[Path, typer.Option(help="Local folder standing for S3 (s3://BUCKET/KEY -> LAKE/BUCKET/KEY).")] = Path(".lake"),
    runs: Annotated[Path, typer.Option(help="Where pipeline runs keep their steps' files and logs.")] = Path("runs"),
    registry: Annotated[Path, typer.Option(help="Local model registry folder.")] = Path(".lake/registry"),
    workers: Annotated[int, typer.Option(min=1, help="Pipeline steps run at once.")] = 2,
    break_kind: Annotated[str | None, typer.Option("--break", help="Break the curated data as a faulty upstream would (see `airfare etl --help`): the run must stop at the DataQuality gate.")] = None,
) -> None:
    """Run the whole flow locally: generate searches, ETL, and the SageMaker pipeline (no Docker, no AWS)."""
    from rich.console import Console

    console = Console()
    start = _parse_date(start_date)
    end = start + dt.timedelta(days=days - 1)
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
    price_before = _newest_price_version(registry)
    problems = validate_definition(definition)
    if problems:
        for p in problems:
            console.print(f"[red]definition problem:[/red] {p}")
        raise typer.Exit(1)
    result = run_definition(
        definition,
        parameters={"StartDate": start.isoformat(), "EndDate": end.isoformat()},
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
    _invoke_new_price_model(console, registry, price_before, bucket_root / "curated" / "offers")


def _newest_price_version(registry: Path) -> int:
    from pipelines.definition import MODEL_PACKAGE_GROUPS
    from pipelines.registry import LocalRegistry

    pkg = LocalRegistry(registry).latest(MODEL_PACKAGE_GROUPS["price"], status=None)
    return int(pkg["ModelPackageVersion"]) if pkg else 0


def _invoke_new_price_model(console, registry: Path, before: int, curated_offers: Path) -> None:
    """The newly registered price model answers one real invoke_endpoint call on a local endpoint."""
    import pyarrow.dataset as ds

    from inference.schema import field_specs
    from pipelines import serve_cli
    from pipelines.definition import MODEL_PACKAGE_GROUPS
    from pipelines.registry import LocalRegistry
    from training import model_io
    from inference.model import resolve_model_dir

    console.rule("[bold]Local endpoint: the new price model answers invoke_endpoint")
    pkg = LocalRegistry(registry).latest(MODEL_PACKAGE_GROUPS["price"], status=None)
    if pkg is None or int(pkg["ModelPackageVersion"]) <= before:
        console.print("[yellow]no new price model was registered in this run: nothing to serve[/yellow]")
        return
    fields = [s.name for s in field_specs(model_io.load(resolve_model_dir(pkg["ModelDataUrl"])).meta)]
    offer = ds.dataset(curated_offers, format="parquet", partitioning="hive").head(1, columns=fields).to_pylist()[0]
    features = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in offer.items()}
    out = serve_cli.invoke_once(pkg, features)
    console.print(f"serving {pkg['ModelPackageArn']} ({pkg['ModelApprovalStatus']}) as {out['EndpointName']} on {out['url']}")
    console.print("boto3.client('sagemaker-runtime', endpoint_url=...).invoke_endpoint(EndpointName="
                  f"'{out['EndpointName']}', ContentType='application/json', Body=json.dumps(features))")
    console.print(f"features: {json.dumps(features)}")
    console.print(f"answer ({out['ContentType']}): {json.dumps(out['Body'])}")
    console.print(f"serve it yourself: airfare serve --model price --version {pkg['ModelPackageVersion']}")


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

    models = Table(title="Models (test split; truth = the world's noise-free prices and injected anomalies)")
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
    return [
        ("precision", f"{m['precision']['value']:.3f}", "against injected anomalies"),
        ("recall", f"{m['recall']['value']:.3f}", ""),
    ]

"""`airfare run`: the whole flow locally, from flight searches to registered models.

generate a world -> Glue ETL on local Spark -> build the SageMaker pipeline definition ->
static check -> run it with the local executor -> summary. Every stage is the same code that
runs on AWS; only the runtimes differ (local Spark for Glue, the local executor for SageMaker).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer

from core.catalog import Catalog
from core.cli_checks import date_callback, out_dir_callback

app = typer.Typer()
_DEFAULTS = Catalog()


@app.command("run")
def run(
    seed: Annotated[int, typer.Option(min=0, max=2**64 - 1, help="World seed (deterministic), 0 to 2^64-1.")] = 42,
    start_date: Annotated[str, typer.Option(callback=date_callback, help="First search date, YYYY-MM-DD.")] = "2026-01-05",
    days: Annotated[int, typer.Option(min=7, max=3650, help="Days of searches to generate.")] = 60,
    searches_per_day: Annotated[int, typer.Option(min=50, max=100_000_000, help="Searches per day.")] = 1500,
    lake: Annotated[Path, typer.Option(callback=out_dir_callback, help="Local folder standing for S3 (s3://BUCKET/KEY -> LAKE/BUCKET/KEY).")] = _DEFAULTS.lake_root,
    runs: Annotated[Path, typer.Option(callback=out_dir_callback, help="Where pipeline runs keep their steps' files and logs.")] = _DEFAULTS.runs_root,
    registry: Annotated[Path, typer.Option(callback=out_dir_callback, help="Local model registry folder.")] = _DEFAULTS.registry_root,
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
        from seed_infra.world.breakage import KINDS

        if break_kind not in KINDS:
            raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint="--break")
    lake_catalog = Catalog(lake_root=lake, registry_root=registry, runs_root=runs)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    # 1. The world: raw search events as Firehose writes them, outcomes, truth.
    console.rule("[bold]1/3 Generate flight searches")
    t0 = time.perf_counter()
    from seed_infra.world import generate_world

    world = generate_world(
        lake_catalog.bucket_dir, seed=seed, start_date=start, days=days, searches_per_day=searches_per_day, progress=True
    )
    timings["generate"] = time.perf_counter() - t0

    # 2. Glue ETL on local Spark: raw -> curated Parquet (+ quarantine), counts reconciled.
    console.rule("[bold]2/3 Glue ETL (local Spark)")
    t0 = time.perf_counter()
    from seed_infra.etl.job import run_etl, spark_session, stop_spark

    _quiet_spark()
    spark = spark_session()
    try:
        # A freshly generated world replaced raw/: rebuild curated from all of it (full=True).
        etl_summary = run_etl(spark, str(lake_catalog.path("raw")), str(lake_catalog.path("curated")), progress=console.log, full=True)
    finally:
        stop_spark(spark)  # the session and its JVM: the pipeline that follows gets the memory back
    if break_kind is not None:
        from seed_infra.world.breakage import break_curated

        break_curated(lake_catalog.path("offers"), break_kind, seed=seed)
        console.print(f"[yellow]curated data broken on purpose:[/yellow] {break_kind}")
    timings["etl"] = time.perf_counter() - t0

    # 3. The SageMaker pipeline, built by the SDK, checked, and executed locally.
    console.rule("[bold]3/3 SageMaker pipeline (local executor)")
    t0 = time.perf_counter()
    from pipelines.local_run import InvalidDefinition, run_locally

    price_before = _newest_price_version(lake_catalog.registry_root)
    try:
        result = run_locally(
            parameters={"StartDate": start.isoformat(), "EndDate": end.isoformat(),
                        "TruthDataUri": lake_catalog.uri("truth_offers") if truth else ""},
            catalog=lake_catalog,
            progress=True,
            max_workers=workers,
        )
    except InvalidDefinition as e:
        for p in e.problems:
            console.print(f"[red]definition problem:[/red] {p}")
        raise typer.Exit(1) from None
    timings["pipeline"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all

    _print_summary(console, world, etl_summary, result, timings, registry)
    if result.status != "Succeeded":
        raise typer.Exit(1)
    _invoke_new_price_model(console, lake_catalog.registry_root, price_before, lake_catalog.path("offers"))


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
    from core import model_io
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
    from pipelines.local_run import print_summary

    console.rule("[bold]Summary")
    console.print(
        f"world: {world.events:,} searches, {world.offers:,} offers -> ETL: "
        f"{etl_summary['curated_offers']:,} curated offers, {etl_summary['quarantined']:,} quarantined, "
        f"{etl_summary['duplicates']:,} duplicates"
    )
    print_summary(console, result, registry)
    console.print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))

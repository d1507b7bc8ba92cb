"""`airfare run`: the whole flow locally, from flight searches to registered models.

generate a world -> Glue ETL on local Spark -> build the SageMaker pipeline definition ->
static check -> run it with the local executor -> summary. Every stage is the same code that
runs on AWS; only the runtimes differ (local Spark for Glue, the local executor for SageMaker).

The lake is a folder by default; with ``--s3-endpoint-url`` (or ``AWS_ENDPOINT_URL_S3``) it is
that S3 API (a moto server, MinIO, or ``https://s3.<region>.amazonaws.com`` for real buckets):
the world, the ETL's staging, every step's inputs and outputs, the model archives and the
registry's artifacts then move through S3 calls.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated

import typer

from core.catalog import Catalog
from core.pipeline_contract import MIN_WINDOW_DAYS
from core.cli_checks import date_callback, out_dir_callback

app = typer.Typer()
_DEFAULTS = Catalog()


@app.command("run")
def run(
    seed: Annotated[int, typer.Option(min=0, max=2**64 - 1, help="World seed (deterministic), 0 to 2^64-1.")] = 42,
    start_date: Annotated[str, typer.Option(callback=date_callback, help="First search date, YYYY-MM-DD.")] = "2026-01-05",
    days: Annotated[int, typer.Option(min=MIN_WINDOW_DAYS, max=3650, help=f"Days of searches to generate (at least {MIN_WINDOW_DAYS}: 7 validation + 7 test + 7 training days).")] = 60,
    searches_per_day: Annotated[int, typer.Option(min=50, max=100_000_000, help="Searches per day.")] = 1500,
    lake: Annotated[Path, typer.Option(callback=out_dir_callback, help="Local folder standing for S3 (s3://BUCKET/KEY -> LAKE/BUCKET/KEY).")] = _DEFAULTS.lake_root,
    runs: Annotated[Path, typer.Option(callback=out_dir_callback, help="Where pipeline runs keep their steps' files and logs.")] = _DEFAULTS.runs_root,
    registry: Annotated[Path, typer.Option(callback=out_dir_callback, help="Local model registry folder.")] = _DEFAULTS.registry_root,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Pipeline steps run at once.")] = 2,
    break_kind: Annotated[str | None, typer.Option("--break", help="Break the curated data as a faulty upstream would (see `airfare etl --help`): the run must stop at the DataQuality gate.")] = None,
    s3_endpoint_url: Annotated[str | None, typer.Option("--s3-endpoint-url", envvar="AWS_ENDPOINT_URL_S3", help="Use this S3 API as the lake instead of the --lake folder (e.g. a moto server; https://s3.REGION.amazonaws.com for real buckets).")] = None,
    bucket: Annotated[str, typer.Option(help="The lake's bucket (s3://BUCKET/raw/, curated/, pipeline-runs/, registry/).")] = _DEFAULTS.bucket,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Pipeline parameter override Name=Value (repeatable), e.g. -p PriceRmseMax=20.")] = None,
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
    try:
        from core.s3lake import parse_s3_uri

        parse_s3_uri(f"s3://{bucket}/")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--bucket") from None
    lake_catalog = Catalog(bucket=bucket, lake_root=lake, registry_root=registry, runs_root=runs, s3_endpoint_url=s3_endpoint_url)
    overrides = _overrides(param, bucket)
    s3 = _s3_lake(lake_catalog, break_kind) if lake_catalog.in_s3 else None
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    # 1. The world: raw search events as Firehose writes them, outcomes, truth.
    console.rule("[bold]1/3 Generate flight searches")
    t0 = time.perf_counter()
    from seed_infra.world import generate_world

    world_options = dict(seed=seed, start_date=start, days=days, searches_per_day=searches_per_day, progress=True)
    if s3 is None:
        world = generate_world(lake_catalog.bucket_dir, **world_options)
    else:
        from seed_infra.s3_staging import generate_world_to_s3

        world = generate_world_to_s3(s3, f"s3://{bucket}", **world_options)
    timings["generate"] = time.perf_counter() - t0

    # 2. Glue ETL on local Spark: raw -> curated Parquet (+ quarantine), counts reconciled.
    console.rule("[bold]2/3 Glue ETL (local Spark)")
    t0 = time.perf_counter()
    from seed_infra.etl.job import run_etl, spark_session, stop_spark

    _quiet_spark()
    spark = spark_session()
    try:
        if s3 is None:
            # A freshly generated world replaced raw/: rebuild curated from all of it (full=True).
            etl_summary = run_etl(spark, str(lake_catalog.path("raw")), str(lake_catalog.path("curated")), progress=console.log, full=True)
        else:
            from seed_infra.s3_staging import run_etl_via_s3

            etl_summary = run_etl_via_s3(spark, s3, lake_catalog.uri("raw"), lake_catalog.uri("curated"), progress=console.log, full=True)
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
                        "TruthDataUri": lake_catalog.uri("truth_offers") if truth else "", **overrides},
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
    if s3 is not None:  # the local endpoint loads a lake folder's model; S3 artifacts stay in the registry
        console.print("[dim]S3 lake: the new model stays in the registry (serve it with `airfare serve`)[/dim]")
        return
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


def _overrides(pairs: list[str] | None, bucket: str) -> dict[str, str]:
    """``--param`` pairs, checked against the definition's parameters before any work starts."""
    from pipelines.definition import definition_dict
    from pipelines.pipeline_cli import parse_param_pairs

    params = parse_param_pairs(pairs)
    declared = {p["Name"] for p in definition_dict(default_bucket=bucket).get("Parameters") or []}
    unknown = sorted(set(params) - declared)
    if unknown:
        raise typer.BadParameter(f"unknown pipeline parameter(s) {', '.join(unknown)}; declared: {', '.join(sorted(declared))}", param_hint="--param")
    return params


def _s3_lake(lake_catalog: Catalog, break_kind: str | None):
    """The S3 lake of ``--s3-endpoint-url``; the bucket is created when the endpoint lacks it."""
    from core.s3lake import S3Lake
    from seed_infra.s3_staging import ensure_bucket

    if break_kind is not None:
        raise typer.BadParameter("--break rewrites curated files in the folder lake; it cannot be combined with --s3-endpoint-url", param_hint="--break")
    s3 = S3Lake(lake_catalog.s3_endpoint_url)  # the jobs get the endpoint from the executor (AWS_ENDPOINT_URL_S3)
    ensure_bucket(s3, lake_catalog.bucket)
    return s3


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

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
import time
from pathlib import Path
from typing import Annotated

import typer

from core.catalog import Catalog

app = typer.Typer()
_DEFAULTS = Catalog()


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
    lake: Annotated[Path, typer.Option(help="Local folder standing for S3 (s3://BUCKET/KEY -> LAKE/BUCKET/KEY).")] = _DEFAULTS.lake_root,
    runs: Annotated[Path, typer.Option(help="Where pipeline runs keep their steps' files and logs.")] = _DEFAULTS.runs_root,
    registry: Annotated[Path, typer.Option(help="Local model registry folder.")] = _DEFAULTS.registry_root,
    workers: Annotated[int, typer.Option(min=1, help="Pipeline steps run at once.")] = 2,
    break_kind: Annotated[str | None, typer.Option("--break", help="Break the curated data as a faulty upstream would (see `airfare etl --help`): the run must stop at the DataQuality gate.")] = None,
    s3_endpoint_url: Annotated[str | None, typer.Option("--s3-endpoint-url", envvar="AWS_ENDPOINT_URL_S3", help="Use this S3 API as the lake instead of the --lake folder (e.g. a moto server; https://s3.REGION.amazonaws.com for real buckets).")] = None,
    bucket: Annotated[str, typer.Option(help="The lake's bucket (s3://BUCKET/raw/, curated/, pipeline-runs/, registry/).")] = _DEFAULTS.bucket,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Pipeline parameter override Name=Value (repeatable), e.g. -p PriceRmseMax=20.")] = None,
) -> None:
    """Run the whole flow locally: generate searches, ETL, and the SageMaker pipeline (no Docker, no AWS)."""
    from rich.console import Console

    console = Console()
    start = _parse_date(start_date)
    end = start + dt.timedelta(days=days - 1)
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
    from seed_infra.etl.job import run_etl, spark_session

    _quiet_spark()
    spark = spark_session()
    try:
        if s3 is None:
            etl_summary = run_etl(spark, str(lake_catalog.path("raw")), str(lake_catalog.path("curated")), progress=console.log)
        else:
            from seed_infra.s3_staging import run_etl_via_s3

            etl_summary = run_etl_via_s3(spark, s3, lake_catalog.uri("raw"), lake_catalog.uri("curated"), progress=console.log)
    finally:
        spark.stop()
    if break_kind is not None:
        from seed_infra.world.breakage import break_curated

        break_curated(lake_catalog.path("offers"), break_kind, seed=seed)
        console.print(f"[yellow]curated data broken on purpose:[/yellow] {break_kind}")
    timings["etl"] = time.perf_counter() - t0

    # 3. The SageMaker pipeline, built by the SDK, checked, and executed locally.
    console.rule("[bold]3/3 SageMaker pipeline (local executor)")
    t0 = time.perf_counter()
    from pipelines.local_run import InvalidDefinition, run_locally

    try:
        result = run_locally(
            parameters={"StartDate": start.isoformat(), "EndDate": end.isoformat(), **overrides},
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

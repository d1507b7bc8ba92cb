"""`airfare etl` and `airfare query` (assembled into the `airfare` CLI in seed_infra/cli.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from core import catalog
from rich.console import Console
from rich.table import Table

app = typer.Typer()
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _dates(values: list[str] | None) -> list[str] | None:
    out: list[str] = []
    for v in values or []:
        for d in v.split(","):
            d = d.strip()
            if not d:
                continue
            try:
                out.append(dt.date.fromisoformat(d).isoformat())
            except ValueError:
                raise typer.BadParameter(f"not a date (YYYY-MM-DD): {d!r}", param_hint="--dates") from None
    return out or None


def summary_table(summary: dict) -> Table:
    table = Table(title=f"ETL run {summary['run_id']}", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("lines_read", "blank_lines", "out_of_scope_records", "input_records", "curated_events", "curated_offers",
                "events_without_offers", "duplicates", "quarantined"):
        table.add_row(key, f"{summary[key]:,}")
    for reason, n in summary["quarantine_reasons"].items():
        table.add_row(f"  quarantined: {reason}", f"{n:,}")
    for key, secs in summary["timings_s"].items():
        table.add_row(f"time {key}", f"{secs:.1f}")
    table.add_row("input events/s", f"{summary['events_per_s']:,.0f}")
    table.add_row("reconciled", "[green]yes[/green]" if summary["reconciled"] else "[red]NO[/red]")
    return table


@app.command()
def etl(
    raw: Annotated[str, typer.Option(help="raw folder or s3:// prefix: dt=YYYY-MM-DD/hour=HH/*.json.gz (Firehose layout)")],
    out: Annotated[str, typer.Option(help="curated folder or s3:// prefix: writes offers/, quarantine/ and etl_summary.json")],
    dates: Annotated[list[str] | None, typer.Option(help="search dates to (re)build, YYYY-MM-DD; repeat or comma-separate. Default: everything in --raw")] = None,
    master: Annotated[str, typer.Option(help="Spark master")] = "local[2]",
    driver_memory: Annotated[str, typer.Option(help="Spark driver memory")] = "4g",
    break_kind: Annotated[str | None, typer.Option("--break", help="after writing, break the curated data the way a faulty upstream would (missing_column, price_units, null_burst, duplicated_day, stale_window, shifted_distribution): for data-quality drills and tests")] = None,
    break_seed: Annotated[int, typer.Option(help="seed of --break")] = 0,
    s3_endpoint_url: Annotated[str | None, typer.Option("--s3-endpoint-url", envvar="AWS_ENDPOINT_URL_S3", help="S3 API of s3:// --raw/--out (default: AWS's); raw is staged to a scratch folder and curated uploaded back, since local Spark has no S3 connector")] = None,
) -> None:
    """Raw search events -> curated offers (Parquet by dt), on local Spark; the Glue job runs the same code."""
    selected = _dates(dates)
    if raw.startswith("s3://") or out.startswith("s3://"):
        _etl_s3(raw, out, selected, master, driver_memory, break_kind, s3_endpoint_url)
        return
    raw, out = Path(raw), Path(out)
    if break_kind is not None:
        from seed_infra.world.breakage import KINDS

        if break_kind not in KINDS:
            raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint="--break")
    if not raw.is_dir():
        err.print(f"[red]error:[/red] --raw {raw} is not a folder")
        raise typer.Exit(2)
    from pyspark.sql import SparkSession

    from seed_infra.etl.job import NoRawDataError, ReconciliationError, run_etl, spark_session

    with console.status("starting Spark") as status:
        owned = SparkSession.getActiveSession() is None  # a caller's session (tests, notebooks) is left running
        spark = spark_session(master=master, driver_memory=driver_memory)
        try:
            summary = run_etl(spark, str(raw), str(out), selected, progress=lambda msg: status.update(msg))
        except NoRawDataError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        except ReconciliationError as exc:
            err.print(f"[red]reconciliation failed:[/red] {exc}")
            raise typer.Exit(1) from None
        finally:
            if owned:
                spark.stop()
    console.print(summary_table(summary))
    offers_dir = out / catalog.relative("offers", "curated")
    console.print(f"wrote {offers_dir} and {out / catalog.relative('etl_summary', 'curated')}")
    if break_kind is not None:
        from seed_infra.world.breakage import break_curated

        break_curated(offers_dir, break_kind, seed=break_seed)
        console.print(f"[yellow]broke[/yellow] {offers_dir} on purpose: {break_kind}")


def _etl_s3(raw: str, out: str, selected, master: str, driver_memory: str, break_kind: str | None, endpoint: str | None) -> None:
    """`airfare etl` on s3:// locations (seed_infra/s3_staging.py does the staging)."""
    from core.s3lake import S3Lake, S3UriError, parse_s3_uri

    for name, value in (("--raw", raw), ("--out", out)):
        try:
            parse_s3_uri(value)
        except S3UriError as exc:
            raise typer.BadParameter(f"{exc} (--raw and --out are both s3:// or both folders)", param_hint=name) from None
    if break_kind is not None:
        raise typer.BadParameter("--break rewrites curated files in a folder; not with s3:// locations", param_hint="--break")
    from botocore.exceptions import BotoCoreError, ClientError
    from pyspark.sql import SparkSession

    from seed_infra.etl.job import NoRawDataError, ReconciliationError, spark_session
    from seed_infra.s3_staging import run_etl_via_s3

    with console.status("starting Spark") as status:
        owned = SparkSession.getActiveSession() is None
        spark = spark_session(master=master, driver_memory=driver_memory)
        try:
            summary = run_etl_via_s3(spark, S3Lake(endpoint), raw, out, selected, progress=lambda msg: status.update(msg))
        except NoRawDataError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        except ReconciliationError as exc:
            err.print(f"[red]reconciliation failed:[/red] {exc}")
            raise typer.Exit(1) from None
        except (ClientError, BotoCoreError) as exc:
            err.print(f"[red]S3 error:[/red] {exc}")
            raise typer.Exit(1) from None
        finally:
            if owned:
                spark.stop()
    console.print(summary_table(summary))
    console.print(f"wrote {out.rstrip('/')}/offers/ and {out.rstrip('/')}/etl_summary.json")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL; the curated offers are the table `offers` (and `quarantine` locally)")],
    curated: Annotated[Path, typer.Option(help="local curated folder (holds offers/)")] = catalog.Catalog().path("curated"),
    athena: Annotated[bool, typer.Option("--athena", help="run in Athena through awswrangler instead of local DuckDB")] = False,
    database: Annotated[str, typer.Option(help="Glue database (with --athena)")] = "airfare",
    workgroup: Annotated[str | None, typer.Option(help="Athena workgroup (with --athena)")] = None,
    s3_output: Annotated[str | None, typer.Option(help="Athena results location (with --athena)")] = None,
    limit: Annotated[int, typer.Option(help="rows to print at most")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print rows as JSON lines instead of a table")] = False,
) -> None:
    """Run SQL over the curated data: DuckDB locally, Athena with --athena."""
    from seed_infra.analytics import QueryError, query_athena, query_local

    try:
        df = query_athena(sql, database, workgroup, s3_output) if athena else query_local(sql, curated)
    except QueryError as exc:
        err.print(f"[red]query failed:[/red] {exc}")
        raise typer.Exit(1) from None
    shown = df.head(limit)
    if as_json:
        for rec in shown.to_dict(orient="records"):
            console.print_json(json.dumps(rec, default=str))
        return
    table = Table(show_header=True)
    for col in shown.columns:
        table.add_column(str(col))
    for row in shown.itertuples(index=False):
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)
    console.print(f"{len(df):,} rows" + (f" (first {limit} shown)" if len(df) > limit else ""))

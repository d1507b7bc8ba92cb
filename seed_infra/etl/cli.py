"""`airfare etl` and `airfare query` (assembled into the `airfare` CLI in seed_infra/cli.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from core import catalog
from rich.console import Console
from rich.table import Table

from core.cli_checks import out_dir_callback, parse_date

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
            out.append(parse_date(d, "--dates").isoformat())
    return out or None


def summary_table(summary: dict) -> Table:
    table = Table(title=f"ETL run {summary['run_id']}", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("new_raw_files", "reread_raw_files", "lines_read", "blank_lines", "reread_records", "input_records", "curated_events",
                "curated_offers", "events_without_offers", "duplicates", "quarantined", "lines_in_quarantined_files"):
        table.add_row(key, f"{summary[key]:,}")
    table.add_row("quarantined files", f"{len(summary['quarantined_files']):,}")
    table.add_row("rebuilt dates", ", ".join(summary["rebuilt_dates"]) or "-")
    for reason, n in summary["quarantine_reasons"].items():
        table.add_row(f"  quarantined: {reason}", f"{n:,}")
    for key, secs in summary["timings_s"].items():
        table.add_row(f"time {key}", f"{secs:.1f}")
    if summary["events_per_s"]:
        table.add_row("input events/s", f"{summary['events_per_s']:,.0f}")
    table.add_row("reconciled", "[green]yes[/green]" if summary["reconciled"] else "[red]NO[/red]")
    return table


def _master_callback(value: str) -> str:
    if not re.fullmatch(r"local(\[(\*|[1-9]\d{0,3})\])?|(spark|yarn|k8s)://?\S+|yarn", value):
        raise typer.BadParameter(f"{value!r} is not a Spark master (local, local[N], local[*], spark://HOST:PORT, yarn)", param_hint="--master")
    return value


def _memory_callback(value: str) -> str:
    if not re.fullmatch(r"[1-9]\d{0,5}[kmgt]?", value.strip().lower()):
        raise typer.BadParameter(f"{value!r} is not a JVM memory size (e.g. 4g, 512m)", param_hint="--driver-memory")
    return value


def _out_callback(ctx: typer.Context, param: typer.CallbackParam, value: str | None):
    """--out: an s3:// prefix (checked in _etl_s3) or an output folder (out_dir_callback)."""
    if value is None or value.startswith("s3://"):
        return value
    return out_dir_callback(ctx, param, value)


@contextmanager
def _etl_spark(master: str, driver_memory: str) -> Iterator[tuple]:
    """(spark, status) for one ETL run; its failures become the CLI's messages and exit codes.

    Missing raw data is a usage error (2); a failed reconciliation or an S3 error is a failed run
    (1). A session the caller already has (tests, notebooks) is left running; ours is stopped.
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from pyspark.sql import SparkSession

    from seed_infra.etl.job import NoRawDataError, RawFilesMissingError, ReconciliationError, spark_session, stop_spark

    with console.status("starting Spark") as status:
        owned = SparkSession.getActiveSession() is None
        spark = spark_session(master=master, driver_memory=driver_memory)
        try:
            yield spark, status
        except (NoRawDataError, RawFilesMissingError) as exc:
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
                stop_spark(spark)


@app.command()
def etl(
    raw: Annotated[str, typer.Option(help="raw folder or s3:// prefix: dt=YYYY-MM-DD/hour=HH/*.json.gz (Firehose layout)")],
    out: Annotated[str, typer.Option(callback=_out_callback, help="curated folder or s3:// prefix: writes offers/, quarantine/ and etl_summary.json")],
    dates: Annotated[list[str] | None, typer.Option(help="search dates to rebuild in full as well, YYYY-MM-DD; repeat or comma-separate. Every run curates what arrived since the last one, whatever its date")] = None,
    full: Annotated[bool, typer.Option("--full", help="forget which raw files earlier runs took and rebuild every date in --raw from all of it")] = False,
    master: Annotated[str, typer.Option(callback=_master_callback, help="Spark master, e.g. local[2], local[*]")] = "local[2]",
    driver_memory: Annotated[str, typer.Option(callback=_memory_callback, help="Spark driver memory, e.g. 4g, 512m")] = "4g",
    break_kind: Annotated[str | None, typer.Option("--break", help="after writing, break the curated data the way a faulty upstream would (missing_column, price_units, null_burst, duplicated_day, stale_window, shifted_distribution): for data-quality drills and tests")] = None,
    break_seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="seed of --break")] = 0,
    s3_endpoint_url: Annotated[str | None, typer.Option("--s3-endpoint-url", envvar="AWS_ENDPOINT_URL_S3", help="S3 API of s3:// --raw/--out (default: AWS's); raw is staged to a scratch folder and curated uploaded back, since local Spark has no S3 connector")] = None,
) -> None:
    """Raw search events -> curated offers (Parquet by dt), on local Spark; the Glue job runs the same code."""
    selected = _dates(dates)
    if raw.startswith("s3://") or out.startswith("s3://"):
        _etl_s3(raw, out, selected, master, driver_memory, break_kind, s3_endpoint_url, full)
        return
    raw, out = Path(raw), Path(out)
    if break_kind is not None:
        from seed_infra.world.breakage import KINDS

        if break_kind not in KINDS:
            raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint="--break")
    if not raw.is_dir():
        err.print(f"[red]error:[/red] --raw {raw} is not a folder")
        raise typer.Exit(2)
    from seed_infra.etl.job import run_etl

    with _etl_spark(master, driver_memory) as (spark, status):
        summary = run_etl(spark, str(raw), str(out), selected, progress=lambda msg: status.update(msg), full=full)
    console.print(summary_table(summary))
    for f in summary["quarantined_files"]:  # one line per file the run could not read, naming it
        err.print(f"[yellow]quarantined raw file[/yellow] {f['path']}: {f['reason']} ({f['detail']})")
    offers_dir = out / catalog.relative("offers", "curated")
    console.print(f"wrote {offers_dir} and {out / catalog.relative('etl_summary', 'curated')}")
    if break_kind is not None:
        from seed_infra.world.breakage import break_curated

        break_curated(offers_dir, break_kind, seed=break_seed)
        console.print(f"[yellow]broke[/yellow] {offers_dir} on purpose: {break_kind}")


def _etl_s3(raw: str, out: str, selected, master: str, driver_memory: str, break_kind: str | None, endpoint: str | None, full: bool = False) -> None:
    """`airfare etl` on s3:// locations (seed_infra/s3_staging.py does the staging)."""
    from core.s3lake import S3Lake, S3UriError, parse_s3_uri

    for name, value in (("--raw", raw), ("--out", out)):
        try:
            parse_s3_uri(value)
        except S3UriError as exc:
            raise typer.BadParameter(f"{exc} (--raw and --out are both s3:// or both folders)", param_hint=name) from None
    if break_kind is not None:
        raise typer.BadParameter("--break rewrites curated files in a folder; not with s3:// locations", param_hint="--break")
    from seed_infra.s3_staging import run_etl_via_s3

    with _etl_spark(master, driver_memory) as (spark, status):
        summary = run_etl_via_s3(spark, S3Lake(endpoint), raw, out, selected, progress=lambda msg: status.update(msg), full=full)
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

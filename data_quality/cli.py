"""Commands of this package for the `airfare` CLI (see pipelines/cli.py): ``dq`` and ``dq-reference``.

Heavy libraries (Great Expectations, pandas) are imported inside the commands so that
``airfare --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from core.cli_checks import date_callback, existing_dir_callback, existing_path_callback
from core.pipeline_contract import DQ_RESULT_FILE, DQ_VALIDATION_FILE, REPORT_HTML_FILE

app = typer.Typer(no_args_is_help=True)

EXIT_BLOCKING, EXIT_UNREADABLE = 1, 2


def _parse_date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)  # checked by date_callback


@app.command("dq")
def dq(
    data: Annotated[Path, typer.Option("--data", callback=existing_dir_callback, help="curated offers folder (holding dt=YYYY-MM-DD/ partitions, or its parent)")],
    start_date: Annotated[str | None, typer.Option("--start-date", callback=date_callback, help="first dt to validate (YYYY-MM-DD)")] = None,
    end_date: Annotated[str | None, typer.Option("--end-date", callback=date_callback, help="last dt; also the expected window end for freshness")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="where to write the HTML report [default: DATA/../dq_report.html]")] = None,
    reference: Annotated[Path | None, typer.Option("--reference", callback=existing_path_callback, help="distribution reference JSON [default: data_quality/reference.json]")] = None,
    min_rows: Annotated[int | None, typer.Option("--min-rows", min=0, help="row-count floor [default: 1000]")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="list passed expectations too")] = False,
) -> None:
    """Validate a curated offers folder by hand. Exit 1 if a blocking expectation fails, 2 if unreadable."""
    from rich.console import Console
    from rich.table import Table as RichTable

    from data_quality import tables
    from data_quality.reference import load_reference
    from data_quality.step import write_outputs
    from data_quality.validate import curated_checks, run_checks

    console = Console()
    start, end = _parse_date(start_date), _parse_date(end_date)
    if start and end and start > end:
        raise typer.BadParameter(f"{start_date} is after --end-date {end_date}", param_hint="--start-date")
    if report is not None and report.is_dir():
        raise typer.BadParameter(f"{report} is a folder; give a file name", param_hint="--report")
    try:
        table = tables.read_curated_offers(data, start, end)
        ref = load_reference(reference)
    except (tables.DataReadError, ValueError) as exc:
        console.print(f"[red]cannot read the input:[/red] {exc}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    context = {"data": str(data), "start_date": start_date, "end_date": end_date, "rows": len(table.frame)}
    run = run_checks(curated_checks(table, ref, min_rows=min_rows, start_date=start, end_date=end), context=context)
    out = report or tables.offers_root(data).parent / "dq_report.html"
    summary = write_outputs(run, out.parent, "Data quality: curated offers")
    if out.name != REPORT_HTML_FILE:
        (out.parent / REPORT_HTML_FILE).replace(out)
    for stray in (DQ_RESULT_FILE, DQ_VALIDATION_FILE):
        (out.parent / stray).replace(out.with_name(f"{out.stem}.{stray}"))

    shown = [r for r in run.rows if show_all or not r["success"]]
    grid = RichTable(title=f"data quality: {len(table.frame)} rows from {data}")
    grid.add_column("status", no_wrap=True)
    grid.add_column("severity", no_wrap=True)
    grid.add_column("expectation", no_wrap=True)
    grid.add_column("observed", overflow="ellipsis", max_width=70)
    for r in sorted(shown, key=lambda r: (r["success"], r["severity"] != "blocking", r["name"])):
        status = "[green]pass[/green]" if r["success"] else ("[red]FAIL[/red]" if r["severity"] == "blocking" else "[yellow]warn[/yellow]")
        grid.add_row(status, r["severity"], r["name"], str(r["observed"])[:200])
    if shown:
        console.print(grid)
    passed = len(run.rows) - summary["blocking_failures"] - summary["warnings"]
    console.print(f"{passed} passed, {summary['blocking_failures']} blocking failure(s), {summary['warnings']} warning(s)")
    console.print(f"report: {out}")
    if not summary["passed"]:
        raise typer.Exit(EXIT_BLOCKING)


@app.command("dq-reference")
def dq_reference(
    data: Annotated[Path, typer.Option("--data", callback=existing_dir_callback, help="curated offers folder of a known-good world")],
    flights: Annotated[Path | None, typer.Option("--flights", callback=existing_path_callback, help="a flights (demand) Parquet file, or a splits folder holding */flights.parquet")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="where to write [default: data_quality/reference.json]")] = None,
) -> None:
    """Refresh the distribution reference from a known-good world (review the diff, then commit it)."""
    import pandas as pd

    from data_quality import tables
    from data_quality.reference import build_reference, write_reference

    try:
        offers = tables.read_curated_offers(data).frame
        flight_frame = None
        if flights is not None:
            files = sorted(flights.glob("*/flights.parquet")) if flights.is_dir() else [flights]
            if not files:
                raise tables.DataReadError(f"no */flights.parquet under {flights}")
            flight_frame = pd.concat([tables.read_parquet_table(f).frame for f in files], ignore_index=True)
        ref = build_reference(offers, flight_frame, source=f"offers={data} flights={flights}")
    except (tables.DataReadError, ValueError) as exc:
        typer.echo(f"cannot build the reference: {exc}", err=True)
        raise typer.Exit(EXIT_UNREADABLE) from None
    typer.echo(f"reference written to {write_reference(ref, out)} ({ref['rows']} offers)")

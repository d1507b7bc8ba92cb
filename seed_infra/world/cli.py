"""Commands of this module for the `airfare` CLI (assembled in seed_infra/cli.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from core.cli_checks import date_callback, finite_callback, out_dir_callback

app = typer.Typer()


def _param_pairs(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in values or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        out[name.strip()] = value.strip()
    return out


@app.command()
def generate(
    out: Path = typer.Option(
        ..., "--out", callback=out_dir_callback,
        help="Lake folder to write raw/, outcomes/, labels/ and truth/ into (e.g. .lake/airfare-lake). Its raw/,"
        " outcomes/flights/, labels/incidents/ and truth/ are replaced (a previous world's partitions are deleted);"
        " anything else, e.g. curated/, is kept.",
    ),
    seed: int = typer.Option(42, "--seed", min=0, max=2**64 - 1,
                             help="Random seed, any integer from 0 to 2^64-1: the same seed and options give byte-identical files."),
    start_date: str = typer.Option("2026-01-05", "--start-date", callback=date_callback,
                                   help="First search day (UTC), YYYY-MM-DD, from 1971-01-01 to 2199-12-31."),
    days: int = typer.Option(60, "--days", min=1, max=3650, help="Number of search days to simulate."),
    searches_per_day: int = typer.Option(1500, "--searches-per-day", min=1, max=100_000_000, help="Searches per simulated day."),
    anomaly_rate: float = typer.Option(0.005, "--anomaly-rate", min=0.0, max=0.5, callback=finite_callback,
                                       help="Share of offers given a glitch price (x2-10 or /2-10)."),
    chunk_size: int = typer.Option(20_000, "--chunk-size", min=1, max=10_000_000, help="Most searches held in memory at once."),
    param: list[str] | None = typer.Option(
        None, "--param", "-p",
        help="Override a numeric world parameter, NAME=VALUE (repeatable), e.g. -p label_alert_coverage_min=0.6;"
        " names and defaults: seed_infra/world/params.py (the incident-label ones: docs/contracts.md).",
    ),
    drift: list[str] | None = typer.Option(
        None, "--drift",
        help="A regime change KIND@YYYY-MM-DD[:MAGNITUDE] (repeatable): fare-hike, new-route, mix-shift, currency-units,"
        " demand-collapse; from that search day on (seed_infra/world/drift.py), recorded in truth/world.json.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ground_truth: bool = typer.Option(
        False, "--ground-truth/--no-ground-truth",
        help="Also write ground_truth/{price,demand,anomaly}/: labels as production learns them (delayed, partial), "
        "in Model Monitor's ground-truth format (seed_infra/world/ground_truth.py).",
    ),
) -> None:
    """Generate a deterministic flight-search world: search events, flight outcomes, incident labels and the truth.

    Replaces the world's own folders under --out (raw/, outcomes/flights/, truth/) so that no
    partition of an earlier run is left behind; other folders (curated/, ...) are not touched.
    """
    from rich.console import Console
    from rich.table import Table

    from seed_infra.world import WorldParams, generate_world, validate_options

    first_day = dt.date.fromisoformat(start_date)
    console = Console(stderr=True)
    try:
        params = WorldParams().with_overrides(_param_pairs(param))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--param") from None
    from seed_infra.world.drift import parse_drifts

    try:
        drifts = parse_drifts(drift)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--drift") from None
    try:  # before the world's folders are cleared: a bad combination loses nothing
        validate_options(seed=seed, days=days, searches_per_day=searches_per_day, anomaly_rate=anomaly_rate,
                         chunk_size=chunk_size, start_date=first_day)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--start-date/--days" if "search days" in str(exc) else None) from None
    try:
        s = generate_world(out, seed=seed, start_date=first_day, days=days, searches_per_day=searches_per_day,
                           anomaly_rate=anomaly_rate, chunk_size=chunk_size, params=params, progress=not quiet,
                           drifts=drifts)
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None
    labels = None
    if ground_truth:
        from seed_infra.world.ground_truth import write_ground_truth

        labels = write_ground_truth(out, seed=seed)
    table = Table(title=f"world seed={seed} -> {out}", show_header=False)
    rows = [
        ("search events", f"{s.events:,}"),
        ("offers", f"{s.offers:,} ({s.offers / max(s.events, 1):.1f} per search)"),
        ("flights (outcomes)", f"{s.flights:,}  " + ", ".join(f"{k} {v / max(s.flights, 1):.0%}" for k, v in s.demand_class_counts.items())),
        ("anomalies", f"{s.anomalies:,} ({s.anomalies / max(s.offers, 1):.2%} of offers)"),
        ("incident labels", f"{s.labels.get('confirmed', 0):,} confirmed, {s.labels.get('cleared', 0):,} cleared;"
                            f" {s.labels.get('confirmed_true_anomalies', 0) / max(s.anomalies, 1):.0%} of anomalies confirmed,"
                            f" {s.labels.get('wrongly_confirmed', 0):,} wrongly"),
        ("price noise floor", f"${s.noise_floor_usd:.2f} RMSE (" + ", ".join(f"{k} ${v:.2f}" for k, v in s.noise_floor_by_cabin_usd.items()) + ")"),
        ("files", f"{s.raw_files:,} raw ({s.raw_bytes / 1e6:.1f} MB), {s.truth_files} truth, 1 outcomes,"
                  f" {s.labels.get('files', 0)} labels, world.json"),
        ("throughput", f"{s.events_per_s:,.0f} events/s, {s.offers_per_s:,.0f} offers/s ({s.seconds:.1f} s)"),
    ]
    if labels is not None:
        rows.append(("ground truth", ", ".join(f"{k} {v:,}" for k, v in sorted(labels.items()))))
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)

"""ETL benchmark: the Spark ETL against DuckDB flattening the same raw files.

Generates N searches with the world generator (Firehose layout, gzip JSON lines), then times:
1. the full Spark ETL (`run_etl`: validate, quarantine, deduplicate, features, Parquet by dt,
   reconcile) on local Spark; session start is timed separately and excluded from events/s;
2. optionally Spark flattening only (read, parse with the contract schema, explode, write Parquet),
   the like-for-like counterpart of (3);
3. DuckDB flattening: read_json over the same .json.gz files, unnest offers, write Parquet by dt.

    .venv/bin/python benchmarks/bench_etl.py                  # 1M searches (the issue's size)
    .venv/bin/python benchmarks/bench_etl.py --searches 50000  # quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()

# The raw event as DuckDB read_json columns (explicit, like the Spark schema: no inference).
DUCKDB_COLUMNS = {
    "schema_version": "INTEGER",
    "event_id": "VARCHAR",
    "event_time": "VARCHAR",
    "session": "STRUCT(session_id VARCHAR, user_id VARCHAR, country VARCHAR, device VARCHAR, loyalty_tier VARCHAR)",
    "query": "STRUCT(origin VARCHAR, destination VARCHAR, departure_date VARCHAR, return_date VARCHAR, trip_type VARCHAR, "
    "cabin VARCHAR, passengers STRUCT(adults INTEGER, children INTEGER, infants INTEGER))",
    "offers": "STRUCT(offer_id VARCHAR, airline VARCHAR, flight_number VARCHAR, departure_time VARCHAR, arrival_time VARCHAR, "
    "stops INTEGER, duration_minutes INTEGER, fare_class VARCHAR, seats_left INTEGER, "
    "price STRUCT(amount DOUBLE, currency VARCHAR))[]",
}


def duckdb_flatten(raw: Path, out: Path, threads: int) -> tuple[float, int]:
    """Flatten raw events to one Parquet row per offer with DuckDB; returns (seconds, rows)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    cols = "{" + ", ".join(f"{k}: '{v}'" for k, v in DUCKDB_COLUMNS.items()) + "}"
    files = str(raw / "**" / "*.json.gz")
    t = time.perf_counter()
    con.execute(
        f"""
        COPY (
          SELECT e.event_id, CAST(e.event_time AS TIMESTAMPTZ) AS event_time, e.session.session_id, e.session.user_id,
                 e.session.country AS user_country, e.session.device, e.session.loyalty_tier,
                 e.query.origin, e.query.destination, e.query.origin || '-' || e.query.destination AS route,
                 CAST(e.query.departure_date AS DATE) AS departure_date, CAST(e.query.return_date AS DATE) AS return_date,
                 e.query.trip_type, e.query.cabin, e.query.passengers.adults, e.query.passengers.children, e.query.passengers.infants,
                 o.offer_id, o.airline, o.flight_number, CAST(o.departure_time AS TIMESTAMP) AS departure_time,
                 CAST(o.arrival_time AS TIMESTAMP) AS arrival_time, o.stops, o.duration_minutes, o.fare_class, o.seats_left,
                 o.price.amount AS price_amount, o.price.currency AS currency,
                 substr(e.event_time, 1, 10) AS dt
          FROM (SELECT *, unnest(offers) AS o FROM read_json({duck_str(files)}, format = 'newline_delimited', columns = {cols},
                                                             compression = 'gzip')) AS e
        ) TO {duck_str(str(out))} (FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE)
        """
    )
    seconds = time.perf_counter() - t
    rows = con.execute(f"SELECT count(*) FROM read_parquet({duck_str(str(out / '**' / '*.parquet'))})").fetchone()[0]
    con.close()
    return seconds, rows


def duck_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def spark_flatten(spark, raw: Path, out: Path) -> tuple[float, int]:
    """Spark doing only what DuckDB does: parse with the contract schema, explode offers, write Parquet."""
    from pyspark.sql import functions as F

    from seed_infra.etl.schema import spark_schema

    t = time.perf_counter()
    df = spark.read.option("recursiveFileLookup", "true").text(str(raw))
    e = F.from_json("value", spark_schema(corrupt_column=None)).alias("e")
    flat = df.select(e).select("e.*", F.explode("e.offers").alias("o")).select(
        "event_id", "event_time", "session.*", "query.origin", "query.destination", "query.departure_date", "query.cabin",
        "o.*", F.substring("event_time", 1, 10).alias("dt"),
    )
    flat.write.mode("overwrite").partitionBy("dt").parquet(str(out))
    seconds = time.perf_counter() - t
    return seconds, spark.read.parquet(str(out)).count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=1_000_000, help="searches to generate (default 1M)")
    parser.add_argument("--days", type=int, default=7, help="search days they spread over")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cores", type=int, default=2, help="Spark local[N] and DuckDB threads")
    parser.add_argument("--workdir", type=Path, default=None, help="where to generate and write (default: a temp folder, removed after)")
    parser.add_argument("--no-spark-flatten", action="store_true", help="skip the Spark flatten-only run")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.searches < args.days:
        parser.error("--searches must be at least --days")

    from seed_infra.etl.job import run_etl, spark_session
    from seed_infra.world import generate_world

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_etl_"))
    results: dict[str, float | int | str] = {"searches": args.searches, "cores": args.cores}
    try:
        per_day = args.searches // args.days
        with console.status(f"generating {per_day * args.days:,} searches"):
            world = generate_world(work / "lake", seed=args.seed, start_date=dt.date(2026, 3, 2), days=args.days,
                                   searches_per_day=per_day, progress=False)
        raw = work / "lake" / "raw"
        results.update(events=world.events, offers=world.offers, raw_mb=round(world.raw_bytes / 1e6, 1), generate_s=round(world.seconds, 1))

        with console.status("starting Spark"):
            t = time.perf_counter()
            spark = spark_session(master=f"local[{args.cores}]", shuffle_partitions=2 * args.cores)
            spark.range(1).count()
            results["spark_session_start_s"] = round(time.perf_counter() - t, 1)
        try:
            with console.status("Spark ETL (validate, dedup, features, write)"):
                t = time.perf_counter()
                summary = run_etl(spark, str(raw), str(work / "curated"))
                results["spark_etl_s"] = round(time.perf_counter() - t, 1)
            assert summary["reconciled"] and summary["curated_offers"] == world.offers, summary
            results["spark_etl_phases_s"] = json.dumps(summary["timings_s"])
            if not args.no_spark_flatten:
                with console.status("Spark flatten only"):
                    results["spark_flatten_s"], n = spark_flatten(spark, raw, work / "spark_flat")
                    assert n == world.offers, (n, world.offers)
        finally:
            spark.stop()
        with console.status("DuckDB flatten"):
            results["duckdb_flatten_s"], n = duckdb_flatten(raw, work / "duck_flat", args.cores)
            assert n == world.offers, (n, world.offers)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    ev = results["events"]
    table = Table(title=f"ETL benchmark: {ev:,} searches, {results['offers']:,} offers, {results['raw_mb']} MB gzip, {args.cores} cores")
    for col in ("run", "seconds", "events/s", "vs DuckDB"):
        table.add_column(col, justify="right" if col != "run" else "left")
    duck = results["duckdb_flatten_s"]
    runs = [("Spark ETL (full)", results["spark_etl_s"])]
    if "spark_flatten_s" in results:
        runs.append(("Spark flatten only", results["spark_flatten_s"]))
    runs.append(("DuckDB flatten", duck))
    for name, secs in runs:
        table.add_row(name, f"{secs:.1f}", f"{ev / secs:,.0f}", f"{secs / duck:.2f}x")
    table.add_row("Spark session start (excluded)", f"{results['spark_session_start_s']:.1f}", "", "")
    table.add_row("world generation", f"{results['generate_s']:.1f}", f"{ev / results['generate_s']:,.0f}", "")
    console.print(table)
    console.print(f"Spark ETL phases: {results['spark_etl_phases_s']}")
    results.update(spark_etl_events_per_s=round(ev / results["spark_etl_s"]), duckdb_events_per_s=round(ev / duck),
                   spark_etl_over_duckdb=round(results["spark_etl_s"] / duck, 2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

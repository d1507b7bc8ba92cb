"""ETL benchmark: the Spark ETL against DuckDB flattening the same raw files.

Generates N searches with the world generator (Firehose layout, gzip JSON lines), then times:
1. the full Spark ETL (`run_etl`: validate, quarantine, deduplicate, features, Parquet by dt,
   reconcile) on local Spark; session start is timed separately and excluded from events/s;
2. optionally Spark flattening only (read, parse with the contract schema, explode, write Parquet),
   the like-for-like counterpart of (3);
3. DuckDB flattening: read_json over the same .json.gz files, unnest offers, write Parquet by dt.

    .venv/bin/python benchmarks/bench_etl.py --searches 200000             # the issue's reference size
    .venv/bin/python benchmarks/bench_etl.py --searches 20000              # quick look
    .venv/bin/python benchmarks/bench_etl.py --searches 200000 --relayout-mb 128 --profile

``--relayout-mb N`` re-lays the same events into gzip files of about N MB of JSON each (Firehose's
buffer size; the generator writes one file per hour) to see what the raw layout does to both
figures. ``--profile`` turns the Spark UI on and prints summed task time per ETL phase.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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
    """Spark doing only what DuckDB does: parse with the contract schema, explode offers, cast the
    dates and times to their types, write Parquet by dt. The baseline the full ETL is held against."""
    from pyspark.sql import functions as F

    from seed_infra.etl.schema import spark_schema

    spark.sparkContext.setJobDescription("plain flatten")
    t = time.perf_counter()
    df = spark.read.option("recursiveFileLookup", "true").text(str(raw))
    e = F.from_json("value", spark_schema(corrupt_column=None)).alias("e")
    flat = df.select(e).select("e.*", F.explode("e.offers").alias("o")).select(
        "event_id", F.col("event_time").cast("timestamp").alias("event_time"), "session.*", "query.origin", "query.destination",
        F.to_date("query.departure_date").alias("departure_date"), F.to_date("query.return_date").alias("return_date"),
        "query.trip_type", "query.cabin", "query.passengers.*",
        "o.offer_id", "o.airline", "o.flight_number", F.col("o.departure_time").cast("timestamp_ntz").alias("departure_time"),
        F.col("o.arrival_time").cast("timestamp_ntz").alias("arrival_time"), "o.stops", "o.duration_minutes", "o.fare_class",
        "o.seats_left", F.col("o.price.amount").alias("price_amount"), F.col("o.price.currency").alias("currency"),
        F.substring("event_time", 1, 10).alias("dt"),
    )
    flat.write.mode("overwrite").partitionBy("dt").parquet(str(out))
    seconds = time.perf_counter() - t
    spark.sparkContext.setJobDescription(None)
    return seconds, spark.read.parquet(str(out)).count()


def jvm_cpu_s(spark) -> float:
    """CPU seconds the Spark JVM (this process's java child) has used: every thread, tasks, driver,
    JIT compilers and GC alike."""
    import psutil

    jvms = [p for p in psutil.Process().children(recursive=True) if p.name() == "java"]
    return sum(sum(p.cpu_times()[:2]) for p in jvms)


def wait_for_jit(spark, quiet_s: float = 2.0, max_s: float = 120.0) -> float:
    """Wait until the JVM's JIT compilers are idle (no compile time added for ``quiet_s``); returns
    seconds waited. The warm-up queues many compilations (Janino, Catalyst, the JSON parser, the
    Parquet writer); on a busy 2-core machine the JIT works through them for a while, and a timed
    run that starts at once pays the warm-up's compilations, whichever path comes first."""
    bean = spark._jvm.java.lang.management.ManagementFactory.getCompilationMXBean()
    t0 = time.perf_counter()
    last, quiet_since = bean.getTotalCompilationTime(), time.perf_counter()
    while time.perf_counter() - t0 < max_s:
        time.sleep(0.5)
        now = bean.getTotalCompilationTime()
        if now - last > 20:  # ms of compilation in the last half second
            last, quiet_since = now, time.perf_counter()
        elif time.perf_counter() - quiet_since >= quiet_s:
            break
    return time.perf_counter() - t0


def relayout(raw: Path, target_mb: float) -> tuple[int, float]:
    """Re-lay the same events as Firehose would with a larger buffer: each arrival day's lines, in
    order, into gzip files of about ``target_mb`` MB of uncompressed data (Firehose's SizeInMBs is
    measured before compression). Returns (files, mean compressed MB per file)."""
    import gzip

    sizes = []
    for day in sorted(p for p in raw.iterdir() if p.name.startswith("dt=")):
        parts = sorted(day.rglob("*.json.gz"))
        out_dir = day / "hour=00"
        tmp = day.with_name(day.name + ".relayout")
        tmp.mkdir()
        n, buf, size = 0, [], 0

        def flush():
            nonlocal n, buf, size
            if buf:
                path = tmp / f"relayout-{n:05d}.json.gz"
                with gzip.open(path, "wb", compresslevel=3) as fh:
                    fh.writelines(buf)
                sizes.append(path.stat().st_size)
                n, buf, size = n + 1, [], 0

        for part in parts:
            with gzip.open(part, "rb") as fh:
                for line in fh:
                    buf.append(line)
                    size += len(line)
                    if size >= target_mb * 1e6:
                        flush()
        flush()
        shutil.rmtree(day)
        out_dir.mkdir(parents=True)
        for f in tmp.iterdir():
            f.rename(out_dir / f.name)
        tmp.rmdir()
    return len(sizes), (sum(sizes) / len(sizes) / 1e6) if sizes else 0.0


def stage_metrics(spark) -> list[dict]:
    """Per-stage task metrics from the Spark UI's REST API (summed task times, bytes), by job description."""
    import urllib.request

    url = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/stages") as resp:
        stages = json.load(resp)
    keys = ("executorRunTime", "executorCpuTime", "jvmGcTime", "inputBytes", "outputBytes", "shuffleReadBytes", "shuffleWriteBytes",
            "memoryBytesSpilled", "diskBytesSpilled", "numTasks")
    return [{"stage": st["stageId"], "description": st.get("description") or "", "name": st["name"][:60],
             **{k: st.get(k, 0) for k in keys}} for st in sorted(stages, key=lambda st: st["stageId"])]


def profile_table(stages: list[dict]) -> Table:
    """Task time per phase (job description): where the ETL's time goes."""
    phases: dict[str, dict] = {}
    for st in stages:
        agg = phases.setdefault((st["description"] or "(none)")[:28], {"stages": 0, "run_s": 0.0, "cpu_s": 0.0, "gc_s": 0.0, "in_mb": 0.0,
                                                                  "out_mb": 0.0, "shuffle_mb": 0.0, "spill_mb": 0.0})
        agg["stages"] += 1
        agg["run_s"] += st["executorRunTime"] / 1e3
        agg["cpu_s"] += st["executorCpuTime"] / 1e9
        agg["gc_s"] += st["jvmGcTime"] / 1e3
        agg["in_mb"] += st["inputBytes"] / 1e6
        agg["out_mb"] += st["outputBytes"] / 1e6
        agg["shuffle_mb"] += (st["shuffleReadBytes"] + st["shuffleWriteBytes"]) / 1e6
        agg["spill_mb"] += (st["memoryBytesSpilled"] + st["diskBytesSpilled"]) / 1e6
    table = Table(title="Profile: summed task time per phase (Spark REST API stage metrics)")
    cols = ("phase", "stages", "task s", "cpu s", "gc s", "input MB", "output MB", "shuffle MB", "spill MB")
    for c in cols:
        table.add_column(c, justify="left" if c == "phase" else "right", no_wrap=c == "phase")
    for name, a in phases.items():
        table.add_row(name, str(a["stages"]), f"{a['run_s']:.1f}", f"{a['cpu_s']:.1f}", f"{a['gc_s']:.1f}", f"{a['in_mb']:.0f}",
                      f"{a['out_mb']:.0f}", f"{a['shuffle_mb']:.0f}", f"{a['spill_mb']:.0f}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", type=int, default=200_000, help="searches to generate (default 200k)")
    parser.add_argument("--days", type=int, default=7, help="search days they spread over")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cores", type=int, default=2, help="Spark local[N] and DuckDB threads")
    parser.add_argument("--workdir", type=Path, default=None, help="where to generate and write (default: a temp folder, removed after)")
    parser.add_argument("--no-spark-flatten", action="store_true", help="skip the Spark flatten-only run")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--relayout-mb", type=float, default=None, help="re-lay each day's events into gzip files of about N MB of JSON")
    parser.add_argument("--profile", action="store_true", help="Spark UI on: print task time per ETL phase (stage metrics)")
    args = parser.parse_args(argv)
    if args.searches < args.days:
        parser.error("--searches must be at least --days")

    from seed_infra.etl.job import run_etl, spark_session
    from seed_infra.world import generate_world

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_etl_"))
    results: dict[str, float | int | str] = {"searches": args.searches, "cores": args.cores, "load_avg_1m_start": round(os.getloadavg()[0], 1)}
    try:
        per_day = args.searches // args.days
        with console.status(f"generating {per_day * args.days:,} searches"):
            world = generate_world(work / "lake", seed=args.seed, start_date=dt.date(2026, 3, 2), days=args.days,
                                   searches_per_day=per_day, progress=False)
        raw = work / "lake" / "raw"
        results.update(events=world.events, offers=world.offers, raw_mb=round(world.raw_bytes / 1e6, 1), generate_s=round(world.seconds, 1))
        results["raw_files"] = len(list(raw.rglob("*.json.gz")))
        if args.relayout_mb:
            with console.status(f"re-laying raw into ~{args.relayout_mb} MB files"):
                results["raw_files"], mean_mb = relayout(raw, args.relayout_mb)
            results["relayout_mb"] = args.relayout_mb
        results["mean_file_mb"] = round(results["raw_mb"] / results["raw_files"], 2)

        with console.status("starting Spark"):
            t = time.perf_counter()
            # --profile: the UI's REST API serves the stage metrics (on a free port)
            spark = spark_session(master=f"local[{args.cores}]", shuffle_partitions=2 * args.cores, ui=args.profile)

            spark.range(1).count()
            results["spark_session_start_s"] = round(time.perf_counter() - t, 1)
        try:
            # JIT warm-up, excluded: both code paths once on one raw file, so that neither timed run
            # pays the JVM's compilation of the JSON parser and Parquet writer for the other.
            with console.status("warming up the JVM (one raw file, both paths)"):
                one = sorted(raw.rglob("*.json.gz"))[0]
                warm = work / "warm" / "raw" / one.relative_to(raw)
                warm.parent.mkdir(parents=True)
                shutil.copy(one, warm)
                run_etl(spark, str(work / "warm" / "raw"), str(work / "warm" / "curated"))
                spark_flatten(spark, work / "warm" / "raw", work / "warm" / "flat")
            with console.status("waiting for the JIT compilers to finish the warm-up's work"):
                results["jit_wait_s"] = round(wait_for_jit(spark), 1)
            first_timed_stage = max((st["stage"] for st in stage_metrics(spark)), default=-1) + 1 if args.profile else 0
            with console.status("Spark ETL (validate, dedup, features, write)"):
                t, cpu = time.perf_counter(), jvm_cpu_s(spark)
                summary = run_etl(spark, str(raw), str(work / "curated"))
                results["spark_etl_s"] = round(time.perf_counter() - t, 1)
                results["spark_etl_jvm_cpu_s"] = round(jvm_cpu_s(spark) - cpu, 1)
            assert summary["reconciled"] and summary["curated_offers"] == world.offers, summary
            results["spark_etl_phases_s"] = json.dumps(summary["timings_s"])
            if not args.no_spark_flatten:
                with console.status("Spark flatten only"):
                    cpu = jvm_cpu_s(spark)
                    results["spark_flatten_s"], n = spark_flatten(spark, raw, work / "spark_flat")
                    results["spark_flatten_jvm_cpu_s"] = round(jvm_cpu_s(spark) - cpu, 1)
                    assert n == world.offers, (n, world.offers)
            if args.profile:
                stages = [st for st in stage_metrics(spark) if st["stage"] >= first_timed_stage]
                results["profile_stages"] = stages
        finally:
            spark.stop()
        with console.status("DuckDB flatten"):
            results["duckdb_flatten_s"], n = duckdb_flatten(raw, work / "duck_flat", args.cores)
            assert n == world.offers, (n, world.offers)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    results["load_avg_1m_end"] = round(os.getloadavg()[0], 1)
    ev = results["events"]
    table = Table(title=f"ETL benchmark: {ev:,} searches, {results['offers']:,} offers, {results['raw_mb']} MB gzip in "
                        f"{results['raw_files']} files ({results['mean_file_mb']} MB each), {args.cores} cores")
    for col in ("run", "seconds", "events/s", "vs DuckDB", "vs Spark flatten", "JVM CPU s"):
        table.add_column(col, justify="right" if col != "run" else "left")
    duck = results["duckdb_flatten_s"]
    runs = [("Spark ETL (full)", results["spark_etl_s"], results["spark_etl_jvm_cpu_s"])]
    if "spark_flatten_s" in results:
        runs.append(("Spark flatten only", results["spark_flatten_s"], results["spark_flatten_jvm_cpu_s"]))
    runs.append(("DuckDB flatten", duck, None))
    flat = results.get("spark_flatten_s")
    for name, secs, cpu in runs:
        # speed ratio: events/s of this run over events/s of the baseline (= baseline seconds / these seconds)
        table.add_row(name, f"{secs:.1f}", f"{ev / secs:,.0f}", f"{duck / secs:.2f}x", f"{flat / secs:.2f}x" if flat else "",
                      f"{cpu:.1f}" if cpu is not None else "")
    table.add_row("Spark session start (excluded)", f"{results['spark_session_start_s']:.1f}", "", "", "", "")
    table.add_row("JIT catching up after warm-up (excluded)", f"{results['jit_wait_s']:.1f}", "", "", "", "")
    table.add_row("world generation", f"{results['generate_s']:.1f}", f"{ev / results['generate_s']:,.0f}", "", "", "")
    console.print(table)
    console.print(f"load average (1 min): {results['load_avg_1m_start']} at start, {results['load_avg_1m_end']} at end "
                  f"({os.cpu_count()} cores): other processes share the cores when it exceeds them")
    console.print(f"Spark ETL phases: {results['spark_etl_phases_s']}")
    if flat:
        results["etl_speed_vs_spark_flatten"] = round(flat / results["spark_etl_s"], 2)
        console.print(f"full ETL speed / plain Spark flatten speed: {results['etl_speed_vs_spark_flatten']:.2f}x (goal >= 0.6x)")
        results["etl_jvm_cpu_vs_spark_flatten"] = round(results["spark_flatten_jvm_cpu_s"] / results["spark_etl_jvm_cpu_s"], 2)
        console.print(f"by JVM CPU time (what the work costs, whatever the load): {results['etl_jvm_cpu_vs_spark_flatten']:.2f}x")
    if args.profile:
        console.print(profile_table(results["profile_stages"]))
        # Task CPU time is what the work costs, however many other processes share the cores.
        cpu = {k: sum(st["executorCpuTime"] for st in results["profile_stages"] if st["description"].startswith(k)) / 1e9
               for k in ("etl:", "plain flatten")}
        if cpu["etl:"] and cpu["plain flatten"]:
            results["cpu_ratio_flatten_over_etl"] = round(cpu["plain flatten"] / cpu["etl:"], 2)
            console.print(f"task CPU: ETL {cpu['etl:']:.1f} s, plain flatten {cpu['plain flatten']:.1f} s -> "
                          f"ETL at {results['cpu_ratio_flatten_over_etl']:.2f}x the flatten's speed by CPU time")
    results.update(spark_etl_events_per_s=round(ev / results["spark_etl_s"]), duckdb_events_per_s=round(ev / duck),
                   etl_speed_vs_duckdb=round(duck / results["spark_etl_s"], 2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ETL run: raw -> curated offers + quarantine + etl_summary.json, reconciled to the record.

``run_etl`` is what both ``airfare etl`` (local Spark) and the Glue entry (seed_infra/glue_job.py)
call. File-system work (listing, deleting stale partitions, renaming, writing the summary) goes
through Hadoop's FileSystem API so that the same code serves local paths and ``s3://``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from core import catalog, contract
from seed_infra.etl import transform

# The curated folder's layout (core.catalog): the run writes under the folder it is given.
OFFERS_DIR = catalog.relative("offers", "curated")
QUARANTINE_DIR = catalog.relative("quarantine", "curated")
SUMMARY_FILE = catalog.relative("etl_summary", "curated")
# Up to this many curated events, the (route, departure date, day) counts are broadcast (they have
# at most one row per event); above it Spark picks the join.
ROUTE_DATE_BROADCAST_MAX_EVENTS = 5_000_000


class NoRawDataError(ValueError):
    """The raw location holds no files to process."""


class ReconciliationError(RuntimeError):
    """The written data does not account for every input record: the run must not be trusted."""


def spark_session(master: str = "local[2]", shuffle_partitions: int = 8, driver_memory: str = "4g", app: str = "airfare-etl") -> SparkSession:
    """A local SparkSession set up the way the ETL needs it (UI off, UTC, quiet)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def configure(spark: SparkSession) -> None:
    """Runtime settings the ETL relies on (also applied on Glue, where the session is given)."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set("spark.sql.parquet.compression.codec", "snappy")
    # A task holding several dt values writes them side by side instead of sorting its rows by dt first.
    spark.conf.set("spark.sql.maxConcurrentOutputFileWriters", "32")


class HadoopFS:
    """Listing, deleting, renaming and writing small files for local paths and s3:// alike."""

    def __init__(self, spark: SparkSession, uri: str):
        jvm = spark._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._fs = self._Path(uri).getFileSystem(spark._jsc.hadoopConfiguration())

    def exists(self, uri: str) -> bool:
        return bool(self._fs.exists(self._Path(uri)))

    def delete(self, uri: str) -> None:
        if self.exists(uri):
            self._fs.delete(self._Path(uri), True)

    def files(self, uri: str) -> list[str]:
        """Data files under ``uri`` (recursive), skipping hidden and underscore files like Spark does."""
        if not self.exists(uri):
            return []
        out, it = [], self._fs.listFiles(self._Path(uri), True)
        while it.hasNext():
            path = it.next().getPath()
            parts = str(path).split("/")
            if not any(p.startswith((".", "_")) for p in parts[len(uri.rstrip("/").split("/")) :]):
                out.append(str(path))
        return out

    def rename(self, src: str, dst: str) -> None:
        self._fs.rename(self._Path(src), self._Path(dst))

    def write_text(self, uri: str, text: str) -> None:
        stream = self._fs.create(self._Path(uri), True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()


def _norm(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.abspath(path)


def raw_inputs(fs: HadoopFS, raw: str, dates: Sequence[str] | None) -> list[str]:
    """Folders to read: all of ``raw``, or ``raw/dt=D`` for each date plus the late-arrival days after it."""
    if not dates:
        return [raw] if fs.files(raw) else []
    days: set[str] = set()
    for d in dates:
        start = dt.date.fromisoformat(d)
        days.update((start + dt.timedelta(days=k)).isoformat() for k in range(transform.LATE_ARRIVAL_DAYS + 1))
    return [f"{raw}/dt={d}" for d in sorted(days) if fs.files(f"{raw}/dt={d}")]


def new_run_id() -> str:
    return f"etl-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _collect_stats(classified: DataFrame) -> tuple[dict, dict]:
    """Per (scope, date, reason) line counts and per-date event/offer expectations of the curated set."""
    by_reason = (
        classified.groupBy("is_blank", "in_scope", "record_dt", F.col("problem.reason").alias("reason")).count().collect()
    )
    valid = classified.filter(~F.col("is_blank") & F.col("in_scope") & F.col("problem").isNull())
    per_event = valid.groupBy("event_id").agg(
        F.count("*").alias("copies"),
        F.min_by(F.struct("n_offers", "record_dt", F.col("org.country").alias("country"), F.col("dep_date")), "line_hash").alias("kept"),
    )
    per_date = (
        per_event.groupBy(F.col("kept.record_dt").alias("record_dt"))
        .agg(
            F.count("*").alias("events"),
            F.sum(F.col("copies") - 1).alias("duplicates"),
            F.sum("kept.n_offers").alias("offers"),
            F.sum((F.col("kept.n_offers") == 0).cast("int")).alias("events_without_offers"),
            F.collect_set("kept.country").alias("countries"),
            F.min("kept.dep_date").alias("first_departure"),
            F.max("kept.dep_date").alias("last_departure"),
        )
        .collect()
    )
    blank = sum(r["count"] for r in by_reason if r.is_blank)
    lines = {(r.in_scope, r.record_dt, r.reason): r["count"] for r in by_reason if not r.is_blank}
    return blank, lines, {r.record_dt: r.asDict() for r in per_date}


def _holidays(spark: SparkSession, per_date: dict) -> DataFrame | None:
    """Holiday distances for the origin countries and departure dates of the curated events."""
    countries = sorted({c for p in per_date.values() for c in p["countries"]})
    firsts = [p["first_departure"] for p in per_date.values() if p["first_departure"]]
    lasts = [p["last_departure"] for p in per_date.values() if p["last_departure"]]
    if not countries or not firsts:
        return None
    return transform.holiday_table(spark, countries, min(firsts), max(lasts))


def run_etl(
    spark: SparkSession,
    raw_path: str,
    out_path: str,
    dates: Sequence[str] | None = None,
    run_id: str | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Run the ETL; returns (and writes) the summary. Raises NoRawDataError, ReconciliationError."""
    configure(spark)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    raw, out = _norm(raw_path), _norm(out_path)
    run_id = run_id or new_run_id()
    dates = sorted(set(dates)) if dates else None
    for d in dates or []:
        dt.date.fromisoformat(d)  # ValueError on a bad date, before any work
    fs = HadoopFS(spark, out)
    inputs = raw_inputs(HadoopFS(spark, raw), raw, dates)
    if not inputs:
        raise NoRawDataError(f"no raw files under {raw}" + (f" for dates {', '.join(dates)}" if dates else ""))

    progress("reading and validating raw events")
    lines = transform.read_raw(spark, inputs)
    classified, cached = transform.classify(spark, lines, dates)
    try:
        blank, by_reason, per_date = _collect_stats(classified)
        timings["read_validate_s"] = time.perf_counter() - t0
        in_scope = {k: v for k, v in by_reason.items() if k[0]}
        quarantine_counts: dict[str, int] = {}
        quarantine_dates: set[str] = set()
        for (_, record_dt, reason), n in in_scope.items():
            if reason is not None:
                quarantine_counts[reason] = quarantine_counts.get(reason, 0) + n
                quarantine_dates.add(record_dt)
        input_records = sum(in_scope.values())
        out_of_scope = sum(v for k, v in by_reason.items() if not k[0])
        quarantined = sum(quarantine_counts.values())
        curated_events = sum(p["events"] for p in per_date.values())
        duplicates = sum(p["duplicates"] for p in per_date.values())
        expected_offers = sum(p["offers"] for p in per_date.values())
        curated_dates = {d for d, p in per_date.items() if p["offers"] > 0}
        scope_dates = set(dates) if dates else {k[1] for k in in_scope}

        # Partitions of this run's scope that get no new rows would keep stale rows under dynamic
        # overwrite: remove them first.
        for d in sorted(scope_dates):
            if d not in curated_dates:
                fs.delete(f"{out}/{OFFERS_DIR}/{contract.PARTITION_COLUMN}={d}")
            if d not in quarantine_dates:
                fs.delete(f"{out}/{QUARANTINE_DIR}/{contract.PARTITION_COLUMN}={d}")

        t = time.perf_counter()
        progress(f"writing {quarantined:,} quarantined records")
        if quarantined:
            q = transform.quarantine_rows(classified)
            q.repartition(contract.PARTITION_COLUMN).write.mode("overwrite").partitionBy(contract.PARTITION_COLUMN).json(f"{out}/{QUARANTINE_DIR}")
            for d in quarantine_dates:
                for f in fs.files(f"{out}/{QUARANTINE_DIR}/{contract.PARTITION_COLUMN}={d}"):
                    if f.endswith(".json"):
                        fs.rename(f, f + "l")
        timings["quarantine_write_s"] = time.perf_counter() - t

        t = time.perf_counter()
        progress(f"building and writing {expected_offers:,} curated offers")
        valid = classified.filter(~F.col("is_blank") & F.col("in_scope") & F.col("problem").isNull())
        if expected_offers:
            events = transform.deduplicate(valid.select("event_id", "line_id", "line_hash", "e", "org", "dst"), has_duplicates=duplicates > 0)
            offers = transform.build_offers(spark, events.select("event_id", "e", "org", "dst"), run_id, _holidays(spark, per_date),
                                            broadcast_route_dates=curated_events <= ROUTE_DATE_BROADCAST_MAX_EVENTS)
            # One task per core (no shuffle): a few files per dt rather than one per raw file.
            offers = offers.coalesce(max(1, spark.sparkContext.defaultParallelism))
            offers.write.mode("overwrite").partitionBy(contract.PARTITION_COLUMN).parquet(f"{out}/{OFFERS_DIR}")
        timings["curated_write_s"] = time.perf_counter() - t

        t = time.perf_counter()
        progress("reconciling")
        written_offers = written_events = 0
        if curated_dates:
            paths = [f"{out}/{OFFERS_DIR}/{contract.PARTITION_COLUMN}={d}" for d in sorted(curated_dates)]
            row = spark.read.parquet(*paths).agg(F.count("*").alias("n"), F.count_distinct("event_id").alias("e")).first()
            written_offers, written_events = row.n, row.e
        written_quarantine = 0
        if quarantine_dates:
            paths = [f"{out}/{QUARANTINE_DIR}/{contract.PARTITION_COLUMN}={d}" for d in sorted(quarantine_dates)]
            written_quarantine = spark.read.schema("reason string").json(paths).count()
        timings["reconcile_s"] = time.perf_counter() - t
    finally:
        cached.unpersist()

    events_without_offers = sum(p["events_without_offers"] for p in per_date.values())
    timings["total_s"] = time.perf_counter() - t0
    summary = {
        "run_id": run_id,
        "schema_version": contract.SCHEMA_VERSION,
        "raw_path": raw,
        "out_path": out,
        "dates": dates,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "lines_read": input_records + out_of_scope + blank,
        "blank_lines": blank,
        "out_of_scope_records": out_of_scope,
        "input_records": input_records,
        "curated_events": curated_events,
        "curated_offers": written_offers,
        "quarantined": quarantined,
        "duplicates": duplicates,
        "events_without_offers": events_without_offers,
        "quarantine_reasons": dict(sorted(quarantine_counts.items())),
        "per_date": {
            d: {
                "curated_events": per_date.get(d, {}).get("events", 0),
                "curated_offers": per_date.get(d, {}).get("offers", 0),
                "duplicates": per_date.get(d, {}).get("duplicates", 0),
                "quarantined": sum(n for (_, rd, r), n in in_scope.items() if rd == d and r is not None),
            }
            for d in sorted(scope_dates)
        },
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "events_per_s": round(input_records / timings["total_s"], 1) if timings["total_s"] else None,
    }
    problems = []
    if input_records != curated_events + quarantined + duplicates:
        problems.append(f"input_records {input_records} != curated {curated_events} + quarantined {quarantined} + duplicates {duplicates}")
    if written_offers != expected_offers:
        problems.append(f"wrote {written_offers} offers, expected {expected_offers}")
    if written_events + events_without_offers != curated_events:
        problems.append(f"wrote {written_events} events with offers + {events_without_offers} without != {curated_events}")
    if written_quarantine != quarantined:
        problems.append(f"wrote {written_quarantine} quarantine records, expected {quarantined}")
    summary["reconciled"] = not problems
    fs.write_text(f"{out}/{SUMMARY_FILE}", json.dumps(summary, indent=2, default=str) + "\n")
    if problems:
        raise ReconciliationError("; ".join(problems))
    return summary

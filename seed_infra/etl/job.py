"""The ETL run: raw -> curated offers + quarantine + etl_summary.json, reconciled to the record.

``run_etl`` is what both ``airfare etl`` (local Spark) and the Glue entry (seed_infra/glue_job.py)
call. File-system work (listing, deleting stale partitions, renaming, writing the summary and the
manifest) goes through Hadoop's FileSystem API so that the same code serves local paths and ``s3://``.

Incremental, by event date. Firehose files objects by *arrival* time, so a raw folder can hold any
search date. The manifest (``<out>/_manifest/``, one JSON-lines file per run) lists every raw file a
run has taken, with the search dates of its lines. A run reads the raw files that arrived since
(not in the manifest), finds the search dates they touch, re-reads the earlier files holding those
dates, and rebuilds each touched ``dt`` whole (dynamic partition overwrite of complete days): a
late event of day D lands in dt=D beside D's earlier rows, duplicates are found across runs, and
the day-level features (route counts, medians) cover the whole day. A re-run with nothing new
changes nothing; a run that dies before its manifest is written is simply redone by the next one.

A raw file that cannot be read (truncated or corrupt gzip, not gzip) or is not UTF-8 text is
quarantined as a file: its path and reason go to the summary and to quarantine/, the manifest
remembers it (a replaced object, new size or time, is read again), and the run goes on.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from urllib.parse import unquote, urlparse

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
CODEGEN_CACHE_ENTRIES = 1000  # a static SQL setting: set when the session starts (on Glue: --conf)
# Curated columns whose values are (nearly) all distinct within a file: a Parquet dictionary only
# costs hashing there (and is abandoned past 1 MB anyway), so they are written plain. Same values,
# about the same size; the write's CPU drops by about a fifth (measured on the default world).
PLAIN_ENCODED_COLUMNS = ("offer_id", "flight_key", "departure_time", "arrival_time", "price_amount", "price_usd",
                         "competitor_min_price_usd", "competitor_median_price_usd", "price_vs_route_median", "price_vs_competitor_median")
CURATED_PARQUET_OPTIONS = {f"parquet.enable.dictionary#{c}": "false" for c in PLAIN_ENCODED_COLUMNS}


class NoRawDataError(ValueError):
    """The raw location holds no files to process."""


class ReconciliationError(RuntimeError):
    """The written data does not account for every input record: the run must not be trusted."""


class RawFilesMissingError(RuntimeError):
    """A date to rebuild was built from raw files that are no longer there: rebuilding it would drop rows."""


def spark_session(master: str = "local[2]", shuffle_partitions: int = 8, driver_memory: str = "4g", app: str = "airfare-etl",
                  ui: bool = False) -> SparkSession:
    """A local SparkSession set up the way the ETL needs it (UI off unless ``ui``: then on a free port; UTC, quiet)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.ui.enabled", str(ui).lower())
        .config("spark.ui.port", "0")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        # One ETL run generates ~75 distinct classes (validation, features, cache scans, writers);
        # Spark's default cache of 100 compiled classes evicts them within a run and between runs
        # of one session, and each recompile costs Janino ~50 ms plus the JIT's work on the new class.
        .config("spark.sql.codegen.cache.maxEntries", str(CODEGEN_CACHE_ENTRIES))
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
    # Spark 3.5 (Glue 5) defaults that Spark 4 changed: keep the fields of a record that parse when
    # one field has the wrong type (its event_id and time still place it), and let date parsing
    # return null instead of raising SparkUpgradeException on dates the legacy parser read differently.
    spark.conf.set("spark.sql.json.enablePartialResults", "true")
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")


def stop_spark(spark: SparkSession) -> None:
    """Stop the session *and* its py4j JVM. ``SparkSession.stop`` leaves the gateway JVM running
    (GBs of heap) for the life of the Python process, e.g. through ``airfare run``'s pipeline."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    spark.stop()
    if gateway is None:
        return
    gateway.shutdown()
    proc = getattr(gateway, "proc", None)
    if proc is not None:
        proc.stdin.close()  # the JVM's PythonGatewayServer exits when its stdin closes
        try:
            proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - a JVM that ignores stdin is killed instead
            proc.kill()
    SparkContext._gateway = None
    SparkContext._jvm = None


class HadoopFS:
    """Listing, deleting, renaming and writing small files for local paths and s3:// alike."""

    def __init__(self, spark: SparkSession, uri: str):
        jvm = self._jvm = spark._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._fs = self._Path(uri).getFileSystem(spark._jsc.hadoopConfiguration())

    def exists(self, uri: str) -> bool:
        return bool(self._fs.exists(self._Path(uri)))

    def delete(self, uri: str) -> None:
        if self.exists(uri):
            self._fs.delete(self._Path(uri), True)

    def status(self, uri: str) -> list[tuple[str, int, int]]:
        """(path, size, modification time ms) of the data files under ``uri``, as ``files`` chooses them."""
        if not self.exists(uri):
            return []
        out, it = [], self._fs.listFiles(self._Path(uri), True)
        depth = len(uri.rstrip("/").split("/"))
        while it.hasNext():
            st = it.next()
            path = str(st.getPath())
            if not any(p.startswith((".", "_")) for p in path.split("/")[depth:]):
                out.append((path, int(st.getLen()), int(st.getModificationTime())))
        return sorted(out)

    def read_text(self, uri: str) -> str:
        stream = self._fs.open(self._Path(uri))
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)).decode("utf-8")
        finally:
            stream.close()

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


def new_run_id() -> str:
    return f"etl-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- the processed-files manifest

MANIFEST_DIR = "_manifest"
MANIFEST_COMPACT_AFTER = 64  # run files; then one run folds them into a single file


def file_key(path: str, size: int, mtime: int) -> str:
    """A raw object as the manifest knows it: a replaced object (new size or time) is new data."""
    return f"{path}|{size}|{mtime}"


class Manifest:
    """Raw files already taken by a run: ``<out>/_manifest/*.jsonl``, one entry per file.

    Entry: path, size, mtime, run_id, status (``read`` or ``quarantined``), dts (search date ->
    non-blank lines of the file), lines, and for a quarantined file reason, detail and dt."""

    def __init__(self, fs: HadoopFS, out: str):
        self.fs, self.dir = fs, f"{out}/{MANIFEST_DIR}"

    def _files(self) -> list[str]:
        if not self.fs.exists(self.dir):
            return []
        it = self.fs._fs.listStatus(self.fs._Path(self.dir))
        return sorted(str(st.getPath()) for st in it if str(st.getPath()).endswith(".jsonl"))

    def load(self) -> dict[str, dict]:
        entries: dict[str, dict] = {}
        for f in self._files():
            for line in self.fs.read_text(f).splitlines():
                if line.strip():
                    e = json.loads(line)
                    entries[file_key(e["path"], e["size"], e["mtime"])] = e
        return entries

    def add(self, run_id: str, new_entries: list[dict]) -> None:
        """Record this run's files; past MANIFEST_COMPACT_AFTER run files, fold all into one."""
        files = self._files()
        if len(files) + 1 > MANIFEST_COMPACT_AFTER:
            entries = list(self.load().values()) + new_entries
            self.fs.write_text(f"{self.dir}/{run_id}.jsonl", "".join(json.dumps(e) + "\n" for e in entries))
            for f in files:
                self.fs.delete(f)
        elif new_entries:
            self.fs.write_text(f"{self.dir}/{run_id}.jsonl", "".join(json.dumps(e) + "\n" for e in new_entries))

    def reset(self) -> None:
        self.fs.delete(self.dir)


# ---------------------------------------------------------------- unreadable raw files

FILE_REASONS = ("truncated_gzip", "corrupt_gzip", "not_gzip", "undecodable_encoding", "unreadable_file")


def gzip_problem(data: bytes) -> tuple[str, str] | None:
    """Why ``data`` is not a readable gzip file (reason, one-line detail), or None when it is."""
    if data[:2] != b"\x1f\x8b":
        return "not_gzip", f"not a gzip file (starts with {data[:8]!r})"
    try:
        gzip.decompress(data)
    except EOFError as exc:
        return "truncated_gzip", f"truncated: {exc}"
    except (OSError, zlib.error) as exc:
        return "corrupt_gzip", f"corrupt: {exc}"
    return None


def _gzip_isize(fs: HadoopFS, path: str, size: int) -> int | None:
    """The uncompressed size mod 2**32 that a gzip file's trailer states (its last 4 bytes)."""
    if size < 18:  # shorter than an empty gzip member
        return None
    stream = fs._fs.open(fs._Path(path))
    try:
        stream.seek(size - 4)
        tail = bytes(fs._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()
    return int.from_bytes(tail[-4:], "little")


def unreadable_gzip_files(fs: HadoopFS, files: Sequence[tuple[str, int, int]], bytes_read: dict[str, int]) -> dict[str, tuple[str, str]]:
    """The .gz files Spark did not read to their end. The raw read skips a file at its first read
    error (ignoreCorruptFiles: a bad file must not stop the run), so each file's bytes as read are
    checked against the size its gzip trailer states: one 4-byte read per file. Only a file that
    disagrees (rare) is read whole on the driver to name its problem; a multi-member gzip that
    decompresses in full is accepted."""
    gz = [(p, size) for p, size, _ in files if p.endswith(".gz") and size > 0]

    def check(item: tuple[str, int]) -> tuple[str, tuple[str, str] | None]:
        path, size = item
        got = bytes_read.get(path, 0)
        if _gzip_isize(fs, path, size) in (got % 2**32, (got - 1) % 2**32):  # -1: no newline after the last line
            return path, None
        stream = fs._fs.open(fs._Path(path))
        try:
            data = bytes(fs._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()
        problem = gzip_problem(data)
        if problem is None:
            full = len(gzip.decompress(data))
            if full in (got, got - 1):
                return path, None
            problem = ("unreadable_file", f"Spark read {got} of its {full} bytes")
        return path, problem

    # Sequential: py4j calls from a thread pool desynchronised the gateway's protocol (KeyError in py4j).
    return {path: problem for path, problem in map(check, gz) if problem}


def _raw_dt(path: str) -> str:
    m = re.search(transform.RAW_DT_PATTERN, path)
    return m.group(1) if m else transform.UNKNOWN_DT


# ---------------------------------------------------------------- reading and statistics

def _line_stats(classified: DataFrame) -> list[dict]:
    """Line counts per (source, blank, in scope, search date, reason, bad encoding): the action that
    fills the cache, and what reconciliation, the manifest and file-level quarantine read."""
    rows = classified.groupBy(
        "source", "is_blank", "in_scope", "record_dt", F.col("problem.reason").alias("reason"), "bad_encoding"
    ).agg(F.count("*").alias("count"), F.sum("line_bytes").alias("bytes")).collect()
    return [r.asDict() for r in rows]


def _read_classify(spark: SparkSession, paths: list[str], dates: Sequence[str] | None, id_offset: int) -> tuple[DataFrame, list[dict]]:
    """Read and classify ``paths`` (cached) and fill the cache with its line statistics."""
    classified, _ = transform.classify(spark, transform.read_raw(spark, paths), dates, id_offset=id_offset)
    return classified, _line_stats(classified)


def _event_stats(valid: DataFrame) -> dict:
    """Per search date: events kept (one per event_id), duplicates, offers, and what the features need."""
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
    return {r.record_dt: r.asDict() for r in per_date}


def _holidays(spark: SparkSession, per_date: dict) -> DataFrame | None:
    """Holiday distances for the origin countries and departure dates of the curated events."""
    countries = sorted({c for p in per_date.values() for c in p["countries"]})
    firsts = [p["first_departure"] for p in per_date.values() if p["first_departure"]]
    lasts = [p["last_departure"] for p in per_date.values() if p["last_departure"]]
    if not countries or not firsts:
        return None
    return transform.holiday_table(spark, countries, min(firsts), max(lasts))


QUARANTINE_FILE_SCHEMA = ("reason string, detail string, source string, event_id string, raw string, raw_truncated boolean, "
                          "raw_base64 string, raw_dt string, dt string")


def _summary_base(run_id: str, raw: str, out: str, dates, full: bool) -> dict:
    return {"run_id": run_id, "schema_version": contract.SCHEMA_VERSION, "raw_path": raw, "out_path": out, "dates": dates,
            "full": full}


# ---------------------------------------------------------------- the run

def run_etl(
    spark: SparkSession,
    raw_path: str,
    out_path: str,
    dates: Sequence[str] | None = None,
    run_id: str | None = None,
    progress: Callable[[str], None] = lambda msg: None,
    full: bool = False,
) -> dict:
    """Curate what arrived since the last run; returns (and writes) the summary.

    ``dates``: search dates to rebuild in full as well (from every raw file known to hold them).
    ``full``: forget the manifest and rebuild every date found in raw from all of raw.
    Raises NoRawDataError, ReconciliationError, RawFilesMissingError."""
    configure(spark)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    raw, out = _norm(raw_path), _norm(out_path)
    run_id = run_id or new_run_id()
    dates = sorted(set(dates)) if dates else None
    for d in dates or []:
        dt.date.fromisoformat(d)  # ValueError on a bad date, before any work
    fs = HadoopFS(spark, out)
    listing = HadoopFS(spark, raw).status(raw)
    if not listing:
        raise NoRawDataError(f"no raw files under {raw}")
    manifest = Manifest(fs, out)
    if full:
        manifest.reset()
    known = manifest.load()
    present = {file_key(*f): f for f in listing}
    present_paths = {f[0] for f in listing}
    new_files = [f for k, f in present.items() if k not in known]
    summary = _summary_base(run_id, raw, out, dates, full)
    if not new_files and not dates:
        progress("no raw files arrived since the last run")
        summary.update(_empty_counts(), new_raw_files=0, reread_raw_files=0, rebuilt_dates=[], reconciled=True,
                       finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), timings_s={}, events_per_s=None)
        fs.write_text(f"{out}/{SUMMARY_FILE}", json.dumps(summary, indent=2, default=str) + "\n")
        return summary

    progress = _phases(spark, progress)
    progress(f"reading and validating {len(new_files):,} new raw files")
    new_paths = [f[0] for f in new_files]
    part_new, stats_new = _read_classify(spark, new_paths, None, 0) if new_paths else (None, [])
    cached = [part_new] if part_new is not None else []
    listed = {_same_path(p): p for p in present_paths}
    for r in stats_new:  # Spark's spelling of a file (source) -> the listing's (path)
        r["path"] = listed.get(_same_path(r["source"]), r["source"])
    bytes_read: dict[str, int] = {}
    for r in stats_new:
        bytes_read[r["path"]] = bytes_read.get(r["path"], 0) + (r["bytes"] or 0)
    unreadable = unreadable_gzip_files(HadoopFS(spark, raw), new_files, bytes_read)
    for path, (reason, _) in unreadable.items():
        progress(f"unreadable raw file {path}: {reason}")
    try:
        # Files whose every non-blank line is not UTF-8 text are quarantined whole (undecodable_encoding).
        per_file: dict[str, list[int]] = {}
        for r in stats_new:
            if not r["is_blank"]:
                agg = per_file.setdefault(r["path"], [0, 0])
                agg[0] += r["count"]
                agg[1] += r["count"] if r["bad_encoding"] else 0
        bad_files: dict[str, dict] = {}
        for path, (reason, detail) in unreadable.items():
            bad_files[path] = {"reason": reason, "detail": detail}
        for path, (n, bad) in per_file.items():
            if n and bad == n and path not in bad_files:
                bad_files[path] = {"reason": "undecodable_encoding", "detail": "no line of the file is UTF-8 text (invalid bytes or NUL)"}
        for path, b in bad_files.items():  # lines read before a read error count with their file
            b["lines"] = sum(r["count"] for r in stats_new if r["path"] == path)
        undecodable = set(bad_files)  # every line of a quarantined file is set aside with it
        undecodable_sources = sorted({r["source"] for r in stats_new if r["path"] in undecodable})
        new_dts = {r["record_dt"] for r in stats_new if not r["is_blank"] and r["path"] not in undecodable}
        new_dts |= {_raw_dt(p) for p in bad_files}
        rebuild = new_dts | set(dates or [])

        # Earlier files holding a date to rebuild are read again, so that each date is rebuilt whole.
        holding = [e for k, e in known.items() if set(e.get("dts") or {}) & rebuild]
        missing = sorted(e["path"] for e in holding if e["status"] == "read" and e["path"] not in present_paths)
        if missing:
            raise RawFilesMissingError(
                f"cannot rebuild {', '.join(sorted(rebuild & {d for k, e in known.items() if e['path'] in missing for d in e['dts']}))}: "
                f"{len(missing)} raw file(s) it was built from are gone, e.g. {missing[0]} (run with full=True / --full to rebuild from the raw files present)")
        reread = sorted({e["path"] for k, e in known.items() if k in present and e["status"] == "read" and set(e["dts"]) & rebuild})
        old_bad = [e for k, e in known.items() if k in present and e["status"] == "quarantined" and e["dt"] in rebuild]
        stats_old: list[dict] = []
        if reread:
            progress(f"re-reading {len(reread):,} earlier raw files of {len(rebuild)} date(s) to rebuild")
            part_old, stats_old = _read_classify(spark, reread, sorted(rebuild), 1 << 62)
            cached.append(part_old)
            for r in stats_old:
                r["path"] = listed.get(_same_path(r["source"]), r["source"])
            old_bytes: dict[str, int] = {}
            for r in stats_old:
                old_bytes[r["path"]] = old_bytes.get(r["path"], 0) + (r["bytes"] or 0)
            unreadable_old = unreadable_gzip_files(HadoopFS(spark, raw), [f for f in listing if f[0] in set(reread)], old_bytes)
            if unreadable_old:  # read once, unreadable now: the object changed under the same key
                path, (_, detail) = next(iter(unreadable_old.items()))
                raise RawFilesMissingError(f"raw file {path} cannot be read any more: {detail}")
        timings["read_validate_s"] = time.perf_counter() - t0

        classified = cached[0] if len(cached) == 1 else cached[0].unionByName(cached[1]) if cached else None
        if undecodable and classified is not None:
            classified = classified.filter(~F.col("source").isin(*undecodable_sources))
        line_stats = [r for r in stats_new + stats_old if r["path"] not in undecodable]
        blank = sum(r["count"] for r in line_stats if r["is_blank"])
        in_scope = [r for r in line_stats if not r["is_blank"] and r["in_scope"]]
        reread_records = sum(r["count"] for r in line_stats if not r["is_blank"] and not r["in_scope"])
        quarantine_counts: dict[str, int] = {}
        for r in in_scope:
            if r["reason"] is not None:
                quarantine_counts[r["reason"]] = quarantine_counts.get(r["reason"], 0) + r["count"]
        valid = classified.filter(~F.col("is_blank") & F.col("in_scope") & F.col("problem").isNull()) if classified is not None else None
        per_date = _event_stats(valid) if valid is not None else {}
        input_records = sum(r["count"] for r in in_scope)
        quarantined = sum(quarantine_counts.values())
        curated_events = sum(p["events"] for p in per_date.values())
        duplicates = sum(p["duplicates"] for p in per_date.values())
        expected_offers = sum(p["offers"] for p in per_date.values())
        curated_dates = {d for d, p in per_date.items() if p["offers"] > 0}
        file_rows = [(b["reason"], f"{path}: {b['detail']}", path, None, None, False, None, _raw_dt(path), _raw_dt(path))
                     for path, b in sorted(bad_files.items())]
        file_rows += [(e["reason"], f"{e['path']}: {e['detail']}", e["path"], None, None, False, None, e["dt"], e["dt"])
                      for e in sorted(old_bad, key=lambda e: e["path"])]
        quarantine_dates = {r["record_dt"] for r in in_scope if r["reason"] is not None} | {row[-1] for row in file_rows}

        # Dates being rebuilt that get no new rows would keep stale rows under dynamic overwrite: remove them first.
        for d in sorted(rebuild):
            if d not in curated_dates:
                fs.delete(f"{out}/{OFFERS_DIR}/{contract.PARTITION_COLUMN}={d}")
            if d not in quarantine_dates:
                fs.delete(f"{out}/{QUARANTINE_DIR}/{contract.PARTITION_COLUMN}={d}")

        t = time.perf_counter()
        progress(f"writing {quarantined:,} quarantined records and {len(file_rows)} quarantined files")
        if quarantine_dates:
            q = spark.createDataFrame(file_rows, QUARANTINE_FILE_SCHEMA)
            if quarantined:
                q = transform.quarantine_rows(classified).unionByName(q)
            q.repartition(contract.PARTITION_COLUMN).write.mode("overwrite").partitionBy(contract.PARTITION_COLUMN).json(f"{out}/{QUARANTINE_DIR}")
            for d in quarantine_dates:
                for f in fs.files(f"{out}/{QUARANTINE_DIR}/{contract.PARTITION_COLUMN}={d}"):
                    if f.endswith(".json"):
                        fs.rename(f, f + "l")
        timings["quarantine_write_s"] = time.perf_counter() - t

        t = time.perf_counter()
        progress(f"building and writing {expected_offers:,} curated offers")
        if expected_offers:
            events = transform.deduplicate(valid.select("event_id", "line_id", "line_hash", "e", "org", "dst", "usd"), has_duplicates=duplicates > 0)
            offers = transform.build_offers(spark, events.select("event_id", "e", "org", "dst", "usd"), run_id, _holidays(spark, per_date),
                                            broadcast_route_dates=curated_events <= ROUTE_DATE_BROADCAST_MAX_EVENTS)
            # One task per core (no shuffle): a few files per dt rather than one per raw file.
            offers = offers.coalesce(max(1, spark.sparkContext.defaultParallelism))
            offers.write.mode("overwrite").options(**CURATED_PARQUET_OPTIONS).partitionBy(contract.PARTITION_COLUMN).parquet(f"{out}/{OFFERS_DIR}")
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
        for c in cached:
            c.unpersist()
        spark.sparkContext.setJobDescription(None)

    events_without_offers = sum(p["events_without_offers"] for p in per_date.values())
    lines_read = sum(r["count"] for r in stats_new + stats_old)
    lines_in_bad_files = sum(b["lines"] for b in bad_files.values())
    timings["total_s"] = time.perf_counter() - t0
    summary.update({
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "new_raw_files": len(new_files),
        "reread_raw_files": len(reread),
        "rebuilt_dates": sorted(rebuild),
        "lines_read": lines_read,
        "blank_lines": blank,
        "reread_records": reread_records,
        "input_records": input_records,
        "curated_events": curated_events,
        "curated_offers": written_offers,
        "quarantined": quarantined,
        "duplicates": duplicates,
        "events_without_offers": events_without_offers,
        "quarantine_reasons": dict(sorted(quarantine_counts.items())),
        "quarantined_files": [{"path": p, **b} for p, b in sorted(bad_files.items())],
        "lines_in_quarantined_files": lines_in_bad_files,
        "per_date": {
            d: {
                "curated_events": per_date.get(d, {}).get("events", 0),
                "curated_offers": per_date.get(d, {}).get("offers", 0),
                "duplicates": per_date.get(d, {}).get("duplicates", 0),
                "quarantined": sum(r["count"] for r in in_scope if r["record_dt"] == d and r["reason"] is not None),
            }
            for d in sorted(rebuild)
        },
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "events_per_s": round(input_records / timings["total_s"], 1) if timings["total_s"] else None,
    })
    problems = []
    if lines_read != blank + input_records + reread_records + lines_in_bad_files:
        problems.append(f"lines_read {lines_read} != blank {blank} + input {input_records} + re-read {reread_records} "
                        f"+ in quarantined files {lines_in_bad_files}")
    if input_records != curated_events + quarantined + duplicates:
        problems.append(f"input_records {input_records} != curated {curated_events} + quarantined {quarantined} + duplicates {duplicates}")
    if written_offers != expected_offers:
        problems.append(f"wrote {written_offers} offers, expected {expected_offers}")
    if written_events + events_without_offers != curated_events:
        problems.append(f"wrote {written_events} events with offers + {events_without_offers} without != {curated_events}")
    if written_quarantine != quarantined + len(file_rows):
        problems.append(f"wrote {written_quarantine} quarantine records, expected {quarantined} + {len(file_rows)} files")
    summary["reconciled"] = not problems
    fs.write_text(f"{out}/{SUMMARY_FILE}", json.dumps(summary, indent=2, default=str) + "\n")
    if problems:
        raise ReconciliationError("; ".join(problems))
    # Only a reconciled run marks its files as taken: a failed one is redone whole by the next run.
    entries = []
    by_source: dict[str, dict[str, int]] = {}
    lines_by_source: dict[str, int] = {}
    for r in stats_new:
        lines_by_source[r["path"]] = lines_by_source.get(r["path"], 0) + r["count"]
        if not r["is_blank"]:
            d = by_source.setdefault(r["path"], {})
            d[r["record_dt"]] = d.get(r["record_dt"], 0) + r["count"]
    for path, size, mtime in new_files:
        entry = {"path": path, "size": size, "mtime": mtime, "run_id": run_id}
        if path in bad_files:
            b = bad_files[path]
            entry.update(status="quarantined", reason=b["reason"], detail=b["detail"], dt=_raw_dt(path), dts={_raw_dt(path): 0},
                         lines=b["lines"])
        else:
            entry.update(status="read", dts=by_source.get(path, {}), lines=lines_by_source.get(path, 0))
        entries.append(entry)
    manifest.add(run_id, entries)
    return summary


def _phases(spark: SparkSession, progress: Callable[[str], None]) -> Callable[[str], None]:
    """Progress messages that also name the Spark jobs that follow (Spark UI, Glue's job insights)."""

    names = {"reading": "etl: read+validate", "re-reading": "etl: re-read", "writing": "etl: quarantine write",
             "building": "etl: curated write", "reconciling": "etl: reconcile"}

    def report(msg: str) -> None:
        progress(msg)
        name = names.get(msg.split(" ", 1)[0])
        if name:
            spark.sparkContext.setJobDescription(name)

    return report


def _same_path(path: str) -> str:
    """A file path as listing and Spark's _metadata.file_path may spell it differently (file:/x, file:///x)."""
    return unquote(urlparse(path).path) if "://" in path or path.startswith("file:") else path


def _empty_counts() -> dict:
    return {"lines_read": 0, "blank_lines": 0, "reread_records": 0, "input_records": 0, "curated_events": 0, "curated_offers": 0,
            "quarantined": 0, "duplicates": 0, "events_without_offers": 0, "quarantine_reasons": {}, "quarantined_files": [],
            "lines_in_quarantined_files": 0, "per_date": {}}

"""Writing a generated world to the lake layout (docs/contracts.md "The lake"), chunk by chunk.

- ``raw/dt=YYYY-MM-DD/hour=HH/part-NNNNN.json.gz``: gzip JSON lines of SearchEvent documents
  (gzip header without a timestamp, so a seed gives the same bytes every time);
- ``truth/offers/part-YYYY-MM-DD.parquet``: noise-free price and injected anomalies per offer;
- ``outcomes/flights/part-00000.parquet``: the final load factor of every flight that was offered;
- ``truth/world.json``: options, parameters, documented effects and the price noise floor;
- ``labels/incidents/dt=<verdict date>/part-<search date>.parquet`` + ``_manifest.json``: the
  price-integrity team's verdicts (``contract.INCIDENT_LABEL_SCHEMA``): partial, delayed, noisy.

A run replaces these folders (``WORLD_FOLDERS``) and leaves the rest of the lake alone.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import catalog, contract
from seed_infra.world.generator import (
    _FLIGHT_CODE,
    DEFAULT_ANOMALY_RATE,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DAYS,
    DEFAULT_SEARCHES_PER_DAY,
    DEFAULT_START_DATE,
    GENERATOR_VERSION,
    World,
)
from seed_infra.world.params import EFFECTS_DOC, WorldParams

GZIP_LEVEL = 3  # fast; JSON lines still shrink about 8x (6: 17 % smaller files, gzip about 2.3x slower)
# What `generate_world` owns under its folder, replaced on every run (nothing else is touched).
WORLD_FOLDERS = tuple(catalog.key(d) for d in catalog.WORLD_DATASETS)  # raw, outcomes/flights, labels/incidents, truth
TRUTH_ROW_GROUP = 250_000
_MAX_IN_FLIGHT_BYTES = 128 << 20  # uncompressed raw lines queued for the writer thread
_MAX_IN_FLIGHT_PARTS = 48
_ANOMALY_KINDS = pa.array(["spike", "drop"], pa.string())


@dataclass
class WorldSummary:
    """What `generate_world` wrote (counts, paths, the noise floor, speed)."""

    out_dir: Path
    seed: int
    start_date: dt.date
    days: int
    events: int = 0
    offers: int = 0
    flights: int = 0
    anomalies: int = 0
    labels: dict = field(default_factory=dict)  # incident feed counts (LabelsWriter.counts)
    raw_files: int = 0
    truth_files: int = 0
    raw_bytes: int = 0
    noise_floor_usd: float = 0.0
    noise_floor_by_cabin_usd: dict = field(default_factory=dict)
    demand_class_counts: dict = field(default_factory=dict)
    seconds: float = 0.0
    world_json: Path | None = None
    outcomes_file: Path | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def offers_per_s(self) -> float:
        return self.offers / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(events_per_s=round(self.events_per_s, 1), offers_per_s=round(self.offers_per_s, 1))
        return json.loads(json.dumps(d, default=str))


def iter_search_events(
    *,
    seed: int = 42,
    start_date: dt.date = DEFAULT_START_DATE,
    days: int = DEFAULT_DAYS,
    searches_per_day: int = DEFAULT_SEARCHES_PER_DAY,
    anomaly_rate: float = DEFAULT_ANOMALY_RATE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    params: WorldParams | None = None,
    drifts=(),
) -> Iterator[dict]:
    """Yield SearchEvent dicts in time order, lazily (one chunk of at most ``chunk_size`` in memory).

    The same events (same ids, same prices) as `generate_world` writes for the same options.
    """
    world = World(seed=seed, start_date=start_date, days=days, searches_per_day=searches_per_day,
                  anomaly_rate=anomaly_rate, chunk_size=chunk_size, params=params, drifts=drifts)
    for day in range(days):
        for hour, part, n in world.chunks_of_day(day):
            for line in world.chunk(day, hour, part, n).lines.splitlines():
                yield orjson.loads(line)


class _TruthWriter:
    """Buffers truth rows and writes one Parquet file per search day, in row groups."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writer: pq.ParquetWriter | None = None
        self.buf: list[tuple] = []
        self.rows = 0
        self.files = 0

    def open_day(self, day: dt.date) -> None:
        self.close()
        self.writer = pq.ParquetWriter(self.folder / f"part-{day.isoformat()}.parquet", contract.TRUTH_OFFER_SCHEMA, compression="zstd")
        self.files += 1

    def add(self, chunk) -> None:
        # keep the chunk's arrays; the Arrow table is built once per row group (cheap per chunk)
        self.buf.append((chunk.offer_id, chunk.true_price_usd, chunk.observed_usd, chunk.is_anomaly, chunk.anomaly_factor))
        self.rows += len(chunk.true_price_usd)
        if self.rows >= TRUTH_ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.buf and self.writer is not None:
            offer_id, true_usd, observed_usd, anom, factor = (
                pa.concat_arrays(list(parts)) if i == 0 else np.concatenate(parts) for i, parts in enumerate(zip(*self.buf))
            )
            kind = _ANOMALY_KINDS.take(pa.array((factor <= 1).astype(np.int64), mask=~anom))
            table = pa.table(
                {
                    "offer_id": offer_id.cast(pa.string()),
                    "true_price_usd": pa.array(np.round(true_usd, 4)),
                    "is_anomaly": pa.array(anom),
                    "anomaly_kind": kind,
                    "anomaly_factor": pa.array(np.where(anom, np.round(observed_usd / true_usd, 4), np.nan), from_pandas=True),
                },
                schema=contract.TRUTH_OFFER_SCHEMA,
            )
            self.writer.write_table(table, row_group_size=max(self.rows, 1))
        self.buf, self.rows = [], 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _LabelsWriter:
    """The incident feed: each search day's verdicts, one file per verdict date (bounded memory)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.parts: list[dict] = []
        self.files = 0
        self.counts = {"rows": 0, "confirmed": 0, "cleared": 0, "confirmed_true_anomalies": 0,
                       "wrongly_confirmed": 0, "wrongly_cleared": 0, "external_reports": 0}

    def add(self, chunk, rows: dict) -> None:
        offer_id = chunk.offer_id.cast(pa.string()).take(pa.array(rows["offer"]))
        anom = chunk.is_anomaly[rows["offer"]]
        inc = rows["is_incident"]
        c = self.counts
        c["rows"] += len(inc)
        c["confirmed"] += int(inc.sum())
        c["cleared"] += int((~inc).sum())
        c["confirmed_true_anomalies"] += int((inc & anom).sum())
        c["wrongly_confirmed"] += int((inc & ~anom).sum())
        c["wrongly_cleared"] += int((~inc & anom).sum())
        c["external_reports"] += int((rows["source"] > 0).sum())
        self.parts.append({**rows, "offer_id": offer_id})

    def write_day(self, search_day: dt.date) -> None:
        if not self.parts:
            return
        offer_id = pa.concat_arrays([p["offer_id"] for p in self.parts])
        cols = {k: np.concatenate([p[k] for p in self.parts]) for k in ("search_us", "confirmed_us", "is_incident", "source")}
        self.parts = []
        ts = pa.timestamp("us", tz="UTC")
        table = pa.table(
            {
                "offer_id": offer_id,
                "event_id": pc.utf8_slice_codeunits(offer_id, 0, 36),  # offer id = event id + "-NN"
                "search_time": pa.array(cols["search_us"], pa.int64()).cast(ts),
                "confirmed_at": pa.array(cols["confirmed_us"], pa.int64()).cast(ts),
                "is_incident": pa.array(cols["is_incident"]),
                "source": pa.array(np.asarray(contract.INCIDENT_SOURCES, dtype=object)[cols["source"]], pa.string()),
            },
            schema=contract.INCIDENT_LABEL_SCHEMA,
        )
        day_of = cols["confirmed_us"] // 86_400_000_000
        for d in np.unique(day_of):
            sel = np.flatnonzero(day_of == d)
            part = table.take(pa.array(sel)).sort_by([("confirmed_at", "ascending"), ("offer_id", "ascending")])
            folder = self.folder / f"dt={(dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, folder / f"part-{search_day.isoformat()}.parquet", compression="zstd")
            self.files += 1

    def write_manifest(self, as_of: dt.datetime, window_days: int) -> Path:
        path = self.folder / contract.INCIDENT_MANIFEST
        path.write_text(json.dumps({"as_of": as_of.isoformat().replace("+00:00", "Z"), "review_window_days": window_days,
                                    "schema_version": 1}, indent=2) + "\n")
        return path


def flight_outcomes(world: World, codes: np.ndarray) -> pa.Table:
    """FLIGHT_OUTCOME_SCHEMA rows for flight ids ``schedule * 1e6 + departure-day index``."""
    net = world.net
    codes = np.unique(codes)
    sched, dep = codes // _FLIGHT_CODE, codes % _FLIGHT_CODE
    lf = world.flight_load_factor(sched, dep)
    cap = net.s_capacity[sched]
    sold = np.minimum(np.round(lf * cap).astype(np.int64), cap)
    load = sold / cap
    airline = pa.array(net.airline_code, pa.string()).take(net.s_airline[sched])
    number = pa.array(net.s_number, pa.string()).take(sched)
    dates = pa.array(world.date_str, pa.string()).take(dep)
    # a connecting itinerary's first leg flies origin -> connection
    leg_dest = np.where(net.s_via[sched] >= 0, net.s_via[sched], net.route_d[net.s_route[sched]])
    iata = pa.array(net.iata, pa.string())
    day0 = (world._day0 - dt.date(1970, 1, 1)).days
    classes = np.select([load < contract.DEMAND_LOW_BELOW, load > contract.DEMAND_HIGH_ABOVE], [0, 2], 1)
    table = pa.table(
        {
            "flight_key": pc.binary_join_element_wise(airline, number, dates, "-"),
            "airline": airline,
            "flight_number": number,
            "origin": iata.take(net.route_o[net.s_route[sched]]),
            "destination": iata.take(leg_dest),
            "departure_date": pa.array((day0 + dep).astype(np.int32), pa.int32()).cast(pa.date32()),
            "capacity": pa.array(cap, pa.int32()),
            "seats_sold": pa.array(sold, pa.int32()),
            "load_factor": pa.array(load),
            "demand_class": pa.array(contract.DEMAND_CLASSES, pa.string()).take(classes),
        },
        schema=contract.FLIGHT_OUTCOME_SCHEMA,
    )
    return table.sort_by("flight_key")


def generate_world(
    out_dir: str | Path,
    *,
    seed: int = 42,
    start_date: dt.date = DEFAULT_START_DATE,
    days: int = DEFAULT_DAYS,
    searches_per_day: int = DEFAULT_SEARCHES_PER_DAY,
    anomaly_rate: float = DEFAULT_ANOMALY_RATE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    params: WorldParams | None = None,
    progress: bool = True,
    drifts=(),
) -> WorldSummary:
    """Generate a world into ``out_dir`` (raw/, outcomes/, truth/) and return what was written.

    The world's own folders (``WORLD_FOLDERS``: raw/, outcomes/flights/, labels/incidents/, truth/) are replaced: a
    previous world's partitions never survive into this one (e.g. a re-run with fewer days).
    Anything else in ``out_dir`` (curated/, ...) is left alone. ``drifts`` are regime changes
    (``KIND@DATE[:MAGNITUDE]`` strings or ``drift.Drift``; seed_infra/world/drift.py), recorded in
    truth/world.json; without them the world is exactly the historical one.

    Day by day, chunk by chunk: memory is bounded by ``chunk_size`` searches plus the set of
    flight ids offered so far. Same options and seed give byte-identical files.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    world = World(seed=seed, start_date=start_date, days=days, searches_per_day=searches_per_day,
                  anomaly_rate=anomaly_rate, chunk_size=chunk_size, params=params, drifts=drifts)
    clear_world_folders(out)
    for dataset in ("raw", "outcomes", "truth_offers", "incident_labels"):
        (out / catalog.key(dataset)).mkdir(parents=True, exist_ok=True)
    summary = WorldSummary(out_dir=out, seed=seed, start_date=start_date, days=days)
    truth = _TruthWriter(out / catalog.key("truth_offers"))
    labels = _LabelsWriter(out / catalog.key("incident_labels"))
    n_cabins = len(contract.CABINS)
    sq_err, sq_n = np.zeros(n_cabins), np.zeros(n_cabins)
    seen = np.zeros(world.net.n_schedules * world.n_dep_days, dtype=bool)  # flights offered so far

    # gzip and the raw writes (mkdir, open: slow on some disks) run on a second thread, in order
    # (zlib and file I/O release the GIL) while the next chunks are simulated; the parts in flight
    # are bounded in bytes and count, so memory stays bounded
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="world-raw")
    pending: deque[tuple[Future, int]] = deque()
    in_flight = 0
    bar = _progress(progress)
    try:
        with bar if bar is not None else nullcontext():
            task = bar.add_task("generating", total=days * searches_per_day) if bar is not None else None
            for day in range(days):
                search_day = start_date + dt.timedelta(days=day)
                truth.open_day(search_day)
                # chunks are simulated one by one (each from its own seed) and encoded in batches of at
                # most chunk_size searches: small chunks (e.g. 60 searches an hour) cost mostly per-call overhead
                plan = world.chunks_of_day(day)
                batch: list = []
                for k, (hour, part, n) in enumerate(plan):
                    batch.append((hour, part, world.simulate(day, hour, part, n)))
                    if k + 1 < len(plan) and sum(c.n_events for _, _, c in batch) + plan[k + 1][2] <= chunk_size:
                        continue
                    world.encode([c for _, _, c in batch])
                    for hour, part, chunk in batch:
                        path = out / catalog.key("raw") / f"dt={search_day.isoformat()}" / f"hour={hour:02d}" / f"part-{part:05d}.json.gz"
                        pending.append((pool.submit(_write_raw, path, chunk.lines), len(chunk.lines)))
                        in_flight += len(chunk.lines)
                        while pending and (in_flight > _MAX_IN_FLIGHT_BYTES or len(pending) > _MAX_IN_FLIGHT_PARTS):
                            job, size = pending.popleft()
                            summary.raw_bytes += job.result()
                            in_flight -= size
                        truth.add(chunk)
                        labels.add(chunk, world.review(chunk))
                        ok = ~chunk.is_anomaly
                        err = chunk.observed_usd[ok] - chunk.true_price_usd[ok]
                        np.add.at(sq_err, chunk.cabin[ok], err**2)
                        np.add.at(sq_n, chunk.cabin[ok], 1)
                        seen[chunk.flight_index] = True
                        summary.events += chunk.n_events
                        summary.offers += len(chunk.offer_id)
                        summary.anomalies += int(chunk.is_anomaly.sum())
                        summary.raw_files += 1
                        if bar is not None:
                            bar.update(task, advance=chunk.n_events)
                    batch = []
                labels.write_day(search_day)
        while pending:
            summary.raw_bytes += pending.popleft()[0].result()
    finally:
        pool.shutdown(wait=True)
    truth.close()
    summary.truth_files = truth.files
    # complete up to the end of the last quote's review window: every verdict of this world is in
    window = world.p.label_review_window_days
    last_day = start_date + dt.timedelta(days=days)
    labels.write_manifest(dt.datetime(last_day.year, last_day.month, last_day.day, tzinfo=dt.timezone.utc)
                          + dt.timedelta(days=window), window)
    summary.labels = {**labels.counts, "files": labels.files}

    flat = np.flatnonzero(seen)
    codes = (flat // world.n_dep_days) * _FLIGHT_CODE + flat % world.n_dep_days
    outcomes = flight_outcomes(world, codes)
    summary.outcomes_file = out / catalog.key("outcomes") / "part-00000.parquet"
    pq.write_table(outcomes, summary.outcomes_file, compression="zstd")
    summary.flights = outcomes.num_rows
    classes = outcomes.column("demand_class").to_pylist()
    summary.demand_class_counts = {c: classes.count(c) for c in contract.DEMAND_CLASSES}
    total_n = sq_n.sum()
    summary.noise_floor_usd = float(np.sqrt(sq_err.sum() / total_n)) if total_n else 0.0
    summary.noise_floor_by_cabin_usd = {
        c: round(float(np.sqrt(sq_err[i] / sq_n[i])), 4) for i, c in enumerate(contract.CABINS) if sq_n[i]
    }
    summary.world_json = out / catalog.key("world")
    summary.world_json.write_text(json.dumps(_world_doc(world, summary), indent=2, sort_keys=False) + "\n")
    summary.seconds = time.perf_counter() - t0
    return summary


def clear_world_folders(out: Path) -> list[Path]:
    """Remove the generator's own folders under ``out`` (``WORLD_FOLDERS``) and return those removed."""
    removed = []
    for sub in WORLD_FOLDERS:
        path = out / sub
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(path)
    return removed


def _write_raw(path: Path, lines: bytes) -> int:
    """One raw part: gzip JSON lines, header without a timestamp (same bytes for the same seed)."""
    data = gzip.compress(lines, compresslevel=GZIP_LEVEL, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def _world_doc(world: World, s: WorldSummary) -> dict:
    """truth/world.json: everything needed to judge a model against the world (no timings: deterministic)."""
    net = world.net
    flights = max(s.flights, 1)
    doc = {
        "generator_version": GENERATOR_VERSION,
        "seed": world.seed,
        "options": {
            "start_date": world.start_date.isoformat(),
            "days": world.days,
            "searches_per_day": world.searches_per_day,
            "anomaly_rate": world.anomaly_rate,
            "chunk_size": world.chunk_size,
        },
        "counts": {
            "events": s.events,
            "offers": s.offers,
            "flights": s.flights,
            "anomalies": s.anomalies,
            "anomaly_share": round(s.anomalies / max(s.offers, 1), 6),
            "offers_per_search": round(s.offers / max(s.events, 1), 3),
            "raw_files": s.raw_files,
        },
        "incident_labels": {
            **s.labels,
            "coverage_of_anomalies": round(s.labels.get("confirmed_true_anomalies", 0) / max(s.anomalies, 1), 4),
            "note": "labels/incidents: what production knows (partial, delayed, noisy); see parameters label_*",
        },
        "noise_floor_rmse_usd": round(s.noise_floor_usd, 4),
        "noise_floor": {
            "price_rmse_usd": round(s.noise_floor_usd, 4),
            "price_rmse_usd_by_cabin": s.noise_floor_by_cabin_usd,
            "definition": "RMSE in USD between observed (quoted, converted with contract.to_usd) and noise-free"
            " per-passenger prices over non-anomalous offers: the best RMSE a price model can reach",
        },
        "demand_classes": {
            "counts": s.demand_class_counts,
            "shares": {k: round(v / flights, 4) for k, v in s.demand_class_counts.items()},
            "thresholds": {"low_below": contract.DEMAND_LOW_BELOW, "high_above": contract.DEMAND_HIGH_ABOVE},
        },
        "network": {
            **net.summary(),
            "airport_codes": net.iata,
            "airlines": [
                {"code": c, "kind": k, "price_level": float(p), "load_factor_effect": float(lf)}
                for c, k, p, lf in zip(net.airline_code, net.airline_kind, net.airline_price, net.airline_lf)
            ],
            "routes": [
                {"route": code, "distance_km": round(float(km), 1), "carriers": int(c), "load_factor_offset": round(float(lf), 4)}
                for code, km, c, lf in zip(net.route_code, net.route_km, net.route_carriers, net.route_lf)
            ],
        },
        "effects": EFFECTS_DOC,
        "parameters": world.p.to_dict(),
    }
    if world.regimes:  # only then: a world without drift keeps its historical bytes
        from seed_infra.world.drift import describe

        doc["regime_changes"] = describe(world.regimes, world)
    return doc


def _progress(enabled: bool):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("searches"),
        TimeRemainingColumn(), transient=False,
    )

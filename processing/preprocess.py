"""The Preprocess step: curated offers + flight outcomes -> time-split train/validation/test.

Run as ``python -m processing.entry --curated-uri URI --start-date D
--end-date D [--validation-days N --test-days N --train-sample-rows N ...]`` (docs/contracts.md).
Splits are by search date, never random: a model is judged on days after the ones it learned
from, as in production. MergeSplits (``python -m processing.merge_splits``) writes the split folders: each holds ``offers.parquet`` (curated rows, contract types)
and ``flights.parquet`` (the demand table); ``split_summary.json`` beside them says what went where.

Memory is bounded by design, not by the window: the window is streamed one ``dt`` day at a time,
in record batches (pyarrow dataset batches for a folder, awswrangler chunks for ``s3://``). Each
batch feeds the split's offer sample (``processing.sampling``: at most ``<split>_sample_rows``
rows, 0 = every row) and the day's demand aggregation (only the columns it needs); then the day
is dropped. What stays is the samples and one row per (flight, search day).
"""

from __future__ import annotations

import datetime as dt
import json
import argparse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from core import contract, sm_paths
from core.features import (DEMAND_SOURCE_COLUMNS, demand_snapshots, demand_table_from_snapshots, route_date_days,
                           search_date_of)
from core.pipeline_contract import (DEFAULT_TEST_DAYS, DEFAULT_VALIDATION_DAYS, MIN_TRAIN_DAYS,  # noqa: F401 - re-exported
                                    MIN_WINDOW_DAYS, SPLITS)
from processing.sampling import DEFAULT_SAMPLE_FLIGHTS, DEFAULT_SAMPLE_ROWS, BottomK, KeySample


def _parse_date(value: str | None) -> str | None:
    """'' or None -> None (no bound); else a validated 'YYYY-MM-DD'."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError as exc:
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}") from exc


def _in_range(day: str, start: str | None, end: str | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def _wrangler():
    """awswrangler, pointed at ``AWS_ENDPOINT_URL_S3`` when set (a moto server, or the local
    executor's S3 lake); unset, it is AWS's own S3."""
    import os

    import awswrangler as wr

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3")
    if endpoint:
        wr.config.s3_endpoint_url = endpoint
    return wr


def read_outcomes(uri: str) -> pd.DataFrame:
    """Flight outcomes (``FLIGHT_OUTCOME_SCHEMA``) from an ``s3://`` prefix, a local folder or a file."""
    if uri.startswith("s3://"):
        df = _wrangler().s3.read_parquet(uri.rstrip("/") + "/", dataset=True)
    else:
        path = Path(uri)
        if not path.exists():
            raise FileNotFoundError(f"flight outcomes not found: {uri}")
        df = ds.dataset(path, format="parquet").to_table().to_pandas()
    missing = [c for c in ("flight_key", contract.DEMAND_TARGET) if c not in df.columns]
    if missing:
        raise ValueError(f"flight outcomes lack columns {missing}")
    return df


def split_dates(dates: pd.Series, validation_days: int, test_days: int) -> dict[str, tuple[dt.date, dt.date]]:
    """Calendar boundaries: the last ``test_days`` days are test, the ``validation_days`` before validation."""
    if validation_days < 1 or test_days < 1:
        raise ValueError("validation_days and test_days must be >= 1")
    d = pd.to_datetime(dates)
    first, last = d.min().date(), d.max().date()
    span = (last - first).days + 1
    if span < validation_days + test_days + MIN_TRAIN_DAYS:
        raise ValueError(
            f"{span} days of data cannot hold {validation_days} validation + {test_days} test days and the minimum "
            f"{MIN_TRAIN_DAYS} training days: the window must span at least {validation_days + test_days + MIN_TRAIN_DAYS} "
            "days (training on fewer would pass a gate by luck; docs/models.md)"
        )
    test_start = last - dt.timedelta(days=test_days - 1)
    val_start = test_start - dt.timedelta(days=validation_days)
    return {
        "train": (first, val_start - dt.timedelta(days=1)),
        "validation": (val_start, test_start - dt.timedelta(days=1)),
        "test": (test_start, last),
    }


def assign_split(dates: pd.Series, bounds: dict[str, tuple[dt.date, dt.date]]) -> pd.Series:
    """Split name per row from its search date and the ``split_dates`` boundaries."""
    d = pd.to_datetime(dates).dt.date
    out = pd.Series(pd.NA, index=dates.index, dtype="object")
    for name, (lo, hi) in bounds.items():
        out[(d >= lo) & (d <= hi)] = name
    if out.isna().any():
        raise ValueError("some rows fall outside every split")
    return out


def to_contract_table(offers: pd.DataFrame) -> pa.Table:
    """Curated rows as an Arrow table with exactly ``CURATED_OFFER_SCHEMA`` (column order and types)."""
    df = offers[contract.CURATED_COLUMNS].copy()
    df[contract.PARTITION_COLUMN] = df[contract.PARTITION_COLUMN].astype(str)
    for name in contract.CURATED_OFFER_SCHEMA.names:
        if isinstance(df[name].dtype, pd.CategoricalDtype):
            df[name] = df[name].astype(object)
    return pa.Table.from_pandas(df, schema=contract.CURATED_OFFER_SCHEMA, preserve_index=False, safe=False)


DEFAULT_SAMPLE_SEED = 42
DEFAULT_BATCH_ROWS = 65_536


def list_days(uri: str, start: str | None = None, end: str | None = None) -> list[str]:
    """The ``dt`` partitions under ``uri`` within [start, end], sorted (partition listing only, no data read)."""
    start, end = _parse_date(start), _parse_date(end)
    if start and end and start > end:
        raise ValueError(f"start date {start} is after end date {end}")
    part = contract.PARTITION_COLUMN
    if uri.startswith("s3://"):
        wr = _wrangler()
        names = [d.rstrip("/").rsplit("/", 1)[-1] for d in wr.s3.list_directories(uri.rstrip("/") + "/")]
    else:
        path = Path(uri)
        if not path.exists():
            raise FileNotFoundError(f"curated offers not found: {uri}")
        names = [p.name for p in path.iterdir() if p.is_dir()]
    days = sorted(n.split("=", 1)[1] for n in names if n.startswith(f"{part}="))
    days = [d for d in days if _in_range(d, start, end)]
    if not days:
        raise ValueError(f"no curated offers in {uri} for dt in [{start or '-'}, {end or '-'}]")
    return days


def iter_day(uri: str, day: str, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.Table]:
    """One day's curated offers as Arrow tables of at most ``batch_rows`` rows, contract schema, ``dt`` set."""
    part = contract.PARTITION_COLUMN
    if uri.startswith("s3://"):
        wr = _wrangler()
        for chunk in wr.s3.read_parquet(f"{uri.rstrip('/')}/{part}={day}/", dataset=True, chunked=batch_rows):
            chunk = chunk.copy()
            chunk[part] = day
            for c in contract.CURATED_COLUMNS:
                if c not in chunk.columns:  # a vanished column reads as all-null, as the local reader does
                    chunk[c] = None
            yield to_contract_table(chunk)
        return
    # The day's folder itself is opened: dt is known (it reads as null from the files and is set here).
    dataset = ds.dataset(Path(uri) / f"{part}={day}", format="parquet", schema=contract.CURATED_OFFER_SCHEMA)
    for batch in dataset.to_batches(batch_size=batch_rows):
        table = pa.Table.from_batches([batch]).set_column(
            len(contract.CURATED_COLUMNS) - 1, part, pa.array([day] * batch.num_rows, pa.string())
        )
        yield table


def _table_to_frame(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    df[contract.PARTITION_COLUMN] = df[contract.PARTITION_COLUMN].astype(str)
    return df


@dataclass
class Shard:
    """What one pass over some days leaves: per-split offer samples, the sampled flights' snapshots, counts."""

    samples: dict[str, pa.Table | None]
    offers_seen: dict[str, int]
    snapshots: pd.DataFrame | None
    day_rows: dict[str, int]
    route_dates: pd.DataFrame | None = None  # route_date_days of every offer (flight sampling keeps it exact)


def _sample_sizes(sample_rows: dict[str, int] | None, sample_flights: int) -> dict[str, int]:
    sizes = {s: int((sample_rows or {}).get(s) or 0) for s in SPLITS}
    if any(v < 0 for v in sizes.values()):
        raise ValueError(f"sample sizes must be >= 0 (0 = every row): {sizes}")
    if sample_flights < 0:
        raise ValueError(f"sample_flights must be >= 0 (0 = every flight): {sample_flights}")
    return sizes


def map_days(
    days: list[str],
    day_split: dict[str, str],
    batches: Callable[[str], Iterable[pa.Table]],
    sample_rows: dict[str, int] | None = None,
    seed: int = DEFAULT_SAMPLE_SEED,
    sample_flights: int = 0,
) -> Shard:
    """One streaming pass over ``days`` (a shard of the window, or all of it).

    ``batches(day)`` yields that day's offers (contract schema). Each batch feeds its split's
    offer sample and, filtered to the flights that may be sampled, the day's demand snapshots.
    Memory: the samples and the sampled flights' snapshots, plus one day of sampled flights' rows.
    """
    sizes = _sample_sizes(sample_rows, sample_flights)
    samplers = {s: BottomK(sizes[s], seed) for s in SPLITS}
    flight_sample = KeySample(sample_flights, seed, key="flight_key")
    day_rows: dict[str, int] = {}
    route_days = []
    demand_columns = None
    for day in days:
        split = day_split[day]
        parts, rd_parts = [], []
        rows = 0
        for table in batches(day):
            rows += table.num_rows
            samplers[split].add(table)
            if demand_columns is None:
                demand_columns = [c for c in DEMAND_SOURCE_COLUMNS if c in table.column_names]
            if sample_flights > 0:  # the route-date volume series from every offer, not only the sampled flights'
                rd_parts.append(table.group_by(["route", "departure_date"])
                                .aggregate([("route_date_searches_day", "max")])
                                .rename_columns(["route", "departure_date", "route_date_searches_day"]))
            parts.append(flight_sample.keep(table.select(demand_columns)))
        day_rows[day] = rows
        if rows:
            flight_sample.add(demand_snapshots(_table_to_frame(pa.concat_tables(parts))))
        if rd_parts:
            rd = pa.concat_tables(rd_parts).to_pandas()
            route_days.append(route_date_days(rd.assign(search_date=pd.Timestamp(day))))
        del parts, rd_parts
    route_dates = pd.concat(route_days, ignore_index=True) if route_days else None
    return Shard({s: samplers[s].result() for s in SPLITS}, {s: samplers[s].seen for s in SPLITS},
                 flight_sample.result(), day_rows, route_dates)


def reduce_shards(
    shards: list[Shard],
    bounds: dict[str, tuple[dt.date, dt.date]],
    outcomes: pd.DataFrame,
    sample_rows: dict[str, int] | None = None,
    seed: int = DEFAULT_SAMPLE_SEED,
    sample_flights: int = 0,
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict]:
    """Merge shards into the splits: ``{split: {"offers", "flights"}}`` and a summary.

    Exact whatever the sharding: the union of bottom-k samples cut to ``k`` is the bottom-k of
    the whole, a flight of the global sample is in every shard's sample, and each snapshot lies
    within one day (so within one shard). The cross-day demand features are computed here.
    """
    sizes = _sample_sizes(sample_rows, sample_flights)
    snaps = [s.snapshots for s in shards if s.snapshots is not None and len(s.snapshots)]
    if not snaps:
        days = sorted(d for s in shards for d in s.day_rows)
        raise ValueError(f"no curated offers for dt in [{days[0] if days else '-'}, {days[-1] if days else '-'}]")
    flight_sample = KeySample(sample_flights, seed, key="flight_key")
    for frame in snaps:
        flight_sample.keep(pa.table({"flight_key": pa.array(pd.unique(frame["flight_key"]), pa.string())}))
    for frame in snaps:
        flight_sample.add(frame)
    rds = [s.route_dates for s in shards if s.route_dates is not None]
    route_dates = route_date_days(pd.concat(rds, ignore_index=True)) if sample_flights > 0 and rds else None
    flights, demand_stats = demand_table_from_snapshots(flight_sample.result(), outcomes, route_dates)
    flight_split = assign_split(flights["search_date"], bounds)

    out: dict[str, dict[str, pd.DataFrame]] = {}
    summary: dict = {"demand_table": demand_stats, "splits": {}, "shards": len(shards),
                     "sampling": {"method": "bottom-k on a seeded hash of offer_id per split (processing.sampling)",
                                  "seed": int(seed), "sample_rows": sizes, "sample_flights": int(sample_flights),
                                  "flights_method": "every snapshot of the sample_flights flights with the smallest "
                                                    "seeded hash of flight_key (0 = all)"}}
    for name in SPLITS:
        sampler = BottomK(sizes[name], seed)
        for shard in shards:
            if shard.samples.get(name) is not None:
                sampler.add(shard.samples[name])
        seen = sum(shard.offers_seen.get(name, 0) for shard in shards)
        sample = sampler.result()
        if sample is None:
            o = pd.DataFrame({c: pd.Series(dtype=object) for c in contract.CURATED_COLUMNS})
        else:
            o = _table_to_frame(sample.sort_by([(contract.PARTITION_COLUMN, "ascending")]))
        f = flights.loc[flight_split == name].reset_index(drop=True)
        out[name] = {"offers": o, "flights": f}
        lo, hi = bounds[name]
        summary["splits"][name] = {
            "start_date": lo.isoformat(),
            "end_date": hi.isoformat(),
            "offers": int(len(o)),
            "offers_available": int(seen),
            "sampled": bool(len(o) < seen),
            "flights": int(len(f)),
            "demand_classes": {k: int(v) for k, v in f[contract.DEMAND_TARGET].value_counts().items()},
        }
    summary["day_rows"] = dict(sorted((d, n) for s in shards for d, n in s.day_rows.items()))
    return out, summary


def day_splits(days: list[str], validation_days: int, test_days: int) -> tuple[dict[str, tuple[dt.date, dt.date]], dict[str, str]]:
    """The split boundaries of a window of ``days`` and the split of each day."""
    if not days:
        raise ValueError("no days to preprocess")
    dates = pd.Series(pd.to_datetime(days))
    bounds = split_dates(dates, validation_days, test_days)
    return bounds, dict(zip(days, assign_split(dates, bounds)))


def preprocess_stream(
    days: list[str],
    batches: Callable[[str], Iterable[pa.Table]],
    outcomes: pd.DataFrame,
    validation_days: int = DEFAULT_VALIDATION_DAYS,
    test_days: int = DEFAULT_TEST_DAYS,
    sample_rows: dict[str, int] | None = None,
    seed: int = DEFAULT_SAMPLE_SEED,
    sample_flights: int = 0,
    shards: int = 1,
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict]:
    """Split a stream of days into train/validation/test: :func:`map_days` over ``shards`` interleaved
    shards of the days (as that many processing instances would), then :func:`reduce_shards`.

    Offers are sampled per split (``sample_rows[split]`` rows, 0 or absent = all); the demand
    table keeps the whole history of ``sample_flights`` flights (0 = every flight).
    """
    bounds, day_split = day_splits(days, validation_days, test_days)
    parts = [map_days(days[i::shards], day_split, batches, sample_rows, seed, sample_flights) for i in range(shards)]
    return reduce_shards(parts, bounds, outcomes, sample_rows, seed, sample_flights)


def preprocess(
    offers: pd.DataFrame,
    outcomes: pd.DataFrame,
    validation_days: int = DEFAULT_VALIDATION_DAYS,
    test_days: int = DEFAULT_TEST_DAYS,
    sample_rows: dict[str, int] | None = None,
    seed: int = DEFAULT_SAMPLE_SEED,
    sample_flights: int = 0,
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict]:
    """:func:`preprocess_stream` over an in-memory DataFrame of offers (one batch per day); no sampling by default."""
    df = offers.copy()
    df[contract.PARTITION_COLUMN] = search_date_of(df).dt.strftime("%Y-%m-%d").to_numpy()
    by_day = {str(d): g for d, g in df.groupby(contract.PARTITION_COLUMN, sort=True)}
    return preprocess_stream(sorted(by_day), lambda d: [to_contract_table(by_day[d])], outcomes,
                             validation_days, test_days, sample_rows, seed, sample_flights)


def write_splits(splits: dict[str, dict[str, pd.DataFrame]], summary: dict, out_root: Path) -> None:
    """Write ``<out_root>/<split>/{offers,flights}.parquet`` and ``<out_root>/split_summary.json``."""
    out_root = Path(out_root)
    for name, parts in splits.items():
        d = out_root / name
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_contract_table(parts["offers"]), d / "offers.parquet")
        parts["flights"].to_parquet(d / "flights.parquet", index=False)
    text = json.dumps(summary, indent=2, default=str)
    (out_root / "split_summary.json").write_text(text)
    for name in splits:  # also inside each split: a SageMaker output uploads only its own folder
        (out_root / name / "split_summary.json").write_text(text)


SHARDS_DIR = "shards"


def this_host() -> tuple[int, int, str]:
    """(index, count, name) of this processing instance, from SageMaker's ``/opt/ml/config/resourceconfig.json``.

    A single instance (or no such file, as in a plain local run) is ``(0, 1, "algo-1")``.
    """
    path = sm_paths.opt_ml("config", "resourceconfig.json")
    if not path.is_file():
        return 0, 1, "algo-1"
    cfg = json.loads(path.read_text())
    hosts = sorted(cfg.get("hosts") or [cfg.get("current_host", "algo-1")])
    current = cfg.get("current_host", hosts[0])
    if current not in hosts:
        raise ValueError(f"{path}: current_host {current!r} is not among hosts {hosts}")
    return hosts.index(current), len(hosts), current


def write_shard(shard: Shard, meta: dict, out_dir: Path) -> None:
    """``<out_dir>/{train,validation,test}_offers.parquet``, ``snapshots.parquet`` and ``shard.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, table in shard.samples.items():
        if table is not None:
            pq.write_table(table, out_dir / f"{split}_offers.parquet")
    if shard.snapshots is not None:
        shard.snapshots.to_parquet(out_dir / "snapshots.parquet", index=False)
    if shard.route_dates is not None:
        shard.route_dates.to_parquet(out_dir / "route_dates.parquet", index=False)
    (out_dir / "shard.json").write_text(json.dumps({**meta, "offers_seen": shard.offers_seen, "day_rows": shard.day_rows},
                                                   indent=2, default=str))


def read_shards(root: Path) -> tuple[list[Shard], dict]:
    """Every shard written by :func:`write_shard` under ``root`` (any depth); returns them and the first one's meta."""
    metas = sorted(Path(root).rglob("shard.json"))
    if not metas:
        raise FileNotFoundError(f"no Preprocess shards (shard.json) under {root}")
    shards, first = [], None
    for m in metas:
        meta = json.loads(m.read_text())
        first = first or meta
        if meta.get("days") != first.get("days") or meta.get("hosts") != first.get("hosts"):
            raise ValueError(f"shards of different runs under {root}: {m.parent} disagrees on its days or hosts")
        samples = {s: pq.read_table(m.parent / f"{s}_offers.parquet") if (m.parent / f"{s}_offers.parquet").exists() else None
                   for s in SPLITS}
        snaps = pd.read_parquet(m.parent / "snapshots.parquet") if (m.parent / "snapshots.parquet").exists() else None
        rd = pd.read_parquet(m.parent / "route_dates.parquet") if (m.parent / "route_dates.parquet").exists() else None
        shards.append(Shard(samples, meta["offers_seen"], snaps, meta["day_rows"], rd))
    if len(shards) != first.get("hosts"):
        raise ValueError(f"{len(shards)} shard(s) under {root}, but Preprocess ran on {first.get('hosts')} instance(s)")
    return shards, first


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS["train"], help="offers kept for train (0 = all)")
    p.add_argument("--validation-sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS["validation"],
                   help="offers kept for validation (0 = all)")
    p.add_argument("--test-sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS["test"], help="offers kept for test (0 = all)")
    p.add_argument("--sample-flights", type=int, default=DEFAULT_SAMPLE_FLIGHTS,
                   help="flights whose whole history makes the demand table (0 = all)")
    p.add_argument("--sample-seed", type=int, default=DEFAULT_SAMPLE_SEED, help="seed of the sampling hash")


def check_sampling_arguments(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    for flag in ("train_sample_rows", "validation_sample_rows", "test_sample_rows", "sample_flights"):
        if getattr(a, flag) < 0:
            p.error(f"--{flag.replace('_', '-')} must be >= 0 (0 = every row)")


def sampling_sizes(a: argparse.Namespace) -> dict[str, int]:
    return {"train": a.train_sample_rows, "validation": a.validation_sample_rows, "test": a.test_sample_rows}


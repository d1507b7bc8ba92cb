"""The Preprocess step: curated offers + flight outcomes -> time-split train/validation/test.

Run as ``python -m processing.preprocess --curated-uri URI --outcomes-uri URI --start-date D
--end-date D [--validation-days N --test-days N --train-sample-rows N ...]`` (docs/contracts.md).
Splits are by search date, never random: a model is judged on days after the ones it learned
from, as in production. Each split folder holds ``offers.parquet`` (curated rows, contract types)
and ``flights.parquet`` (the demand table); ``split_summary.json`` beside them says what went where.

Memory is bounded by design, not by the window: the window is streamed one ``dt`` day at a time,
in record batches (pyarrow dataset batches for a folder, awswrangler chunks for ``s3://``). Each
batch feeds the split's offer sample (``processing.sampling``: at most ``<split>_sample_rows``
rows, 0 = every row) and the day's demand aggregation (only the columns it needs); then the day
is dropped. What stays is the samples and one row per (flight, search day).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from processing import contract, sm_paths
from processing.features import DEMAND_SOURCE_COLUMNS, demand_snapshots, demand_table_from_snapshots, search_date_of
from processing.sampling import DEFAULT_SAMPLE_ROWS, BottomK

SPLITS = ("train", "validation", "test")
DEFAULT_VALIDATION_DAYS = 7
DEFAULT_TEST_DAYS = 7


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


def read_outcomes(uri: str) -> pd.DataFrame:
    """Flight outcomes (``FLIGHT_OUTCOME_SCHEMA``) from an ``s3://`` prefix, a local folder or a file."""
    if uri.startswith("s3://"):
        import awswrangler as wr

        df = wr.s3.read_parquet(uri.rstrip("/") + "/", dataset=True)
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
    if span < validation_days + test_days + 1:
        raise ValueError(
            f"{span} days of data cannot hold {validation_days} validation + {test_days} test days and a train split"
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
        import awswrangler as wr

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
        import awswrangler as wr

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


def preprocess_stream(
    days: list[str],
    batches: Callable[[str], Iterable[pa.Table]],
    outcomes: pd.DataFrame,
    validation_days: int = DEFAULT_VALIDATION_DAYS,
    test_days: int = DEFAULT_TEST_DAYS,
    sample_rows: dict[str, int] | None = None,
    seed: int = DEFAULT_SAMPLE_SEED,
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict]:
    """Split a stream of days into train/validation/test; return ``{split: {"offers", "flights"}}`` and a summary.

    ``batches(day)`` yields that day's offers (contract schema). Offers are sampled per split
    (``sample_rows[split]`` rows, 0 or absent = all); the demand table is built from every offer.
    Memory: one day's demand columns, the samples, and the per-(flight, day) snapshots.
    """
    if not days:
        raise ValueError("no days to preprocess")
    bounds = split_dates(pd.Series(pd.to_datetime(days)), validation_days, test_days)
    sample_rows = {s: int((sample_rows or {}).get(s) or 0) for s in SPLITS}
    if any(v < 0 for v in sample_rows.values()):
        raise ValueError(f"sample sizes must be >= 0 (0 = every row): {sample_rows}")
    samplers = {s: BottomK(sample_rows[s], seed) for s in SPLITS}
    day_split = dict(zip(days, assign_split(pd.Series(pd.to_datetime(days)), bounds)))
    day_rows: dict[str, int] = {}
    snapshots = []
    demand_columns = None
    for day in days:
        split = day_split[day]
        parts = []
        rows = 0
        for table in batches(day):
            rows += table.num_rows
            samplers[split].add(table)
            if demand_columns is None:
                demand_columns = [c for c in DEMAND_SOURCE_COLUMNS if c in table.column_names]
            parts.append(table.select(demand_columns))
        day_rows[day] = rows
        if rows:
            snapshots.append(demand_snapshots(_table_to_frame(pa.concat_tables(parts))))
        del parts
    if not snapshots:
        raise ValueError(f"no curated offers for dt in [{days[0]}, {days[-1]}]")
    flights, demand_stats = demand_table_from_snapshots(pd.concat(snapshots, ignore_index=True), outcomes)
    del snapshots
    flight_split = assign_split(flights["search_date"], bounds)

    out: dict[str, dict[str, pd.DataFrame]] = {}
    summary: dict = {"demand_table": demand_stats, "splits": {},
                     "sampling": {"method": "bottom-k on a seeded hash of offer_id per split (processing.sampling)",
                                  "seed": int(seed), "sample_rows": sample_rows}}
    for name in SPLITS:
        sample = samplers[name].result()
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
            "offers_available": int(samplers[name].seen),
            "sampled": bool(len(o) < samplers[name].seen),
            "flights": int(len(f)),
            "demand_classes": {k: int(v) for k, v in f[contract.DEMAND_TARGET].value_counts().items()},
        }
    summary["day_rows"] = day_rows
    return out, summary


def preprocess(
    offers: pd.DataFrame,
    outcomes: pd.DataFrame,
    validation_days: int = DEFAULT_VALIDATION_DAYS,
    test_days: int = DEFAULT_TEST_DAYS,
    sample_rows: dict[str, int] | None = None,
    seed: int = DEFAULT_SAMPLE_SEED,
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict]:
    """:func:`preprocess_stream` over an in-memory DataFrame of offers (one batch per day); no sampling by default."""
    df = offers.copy()
    df[contract.PARTITION_COLUMN] = search_date_of(df).dt.strftime("%Y-%m-%d").to_numpy()
    by_day = {str(d): g for d, g in df.groupby(contract.PARTITION_COLUMN, sort=True)}
    return preprocess_stream(sorted(by_day), lambda d: [to_contract_table(by_day[d])], outcomes,
                             validation_days, test_days, sample_rows, seed)


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="processing.preprocess", description=__doc__.splitlines()[0])
    p.add_argument("--curated-uri", required=True)
    p.add_argument("--outcomes-uri", required=True)
    p.add_argument("--start-date", default="")
    p.add_argument("--end-date", default="")
    p.add_argument("--validation-days", type=int, default=DEFAULT_VALIDATION_DAYS)
    p.add_argument("--test-days", type=int, default=DEFAULT_TEST_DAYS)
    p.add_argument("--train-sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS["train"], help="offers kept for train (0 = all)")
    p.add_argument("--validation-sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS["validation"],
                   help="offers kept for validation (0 = all)")
    p.add_argument("--test-sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS["test"], help="offers kept for test (0 = all)")
    p.add_argument("--sample-seed", type=int, default=DEFAULT_SAMPLE_SEED, help="seed of the sampling hash")
    p.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS, help="rows per streamed batch")
    p.add_argument("--output-dir", default=None, help="default: /opt/ml/processing/output (SM_OPT_ML aware)")
    a = p.parse_args(argv)
    for flag in ("train_sample_rows", "validation_sample_rows", "test_sample_rows"):
        if getattr(a, flag) < 0:
            p.error(f"--{flag.replace('_', '-')} must be >= 0 (0 = every row)")
    if a.batch_rows < 1:
        p.error("--batch-rows must be >= 1")

    days = list_days(a.curated_uri, a.start_date, a.end_date)
    outcomes = read_outcomes(a.outcomes_uri)
    sizes = {"train": a.train_sample_rows, "validation": a.validation_sample_rows, "test": a.test_sample_rows}
    splits, summary = preprocess_stream(days, lambda d: iter_day(a.curated_uri, d, a.batch_rows), outcomes,
                                        a.validation_days, a.test_days, sizes, a.sample_seed)
    summary["inputs"] = {"curated_uri": a.curated_uri, "outcomes_uri": a.outcomes_uri,
                         "start_date": a.start_date, "end_date": a.end_date}
    out_root = Path(a.output_dir) if a.output_dir else sm_paths.processing_dir("output")
    write_splits(splits, summary, out_root)
    for name, s in summary["splits"].items():
        print(f"{name:>10}: {s['start_date']} .. {s['end_date']}  offers={s['offers']:,} of {s['offers_available']:,}  flights={s['flights']:,}  {s['demand_classes']}")
    ds_ = summary["demand_table"]
    print(f"demand table: {ds_['snapshots']:,} snapshots, {ds_.get('dropped_without_outcome', 0):,} dropped "
          f"without an outcome ({ds_.get('dropped_flights_without_outcome', 0):,} flights); written to {out_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

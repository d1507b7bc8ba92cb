"""The Preprocess step: curated offers + flight outcomes -> time-split train/validation/test.

Run as ``python -m processing.entry --curated-uri URI --outcomes-uri URI --start-date D
--end-date D [--validation-days N --test-days N]`` (docs/contracts.md). Splits are by search
date, never random: a model is judged on days after the ones it learned from, as in production.
Each split folder holds ``offers.parquet`` (curated rows, contract types) and ``flights.parquet``
(the demand table); ``split_summary.json`` beside them says what went where.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from core import contract
from core.features import build_demand_table, search_date_of
from core.pipeline_contract import SPLITS

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


def _wrangler():
    """awswrangler, pointed at ``AWS_ENDPOINT_URL_S3`` when set (a moto server, or the local
    executor's S3 lake); unset, it is AWS's own S3."""
    import os

    import awswrangler as wr

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3")
    if endpoint:
        wr.config.s3_endpoint_url = endpoint
    return wr


def read_curated(uri: str, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Curated offers with search date ``dt`` in [start, end] (either bound may be empty).

    ``s3://`` goes through awswrangler's partition filter; a local folder through pyarrow.dataset
    with the same hive ``dt`` filter, so only the wanted partitions are opened either way.
    """
    start, end = _parse_date(start), _parse_date(end)
    if start and end and start > end:
        raise ValueError(f"start date {start} is after end date {end}")
    part = contract.PARTITION_COLUMN
    if uri.startswith("s3://"):
        wr = _wrangler()
        df = wr.s3.read_parquet(
            uri.rstrip("/") + "/",
            dataset=True,
            partition_filter=lambda p: _in_range(p[part], start, end),
        )
    else:
        path = Path(uri)
        if not path.exists():
            raise FileNotFoundError(f"curated offers not found: {uri}")
        partitioning = ds.partitioning(pa.schema([(part, pa.string())]), flavor="hive")
        dataset = ds.dataset(path, format="parquet", partitioning=partitioning, schema=contract.CURATED_OFFER_SCHEMA)
        flt = None
        if start:
            flt = ds.field(part) >= start
        if end:
            flt = (ds.field(part) <= end) if flt is None else flt & (ds.field(part) <= end)
        df = dataset.to_table(filter=flt).to_pandas()
    if df.empty:
        raise ValueError(f"no curated offers in {uri} for dt in [{start or '-'}, {end or '-'}]")
    df[part] = df[part].astype(str)
    missing = [c for c in contract.CURATED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"curated offers lack contract columns: {missing}")
    return df[contract.CURATED_COLUMNS]


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


def preprocess(
    offers: pd.DataFrame,
    outcomes: pd.DataFrame,
    validation_days: int = DEFAULT_VALIDATION_DAYS,
    test_days: int = DEFAULT_TEST_DAYS,
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict]:
    """Split offers and the demand table by search date; return ``{split: {"offers", "flights"}}`` and a summary."""
    search_date = search_date_of(offers)
    bounds = split_dates(search_date, validation_days, test_days)
    offer_split = assign_split(search_date, bounds)
    flights, demand_stats = build_demand_table(offers, outcomes)
    flight_split = assign_split(flights["search_date"], bounds)

    out: dict[str, dict[str, pd.DataFrame]] = {}
    summary: dict = {"demand_table": demand_stats, "splits": {}}
    for name in SPLITS:
        o = offers.loc[offer_split == name].reset_index(drop=True)
        f = flights.loc[flight_split == name].reset_index(drop=True)
        out[name] = {"offers": o, "flights": f}
        lo, hi = bounds[name]
        summary["splits"][name] = {
            "start_date": lo.isoformat(),
            "end_date": hi.isoformat(),
            "offers": int(len(o)),
            "flights": int(len(f)),
            "demand_classes": {k: int(v) for k, v in f[contract.DEMAND_TARGET].value_counts().items()},
        }
    return out, summary


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

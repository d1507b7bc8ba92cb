"""Realistic upstream breakages, to prove the data-quality gate catches them.

Each kind mimics something that really happens between a front end and a lake, and is
caught by a named expectation (see tests/dq/):

- ``missing_column``: an upstream field renamed, the column vanishes -> ``offers.schema.columns``
- ``price_units``: a partner starts sending cents (every price x100) -> ``offers.price_usd.plausible_<cabin>``
- ``null_burst``: a bad deploy drops the price on a share of a day's offers -> ``offers.price_usd.not_null``
- ``duplicated_day``: yesterday's delivery replayed under today's date -> ``offers.partitions.no_duplicated_day``
- ``stale_window``: the feed stalled, the newest days never arrived -> ``offers.window.freshness``
- ``shifted_distribution``: business/first fares halved (a currency or fare-filing bug) ->
  ``offers.price_usd.business_vs_economy``; on a flights table, demand labels shifted towards 'high'
  -> ``<split>.flights.demand_class.share_*``

``break_offers``/``break_flights`` work on DataFrames; ``break_curated`` rewrites a curated
offers folder in place (what ``airfare generate/etl --break KIND`` would call).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from core import catalog, contract

KINDS = ("missing_column", "price_units", "null_burst", "duplicated_day", "stale_window", "shifted_distribution")
PRICE_COLUMNS = ["price_amount", "price_usd", "competitor_min_price_usd", "competitor_median_price_usd", "route_cabin_median_price_usd"]
MISSING_COLUMN = "days_to_departure"
NULL_BURST_COLUMNS = ["price_usd", "price_amount"]
STALE_DAYS = 3  # days the feed has been stalled: more than DQConfig.max_staleness_days


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown breakage {kind!r}; choose one of {', '.join(KINDS)}")


def _days(df: pd.DataFrame) -> list[str]:
    return sorted(df[contract.PARTITION_COLUMN].astype(str).unique())


def break_offers(df: pd.DataFrame, kind: str, *, seed: int = 0) -> pd.DataFrame:
    """A broken copy of curated offers (contract columns, ``dt`` included)."""
    _check_kind(kind)
    rng = np.random.default_rng(seed)
    out = df.copy()
    part = contract.PARTITION_COLUMN
    if kind == "missing_column":
        return out.drop(columns=[MISSING_COLUMN])
    if kind == "price_units":
        for c in PRICE_COLUMNS:
            if c in out:
                out[c] = out[c] * 100.0
        return out
    if kind == "null_burst":
        newest = out[part].astype(str) == _days(out)[-1]
        hit = newest & (rng.random(len(out)) < 0.4)
        for c in NULL_BURST_COLUMNS:
            out.loc[hit, c] = np.nan
        return out
    if kind == "duplicated_day":
        days = _days(out)
        if len(days) < 2:
            raise ValueError("duplicated_day needs at least two days of data")
        replay = out[out[part].astype(str) == days[-2]].copy()
        replay[part] = days[-1]
        return pd.concat([out[out[part].astype(str) != days[-1]], replay], ignore_index=True)
    if kind == "stale_window":
        days = _days(out)
        if len(days) <= STALE_DAYS:
            raise ValueError(f"stale_window needs more than {STALE_DAYS} days of data")
        return out[out[part].astype(str) <= days[-STALE_DAYS - 1]].reset_index(drop=True)
    # shifted_distribution
    premium = out["cabin"].isin(["business", "first"])
    for c in ("price_usd", "price_amount"):
        out.loc[premium, c] = out.loc[premium, c] * 0.5
    return out


def break_flights(df: pd.DataFrame, *, seed: int = 0, share: float = 0.6) -> pd.DataFrame:
    """Demand labels shifted: ``share`` of 'low' and 'medium' rows relabelled 'high' (a broken load-factor feed)."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    y = contract.DEMAND_TARGET
    hit = out[y].isin(["low", "medium"]) & (rng.random(len(out)) < share)
    out.loc[hit, y] = "high"
    return out


def _target_schema(columns: list[str]) -> pa.Schema:
    return pa.schema([f for f in contract.CURATED_OFFER_SCHEMA if f.name in columns])


def break_curated(curated_offers_dir: Path, kind: str, *, seed: int = 0) -> Path:
    """Apply a breakage to a curated offers folder (``dt=...`` partitions) in place; returns the folder."""
    _check_kind(kind)
    part = contract.PARTITION_COLUMN
    root = Path(curated_offers_dir)
    offers = root / catalog.relative("offers", "curated")
    if offers.is_dir() and not any(root.glob(f"{part}=*")):  # given the curated folder itself
        root = offers
    hive = pads.partitioning(pa.schema([(part, pa.string())]), flavor="hive")
    broken = break_offers(pads.dataset(root, format="parquet", partitioning=hive).to_table().to_pandas(), kind, seed=seed)
    table = pa.Table.from_pandas(broken, schema=_target_schema(list(broken.columns)), preserve_index=False)
    for d in root.glob(f"{part}=*"):
        shutil.rmtree(d)
    pads.write_dataset(
        table,
        root,
        format="parquet",
        partitioning=pads.partitioning(pa.schema([(part, pa.string())]), flavor="hive"),
        basename_template=f"part-{{i}}-broken-{kind}.parquet",
        existing_data_behavior="overwrite_or_ignore",
    )
    return root

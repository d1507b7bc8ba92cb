"""The distribution reference: statistics of a known-good world, versioned beside the suites.

Schema and range checks catch malformed data; they do not catch a silently broken upstream
(prices in cents, business fares halved, a demand label drifting). The distribution
expectations compare the data with this reference instead. Refresh it from a world you trust:

    airfare dq-reference --data LAKE/curated [--flights SPLITS_OR_FILE] --out data_quality/reference.json

(or ``build_reference(offers, flights)`` + ``write_reference(ref, path)``), review the diff, commit.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from core import contract

REFERENCE_PATH = Path(__file__).with_name("reference.json")
REFERENCE_VERSION = 1


def build_reference(offers: pd.DataFrame, flights: pd.DataFrame | None = None, *, source: str = "") -> dict:
    """Statistics the distribution expectations compare against (per-cabin prices, null rates, class shares)."""
    missing = {"cabin", "price_usd"} - set(offers.columns)
    if missing or offers.empty:
        raise ValueError(f"cannot build a reference from these offers (empty or missing {sorted(missing)})")
    by_cabin = offers.dropna(subset=["price_usd"]).groupby("cabin")["price_usd"]
    ref: dict = {
        "reference_version": REFERENCE_VERSION,
        "schema_version": contract.SCHEMA_VERSION,
        "built_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "source": source,
        "rows": int(len(offers)),
        "days": int(offers[contract.PARTITION_COLUMN].nunique()) if contract.PARTITION_COLUMN in offers else None,
        "price_usd_median_by_cabin": {c: round(float(v), 4) for c, v in by_cabin.median().items() if c in contract.CABINS},
        "price_usd_q001_by_cabin": {c: round(float(v), 4) for c, v in by_cabin.quantile(0.001).items() if c in contract.CABINS},
        "price_usd_q999_by_cabin": {c: round(float(v), 4) for c, v in by_cabin.quantile(0.999).items() if c in contract.CABINS},
        "cabin_rows": {c: int(n) for c, n in offers["cabin"].value_counts().items() if c in contract.CABINS},
        "null_rate": {c: round(float(offers[c].isna().mean()), 6) for c in contract.CURATED_COLUMNS if c in offers.columns},
        "demand_class_share": None,
    }
    if flights is not None and contract.DEMAND_TARGET in flights.columns and not flights.empty:
        shares = flights[contract.DEMAND_TARGET].astype(str).value_counts(normalize=True)
        ref["demand_class_share"] = {c: round(float(shares.get(c, 0.0)), 6) for c in contract.DEMAND_CLASSES}
    return ref


def load_reference(path: Path | None = None) -> dict:
    """The versioned reference (``data_quality/reference.json`` unless another path is given)."""
    path = Path(path or REFERENCE_PATH)
    try:
        ref = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the DQ reference {path}: {exc}") from exc
    if ref.get("reference_version") != REFERENCE_VERSION:
        raise ValueError(f"{path}: reference_version {ref.get('reference_version')!r}, expected {REFERENCE_VERSION}")
    return ref


def write_reference(ref: dict, path: Path | None = None) -> Path:
    path = Path(path or REFERENCE_PATH)
    path.write_text(json.dumps(ref, indent=2, sort_keys=True) + "\n")
    return path

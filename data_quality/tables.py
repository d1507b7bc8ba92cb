"""Reading the data to validate, and the small derived tables the suites check.

Some quality rules are not about single rows but about partitions, windows and splits
(a day delivered twice, a stale window, splits out of time order). They are computed here
as tiny pandas frames, so that Great Expectations validates them like any other table and
every rule shows up in the same report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from core import contract
from core.pipeline_contract import SPLITS


class DataReadError(Exception):
    """The data to validate cannot be read at all (missing folder, not Parquet, ...)."""


@dataclass
class Table:
    """A frame to validate and the Arrow schema it was stored with (types are checked on it)."""

    frame: pd.DataFrame
    schema: pa.Schema

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Table:
        return cls(frame, pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata())


def _as_date(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def offers_root(path: Path) -> Path:
    """Accept the curated folder (holding ``offers/``) or the offers folder itself."""
    path = Path(path)
    if (path / "offers").is_dir() and not any(path.glob(f"{contract.PARTITION_COLUMN}=*")):
        return path / "offers"
    return path


def read_curated_offers(path: Path, start_date: str | dt.date | None = None, end_date: str | dt.date | None = None) -> Table:
    """Read curated offers (``dt=YYYY-MM-DD`` Hive partitions) with the same dt filter as Preprocess."""
    root = offers_root(path)
    if not root.exists():
        raise DataReadError(f"no such folder: {root}")
    start, end = _as_date(start_date), _as_date(end_date)
    try:
        partitioning = pads.partitioning(pa.schema([(contract.PARTITION_COLUMN, pa.string())]), flavor="hive")
        dataset = pads.dataset(root, format="parquet", partitioning=partitioning, exclude_invalid_files=False)
        part = pads.field(contract.PARTITION_COLUMN)
        flt = None
        if start:
            flt = part >= start.isoformat()
        if end:
            flt = (part <= end.isoformat()) if flt is None else flt & (part <= end.isoformat())
        table = dataset.to_table(filter=flt)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataReadError(f"cannot read curated offers under {root}: {exc}") from exc
    if not dataset.files:
        raise DataReadError(f"no Parquet files under {root}")
    return Table(table.to_pandas(), table.schema.remove_metadata())


def read_parquet_table(path: Path) -> Table:
    """Read one Parquet file (or a folder of them) written by Preprocess."""
    path = Path(path)
    if not path.exists():
        raise DataReadError(f"no such file: {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataReadError(f"cannot read {path}: {exc}") from exc
    return Table(table.to_pandas(), table.schema.remove_metadata())


def read_splits(root: Path) -> dict[str, dict[str, Table]]:
    """``{split: {"offers": Table, "flights": Table}}`` from ``root/{train,validation,test}/``."""
    return {s: {t: read_parquet_table(Path(root) / s / f"{t}.parquet") for t in ("offers", "flights")} for s in SPLITS}


# ---------------------------------------------------------------------------------------------
# Derived tables
# ---------------------------------------------------------------------------------------------
def _normalise_type(t: pa.DataType) -> str:
    """Arrow type as text; large_string counts as string (same logical type, pandas writes it)."""
    if pa.types.is_large_string(t):
        t = pa.string()
    if pa.types.is_dictionary(t):
        t = t.value_type
        if pa.types.is_large_string(t):
            t = pa.string()
    return str(t)


def schema_table(schema: pa.Schema) -> pd.DataFrame:
    """One row per stored column: ``name:arrow_type`` (checked against ``expected_name_types``)."""
    return pd.DataFrame({"name_type": [f"{f.name}:{_normalise_type(f.type)}" for f in schema]}, dtype=object)


def expected_name_types() -> list[str]:
    return [f"{f.name}:{_normalise_type(f.type)}" for f in contract.CURATED_OFFER_SCHEMA]


def airport_table(offers: pd.DataFrame, known: frozenset[str]) -> pd.DataFrame:
    """One row per distinct origin/destination code and whether it is a known IATA airport.

    (A GX value set of all ~7,900 IATA codes costs seconds per expectation; the distinct codes
    of a table are few, so the lookup is done here and GX checks the flag.)
    """
    cols = [c for c in ("origin", "destination") if c in offers.columns]
    codes = pd.unique(pd.concat([offers[c] for c in cols], ignore_index=True).dropna()) if cols else []
    return pd.DataFrame({"code": list(codes), "known_iata": [str(c) in known for c in codes]}, columns=["code", "known_iata"])


def null_rate_table(offers: pd.DataFrame, ceilings: dict[str, tuple[str, float]]) -> pd.DataFrame:
    """One row per column with a null-rate ceiling: ``column``, ``kind``, ``null_rate``, ``ceiling``."""
    rows = [
        {"column": c, "kind": kind, "null_rate": float(offers[c].isna().mean()) if len(offers) else 0.0, "ceiling": ceiling}
        for c, (kind, ceiling) in ceilings.items()
        if c in offers.columns
    ]
    return pd.DataFrame(rows, columns=["column", "kind", "null_rate", "ceiling"])


def partition_table(offers: pd.DataFrame) -> pd.DataFrame:
    """One row per ``dt`` partition: rows, events, a content fingerprint and cross-partition overlaps.

    A day delivered twice (the same events under two dates, with or without new ids) shows as a
    repeated fingerprint, event or offer ids shared with another partition, or events whose
    ``event_time`` is not on their partition's date.
    """
    cols = ["dt", "rows", "rows_vs_median", "events", "fingerprint", "shared_event_ids", "shared_offer_ids", "rows_off_partition_date"]
    part = contract.PARTITION_COLUMN
    needed = {part, "event_id", "offer_id", "event_time"}
    if offers.empty or not needed <= set(offers.columns):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    df = offers[list(needed | ({"user_id", "route", "price_usd"} & set(offers.columns)))].copy()
    df[part] = df[part].astype(str)
    content_cols = [c for c in ("user_id", "route", "price_usd") if c in df.columns]
    # Order-independent fingerprint of a day's content (ids excluded: a re-delivery may mint new ones).
    df["_h"] = pd.util.hash_pandas_object(df[content_cols].astype(str), index=False).astype("uint64") if content_cols else 0
    event_parts = df.groupby("event_id")[part].nunique()
    offer_parts = df.groupby("offer_id")[part].nunique()
    df["_shared_event"] = df["event_id"].map(event_parts).gt(1)
    df["_shared_offer"] = df["offer_id"].map(offer_parts).gt(1)
    event_date = pd.to_datetime(df["event_time"], utc=True, errors="coerce").dt.strftime("%Y-%m-%d")
    df["_off_date"] = event_date.ne(df[part])
    g = df.groupby(part, sort=True)
    out = pd.DataFrame(
        {
            "rows": g.size(),
            "events": g["event_id"].nunique(),
            "fingerprint": g["_h"].agg(lambda h: f"{int(h.to_numpy(dtype='uint64').sum(dtype='uint64')):016x}"),
            "shared_event_ids": df[df["_shared_event"]].groupby(part)["event_id"].nunique(),
            "shared_offer_ids": df[df["_shared_offer"]].groupby(part)["offer_id"].nunique(),
            "rows_off_partition_date": g["_off_date"].sum(),
        }
    ).fillna(0)
    for c in ("rows", "events", "shared_event_ids", "shared_offer_ids", "rows_off_partition_date"):
        out[c] = out[c].astype("int64")
    out["rows_vs_median"] = out["rows"] / max(float(out["rows"].median()), 1.0)
    return out.rename_axis("dt").reset_index()[cols]


def window_table(offers: pd.DataFrame, expected_end: dt.date | None, expected_start: dt.date | None = None) -> pd.DataFrame:
    """One row about the time window: newest/oldest partition, lag behind the expected end, gaps."""
    part = contract.PARTITION_COLUMN
    days = sorted(pd.to_datetime(offers[part].astype(str), errors="coerce").dropna().dt.date.unique()) if part in offers else []
    newest = days[-1] if days else None
    oldest = days[0] if days else None
    reference_end = expected_end or dt.datetime.now(dt.UTC).date()
    # Gaps are counted inside the declared window, or between the oldest and newest day present.
    span_start, span_end = expected_start or oldest, expected_end or newest
    missing = None
    if span_start and span_end:
        missing = (span_end - span_start).days + 1 - len([d for d in days if span_start <= d <= span_end])
    return pd.DataFrame(
        [
            {
                "oldest_dt": oldest.isoformat() if oldest else None,
                "newest_dt": newest.isoformat() if newest else None,
                "expected_end": reference_end.isoformat(),
                "end_declared": expected_end is not None,
                # float so that "no data" (NaN) fails a between-check instead of erroring
                "lag_days": float((reference_end - newest).days) if newest else float("nan"),
                "missing_days": float(max(missing, 0)) if missing is not None else float("nan"),
            }
        ]
    )


def price_ratio_table(offers: pd.DataFrame) -> pd.DataFrame:
    """One row: each premium cabin's median price relative to economy's (NaN when a cabin is absent).

    The ratio is insensitive to the route mix and season, which move all cabins together, so it
    can be held to a tight band where absolute medians cannot.
    """
    if not {"cabin", "price_usd"} <= set(offers.columns) or offers.empty:
        return pd.DataFrame([{f"ratio_{c}": float("nan") for c in contract.CABINS[1:]}])
    med = offers.groupby(offers["cabin"].astype(str))["price_usd"].median()
    eco = med.get("economy", float("nan"))
    return pd.DataFrame([{f"ratio_{c}": float(med.get(c, float("nan")) / eco) for c in contract.CABINS[1:]}])


def class_share_table(flights: pd.DataFrame) -> pd.DataFrame:
    """One row: the share of each demand class among the flights rows (NaN when there is no label)."""
    col = contract.DEMAND_TARGET
    if col not in flights.columns or flights.empty:
        return pd.DataFrame([{f"share_{c}": float("nan") for c in contract.DEMAND_CLASSES}])
    shares = flights[col].astype(str).value_counts(normalize=True)
    return pd.DataFrame([{f"share_{c}": float(shares.get(c, 0.0)) for c in contract.DEMAND_CLASSES}])


def split_order_table(split_offers: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per adjacent pair of splits with the earlier split's newest and the later one's oldest date."""
    part = contract.PARTITION_COLUMN

    def bounds(df: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
        if part not in df.columns or df.empty:
            return pd.NaT, pd.NaT
        d = pd.to_datetime(df[part].astype(str), errors="coerce")
        return d.min(), d.max()

    rows = []
    names = [s for s in SPLITS if s in split_offers]
    for earlier, later in zip(names, names[1:]):
        rows.append(
            {
                "pair": f"{earlier}<{later}",
                "earlier_newest": bounds(split_offers[earlier])[1],
                "later_oldest": bounds(split_offers[later])[0],
            }
        )
    return pd.DataFrame(rows, columns=["pair", "earlier_newest", "later_oldest"])

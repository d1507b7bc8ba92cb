"""The incident-label feed as the anomaly model's trainer and evaluator see it.

The feed (``labels/incidents/``, ``contract.INCIDENT_LABEL_SCHEMA``) holds a verdict for each
offer the price-integrity team reviewed: a confirmed incident or a cleared price. It is partial
(most offers are never reviewed; some glitches are never caught), delayed (a verdict comes hours to
days after the quote) and slightly wrong. So an offer's label is one of:

- ``incident``: confirmed (the latest verdict says so);
- ``cleared``: reviewed and found normal;
- ``unreviewed``: its review window closed (quote + ``review_window_days`` <= the feed's
  ``as_of``) without a verdict; most such offers are normal, but not all;
- ``open``: the window has not closed yet: nothing can be concluded.

How training and evaluation count them is documented where they do (``training.anomaly``,
``evaluation.evaluate``). Nothing here reads the simulator's truth.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import contract

INCIDENT, CLEARED, UNREVIEWED, OPEN = "incident", "cleared", "unreviewed", "open"
STATUSES = (INCIDENT, CLEARED, UNREVIEWED, OPEN)
# Precision is measured on the flags that were reviewed (incident vs cleared). It says little when
# most flags were never reviewed (a model whose false alarms nobody looks at would look perfect),
# so below this share of reviewed flags it is unknown (null), and an unknown precision fails the gate.
MIN_REVIEWED_SHARE = 0.7


@dataclass(frozen=True)
class IncidentFeed:
    """The verdicts (one row per offer, its latest verdict) and up to when the feed is complete."""

    verdicts: pd.DataFrame  # offer_id, search_time, confirmed_at, is_incident, source
    as_of: pd.Timestamp  # UTC: every verdict made before it is in the feed
    review_window_days: int

    def status(self, offers: pd.DataFrame, time_column: str = "event_time") -> np.ndarray:
        """One of ``STATUSES`` per row of ``offers`` (needs ``offer_id`` and ``time_column``)."""
        for col in ("offer_id", time_column):
            if col not in offers.columns:
                raise ValueError(f"offers need a {col!r} column to be matched with incident labels")
        verdict = offers["offer_id"].astype(str).map(self.verdicts.set_index("offer_id")["is_incident"])
        quoted = pd.to_datetime(offers[time_column], utc=True)
        closed = (quoted + pd.Timedelta(days=self.review_window_days) <= self.as_of).to_numpy()
        known = verdict.notna().to_numpy()
        is_inc = verdict.fillna(False).astype(bool).to_numpy()
        # a verdict is a verdict even before the window closes; silence means something only after it
        return np.select([known & is_inc, known, closed], [INCIDENT, CLEARED, UNREVIEWED], OPEN)


def status_counts(status: np.ndarray) -> dict[str, int]:
    return {s: int((status == s).sum()) for s in STATUSES}


def read_feed(location: str | Path, as_of: str | dt.datetime | None = None) -> IncidentFeed:
    """Read the feed from a folder (``dt=`` partitions, ``_manifest.json``) or an ``s3://`` prefix.

    ``as_of`` (default: the manifest's, else the latest verdict) drops verdicts made after it,
    i.e. what was known at that time. A feed with no manifest is taken as complete up to its
    latest verdict, with the contract's review window.
    """
    location = str(location)
    manifest = _read_manifest(location)
    frame = _read_rows(location)
    missing = [c for c in contract.INCIDENT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"incident labels at {location} lack columns {missing}")
    frame = frame[list(contract.INCIDENT_COLUMNS)].copy()
    for col in ("search_time", "confirmed_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    window = int(manifest.get("review_window_days", contract.INCIDENT_REVIEW_WINDOW_DAYS))
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
    elif "as_of" in manifest:
        cut = pd.Timestamp(manifest["as_of"]).tz_convert("UTC")
    elif len(frame):
        cut = frame["confirmed_at"].max()
    else:
        raise ValueError(f"incident labels at {location} are empty and have no {contract.INCIDENT_MANIFEST}")
    frame = frame.loc[frame["confirmed_at"] <= cut]
    # an offer reviewed twice (e.g. reported, then reviewed): its latest verdict counts
    frame = frame.sort_values(["confirmed_at", "offer_id"]).drop_duplicates("offer_id", keep="last")
    frame["offer_id"] = frame["offer_id"].astype(str)
    return IncidentFeed(frame.reset_index(drop=True), cut, window)


def write_feed(verdicts: pd.DataFrame, folder: str | Path, as_of: str | dt.datetime | None = None,
               review_window_days: int = contract.INCIDENT_REVIEW_WINDOW_DAYS) -> Path:
    """Write verdicts (``INCIDENT_LABEL_SCHEMA`` columns) in the feed's layout: one Parquet file per
    verdict date under ``dt=`` and the manifest (``as_of`` default: the latest verdict). E.g. to
    load a review team's export, or a test's labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = verdicts[list(contract.INCIDENT_COLUMNS)].copy()
    for col in ("search_time", "confirmed_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[us, UTC]")
    table = pa.Table.from_pandas(frame, schema=contract.INCIDENT_LABEL_SCHEMA, preserve_index=False)
    days = frame["confirmed_at"].dt.strftime("%Y-%m-%d").to_numpy()
    for day in sorted(set(days)):
        part = folder / f"dt={day}"
        part.mkdir(exist_ok=True)
        pq.write_table(table.filter(pa.array(days == day)), part / "part-00000.parquet")
    stamp = pd.Timestamp(as_of) if as_of is not None else frame["confirmed_at"].max()
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    (folder / contract.INCIDENT_MANIFEST).write_text(json.dumps(
        {"as_of": stamp.isoformat().replace("+00:00", "Z"), "review_window_days": int(review_window_days), "schema_version": 1},
        indent=2) + "\n")
    return folder


def _read_manifest(location: str) -> dict:
    if location.startswith("s3://"):
        from core import aws

        bucket, _, key = location[len("s3://"):].partition("/")
        try:
            body = aws.client("s3").get_object(Bucket=bucket, Key=key.rstrip("/") + "/" + contract.INCIDENT_MANIFEST)["Body"]
        except Exception:  # noqa: BLE001 - no manifest: fall back to the latest verdict
            return {}
        return json.loads(body.read())
    path = Path(location)
    candidates = [path / contract.INCIDENT_MANIFEST] + ([] if path.is_file() else sorted(path.rglob(contract.INCIDENT_MANIFEST)))
    for f in candidates:
        if f.is_file():
            return json.loads(f.read_text())
    return {}


def _read_rows(location: str) -> pd.DataFrame:
    if location.startswith("s3://"):
        import awswrangler as wr

        return wr.s3.read_parquet(location.rstrip("/") + "/", dataset=True)
    path = Path(location)
    if not path.exists():
        raise FileNotFoundError(f"incident labels not found: {location}")
    files = [path] if path.is_file() else sorted(f for f in path.rglob("*.parquet") if f.is_file())
    if not files:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in contract.INCIDENT_COLUMNS})
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(f, columns=list(contract.INCIDENT_COLUMNS)) for f in files]).to_pandas()


def ground_truth_records(verdicts: pd.DataFrame) -> list[dict]:
    """The verdicts as SageMaker Model Monitor ground truth (one JSON object per line when written):
    ``groundTruthData.data`` is ``"1"`` for an incident, ``"0"`` for a cleared offer;
    ``eventMetadata.eventId`` is the offer id (the id the endpoint's capture records for an offer).
    Unreviewed offers have no ground truth, as in production."""
    return [
        {
            "groundTruthData": {"data": "1" if bool(inc) else "0", "encoding": "CSV"},
            "eventMetadata": {"eventId": str(oid)},
            "eventVersion": "0",
        }
        for oid, inc in zip(verdicts["offer_id"], verdicts["is_incident"])
    ]

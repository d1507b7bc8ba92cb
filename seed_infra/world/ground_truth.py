"""Ground truth as production learns it: delayed, partial, and only for what happened.

Written from a generated world (its raw search events, flight outcomes and truth) as Model
Monitor ingests ground truth: JSON lines ``{"groundTruthData": {"data", "encoding"},
"eventMetadata": {"eventId"}, "eventVersion": "0"}`` under
``ground_truth/<model>/yyyy/mm/dd/hh/`` by the hour the label becomes known (WORLD.md, "What
production really knows, and when"). ``eventId`` is the inference id the caller passes to
``invoke_endpoint`` (``InferenceId``), so the labels merge with the captured predictions:

- **price**: the realised price (USD) of the quotes that were booked; a quote is booked with
  probability ``booking_rate``, and the booking system's export delivers it 1 to 48 hours after
  the search. ``eventId`` = ``offer_id``.
- **demand**: the demand class of a flight, known the day after it departs, for every
  (flight, search day) snapshot the demand model may have been asked about.
  ``eventId`` = ``<flight_key>/<search_date>``.
- **anomaly**: confirmed price incidents: an injected glitch is confirmed with probability
  ``incident_confirm_rate``, 6 to 72 hours after the search. Only positives are delivered; a
  monitor counts an unconfirmed quote as "no incident" once the confirmation horizon has passed.
  ``eventId`` = ``offer_id``.

Draws are hashes of (seed, stream, id), so the same world gives the same ground truth.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import shutil
from pathlib import Path

import orjson
import pyarrow.dataset as ds

from core import contract

FOLDER = "ground_truth"
INCIDENT_HORIZON_H = 72


def _uniform(seed: int, stream: str, key: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{stream}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _line(event_id: str, data: str) -> bytes:
    return orjson.dumps({"groundTruthData": {"data": data, "encoding": "CSV"}, "eventMetadata": {"eventId": event_id},
                         "eventVersion": "0"})  # fmt: skip


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class _HourWriter:
    def __init__(self, root: Path):
        self.root = root
        self.lines: dict[tuple[str, str], list[bytes]] = {}

    def add(self, model: str, when: dt.datetime, line: bytes) -> None:
        self.lines.setdefault((model, when.astimezone(dt.timezone.utc).strftime("%Y/%m/%d/%H")), []).append(line)

    def close(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (model, hour), lines in sorted(self.lines.items()):
            path = self.root / model / hour / "labels.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\n".join(lines) + b"\n")
            counts[model] = counts.get(model, 0) + len(lines)
        return counts


def write_ground_truth(world_dir: Path | str, *, seed: int = 42, booking_rate: float = 0.05,
                       incident_confirm_rate: float = 1.0) -> dict[str, int]:
    """Write ``<world_dir>/ground_truth/{price,demand,anomaly}/...``; return labels per model."""
    if not 0 <= booking_rate <= 1 or not 0 <= incident_confirm_rate <= 1:
        raise ValueError("booking_rate and incident_confirm_rate must be within 0..1")
    world = Path(world_dir)
    raw_files = sorted((world / "raw").rglob("*.json.gz"))
    if not raw_files:
        raise FileNotFoundError(f"no raw search events under {world / 'raw'}: generate the world first")
    outcomes = ds.dataset(world / "outcomes" / "flights", format="parquet").to_table(columns=["flight_key", "departure_date", "demand_class"])
    demand = {k: (d, c) for k, d, c in zip(*(outcomes.column(n).to_pylist() for n in ("flight_key", "departure_date", "demand_class")))}
    truth = ds.dataset(world / "truth" / "offers", format="parquet").to_table(columns=["offer_id", "is_anomaly"],
                                                                             filter=ds.field("is_anomaly"))  # fmt: skip
    anomalous = set(truth.column("offer_id").to_pylist())

    root = world / FOLDER
    if root.exists():
        shutil.rmtree(root)
    out = _HourWriter(root)
    snapshots: set[str] = set()
    for path in raw_files:
        with gzip.open(path, "rb") as fh:
            for raw in fh:
                event = orjson.loads(raw)
                when = _parse_time(event["event_time"])
                search_date = when.astimezone(dt.timezone.utc).date().isoformat()
                for offer in event["offers"]:
                    oid = offer["offer_id"]
                    if _uniform(seed, "book", oid) < booking_rate:
                        usd = contract.to_usd(float(offer["price"]["amount"]), offer["price"]["currency"])
                        delay = dt.timedelta(hours=1 + 47 * _uniform(seed, "book-delay", oid))
                        out.add("price", when + delay, _line(oid, f"{usd:.2f}"))
                    if oid in anomalous and _uniform(seed, "confirm", oid) < incident_confirm_rate:
                        delay = dt.timedelta(hours=6 + (INCIDENT_HORIZON_H - 6) * _uniform(seed, "confirm-delay", oid))
                        out.add("anomaly", when + delay, _line(oid, "1"))
                    key = f"{offer['airline']}-{offer['flight_number']}-{offer['departure_time'][:10]}"
                    snap = f"{key}/{search_date}"
                    if key in demand and snap not in snapshots:
                        snapshots.add(snap)
                        departure, label = demand[key]
                        known = dt.datetime.combine(departure + dt.timedelta(days=1), dt.time(6), dt.timezone.utc)
                        out.add("demand", known, _line(snap, label))
    return out.close()

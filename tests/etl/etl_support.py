"""ETL test setup: one local SparkSession for the whole test session, and a raw-event builder."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def spark():
    from seed_infra.etl.job import spark_session

    session = spark_session(master="local[2]", shuffle_partitions=4, driver_memory="1g", app="airfare-etl-tests")
    yield session
    session.stop()


def offer(offer_id: str, airline: str, amount: float, currency: str = "USD", dep: str = "2026-03-10T08:15:00", **kw) -> dict:
    """One offer in the contract's raw shape."""
    o = {
        "offer_id": offer_id,
        "airline": airline,
        "flight_number": f"{airline}{100 + len(offer_id)}",
        "departure_time": dep,
        "arrival_time": dep[:11] + "11:40:00",
        "stops": 0,
        "duration_minutes": 325,
        "fare_class": "Y",
        "seats_left": 7,
        "price": {"amount": amount, "currency": currency},
    }
    o.update(kw)
    return o


def event(event_id: str, offers: list[dict] | None = None, *, origin="JFK", destination="LAX", event_time="2026-03-01T10:30:00Z",
          departure_date="2026-03-10", cabin="economy", trip_type="one_way", return_date=None, **kw) -> dict:
    """One SearchEvent as the front end sends it (core.contract.SearchEvent)."""
    e = {
        "schema_version": 1,
        "event_id": event_id,
        "event_time": event_time,
        "session": {"session_id": "s-" + event_id, "user_id": "u1", "country": "US", "device": "web", "loyalty_tier": "none"},
        "query": {
            "origin": origin,
            "destination": destination,
            "departure_date": departure_date,
            "return_date": return_date,
            "trip_type": trip_type,
            "cabin": cabin,
            "passengers": {"adults": 1, "children": 0, "infants": 0},
        },
        "offers": offers if offers is not None else [offer(f"{event_id}-o1", "AA", 200.0, dep=departure_date + "T08:15:00")],
    }
    e.update(kw)
    return e


def mutate(e: dict, path: str, value=..., delete: bool = False) -> dict:
    """A copy of ``e`` with the dotted ``path`` set to ``value`` (or deleted); ints index lists."""
    e = copy.deepcopy(e)
    parts = path.split(".")
    node = e
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    last = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if delete:
        del node[last]
    else:
        node[last] = value
    return e


def write_raw(root: Path, day: str, lines: list, hour: str = "10", name: str = "part-0.json.gz") -> Path:
    """Write lines (dicts become JSON, str/bytes go as they are) the way Firehose lays them out."""
    folder = root / f"dt={day}" / f"hour={hour}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with gzip.open(path, "wb") as fh:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            if isinstance(line, str):
                line = line.encode("utf-8")
            fh.write(line + b"\n")
    return path

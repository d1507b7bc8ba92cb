"""The world's ground truth: delayed, partial, only for what happened, and readable by the monitor."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pyarrow.dataset as ds
import pytest

from monitoring import capture


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from seed_infra.world import generate_world
    from seed_infra.world.ground_truth import write_ground_truth

    out = tmp_path_factory.mktemp("gt-world")
    generate_world(out, seed=5, start_date=dt.date(2026, 2, 2), days=3, searches_per_day=200, anomaly_rate=0.02, progress=False)
    counts = write_ground_truth(out, seed=5, booking_rate=0.1, incident_confirm_rate=0.8)
    offers = {}
    for path in (out / "raw").rglob("*.json.gz"):
        for line in gzip.open(path, "rt"):
            ev = json.loads(line)
            for o in ev["offers"]:
                offers[o["offer_id"]] = (capture.parse_time(ev["event_time"]), o)
    return out, counts, offers


def _labels(root, model):
    rows = []
    for path in sorted((root / "ground_truth" / model).rglob("*.jsonl")):
        hour = dt.datetime.strptime("/".join(path.parent.parts[-4:]), "%Y/%m/%d/%H").replace(tzinfo=dt.timezone.utc)
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            rows.append((doc["eventMetadata"]["eventId"], doc["groundTruthData"]["data"], hour))
    return rows


def test_price_labels_are_realised_prices_of_booked_quotes_delivered_later(world):
    root, counts, offers = world
    labels = _labels(root, "price")
    assert counts["price"] == len(labels)
    assert 0.07 < len(labels) / len(offers) < 0.13  # about 10 % of quotes are booked
    for oid, data, hour in labels:
        searched, offer = offers[oid]
        floor = (searched + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        assert floor <= hour <= searched + dt.timedelta(hours=49)  # delivered 1 to 48 hours after the search
        from core.contract import to_usd

        assert float(data) == pytest.approx(to_usd(offer["price"]["amount"], offer["price"]["currency"]), abs=0.006)


def test_anomaly_labels_are_confirmed_incidents_only(world):
    root, _, offers = world
    truth = ds.dataset(root / "truth" / "offers", format="parquet").to_table().to_pandas()
    incidents = set(truth.loc[truth["is_anomaly"], "offer_id"])
    labels = _labels(root, "anomaly")
    assert {oid for oid, _, _ in labels} <= incidents
    assert 0.6 < len(labels) / len(incidents) < 0.95  # partial: 80 % confirmed
    assert all(d == "1" for _, d, _ in labels)
    assert all(hour >= (offers[oid][0] + dt.timedelta(hours=6)).replace(minute=0, second=0, microsecond=0) for oid, _, hour in labels)


def test_demand_labels_arrive_after_departure(world):
    root, _, _ = world
    outcomes = ds.dataset(root / "outcomes" / "flights", format="parquet").to_table().to_pandas().set_index("flight_key")
    labels = _labels(root, "demand")
    assert labels
    for snap, data, hour in labels[:500]:
        key, search_date = snap.split("/")
        assert data == outcomes.loc[key, "demand_class"]
        assert hour.date() > outcomes.loc[key, "departure_date"]
        assert search_date <= str(outcomes.loc[key, "departure_date"])
    read = capture.read_ground_truth(root / "ground_truth" / "demand")
    assert len(read) == len(labels) and set(read["label"]) <= {"low", "medium", "high"}

"""Fixtures for the stream tests: contract-shaped search events and Kinesis streams on moto."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

ROUTES = [("JFK", "LAX"), ("LHR", "CDG"), ("SFO", "NRT"), ("FRA", "MAD")]


def build_event(i: int, *, offers: int = 3, padding: int = 0) -> dict:
    """A search event with the contract's SearchEvent shape (``padding`` bytes make it large)."""
    origin, destination = ROUTES[i % len(ROUTES)]
    t = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC) + dt.timedelta(seconds=i)
    dep = dt.date(2026, 4, 1) + dt.timedelta(days=i % 30)
    event = {
        "schema_version": 1,
        "event_id": f"ev-{i:07d}",
        "event_time": t,
        "session": {"session_id": f"s-{i // 3}", "user_id": f"u-{i // 7}", "country": "US", "device": "web", "loyalty_tier": "none"},
        "query": {
            "origin": origin,
            "destination": destination,
            "departure_date": dep,
            "return_date": None,
            "trip_type": "one_way",
            "cabin": "economy",
            "passengers": {"adults": 1, "children": 0, "infants": 0},
        },
        "offers": [
            {
                "offer_id": f"of-{i:07d}-{k}",
                "airline": "AA",
                "flight_number": f"AA{100 + k}",
                "departure_time": dt.datetime.combine(dep, dt.time(8 + k)),
                "arrival_time": dt.datetime.combine(dep, dt.time(11 + k)),
                "stops": 0,
                "duration_minutes": 180,
                "fare_class": "Y",
                "seats_left": 9,
                "price": {"amount": 199.5 + k, "currency": "USD"},
            }
            for k in range(offers)
        ],
    }
    if padding:
        event["padding"] = "x" * padding
    return event


@pytest.fixture()
def make_events():
    def make(n: int, **kwargs) -> list[dict]:
        return [build_event(i, **kwargs) for i in range(n)]

    return make


@pytest.fixture()
def kinesis(aws_endpoint):
    from core.aws import client

    return client("kinesis")


@pytest.fixture()
def stream(kinesis):
    """A fresh 2-shard stream on the moto server; yields its name."""
    name = f"searches-{uuid.uuid4().hex[:10]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    yield name
    kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


def read_all(kinesis, stream_name: str) -> list[bytes]:
    """Every record's data in the stream, shard by shard, from the oldest."""
    out: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            resp = kinesis.get_records(ShardIterator=it, Limit=10_000)
            out.extend(r["Data"] for r in resp["Records"])
            if not resp["Records"]:
                break
            it = resp.get("NextShardIterator")
    return out


@pytest.fixture()
def read_stream(kinesis):
    return lambda name: read_all(kinesis, name)

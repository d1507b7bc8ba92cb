"""Integration: the world generator's raw output through the ETL, reconciled against what the
generator says it wrote (events, offers), its truth (offer ids) and its outcomes (flight keys)."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from core import contract
from seed_infra.etl.job import run_etl

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def world_etl(spark, tmp_path_factory):
    from seed_infra.world import generate_world

    root = tmp_path_factory.mktemp("world")
    world = generate_world(root, seed=7, start_date=dt.date(2026, 3, 2), days=2, searches_per_day=150, progress=False)
    summary = run_etl(spark, str(root / "raw"), str(root / "curated"))
    return root, world, summary


def test_world_reconciles_through_the_etl(world_etl):
    root, world, s = world_etl
    assert s["reconciled"]
    assert s["input_records"] == world.events == s["curated_events"] + s["quarantined"] + s["duplicates"]
    assert s["quarantined"] == 0, s["quarantine_reasons"]  # the generator writes clean events
    assert s["curated_offers"] == world.offers
    assert sorted(s["per_date"]) == ["2026-03-02", "2026-03-03"]
    assert json.loads((root / "curated" / "etl_summary.json").read_text())["run_id"] == s["run_id"]


def test_world_curated_joins_truth_and_outcomes(world_etl):
    root, _, _ = world_etl
    offers = ds.dataset(root / "curated" / "offers", partitioning="hive", format="parquet").to_table(
        columns=["offer_id", "flight_key", "price_usd", "price_rank_in_search", "route_searches_day", "distance_km"]
    )
    truth = ds.dataset(root / "truth" / "offers", format="parquet").to_table(columns=["offer_id"])
    assert pc.all(pc.is_in(offers["offer_id"], truth["offer_id"])).as_py()
    outcomes = ds.dataset(root / "outcomes" / "flights", format="parquet").to_table(columns=["flight_key"])
    assert pc.all(pc.is_in(offers["flight_key"], outcomes["flight_key"])).as_py()
    assert pc.min(offers["price_usd"]).as_py() >= contract.MIN_PRICE_USD
    assert pc.min(offers["price_rank_in_search"]).as_py() == 1
    assert pc.min(offers["route_searches_day"]).as_py() >= 1 and pc.min(offers["distance_km"]).as_py() > 0
    assert offers.num_rows == len(set(offers["offer_id"].to_pylist()))  # offer_id stays a primary key

"""The fast paths of the ETL give exactly what the element-by-element expressions give.

- ``validate.offers_gate_sql`` (compiled whole-array checks) must flag every offers array in which
  the per-offer check finds a problem, so that gating the per-offer lambda changes no problem.
- The competitor arrays built once per (search, airline) must equal the per-offer filter they replace.
Both are compared on many randomly broken offers arrays, every kind of field defect included."""

from __future__ import annotations

import copy
import json
import random

import pytest
from etl_support import event, offer

from pyspark.sql import functions as F

from core import contract
from seed_infra.etl.schema import spark_schema
from seed_infra.etl.validate import offers_problem, usd_sql

pytestmark = [pytest.mark.spark]

DEFECTS = [
    ("offer_id", None), ("offer_id", "DEL"), ("offer_id", 5), ("airline", "A"), ("airline", "ABCD"), ("airline", ""), ("airline", None),
    ("flight_number", None), ("departure_time", "not a time"), ("departure_time", None), ("departure_time", "2026-03-11T08:00:00"),
    ("departure_time", "2026-02-30T10:00:00"), ("arrival_time", "junk"), ("arrival_time", "DEL"), ("stops", -1), ("stops", 4),
    ("stops", "two"), ("stops", 2**40), ("stops", -(2**40)), ("stops", None), ("duration_minutes", 0), ("duration_minutes", -5),
    ("fare_class", ""), ("fare_class", "YY"), ("fare_class", None), ("seats_left", -1), ("seats_left", 1.5), ("seats_left", None),
    ("price", None), ("price", "DEL"), ("price.amount", 0), ("price.amount", 1e12), ("price.amount", -3), ("price.amount", None),
    ("price.amount", "cheap"), ("price.amount", 0.99), ("price.amount", 100_000.5), ("price.currency", "XYZ"), ("price.currency", "US"),
    ("price.currency", None), ("price.currency", "usd"), ("OFFER", None),
]


def _broken_events(n: int, seed: int = 3) -> list[dict]:
    """Events whose offers carry 0-3 random defects each; about a third stay clean."""
    rng = random.Random(seed)
    airlines = ["AA", "DL", "UA", "BA", "LH"]
    out = []
    for k in range(n):
        offers = [offer(f"e{k}-{j}", rng.choice(airlines), rng.choice([99.0, 150.0, 150.0, 420.5, 800.0]),
                        currency=rng.choice(["USD", "USD", "EUR", "JPY"])) for j in range(rng.randint(0, 7))]
        if rng.random() < 0.6:
            for _ in range(rng.randint(1, 3)):
                if not offers:
                    break
                path, value = rng.choice(DEFECTS)
                j = rng.randrange(len(offers))
                if path == "OFFER":
                    offers[j] = None
                    continue
                node = offers[j]
                if node is None:
                    continue
                node = copy.deepcopy(node)
                offers[j] = node
                parts = path.split(".")
                for p in parts[:-1]:
                    node = node.get(p) if isinstance(node, dict) else None
                if isinstance(node, dict):
                    node.pop(parts[-1], None) if value == "DEL" else node.__setitem__(parts[-1], value)
        out.append(event(f"e{k}", offers))
    return out


@pytest.fixture(scope="module")
def parsed(spark):
    events = _broken_events(1500)
    lines = spark.createDataFrame([(json.dumps(e),) for e in events], "value string")
    e = F.from_json("value", spark_schema(), {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"})
    return lines.select(e.alias("e")).select("e", F.to_date(F.col("e.query.departure_date")).alias("dep_date"),
                                             F.expr(usd_sql("e.offers")).alias("usd"))


def test_gated_offer_problems_equal_the_exact_ones(parsed):
    rows = parsed.select(F.to_json(offers_problem(usd=None)).alias("exact"), F.to_json(offers_problem(usd="usd")).alias("gated")).collect()
    assert [r.gated for r in rows] == [r.exact for r in rows]
    reasons = {json.loads(r.exact)["reason"] for r in rows if r.exact}
    # the sample covers the offer-level reasons, and clean lines too
    assert {"missing_field", "wrong_type", "invalid_value", "bad_price", "departure_mismatch"} <= reasons
    assert sum(r.exact is None for r in rows) > 300


def test_competitors_per_airline_equal_the_per_offer_filter(parsed):
    peers = F.sort_array(F.arrays_zip(F.col("usd").alias("p"), F.col("e.offers.airline").alias("airline")))
    df = parsed.filter(F.expr(f"coalesce(array_min(usd) >= {contract.MIN_PRICE_USD}, false)")).select(
        "e", peers.alias("_peers")).filter(F.expr("NOT exists(e.offers, o -> o IS NULL OR o.airline IS NULL)"))
    df = df.select("*", F.expr("map_from_entries(transform(array_distinct(e.offers.airline), "
                               "a -> struct(a, filter(_peers, x -> x.airline != a).p)))").alias("_competitors"))
    flat = df.select("*", F.explode("e.offers").alias("o"))
    own = F.col("o.airline")
    rows = flat.select(F.element_at("_competitors", own).alias("fast"),
                       F.transform(F.filter("_peers", lambda x: x.airline != own), lambda x: x.p).alias("exact")).collect()
    assert len(rows) > 1000
    assert [r.fast for r in rows] == [r.exact for r in rows]
    assert any(r.exact == [] for r in rows) and any(len(r.exact or []) > 2 for r in rows)

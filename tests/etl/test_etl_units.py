"""Pure-Python parts of the ETL: contract-derived schema and rules, lookups, pydantic explanations,
the Glue entry's argument handling. No Spark session needed."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from etl_support import event, mutate
from pyspark.sql import types as T

from core import contract
from seed_infra import glue_job
from seed_infra.etl import lookups, schema, validate


def test_spark_schema_follows_the_contract():
    s = schema.spark_schema()
    assert s.fieldNames() == [*contract.SearchEvent.model_fields, schema.CORRUPT_COLUMN]
    offer = s["offers"].dataType.elementType
    assert offer.fieldNames() == list(contract.Offer.model_fields)
    assert offer["price"].dataType["amount"].dataType == T.DoubleType()
    assert offer["stops"].dataType == T.LongType()
    assert s["query"].dataType["departure_date"].dataType == T.StringType()  # parsed by the ETL itself


def test_leaf_rules_come_from_pydantic():
    leaves = {leaf.name: leaf for leaf in schema.EVENT_LEAVES}
    assert leaves["query.passengers.adults"].ge == 1 and leaves["query.passengers.adults"].le == 9
    assert leaves["query.cabin"].choices == contract.CABINS
    assert leaves["query.return_date"].required is False and leaves["query.origin"].required
    assert leaves["query.passengers.children"].default == 0
    assert leaves["session.country"].min_len == 2 == leaves["session.country"].max_len
    offer = {leaf.name: leaf for leaf in schema.OFFER_LEAVES}
    assert offer["duration_minutes"].gt == 0 and offer["price.currency"].kind == "str"
    assert "offers" not in leaves


def test_curated_spark_types_cover_the_contract():
    assert list(schema.CURATED_SPARK_TYPES) == contract.CURATED_COLUMNS
    assert schema.CURATED_SPARK_TYPES["event_time"] == T.TimestampType()
    assert schema.CURATED_SPARK_TYPES["departure_time"] == T.TimestampNTZType()
    assert schema.CURATED_SPARK_TYPES["stops"] == T.ShortType()


def test_every_reason_has_a_distinct_rank_order():
    ranks = list(validate.REASONS.values())
    assert len(set(ranks)) == len(ranks)
    for reason in ("not_json", "invalid_utf8", "oversized", "missing_field", "wrong_type", "unknown_airport",
                   "bad_price", "departure_before_search", "too_many_offers"):
        assert reason in validate.REASONS
    assert "'it\\'s'" == validate.sql_str("it's")


def test_great_circle_and_airports():
    ap = lookups.airports()
    jfk, lhr = ap["JFK"], ap["LHR"]
    assert jfk[2] == "US" and lhr[2] == "GB"
    assert lookups.great_circle_km(jfk[0], jfk[1], lhr[0], lhr[1]) == pytest.approx(5540, rel=0.01)
    assert lookups.great_circle_km(10, 20, 10, 20) == 0


def test_days_to_nearest_holiday():
    days = [dt.date(2026, 1, 1), dt.date(2026, 12, 25)]
    assert lookups.days_to_nearest(dt.date(2026, 1, 3), days) == 2
    assert lookups.days_to_nearest(dt.date(2026, 12, 31), days) == 6
    assert lookups.days_to_nearest(dt.date(2025, 12, 30), days) == 2
    assert lookups.days_to_nearest(dt.date(2026, 5, 5), []) is None
    rows = lookups.holiday_distance_rows(["US", "ZZ"], dt.date(2026, 7, 1), dt.date(2026, 7, 6))
    us = {d: n for c, d, n in rows if c == "US"}
    assert us[dt.date(2026, 7, 3)] == 0 and us[dt.date(2026, 7, 6)] == 2
    assert {n for c, _, n in rows if c == "ZZ"} == {None}  # unknown country: no holidays, no crash
    # across New Year: the nearest holiday can be in the next year
    rows = lookups.holiday_distance_rows(["US"], dt.date(2026, 12, 30), dt.date(2026, 12, 30))
    assert rows[0][2] == 2


def test_explain_invalid_names_the_field():
    bad = json.dumps(mutate(event("x"), "query.passengers.adults", "two"))
    assert validate.explain_invalid(bad).startswith("query.passengers.adults")
    assert validate.explain_invalid(json.dumps(event("x"))).startswith("Spark")
    assert validate.explain_invalid(None) is None
    assert "<record>" in validate.explain_invalid("[1, 2]") or "Input" in validate.explain_invalid("[1, 2]")


def test_fixture_events_satisfy_the_contract():
    contract.SearchEvent.model_validate(event("x"))


def test_glue_dates_argument():
    assert glue_job.parse_dates("2026-03-02, 2026-03-01,2026-03-02") == ["2026-03-01", "2026-03-02"]
    assert glue_job.parse_dates(None) is None and glue_job.parse_dates("") is None
    argv = ["job.py", "--JOB_NAME", "j", "--dates", "2026-03-01", "--JOB_RUN_ID=jr_1"]
    assert glue_job._optional(argv, "dates") == "2026-03-01"
    assert glue_job._optional(argv, "JOB_RUN_ID") == "jr_1"
    assert glue_job._optional(argv, "partitions") is None


@pytest.mark.slow
def test_stop_spark_ends_the_jvm_too(tmp_path):
    """SparkSession.stop() leaves the py4j JVM (GBs) alive; stop_spark must end it. In a child
    process, so the test session's shared Spark is untouched."""
    import subprocess
    import sys

    code = (
        "import os\n"
        "from seed_infra.etl.job import spark_session, stop_spark\n"
        "from pyspark import SparkContext\n"
        "s = spark_session(driver_memory='512m')\n"
        "pid = SparkContext._gateway.proc.pid\n"
        "stop_spark(s)\n"
        "alive = os.path.exists(f'/proc/{pid}') and open(f'/proc/{pid}/stat').read().split()[2] != 'Z'\n"
        "print('JVM', pid, 'alive' if alive else 'gone')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "gone" in out.stdout, out.stdout

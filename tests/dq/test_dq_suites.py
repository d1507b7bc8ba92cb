"""The gate on curated offers: a clean world passes, each realistic breakage fails on the right expectation."""

from __future__ import annotations

import pytest
from dq_support import END

from data_quality import tables
from seed_infra.world import breakage
from data_quality.suites import DQConfig
from data_quality.validate import curated_checks, run_checks, summarize

CFG = DQConfig(min_rows=500)


def _validate(df, reference, **kw):
    run = run_checks(curated_checks(tables.Table.from_frame(df), reference, CFG, end_date=END, **kw))
    return run, summarize(run)


@pytest.fixture(scope="module")
def clean_run(clean_offers, reference):
    return _validate(clean_offers, reference)


def test_clean_world_passes(clean_run):
    run, s = clean_run
    assert s["blocking_failures"] == 0, s["failed_expectations"]
    assert s["passed"] is True and s["failed_expectations"] == "none"
    names = {r["name"] for r in run.rows}
    for expected in ("offers.schema.columns", "offers.schema.types", "offers.offer_id.unique", "offers.price_usd.median_business", "offers.price_usd.business_vs_economy",
                     "offers.partitions.no_duplicated_day", "offers.window.freshness", "offers.airports.iata"):  # fmt: skip
        assert expected in names
    assert len(names) == len(run.rows), "expectation names must be unique"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing_column", {"offers.schema.columns", f"offers.{breakage.MISSING_COLUMN}.not_null"}),
        ("price_units", {"offers.price_usd.plausible_economy", "offers.price_usd.median_economy"}),
        ("null_burst", {"offers.price_usd.not_null"}),
        ("duplicated_day", {"offers.partitions.no_duplicated_day", "offers.partitions.event_ids_in_one_partition", "offers.offer_id.unique"}),
        ("stale_window", {"offers.window.freshness"}),
        ("shifted_distribution", {"offers.price_usd.business_vs_economy", "offers.price_usd.first_vs_economy"}),
    ],
)
def test_breakage_fails_on_the_right_expectation(clean_offers, reference, kind, expected):
    _, s = _validate(breakage.break_offers(clean_offers, kind, seed=1), reference)
    failed = set(s["failed_expectations"].split(","))
    assert s["passed"] is False and s["blocking_failures"] == len(failed)
    assert expected <= failed, f"{kind}: expected {expected} among {failed}"


def test_shifted_distribution_is_not_a_malformed_record(clean_offers, reference):
    """Halved business fares are still valid rows: only the distribution expectations catch them."""
    _, s = _validate(breakage.break_offers(clean_offers, "shifted_distribution"), reference)
    assert all(n.endswith("_vs_economy") for n in s["failed_expectations"].split(","))


def test_warnings_do_not_block(clean_offers, reference):
    df = clean_offers.copy()
    df.loc[df.index[:200], "fare_class"] = "economy"  # a format warning, not a blocking rule
    df = df[list(reversed(df.columns))]  # column order is a warning too
    run, s = _validate(df, reference)
    assert s["passed"] is True and s["blocking_failures"] == 0
    assert s["warnings"] >= 2
    assert {"offers.fare_class.format", "offers.schema.column_order"} <= set(s["warning_expectations"].split(","))


def test_freshness_is_a_warning_without_a_declared_end(clean_offers, reference):
    run = run_checks(curated_checks(tables.Table.from_frame(clean_offers), reference, CFG))  # no end date: vs today
    fresh = next(r for r in run.rows if r["name"] == "offers.window.freshness")
    assert fresh["severity"] == "warning"


def test_type_drift_is_caught(clean_offers, reference):
    df = clean_offers.copy()
    df["seats_left"] = df["seats_left"].astype("float64")
    run, s = _validate(df, reference)
    assert "offers.schema.types" in s["failed_expectations"].split(",")
    row = next(r for r in run.rows if r["name"] == "offers.schema.types")
    assert "seats_left:double" in str(row["observed"])


def test_unknown_airport_is_named(clean_offers, reference):
    df = clean_offers.copy()
    df.loc[df.index[:5], "origin"] = "QQQ"
    run, s = _validate(df, reference)
    assert "offers.airports.iata" in s["failed_expectations"]
    assert "QQQ" in str(next(r for r in run.rows if r["name"] == "offers.airports.iata")["observed"])


def test_partition_table_flags_a_replayed_day(clean_offers):
    part = tables.partition_table(breakage.break_offers(clean_offers, "duplicated_day"))
    assert part["fingerprint"].duplicated().any()
    assert part["shared_event_ids"].max() > 0


def test_unknown_breakage_kind_is_a_clear_error(clean_offers):
    with pytest.raises(ValueError, match="unknown breakage"):
        breakage.break_offers(clean_offers, "cosmic_rays")

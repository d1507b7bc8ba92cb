"""Behavioural tests of the trained models (Made With ML style: direction, invariance, minimum functionality).

The models are trained once per session by the project's own trainers on the in-process world
of ``conftest.py`` (a curated-like frame built without the generator + Spark ETL, so that the
tests take seconds and the world's effects are known). Each test edits copies of real test
rows, changing one thing, and checks the prediction moves the way the world says it must.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from eval_world import add_search_columns, fare_class_for

from core.cleaning import price_outlier_mask
from core.features import build_demand_table


@pytest.fixture(scope="module")
def test_offers(eval_splits, eval_world):
    splits, _ = eval_splits
    _, _, truth = eval_world
    offers = splits["test"]["offers"].copy()
    anomalous = set(truth.loc[truth["is_anomaly"], "offer_id"])
    offers["_normal"] = ~offers["offer_id"].isin(anomalous) & ~price_outlier_mask(offers)
    return offers


def _economy_rows(offers: pd.DataFrame, dtd_lo: int, dtd_hi: int, n: int = 40) -> pd.DataFrame:
    rows = offers[offers["_normal"] & (offers["cabin"] == "economy") & offers["days_to_departure"].between(dtd_lo, dtd_hi)]
    assert len(rows) >= 10, "too few rows for a behavioural test: enlarge the world"
    return rows.head(n).drop(columns="_normal")


# -- direction ----------------------------------------------------------------------------------
def test_price_rises_as_departure_nears(loaded_models, test_offers):
    model = loaded_models["price"]
    base = _economy_rows(test_offers, 20, 45)
    far, near = base.assign(days_to_departure=35), base.assign(days_to_departure=2)
    ratio = model.predict_price(near) / model.predict_price(far)
    assert np.mean(ratio > 1.0) >= 0.9, f"price fell closer to departure for {np.mean(ratio <= 1):.0%} of rows"
    assert np.median(ratio) > 1.3  # the world's booking-window curve is ~1.9x between 35 and 2 days


def test_price_rises_as_seats_run_out(loaded_models, test_offers):
    """As seats sell, lower fare buckets close: the offer moves to the bucket the inventory leaves open."""
    model = loaded_models["price"]
    base = _economy_rows(test_offers, 3, 15)
    plenty = base.assign(seats_left=110, fare_class=fare_class_for(110)[0])
    scarce = base.assign(seats_left=25, fare_class=fare_class_for(25)[0])
    ratio = model.predict_price(scarce) / model.predict_price(plenty)
    assert np.mean(ratio > 1.0) >= 0.9, f"price fell as seats ran out for {np.mean(ratio <= 1):.0%} of rows"
    assert np.median(ratio) > 1.1


# -- invariance ---------------------------------------------------------------------------------
def _relabel_users(offers: pd.DataFrame) -> pd.DataFrame:
    """Same searches, other users: new session/user ids and a rotated device."""
    devices = {"web": "mobile", "mobile": "app", "app": "web"}
    return offers.assign(
        session_id="other-" + offers["session_id"].astype(str),
        user_id="other-" + offers["user_id"].astype(str),
        device=offers["device"].map(devices),
    )


def test_demand_class_ignores_who_searched(loaded_models, test_offers, eval_world):
    model = loaded_models["demand"]
    _, outcomes, _ = eval_world
    offers = test_offers.drop(columns="_normal")
    original, _ = build_demand_table(offers, outcomes)
    edited, _ = build_demand_table(_relabel_users(offers), outcomes)
    assert len(original) == len(edited) > 50
    np.testing.assert_array_equal(model.predict_demand(original), model.predict_demand(edited))
    np.testing.assert_allclose(model.predict_demand_proba(original), model.predict_demand_proba(edited))


def test_price_ignores_session_and_user_ids(loaded_models, test_offers):
    model = loaded_models["price"]
    offers = test_offers.drop(columns="_normal").head(100)
    edited = offers.assign(session_id="x", user_id="y")
    np.testing.assert_allclose(model.predict_price(offers), model.predict_price(edited))


# -- minimum functionality ----------------------------------------------------------------------
def _typical_offers(offers: pd.DataFrame, n: int = 12) -> pd.DataFrame:
    """Normal offers priced like their competitors, one per search, in searches of >= 3 offers."""
    rows = offers[offers["_normal"] & offers["price_vs_competitor_median"].between(0.9, 1.1)
                  & (offers["num_offers_in_search"] >= 3)]
    rows = rows.drop_duplicates("event_id").head(n)
    assert len(rows) >= 5
    return rows


@pytest.mark.parametrize("factor", [8.0, 1 / 8.0], ids=["spike_x8", "drop_div8"])
def test_obvious_glitch_is_flagged(loaded_models, test_offers, factor):
    model = loaded_models["anomaly"]
    picked = _typical_offers(test_offers)
    glitched = test_offers.drop(columns="_normal").copy()
    hit = glitched["offer_id"].isin(picked["offer_id"])
    glitched.loc[hit, "price_usd"] *= factor
    glitched = add_search_columns(glitched)  # the ETL's per-search ratios, recomputed
    flags = model.is_anomaly(glitched.loc[hit])
    assert flags.all(), f"{(~flags).sum()} of {hit.sum()} glitch prices (x{factor:g}) not flagged"


def test_normal_price_is_not_flagged(loaded_models, test_offers):
    model = loaded_models["anomaly"]
    picked = _typical_offers(test_offers).drop(columns="_normal")
    assert not model.is_anomaly(picked).any()

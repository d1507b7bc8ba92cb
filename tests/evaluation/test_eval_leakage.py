"""The leakage check catches forbidden names and disguised copies of the label."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation import leakage
from core import contract


def _offers(n=200, seed=0):
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 200, n)
    price = 100 + 300 / (1 + days) + rng.normal(0, 10, n)
    return pd.DataFrame({
        "days_to_departure": days,
        "seats_left": rng.integers(0, 50, n),
        "cabin": rng.choice(["economy", "business"], n),
        "price_usd": price,
    })


def test_clean_price_features_pass():
    assert leakage.check_feature_names("price", contract.PRICE_FEATURES) == []
    out = leakage.check_leakage("price", ["days_to_departure", "seats_left", "cabin"], _offers())
    assert out["passed"] and out["checked_against"] == ["price_usd"] and out["reasons"] == []


def test_forbidden_names_per_model():
    assert leakage.check_feature_names("price", ["days_to_departure", "price_usd"]) == [
        "forbidden feature 'price_usd' in the price model's feature list"]
    assert leakage.check_feature_names("price", ["price_vs_route_median"])  # derived from the target
    assert leakage.check_feature_names("anomaly", ["price_vs_route_median"]) == []  # the anomaly model's input
    assert leakage.check_feature_names("demand", ["load_factor", "seats_sold", "session_id"])[0].startswith("forbidden")
    assert len(leakage.check_feature_names("demand", ["load_factor", "seats_sold", "session_id"])) == 3
    assert leakage.check_feature_names("anomaly", ["is_anomaly"])  # truth
    assert leakage.check_feature_names("price", []) == ["price model declares no features"]


def test_renamed_copy_of_price_is_caught():
    df = _offers()
    df["fare_total"] = df["price_usd"] * 1.07 + 2  # a leak hiding behind an innocent name
    out = leakage.check_leakage("price", ["days_to_departure", "fare_total"], df)
    assert not out["passed"]
    assert any("'fare_total' is near-identical to 'price_usd'" in r for r in out["reasons"])


def test_monotone_transform_of_price_is_caught():
    df = _offers()
    df["log_fare"] = np.log(df["price_usd"]) ** 3
    assert not leakage.check_leakage("price", ["log_fare"], df)["passed"]


def test_demand_label_encodings_are_caught():
    rng = np.random.default_rng(1)
    lf = rng.uniform(0.4, 1.0, 300)
    df = pd.DataFrame({
        "days_to_departure": rng.integers(0, 100, 300),
        "occupancy": lf,  # load factor under another name: thresholds give the class
        "crowd_level": None,
        "demand_class": [contract.demand_class(x) for x in lf],
    })
    df["crowd_level"] = df["demand_class"].map({"low": "quiet", "medium": "busy", "high": "packed"})
    out = leakage.check_leakage("demand", ["days_to_departure", "occupancy", "crowd_level"], df)
    assert not out["passed"]
    text = " ".join(out["reasons"])
    assert "'occupancy' separates the classes" in text
    assert "'crowd_level' maps one-to-one" in text
    assert "days_to_departure" not in text


def test_noisy_but_honest_demand_feature_passes():
    rng = np.random.default_rng(2)
    lf = rng.uniform(0.4, 1.0, 300)
    df = pd.DataFrame({"searches": lf * 100 + rng.normal(0, 8, 300),
                       "demand_class": [contract.demand_class(x) for x in lf]})
    assert leakage.check_leakage("demand", ["searches"], df)["passed"]


def test_anomaly_label_copy_is_caught_and_unchecked_features_listed():
    rng = np.random.default_rng(3)
    y = rng.random(200) < 0.1
    frame = pd.DataFrame({"glitch_flag": y.astype(float), "ratio": rng.lognormal(0, 0.2, 200)})
    out = leakage.check_leakage("anomaly", ["ratio", "glitch_flag", "derived_x"], frame, targets={"is_anomaly": pd.Series(y)})
    assert not out["passed"] and "'glitch_flag' is near-identical to 'is_anomaly'" in out["reasons"][0]
    assert out["unchecked_features"] == ["derived_x"]


def test_tiny_frames_are_not_judged_by_data():
    df = _offers(n=5)
    df["copy"] = df["price_usd"]
    assert leakage.check_feature_data(df, ["copy"], {"price_usd": df["price_usd"]}) == []

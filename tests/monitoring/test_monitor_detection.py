"""Drift is caught on the right features, quiet traffic stays quiet, degradation is caught.

Traffic is the price model's real inputs (the in-process world's curated offers), captured in
SageMaker's data-capture format, checked against the baseline of the training split.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from mon_support import START, baseline_dir, write_capture, write_ground_truth
from typer.testing import CliRunner

from core import monitoring_datasets as datasets
from monitoring import model_quality, monitor
from pipelines.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def price_baseline(mon_models, mon_splits, tmp_path_factory):
    meta = mon_models["price"].meta
    return meta, baseline_dir(meta, mon_splits["train"]["offers"], tmp_path_factory.mktemp("price-baseline"))


def _traffic(mon_splits, meta, n=600, seed=1, split="train"):
    offers = mon_splits[split]["offers"]
    return datasets.model_inputs(meta, offers.sample(n=min(n, len(offers)), random_state=seed))


def _dq(tmp_path, baseline, inputs, *extra, shapes=("object", "instances", "list", "csv", "base64")):
    meta, base = baseline
    cap = write_capture(tmp_path / "capture", inputs, shapes=shapes)
    (base / "model").mkdir(exist_ok=True)
    out = tmp_path / "out"
    result = runner.invoke(app, ["monitor", "data-quality", "--model", "price", "--capture", str(cap), "--baseline", str(base),
                                 "--out", str(out), "--registry", str(tmp_path / "no-registry"), *extra])
    violations = json.loads((out / "constraint_violations.json").read_text())["violations"] if (out / "constraint_violations.json").exists() else None
    return result, violations, out


def _flagged(violations):
    return {(v["feature_name"], v["constraint_check_type"]) for v in violations}


def test_training_period_traffic_gives_no_violation(tmp_path, mon_splits, price_baseline):
    result, violations, out = _dq(tmp_path, price_baseline, _traffic(mon_splits, price_baseline[0]))
    assert result.exit_code == 0, result.output
    assert violations == []
    metrics = json.loads((out / monitor.METRICS_FILE).read_text())
    assert metrics["Namespace"] == "aws/sagemaker/Endpoints/data-metrics"
    names = {d["MetricName"] for d in metrics["MetricData"]}
    assert "feature_baseline_drift_days_to_departure" in names and "feature_non_null_cabin" in names
    assert "<svg " in (out / "report.html").read_text()


def test_shifted_numeric_distributions_are_caught_on_those_features(tmp_path, mon_splits, price_baseline):
    inputs = _traffic(mon_splits, price_baseline[0], seed=2)
    inputs["days_to_departure"] = inputs["days_to_departure"] + 30  # travellers booking a month earlier
    inputs["departure_hour"] = inputs["departure_hour"] + 6  # airlines retiming to afternoon departures
    inputs["departure_month"] = 12  # the calendar moved on: not a drift (core.contract.CALENDAR_FEATURES)
    result, violations, _ = _dq(tmp_path, price_baseline, inputs)
    assert result.exit_code == 1
    drifted = {f for f, kind in _flagged(violations) if kind == "baseline_drift_check"}
    assert drifted == {"days_to_departure", "departure_hour"}, violations


def test_calendar_features_keep_type_and_completeness_checks(tmp_path, mon_splits, price_baseline):
    from core import contract

    meta, base = price_baseline
    cons = {f["name"]: f for f in json.loads((base / "constraints.json").read_text())["features"]}
    calendar = [c for c in contract.CALENDAR_FEATURES if c in cons]
    assert {"departure_month", "days_to_nearest_holiday"} <= set(calendar)
    assert all(cons[c]["monitoringConfigOverrides"] == {"perform_comparison": "Disabled"} for c in calendar)
    market = [c for c in contract.MARKET_STATE_FEATURES if c in cons]
    assert market and all(cons[c]["monitoringConfigOverrides"]["comparison_threshold"] == contract.MARKET_STATE_DRIFT_THRESHOLD
                          for c in market)  # fmt: skip
    assert all(cons[c]["monitoringConfigOverrides"] == {} for c in cons if c not in calendar and c not in market)
    inputs = _traffic(mon_splits, meta, seed=6).astype(object)
    inputs["departure_month"] = "December"  # words where a month number belongs
    inputs.loc[inputs.index[: len(inputs) // 3], "days_to_nearest_holiday"] = None
    result, violations, _ = _dq(tmp_path, price_baseline, inputs, shapes=("object",))
    assert result.exit_code == 1
    assert _flagged(violations) == {("departure_month", "data_type_check"), ("days_to_nearest_holiday", "completeness_check")}, violations


def _searches_in_arrival_order(offers, meta, n_searches, seed):
    """Whole searches, their offers back to back: how a search's quotes reach the endpoint."""
    events = offers["event_id"].drop_duplicates().sample(n=n_searches, random_state=seed)
    picked = offers.set_index("event_id").loc[events].reset_index()
    return datasets.model_inputs(meta, picked)


def test_offers_of_one_search_count_as_one_draw(tmp_path, mon_splits, price_baseline):
    """A window of few searches with many offers each is not many independent records: the offers
    share the search's days to departure. Quiet traffic stays quiet; a real shift is still caught."""
    from monitoring import analyzer

    meta, _ = price_baseline
    offers = mon_splits["train"]["offers"]
    inputs = _searches_in_arrival_order(offers, meta, 60, seed=8)
    per_search = len(inputs) / 60
    n_eff = analyzer.effective_count(inputs["days_to_departure"].to_numpy())
    assert per_search > 2 and 45 < n_eff < 75  # about one draw per search
    assert analyzer.effective_count(inputs["days_to_departure"].sample(frac=1, random_state=0).to_numpy()) > 0.8 * len(inputs)
    quiet, shifted = [], []
    for seed in range(4):
        w = _searches_in_arrival_order(offers, meta, 60, seed=20 + seed)
        r, v, _ = _dq(tmp_path / f"q{seed}", price_baseline, w, shapes=("object",))
        quiet.append(r.exit_code)
        w = w.assign(days_to_departure=w["days_to_departure"] + 20)
        r, v, _ = _dq(tmp_path / f"s{seed}", price_baseline, w, shapes=("object",))
        shifted.append({f for f, kind in _flagged(v) if kind == "baseline_drift_check"})
    assert quiet == [0, 0, 0, 0]
    assert all(s == {"days_to_departure"} for s in shifted), shifted


def test_unseen_categories_and_mix_shift_are_caught_on_those_features(tmp_path, mon_splits, price_baseline):
    inputs = _traffic(mon_splits, price_baseline[0], seed=3)
    rng = np.random.default_rng(0)
    new_airline = rng.random(len(inputs)) < 0.25
    inputs.loc[new_airline, "airline"] = "ZZ"  # a carrier the model never saw
    inputs["cabin"] = "business"  # a corporate-travel campaign: only business searches
    result, violations, _ = _dq(tmp_path, price_baseline, inputs)
    assert result.exit_code == 1
    flagged = _flagged(violations)
    assert ("airline", "categorical_values_check") in flagged
    assert ("airline", "baseline_drift_check") in flagged
    assert ("cabin", "baseline_drift_check") in flagged
    assert ("cabin", "categorical_values_check") not in flagged  # business is a known cabin
    # fare classes follow the cabin mix in this world; nothing else moves
    assert {f for f, _ in flagged} <= {"airline", "cabin", "fare_class"}, violations


def test_type_completeness_and_column_problems(tmp_path, mon_splits, price_baseline):
    inputs = _traffic(mon_splits, price_baseline[0], seed=4).astype(object)
    inputs["departure_hour"] = "morning"  # a partner sends words
    inputs.loc[inputs.index[: len(inputs) // 3], "days_to_nearest_holiday"] = None  # a feed leaves a field null
    inputs = inputs.drop(columns=["trip_type"]).assign(promo_code="X1")
    result, violations, _ = _dq(tmp_path, price_baseline, inputs, shapes=("object",))
    assert result.exit_code == 1
    flagged = _flagged(violations)
    assert ("departure_hour", "data_type_check") in flagged
    assert ("days_to_nearest_holiday", "completeness_check") in flagged
    assert ("trip_type", "missing_column_check") in flagged
    assert ("promo_code", "extra_column_check") in flagged


def test_window_selects_records_by_inference_time(tmp_path, mon_splits, price_baseline):
    quiet = _traffic(mon_splits, price_baseline[0], n=300, seed=5)
    shifted = quiet.assign(days_to_departure=quiet["days_to_departure"] + 60)
    both = pd.concat([quiet, shifted], ignore_index=True)  # 300 quiet records, then 300 shifted ones
    half = (START + dt.timedelta(seconds=30 * 300)).isoformat()
    result, violations, _ = _dq(tmp_path, price_baseline, both, "--until", half)
    assert result.exit_code == 0 and violations == []
    result, violations, _ = _dq(tmp_path / "later", price_baseline, both, "--since", half)
    assert result.exit_code == 1 and {f for f, _ in _flagged(violations)} == {"days_to_departure"}


def test_bad_input_is_a_clear_error(tmp_path, price_baseline):
    result = runner.invoke(app, ["monitor", "data-quality", "--model", "price", "--capture", str(tmp_path / "nothing"),
                                 "--baseline", str(price_baseline[1]), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["monitor", "data-quality", "--model", "prices", "--capture", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "prices" in result.output
    (tmp_path / "cap" / "2026" / "04" / "01" / "08").mkdir(parents=True)
    (tmp_path / "cap" / "2026" / "04" / "01" / "08" / "x.jsonl").write_text('{"captureData": {}}\n')
    result = runner.invoke(app, ["monitor", "data-quality", "--model", "price", "--capture", str(tmp_path / "cap"),
                                 "--baseline", str(price_baseline[1]), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "x.jsonl:1" in result.output and "endpointInput" in result.output


# ---------------------------------------------------------------------------------------------
# Model quality: ground truth arriving later, merged by inference id
# ---------------------------------------------------------------------------------------------
MIDNIGHT = START.replace(hour=0)


def _price_quality_setup(tmp_path, mon_models, mon_splits, realised_factor, days=4, per_day=200):
    from core.cleaning import price_outlier_mask

    model = mon_models["price"]
    offers = mon_splits["test"]["offers"]
    offers = offers.loc[~price_outlier_mask(offers)]  # glitch fares are the anomaly model's business
    offers = offers.sample(n=days * per_day, random_state=7, replace=True).reset_index(drop=True)
    preds = model.predict_price(offers)
    ids = [f"offer-{i}" for i in range(len(offers))]
    every = dt.timedelta(days=1) / per_day
    write_capture(tmp_path / "capture", datasets.model_inputs(model.meta, offers), [{"price_usd": float(p)} for p in preds],
                  every=every, ids=ids, start=MIDNIGHT)
    booked = np.random.default_rng(3).random(len(offers)) < 0.5  # only booked quotes get a realised price
    day = np.arange(len(offers)) // per_day
    realised = offers["price_usd"].to_numpy() * np.where(day >= days // 2, realised_factor, 1.0)
    delivered = [MIDNIGHT + i * every + dt.timedelta(hours=6) for i in range(len(offers))]
    write_ground_truth(tmp_path / "gt", [i for i, b in zip(ids, booked) if b], [round(float(r), 2) for r, b in zip(realised, booked) if b],
                       [d for d, b in zip(delivered, booked) if b])
    y = offers["price_usd"].to_numpy()
    baseline_rmse = float(np.sqrt(np.mean((preds - y) ** 2)))
    return baseline_rmse


def test_price_degradation_shows_when_ground_truth_does(tmp_path, mon_models, mon_splits):
    baseline_rmse = _price_quality_setup(tmp_path, mon_models, mon_splits, realised_factor=1.25)
    constraints = model_quality.constraints_from_gates("price", {"PriceRmseMax": 1.5 * baseline_rmse, "PriceR2Min": 0.5})
    result = monitor.run_model_quality("price", tmp_path / "capture", tmp_path / "gt", tmp_path / "out", constraints=constraints,
                                       now=START + dt.timedelta(days=5))
    judged = [w for w in result.windows if w.statistics]
    assert len(judged) == 4 and all(w.labelled > 50 for w in judged)
    bad = [w.start[:10] for w in result.windows if w.violations["violations"]]
    assert bad == ["2026-04-03", "2026-04-04"]  # the fare increase, and only it
    assert {v["metric_name"] for w in result.windows for v in w.violations["violations"]} >= {"rmse"}
    metrics = json.loads((tmp_path / "out" / monitor.METRICS_FILE).read_text())
    assert metrics["Namespace"] == "aws/sagemaker/Endpoints/model-metrics"
    assert {d["MetricName"] for d in metrics["MetricData"]} >= {"rmse", "r2", "mae"}


def test_labels_not_yet_delivered_are_not_seen(tmp_path, mon_models, mon_splits):
    _price_quality_setup(tmp_path, mon_models, mon_splits, realised_factor=1.0, days=2)
    early = monitor.run_model_quality("price", tmp_path / "capture", tmp_path / "gt", tmp_path / "o1",
                                      now=MIDNIGHT + dt.timedelta(hours=5), min_labels=1)
    assert sum(w.labelled for w in early.windows) == 0  # every label arrives 6 h after its quote
    later = monitor.run_model_quality("price", tmp_path / "capture", tmp_path / "gt", tmp_path / "o2",
                                      now=START + dt.timedelta(days=3), min_labels=1)
    assert 150 < sum(w.labelled for w in later.windows) < 250  # about half the 400 quotes were booked


def test_demand_shock_fails_the_accuracy_gate_via_cli(tmp_path, mon_models, mon_splits):
    model = mon_models["demand"]
    flights = mon_splits["test"]["flights"].dropna(subset=["demand_class"]).reset_index(drop=True)
    flights = flights.sample(n=400, random_state=1, replace=len(flights) < 400).reset_index(drop=True)
    pred = model.predict_demand(flights)
    ids = [f"{k}/{i}" for i, k in enumerate(flights["flight_key"])]
    every = dt.timedelta(days=2) / len(flights)
    write_capture(tmp_path / "capture", datasets.model_inputs(model.meta, flights), [{"demand_class": str(p)} for p in pred],
                  endpoint="demand-forecast-endpoint", every=every, ids=ids, start=MIDNIGHT)
    day = np.arange(len(flights)) * every // dt.timedelta(days=1)
    truth = np.where(day == 1, "high", flights["demand_class"].astype(str))  # a demand shock on the second day
    write_ground_truth(tmp_path / "gt", ids, list(truth), [START + dt.timedelta(days=3)] * len(ids))
    out = tmp_path / "out"
    result = runner.invoke(app, ["monitor", "model-quality", "--model", "demand", "--capture", str(tmp_path / "capture"),
                                 "--ground-truth", str(tmp_path / "gt"), "--out", str(out), "--now", "2026-04-05T00:00:00Z",
                                 "--registry", str(tmp_path / "none")])
    summary = json.loads((out / "model_quality.json").read_text())
    acc = [w["metrics"]["accuracy"] for w in summary["windows"]]
    assert result.exit_code == 1, result.output
    assert acc[0] > acc[1] and acc[1] < 0.85
    assert [bool(w["violations"]) for w in summary["windows"]] == [acc[0] < 0.85, True]


def test_anomaly_precision_drop_is_caught_from_confirmed_incidents(tmp_path):
    """Day 1: 40 flags, 38 confirmed. Day 2, a network-wide refiling the model mistakes for glitches:
    120 flags, 40 confirmed. Only confirmed incidents arrive as ground truth; an unconfirmed flag
    counts as a false alarm once the 72 h confirmation horizon has passed."""
    n_per_day = 1000
    flags = np.zeros(2 * n_per_day, dtype=bool)
    flags[:40] = True
    flags[n_per_day:n_per_day + 120] = True
    confirmed = np.zeros_like(flags)
    confirmed[:38] = True
    confirmed[n_per_day:n_per_day + 40] = True
    confirmed[500:505] = True  # incidents the model missed (recall, not gated)
    ids = [f"offer-{i}" for i in range(len(flags))]
    inputs = pd.DataFrame({"price_vs_route_median": np.where(flags, 3.0, 1.0)})
    every = dt.timedelta(days=1) / n_per_day
    write_capture(tmp_path / "capture", inputs, [{"anomaly_score": 0.9 if f else 0.1, "is_anomaly": bool(f)} for f in flags],
                  endpoint="anomaly-endpoint", every=every, ids=ids, start=MIDNIGHT)
    when = [MIDNIGHT + i * every + dt.timedelta(hours=30) for i in range(len(flags))]
    write_ground_truth(tmp_path / "gt", [i for i, c in zip(ids, confirmed) if c], ["1"] * int(confirmed.sum()),
                       [w for w, c in zip(when, confirmed) if c])
    out = tmp_path / "out"
    result = runner.invoke(app, ["monitor", "model-quality", "--model", "anomaly", "--capture", str(tmp_path / "capture"),
                                 "--ground-truth", str(tmp_path / "gt"), "--out", str(out), "--now", "2026-04-06T00:00:00Z",
                                 "--registry", str(tmp_path / "none")])
    assert result.exit_code == 1, result.output
    windows = json.loads((out / "model_quality.json").read_text())["windows"]
    assert [round(w["metrics"]["precision"], 3) for w in windows] == [0.95, round(40 / 120, 3)]
    assert [bool(w["violations"]) for w in windows] == [False, True]
    stats = json.loads((out / "windows" / "2026-04-02T0000" / "statistics.json").read_text())
    assert stats["binary_classification_metrics"]["confusion_matrix"]["1"]["1"] == 40
    # two days later the second day's unconfirmed flags are not yet known to be false alarms
    early = runner.invoke(app, ["monitor", "model-quality", "--model", "anomaly", "--capture", str(tmp_path / "capture"),
                                "--ground-truth", str(tmp_path / "gt"), "--out", str(tmp_path / "early"),
                                "--now", "2026-04-03T12:00:00Z", "--registry", str(tmp_path / "none")])
    day2 = json.loads((tmp_path / "early" / "model_quality.json").read_text())["windows"][1]
    assert day2["labelled"] < n_per_day
    assert early.exit_code == 0  # no alarm yet: only the confirmations are in


def test_route_date_aggregates_count_route_dates_not_flights(tmp_path, mon_models, mon_splits):
    """The demand model's route-date features (search counts, trend, share of the route) carry one
    value per route-date and day, whatever the order flights arrive in: on one search day's
    flights, shuffled, they raise no drift; a surge in route-date searches is caught on them.
    (Not the whole model's verdict: this small world's history-dependent features, e.g. cumulative
    search counts, still grow across its first weeks.)"""
    from core import contract
    from monitoring import analyzer

    meta = mon_models["demand"].meta
    flights = mon_splits["train"]["flights"]
    base = baseline_dir(meta, flights, tmp_path / "baseline")
    days = sorted(flights["search_date"].unique())[-6:]
    codes, surged = [], []
    for i, day in enumerate(days[:3]):
        window = datasets.model_inputs(meta, flights.loc[flights["search_date"] == day].sample(frac=1, random_state=i))
        groups = analyzer.unit_count(window, "route_date_share_of_route", contract.SHARED_VALUE_UNITS["route_date_share_of_route"])
        assert groups < 0.7 * window["route_date_share_of_route"].notna().sum()  # flights of a route-date share it
        cap = write_capture(tmp_path / f"cap{i}", window, endpoint="demand-forecast-endpoint")
        result = runner.invoke(app, ["monitor", "data-quality", "--model", "demand", "--capture", str(cap), "--baseline", str(base),
                                     "--out", str(tmp_path / f"out{i}"), "--registry", str(tmp_path / "none")])
        v = json.loads((tmp_path / f"out{i}" / "constraint_violations.json").read_text())["violations"]
        codes.append({f for f, kind in _flagged(v) if kind == "baseline_drift_check"} & set(contract.SHARED_VALUE_UNITS))
        busy = window.assign(route_date_searches_day=window["route_date_searches_day"] * 4,
                             route_date_searches_7d=window["route_date_searches_7d"] * 4)
        cap = write_capture(tmp_path / f"busy{i}", busy, endpoint="demand-forecast-endpoint")
        runner.invoke(app, ["monitor", "data-quality", "--model", "demand", "--capture", str(cap), "--baseline", str(base),
                            "--out", str(tmp_path / f"bout{i}"), "--registry", str(tmp_path / "none")])
        v = json.loads((tmp_path / f"bout{i}" / "constraint_violations.json").read_text())["violations"]
        surged.append({f for f, kind in _flagged(v) if kind == "baseline_drift_check"})
    assert codes == [set(), set(), set()], codes
    assert all(s >= {"route_date_searches_day", "route_date_searches_7d"} for s in surged), surged

"""Thresholds from the baseline's own daily windows (``analyzer.calibrate_constraints``): a quiet
market's days differ from the baseline by more than independent records would, because a day's
records share searches and whole days differ (volume, weekday). Calibrated on the baseline's
days, the quiet days pass and real shifts are still caught."""

from __future__ import annotations

import json
import math

import jsonschema
import numpy as np
import pandas as pd
import pytest
from mm_schemas import CONSTRAINTS
from scipy import stats as sps

from monitoring import analyzer, job

DAYS = 28


def _day(rng: np.random.Generator, weekday: int) -> pd.DataFrame:
    """One search day: the day's volume varies (a busy day lifts every route's count), searches
    return 10 offers that share the search's route volume, horizon and trip type, Saturdays bring
    more leisure trips, and a tenth of the days lose a field on a block of searches."""
    searches = rng.poisson(250 * rng.lognormal(0.0, 0.2))
    routes = rng.choice(40, searches, p=np.arange(40, 0, -1) / np.arange(40, 0, -1).sum())
    volume = np.bincount(routes, minlength=40)[routes]
    horizon = rng.gamma(2.0, 12.0 * rng.lognormal(0.0, 0.1), searches).round()
    leisure = rng.random(searches) < (0.5 if weekday == 5 else 0.3)
    per = 10
    frame = pd.DataFrame({"route_searches_day": np.repeat(volume, per), "days_to_departure": np.repeat(horizon, per),
                          "trip_type": np.where(np.repeat(leisure, per), "round_trip", "one_way"),
                          "price_ratio": rng.lognormal(0.0, 0.3, searches * per)})  # fmt: skip
    seats = rng.integers(0, 9, len(frame)).astype(float)
    if rng.random() < 0.3:  # some days a block of flights has no economy quote
        seats[: len(frame) // 4] = np.nan
    frame["economy_seats"] = seats
    return frame


def _world(seed: int, days: int):
    rng = np.random.default_rng(seed)
    frames = [_day(rng, d % 7) for d in range(days)]
    return frames


def _violations(base_dir, window: pd.DataFrame) -> set[tuple[str, str]]:
    profiles = analyzer.profile(window)
    stats = analyzer.statistics(window, profiles=profiles)
    v, _ = analyzer.check(profiles, stats, json.loads((base_dir / "statistics.json").read_text()),
                          json.loads((base_dir / "constraints.json").read_text()))  # fmt: skip
    return {(x["feature_name"], x["constraint_check_type"]) for x in v["violations"]}


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    days = _world(3, DAYS + 21)
    base_days, quiet = days[:DAYS], days[DAYS:]
    base = pd.concat(base_days, ignore_index=True)
    windows = np.concatenate([np.full(len(f), i) for i, f in enumerate(base_days)])
    root = tmp_path_factory.mktemp("windows")
    plain = job.data_quality(base, root / "plain")
    calibrated = job.data_quality(base, root / "calibrated", windows=windows)
    return root, base_days, quiet, plain, calibrated


def test_quiet_days_alarm_on_plain_constraints_and_not_on_calibrated_ones(baselines):
    root, _, quiet, _, _ = baselines
    plain = sum(bool(_violations(root / "plain", w)) for w in quiet)
    calibrated = [_violations(root / "calibrated", w) for w in quiet]
    assert plain >= 5, plain  # the day-level variation is real: records-based limits alarm on many quiet days
    assert sum(bool(v) for v in calibrated) <= 1, calibrated


def test_every_baseline_day_passes_its_own_calibrated_constraints(baselines):
    """Traffic drawn from the training period gives no violation."""
    root, base_days, _, _, written = baselines
    assert [w for w in base_days if _violations(root / "calibrated", w)] == []
    cons = {f["name"]: f for f in written["constraints"]["features"]}
    report = {c.name: c for c in written["calibration"]}
    for name in ("route_searches_day", "days_to_departure"):
        threshold = cons[name]["monitoringConfigOverrides"]["comparison_threshold"]
        assert threshold >= max(report[name].distances) and threshold > 0.1
    assert cons["trip_type"]["monitoringConfigOverrides"]["categorical_comparison_threshold"] == report["trip_type"].threshold
    assert cons["economy_seats"]["completeness"] <= min(report["economy_seats"].completeness)
    assert cons["price_ratio"]["completeness"] == 1.0  # never missing: nothing to widen
    jsonschema.validate(written["constraints"], CONSTRAINTS)  # still AWS's format: AWS's analyzer applies the same thresholds


def test_real_shifts_are_still_caught_on_the_shifted_feature(baselines):
    root, _, quiet, _, _ = baselines
    for w in quiet[:5]:
        earlier = w.assign(days_to_departure=w["days_to_departure"] + 14)
        assert {f for f, _ in _violations(root / "calibrated", earlier)} == {"days_to_departure"}
        rng = np.random.default_rng(0)
        business = w.assign(trip_type=np.where(rng.random(len(w)) < 0.3, "multi_city", w["trip_type"]))
        assert ("trip_type", "categorical_values_check") in _violations(root / "calibrated", business)
        flipped = w.assign(trip_type=np.where(w["trip_type"] == "one_way", "round_trip", "one_way"))
        assert ("trip_type", "baseline_drift_check") in _violations(root / "calibrated", flipped)
        gaps = w.assign(economy_seats=np.where(np.arange(len(w)) < len(w) * 0.6, np.nan, w["economy_seats"]))
        assert ("economy_seats", "completeness_check") in _violations(root / "calibrated", gaps)


def test_tail_ratio_matches_the_statistics_known_shapes():
    """Continuous: the Kolmogorov distribution; binary: a half-normal. Their (1 - alpha) quantile
    over their median, which is what turns a median window distance into a threshold."""
    alpha = 0.01 / 30
    continuous = analyzer.null_tail_ratio(np.full(2000, 1 / 2000), numeric=True, alpha=alpha)
    kolmogorov = sps.kstwobign.isf(alpha) / sps.kstwobign.median()
    assert continuous == pytest.approx(kolmogorov, rel=0.08)  # 100 support points: a little under the sup
    binary = analyzer.null_tail_ratio(np.array([0.3, 0.7]), numeric=False, alpha=alpha)
    assert binary == pytest.approx(sps.norm.isf(alpha / 2) / sps.norm.isf(0.25), rel=0.08)
    assert math.isnan(analyzer.null_tail_ratio(np.array([1.0]), numeric=False, alpha=alpha))


def test_too_few_windows_leave_the_constraints_as_suggested(baselines):
    _, base_days, _, plain, _ = baselines
    base = pd.concat(base_days[:5], ignore_index=True)
    windows = np.concatenate([np.full(len(f), i) for i, f in enumerate(base_days[:5])])
    suggested = analyzer.suggest_constraints(analyzer.statistics(base))
    same, report = analyzer.calibrate_constraints(base, windows, suggested)
    assert same == suggested and report == []
    with pytest.raises(ValueError, match="window labels"):
        analyzer.calibrate_constraints(base, windows[:-1], suggested)


def test_monitor_baseline_cli_calibrates_on_the_splits_search_days(tmp_path, mon_models, mon_splits):
    from typer.testing import CliRunner

    from core import contract
    from core import monitoring_datasets as datasets
    from pipelines.cli import app

    split = tmp_path / "train"
    split.mkdir()
    offers = mon_splits["train"]["offers"]
    offers.to_parquet(split / "offers.parquet")
    out = tmp_path / "baseline"
    result = CliRunner().invoke(app, ["monitor", "baseline", "--model", "price", "--data", str(split),
                                      "--model-dir", str(mon_models["price"].model_dir), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    cons = json.loads((out / "constraints.json").read_text())
    jsonschema.validate(cons, CONSTRAINTS)
    widened = {f["name"] for f in cons["features"] if f["name"] not in contract.MARKET_STATE_FEATURES
               and f["monitoringConfigOverrides"].get("comparison_threshold", 0.1) > 0.1}
    assert widened and not widened & set(contract.CALENDAR_FEATURES)
    # each of the split's days, checked against the baseline, passes it
    inputs, days = datasets.data_baseline_days(mon_models["price"].meta, offers)
    assert len(days) == len(inputs) and len(set(days)) == offers["dt"].nunique()
    for day in sorted(set(days))[:4]:
        assert _violations(out, inputs.loc[days == day].reset_index(drop=True)) == set(), day

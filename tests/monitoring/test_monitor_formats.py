"""The files follow AWS Model Monitor's documented formats (JSON Schemas in mm_schemas.py), the
KLL sketches are real quantile sketches, and the metrics are valid PutMetricData requests."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
from mm_schemas import CONSTRAINTS, MODEL_CONSTRAINTS, MODEL_STATISTICS, MODEL_VIOLATIONS, STATISTICS, VIOLATIONS

from monitoring import analyzer, job, model_quality, monitor


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    n = 20_000
    base = pd.DataFrame({
        "price": rng.lognormal(5, 0.5, n), "stops": rng.integers(0, 3, n), "cabin": rng.choice(["economy", "business"], n, p=[0.8, 0.2]),
        "nonstop": rng.random(n) < 0.4, "ratio": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
    })
    cur = base.sample(3000, random_state=1).reset_index(drop=True)
    cur["price"] = cur["price"] * 1.5
    cur.loc[:99, "cabin"] = "first"
    return base, cur.drop(columns=["nonstop"]).assign(extra=1)


def test_data_quality_files_follow_the_documented_schemas(frames, tmp_path):
    base, cur = frames
    written = job.data_quality(base, tmp_path / "baseline")
    jsonschema.validate(json.loads((tmp_path / "baseline" / "statistics.json").read_text()), STATISTICS)
    jsonschema.validate(json.loads((tmp_path / "baseline" / "constraints.json").read_text()), CONSTRAINTS)
    checked = job.data_quality(cur, tmp_path / "check", tmp_path / "baseline" / "statistics.json", tmp_path / "baseline" / "constraints.json")
    violations = json.loads((tmp_path / "check" / "constraint_violations.json").read_text())
    jsonschema.validate(violations, VIOLATIONS)
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in violations["violations"]}
    assert kinds == {("price", "baseline_drift_check"), ("cabin", "categorical_values_check"), ("nonstop", "missing_column_check"),
                     ("extra", "extra_column_check")}
    stats = {f["name"]: f for f in written["statistics"]["features"]}
    assert [stats[c]["inferred_type"] for c in ("price", "stops", "cabin", "nonstop")] == ["Fractional", "Integral", "String", "Integral"]
    assert stats["ratio"]["numerical_statistics"]["common"] == {"num_present": int(base["ratio"].notna().sum()),
                                                                "num_missing": int(base["ratio"].isna().sum())}
    assert stats["price"]["numerical_statistics"]["mean"] == pytest.approx(base["price"].mean())
    assert len(stats["price"]["numerical_statistics"]["distribution"]["kll"]["buckets"]) == 10
    cons = {f["name"]: f for f in written["constraints"]["features"]}
    assert cons["cabin"]["string_constraints"]["domains"] == ["business", "economy"]
    assert cons["ratio"]["completeness"] == pytest.approx(base["ratio"].notna().mean())
    assert checked["violations"] == violations


def test_a_bad_file_fails_the_schema():
    stats = analyzer.statistics(pd.DataFrame({"x": [1.0, 2.0]}))
    stats["features"][0]["numerical_statistics"]["stddev"] = 1.0  # not the documented name
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(stats, STATISTICS)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"violations": [{"feature_name": "x", "constraint_check_type": "drift", "description": ""}]}, VIOLATIONS)


def test_kll_sketch_data_reconstructs_the_distribution():
    x = np.random.default_rng(1).normal(100, 15, 200_000)
    feat = analyzer.profile_column("x", pd.Series(x)).statistics
    kll = feat["numerical_statistics"]["distribution"]["kll"]
    items, weights = analyzer.weighted_items(kll)
    assert weights.sum() == pytest.approx(len(x), rel=0.01)  # level i items weigh 2^i
    assert len(items) < 5000  # a sketch, not the data
    for q in (0.05, 0.5, 0.95):
        assert analyzer.cdf_at(items, weights, np.array([np.quantile(x, q)]))[0] == pytest.approx(q, abs=0.01)
    assert analyzer.kll_distance(kll, kll) == 0.0
    shifted = analyzer.profile_column("x", pd.Series(x + 15)).statistics["numerical_statistics"]["distribution"]["kll"]
    assert analyzer.kll_distance(kll, shifted) == pytest.approx(0.383, abs=0.02)  # KS of N(0,1) vs N(1,1)


def test_a_baseline_written_by_aws_analyzer_is_read_the_same_way():
    """A Deequ-written sketch (c=0.64, k=2048, one level of raw items) compares like ours."""
    values = list(map(float, range(100)))
    aws_like = {"version": 0.0, "dataset": {"item_count": 100}, "features": [{
        "name": "x", "inferred_type": "Integral",
        "numerical_statistics": {"common": {"num_present": 100, "num_missing": 0}, "mean": 49.5, "sum": 4950.0, "std_dev": 28.86,
                                 "min": 0.0, "max": 99.0, "distribution": {"kll": {
                                     "buckets": [{"lower_bound": 0.0, "upper_bound": 9.9, "count": 10.0}],
                                     "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": [values]}}}}}]}
    jsonschema.validate(aws_like, STATISTICS)
    cons = analyzer.suggest_constraints(aws_like)
    cur = pd.DataFrame({"x": np.arange(50, 150)})
    profiles = analyzer.profile(cur)
    violations, checks = analyzer.check(profiles, analyzer.statistics(cur, profiles=profiles), aws_like, cons)
    assert checks[0].drift == pytest.approx(0.5)
    assert [v["constraint_check_type"] for v in violations["violations"]] == ["baseline_drift_check"]


def test_robust_comparison_needs_more_than_sampling_noise():
    rng = np.random.default_rng(2)
    base = pd.DataFrame({"x": rng.normal(size=50_000)})
    stats = analyzer.statistics(base)
    small = pd.DataFrame({"x": rng.normal(size=25)})  # 25 records: a distance of 0.15 is noise
    profiles = analyzer.profile(small)
    cur = analyzer.statistics(small, profiles=profiles)
    robust = analyzer.suggest_constraints(stats)
    simple = analyzer.suggest_constraints(stats, {"distribution_constraints": {"comparison_method": "Simple", "comparison_threshold": 0.05}})
    _, checks = analyzer.check(profiles, cur, stats, robust)
    assert checks[0].drift_critical > checks[0].drift
    assert analyzer.check(profiles, cur, stats, robust)[0]["violations"] == []
    assert checks[0].drift > 0.05
    assert analyzer.check(profiles, cur, stats, simple)[0]["violations"] != []


def test_model_quality_files_follow_the_documented_schemas(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.normal(200, 40, 500)
    reg = model_quality.statistics("Regression", y, y + rng.normal(0, 10, 500))
    assert reg["regression_metrics"]["rmse"]["value"] == pytest.approx(10, rel=0.15)
    assert isinstance(reg["regression_metrics"]["rmse"]["standard_deviation"], float)
    labels = rng.integers(0, 2, 300)
    binary = model_quality.statistics("BinaryClassification", labels, np.where(rng.random(300) < 0.9, labels, 1 - labels),
                                      score=rng.random(300))
    classes = ["low", "medium", "high"]
    yc = rng.choice(classes, 150)
    multi = model_quality.statistics("MulticlassClassification", yc, yc, classes=classes)
    assert multi["multiclass_classification_metrics"]["accuracy"]["standard_deviation"] == "NaN"  # < 200 records
    assert multi["multiclass_classification_metrics"]["confusion_matrix"]["low"]["low"] == int((yc == "low").sum())
    for stats in (reg, binary, multi):
        jsonschema.validate(stats, MODEL_STATISTICS)
    for model in ("price", "demand", "anomaly"):
        jsonschema.validate(model_quality.constraints_from_gates(model), MODEL_CONSTRAINTS)
    gates = model_quality.constraints_from_gates("price")  # RMSE < 15 and R2 > 0.85 keep the model
    assert model_quality.check(reg, gates) == {"violations": []}  # RMSE 10, R2 0.94
    worse = model_quality.statistics("Regression", y, y + rng.normal(0, 20, 500))  # RMSE 20, R2 0.75
    violations = model_quality.check(worse, gates)
    jsonschema.validate(violations, MODEL_VIOLATIONS)
    assert sorted(v["metric_name"] for v in violations["violations"]) == ["r2", "rmse"]
    assert {v["constraint_check_type"] for v in violations["violations"]} == {"GreaterThanOrEqualToThreshold", "LessThanOrEqualToThreshold"}


def test_model_quality_baselines_write_and_read_the_documented_constraints(tmp_path):
    """The ModelQualityCheck job's constraints (the gates, or suggested from the baseline's own
    metrics) are AWS's model-quality constraints; a constraints file as AWS's baselining job
    suggests it (the Developer Guide's example shape) is read back and judged the same way."""
    rng = np.random.default_rng(5)
    cases = {
        "Regression": pd.DataFrame({"prediction": rng.normal(100, 10, 300), "label": rng.normal(100, 10, 300)}),
        "BinaryClassification": pd.DataFrame({"prediction": rng.integers(0, 2, 300), "label": rng.integers(0, 2, 300),
                                              "probability": rng.random(300)}),
        "MulticlassClassification": pd.DataFrame({"prediction": rng.choice(["low", "high"], 300),
                                                  "label": rng.choice(["low", "high"], 300)}),
    }
    for problem, df in cases.items():
        out = job.model_quality_baseline(df, tmp_path / problem, problem, "prediction", "label", "probability")
        written = json.loads((tmp_path / problem / "constraints.json").read_text())
        assert written == out["constraints"]
        jsonschema.validate(written, MODEL_CONSTRAINTS)
        section = model_quality.SECTIONS[problem][1]
        assert set(written) == {"version", section} and written[section]
        stats = json.loads((tmp_path / problem / "statistics.json").read_text())
        jsonschema.validate(stats, MODEL_STATISTICS)
        assert model_quality.check(stats, written) == {"violations": []}  # a baseline meets its own suggestion
    gated = job.model_quality_baseline(cases["Regression"], tmp_path / "gated", "Regression", "prediction", "label",
                                       constraints=model_quality.constraints_from_gates("price"))["constraints"]
    jsonschema.validate(gated, MODEL_CONSTRAINTS)
    assert gated["regression_constraints"]["rmse"] == {"threshold": 15.0, "comparison_operator": "GreaterThanOrEqualToThreshold"}

    aws_suggested = {"version": 0.0, "binary_classification_constraints": {
        "recall": {"threshold": 0.78, "comparison_operator": "LessThanThreshold"},
        "f1": {"threshold": "8.0E-1", "comparison_operator": "LessThanThreshold"},  # as the analyzer may write it
        "false_positive_rate": {"threshold": 0.1, "comparison_operator": "GreaterThanThreshold"}}}
    y = np.array([1] * 50 + [0] * 50)
    pred = np.array([1] * 30 + [0] * 20 + [1] * 20 + [0] * 30)  # recall 0.6, FPR 0.4
    violations = model_quality.check(model_quality.statistics("BinaryClassification", y, pred), aws_suggested)
    jsonschema.validate(violations, MODEL_VIOLATIONS)
    assert {(v["metric_name"], v["constraint_check_type"]) for v in violations["violations"]} == {
        ("recall", "LessThanThreshold"), ("f1", "LessThanThreshold"), ("false_positive_rate", "GreaterThanThreshold")}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 0.0, "regression_constraints": {"rmse_p90": RULE_EXAMPLE}}, MODEL_CONSTRAINTS)


RULE_EXAMPLE = {"threshold": 1.0, "comparison_operator": "GreaterThanThreshold"}


def test_cloudwatch_metrics_are_valid_put_metric_data_requests(frames):
    """The metrics Model Monitor emits, checked against botocore's PutMetricData input shape."""
    import botocore.session
    from botocore.validate import ParamValidator

    base, cur = frames
    stats = analyzer.statistics(base)
    profiles = analyzer.profile(cur)
    cur_stats = analyzer.statistics(cur, profiles=profiles)
    _, checks = analyzer.check(profiles, cur_stats, stats, analyzer.suggest_constraints(stats))
    when = dt.datetime(2026, 4, 1, 9, tzinfo=dt.timezone.utc)
    request = monitor.data_quality_metrics(checks, cur_stats, "price-prediction-endpoint", "price-dq", when)
    names = {d["MetricName"] for d in request["MetricData"]}
    assert {"feature_baseline_drift_price", "feature_non_null_cabin", "feature_data_stops"} <= names
    drift = next(d for d in request["MetricData"] if d["MetricName"] == "feature_baseline_drift_price")
    assert drift["Value"] == pytest.approx(next(c.drift for c in checks if c.name == "price"))
    assert drift["Dimensions"] == [{"Name": "Endpoint", "Value": "price-prediction-endpoint"},
                                   {"Name": "MonitoringSchedule", "Value": "price-dq"}]
    shape = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricData").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()

"""Metric wrappers agree with scikit-learn and reject bad input clearly."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from core import metrics as m


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.uniform(50, 500, 40)
    p = y * rng.normal(1.0, 0.05, 40)
    out = m.regression_metrics(y, p)
    assert out["rmse"]["value"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert out["r2"]["value"] == pytest.approx(skm.r2_score(y, p))
    assert out["mae"]["value"] == pytest.approx(np.mean(np.abs(y - p)))
    assert out["mape"]["value"] == pytest.approx(np.mean(np.abs(y - p) / y))
    assert out["n"]["value"] == 40


def test_regression_metrics_bad_input():
    with pytest.raises(ValueError, match="length mismatch"):
        m.regression_metrics([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        m.regression_metrics([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="no rows"):
        m.regression_metrics([], [])
    with pytest.raises(ValueError, match="one-dimensional"):
        m.regression_metrics(np.ones((2, 2)), np.ones((2, 2)))


def test_rmse_by_group():
    out = m.rmse_by_group([1, 2, 10, 10], [1, 4, 13, 7], ["a", "a", "b", "b"])
    assert out["a"]["rmse"]["value"] == pytest.approx(np.sqrt(2.0))
    assert out["b"] == {"rmse": {"value": pytest.approx(3.0)}, "n": 2}
    assert m.rmse_by_group([1, 2, 3], [1, 2, 3], ["a", "a", "b"], min_count=2).keys() == {"a"}


def test_multiclass_metrics_match_sklearn_and_keep_absent_class():
    labels = ("low", "medium", "high")
    y = np.array(["low", "low", "medium", "medium", "medium", "low"])
    p = np.array(["low", "medium", "medium", "medium", "low", "low"])
    out = m.multiclass_metrics(y, p, labels)
    assert out["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, p))
    assert out["weighted_f1"]["value"] == pytest.approx(skm.f1_score(y, p, average="weighted"))
    assert out["per_class"]["low"]["recall"]["value"] == pytest.approx(2 / 3)
    assert out["per_class"]["high"]["precision"]["value"] == 0.0  # no high at all: zero_division=0
    assert out["per_class"]["high"]["support"] == 0
    assert out["confusion_matrix"]["labels"] == list(labels)
    assert out["confusion_matrix"]["matrix"] == skm.confusion_matrix(y, p, labels=list(labels)).tolist()


def test_multiclass_rejects_unknown_label():
    with pytest.raises(ValueError, match="not among the known classes"):
        m.multiclass_metrics(["low", "huge"], ["low", "low"], ("low", "medium", "high"))


def test_probabilistic_metrics():
    labels = ["low", "medium", "high"]
    y = ["low", "medium", "high", "low"]
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])
    out = m.probabilistic_metrics(y, proba, labels)
    # columns are in the contract's order, not sklearn's sorted one: check by hand
    p_true = proba[np.arange(4), [labels.index(c) for c in y]]
    assert out["log_loss"]["value"] == pytest.approx(-np.mean(np.log(p_true)))
    assert out["roc_auc_ovr"]["value"] == pytest.approx(1.0)
    assert m.probabilistic_metrics(["low", "low"], proba[:2], labels)["roc_auc_ovr"]["value"] is None
    with pytest.raises(ValueError, match="shape"):
        m.probabilistic_metrics(y, proba[:, :2], labels)


def test_majority_baseline():
    out = m.majority_baseline(["a", "a", "b", "c"])
    assert out == {"majority_class": "a", "majority_class_accuracy": {"value": 0.5}, "majority_from": "test"}
    assert m.majority_baseline(["a", "b"], y_reference=["b", "b", "a"])["majority_class"] == "b"
    from_counts = m.majority_baseline(["a", "c", "c"], reference_counts={"a": 3, "c": 9})
    assert from_counts["majority_class"] == "c" and from_counts["majority_from"] == "training"
    assert from_counts["majority_class_accuracy"]["value"] == pytest.approx(2 / 3)


def test_binary_and_ranking_metrics():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    s = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7, 0.4, 0.05])
    flag = s >= 0.5
    out = m.binary_metrics(y, flag, threshold=0.5)
    assert out["precision"]["value"] == pytest.approx(skm.precision_score(y, flag))
    assert out["recall"]["value"] == pytest.approx(skm.recall_score(y, flag))
    assert out["f1"]["value"] == pytest.approx(skm.f1_score(y, flag))
    assert out["n_flagged"]["value"] == 3 and out["threshold"]["value"] == 0.5
    assert out["confusion"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 4}
    r = m.ranking_metrics(y, s)
    assert r["pr_auc"]["value"] == pytest.approx(skm.average_precision_score(y, s))
    assert r["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m.ranking_metrics([0, 0], [0.1, 0.2])["pr_auc"]["value"] is None
    with pytest.raises(ValueError, match="boolean or 0/1"):
        m.binary_metrics([0, 2], [0, 1])


def test_recall_by_group():
    y = [True, True, True, False, True]
    f = [True, False, True, True, False]
    kind = ["spike", "spike", "drop", None, "drop"]
    out = m.recall_by_group(y, f, kind)
    assert out["spike"] == {"recall": {"value": 0.5}, "n": 2}
    assert out["drop"] == {"recall": {"value": 0.5}, "n": 2}

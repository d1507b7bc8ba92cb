"""Model-quality statistics, constraints and violations in Model Monitor's model-quality format.

Statistics (Developer Guide, "Model quality metrics and Amazon CloudWatch monitoring"):
``{"version": 0.0, "dataset": {"item_count", "evaluation_time"}, "<problem>_metrics": {...}}`` with
``regression_metrics`` (mae, mse, rmse, r2), ``binary_classification_metrics`` (confusion matrix,
precision, recall, accuracy, rates, F-scores, AUC, best-constant-classifier baselines) or
``multiclass_classification_metrics`` (confusion matrix, accuracy, weighted precision/recall/F).
Each metric is ``{"value", "standard_deviation"}``; as Model Monitor does, the deviation is that of
the metric over five random 80 % samples, and "NaN" below 200 records.

Constraints are ``<problem>_constraints: {metric: {threshold, comparison_operator}}``; here they
are the seed's promotion gates (``pipelines.definition.GATES``), so that crossing a gate in
production is the "model accuracy degradation" violation. A violation is
``{"metric_name", "constraint_check_type": <operator>, "description"}``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from sklearn import metrics as skm

PROBLEM_TYPES = {"price": "Regression", "demand": "MulticlassClassification", "anomaly": "BinaryClassification"}
SECTIONS = {
    "Regression": ("regression_metrics", "regression_constraints"),
    "BinaryClassification": ("binary_classification_metrics", "binary_classification_constraints"),
    "MulticlassClassification": ("multiclass_classification_metrics", "multiclass_classification_constraints"),
}
# A gate keeps a model while ``metric <op> bound``; Model Monitor flags the complement.
VIOLATION_OPERATOR = {
    "<": "GreaterThanOrEqualToThreshold",
    "<=": "GreaterThanThreshold",
    ">": "LessThanOrEqualToThreshold",
    ">=": "LessThanThreshold",
}
_COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
MIN_FOR_STD = 200


def _value(fn, *arrays, seed: int = 0) -> dict[str, Any]:
    """``{"value", "standard_deviation"}``: the deviation over five random 80 % samples (n >= 200)."""
    value = float(fn(*arrays))
    n = len(arrays[0])
    std: Any = "NaN"
    if n >= MIN_FOR_STD:
        rng = np.random.default_rng(seed)
        runs = []
        for _ in range(5):
            idx = rng.choice(n, size=int(0.8 * n), replace=False)
            runs.append(float(fn(*(a[idx] for a in arrays))))
        std = float(np.std(runs))
    return {"value": value if math.isfinite(value) else "NaN", "standard_deviation": std}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    return {
        "mae": _value(skm.mean_absolute_error, y, pred),
        "mse": _value(skm.mean_squared_error, y, pred),
        "rmse": _value(skm.root_mean_squared_error, y, pred),
        "r2": _value(lambda a, b: skm.r2_score(a, b) if len(a) > 1 else float("nan"), y, pred),
    }


TRIM = 0.05  # share of absolute errors cut at each end by the trimmed MAE
# Its bound: the model's baseline MAE x (1 + this), judged from this many labels. Quiet daily windows
# stay at 0.8-1.1x (replay seed 7: the glitch fares trimmed); a 15 % fare hike on half the routes
# lifts it to ~5x.
TRIMMED_MAE_DEGRADATION = 1.0
TRIMMED_MAE_MIN_LABELS = 20


def trimmed_mae(y: np.ndarray, pred: np.ndarray, trim: float = TRIM) -> float | None:
    """Mean absolute error without the ``trim`` largest and smallest errors (None without labels).

    Not a Model Monitor metric: a robust companion to MAE for small windows. A day's ~100 booked
    quotes include the odd booked glitch fare (x2-10), which alone moves a window's MAE past five
    times its baseline. A trimmed MAE ignores those few, and so can be held to a tighter bound
    on windows of a few dozen labels. A shift that moves many errors (a fare hike on half the
    routes) moves it as much as MAE."""
    from scipy import stats

    err = np.abs(np.asarray(y, float) - np.asarray(pred, float))
    err = err[np.isfinite(err)]
    return float(stats.trim_mean(err, trim)) if err.size else None


def _confusion(y: np.ndarray, pred: np.ndarray, labels: list) -> dict[str, dict[str, int]]:
    cm = skm.confusion_matrix(y, pred, labels=labels)
    return {str(a): {str(b): int(cm[i, j]) for j, b in enumerate(labels)} for i, a in enumerate(labels)}


def binary_metrics(y: np.ndarray, pred: np.ndarray, score: np.ndarray | None = None) -> dict[str, Any]:
    y, pred = np.asarray(y, int), np.asarray(pred, int)
    majority = int(y.mean() >= 0.5) if len(y) else 0
    const = np.full(len(y), majority)
    zd = {"zero_division": 0}
    out: dict[str, Any] = {
        "confusion_matrix": _confusion(y, pred, [0, 1]),
        "recall": _value(lambda a, b: skm.recall_score(a, b, **zd), y, pred),
        "precision": _value(lambda a, b: skm.precision_score(a, b, **zd), y, pred),
        "accuracy": _value(skm.accuracy_score, y, pred),
        "recall_best_constant_classifier": _value(lambda a, b: skm.recall_score(a, b, **zd), y, const),
        "precision_best_constant_classifier": _value(lambda a, b: skm.precision_score(a, b, **zd), y, const),
        "accuracy_best_constant_classifier": _value(skm.accuracy_score, y, const),
        "true_positive_rate": _value(lambda a, b: skm.recall_score(a, b, **zd), y, pred),
        "true_negative_rate": _value(lambda a, b: skm.recall_score(a, b, pos_label=0, **zd), y, pred),
        "false_positive_rate": _value(lambda a, b: 1 - skm.recall_score(a, b, pos_label=0, **zd), y, pred),
        "false_negative_rate": _value(lambda a, b: 1 - skm.recall_score(a, b, **zd), y, pred),
        "f0_5": _value(lambda a, b: skm.fbeta_score(a, b, beta=0.5, **zd), y, pred),
        "f1": _value(lambda a, b: skm.f1_score(a, b, **zd), y, pred),
        "f2": _value(lambda a, b: skm.fbeta_score(a, b, beta=2, **zd), y, pred),
    }
    if score is not None and len(set(y.tolist())) == 2:
        s = np.asarray(score, float)
        out["auc"] = _value(lambda a, b: skm.roc_auc_score(a, b) if len(set(a.tolist())) == 2 else float("nan"), y, s)
    return out


def multiclass_metrics(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    y, pred = np.asarray(y, dtype=object).astype(str), np.asarray(pred, dtype=object).astype(str)
    values, counts = np.unique(y, return_counts=True)
    const = np.full(len(y), values[counts.argmax()] if len(values) else classes[0], dtype=object).astype(str)
    zd = {"zero_division": 0, "average": "weighted", "labels": classes}

    def fb(beta):
        return lambda a, b: skm.fbeta_score(a, b, beta=beta, **zd)

    return {
        "confusion_matrix": _confusion(y, pred, list(classes)),
        "accuracy": _value(skm.accuracy_score, y, pred),
        "weighted_recall": _value(lambda a, b: skm.recall_score(a, b, **zd), y, pred),
        "weighted_precision": _value(lambda a, b: skm.precision_score(a, b, **zd), y, pred),
        "weighted_f0_5": _value(fb(0.5), y, pred),
        "weighted_f1": _value(fb(1.0), y, pred),
        "weighted_f2": _value(fb(2.0), y, pred),
        "accuracy_best_constant_classifier": _value(skm.accuracy_score, y, const),
        "weighted_recall_best_constant_classifier": _value(lambda a, b: skm.recall_score(a, b, **zd), y, const),
        "weighted_precision_best_constant_classifier": _value(lambda a, b: skm.precision_score(a, b, **zd), y, const),
        "weighted_f1_best_constant_classifier": _value(fb(1.0), y, const),
    }


def statistics(problem_type: str, y, pred, *, score=None, classes: list[str] | None = None,
               evaluation_time: dt.datetime | None = None) -> dict[str, Any]:
    """Model-quality ``statistics.json`` for ``problem_type`` (Regression / BinaryClassification /
    MulticlassClassification)."""
    if problem_type not in SECTIONS:
        raise ValueError(f"problem type {problem_type!r} is not one of {sorted(SECTIONS)}")
    n = len(y)
    if n == 0:
        raise ValueError("no records with both a prediction and a ground-truth label")
    if problem_type == "Regression":
        body = regression_metrics(y, pred)
    elif problem_type == "BinaryClassification":
        body = binary_metrics(y, pred, score)
    else:
        body = multiclass_metrics(y, pred, list(classes or sorted(set(map(str, y)) | set(map(str, pred)))))
    when = (evaluation_time or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    return {"version": 0.0, "dataset": {"item_count": int(n), "evaluation_time": when}, SECTIONS[problem_type][0]: body}


def constraints_from_gates(model: str, thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """Model-quality ``constraints.json`` whose thresholds are the model's promotion gates."""
    from core.pipeline_contract import GATES

    problem = PROBLEM_TYPES[model]
    section = SECTIONS[problem][1]
    body = {}
    for g in GATES:
        if g.model != model:
            continue
        bound = float((thresholds or {}).get(g.parameter, g.default))
        body[g.metric] = {"threshold": bound, "comparison_operator": VIOLATION_OPERATOR[g.op]}
    return {"version": 0.0, section: body}


def check(stats: dict[str, Any], constraints: dict[str, Any]) -> dict[str, Any]:
    """``constraint_violations.json`` of ``stats`` against model-quality ``constraints``."""
    violations = []
    for problem, (metrics_key, constraints_key) in SECTIONS.items():
        cons = constraints.get(constraints_key)
        if not cons:
            continue
        metrics = stats.get(metrics_key) or {}
        for name, rule in cons.items():
            op, threshold = rule["comparison_operator"], float(rule["threshold"])
            value = (metrics.get(name) or {}).get("value")
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue  # unknown (e.g. no positive label in the window): not a violation by itself
            if _COMPARE[op](float(value), threshold):
                violations.append({
                    "metric_name": name,
                    "constraint_check_type": op,
                    "description": f"Metric {name} with {value:.6g} was {op} '{threshold:g}'",
                })
    return {"violations": violations}

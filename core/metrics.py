"""Metric functions on plain arrays, returning report-ready dicts (``{"name": {"value": v}}``).

Thin wrappers over ``sklearn.metrics``: the point is one place that fixes the label order, the
zero-division policy and the report layout, and that rejects bad input with a clear message
instead of a confusing numpy broadcast error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from core.pipeline_contract import metric


def _as_1d(name: str, values: Any, dtype: Any = None) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_same_length(**arrays: np.ndarray) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"length mismatch: {lengths}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"no rows to evaluate ({', '.join(lengths)} are empty)")
    return n


def _finite(name: str, arr: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {int((~np.isfinite(arr)).sum())} NaN/inf values")
    return arr


# ---------------------------------------------------------------------------------------------
# Regression (price)
# ---------------------------------------------------------------------------------------------
def rmse(y_true: Any, y_pred: Any) -> float:
    return float(skm.root_mean_squared_error(y_true, y_pred))


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, dict[str, Any]]:
    """RMSE, R², MAE, MAPE (a fraction, not %) and n, each as ``{"value": v}``."""
    y_true = _finite("y_true", _as_1d("y_true", y_true, float))
    y_pred = _finite("y_pred", _as_1d("y_pred", y_pred, float))
    n = _check_same_length(y_true=y_true, y_pred=y_pred)
    r2 = float(skm.r2_score(y_true, y_pred)) if n >= 2 else float("nan")
    return {
        "rmse": metric(rmse(y_true, y_pred)),
        "r2": metric(r2),
        "mae": metric(float(skm.mean_absolute_error(y_true, y_pred))),
        "mape": metric(float(skm.mean_absolute_percentage_error(y_true, y_pred))),
        "n": metric(int(n)),
    }


def rmse_by_group(y_true: Any, y_pred: Any, groups: Any, min_count: int = 1) -> dict[str, dict[str, Any]]:
    """RMSE and count per group (e.g. cabin), groups with fewer than ``min_count`` rows left out."""
    y_true = _as_1d("y_true", y_true, float)
    y_pred = _as_1d("y_pred", y_pred, float)
    groups = _as_1d("groups", groups, object)
    _check_same_length(y_true=y_true, y_pred=y_pred, groups=groups)
    frame = pd.DataFrame({"g": groups, "sq": (y_true - y_pred) ** 2})
    out: dict[str, dict[str, Any]] = {}
    for key, part in frame.groupby("g", sort=True, dropna=False):
        if len(part) >= min_count:
            out[str(key)] = {"rmse": metric(float(np.sqrt(part["sq"].mean()))), "n": int(len(part))}
    return out


# ---------------------------------------------------------------------------------------------
# Multiclass (demand)
# ---------------------------------------------------------------------------------------------
def multiclass_metrics(y_true: Any, y_pred: Any, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, weighted P/R/F1, per-class P/R/F1/support and the confusion matrix.

    ``labels`` fixes the class order of the per-class entries and the matrix (rows = true,
    columns = predicted), so that a class absent from the test set still has its row.
    """
    labels = list(labels)
    y_true = _as_1d("y_true", y_true, object)
    y_pred = _as_1d("y_pred", y_pred, object)
    _check_same_length(y_true=y_true, y_pred=y_pred)
    unknown = sorted({str(v) for v in np.concatenate([y_true, y_pred])} - {str(c) for c in labels})
    if unknown:
        raise ValueError(f"labels {unknown} are not among the known classes {labels}")
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    wp, wr, wf, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="weighted", zero_division=0
    )
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "accuracy": metric(float(skm.accuracy_score(y_true, y_pred))),
        "weighted_f1": metric(float(wf)),
        "weighted_precision": metric(float(wp)),
        "weighted_recall": metric(float(wr)),
        "per_class": {
            str(c): {
                "precision": metric(float(p[i])),
                "recall": metric(float(r[i])),
                "f1": metric(float(f[i])),
                "support": int(s[i]),
            }
            for i, c in enumerate(labels)
        },
        "confusion_matrix": {"labels": [str(c) for c in labels], "matrix": matrix.tolist()},
    }


def probabilistic_metrics(y_true: Any, proba: Any, labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Log loss and one-vs-rest macro ROC AUC from class probabilities (columns in ``labels`` order)."""
    labels = list(labels)
    y_true = _as_1d("y_true", y_true, object)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != len(labels):
        raise ValueError(f"proba must have shape (n, {len(labels)}), got {proba.shape}")
    _check_same_length(y_true=y_true, proba=proba)
    _finite("proba", proba.ravel())
    # scikit-learn assumes lexicographically sorted labels for probability columns.
    order = np.argsort(np.asarray(labels, dtype=object))
    labels_sorted = [labels[i] for i in order]
    proba = proba[:, order]
    out = {"log_loss": metric(float(skm.log_loss(y_true, proba, labels=labels_sorted)))}
    present = set(map(str, y_true))
    if len(present) == len(labels):
        auc = skm.roc_auc_score(y_true, proba, labels=labels_sorted, multi_class="ovr")
        out["roc_auc_ovr"] = metric(float(auc))
    else:  # AUC is undefined for a class with no positives
        out["roc_auc_ovr"] = metric(None)
    return out


def majority_baseline(
    y_true: Any, y_reference: Any | None = None, reference_counts: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Accuracy on ``y_true`` of always predicting the majority class of the reference.

    The reference is the training labels (``y_reference``, or their ``reference_counts`` as
    stored in model_meta.json). Without one, the test set's own majority is used: the best any
    constant predictor can do there, so a model must clearly beat it.
    """
    y_true = _as_1d("y_true", y_true, object)
    if len(y_true) == 0:
        raise ValueError("majority baseline needs at least one label")
    if reference_counts:
        majority, source = max(reference_counts.items(), key=lambda kv: kv[1])[0], "training"
    else:
        ref = y_true if y_reference is None else _as_1d("y_reference", y_reference, object)
        if len(ref) == 0:
            raise ValueError("majority baseline needs at least one reference label")
        majority = pd.Series(ref).value_counts().idxmax()
        source = "test" if y_reference is None else "training"
    return {
        "majority_class": str(majority),
        "majority_class_accuracy": metric(float(np.mean(y_true == majority))),
        "majority_from": source,
    }


# ---------------------------------------------------------------------------------------------
# Binary (anomaly)
# ---------------------------------------------------------------------------------------------
def _binary(name: str, values: Any) -> np.ndarray:
    arr = _as_1d(name, values)
    if arr.dtype == bool:
        return arr
    uniq = set(pd.unique(arr).tolist())
    if not uniq <= {0, 1, True, False}:
        raise ValueError(f"{name} must be boolean or 0/1, got values {sorted(map(str, uniq))[:5]}")
    return arr.astype(bool)


def binary_metrics(y_true: Any, y_flag: Any, threshold: float | None = None) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 of the flags against the labels, plus the operating point."""
    y_true = _binary("y_true", y_true)
    y_flag = _binary("y_flag", y_flag)
    n = _check_same_length(y_true=y_true, y_flag=y_flag)
    p, r, f, _ = skm.precision_recall_fscore_support(
        y_true, y_flag, average="binary", pos_label=True, zero_division=0
    )
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_flag, labels=[False, True]).ravel()
    return {
        "precision": metric(float(p)),
        "recall": metric(float(r)),
        "f1": metric(float(f)),
        "threshold": metric(threshold),
        "n_flagged": metric(int(y_flag.sum())),
        "flag_rate": metric(float(y_flag.mean())),
        "n_labelled": metric(int(n)),
        "n_positive": metric(int(y_true.sum())),
        "confusion": {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)},
    }


def ranking_metrics(y_true: Any, scores: Any) -> dict[str, dict[str, Any]]:
    """Threshold-free quality of anomaly scores: PR AUC (average precision) and ROC AUC."""
    y_true = _binary("y_true", y_true)
    scores = _finite("scores", _as_1d("scores", scores, float))
    _check_same_length(y_true=y_true, scores=scores)
    if y_true.all() or not y_true.any():  # undefined with a single class
        return {"pr_auc": metric(None), "roc_auc": metric(None)}
    return {
        "pr_auc": metric(float(skm.average_precision_score(y_true, scores))),
        "roc_auc": metric(float(skm.roc_auc_score(y_true, scores))),
    }


def recall_by_group(y_true: Any, y_flag: Any, groups: Any) -> dict[str, dict[str, Any]]:
    """Recall of the flags among the positives of each group (e.g. anomaly kind spike/drop)."""
    y_true = _binary("y_true", y_true)
    y_flag = _binary("y_flag", y_flag)
    groups = _as_1d("groups", groups, object)
    _check_same_length(y_true=y_true, y_flag=y_flag, groups=groups)
    frame = pd.DataFrame({"g": groups[y_true], "hit": y_flag[y_true]})
    return {
        str(key): {"recall": metric(float(part["hit"].mean())), "n": int(len(part))}
        for key, part in frame.groupby("g", sort=True)
    }


def incident_label_metrics(status: Any, flags: Any, threshold: float | None, min_reviewed_share: float) -> dict[str, Any]:
    """The flags against the incident feed (``core.labels`` statuses), counted honestly.

    - precision = confirmed / reviewed among the flags (incident vs cleared); flags nobody
      reviewed are neither true nor false positives. It is null (unknown, so the gate fails) when
      fewer than ``min_reviewed_share`` of the flags whose review window closed were reviewed,
      or none was: a model whose alerts nobody checked cannot be said to be precise;
    - ``precision_if_unreviewed_false``: every unreviewed closed flag counted as a false alarm,
      a lower bound on the true precision (up to wrong verdicts);
    - recall = confirmed incidents flagged / confirmed incidents (open windows included: a
      verdict is a verdict);
    - flags whose window is still open are left out of both and counted.
    """
    status = _as_1d("status", status, object)
    flags = _binary("flags", flags)
    _check_same_length(status=status, flags=flags)
    inc, clr, unr, opn = (status == "incident"), (status == "cleared"), (status == "unreviewed"), (status == "open")
    tp, fp, un, op = (int((flags & m).sum()) for m in (inc, clr, unr, opn))
    reviewed = tp + fp
    closed = reviewed + un
    share = reviewed / closed if closed else None
    known = reviewed > 0 and share is not None and share >= min_reviewed_share
    precision = tp / reviewed if known else None
    recall = tp / int(inc.sum()) if inc.any() else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": metric(precision),
        "recall": metric(recall),
        "f1": metric(f1),
        "threshold": metric(threshold),
        "n_flagged": metric(int(flags.sum())),
        "flag_rate": metric(float(flags.mean()) if len(flags) else None),
        "reviewed_share_of_flags": metric(share),
        "min_reviewed_share": min_reviewed_share,
        "precision_reviewed": metric(tp / reviewed if reviewed else None),
        "precision_if_unreviewed_false": metric(tp / closed if closed else None),
        "n_positive": metric(int(inc.sum())),
        "flags_by_label": {"incident": tp, "cleared": fp, "unreviewed": un, "open": op},
    }

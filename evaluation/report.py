"""The evaluation.json layout: the property file that the pipeline's gates read.

Kept stdlib-only at import time: the pipeline's static check imports ``REPORT_PATHS`` to prove
that every ``Std:JsonGet`` path of the definition exists in the report, without loading
pandas, scikit-learn or matplotlib.

Layout (docs/contracts.md): SageMaker model-quality style, each metric is ``{"value": v}`` so
that SageMaker ``ModelMetrics`` can point at the same file. A metric that cannot be computed
(e.g. anomaly precision without labels) is written as ``{"value": null}`` with a reason beside
it, never as a made-up number: gates treat ``null`` as a failure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MODELS = ("price", "demand", "anomaly")
REPORT_FILENAME = "evaluation.json"

# Keep in step with processing.contract.DEMAND_CLASSES (not imported: that pulls in pyarrow).
_DEMAND_CLASSES = ("low", "medium", "high")

_COMMON = [
    "model",
    "n_test",
    "generated_at",
    "leakage.passed",
    "leakage.reasons",
    "versions",
]

REPORT_PATHS: dict[str, list[str]] = {
    "price": _COMMON
    + [f"regression_metrics.{m}.value" for m in ("rmse", "r2", "mae", "mape", "n")]
    + ["cleaning.n_removed"],
    "demand": _COMMON
    + [f"multiclass_classification_metrics.{m}.value" for m in ("accuracy", "weighted_f1", "weighted_precision", "weighted_recall")]
    + [
        f"multiclass_classification_metrics.per_class.{c}.{m}.value"
        for c in _DEMAND_CLASSES
        for m in ("precision", "recall", "f1")
    ]
    + [
        "multiclass_classification_metrics.confusion_matrix.labels",
        "multiclass_classification_metrics.confusion_matrix.matrix",
        "baseline.majority_class_accuracy.value",
        "baseline.majority_class",
    ],
    "anomaly": _COMMON
    + [
        f"binary_classification_metrics.{m}.value"
        for m in ("precision", "recall", "f1", "threshold", "n_flagged", "flag_rate")
    ]
    + ["binary_classification_metrics.labels_available"],
}
"""Every dotted JSON path that each model's report always contains (with or without truth)."""

# Present only when the truth folder was given (the generator's ground truth).
TRUTH_PATHS: dict[str, list[str]] = {
    "price": [
        "truth.rmse_vs_true_price.value",
        "truth.r2_vs_true_price.value",
        "truth.noise_floor_rmse.value",
        "truth.rmse_by_cabin",
        "truth.n_matched",
    ],
    "demand": [],
    "anomaly": [
        "truth.precision.value",
        "truth.recall.value",
        "truth.pr_auc.value",
        "truth.roc_auc.value",
        "truth.recall_by_kind",
        "truth.n_anomalies",
    ],
}

# The gates' inputs (docs/contracts.md); a subset of REPORT_PATHS.
GATE_PATHS: dict[str, list[str]] = {
    "price": ["regression_metrics.rmse.value", "regression_metrics.r2.value"],
    "demand": ["multiclass_classification_metrics.accuracy.value"],
    "anomaly": ["binary_classification_metrics.precision.value"],
}

_MISSING = object()


def metric(value: Any) -> dict[str, Any]:
    """Wrap a number as ``{"value": v}`` (NaN/inf become null: JSON has no NaN)."""
    return {"value": _clean_number(value)}


def get_path(report: Mapping[str, Any], path: str, default: Any = _MISSING) -> Any:
    """Value at a dotted path (``"regression_metrics.rmse.value"``), like ``Std:JsonGet``.

    Raises KeyError naming the first missing segment unless ``default`` is given.
    """
    node: Any = report
    for i, part in enumerate(path.split(".")):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            continue
        if default is not _MISSING:
            return default
        raise KeyError(f"{path!r}: no {'.'.join(path.split('.')[: i + 1])!r} in the report")
    return node


def missing_paths(report: Mapping[str, Any], model: str, with_truth: bool = False) -> list[str]:
    """The paths of ``REPORT_PATHS[model]`` (+ ``TRUTH_PATHS`` if asked) absent from ``report``."""
    if model not in REPORT_PATHS:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    wanted = REPORT_PATHS[model] + (TRUTH_PATHS[model] if with_truth else [])
    absent = object()
    return [p for p in wanted if get_path(report, p, absent) is absent]


def to_jsonable(obj: Any) -> Any:
    """Recursively turn numpy scalars/arrays, tuples and NaN into plain JSON values."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy array or scalar
        return to_jsonable(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return _clean_number(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to evaluation.json: {obj!r}")


def write_report(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report as strict JSON (no NaN), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(report), indent=2, allow_nan=False, sort_keys=False) + "\n")
    return path


def read_report(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _clean_number(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else None

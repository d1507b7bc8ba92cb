"""The evaluation.json layout: the property file that the pipeline's gates read.

The paths every report holds (``REPORT_PATHS``, ``TRUTH_PATHS``) are facts of the pipeline
contract (:mod:`core.pipeline_contract`), which the static check reads too; this module reads and
writes reports. Stdlib only.

Layout (docs/contracts.md): SageMaker model-quality style, each metric is ``{"value": v}`` so
that SageMaker ``ModelMetrics`` can point at the same file. A metric that cannot be computed
(e.g. anomaly precision without labels) is written as ``{"value": null}`` with a reason beside
it, never as a made-up number: gates treat ``null`` as a failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.pipeline_contract import MODELS, REPORT_PATHS, TRUTH_PATHS, clean_number

_MISSING = object()


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
        return clean_number(obj)
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

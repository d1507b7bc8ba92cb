"""Quality gates on an evaluation report, as plain functions.

The pipeline gates with ConditionSteps on the gates of :mod:`core.pipeline_contract` (paths,
operators, default thresholds); these functions give the same verdict on the same gates to tests
and to the ``airfare run`` summary, with readable reasons. A metric that is
missing or null (e.g. anomaly precision without labels) fails its gate: an unknown quality is
not a pass. A failed leakage check fails every gate.

Stdlib only, like ``evaluation.report``.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core import pipeline_contract
from evaluation.report import get_path


@dataclass(frozen=True)
class Gate:
    """A contract gate with its threshold for one check."""

    path: str
    op: str  # one of "<", "<=", ">", ">="
    threshold: float

    def describe(self) -> str:
        return f"{self.path} {self.op} {self.threshold:g}"


_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def gates_for(model: str, thresholds: Mapping[str, float] | None = None) -> tuple[Gate, ...]:
    """The model's gates, with thresholds overridden by path (``{"regression_metrics.rmse.value": 12}``)."""
    gates = pipeline_contract.gates_of(model)  # ValueError on an unknown model
    thresholds = dict(thresholds or {})
    unknown = set(thresholds) - {g.path for g in gates}
    if unknown:
        raise ValueError(f"no {model} gate on {sorted(unknown)}; gates: {[g.path for g in gates]}")
    return tuple(Gate(g.path, g.op, float(thresholds.get(g.path, g.default))) for g in gates)


def check_gates(
    report: Mapping[str, Any],
    model: str | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> tuple[bool, list[str]]:
    """Check a report against its model's gates; returns ``(passed, reasons)``.

    ``reasons`` has one line per gate (``"ok: ..."`` or ``"FAIL: ..."``) so that a summary can
    print it as is. ``model`` defaults to the report's own ``model`` field.
    """
    model = model or report.get("model")
    if model is None:
        raise ValueError("report has no 'model' field; pass model=")
    if report.get("model") not in (None, model):
        raise ValueError(f"report is for model {report.get('model')!r}, not {model!r}")
    passed = True
    reasons: list[str] = []
    leakage = report.get("leakage") or {}
    if leakage.get("passed") is not True:
        passed = False
        why = "; ".join(leakage.get("reasons") or []) or "leakage check missing"
        reasons.append(f"FAIL: leakage check: {why}")
    for gate in gates_for(model, thresholds):
        value = get_path(report, gate.path, None)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            passed = False
            note = report.get("binary_classification_metrics", {}).get("note") if model == "anomaly" else None
            reasons.append(f"FAIL: {gate.describe()}: value is {value!r}" + (f" ({note})" if note else ""))
        elif _OPS[gate.op](value, gate.threshold):
            reasons.append(f"ok: {gate.describe()} (value {value:.4g})")
        else:
            passed = False
            reasons.append(f"FAIL: {gate.describe()} (value {value:.4g})")
    return passed, reasons

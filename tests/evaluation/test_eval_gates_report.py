"""Gates give the seed's verdicts; the report helpers resolve paths like Std:JsonGet."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core import pipeline_contract
from evaluation import gates, report


def _price(rmse=10.0, r2=0.9, leak=True):
    return {
        "model": "price",
        "leakage": {"passed": leak, "reasons": [] if leak else ["forbidden feature 'price_usd'"]},
        "regression_metrics": {"rmse": {"value": rmse}, "r2": {"value": r2}},
    }


def test_price_gates():
    assert gates.check_gates(_price())[0] is True
    ok, reasons = gates.check_gates(_price(rmse=15.0))
    assert not ok and any("FAIL: regression_metrics.rmse.value < 15" in r for r in reasons)
    assert not gates.check_gates(_price(r2=0.85))[0]  # strict: R² must exceed 0.85
    ok, reasons = gates.check_gates(_price(leak=False))
    assert not ok and "price_usd" in reasons[0]
    # thresholds can be overridden by path, unknown paths are refused
    assert gates.check_gates(_price(rmse=14.0), thresholds={"regression_metrics.rmse.value": 12})[0] is False
    with pytest.raises(ValueError, match="no price gate"):
        gates.check_gates(_price(), thresholds={"x.value": 1})


def test_demand_and_anomaly_gates():
    demand = {"model": "demand", "leakage": {"passed": True}, "multiclass_classification_metrics": {"accuracy": {"value": 0.85}}}
    assert gates.check_gates(demand)[0]  # >= is inclusive
    anomaly = {"model": "anomaly", "leakage": {"passed": True},
               "binary_classification_metrics": {"precision": {"value": None}, "note": "labels unavailable"}}
    ok, reasons = gates.check_gates(anomaly)
    assert not ok and "labels unavailable" in reasons[-1]
    anomaly["binary_classification_metrics"]["precision"]["value"] = 0.95
    assert gates.check_gates(anomaly)[0]


def test_gates_refuse_mismatched_model():
    with pytest.raises(ValueError, match="not 'demand'"):
        gates.check_gates(_price(), model="demand")


def test_get_path_and_missing_paths():
    r = _price()
    assert report.get_path(r, "regression_metrics.rmse.value") == 10.0
    with pytest.raises(KeyError, match="regression_metrics.mae"):
        report.get_path(r, "regression_metrics.mae.value")
    assert report.get_path(r, "a.b", None) is None
    missing = report.missing_paths(r, "price")
    assert "regression_metrics.mae.value" in missing and "regression_metrics.rmse.value" not in missing
    with pytest.raises(ValueError, match="unknown model"):
        report.missing_paths(r, "weather")


def test_gate_paths_are_report_paths():
    for g in pipeline_contract.GATES:
        assert g.path in pipeline_contract.REPORT_PATHS[g.model]
    for model in pipeline_contract.MODELS:
        assert [(g.path, g.op, g.threshold) for g in gates.gates_for(model)] == [
            (g.path, g.op, g.default) for g in pipeline_contract.gates_of(model)
        ]


def test_write_report_is_strict_json(tmp_path):
    np = pytest.importorskip("numpy")
    out = report.write_report({"a": pipeline_contract.metric(np.float64("nan")), "b": np.arange(2), "c": (1, 2.5)}, tmp_path / "x" / "e.json")
    assert json.loads(out.read_text()) == {"a": {"value": None}, "b": [0, 1], "c": [1, 2.5]}
    with pytest.raises(TypeError, match="cannot write"):
        report.to_jsonable({"x": object()})


def test_report_and_gates_import_without_heavy_deps():
    code = ("import sys, evaluation.report, evaluation.gates; "
            "heavy = [m for m in ('numpy', 'pandas', 'pyarrow', 'sklearn', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)

"""The Evaluate step end to end: model.tar.gz + test split (+ truth) -> evaluation.json, plots, HTML."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from eval_world import make_tar, make_verdicts

from evaluation import entry, evaluate, gates
from evaluation.report import missing_paths
from core.labels import write_feed


@pytest.fixture()
def opt_ml(tmp_path, monkeypatch, eval_splits, eval_world):
    """A per-step SM_OPT_ML tree as the local executor lays it out; returns a helper to fill it."""
    _, split_root = eval_splits
    _, _, truth = eval_world
    monkeypatch.setenv("SM_OPT_ML", str(tmp_path))
    proc = tmp_path / "processing"
    (proc / "test").mkdir(parents=True)
    for f in ("offers.parquet", "flights.parquet"):
        (proc / "test" / f).write_bytes((split_root / "test" / f).read_bytes())

    def setup(model_dir, with_truth=True, with_labels=True):
        make_tar(model_dir, proc / "model" / "model.tar.gz")
        if with_truth:
            (proc / "truth" / "offers").mkdir(parents=True, exist_ok=True)
            truth.to_parquet(proc / "truth" / "offers" / "part-0.parquet", index=False)
        if with_labels:
            # exported a week and a day after the last quote: every review window has closed
            write_feed(make_verdicts(eval_world[0], truth), proc / "labels",
                       as_of=eval_world[0]["event_time"].max() + pd.Timedelta(days=8))
        return proc / "evaluation"

    return setup


@pytest.mark.parametrize("kind", ["price", "demand", "anomaly"])
def test_step_writes_complete_report_with_truth(kind, opt_ml, eval_models):
    """Real reports hold every path of REPORT_PATHS (+ TRUTH_PATHS): the pipeline's static check relies on it."""
    out = opt_ml(eval_models[kind])
    assert entry.main(["--model", kind]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert missing_paths(report, kind, with_truth=kind != "demand") == []
    assert report["model"] == kind and report["leakage"]["passed"] is True
    assert report["n_test"] > 0 and report["versions"]["scikit-learn"]
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs, "no plots written"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs) and "leakage check passed" in html


def test_price_report_values_are_sane(opt_ml, eval_models):
    out = opt_ml(eval_models["price"])
    assert entry.main(["--model", "price"]) == 0
    r = json.loads((out / "evaluation.json").read_text())
    rm, truth = r["regression_metrics"], r["truth"]
    assert rm["n"]["value"] == r["cleaning"]["n_kept"] == r["n_test"] - r["cleaning"]["n_removed"]
    assert 0.8 < rm["r2"]["value"] <= 1.0 and rm["rmse"]["value"] > 0
    # a 3 % multiplicative noise: the observed price's own error is a few percent of prices
    assert 0 < truth["noise_floor_rmse"]["value"] < rm["rmse"]["value"] * 3
    assert set(truth["rmse_by_cabin"]) <= {"economy", "premium_economy", "business"}
    assert r["cleaning"]["anomalies_removed"] <= r["cleaning"]["anomalies_in_test"]
    assert {p.name for p in out.glob("*.png")} == {"price_predicted_vs_actual.png", "price_error_by_days_to_departure.png"}


def test_demand_report_has_confusion_and_baseline(opt_ml, eval_models, eval_splits):
    out = opt_ml(eval_models["demand"], with_truth=False)
    assert entry.main(["--model", "demand"]) == 0
    r = json.loads((out / "evaluation.json").read_text())
    cm = r["multiclass_classification_metrics"]["confusion_matrix"]
    assert cm["labels"] == ["low", "medium", "high"]
    assert sum(map(sum, cm["matrix"])) == r["n_test"] == len(eval_splits[0]["test"]["flights"])
    assert r["baseline"]["majority_from"] == "training"
    assert 0 <= r["baseline"]["majority_class_accuracy"]["value"] <= 1


def test_anomaly_without_labels_reports_unknown_precision(opt_ml, eval_models):
    out = opt_ml(eval_models["anomaly"], with_truth=False, with_labels=False)
    assert entry.main(["--model", "anomaly"]) == 0  # the step itself succeeds...
    r = json.loads((out / "evaluation.json").read_text())
    assert missing_paths(r, "anomaly") == [] and "truth" not in r
    bcm = r["binary_classification_metrics"]
    assert bcm["labels_available"] is False and bcm["precision"]["value"] is None
    assert bcm["n_flagged"]["value"] >= 0 and bcm["threshold"]["value"] is not None
    passed, reasons = gates.check_gates(r)  # ...but the precision gate cannot pass
    assert not passed and "labels unavailable" in reasons[-1]


def test_anomaly_gates_on_the_incident_feed_without_truth(opt_ml, eval_models):
    """As on AWS: no truth, the precision gate reads the feed's reviewed flags."""
    out = opt_ml(eval_models["anomaly"], with_truth=False)
    assert entry.main(["--model", "anomaly"]) == 0
    r = json.loads((out / "evaluation.json").read_text())
    assert "truth" not in r and r["truth_available"] is False
    bcm = r["binary_classification_metrics"]
    assert bcm["labels_available"] is True
    by = bcm["flags_by_label"]
    reviewed = by["incident"] + by["cleared"]
    assert sum(by.values()) == bcm["n_flagged"]["value"] > 0 and reviewed > 0
    assert bcm["reviewed_share_of_flags"]["value"] == reviewed / (reviewed + by["unreviewed"])
    assert bcm["precision"]["value"] == by["incident"] / reviewed >= 0.9
    # unreviewed flags are not false alarms, but the lower bound counts them as such
    assert bcm["precision_if_unreviewed_false"]["value"] <= bcm["precision"]["value"]
    assert r["labels"]["test_offers_by_label"]["open"] == 0
    assert gates.check_gates(r)[0]


def test_anomaly_whose_flags_nobody_reviewed_has_unknown_precision(opt_ml, eval_models, tmp_path):
    """A model that flags far more than the team reviewed cannot be called precise: null, gate fails."""
    loose = tmp_path / "loose"
    loose.mkdir()
    for f in eval_models["anomaly"].iterdir():
        if f.is_dir():
            import shutil

            shutil.copytree(f, loose / f.name)
        else:
            (loose / f.name).write_bytes(f.read_bytes())
    meta = json.loads((loose / "model_meta.json").read_text())
    meta["threshold"] = -1e9  # flags every offer
    (loose / "model_meta.json").write_text(json.dumps(meta))
    out = opt_ml(loose, with_truth=False)
    assert entry.main(["--model", "anomaly"]) == 0
    bcm = json.loads((out / "evaluation.json").read_text())["binary_classification_metrics"]
    assert bcm["reviewed_share_of_flags"]["value"] < 0.7
    assert bcm["precision"]["value"] is None and bcm["precision_reviewed"]["value"] is not None
    passed, reasons = gates.check_gates(json.loads((out / "evaluation.json").read_text()))
    assert not passed


def test_anomaly_with_truth_reports_kinds(opt_ml, eval_models):
    out = opt_ml(eval_models["anomaly"])
    assert entry.main(["--model", "anomaly"]) == 0
    r = json.loads((out / "evaluation.json").read_text())
    assert r["binary_classification_metrics"]["labels_available"] is True
    assert 0.9 <= r["truth"]["precision"]["value"] <= 1 and r["truth"]["recall"]["value"] > 0.5
    quality = r["truth"]["labels_quality"]
    assert quality["confirmed_that_are_anomalies"]["value"] == 1.0  # this feed makes no mistakes
    assert 0.7 < quality["anomalies_confirmed"]["value"] < 1.0  # ... but misses some glitches
    assert set(r["truth"]["recall_by_kind"]) <= {"spike", "drop"}
    assert r["truth"]["n_anomalies"] == sum(v["n"] for v in r["truth"]["recall_by_kind"].values())
    assert (out / "anomaly_precision_recall.png").exists()


def test_leaky_model_fails_the_step(opt_ml, eval_models, tmp_path):
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    for f in eval_models["price"].iterdir():
        (leaky / f.name).write_bytes(f.read_bytes())
    meta = json.loads((leaky / "model_meta.json").read_text())
    meta["features"] = [*meta["features"], "price_usd"]  # declared input: the target itself
    (leaky / "model_meta.json").write_text(json.dumps(meta))
    out = opt_ml(leaky)
    assert entry.main(["--model", "price"]) == 1
    failure = (tmp_path / "output" / "message").read_text()
    assert "leakage check failed" in failure and "price_usd" in failure
    r = json.loads((out / "evaluation.json").read_text())
    assert r["leakage"]["passed"] is False
    assert gates.check_gates(r)[0] is False


def test_wrong_model_kind_and_missing_inputs_fail_cleanly(opt_ml, eval_models, tmp_path):
    opt_ml(eval_models["demand"])
    assert entry.main(["--model", "price"]) == 1
    assert "holds the 'demand' model" in (tmp_path / "output" / "message").read_text()
    (tmp_path / "processing" / "model" / "model.tar.gz").unlink()
    assert entry.main(["--model", "demand"]) == 1
    assert "model artifact not found" in (tmp_path / "output" / "message").read_text()


def test_read_truth_filters_rows(tmp_path, eval_world):
    _, _, truth = eval_world
    (tmp_path / "offers").mkdir()
    truth.to_parquet(tmp_path / "offers" / "a.parquet", index=False)
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "unrelated.parquet")  # ignored: not truth
    got = evaluate.read_truth(tmp_path, truth["offer_id"].iloc[:5])
    assert sorted(got["offer_id"]) == sorted(truth["offer_id"].iloc[:5])
    assert evaluate.read_truth(tmp_path / "nope") is None

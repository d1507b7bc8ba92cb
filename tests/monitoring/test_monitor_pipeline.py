"""The pipeline's Model Monitor steps: the static check understands them, and the local executor
runs the real QualityCheck steps of the SDK-built definition and registers their baselines,
which ``airfare monitor`` then finds in the registry."""

from __future__ import annotations

import copy
import json
import tarfile

import pytest
from mon_support import write_capture
from typer.testing import CliRunner

from core import monitoring_datasets as datasets
from pipelines.cli import app
from pipelines.definition import definition_dict
from pipelines.local_executor import run_definition
from pipelines.validate import validate_definition

runner = CliRunner()


@pytest.fixture(scope="module")
def defn():
    return definition_dict()


def _steps(defn):
    out = {}

    def walk(steps):
        for s in steps:
            out[s["Name"]] = s
            if s["Type"] == "Condition":
                walk(s["Arguments"].get("IfSteps", []))
                walk(s["Arguments"].get("ElseSteps", []))

    walk(defn["Steps"])
    return out


def test_static_check_understands_quality_check_steps(defn):
    steps = _steps(defn)
    assert validate_definition(defn) == []
    broken = copy.deepcopy(defn)
    bsteps = _steps(broken)
    bsteps["DataQualityCheckPrice"]["CheckType"] = "BIAS"
    del bsteps["ModelQualityCheckDemand"]["Arguments"]["Environment"]["ground_truth_attribute"]
    reg = bsteps["RegisterPrice"]["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]
    reg["S3Uri"] = {"Get": "Steps.EvaluatePrice.CalculatedBaselineStatistics"}  # not a QualityCheck step
    problems = "\n".join(map(str, validate_definition(broken)))
    assert "CheckType 'BIAS'" in problems
    assert "ground_truth_attribute" in problems
    assert "CalculatedBaselineStatistics of 'EvaluatePrice', which is a Processing step" in problems
    assert steps["ModelQualityCheckAnomaly"]["Arguments"]["Environment"]["problem_type"] == "BinaryClassification"


@pytest.mark.slow
def test_executor_runs_the_real_quality_checks_and_registers_the_baselines(defn, tmp_path, mon_models, mon_splits):
    model = mon_models["price"]
    lake, bucket = tmp_path / "lake", "airfare-lake"
    prepared = lake / bucket / "prepared"
    datasets.write_data_baseline(model.meta, _split_dir(tmp_path, mon_splits), prepared / "monitoring" / "data")
    offers = mon_splits["test"]["offers"]
    datasets.write_predictions(datasets.predictions_frame("price", offers["price_usd"], model.predict_price(offers)),
                               prepared / "monitoring" / "model")
    (prepared / "evaluation").mkdir(parents=True)
    (prepared / "evaluation" / "evaluation.json").write_text(json.dumps({"regression_metrics": {"rmse": {"value": 9.0}}}))
    with tarfile.open(lake / bucket / "model.tar.gz", "w:gz") as tar:
        for p in model.model_dir.iterdir():
            tar.add(p, arcname=p.name)

    steps = _steps(defn)
    copy_job = ("import shutil; src='/opt/ml/processing/input/prepared'; "
                "shutil.copytree(src + '/monitoring', '/opt/ml/processing/monitoring', dirs_exist_ok=True); "
                "shutil.copytree(src + '/evaluation', '/opt/ml/processing/evaluation', dirs_exist_ok=True)")
    evaluate = copy.deepcopy(steps["EvaluatePrice"])  # its outputs as the real step declares them; its job a stand-in
    evaluate["Arguments"]["AppSpecification"] = {"ImageUri": "x", "ContainerEntrypoint": ["python", "-c", copy_job]}
    evaluate["Arguments"]["ProcessingInputs"] = [{"InputName": "prepared", "S3Input": {
        "S3Uri": f"s3://{bucket}/prepared", "LocalPath": "/opt/ml/processing/input/prepared", "S3DataType": "S3Prefix",
        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}]
    evaluate.pop("PropertyFiles", None)
    register = copy.deepcopy(steps["RegisterPrice"])
    register["Arguments"]["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = f"s3://{bucket}/model.tar.gz"
    mini = {"Version": defn["Version"], "Parameters": defn["Parameters"],
            "Steps": [evaluate, steps["DataQualityCheckPrice"], steps["ModelQualityCheckPrice"], register]}
    registry = tmp_path / "registry"
    result = run_definition(mini, run_root=tmp_path / "runs", lake_root=lake, registry_root=registry, progress=False)
    assert result.status == "Succeeded", result.failure_reason

    pkg_dir = registry / "airfare-price" / "1"
    data_cons = json.loads((pkg_dir / "baselines" / "data-constraints.json").read_text())
    assert [f["name"] for f in data_cons["features"]] == datasets.input_columns(model.meta)
    from core.contract import MARKET_STATE_FEATURES

    widened = {f["name"] for f in data_cons["features"] if f["name"] not in MARKET_STATE_FEATURES
               and f["monitoringConfigOverrides"].get("comparison_threshold", 0.1) > 0.1}
    assert widened, "thresholds measured on the baseline's daily files (analyzer.calibrate_constraints)"
    model_cons = json.loads((pkg_dir / "baselines" / "model-constraints.json").read_text())
    assert model_cons["regression_constraints"]["rmse"] == {"threshold": 15.0, "comparison_operator": "GreaterThanOrEqualToThreshold"}
    pkg = json.loads((pkg_dir / "package.json").read_text())
    assert pkg["Source"]["drift_check_baselines"]["data-statistics"].endswith("/DataQualityCheckPrice/baseline/statistics.json")
    step = json.loads((tmp_path / "runs" / result.execution_id / "DataQualityCheckPrice" / "step.json").read_text())
    assert step["ignored"]["AppSpecification.ImageUri"].endswith("sagemaker-model-monitor-analyzer")

    # the registered baseline is the monitor's default
    inputs = datasets.model_inputs(model.meta, mon_splits["train"]["offers"].sample(400, random_state=9))
    cap = write_capture(tmp_path / "capture", inputs, shapes=("csv", "object"))
    out = tmp_path / "out"
    res = runner.invoke(app, ["monitor", "data-quality", "--model", "price", "--capture", str(cap), "--out", str(out),
                              "--registry", str(registry)])
    assert res.exit_code == 0, res.output
    assert "local:model-package/airfare-price/1" in res.output


def _split_dir(tmp_path, splits):
    folder = tmp_path / "train-split"
    folder.mkdir()
    splits["train"]["offers"].to_parquet(folder / "offers.parquet")
    return folder


@pytest.mark.parametrize("kind", ["price", "demand"])
def test_evaluate_step_writes_the_monitoring_datasets(kind, tmp_path, mon_models, mon_splits):
    """The Evaluate step's ``monitoring`` output: the model's inputs from the train split, and its
    test predictions against the labels, in the columns the QualityCheck steps name."""
    import pandas as pd
    from eval_world import make_tar

    from evaluation import evaluate

    splits_root = tmp_path / "splits"
    from processing.preprocess import write_splits

    write_splits(mon_splits, {}, splits_root)
    model = mon_models[kind]
    tar = make_tar(model.model_dir, tmp_path / "model.tar.gz")
    mon_dir = tmp_path / "monitoring"
    evaluate.run(kind, tar, splits_root / "test", None, tmp_path / "evaluation",
                 train_dir=splits_root / "train", monitoring_dir=mon_dir)
    from monitoring import job

    data, files = job.read_dataset_windows(mon_dir / "data", {"csv": {"header": True}})
    assert list(data.columns) == datasets.input_columns(model.meta)
    table = mon_splits["train"]["offers" if kind == "price" else "flights"]
    assert len(data) == min(len(table), datasets.MAX_BASELINE_ROWS)
    # one file per search day: the windows the local analyzer calibrates its thresholds on
    days = sorted(pd.to_datetime(table["search_date"] if "search_date" in table else table["dt"]).dt.strftime("%Y-%m-%d").unique())
    assert sorted(set(files)) == [f"data_baseline-{d}.csv" for d in days]
    preds = pd.read_csv(mon_dir / "model" / datasets.PREDICTIONS_FILE)
    assert {"prediction", "label"} <= set(preds.columns)
    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    if kind == "price":
        import numpy as np

        rmse = float(np.sqrt(((preds["prediction"] - preds["label"]) ** 2).mean()))
        assert rmse == pytest.approx(report["regression_metrics"]["rmse"]["value"], rel=1e-6)
    else:
        assert (preds["prediction"] == preds["label"]).mean() == pytest.approx(
            report["multiclass_classification_metrics"]["accuracy"]["value"], rel=1e-6)

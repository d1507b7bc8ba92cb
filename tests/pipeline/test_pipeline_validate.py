"""The static check catches what SageMaker would only find mid-execution."""

from __future__ import annotations

import copy
import json

import pytest

from pipelines.definition import definition_dict
from pipelines.validate import known_report_paths, validate_definition, validate_file


@pytest.fixture(scope="module")
def base():
    return definition_dict()


@pytest.fixture()
def defn(base):
    return copy.deepcopy(base)


def steps_by_name(steps, out=None):
    out = {} if out is None else out
    for s in steps:
        out[s["Name"]] = s
        if s["Type"] == "Condition":
            steps_by_name(s["Arguments"]["IfSteps"], out)
            steps_by_name(s["Arguments"]["ElseSteps"], out)
    return out


def messages(defn):
    return [str(p) for p in validate_definition(defn)]


def test_clean(defn):
    assert validate_definition(defn) == []


def test_typo_in_json_get_path(defn):
    cond = steps_by_name(defn["Steps"])["CheckPriceGates"]["Arguments"]["Conditions"][1]
    cond["LeftValue"]["Std:JsonGet"]["Path"] = "regression_metrics.r2.vaule"
    (msg,) = messages(defn)
    assert "CheckPriceGates" in msg and "'regression_metrics.r2.vaule'" in msg
    assert "not in the price report" in msg and "regression_metrics.r2.value" in msg  # lists the known paths


def test_typo_in_data_quality_path(defn):
    cond = steps_by_name(defn["Steps"])["CheckDataQuality"]["Arguments"]["Conditions"][0]
    cond["LeftValue"]["Std:JsonGet"]["Path"] = "blocking_failure"
    (msg,) = messages(defn)
    assert "'blocking_failure'" in msg and "dq report" in msg


def test_missing_output_name(defn):
    ev = steps_by_name(defn["Steps"])["EvaluateDemand"]
    ev["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"]["Get"] = (
        "Steps.MergeSplits.ProcessingOutputConfig.Outputs['testing'].S3Output.S3Uri"
    )
    (msg,) = messages(defn)
    assert "EvaluateDemand" in msg and "has no output 'testing'" in msg and "test, train, validation" in msg


def test_property_file_output_not_declared(defn):
    steps = steps_by_name(defn["Steps"])
    steps["EvaluateAnomaly"]["PropertyFiles"][0]["OutputName"] = "eval"
    msgs = messages(defn)
    assert any("OutputName 'eval' is not an output of step 'EvaluateAnomaly'" in m for m in msgs)


def test_undeclared_property_file(defn):
    cond = steps_by_name(defn["Steps"])["CheckDemandGates"]["Arguments"]["Conditions"][0]
    cond["LeftValue"]["Std:JsonGet"]["PropertyFile"]["Get"] = "Steps.EvaluateDemand.PropertyFiles.DemandReport"
    (msg,) = messages(defn)
    assert "declares no property file 'DemandReport'" in msg and "DemandEvaluationReport" in msg


def test_undeclared_parameter(defn):
    defn["Parameters"] = [p for p in defn["Parameters"] if p["Name"] != "LabelsDataUri"]
    msgs = messages(defn)
    assert msgs and all("parameter 'LabelsDataUri' is not declared" in m for m in msgs)
    assert any("TrainAnomaly" in m for m in msgs) and any("EvaluateAnomaly" in m for m in msgs)
    defn = json.loads(json.dumps(defn))
    defn["Parameters"] = [p for p in defn["Parameters"] if p["Name"] != "TruthDataUri"]
    assert any("parameter 'TruthDataUri' is not declared" in m and "EvaluatePrice" in m for m in messages(defn))


def test_unknown_step_depends_on_and_branch(defn):
    steps = steps_by_name(defn["Steps"])
    steps["DataQuality"]["DependsOn"] = ["Preprocessing"]
    steps["CheckPriceGates"]["Arguments"]["ElseSteps"].append("FailPrise")
    msgs = messages(defn)
    assert any("depends on step 'Preprocessing', which does not exist" in m for m in msgs)
    assert any("branch step 'FailPrise' does not exist" in m for m in msgs)


def test_unknown_step_reference_and_execution_variable(defn):
    steps = steps_by_name(defn["Steps"])
    train_input = steps["TrainPrice"]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    train_input["S3Uri"]["Get"] = "Steps.PreProcess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    out = steps["Preprocess"]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    out["Std:Join"]["Values"][3]["Get"] = "Execution.ExecutionId"
    msgs = messages(defn)
    assert any("refers to step 'PreProcess', which does not exist" in m for m in msgs)
    assert any("unknown execution variable 'ExecutionId'" in m for m in msgs)


def test_model_artifacts_from_non_training_step(defn):
    ev = steps_by_name(defn["Steps"])["EvaluatePrice"]
    ev["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]["Get"] = "Steps.DataQuality.ModelArtifacts.S3ModelArtifacts"
    (msg,) = messages(defn)
    assert "ModelArtifacts of 'DataQuality'" in msg


def test_cycle_and_duplicate_names(defn):
    steps = steps_by_name(defn["Steps"])
    steps["Preprocess"]["DependsOn"] = ["DataQuality"]
    msgs = messages(defn)
    assert any("cycle" in m for m in msgs)
    dup = copy.deepcopy(defn)
    dup["Steps"].append(copy.deepcopy(dup["Steps"][0]))
    assert any("used twice" in m for m in messages(dup))


def test_malformed_join(defn):
    fail = steps_by_name(defn["Steps"])["FailPrice"]
    fail["Arguments"]["ErrorMessage"]["Std:Join"] = {"Values": ["x"]}
    (msg,) = messages(defn)
    assert "Std:Join needs a string On" in msg


def test_report_paths_cover_gate_paths():
    paths = known_report_paths()
    assert {"blocking_failures", "failed_expectations"} <= paths["dq"]
    assert "regression_metrics.rmse.value" in paths["price"]
    assert "multiclass_classification_metrics.accuracy.value" in paths["demand"]
    assert "binary_classification_metrics.precision.value" in paths["anomaly"]


def test_validate_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    (p,) = validate_file(bad)
    assert "not valid JSON" in p.message
    (p,) = validate_file(tmp_path / "missing.json")
    assert p.message == "file not found"
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"Version": "2020-12-01", "Steps": []}))
    assert [p.message for p in validate_file(empty)] == ["the definition has no steps"]


def test_plain_property_file_name_form(defn):
    steps = steps_by_name(defn["Steps"])
    cond = steps["CheckAnomalyGates"]["Arguments"]["Conditions"][0]["LeftValue"]["Std:JsonGet"]
    cond["PropertyFile"] = "AnomalyEvaluationReport"
    assert validate_definition(defn) == []
    cond["Path"] = "binary_classification_metrics.precison.value"
    (msg,) = messages(defn)
    assert "not in the anomaly report" in msg
    cond["PropertyFile"] = "NoSuchReport"
    (msg,) = messages(defn)
    assert "declared by 0 steps" in msg

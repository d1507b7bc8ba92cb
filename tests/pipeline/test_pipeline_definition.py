"""Contract tests of the pipeline definition: built offline, DAG, parameters, gates, registration."""

from __future__ import annotations

import json
import socket

import pytest

from pipelines import sdk
from core.pipeline_contract import GATES, MODEL_PACKAGE_GROUPS, MODELS
from pipelines.definition import CONDITION_TYPES, definition_dict, get_pipeline
from pipelines.validate import validate_definition


@pytest.fixture(scope="module")
def defn():
    """The definition, built with every socket connection refused: building must be offline."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network access during definition build: {address}")

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    mp.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    try:
        with sdk.quiet():
            d = json.loads(get_pipeline().definition())  # not definition_dict: its cache could hide a call
    finally:
        mp.undo()
    assert attempts == [], f"the definition build tried to connect to {attempts}"
    return d


def all_steps(steps):
    for s in steps:
        yield s
        if s["Type"] == "Condition":
            yield from all_steps(s["Arguments"].get("IfSteps", []))
            yield from all_steps(s["Arguments"].get("ElseSteps", []))


def by_name(defn):
    return {s["Name"]: s for s in all_steps(defn["Steps"])}


def get_refs(obj):
    """Every Get string under obj (not descending into nested condition branches)."""
    if isinstance(obj, dict):
        if "Get" in obj and len(obj) == 1:
            yield obj["Get"]
        for k, v in obj.items():
            if k not in ("IfSteps", "ElseSteps"):
                yield from get_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from get_refs(v)


def test_definition_is_json_serialisable_and_validates_clean(defn):
    assert json.loads(json.dumps(defn)) == defn
    assert validate_definition(defn) == []
    assert definition_dict() == defn  # the cached convenience builds the same JSON


def test_step_names_and_types(defn):
    steps = {n: s["Type"] for n, s in by_name(defn).items()}
    expected = {"Preprocess": "Processing", "MergeSplits": "Processing", "DataQuality": "Processing", "CheckDataQuality": "Condition", "FailDataQuality": "Fail"}
    for m in ("Price", "Demand", "Anomaly"):
        expected |= {
            f"Train{m}": "Training",
            f"Evaluate{m}": "Processing",
            f"Check{m}Gates": "Condition",
            f"Register{m}": "RegisterModel",
            f"Fail{m}": "Fail",
            f"DataQualityCheck{m}": "QualityCheck",
            f"ModelQualityCheck{m}": "QualityCheck",
        }
    expected |= {"ComparePrice": "Processing", "CheckPriceChampion": "Condition", "FailPriceChampion": "Fail"}
    assert steps == expected


def test_parameters_and_defaults(defn):
    params = {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in defn["Parameters"]}
    assert params["CuratedDataUri"] == ("String", "s3://airfare-lake/curated/offers/")
    assert params["OutcomesDataUri"] == ("String", "s3://airfare-lake/outcomes/flights/")
    assert params["LabelsDataUri"] == ("String", "s3://airfare-lake/labels/incidents/")
    assert params["TruthDataUri"] == ("String", "")  # as on AWS: no step needs the simulator's answer key
    assert params["PriceRmseMax"] == ("Float", 15.0)
    assert params["PriceR2Min"] == ("Float", 0.85)
    assert params["DemandAccuracyMin"] == ("Float", 0.85)
    assert params["AnomalyPrecisionMin"] == ("Float", 0.90)
    assert params["ModelApprovalStatus"] == ("String", "PendingManualApproval")
    assert params["ChampionModelUri"] == ("String", "")  # no champion: the absolute gates alone decide
    for name in ("StartDate", "EndDate", "ImageUri", "ProcessingInstanceType", "TrainingInstanceType"):
        assert params[name][0] == "String"
    assert params["ProcessingInstanceCount"] == ("Integer", 1)
    assert params["TrainingInstanceCount"] == ("Integer", 1)
    assert params["ValidationDays"] == ("Integer", 7) and params["TestDays"] == ("Integer", 7)
    from processing.sampling import DEFAULT_SAMPLE_FLIGHTS, DEFAULT_SAMPLE_ROWS

    assert params["SampleFlights"] == ("Integer", DEFAULT_SAMPLE_FLIGHTS)

    for split, name in (("train", "TrainSampleRows"), ("validation", "ValidationSampleRows"), ("test", "TestSampleRows")):
        assert params[name] == ("Integer", DEFAULT_SAMPLE_ROWS[split])


def test_dag_edges(defn):
    steps = by_name(defn)
    top = [s["Name"] for s in defn["Steps"]]
    assert top[:4] == ["Preprocess", "MergeSplits", "DataQuality", "CheckDataQuality"]
    merge = steps["MergeSplits"]
    assert {r.split(".")[1] for r in get_refs(merge["Arguments"]) if r.startswith("Steps.")} == {"Preprocess"}
    dq = steps["DataQuality"]
    assert {r.split(".")[1] for r in get_refs(dq["Arguments"]) if r.startswith("Steps.")} == {"MergeSplits"}
    # Training runs only when the data-quality check passes.
    check = steps["CheckDataQuality"]["Arguments"]
    assert [s["Name"] for s in check["IfSteps"]] == ["TrainPrice", "TrainDemand", "TrainAnomaly"]
    assert [s["Name"] for s in check["ElseSteps"]] == ["FailDataQuality"]
    for m in ("Price", "Demand", "Anomaly"):
        ev_refs = {r.split(".")[1] for r in get_refs(steps[f"Evaluate{m}"]["Arguments"]) if r.startswith("Steps.")}
        assert ev_refs == {f"Train{m}", "MergeSplits"}
        assert "DependsOn" not in steps[f"Check{m}Gates"]  # models are independent after training
        gate = steps[f"Check{m}Gates"]["Arguments"]
        # the price model passes its absolute gates, then the champion/challenger check
        assert [s["Name"] for s in gate["IfSteps"]] == ["CheckPriceChampion" if m == "Price" else f"Register{m}"]
        assert [s["Name"] for s in gate["ElseSteps"]] == [f"Fail{m}"]
    champion = steps["CheckPriceChampion"]["Arguments"]
    assert [s["Name"] for s in champion["IfSteps"]] == ["RegisterPrice"]
    assert [s["Name"] for s in champion["ElseSteps"]] == ["FailPriceChampion"]
    compare = steps["ComparePrice"]["Arguments"]
    assert {r.split(".")[1] for r in get_refs(compare) if r.startswith("Steps.")} == {"TrainPrice", "MergeSplits"}
    assert compare["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "evaluation.champion"]


def test_champion_condition_compares_both_models_on_the_comparison_report(defn):
    """Registered only with no champion (empty ChampionModelUri) or a lower RMSE than the champion's,
    both read from ComparePrice's report; the no-champion test comes first (Or stops there)."""
    (cond,) = by_name(defn)["CheckPriceChampion"]["Arguments"]["Conditions"]
    assert cond["Type"] == "Or"
    first, second = cond["Conditions"]
    assert first == {"Type": "Equals", "LeftValue": {"Get": "Parameters.ChampionModelUri"}, "RightValue": ""}
    report = {"Get": "Steps.ComparePrice.PropertyFiles.PriceChampionReport"}
    assert second == {"Type": "LessThan",
                      "LeftValue": {"Std:JsonGet": {"PropertyFile": report, "Path": "challenger.rmse.value"}},
                      "RightValue": {"Std:JsonGet": {"PropertyFile": report, "Path": "champion.rmse.value"}}}  # fmt: skip
    (pf,) = by_name(defn)["ComparePrice"]["PropertyFiles"]
    assert pf == {"PropertyFileName": "PriceChampionReport", "OutputName": "comparison", "FilePath": "comparison.json"}
    message = json.dumps(by_name(defn)["FailPriceChampion"]["Arguments"]["ErrorMessage"])
    assert "did not beat the champion" in message and "champion.rmse.value" in message


def test_processing_contract(defn):
    steps = by_name(defn)
    pre = steps["Preprocess"]["Arguments"]
    assert pre["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "processing.entry"]
    args = pre["AppSpecification"]["ContainerArguments"]
    sampling = ["--train-sample-rows", "--validation-sample-rows", "--test-sample-rows", "--sample-flights"]
    assert args[0::2] == ["--curated-uri", "--start-date", "--end-date", "--validation-days", "--test-days", *sampling]
    assert [a["Get"] for a in args[1:6:2]] == ["Parameters.CuratedDataUri", "Parameters.StartDate", "Parameters.EndDate"]
    assert args[7] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.ValidationDays"}]}}
    assert args[9] == {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.TestDays"}]}}
    sample_params = ["TrainSampleRows", "ValidationSampleRows", "TestSampleRows", "SampleFlights"]
    assert args[11::2] == [{"Std:Join": {"On": "", "Values": [{"Get": f"Parameters.{n}"}]}} for n in sample_params]
    # the map runs on ProcessingInstanceCount instances; everything after it on one
    assert pre["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == {"Get": "Parameters.ProcessingInstanceCount"}
    outs = {o["OutputName"]: o["S3Output"]["LocalPath"] for o in pre["ProcessingOutputConfig"]["Outputs"]}
    assert outs == {"shards": "/opt/ml/processing/output/shards"}
    assert pre["AppSpecification"]["ImageUri"] == {"Get": "Parameters.ImageUri"}

    merge = steps["MergeSplits"]["Arguments"]
    assert merge["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "processing.merge_splits"]
    margs = merge["AppSpecification"]["ContainerArguments"]
    assert margs[0::2] == ["--outcomes-uri", *sampling] and margs[1] == {"Get": "Parameters.OutcomesDataUri"}
    assert margs[3::2] == args[11::2]  # the reduce cuts the samples to the same sizes
    assert merge["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    (shards,) = merge["ProcessingInputs"]
    assert shards["S3Input"]["LocalPath"] == "/opt/ml/processing/input/shards"
    assert shards["S3Input"]["S3Uri"] == {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['shards'].S3Output.S3Uri"}
    outs = {o["OutputName"]: o["S3Output"]["LocalPath"] for o in merge["ProcessingOutputConfig"]["Outputs"]}
    assert outs == {s: f"/opt/ml/processing/output/{s}" for s in ("train", "validation", "test")}
    for name in ("DataQuality", "EvaluatePrice", "EvaluateDemand", "EvaluateAnomaly"):
        assert steps[name]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1

    dq = steps["DataQuality"]
    assert dq["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == ["python", "-m", "data_quality.entry"]
    ins = {i["InputName"]: i["S3Input"]["LocalPath"] for i in dq["Arguments"]["ProcessingInputs"]}
    assert ins == {s: f"/opt/ml/processing/input/{s}" for s in ("train", "validation", "test")}
    assert dq["PropertyFiles"] == [{"PropertyFileName": "DataQualityReport", "OutputName": "dq", "FilePath": "dq_result.json"}]
    cond = steps["CheckDataQuality"]["Arguments"]["Conditions"]
    assert cond == [{
        "Type": "Equals",
        "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.DataQuality.PropertyFiles.DataQualityReport"},
                                      "Path": "blocking_failures"}},
        "RightValue": 0,
    }]  # fmt: skip
    assert "failed_expectations" in json.dumps(steps["FailDataQuality"]["Arguments"]["ErrorMessage"])

    for model in MODELS:
        ev = steps[f"Evaluate{model.capitalize()}"]
        app = ev["Arguments"]["AppSpecification"]
        assert app["ContainerEntrypoint"] + app["ContainerArguments"][:2] == ["python", "-m", "evaluation.entry", "--model", model]
        # the truth is an optional argument (an input could not be empty), never an input
        assert app["ContainerArguments"][2] == {"Std:Join": {"On": "", "Values": ["--truth-uri=", {"Get": "Parameters.TruthDataUri"}]}}
        ins = {i["InputName"]: (i["S3Input"]["LocalPath"], i["S3Input"]["S3Uri"]) for i in ev["Arguments"]["ProcessingInputs"]}
        assert ins["model"] == ("/opt/ml/processing/model", {"Get": f"Steps.Train{model.capitalize()}.ModelArtifacts.S3ModelArtifacts"})
        assert ins["test"][0] == "/opt/ml/processing/test"
        assert set(ins) == {"model", "test", "train"} | ({"labels"} if model == "anomaly" else set())
        if model == "anomaly":
            assert ins["labels"] == ("/opt/ml/processing/labels", {"Get": "Parameters.LabelsDataUri"})
        assert ev["PropertyFiles"] == [
            {"PropertyFileName": f"{model.capitalize()}EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
        ]


def test_training_contract_spot_and_runtime(defn):
    steps = by_name(defn)
    for model in MODELS:
        a = steps[f"Train{model.capitalize()}"]["Arguments"]
        assert a["AlgorithmSpecification"]["TrainingImage"] == {"Get": "Parameters.ImageUri"}
        assert "ContainerEntrypoint" not in a["AlgorithmSpecification"]  # no SDK driver: the image's `train`
        assert a["HyperParameters"]["model"] == model
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in a["InputDataConfig"]}
        expected = {"train", "validation"} | ({"labels"} if model == "anomaly" else set())
        assert set(channels) == expected
        assert channels["train"] == {"Get": "Steps.MergeSplits.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
        if model == "anomaly":
            assert channels["labels"] == {"Get": "Parameters.LabelsDataUri"}
        assert a["EnableManagedSpotTraining"] is True
        assert a["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
        assert a["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}


def test_gates_wired_to_report_paths_and_thresholds(defn):
    steps = by_name(defn)
    for model in MODELS:
        cap = model.capitalize()
        conds = steps[f"Check{cap}Gates"]["Arguments"]["Conditions"]
        wired = {
            (c["Type"], c["LeftValue"]["Std:JsonGet"]["Path"], c["RightValue"]["Get"])
            for c in conds
        }
        for c in conds:
            assert c["LeftValue"]["Std:JsonGet"]["PropertyFile"] == {"Get": f"Steps.Evaluate{cap}.PropertyFiles.{cap}EvaluationReport"}
        expected = {
            (CONDITION_TYPES[g.op], g.path, f"Parameters.{g.parameter}")
            for g in GATES
            if g.model == model
        }
        assert wired == expected
        message = json.dumps(steps[f"Fail{cap}"]["Arguments"]["ErrorMessage"])
        assert f"{model} gate failed" in message
        for g in GATES:
            if g.model == model:
                assert f"{g.metric}=" in message and g.path in message
    assert {(g.model, g.path) for g in GATES} >= {
        ("price", "regression_metrics.rmse.value"),
        ("price", "regression_metrics.r2.value"),
        ("demand", "multiclass_classification_metrics.accuracy.value"),
        ("anomaly", "binary_classification_metrics.precision.value"),
    }


def test_register_steps_target_groups_with_approval_parameter(defn):
    steps = by_name(defn)
    for model in MODELS:
        cap = model.capitalize()
        a = steps[f"Register{cap}"]["Arguments"]
        assert a["ModelPackageGroupName"] == MODEL_PACKAGE_GROUPS[model] == f"airfare-{model}"
        assert a["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
        container = a["InferenceSpecification"]["Containers"][0]
        assert container["Image"] == {"Get": "Parameters.InferenceImageUri"}  # the lean serving image
        assert container["ModelDataUrl"] == {"Get": f"Steps.Train{cap}.ModelArtifacts.S3ModelArtifacts"}
        stats = a["ModelMetrics"]["ModelQuality"]["Statistics"]
        assert stats["S3Uri"]["Std:Join"]["Values"] == [
            {"Get": f"Steps.Evaluate{cap}.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
            "evaluation.json",
        ]


def test_no_code_is_uploaded(defn):
    """Code lives in the image: no step has a code input or an SDK-uploaded S3 path."""
    text = json.dumps(defn)
    assert "sm_drivers" not in text and "/input/code" not in text and "sourcedir" not in text


def test_on_demand_vpc_kms_variant():
    kms = "arn:aws:kms:us-east-1:123456789012:key/abc"
    d = definition_dict(
        use_spot_instances=False, max_runtime_in_seconds=1800,
        subnets=["subnet-1", "subnet-2"], security_group_ids=["sg-1"], volume_kms_key=kms, output_kms_key=kms,
    )  # fmt: skip
    steps = by_name(d)
    a = steps["TrainPrice"]["Arguments"]
    assert a["EnableManagedSpotTraining"] is False
    assert a["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800}  # MaxWait only with spot
    assert a["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]}
    assert a["OutputDataConfig"]["KmsKeyId"] == kms and a["ResourceConfig"]["VolumeKmsKeyId"] == kms
    for name in ("Preprocess", "MergeSplits", "DataQuality", "EvaluatePrice"):
        p = steps[name]["Arguments"]
        assert p["NetworkConfig"]["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1", "subnet-2"]}
        assert p["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == kms
        assert p["ProcessingOutputConfig"]["KmsKeyId"] == kms
    assert validate_definition(d) == []


def test_spot_wait_shorter_than_runtime_is_refused():
    with pytest.raises(ValueError, match="max_wait_time_in_seconds"):
        definition_dict(max_runtime_in_seconds=3600, max_wait_time_in_seconds=600)

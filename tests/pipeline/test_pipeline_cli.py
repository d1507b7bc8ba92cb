"""`airfare pipeline ...` and `airfare models ...` end to end (in process; SageMaker = moto)."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def definition_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("defn") / "pipeline.json"
    result = invoke("pipeline", "definition", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_definition_to_file_and_stdout(definition_file):
    defn = json.loads(definition_file.read_text())
    assert defn["Version"] == "2020-12-01"
    result = invoke("pipeline", "definition", "--no-spot", "--max-runtime", "1200")
    assert result.exit_code == 0
    on_demand = json.loads(result.stdout)
    train = next(s for s in on_demand["Steps"] if s["Name"] == "CheckDataQuality")["Arguments"]["IfSteps"][0]
    assert train["Arguments"]["EnableManagedSpotTraining"] is False
    assert train["Arguments"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 1200}


def test_definition_rejects_wait_shorter_than_runtime():
    result = invoke("pipeline", "definition", "--max-runtime", "3600", "--max-wait", "600")
    assert result.exit_code == 2
    assert "--max-wait (600) must be >= --max-runtime (3600)" in result.output
    assert "Traceback" not in result.output


def test_validate_ok_and_broken(definition_file, tmp_path):
    ok = invoke("pipeline", "validate", definition_file)
    assert ok.exit_code == 0 and "OK" in ok.output
    broken = tmp_path / "broken.json"
    broken.write_text(definition_file.read_text().replace("Parameters.StartDate", "Parameters.StartDay"))
    result = invoke("pipeline", "validate", broken)
    assert result.exit_code == 1
    assert "1 problem(s)" in result.output and "parameter 'StartDay' is not declared" in result.output
    missing = invoke("pipeline", "validate", tmp_path / "nope.json")
    assert missing.exit_code == 1 and "file not found" in missing.output


def test_upsert_and_start_against_moto(aws_endpoint):
    from core import aws

    name = f"airfare-test-{uuid.uuid4().hex[:8]}"
    role = "arn:aws:iam::123456789012:role/AirfareSageMakerExecution"
    result = invoke("pipeline", "upsert", "--role-arn", role, "--pipeline-name", name)
    assert result.exit_code == 0, result.output
    assert name in result.stdout.strip()
    # Upsert twice: the second is an update.
    assert invoke("pipeline", "upsert", "--role-arn", role, "--pipeline-name", name).exit_code == 0

    sm = aws.client("sagemaker")
    deployed = json.loads(sm.describe_pipeline(PipelineName=name)["PipelineDefinition"])
    assert {p["Name"] for p in deployed["Parameters"]} >= {"CuratedDataUri", "PriceRmseMax", "ModelApprovalStatus"}
    assert role in json.dumps(deployed)

    started = invoke("pipeline", "start", "--pipeline-name", name, "-p", "StartDate=2026-02-01", "-p", "PriceRmseMax=12.5")
    assert started.exit_code == 0, started.output
    arn = started.stdout.strip()
    execs = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in execs] == [arn]
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {"Name": "PriceRmseMax", "Value": "12.5"} in params

    bad = invoke("pipeline", "start", "--pipeline-name", name, "-p", "PriceRmse=1")
    assert bad.exit_code == 2 and "unknown parameter(s) PriceRmse" in bad.output
    malformed = invoke("pipeline", "start", "--pipeline-name", name, "-p", "PriceRmseMax")
    assert malformed.exit_code == 2 and "Name=Value" in malformed.output
    missing = invoke("pipeline", "start", "--pipeline-name", f"{name}-nope")
    assert missing.exit_code == 1 and "SageMaker refused" in missing.output


def test_upsert_requires_role(monkeypatch):
    monkeypatch.delenv("SAGEMAKER_ROLE_ARN", raising=False)
    result = invoke("pipeline", "upsert")
    assert result.exit_code == 2 and "--role-arn" in result.output


def test_run_local_checks_before_running(definition_file, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(definition_file.read_text().replace("dq_result.json", "dq.json").replace('"blocking_failures"', '"blocking"'))
    result = invoke("pipeline", "run-local", "--definition", broken, "--runs", tmp_path / "runs")
    assert result.exit_code == 1 and "blocking" in result.output
    assert not (tmp_path / "runs").exists()  # nothing ran
    unknown = invoke("pipeline", "run-local", "--definition", definition_file, "-p", "Nope=1", "--runs", tmp_path / "runs")
    assert unknown.exit_code == 2 and "unknown parameter(s) Nope" in unknown.output


def test_run_local_prints_step_table(tmp_path):
    """A one-step definition through the real local executor: the table and the Fail message."""
    defn = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Why", "Type": "String", "DefaultValue": "because"}],
        "Steps": [{"Name": "Stop", "Type": "Fail",
                   "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": ["stopped:", {"Get": "Parameters.Why"}]}}}}],
    }  # fmt: skip
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(defn))
    result = invoke("pipeline", "run-local", "--definition", path, "-p", "Why=testing", "-q",
                    "--runs", tmp_path / "runs", "--lake", tmp_path / "lake", "--registry", tmp_path / "registry")  # fmt: skip
    assert result.exit_code == 1
    assert "Stop" in result.output and "Failed" in result.output and "stopped: testing" in result.output


def test_models_commands_local(tmp_path):
    from pipelines.registry import LocalRegistry

    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"m")
    reg = LocalRegistry(tmp_path / "registry")
    metrics = {"regression_metrics": {"rmse": {"value": 9.81}, "r2": {"value": 0.97}}}
    reg.register("airfare-price", artifact, "img", "PendingManualApproval", metrics, {})
    listed = invoke("models", "list", "--registry", tmp_path / "registry")
    assert listed.exit_code == 0
    assert "airfare-price" in listed.output and "PendingManualApproval" in listed.output and "rmse=9.81" in listed.output
    assert invoke("models", "approve", "airfare-price/1", "--registry", tmp_path / "registry").exit_code == 0
    assert reg.get("airfare-price/1")["ModelApprovalStatus"] == "Approved"
    rejected = invoke("models", "reject", "airfare-price/1", "--reason", "drift", "--registry", tmp_path / "registry")
    assert rejected.exit_code == 0 and "Rejected" in rejected.output
    missing = invoke("models", "approve", "airfare-price/9", "--registry", tmp_path / "registry")
    assert missing.exit_code == 1 and "no model package airfare-price/9" in missing.output
    empty = invoke("models", "list", "--group", "airfare-demand", "--registry", tmp_path / "registry")
    assert empty.exit_code == 0 and "no model packages in airfare-demand" in empty.output


def test_models_commands_sagemaker(aws_endpoint):
    from pipelines.registry import SageMakerRegistry

    group = f"airfare-cli-{uuid.uuid4().hex[:8]}"
    pkg = SageMakerRegistry().register(group, "s3://b/model.tar.gz", "img:1")
    listed = invoke("models", "list", "--sagemaker", "--group", group)
    assert listed.exit_code == 0 and group in listed.output
    approved = invoke("models", "approve", pkg["ModelPackageArn"])  # an ARN means SageMaker
    assert approved.exit_code == 0 and "Approved" in approved.output
    rejected = invoke("models", "reject", pkg["ModelPackageArn"], "--reason", "rollback")
    assert rejected.exit_code == 0 and "Rejected" in rejected.output


def test_models_commands_take_both_id_forms_on_sagemaker(aws_endpoint, monkeypatch):
    """GROUP/VERSION (what the README shows) and the ARN, with requests held to the API's patterns."""
    from api_patterns import validating

    from pipelines.registry import SageMakerRegistry
    from core import aws

    make = aws.client
    monkeypatch.setattr(aws, "client", lambda service, **kw: validating(make(service, **kw)))
    group = f"airfare-cli-{uuid.uuid4().hex[:8]}"
    reg = SageMakerRegistry()
    one = reg.register(group, "s3://airfare-lake/m/1/model.tar.gz", "img:1")
    two = reg.register(group, "s3://airfare-lake/m/2/model.tar.gz", "img:2")

    approved = invoke("models", "approve", f"{group}/1", "--sagemaker", "--description", "gates passed")
    assert approved.exit_code == 0, approved.output
    assert f"{one['ModelPackageArn']}: Approved" in approved.output
    rejected = invoke("models", "reject", two["ModelPackageArn"], "--reason", "drift")
    assert rejected.exit_code == 0 and f"{two['ModelPackageArn']}: Rejected" in rejected.output
    assert [p["ModelApprovalStatus"] for p in reg.list(group)] == ["Approved", "Rejected"]
    missing = invoke("models", "approve", f"{group}/7", "--sagemaker")
    assert missing.exit_code == 1 and f"no model package {group}/7" in missing.output


def test_models_commands_take_both_id_forms_locally(tmp_path):
    from pipelines.registry import LocalRegistry

    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"m")
    reg = LocalRegistry(tmp_path / "registry")
    reg.register("airfare-price", artifact, "img", "PendingManualApproval", {}, {})
    reg.register("airfare-price", artifact, "img", "PendingManualApproval", {}, {})
    assert invoke("models", "approve", "local:model-package/airfare-price/1", "--registry", tmp_path / "registry").exit_code == 0
    assert invoke("models", "reject", "airfare-price/2", "--reason", "x", "--registry", tmp_path / "registry").exit_code == 0
    assert [p["ModelApprovalStatus"] for p in reg.list("airfare-price")] == ["Approved", "Rejected"]
    escape = invoke("models", "approve", "../1", "--registry", tmp_path / "registry")
    assert escape.exit_code == 1 and "Error:" in escape.output and "is invalid" in escape.output


@pytest.mark.parametrize("how", ["flag", "env"])
def test_run_local_with_an_s3_endpoint_moves_data_through_s3(moto_server, tmp_path, monkeypatch, how):
    """--s3-endpoint-url (or AWS_ENDPOINT_URL_S3): the job's input comes from S3 and its output goes back."""
    import boto3

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    bucket = f"cli-{how}-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/data.txt", Body=b"hello")
    copy = "import pathlib, sys; pathlib.Path(sys.argv[2], 'copy.txt').write_bytes(pathlib.Path(sys.argv[1], 'data.txt').read_bytes())"
    defn = {
        "Version": "2020-12-01",
        "Parameters": [],
        "Steps": [{"Name": "Copy", "Type": "Processing", "Arguments": {
            "AppSpecification": {"ImageUri": "img", "ContainerEntrypoint": ["python", "-c", copy, "/opt/ml/processing/in", "/opt/ml/processing/out"]},
            "ProcessingInputs": [{"InputName": "in", "S3Input": {"S3Uri": f"s3://{bucket}/in/", "LocalPath": "/opt/ml/processing/in",
                                                                 "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": f"s3://{bucket}/out/", "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}},
            "RoleArn": "arn:aws:iam::123456789012:role/x"}}],
    }  # fmt: skip
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(defn))
    if how == "flag":
        extra = ["--s3-endpoint-url", moto_server]
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server)
        extra = []
    result = invoke("pipeline", "run-local", "--definition", path, "-q", "--runs", tmp_path / "runs",
                    "--lake", tmp_path / "lake", "--registry", tmp_path / "registry", *extra)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert s3.get_object(Bucket=bucket, Key="out/copy.txt")["Body"].read() == b"hello"
    assert not (tmp_path / "lake").exists()

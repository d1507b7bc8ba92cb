"""Endpoint deployment: moto for what it supports, botocore's Stubber for update_endpoint and Model Monitor."""

from __future__ import annotations

import datetime as dt
import uuid

import boto3
import pytest
import typer
from botocore.stub import Stubber
from typer.testing import CliRunner

from pipelines import deploy, deploy_cli
from pipelines.registry import SageMakerRegistry
from core import aws

ROLE = "arn:aws:iam::123456789012:role/airfare-dev-sagemaker-endpoint"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/airfare-dev:abc123"
runner = CliRunner()


def _root_app() -> typer.Typer:
    """The CLI as pipelines/cli.py will mount it: ``app.add_typer(deploy_cli.app)``."""
    root = typer.Typer()
    root.add_typer(deploy_cli.app)

    @root.callback()
    def _root() -> None:  # keeps `deploy` a sub-command, as in the real root app
        pass

    return root


def _package(status: str) -> str:
    group = f"airfare-price-{uuid.uuid4().hex[:8]}"
    pkg = SageMakerRegistry(aws.client("sagemaker")).register(group, f"s3://lake/{group}/model.tar.gz", IMAGE,
                                                              approval_status=status)
    return pkg["ModelPackageArn"]


def test_cli_deploys_an_approved_package(aws_endpoint):
    arn = _package("Approved")
    endpoint = f"airfare-test-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(_root_app(), ["deploy", arn, "--endpoint-name", endpoint, "--instance-type", "ml.c5.large",
                                         "--min", "2", "--max", "10", "--role-arn", ROLE,
                                         "--data-capture-uri", "s3://lake/data-capture"])
    assert result.exit_code == 0, result.output
    sm, aas = aws.client("sagemaker"), aws.client("application-autoscaling")
    ep = sm.describe_endpoint(EndpointName=endpoint)
    assert ep["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == ("AllTraffic", "ml.c5.large", 2)
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] and capture["DestinationS3Uri"] == f"s3://lake/data-capture/{endpoint}"
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"] == IMAGE and model["PrimaryContainer"]["ModelDataUrl"].endswith("model.tar.gz")
    rid = f"endpoint/{endpoint}/variant/AllTraffic"
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[rid])["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"], t["ScalableDimension"]) for t in targets] == [
        (2, 10, "sagemaker:variant:DesiredInstanceCount")]
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"]
    assert len(policies) == 1 and policies[0]["PolicyType"] == "TargetTrackingScaling"
    tracking = policies[0]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert tracking["TargetValue"] == deploy.DEFAULT_INVOCATIONS_TARGET


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_unapproved_package_is_refused(aws_endpoint, status):
    arn = _package(status)
    endpoint = f"airfare-test-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(_root_app(), ["deploy", arn, "--endpoint-name", endpoint, "--role-arn", ROLE])
    assert result.exit_code == 1
    assert f"is {status}, not Approved" in result.output
    models = aws.client("sagemaker").list_models(MaxResults=100)["Models"]
    assert not [m for m in models if m["ModelName"].startswith(endpoint)]  # nothing was created


def test_bad_settings_are_refused_before_any_call(aws_endpoint):
    cfg = deploy.DeployConfig(endpoint_name="ok-name", role_arn=ROLE, min_instances=5, max_instances=2)
    with pytest.raises(deploy.DeploymentError, match="min"):
        deploy.deploy("arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1", cfg)
    with pytest.raises(deploy.DeploymentError, match="endpoint name"):
        deploy.DeployConfig(endpoint_name="bad_name!", role_arn=ROLE).check()
    result = runner.invoke(_root_app(), ["deploy", "arn:x", "--endpoint-name", "e"], env={"ENDPOINT_ROLE_ARN": ""})
    assert result.exit_code == 2 and "--role-arn" in result.output
    result = runner.invoke(_root_app(), ["deploy", "arn:aws:sagemaker:us-east-1:123456789012:model-package/nope/1",
                                         "--endpoint-name", "airfare-missing", "--role-arn", ROLE])
    assert result.exit_code == 1 and "cannot read model package" in result.output


def _clients():
    sm = boto3.client("sagemaker", region_name="us-east-1")
    aas = boto3.client("application-autoscaling", region_name="us-east-1")
    return sm, aas


APPROVED = {
    "ModelPackageName": "airfare-price", "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/airfare-price/7",
    "ModelPackageVersion": 7, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved",
    "CreationTime": dt.datetime(2026, 11, 1), "ModelPackageStatusDetails": {"ValidationStatuses": []},
    "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://lake/runs/x/model.tar.gz"}],
                               "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
}


@pytest.mark.parametrize("old_type,deregisters", [("ml.m5.large", True), ("ml.c5.large", False)])
def test_update_of_an_existing_endpoint(old_type, deregisters):
    """update_endpoint (missing in moto): blue/green update; a changed instance type deregisters scaling first."""
    sm, aas = _clients()
    cfg = deploy.DeployConfig(endpoint_name="airfare-dev-price", role_arn=ROLE, instance_type="ml.c5.large")
    now = dt.datetime(2026, 11, 25, 12, 0, 0)
    name = "airfare-dev-price-v7-20261125120000"
    endpoint_arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/airfare-dev-price"
    with Stubber(sm) as s, Stubber(aas) as a:
        s.add_response("describe_model_package", APPROVED, {"ModelPackageName": APPROVED["ModelPackageArn"]})
        s.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}"},
                       deploy.model_request(name, APPROVED, cfg))
        s.add_response("create_endpoint_config", {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}"},
                       deploy.endpoint_config_request(name, name, cfg))
        described = {"EndpointName": cfg.endpoint_name, "EndpointArn": endpoint_arn, "EndpointConfigName": "old-config",
                     "EndpointStatus": "InService", "CreationTime": now, "LastModifiedTime": now}
        s.add_response("describe_endpoint", described, {"EndpointName": cfg.endpoint_name})
        s.add_response("describe_endpoint_config", {
            "EndpointConfigName": "old-config", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/old-config",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "old", "InstanceType": old_type, "InitialInstanceCount": 2}],
            "CreationTime": now}, {"EndpointConfigName": "old-config"})
        rid = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/airfare-dev-price/variant/AllTraffic",
               "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
        if deregisters:
            a.add_response("deregister_scalable_target", {}, rid)
        s.add_response("update_endpoint", {"EndpointArn": endpoint_arn},
                       {"EndpointName": cfg.endpoint_name, "EndpointConfigName": name})
        s.add_response("describe_endpoint", {**described, "EndpointConfigName": name}, {"EndpointName": cfg.endpoint_name})
        a.add_response("register_scalable_target", {}, {**rid, "MinCapacity": 2, "MaxCapacity": 10})
        a.add_response("put_scaling_policy", {"PolicyARN": "arn:policy"}, deploy.scaling_policy_request(cfg))
        out = deploy.deploy(APPROVED["ModelPackageArn"], cfg, sm=sm, autoscaling=aas, now=now)
        s.assert_no_pending_responses()
        a.assert_no_pending_responses()
    assert out["Action"] == "updated" and out["ModelName"] == name
    assert out["DeregisteredForInstanceTypeChange"] is deregisters and out["Scaling"]["PolicyArn"] == "arn:policy"


def test_data_quality_schedule_request_is_accepted_by_the_api_model():
    """create_monitoring_schedule is missing in moto: the Stubber validates the request against botocore's model."""
    sm, _ = _clients()
    req = deploy.data_quality_schedule_request(
        "airfare-dev-price-dq", "airfare-dev-price", ROLE, "s3://lake/baselines/price/", "s3://lake/monitoring",
        region="us-east-1", record_preprocessor_uri="s3://code/monitor_preprocessor.py", kms_key_arn="arn:aws:kms:us-east-1:1:key/k")
    job = req["MonitoringScheduleConfig"]["MonitoringJobDefinition"]
    assert job["BaselineConfig"]["StatisticsResource"]["S3Uri"] == "s3://lake/baselines/price/statistics.json"
    assert job["MonitoringInputs"][0]["EndpointInput"]["EndpointName"] == "airfare-dev-price"
    assert job["MonitoringAppSpecification"]["ImageUri"].startswith("156813124566.dkr.ecr.us-east-1.amazonaws.com/")
    assert req["MonitoringScheduleConfig"]["MonitoringType"] == "DataQuality"
    arn = "arn:aws:sagemaker:us-east-1:123456789012:monitoring-schedule/airfare-dev-price-dq"
    with Stubber(sm) as s:
        s.add_response("create_monitoring_schedule", {"MonitoringScheduleArn": arn}, req)
        got = deploy.create_data_quality_schedule(
            sm, schedule_name="airfare-dev-price-dq", endpoint_name="airfare-dev-price", role_arn=ROLE,
            baseline_uri="s3://lake/baselines/price/", output_uri="s3://lake/monitoring", region="us-east-1",
            record_preprocessor_uri="s3://code/monitor_preprocessor.py", kms_key_arn="arn:aws:kms:us-east-1:1:key/k")
        s.assert_no_pending_responses()
    assert got == arn
    with pytest.raises(deploy.DeploymentError, match="region"):
        deploy.data_quality_schedule_request("s", "e", ROLE, "s3://b/base", "s3://b/out", region="mars-north-1")
    with pytest.raises(deploy.DeploymentError, match="s3://"):
        deploy.data_quality_schedule_request("s", "e", ROLE, "/tmp/base", "s3://b/out", image_uri=IMAGE)
    with pytest.raises(deploy.DeploymentError, match="cron"):
        deploy.data_quality_schedule_request("s", "e", ROLE, "s3://b/base", "s3://b/out", image_uri=IMAGE, cron="rate(1 hour)")

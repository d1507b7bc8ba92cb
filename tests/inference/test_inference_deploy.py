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
    assert capture["CaptureContentTypeHeader"]["JsonContentTypes"] == ["application/json", "application/jsonlines"]
    alarms = {a["AlarmName"]: a for a in aws.client("cloudwatch").describe_alarms(
        AlarmNamePrefix=endpoint)["MetricAlarms"]}
    assert set(alarms) == {f"{endpoint}-5xx", f"{endpoint}-model-latency"}
    assert alarms[f"{endpoint}-5xx"]["MetricName"] == "Invocation5XXErrors"
    assert alarms[f"{endpoint}-model-latency"]["ExtendedStatistic"] == "p99"
    # The approval rule's second delivery (or an edit of the approved package) changes nothing.
    again = runner.invoke(_root_app(), ["deploy", arn, "--endpoint-name", endpoint, "--instance-type", "ml.c5.large",
                                        "--role-arn", ROLE, "--on-approval"])
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == ep["EndpointConfigName"]


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
    for lo, hi in ((5, 2), (1, 4), (2, 11)):
        cfg = deploy.DeployConfig(endpoint_name="ok-name", role_arn=ROLE, min_instances=lo, max_instances=hi)
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


def _cloudwatch():
    return boto3.client("cloudwatch", region_name="us-east-1")


APPROVED = {
    "ModelPackageName": "airfare-price", "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/airfare-price/7",
    "ModelPackageVersion": 7, "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved",
    "CreationTime": dt.datetime(2026, 11, 1), "ModelPackageStatusDetails": {"ValidationStatuses": []},
    "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://lake/runs/x/model.tar.gz"}],
                               "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
}


ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/airfare-dev-price"
CONFIG_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/old-config"


def _described(cfg, now, config="old-config"):
    return {"EndpointName": cfg.endpoint_name, "EndpointArn": ENDPOINT_ARN, "EndpointConfigName": config,
            "EndpointStatus": "InService", "CreationTime": now, "LastModifiedTime": now}


def _old_config(now, old_type):
    return {"EndpointConfigName": "old-config", "EndpointConfigArn": CONFIG_ARN,
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "old", "InstanceType": old_type,
                                    "InitialInstanceCount": 2}], "CreationTime": now}


@pytest.mark.parametrize("old_type,deregisters", [("ml.m5.large", True), ("ml.c5.large", False)])
def test_update_is_blue_green_with_alarm_rollback(old_type, deregisters):
    """update_endpoint (missing in moto), through the Stubber, which validates every request against
    botocore's service model: canary blue/green with rollback on the 5XX and latency alarms; a changed
    instance type deregisters scaling first."""
    sm, aas = _clients()
    cw = _cloudwatch()
    cfg = deploy.DeployConfig(endpoint_name="airfare-dev-price", role_arn=ROLE, instance_type="ml.c5.large",
                              data_capture_uri="s3://lake/data-capture", kms_key_arn="arn:aws:kms:us-east-1:1:key/k",
                              alarm_topic_arn="arn:aws:sns:us-east-1:123456789012:alerts")
    now = dt.datetime(2026, 11, 25, 12, 0, 0)
    name = "airfare-dev-price-v7-20261125120000"
    with Stubber(sm) as s, Stubber(aas) as a, Stubber(cw) as c:
        s.add_response("describe_model_package", APPROVED, {"ModelPackageName": APPROVED["ModelPackageArn"]})
        s.add_response("describe_endpoint", _described(cfg, now), {"EndpointName": cfg.endpoint_name})
        s.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}"},
                       deploy.model_request(name, APPROVED, cfg))
        config_req = deploy.endpoint_config_request(name, name, cfg, APPROVED["ModelPackageArn"])
        s.add_response("create_endpoint_config", {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}"},
                       config_req)
        for req in deploy.alarm_requests(cfg):
            c.add_response("put_metric_alarm", {}, req)
        s.add_response("describe_endpoint_config", _old_config(now, old_type), {"EndpointConfigName": "old-config"})
        rid = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/airfare-dev-price/variant/AllTraffic",
               "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
        if deregisters:
            a.add_response("deregister_scalable_target", {}, rid)
        s.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN},
                       {"EndpointName": cfg.endpoint_name, "EndpointConfigName": name,
                        "DeploymentConfig": deploy.deployment_config(cfg)})
        s.add_response("describe_endpoint", _described(cfg, now, name), {"EndpointName": cfg.endpoint_name})
        a.add_response("register_scalable_target", {}, {**rid, "MinCapacity": 2, "MaxCapacity": 10})
        a.add_response("put_scaling_policy", {"PolicyARN": "arn:policy"}, deploy.scaling_policy_request(cfg))
        out = deploy.deploy(APPROVED["ModelPackageArn"], cfg, sm=sm, autoscaling=aas, cloudwatch=cw, now=now)
        for stub in (s, a, c):
            stub.assert_no_pending_responses()
    assert out["Action"] == "updated" and out["ModelName"] == name
    assert out["DeregisteredForInstanceTypeChange"] is deregisters and out["Scaling"]["PolicyArn"] == "arn:policy"
    dc = deploy.deployment_config(cfg)
    assert dc["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert {a["AlarmName"] for a in dc["AutoRollbackConfiguration"]["Alarms"]} == {
        "airfare-dev-price-5xx", "airfare-dev-price-model-latency"}
    capture = config_req["DataCaptureConfig"]["CaptureContentTypeHeader"]
    assert capture == {"JsonContentTypes": ["application/json", "application/jsonlines"], "CsvContentTypes": ["text/csv"]}


@pytest.mark.parametrize("served,deploys", [
    (APPROVED["ModelPackageArn"], False),  # an edit of the approved, deployed package
    ("arn:aws:sagemaker:us-east-1:123456789012:model-package/airfare-price/9", False),  # an older version approved late
    ("arn:aws:sagemaker:us-east-1:123456789012:model-package/airfare-price/6", True),  # a newer version: deploy
])
def test_approval_events_deploy_only_what_is_new(served, deploys):
    sm, aas = _clients()
    cw = _cloudwatch()
    cfg = deploy.DeployConfig(endpoint_name="airfare-dev-price", role_arn=ROLE, instance_type="ml.c5.large")
    now = dt.datetime(2026, 11, 25, 12, 0, 0)
    with Stubber(sm) as s:
        s.add_response("describe_model_package", APPROVED, {"ModelPackageName": APPROVED["ModelPackageArn"]})
        s.add_response("describe_endpoint", _described(cfg, now), {"EndpointName": cfg.endpoint_name})
        s.add_response("describe_endpoint_config", _old_config(now, "ml.c5.large"), {"EndpointConfigName": "old-config"})
        s.add_response("list_tags", {"Tags": [{"Key": deploy.PACKAGE_TAG, "Value": served}]}, {"ResourceArn": CONFIG_ARN})
        if deploys:
            s.add_client_error("create_model", "ValidationException", "stop here: the deployment went on")
            with pytest.raises(Exception, match="stop here"):
                deploy.deploy(APPROVED["ModelPackageArn"], cfg, sm=sm, autoscaling=aas, cloudwatch=cw, now=now, on_approval=True)
        else:
            out = deploy.deploy(APPROVED["ModelPackageArn"], cfg, sm=sm, autoscaling=aas, cloudwatch=cw, now=now, on_approval=True)
            assert out["Action"] == "unchanged" and out["ServedModelPackageArn"] == served
        s.assert_no_pending_responses()


def test_every_request_matches_botocore_service_model():
    """Each request builder's output, validated against the operation's input shape."""
    from botocore.validate import ParamValidator

    session = boto3.session.Session(region_name="us-east-1")
    cfg = deploy.DeployConfig(endpoint_name="airfare-dev-price", role_arn=ROLE, data_capture_uri="s3://lake/dc",
                              kms_key_arn="arn:aws:kms:us-east-1:1:key/k", subnets=["subnet-1"], security_group_ids=["sg-1"],
                              workers=2, alarm_topic_arn="arn:aws:sns:us-east-1:123456789012:alerts")
    checks = [
        ("sagemaker", "CreateModel", deploy.model_request("n", APPROVED, cfg)),
        ("sagemaker", "CreateEndpointConfig", deploy.endpoint_config_request("n", "n", cfg, APPROVED["ModelPackageArn"])),
        ("sagemaker", "UpdateEndpoint", {"EndpointName": "e", "EndpointConfigName": "n", "DeploymentConfig": deploy.deployment_config(cfg)}),
        ("application-autoscaling", "PutScalingPolicy", deploy.scaling_policy_request(cfg)),
        *[("cloudwatch", "PutMetricAlarm", r) for r in deploy.alarm_requests(cfg)],
    ]
    for service, op, req in checks:
        model = session._session.get_service_model(service).operation_model(op)
        report = ParamValidator().validate(req, model.input_shape)
        assert not report.has_errors(), (op, report.generate_report())


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

"""Model Monitor on AWS: job definitions, schedules and alarms for an endpoint.

moto has no monitoring job definitions or schedules: those calls go through botocore's Stubber,
which checks each request against botocore's SageMaker model; S3 and CloudWatch alarms run on
the moto server. The stack's alarm must watch metrics the schedules really publish.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from monitoring import analyzer, monitor
from pipelines import monitoring_deploy as md
from core import aws

ROLE = "arn:aws:iam::123456789012:role/airfare-dev-sagemaker-monitoring"
PKG = "arn:aws:sagemaker:us-east-1:123456789012:model-package/airfare-demand/3"


def _baselines(s3, bucket):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"days_to_departure": rng.integers(0, 300, 500), "route": rng.choice(["JFK-LAX", "SFO-SEA"], 500),
                       "search_hour": rng.integers(0, 24, 500)})
    stats = analyzer.statistics(df)
    cons = analyzer.suggest_constraints(stats, overrides=monitor.comparison_overrides(list(df.columns)))
    for name, doc in (("statistics.json", stats), ("constraints.json", cons)):
        s3.put_object(Bucket=bucket, Key=f"baselines/{name}", Body=json.dumps(doc).encode())
    return stats, cons


def _package(bucket):
    src = lambda name: {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/baselines/{name}"}  # noqa: E731
    return {"ModelPackageArn": PKG, "ModelPackageGroupName": "airfare-demand", "ModelApprovalStatus": "Approved",
            "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": src("statistics.json"), "Constraints": src("constraints.json")},
                                    "ModelQuality": {"Constraints": src("model-constraints.json")}},
            "ModelPackageName": "airfare-demand", "ModelPackageStatus": "Completed", "CreationTime": "2026-04-01T00:00:00Z",
            "ModelPackageStatusDetails": {"ValidationStatuses": []}}


def _shape(service, op):
    return boto3.session.Session().client(service, region_name="us-east-1").meta.service_model.operation_model(op).input_shape


def test_requests_validate_against_botocore_models():
    cfg = md.MonitoringConfig(model="anomaly", role_arn=ROLE, output_uri="s3://b/monitoring", ground_truth_uri="s3://b/gt/anomaly",
                              kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k", subnets=("subnet-1",), security_group_ids=("sg-1",))
    baselines = {"data_statistics": "s3://b/s.json", "data_constraints": "s3://b/c.json", "model_constraints": "s3://b/m.json"}
    image = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    requests = [
        ("sagemaker", "CreateDataQualityJobDefinition", md.data_quality_job_request("ep", cfg, baselines, image, "s3://b/pre.py")),
        ("sagemaker", "CreateModelQualityJobDefinition", md.model_quality_job_request("ep", cfg, baselines, image)),
        ("sagemaker", "CreateMonitoringSchedule", md.schedule_request("ep", "data-quality", cfg)),
        ("sagemaker", "CreateMonitoringSchedule", md.schedule_request("ep", "model-quality", cfg)),
    ]
    stats = {"features": [{"name": "price_vs_route_median", "numerical_statistics": {}}]}
    requests += [("cloudwatch", "PutMetricAlarm", a) for a in md.alarm_requests("ep", cfg, stats, {"features": []})]
    for service, op, req in requests:
        report = ParamValidator().validate(req, _shape(service, op))
        assert not report.has_errors(), f"{op}: {report.generate_report()}"
    mq = requests[1][2]
    assert mq["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    assert mq["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"] == "s3://b/gt/anomaly"


def test_create_sets_up_schedules_and_alarms_on_what_they_publish(aws_endpoint):
    bucket = f"mon-{uuid.uuid4().hex[:8]}"
    s3, cw = aws.client("s3"), aws.client("cloudwatch")
    s3.create_bucket(Bucket=bucket)
    _baselines(s3, bucket)
    sm = boto3.client("sagemaker", region_name="us-east-1")
    endpoint = "airfare-dev-demand"
    cfg = md.MonitoringConfig(model="demand", role_arn=ROLE, output_uri=f"s3://{bucket}/monitoring",
                              ground_truth_uri=f"s3://{bucket}/ground-truth/demand", image_uri="mm-analyzer:latest",
                              alarm_topic_arn="arn:aws:sns:us-east-1:123456789012:alerts")
    with Stubber(sm) as stub:
        stub.add_response("describe_model_package", _package(bucket), {"ModelPackageName": PKG})
        stub.add_response("create_data_quality_job_definition", {"JobDefinitionArn": "arn:dq"}, None)
        stub.add_response("create_model_quality_job_definition", {"JobDefinitionArn": "arn:mq"}, None)
        for kind in ("data-quality", "model-quality"):
            stub.add_response("create_monitoring_schedule", {"MonitoringScheduleArn": f"arn:{kind}"},
                              md.schedule_request(endpoint, kind, cfg))
        created = md.create(endpoint, PKG, cfg, sm=sm, s3=s3, cloudwatch=cw)
        stub.assert_no_pending_responses()
    assert created["Schedules"] == ["arn:data-quality", "arn:model-quality"]
    code = s3.get_object(Bucket=bucket, Key=f"monitoring/{endpoint}/code/record_preprocessor.py")["Body"].read()
    assert b"def preprocess_handler" in code
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix=endpoint)["MetricAlarms"]}
    drift = alarms[f"{endpoint}-drift-days_to_departure"]
    assert (drift["Namespace"], drift["MetricName"], drift["Threshold"]) == (md.DATA_NAMESPACE, "feature_baseline_drift_days_to_departure", 0.1)
    assert f"{endpoint}-drift-search_hour" not in alarms  # not compared (a clock feature): nothing to alarm on
    acc = alarms[f"{endpoint}-accuracy-degraded"]
    assert (acc["Namespace"], acc["MetricName"], acc["ComparisonOperator"], acc["Threshold"]) == (
        md.MODEL_NAMESPACE, "accuracy", "LessThanThreshold", 0.85)
    assert {d["Name"]: d["Value"] for d in acc["Dimensions"]} == {"Endpoint": endpoint, "MonitoringSchedule": f"{endpoint}-model-quality"}


def test_an_aws_analyzer_baseline_gets_the_calendar_overrides(aws_endpoint):
    """AWS's baselining job suggests constraints without our overrides: the schedule gets a copy
    that does not compare calendar-driven features, and no drift alarm watches them."""
    bucket = f"mon-{uuid.uuid4().hex[:8]}"
    s3, cw = aws.client("s3"), aws.client("cloudwatch")
    s3.create_bucket(Bucket=bucket)
    stats, cons = _baselines(s3, bucket)
    for f in cons["features"]:
        f["monitoringConfigOverrides"] = {}
    s3.put_object(Bucket=bucket, Key="baselines/constraints.json", Body=json.dumps(cons).encode())
    sm = boto3.client("sagemaker", region_name="us-east-1")
    endpoint = "airfare-dev-price"
    cfg = md.MonitoringConfig(model="price", role_arn=ROLE, output_uri=f"s3://{bucket}/monitoring", image_uri="mm-analyzer:latest")
    patched_uri = f"s3://{bucket}/monitoring/{endpoint}/baseline/constraints.json"
    with Stubber(sm) as stub:
        stub.add_response("describe_model_package", _package(bucket), {"ModelPackageName": PKG})
        baselines = {"data_statistics": f"s3://{bucket}/baselines/statistics.json", "data_constraints": patched_uri,
                     "model_constraints": f"s3://{bucket}/baselines/model-constraints.json"}
        expected = md.data_quality_job_request(endpoint, cfg, baselines, "mm-analyzer:latest",
                                               f"s3://{bucket}/monitoring/{endpoint}/code/record_preprocessor.py")
        stub.add_response("create_data_quality_job_definition", {"JobDefinitionArn": "arn:dq"}, expected)  # the patched copy
        stub.add_response("create_monitoring_schedule", {"MonitoringScheduleArn": "arn:dq"}, None)
        md.create(endpoint, PKG, cfg, sm=sm, s3=s3, cloudwatch=cw)
        stub.assert_no_pending_responses()
    patched = json.loads(s3.get_object(Bucket=bucket, Key=f"monitoring/{endpoint}/baseline/constraints.json")["Body"].read())
    overrides = {f["name"]: f["monitoringConfigOverrides"] for f in patched["features"]}
    assert overrides == {"days_to_departure": {}, "route": {}, "search_hour": {"perform_comparison": "Disabled"}}
    alarms = {a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=endpoint)["MetricAlarms"]}
    assert f"{endpoint}-drift-days_to_departure" in alarms and f"{endpoint}-drift-search_hour" not in alarms


def test_calibrated_constraints_given_to_the_schedule_set_its_thresholds_and_alarms(aws_endpoint):
    """``airfare monitor schedule --constraints``: the thresholds measured on the training split's
    daily windows reach AWS's analyzer (the patched copy) and the drift alarms; the contract's
    overrides never narrow a wider measured threshold."""
    bucket = f"mon-{uuid.uuid4().hex[:8]}"
    s3, cw = aws.client("s3"), aws.client("cloudwatch")
    s3.create_bucket(Bucket=bucket)
    _, cons = _baselines(s3, bucket)
    calibrated = json.loads(json.dumps(cons))
    by_name = {f["name"]: f for f in calibrated["features"]}
    by_name["days_to_departure"]["monitoringConfigOverrides"] = {"comparison_threshold": 0.23}
    by_name["route"]["completeness"] = 0.9
    calibrated["features"].append({"name": "seats_left", "inferred_type": "Integral", "completeness": 1.0,
                                   "monitoringConfigOverrides": {"comparison_threshold": 0.31}})
    patched = md.with_calendar_overrides(calibrated)
    assert {f["name"]: f["monitoringConfigOverrides"] for f in patched["features"]}["seats_left"]["comparison_threshold"] == 0.31
    sm = boto3.client("sagemaker", region_name="us-east-1")
    endpoint = "airfare-dev-price"
    cfg = md.MonitoringConfig(model="price", role_arn=ROLE, output_uri=f"s3://{bucket}/monitoring", image_uri="mm-analyzer:latest",
                              data_constraints=calibrated)
    with Stubber(sm) as stub:
        stub.add_response("describe_model_package", _package(bucket), {"ModelPackageName": PKG})
        baselines = {"data_statistics": f"s3://{bucket}/baselines/statistics.json",
                     "data_constraints": f"s3://{bucket}/monitoring/{endpoint}/baseline/constraints.json",
                     "model_constraints": f"s3://{bucket}/baselines/model-constraints.json"}
        expected = md.data_quality_job_request(endpoint, cfg, baselines, "mm-analyzer:latest",
                                               f"s3://{bucket}/monitoring/{endpoint}/code/record_preprocessor.py")
        stub.add_response("create_data_quality_job_definition", {"JobDefinitionArn": "arn:dq"}, expected)
        stub.add_response("create_monitoring_schedule", {"MonitoringScheduleArn": "arn:dq"}, None)
        md.create(endpoint, PKG, cfg, sm=sm, s3=s3, cloudwatch=cw)
        stub.assert_no_pending_responses()
    used = json.loads(s3.get_object(Bucket=bucket, Key=f"monitoring/{endpoint}/baseline/constraints.json")["Body"].read())
    assert used == patched and {f["name"]: f["completeness"] for f in used["features"]}["route"] == 0.9
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix=endpoint)["MetricAlarms"]}
    assert alarms[f"{endpoint}-drift-days_to_departure"]["Threshold"] == 0.23


def test_a_package_without_baselines_is_refused():
    with pytest.raises(md.MonitoringSetupError, match="DriftCheckBaselines"):
        md.drift_baselines({"ModelPackageArn": PKG})
    with pytest.raises(md.MonitoringSetupError, match="s3://"):
        md.MonitoringConfig(model="price", role_arn=ROLE, output_uri="/tmp/x").check()


def test_the_stack_alarm_watches_a_metric_the_schedule_publishes():
    class Loader(yaml.SafeLoader):
        pass

    for tag in ("!Ref", "!Sub", "!GetAtt", "!If", "!Not", "!Equals", "!Join", "!Select", "!Split", "!ImportValue", "!FindInMap",
                "!Condition", "!And", "!Or", "!Base64", "!Cidr", "!GetAZs"):
        Loader.add_constructor(tag, lambda loader, node, t=tag: {t: loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
                                                                 else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
                                                                 else loader.construct_mapping(node)})
    stack = yaml.load((Path(__file__).resolve().parents[2] / "seed_infra" / "mlops_stack.yaml").read_text(), Loader=Loader)
    alarm = stack["Resources"]["DemandAccuracyAlarm"]["Properties"]
    endpoint = "${ProjectName}-${Environment}-demand"  # the stack's endpoint naming
    cfg = md.MonitoringConfig(model="demand", role_arn=ROLE, output_uri="s3://b/m", ground_truth_uri="s3://b/gt")
    expected = next(a for a in md.alarm_requests(endpoint, cfg, {"features": []}, {}) if a["MetricName"] == "accuracy")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ComparisonOperator"]) == (
        expected["Namespace"], expected["MetricName"], expected["ComparisonOperator"])
    dims = {d["Name"]: d["Value"]["!Sub"] for d in alarm["Dimensions"]}
    assert dims == {d["Name"]: d["Value"] for d in expected["Dimensions"]}



def test_deploy_sets_up_monitoring_on_the_endpoint_it_deployed(aws_endpoint):
    """pipelines.deploy.deploy(monitoring=cfg) hands the endpoint and package to cfg.create, after
    the endpoint exists (moto serves the deployment calls)."""
    from pipelines import deploy
    from pipelines.registry import SageMakerRegistry

    group = f"airfare-price-{uuid.uuid4().hex[:8]}"
    pkg = SageMakerRegistry(aws.client("sagemaker")).register(group, f"s3://lake/{group}/model.tar.gz", "img:1",
                                                              approval_status="Approved")["ModelPackageArn"]
    calls = []

    class Recorder(md.MonitoringConfig):
        def create(self, endpoint, package_arn, **clients):
            calls.append((endpoint, package_arn, clients["sm"].describe_endpoint(EndpointName=endpoint)["EndpointStatus"]))
            return {"Schedules": ["arn:s"]}

    endpoint = f"airfare-test-{uuid.uuid4().hex[:8]}"
    cfg = deploy.DeployConfig(endpoint_name=endpoint, role_arn=ROLE, data_capture_uri="s3://lake/capture")
    result = deploy.deploy(pkg, cfg, monitoring=Recorder(model="price", role_arn=ROLE, output_uri="s3://lake/m"))
    assert calls == [(endpoint, pkg, "InService")]
    assert result["Monitoring"] == {"Schedules": ["arn:s"]}


def test_schedule_refuses_a_constraints_file_that_is_not_one(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"violations": []}))
    args = ["monitor", "schedule", PKG, "--model", "price", "--endpoint-name", "e", "--output-uri", "s3://b/m", "--role-arn", ROLE]
    result = CliRunner().invoke(app, [*args, "--constraints", str(bad)])
    assert result.exit_code != 0 and "--constraints" in result.output and "features" in result.output
    bad.write_text("{not json")
    assert "--constraints" in CliRunner().invoke(app, [*args, "--constraints", str(bad)]).output

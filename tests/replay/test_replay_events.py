"""The retraining trigger: CloudWatch alarm state change -> the stack's EventBridge rule -> the trigger
Lambda (pipelines/retrain_trigger.py) -> StartPipelineExecution, checked against botocore's service
models and moto."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import botocore.session
import pytest
from botocore.validate import validate_parameters
from moto import mock_aws

from pipelines import retrain_trigger
from pipelines.definition import definition_dict
from pipelines.local_run import check_parameters
from pipelines.replay import ACCOUNT, ENDPOINT, REGION, alarm_event, load_retraining
from pipelines.retrain_trigger import execution_request, handle, matches

WHEN = dt.datetime(2026, 3, 9, 0, 5, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def rule():
    return load_retraining()


def _input_shape(service: str, operation: str):
    return botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape


def test_the_stacks_rule_matches_the_price_endpoints_monitoring_alarms_only(rule):
    pattern = rule["EventPattern"]
    assert matches(pattern, alarm_event(WHEN, "x", f"{ENDPOINT}-drift-days_to_departure"))
    assert matches(pattern, alarm_event(WHEN, "x", f"{ENDPOINT}-mae-degraded"))
    assert matches(pattern, alarm_event(WHEN, "x", f"{ENDPOINT}-rmse-degraded"))
    assert not matches(pattern, alarm_event(WHEN, "x", f"{ENDPOINT}-endpoint-5xx"))  # the stack's 5xx alarm
    assert not matches(pattern, alarm_event(WHEN, "x", "airfare-dev-demand-accuracy-degraded"))
    event = alarm_event(WHEN, "x", f"{ENDPOINT}-mae-degraded")
    assert not matches(pattern, {**event, "detail": {**event["detail"], "state": {"value": "OK"}}})
    assert not matches(pattern, {**event, "source": "aws.sagemaker"})


def test_the_trigger_starts_a_moved_window_with_the_stacks_configuration(rule):
    cfg = rule["config"]
    assert (cfg["window_days"], cfg["validation_days"], cfg["test_days"], cfg["cooldown_days"]) == (9, 1, 1, 3)
    request = execution_request(alarm_event(WHEN, "why", f"{ENDPOINT}-mae-degraded"), cfg, "s3://airfare-lake/registry/airfare-price/3/model.tar.gz")
    params = {p["Name"]: p["Value"] for p in request["PipelineParameters"]}
    assert request["PipelineName"] == "airfare-pipeline"
    assert params["EndDate"] == "2026-03-08" and params["StartDate"] == "2026-02-28"  # 9 days ending the day before
    assert params["ValidationDays"] == "1" and params["TestDays"] == "1"
    assert params["ChampionModelUri"] == "s3://airfare-lake/registry/airfare-price/3/model.tar.gz"
    # the request is what SageMaker's API takes, and its parameters are the definition's
    validate_parameters(request, _input_shape("sagemaker", "StartPipelineExecution"))
    check_parameters(params, definition_dict())
    # stack parameters move the window
    assert load_retraining(RetrainWindowDays=12)["config"]["window_days"] == 12


def test_bad_trigger_configuration_names_the_variable():
    base = {"PIPELINE_NAME": "p", "MODEL_PACKAGE_GROUP": "g", "WINDOW_DAYS": "9", "VALIDATION_DAYS": "1", "TEST_DAYS": "1"}
    with pytest.raises(ValueError, match="PIPELINE_NAME"):
        retrain_trigger.config_from({**base, "PIPELINE_NAME": ""})
    with pytest.raises(ValueError, match="WINDOW_DAYS"):
        retrain_trigger.config_from({**base, "WINDOW_DAYS": "nine"})
    with pytest.raises(ValueError, match="WINDOW_DAYS must leave"):
        retrain_trigger.config_from({**base, "WINDOW_DAYS": "2"})
    with pytest.raises(ValueError, match="PIPELINE_PARAMETERS"):
        retrain_trigger.config_from({**base, "PIPELINE_PARAMETERS": "[1]"})


@pytest.mark.parametrize("pattern, event, expected", [
    ({"a": ["x"]}, {"a": "x"}, True), ({"a": ["x"]}, {"a": "y"}, False), ({"a": ["x"]}, {}, False),
    ({"a": [{"prefix": "ar"}]}, {"a": ["zz", "arn"]}, True), ({"a": {"b": ["1"]}}, {"a": {"b": "1", "c": 2}}, True),
    ({"a": [{"suffix": "-degraded"}]}, {"a": "x-mae-degraded"}, True), ({"a": [{"wildcard": "p-*-d"}]}, {"a": "p-mae-d"}, True),
    ({"a": [{"wildcard": "p-*-d"}]}, {"a": "q-mae-d"}, False), ({"a": [{"wildcard": "p-[x]-d"}]}, {"a": "p-x-d"}, False),
])  # fmt: skip
def test_pattern_matching(pattern, event, expected):
    assert matches(pattern, event) is expected


@mock_aws
def test_the_rule_and_its_target_are_valid_requests_and_the_trigger_runs_against_sagemaker(rule, monkeypatch):
    """moto: the stack's rule and target as PutRule/PutTargets requests (botocore validates them
    against the EventBridge model); the handler finds the approved champion and starts the pipeline."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    events, sm = boto3.client("events", region_name=REGION), boto3.client("sagemaker", region_name=REGION)
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:airfare-dev-retrain-trigger"
    dlq = f"arn:aws:sqs:{REGION}:{ACCOUNT}:airfare-dev-retrain-trigger-dlq"
    events.put_rule(Name=rule["Name"], EventPattern=json.dumps(rule["EventPattern"]), State="ENABLED")
    target = {"Id": "retrain-trigger", "Arn": fn, "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
              "DeadLetterConfig": {"Arn": dlq}}  # fmt: skip
    assert events.put_targets(Rule=rule["Name"], Targets=[target])["FailedEntryCount"] == 0
    assert events.list_targets_by_rule(Rule=rule["Name"])["Targets"][0]["Arn"] == fn

    role = f"arn:aws:iam::{ACCOUNT}:role/AirfareSageMakerExecution"
    sm.create_pipeline(PipelineName="airfare-pipeline", PipelineDefinition=json.dumps(definition_dict()), RoleArn=role)
    sm.create_model_package_group(ModelPackageGroupName="airfare-price")
    for version, status in ((1, "Approved"), (2, "Rejected")):
        sm.create_model_package(ModelPackageGroupName="airfare-price", ModelApprovalStatus=status,
                                InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": f"s3://b/price/{version}/model.tar.gz"}],
                                                        "SupportedContentTypes": ["application/json"],
                                                        "SupportedResponseMIMETypes": ["application/json"]})  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc)
    first = handle(alarm_event(now, "x", f"{ENDPOINT}-mae-degraded"), rule["config"], sm)
    assert first["started"] is True
    params = {p["Name"]: p["Value"] for p in first["request"]["PipelineParameters"]}
    assert params["ChampionModelUri"] == "s3://b/price/1/model.tar.gz"  # the approved one, not the newer rejected one
    (execution,) = sm.list_pipeline_executions(PipelineName="airfare-pipeline")["PipelineExecutionSummaries"]
    assert execution["PipelineExecutionArn"] == first["PipelineExecutionArn"]
    # a second alarm within the cooldown starts nothing
    again = handle(alarm_event(now + dt.timedelta(hours=1), "x", f"{ENDPOINT}-drift-cabin"), rule["config"], sm)
    assert again["started"] is False
    assert len(sm.list_pipeline_executions(PipelineName="airfare-pipeline")["PipelineExecutionSummaries"]) == 1


@pytest.mark.parametrize("args, flag", [
    (["--drift", "price-war@2026-03-05"], "--drift"),
    (["--drift", "fare-hike@2027-01-01"], "--drift"),  # outside the replayed days
    (["--gate", "PriceRmseMax"], "--gate"),
    (["--gate", "Nope=1"], "--gate"),
    (["--gate", "PriceRmseMax=lots"], "--gate"),
])
def test_replay_cli_refuses_bad_input_naming_the_flag(tmp_path, args, flag):
    from typer.testing import CliRunner

    from pipelines.cli import app

    result = CliRunner().invoke(app, ["replay", "--out", str(tmp_path / "r"), "--days", "5", "--start-date", "2026-03-02", *args])
    assert result.exit_code == 2 and flag in result.output
    assert not (tmp_path / "r").exists()  # nothing was started

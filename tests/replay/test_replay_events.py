"""The retraining trigger as data: CloudWatch alarm state change -> EventBridge rule -> StartPipelineExecution."""

from __future__ import annotations

import datetime as dt

import botocore.session
import pytest

from pipelines.definition import definition_dict
from pipelines.local_run import check_parameters
from pipelines.replay import ALARM_ARN, RETRAIN_RULE, alarm_event, matches, route_event

WHEN = dt.datetime(2026, 3, 9, 0, 5, tzinfo=dt.timezone.utc)
WINDOW = dict(train_days=21, validation_days=3, test_days=3)


def test_an_alarm_starts_the_pipeline_on_a_window_ending_the_day_before():
    request = route_event(alarm_event(WHEN, "model quality: rmse"), gates={"PriceRmseMax": 40}, **WINDOW)
    params = {p["Name"]: p["Value"] for p in request["PipelineParameters"]}
    assert request["PipelineName"] == "airfare-pipeline"
    assert params["EndDate"] == "2026-03-08" and params["StartDate"] == "2026-02-16"
    assert params["ValidationDays"] == "3" and params["TestDays"] == "3" and params["PriceRmseMax"] == "40"
    # the request is what SageMaker's API takes, and the parameters are the definition's
    model = botocore.session.get_session().get_service_model("sagemaker").operation_model("StartPipelineExecution")
    assert set(request) <= set(model.input_shape.members)
    check_parameters(params, definition_dict())


def test_other_events_and_states_start_nothing():
    event = alarm_event(WHEN, "x")
    ok = {**event, "detail": {**event["detail"], "state": {"value": "OK"}}}
    other_alarm = {**event, "resources": ["arn:aws:cloudwatch:us-east-1:000000000000:alarm:someone-else"]}
    assert route_event(ok, **WINDOW) is None
    assert route_event(other_alarm, **WINDOW) is None
    assert route_event({**event, "source": "aws.sagemaker"}, **WINDOW) is None


def test_the_rule_skips_a_run_within_the_cooldown():
    event = alarm_event(WHEN, "x")
    assert route_event(event, last_start=dt.date(2026, 3, 7), cooldown_days=3, **WINDOW) is None
    assert route_event(event, last_start=dt.date(2026, 3, 5), cooldown_days=3, **WINDOW) is not None


@pytest.mark.parametrize("pattern, event, expected", [
    ({"a": ["x"]}, {"a": "x"}, True), ({"a": ["x"]}, {"a": "y"}, False), ({"a": ["x"]}, {}, False),
    ({"a": [{"prefix": "ar"}]}, {"a": ["zz", "arn"]}, True), ({"a": {"b": ["1"]}}, {"a": {"b": "1", "c": 2}}, True),
])
def test_pattern_matching(pattern, event, expected):
    assert matches(pattern, event) is expected


def test_the_event_has_eventbridges_shape():
    event = alarm_event(WHEN, "why")
    assert event["source"] == "aws.cloudwatch" and event["detail-type"] == "CloudWatch Alarm State Change"
    assert event["resources"] == [ALARM_ARN] and event["time"] == "2026-03-09T00:05:00Z"
    assert event["detail"]["state"]["value"] == "ALARM" and matches(RETRAIN_RULE["EventPattern"], event)


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

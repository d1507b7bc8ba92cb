"""Lambda: a price-endpoint monitoring alarm starts the pipeline on a moved window, against the champion.

The stack's ``RetrainRule`` (seed_infra/mlops_stack.yaml) routes "CloudWatch Alarm State Change"
events of the price endpoint's Model Monitor alarms (state ALARM) to this function, which calls
``StartPipelineExecution``. Why a Lambda target and not the pipeline as the rule's target: a
SageMaker pipeline target's parameters are static strings, and a retraining run needs two values
that change with every event: the window (it ends on the day before the alarm) and the champion
(the serving model, ``ChampionModelUri``: the latest Approved package's ``ModelDataUrl`` in the
price group, which the pipeline's ComparePrice step scores against the challenger).

Configuration (the function's environment, set by the stack): ``PIPELINE_NAME``,
``MODEL_PACKAGE_GROUP``, ``WINDOW_DAYS`` (train + validation + test), ``VALIDATION_DAYS``,
``TEST_DAYS``, ``COOLDOWN_DAYS`` (no new run when one started within that many days),
``PIPELINE_PARAMETERS`` (a JSON object of further static parameters, e.g. gates).

Dependency-light on purpose (boto3 and the standard library), so this file alone makes the Lambda
zip; ``airfare replay`` runs the same functions with the stack's rule and configuration.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
import os
from typing import Any, Mapping

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

CONFIG_KEYS = ("PIPELINE_NAME", "MODEL_PACKAGE_GROUP", "WINDOW_DAYS", "VALIDATION_DAYS", "TEST_DAYS", "COOLDOWN_DAYS",
               "PIPELINE_PARAMETERS")  # fmt: skip


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge pattern matching (the subset the stack's rules use): nested objects, lists of
    allowed values, ``{"prefix": ...}``, ``{"suffix": ...}`` and ``{"wildcard": ...}`` (``*`` only);
    every pattern field must match."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(k in event and matches(v, event[k]) for k, v in pattern.items())
    values = event if isinstance(event, list) else [event]
    for allowed in pattern:
        for v in values:
            if isinstance(allowed, dict):
                if not isinstance(v, str):
                    continue
                if "prefix" in allowed and v.startswith(allowed["prefix"]):
                    return True
                if "suffix" in allowed and v.endswith(allowed["suffix"]):
                    return True
                if "wildcard" in allowed and fnmatch.fnmatchcase(v, allowed["wildcard"].replace("[", "[[]").replace("?", "[?]")):
                    return True
            elif v == allowed:
                return True
    return False


def config_from(env: Mapping[str, str]) -> dict:
    """The trigger's configuration from the function's environment; a missing or bad value is an error naming it."""
    missing = [k for k in CONFIG_KEYS[:5] if not env.get(k)]
    if missing:
        raise ValueError(f"retrain trigger: environment variable(s) {', '.join(missing)} not set")
    cfg: dict[str, Any] = {"pipeline": env["PIPELINE_NAME"], "group": env["MODEL_PACKAGE_GROUP"]}
    for key in ("WINDOW_DAYS", "VALIDATION_DAYS", "TEST_DAYS", "COOLDOWN_DAYS"):
        try:
            cfg[key.lower()] = int(env.get(key) or 0)
        except ValueError:
            raise ValueError(f"retrain trigger: {key} must be an integer, got {env[key]!r}") from None
    if cfg["window_days"] <= cfg["validation_days"] + cfg["test_days"]:
        raise ValueError("retrain trigger: WINDOW_DAYS must leave training days after VALIDATION_DAYS and TEST_DAYS")
    try:
        static = json.loads(env.get("PIPELINE_PARAMETERS") or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"retrain trigger: PIPELINE_PARAMETERS is not JSON ({exc})") from None
    if not isinstance(static, dict):
        raise ValueError("retrain trigger: PIPELINE_PARAMETERS must be a JSON object")
    cfg["parameters"] = {str(k): str(v) for k, v in static.items()}
    return cfg


def window_parameters(end: dt.date, window_days: int, validation_days: int, test_days: int) -> dict[str, str]:
    """StartDate/EndDate/ValidationDays/TestDays of a window of ``window_days`` ending on ``end``."""
    return {"StartDate": (end - dt.timedelta(days=window_days - 1)).isoformat(), "EndDate": end.isoformat(),
            "ValidationDays": str(validation_days), "TestDays": str(test_days)}  # fmt: skip


def event_day(event: dict) -> dt.date:
    return dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00")).date()


def execution_request(event: dict, cfg: dict, champion_uri: str) -> dict:
    """The ``StartPipelineExecution`` request for an alarm event: the window ends on the day before
    the event (the last complete day); ``champion_uri`` empty means no champion."""
    end = event_day(event) - dt.timedelta(days=1)
    params = {**cfg["parameters"], **window_parameters(end, cfg["window_days"], cfg["validation_days"], cfg["test_days"]),
              "ChampionModelUri": champion_uri}  # fmt: skip
    return {"PipelineName": cfg["pipeline"], "PipelineExecutionDisplayName": f"retrain-{end.isoformat()}",
            "PipelineExecutionDescription": f"{event['detail'].get('alarmName', 'alarm')}: "
                                            f"{str(event['detail'].get('state', {}).get('reason', ''))[:200]}",
            "PipelineParameters": [{"Name": k, "Value": v} for k, v in params.items()],
            "ClientRequestToken": event["id"][:128]}  # fmt: skip


def champion_model_uri(sm: Any, group: str) -> str:
    """The latest Approved package's model artifact in ``group`` ("" when none is approved)."""
    found = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                   SortBy="CreationTime", SortOrder="Descending", MaxResults=1)["ModelPackageSummaryList"]  # fmt: skip
    if not found:
        return ""
    package = sm.describe_model_package(ModelPackageName=found[0]["ModelPackageArn"])
    return package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]


def recently_started(sm: Any, pipeline: str, now: dt.datetime, cooldown_days: int) -> bool:
    """Whether an execution of ``pipeline`` started within ``cooldown_days`` before ``now``."""
    if cooldown_days <= 0:
        return False
    since = now - dt.timedelta(days=cooldown_days)
    return bool(sm.list_pipeline_executions(PipelineName=pipeline, CreatedAfter=since, MaxResults=1)["PipelineExecutionSummaries"])


def _sagemaker():
    try:  # the project's client factory when packaged with it (AWS_ENDPOINT_URL), plain boto3 in the zip
        from core import aws

        return aws.client("sagemaker")
    except ImportError:
        import boto3

        return boto3.client("sagemaker")


def handle(event: dict, cfg: dict, sm: Any) -> dict:
    """Start the pipeline for an ALARM event (``sm``: a SageMaker client); skip within the cooldown."""
    now = dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    if recently_started(sm, cfg["pipeline"], now, cfg["cooldown_days"]):
        logger.info(json.dumps({"retrain": "skipped", "reason": f"a run started within {cfg['cooldown_days']} days"}))
        return {"started": False, "reason": f"a run started within {cfg['cooldown_days']} days"}
    request = execution_request(event, cfg, champion_model_uri(sm, cfg["group"]))
    arn = sm.start_pipeline_execution(**request)["PipelineExecutionArn"]
    logger.info(json.dumps({"retrain": "started", "execution": arn, "parameters": request["PipelineParameters"]}))
    return {"started": True, "PipelineExecutionArn": arn, "request": request}


def handler(event: dict, context: Any = None) -> dict:
    """The Lambda entry. Errors are raised (async retries, then the dead-letter queue)."""
    return handle(event, config_from(os.environ), _sagemaker())

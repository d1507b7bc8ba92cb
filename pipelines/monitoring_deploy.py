"""Model Monitor on AWS for a deployed endpoint: job definitions, hourly schedules and alarms.

For an endpoint serving an approved package (``pipelines.deploy``), from the baselines registered
with that package (``DriftCheckBaselines``, written by the pipeline's QualityCheck steps):

1. ``create_data_quality_job_definition``: Model Monitor's analyzer on the captured inputs,
   against the package's data-quality statistics and constraints, with our record preprocessor
   (``monitoring/record_preprocessor.py``, uploaded to S3) for the endpoint's request shapes;
2. ``create_model_quality_job_definition``: the captured predictions merged with ground truth
   from ``ground_truth_uri`` (labels keyed by ``InferenceId``), against the model-quality
   constraints (the promotion gates);
3. ``create_monitoring_schedule`` for each, hourly;
4. CloudWatch alarms on what those schedules publish: ``feature_baseline_drift_<feature>``
   (namespace ``aws/sagemaker/Endpoints/data-metrics``) above the baseline's comparison threshold,
   and each gate metric (``aws/sagemaker/Endpoints/model-metrics``) crossing its gate; both with
   the ``Endpoint`` and ``MonitoringSchedule`` dimensions Model Monitor sets.

Every request is built by a plain function (tested against botocore's service model); ``create``
sends them, through :func:`core.aws.client`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.pipeline_contract import GATES, QUALITY_PROBLEM_TYPES

DATA_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
HOURLY = "cron(0 * ? * * *)"
LOCAL_INPUT = "/opt/ml/processing/input/endpoint"
LOCAL_OUTPUT = "/opt/ml/processing/output"
# What the endpoint answers (inference.predict): {"model", "predictions": [{...}]}.
INFERENCE_ATTRIBUTES = {"price": "predictions[0].price_usd", "demand": "predictions[0].demand_class",
                        "anomaly": "predictions[0].is_anomaly"}  # fmt: skip
PROBABILITY_ATTRIBUTES = {"anomaly": "predictions[0].anomaly_score"}
ALARM_OPERATORS = {  # Model Monitor's violation operator -> CloudWatch's
    "GreaterThanThreshold": "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold": "GreaterThanOrEqualToThreshold",
    "LessThanThreshold": "LessThanThreshold",
    "LessThanOrEqualToThreshold": "LessThanOrEqualToThreshold",
}
RECORD_PREPROCESSOR = Path(__file__).resolve().parents[1] / "monitoring" / "record_preprocessor.py"


class MonitoringSetupError(ValueError):
    """The package lacks baselines, or a setting is invalid."""


@dataclass
class MonitoringConfig:
    model: str  # price | demand | anomaly
    role_arn: str
    output_uri: str  # s3:// prefix for monitoring reports
    ground_truth_uri: str | None = None  # s3:// prefix of ground truth; None: no model-quality schedule
    image_uri: str | None = None  # default: Model Monitor's analyzer in the region
    instance_type: str = "ml.m5.xlarge"
    kms_key_arn: str | None = None
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    alarm_topic_arn: str | None = None
    schedule: str = HOURLY
    max_runtime_s: int = 1800
    # constraints.json to use instead of the package's: e.g. ``airfare monitor baseline``'s, whose
    # thresholds are measured on the training split's daily windows (AWS's analyzer suggests plain ones)
    data_constraints: dict | None = None

    def create(self, endpoint: str, package_arn: str, **clients) -> dict:
        """:func:`create` with this configuration (what ``pipelines.deploy.deploy(monitoring=...)`` calls)."""
        return create(endpoint, package_arn, self, **clients)

    def check(self) -> None:
        if self.model not in QUALITY_PROBLEM_TYPES:
            raise MonitoringSetupError(f"model {self.model!r} is not one of {sorted(QUALITY_PROBLEM_TYPES)}")
        for label, uri in (("output", self.output_uri), ("ground truth", self.ground_truth_uri)):
            if uri is not None and not uri.startswith("s3://"):
                raise MonitoringSetupError(f"{label} location {uri!r} is not an s3:// URI")


def schedule_name(endpoint: str, kind: str) -> str:
    """``<endpoint>-data-quality`` / ``<endpoint>-model-quality``: the MonitoringSchedule dimension."""
    return f"{endpoint}-{kind}"[:63].rstrip("-")


def drift_baselines(pkg: dict) -> dict[str, str]:
    """The S3 URIs of the package's drift-check baselines (DescribeModelPackage's DriftCheckBaselines)."""
    dcb = pkg.get("DriftCheckBaselines") or {}
    out = {}
    for key, (category, kind) in {"data_statistics": ("ModelDataQuality", "Statistics"),
                                  "data_constraints": ("ModelDataQuality", "Constraints"),
                                  "model_constraints": ("ModelQuality", "Constraints")}.items():  # fmt: skip
        uri = ((dcb.get(category) or {}).get(kind) or {}).get("S3Uri")
        if uri:
            out[key] = uri
    if "data_statistics" not in out or "data_constraints" not in out:
        raise MonitoringSetupError(f"model package {pkg.get('ModelPackageArn')} has no data-quality DriftCheckBaselines: "
                                   "register it from the pipeline (QualityCheck steps)")  # fmt: skip
    return out


def _resources(cfg: MonitoringConfig) -> dict:
    cluster: dict[str, Any] = {"InstanceCount": 1, "InstanceType": cfg.instance_type, "VolumeSizeInGB": 20}
    if cfg.kms_key_arn:
        cluster["VolumeKmsKeyId"] = cfg.kms_key_arn
    return {"ClusterConfig": cluster}


def _output(cfg: MonitoringConfig, endpoint: str, kind: str) -> dict:
    out: dict[str, Any] = {"MonitoringOutputs": [{"S3Output": {
        "S3Uri": f"{cfg.output_uri.rstrip('/')}/{endpoint}/{kind}", "LocalPath": LOCAL_OUTPUT, "S3UploadMode": "EndOfJob"}}]}
    if cfg.kms_key_arn:
        out["KmsKeyId"] = cfg.kms_key_arn
    return out


def _common(cfg: MonitoringConfig) -> dict:
    req: dict[str, Any] = {"RoleArn": cfg.role_arn, "StoppingCondition": {"MaxRuntimeInSeconds": cfg.max_runtime_s}}
    if cfg.subnets:
        req["NetworkConfig"] = {"EnableNetworkIsolation": False,
                                "VpcConfig": {"Subnets": list(cfg.subnets), "SecurityGroupIds": list(cfg.security_group_ids)}}
    return req


def data_quality_job_request(endpoint: str, cfg: MonitoringConfig, baselines: dict[str, str], image_uri: str,
                             preprocessor_uri: str | None) -> dict:
    app: dict[str, Any] = {"ImageUri": image_uri}
    if preprocessor_uri:
        app["RecordPreprocessorSourceUri"] = preprocessor_uri
    return {
        "JobDefinitionName": schedule_name(endpoint, "data-quality"),
        "DataQualityBaselineConfig": {"ConstraintsResource": {"S3Uri": baselines["data_constraints"]},
                                      "StatisticsResource": {"S3Uri": baselines["data_statistics"]}},
        "DataQualityAppSpecification": app,
        "DataQualityJobInput": {"EndpointInput": {"EndpointName": endpoint, "LocalPath": LOCAL_INPUT,
                                                  "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}},
        "DataQualityJobOutputConfig": _output(cfg, endpoint, "data-quality"),
        "JobResources": _resources(cfg),
        **_common(cfg),
    }  # fmt: skip


def model_quality_job_request(endpoint: str, cfg: MonitoringConfig, baselines: dict[str, str], image_uri: str) -> dict:
    if not cfg.ground_truth_uri:
        raise MonitoringSetupError("a model-quality job needs the ground-truth location")
    endpoint_input: dict[str, Any] = {
        "EndpointName": endpoint, "LocalPath": LOCAL_INPUT, "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated",
        "InferenceAttribute": INFERENCE_ATTRIBUTES[cfg.model],
        # Labels arrive late (the world: up to 2 days for bookings): each run judges the records of
        # the hour that ended 72 hours ago, when their ground truth is in.
        "StartTimeOffset": "-PT73H", "EndTimeOffset": "-PT72H",
    }
    if cfg.model in PROBABILITY_ATTRIBUTES:
        endpoint_input["ProbabilityAttribute"] = PROBABILITY_ATTRIBUTES[cfg.model]
        endpoint_input["ProbabilityThresholdAttribute"] = 0.5
    req: dict[str, Any] = {
        "JobDefinitionName": schedule_name(endpoint, "model-quality"),
        "ModelQualityAppSpecification": {"ImageUri": image_uri, "ProblemType": QUALITY_PROBLEM_TYPES[cfg.model]},
        "ModelQualityJobInput": {"EndpointInput": endpoint_input, "GroundTruthS3Input": {"S3Uri": cfg.ground_truth_uri}},
        "ModelQualityJobOutputConfig": _output(cfg, endpoint, "model-quality"),
        "JobResources": _resources(cfg),
        **_common(cfg),
    }  # fmt: skip
    if baselines.get("model_constraints"):
        req["ModelQualityBaselineConfig"] = {"ConstraintsResource": {"S3Uri": baselines["model_constraints"]}}
    return req


def schedule_request(endpoint: str, kind: str, cfg: MonitoringConfig) -> dict:
    return {
        "MonitoringScheduleName": schedule_name(endpoint, kind),
        "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": cfg.schedule},
            "MonitoringJobDefinitionName": schedule_name(endpoint, kind),
            "MonitoringType": {"data-quality": "DataQuality", "model-quality": "ModelQuality"}[kind],
        },
    }


def _alarm(name: str, description: str, namespace: str, metric: str, endpoint: str, kind: str, threshold: float,
           operator: str, cfg: MonitoringConfig) -> dict:
    req = {
        "AlarmName": name[:255],
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": "Endpoint", "Value": endpoint}, {"Name": "MonitoringSchedule", "Value": schedule_name(endpoint, kind)}],
        "Statistic": "Maximum" if namespace == DATA_NAMESPACE else "Average",
        "Period": 3600,
        "EvaluationPeriods": 1,
        "Threshold": float(threshold),
        "ComparisonOperator": operator,
        "TreatMissingData": "notBreaching",
    }
    if cfg.alarm_topic_arn:
        req["AlarmActions"] = [cfg.alarm_topic_arn]
    return req


def alarm_requests(endpoint: str, cfg: MonitoringConfig, data_statistics: dict, data_constraints: dict) -> list[dict]:
    """One drift alarm per compared feature of the baseline, one per promotion gate."""
    config = data_constraints.get("monitoring_config") or {}
    dist = config.get("distribution_constraints") or {}
    out = []
    cons = {f["name"]: f for f in data_constraints.get("features") or []}
    for f in data_statistics.get("features") or []:
        overrides = (cons.get(f["name"]) or {}).get("monitoringConfigOverrides") or {}
        if str(overrides.get("perform_comparison", dist.get("perform_comparison", "Enabled"))) != "Enabled":
            continue
        key = "categorical_comparison_threshold" if "string_statistics" in f else "comparison_threshold"
        threshold = float(overrides.get(key, dist.get(key, dist.get("comparison_threshold", 0.1))))
        out.append(_alarm(f"{endpoint}-drift-{f['name']}", f"Input feature {f['name']} drifted from the training baseline",
                          DATA_NAMESPACE, f"feature_baseline_drift_{f['name']}", endpoint, "data-quality", threshold,
                          "GreaterThanThreshold", cfg))  # fmt: skip
    if cfg.ground_truth_uri:
        from monitoring.model_quality import VIOLATION_OPERATOR

        for g in (g for g in GATES if g.model == cfg.model):
            out.append(_alarm(f"{endpoint}-{g.metric}-degraded", f"{cfg.model} model {g.metric} on labelled traffic crossed its gate",
                              MODEL_NAMESPACE, g.metric, endpoint, "model-quality", g.default, ALARM_OPERATORS[VIOLATION_OPERATOR[g.op]],
                              cfg))  # fmt: skip
    return out


def _read_s3_json(s3, uri: str) -> dict:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def with_calendar_overrides(constraints: dict) -> dict:
    """``constraints`` with our baselines' per-feature overrides (``monitoring.monitor.comparison_overrides``:
    no distribution comparison on calendar-driven features, a wider threshold on market-state ones);
    other settings untouched."""
    from monitoring.monitor import comparison_overrides

    out = json.loads(json.dumps(constraints))
    overrides = comparison_overrides([f.get("name") for f in out.get("features") or []])
    for f in out.get("features") or []:
        if f.get("name") in overrides:
            mine = f.setdefault("monitoringConfigOverrides", {})
            for key, value in overrides[f["name"]].items():
                # a threshold already measured on the baseline's windows (calibrate_constraints) is kept if wider
                mine[key] = max(float(mine[key]), value) if key.endswith("comparison_threshold") and key in mine else value
    return out


def create(endpoint: str, package_arn: str, cfg: MonitoringConfig, sm=None, s3=None, cloudwatch=None, region: str | None = None) -> dict:
    """Create the job definitions, schedules and alarms for ``endpoint`` serving ``package_arn``."""
    cfg.check()
    from core import aws

    sm = sm or aws.client("sagemaker")
    s3 = s3 or aws.client("s3")
    cloudwatch = cloudwatch or aws.client("cloudwatch")
    pkg = sm.describe_model_package(ModelPackageName=package_arn)
    baselines = drift_baselines(pkg)
    if cfg.image_uri:
        image = cfg.image_uri
    else:
        from pipelines.deploy import model_monitor_image

        image = model_monitor_image(region or aws.region())
    bucket, _, prefix = cfg.output_uri[len("s3://"):].partition("/")
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": cfg.kms_key_arn} if cfg.kms_key_arn else {}
    key = f"{prefix.rstrip('/')}/{endpoint}/code/record_preprocessor.py".lstrip("/")
    s3.put_object(Bucket=bucket, Key=key, Body=RECORD_PREPROCESSOR.read_bytes(), **sse)
    stats = _read_s3_json(s3, baselines["data_statistics"])
    cons = cfg.data_constraints or _read_s3_json(s3, baselines["data_constraints"])
    patched = with_calendar_overrides(cons)
    if patched != cons or cfg.data_constraints:  # AWS's analyzer knows nothing of calendar-driven features
        ckey = f"{prefix.rstrip('/')}/{endpoint}/baseline/constraints.json".lstrip("/")
        s3.put_object(Bucket=bucket, Key=ckey, Body=json.dumps(patched, indent=2).encode(), ContentType="application/json", **sse)
        baselines = {**baselines, "data_constraints": f"s3://{bucket}/{ckey}"}
        cons = patched
    created: dict[str, Any] = {"JobDefinitions": [], "Schedules": [], "Alarms": []}
    sm.create_data_quality_job_definition(**data_quality_job_request(endpoint, cfg, baselines, image, f"s3://{bucket}/{key}"))
    created["JobDefinitions"].append(schedule_name(endpoint, "data-quality"))
    kinds = ["data-quality"]
    if cfg.ground_truth_uri:
        sm.create_model_quality_job_definition(**model_quality_job_request(endpoint, cfg, baselines, image))
        created["JobDefinitions"].append(schedule_name(endpoint, "model-quality"))
        kinds.append("model-quality")
    for kind in kinds:
        arn = sm.create_monitoring_schedule(**schedule_request(endpoint, kind, cfg))["MonitoringScheduleArn"]
        created["Schedules"].append(arn)
    for alarm in alarm_requests(endpoint, cfg, stats, cons):
        cloudwatch.put_metric_alarm(**alarm)
        created["Alarms"].append(alarm["AlarmName"])
    return created

"""Deploy an approved model package to a real-time endpoint, with data capture and autoscaling.

One implementation for both ways in: ``airfare deploy`` and the approval rule of
``seed_infra/mlops_stack.yaml`` (EventBridge -> CodeBuild running ``airfare deploy --on-approval``
in this project's image). Steps (all through :func:`core.aws.client`, so moto serves them in
tests; one function per AWS resource, so Model Monitor schedules slot in the same way):

1. ``describe_model_package``: refuse anything that is not ``Approved``; on approval events, skip a
   package the endpoint already serves (or an older one), so edits of an approved package and
   re-deliveries of its event do not redeploy;
2. ``create_model`` from the package's image and model data (our one image, started with ``serve``);
3. ``create_endpoint_config``: one ``AllTraffic`` variant, ``DataCaptureConfig`` with
   ``CaptureContentTypeHeader`` (JSON captured as text, which Model Monitor reads), the package
   ARN as a tag;
4. ``put_metric_alarm``: the endpoint's 5XX and model-latency alarms, which roll an update back;
5. ``create_endpoint``, or ``update_endpoint`` with ``DeploymentConfig``: blue/green, canary
   traffic shifting, automatic rollback on those alarms. Application Auto Scaling refuses an
   update that changes a scaled variant's instance type, so that case deregisters the variant first;
6. wait for ``InService``, then register the variant as a scalable target (2..10 instances) with
   a target-tracking policy on ``SageMakerVariantInvocationsPerInstance``.

The target comes from the measured per-instance capacity (``benchmarks/bench_serving.py``):
``MEASURED_INVOCATIONS_PER_SECOND`` one-record requests/s per 2-vCPU instance, times 60 (the metric
is per minute), times ``TARGET_UTILISATION``: half the capacity, because a new instance needs
~5-10 minutes to come in service and the quotes' peak-to-mean within an hour is about 2, so
the instances running must absorb a doubling of traffic while scale-out catches up.

:func:`data_quality_schedule_request` builds the ``create_monitoring_schedule`` request of a
Model Monitor data-quality schedule on the captured traffic.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from inference import capture

VARIANT = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
# One-record requests/s of one 2-vCPU instance (benchmarks/bench_serving.py, 2 workers, 64
# connections, wrk on the same box), quiet 2-core machine on 2026-12-01 08:22 with make run's models:
# price 22.7k, anomaly 23.1k, demand 31.6k (README). 20,000 is below the slowest, so one target fits
# every endpoint: re-measure on the real instance type and raise it per model.
MEASURED_INVOCATIONS_PER_SECOND = 20_000
TARGET_UTILISATION = 0.5  # headroom: scale-out lag and the hour's peak-to-mean (see the module doc)
DEFAULT_INVOCATIONS_TARGET = float(MEASURED_INVOCATIONS_PER_SECOND * 60 * TARGET_UTILISATION)
# What is captured as text: the types the serving container reads and writes (inference.capture).
DEFAULT_CAPTURE_CONTENT_TYPES = capture.JSON_CONTENT_TYPES
CAPTURE_CSV_CONTENT_TYPES = capture.CSV_CONTENT_TYPES
PACKAGE_TAG = "airfare:model-package-arn"
# Rollback alarms: the endpoint's server errors, and its model latency (microseconds, p99).
ALARM_5XX_PER_MINUTE = 5
ALARM_MODEL_LATENCY_P99_US = 50_000
CANARY_PERCENT = 10
CANARY_WAIT_S = 300  # canary traffic this long before the rest shifts
BAKE_S = 600  # the old fleet stays this long after the shift, ready for a rollback
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# Model Monitor's analyzer image (sagemaker-model-monitor-analyzer) per region; others: pass image_uri.
MODEL_MONITOR_IMAGE_ACCOUNTS = {
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-2": "159807026194",
    "eu-west-1": "468650794304",
}


class DeploymentError(Exception):
    """A user-facing deployment problem (unapproved package, bad name, bad settings)."""


@dataclass
class DeployConfig:
    """Where and how to serve a package."""

    endpoint_name: str
    role_arn: str
    instance_type: str = "ml.c5.large"  # 2 vCPUs, like the machine the capacity was measured on
    min_instances: int = 2
    max_instances: int = 10
    invocations_target: float = DEFAULT_INVOCATIONS_TARGET
    data_capture_uri: str | None = None  # s3://bucket/prefix; None turns capture off
    capture_percentage: int = 20
    kms_key_arn: str | None = None
    subnets: list[str] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60
    workers: int | None = None  # SAGEMAKER_MODEL_SERVER_WORKERS; default = the instance's cores
    alarm_topic_arn: str | None = None  # SNS topic the rollback alarms also notify

    def check(self) -> None:
        if not _NAME_RE.match(self.endpoint_name or ""):
            raise DeploymentError(f"endpoint name {self.endpoint_name!r} is invalid (letters, digits and '-', up to 63)")
        if not 2 <= self.min_instances <= self.max_instances <= 10:
            raise DeploymentError(f"need 2 <= min ({self.min_instances}) <= max ({self.max_instances}) <= 10 instances "
                                  "(two for availability across zones; ten is the budget)")
        if not 0 <= self.capture_percentage <= 100:
            raise DeploymentError(f"capture percentage {self.capture_percentage} is not within 0..100")
        if self.invocations_target <= 0:
            raise DeploymentError("the invocations-per-instance target must be positive")
        if self.data_capture_uri and not self.data_capture_uri.startswith("s3://"):
            raise DeploymentError(f"data capture destination {self.data_capture_uri!r} is not an s3:// URI")
        if bool(self.subnets) != bool(self.security_group_ids):
            raise DeploymentError("a VPC config needs both subnets and security groups")


def resource_id(endpoint_name: str, variant: str = VARIANT) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant}"


def resource_name(endpoint_name: str, version: Any, now: dt.datetime | None = None) -> str:
    """``<endpoint>-v<version>-<UTC stamp>`` cut to SageMaker's 63 characters (model and config names)."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%d%H%M%S")
    suffix = f"-v{version}-{stamp}" if version not in (None, "") else f"-{stamp}"
    return f"{endpoint_name[: 63 - len(suffix)].rstrip('-')}{suffix}"


def approved_package(sm, package_arn: str) -> dict:
    """The package's description; :class:`DeploymentError` unless it is Approved and has a container."""
    from botocore.exceptions import ClientError

    try:
        pkg = sm.describe_model_package(ModelPackageName=package_arn)
    except ClientError as e:
        raise DeploymentError(f"cannot read model package {package_arn}: {e.response['Error'].get('Message', e)}") from e
    status = pkg.get("ModelApprovalStatus")
    if status != "Approved":
        raise DeploymentError(f"model package {package_arn} is {status or 'without approval status'}, not Approved: "
                              f"approve it first (airfare models approve ...)")
    containers = (pkg.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers or not containers[0].get("Image") or not containers[0].get("ModelDataUrl"):
        raise DeploymentError(f"model package {package_arn} has no container image and model data to deploy")
    return pkg


def model_request(name: str, pkg: dict, cfg: DeployConfig) -> dict:
    c = pkg["InferenceSpecification"]["Containers"][0]
    container: dict[str, Any] = {"Image": c["Image"], "ModelDataUrl": c["ModelDataUrl"]}
    if cfg.workers:
        container["Environment"] = {"SAGEMAKER_MODEL_SERVER_WORKERS": str(cfg.workers)}
    req: dict[str, Any] = {"ModelName": name, "ExecutionRoleArn": cfg.role_arn, "PrimaryContainer": container}
    if cfg.subnets:
        req["VpcConfig"] = {"Subnets": list(cfg.subnets), "SecurityGroupIds": list(cfg.security_group_ids)}
        req["EnableNetworkIsolation"] = True  # the serve container needs no network
    return req


def endpoint_config_request(name: str, model_name: str, cfg: DeployConfig, package_arn: str | None = None) -> dict:
    req: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [{
            "VariantName": VARIANT,
            "ModelName": model_name,
            "InstanceType": cfg.instance_type,
            "InitialInstanceCount": cfg.min_instances,
            "InitialVariantWeight": 1.0,
        }],
    }
    if cfg.data_capture_uri:
        capture: dict[str, Any] = {
            "EnableCapture": cfg.capture_percentage > 0,
            "InitialSamplingPercentage": cfg.capture_percentage,
            "DestinationS3Uri": f"{cfg.data_capture_uri.rstrip('/')}/{cfg.endpoint_name}",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            # JSON bodies are captured as text, so Model Monitor can parse them.
            "CaptureContentTypeHeader": {"JsonContentTypes": list(DEFAULT_CAPTURE_CONTENT_TYPES),
                                         "CsvContentTypes": list(CAPTURE_CSV_CONTENT_TYPES)},
        }
        if cfg.kms_key_arn:
            capture["KmsKeyId"] = cfg.kms_key_arn
        req["DataCaptureConfig"] = capture
    if cfg.kms_key_arn:
        req["KmsKeyId"] = cfg.kms_key_arn
    if package_arn:
        req["Tags"] = [{"Key": PACKAGE_TAG, "Value": package_arn}]
    return req


def alarm_names(cfg: DeployConfig) -> list[str]:
    return [f"{cfg.endpoint_name}-5xx", f"{cfg.endpoint_name}-model-latency"]


def alarm_requests(cfg: DeployConfig) -> list[dict]:
    """``put_metric_alarm`` requests of the two alarms that roll a blue/green update back."""
    dims = [{"Name": "EndpointName", "Value": cfg.endpoint_name}, {"Name": "VariantName", "Value": VARIANT}]
    actions = {"AlarmActions": [cfg.alarm_topic_arn]} if cfg.alarm_topic_arn else {}
    common = {"Namespace": "AWS/SageMaker", "Dimensions": dims, "Period": 60, "EvaluationPeriods": 3,
              "DatapointsToAlarm": 2, "TreatMissingData": "notBreaching", **actions}
    five, latency = alarm_names(cfg)
    return [
        {"AlarmName": five, "AlarmDescription": f"{cfg.endpoint_name} answers with server errors (rolls an update back)",
         "MetricName": "Invocation5XXErrors", "Statistic": "Sum", "Threshold": float(ALARM_5XX_PER_MINUTE),
         "ComparisonOperator": "GreaterThanOrEqualToThreshold", **common},
        {"AlarmName": latency, "AlarmDescription": f"{cfg.endpoint_name} model latency p99 above "
                                                   f"{ALARM_MODEL_LATENCY_P99_US // 1000} ms (rolls an update back)",
         "MetricName": "ModelLatency", "ExtendedStatistic": "p99", "Threshold": float(ALARM_MODEL_LATENCY_P99_US),
         "ComparisonOperator": "GreaterThanThreshold", **common},
    ]


def deployment_config(cfg: DeployConfig) -> dict:
    """Blue/green: a canary share of the new fleet first, then all traffic; automatic rollback on the alarms."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": CANARY_PERCENT},
                "WaitIntervalInSeconds": CANARY_WAIT_S,
            },
            "TerminationWaitInSeconds": BAKE_S,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": n} for n in alarm_names(cfg)]},
    }


def scaling_policy_request(cfg: DeployConfig) -> dict:
    return {
        "PolicyName": f"{cfg.endpoint_name}-invocations",
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id(cfg.endpoint_name),
        "ScalableDimension": SCALABLE_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(cfg.invocations_target),
            "PredefinedMetricSpecification": {"PredefinedMetricType": INVOCATIONS_METRIC},
            "ScaleInCooldown": cfg.scale_in_cooldown_s,
            "ScaleOutCooldown": cfg.scale_out_cooldown_s,
        },
    }


def _existing_endpoint(sm, name: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return sm.describe_endpoint(EndpointName=name)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return None
        raise


def _current_instance_type(sm, endpoint: dict) -> str | None:
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    for v in config.get("ProductionVariants", []):
        if v.get("VariantName") == VARIANT:
            return v.get("InstanceType")
    return None


def served_package(sm, endpoint: dict) -> str | None:
    """The package ARN the endpoint's current config was made from (its tag), if any."""
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    tags = sm.list_tags(ResourceArn=config["EndpointConfigArn"]).get("Tags", [])
    return next((t["Value"] for t in tags if t["Key"] == PACKAGE_TAG), None)


def _package_version(arn: str | None) -> tuple[str, int] | None:
    m = re.search(r"model-package/([^/]+)/(\d+)$", arn or "")
    return (m.group(1), int(m.group(2))) if m else None


def already_serving(package_arn: str, served: str | None) -> bool:
    """True when ``served`` is this package or a newer version of its group (an approval event to ignore)."""
    if served is None:
        return False
    if served == package_arn:
        return True
    new, old = _package_version(package_arn), _package_version(served)
    return bool(new and old and new[0] == old[0] and old[1] >= new[1])


def put_alarms(cloudwatch, cfg: DeployConfig) -> list[str]:
    for req in alarm_requests(cfg):
        cloudwatch.put_metric_alarm(**req)
    return alarm_names(cfg)


def deploy(package_arn: str, cfg: DeployConfig, sm=None, autoscaling=None, wait: bool = True,
           now: dt.datetime | None = None, cloudwatch=None, on_approval: bool = False, monitoring=None) -> dict:
    """Deploy ``package_arn`` to ``cfg.endpoint_name``; returns what was created and done.

    ``on_approval``: called for an EventBridge approval event; does nothing when the endpoint
    already serves this package or a newer version of its group. ``monitoring`` (a
    ``pipelines.monitoring_deploy.MonitoringConfig``) also creates the Model Monitor job
    definitions, hourly schedules and alarms on the endpoint."""
    cfg.check()
    if sm is None or autoscaling is None or cloudwatch is None:
        from core import aws

        sm = sm or aws.client("sagemaker")
        autoscaling = autoscaling or aws.client("application-autoscaling")
        cloudwatch = cloudwatch or aws.client("cloudwatch")
    pkg = approved_package(sm, package_arn)
    existing = _existing_endpoint(sm, cfg.endpoint_name)
    if on_approval and existing is not None:
        served = served_package(sm, existing)
        if already_serving(package_arn, served):
            return {"EndpointName": cfg.endpoint_name, "Action": "unchanged", "ModelPackageArn": package_arn,
                    "ServedModelPackageArn": served}
    name = resource_name(cfg.endpoint_name, pkg.get("ModelPackageVersion"), now)

    sm.create_model(**model_request(name, pkg, cfg))
    sm.create_endpoint_config(**endpoint_config_request(name, name, cfg, package_arn))
    alarms = put_alarms(cloudwatch, cfg)
    deregistered = False
    if existing is None:
        sm.create_endpoint(EndpointName=cfg.endpoint_name, EndpointConfigName=name)
        action = "created"
    else:
        if _current_instance_type(sm, existing) != cfg.instance_type:
            # Auto Scaling blocks an update that changes a scaled variant's instance type.
            deregistered = _deregister(autoscaling, cfg.endpoint_name)
        sm.update_endpoint(EndpointName=cfg.endpoint_name, EndpointConfigName=name,
                           DeploymentConfig=deployment_config(cfg))
        action = "updated"
    if wait:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=cfg.endpoint_name,
                                                 WaiterConfig={"Delay": 30, "MaxAttempts": 120})
    autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id(cfg.endpoint_name),
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=cfg.min_instances,
        MaxCapacity=cfg.max_instances,
    )
    policy = autoscaling.put_scaling_policy(**scaling_policy_request(cfg))
    result = {
        "EndpointName": cfg.endpoint_name,
        "Action": action,
        "ModelName": name,
        "EndpointConfigName": name,
        "ModelPackageArn": package_arn,
        "DataCapture": bool(cfg.data_capture_uri),
        "RollbackAlarms": alarms,
        "Scaling": {"Min": cfg.min_instances, "Max": cfg.max_instances, "TargetInvocationsPerInstance": cfg.invocations_target,
                    "PolicyArn": policy.get("PolicyARN")},
        "DeregisteredForInstanceTypeChange": deregistered,
    }
    if monitoring is not None:  # a pipelines.monitoring_deploy.MonitoringConfig (not imported: it imports this module)
        result["Monitoring"] = monitoring.create(cfg.endpoint_name, package_arn, sm=sm)
    return result


def _deregister(autoscaling, endpoint_name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        autoscaling.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint_name),
                                               ScalableDimension=SCALABLE_DIMENSION)
        return True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ObjectNotFoundException":
            return False
        raise


# ---------------------------------------------------------------------------------------------
# Model Monitor: data quality of the captured traffic against the training baseline
# ---------------------------------------------------------------------------------------------
def model_monitor_image(region: str) -> str:
    account = MODEL_MONITOR_IMAGE_ACCOUNTS.get(region)
    if account is None:
        raise DeploymentError(f"no known Model Monitor image for region {region!r}: pass image_uri")
    return f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-model-monitor-analyzer"


def data_quality_schedule_request(
    schedule_name: str,
    endpoint_name: str,
    role_arn: str,
    baseline_uri: str,
    output_uri: str,
    region: str | None = None,
    image_uri: str | None = None,
    instance_type: str = "ml.m5.xlarge",
    cron: str = "cron(0 * ? * * *)",
    record_preprocessor_uri: str | None = None,
    kms_key_arn: str | None = None,
    max_runtime_s: int = 3600,
) -> dict:
    """The ``create_monitoring_schedule`` request of an hourly data-quality job on ``endpoint_name``.

    ``baseline_uri`` holds ``statistics.json`` and ``constraints.json`` (a baselining job on the
    training data writes them). ``record_preprocessor_uri`` points at a script that flattens the
    captured ``{"instances": [...]}`` bodies into one record per instance.
    """
    for label, uri in (("baseline", baseline_uri), ("output", output_uri)):
        if not uri.startswith("s3://"):
            raise DeploymentError(f"{label} location {uri!r} is not an s3:// URI")
    if not _NAME_RE.match(schedule_name or ""):
        raise DeploymentError(f"schedule name {schedule_name!r} is invalid (letters, digits and '-', up to 63)")
    if not (cron.startswith("cron(") and cron.endswith(")")):
        raise DeploymentError(f"schedule expression {cron!r} must be cron(...)")
    if image_uri is None:
        from core import aws

        image_uri = model_monitor_image(region or aws.region())
    baseline = baseline_uri.rstrip("/")
    app_spec: dict[str, Any] = {"ImageUri": image_uri}
    if record_preprocessor_uri:
        app_spec["RecordPreprocessorSourceUri"] = record_preprocessor_uri
    output: dict[str, Any] = {"MonitoringOutputs": [{"S3Output": {
        "S3Uri": f"{output_uri.rstrip('/')}/{endpoint_name}/data-quality",
        "LocalPath": "/opt/ml/processing/output",
        "S3UploadMode": "EndOfJob",
    }}]}
    cluster: dict[str, Any] = {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 20}
    if kms_key_arn:
        output["KmsKeyId"] = kms_key_arn
        cluster["VolumeKmsKeyId"] = kms_key_arn
    return {
        "MonitoringScheduleName": schedule_name,
        "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": cron},
            "MonitoringType": "DataQuality",
            "MonitoringJobDefinition": {
                "BaselineConfig": {
                    "ConstraintsResource": {"S3Uri": f"{baseline}/constraints.json"},
                    "StatisticsResource": {"S3Uri": f"{baseline}/statistics.json"},
                },
                "MonitoringInputs": [{"EndpointInput": {
                    "EndpointName": endpoint_name,
                    "LocalPath": "/opt/ml/processing/input/endpoint",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                }}],
                "MonitoringOutputConfig": output,
                "MonitoringResources": {"ClusterConfig": cluster},
                "MonitoringAppSpecification": app_spec,
                "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
                "Environment": {"dataset_format": '{"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}}',
                                "publish_cloudwatch_metrics": "Enabled"},
                "RoleArn": role_arn,
            },
        },
    }


def create_data_quality_schedule(sm=None, **kwargs) -> str:
    """Create the schedule of :func:`data_quality_schedule_request`; returns its ARN."""
    if sm is None:
        from core import aws

        sm = aws.client("sagemaker")
    return sm.create_monitoring_schedule(**data_quality_schedule_request(**kwargs))["MonitoringScheduleArn"]

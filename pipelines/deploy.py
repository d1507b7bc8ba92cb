"""Deploy an approved model package to a real-time endpoint, with data capture and autoscaling.

Steps (all through :func:`core.aws.client`, so moto serves them in tests):
1. ``describe_model_package``: refuse anything that is not ``Approved``;
2. ``create_model`` from the package's image and model data (our one image, started with ``serve``);
3. ``create_endpoint_config``: one ``AllTraffic`` variant and ``DataCaptureConfig`` (request and
   response, JSON and JSON lines), which is what Model Monitor reads;
4. ``create_endpoint``, or ``update_endpoint`` when it exists (SageMaker's blue/green update with
   rollback); Application Auto Scaling refuses an update that changes a scaled variant's instance
   type, so that case deregisters the variant first;
5. wait for ``InService``, then register the variant as a scalable target (min..max instances)
   with a target-tracking policy on ``SageMakerVariantInvocationsPerInstance``.

:func:`data_quality_schedule_request` builds the ``create_monitoring_schedule`` request of a
Model Monitor data-quality schedule on the captured traffic.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

VARIANT = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
# Invocations per instance per minute that target tracking holds: the mlops stack's
# InvocationsPerInstanceTarget default (1000/min, about 17 req/s). benchmarks/bench_serving.py
# saturated a 2-core box (shared, load average ~10) at about 23 one-record req/s with 2 workers,
# so 1000/min leaves headroom for the minutes a new instance needs to come in service; raise it
# after measuring on the real instance type.
DEFAULT_INVOCATIONS_TARGET = 1000.0
DEFAULT_CAPTURE_CONTENT_TYPES = ("application/json", "application/jsonlines")
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
    instance_type: str = "ml.m5.large"
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

    def check(self) -> None:
        if not _NAME_RE.match(self.endpoint_name or ""):
            raise DeploymentError(f"endpoint name {self.endpoint_name!r} is invalid (letters, digits and '-', up to 63)")
        if not 1 <= self.min_instances <= self.max_instances:
            raise DeploymentError(f"need 1 <= min ({self.min_instances}) <= max ({self.max_instances}) instances")
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


def endpoint_config_request(name: str, model_name: str, cfg: DeployConfig) -> dict:
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
            "CaptureContentTypeHeader": {"JsonContentTypes": list(DEFAULT_CAPTURE_CONTENT_TYPES)},
        }
        if cfg.kms_key_arn:
            capture["KmsKeyId"] = cfg.kms_key_arn
        req["DataCaptureConfig"] = capture
    if cfg.kms_key_arn:
        req["KmsKeyId"] = cfg.kms_key_arn
    return req


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


def deploy(package_arn: str, cfg: DeployConfig, sm=None, autoscaling=None, wait: bool = True,
           now: dt.datetime | None = None) -> dict:
    """Deploy ``package_arn`` to ``cfg.endpoint_name``; returns what was created and done."""
    cfg.check()
    if sm is None or autoscaling is None:
        from core import aws

        sm = sm or aws.client("sagemaker")
        autoscaling = autoscaling or aws.client("application-autoscaling")
    pkg = approved_package(sm, package_arn)
    name = resource_name(cfg.endpoint_name, pkg.get("ModelPackageVersion"), now)

    sm.create_model(**model_request(name, pkg, cfg))
    sm.create_endpoint_config(**endpoint_config_request(name, name, cfg))
    existing = _existing_endpoint(sm, cfg.endpoint_name)
    deregistered = False
    if existing is None:
        sm.create_endpoint(EndpointName=cfg.endpoint_name, EndpointConfigName=name)
        action = "created"
    else:
        if _current_instance_type(sm, existing) != cfg.instance_type:
            # Auto Scaling blocks an update that changes a scaled variant's instance type.
            deregistered = _deregister(autoscaling, cfg.endpoint_name)
        sm.update_endpoint(EndpointName=cfg.endpoint_name, EndpointConfigName=name)
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
    return {
        "EndpointName": cfg.endpoint_name,
        "Action": action,
        "ModelName": name,
        "EndpointConfigName": name,
        "ModelPackageArn": package_arn,
        "DataCapture": bool(cfg.data_capture_uri),
        "Scaling": {"Min": cfg.min_instances, "Max": cfg.max_instances, "TargetInvocationsPerInstance": cfg.invocations_target,
                    "PolicyArn": policy.get("PolicyARN")},
        "DeregisteredForInstanceTypeChange": deregistered,
    }


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

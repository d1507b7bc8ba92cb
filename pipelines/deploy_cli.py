"""`airfare deploy MODEL_PACKAGE_ARN ...`: serve an approved model package from an endpoint.

Light at import time (typer only); boto3 and the deployment code load inside the command.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Optional

import typer

from core.cli_checks import finite_callback

app = typer.Typer(no_args_is_help=True)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@app.command("deploy")
def deploy_command(
    model_package_arn: Annotated[str, typer.Argument(help="ARN of an Approved SageMaker model package.")],
    endpoint_name: Annotated[str, typer.Option("--endpoint-name", help="Endpoint to create or update.")],
    role_arn: Annotated[Optional[str], typer.Option("--role-arn", envvar="ENDPOINT_ROLE_ARN", help="Execution role of the model.")] = None,
    instance_type: Annotated[str, typer.Option("--instance-type", envvar="INSTANCE_TYPE")] = "ml.c5.large",
    min_instances: Annotated[int, typer.Option("--min", min=2, max=10, envvar="MIN_INSTANCES", help="Minimum (and initial) instance count.")] = 2,
    max_instances: Annotated[int, typer.Option("--max", min=2, max=10, envvar="MAX_INSTANCES", help="Maximum instance count.")] = 10,
    invocations_target: Annotated[Optional[float], typer.Option(
        "--invocations-target", envvar="INVOCATIONS_TARGET", min=0.001, max=1_000_000.0, callback=finite_callback, help="Target invocations per instance per minute (target tracking).")] = None,
    data_capture_uri: Annotated[Optional[str], typer.Option(
        "--data-capture-uri", envvar="DATA_CAPTURE_URI", help="s3:// prefix for captured traffic (Model Monitor).")] = None,
    capture_percentage: Annotated[int, typer.Option("--capture-percentage", min=0, max=100)] = 20,
    kms_key_arn: Annotated[Optional[str], typer.Option("--kms-key-arn", envvar="KMS_KEY_ARN")] = None,
    subnets: Annotated[Optional[str], typer.Option("--subnets", envvar="SUBNETS", help="Comma-separated subnet ids.")] = None,
    security_groups: Annotated[Optional[str], typer.Option("--security-groups", envvar="SECURITY_GROUP")] = None,
    alarm_topic_arn: Annotated[Optional[str], typer.Option("--alarm-topic-arn", envvar="ALARM_TOPIC_ARN",
                                                           help="SNS topic the rollback alarms notify.")] = None,
    on_approval: Annotated[bool, typer.Option("--on-approval", help="Started by an approval event: do nothing if the endpoint "
                                              "already serves this package or a newer version of its group.")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not wait for InService (autoscaling may then be refused).")] = False,
) -> None:
    """Deploy an approved model package: model, endpoint config with data capture, endpoint, autoscaling."""
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError

    from pipelines import deploy

    if not role_arn:
        typer.secho("Error: --role-arn (or ENDPOINT_ROLE_ARN) is required", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/.+", role_arn):
        raise typer.BadParameter(f"{role_arn!r} is not an IAM role ARN", param_hint="--role-arn")
    cfg = deploy.DeployConfig(
        endpoint_name=endpoint_name,
        role_arn=role_arn,
        instance_type=instance_type,
        min_instances=min_instances,
        max_instances=max_instances,
        invocations_target=invocations_target or deploy.DEFAULT_INVOCATIONS_TARGET,
        data_capture_uri=data_capture_uri,
        capture_percentage=capture_percentage,
        kms_key_arn=kms_key_arn,
        subnets=_split(subnets),
        security_group_ids=_split(security_groups),
        alarm_topic_arn=alarm_topic_arn,
    )
    try:
        result = deploy.deploy(model_package_arn, cfg, wait=not no_wait, on_approval=on_approval)
    except deploy.DeploymentError as e:
        typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except (ClientError, BotoCoreError, WaiterError) as e:
        typer.secho(f"Error: AWS: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result, indent=2, default=str))
    if result["Action"] == "unchanged":
        typer.secho(f"{result['EndpointName']} already serves {result['ServedModelPackageArn']}: nothing to do",
                    fg=typer.colors.GREEN, err=True)
        return
    typer.secho(f"{result['EndpointName']} {result['Action']}: {model_package_arn} on {cfg.instance_type}, "
                f"{cfg.min_instances}..{cfg.max_instances} instances", fg=typer.colors.GREEN, err=True)


def main() -> None:
    app()

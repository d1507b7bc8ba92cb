"""`airfare pipeline ...`: build, validate, upsert, start or run locally the SageMaker pipeline.

Light at import time (typer and stdlib); the SDK, boto3 and the executor load inside commands.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from core.catalog import DEFAULT_BUCKET, Catalog
from core.cli_checks import existing_path_callback, out_dir_callback

app = typer.Typer(no_args_is_help=True)
_DEFAULTS = Catalog()
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

ParamOpt = Annotated[
    Optional[list[str]],
    typer.Option("--param", "-p", help="Pipeline parameter override Name=Value (repeatable), e.g. -p StartDate=2026-03-01."),
]
RoleOpt = Annotated[
    Optional[str],
    typer.Option("--role-arn", envvar="SAGEMAKER_ROLE_ARN", help="SageMaker execution role ARN baked into the jobs."),
]
NameOpt = Annotated[str, typer.Option("--pipeline-name", help="SageMaker pipeline name.")]
def _bucket_callback(value: str) -> str:
    if not _BUCKET_NAME.match(value) or ".." in value:
        raise typer.BadParameter(f"{value!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')", param_hint="--bucket")
    return value


BucketOpt = Annotated[str, typer.Option("--bucket", callback=_bucket_callback, help="Bucket of the lake; step outputs go under s3://BUCKET/pipeline-runs/.")]
ImageOpt = Annotated[
    Optional[str],
    typer.Option("--image-uri", envvar="AIRFARE_IMAGE_URI", help="Default of the ImageUri parameter (the project's image)."),
]
ServeImageOpt = Annotated[
    Optional[str],
    typer.Option("--serve-image-uri", envvar="AIRFARE_SERVE_IMAGE_URI",
                 help="Default of the InferenceImageUri parameter (the lean serving image that registered models run in)."),
]
SpotOpt = Annotated[bool, typer.Option("--spot/--no-spot", help="Managed spot training (fixed when the definition is built).")]
# SageMaker's limits: MaxRuntimeInSeconds and MaxWaitTimeInSeconds are at most 28 days.
MaxRunOpt = Annotated[int, typer.Option("--max-runtime", min=60, max=2_419_200, help="Training MaxRuntimeInSeconds.")]
MaxWaitOpt = Annotated[int, typer.Option("--max-wait", min=60, max=2_419_200, help="Training MaxWaitTimeInSeconds (spot only; >= --max-runtime).")]
SubnetOpt = Annotated[Optional[list[str]], typer.Option("--subnet", help="VPC subnet id for the jobs (repeatable).")]
SgOpt = Annotated[Optional[list[str]], typer.Option("--security-group", help="VPC security group id for the jobs (repeatable).")]
KmsOpt = Annotated[Optional[str], typer.Option("--kms-key", help="KMS key for job volumes and outputs.")]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def parse_param_pairs(pairs: list[str] | None) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` -> ``{"A": "1", "B": "x=y"}``; values stay strings (typed by the runtime)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{pair!r} is not Name=Value", param_hint="--param")
        out[name.strip()] = value
    return out


def _build_kwargs(bucket, pipeline_name, image_uri, spot, max_runtime, max_wait, subnets, security_groups, kms_key,
                  serve_image_uri=None) -> dict:
    from pipelines.definition import DEFAULT_IMAGE_URI, DEFAULT_SERVE_IMAGE_URI

    if spot and max_wait < max_runtime:
        _fail(f"--max-wait ({max_wait}) must be >= --max-runtime ({max_runtime}) for spot training")
    return dict(
        default_bucket=bucket,
        pipeline_name=pipeline_name,
        image_uri=image_uri or DEFAULT_IMAGE_URI,
        serve_image_uri=serve_image_uri or DEFAULT_SERVE_IMAGE_URI,
        use_spot_instances=spot,
        max_runtime_in_seconds=max_runtime,
        max_wait_time_in_seconds=max_wait,
        subnets=subnets or None,
        security_group_ids=security_groups or None,
        volume_kms_key=kms_key,
        output_kms_key=kms_key,
    )


def _print_problems(problems, source: str) -> None:
    typer.secho(f"{source}: {len(problems)} problem(s)", fg=typer.colors.RED, err=True)
    for p in problems:
        typer.echo(f"  - {p}", err=True)


@app.command()
def definition(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the JSON here instead of stdout.")] = None,
    role_arn: RoleOpt = None,
    pipeline_name: NameOpt = "airfare-pipeline",
    bucket: BucketOpt = DEFAULT_BUCKET,
    image_uri: ImageOpt = None,
    serve_image_uri: ServeImageOpt = None,
    spot: SpotOpt = True,
    max_runtime: MaxRunOpt = 3600,
    max_wait: MaxWaitOpt = 7200,
    subnet: SubnetOpt = None,
    security_group: SgOpt = None,
    kms_key: KmsOpt = None,
) -> None:
    """Print (or write) the pipeline definition JSON. Offline: nothing is uploaded or called."""
    from pipelines.definition import definition_dict

    kwargs = _build_kwargs(bucket, pipeline_name, image_uri, spot, max_runtime, max_wait, subnet, security_group, kms_key,
                           serve_image_uri)
    text = json.dumps(definition_dict(role=role_arn, **kwargs), indent=2)
    if out is None:
        typer.echo(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    typer.echo(f"wrote {out}", err=True)


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="Pipeline definition JSON file.")]) -> None:
    """Statically check a definition: every Get / Join / JsonGet, output, property file and step name resolves."""
    from pipelines.validate import validate_file

    problems = validate_file(file)
    if problems:
        _print_problems(problems, str(file))
        raise typer.Exit(1)
    defn = json.loads(file.read_text())
    typer.secho(f"{file}: OK ({len(defn.get('Parameters') or [])} parameters, top-level steps: "
                f"{', '.join(s['Name'] for s in defn['Steps'])})", fg=typer.colors.GREEN)  # fmt: skip


@app.command()
def upsert(
    role_arn: RoleOpt = None,
    pipeline_name: NameOpt = "airfare-pipeline",
    bucket: BucketOpt = DEFAULT_BUCKET,
    image_uri: ImageOpt = None,
    serve_image_uri: ServeImageOpt = None,
    spot: SpotOpt = True,
    max_runtime: MaxRunOpt = 3600,
    max_wait: MaxWaitOpt = 7200,
    subnet: SubnetOpt = None,
    security_group: SgOpt = None,
    kms_key: KmsOpt = None,
    description: Annotated[Optional[str], typer.Option(help="Pipeline description.")] = None,
) -> None:
    """Create or update the pipeline in SageMaker (statically checked first)."""
    if not role_arn:
        _fail("--role-arn (or SAGEMAKER_ROLE_ARN) is required to upsert")
    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines.definition import upsert as do_upsert

    kwargs = _build_kwargs(bucket, pipeline_name, image_uri, spot, max_runtime, max_wait, subnet, security_group, kms_key,
                           serve_image_uri)
    try:
        resp = do_upsert(role_arn, description=description, **kwargs)
    except ValueError as e:
        _fail(str(e), 1)
    except (ClientError, BotoCoreError) as e:
        _fail(f"SageMaker refused the upsert: {e}", 1)
    typer.echo(resp["PipelineArn"])


@app.command()
def start(
    pipeline_name: NameOpt = "airfare-pipeline",
    param: ParamOpt = None,
    display_name: Annotated[Optional[str], typer.Option(help="Execution display name.")] = None,
) -> None:
    """Start an execution of the upserted pipeline; prints the execution ARN."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines.definition import definition_dict
    from pipelines.definition import start as do_start
    from pipelines.local_run import check_parameters

    params = parse_param_pairs(param)
    try:
        # types, enums, dates and URIs checked against our definition before SageMaker sees them
        # (unknown names are checked against the deployed one by do_start)
        check_parameters(params, definition_dict(), unknown_ok=True)
        arn = do_start(pipeline_name, params, display_name)
    except ValueError as e:
        _fail(str(e))
    except (ClientError, BotoCoreError) as e:
        _fail(f"SageMaker refused to start {pipeline_name}: {e}", 1)
    typer.echo(arn)


def _execution_id_callback(value: str | None) -> str | None:
    # it names a folder under --runs: no separators, no '..'
    if value is not None and (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", value) or ".." in value):
        raise typer.BadParameter(f"{value!r}: letters, digits, '_', '.', '-' only (it names a folder)", param_hint="--execution-id")
    return value


@app.command("run-local")
def run_local(
    definition_file: Annotated[
        Optional[Path], typer.Option("--definition", callback=existing_path_callback,
                                     help="Definition JSON (default: build it now, as `definition` does).")
    ] = None,
    param: ParamOpt = None,
    lake: Annotated[Path, typer.Option(callback=out_dir_callback, help="Local lake root (s3://BUCKET/KEY <-> LAKE/BUCKET/KEY).")] = _DEFAULTS.lake_root,
    runs: Annotated[Path, typer.Option(callback=out_dir_callback, help="Folder of local runs (one sub-folder per execution).")] = _DEFAULTS.runs_root,
    registry: Annotated[Path, typer.Option(callback=out_dir_callback, help="Local model registry root.")] = _DEFAULTS.registry_root,
    execution_id: Annotated[Optional[str], typer.Option(callback=_execution_id_callback, help="Execution id (default: a new one).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Steps run in parallel when independent.")] = 1,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Re-run steps even when a cached result matches.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress.")] = False,
    s3_endpoint_url: Annotated[
        Optional[str],
        typer.Option("--s3-endpoint-url", envvar="AWS_ENDPOINT_URL_S3",
                     help="Use this S3 API as the lake instead of --lake: inputs are downloaded into each job and outputs uploaded, "
                          "as on SageMaker (a moto server, or https://s3.REGION.amazonaws.com for real buckets)."),
    ] = None,
) -> None:
    """Run the pipeline definition locally (no Docker), after the static check; prints a per-step table.

    The lake is the --lake folder, or with --s3-endpoint-url a real S3 API.
    """
    from rich.console import Console

    from pipelines.local_executor import DefinitionError
    from pipelines.local_run import InvalidDefinition, print_summary, run_locally

    params = parse_param_pairs(param)
    try:
        result = run_locally(
            definition_file,
            parameters=params,
            catalog=Catalog(lake_root=lake, registry_root=registry, runs_root=runs, s3_endpoint_url=s3_endpoint_url),
            execution_id=execution_id,
            progress=not quiet,
            max_workers=workers,
            use_cache=not no_cache,
        )
    except InvalidDefinition as e:
        _print_problems(e.problems, e.source)
        raise typer.Exit(1) from None
    except (DefinitionError, ValueError) as e:
        _fail(str(e))
    print_summary(Console(), result, registry)
    if result.status != "Succeeded":
        raise typer.Exit(1)

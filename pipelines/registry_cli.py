"""`airfare models ...`: list, approve or reject registered model packages.

Local registry by default (what `airfare pipeline run-local` writes); ``--sagemaker`` for
SageMaker's Model Registry. An id of the form ``arn:aws:sagemaker:...`` always means SageMaker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from core.catalog import Catalog
from core.cli_checks import out_dir_callback

app = typer.Typer(no_args_is_help=True)

RegistryOpt = Annotated[Path, typer.Option("--registry", callback=out_dir_callback, help="Local registry root.")]
SageMakerOpt = Annotated[bool, typer.Option("--sagemaker", help="Use SageMaker's Model Registry instead of the local one.")]
PackageArg = Annotated[
    str, typer.Argument(help="Package id: GROUP/VERSION or local:model-package/GROUP/VERSION (local), or a SageMaker ARN.")
]


def _registry(sagemaker: bool, root: Path, package: str | None = None):
    from pipelines.registry import LocalRegistry, SageMakerRegistry

    if sagemaker or (package or "").startswith("arn:aws"):
        return SageMakerRegistry()
    return LocalRegistry(root)


def _run(fn):
    """Turn registry and AWS errors into a one-line message and exit code 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipelines.registry import RegistryError

    try:
        return fn()
    except RegistryError as e:
        typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
    except (ClientError, BotoCoreError) as e:
        typer.secho(f"Error: SageMaker: {e}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _metric_summary(pkg: dict) -> str:
    """Gate metrics of a local package's evaluation report, e.g. 'rmse=9.8 r2=0.97'."""
    from core.pipeline_contract import GATES

    metrics = pkg.get("Metrics") or {}
    parts = []
    for g in GATES:
        node = metrics
        for key in g.path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (int, float)):
            parts.append(f"{g.metric}={node:.4g}")
    return " ".join(parts)


@app.command("list")
def list_(
    group: Annotated[Optional[str], typer.Option("--group", "-g", help="Only this model package group.")] = None,
    sagemaker: SageMakerOpt = False,
    registry: RegistryOpt = Catalog().registry_root,
) -> None:
    """List model packages, oldest version first."""
    from rich.console import Console
    from rich.table import Table

    reg = _registry(sagemaker, registry)
    packages = _run(lambda: reg.list(group))
    if not packages:
        typer.echo(f"no model packages{f' in {group}' if group else ''} ({'SageMaker' if sagemaker else registry})")
        return
    table = Table()
    for col in ("group", "version", "status", "created", "metrics", "id"):
        table.add_column(col)
    for p in packages:
        table.add_row(
            p.get("ModelPackageGroupName", ""),
            str(p.get("ModelPackageVersion", "")),
            p.get("ModelApprovalStatus", ""),
            str(p.get("CreationTime", ""))[:19],
            _metric_summary(p),
            p.get("ModelPackageArn", ""),
        )
    Console(width=200).print(table)


@app.command()
def approve(
    package: PackageArg,
    description: Annotated[Optional[str], typer.Option(help="Approval note.")] = None,
    sagemaker: SageMakerOpt = False,
    registry: RegistryOpt = Catalog().registry_root,
) -> None:
    """Approve a model package (deployment takes the newest approved version)."""
    reg = _registry(sagemaker, registry, package)
    pkg = _run(lambda: reg.approve(package, description))
    typer.echo(f"{pkg['ModelPackageArn']}: {pkg['ModelApprovalStatus']}")


@app.command()
def reject(
    package: PackageArg,
    reason: Annotated[str, typer.Option("--reason", help="Why it is rejected (kept with the package).")],
    sagemaker: SageMakerOpt = False,
    registry: RegistryOpt = Catalog().registry_root,
) -> None:
    """Reject a model package, with a reason."""
    reg = _registry(sagemaker, registry, package)
    pkg = _run(lambda: reg.reject(package, reason))
    typer.echo(f"{pkg['ModelPackageArn']}: {pkg['ModelApprovalStatus']}")

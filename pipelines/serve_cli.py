"""`airfare serve --model price|demand|anomaly`: a registered model as a local SageMaker endpoint.

The one command a frontend developer needs: it finds the newest Approved package of the model's
group in the local registry (or ``--version N``, or ``--model-path PATH``) and serves it on
SageMaker's container contract and runtime API, so ``boto3.client("sagemaker-runtime",
endpoint_url="http://localhost:8080").invoke_endpoint(EndpointName="price-prediction-endpoint", ...)``
works unchanged. ``--capture DIR`` writes SageMaker data-capture files under
``DIR/<endpoint>/AllTraffic/yyyy/mm/dd/hh/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer()

MODELS = ("price", "demand", "anomaly")


def endpoint_name(model: str) -> str:
    """The local endpoint's name: the frontend snippet's ``price-prediction-endpoint`` for price."""
    return f"{model}-prediction-endpoint"


def resolve_package(model: str, registry: Path, version: int | None) -> dict:
    """The package to serve: ``version`` of the model's group, else its newest Approved one."""
    from pipelines.definition import MODEL_PACKAGE_GROUPS
    from pipelines.registry import LocalRegistry, RegistryError

    group = MODEL_PACKAGE_GROUPS[model]
    reg = LocalRegistry(registry)
    if version is not None:
        return reg.get(f"{group}/{version}")
    pkg = reg.latest(group, status="Approved")
    if pkg is None:
        pending = reg.latest(group, status=None)
        hint = (f"; the newest is version {pending['ModelPackageVersion']} ({pending['ModelApprovalStatus']}): "
                f"approve it (airfare models approve {group}/{pending['ModelPackageVersion']}) or pass --version"
                if pending else "; run `airfare run` first")
        raise RegistryError(f"no Approved package of {group} in {registry}{hint}")
    return pkg


def serve_argv(model_path: str, port: int, workers: int | None, endpoint: str, capture: Path | None,
               capture_percent: float, host: str) -> list[str]:
    argv = ["--model-dir", model_path, "--port", str(port), "--host", host, "--endpoint-name", endpoint]
    if workers:
        argv += ["--workers", str(workers)]
    if capture is not None:
        argv += ["--capture", str(capture), "--capture-percent", str(capture_percent)]
    return argv


@app.command("serve")
def serve_command(
    model: Annotated[str, typer.Option("--model", help="price, demand or anomaly.")],
    version: Annotated[Optional[int], typer.Option("--version", min=1, help="Serve this registered version (any approval status).")] = None,
    model_path: Annotated[Optional[Path], typer.Option("--model-path", help="Serve this model folder or model.tar.gz instead of a registered one.")] = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8080,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Worker processes (default: one per core).")] = None,
    capture: Annotated[Optional[Path], typer.Option("--capture", help="Write SageMaker data-capture files under this folder.")] = None,
    capture_percent: Annotated[float, typer.Option("--capture-percent", min=0, max=100, help="Percent of invocations captured.")] = 100.0,
    registry: Annotated[Path, typer.Option("--registry", help="Local registry root.")] = Path(".lake/registry"),
) -> None:
    """Serve a registered model locally: SageMaker's /invocations and InvokeEndpoint API."""
    from pipelines.registry import RegistryError

    if model not in MODELS:
        typer.secho(f"Error: --model must be one of {', '.join(MODELS)}, not {model!r}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if version is not None and model_path is not None:
        typer.secho("Error: give --version or --model-path, not both", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if model_path is not None:
        if not model_path.exists():
            typer.secho(f"Error: --model-path {model_path} does not exist", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        source, path = str(model_path), str(model_path)
    else:
        try:
            pkg = resolve_package(model, registry, version)
        except RegistryError as e:
            typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        source, path = f"{pkg['ModelPackageArn']} ({pkg['ModelApprovalStatus']})", pkg["ModelDataUrl"]
    endpoint = endpoint_name(model)
    typer.secho(f"serving {source} as {endpoint} on http://{host}:{port}", fg=typer.colors.GREEN, err=True)
    from inference import entry

    raise typer.Exit(entry.main(serve_argv(path, port, workers, endpoint, capture, capture_percent, host)))


# ---------------------------------------------------------------------------------------------
# A local endpoint for a moment (make run's last step; tests)
# ---------------------------------------------------------------------------------------------
class LocalEndpoint:
    """``serve`` on a free loopback port for the duration of a ``with`` block; ``.url`` is its base URL."""

    def __init__(self, model_path: str, endpoint: str, workers: int = 1, timeout_s: float = 120):
        self.model_path, self.endpoint, self.workers, self.timeout_s = model_path, endpoint, workers, timeout_s
        self.proc = None
        self.url = ""

    def __enter__(self) -> LocalEndpoint:
        import socket
        import subprocess
        import sys
        import time
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "inference.entry", "--host", "127.0.0.1", "--port", str(port), "--workers",
               str(self.workers), "--model-dir", self.model_path, "--endpoint-name", self.endpoint, "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"serve did not answer /ping within {self.timeout_s:.0f} s")
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        import signal
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def invoke_once(package: dict, features: dict) -> dict:
    """Serve ``package`` locally and call it once as the frontend does: boto3 ``invoke_endpoint``."""
    import json

    import boto3

    endpoint = endpoint_name("price")
    with LocalEndpoint(package["ModelDataUrl"], endpoint) as ep:
        runtime = boto3.client("sagemaker-runtime", endpoint_url=ep.url, region_name="us-east-1",
                               aws_access_key_id="local", aws_secret_access_key="local")
        response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json",
                                           Body=json.dumps(features))
        return {"EndpointName": endpoint, "url": ep.url, "ContentType": response["ContentType"],
                "Body": json.loads(response["Body"].read())}

"""notebooks/pipeline_upsert.ipynb runs top to bottom against the moto server and leaves the pipeline there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.integration  # the real thing, run locally: `pytest -m integration`

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "pipeline_upsert.ipynb"
KERNEL = "airfare-infra-test"


@pytest.fixture(scope="module")
def venv_kernel(tmp_path_factory) -> Path:
    """A kernelspec running this interpreter (the venv's python), in a private Jupyter path."""
    prefix = tmp_path_factory.mktemp("jupyter")
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", KERNEL],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return prefix / "share" / "jupyter"


def test_notebook_upserts_and_starts_the_pipeline_in_moto(aws_endpoint, venv_kernel, monkeypatch):
    # The kernel inherits this environment: moto endpoint, fake credentials (conftest), no role check.
    name = "airfare-notebook-test"
    role = "arn:aws:iam::123456789012:role/airfare-dev-sagemaker-pipeline"
    monkeypatch.setenv("JUPYTER_PATH", str(venv_kernel))
    monkeypatch.setenv("PIPELINE_NAME", name)
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", role)
    monkeypatch.setenv("AIRFARE_IMAGE_URI", "123456789012.dkr.ecr.us-east-1.amazonaws.com/airfare-dev:abc123")
    monkeypatch.setenv("LAKE_BUCKET", "airfare-dev-curated-123456789012-us-east-1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(ROOT)}}).execute()

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors

    sm = boto3.client("sagemaker", endpoint_url=aws_endpoint, region_name="us-east-1")
    described = sm.describe_pipeline(PipelineName=name)
    assert described["RoleArn"] == role
    definition = json.loads(described["PipelineDefinition"])
    image = next(p for p in definition["Parameters"] if p["Name"] == "ImageUri")
    assert image["DefaultValue"].endswith("airfare-dev:abc123")
    executions = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    assert any(e.get("PipelineExecutionDisplayName") == "notebook-run" for e in executions)

    # What the notebook showed: the step table lists the three trainings, the registry table the three groups.
    text = "\n".join(
        json.dumps(o.get("data", {}).get("text/plain", "")) + o.get("text", "")
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )  # fmt: skip
    for expected in ("TrainPrice", "TrainDemand", "TrainAnomaly", "airfare-price", "airfare-demand", "airfare-anomaly", described["PipelineArn"]):
        assert expected in text

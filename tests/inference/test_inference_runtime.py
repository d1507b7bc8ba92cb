"""`airfare serve` for real, called the way the frontend calls SageMaker: boto3's sagemaker-runtime
``invoke_endpoint`` with ``endpoint_url``; and which registered package it serves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.config import Config
from inference_support import model_fields, records, split_frame
from server_process import free_port, running

from pipelines import serve_cli
from pipelines.registry import LocalRegistry, RegistryError
from core import model_io

START_TIMEOUT_S = 60


def _airfare() -> list[str]:
    script = Path(sys.executable).with_name("airfare")
    return [str(script)] if script.exists() else [shutil.which("airfare") or "airfare"]


@pytest.fixture(scope="module")
def served(model_dirs, tmp_path_factory):
    """`airfare serve --model price --model-path ...` with capture, on a free port."""
    tmp = tmp_path_factory.mktemp("served")
    port = free_port()
    cmd = [*_airfare(), "serve", "--model", "price", "--model-path", str(model_dirs["price"]), "--port", str(port),
           "--workers", "1", "--capture", str(tmp / "capture")]
    with running(cmd, port, env=dict(os.environ), log=tmp / "serve.log", timeout_s=START_TIMEOUT_S) as (proc, base):
        yield {"url": base, "capture": tmp / "capture", "proc": proc}


@pytest.fixture(scope="module")
def runtime(served):
    return boto3.client("sagemaker-runtime", endpoint_url=served["url"], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}))


def test_the_frontend_snippet_works_unchanged(runtime, model_dirs, inference_splits):
    features = records(split_frame(inference_splits, "price").head(1), model_fields(model_dirs["price"]))[0]
    r = runtime.invoke_endpoint(EndpointName="price-prediction-endpoint", ContentType="application/json",
                                Body=json.dumps(features), CustomAttributes="session=42")
    body = json.loads(r["Body"].read())
    want = model_io.load(model_dirs["price"]).predict_price(pd.DataFrame([features]))
    np.testing.assert_allclose(body["predictions"][0]["price_usd"], want, rtol=1e-4)
    assert r["ContentType"] == "application/json"
    assert r["CustomAttributes"] == "session=42" and r["InvokedProductionVariant"] == "AllTraffic"
    csv_r = runtime.invoke_endpoint(EndpointName="price-prediction-endpoint", ContentType="application/json",
                                    Accept="text/csv", Body=json.dumps(features))
    assert float(csv_r["Body"].read()) == pytest.approx(body["predictions"][0]["price_usd"], rel=1e-9)


def test_a_bad_request_is_a_model_error_with_status_and_message(runtime, model_dirs, inference_splits):
    features = records(split_frame(inference_splits, "price").head(1), model_fields(model_dirs["price"]))[0]
    with pytest.raises(runtime.exceptions.ModelError) as err:
        runtime.invoke_endpoint(EndpointName="price-prediction-endpoint", ContentType="application/json",
                                Body=json.dumps({**features, "days_to_departure": "5"}))
    resp = err.value.response
    assert resp["OriginalStatusCode"] == 422 and "instances[0].days_to_departure" in resp["OriginalMessage"]
    assert "Received client error (422)" in resp["Error"]["Message"]
    with pytest.raises(runtime.exceptions.ValidationError, match="not found"):
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="application/json", Body="{}")


def test_capture_files_appear_for_the_served_endpoint(runtime, served, model_dirs, inference_splits):
    features = records(split_frame(inference_splits, "price").head(1), model_fields(model_dirs["price"]))[0]
    runtime.invoke_endpoint(EndpointName="price-prediction-endpoint", ContentType="application/json",
                            Body=json.dumps(features), InferenceId="inf-1")
    deadline = time.monotonic() + 15
    ours = []
    while time.monotonic() < deadline and not ours:  # files are flushed once a second
        found = [json.loads(line) for f in served["capture"].rglob("*.jsonl") for line in f.read_text().splitlines()]
        ours = [r for r in found if r["eventMetadata"].get("inferenceId") == "inf-1"]
        time.sleep(0.3)
    assert len(ours) == 1 and ours[0]["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert all(p.relative_to(served["capture"]).parts[:2] == ("price-prediction-endpoint", "AllTraffic")
               for p in served["capture"].rglob("*.jsonl"))


def test_serve_picks_the_newest_approved_package(model_dirs, tmp_path):
    reg = LocalRegistry(tmp_path)
    for status in ("Approved", "Approved", "PendingManualApproval"):
        reg.register("airfare-price", model_dirs["price"], "img", approval_status=status)
    assert serve_cli.resolve_package("price", tmp_path, None)["ModelPackageVersion"] == 2
    assert serve_cli.resolve_package("price", tmp_path, 3)["ModelPackageVersion"] == 3
    with pytest.raises(RegistryError, match="approve it"):
        reg.register("airfare-demand", model_dirs["demand"], "img")
        serve_cli.resolve_package("demand", tmp_path, None)


def test_serve_refuses_bad_flags():
    r = subprocess.run([*_airfare(), "serve", "--model", "weather"], capture_output=True, text=True)
    assert r.returncode == 2 and "--model must be one of price, demand, anomaly" in r.stderr
    r = subprocess.run([*_airfare(), "serve", "--model", "price", "--model-path", "/nonexistent"], capture_output=True, text=True)
    assert r.returncode == 2 and "does not exist" in r.stderr

"""The `serve` console script for real: uvicorn (uvloop + httptools) on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from inference_support import records
from server_process import free_port, running

from inference import entry
from core import model_io

pytestmark = pytest.mark.integration  # the real thing, run locally: `pytest -m integration`

START_TIMEOUT_S = 30


def _serve_command() -> list[str]:
    script = Path(sys.executable).with_name("serve")
    return [str(script)] if script.exists() else [shutil.which("serve") or "serve"]


def test_serve_script_answers_ping_and_invocations(model_dirs, inference_splits, tmp_path):
    port = free_port()
    env = {**os.environ, "SM_MODEL_DIR": str(model_dirs["price"]), "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    cmd = [*_serve_command(), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with running(cmd, port, env=env, log=tmp_path / "serve.log", timeout_s=START_TIMEOUT_S) as (proc, base):
        with httpx.Client(base_url=base, timeout=5) as client:
            test = inference_splits[0]["test"]["offers"].head(8)
            m = model_io.load(model_dirs["price"])
            rows = records(test, m.features)
            r = client.post("/invocations", json={"instances": rows})
            assert r.status_code == 200, r.text
            got = [p["price_usd"] for p in r.json()["predictions"]]
            np.testing.assert_allclose(got, m.predict_price(pd.DataFrame(rows)), rtol=1e-4)
            bad = client.post("/invocations", content=b"a,b", headers={"Content-Type": "image/png"})
            assert bad.status_code == 415
            assert client.get("/ping").status_code == 200  # still alive after a bad request
    # uvicorn shuts down gracefully, then re-raises the captured SIGTERM (so -15 is a clean stop)
    output = (tmp_path / "serve.log").read_text()
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output


def test_workers_come_from_sagemaker_env(monkeypatch):
    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3")
    assert entry.default_workers() == 3
    monkeypatch.delenv("SAGEMAKER_MODEL_SERVER_WORKERS")
    assert entry.default_workers() == entry.cpu_count() >= 1
    for bad in ("zero", "0"):
        monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", bad)
        with pytest.raises(SystemExit, match="SAGEMAKER_MODEL_SERVER_WORKERS"):
            entry.default_workers()


def test_one_math_thread_per_worker_and_sagemaker_argv(monkeypatch):
    env: dict[str, str] = {"OMP_NUM_THREADS": "8"}
    entry.single_thread_env(env)
    assert all(env[name] == "1" for name in entry.THREAD_ENV)
    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT", raising=False)
    args = entry.parse_args(["serve"])  # SageMaker runs `docker run IMAGE serve`
    assert (args.host, args.port, args.workers) == ("0.0.0.0", 8080, None)
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9090")
    assert entry.parse_args([]).port == 9090

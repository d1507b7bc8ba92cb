"""The monitor on real served capture: `airfare serve --capture` on a free port, searches sent through
its HTTP API, then `airfare monitor data-quality` (the CLI) on what the server captured."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from mon_support import baseline_dir, records
from server_process import free_port, running
from typer.testing import CliRunner

from core import monitoring_datasets as datasets
from pipelines.cli import app

pytestmark = pytest.mark.integration  # the real server, run locally

START_TIMEOUT_S = 60


def _send_searches(client, meta, offers, events) -> int:
    """One request per search with its offers as instances, as the search frontend asks for quotes."""
    sent = 0
    for event_id in events:
        rows = records(offers.loc[offers["event_id"] == event_id, datasets.input_columns(meta)])  # booleans as JSON true/false
        r = client.post("/invocations", json={"instances": rows}, headers={"X-Amzn-SageMaker-Inference-Id": str(event_id)})
        assert r.status_code == 200, r.text
        sent += len(rows)
    return sent


def _monitor(capture: Path, base: Path, out: Path, *extra: str):
    result = CliRunner().invoke(app, ["monitor", "data-quality", "--model", "price", "--capture", str(capture),
                                      "--baseline", str(base), "--out", str(out), "--registry", str(out / "no-registry"),
                                      *extra])  # fmt: skip
    return result, json.loads((out / "constraint_violations.json").read_text())["violations"]


def test_monitor_on_what_the_real_server_captured(mon_models, mon_splits, tmp_path):
    model = mon_models["price"]
    offers = mon_splits["train"]["offers"]
    base = baseline_dir(model.meta, offers, tmp_path / "baseline")
    capture = tmp_path / "capture"
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "AIRFARE_BACKEND": "native"}  # no tree compilation: the test is about capture
    airfare = Path(sys.executable).with_name("airfare")
    cmd = [str(airfare), "serve", "--model", "price", "--model-path", str(model.model_dir), "--port", str(port),
           "--workers", "1", "--capture", str(capture)]  # fmt: skip
    events = offers["event_id"].drop_duplicates().sample(n=240, random_state=4).tolist()
    with running(cmd, port, env=env, log=log, timeout_s=START_TIMEOUT_S) as (_, base_url):
        with httpx.Client(base_url=base_url, timeout=10) as client:
            quiet = _send_searches(client, model.meta, offers, events[:160])
            # capture times have whole seconds: the shifted batch starts on the next one
            now = dt.datetime.now(dt.timezone.utc)
            boundary = now.replace(microsecond=0) + dt.timedelta(seconds=1)
            time.sleep((boundary - now).total_seconds() + 0.05)
            shifted_offers = offers.assign(days_to_departure=offers["days_to_departure"] + 25)  # bookings much earlier
            _send_searches(client, model.meta, shifted_offers, events[160:])
    assert "Traceback" not in log.read_text(), log.read_text()
    files = sorted((capture / "price-prediction-endpoint" / "AllTraffic").rglob("*.jsonl"))
    assert files, f"nothing captured under {capture}"

    until = boundary.isoformat().replace("+00:00", "Z")
    result, violations = _monitor(capture, base, tmp_path / "quiet", "--until", until)
    assert result.exit_code == 0, result.output
    assert violations == []
    stats = json.loads((tmp_path / "quiet" / "statistics.json").read_text())
    assert stats["dataset"]["item_count"] == quiet  # every served record, once

    result, violations = _monitor(capture, base, tmp_path / "shifted", "--since", until)
    assert result.exit_code == 1, result.output
    assert {v["feature_name"] for v in violations} == {"days_to_departure"}, violations
    assert "days_to_departure" in result.output

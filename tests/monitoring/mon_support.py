"""Writing captured traffic and ground truth in SageMaker's formats, for the monitoring tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from core import monitoring_datasets as datasets
from monitoring import capture

START = dt.datetime(2026, 4, 1, 8, 0, tzinfo=dt.timezone.utc)


def _json_value(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def write_capture(root: Path, inputs: pd.DataFrame, outputs: list[dict] | None = None, *, endpoint: str = "price-prediction-endpoint",
                  start: dt.datetime = START, every: dt.timedelta = dt.timedelta(seconds=30), shapes: tuple[str, ...] = ("object",),
                  ids: list[str] | None = None) -> Path:
    """One capture line per input row, under ``root/<endpoint>/AllTraffic/yyyy/mm/dd/hh/``.

    ``shapes`` cycles over request shapes: ``object`` (a bare JSON object), ``instances``
    ({"instances": [row]}), ``list``, ``csv`` (headerless, feature order), ``base64`` (JSON body
    captured as BASE64, as when no CaptureContentTypeHeader is set).
    """
    rows = records(inputs)
    outputs = outputs or [{"price_usd": 0.0}] * len(rows)
    files: dict[Path, list[str]] = {}
    for i, row in enumerate(rows):
        when = start + i * every
        shape = shapes[i % len(shapes)]
        out_body = json.dumps({"predictions": [outputs[i]]})
        if shape == "csv":
            body = ",".join("" if v is None else str(int(v) if isinstance(v, bool) else v) for v in row.values())
            line = capture.capture_line(str(uuid.uuid4()), when, body, out_body, content_type="text/csv",
                                        inference_id=ids[i] if ids else None)
        else:
            body = json.dumps({"object": row, "instances": {"instances": [row]}, "list": [row], "base64": row}[shape])
            ctype = "application/octet-stream" if shape == "base64" else "application/json"
            line = capture.capture_line(str(uuid.uuid4()), when, body, out_body, content_type=ctype,
                                        inference_id=ids[i] if ids else None)
        folder = capture.hour_path(root / endpoint / "AllTraffic", when)
        files.setdefault(folder / f"{when:%M}-capture.jsonl", []).append(line)
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
    return root


def write_ground_truth(root: Path, ids: list[str], labels: list, delivered: list[dt.datetime]) -> Path:
    by_hour: dict[Path, list[str]] = {}
    for rid, label, when in zip(ids, labels, delivered):
        by_hour.setdefault(capture.hour_path(root, when) / "labels.jsonl", []).append(capture.ground_truth_line(rid, label))
    for path, lines in by_hour.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return root


def baseline_dir(meta: dict, train_table: pd.DataFrame, out: Path) -> Path:
    """statistics.json + constraints.json of the model's inputs in the training split."""
    from monitoring import job, monitor

    df = datasets.data_baseline(meta, train_table)
    job.data_quality(df, out, overrides=monitor.comparison_overrides(list(df.columns)))
    return out

"""The container's ``train`` entry (SageMaker training contract, DESIGN.md §1).

Reads ``/opt/ml/input/config/hyperparameters.json`` (SageMaker passes every value as a string),
the channels ``train`` and ``validation`` (the Preprocess split folders) and, for the anomaly
model, ``labels`` (the incident feed, ``core.labels``); writes the model to ``/opt/ml/model``.
Run through the job shell (:mod:`core.job`): any failure writes its reason to
``/opt/ml/output/failure`` and exits 1, which is how SageMaker (and the local executor) report
``FailureReason``. Paths honour ``SM_OPT_ML``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from core import sm_paths
from core.job import run_job
from core.pipeline_contract import MODEL_TABLE

log = logging.getLogger("training")

# Hyperparameters that are not numbers.
_STRING_PARAMS = {"model", "target_transform", "features"}


def parse_hyperparameters(raw: dict[str, Any]) -> dict[str, Any]:
    """SageMaker's string values -> int / float / bool where they look like one (JSON-quoted too)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        v = value
        if isinstance(v, str):
            s = v.strip()
            if len(s) >= 2 and s[0] == s[-1] == '"':  # the SDK sometimes JSON-encodes strings
                s = s[1:-1]
            v = s
            if key not in _STRING_PARAMS:
                low = s.lower()
                if low in ("true", "false"):
                    v = low == "true"
                else:
                    try:
                        v = int(s)
                    except ValueError:
                        try:
                            v = float(s)
                        except ValueError:
                            v = s
        out[key] = v
    return out


def read_hyperparameters() -> dict[str, Any]:
    path = sm_paths.hyperparameters_file()
    if not path.exists():
        raise FileNotFoundError(f"no hyperparameters file at {path}")
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return parse_hyperparameters(raw)


def read_channel(name: str, table: str | None = None, required: bool = True) -> pd.DataFrame | None:
    """A channel's Parquet data: ``<channel>/<table>`` if given and present, else every Parquet file in it."""
    root = sm_paths.training_channel(name)
    if not root.exists():
        if required:
            raise FileNotFoundError(f"channel {name!r} not found at {root}")
        return None
    if table and (root / table).exists():
        return pd.read_parquet(root / table)
    if table and root.is_dir() and any(root.rglob(table)):
        return pd.concat([pd.read_parquet(f) for f in sorted(root.rglob(table))], ignore_index=True)
    files = [root] if root.is_file() else sorted(f for f in root.rglob("*.parquet") if f.is_file())
    if table and root.is_dir() and any(f.name in {f"{t}.parquet" for t in MODEL_TABLE.values()} for f in files):
        raise FileNotFoundError(f"channel {name!r} at {root} has no {table}")
    if not files:
        if required:
            raise FileNotFoundError(f"channel {name!r} at {root} holds no Parquet files")
        return None
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def run(params: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """Train the model named by ``params['model']`` from the channels into ``model_dir``; return its meta."""
    params = dict(params)
    kind = str(params.pop("model", "")).strip().lower()
    if kind not in MODEL_TABLE:
        raise ValueError(f"hyperparameter 'model' must be one of {sorted(MODEL_TABLE)}, got {kind!r}")
    table = f"{MODEL_TABLE[kind]}.parquet"
    train_df = read_channel("train", table)
    val_df = read_channel("validation", table, required=(kind == "anomaly"))
    log.info("model=%s train rows=%d validation rows=%s params=%s", kind, len(train_df),
             None if val_df is None else len(val_df), params)
    if kind == "price":
        from training import price

        return price.train(train_df, val_df, model_dir, params)
    if kind == "demand":
        from training import demand

        return demand.train(train_df, val_df, model_dir, params)
    from training import anomaly

    return anomaly.train(train_df, val_df, model_dir, read_labels(), params)


def read_labels():
    """The ``labels`` channel: the incident feed (``labels/incidents/`` with its manifest)."""
    from core import labels

    root = sm_paths.training_channel("labels")
    if not root.exists():
        raise FileNotFoundError(f"channel 'labels' not found at {root} (the incident feed, labels/incidents/)")
    return labels.read_feed(root)


def _train(_args) -> None:
    t0 = time.perf_counter()
    params = read_hyperparameters()
    model_dir = sm_paths.model_dir()
    model_dir.mkdir(parents=True, exist_ok=True)
    meta = run(params, model_dir)
    log.info("training done in %.1fs; model in %s; validation: %s", time.perf_counter() - t0, model_dir,
             meta.get("validation_metrics") or meta.get("validation"))


def main() -> int:
    """``train``: run the training job (SageMaker passes no arguments); on failure the reason goes
    to ``/opt/ml/output/failure`` and the exit code is 1. The console script passes it to ``sys.exit``."""
    return run_job("training", _train, kind="training")


if __name__ == "__main__":
    sys.exit(main())

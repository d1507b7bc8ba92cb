"""The datasets Model Monitor baselines: each model's inputs, and its predictions beside the labels.

- **Data-quality baseline**: the model's request fields (what its endpoint receives and captures),
  taken from the training split; written as CSV with a header, the format Model Monitor's
  analyzer reads (``DatasetFormat.csv(header=True)``).
- **Model-quality baseline**: the evaluation's predictions on the test split against the labels,
  columns ``prediction``, ``label`` (and ``probability`` or per-class probabilities).

Which fields a model receives is :func:`core.features.request_fields` of its ``model_meta.json``,
the same list the endpoint validates requests against (``inference.schema.field_specs``).
Shared by the Evaluate step (which writes these datasets) and ``monitoring`` (which reads them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.features import request_fields
from core.pipeline_contract import MODEL_TABLE
from core.tables import read_table

DATA_BASELINE_FILE = "data_baseline.csv"
PREDICTIONS_FILE = "predictions.csv"
MAX_BASELINE_ROWS = 100_000  # a uniform sample: the KLL sketch and category counts need no more
# Model-quality dataset columns (the ModelQualityCheckConfig attributes name them).
PREDICTION, LABEL, PROBABILITY = "prediction", "label", "probability"
PREDICTION_FIELDS = {"price": "price_usd", "demand": "demand_class", "anomaly": "is_anomaly"}
SCORE_FIELDS = {"anomaly": "anomaly_score"}


def input_columns(meta: dict[str, Any]) -> list[str]:
    """The fields a request for this model carries, in the model's feature order."""
    return request_fields(meta)


def model_inputs(meta: dict[str, Any], table: pd.DataFrame) -> pd.DataFrame:
    cols = input_columns(meta)
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(f"the {meta.get('model')} model's inputs {missing} are not in the table")
    out = table[cols].copy()
    for c in out.columns:  # booleans travel as JSON true/false, i.e. 1/0 in CSV
        if out[c].dtype == bool or str(out[c].dtype) == "boolean":
            out[c] = out[c].astype("Int64")
    return out


def data_baseline(meta: dict[str, Any], table: pd.DataFrame, max_rows: int = MAX_BASELINE_ROWS, seed: int = 0) -> pd.DataFrame:
    inputs = model_inputs(meta, table)
    if len(inputs) > max_rows:
        inputs = inputs.sample(n=max_rows, random_state=seed).sort_index()
    return inputs.reset_index(drop=True)


def data_baseline_days(meta: dict[str, Any], table: pd.DataFrame, max_rows: int = MAX_BASELINE_ROWS,
                       seed: int = 0) -> tuple[pd.DataFrame, np.ndarray | None]:
    """:func:`data_baseline`'s rows, and each row's search date ('YYYY-MM-DD'; None without one):
    the daily windows the monitor's thresholds are measured on (``monitoring.analyzer.calibrate_constraints``)."""
    inputs = model_inputs(meta, table)
    days = None
    if "search_date" in table.columns or "dt" in table.columns or "event_time" in table.columns:
        from core.features import search_date_of

        dates = table["search_date"] if "search_date" in table.columns else search_date_of(table)
        days = pd.Series(pd.to_datetime(dates).dt.strftime("%Y-%m-%d").to_numpy(), index=inputs.index)
    if len(inputs) > max_rows:  # the same rows as data_baseline
        inputs = inputs.sample(n=max_rows, random_state=seed).sort_index()
    return inputs.reset_index(drop=True), (None if days is None else days.loc[inputs.index].to_numpy())


def write_data_baseline(meta: dict[str, Any], train_dir: Path, out_dir: Path, max_rows: int = MAX_BASELINE_ROWS) -> Path:
    """The data-quality baseline dataset in ``out_dir``: one CSV file (with header) per search day,
    ``data_baseline-YYYY-MM-DD.csv``. Model Monitor's analyzer reads the folder as one dataset;
    the local analyzer also takes each file as one monitoring window (``monitoring.job``)."""
    table = read_table(train_dir, MODEL_TABLE[meta["model"]])
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs, days = data_baseline_days(meta, table, max_rows)
    if days is None:
        inputs.to_csv(out_dir / DATA_BASELINE_FILE, index=False)
        return out_dir
    for day in sorted(set(days)):
        inputs.loc[days == day].to_csv(out_dir / DATA_BASELINE_FILE.replace(".csv", f"-{day}.csv"), index=False)
    return out_dir


def predictions_frame(kind: str, label, prediction, score=None, classes=None, proba=None) -> pd.DataFrame:
    """The model-quality baseline rows: ``prediction``, ``label`` and the probability column(s)."""
    frame = pd.DataFrame({PREDICTION: np.asarray(prediction), LABEL: np.asarray(label)})
    if kind == "anomaly":
        frame[PREDICTION] = frame[PREDICTION].astype(int)
        frame[LABEL] = frame[LABEL].astype(int)
        if score is not None:
            frame[PROBABILITY] = np.asarray(score, dtype=float)
    if kind == "demand" and proba is not None:
        proba = np.asarray(proba, dtype=float)
        frame[PROBABILITY] = proba.max(axis=1)
    return frame


def write_predictions(frame: pd.DataFrame, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PREDICTIONS_FILE
    frame.to_csv(path, index=False)
    return path

"""The `train` container entry honours SageMaker's training contract in a tmp SM_OPT_ML."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core import model_io
from core.labels import write_feed
from core.pipeline_contract import MODEL_META_FILE
from training import entry


def _verdicts(world):
    """The incident feed of a team that reviewed every offer an hour after its quote (no mistakes)."""
    offers, _, truth = world
    v = offers[["offer_id", "event_id", "event_time"]].merge(truth[["offer_id", "is_anomaly"]], on="offer_id")
    return v.assign(search_time=v["event_time"], confirmed_at=v["event_time"] + pd.Timedelta(hours=1),
                    is_incident=v["is_anomaly"], source="alert_review")


def _opt_ml(tmp_path, monkeypatch, splits, hyperparameters, labels=None):
    root = tmp_path / "opt_ml"
    out, _ = splits
    for channel in ("train", "validation"):
        d = root / "input" / "data" / channel
        d.mkdir(parents=True)
        out[channel]["offers"].to_parquet(d / "offers.parquet")
        out[channel]["flights"].to_parquet(d / "flights.parquet")
    if labels is not None:
        write_feed(labels, root / "input" / "data" / "labels")
    cfg = root / "input" / "config"
    cfg.mkdir(parents=True)
    (cfg / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    monkeypatch.setenv("SM_OPT_ML", str(root))
    for var in ("SM_MODEL_DIR", "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION", "SM_CHANNEL_LABELS"):
        monkeypatch.delenv(var, raising=False)
    return root


@pytest.mark.parametrize("kind", ["price", "demand", "anomaly"])
def test_main_trains_each_model_from_string_hyperparameters(kind, tmp_path, monkeypatch, splits, world):
    hp = {"model": kind, "n_estimators": "40", "nthread": "1", "seed": "7"}
    root = _opt_ml(tmp_path, monkeypatch, splits, hp, labels=_verdicts(world) if kind == "anomaly" else None)
    assert entry.main() == 0
    assert not (root / "output" / "failure").exists()
    meta = json.loads((root / "model" / MODEL_META_FILE).read_text())
    assert meta["model"] == kind
    assert meta["hyperparameters"]["n_estimators"] == 40 and meta["hyperparameters"]["seed"] == 7
    assert model_io.load(root / "model").kind == kind


def test_sm_model_dir_and_channel_env_win(tmp_path, monkeypatch, splits):
    root = _opt_ml(tmp_path, monkeypatch, splits, {"model": "price", "n_estimators": "20", "nthread": "1"})
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(root / "input" / "data" / "train"))
    assert entry.main() == 0
    assert (tmp_path / "elsewhere" / model_io.PRICE_FILE).exists()


@pytest.mark.parametrize(
    ("hyperparameters", "expected"),
    [
        ({"model": "weather"}, "must be one of"),
        ({"model": "anomaly", "n_estimators": "10"}, "labels"),
        ({"model": "price", "target_transform": "sqrt"}, "target_transform"),
    ],
)
def test_failure_file_on_bad_input(hyperparameters, expected, tmp_path, monkeypatch, splits):
    root = _opt_ml(tmp_path, monkeypatch, splits, hyperparameters)
    assert entry.main() == 1
    reason = (root / "output" / "failure").read_text()
    assert expected in reason


def test_failure_when_hyperparameters_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("SM_OPT_ML", str(tmp_path))
    assert entry.main() == 1
    assert "hyperparameters" in (tmp_path / "output" / "failure").read_text()


def test_parse_hyperparameters_types():
    got = entry.parse_hyperparameters(
        {"model": "price", "n_estimators": "300", "learning_rate": "0.1", "flag": "true", "seed": '"5"',
         "features": "a,b", "target_transform": "log"}
    )
    assert got == {"model": "price", "n_estimators": 300, "learning_rate": 0.1, "flag": True, "seed": 5,
                   "features": "a,b", "target_transform": "log"}


def test_unknown_hyperparameter_is_an_error(tmp_path, monkeypatch, splits):
    root = _opt_ml(tmp_path, monkeypatch, splits, {"model": "demand", "n_estimator": "10", "sagemaker_region": '"x"'})
    assert entry.main() == 1
    assert "n_estimator" in (root / "output" / "failure").read_text()

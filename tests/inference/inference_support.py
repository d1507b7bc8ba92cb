"""Three tiny models trained with the project's trainers on the training tests' synthetic world.

The world maker is imported from ``tests/small_world.py`` by file path, so inference tests use
exactly the curated-like frame the trainer tests use, at a smaller size.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_WORLD_FILE = Path(__file__).resolve().parents[1] / "small_world.py"


def _load_world_module():
    spec = importlib.util.spec_from_file_location("inference_training_world", _WORLD_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def records(df, fields):
    """Rows of ``df`` as JSON-ready dicts of ``fields`` (NaN -> null, numpy -> Python)."""
    return json.loads(df[fields].to_json(orient="records", date_format="iso"))


@pytest.fixture(scope="session")
def inference_splits():
    from processing.preprocess import preprocess

    world = _load_world_module().make_world(days=24, searches_per_day=30, seed=3, anomaly_rate=0.05)
    offers, outcomes, truth = world
    splits, _ = preprocess(offers, outcomes, validation_days=5, test_days=5)
    return splits, truth


@pytest.fixture(scope="session")
def model_dirs(inference_splits, tmp_path_factory):
    """``{kind: model_dir}`` for price, demand and anomaly."""
    from training import anomaly, demand, price

    splits, truth = inference_splits
    root = tmp_path_factory.mktemp("inference_models")
    price.train(splits["train"]["offers"], splits["validation"]["offers"], root / "price",
                {"n_estimators": 80, "max_depth": 5, "nthread": 1})
    demand.train(splits["train"]["flights"], splits["validation"]["flights"], root / "demand",
                 {"n_estimators": 30, "max_depth": 4, "num_leaves": 15, "nthread": 1})
    anomaly.train(splits["train"]["offers"], splits["validation"]["offers"], root / "anomaly",
                  truth[["offer_id", "is_anomaly"]], {"n_estimators": 50, "max_samples": 256, "nthread": 1})
    return {k: root / k for k in ("price", "demand", "anomaly")}

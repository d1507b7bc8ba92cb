"""Session fixtures for the monitoring tests: the evaluation tests' in-process world, split, with
the price and demand models trained once (``tests/evaluation/eval_world.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))

from eval_world import FAST, make_world  # noqa: E402


@pytest.fixture(scope="session")
def mon_world():
    return make_world(days=28, searches_per_day=45, seed=11)


@pytest.fixture(scope="session")
def mon_splits(mon_world):
    from processing.preprocess import preprocess

    offers, outcomes, _ = mon_world
    splits, _ = preprocess(offers, outcomes, validation_days=5, test_days=5)
    return splits


@pytest.fixture(scope="session")
def mon_models(mon_splits, tmp_path_factory):
    """{kind: LoadedModel} for price and demand, trained with the project's trainers."""
    from core import model_io
    from training import demand, price

    root = tmp_path_factory.mktemp("mon-models")
    price.train(mon_splits["train"]["offers"], mon_splits["validation"]["offers"], root / "price", FAST["price"])
    demand.train(mon_splits["train"]["flights"], mon_splits["validation"]["flights"], root / "demand", FAST["demand"])
    return {k: model_io.load(root / k) for k in ("price", "demand")}

"""Session fixtures: the in-process world of ``eval_world.py``, split and trained once."""

from __future__ import annotations

import pytest
from eval_world import FAST, make_world


@pytest.fixture(scope="session")
def eval_world():
    return make_world()


@pytest.fixture(scope="session")
def eval_splits(eval_world, tmp_path_factory):
    """The Preprocess step's functions on the world; also written to disk as the step would."""
    from processing.preprocess import preprocess, write_splits

    offers, outcomes, _ = eval_world
    splits, summary = preprocess(offers, outcomes, validation_days=5, test_days=5)
    root = tmp_path_factory.mktemp("splits")
    write_splits(splits, summary, root)
    return splits, root


@pytest.fixture(scope="session")
def eval_models(eval_world, eval_splits, tmp_path_factory):
    """The three models, trained with the project's trainers; ``{kind: model_dir}``."""
    from training import anomaly, demand, price

    _, _, truth = eval_world
    splits, _ = eval_splits
    root = tmp_path_factory.mktemp("models")
    price.train(splits["train"]["offers"], splits["validation"]["offers"], root / "price", FAST["price"])
    demand.train(splits["train"]["flights"], splits["validation"]["flights"], root / "demand", FAST["demand"])
    anomaly.train(splits["train"]["offers"], splits["validation"]["offers"], root / "anomaly",
                  truth[["offer_id", "is_anomaly"]], FAST["anomaly"])
    return {k: root / k for k in ("price", "demand", "anomaly")}


@pytest.fixture(scope="session")
def loaded_models(eval_models):
    from core import model_io

    return {k: model_io.load(d) for k, d in eval_models.items()}

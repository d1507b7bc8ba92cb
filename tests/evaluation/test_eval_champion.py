"""The ComparePrice step: challenger vs champion on the same test split (evaluation.champion)."""

from __future__ import annotations

import json

import pytest
from eval_world import FAST, make_tar

from core import model_io
from core.pipeline_contract import CHAMPION_REPORT_PATHS
from evaluation import champion


@pytest.fixture(scope="module")
def weak_price_model(eval_splits, tmp_path_factory):
    """A real price model trained on a small slice of the same training days: a worse model."""
    from training import price

    splits, _ = eval_splits
    train = splits["train"]["offers"]
    folder = tmp_path_factory.mktemp("weak") / "price"
    price.train(train.iloc[: len(train) // 20], splits["validation"]["offers"], folder,
                {**FAST["price"], "n_estimators": 15, "max_depth": 2})  # fmt: skip
    return folder


def test_a_better_challenger_wins_and_a_worse_one_loses(loaded_models, weak_price_model, eval_splits):
    splits, _ = eval_splits
    test = splits["test"]["offers"]
    strong, weak = loaded_models["price"], model_io.load(weak_price_model)
    up = champion.compare(strong, weak, test, "s3://b/weak/model.tar.gz")
    down = champion.compare(weak, strong, test, "s3://b/strong/model.tar.gz")
    assert up["challenger"]["rmse"]["value"] < up["champion"]["rmse"]["value"] and up["challenger_wins"] is True
    assert down["challenger_wins"] is False
    # the same rows for both models: swapping them swaps the metrics exactly
    assert up["challenger"] == down["champion"] and up["champion"] == down["challenger"]
    assert up["n_compared"] <= up["n_test"] == len(test)


def test_a_tie_is_no_win_and_no_champion_is_a_win(loaded_models, eval_splits):
    splits, _ = eval_splits
    model = loaded_models["price"]
    tie = champion.compare(model, model, splits["test"]["offers"])
    assert tie["challenger_wins"] is False  # a copy of the champion does not replace it
    first = champion.compare(model, None, splits["test"]["offers"])
    assert first["challenger_wins"] is True and first["champion_present"] is False
    assert first["champion"]["rmse"] == {"value": None} and first["challenger"]["rmse"]["value"] > 0


def test_no_test_rows_is_a_clear_error(loaded_models, eval_splits):
    splits, _ = eval_splits
    with pytest.raises(ValueError, match="no offers"):
        champion.compare(loaded_models["price"], None, splits["test"]["offers"].iloc[:0])


def test_the_step_writes_the_property_file_from_the_artifacts(tmp_path, monkeypatch, eval_models, weak_price_model, eval_splits):
    _, split_root = eval_splits
    monkeypatch.setenv("SM_OPT_ML", str(tmp_path))
    proc = tmp_path / "processing"
    (proc / "test").mkdir(parents=True)
    (proc / "test" / "offers.parquet").write_bytes((split_root / "test" / "offers.parquet").read_bytes())
    make_tar(eval_models["price"], proc / "model" / "model.tar.gz")
    served = make_tar(weak_price_model, tmp_path / "registry" / "model.tar.gz")
    assert champion.main([f"--champion-model-uri={served}"]) == 0
    report = json.loads((proc / "comparison" / "comparison.json").read_text())
    assert report["challenger_wins"] is True and report["champion_uri"] == str(served)
    for path in CHAMPION_REPORT_PATHS:  # every path the condition step may read
        doc = report
        for part in path.split("."):
            doc = doc[part]
    # the wrong artifact or a missing one fails the job with a message naming it
    make_tar(eval_models["demand"], tmp_path / "demand" / "model.tar.gz")
    assert champion.main([f"--champion-model-uri={tmp_path / 'demand' / 'model.tar.gz'}"]) != 0
    assert "not the price model" in (tmp_path / "output" / "message").read_text()
    assert champion.main([f"--champion-model-uri={tmp_path / 'nope.tar.gz'}"]) != 0
    assert "nope.tar.gz" in (tmp_path / "output" / "message").read_text()

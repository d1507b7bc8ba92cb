"""The three trainers on the synthetic world, and their round trip through model_io.load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import contract
from core.cleaning import price_outlier_mask
from core import model_io
from training import anomaly, demand, price
from core.pipeline_contract import MODEL_META_FILE

FAST = {"n_estimators": 60, "nthread": 1}


@pytest.fixture(scope="module")
def price_model(splits, tmp_path_factory):
    out, _ = splits
    d = tmp_path_factory.mktemp("price")
    meta = price.train(out["train"]["offers"], out["validation"]["offers"], d, {**FAST, "n_estimators": 200})
    return d, meta


def test_price_learns_and_round_trips(price_model, splits):
    d, meta = price_model
    out, _ = splits
    test = out["test"]["offers"]
    clean = test.loc[~price_outlier_mask(test)]
    m = model_io.load(d)
    assert m.kind == "price" and m.features == contract.PRICE_NUMERIC + contract.PRICE_CATEGORICAL
    # the tree count was chosen by early stopping on the validation days, then refitted on train +
    # validation days without the rule-flagged and trimmed rows
    assert set(meta["search"]["candidates"]) == {"additive"} and meta["structure"] == "additive"
    assert meta["search"]["trees"] < 200  # early stopping cut the 200 allowed trees
    assert meta["refit_on_validation"] and meta["trees"] == meta["search"]["trees"]
    val = out["validation"]["offers"]
    c = meta["cleaning"]
    assert meta["train_rows"] == len(out["train"]["offers"]) - c["train_rows_removed"] \
        + len(val) - c["validation_rows_removed"] - c["trimmed_by_residual"]
    pred = m.predict_price(clean)
    y = clean["price_usd"].to_numpy()
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert r2 > 0.9
    assert meta["cleaning"]["train_rows_removed"] > 0
    # a fresh load predicts exactly the same, also on a shuffled, re-indexed copy
    again = model_io.load(d).predict_price(clean.sample(frac=1.0, random_state=1).sort_index())
    np.testing.assert_array_equal(pred, again)
    assert (d / model_io.PRICE_FILE).read_bytes()[:1] == b"{"  # UBJ object marker, not a pickle
    saved = json.loads((d / MODEL_META_FILE).read_text())
    assert saved["category_levels"]["airline"] == sorted(test["airline"].unique())


def test_price_unseen_category_and_wrong_model_calls(price_model, splits):
    d, _ = price_model
    m = model_io.load(d)
    row = splits[0]["test"]["offers"].head(3).copy()
    base = m.predict_price(row)
    row["airline"] = "ZZ"  # never seen: treated as missing, still a finite price
    assert np.isfinite(m.predict_price(row)).all()
    assert np.isfinite(base).all()
    with pytest.raises(TypeError, match="price"):
        m.predict_demand_proba(row)
    with pytest.raises(ValueError, match="lacks feature columns"):
        m.predict_price(row.drop(columns=["cabin"]))


def test_demand_trains_and_round_trips(splits, tmp_path):
    out, _ = splits
    meta = demand.train(out["train"]["flights"], out["validation"]["flights"], tmp_path, FAST)
    m = model_io.load(tmp_path)
    test = out["test"]["flights"]
    proba = m.predict_demand_proba(test)
    assert proba.shape == (len(test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    labels = m.predict_demand(test)
    assert set(labels) <= set(contract.DEMAND_CLASSES)
    acc = (labels == test["demand_class"].to_numpy()).mean()
    majority = test["demand_class"].value_counts(normalize=True).max()
    assert acc > majority + 0.1, (acc, majority)
    np.testing.assert_array_equal(proba, model_io.load(tmp_path).predict_demand_proba(test))
    assert (tmp_path / model_io.DEMAND_LGB_FILE).read_text().startswith("tree")
    assert "ensemble" in meta["validation_metrics"]


def test_demand_search_keeps_the_fewest_trees_within_tolerance(splits, tmp_path):
    """The default is LightGBM alone; its tree size is the search's choice, and what is saved is that."""
    out, _ = splits
    meta = demand.train(out["train"]["flights"], out["validation"]["flights"], tmp_path,
                        {**FAST, "num_leaves": "4,16"})
    tried, chosen = meta["search"]["tried"], meta["search"]["chosen"]
    assert [t["num_leaves"] for t in tried] == [4, 16]
    best = max(t["validation_accuracy"] for t in tried)
    ok = [t for t in tried if t["validation_accuracy"] >= best - demand.DEFAULTS["search_tolerance"]]
    assert chosen["rounds"] == min(ok, key=lambda t: t["trees"])["rounds"]
    assert meta["files"] == {"lgb": model_io.DEMAND_LGB_FILE} and not (tmp_path / model_io.DEMAND_XGB_FILE).exists()
    booster = model_io.load(tmp_path)._models["lgb"]
    assert booster.num_trees() == meta["serving_trees"] == 3 * chosen["rounds"]
    assert max(t["num_leaves"] for t in booster.dump_model()["tree_info"]) <= chosen["num_leaves"]


def test_demand_ensemble_still_trains_and_loads(splits, tmp_path):
    """``models: "xgb,lgb"`` is the earlier ensemble; its probabilities are the weighted mean of both."""
    out, _ = splits
    meta = demand.train(out["train"]["flights"], out["validation"]["flights"], tmp_path,
                        {**FAST, "models": "xgb,lgb", "num_leaves": 8, "xgb_weight": 0.25})
    m = model_io.load(tmp_path)
    assert set(m._models) == {"xgb", "lgb"} and meta["ensemble_weights"] == {"xgb": 0.25, "lgb": 0.75}
    test = out["test"]["flights"].head(50)
    x = m.matrix(test)
    mix = 0.25 * model_io.member_proba(m._models["xgb"], x) + 0.75 * model_io.member_proba(m._models["lgb"], x)
    np.testing.assert_allclose(m.predict_demand_proba(test), mix / mix.sum(1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("bad, message", [({"num_leaves": "4,x"}, "num_leaves"), ({"num_leaves": 1}, "num_leaves"),
                                          ({"models": "xgb"}, "models")])
def test_demand_rejects_bad_hyperparameters(splits, tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        demand.train(splits[0]["train"]["flights"], None, tmp_path, {**FAST, **bad})


def test_demand_rejects_bad_labels(splits, tmp_path):
    bad = splits[0]["train"]["flights"].copy()
    bad.loc[bad.index[0], "demand_class"] = "huge"
    with pytest.raises(ValueError, match="demand labels"):
        demand.train(bad, None, tmp_path, FAST)


def test_anomaly_threshold_and_round_trip(splits, world, tmp_path):
    out, _ = splits
    truth = world[2]
    meta = anomaly.train(out["train"]["offers"], out["validation"]["offers"], tmp_path, truth, {"n_estimators": 100, "nthread": 1})
    v = meta["validation"]
    assert v["precision"] >= 0.9 and v["recall"] > 0.5
    m = model_io.load(tmp_path)
    test = out["test"]["offers"]
    y = anomaly.join_labels(test, truth)
    flags = m.is_anomaly(test)
    assert flags.dtype == bool
    assert flags[y].mean() > 0.5 and flags[~y].mean() < 0.02
    scores = m.anomaly_score(test)
    assert scores[y].mean() > scores[~y].mean()
    np.testing.assert_array_equal(scores, model_io.load(tmp_path).anomaly_score(test))
    np.testing.assert_array_equal(flags, scores >= meta["threshold"])


def test_choose_threshold_prefers_recall_at_target_precision():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1], dtype=bool)
    got = anomaly.choose_threshold(scores, y, 0.8, z=0)
    assert got["threshold"] == 0.5 and got["recall"] == 1.0 and got["precision"] == pytest.approx(5 / 6)
    strict = anomaly.choose_threshold(scores, y, 1.0, z=0)
    assert strict["threshold"] == 0.7 and strict["recall"] == 0.8
    # with a confidence margin, 5 of 6 is not enough evidence for 80 %: the cut moves up
    careful = anomaly.choose_threshold(scores, y, 0.5, z=1.64)
    assert careful["precision_lower_bound"] >= 0.5 and careful["threshold"] >= 0.5
    assert not anomaly.choose_threshold(scores, y, 0.99, z=1.64)["target_met"]
    with pytest.raises(ValueError, match="no labelled anomalies"):
        anomaly.choose_threshold(scores, np.zeros(10, dtype=bool), 0.9)


def test_load_rejects_unknown_dirs(tmp_path):
    with pytest.raises(FileNotFoundError):
        model_io.load(tmp_path)
    (tmp_path / MODEL_META_FILE).write_text(json.dumps({"model": "weather"}))
    with pytest.raises(ValueError, match="unknown model kind"):
        model_io.load(tmp_path)


def test_price_structure_hyperparameter_is_checked(splits, tmp_path):
    out, _ = splits
    assert price.structures("additive, free") == ["additive", "free"]
    # a listed alternative is searched: the lower validation RMSE wins
    meta = price.train(out["train"]["offers"], out["validation"]["offers"], tmp_path / "both",
                       {**FAST, "structure": "additive,free"})
    cands = meta["search"]["candidates"]
    assert set(cands) == {"additive", "free"}
    assert meta["structure"] == min(cands, key=lambda k: cands[k]["validation_rmse"])
    with pytest.raises(ValueError, match="structure"):
        price.train(out["train"]["offers"], out["validation"]["offers"], tmp_path, {"structure": "pairs"})
    with pytest.raises(ValueError, match="category_dropout"):
        price.train(out["train"]["offers"], out["validation"]["offers"], tmp_path, {"category_dropout": 1.5})


def test_price_first_stage_is_fitted_without_the_market_identities(splits, tmp_path):
    """The first ``first_stage_trees`` trees of the saved model use no withheld column (the later
    ones may, where the identities add to what the attributes explain); a withheld name that is not
    a price categorical is refused by name."""
    import xgboost as xgb

    out, _ = splits
    withheld = {"route", "origin", "destination"}
    meta = price.train(out["train"]["offers"], out["validation"]["offers"], tmp_path / "m",
                       {**FAST, "n_estimators": 80, "first_stage_without": ",".join(sorted(withheld))})
    first = meta["search"]["first_stage_trees"]
    assert 0 < first < meta["trees"]
    booster = xgb.Booster()
    booster.load_model(str(tmp_path / "m" / model_io.PRICE_FILE))
    splits_df = booster.trees_to_dataframe()
    splits_df = splits_df.loc[splits_df["Feature"] != "Leaf"]
    used_first = set(splits_df.loc[splits_df["Tree"] < first, "Feature"])
    assert used_first and not used_first & withheld
    one = price.train(out["train"]["offers"], out["validation"]["offers"], tmp_path / "one",
                      {**FAST, "first_stage_without": ""})
    assert one["search"]["first_stage_trees"] == 0
    with pytest.raises(ValueError, match="first_stage_without"):
        price.train(out["train"]["offers"], out["validation"]["offers"], tmp_path, {"first_stage_without": "distance_km"})


def test_category_dropout_blanks_only_many_level_columns():
    import pandas as pd

    n = 10_000
    x = pd.DataFrame({"route": pd.Categorical([f"r{i % 50}" for i in range(n)]),
                      "cabin": pd.Categorical([("economy", "business")[i % 2] for i in range(n)]),
                      "days_to_departure": np.arange(n, dtype=float)})
    got = price.drop_categories(x, ["route", "cabin"], 0.1, 30, seed=1)
    assert got["cabin"].notna().all() and got["days_to_departure"].notna().all()
    assert 0.08 < got["route"].isna().mean() < 0.12
    assert x["route"].notna().all()  # the caller's matrix is left alone
    assert price.drop_categories(x, ["route", "cabin"], 0.0, 30, seed=1) is x


def test_price_regime_days_carry_the_old_market_over_to_a_new_one(splits, tmp_path):
    """A fare hike on two of the four routes from the last two training days on: trained as they are,
    the older days outvote the new market; with ``regime_days`` "auto" the trainer finds, on the
    validation days (all after the hike), that the newest days are a new market and carries the
    older days' prices over to it."""
    from core.features import search_date_of

    out, _ = splits
    train, val, test = (out[s]["offers"].copy() for s in ("train", "validation", "test"))
    onset = search_date_of(train).max() - np.timedelta64(1, "D")
    hiked = {"JFK-LAX", "CDG-FCO"}
    for df in (train, val, test):
        hit = df["route"].isin(hiked).to_numpy() & (search_date_of(df) >= onset).to_numpy()
        for col in (contract.PRICE_TARGET, "route_cabin_median_price_usd", "competitor_median_price_usd", "competitor_min_price_usd"):
            if col in df.columns:
                df.loc[hit, col] = df.loc[hit, col] * 1.4
    test = test.loc[~price_outlier_mask(test)]
    errors, metas = {}, {}
    for spec in (0, "auto"):
        metas[spec] = price.train(train, val, tmp_path / str(spec), {**FAST, "n_estimators": 300, "regime_days": spec})
        pred = model_io.load(tmp_path / str(spec)).predict_price(test)
        errors[spec] = float(np.sqrt(np.mean((pred - test[contract.PRICE_TARGET].to_numpy()) ** 2)))
    chosen = metas["auto"]["search"]["regime_days"]
    assert 1 <= chosen <= 3, metas["auto"]["search"]
    assert metas["auto"]["regime"]["new_rows"] > 0 and metas["auto"]["regime"]["correction_trees"] > 0
    assert errors["auto"] < 0.6 * errors[0], errors
    assert metas[0]["regime"] == {} and metas[0]["search"]["regime_days"] == 0
    with pytest.raises(ValueError, match="regime_days"):
        price.train(train, val, tmp_path / "bad", {"regime_days": "soon"})

"""Demand model: a LightGBM classifier on the demand table, its size chosen by validation.

A prediction is served one record at a time (issue 12), so the model's size is its serving cost:
every boosting round adds one tree per class. The trainer fits a few tree sizes (``num_leaves``
candidates) with early stopping on the validation days and keeps the one with the fewest trees
whose validation accuracy is within ``search_tolerance`` of the best: small trees win on short
windows (7 training days), larger ones where the window holds more flights (docs/models.md). The earlier
XGBoost + LightGBM ensemble (``models: "xgb,lgb"``) is still available and still loads.
Classes are ``contract.DEMAND_CLASSES`` in that order.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

from core import contract
from core.features import DEMAND_CATEGORICAL, DEMAND_FEATURES, DEMAND_NUMERIC, category_levels, model_matrix
from core import model_io
from training.params import merge_params

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    # Bounded training time: a random sample of the snapshots (neighbouring snapshots of one flight
    # are near-duplicates). 150k keeps every row of make run's demand table (~125k training and
    # validation snapshots of 60k sampled flights): 0.935 test accuracy against 0.92 at 60k.
    "max_train_rows": 150_000,
    # "lgb": LightGBM alone (the default); "xgb,lgb": the earlier ensemble (twice the trees).
    "models": "lgb",
    # Candidate tree sizes (comma list), each early-stopped on the validation days; the cheapest
    # within search_tolerance of the best validation accuracy is refitted (meta["search"]).
    "num_leaves": "4,16,32",
    "search_tolerance": 0.002,
    "n_estimators": 500,  # cap on boosting rounds (each adds one tree per class)
    "learning_rate": 0.5,
    "early_stopping_rounds": 10,
    "max_depth": 5,  # the XGBoost member of the ensemble only
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_samples": 20,
    "xgb_weight": 0.5,  # the ensemble only
    # 1: after early stopping on the validation days, refit with that tree count on training +
    # validation days (on a 21-day window, 7 training days, what short windows miss most)
    "refit": 1,
    "nthread": 1,  # the executor trains two models at once on 2 cores
    "seed": 42,
}


def encode_labels(labels: pd.Series) -> np.ndarray:
    """Class names -> indices in ``contract.DEMAND_CLASSES`` order (error on anything else)."""
    classes = list(contract.DEMAND_CLASSES)
    bad = sorted(set(labels.dropna().astype(str)) - set(classes))
    if bad or labels.isna().any():
        raise ValueError(f"demand labels must be one of {classes}; got {bad or 'missing values'}")
    return labels.astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=int)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=list(range(len(contract.DEMAND_CLASSES))), zero_division=0)),
        "rows": int(len(y_true)),
    }


def _xgb(p: dict[str, Any], n_trees: int, stop: int | None) -> xgb.XGBClassifier:
    return xgb.XGBClassifier(
        n_estimators=n_trees,
        max_depth=int(p["max_depth"]),
        learning_rate=float(p["learning_rate"]),
        subsample=float(p["subsample"]),
        colsample_bytree=float(p["colsample_bytree"]),
        objective="multi:softprob",
        num_class=len(contract.DEMAND_CLASSES),
        tree_method="hist",
        enable_categorical=True,
        max_cat_to_onehot=1,
        n_jobs=int(p["nthread"]),
        random_state=int(p["seed"]),
        early_stopping_rounds=stop,
        eval_metric="mlogloss",
    )


def _lgb(p: dict[str, Any], n_trees: int, leaves: int) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        objective="multiclass",
        num_class=len(contract.DEMAND_CLASSES),
        n_estimators=n_trees,
        learning_rate=float(p["learning_rate"]),
        num_leaves=int(leaves),
        min_child_samples=int(p["min_child_samples"]),
        subsample=float(p["subsample"]),
        subsample_freq=1,
        colsample_bytree=float(p["colsample_bytree"]),
        n_jobs=int(p["nthread"]),
        random_state=int(p["seed"]),
        verbose=-1,
    )


def _leaf_candidates(value: Any) -> list[int]:
    """``num_leaves`` as given (an int, a comma string such as "4,16,32", or a list) -> sorted ints >= 2."""
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        out = sorted({int(str(v).strip()) for v in parts if str(v).strip()})
    except ValueError:
        raise ValueError(f"num_leaves must be an integer or a comma list of integers, got {value!r}") from None
    if not out or out[0] < 2:
        raise ValueError(f"num_leaves candidates must be integers >= 2, got {value!r}")
    return out


def _members(value: Any) -> list[str]:
    members = [m.strip() for m in str(value).split(",") if m.strip()]
    if members not in (["lgb"], ["xgb", "lgb"], ["lgb", "xgb"]):
        raise ValueError(f"models must be 'lgb' or 'xgb,lgb', got {value!r}")
    return sorted(members, reverse=True)  # xgb first, as the meta lists them


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(np.asarray(proba).reshape(len(y), -1).argmax(1) == y))


def search_leaves(p: dict[str, Any], x_train, y_train, x_val, y_val) -> dict[str, Any]:
    """Early-stop one LightGBM per ``num_leaves`` candidate on the validation days; choose the one with
    the fewest trees whose validation accuracy is within ``search_tolerance`` of the best.

    Fewest trees, not fewest leaves: a compiled prediction's cost grows with the tree count far more
    than with the tree size (one record, CPU time: ~15 ns per 4-leaf tree, ~25 ns per 32-leaf tree;
    docs/models.md)."""
    n_class = len(contract.DEMAND_CLASSES)
    tried = []
    for leaves in _leaf_candidates(p["num_leaves"]):
        m = _lgb(p, int(p["n_estimators"]), leaves)
        m.fit(x_train, y_train, eval_X=(x_val,), eval_y=(y_val,),
              callbacks=[lgb.early_stopping(int(p["early_stopping_rounds"]), verbose=False)])
        rounds = int(m.best_iteration_ or m.n_estimators)
        tried.append({"num_leaves": leaves, "rounds": rounds, "trees": rounds * n_class,
                      "validation_accuracy": _accuracy(y_val, m.predict_proba(x_val, num_iteration=rounds)),
                      "validation_logloss": float(m.best_score_["valid_0"]["multi_logloss"])})
    best = max(t["validation_accuracy"] for t in tried)
    ok = [t for t in tried if t["validation_accuracy"] >= best - float(p["search_tolerance"])]
    chosen = min(ok, key=lambda t: (t["trees"], t["num_leaves"]))
    return {"tried": tried, "chosen": {"num_leaves": chosen["num_leaves"], "rounds": chosen["rounds"]}}


def _sample(df: pd.DataFrame, p: dict[str, Any]) -> pd.DataFrame:
    n = int(p["max_train_rows"])
    return df.sample(n, random_state=int(p["seed"])) if 0 < n < len(df) else df


def train(train_df: pd.DataFrame, validation_df: pd.DataFrame | None, model_dir: str | Path,
          params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Search the tree size on validation, refit on training + validation days, save natively; return meta."""
    p = merge_params(DEFAULTS, params, "demand")
    members = _members(p["models"])
    candidates = _leaf_candidates(p["num_leaves"])
    if not 0.0 <= float(p["xgb_weight"]) <= 1.0:
        raise ValueError("xgb_weight must be in [0, 1]")
    if contract.DEMAND_TARGET not in train_df.columns:
        raise ValueError(f"training data has no {contract.DEMAND_TARGET!r} column: is this the flights table?")
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    total_rows = len(train_df)
    train_df = _sample(train_df, p)

    levels = category_levels(train_df, DEMAND_CATEGORICAL)
    x_train = model_matrix(train_df, DEMAND_NUMERIC, DEMAND_CATEGORICAL, levels)
    y_train = encode_labels(train_df[contract.DEMAND_TARGET])
    has_val = validation_df is not None and len(validation_df) > 0
    if has_val:
        x_val = model_matrix(validation_df, DEMAND_NUMERIC, DEMAND_CATEGORICAL, levels)
        y_val = encode_labels(validation_df[contract.DEMAND_TARGET])
        search = search_leaves(p, x_train, y_train, x_val, y_val)
    else:  # nothing to choose on: the first candidate, every round
        search = {"tried": [], "chosen": {"num_leaves": candidates[0], "rounds": int(p["n_estimators"])}}
    leaves, lgb_rounds = search["chosen"]["num_leaves"], search["chosen"]["rounds"]
    search_seconds = time.perf_counter() - t0

    xgb_rounds = None
    if "xgb" in members:
        stop = int(p["early_stopping_rounds"]) if has_val else None
        xgb_model = _xgb(p, int(p["n_estimators"]), stop)
        xgb_model.fit(x_train, y_train, eval_set=[(x_val, y_val)] if has_val else None, verbose=False)
        xgb_rounds = int(model_io.best_booster(xgb_model).num_boosted_rounds())

    # The final fit: on training + validation days when refitting (the tree counts chosen above).
    t2 = time.perf_counter()
    refit = bool(int(p["refit"])) and has_val
    final_df = _sample(pd.concat([train_df, validation_df], ignore_index=True), p) if refit else train_df
    levels = category_levels(final_df, DEMAND_CATEGORICAL)
    x_final = model_matrix(final_df, DEMAND_NUMERIC, DEMAND_CATEGORICAL, levels)
    y_final = encode_labels(final_df[contract.DEMAND_TARGET])
    files, trees = {}, {}
    if xgb_rounds is not None:
        xgb_final = _xgb(p, xgb_rounds, None)
        xgb_final.fit(x_final, y_final, verbose=False)
        xgb_final.get_booster().save_model(str(model_dir / model_io.DEMAND_XGB_FILE))
        files["xgb"], trees["xgb"] = model_io.DEMAND_XGB_FILE, xgb_rounds
    lgb_final = _lgb(p, lgb_rounds, leaves)
    lgb_final.fit(x_final, y_final)
    lgb_final.booster_.save_model(str(model_dir / model_io.DEMAND_LGB_FILE))
    files["lgb"], trees["lgb"] = model_io.DEMAND_LGB_FILE, lgb_rounds
    final_seconds = time.perf_counter() - t2

    w = float(p["xgb_weight"])
    n_class = len(contract.DEMAND_CLASSES)
    meta: dict[str, Any] = {
        "model": "demand",
        "target": contract.DEMAND_TARGET,
        "classes": list(contract.DEMAND_CLASSES),
        "features": list(DEMAND_FEATURES),
        "numeric": list(DEMAND_NUMERIC),
        "categorical": list(DEMAND_CATEGORICAL),
        "category_levels": levels,
        "files": files,
        "ensemble_weights": {"xgb": w, "lgb": 1.0 - w} if "xgb" in files else {"lgb": 1.0},
        "hyperparameters": p,
        "search": search,
        "trees": trees,  # boosting rounds per member; each round holds one tree per class
        "serving_trees": n_class * sum(trees.values()),
        "refit_on_validation": refit,
        "train_rows": int(len(final_df)),
        "train_rows_available": int(total_rows),
        "train_class_counts": {c: int(n) for c, n in train_df[contract.DEMAND_TARGET].value_counts().items()},
        "training_seconds": {"search": round(search_seconds, 3), "final": round(final_seconds, 3),
                             "total": round(time.perf_counter() - t0, 3)},
    }
    model_io.write_meta(model_dir, meta)
    if has_val:
        loaded = model_io.load(model_dir)
        x = loaded.matrix(validation_df)
        scores = {"ensemble": classification_metrics(y_val, loaded.predict_demand_proba(validation_df).argmax(1))}
        for name, member in loaded._models.items():
            scores[name] = classification_metrics(y_val, model_io.member_proba(member, x).argmax(1))
        meta["validation_metrics"] = scores  # in sample for the refitted model: search["tried"] is out of sample
        model_io.write_meta(model_dir, meta)
        log.info("demand: search %s; validation %s", search["chosen"], meta["validation_metrics"])
    log.info("demand: trained in %.1fs", meta["training_seconds"]["total"])
    return meta

"""Demand model: XGBoost + LightGBM classifiers on the demand table, probabilities averaged.

Two different boosting implementations (level-wise vs leaf-wise trees, different categorical
handling) make partly independent errors; averaging their calibrated-ish probabilities is a
cheap, robust ensemble. Classes are ``contract.DEMAND_CLASSES`` in that order.
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
    # are near-duplicates, so a sample loses little), a higher learning rate, early stopping.
    "max_train_rows": 60_000,  # > 0: random sample of the training snapshots (default world: 0.90 test accuracy, ~35 s)
    "n_estimators": 300,
    "max_depth": 5,
    "learning_rate": 0.2,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "num_leaves": 63,
    "min_child_samples": 20,
    "early_stopping_rounds": 20,
    "xgb_weight": 0.5,
    # 1: after early stopping on the validation days, refit both models with those tree counts on
    # training + validation days (the model matrix: on a 21-day window, 7 training days, this
    # is what short windows miss most; docs/models.md)
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


def _lgb(p: dict[str, Any], n_trees: int) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        objective="multiclass",
        num_class=len(contract.DEMAND_CLASSES),
        n_estimators=n_trees,
        learning_rate=float(p["learning_rate"]),
        num_leaves=int(p["num_leaves"]),
        min_child_samples=int(p["min_child_samples"]),
        subsample=float(p["subsample"]),
        subsample_freq=1,
        colsample_bytree=float(p["colsample_bytree"]),
        n_jobs=int(p["nthread"]),
        random_state=int(p["seed"]),
        verbose=-1,
    )


def train(train_df: pd.DataFrame, validation_df: pd.DataFrame | None, model_dir: str | Path,
          params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit both classifiers on the flights table (early stopping on validation), save natively; return meta."""
    p = merge_params(DEFAULTS, params, "demand")
    if not 0.0 <= float(p["xgb_weight"]) <= 1.0:
        raise ValueError("xgb_weight must be in [0, 1]")
    if contract.DEMAND_TARGET not in train_df.columns:
        raise ValueError(f"training data has no {contract.DEMAND_TARGET!r} column: is this the flights table?")
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    total_rows = len(train_df)
    if int(p["max_train_rows"]) > 0 and len(train_df) > int(p["max_train_rows"]):
        train_df = train_df.sample(int(p["max_train_rows"]), random_state=int(p["seed"]))

    levels = category_levels(train_df, DEMAND_CATEGORICAL)
    x_train = model_matrix(train_df, DEMAND_NUMERIC, DEMAND_CATEGORICAL, levels)
    y_train = encode_labels(train_df[contract.DEMAND_TARGET])
    has_val = validation_df is not None and len(validation_df) > 0
    if has_val:
        x_val = model_matrix(validation_df, DEMAND_NUMERIC, DEMAND_CATEGORICAL, levels)
        y_val = encode_labels(validation_df[contract.DEMAND_TARGET])
    stop = int(p["early_stopping_rounds"]) if has_val else None

    xgb_model = _xgb(p, int(p["n_estimators"]), stop)
    xgb_model.fit(x_train, y_train, eval_set=[(x_val, y_val)] if has_val else None, verbose=False)
    xgb_seconds = time.perf_counter() - t0
    booster = model_io.best_booster(xgb_model)

    t1 = time.perf_counter()
    lgb_model = _lgb(p, int(p["n_estimators"]))
    callbacks = [lgb.early_stopping(stop, verbose=False)] if has_val else None
    evals = {"eval_X": (x_val,), "eval_y": (y_val,)} if has_val else {}
    lgb_model.fit(x_train, y_train, callbacks=callbacks, **evals)
    lgb_seconds = time.perf_counter() - t1
    best = lgb_model.best_iteration_ or None
    lgb_booster, lgb_trees = lgb_model.booster_, int(best or lgb_model.n_estimators)

    refit = bool(int(p["refit"])) and has_val
    if refit:  # the same models, tree counts from early stopping, on training + validation days
        t2 = time.perf_counter()
        both = pd.concat([train_df, validation_df], ignore_index=True)
        if int(p["max_train_rows"]) > 0 and len(both) > int(p["max_train_rows"]):
            both = both.sample(int(p["max_train_rows"]), random_state=int(p["seed"]))
        levels = category_levels(both, DEMAND_CATEGORICAL)
        x_both = model_matrix(both, DEMAND_NUMERIC, DEMAND_CATEGORICAL, levels)
        y_both = encode_labels(both[contract.DEMAND_TARGET])
        xgb_final = _xgb(p, int(booster.num_boosted_rounds()), None)
        xgb_final.fit(x_both, y_both, verbose=False)
        booster = xgb_final.get_booster()
        lgb_final = _lgb(p, lgb_trees)
        lgb_final.fit(x_both, y_both)
        lgb_booster, best = lgb_final.booster_, None
        refit_seconds = time.perf_counter() - t2
    booster.save_model(str(model_dir / model_io.DEMAND_XGB_FILE))
    lgb_booster.save_model(str(model_dir / model_io.DEMAND_LGB_FILE), num_iteration=best)

    w = float(p["xgb_weight"])
    meta: dict[str, Any] = {
        "model": "demand",
        "target": contract.DEMAND_TARGET,
        "classes": list(contract.DEMAND_CLASSES),
        "features": list(DEMAND_FEATURES),
        "numeric": list(DEMAND_NUMERIC),
        "categorical": list(DEMAND_CATEGORICAL),
        "category_levels": levels,
        "files": {"xgb": model_io.DEMAND_XGB_FILE, "lgb": model_io.DEMAND_LGB_FILE},
        "ensemble_weights": {"xgb": w, "lgb": 1.0 - w},
        "hyperparameters": p,
        "trees": {"xgb": int(booster.num_boosted_rounds()), "lgb": lgb_trees},
        "refit_on_validation": refit,
        "train_rows": int(len(both) if refit else len(train_df)),
        "train_rows_available": int(total_rows),
        "train_class_counts": {c: int(n) for c, n in train_df[contract.DEMAND_TARGET].value_counts().items()},
        "training_seconds": {"xgb": round(xgb_seconds, 3), "lgb": round(lgb_seconds, 3),
                             "refit": round(refit_seconds, 3) if refit else 0.0,
                             "total": round(time.perf_counter() - t0, 3)},
    }
    model_io.write_meta(model_dir, meta)
    if has_val:
        loaded = model_io.load(model_dir)
        x = loaded.matrix(validation_df)
        p_xgb = np.asarray(loaded._models["xgb"].inplace_predict(x)).reshape(len(x), -1)
        p_lgb = np.asarray(loaded._models["lgb"].predict(x)).reshape(len(x), -1)
        meta["validation_metrics"] = {
            "ensemble": classification_metrics(y_val, loaded.predict_demand_proba(validation_df).argmax(1)),
            "xgb": classification_metrics(y_val, p_xgb.argmax(1)),
            "lgb": classification_metrics(y_val, p_lgb.argmax(1)),
        }
        model_io.write_meta(model_dir, meta)
        log.info("demand: validation %s", meta["validation_metrics"])
    log.info("demand: trained in %.1fs", meta["training_seconds"]["total"])
    return meta

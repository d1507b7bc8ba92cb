"""Price model: XGBoost regression of the observed price (USD) on the structural price features.

Why a log target: prices are multiplicative (distance x cabin x booking window x airline x
noise), so log-price makes the structure additive for the trees and the noise homoscedastic;
predictions are exponentiated back. Training rows flagged by
:func:`core.cleaning.price_outlier_mask` are dropped first, so glitches teach nothing.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from core import contract, metrics
from core.cleaning import price_outlier_mask
from core.features import category_levels, model_matrix
from core import model_io
from training.params import merge_params

log = logging.getLogger(__name__)

# The price structure the world (and real fare filing) has: a product of per-feature factors, i.e. a
# SUM in log space. Each of these curated features carries one factor: route (distance and route
# competition), cabin x fare class (the bucket ladder is per cabin), airline (price level), nonstop
# (connecting discount), days to departure (booking curve + fences), departure month / weekday /
# hour, days to the nearest origin-country holiday (the holiday window), trip type x length of stay.
# Other curated columns (seats left, device, search volume, ...) carry no price effect of their own
# and only let the trees fit noise, so they are left out.
STRUCTURAL_NUMERIC = ["days_to_departure", "length_of_stay", "departure_month", "departure_weekday", "departure_hour",
                      "days_to_nearest_holiday", "is_nonstop"]
STRUCTURAL_CATEGORICAL = ["route", "airline", "cabin", "fare_class", "trip_type"]
# Features that really interact (the fare-class letter means a bucket within its cabin; the
# short-stay premium only exists for round trips). Every other feature is its own group.
INTERACTING = "cabin+fare_class,trip_type+length_of_stay"


def parse_groups(spec: str) -> list[list[str]]:
    """``"a+b,c+d"`` -> ``[["a", "b"], ["c", "d"]]``."""
    return [[f.strip() for f in g.split("+") if f.strip()] for g in str(spec).split(",") if g.strip()]


def interaction_constraints(features: list[str], interacting: list[list[str]]) -> list[list[str]]:
    """Each interacting group as given, every other feature alone (an additive model in log space).

    With every tree confined to one group, the model is a sum of per-group functions: it
    extrapolates to combinations (route x month x booking window ...) the training period never showed.
    """
    unknown = sorted({f for g in interacting for f in g} - set(features))
    if unknown:
        raise ValueError(f"interacting features not among the model features: {unknown}")
    grouped = {f for g in interacting for f in g}
    return [list(g) for g in interacting] + [[f] for f in features if f not in grouped]


DEFAULTS: dict[str, Any] = {
    # measured on the default world (60 days, ~800k clean training offers, 1 thread): early stopping
    # at ~1,300-2,000 trees, ~1 min; vs the noise-free price the RMSE is ~3 USD (noise floor ~5).
    "n_estimators": 3000,
    "max_depth": 2,  # enough for the (cabin, fare_class) and (trip_type, length_of_stay) pairs
    "learning_rate": 0.5,  # one-feature trees of an additive target converge fast without overfitting
    "subsample": 0.5,
    "colsample_bytree": 1.0,
    "min_child_weight": 5,
    "max_cat_to_onehot": 1,
    "max_bin": 256,
    "early_stopping_rounds": 30,
    "target_transform": "log",
    "numeric": ",".join(STRUCTURAL_NUMERIC),
    "categorical": ",".join(STRUCTURAL_CATEGORICAL),
    "interacting": INTERACTING,  # "" = no interaction constraints at all
    "max_train_rows": 0,  # > 0: random subsample of the clean training rows (rare routes may then go unseen)
    "nthread": 1,  # the executor trains two models at once on 2 cores
    "seed": 42,
}


def _feature_lists(p: dict[str, Any]) -> tuple[list[str], list[str]]:
    numeric = [f.strip() for f in str(p["numeric"]).split(",") if f.strip()]
    categorical = [f.strip() for f in str(p["categorical"]).split(",") if f.strip()]
    unknown = sorted(set(numeric) - set(contract.PRICE_NUMERIC)) + sorted(set(categorical) - set(contract.PRICE_CATEGORICAL))
    if unknown or not (numeric or categorical):
        raise ValueError(f"price features must come from contract.PRICE_NUMERIC / PRICE_CATEGORICAL; unknown: {unknown}")
    return numeric, categorical


def clean_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows the cleaning rule keeps, and how many it removed."""
    mask = price_outlier_mask(df)
    return df.loc[~mask], int(mask.sum())


def train(train_df: pd.DataFrame, validation_df: pd.DataFrame | None, model_dir: str | Path,
          params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit on clean training rows (early stopping on clean validation rows), save UBJ + meta; return meta."""
    p = merge_params(DEFAULTS, params, "price")
    if p["target_transform"] not in ("log", "none"):
        raise ValueError("target_transform must be 'log' or 'none'")
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    train_clean, removed = clean_rows(train_df)
    if len(train_clean) < 10:
        raise ValueError(f"only {len(train_clean)} clean training rows")
    if int(p["max_train_rows"]) > 0 and len(train_clean) > int(p["max_train_rows"]):
        train_clean = train_clean.sample(int(p["max_train_rows"]), random_state=int(p["seed"]))
    log.info("price: %d training rows, %d removed by the cleaning rule", len(train_clean), removed)
    numeric, categorical = _feature_lists(p)
    features = numeric + categorical
    levels = category_levels(train_clean, categorical)
    x_train = model_matrix(train_clean, numeric, categorical, levels)
    y_raw = train_clean[contract.PRICE_TARGET].to_numpy(dtype=float)
    fwd = np.log if p["target_transform"] == "log" else (lambda a: a)

    eval_set, val_clean, val_removed = None, None, 0
    if validation_df is not None and len(validation_df):
        val_clean, val_removed = clean_rows(validation_df)
        x_val = model_matrix(val_clean, numeric, categorical, levels)
        eval_set = [(x_val, fwd(val_clean[contract.PRICE_TARGET].to_numpy(dtype=float)))]

    groups = parse_groups(p["interacting"])
    model = xgb.XGBRegressor(
        interaction_constraints=interaction_constraints(features, groups) if groups else None,
        max_bin=int(p["max_bin"]),
        n_estimators=int(p["n_estimators"]),
        max_depth=int(p["max_depth"]),
        learning_rate=float(p["learning_rate"]),
        subsample=float(p["subsample"]),
        colsample_bytree=float(p["colsample_bytree"]),
        min_child_weight=float(p["min_child_weight"]),
        max_cat_to_onehot=int(p["max_cat_to_onehot"]),
        tree_method="hist",
        enable_categorical=True,
        n_jobs=int(p["nthread"]),
        random_state=int(p["seed"]),
        early_stopping_rounds=int(p["early_stopping_rounds"]) if eval_set else None,
        eval_metric="rmse",
    )
    model.fit(x_train, fwd(y_raw), eval_set=eval_set, verbose=False)
    fit_seconds = time.perf_counter() - t0
    booster = model_io.best_booster(model)
    booster.save_model(str(model_dir / model_io.PRICE_FILE))

    meta: dict[str, Any] = {
        "model": "price",
        "target": contract.PRICE_TARGET,
        "target_transform": p["target_transform"],
        "features": features,
        "numeric": numeric,
        "categorical": categorical,
        "category_levels": levels,
        "files": {"xgb": model_io.PRICE_FILE},
        "hyperparameters": p,
        "trees": int(booster.num_boosted_rounds()),
        "cleaning": {"rule": "core.cleaning.price_outlier_mask", "train_rows_removed": removed,
                     "validation_rows_removed": val_removed},
        "train_rows": int(len(train_clean)),
        "training_seconds": round(fit_seconds, 3),
    }
    model_io.write_meta(model_dir, meta)
    if val_clean is not None and len(val_clean):
        pred = model_io.load(model_dir).predict_price(val_clean)
        scores = metrics.regression_metrics(val_clean[contract.PRICE_TARGET].to_numpy(dtype=float), pred)
        meta["validation_metrics"] = {name: m["value"] for name, m in scores.items()}
        model_io.write_meta(model_dir, meta)
        log.info("price: validation %s", meta["validation_metrics"])
    log.info("price: trained in %.1fs (%s trees)", fit_seconds, meta["trees"])
    return meta

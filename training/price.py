"""Price model: XGBoost regression of the observed price (USD) on the curated offer features.

Choices, each measured on the model matrix (``benchmarks/bench_models.py``; the numbers are in
``docs/models.md``), not read off any generator:

- **Log target.** Fares are filed and adjusted multiplicatively (percent surcharges, percent
  discounts, cabin ratios), so log-price makes relative errors equal across a $90 hop and a $6,000
  first-class fare; predictions are exponentiated back.
- **Features: every column the data contract allows** (``contract.PRICE_NUMERIC`` /
  ``PRICE_CATEGORICAL``); no hand-picked list.
- **Structure chosen by validation in each job** (``structure``): ``additive`` confines every tree
  to one feature (a sum of per-feature curves in log space, i.e. a product of factors, the way fares
  are built from a base fare and percentage adjustments), ``free`` lets trees of ``free_depth``
  combine any features. On short windows the training days show few (departure date x booking
  window x route) combinations and free trees extrapolate badly to the test days' (the matrix,
  seed 1 winter 21 days: 1.5-1.8x the additive model's error); with much data interactions may pay.
  The job fits both on the training days, early-stops each on the validation days and keeps the
  lower validation RMSE. On AWS the same search is a tuning step; here it is cheap.
- **Unseen categories** (a route first searched after the training window): the trees send a value
  they never saw down the missing-value branch, which training never taught (the matrix: 2-5 % of a
  21-day window's test offers, a third of its squared error). ``category_dropout`` blanks that
  share of each many-level categorical (route, airports) in the training rows, so the missing branch
  learns "a route not seen" and distance, origin and destination carry the price level there.
- **Residual trimming** (``trim_sd``): glitch prices that the cleaning rule lets through (a factor
  of 2 can sit inside a route's normal spread) are few but, under a squared loss, pull every curve
  they touch and steer early stopping. A first additive fit marks training and validation rows
  beyond ``trim_sd`` robust SDs of its residuals; the search and the final fit run without them
  (the matrix, 60-day window: 39 such rows in 108k doubled the error against the noise-free price).
- **Refit on training + validation days** (``refit``), with the chosen structure and tree count:
  for a 21-day window (7 train days) that doubles the days the model has seen. The error on short
  windows is bias from dates and routes the training days never showed (a model fitted to the
  noise-free prices of the same rows errs about as much), so more days help most.

Training rows flagged by :func:`core.cleaning.price_outlier_mask` are dropped first, so glitches
teach nothing.
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

STRUCTURES = ("additive", "free")

DEFAULTS: dict[str, Any] = {
    "numeric": ",".join(contract.PRICE_NUMERIC),
    "categorical": ",".join(contract.PRICE_CATEGORICAL),
    # searched on the validation days (a comma list); one value = fixed
    "structure": "additive,free",
    "free_depth": 3,
    "n_estimators": 3000,  # upper bound; early stopping on the validation days picks the count
    "max_depth": 2,  # of an additive tree (one feature: a 4-step piece of its curve per tree)
    "learning_rate": 0.5,  # one-feature trees of a log target converge fast without overfitting
    "free_learning_rate": 0.2,
    "subsample": 0.5,
    "colsample_bytree": 1.0,
    "min_child_weight": 5,
    "max_cat_to_onehot": 1,
    "max_bin": 256,
    "early_stopping_rounds": 30,
    "trim_sd": 4.0,  # > 0: drop final-fit rows whose residual is beyond this many robust SDs, refit
    "category_dropout": 0.1,  # share of each categorical blanked in training rows (see the docstring)
    "dropout_min_levels": 30,  # ... of the categoricals with at least this many levels (route, airports)
    "refit": 1,  # 1: the final model learns from training + validation days
    "search_rows": 200_000,  # > 0: the search fits each candidate on at most this many training rows
    "target_transform": "log",
    "max_train_rows": 0,  # > 0: random subsample of the final fit's rows (rare routes may then go unseen)
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


def structures(spec: Any) -> list[str]:
    """``"additive,free"`` -> the candidate structures (error naming the hyperparameter)."""
    out = [s.strip() for s in str(spec).split(",") if s.strip()]
    bad = [s for s in out if s not in STRUCTURES]
    if bad or not out:
        raise ValueError(f"hyperparameter 'structure' must be a comma list of {STRUCTURES}, got {spec!r}")
    return out


def clean_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows the cleaning rule keeps, and how many it removed."""
    mask = price_outlier_mask(df)
    return df.loc[~mask], int(mask.sum())


def drop_categories(x: pd.DataFrame, categorical: list[str], share: float, min_levels: int, seed: int) -> pd.DataFrame:
    """A copy of the model matrix with ``share`` of each categorical of at least ``min_levels``
    levels set missing at random (few-level columns such as cabin are always known)."""
    if not 0 <= share < 1:
        raise ValueError(f"hyperparameter 'category_dropout' must be in [0, 1), got {share}")
    cols = [c for c in categorical if len(x[c].cat.categories) >= min_levels]
    if share == 0 or not cols:
        return x
    rng = np.random.default_rng(seed)
    x = x.copy()
    for c in cols:
        x[c] = x[c].mask(rng.random(len(x)) < share)
    return x


def _regressor(p: dict[str, Any], structure: str, features: list[str], n_trees: int, stop: bool,
               base_score: float | None = None) -> xgb.XGBRegressor:
    additive = structure == "additive"
    return xgb.XGBRegressor(
        interaction_constraints=[[f] for f in features] if additive else None,
        max_bin=int(p["max_bin"]),
        n_estimators=n_trees,
        max_depth=int(p["max_depth"]) if additive else int(p["free_depth"]),
        learning_rate=float(p["learning_rate"]) if additive else float(p["free_learning_rate"]),
        subsample=float(p["subsample"]),
        colsample_bytree=float(p["colsample_bytree"]),
        min_child_weight=float(p["min_child_weight"]),
        max_cat_to_onehot=int(p["max_cat_to_onehot"]),
        base_score=base_score,
        tree_method="hist",
        enable_categorical=True,
        n_jobs=int(p["nthread"]),
        random_state=int(p["seed"]),
        early_stopping_rounds=int(p["early_stopping_rounds"]) if stop else None,
        eval_metric="rmse",
    )


def trim_mask(residual: np.ndarray, k: float) -> np.ndarray:
    """Rows to keep: residual within ``k`` robust SDs (1.4826 x MAD) of the median residual.

    Glitch prices the cleaning rule lets through (a factor of 2 is within a route's normal spread
    for the rule) still sit far off a model fitted to all rows; a squared loss lets a few dozen of
    them pull every curve they touch (the model matrix: 39 such rows among 108k doubled the error
    against the noise-free price on a 60-day window).
    """
    r = np.asarray(residual, dtype=float)
    med = np.median(r)
    sd = 1.4826 * np.median(np.abs(r - med))
    if not sd > 0:
        return np.ones(len(r), dtype=bool)
    return np.abs(r - med) <= k * sd


def _rmse_usd(booster: xgb.Booster, x: pd.DataFrame, y_usd: np.ndarray, log_target: bool) -> float:
    raw = np.asarray(booster.inplace_predict(x), dtype=float)
    pred = np.exp(raw) if log_target else raw
    return float(np.sqrt(np.mean((pred - y_usd) ** 2)))


def train(train_df: pd.DataFrame, validation_df: pd.DataFrame | None, model_dir: str | Path,
          params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Choose the structure on the validation days, refit on train + validation; save UBJ + meta; return meta.

    Without validation rows the first candidate structure is fitted with ``n_estimators`` trees.
    """
    p = merge_params(DEFAULTS, params, "price")
    if p["target_transform"] not in ("log", "none"):
        raise ValueError("target_transform must be 'log' or 'none'")
    candidates = structures(p["structure"])
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    seed, dropout = int(p["seed"]), float(p["category_dropout"])

    train_clean, removed = clean_rows(train_df)
    if len(train_clean) < 10:
        raise ValueError(f"only {len(train_clean)} clean training rows")
    log.info("price: %d training rows, %d removed by the cleaning rule", len(train_clean), removed)
    numeric, categorical = _feature_lists(p)
    features = numeric + categorical
    log_target = p["target_transform"] == "log"
    fwd = np.log if log_target else (lambda a: a)

    val_clean, val_removed = None, 0
    if validation_df is not None and len(validation_df):
        val_clean, val_removed = clean_rows(validation_df)
        if not len(val_clean):
            val_clean = None

    val_scored = val_clean  # the rule-clean validation rows (untrimmed) for the reported metrics
    search: dict[str, Any] = {"candidates": {}}
    chosen, n_trees, trimmed = candidates[0], int(p["n_estimators"]), 0
    trim_sd = float(p["trim_sd"])
    drop = dict(categorical=categorical, share=dropout, min_levels=int(p["dropout_min_levels"]), seed=seed)
    if val_clean is not None:
        def search_fits(rows: pd.DataFrame, val: pd.DataFrame, names: list[str]) -> dict[str, tuple[float, xgb.Booster, dict]]:
            """Each structure fitted on ``rows`` (at most ``search_rows``), early-stopped on ``val``."""
            if int(p["search_rows"]) > 0 and len(rows) > int(p["search_rows"]):
                rows = rows.sample(int(p["search_rows"]), random_state=seed)
            lv = category_levels(rows, categorical)
            x_fit = drop_categories(model_matrix(rows, numeric, categorical, lv), **drop)
            y_fit = fwd(rows[contract.PRICE_TARGET].to_numpy(dtype=float))
            x_val = model_matrix(val, numeric, categorical, lv)
            y_val = val[contract.PRICE_TARGET].to_numpy(dtype=float)
            out = {}
            for s in names:
                model = _regressor(p, s, features, int(p["n_estimators"]), stop=True, base_score=float(np.median(y_fit)))
                model.fit(x_fit, y_fit, eval_set=[(x_val, fwd(y_val))], verbose=False)
                booster = model_io.best_booster(model)
                out[s] = (_rmse_usd(booster, x_val, y_val, log_target), booster, lv)
            return out

        if trim_sd > 0:
            # glitches the cleaning rule let through, in both splits: they would steer the search
            # (early stopping, the choice) as much as the fit
            _, pre, lv = search_fits(train_clean, val_clean, ["additive"])["additive"]
            keep_t, keep_v = (trim_mask(fwd(d[contract.PRICE_TARGET].to_numpy(dtype=float))
                                        - np.asarray(pre.inplace_predict(model_matrix(d, numeric, categorical, lv)), dtype=float),
                                        trim_sd) for d in (train_clean, val_clean))
            trimmed = int((~keep_t).sum() + (~keep_v).sum())
            train_clean, val_clean = train_clean.loc[keep_t], val_clean.loc[keep_v]
            log.info("price: %d rows beyond %.1f robust SDs of a first additive fit trimmed", trimmed, trim_sd)
        best = np.inf
        for s, (score, booster, _) in search_fits(train_clean, val_clean, candidates).items():
            search["candidates"][s] = {"validation_rmse": round(score, 4), "trees": int(booster.num_boosted_rounds())}
            log.info("price: %s -> validation RMSE %.3f with %d trees", s, score, booster.num_boosted_rounds())
            if score < best:
                best, chosen, n_trees = score, s, int(booster.num_boosted_rounds())
        search.update(chosen=chosen, trees=n_trees, fit_rows=int(min(len(train_clean), int(p["search_rows"]) or len(train_clean))))

    refit = bool(int(p["refit"])) and val_clean is not None
    final_rows = pd.concat([train_clean, val_clean], ignore_index=True) if refit else train_clean
    if int(p["max_train_rows"]) > 0 and len(final_rows) > int(p["max_train_rows"]):
        final_rows = final_rows.sample(int(p["max_train_rows"]), random_state=seed)
    levels = category_levels(final_rows, categorical)
    x_final = model_matrix(final_rows, numeric, categorical, levels)
    y_final = fwd(final_rows[contract.PRICE_TARGET].to_numpy(dtype=float))
    x_drop = drop_categories(x_final, **drop)

    def fit(keep: np.ndarray | slice = slice(None)) -> xgb.Booster:
        model = _regressor(p, chosen, features, n_trees, stop=False, base_score=float(np.median(y_final[keep])))
        model.fit(x_drop[keep], y_final[keep], verbose=False)
        return model.get_booster()

    booster = fit()
    if trim_sd > 0 and val_clean is None:  # no search: fit, trim, refit
        keep = trim_mask(y_final - np.asarray(booster.inplace_predict(x_final), dtype=float), trim_sd)
        trimmed = int((~keep).sum())
        if trimmed:
            booster = fit(keep)
            log.info("price: %d rows beyond %.1f robust SDs of the first fit trimmed, refitted", trimmed, trim_sd)
    fit_seconds = time.perf_counter() - t0
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
        "search": search,
        "structure": chosen,
        "refit_on_validation": refit,
        "trees": int(booster.num_boosted_rounds()),
        "cleaning": {"rule": "core.cleaning.price_outlier_mask", "train_rows_removed": removed,
                     "validation_rows_removed": val_removed, "trimmed_by_residual": trimmed},
        "train_rows": int(len(final_rows) if val_clean is not None else len(final_rows) - trimmed),
        "training_seconds": round(fit_seconds, 3),
    }
    model_io.write_meta(model_dir, meta)
    if val_scored is not None:
        # with a refit the validation days are in the final model: this is its fit, the search's
        # validation RMSE (``search``) is the honest out-of-sample figure
        pred = model_io.load(model_dir).predict_price(val_scored)
        scores = metrics.regression_metrics(val_scored[contract.PRICE_TARGET].to_numpy(dtype=float), pred)
        meta["validation_metrics"] = {name: m["value"] for name, m in scores.items()}
        model_io.write_meta(model_dir, meta)
        log.info("price: validation %s", meta["validation_metrics"])
    log.info("price: %s structure, trained in %.1fs (%s trees)", chosen, fit_seconds, meta["trees"])
    return meta

"""Price model: XGBoost regression of the observed price (USD) on the curated offer features.

Choices, each measured on the model matrix (``benchmarks/bench_models.py``; the numbers are in
``docs/models.md``), not read off any generator:

- **Log target.** Fares are filed and adjusted multiplicatively (percent surcharges, percent
  discounts, cabin ratios), so log-price makes relative errors equal across a $90 hop and a $6,000
  first-class fare; predictions are exponentiated back.
- **Features: every column the data contract allows** (``contract.PRICE_NUMERIC`` /
  ``PRICE_CATEGORICAL``); no hand-picked list.
- **Structure: one-feature (additive) trees**, a sum of per-feature curves in log space, i.e. a
  product of factors, the way fares are built from a base fare and percentage adjustments.
  ``structure`` may list ``free`` too (trees of ``free_depth`` over any features); the job then
  fits each on the training days and keeps the lower validation RMSE. It is not searched by
  default: on the matrix free trees never won (1.5-4x the additive error on 21-day windows, where
  the training days show few date x booking-window x route combinations) and the search cost a fit.
- **Tree count by early stopping on the validation days**; no row subsampling per tree
  (``subsample`` 1.0): with 0.5 the 21-day cells' error against the noise-free price was 1.7x the
  noise floor, with 1.0 about 1.0x (a rare route's curve, fitted from half its rows per tree, is noise).
- **Bounded, equal sample sizes** (``search_rows`` = ``max_train_rows``): the tree count chosen on
  ``search_rows`` training rows is used for a final fit of as many rows. On the default world a
  larger final fit with that count was worse (one stage: 100k rows 0.46x the floor, 200k 0.63x, all
  850k 0.76x; two stages: 100k 0.40x, 50k 0.42x) and its cost grows with the rows (issue 11:
  bounded training cost), so 50k.
- **Unseen categories** (a route first searched after the training window): the trees send a value
  they never saw down the missing-value branch, which training never taught (the matrix: 2-5 % of a
  21-day window's test offers, a third of its squared error). ``category_dropout`` blanks that
  share of each many-level categorical (route, airports) in the training rows, so the missing branch
  learns "a route not seen" and distance, origin and destination carry the price level there.
- **Two stages: the market's attributes first, its identity on top** (``first_stage_without``,
  default route, origin, destination). A first stage of trees, early-stopped on the validation
  days, is fitted without those columns, so distance, duration, stops, domestic/international and
  search volume carry everything they can; the second stage adds the identities' own deviations.
  An RM analyst prices a market never sold before from comparable markets in the same way. Fitted
  together, the identities absorb the level of each market (a route with one long-haul sibling puts
  that sibling's level on its route code, not on distance), and a route first searched after the
  training window then gets a level from nothing (the matrix: on the unseen seed 11, 21 days, 2.4x
  / 2.0x the noise floor in one stage, 1.7x / 1.3x in two; one unseen long-haul route had 68 % of
  the squared error). The final fit keeps both stages' tree counts.
- **Residual trimming** (``trim_sd``): glitch prices that the cleaning rule lets through (a factor
  of 2 can sit inside a route's normal spread) are few but, under a squared loss, pull every curve
  they touch and steer early stopping. A rough additive fit (``trim_trees`` trees on at most
  ``trim_rows`` rows: a glitch is off by log 0.7-2.3, a normal offer by ~0.02) marks training and
  validation rows beyond ``trim_sd`` robust SDs of its residuals; the search and the final fit run
  without them (the matrix, 60-day window: 39 such rows in 108k doubled the error against the
  noise-free price).
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
from typing import Any, Callable

import numpy as np
import pandas as pd
import xgboost as xgb

from core import contract, metrics
from core.cleaning import price_outlier_mask
from core.features import category_levels, model_matrix, search_date_of
from core import model_io
from training.params import merge_params

log = logging.getLogger(__name__)

STRUCTURES = ("additive", "free")

DEFAULTS: dict[str, Any] = {
    "numeric": ",".join(contract.PRICE_NUMERIC),
    "categorical": ",".join(contract.PRICE_CATEGORICAL),
    # searched on the validation days (a comma list); one value = fixed
    "structure": "additive",
    "free_depth": 3,
    "n_estimators": 3000,  # upper bound; early stopping on the validation days picks the count
    "max_depth": 2,  # of an additive tree (one feature: a 4-step piece of its curve per tree)
    "learning_rate": 0.5,  # one-feature trees of a log target converge fast without overfitting
    "free_learning_rate": 0.2,
    "subsample": 1.0,  # row sampling per tree: 0.5 doubled the 21-day cells' error (docs/models.md)
    "colsample_bytree": 1.0,
    "min_child_weight": 5,
    "max_cat_to_onehot": 1,
    "max_bin": 256,
    "early_stopping_rounds": 30,
    "trim_sd": 4.0,  # > 0: drop final-fit rows whose residual is beyond this many robust SDs, refit
    "category_dropout": 0.1,  # share of each categorical blanked in training rows (see the docstring)
    "dropout_min_levels": 30,  # ... of the categoricals with at least this many levels (route, airports)
    # categoricals a first stage of trees is fitted without (see the docstring); "" = one stage
    "first_stage_without": "route,origin,destination",
    "refit": 1,  # 1: the final model learns from training + validation days
    "search_rows": 50_000,  # > 0: the search fits each candidate on at most this many training rows
    # > 0: early stopping scores at most this many validation rows each round (scoring all of the
    # default world's 110k rows cost more than the fit itself; with two stages 30k rows still cost
    # twice the final fit, 10k stopped as well: 0.415x against 0.416x); the chosen model is scored on all
    "eval_rows": 10_000,
    "trim_rows": 100_000,  # > 0: the rough fit that finds glitches to trim sees at most this many rows
    "trim_trees": 200,
    "target_transform": "log",
    # > 0: random sample of the final fit's rows; as many as the search's, so the tree count chosen
    # there fits (the default world, one stage: 100k/100k 0.46x the floor, 200k/200k 0.63x, all rows
    # 0.76x; two stages: 100k 0.40x, 50k 0.42x at 30 % less CPU)
    "max_train_rows": 50_000,
    "nthread": 1,  # the executor trains two models at once on 2 cores
    "seed": 42,
    # > 0: the newest this many training days are a new market (set by the retraining rule after a
    # drift alarm): the older days' prices are carried over to it before the fit (``carry_over``)
    "regime_days": 0,
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


def without(x: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A copy of the model matrix with ``columns`` (categoricals) all missing: a tree cannot split on them."""
    x = x.copy()
    for c in columns:
        x[c] = pd.Categorical([None] * len(x), categories=x[c].cat.categories)
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


def at_most(rows: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``rows``, or a random sample of ``n`` of them when ``n > 0`` and there are more."""
    return rows.sample(n, random_state=seed) if 0 < n < len(rows) else rows


def regime_candidates(spec: Any, train_days: Callable[[], int]) -> list[int]:
    """``regime_days`` -> the candidate counts of newest days: ``0``/``3`` -> that one; ``auto`` ->
    0 (no change) to ``train_days() - 1``, chosen on the validation days (error naming the hyperparameter)."""
    text = str(spec).strip().lower()
    if text == "auto":
        return list(range(0, max(train_days(), 1)))
    try:
        k = int(float(text))
    except ValueError:
        raise ValueError(f"regime_days must be a whole number of days or 'auto', got {spec!r}") from None
    if k < 0:
        raise ValueError(f"regime_days must be >= 0, got {k}")
    return [k]


def carry_over(train_clean: pd.DataFrame, day: pd.Series, val_clean: pd.DataFrame | None, regime_days: int,
               fit: Callable[..., tuple[xgb.Booster, dict, int]], matrix: Callable[[pd.DataFrame, dict], pd.DataFrame],
               fwd: Callable, inv: Callable, trees: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Training rows with the prices of days before the newest ``regime_days`` carried over to the
    market of those days, and a summary. ``day``: each training row's search date.

    Why: a retraining started by a drift alarm (a fuel surcharge on some routes, a new entrant) has
    two or three days of the new market in its window. Trained as they are, the older days outvote
    them and the model quotes the old market (the replay: RMSE ~100 after a 40 % fare hike against 8
    before). Instead: an additive fit on the older days is the reference; correction trees boosted
    on top of its margin learn, from the newest days, how the market moved (early-stopped on the
    validation days, which come after them); the older days' targets are moved by that correction,
    and the model is then fitted as usual on all days, so the old days still teach the routes,
    cabins and booking curves the new days are too few to show. Without a change, early stopping
    keeps (almost) no correction and the targets stay put.
    """
    new = (day >= day.max() - pd.Timedelta(days=regime_days - 1)).to_numpy()
    info: dict[str, Any] = {"regime_days": regime_days, "new_rows": int(new.sum()), "old_rows": int((~new).sum())}
    if val_clean is None or new.all() or (~new).sum() < 10 or new.sum() < 10:
        return train_clean, {**info, "correction_trees": 0, "skipped": "needs older days, newest days and validation days"}
    old_rows, new_rows = train_clean.loc[~new], train_clean.loc[new]
    reference, lv, _ = fit(old_rows, "additive", trees, staged=False)
    margin = lambda d: np.asarray(reference.inplace_predict(matrix(d, lv)), dtype=float)  # noqa: E731
    correction, clv, _ = fit(new_rows, "additive", None, val=val_clean, base_margins=(margin(new_rows), margin(val_clean)))
    x_old = matrix(old_rows, clv)
    shift = np.asarray(correction.inplace_predict(x_old, base_margin=np.zeros(len(x_old))), dtype=float)
    moved = train_clean.copy()
    y_old = old_rows[contract.PRICE_TARGET].to_numpy(dtype=float)
    moved.loc[~new, contract.PRICE_TARGET] = inv(fwd(y_old) + shift)
    info.update(correction_trees=int(correction.num_boosted_rounds()),
                mean_shift=round(float(np.mean(shift)), 5), max_abs_shift=round(float(np.max(np.abs(shift))), 5))
    return moved, info


def train(train_df: pd.DataFrame, validation_df: pd.DataFrame | None, model_dir: str | Path,
          params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Trim glitches with a rough fit, choose the structure and tree count on the validation days,
    refit on train + validation; save UBJ + meta; return meta.

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
    drop = dict(categorical=categorical, share=dropout, min_levels=int(p["dropout_min_levels"]), seed=seed)

    val_clean, val_removed = None, 0
    if validation_df is not None and len(validation_df):
        val_clean, val_removed = clean_rows(validation_df)
        if not len(val_clean):
            val_clean = None
    seconds: dict[str, float] = {}
    val_scored = val_clean  # the rule-clean validation rows (untrimmed) for the reported metrics

    withheld = [c.strip() for c in str(p["first_stage_without"]).split(",") if c.strip()]
    if set(withheld) - set(categorical):
        raise ValueError(f"hyperparameter 'first_stage_without' must name price categoricals, got {p['first_stage_without']!r}")

    def fit(rows: pd.DataFrame, structure: str, n_trees: int | None, val: pd.DataFrame | None = None,
            lv: dict | None = None, first: int | None = None, staged: bool = True,
            base_margins: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[xgb.Booster, dict, int]:
        """One model on ``rows``; its booster, category levels and first-stage tree count.

        With ``withheld`` columns (and ``staged``) a first stage of trees is fitted without them,
        then the rest with every feature on top. ``val`` given: each stage is early-stopped on it
        (``n_trees`` bounds each; None: ``n_estimators``); else ``first`` trees without and
        ``n_trees`` in all. ``base_margins`` (rows', val's): one stage boosted on top of them.
        """
        lv = lv or category_levels(rows, categorical)
        x = drop_categories(model_matrix(rows, numeric, categorical, lv), **drop)
        y = fwd(rows[contract.PRICE_TARGET].to_numpy(dtype=float))
        n_trees = int(p["n_estimators"]) if n_trees is None else n_trees
        base, stop = (0.0 if base_margins is not None else float(np.median(y))), val is not None
        xv = model_matrix(val, numeric, categorical, lv) if stop else None
        yv = fwd(val[contract.PRICE_TARGET].to_numpy(dtype=float)) if stop else None
        prior, n_first = None, 0
        if staged and base_margins is None and withheld and (stop or first):
            m1 = _regressor(p, structure, features, n_trees if stop else int(first), stop, base_score=base)
            m1.fit(without(x, withheld), y, verbose=False,
                   **({"eval_set": [(without(xv, withheld), yv)]} if stop else {}))
            prior = model_io.best_booster(m1)
            n_first = int(prior.num_boosted_rounds())
        rest = n_trees if stop else max(n_trees - n_first, 1)
        model = _regressor(p, structure, features, rest, stop, base_score=base)
        margins = {} if base_margins is None else {"base_margin": base_margins[0], "base_margin_eval_set": [base_margins[1]]}
        model.fit(x, y, xgb_model=prior, verbose=False, **({"eval_set": [(xv, yv)]} if stop else {}), **margins)
        return model_io.best_booster(model), lv, n_first

    inv = np.exp if log_target else (lambda a: a)
    matrix = lambda d, lv: model_matrix(d, numeric, categorical, lv)  # noqa: E731
    trim_sd = float(p["trim_sd"])

    def trim(rows: pd.DataFrame, val: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
        """Glitches the cleaning rule let through, in both splits: they would steer the search (early
        stopping, the choice) as much as the fit. A rough additive fit on a sample finds them."""
        if trim_sd <= 0:
            return rows, val, 0
        rough, lv, _ = fit(at_most(rows, int(p["trim_rows"]), seed), "additive", int(p["trim_trees"]), staged=False)

        def keep(d: pd.DataFrame) -> np.ndarray:
            resid = fwd(d[contract.PRICE_TARGET].to_numpy(dtype=float)) - np.asarray(rough.inplace_predict(matrix(d, lv)), dtype=float)
            return trim_mask(resid, trim_sd)

        keep_t = keep(rows)
        keep_v = keep(val) if val is not None else np.ones(0, dtype=bool)
        return rows.loc[keep_t], (val.loc[keep_v] if val is not None else None), int((~keep_t).sum() + (~keep_v).sum())

    # Candidates: (regime days, structure). For each regime candidate, the older days' prices are
    # carried over to the newest days' market (0: as they are), glitches are trimmed, and each
    # structure is fitted with early stopping on the validation days; the lowest validation RMSE wins.
    # Only the best candidate's rows are kept (each candidate's carried-over copy is as large as the window).
    day = search_date_of(train_clean) if str(p["regime_days"]).strip() not in ("0", "0.0") else None
    regimes = regime_candidates(p["regime_days"], lambda: day.nunique())
    search: dict[str, Any] = {"candidates": {}}
    best = (np.inf, regimes[0], candidates[0], int(p["n_estimators"]), None)
    chosen_rows: tuple[pd.DataFrame, pd.DataFrame | None, int, dict] | None = None
    for k in regimes:
        rows_k, regime_k = (carry_over(train_clean, day, val_clean, k, fit, matrix, fwd, inv, int(p["trim_trees"]))
                            if k > 0 else (train_clean, {}))  # fmt: skip
        prepared = (*trim(rows_k, val_clean), regime_k)
        if chosen_rows is None:
            chosen_rows = prepared  # the first candidate, when nothing can be scored
        rows_t, val_t = prepared[0], prepared[1]
        if val_t is None or not len(val_t):
            continue
        rows = at_most(rows_t, int(p["search_rows"]), seed)
        y_val = val_t[contract.PRICE_TARGET].to_numpy(dtype=float)
        for s in candidates:
            booster, lv, first = fit(rows, s, int(p["n_estimators"]), val=at_most(val_t, int(p["eval_rows"]), seed))
            score = _rmse_usd(booster, matrix(val_t, lv), y_val, log_target)
            name = s if k == 0 else f"{s}+regime{k}"
            search["candidates"][name] = {"validation_rmse": round(score, 4), "trees": int(booster.num_boosted_rounds()),
                                          "first_stage_trees": first}
            log.info("price: %s -> validation RMSE %.3f with %d trees", name, score, booster.num_boosted_rounds())
            if score < best[0]:
                best = (score, k, s, int(booster.num_boosted_rounds()), first)
                chosen_rows = prepared
        search["fit_rows"] = int(len(rows))
    _, chosen_regime, chosen, n_trees, n_first = best
    train_clean, val_clean, trimmed, regime = chosen_rows
    if val_clean is not None:
        search.update(chosen=chosen, trees=n_trees, first_stage_trees=n_first, regime_days=chosen_regime)
    if regime:
        log.info("price: regime carry-over %s", regime)
    seconds["trim_and_search"] = time.perf_counter() - t0

    # 3. the final model: the chosen structure and tree count, on training + validation days
    refit = bool(int(p["refit"])) and val_clean is not None
    final_rows = pd.concat([train_clean, val_clean], ignore_index=True) if refit else train_clean
    final_rows = at_most(final_rows, int(p["max_train_rows"]), seed)
    booster, levels, _ = fit(final_rows, chosen, n_trees, first=n_first)
    fit_seconds = time.perf_counter() - t0
    seconds["final"] = fit_seconds - sum(seconds.values())
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
        "regime": regime,
        "trees": int(booster.num_boosted_rounds()),
        "cleaning": {"rule": "core.cleaning.price_outlier_mask", "train_rows_removed": removed,
                     "validation_rows_removed": val_removed, "trimmed_by_residual": trimmed},
        "train_rows": int(len(final_rows)),
        "training_seconds": round(fit_seconds, 3),
        "stage_seconds": {k: round(v, 3) for k, v in seconds.items()},
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

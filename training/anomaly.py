"""Anomaly model: an Isolation Forest over price-relative features, with a supervised threshold.

The forest is unsupervised; its main input is the log residual of the observed price against a learned
expected price (a nested additive price model fitted on rule-clean training offers), so it learns what normal
prices look like relative to their route, competitors and booking window. Only the alert
threshold uses labels: confirmed incidents (the ``labels`` channel; in this world the truth table
stands in for them) on the validation split pick the lowest score cut that keeps precision at
the target, i.e. the highest recall an analyst can trust. Labels are never features.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from core.cleaning import price_outlier_mask
from core.features import ANOMALY_DEFAULT_FEATURES, ANOMALY_DERIVED, anomaly_frame, fit_anomaly_norms
from core import model_io
from training import price as price_model
from training.params import merge_params

log = logging.getLogger(__name__)

# The learned norm: the price model's additive structure, fitted quickly (a glitch is a factor of
# 2-10, log 0.69-2.3, against a residual of ~0.02-0.03 for normal offers, so a rough fit suffices).
NORM_PARAMS: dict[str, Any] = {"n_estimators": 400, "learning_rate": 0.5, "subsample": 0.3, "early_stopping_rounds": 20}
NORM_DIR = "norm"

DEFAULTS: dict[str, Any] = {
    "norm_n_estimators": NORM_PARAMS["n_estimators"],
    "n_estimators": 300,
    "max_samples": 512,
    "max_train_rows": 200_000,
    "forest_rows": "all",  # "all" training offers or only the rule-"clean" ones
    "target_precision": 0.90,
    "precision_confidence_z": 1.64,
    "features": ",".join(ANOMALY_DEFAULT_FEATURES),
    "nthread": 1,
    "seed": 42,
}


def join_labels(offers: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """``is_anomaly`` per offer from the labels table (by ``offer_id``); unknown offers count as normal."""
    for name, frame in (("offers", offers), ("labels", labels)):
        if "offer_id" not in frame.columns:
            raise ValueError(f"{name} need an 'offer_id' column")
    if "is_anomaly" not in labels.columns:
        raise ValueError("labels need an 'is_anomaly' column")
    lab = labels.drop_duplicates("offer_id").set_index("offer_id")["is_anomaly"].astype("boolean")
    return offers["offer_id"].map(lab).fillna(False).to_numpy(dtype=bool)


def choose_threshold(scores: np.ndarray, y: np.ndarray, target_precision: float, z: float = 1.64) -> dict[str, Any]:
    """Highest-recall score threshold whose precision is >= target with confidence.

    Among cuts with that recall, the highest is kept (same alerts caught, fewest false alarms).

    The precision of the alerts above a cut is a proportion estimated from a few hundred incidents,
    so the cut must clear the target by its sampling error: the Wilson lower bound (``z`` standard
    errors, 1.64 = one-sided 95 %) must reach ``target_precision`` (``z=0``: the plain estimate).
    When no cut reaches it, the most precise one is kept and ``target_met`` is False.
    """
    y = np.asarray(y, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    if len(scores) != len(y):
        raise ValueError("scores and labels differ in length")
    if y.sum() == 0:
        raise ValueError("no labelled anomalies in the validation split: cannot choose a threshold")
    order = np.argsort(-scores, kind="stable")
    s_sorted = scores[order]
    tp = np.cumsum(y[order])
    n = np.arange(1, len(y) + 1)
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # a cut flags every row with score >= it
    tp, n, cuts = tp[last_of_tie], n[last_of_tie], s_sorted[last_of_tie]
    p = tp / n
    lower = (p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    ok = np.flatnonzero(lower >= target_precision)
    met = ok.size > 0
    i = int(ok.max()) if met else int(np.argmax(lower))
    # of the cuts with that recall, the highest (lower cuts only add false alarms)
    i = int(np.flatnonzero(tp == tp[i])[0])
    return {"threshold": float(cuts[i]), "precision": float(p[i]), "precision_lower_bound": float(lower[i]),
            "recall": float(tp[i] / y.sum()), "target_precision": float(target_precision), "z": float(z),
            "target_met": bool(met)}


def train(train_df: pd.DataFrame, validation_df: pd.DataFrame, model_dir: str | Path, labels: pd.DataFrame,
          params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit the forest on clean training offers, pick the threshold on labelled validation offers; save skops + meta."""
    p = merge_params(DEFAULTS, params, "anomaly")
    features = [f.strip() for f in str(p["features"]).split(",") if f.strip()]
    unknown = sorted(set(features) - set(ANOMALY_DERIVED))
    if unknown or not features:
        raise ValueError(f"unknown anomaly features {unknown}; choose from {ANOMALY_DERIVED}")
    if validation_df is None or validation_df.empty:
        raise ValueError("the anomaly model needs a validation split to choose its threshold")
    if labels is None or labels.empty:
        raise ValueError("the anomaly model needs the 'labels' channel (offer_id, is_anomaly)")
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    mask = price_outlier_mask(train_df)
    norm_meta = price_model.train(
        train_df, validation_df, model_dir / NORM_DIR,
        {**NORM_PARAMS, "n_estimators": int(p["norm_n_estimators"]), "nthread": int(p["nthread"]), "seed": int(p["seed"])},
    )
    norm_model = model_io.load(model_dir / NORM_DIR)
    # The norm is learned on rule-clean rows only; the forest sees every training offer: fitted on
    # clean rows only, it would score everything beyond the clean range alike (a 1.5x and a 10x glitch
    # land in the same edge leaf as the most extreme normal offer), so glitches must be in its sample.
    clean = train_df if p["forest_rows"] == "all" else train_df.loc[~mask]
    if len(clean) > int(p["max_train_rows"]):
        clean = clean.sample(int(p["max_train_rows"]), random_state=int(p["seed"]))
    norms = fit_anomaly_norms(train_df.loc[~mask])
    expected = np.asarray(norm_model._models["xgb"].inplace_predict(norm_model.matrix(clean)), dtype=float)
    x = anomaly_frame(clean, norms, expected)[features].to_numpy()
    forest = IsolationForest(
        n_estimators=int(p["n_estimators"]),
        max_samples=min(int(p["max_samples"]), len(x)),
        contamination="auto",
        n_jobs=int(p["nthread"]),
        random_state=int(p["seed"]),
    ).fit(x)
    fit_seconds = time.perf_counter() - t0

    import skops.io as sio

    sio.dump(forest, model_dir / model_io.ANOMALY_FILE)
    meta: dict[str, Any] = {
        "model": "anomaly",
        "features": features,
        "source_columns": ["price_usd", "price_vs_route_median", "price_vs_competitor_median", "competitor_min_price_usd",
                           "price_rank_in_search", "num_offers_in_search", "cabin", "trip_type", "days_to_departure",
                           "airline", "is_nonstop"] + [c for c in norm_meta["features"] if c not in ("cabin", "trip_type", "days_to_departure", "airline", "is_nonstop")],
        "norms": norms,
        "files": {"iforest": model_io.ANOMALY_FILE, "norm": NORM_DIR},
        "norm_model": {"kind": "price (nested)", "trees": norm_meta["trees"],
                       "validation_metrics": norm_meta.get("validation_metrics"),
                       "training_seconds": norm_meta["training_seconds"]},
        "hyperparameters": p,
        "score": "negated IsolationForest.score_samples: higher = more anomalous",
        "threshold": None,
        "train_rows": int(len(clean)),
        "train_rows_removed_by_rule": int(mask.sum()),
        "training_seconds": round(fit_seconds, 3),
    }
    model_io.write_meta(model_dir, {**meta, "threshold": 0.0})
    loaded = model_io.load(model_dir)
    y_val = join_labels(validation_df, labels)
    chosen = choose_threshold(loaded.anomaly_score(validation_df), y_val, float(p["target_precision"]),
                              float(p["precision_confidence_z"]))
    meta["threshold"] = chosen["threshold"]
    meta["validation"] = {**chosen, "positives": int(y_val.sum()), "rows": int(len(y_val))}
    model_io.write_meta(model_dir, meta)
    log.info("anomaly: threshold %.4f, validation precision %.3f recall %.3f (target met: %s)",
             chosen["threshold"], chosen["precision"], chosen["recall"], chosen["target_met"])
    if not chosen["target_met"]:
        log.warning("anomaly: no threshold reaches precision %.2f on validation", p["target_precision"])
    return meta

"""Anomaly model: an Isolation Forest over price-relative features, with a supervised threshold.

The forest is unsupervised; its main input is the log residual of the observed price against a learned
expected price (a nested additive price model fitted on rule-clean training offers), so it learns what normal
prices look like relative to their route, competitors and booking window. Only the alert
threshold uses labels: confirmed incidents (the ``labels`` channel; in this world the truth table
stands in for them) on the validation split pick the lowest score cut that keeps precision at
the target, i.e. the highest recall an analyst can trust. Labels are never features.

The labels are the price-integrity team's incident feed (``core.labels``): partial, delayed
and slightly wrong. Validation offers whose review window is still open are left out. Precision
of a cut is measured on its reviewed flags (confirmed vs cleared), and a cut is only eligible when
at least ``min_reviewed_share`` of its flags were reviewed: a cut that flags many offers nobody
reviewed cannot be judged, however good its reviewed part looks. Recall is over the confirmed
incidents. A complete table (``offer_id``, ``is_anomaly``: every offer reviewed) is taken as is.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from core import labels as incident_labels
from core import model_io
from core.cleaning import price_outlier_mask
from core.features import ANOMALY_DEFAULT_FEATURES, ANOMALY_DERIVED, anomaly_frame, fit_anomaly_norms
from training import price as price_model
from training.params import merge_params

log = logging.getLogger(__name__)

# The learned norm: the price model's additive structure, fitted quickly (a glitch is a factor of
# 2-10, log 0.69-2.3, against a residual of ~0.02-0.03 for normal offers, so a rough fit suffices).
# Additive only, and no refit on the validation days: the threshold is chosen on the validation
# offers' scores, which must be out of sample for the norm as they will be for new offers.
# One stage and 100k rows: the price model's defaults before its two-stage fit (issue 14), pinned
# here so the norm (and its threshold) do not move with them.
NORM_PARAMS: dict[str, Any] = {"n_estimators": 400, "learning_rate": 0.5, "subsample": 0.3, "early_stopping_rounds": 20,
                               "structure": "additive", "refit": 0, "first_stage_without": "",
                               "search_rows": 100_000, "max_train_rows": 100_000}
NORM_DIR = "norm"

DEFAULTS: dict[str, Any] = {
    "norm_n_estimators": NORM_PARAMS["n_estimators"],
    "n_estimators": 300,
    "max_samples": 512,
    "max_train_rows": 200_000,
    "forest_rows": "all",  # "all" training offers or only the rule-"clean" ones
    "target_precision": 0.90,
    "precision_confidence_z": 1.64,
    "min_reviewed_share": incident_labels.MIN_REVIEWED_SHARE,
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


def choose_threshold(scores: np.ndarray, y: np.ndarray, target_precision: float, z: float = 1.64,
                     reviewed: np.ndarray | None = None, min_reviewed_share: float = 0.0) -> dict[str, Any]:
    """Highest-recall score threshold whose precision is >= target with confidence.

    Among cuts with that recall, the highest is kept (same alerts caught, fewest false alarms).

    The precision of the alerts above a cut is a proportion estimated from a few hundred incidents,
    so the cut must clear the target by its sampling error: the Wilson lower bound (``z`` standard
    errors, 1.64 = one-sided 95 %) must reach ``target_precision`` (``z=0``: the plain estimate).
    When no cut reaches it, the most precise one is kept and ``target_met`` is False.

    ``reviewed`` (default: every row) marks the rows whose label is a verdict; precision counts
    only those, and a cut is eligible only when at least ``min_reviewed_share`` of its flags are
    reviewed (if no cut is, the one with the largest reviewed share is kept, ``target_met`` False).
    """
    y = np.asarray(y, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    reviewed = np.ones(len(y), dtype=bool) if reviewed is None else np.asarray(reviewed, dtype=bool)
    if not len(scores) == len(y) == len(reviewed):
        raise ValueError("scores, labels and the reviewed mask differ in length")
    if (y & ~reviewed).any():
        raise ValueError("a positive label must be a reviewed one")
    if y.sum() == 0:
        raise ValueError("no labelled anomalies in the validation split: cannot choose a threshold")
    order = np.argsort(-scores, kind="stable")
    s_sorted = scores[order]
    tp = np.cumsum(y[order])
    nrev = np.cumsum(reviewed[order])
    flagged = np.arange(1, len(y) + 1)
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # a cut flags every row with score >= it
    tp, n, flagged, cuts = tp[last_of_tie], nrev[last_of_tie], flagged[last_of_tie], s_sorted[last_of_tie]
    share = n / flagged
    n_safe = np.maximum(n, 1)
    p = tp / n_safe
    lower = (p + z * z / (2 * n_safe) - z * np.sqrt(p * (1 - p) / n_safe + z * z / (4 * n_safe * n_safe))) / (1 + z * z / n_safe)
    lower = np.where(n > 0, lower, 0.0)
    eligible = share >= min_reviewed_share
    ok = np.flatnonzero((lower >= target_precision) & eligible)
    met = ok.size > 0
    if met:
        i = int(ok.max())
    elif eligible.any():
        i = int(np.flatnonzero(eligible)[np.argmax(lower[eligible])])
    else:
        i = int(np.argmax(share))
    # of the cuts with that recall, the highest (lower cuts only add false alarms)
    i = int(np.flatnonzero(tp == tp[i])[0])
    return {"threshold": float(cuts[i]), "precision": float(p[i]), "precision_lower_bound": float(lower[i]),
            "recall": float(tp[i] / y.sum()), "reviewed_share": float(share[i]), "flagged": int(flagged[i]),
            "target_precision": float(target_precision), "z": float(z),
            "min_reviewed_share": float(min_reviewed_share), "target_met": bool(met)}


def validation_labels(offers: pd.DataFrame, labels: "incident_labels.IncidentFeed | pd.DataFrame") -> dict[str, Any]:
    """What the labels say about each validation offer: ``usable`` rows (window closed or a verdict),
    ``y`` (confirmed incident) and ``reviewed`` (a verdict), aligned with ``offers``, plus counts."""
    if isinstance(labels, incident_labels.IncidentFeed):
        status = labels.status(offers)
        return {"usable": status != incident_labels.OPEN, "y": status == incident_labels.INCIDENT,
                "reviewed": np.isin(status, (incident_labels.INCIDENT, incident_labels.CLEARED)),
                "counts": incident_labels.status_counts(status), "source": "incident feed"}
    y = join_labels(offers, labels)
    return {"usable": np.ones(len(y), dtype=bool), "y": y, "reviewed": np.ones(len(y), dtype=bool),
            "counts": {"incident": int(y.sum()), "cleared": int((~y).sum())}, "source": "complete labels"}


def train(train_df: pd.DataFrame, validation_df: pd.DataFrame, model_dir: str | Path,
          labels: incident_labels.IncidentFeed | pd.DataFrame, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit the forest on clean training offers, pick the threshold on labelled validation offers; save skops + meta."""
    p = merge_params(DEFAULTS, params, "anomaly")
    features = [f.strip() for f in str(p["features"]).split(",") if f.strip()]
    unknown = sorted(set(features) - set(ANOMALY_DERIVED))
    if unknown or not features:
        raise ValueError(f"unknown anomaly features {unknown}; choose from {ANOMALY_DERIVED}")
    if validation_df is None or validation_df.empty:
        raise ValueError("the anomaly model needs a validation split to choose its threshold")
    if labels is None or (isinstance(labels, pd.DataFrame) and labels.empty):
        raise ValueError("the anomaly model needs the 'labels' channel (the incident feed, labels/incidents/)")
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
    lab = validation_labels(validation_df, labels)
    use = lab["usable"]
    if not use.any():
        raise ValueError("no validation offer has a closed review window in the incident feed: cannot choose a threshold")
    chosen = choose_threshold(loaded.anomaly_score(validation_df.loc[use]), lab["y"][use], float(p["target_precision"]),
                              float(p["precision_confidence_z"]), lab["reviewed"][use], float(p["min_reviewed_share"]))
    meta["threshold"] = chosen["threshold"]
    meta["validation"] = {**chosen, "positives": int(lab["y"][use].sum()), "rows": int(use.sum()),
                          "labels": lab["source"], "label_status": lab["counts"]}
    model_io.write_meta(model_dir, meta)
    log.info("anomaly: threshold %.4f, validation precision %.3f recall %.3f (target met: %s)",
             chosen["threshold"], chosen["precision"], chosen["recall"], chosen["target_met"])
    if not chosen["target_met"]:
        log.warning("anomaly: no threshold reaches precision %.2f on validation", p["target_precision"])
    return meta

"""Leakage check: a model must not see its label, the truth, or identifiers.

Two independent checks, because a leak can hide behind an innocent name:
- by name: the feature list against ``contract.FORBIDDEN_FEATURES`` plus per-model extras
  (the price model may not see ratios computed from its own target);
- by data: a feature column that is (near-)identical to the label or a truth column:
  ``|corr| > 0.999`` (Pearson or Spearman) with a numeric target, or a categorical feature
  whose values map one-to-one to the label's classes, or (for ordered multiclass labels such
  as demand) a numeric feature whose per-class value ranges do not overlap at all.
A failed check fails the Evaluate step (evaluation/evaluate.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core import contract

CORR_LIMIT = 0.999
MIN_ROWS_FOR_DATA_CHECK = 20

IDENTIFIERS = frozenset({"offer_id", "event_id", "session_id", "user_id", "etl_run_id", "flight_key"})

# Per-model extras on top of contract.FORBIDDEN_FEATURES (which all models share).
MODEL_FORBIDDEN: dict[str, frozenset[str]] = {
    # The offer's own price, and ratios/ranks computed from it, are the price model's target.
    "price": frozenset({"price_usd", "price_amount", "price_vs_route_median", "price_vs_competitor_median", "price_rank_in_search"}),
    # Outcomes known only after departure.
    "demand": frozenset({"load_factor", "seats_sold", "demand_class", "capacity"}),
    "anomaly": frozenset(),
}

# The columns each model's data check compares features against (when present in the frame).
MODEL_TARGETS: dict[str, tuple[str, ...]] = {
    "price": (contract.PRICE_TARGET, "true_price_usd"),
    "demand": (contract.DEMAND_TARGET, "load_factor"),
    # not anomaly_factor: a good anomaly feature legitimately tracks the glitch size
    "anomaly": ("is_anomaly", "is_incident"),
}

# Label classes in their natural order (for correlation with an ordered label).
ORDERED_LABELS: dict[str, Sequence[Any]] = {contract.DEMAND_TARGET: contract.DEMAND_CLASSES}


def forbidden_for(model: str) -> frozenset[str]:
    if model not in MODEL_FORBIDDEN:
        raise ValueError(f"unknown model {model!r}; expected one of {tuple(MODEL_FORBIDDEN)}")
    return frozenset(contract.FORBIDDEN_FEATURES) | IDENTIFIERS | MODEL_FORBIDDEN[model]


def check_feature_names(model: str, features: Iterable[str]) -> list[str]:
    """Reasons (empty if clean) why the feature list contains forbidden columns."""
    features = list(features)
    if not features:
        return [f"{model} model declares no features"]
    bad = sorted(set(features) & forbidden_for(model))
    return [f"forbidden feature {f!r} in the {model} model's feature list" for f in bad]


def _numeric(series: pd.Series) -> pd.Series | None:
    """A float view of a numeric/bool column, or None for text/categorical ones."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return pd.to_numeric(series, errors="coerce").astype(float)
    return None


def _target_codes(target: pd.Series) -> pd.Series | None:
    num = _numeric(target)
    if num is not None:
        return num
    order = ORDERED_LABELS.get(str(target.name))
    if order is not None:
        return target.map({c: i for i, c in enumerate(order)}).astype(float)
    return None


def _max_abs_corr(a: pd.Series, b: pd.Series) -> float:
    both = pd.DataFrame({"a": a, "b": b}).dropna()
    if len(both) < MIN_ROWS_FOR_DATA_CHECK or both["a"].nunique() < 2 or both["b"].nunique() < 2:
        return 0.0
    pearson = both["a"].corr(both["b"])
    spearman = both["a"].rank().corr(both["b"].rank())
    return float(np.nanmax(np.abs([pearson, spearman])))


def _maps_one_to_one(feature: pd.Series, target: pd.Series) -> bool:
    both = pd.DataFrame({"f": feature.astype(object), "t": target.astype(object)}).dropna()
    if len(both) < MIN_ROWS_FOR_DATA_CHECK or both["t"].nunique() < 2:
        return False
    return bool((both.groupby("f")["t"].nunique() == 1).all() and (both.groupby("t")["f"].nunique() == 1).all())


def _separates_ordered_classes(feature: pd.Series, target: pd.Series) -> bool:
    """True if the feature's value ranges per class are disjoint (a threshold encoding of the label)."""
    both = pd.DataFrame({"f": feature, "t": target.astype(object)}).dropna()
    counts = both["t"].value_counts()
    if len(both) < MIN_ROWS_FOR_DATA_CHECK or len(counts) < 3 or (counts < 2).any():
        return False
    ranges = both.groupby("t")["f"].agg(["min", "max"]).sort_values("min")
    return bool((ranges["min"].to_numpy()[1:] > ranges["max"].to_numpy()[:-1]).all())


def check_feature_data(
    frame: pd.DataFrame, features: Iterable[str], targets: Mapping[str, pd.Series] | pd.DataFrame
) -> list[str]:
    """Reasons (empty if clean) why a feature column looks like a copy or encoding of a target.

    ``targets`` maps a name (label or truth column) to a Series aligned with ``frame``.
    Features absent from ``frame`` are skipped (``check_leakage`` lists them as unchecked).
    """
    if isinstance(targets, pd.DataFrame):
        targets = {c: targets[c] for c in targets.columns}
    reasons: list[str] = []
    for name, target in targets.items():
        target = pd.Series(target.to_numpy(), index=frame.index, name=name)
        codes = _target_codes(target)
        ordered_multiclass = name in ORDERED_LABELS
        for feat in features:
            if feat not in frame.columns:
                continue
            col = frame[feat]
            num = _numeric(col)
            if num is not None and codes is not None:
                corr = _max_abs_corr(num, codes)
                if corr > CORR_LIMIT:
                    reasons.append(f"feature {feat!r} is near-identical to {name!r} (|corr| = {corr:.4f})")
                    continue
            if num is None and _numeric(target) is None and _maps_one_to_one(col, target):
                reasons.append(f"feature {feat!r} maps one-to-one to the label {name!r}")
                continue
            if num is not None and ordered_multiclass and _separates_ordered_classes(num, target):
                reasons.append(f"feature {feat!r} separates the classes of {name!r} perfectly (disjoint ranges)")
    return reasons


def check_leakage(
    model: str,
    features: Sequence[str],
    frame: pd.DataFrame | None = None,
    targets: Mapping[str, pd.Series] | pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The report's ``leakage`` section: ``{"passed", "reasons", "checked": {...}}``.

    Without ``targets``, the model's usual target/truth columns found in ``frame`` are used.
    Pass as ``frame`` what the model really sees (its input matrix, with the targets beside it
    or given as ``targets``); features not in it are listed as ``unchecked_features``.
    """
    reasons = check_feature_names(model, features)
    checked_against: list[str] = []
    unchecked: list[str] = []
    if frame is not None:
        if targets is None:
            targets = {c: frame[c] for c in MODEL_TARGETS[model] if c in frame.columns}
        checked_against = list(targets.keys() if isinstance(targets, Mapping) else targets.columns)
        clean_feats = [f for f in features if f not in forbidden_for(model)]
        reasons += check_feature_data(frame, clean_feats, targets)
        unchecked = [f for f in clean_feats if f not in frame.columns]
    return {
        "passed": not reasons,
        "reasons": reasons,
        "n_features": len(features),
        "checked_against": checked_against,
        "rows_checked": 0 if frame is None else int(len(frame)),
        "unchecked_features": unchecked,
    }

"""The serving fast path: validated request rows -> a float matrix -> compiled trees, no DataFrame.

Training and evaluation prepare features with pandas (``core.features``); on a one-record
request that costs milliseconds, far more than the trees. Here the same features are built
row by row with plain Python and one NumPy array:

- price / demand: numeric features as floats (booleans 1/0, null NaN) and each categorical as its
  index in the category levels stored in ``model_meta.json`` (an unseen or null value is NaN, the
  default branch), which is exactly what ``core.features.model_matrix`` hands the libraries;
- anomaly: the derived features of ``core.features.anomaly_frame`` from the same formulas, the
  norm tables looked up with the same keys, the expected log price from the nested price model.

Predictions then come from one of two backends per tree model (``Backend``):

- ``compiled`` (default): the model converted by treelite and compiled to a shared library by tl2cgen
  with gcc (:mod:`inference.compiled`). Measured on this 2-core machine (benchmarks/bench_fastpath.py):
  the price model predicts one row in ~25 µs this way, against ~120 µs for XGBoost's ``inplace_predict``;
  ONNX Runtime is no alternative: onnxmltools cannot convert XGBoost's categorical splits, and the
  demand model's LightGBM half, which converts, takes ~11× the compiled time (bench_serving ``--onnx``).
- ``native``: the library's own prediction on the array (XGBoost ``inplace_predict``, LightGBM
  ``predict``, scikit-learn ``score_samples``): used when no C compiler is present, and by the
  equivalence tests as the second witness.

``tests/inference/test_inference_fastpath.py`` runs this path and ``LoadedModel``'s DataFrame path on every
row of a test split and requires the same answers (price 1e-4 relative, demand class and
probabilities 1e-5, anomaly flag).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core import contract
from core.features import COMPETITOR_NORM_KEYS, DTD_BUCKET_EDGES, ROUTE_NORM_KEYS

log = logging.getLogger(__name__)
NAN = float("nan")
BACKENDS = ("compiled", "native")
_DTD_INNER_EDGES = tuple(float(e) for e in DTD_BUCKET_EDGES[1:-1])


# ---------------------------------------------------------------------------------------------
# Feature rows
# ---------------------------------------------------------------------------------------------
class MatrixEncoder:
    """``model_matrix`` for validated dict rows: numerics as float, categoricals as level codes."""

    def __init__(self, numeric: Sequence[str], categorical: Sequence[str], levels: dict[str, Sequence[str]]):
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.codes = [{str(v): float(i) for i, v in enumerate(levels[c])} for c in self.categorical]
        self.width = len(self.numeric) + len(self.categorical)

    def row(self, r: dict[str, Any]) -> list[float]:
        out = []
        for name in self.numeric:
            v = r.get(name)
            out.append(NAN if v is None else float(v))  # bool -> 1.0 / 0.0
        for name, codes in zip(self.categorical, self.codes):
            v = r.get(name)
            out.append(NAN if v is None else codes.get(v, NAN))
        return out

    def matrix(self, rows: Sequence[dict[str, Any]], dtype=np.float32) -> np.ndarray:
        return np.array([self.row(r) for r in rows], dtype=dtype).reshape(len(rows), self.width)


def dtd_bucket_of(days: Any) -> int:
    """``core.features.dtd_bucket`` for one value."""
    if days is None:
        return -1
    d = float(days)
    if not math.isfinite(d):
        return -1
    i = 0
    for edge in _DTD_INNER_EDGES:  # searchsorted(side="right")
        if d >= edge:
            i += 1
        else:
            break
    return i


def _log(x: Any) -> float:
    """``core.features._safe_log`` for one value: NaN unless a positive finite number."""
    if x is None:
        return NAN
    x = float(x)
    if not x > 0 or not math.isfinite(x):
        return NAN
    return math.log(x)


def _key_part(row: dict[str, Any], col: str) -> str:
    if col == "_dtd_bucket":
        return str(dtd_bucket_of(row.get("days_to_departure")))
    return str(row.get(col))  # pandas astype(str): True -> "True", None -> "None"


class AnomalyEncoder:
    """``core.features.anomaly_frame`` (NaN -> 0) for one validated dict row at a time."""

    def __init__(self, features: Sequence[str], norms: dict[str, dict[str, float]] | None):
        self.features = list(features)
        norms = norms or {}
        self.route = dict(norms.get("route") or {})
        self.competitor = dict(norms.get("competitor") or {})

    def derived(self, r: dict[str, Any], expected_log_price: float | None) -> dict[str, float]:
        lr = _log(r.get("price_vs_route_median"))
        lc = _log(r.get("price_vs_competitor_median"))
        price, cmin = r.get("price_usd"), r.get("competitor_min_price_usd")
        lmin = _log(float(price) / float(cmin)) if price is not None and cmin not in (None, 0) else NAN
        route_key = "|".join(_key_part(r, c) for c in ROUTE_NORM_KEYS)
        comp_key = "|".join(_key_part(r, c) for c in COMPETITOR_NORM_KEYS)
        n, rank = r.get("num_offers_in_search"), r.get("price_rank_in_search")
        if n is not None and rank is not None and float(n) > 1:
            rank_frac = (float(rank) - 1) / (float(n) - 1)
        elif n is None:
            rank_frac = NAN
        else:
            rank_frac = 0.5
        vs_model = 0.0 if expected_log_price is None else _log(price) - expected_log_price
        out = {
            "log_price_vs_model": vs_model,
            "log_price_vs_competitor_adj": lc - self.competitor.get(comp_key, 0.0),
            "log_price_vs_expected_route": lr - self.route.get(route_key, 0.0),
            "log_price_vs_competitor_median": lc,
            "log_price_vs_route_median": lr,
            "log_price_vs_competitor_min": lmin,
            "rank_fraction_in_search": rank_frac,
        }
        return {k: (0.0 if v != v else v) for k, v in out.items()}  # fillna(0.0)

    def matrix(self, rows: Sequence[dict[str, Any]], expected: np.ndarray | None) -> np.ndarray:
        out = np.empty((len(rows), len(self.features)), dtype=np.float64)
        for i, r in enumerate(rows):
            d = self.derived(r, None if expected is None else float(expected[i]))
            out[i] = [d[f] for f in self.features]
        return out


# ---------------------------------------------------------------------------------------------
# Backends: one tree model each
# ---------------------------------------------------------------------------------------------
class NativeXGB:
    name = "native"

    def __init__(self, booster):
        self.booster = booster

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(x), dtype=np.float64).reshape(len(x), -1)


class NativeLGB:
    name = "native"

    def __init__(self, booster):
        self.booster = booster

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64, copy=False)
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64).reshape(len(x), -1)


class NativeIForest:
    name = "native"

    def __init__(self, forest):
        self.forest = forest

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (-self.forest.score_samples(x)).reshape(len(x), 1)


# ---------------------------------------------------------------------------------------------
# The fast model
# ---------------------------------------------------------------------------------------------
class FastModel:
    """One loaded model's fast path: ``predict(rows)`` gives one output dict per validated row."""

    def __init__(self, loaded, backend: str = "compiled", cache_dir=None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.kind = loaded.kind
        self.meta = loaded.meta
        self.backend = backend
        models = loaded._models
        if self.kind == "price":
            self.encoder = MatrixEncoder(self.meta["numeric"], self.meta["categorical"], self.meta["category_levels"])
            self.xgb = self._tree(models["xgb"], "xgb", loaded.model_dir, cache_dir)
            self.log_target = self.meta.get("target_transform") == "log"
        elif self.kind == "demand":
            self.encoder = MatrixEncoder(self.meta["numeric"], self.meta["categorical"], self.meta["category_levels"])
            # LightGBM alone (training.demand's default) or the earlier XGBoost + LightGBM ensemble
            self.xgb = self._tree(models["xgb"], "xgb", loaded.model_dir, cache_dir) if "xgb" in models else None
            self.lgb = self._tree(models["lgb"], "lgb", loaded.model_dir, cache_dir)
            w = self.meta.get("ensemble_weights", {"xgb": 0.5, "lgb": 0.5})
            self.weights = (float(w["xgb"]) if self.xgb is not None else 0.0, float(w["lgb"]))
            self.classes = [str(c) for c in self.meta.get("classes", contract.DEMAND_CLASSES)]
        elif self.kind == "anomaly":
            self.encoder = AnomalyEncoder(self.meta["features"], self.meta.get("norms"))
            self.norm = None
            if "norm" in models:
                norm = models["norm"]
                self.norm_encoder = MatrixEncoder(norm.meta["numeric"], norm.meta["categorical"], norm.meta["category_levels"])
                self.norm = self._tree(norm._models["xgb"], "norm_xgb", norm.model_dir, cache_dir)
            self.forest = self._tree(models["iforest"], "iforest", loaded.model_dir, cache_dir)
            self.threshold = float(self.meta["threshold"])
        else:
            raise ValueError(f"unknown model kind {self.kind!r}")

    def _tree(self, model, role: str, model_dir, cache_dir):
        if self.backend == "compiled":
            from inference import compiled

            return compiled.CompiledTrees.for_model(model, role, model_dir, cache_dir)
        if role == "iforest":
            return NativeIForest(model)
        if role == "lgb":
            return NativeLGB(model)
        return NativeXGB(model)

    @property
    def backends(self) -> dict[str, str]:
        return {"model": self.kind, "backend": self.backend}

    # -- prediction ---------------------------------------------------------------------------
    def price(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        raw = self.xgb.predict(self.encoder.matrix(rows))[:, 0]
        return np.exp(raw) if self.log_target else raw

    def demand_proba(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        x = self.encoder.matrix(rows, np.float64)
        p = self.weights[1] * self.lgb.predict(x)
        if self.xgb is not None:
            p = p + self.weights[0] * self.xgb.predict(x)
        return p / p.sum(axis=1, keepdims=True)

    def anomaly_score(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        expected = None
        if self.norm is not None:
            expected = self.norm.predict(self.norm_encoder.matrix(rows))[:, 0]
        return self.forest.predict(self.encoder.matrix(rows, expected))[:, 0]

    def _one(self, r: dict[str, Any]) -> dict[str, Any]:
        """One row on the compiled backend without NumPy arrays in between (a few µs of small-array
        overhead per request); the same arithmetic in the same order as the batch path, so the same
        answers to the bit (``test_one_record_at_a_time_equals_the_batch``)."""
        if self.kind == "price":
            raw = self.xgb.predict_values(self.encoder.row(r))[0]
            return {"price_usd": float(np.exp(raw)) if self.log_target else raw}
        if self.kind == "demand":
            x = self.encoder.row(r)
            w0, w1 = self.weights
            if self.xgb is None:  # LightGBM alone (training.demand's default)
                p = [w1 * b for b in self.lgb.predict_values(x)]
            else:
                p = [w0 * a + w1 * b for a, b in zip(self.xgb.predict_values(x), self.lgb.predict_values(x))]
            total = sum(p)
            p = [v / total for v in p]
            classes = self.classes
            return {"demand_class": classes[p.index(max(p))], "probabilities": dict(zip(classes, p))}
        expected = self.norm.predict_values(self.norm_encoder.row(r))[0] if self.norm is not None else None
        d = self.encoder.derived(r, expected)
        score = self.forest.predict_values([d[f] for f in self.encoder.features])[0]
        return {"anomaly_score": score, "is_anomaly": score >= self.threshold}

    def predict(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Price in USD, demand class + probabilities, or anomaly score + flag, per row."""
        if not rows:
            return []
        if len(rows) == 1 and self.backend == "compiled":
            return [self._one(rows[0])]
        if self.kind == "price":
            return [{"price_usd": float(p)} for p in self.price(rows)]
        if self.kind == "demand":
            proba = self.demand_proba(rows)
            classes = self.classes
            return [{"demand_class": classes[int(row.argmax())], "probabilities": dict(zip(classes, map(float, row)))}
                    for row in proba]
        scores = self.anomaly_score(rows)
        t = self.threshold
        return [{"anomaly_score": float(s), "is_anomaly": bool(s >= t)} for s in scores]

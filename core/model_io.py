"""Saving and loading the three models in native formats, never pickle.

A model directory holds the model file(s) and ``model_meta.json`` (which model it is, its
features, category levels, thresholds, metrics, library versions). :func:`load` reads any of the
three and gives one object whose prediction methods prepare features with the same code as
training (:mod:`core.features`), so training, evaluation and inference cannot drift.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import contract
from core.pipeline_contract import MODEL_META_FILE, MODELS
from core.features import anomaly_frame, model_matrix

# Files per model kind.
PRICE_FILE = "price_xgb.ubj"
DEMAND_XGB_FILE = "demand_xgb.ubj"
DEMAND_LGB_FILE = "demand_lgb.txt"
ANOMALY_FILE = "anomaly_iforest.skops"
# Only these type prefixes may come out of a skops file.
_SKOPS_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")


# The libraries a saved model depends on; evaluation reports a longer list with the same function.
MODEL_LIBRARIES = ("xgboost", "lightgbm", "scikit-learn", "pandas", "numpy")
_MODULE_OF = {"scikit-learn": "sklearn"}  # distribution name -> import name where they differ


def library_versions(libraries: tuple[str, ...] = MODEL_LIBRARIES) -> dict[str, str]:
    """Python's and each library's version (``__version__`` of the imported module: the
    distribution of xgboost is ``xgboost-cpu``, so package metadata would miss it)."""
    import importlib

    out = {"python": platform.python_version()}
    for name in libraries:
        out[name] = importlib.import_module(_MODULE_OF.get(name, name)).__version__
    return out


def best_booster(model):
    """The booster of a fitted XGBoost sklearn model, cut at the early-stopping best iteration."""
    booster = model.get_booster()
    best = getattr(model, "best_iteration", None) if hasattr(model, "evals_result_") else None
    if best is not None and best + 1 < booster.num_boosted_rounds():
        booster = booster[: best + 1]
    return booster


def write_meta(model_dir: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``model_meta.json`` (adds library versions) and return its path."""
    if meta.get("model") not in MODELS:
        raise ValueError(f"meta['model'] must be one of {MODELS}")
    meta = {**meta, "libraries": library_versions(), "schema_version": contract.SCHEMA_VERSION}
    path = Path(model_dir) / MODEL_META_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2, default=_json_default))
    return path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o)}")


def load_skops(path: Path):
    """Load a skops file, trusting only scikit-learn / numpy types (refuses anything else)."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    foreign = [t for t in untrusted if not t.startswith(_SKOPS_TRUSTED_PREFIXES)]
    if foreign:
        raise ValueError(f"{path} holds types outside scikit-learn/numpy: {foreign}")
    return sio.load(path, trusted=untrusted)


def member_proba(booster, x) -> np.ndarray:
    """(n, classes) probabilities of one demand member: an XGBoost or a LightGBM booster."""
    raw = booster.inplace_predict(x) if hasattr(booster, "inplace_predict") else booster.predict(x)
    return np.asarray(raw, dtype=float).reshape(len(x), -1)


@dataclass
class LoadedModel:
    """One of the three models, ready to predict on curated-like DataFrames."""

    kind: str
    meta: dict[str, Any]
    model_dir: Path
    _models: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    # -- feature preparation (the one place) ------------------------------------------------
    def matrix(self, df: pd.DataFrame) -> pd.DataFrame:
        """The model's input matrix for ``df`` (same code as at training time)."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError("expected a pandas DataFrame")
        if self.kind == "anomaly":
            expected = None
            if "norm" in self._models:  # the learned expected price (a nested price model)
                norm = self._models["norm"]
                expected = np.asarray(norm._models["xgb"].inplace_predict(norm.matrix(df)), dtype=float)
            return anomaly_frame(df, self.meta.get("norms"), expected)[self.features]
        return model_matrix(df, self.meta["numeric"], self.meta["categorical"], self.meta["category_levels"])

    def _require(self, kind: str) -> None:
        if self.kind != kind:
            raise TypeError(f"this is the {self.kind!r} model, not {kind!r}")

    # -- price -------------------------------------------------------------------------------
    def predict_price(self, df: pd.DataFrame) -> np.ndarray:
        """Predicted price in USD per row."""
        self._require("price")
        raw = self._models["xgb"].inplace_predict(self.matrix(df))
        raw = np.asarray(raw, dtype=float)
        return np.exp(raw) if self.meta.get("target_transform") == "log" else raw

    # -- demand ------------------------------------------------------------------------------
    def predict_demand_proba(self, df: pd.DataFrame) -> np.ndarray:
        """(n, 3) class probabilities, columns in ``contract.DEMAND_CLASSES`` order."""
        self._require("demand")
        x = self.matrix(df)
        weights = self.meta.get("ensemble_weights", {"xgb": 0.5, "lgb": 0.5})
        p = sum(weights[name] * member_proba(m, x) for name, m in self._models.items())
        return p / p.sum(axis=1, keepdims=True)

    def predict_demand(self, df: pd.DataFrame) -> np.ndarray:
        """Predicted demand class names."""
        classes = np.asarray(self.meta.get("classes", contract.DEMAND_CLASSES), dtype=object)
        return classes[self.predict_demand_proba(df).argmax(axis=1)]

    # -- anomaly -----------------------------------------------------------------------------
    def anomaly_score(self, df: pd.DataFrame) -> np.ndarray:
        """Anomaly score per row: higher = more anomalous (negated Isolation Forest score)."""
        self._require("anomaly")
        return -self._models["iforest"].score_samples(self.matrix(df).to_numpy())

    def is_anomaly(self, df: pd.DataFrame) -> np.ndarray:
        """Boolean flag per row from the threshold chosen on the validation split."""
        return self.anomaly_score(df) >= float(self.meta["threshold"])


def load(model_dir: str | Path) -> LoadedModel:
    """Load the model in ``model_dir`` (a folder with ``model_meta.json``)."""
    model_dir = Path(model_dir)
    meta_path = model_dir / MODEL_META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"no {MODEL_META_FILE} in {model_dir}")
    meta = json.loads(meta_path.read_text())
    kind = meta.get("model")
    models: dict[str, Any] = {}
    if kind == "price":
        import xgboost as xgb

        models["xgb"] = xgb.Booster(model_file=str(model_dir / meta["files"]["xgb"]))
    elif kind == "demand":
        import lightgbm as lgb
        import xgboost as xgb

        if "xgb" in meta["files"]:  # LightGBM alone since demand4; the earlier ensemble has both
            models["xgb"] = xgb.Booster(model_file=str(model_dir / meta["files"]["xgb"]))
        models["lgb"] = lgb.Booster(model_file=str(model_dir / meta["files"]["lgb"]))
    elif kind == "anomaly":
        models["iforest"] = load_skops(model_dir / meta["files"]["iforest"])
        if meta["files"].get("norm"):
            models["norm"] = load(model_dir / meta["files"]["norm"])
    else:
        raise ValueError(f"{meta_path}: unknown model kind {kind!r} (expected one of {MODELS})")
    for m in models.values():
        if hasattr(m, "set_param"):
            m.set_param({"nthread": 1})
    return LoadedModel(kind=kind, meta=meta, model_dir=model_dir, _models=models)

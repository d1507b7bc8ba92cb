"""From validated request rows to response records, through :mod:`core.model_io`.

The :class:`Predictor` owns one loaded model and its request validator. It never prepares
features itself: rows become a DataFrame and go through ``LoadedModel``'s prediction methods,
whose feature code is the one training and evaluation used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter

from inference.schema import FieldSpec, field_specs, instance_adapter
from core import contract
from core import model_io


@dataclass
class Predictor:
    """A loaded model with its request fields; ``predict(rows)`` gives one output dict per row."""

    model: model_io.LoadedModel
    specs: list[FieldSpec] = field(init=False)
    adapter: TypeAdapter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.specs = field_specs(self.model.meta)
        self.adapter = instance_adapter(self.specs, title=f"{self.model.kind.capitalize()}Instance")

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def field_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def validate(self, instances: Any) -> list[dict[str, Any]]:
        """Validated rows (raises ``pydantic.ValidationError`` naming the bad fields)."""
        return self.adapter.validate_python(instances)

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame.from_records(rows, columns=self.field_names)

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Model outputs per validated row: price in USD, demand class + probabilities, or anomaly score + flag."""
        df = self.frame(rows)
        m = self.model
        if m.kind == "price":
            return [{"price_usd": float(p)} for p in m.predict_price(df)]
        if m.kind == "demand":
            proba = m.predict_demand_proba(df)
            classes = [str(c) for c in m.meta.get("classes", contract.DEMAND_CLASSES)]
            best = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
            return [
                {"demand_class": str(b), "probabilities": {c: float(v) for c, v in zip(classes, row)}}
                for b, row in zip(best, proba)
            ]
        if m.kind == "anomaly":
            scores = m.anomaly_score(df)
            threshold = float(m.meta["threshold"])
            return [{"anomaly_score": float(s), "is_anomaly": bool(s >= threshold)} for s in scores]
        raise ValueError(f"unknown model kind {m.kind!r}")

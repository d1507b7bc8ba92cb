"""From validated request rows to response records.

The :class:`Predictor` owns one loaded model, its request validator and its fast path
(:class:`inference.fast.FastModel`: feature rows as arrays, compiled trees). The DataFrame path of
``LoadedModel`` (the training/evaluation feature code) stays the reference the fast path is tested
against, row for row.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from inference.fast import FastModel
from inference.schema import FieldSpec, field_specs, instance_adapter

log = logging.getLogger(__name__)


def default_backend() -> str:
    return os.environ.get("AIRFARE_BACKEND", "compiled")


@dataclass
class Predictor:
    """A loaded model with its request fields; ``predict(rows)`` gives one output dict per row."""

    model: Any  # model_io.LoadedModel
    backend: str = field(default_factory=default_backend)
    specs: list[FieldSpec] = field(init=False)
    adapter: TypeAdapter = field(init=False, repr=False)
    fast: FastModel = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.specs = field_specs(self.model.meta)
        self.adapter = instance_adapter(self.specs, title=f"{self.model.kind.capitalize()}Instance")
        try:
            self.fast = FastModel(self.model, self.backend)
        except Exception as e:  # noqa: BLE001 - compiled.CompileUnavailable or a failed build: serve natively
            if self.backend != "compiled":
                raise
            log.warning("compiled backend unavailable (%s); serving with the native libraries", e)
            self.backend = "native"
            self.fast = FastModel(self.model, "native")

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def field_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def validate(self, instances: Any) -> list[dict[str, Any]]:
        """Validated rows (raises ``pydantic.ValidationError`` naming the bad fields)."""
        return self.adapter.validate_python(instances)

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Model outputs per validated row: price in USD, demand class + probabilities, or anomaly score + flag."""
        return self.fast.predict(rows)

"""Hyperparameter merging shared by the trainers."""

from __future__ import annotations

from typing import Any


def merge_params(defaults: dict[str, Any], params: dict[str, Any] | None, model: str) -> dict[str, Any]:
    """Defaults overridden by ``params``; unknown names are an error (a typo must not be ignored).

    SageMaker's own ``sagemaker_*`` entries are dropped.
    """
    given = {k: v for k, v in (params or {}).items() if not str(k).startswith("sagemaker_")}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown hyperparameters for the {model} model: {unknown}; known: {sorted(defaults)}")
    return {**defaults, **given}

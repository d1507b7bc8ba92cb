"""SageMaker's container contract paths, relocatable for the local executor.

On SageMaker every job sees ``/opt/ml``. The local executor runs the same code as a local
process and sets ``SM_OPT_ML`` to a per-step folder of the run (like a volume mount), so step
code never hard-codes ``/opt/ml``.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_OPT_ML = "/opt/ml"


def opt_ml(*parts: str) -> Path:
    """``/opt/ml/<parts>`` or, under the local executor, ``$SM_OPT_ML/<parts>``."""
    return Path(os.environ.get("SM_OPT_ML", DEFAULT_OPT_ML), *parts)


def processing_dir(*parts: str) -> Path:
    """``/opt/ml/processing/<parts>``: processing inputs and outputs."""
    return opt_ml("processing", *parts)


def training_channel(name: str) -> Path:
    """A training input channel (``SM_CHANNEL_<NAME>`` wins when set)."""
    env = os.environ.get(f"SM_CHANNEL_{name.upper()}")
    return Path(env) if env else opt_ml("input", "data", name)


def hyperparameters_file() -> Path:
    return opt_ml("input", "config", "hyperparameters.json")


def model_dir() -> Path:
    env = os.environ.get("SM_MODEL_DIR")
    return Path(env) if env else opt_ml("model")


def failure_file() -> Path:
    """A training job's failure reason: SageMaker returns its first 1 KiB as ``FailureReason``."""
    return opt_ml("output", "failure")


def message_file() -> Path:
    """A processing job's exit message: SageMaker returns its first 1 KiB as ``ExitMessage``."""
    return opt_ml("output", "message")

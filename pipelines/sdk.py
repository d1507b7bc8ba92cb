"""The one module that imports the SageMaker Python SDK (v3).

Importing ``sagemaker`` has side effects that break offline use (IAM role validation, a
telemetry call in the background), so the environment is fixed here, before the first import,
and every other module of the project gets SDK names from this adapter (NOTES-platform.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path

CONFIG_PATH = Path(__file__).with_name("sagemaker_config.yaml")

# Must precede any `import sagemaker`: ModelTrainer/upsert would otherwise call IAM
# SimulatePrincipalPolicy, and telemetry would call STS and S3.
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
os.environ.setdefault("SAGEMAKER_USER_CONFIG_OVERRIDE", str(CONFIG_PATH))
# sagemaker.mlops.workflow needs a region at import time.
if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

from sagemaker.core.drift_check_baselines import DriftCheckBaselines  # noqa: E402
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics  # noqa: E402
from sagemaker.core.model_monitor.dataset_format import DatasetFormat  # noqa: E402
from sagemaker.core.network import NetworkConfig  # noqa: E402
from sagemaker.core.processing import Processor  # noqa: E402
from sagemaker.core.shapes import (  # noqa: E402
    OutputDataConfig,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
    StoppingCondition,
)
from sagemaker.core.workflow.conditions import (  # noqa: E402
    ConditionEquals,
    ConditionGreaterThan,
    ConditionGreaterThanOrEqualTo,
    ConditionLessThan,
    ConditionLessThanOrEqualTo,
    ConditionOr,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables  # noqa: E402
from sagemaker.core.workflow.functions import Join, JsonGet  # noqa: E402
from sagemaker.core.workflow.parameters import (  # noqa: E402
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
)
from sagemaker.core.workflow.pipeline_context import PipelineSession  # noqa: E402
from sagemaker.core.workflow.properties import PropertyFile  # noqa: E402
from sagemaker.mlops.workflow import (  # noqa: E402
    ConditionStep,
    FailStep,
    ModelStep,
    Pipeline,
    ProcessingStep,
    TrainingStep,
)
from sagemaker.mlops.workflow.check_job_config import CheckJobConfig  # noqa: E402
from sagemaker.mlops.workflow.quality_check_step import (  # noqa: E402
    DataQualityCheckConfig,
    ModelQualityCheckConfig,
    QualityCheckStep,
)
from sagemaker.serve.model_builder import ModelBuilder  # noqa: E402
from sagemaker.core.config import config as _sm_config_module  # noqa: E402
from sagemaker.core.config.config_manager import SageMakerConfig  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402
from sagemaker.train.configs import Compute, InputData, Networking  # noqa: E402

# The SDK re-validates its user config against the JSON schema (jsonschema's check_schema
# included) on every config load and lookup: about 140 times per pipeline build, 90 % of its
# time. A config does not change within a process, so each distinct one is validated once.
_validate_config = _sm_config_module.validate_sagemaker_config
_validated_configs: set[str] = set()


def _validate_config_once(sagemaker_config: dict | None = None) -> None:
    key = json.dumps(sagemaker_config, sort_keys=True, default=str)
    if key not in _validated_configs:
        _validate_config(sagemaker_config)
        _validated_configs.add(key)


SageMakerConfig.validate_sagemaker_config = staticmethod(_validate_config_once)
_sm_config_module.validate_sagemaker_config = _validate_config_once

__all__ = [
    "CONFIG_PATH",
    "CheckJobConfig",
    "Compute",
    "ConditionEquals",
    "ConditionGreaterThan",
    "ConditionGreaterThanOrEqualTo",
    "ConditionLessThan",
    "ConditionLessThanOrEqualTo",
    "ConditionOr",
    "ConditionStep",
    "DataQualityCheckConfig",
    "DatasetFormat",
    "DriftCheckBaselines",
    "ExecutionVariables",
    "FailStep",
    "InputData",
    "Join",
    "JsonGet",
    "MetricsSource",
    "ModelBuilder",
    "ModelMetrics",
    "ModelQualityCheckConfig",
    "ModelStep",
    "ModelTrainer",
    "NetworkConfig",
    "Networking",
    "OutputDataConfig",
    "ParameterBoolean",
    "ParameterFloat",
    "ParameterInteger",
    "ParameterString",
    "Pipeline",
    "PipelineSession",
    "ProcessingInput",
    "ProcessingOutput",
    "ProcessingS3Input",
    "ProcessingS3Output",
    "ProcessingStep",
    "PropertyFile",
    "QualityCheckStep",
    "StoppingCondition",
    "TrainingStep",
    "quiet",
]


@contextlib.contextmanager
def quiet():
    """Silence the SDK's per-step INFO logs and "PipelineSession: no job started" warnings.

    They are noise when the definition is built from the CLI; real errors still raise.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the SDK sets levels on many child loggers: disable them all
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        logging.disable(previous)

"""Docker-free local executor of SageMaker pipeline definitions (DESIGN.md §1).

Reads the definition JSON the SDK emits, orders steps by ``DependsOn`` and property references,
and runs each job as a local process under SageMaker's container contract with ``/opt/ml`` mapped
to a run folder and ``s3://`` to the local lake: a folder, or a real S3 API whose objects are
downloaded and uploaded around each job as SageMaker does (lake.py). Generic: it never
special-cases step names.
"""

from .expressions import ExpressionError
from .plan import DefinitionError, Plan, build_plan
from .results import ExecutionResult, StepResult
from .runner import new_execution_id, run_definition

__all__ = [
    "DefinitionError",
    "ExecutionResult",
    "ExpressionError",
    "Plan",
    "StepResult",
    "build_plan",
    "new_execution_id",
    "run_definition",
]

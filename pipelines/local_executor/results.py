"""What a local execution reports: one ``StepResult`` per step, summed up in ``ExecutionResult``.

Plain dataclasses (not pydantic) because they are built incrementally by the scheduler and only
serialised at the end, to ``step.json`` / ``execution.json`` and for the CLI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

StepStatus = Literal["Succeeded", "Failed", "Skipped", "NotRun"]
ExecutionStatus = Literal["Succeeded", "Failed"]


@dataclass
class StepResult:
    name: str
    type: str
    status: StepStatus = "NotRun"
    started: str | None = None
    ended: str | None = None
    seconds: float | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    stdout_log: Path | None = None
    stderr_log: Path | None = None
    step_dir: Path | None = None
    cached_from: str | None = None
    """Execution id whose outputs a cache hit reused (None when the step really ran)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("stdout_log", "stderr_log", "step_dir"):
            d[key] = str(d[key]) if d[key] is not None else None
        return d


@dataclass
class ExecutionResult:
    execution_id: str
    status: ExecutionStatus
    run_dir: Path
    steps: list[StepResult]
    parameters: dict[str, Any] = field(default_factory=dict)
    fail_message: str | None = None
    """The resolved ``ErrorMessage`` of the Fail step that ended the execution, if one ran."""
    failed_step: str | None = None
    """The step that failed or the Fail step that ran (None when the execution succeeded)."""
    failure_reason: str | None = None
    started: str | None = None
    ended: str | None = None
    seconds: float | None = None

    def step(self, name: str) -> StepResult:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"no step named {name!r} in execution {self.execution_id}")

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "status": self.status,
            "run_dir": str(self.run_dir),
            "parameters": self.parameters,
            "fail_message": self.fail_message,
            "failed_step": self.failed_step,
            "failure_reason": self.failure_reason,
            "started": self.started,
            "ended": self.ended,
            "seconds": self.seconds,
            "steps": [s.to_dict() for s in self.steps],
        }

"""``run_definition``: execute a pipeline definition locally, step by step, like SageMaker would.

The scheduler runs every step whose dependencies are done (up to ``max_workers`` at once in a
thread pool; the work itself happens in subprocesses), marks the untaken branch of a condition
(and whatever depends on it) Skipped, and stops starting new steps once a step fails or a Fail
step runs, as SageMaker does; whatever did not start is NotRun.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from . import cache as step_cache
from .expressions import ExpressionError, Resolver, lookup
from .jobs import HANDLERS, StepContext, StepFailed, StepOutcome, job_name, kill_group
from .lake import LakeError, Lake, make_lake
from .plan import Plan, StepSpec, build_plan
from .results import ExecutionResult, StepResult

_EXECUTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_execution_id() -> str:
    """Sortable and unique: ``YYYYMMDDTHHMMSS-<6 hex>`` (also valid in job names and S3 keys)."""
    return f"{_now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class _Execution:
    def __init__(
        self,
        plan: Plan,
        execution_id: str,
        run_dir: Path,
        mapper: Lake,
        registry_root: Path,
        pipeline_name: str,
        console: Console | None,
        use_cache: bool,
        cache_dir: Path,
    ):
        self.plan = plan
        self.execution_id = execution_id
        self.run_dir = run_dir
        self.mapper = mapper
        self.registry_root = registry_root
        self.console = console
        self.use_cache = use_cache
        self.cache_dir = cache_dir
        self.started = _now()
        self.properties: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, bool] = {}
        self.results: dict[str, StepResult] = {
            name: StepResult(name=name, type=plan.steps[name].type) for name in plan.order
        }
        self._pf_cache: dict[tuple[str, str], Any] = {}
        self.processes: set = set()
        self._lock = threading.Lock()
        arn = f"arn:aws:sagemaker:local:000000000000:pipeline/{pipeline_name}"
        self.resolver = Resolver(
            parameters=plan.parameters,
            execution_vars={
                "PipelineExecutionId": execution_id,
                "PipelineExecutionArn": f"{arn}/execution/{execution_id}",
                "PipelineName": pipeline_name,
                "PipelineArn": arn,
                "StartDateTime": self.started.isoformat(),
                "CurrentDateTime": self.started.isoformat(),
            },
            step_properties=self.properties,
            property_file_reader=self.read_property_file,
            property_file_owner=plan.property_file_owner,
            s3_reader=lambda uri: self.mapper.read_json(uri, f"Std:JsonGet {uri}"),
        )

    # ---- property files ---------------------------------------------------------------------

    def read_property_file(self, step: str, name: str) -> Any:
        """A property file is read from the lake copy of the output it names (so a cached step's
        file, which lives under the earlier execution's prefix, works the same)."""
        key = (step, name)
        with self._lock:
            if key in self._pf_cache:
                return self._pf_cache[key]
        decl = next((pf for pf in self.plan.steps[step].raw.get("PropertyFiles") or [] if pf.get("PropertyFileName") == name), None)
        if decl is None:
            raise ExpressionError(f"step {step} declares no property file {name!r}")
        uri = lookup(
            self.properties[step],
            ["ProcessingOutputConfig", "Outputs", decl["OutputName"], "S3Output", "S3Uri"],
            f"property file {step}.{name}",
        )
        doc = self.mapper.read_json(uri.rstrip("/") + "/" + decl["FilePath"], f"property file {step}.{name}")
        with self._lock:
            self._pf_cache[key] = doc
        return doc

    # ---- one step ---------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)

    def execute_step(self, spec: StepSpec) -> tuple[StepResult, StepOutcome | None]:
        step_dir = self.run_dir / spec.name
        step_dir.mkdir(parents=True, exist_ok=True)
        ctx = StepContext(
            spec=spec,
            step_dir=step_dir,
            execution_id=self.execution_id,
            job_name=job_name(self.execution_id, spec.name),
            resolver=self.resolver,
            mapper=self.mapper,
            registry_root=self.registry_root,
            processes=self.processes,
        )
        result = self.results[spec.name]
        result.step_dir = step_dir
        start = _now()
        t0 = time.perf_counter()
        result.started = start.isoformat()
        self._say(f"[bold cyan]▶[/] {escape(spec.name)} [dim]({spec.type})[/] started")
        outcome: StepOutcome | None = None
        key = None
        try:
            if self.use_cache and spec.type in step_cache.CACHEABLE:
                key, hit = step_cache.lookup(self.cache_dir, spec, self.resolver, self.mapper)
                if hit is not None:
                    outcome = StepOutcome(properties=hit["properties"])
                    result.cached_from = hit["execution_id"]
                    ctx.record["cache"] = {"key": key, "hit": True, "from": hit["execution_id"]}
            if outcome is None:
                outcome = HANDLERS[spec.type](ctx)
                if key is not None:
                    step_cache.store(self.cache_dir, key, spec, self.execution_id, outcome.properties)
                    ctx.record["cache"] = {"key": key, "hit": False}
            result.status = "Succeeded"
            result.properties = outcome.properties
        except StepFailed as exc:
            result.status, result.failure_reason = "Failed", exc.reason
        except (ExpressionError, LakeError) as exc:
            result.status, result.failure_reason = "Failed", str(exc)
        except Exception as exc:  # a bug or a registry error: report it as the step's failure
            result.status = "Failed"
            result.failure_reason = f"{type(exc).__name__}: {exc}"
            ctx.record["traceback"] = traceback.format_exc()
        end = _now()
        result.ended = end.isoformat()
        result.seconds = round(time.perf_counter() - t0, 3)
        if spec.type in ("Processing", "Training", "QualityCheck") and result.cached_from is None:
            result.stdout_log, result.stderr_log = ctx.stdout_log, ctx.stderr_log
        self._write_step_json(ctx, result)
        self._report(result, outcome)
        return result, outcome if result.status == "Succeeded" else None

    def _write_step_json(self, ctx: StepContext, result: StepResult) -> None:
        doc = result.to_dict() | {"job_name": ctx.job_name, "depends_on": sorted(ctx.spec.depends_on)}
        doc.update(ctx.record)
        (ctx.step_dir / "step.json").write_text(json.dumps(doc, indent=2, default=str))

    def _report(self, result: StepResult, outcome: StepOutcome | None) -> None:
        name = escape(result.name)
        if result.status == "Failed":
            lines = [ln for ln in (result.failure_reason or "").strip().splitlines() if ln.strip()]
            # The head (exit code) and the last line (usually the exception) say the most.
            summary = " ... ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else ""
            self._say(f"[bold red]✘[/] {name} failed after {result.seconds:.1f}s: {escape(summary)}")
        elif outcome is not None and outcome.fail_message is not None:
            self._say(f"[bold red]■[/] {name} (Fail): {escape(outcome.fail_message)}")
        elif outcome is not None and outcome.condition is not None:
            self._say(f"[bold green]✔[/] {name} evaluated to {outcome.condition}")
        else:
            extra = f" [dim](cache hit from {escape(result.cached_from)})[/]" if result.cached_from else ""
            self._say(f"[bold green]✔[/] {name} succeeded in {result.seconds:.1f}s{extra}")

    # ---- the DAG ----------------------------------------------------------------------------

    def _skipped(self, spec: StepSpec) -> bool:
        if spec.branch_of is not None:
            cond, branch = spec.branch_of
            if cond in self.outcomes and self.outcomes[cond] != branch:
                return True
        return any(self.results[d].status == "Skipped" for d in spec.depends_on)

    def _schedule(self, pool: ThreadPoolExecutor, workers: int, pending: list[str]) -> tuple[str | None, str | None, str | None]:
        """Run the DAG; return (failed step, Fail step message, failure reason)."""
        steps = self.plan.steps
        finished: set[str] = set()
        running: dict[Future, str] = {}
        stop = False
        fail_message = failed_step = failure_reason = None
        while True:
            changed = True
            while changed:
                changed = False
                for name in list(pending):
                    spec = steps[name]
                    if not spec.depends_on <= finished:
                        continue
                    if self._skipped(spec):
                        self.results[name].status = "Skipped"
                        self._say(f"[yellow]↷[/] {escape(name)} skipped")
                        pending.remove(name)
                        finished.add(name)
                        changed = True
                    elif any(self.results[d].status != "Succeeded" for d in spec.depends_on):
                        continue  # a failed dependency: stays NotRun
                    elif not stop and len(running) < workers:
                        pending.remove(name)
                        running[pool.submit(self.execute_step, spec)] = name
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: steps[running[f]].index):
                name = running.pop(fut)
                result, outcome = fut.result()
                finished.add(name)
                if result.status == "Failed":
                    stop = True
                    if failed_step is None:
                        failed_step, failure_reason = name, result.failure_reason
                    continue
                self.properties[name] = result.properties
                if outcome is not None and outcome.condition is not None:
                    self.outcomes[name] = outcome.condition
                if outcome is not None and outcome.fail_message is not None:
                    stop = True
                    if failed_step is None:
                        failed_step, fail_message = name, outcome.fail_message
                        failure_reason = outcome.fail_message
        return failed_step, fail_message, failure_reason

    def run(self, max_workers: int) -> ExecutionResult:
        workers = max(1, max_workers)
        pending = list(self.plan.order)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="step") as pool:
            try:
                failed_step, fail_message, failure_reason = self._schedule(pool, workers, pending)
            except BaseException:
                # Ctrl-C: jobs run in their own sessions, so stop them before the pool joins.
                for proc in list(self.processes):
                    kill_group(proc)
                raise
        for name in pending:
            if self.results[name].status != "Skipped":
                self.results[name].status = "NotRun"
        ended = _now()
        result = ExecutionResult(
            execution_id=self.execution_id,
            status="Failed" if failed_step else "Succeeded",
            run_dir=self.run_dir,
            steps=[self.results[n] for n in self.plan.order],
            parameters=self.plan.parameters,
            fail_message=fail_message,
            failed_step=failed_step,
            failure_reason=failure_reason,
            started=self.started.isoformat(),
            ended=ended.isoformat(),
            seconds=round((ended - self.started).total_seconds(), 3),
        )
        (self.run_dir / "execution.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
        style = "bold green" if result.status == "Succeeded" else "bold red"
        tail = f": {failed_step}: {escape((failure_reason or '').splitlines()[0] if failure_reason else '')}" if failed_step else ""
        self._say(f"[{style}]Execution {escape(self.execution_id)} {result.status}[/] in {result.seconds:.1f}s{tail}")
        return result


def run_definition(
    definition: dict,
    *,
    parameters: dict | None = None,
    run_root: Path,
    lake_root: Path,
    registry_root: Path,
    execution_id: str | None = None,
    progress: bool = True,
    max_workers: int = 1,
    pipeline_name: str = "local-pipeline",
    use_cache: bool = True,
    s3_endpoint_url: str | None = None,
    s3_client: Any = None,
) -> ExecutionResult:
    """Run a SageMaker pipeline definition (Version 2020-12-01) as local processes.

    Raises ``DefinitionError`` before anything runs when the definition or the parameters are
    invalid; a step's failure is not an exception but ``result.status == "Failed"`` with
    ``failed_step`` and ``failure_reason``. Everything of the run stays in
    ``run_root/<execution_id>/`` (docs/contracts.md, "Local pipeline runs").

    With ``s3_endpoint_url`` (or an ``s3_client``) the lake is that S3 API instead of the folder
    ``lake_root``: inputs are downloaded, outputs, model archives and registry artifacts uploaded,
    and jobs get ``AWS_ENDPOINT_URL_S3`` to reach it themselves.
    """
    plan = build_plan(definition, parameters)
    execution_id = execution_id or new_execution_id()
    if not _EXECUTION_ID.match(execution_id):
        raise ValueError(f"execution id {execution_id!r} must match {_EXECUTION_ID.pattern}")
    run_root = Path(run_root).resolve()
    run_dir = run_root / execution_id
    if run_dir.exists():
        raise ValueError(f"run folder {run_dir} already exists: use another execution id")
    run_dir.mkdir(parents=True)
    (run_dir / "definition.json").write_text(json.dumps(definition, indent=2))
    console = Console(stderr=True) if progress else None
    execution = _Execution(
        plan=plan,
        execution_id=execution_id,
        run_dir=run_dir,
        mapper=make_lake(Path(lake_root), s3_endpoint_url, s3_client),
        registry_root=Path(registry_root).resolve(),
        pipeline_name=pipeline_name,
        console=console,
        use_cache=use_cache,
        cache_dir=run_root / ".cache",
    )
    return execution.run(max_workers)

"""Run one step of each supported type locally, with SageMaker's container contract.

Processing and training jobs are local processes: ``SM_OPT_ML`` points at the step's
``opt_ml`` folder, ``/opt/ml`` (and, with the folder lake, ``s3://``) in their arguments are
rewritten (lake.py), inputs are copied in before and outputs copied to the lake after: files of a
folder, or S3 downloads and uploads with the S3 lake. Each handler returns the step's
properties, shaped like SageMaker's Describe* response so property references resolve.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .expressions import Resolver, to_text
from .lake import Lake, LakeError, map_opt_ml, tail
from .plan import StepSpec

# Fields that change how SageMaker provisions a job but mean nothing for a local process:
# kept in step.json so a reader sees they were noticed, not honoured.
IGNORED_FIELDS = (
    "RoleArn", "ResourceConfig", "NetworkConfig", "VpcConfig",
    "EnableManagedSpotTraining", "CheckpointConfig", "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption", "RetryStrategy", "Tags", "ExperimentConfig",
    "DebugHookConfig", "ProfilerConfig", "RemoteDebugConfig",
)  # fmt: skip


_CHANNEL = re.compile(r"^[A-Za-z0-9.\-_]{1,64}$")  # CreateTrainingJob's ChannelName pattern, less '.'/'..'


class StepFailed(Exception):
    """The step ran and failed; ``reason`` is what SageMaker would show as FailureReason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class StepContext:
    spec: StepSpec
    step_dir: Path
    execution_id: str
    job_name: str
    resolver: Resolver
    mapper: Lake
    """The lake (lake.py): a folder, or a real S3 API."""
    registry_root: Path
    processes: set = field(default_factory=set)
    """Live job processes of the whole execution, shared so that an interrupt can stop them all."""
    record: dict[str, Any] = field(default_factory=dict)
    """Extra facts for step.json (resolved arguments, command, ignored fields...)."""

    @property
    def opt_ml(self) -> Path:
        return self.step_dir / "opt_ml"

    @property
    def stdout_log(self) -> Path:
        return self.step_dir / "stdout.log"

    @property
    def stderr_log(self) -> Path:
        return self.step_dir / "stderr.log"


@dataclass
class StepOutcome:
    properties: dict[str, Any]
    condition: bool | None = None
    fail_message: str | None = None


def job_name(execution_id: str, step: str) -> str:
    """A SageMaker-valid job name (``[a-zA-Z0-9](-*[a-zA-Z0-9])*``, at most 63 characters)."""
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", f"pipelines-{execution_id}-{step}").strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) > 63:
        import hashlib

        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = name[:54].rstrip("-") + "-" + digest
    return name


def _ignored(args: dict[str, Any]) -> dict[str, Any]:
    found = {k: args[k] for k in IGNORED_FIELDS if k in args}
    for outer, inner in (("OutputDataConfig", "KmsKeyId"), ("ProcessingOutputConfig", "KmsKeyId"),
                         ("StoppingCondition", "MaxWaitTimeInSeconds")):  # fmt: skip
        if isinstance(args.get(outer), dict) and inner in args[outer]:
            found[f"{outer}.{inner}"] = args[outer][inner]
    return found


def _local_command(cmd: list[Any], ctx: StepContext) -> list[str]:
    """Resolve to text, map paths, and run ``python``/``python3`` as this interpreter."""
    out = [ctx.mapper.map_text(to_text(c), ctx.opt_ml) for c in cmd]
    if out and re.fullmatch(r"python(3(\.\d+)?)?", os.path.basename(out[0])):
        out[0] = sys.executable
    return out


def _environment(ctx: StepContext, declared: dict[str, Any], extra: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(full environment for the process, the part the step declared + the executor added)."""
    step_env = {k: ctx.mapper.map_text(to_text(v), ctx.opt_ml) for k, v in (declared or {}).items()}
    step_env.update(extra)
    step_env.update(ctx.mapper.job_environment())
    step_env["SM_OPT_ML"] = str(ctx.opt_ml)
    env = dict(os.environ)
    for key, value in step_env.items():
        if key == "PYTHONPATH" and env.get("PYTHONPATH"):
            env[key] = value + os.pathsep + env["PYTHONPATH"]
        else:
            env[key] = value
    # The executor's own path must not leak a stale SM_* layout from the caller's environment.
    for key in list(env):
        if key.startswith("SM_CHANNEL_") and key not in step_env:
            del env[key]
    return env, step_env


def run_process(cmd: list[str], env: dict[str, str], ctx: StepContext, timeout: float | None) -> None:
    """Run the job; raise StepFailed with the failure file and the tail of stderr."""
    ctx.record["command"] = cmd
    with open(ctx.stdout_log, "wb") as out, open(ctx.stderr_log, "wb") as err:
        try:
            proc = subprocess.Popen(cmd, env=env, cwd=ctx.step_dir, stdout=out, stderr=err, start_new_session=True)
        except OSError as exc:
            raise StepFailed(f"cannot start {cmd[0]!r}: {exc}") from None
        ctx.processes.add(proc)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise StepFailed(f"MaxRuntimeInSeconds ({timeout:g}) exceeded; the job was stopped") from None
        except BaseException:
            kill_group(proc)
            raise
        finally:
            ctx.processes.discard(proc)
    ctx.record["exit_code"] = code
    if code != 0:
        raise StepFailed(_failure_reason(ctx, f"exit code {code}"))


def kill_group(proc: subprocess.Popen) -> None:
    """Stop a job and its children (each job runs in its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _failure_reason(ctx: StepContext, head: str) -> str:
    parts = [head]
    for name in ("failure", "message"):
        f = ctx.opt_ml / "output" / name
        if f.is_file() and f.read_text(errors="replace").strip():
            parts.append(f.read_text(errors="replace").strip()[:2000])
            break
    err = tail(ctx.stderr_log, 15)
    if err:
        parts.append("stderr (last lines):\n" + err)
    return "\n".join(parts)


def _max_runtime(args: dict[str, Any]) -> float | None:
    value = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    return float(value) if value else None


def _job_arn(ctx: StepContext) -> str:
    return f"arn:aws:sagemaker:local:000000000000:{ctx.spec.type.lower()}-job/{ctx.job_name}"


# ---- Processing -------------------------------------------------------------------------------


def instance_count(args: dict[str, Any]) -> int:
    """``ProcessingResources.ClusterConfig.InstanceCount`` (1 when absent)."""
    value = ((args.get("ProcessingResources") or {}).get("ClusterConfig") or {}).get("InstanceCount") or 1
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise StepFailed(f"ProcessingResources.ClusterConfig.InstanceCount must be an integer, got {value!r}") from None
    if count < 1:
        raise StepFailed(f"ProcessingResources.ClusterConfig.InstanceCount must be >= 1, got {count}")
    return count


def _host_context(ctx: StepContext, host: str, count: int) -> StepContext:
    """One instance of a multi-instance job: its own opt_ml and logs under ``<step>/<host>/``."""
    if count == 1:
        return ctx
    sub = replace(ctx, step_dir=ctx.step_dir / host, record={})
    sub.step_dir.mkdir(parents=True, exist_ok=True)
    return sub


def run_processing(ctx: StepContext) -> StepOutcome:
    """A processing job on ``InstanceCount`` local "instances" (concurrent processes).

    As on SageMaker, each instance gets ``/opt/ml/config/resourceconfig.json`` (``current_host``,
    ``hosts``), the ``FullyReplicated`` inputs whole or its ``ShardedByS3Key`` share of the objects,
    and every instance's output folder is uploaded to the same S3 prefix.
    """
    args = ctx.resolver.resolve(ctx.spec.arguments, {"ProcessingJobName": ctx.job_name})
    ctx.record["resolved_arguments"] = args
    ctx.record["ignored"] = _ignored(args)
    app = args.get("AppSpecification") or {}
    entry = app.get("ContainerEntrypoint")
    if not entry:
        raise StepFailed(
            "AppSpecification.ContainerEntrypoint is required: the local executor cannot run an image's default entrypoint"
        )
    count = instance_count(args)
    hosts = [f"algo-{i + 1}" for i in range(count)]
    hctx = {h: _host_context(ctx, h, count) for h in hosts}
    outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for out in outputs:
        if "S3Output" not in out:
            raise StepFailed(f"output {out.get('OutputName')}: only S3Output is supported locally")
    for inp in args.get("ProcessingInputs") or []:
        s3 = inp.get("S3Input")
        if not s3:
            raise StepFailed(f"input {inp.get('InputName')}: only S3Input is supported locally (not DatasetDefinition)")
        if s3.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise StepFailed(f"input {inp.get('InputName')}: S3DataType {s3['S3DataType']} is not supported locally")
        sharded = s3.get("S3DataDistributionType") == "ShardedByS3Key"
        for i, h in enumerate(hosts):
            files = hctx[h].mapper.download(s3["S3Uri"], map_opt_ml(s3["LocalPath"], hctx[h].opt_ml))
            if sharded and count > 1:  # S3 keys are dealt out in order: instance i keeps every n-th object
                for j, f in enumerate(files):
                    if j % count != i:
                        f.unlink()
    for h in hosts:
        c = hctx[h]
        for out in outputs:
            map_opt_ml(out["S3Output"]["LocalPath"], c.opt_ml).mkdir(parents=True, exist_ok=True)
        config = c.opt_ml / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": h, "hosts": hosts}, indent=2))

    cmds = {h: _local_command(list(entry) + list(app.get("ContainerArguments") or []), hctx[h]) for h in hosts}
    envs = {h: _environment(hctx[h], args.get("Environment"), {}) for h in hosts}
    ctx.record["environment"] = envs[hosts[0]][1]
    if count == 1:
        run_process(cmds[hosts[0]], envs[hosts[0]][0], ctx, _max_runtime(args))
    else:
        ctx.record["instances"] = hosts
        failures: dict[str, str] = {}

        def one(h: str) -> None:
            try:
                run_process(cmds[h], envs[h][0], hctx[h], _max_runtime(args))
            except StepFailed as exc:
                failures[h] = exc.reason

        threads = [threading.Thread(target=one, args=(h,), name=f"{ctx.spec.name}-{h}") for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ctx.record["command"] = cmds[hosts[0]]
        ctx.record["exit_codes"] = {h: hctx[h].record.get("exit_code") for h in hosts}
        if failures:
            h = sorted(failures)[0]
            raise StepFailed(f"instance {h} of {count}: {failures[h]}")

    for out in outputs:
        s3 = out["S3Output"]
        for h in hosts:
            hctx[h].mapper.upload(map_opt_ml(s3["LocalPath"], hctx[h].opt_ml), s3["S3Uri"])
    props = dict(args)
    props.update(
        ProcessingJobName=ctx.job_name,
        ProcessingJobArn=_job_arn(ctx),
        ProcessingJobStatus="Completed",
        ExitMessage="",
    )
    return StepOutcome(properties=props)


# ---- Training ---------------------------------------------------------------------------------


def _train_command(algo: dict[str, Any]) -> list[Any]:
    if algo.get("ContainerEntrypoint"):
        return list(algo["ContainerEntrypoint"]) + list(algo.get("ContainerArguments") or [])
    script = Path(sys.executable).with_name("train")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "training.entry"]


def run_training(ctx: StepContext) -> StepOutcome:
    args = ctx.resolver.resolve(ctx.spec.arguments, {"TrainingJobName": ctx.job_name})
    ctx.record["resolved_arguments"] = args
    ctx.record["ignored"] = _ignored(args)
    algo = args.get("AlgorithmSpecification") or {}
    cmd = _local_command(_train_command(algo), ctx)

    config = ctx.opt_ml / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    hps = {k: to_text(v) for k, v in (args.get("HyperParameters") or {}).items()}  # strings, as SageMaker
    (config / "hyperparameters.json").write_text(json.dumps(hps, indent=2))
    channels: dict[str, Any] = {}
    extra = {}
    for ch in args.get("InputDataConfig") or []:
        name = ch["ChannelName"]
        if not _CHANNEL.match(name) or name in (".", ".."):  # it names a folder under /opt/ml/input/data
            raise StepFailed(f"channel name {name!r} does not match {_CHANNEL.pattern}")
        s3 = (ch.get("DataSource") or {}).get("S3DataSource")
        if not s3:
            raise StepFailed(f"channel {name}: only S3DataSource is supported locally")
        if s3.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise StepFailed(f"channel {name}: S3DataType {s3['S3DataType']} is not supported locally")
        dest = ctx.opt_ml / "input" / "data" / name
        ctx.mapper.download(s3["S3Uri"], dest)
        channels[name] = {k: v for k, v in ch.items() if k != "DataSource"} | {"S3Uri": s3["S3Uri"]}
        extra[f"SM_CHANNEL_{name.upper()}"] = str(dest)
    (config / "inputdataconfig.json").write_text(json.dumps(channels, indent=2))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "current_instance_type": "local"}, indent=2)
    )
    model_dir = ctx.opt_ml / "model"
    output_data = ctx.opt_ml / "output" / "data"
    model_dir.mkdir(parents=True, exist_ok=True)
    output_data.mkdir(parents=True, exist_ok=True)
    extra.update(
        SM_MODEL_DIR=str(model_dir),
        SM_OUTPUT_DATA_DIR=str(output_data),
        SM_CHANNELS=json.dumps(sorted(channels)),
        SM_HPS=json.dumps(hps),
        SM_INPUT_CONFIG_DIR=str(config),
    )
    env, step_env = _environment(ctx, args.get("Environment"), extra)
    ctx.record["environment"] = step_env
    run_process(cmd, env, ctx, _max_runtime(args))

    output_path = (args.get("OutputDataConfig") or {}).get("S3OutputPath")
    if not output_path:
        raise StepFailed("OutputDataConfig.S3OutputPath is required")
    prefix = f"{output_path.rstrip('/')}/{ctx.job_name}/output"
    model_uri = f"{prefix}/model.tar.gz"
    ctx.mapper.put_archive(model_dir, model_uri)
    props = dict(args)
    if any(output_data.iterdir()):
        ctx.mapper.put_archive(output_data, f"{prefix}/output.tar.gz")
        props["OutputDataConfig"] = dict(props.get("OutputDataConfig") or {}) | {"OutputTarUri": f"{prefix}/output.tar.gz"}
    props.update(
        TrainingJobName=ctx.job_name,
        TrainingJobArn=_job_arn(ctx),
        TrainingJobStatus="Completed",
        SecondaryStatus="Completed",
        ModelArtifacts={"S3ModelArtifacts": model_uri},
    )
    return StepOutcome(properties=props)


# ---- Condition, Fail --------------------------------------------------------------------------


def run_condition(ctx: StepContext) -> StepOutcome:
    conditions = ctx.spec.arguments.get("Conditions") or []
    evaluated = []
    outcome = True
    for cond in conditions:
        value = ctx.resolver.evaluate(cond)
        evaluated.append({"condition": ctx.resolver.resolve(cond), "value": value})  # operands as compared
        outcome = outcome and value
    ctx.record["evaluated_conditions"] = evaluated
    return StepOutcome(properties={"Outcome": outcome}, condition=outcome)


def run_fail(ctx: StepContext) -> StepOutcome:
    message = to_text(ctx.resolver.resolve(ctx.spec.arguments.get("ErrorMessage", "")))
    ctx.record["resolved_arguments"] = {"ErrorMessage": message}
    return StepOutcome(properties={"ErrorMessage": message}, fail_message=message)


# ---- RegisterModel, Model ---------------------------------------------------------------------


def _read_metric(ctx: StepContext, uri: str, content_type: str | None) -> Any:
    if content_type and "json" not in content_type.lower():
        return ctx.mapper.read_text(uri)
    return ctx.mapper.read_json(uri, f"model metrics {uri}")


def _metrics(ctx: StepContext, model_metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """ModelMetrics' S3 documents read back. ``ModelQuality.Statistics`` (where SageMaker keeps the
    evaluation report) becomes the dict itself; any other source is added as ``"<Category>.<Kind>"``."""
    metrics: dict[str, Any] = {}
    uris: dict[str, str] = {}
    for category, kinds in (model_metrics or {}).items():
        for kind, source in (kinds or {}).items():
            if isinstance(source, dict) and source.get("S3Uri"):
                uris[f"{category}.{kind}"] = source["S3Uri"]
    main = uris.pop("ModelQuality.Statistics", None)
    if main:
        doc = _read_metric(ctx, main, model_metrics["ModelQuality"]["Statistics"].get("ContentType"))
        metrics.update(doc if isinstance(doc, dict) else {"ModelQuality.Statistics": doc})
    for key, uri in uris.items():
        category, kind = key.split(".", 1)
        metrics[key] = _read_metric(ctx, uri, model_metrics[category][kind].get("ContentType"))
    if main:
        uris["ModelQuality.Statistics"] = main
    return metrics, uris


# DriftCheckBaselines (Category, Kind) -> the file name the local registry keeps it under.
_BASELINE_FILES = {
    ("ModelDataQuality", "Statistics"): "data-statistics",
    ("ModelDataQuality", "Constraints"): "data-constraints",
    ("ModelQuality", "Statistics"): "model-statistics",
    ("ModelQuality", "Constraints"): "model-constraints",
}


def _drift_check_baselines(ctx: StepContext, baselines: dict[str, Any]) -> dict[str, tuple[str, Path]]:
    """name -> (S3 URI, local file) of each drift-check baseline; the files must exist."""
    out = {}
    for (category, kind), name in _BASELINE_FILES.items():
        source = ((baselines or {}).get(category) or {}).get(kind)
        if isinstance(source, dict) and source.get("S3Uri"):
            uri = source["S3Uri"]
            if ctx.mapper.is_s3:  # fetched into the step's folder: the registry copies it beside package.json
                name_in_s3 = uri.rstrip("/").rsplit("/", 1)[-1]
                try:
                    got = ctx.mapper.download(uri, ctx.step_dir / "baselines" / name)
                except LakeError:
                    got = []
                path = next((f for f in got if f.name == name_in_s3), ctx.step_dir / "baselines" / name / name_in_s3)
            else:
                path = ctx.mapper.s3_to_local(uri)
            if not path.is_file():
                raise StepFailed(f"DriftCheckBaselines.{category}.{kind}: {source['S3Uri']} does not exist in the lake")
            out[name] = (source["S3Uri"], path)
    return out


def run_register_model(ctx: StepContext) -> StepOutcome:
    args = ctx.resolver.resolve(ctx.spec.arguments)
    ctx.record["resolved_arguments"] = args
    group = args.get("ModelPackageGroupName")
    if not group:
        raise StepFailed("ModelPackageGroupName is required to register locally")
    containers = (args.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers or not containers[0].get("ModelDataUrl"):
        raise StepFailed("InferenceSpecification.Containers[0].ModelDataUrl is required")
    container = containers[0]
    model_url = container["ModelDataUrl"]
    if model_url.startswith("s3://"):
        model_artifact = ctx.mapper.registry_artifact(model_url)  # a lake file, or the S3 URI itself
    elif ctx.mapper.is_s3:
        raise StepFailed(f"ModelDataUrl {model_url!r} is not an s3:// URI")
    else:
        model_artifact = Path(model_url)
    metrics, metric_uris = _metrics(ctx, args.get("ModelMetrics") or {})
    baselines = _drift_check_baselines(ctx, args.get("DriftCheckBaselines") or {})
    from pipelines.registry import LocalRegistry  # lazy: the executor must import without it

    s3 = ctx.mapper.s3 if ctx.mapper.is_s3 else None
    record = LocalRegistry(ctx.registry_root, s3=s3).register(
        group=group,
        model_data_path=model_artifact,
        image_uri=to_text(container.get("Image")),
        approval_status=args.get("ModelApprovalStatus") or "PendingManualApproval",
        metrics=metrics,
        source={
            "pipeline_execution_id": ctx.execution_id,
            "step": ctx.spec.name,
            "model_data_url": model_url,
            "model_metrics": metric_uris,
            "customer_metadata": args.get("CustomerMetadataProperties") or {},
            "drift_check_baselines": {k: v[0] for k, v in baselines.items()},
        },
        description=args.get("ModelPackageDescription"),
        files={f"baselines/{name}.json": path for name, (_, path) in baselines.items()},
    )
    ctx.record["registered"] = record
    props = {k: v for k, v in record.items() if k not in ("Metrics", "Source")}
    return StepOutcome(properties=props)


def run_model(ctx: StepContext) -> StepOutcome:
    """A create-model step: nothing to create locally; check the artifact and record the model."""
    args = ctx.resolver.resolve(ctx.spec.arguments)
    ctx.record["resolved_arguments"] = args
    containers = [args["PrimaryContainer"]] if args.get("PrimaryContainer") else list(args.get("Containers") or [])
    for c in containers:
        url = c.get("ModelDataUrl")
        if isinstance(url, str) and url.startswith("s3://") and not ctx.mapper.exists(url):
            raise StepFailed(f"ModelDataUrl {url} does not exist in the lake")
    name = ctx.job_name
    (ctx.step_dir / "model.json").write_text(json.dumps({"ModelName": name, **args}, indent=2, default=str))
    return StepOutcome(properties={"ModelName": name, "ModelArn": f"arn:aws:sagemaker:local:000000000000:model/{name}"})


def _run_quality_check(ctx: StepContext) -> StepOutcome:
    from .quality_check import run_quality_check  # imports this module: resolved at call time

    return run_quality_check(ctx)


HANDLERS: dict[str, Callable[[StepContext], StepOutcome]] = {
    "Processing": run_processing,
    "Training": run_training,
    "Condition": run_condition,
    "Fail": run_fail,
    "RegisterModel": run_register_model,
    "Model": run_model,
    "QualityCheck": _run_quality_check,
}

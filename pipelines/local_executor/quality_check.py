"""The ``QualityCheck`` step type locally: Model Monitor's baselining job with our analyzer.

On SageMaker a QualityCheck step runs a processing job with Model Monitor's analyzer image (its
``Arguments`` are that CreateProcessingJob request) and then resolves which baseline the model
will be checked against (docs: "Baseline calculation, drift detection and lifecycle with
ClarifyCheck and QualityCheck steps"):

- ``CalculatedBaselineStatistics`` / ``CalculatedBaselineConstraints``: the job's new baseline;
- ``BaselineUsedForDriftCheck*``: the new one when ``RegisterNewBaseline``, else the supplied one
  (``SuppliedBaseline*``), else the latest Approved package of ``ModelPackageGroupName``;
- unless ``SkipCheck``, the dataset is checked against that baseline, and a violation fails the
  step when ``FailOnViolation``.

The image cannot run here, so the job is ``python -m monitoring.job`` (the same environment
contract: ``dataset_format``, ``dataset_source``, ``output_path``, ...), writing the same files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .expressions import to_text
from .jobs import StepContext, StepFailed, StepOutcome, _environment, _ignored, _job_arn, _max_runtime, run_process
from .lake import map_opt_ml

CHECK_TYPES = {"DATA_QUALITY", "MODEL_QUALITY"}
PROPERTY_NAMES = (
    "CalculatedBaselineStatistics",
    "CalculatedBaselineConstraints",
    "BaselineUsedForDriftCheckStatistics",
    "BaselineUsedForDriftCheckConstraints",
)
_REGISTRY_FILES = {"DATA_QUALITY": ("data-statistics", "data-constraints"), "MODEL_QUALITY": ("model-statistics", "model-constraints")}


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _registered_baseline(ctx: StepContext, group: str | None, check_type: str) -> tuple[str, str] | None:
    """Local paths of the latest Approved package's drift-check baseline of this kind, if any."""
    if not group:
        return None
    from pipelines.registry import LocalRegistry

    pkg = LocalRegistry(ctx.registry_root).latest(group, "Approved")
    if pkg is None:
        return None
    # Beside package.json (in either lake mode: with an S3 lake ModelDataUrl is an s3:// URI).
    folder = Path(ctx.registry_root) / group / str(pkg["ModelPackageVersion"]) / "baselines"
    stats, cons = (folder / f"{n}.json" for n in _REGISTRY_FILES[check_type])
    return (str(stats), str(cons)) if stats.is_file() and cons.is_file() else None


def _local_file(ctx: StepContext, uri: str, i: int) -> str:
    """A baseline file named by S3 URI as a local path: the folder lake's file, or a copy from the S3 lake."""
    if not ctx.mapper.is_s3:
        return str(ctx.mapper.s3_to_local(uri))
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    got = ctx.mapper.download(uri, ctx.step_dir / "baseline" / str(i))
    return str(next((f for f in got if f.name == name), got[0]))


def run_quality_check(ctx: StepContext) -> StepOutcome:
    raw = ctx.spec.raw
    args = ctx.resolver.resolve(ctx.spec.arguments, {"ProcessingJobName": ctx.job_name})
    step_fields = {k: ctx.resolver.resolve(raw.get(k)) for k in
                   ("CheckType", "ModelPackageGroupName", "SkipCheck", "FailOnViolation", "RegisterNewBaseline",
                    "SuppliedBaselineStatistics", "SuppliedBaselineConstraints")}  # fmt: skip
    ctx.record["resolved_arguments"] = args
    ctx.record["check"] = step_fields
    ctx.record["ignored"] = _ignored(args) | {"AppSpecification.ImageUri": (args.get("AppSpecification") or {}).get("ImageUri")}
    check_type = step_fields["CheckType"]
    if check_type not in CHECK_TYPES:
        raise StepFailed(f"CheckType {check_type!r} is not one of {sorted(CHECK_TYPES)}")

    for inp in args.get("ProcessingInputs") or []:
        s3 = inp.get("S3Input")
        if not s3:
            raise StepFailed(f"input {inp.get('InputName')}: only S3Input is supported locally")
        ctx.mapper.download(s3["S3Uri"], map_opt_ml(s3["LocalPath"], ctx.opt_ml))
    outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    if len(outputs) != 1 or "S3Output" not in outputs[0]:
        raise StepFailed("a QualityCheck job has exactly one S3 output (the baseline)")
    out = outputs[0]["S3Output"]
    out_local = map_opt_ml(out["LocalPath"], ctx.opt_ml)
    out_local.mkdir(parents=True, exist_ok=True)
    out_uri = out["S3Uri"].rstrip("/")

    declared = dict(args.get("Environment") or {})
    env, step_env = _environment(ctx, declared, {})
    ctx.record["environment"] = step_env
    run_process([sys.executable, "-m", "monitoring.job"], env, ctx, _max_runtime(args))
    for name in ("statistics.json", "constraints.json"):
        if not (out_local / name).is_file():
            raise StepFailed(f"the analyzer wrote no {name} in {out['LocalPath']}")
    ctx.mapper.upload(out_local, out_uri)
    calculated = (f"{out_uri}/statistics.json", f"{out_uri}/constraints.json")

    if _flag(step_fields["RegisterNewBaseline"], False):
        used = calculated
    elif step_fields["SuppliedBaselineStatistics"] and step_fields["SuppliedBaselineConstraints"]:
        used = (to_text(step_fields["SuppliedBaselineStatistics"]), to_text(step_fields["SuppliedBaselineConstraints"]))
    else:
        registered = _registered_baseline(ctx, to_text(step_fields["ModelPackageGroupName"] or ""), check_type)
        used = registered or calculated

    if not _flag(step_fields["SkipCheck"], False) and used != calculated and check_type == "DATA_QUALITY":
        check_dir = ctx.step_dir / "check"
        local = [_local_file(ctx, u, i) if u.startswith("s3://") else u for i, u in enumerate(used)]
        env_check = dict(env, output_path=str(check_dir), baseline_statistics=local[0], baseline_constraints=local[1])
        run_process([sys.executable, "-m", "monitoring.job"], env_check, ctx, _max_runtime(args))
        violations = json.loads((check_dir / "constraint_violations.json").read_text())["violations"]
        ctx.record["violations"] = violations
        if violations and _flag(step_fields["FailOnViolation"], True):
            first = "; ".join(f"{v['feature_name']}: {v['constraint_check_type']}" for v in violations[:5])
            raise StepFailed(f"ClientError: Quality check failed with {len(violations)} violation(s): {first}")

    props = dict(args)
    props.update(
        ProcessingJobName=ctx.job_name,
        ProcessingJobArn=_job_arn(ctx).replace("qualitycheck-job", "processing-job"),
        ProcessingJobStatus="Completed",
        CalculatedBaselineStatistics=calculated[0],
        CalculatedBaselineConstraints=calculated[1],
        BaselineUsedForDriftCheckStatistics=used[0],
        BaselineUsedForDriftCheckConstraints=used[1],
    )
    return StepOutcome(properties=props)

"""The analyzer as a job with Model Monitor's container contract: ``python -m monitoring.job``.

Model Monitor's analyzer image is driven by environment variables (Developer Guide, "Container
contract inputs", and what the SDK's ``DataQualityCheckConfig`` / ``ModelQualityCheckConfig`` put
in a QualityCheck step): ``dataset_format`` (JSON: ``{"csv": {"header": true}}``, ``{"json":
{"lines": true}}``, ``{"parquet": {}}`` or ``{"sagemakerCaptureJson": ...}``), ``dataset_source``
(a local folder), ``output_path``, optional ``baseline_statistics`` / ``baseline_constraints``
(then the dataset is checked against them), ``publish_cloudwatch_metrics``, and for model quality
``analysis_type=MODEL_QUALITY`` with ``problem_type``, ``inference_attribute``,
``ground_truth_attribute``, ``probability_attribute``.

The local executor runs this module for the pipeline's ``QualityCheck`` steps (where AWS runs the
analyzer image); it writes ``statistics.json``, ``constraints.json`` and, when checking,
``constraint_violations.json`` into ``output_path``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path

import pandas as pd

from monitoring import analyzer, model_quality

log = logging.getLogger("monitoring.job")


def read_dataset(source: Path, fmt: dict, text: bool = False) -> pd.DataFrame:
    """Every file of ``source`` in ``fmt`` (Model Monitor's DatasetFormat JSON), concatenated.

    ``text``: CSV cells stay text (empty cells missing), so that the analyzer types each value as
    written ("3980.0" Fractional, "3980" Integral), as Model Monitor's analyzer does on CSV."""
    return read_dataset_windows(source, fmt, text)[0]


def read_dataset_windows(source: Path, fmt: dict, text: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """(:func:`read_dataset`, each record's file name): the baseline dataset's files are its
    monitoring windows (``core.monitoring_datasets.write_data_baseline`` writes one per search day)."""
    files = sorted(p for p in Path(source).rglob("*") if p.is_file()) if Path(source).is_dir() else [Path(source)]
    if not files:
        raise FileNotFoundError(f"no dataset files under {source}")
    if "csv" in fmt:
        header = bool((fmt["csv"] or {}).get("header", True))
        kw = {"dtype": str, "keep_default_na": False, "na_values": [""]} if text else {}
        frames = [pd.read_csv(f, header=0 if header else None, **kw) for f in files]
        if not header:
            for fr in frames:
                fr.columns = [f"_c{i}" for i in range(fr.shape[1])]  # the analyzer's names for headerless columns
    elif "json" in fmt:
        lines = bool((fmt["json"] or {}).get("lines", True))
        frames = [pd.read_json(f, lines=lines) for f in files]
    elif "parquet" in fmt:
        frames = [pd.read_parquet(f) for f in files]
    else:
        raise ValueError(f"dataset_format {json.dumps(fmt)} is not supported (csv, json or parquet)")
    names = [f.name for f, fr in zip(files, frames) for _ in range(len(fr))]
    return (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]), names


def data_quality(df: pd.DataFrame, out: Path, baseline_statistics: Path | None = None,
                 baseline_constraints: Path | None = None, overrides: dict | None = None, windows=None) -> dict:
    """Baseline (no baseline given) or check (baseline given) ``df``; returns what was written.

    ``windows``: each baseline record's monitoring window (its search date). Then the suggested
    thresholds are widened to what the baseline's own windows show
    (:func:`monitoring.analyzer.calibrate_constraints`); without it, the plain suggestion."""
    out.mkdir(parents=True, exist_ok=True)
    profiles = analyzer.profile(df)
    stats = analyzer.statistics(df, profiles=profiles)
    _write(out / analyzer.STATISTICS_FILE, stats)
    written = {"statistics": stats}
    if baseline_constraints is None:
        cons = analyzer.suggest_constraints(stats, overrides=overrides)
        if windows is not None:
            cons, written["calibration"] = analyzer.calibrate_constraints(df, windows, cons, profiles=profiles)
        _write(out / analyzer.CONSTRAINTS_FILE, cons)
        written["constraints"] = cons
    else:
        base_stats = json.loads(Path(baseline_statistics).read_text()) if baseline_statistics else {"features": []}
        cons = json.loads(Path(baseline_constraints).read_text())
        violations, _ = analyzer.check(profiles, stats, base_stats, cons)
        _write(out / analyzer.VIOLATIONS_FILE, violations)
        written["violations"] = violations
    return written


def model_quality_baseline(df: pd.DataFrame, out: Path, problem_type: str, inference_attribute: str,
                           ground_truth_attribute: str, probability_attribute: str | None = None,
                           constraints: dict | None = None) -> dict:
    """Model-quality statistics of a predictions-vs-labels dataset, and its constraints."""
    for col in (inference_attribute, ground_truth_attribute):
        if col not in df.columns:
            raise ValueError(f"column {col!r} is not in the dataset (columns: {', '.join(map(str, df.columns))})")
    y, pred = df[ground_truth_attribute].to_numpy(), df[inference_attribute].to_numpy()
    score = df[probability_attribute].to_numpy() if probability_attribute and probability_attribute in df.columns else None
    stats = model_quality.statistics(problem_type, y, pred, score=score if problem_type == "BinaryClassification" else None)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / analyzer.STATISTICS_FILE, stats)
    if constraints is None:
        constraints = _suggest_model_constraints(stats, problem_type)
    _write(out / analyzer.CONSTRAINTS_FILE, constraints)
    return {"statistics": stats, "constraints": constraints}


def _suggest_model_constraints(stats: dict, problem_type: str) -> dict:
    """Without gates: the baseline's own values as thresholds, as Model Monitor's suggestion does."""
    metrics_key, cons_key = model_quality.SECTIONS[problem_type]
    lower_is_better = {"mae", "mse", "rmse", "false_positive_rate", "false_negative_rate"}
    body = {}
    for name, m in stats[metrics_key].items():
        if isinstance(m, dict) and isinstance(m.get("value"), (int, float)) and "best_constant" not in name:
            op = "GreaterThanThreshold" if name in lower_is_better else "LessThanThreshold"
            body[name] = {"threshold": float(m["value"]), "comparison_operator": op}
    return {"version": 0.0, cons_key: body}


def _write(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2))


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def main(argv: list[str] | None = None) -> int:
    """Run from the environment, as the analyzer image is; ``--model M`` sets the gates as
    model-quality constraints (the local stand-in's one addition)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    model = argv[argv.index("--model") + 1] if "--model" in argv else os.environ.get("airfare_model")
    try:
        fmt = json.loads(os.environ.get("dataset_format") or '{"csv": {"header": true}}')
        source = _env_path("dataset_source")
        out = _env_path("output_path")
        if source is None or out is None:
            raise ValueError("dataset_source and output_path must be set in the environment")
        model_quality_job = os.environ.get("analysis_type", "").upper() == "MODEL_QUALITY"
        df, files = read_dataset_windows(source, fmt, text=not model_quality_job)
        if model_quality_job:
            problem = os.environ.get("problem_type", "")
            cons = model_quality.constraints_from_gates(model) if model in model_quality.PROBLEM_TYPES else None
            model_quality_baseline(df, out, problem, os.environ.get("inference_attribute", "prediction"),
                                   os.environ.get("ground_truth_attribute", "label"),
                                   os.environ.get("probability_attribute"), cons)  # fmt: skip
        else:
            overrides = windows = None
            if model:  # our baselines: the contract's overrides, thresholds from the dataset's daily files
                from monitoring.monitor import comparison_overrides

                overrides = comparison_overrides(list(df.columns))
                windows = files if len(set(files)) > 1 else None
            data_quality(df, out, _env_path("baseline_statistics"), _env_path("baseline_constraints"), overrides, windows)
    except Exception as exc:  # noqa: BLE001 - the job contract: a message in the failure file, exit 1
        log.error("analysis failed:\n%s", traceback.format_exc())
        from core import sm_paths

        failure = sm_paths.failure_file()
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{type(exc).__name__}: {exc}"[:1024])
        return 1
    log.info("analysis written to %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

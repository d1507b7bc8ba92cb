"""Monitoring runs on captured traffic: data quality against the baseline, model quality against
ground truth. Plain functions; ``pipelines.monitor_cli`` is their thin shell.

What a run writes in ``out`` (the files a Model Monitor execution leaves in its output prefix):
``statistics.json``, ``constraint_violations.json``, ``cloudwatch_metrics.json`` (the
``PutMetricData`` requests Model Monitor would send: same namespace, names and dimensions) and
``report.html``; model quality adds one folder per time window.
"""

from __future__ import annotations

import datetime as dt
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core import contract
from core.pipeline_contract import MODEL_META_FILE
from core import monitoring_datasets as datasets
from monitoring import analyzer, capture, model_quality

DATA_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
METRICS_FILE = "cloudwatch_metrics.json"
REPORT_FILE = "report.html"
# Calendar-driven features (the contract says which and why): no distribution comparison.
CLOCK_FEATURES = contract.CLOCK_FEATURES
CALENDAR_FEATURES = contract.CALENDAR_FEATURES
DEFAULT_ENDPOINTS = {m: f"{m}-prediction-endpoint" for m in model_quality.PROBLEM_TYPES}


class MonitorError(ValueError):
    """A user-facing problem: no baseline, no capture, a bad window."""


def comparison_overrides(columns: list[str]) -> dict[str, dict[str, Any]]:
    """``monitoringConfigOverrides`` for the baselines: no distribution comparison on calendar-driven
    features (``core.contract.CALENDAR_FEATURES``; their type, completeness and domain are still
    checked), a wider drift threshold on market-state features (``MARKET_STATE_FEATURES``)."""
    out: dict[str, dict[str, Any]] = {c: {"perform_comparison": "Disabled"} for c in columns if c in CALENDAR_FEATURES}
    for c in columns:
        if c in contract.MARKET_STATE_FEATURES:
            t = contract.MARKET_STATE_DRIFT_THRESHOLD
            out[c] = {"comparison_threshold": t, "categorical_comparison_threshold": t}
    return out


# ---------------------------------------------------------------------------------------------
# Baselines from the registry
# ---------------------------------------------------------------------------------------------
@dataclass
class Baseline:
    statistics: dict
    constraints: dict
    source: str
    meta: dict | None = None
    model_statistics: dict | None = None
    model_constraints: dict | None = None


def model_meta_from_package(package: dict) -> dict | None:
    """``model_meta.json`` of a registered package's ``model.tar.gz`` (None if unreadable)."""
    path = Path(package.get("ModelDataUrl") or "")
    if path.is_dir():
        metas = sorted(path.rglob(MODEL_META_FILE))
        return json.loads(metas[0].read_text()) if metas else None
    if not path.is_file():
        return None
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            if member.name.endswith(MODEL_META_FILE):
                fh = tar.extractfile(member)
                return json.loads(fh.read()) if fh else None
    return None


def baseline_from_package_dir(folder: Path, source: str, meta: dict | None = None) -> Baseline:
    """The drift-check baselines registered with a model package, in ``folder`` (the package's
    ``baselines/``; the registry lookup is the caller's, ``pipelines.monitor_cli``)."""
    folder = Path(folder)
    files = {k: folder / f"{k}.json" for k in ("data-statistics", "data-constraints", "model-statistics", "model-constraints")}
    if not files["data-statistics"].is_file() or not files["data-constraints"].is_file():
        raise MonitorError(f"package {source} carries no drift-check baselines (looked in {folder}); "
                           "pass --baseline DIR with statistics.json and constraints.json")  # fmt: skip

    def load(key):
        return json.loads(files[key].read_text()) if files[key].is_file() else None

    return Baseline(statistics=load("data-statistics"), constraints=load("data-constraints"), source=source,
                    meta=meta, model_statistics=load("model-statistics"),
                    model_constraints=load("model-constraints"))  # fmt: skip


def baseline_from_dir(folder: Path) -> Baseline:
    folder = Path(folder)
    paths = [folder / analyzer.STATISTICS_FILE, folder / analyzer.CONSTRAINTS_FILE]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MonitorError(f"--baseline {folder}: missing {', '.join(missing)}")
    return Baseline(statistics=json.loads(paths[0].read_text()), constraints=json.loads(paths[1].read_text()), source=str(folder))


# ---------------------------------------------------------------------------------------------
# Data quality
# ---------------------------------------------------------------------------------------------
@dataclass
class DataQualityResult:
    statistics: dict
    violations: dict
    checks: list[analyzer.FeatureCheck]
    metrics: dict
    records: int
    out: Path
    baseline_source: str
    window: tuple[str | None, str | None] = (None, None)

    @property
    def ok(self) -> bool:
        return not self.violations["violations"]


def data_quality_metrics(checks: list[analyzer.FeatureCheck], current_stats: dict, endpoint: str, schedule: str,
                         when: dt.datetime) -> dict:
    """The ``PutMetricData`` request Model Monitor's analyzer makes (``emit_metrics`` Enabled):
    ``feature_data_<f>`` (statistic set), ``feature_non_null_<f>`` and ``feature_baseline_drift_<f>``."""
    dims = [{"Name": "Endpoint", "Value": endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}]
    data: list[dict] = []
    feats = {f["name"]: f for f in current_stats["features"]}

    def datum(name: str, **kw) -> dict:
        return {"MetricName": name[:255], "Dimensions": dims, "Timestamp": when.isoformat(), **kw}

    for fc in checks:
        f = feats.get(fc.name)
        if f is None:
            continue
        num = f.get("numerical_statistics")
        if num and num["common"]["num_present"]:
            data.append(datum(f"feature_data_{fc.name}", StatisticValues={
                "SampleCount": float(num["common"]["num_present"]), "Sum": float(num["sum"]),
                "Minimum": float(num["min"]), "Maximum": float(num["max"])}, Unit="None"))  # fmt: skip
        if fc.completeness is not None:
            data.append(datum(f"feature_non_null_{fc.name}", Value=float(fc.completeness), Unit="None"))
        if fc.drift is not None:
            data.append(datum(f"feature_baseline_drift_{fc.name}", Value=float(fc.drift), Unit="None"))
    return {"Namespace": DATA_NAMESPACE, "MetricData": data}


def run_data_quality(model: str, capture_dir: Path, out: Path, *, baseline: Baseline, since=None, until=None,
                     endpoint: str | None = None, schedule: str | None = None) -> DataQualityResult:
    """Compare the inputs captured in ``[since, until)`` with ``baseline``; write the outputs."""
    since_t, until_t = capture.parse_time(since), capture.parse_time(until)
    if since_t and until_t and since_t >= until_t:
        raise MonitorError(f"--since {since} is not before --until {until}")
    columns = datasets.input_columns(baseline.meta) if baseline.meta else [f["name"] for f in baseline.statistics["features"]]
    cap = capture.read_capture(capture_dir, columns=columns, since=since_t, until=until_t)
    if cap.inputs.empty:
        raise MonitorError(f"no captured records under {capture_dir} in the window [{since or '-inf'}, {until or '+inf'})")
    # arrival order: the analyzer weighs runs of records sharing a value (a search's offers) as one draw
    order = cap.events["inference_time"].argsort(kind="stable").to_numpy() if len(cap.events) == len(cap.inputs) else None
    inputs = cap.inputs.iloc[order].reset_index(drop=True) if order is not None else cap.inputs
    profiles = analyzer.profile(inputs)
    analyzer.apply_units(profiles, inputs, contract.SHARED_VALUE_UNITS)  # e.g. one route-date, one draw
    stats = analyzer.statistics(inputs, profiles=profiles)
    violations, checks = analyzer.check(profiles, stats, baseline.statistics, baseline.constraints)
    when = until_t or dt.datetime.now(dt.timezone.utc)
    endpoint = endpoint or DEFAULT_ENDPOINTS[model]
    metrics = data_quality_metrics(checks, stats, endpoint, schedule or f"{endpoint}-data-quality", when)
    emit = str((baseline.constraints.get("monitoring_config") or {}).get("emit_metrics", "Enabled")) == "Enabled"
    out.mkdir(parents=True, exist_ok=True)
    (out / analyzer.STATISTICS_FILE).write_text(json.dumps(stats, indent=2))
    (out / analyzer.VIOLATIONS_FILE).write_text(json.dumps(violations, indent=2))
    (out / METRICS_FILE).write_text(json.dumps(metrics if emit else {"Namespace": DATA_NAMESPACE, "MetricData": []}, indent=2))
    result = DataQualityResult(stats, violations, checks, metrics, len(cap.inputs), out, baseline.source,
                               (since_t.isoformat() if since_t else None, until_t.isoformat() if until_t else None))
    from monitoring import report

    report.data_quality_html(model, result, baseline.statistics, out / REPORT_FILE)
    return result


# ---------------------------------------------------------------------------------------------
# Model quality
# ---------------------------------------------------------------------------------------------
@dataclass
class WindowQuality:
    start: str
    end: str
    records: int
    labelled: int
    statistics: dict | None
    violations: dict
    note: str = ""
    robust: dict = field(default_factory=dict)  # beside Model Monitor's metrics: {"trimmed_mae"} (regression)


@dataclass
class ModelQualityResult:
    model: str
    windows: list[WindowQuality]
    constraints: dict
    metrics: dict
    out: Path
    unmatched_labels: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(w.violations["violations"] for w in self.windows)


def _labels(model: str, raw: pd.Series) -> pd.Series:
    if model == "price":
        return pd.to_numeric(raw, errors="coerce")
    if model == "anomaly":
        text = raw.astype(str).str.strip().str.lower()
        return text.map({"1": 1, "true": 1, "1.0": 1, "0": 0, "false": 0, "0.0": 0})
    return raw.astype(str).str.strip()


def _predictions(model: str, outputs: pd.DataFrame) -> tuple[pd.Series, pd.Series | None]:
    field_ = datasets.PREDICTION_FIELDS[model]
    col = field_ if field_ in outputs.columns else "_prediction"
    if col not in outputs.columns:
        raise MonitorError(f"captured outputs carry no {field_!r} field (columns: {', '.join(outputs.columns)})")
    pred = outputs[col]
    score = outputs[datasets.SCORE_FIELDS[model]] if model in datasets.SCORE_FIELDS and datasets.SCORE_FIELDS[model] in outputs else None
    if model == "price":
        pred = pd.to_numeric(pred, errors="coerce")
    elif model == "anomaly":
        pred = pred.map(lambda v: int(bool(v)) if isinstance(v, (bool, int, float)) else int(str(v).lower() in ("1", "true")))
    else:
        pred = pred.astype(str)
    return pred, (pd.to_numeric(score, errors="coerce") if score is not None else None)


def merge_ground_truth(model: str, cap: capture.Captured, truth: pd.DataFrame, *, unlabelled_negative: bool = False,
                       label_horizon: dt.timedelta | None = None, now: dt.datetime | None = None) -> pd.DataFrame:
    """Captured predictions joined with ground truth by record id (``inferenceId`` or ``eventId``).

    ``unlabelled_negative`` (the anomaly model: ground truth lists confirmed incidents only): a
    record with no label counts as "no incident" once it is older than ``label_horizon``.
    """
    pred, score = _predictions(model, cap.outputs)
    frame = cap.events.copy()
    frame["prediction"] = pred.to_numpy()
    if score is not None:
        frame["score"] = score.to_numpy()
    frame = frame.merge(truth.rename(columns={"label": "raw_label"}), on="record_id", how="left")
    frame["label"] = _labels(model, frame["raw_label"])
    if unlabelled_negative:
        now = now or dt.datetime.now(dt.timezone.utc)
        old = frame["inference_time"] <= pd.Timestamp(now - (label_horizon or dt.timedelta(0)))
        frame.loc[frame["label"].isna() & old, "label"] = 0
    return frame


def run_model_quality(model: str, capture_dir: Path, ground_truth_dir: Path, out: Path, *, constraints: dict | None = None,
                      window: str = "1D", since=None, until=None, endpoint: str | None = None, schedule: str | None = None,
                      label_horizon_h: float = 72.0, now=None, min_labels: int = 30) -> ModelQualityResult:
    """Model-quality metrics of the captured predictions per ``window``, against ``constraints``
    (default: the promotion gates). A window with fewer than ``min_labels`` labels is reported
    but not judged."""
    since_t, until_t = capture.parse_time(since), capture.parse_time(until)
    now_t = capture.parse_time(now) or until_t or dt.datetime.now(dt.timezone.utc)
    cap = capture.read_capture(capture_dir, since=since_t, until=until_t)
    if cap.events.empty:
        raise MonitorError(f"no captured records under {capture_dir} in the window")
    truth = capture.read_ground_truth(ground_truth_dir, until=now_t)
    constraints = constraints or model_quality.constraints_from_gates(model)
    frame = merge_ground_truth(model, cap, truth, unlabelled_negative=(model == "anomaly"),
                               label_horizon=dt.timedelta(hours=label_horizon_h), now=now_t)  # fmt: skip
    problem = model_quality.PROBLEM_TYPES[model]
    endpoint = endpoint or DEFAULT_ENDPOINTS[model]
    schedule = schedule or f"{endpoint}-model-quality"
    dims = [{"Name": "Endpoint", "Value": endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}]
    metric_data: list[dict] = []
    windows: list[WindowQuality] = []
    try:
        offset = pd.tseries.frequencies.to_offset(window)
    except ValueError:
        raise MonitorError(f"--window {window!r} is not a pandas frequency such as 1h, 6h or 1D") from None
    frame["window"] = frame["inference_time"].dt.floor(offset) if offset.n and offset.name in ("h", "D", "min") else frame["inference_time"].dt.floor(window)
    metrics_key = model_quality.SECTIONS[problem][0]
    for start, part in frame.groupby("window", sort=True):
        end = start + offset
        labelled = part.dropna(subset=["label", "prediction"])
        wdir = out / "windows" / start.strftime("%Y-%m-%dT%H%M")
        note = ""
        stats = None
        violations = {"violations": []}
        if len(labelled) >= min_labels:
            classes = None
            if problem == "MulticlassClassification":
                from core import contract

                classes = list(contract.DEMAND_CLASSES)
            stats = model_quality.statistics(problem, labelled["label"].to_numpy(), labelled["prediction"].to_numpy(),
                                             score=labelled["score"].to_numpy() if "score" in labelled else None,
                                             classes=classes, evaluation_time=end.to_pydatetime())  # fmt: skip
            violations = model_quality.check(stats, constraints)
            for name, m in stats[metrics_key].items():
                if isinstance(m, dict) and isinstance(m.get("value"), (int, float)):
                    metric_data.append({"MetricName": name, "Dimensions": dims, "Timestamp": end.isoformat(),
                                        "Value": float(m["value"]), "Unit": "None"})  # fmt: skip
        else:
            note = f"{len(labelled)} labelled records (< {min_labels}): not judged"
        wdir.mkdir(parents=True, exist_ok=True)
        if stats is not None:
            (wdir / analyzer.STATISTICS_FILE).write_text(json.dumps(stats, indent=2))
        (wdir / analyzer.VIOLATIONS_FILE).write_text(json.dumps(violations, indent=2))
        robust = {}
        if problem == "Regression" and len(labelled):
            robust["trimmed_mae"] = model_quality.trimmed_mae(labelled["label"].to_numpy(), labelled["prediction"].to_numpy())
        windows.append(WindowQuality(start.isoformat(), end.isoformat(), int(len(part)), int(len(labelled)), stats, violations, note,
                                     robust))  # fmt: skip
    matched = set(frame.loc[frame["raw_label"].notna(), "record_id"])
    result = ModelQualityResult(model, windows, constraints, {"Namespace": MODEL_NAMESPACE, "MetricData": metric_data}, out,
                                unmatched_labels=int((~truth["record_id"].isin(matched)).sum()) if len(truth) else 0)
    out.mkdir(parents=True, exist_ok=True)
    (out / analyzer.CONSTRAINTS_FILE).write_text(json.dumps(constraints, indent=2))
    (out / METRICS_FILE).write_text(json.dumps(result.metrics, indent=2))
    all_violations = [dict(v, window_start=w.start) for w in windows for v in w.violations["violations"]]
    (out / analyzer.VIOLATIONS_FILE).write_text(json.dumps({"violations": all_violations}, indent=2))
    summary = {"model": model, "problem_type": problem, "windows": [
        {"start": w.start, "end": w.end, "records": w.records, "labelled": w.labelled, "note": w.note,
         "metrics": {k: v["value"] for k, v in (w.statistics or {}).get(metrics_key, {}).items() if isinstance(v, dict) and "value" in v},
         "robust_metrics": w.robust, "violations": w.violations["violations"]} for w in windows],
        "unmatched_labels": result.unmatched_labels}  # fmt: skip
    (out / "model_quality.json").write_text(json.dumps(summary, indent=2, default=str))
    from monitoring import report

    report.model_quality_html(result, summary, out / REPORT_FILE)
    return result

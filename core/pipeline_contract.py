"""The pipeline's contract: the facts that the definition, the static check, the step code, the
local executor and the summaries share (docs/contracts.md, "Pipeline steps").

Stdlib only, so that the static check and the executor import it without the SageMaker SDK,
pandas or pyarrow. Each fact is written here once; the SageMaker objects are built from it in
``pipelines/definition.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# ---- models -------------------------------------------------------------------------------------
MODELS = ("price", "demand", "anomaly")
MODEL_PACKAGE_GROUPS = {m: f"airfare-{m}" for m in MODELS}
# The demand model's classes, in the order of its probability columns (core.contract re-exports it).
DEMAND_CLASSES = ("low", "medium", "high")
# The split table each model trains and is evaluated on: ``<split>/<table>.parquet``.
MODEL_TABLE = {"price": "offers", "demand": "flights", "anomaly": "offers"}
SPLITS = ("train", "validation", "test")
# The time split's default days, and the fewest training days a window must leave after them: one
# full week, so the training days hold every search weekday and departures of every weekday at
# every booking horizon. The model matrix (docs/models.md) shows that with 7 training days the price
# error is already bias from dates and routes the training days never showed; fewer days only add
# to it. With the defaults the shortest window the pipeline trains on is 21 days; below it
# Preprocess refuses (processing.preprocess.split_dates).
DEFAULT_VALIDATION_DAYS = 7
DEFAULT_TEST_DAYS = 7
MIN_TRAIN_DAYS = 7
MIN_WINDOW_DAYS = DEFAULT_VALIDATION_DAYS + DEFAULT_TEST_DAYS + MIN_TRAIN_DAYS

# ---- file names ---------------------------------------------------------------------------------
MODEL_META_FILE = "model_meta.json"  # beside every saved model (core.model_io)
EVALUATION_FILE = "evaluation.json"  # Evaluate<Model>'s property file, read by the gates and the registry
DQ_RESULT_FILE = "dq_result.json"  # DataQuality's property file, read by CheckDataQuality
DQ_VALIDATION_FILE = "validation.json"  # the full Great Expectations validation result
REPORT_HTML_FILE = "report.html"  # the human-readable report of DataQuality and Evaluate<Model>

# ---- steps and their outputs (the one naming rule for per-model steps) ----------------------------
PREPROCESS_STEP = "Preprocess"  # the map: n instances, each streams its days into a shard
MERGE_STEP = "MergeSplits"  # the reduce: shards -> the train/validation/test splits every later step reads
SHARDS_OUTPUT = "shards"
DQ_STEP = "DataQuality"
DQ_CHECK_STEP = "CheckDataQuality"
DQ_FAIL_STEP = "FailDataQuality"
DQ_OUTPUT = "dq"  # DataQuality's output name (and its folder under /opt/ml/processing/output)
DQ_PROPERTY_FILE = "DataQualityReport"
EVALUATION_OUTPUT = "evaluation"  # Evaluate<Model>'s output name (and its folder)
# Model Monitor: Evaluate<Model>'s second output (data/: the model's inputs from the train split,
# model/: test predictions vs labels), baselined by DataQualityCheck<Model> / ModelQualityCheck<Model>.
MONITORING_OUTPUT = "monitoring"
QUALITY_PROBLEM_TYPES = {"price": "Regression", "demand": "MulticlassClassification", "anomaly": "BinaryClassification"}


def step_name(kind: str, model: str) -> str:
    """``step_name("Train", "price") == "TrainPrice"``."""
    return f"{kind}{model.capitalize()}"


def gates_step_name(model: str) -> str:
    return step_name("Check", model) + "Gates"


def report_name(model: str) -> str:
    """The property file name of a model's evaluation report."""
    return f"{model.capitalize()}EvaluationReport"


def report_kinds() -> dict[str, str]:
    """Property file name -> report kind (``dq``, a model, or ``champion``): how the static check knows what a file holds."""
    return {DQ_PROPERTY_FILE: "dq", **{report_name(m): m for m in MODELS}, CHAMPION_PROPERTY_FILE: "champion"}


# ---- data-quality report ------------------------------------------------------------------------
# What data_quality's step writes in dq_result.json and CheckDataQuality/FailDataQuality read.
DQ_REPORT_PATHS = ("blocking_failures", "failed_expectations")

# ---- evaluation report (evaluation.json) ----------------------------------------------------------
_COMMON = ["model", "n_test", "generated_at", "leakage.passed", "leakage.reasons", "versions"]

REPORT_PATHS: dict[str, list[str]] = {
    "price": _COMMON
    + [f"regression_metrics.{m}.value" for m in ("rmse", "r2", "mae", "mape", "n")]
    + ["cleaning.n_removed"],
    "demand": _COMMON
    + [f"multiclass_classification_metrics.{m}.value" for m in ("accuracy", "weighted_f1", "weighted_precision", "weighted_recall")]
    + [
        f"multiclass_classification_metrics.per_class.{c}.{m}.value"
        for c in DEMAND_CLASSES
        for m in ("precision", "recall", "f1")
    ]
    + [
        "multiclass_classification_metrics.confusion_matrix.labels",
        "multiclass_classification_metrics.confusion_matrix.matrix",
        "baseline.majority_class_accuracy.value",
        "baseline.majority_class",
    ],
    "anomaly": _COMMON
    + [
        f"binary_classification_metrics.{m}.value"
        for m in ("precision", "recall", "f1", "threshold", "n_flagged", "flag_rate")
    ]
    + ["binary_classification_metrics.labels_available"],
}
"""Every dotted JSON path that each model's report always contains (with or without truth)."""

# Present only when the truth was given (TruthDataUri: the simulator's answer key, never on AWS).
TRUTH_PATHS: dict[str, list[str]] = {
    "price": [
        "truth.rmse_vs_true_price.value",
        "truth.r2_vs_true_price.value",
        "truth.noise_floor_rmse.value",
        "truth.rmse_by_cabin",
        "truth.n_matched",
    ],
    "demand": [],
    "anomaly": [
        "truth.precision.value",
        "truth.recall.value",
        "truth.pr_auc.value",
        "truth.roc_auc.value",
        "truth.recall_by_kind",
        "truth.n_anomalies",
    ],
}


# Every metric of a report is ``{"value": v}`` (SageMaker ModelMetrics style); null when it cannot be computed.
def metric(value: Any) -> dict[str, Any]:
    """Wrap a number as ``{"value": v}`` (NaN/inf become null: JSON has no NaN)."""
    return {"value": clean_number(value)}


def clean_number(value: Any) -> Any:
    """A JSON-safe number: numpy scalars unwrapped, NaN/inf -> None."""
    if value is None or isinstance(value, bool):
        return value
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


# ---- gates ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gate:
    """One promotion gate: ``evaluation.json[path] <op> Parameters[parameter]`` (default ``default``)."""

    model: str
    metric: str
    path: str
    op: str  # "<", ">" or ">=": the seed's gates, exactly (RMSE < $15, R² > 0.85, ...)
    parameter: str
    default: float


GATES: tuple[Gate, ...] = (
    Gate("price", "rmse", "regression_metrics.rmse.value", "<", "PriceRmseMax", 15.0),
    Gate("price", "r2", "regression_metrics.r2.value", ">", "PriceR2Min", 0.85),
    Gate("demand", "accuracy", "multiclass_classification_metrics.accuracy.value", ">=", "DemandAccuracyMin", 0.85),
    Gate("anomaly", "precision", "binary_classification_metrics.precision.value", ">=", "AnomalyPrecisionMin", 0.90),
)


def gates_of(model: str) -> tuple[Gate, ...]:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    return tuple(g for g in GATES if g.model == model)


# ---- champion / challenger (the price model) ---------------------------------------------------
# ComparePrice scores the new price model (the challenger) and the serving one (the champion,
# parameter ChampionModelUri: its model.tar.gz, empty when there is none) on the same test split,
# the run's most recent labelled days; CheckPriceChampion (after CheckPriceGates) registers the
# challenger only when there is no champion or the challenger's metric is lower.
CHAMPION_MODEL = "price"
# The price trainer's ``regime_days`` (training/price.py): "0" for a scheduled run; the retraining
# rule's runs (an alarm: the market may have moved) pass "auto", so the trainer chooses on the
# validation days how many newest days are the new market, and carries the older days over to it.
REGIME_PARAMETER = "PriceRegimeDays"
CHAMPION_PARAMETER = "ChampionModelUri"
CHAMPION_STEP = "ComparePrice"
CHAMPION_CHECK_STEP = "CheckPriceChampion"
CHAMPION_FAIL_STEP = "FailPriceChampion"
CHAMPION_OUTPUT = "comparison"
CHAMPION_FILE = "comparison.json"
CHAMPION_PROPERTY_FILE = "PriceChampionReport"
CHAMPION_METRIC = "rmse"  # the seed's price gate metric; lower is better
CHAMPION_METRICS = ("rmse", "mae")
CHAMPION_REPORT_PATHS = (
    "model", "metric", "n_test", "n_compared", "champion_present", "challenger_wins",
    *[f"{who}.{m}.value" for who in ("challenger", "champion") for m in CHAMPION_METRICS],
)  # fmt: skip

"""The Evaluate step (run as ``python -m evaluation.entry --model price|demand|anomaly``).

Reads (docs/contracts.md, paths via ``core.sm_paths``, so ``SM_OPT_ML`` relocates them):
- ``/opt/ml/processing/model/model.tar.gz``: the trained model (extracted to a temp dir,
  loaded with ``core.model_io.load``);
- ``/opt/ml/processing/test/``: the test split (``offers.parquet``, ``flights.parquet``);
- ``/opt/ml/processing/truth/`` (optional): truth offers (``TRUTH_OFFER_SCHEMA``). On AWS there
  is no truth; the report then carries observable metrics only.
Writes ``/opt/ml/processing/evaluation/evaluation.json`` (the property file the gates read),
one PNG per plot and ``report.html`` (the plots inlined, with the key metrics).

Failure contract: a failed leakage check still writes the report (``leakage.passed = false``),
then the job fails (``evaluation.entry``: reason to ``/opt/ml/output/message``, exit 1). Any other
error does the same without a report.

Anomaly model without truth: there are no labels, so precision/recall/F1 are written as
``null`` with ``labels_available: false`` and a note; the precision gate then fails (an unknown
precision is not a pass). Flag count, flag rate and the threshold are still reported.
"""

from __future__ import annotations

import datetime as dt
import logging
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from core import contract, metrics, model_io
from evaluation import gates, leakage, plots
from evaluation.report import missing_paths, write_report
from core.pipeline_contract import EVALUATION_FILE, MODEL_META_FILE, MODEL_TABLE, REPORT_HTML_FILE, metric

log = logging.getLogger("evaluation")

_VERSION_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "xgboost", "lightgbm", "skops", "matplotlib")


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def extract_model(tar_path: str | Path, dest: str | Path) -> Path:
    """Extract ``model.tar.gz`` safely and return the folder holding ``model_meta.json``."""
    tar_path, dest = Path(tar_path), Path(dest)
    if not tar_path.exists():
        raise FileNotFoundError(f"model artifact not found: {tar_path}")
    with tarfile.open(tar_path, "r:*") as tar:
        tar.extractall(dest, filter="data")  # refuses absolute paths, '..' and links out of dest
    metas = sorted(dest.rglob(MODEL_META_FILE), key=lambda p: len(p.parts))
    if not metas:
        raise FileNotFoundError(f"{tar_path} holds no {MODEL_META_FILE}")
    return metas[0].parent


def read_table(folder: str | Path, name: str) -> pd.DataFrame:
    """``<folder>/<name>.parquet`` or a folder ``<folder>/<name>/`` of Parquet files."""
    folder = Path(folder)
    for candidate in (folder / f"{name}.parquet", folder / name):
        if candidate.exists():
            return ds.dataset(candidate, format="parquet").to_table().to_pandas()
    raise FileNotFoundError(f"no {name}.parquet in {folder}")


def read_truth(folder: str | Path | None, offer_ids: Any | None = None) -> pd.DataFrame | None:
    """Truth offers under ``folder`` (any depth), only the given ``offer_ids``; None if absent.

    The truth covers the whole world, so rows are filtered while reading instead of loading it.
    """
    if folder is None or not Path(folder).exists():
        return None
    files = sorted(p for p in Path(folder).rglob("*.parquet") if p.is_file())
    files = [f for f in files if {"offer_id", "is_anomaly"} <= set(ds.dataset(f, format="parquet").schema.names)]
    if not files:
        return None
    dataset = ds.dataset(files, format="parquet")
    cols = [c for c in contract.TRUTH_COLUMNS if c in dataset.schema.names]
    flt = None
    if offer_ids is not None:
        flt = ds.field("offer_id").isin(pd.unique(pd.Series(offer_ids).astype(str)).tolist())
    truth = dataset.to_table(columns=cols, filter=flt).to_pandas()
    return truth.drop_duplicates("offer_id")


def join_truth(frame: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame | None:
    """Truth columns aligned to ``frame``'s rows (NaN where an offer is unknown), or None."""
    if truth is None or truth.empty:
        return None
    if "offer_id" not in frame.columns:
        raise ValueError("test offers need 'offer_id' to be joined with the truth")
    aligned = frame[["offer_id"]].merge(truth, on="offer_id", how="left", validate="many_to_one")
    aligned.index = frame.index
    return aligned


# ---------------------------------------------------------------------------------------------
# Per-model evaluation: (report sections, plot paths)
# ---------------------------------------------------------------------------------------------
def evaluate_price(model: Any, offers: pd.DataFrame, truth: pd.DataFrame | None, plot_dir: Path) -> tuple[dict, list[Path]]:
    """Observed-price metrics on the rows the truth-free cleaning rule keeps, plus truth metrics."""
    from core.cleaning import price_outlier_mask

    mask = price_outlier_mask(offers)
    clean = offers.loc[~mask]
    if clean.empty:
        raise ValueError("the cleaning rule removed every test offer")
    y = clean[contract.PRICE_TARGET].to_numpy(dtype=float)
    pred = np.asarray(model.predict_price(clean), dtype=float)
    report: dict[str, Any] = {
        "n_test": int(len(offers)),
        "regression_metrics": metrics.regression_metrics(y, pred),
        "cleaning": {"rule": "core.cleaning.price_outlier_mask", "n_removed": int(mask.sum()),
                     "n_kept": int(len(clean))},
        "segments": {"rmse_by_cabin": metrics.rmse_by_group(y, pred, clean["cabin"].astype(str))},
    }
    matrix = model.matrix(clean)
    targets = {contract.PRICE_TARGET: clean[contract.PRICE_TARGET]}
    images = [
        plots.predicted_vs_actual(y, pred, plot_dir / "price_predicted_vs_actual.png"),
        plots.error_by_days_to_departure(clean["days_to_departure"], y, pred, plot_dir / "price_error_by_days_to_departure.png"),
    ]
    t_all = join_truth(offers, truth)
    if t_all is not None:
        matched = t_all["true_price_usd"].notna().to_numpy()
        is_anom = t_all["is_anomaly"].fillna(False).astype(bool).to_numpy()
        normal = matched & ~is_anom
        if normal.sum() == 0:
            raise ValueError("no test offer matches a non-anomalous truth row")
        rows = offers.loc[normal]
        true_price = t_all.loc[normal, "true_price_usd"].to_numpy(dtype=float)
        observed = rows[contract.PRICE_TARGET].to_numpy(dtype=float)
        pred_normal = np.asarray(model.predict_price(rows), dtype=float)
        vs_true = metrics.regression_metrics(true_price, pred_normal)
        report["truth"] = {
            "rmse_vs_true_price": vs_true["rmse"],
            "r2_vs_true_price": vs_true["r2"],
            "mae_vs_true_price": vs_true["mae"],
            "noise_floor_rmse": metric(metrics.rmse(true_price, observed)),
            "rmse_by_cabin": metrics.rmse_by_group(true_price, pred_normal, rows["cabin"].astype(str)),
            "n_matched": int(matched.sum()),
            "n_non_anomalous": int(normal.sum()),
            "note": "vs the noise-free price on offers the truth marks non-anomalous; "
                    "noise_floor_rmse is the observed price's own error vs that price",
        }
        anomalies = matched & is_anom
        removed = mask.to_numpy()
        report["cleaning"].update(
            anomalies_in_test=int(anomalies.sum()),
            anomalies_removed=int((anomalies & removed).sum()),
            normal_offers_removed=int((normal & removed).sum()),
        )
        targets["true_price_usd"] = t_all.loc[clean.index, "true_price_usd"]
    report["leakage"] = leakage.check_leakage("price", model.features, matrix, targets)
    return report, images


def evaluate_demand(model: Any, flights: pd.DataFrame, plot_dir: Path) -> tuple[dict, list[Path]]:
    """Multiclass metrics of the demand class per flight snapshot, against the majority baseline."""
    target = contract.DEMAND_TARGET
    if target not in flights.columns:
        raise ValueError(f"test flights have no {target!r} column")
    labelled = flights.loc[flights[target].notna()]
    if labelled.empty:
        raise ValueError("no labelled test flights")
    classes = list(model.meta.get("classes", contract.DEMAND_CLASSES))
    y = labelled[target].astype(str).to_numpy(dtype=object)
    proba = np.asarray(model.predict_demand_proba(labelled), dtype=float)
    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    mc = metrics.multiclass_metrics(y, pred, classes)
    mc.update(metrics.probabilistic_metrics(y, proba, classes))
    report: dict[str, Any] = {
        "n_test": int(len(flights)),
        "n_flights": int(labelled["flight_key"].nunique()) if "flight_key" in labelled.columns else None,
        "multiclass_classification_metrics": mc,
        "baseline": metrics.majority_baseline(y, reference_counts=model.meta.get("train_class_counts")),
        "class_distribution": {c: int((y == c).sum()) for c in classes},
    }
    report["leakage"] = leakage.check_leakage("demand", model.features, model.matrix(labelled), {target: labelled[target]})
    images = [plots.confusion_matrix(mc["confusion_matrix"]["matrix"], classes, plot_dir / "demand_confusion_matrix.png")]
    return report, images


def evaluate_anomaly(model: Any, offers: pd.DataFrame, truth: pd.DataFrame | None, plot_dir: Path) -> tuple[dict, list[Path]]:
    """Flags against the truth labels when known; without them, precision is unknown (null)."""
    threshold = float(model.meta["threshold"])
    scores = np.asarray(model.anomaly_score(offers), dtype=float)
    flags = scores >= threshold
    t_all = join_truth(offers, truth)
    matched = None if t_all is None else t_all["is_anomaly"].notna().to_numpy()
    report: dict[str, Any] = {"n_test": int(len(offers))}
    matrix = model.matrix(offers)
    if matched is None or not matched.any():
        report["binary_classification_metrics"] = {
            "precision": metric(None),
            "recall": metric(None),
            "f1": metric(None),
            "threshold": metric(threshold),
            "n_flagged": metric(int(flags.sum())),
            "flag_rate": metric(float(flags.mean())),
            "labels_available": False,
            "note": "labels unavailable (no truth for the test offers): precision, recall and F1 "
                    "cannot be computed, so the precision gate fails",
        }
        report["leakage"] = leakage.check_leakage("anomaly", model.features, matrix, {})
        images = [plots.score_distribution(scores, None, threshold, plot_dir / "anomaly_score_distribution.png")]
        return report, images
    y = t_all.loc[matched, "is_anomaly"].astype(bool).to_numpy()
    s, f = scores[matched], flags[matched]
    bcm = metrics.binary_metrics(y, f, threshold=threshold)
    bcm["n_flagged"] = metric(int(flags.sum()))  # over all test offers, like the flag rate
    bcm["flag_rate"] = metric(float(flags.mean()))
    bcm["labels_available"] = True
    kinds = t_all.loc[matched, "anomaly_kind"].fillna("none").astype(str).to_numpy() if "anomaly_kind" in t_all else np.full(len(y), "unknown")
    report["binary_classification_metrics"] = bcm
    report["truth"] = {
        **metrics.ranking_metrics(y, s),
        "recall_by_kind": metrics.recall_by_group(y, f, kinds),
        "n_anomalies": int(y.sum()),
        "anomaly_rate": float(y.mean()),
        "n_matched": int(matched.sum()),
        "n_unmatched": int((~matched).sum()),
    }
    report["leakage"] = leakage.check_leakage(
        "anomaly", model.features, matrix.loc[matched], {"is_anomaly": pd.Series(y, index=matrix.index[matched])}
    )
    images = [plots.score_distribution(s, y, threshold, plot_dir / "anomaly_score_distribution.png")]
    if y.any():
        images.append(plots.precision_recall(y, s, threshold, plot_dir / "anomaly_precision_recall.png"))
    return report, images


# ---------------------------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------------------------
def build_report(kind: str, model: Any, test_dir: Path, truth_dir: Path | None, out_dir: Path) -> tuple[dict, list[Path]]:
    """Evaluate ``model`` on the test split; returns the full report and the plot files."""
    if model.kind != kind:
        raise ValueError(f"--model {kind} but the artifact holds the {model.kind!r} model")
    table = read_table(test_dir, MODEL_TABLE[kind])
    if table.empty:
        raise ValueError(f"the test split's {MODEL_TABLE[kind]} table is empty")
    truth = None
    if kind in ("price", "anomaly"):
        truth = read_truth(truth_dir, table["offer_id"] if "offer_id" in table.columns else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "price":
        body, images = evaluate_price(model, table, truth, out_dir)
    elif kind == "demand":
        body, images = evaluate_demand(model, table, out_dir)
    else:
        body, images = evaluate_anomaly(model, table, truth, out_dir)
    report = {
        "model": kind,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "truth_available": truth is not None,
        **body,
        "model_info": {k: model.meta.get(k) for k in ("train_rows", "trees", "threshold", "target_transform", "libraries")
                       if k in model.meta},
        "versions": model_io.library_versions(_VERSION_PACKAGES),
    }
    passed, reasons = gates.check_gates(report, kind)
    report["default_gates"] = {"passed": passed, "reasons": reasons}
    absent = missing_paths(report, kind)
    if absent:  # a bug here, not bad data: the pipeline's gates would read nothing
        raise RuntimeError(f"report lacks contract paths {absent}")
    return report, images


def run(kind: str, model_tar: Path, test_dir: Path, truth_dir: Path | None, out_dir: Path) -> dict:
    """Extract, load, evaluate and write evaluation.json + plots + report.html; return the report."""
    with tempfile.TemporaryDirectory(prefix="airfare-eval-") as tmp:
        model = model_io.load(extract_model(model_tar, tmp))
        report, images = build_report(kind, model, test_dir, truth_dir, out_dir)
    write_report(report, out_dir / EVALUATION_FILE)
    plots.write_html(report, images, out_dir / REPORT_HTML_FILE, report["default_gates"]["reasons"])
    return report

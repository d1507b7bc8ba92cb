"""The Evaluate step (run as ``python -m evaluation.entry --model price|demand|anomaly``).

Reads (docs/contracts.md, paths via ``core.sm_paths``, so ``SM_OPT_ML`` relocates them):
- ``/opt/ml/processing/model/model.tar.gz``: the trained model (extracted to a temp dir,
  loaded with ``core.model_io.load``);
- ``/opt/ml/processing/test/``: the test split (``offers.parquet``, ``flights.parquet``);
- ``/opt/ml/processing/labels/`` (anomaly model): the incident feed (``core.labels``), what
  the anomaly metrics and its gate are computed against;
- ``--truth-uri`` (optional, default empty): the simulator's truth offers (``TRUTH_OFFER_SCHEMA``),
  an ``s3://`` prefix or a folder, only for the report's ``truth`` ("against truth") columns. On
  AWS there is no truth; the report then carries observable metrics only.
Writes ``/opt/ml/processing/evaluation/evaluation.json`` (the property file the gates read),
one PNG per plot and ``report.html`` (the plots inlined, with the key metrics).

Failure contract: a failed leakage check still writes the report (``leakage.passed = false``),
then the job fails (``evaluation.entry``: reason to ``/opt/ml/output/message``, exit 1). Any other
error does the same without a report.

Anomaly model without the incident feed: there are no labels, so precision/recall/F1 are written
as ``null`` with ``labels_available: false`` and a note; the precision gate then fails (an unknown
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
from core.monitoring_datasets import predictions_frame
from core.tables import read_table

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


def read_truth(folder: str | Path | None, offer_ids: Any | None = None) -> pd.DataFrame | None:
    """Truth offers under ``folder`` (any depth), only the given ``offer_ids``; None if absent.

    The truth covers the whole world, so rows are filtered while reading instead of loading it.
    """
    if folder is not None and str(folder).startswith("s3://"):
        import awswrangler as wr

        truth = wr.s3.read_parquet(str(folder).rstrip("/") + "/", dataset=True)
        missing = [c for c in ("offer_id", "is_anomaly") if c not in truth.columns]
        if missing:
            raise ValueError(f"truth at {folder} lacks columns {missing}")
        truth = truth[[c for c in contract.TRUTH_COLUMNS if c in truth.columns]]
        if offer_ids is not None:
            truth = truth.loc[truth["offer_id"].astype(str).isin(set(pd.Series(offer_ids).astype(str)))]
        return truth.drop_duplicates("offer_id")
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
def evaluate_price(model: Any, offers: pd.DataFrame, truth: pd.DataFrame | None, plot_dir: Path,
                   sink: dict | None = None) -> tuple[dict, list[Path]]:
    """Observed-price metrics on the rows the truth-free cleaning rule keeps, plus truth metrics."""
    from core.cleaning import price_outlier_mask

    mask = price_outlier_mask(offers)
    clean = offers.loc[~mask]
    if clean.empty:
        raise ValueError("the cleaning rule removed every test offer")
    y = clean[contract.PRICE_TARGET].to_numpy(dtype=float)
    pred = np.asarray(model.predict_price(clean), dtype=float)
    if sink is not None:  # the model-quality baseline: predictions vs labels
        sink["predictions"] = predictions_frame("price", y, pred)
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


def evaluate_demand(model: Any, flights: pd.DataFrame, plot_dir: Path, sink: dict | None = None) -> tuple[dict, list[Path]]:
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
    if sink is not None:
        sink["predictions"] = predictions_frame("demand", y, pred, proba=proba)
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


def evaluate_anomaly(model: Any, offers: pd.DataFrame, feed: Any | None, truth: pd.DataFrame | None,
                     plot_dir: Path, sink: dict | None = None) -> tuple[dict, list[Path]]:
    """Flags against the incident feed (the gate's metrics; ``metrics.incident_label_metrics`` says
    how unreviewed flags count) and, when the truth is given, against it too (``truth``)."""
    from core import labels as incident_labels

    threshold = float(model.meta["threshold"])
    scores = np.asarray(model.anomaly_score(offers), dtype=float)
    flags = scores >= threshold
    report: dict[str, Any] = {"n_test": int(len(offers))}
    matrix = model.matrix(offers)
    targets: dict[str, pd.Series] = {}
    status = None
    if feed is None:
        report["binary_classification_metrics"] = {
            "precision": metric(None),
            "recall": metric(None),
            "f1": metric(None),
            "threshold": metric(threshold),
            "n_flagged": metric(int(flags.sum())),
            "flag_rate": metric(float(flags.mean())),
            "labels_available": False,
            "note": "labels unavailable (no incident feed at /opt/ml/processing/labels): precision, recall and F1 "
                    "cannot be computed, so the precision gate fails",
        }
    else:
        status = feed.status(offers)
        bcm = metrics.incident_label_metrics(status, flags, threshold, incident_labels.MIN_REVIEWED_SHARE)
        bcm["labels_available"] = True
        bcm["note"] = ("vs the incident feed: precision over reviewed flags (confirmed vs cleared), null when under "
                       f"{incident_labels.MIN_REVIEWED_SHARE:.0%} of closed-window flags were reviewed; unreviewed flags "
                       "are not counted as false alarms (precision_if_unreviewed_false does so)")
        report["binary_classification_metrics"] = bcm
        report["labels"] = {
            "source": "incident feed (labels/incidents)",
            "as_of": feed.as_of.isoformat(),
            "review_window_days": feed.review_window_days,
            "test_offers_by_label": incident_labels.status_counts(status),
        }
        reviewed = np.isin(status, (incident_labels.INCIDENT, incident_labels.CLEARED))
        if sink is not None and reviewed.any():  # Model Monitor's model-quality baseline: reviewed offers only
            sink["predictions"] = predictions_frame("anomaly", status[reviewed] == incident_labels.INCIDENT,
                                                    flags[reviewed], score=scores[reviewed])
        targets["is_incident"] = pd.Series(np.where(reviewed, (status == incident_labels.INCIDENT).astype(float), np.nan),
                                           index=matrix.index)
    t_all = join_truth(offers, truth)
    matched = None if t_all is None else t_all["is_anomaly"].notna().to_numpy()
    y = None
    if matched is not None and matched.any():
        y = t_all.loc[matched, "is_anomaly"].astype(bool).to_numpy()
        s, f = scores[matched], flags[matched]
        vs_truth = metrics.binary_metrics(y, f, threshold=threshold)
        kinds = t_all.loc[matched, "anomaly_kind"].fillna("none").astype(str).to_numpy() if "anomaly_kind" in t_all else np.full(len(y), "unknown")
        report["truth"] = {
            "precision": vs_truth["precision"],
            "recall": vs_truth["recall"],
            "f1": vs_truth["f1"],
            "confusion": vs_truth["confusion"],
            **metrics.ranking_metrics(y, s),
            "recall_by_kind": metrics.recall_by_group(y, f, kinds),
            "n_anomalies": int(y.sum()),
            "anomaly_rate": float(y.mean()),
            "n_matched": int(matched.sum()),
            "n_unmatched": int((~matched).sum()),
        }
        if status is not None:  # how good the feed itself is on these offers
            anom = t_all["is_anomaly"].fillna(False).astype(bool).to_numpy()
            confirmed = status == incident_labels.INCIDENT
            report["truth"]["labels_quality"] = {
                "anomalies_confirmed": metric(float((confirmed & anom).sum() / max(anom.sum(), 1))),
                "confirmed_that_are_anomalies": metric(float((confirmed & anom).sum() / max(confirmed.sum(), 1))),
                "cleared_that_are_anomalies": int(((status == incident_labels.CLEARED) & anom).sum()),
            }
        targets["is_anomaly"] = pd.Series(t_all["is_anomaly"].astype(float).to_numpy(), index=matrix.index)
    report["leakage"] = leakage.check_leakage("anomaly", model.features, matrix, targets)
    if y is not None:
        images = [plots.score_distribution(scores[matched], y, threshold, plot_dir / "anomaly_score_distribution.png")]
        if y.any():
            images.append(plots.precision_recall(y, scores[matched], threshold, plot_dir / "anomaly_precision_recall.png"))
    elif status is not None and (status != incident_labels.OPEN).any():
        closed = status != incident_labels.OPEN
        yl = status[closed] == incident_labels.INCIDENT
        images = [plots.score_distribution(scores[closed], yl, threshold, plot_dir / "anomaly_score_distribution.png")]
    else:
        images = [plots.score_distribution(scores, None, threshold, plot_dir / "anomaly_score_distribution.png")]
    return report, images


# ---------------------------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------------------------
def build_report(kind: str, model: Any, test_dir: Path, truth_dir: Path | str | None, out_dir: Path,
                 labels_dir: Path | None = None, sink: dict | None = None) -> tuple[dict, list[Path]]:
    """Evaluate ``model`` on the test split; returns the full report and the plot files.

    ``labels_dir``: the incident feed (anomaly model only); ``truth_dir``: the simulator's truth,
    a folder or an ``s3://`` prefix, or None (as on AWS)."""
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
        body, images = evaluate_price(model, table, truth, out_dir, sink)
    elif kind == "demand":
        body, images = evaluate_demand(model, table, out_dir, sink)
    else:
        feed = None
        if labels_dir is not None and Path(labels_dir).exists():
            from core.labels import read_feed

            feed = read_feed(labels_dir)
        body, images = evaluate_anomaly(model, table, feed, truth, out_dir, sink)
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


def run(kind: str, model_tar: Path, test_dir: Path, truth_dir: Path | str | None, out_dir: Path,
        labels_dir: Path | None = None, train_dir: Path | None = None,
        monitoring_dir: Path | None = None) -> dict:
    """Extract, load, evaluate and write evaluation.json + plots + report.html; return the report.

    With ``monitoring_dir``, also the Model Monitor baseline datasets: ``data/`` (the model's inputs
    from ``train_dir``) and ``model/`` (test predictions against labels), see core.monitoring_datasets.
    """
    sink: dict = {}
    with tempfile.TemporaryDirectory(prefix="airfare-eval-") as tmp:
        model = model_io.load(extract_model(model_tar, tmp))
        report, images = build_report(kind, model, test_dir, truth_dir, out_dir, labels_dir, sink)
    if monitoring_dir is not None:
        from core import monitoring_datasets as datasets

        if train_dir is None or not Path(train_dir).exists():
            raise FileNotFoundError(f"the monitoring baselines need the train split (--train-dir {train_dir})")
        datasets.write_data_baseline(model.meta, train_dir, monitoring_dir / "data")
        if "predictions" in sink:
            datasets.write_predictions(sink["predictions"], monitoring_dir / "model")
    write_report(report, out_dir / EVALUATION_FILE)
    plots.write_html(report, images, out_dir / REPORT_HTML_FILE, report["default_gates"]["reasons"])
    return report

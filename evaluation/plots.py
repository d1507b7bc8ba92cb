"""Evaluation plots (PNG, matplotlib Agg) and one self-contained HTML page that embeds them.

Each function takes plain arrays and a path, writes one figure and returns the path, so the
Evaluate step stays thin and the plots can be tested on small arrays.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: processing containers have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

DPI = 110
# Days-to-departure bins for the error profile (booking-window shape, WORLD.md).
DTD_BINS = (0, 3, 7, 14, 21, 35, 60, 90, 150, 240, 400)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _check_lengths(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"plot needs equal, non-empty arrays: {lengths}")


def predicted_vs_actual(y_true: Any, y_pred: Any, path: str | Path, title: str = "Price: predicted vs actual") -> Path:
    """Scatter on log-log axes (prices span two orders of magnitude) with the y = x line."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    _check_lengths(y_true=y_true, y_pred=y_pred)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.scatter(y_true, y_pred, s=6, alpha=0.35, edgecolors="none")
    lo = max(min(y_true.min(), y_pred.min()), 1.0)
    hi = max(y_true.max(), y_pred.max())
    ax.plot([lo, hi], [lo, hi], color="crimson", lw=1, label="perfect prediction")
    if lo > 0 and hi / lo > 20:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("actual price (USD)")
    ax.set_ylabel("predicted price (USD)")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def error_by_days_to_departure(days: Any, y_true: Any, y_pred: Any, path: str | Path) -> Path:
    """RMSE and mean signed error per booking-window bin: where in the curve the model misses."""
    days, y_true, y_pred = np.asarray(days, float), np.asarray(y_true, float), np.asarray(y_pred, float)
    _check_lengths(days=days, y_true=y_true, y_pred=y_pred)
    err = y_pred - y_true
    bins = pd.cut(days, bins=list(DTD_BINS), right=False, include_lowest=True)
    frame = pd.DataFrame({"bin": bins, "err": err})
    g = frame.groupby("bin", observed=True)["err"]
    stats = pd.DataFrame({"rmse": g.apply(lambda e: float(np.sqrt(np.mean(e**2)))), "bias": g.mean(), "n": g.size()})
    labels = [f"{int(iv.left)}-{int(iv.right) - 1}\n(n={n})" for iv, n in zip(stats.index, stats["n"])]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(len(stats))
    ax.bar(x - 0.2, stats["rmse"], width=0.4, label="RMSE")
    ax.bar(x + 0.2, stats["bias"], width=0.4, label="mean error (pred - actual)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlabel("days to departure")
    ax.set_ylabel("USD")
    ax.set_title("Price error by days to departure")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def confusion_matrix(matrix: Any, labels: Sequence[str], path: str | Path, title: str = "Demand class: confusion matrix") -> Path:
    """Row-normalized confusion matrix (recall per true class), annotated with share and count."""
    counts = np.asarray(matrix, dtype=float)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix shape {counts.shape} does not match {len(labels)} labels")
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    return _save(fig, path)


def score_distribution(scores: Any, labels: Any | None, threshold: float | None, path: str | Path) -> Path:
    """Histogram of anomaly scores, normal vs anomalous when labels are known, with the threshold."""
    scores = np.asarray(scores, float)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bins = np.histogram_bin_edges(scores, bins=50)
    if labels is None:
        ax.hist(scores, bins=bins, alpha=0.8, label="all offers (no labels)")
    else:
        labels = np.asarray(labels, bool)
        _check_lengths(scores=scores, labels=labels)
        ax.hist(scores[~labels], bins=bins, alpha=0.6, density=True, label=f"normal (n={int((~labels).sum())})")
        ax.hist(scores[labels], bins=bins, alpha=0.6, density=True, label=f"anomalous (n={int(labels.sum())})")
    if threshold is not None:
        ax.axvline(threshold, color="crimson", ls="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_ylabel("density (each class normalized)" if labels is not None else "offers")
    ax.set_title("Anomaly score distribution")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def precision_recall(y_true: Any, scores: Any, threshold: float | None, path: str | Path) -> Path:
    """Precision-recall curve of the scores, with the model's operating point marked."""
    y_true, scores = np.asarray(y_true, bool), np.asarray(scores, float)
    _check_lengths(y_true=y_true, scores=scores)
    if not y_true.any():
        raise ValueError("precision-recall curve needs at least one positive label")
    precision, recall, _ = precision_recall_curve(y_true, scores)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot(recall, precision, lw=1.5, label="PR curve")
    ax.axhline(y_true.mean(), color="grey", ls=":", label=f"prevalence {y_true.mean():.3%}")
    if threshold is not None:
        flag = scores >= threshold
        tp = int((flag & y_true).sum())
        op_p = tp / flag.sum() if flag.any() else 0.0
        op_r = tp / y_true.sum()
        ax.scatter([op_r], [op_p], color="crimson", zorder=3, s=50,
                   label=f"operating point (P={op_p:.2f}, R={op_r:.2f})")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Anomaly detection: precision vs recall")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _headline(report: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) rows of every ``{"value": v}`` metric in the report's top sections."""
    rows: list[tuple[str, Any]] = []
    for section in ("regression_metrics", "multiclass_classification_metrics", "binary_classification_metrics",
                    "baseline", "truth"):
        for name, entry in (report.get(section) or {}).items():
            if isinstance(entry, Mapping) and "value" in entry:
                rows.append((f"{section}.{name}", entry["value"]))
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


def write_html(report: Mapping[str, Any], images: Sequence[str | Path], path: str | Path,
               gate_reasons: Sequence[str] = ()) -> Path:
    """One self-contained page (PNGs inlined as base64) with the key metrics and gate verdicts."""
    path = Path(path)
    model = html.escape(str(report.get("model", "?")))
    leak = report.get("leakage") or {}
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in _headline(report))
    leak_text = "passed" if leak.get("passed") else "FAILED: " + "; ".join(leak.get("reasons") or [])
    gates = "".join(f"<li>{html.escape(r)}</li>" for r in gate_reasons)
    notes = "".join(
        f"<p class='note'>{html.escape(str(sec.get('note')))}</p>"
        for sec in report.values() if isinstance(sec, Mapping) and sec.get("note")
    )
    figs = []
    for img in images:
        data = base64.b64encode(Path(img).read_bytes()).decode("ascii")
        figs.append(f"<figure><img alt='{html.escape(Path(img).stem)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{html.escape(Path(img).stem.replace('_', ' '))}</figcaption></figure>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation: {model} model</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td{{border:1px solid #ccc;padding:3px 8px}}figure{{display:inline-block;margin:1em}}img{{max-width:520px}}
.note{{color:#a35}}</style></head><body>
<h1>Evaluation: {model} model</h1>
<p>generated {html.escape(str(report.get("generated_at", "")))} &middot; test rows {html.escape(_fmt(report.get("n_test")))}
&middot; leakage check {html.escape(leak_text)}</p>
{notes}
<h2>Metrics</h2><table>{rows}</table>
{"<h2>Gates</h2><ul>" + gates + "</ul>" if gates else ""}
<h2>Plots</h2>{"".join(figs)}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path

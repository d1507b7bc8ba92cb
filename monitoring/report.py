"""HTML reports of monitoring runs: one self-contained page with the violations and the plots.

Data quality: per feature, the baseline's and the window's distributions overlaid (CDFs from the
KLL sketches for numbers, frequencies for strings), titled with the drift distance and threshold.
Model quality: each gated metric per time window against its threshold.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from monitoring import analyzer  # noqa: E402

_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1200px} table{border-collapse:collapse} "
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px} .bad{color:#b00;font-weight:bold} "
        ".ok{color:#070} .grid{display:flex;flex-wrap:wrap;gap:8px} .grid img{width:380px}")  # fmt: skip


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _feature_plot(name: str, base: dict | None, cur: dict | None, fc: analyzer.FeatureCheck) -> str | None:
    if base is None or cur is None:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    if "numerical_statistics" in base and "numerical_statistics" in cur:
        for label, feat, style in (("baseline", base, "-"), ("current", cur, "--")):
            x, w = analyzer.weighted_items(feat["numerical_statistics"]["distribution"]["kll"])
            if x.size:
                ax.step(x, np.cumsum(w) / w.sum(), style, where="post", label=label)
        ax.set_ylabel("CDF")
    elif "string_statistics" in base and "string_statistics" in cur:
        bf, cf = analyzer._categorical_freqs(base), analyzer._categorical_freqs(cur)
        keys = sorted(set(bf) | set(cf), key=lambda k: -(bf.get(k, 0) + cf.get(k, 0)))[:15]
        pos = np.arange(len(keys))
        ax.bar(pos - 0.2, [bf.get(k, 0) for k in keys], 0.4, label="baseline")
        ax.bar(pos + 0.2, [cf.get(k, 0) for k in keys], 0.4, label="current")
        ax.set_xticks(pos, keys, rotation=60, fontsize=7)
        ax.set_ylabel("share")
    else:
        plt.close(fig)
        return None
    drift = "" if fc.drift is None else f" drift {fc.drift:.3f} / {fc.drift_threshold:g}"
    ax.set_title(f"{name}{drift}", fontsize=9, color="#b00" if fc.violations else "black")
    ax.legend(fontsize=7)
    return _png(fig)


def data_quality_html(model: str, result, baseline_stats: dict, path: Path) -> Path:
    base = {f["name"]: f for f in baseline_stats.get("features") or []}
    cur = {f["name"]: f for f in result.statistics["features"]}
    rows = []
    for fc in result.checks:
        status = "<span class=bad>violation</span>" if fc.violations else "<span class=ok>ok</span>"
        drift = "" if fc.drift is None else f"{fc.drift:.4f} (threshold {fc.drift_threshold:g})"
        comp = "" if fc.completeness is None else f"{fc.completeness:.4f} (baseline {fc.baseline_completeness:.4f})"
        rows.append(f"<tr><td>{html.escape(fc.name)}</td><td>{fc.baseline_type}</td><td>{fc.current_type}</td>"
                    f"<td>{comp}</td><td>{drift}</td><td>{status}</td></tr>")  # fmt: skip
    viol = "".join(f"<tr><td>{html.escape(v['feature_name'])}</td><td>{v['constraint_check_type']}</td>"
                   f"<td>{html.escape(v['description'])}</td></tr>" for v in result.violations["violations"])  # fmt: skip
    plots = [p for fc in result.checks if (p := _feature_plot(fc.name, base.get(fc.name), cur.get(fc.name), fc))]
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>Data quality: {model}</title><style>{_CSS}</style></head><body>"
           f"<h1>Data quality: {html.escape(model)} model</h1>"
           f"<p>{result.records} captured records, window {result.window[0] or '-'} .. {result.window[1] or '-'}; "
           f"baseline {html.escape(result.baseline_source)}.</p>"
           f"<h2 class={'ok' if result.ok else 'bad'}>{len(result.violations['violations'])} violation(s)</h2>"
           f"<table><tr><th>feature</th><th>check</th><th>description</th></tr>{viol}</table>"
           f"<h2>Features</h2><table><tr><th>feature</th><th>baseline type</th><th>current type</th><th>completeness</th>"
           f"<th>drift distance</th><th>status</th></tr>{''.join(rows)}</table>"
           f"<h2>Distributions (baseline vs current)</h2><div class=grid>{''.join(f'<img src={p}>' for p in plots)}</div>"
           "</body></html>")  # fmt: skip
    path.write_text(doc)
    return path


def model_quality_html(result, summary: dict[str, Any], path: Path) -> Path:
    from monitoring import model_quality

    problem = model_quality.PROBLEM_TYPES[result.model]
    cons = result.constraints.get(model_quality.SECTIONS[problem][1]) or {}
    judged = [w for w in summary["windows"] if w["metrics"]]
    plots = []
    for name, rule in cons.items():
        xs = [w["start"][:16] for w in judged if isinstance(w["metrics"].get(name), (int, float))]
        ys = [w["metrics"][name] for w in judged if isinstance(w["metrics"].get(name), (int, float))]
        if not xs:
            continue
        fig, ax = plt.subplots(figsize=(6, 2.8))
        ax.plot(range(len(xs)), ys, marker="o", label=name)
        ax.axhline(rule["threshold"], color="#b00", ls="--", label=f"{rule['comparison_operator']} {rule['threshold']:g}")
        ax.set_xticks(range(len(xs)), xs, rotation=60, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
        plots.append(_png(fig))
    rows = "".join(
        f"<tr><td>{w['start']}</td><td>{w['records']}</td><td>{w['labelled']}</td>"
        f"<td>{html.escape(', '.join(f'{k}={v:.4g}' for k, v in w['metrics'].items() if k in cons) or w['note'])}</td>"
        f"<td class={'bad' if w['violations'] else 'ok'}>{html.escape('; '.join(v['description'] for v in w['violations']) or 'ok')}</td></tr>"
        for w in summary["windows"])  # fmt: skip
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>Model quality: {result.model}</title><style>{_CSS}</style></head>"
           f"<body><h1>Model quality: {html.escape(result.model)} model ({problem})</h1>"
           f"<p>Ground-truth labels that matched no captured record: {result.unmatched_labels}.</p>"
           f"<table><tr><th>window</th><th>records</th><th>labelled</th><th>gated metrics</th><th>violations</th></tr>{rows}</table>"
           f"<div class=grid>{''.join(f'<img src={p}>' for p in plots)}</div></body></html>")  # fmt: skip
    path.write_text(doc)
    return path

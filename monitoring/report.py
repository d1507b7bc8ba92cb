"""HTML reports of monitoring runs: one self-contained page with the violations and the plots.

Data quality: per feature, the baseline's and the window's distributions overlaid (CDFs from the
KLL sketches for numbers, frequencies for strings), titled with the drift distance and threshold,
as inline SVG.
Model quality: each gated metric per time window against its threshold.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from monitoring import analyzer

_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1200px} table{border-collapse:collapse} "
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px} .bad{color:#b00;font-weight:bold} "
        ".ok{color:#070} .grid{display:flex;flex-wrap:wrap;gap:8px} svg{background:#fff;border:1px solid #ddd}")  # fmt: skip
# Inline SVG, drawn here: a page of 30 small charts renders in milliseconds, where matplotlib
# took seconds per chart on a busy 2-core machine.
W, H, PAD = 380, 220, 36
COLORS = ("#1f77b4", "#ff7f0e")


def _svg(title: str, bad: bool, body: list[str], x_labels: list[tuple[float, str]], y_max: float, legend: list[str]) -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-size="10">',
             f'<text x="{W / 2}" y="14" text-anchor="middle" font-size="12" fill="{"#b00" if bad else "#000"}">{html.escape(title)}</text>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 8}" y2="{H - PAD}" stroke="#888"/>',
             f'<line x1="{PAD}" y1="24" x2="{PAD}" y2="{H - PAD}" stroke="#888"/>',
             f'<text x="4" y="30">{y_max:.2g}</text><text x="4" y="{H - PAD}">0</text>']  # fmt: skip
    for x, label in x_labels:
        parts.append(f'<text x="{x:.1f}" y="{H - PAD + 12}" text-anchor="end" transform="rotate(-40 {x:.1f} {H - PAD + 12})">'
                     f"{html.escape(label)}</text>")  # fmt: skip
    for i, name in enumerate(legend):
        parts.append(f'<rect x="{W - 90}" y="{24 + 12 * i}" width="8" height="8" fill="{COLORS[i]}"/>'
                     f'<text x="{W - 78}" y="{32 + 12 * i}">{name}</text>')  # fmt: skip
    return "".join(parts + body + ["</svg>"])


def _xy(x: float, y: float, x0: float, x1: float, y_max: float) -> tuple[float, float]:
    fx = PAD + (W - 8 - PAD) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)
    fy = (H - PAD) - (H - PAD - 24) * (y / y_max if y_max else 0)
    return fx, fy


def _feature_plot(name: str, base: dict | None, cur: dict | None, fc: analyzer.FeatureCheck) -> str | None:
    """Baseline vs current: the two CDFs (numbers) or the top category shares (strings)."""
    if base is None or cur is None:
        return None
    drift = "" if fc.drift is None else f"  drift {fc.drift:.3f} / {fc.drift_threshold:g}"
    title, bad = f"{name}{drift}", bool(fc.violations)
    if "numerical_statistics" in base and "numerical_statistics" in cur:
        series = [analyzer.weighted_items(f["numerical_statistics"]["distribution"]["kll"]) for f in (base, cur)]
        allx = np.concatenate([x for x, _ in series if x.size]) if any(x.size for x, _ in series) else np.zeros(1)
        x0, x1 = float(np.min(allx)), float(np.max(allx))
        body = []
        for (x, w), color in zip(series, COLORS):
            if not x.size:
                continue
            cdf = np.cumsum(w) / w.sum()
            idx = np.unique(np.linspace(0, len(x) - 1, min(len(x), 200)).astype(int))
            pts = [_xy(x0, 0, x0, x1, 1.0)] + [_xy(float(x[i]), float(cdf[i]), x0, x1, 1.0) for i in idx]
            body.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts)}"/>')
        ticks = [(_xy(v, 0, x0, x1, 1)[0], f"{v:.4g}") for v in np.linspace(x0, x1, 5)]
        return _svg(title, bad, body, ticks, 1.0, ["baseline CDF", "current CDF"])
    if "string_statistics" in base and "string_statistics" in cur:
        bf, cf = analyzer._categorical_freqs(base), analyzer._categorical_freqs(cur)
        keys = sorted(set(bf) | set(cf), key=lambda k: -(bf.get(k, 0) + cf.get(k, 0)))[:15]
        y_max = max([bf.get(k, 0) for k in keys] + [cf.get(k, 0) for k in keys] + [1e-9])
        slot = (W - 8 - PAD) / max(len(keys), 1)
        body, ticks = [], []
        for i, k in enumerate(keys):
            for j, (freqs, color) in enumerate(zip((bf, cf), COLORS)):
                x = PAD + slot * i + slot * (0.1 + 0.4 * j)
                _, y = _xy(0, freqs.get(k, 0), 0, 1, y_max)
                body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.4:.1f}" height="{H - PAD - y:.1f}" fill="{color}"/>')
            ticks.append((PAD + slot * (i + 0.6), k[:12]))
        return _svg(title, bad, body, ticks, y_max, ["baseline share", "current share"])
    return None


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
           f"<h2>Distributions (baseline vs current)</h2><div class=grid>{''.join(plots)}</div>"
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
        pts = [(w["start"][:13], w["metrics"][name]) for w in judged if isinstance(w["metrics"].get(name), (int, float))]
        if not pts:
            continue
        ys = [v for _, v in pts] + [rule["threshold"]]
        lo, hi = min(ys + [0.0]), max(ys) * 1.1 or 1.0
        n = max(len(pts) - 1, 1)

        def xy(i, v):
            return PAD + (W - 8 - PAD) * i / n, (H - PAD) - (H - PAD - 24) * (v - lo) / (hi - lo)

        line = " ".join(f"{a:.1f},{b:.1f}" for a, b in (xy(i, v) for i, (_, v) in enumerate(pts)))
        _, ty = xy(0, rule["threshold"])
        body = [f'<polyline fill="none" stroke="{COLORS[0]}" stroke-width="1.5" points="{line}"/>',
                f'<line x1="{PAD}" y1="{ty:.1f}" x2="{W - 8}" y2="{ty:.1f}" stroke="#b00" stroke-dasharray="4"/>']
        ticks = [(xy(i, 0)[0], label) for i, (label, _) in enumerate(pts)]
        plots.append(_svg(f"{name} ({rule['comparison_operator']} {rule['threshold']:g} is a violation)", False, body, ticks, hi, [name]))
    rows = "".join(
        f"<tr><td>{w['start']}</td><td>{w['records']}</td><td>{w['labelled']}</td>"
        f"<td>{html.escape(', '.join(f'{k}={v:.4g}' for k, v in w['metrics'].items() if k in cons) or w['note'])}</td>"
        f"<td class={'bad' if w['violations'] else 'ok'}>{html.escape('; '.join(v['description'] for v in w['violations']) or 'ok')}</td></tr>"
        for w in summary["windows"])  # fmt: skip
    doc = (f"<!doctype html><html><head><meta charset=utf-8><title>Model quality: {result.model}</title><style>{_CSS}</style></head>"
           f"<body><h1>Model quality: {html.escape(result.model)} model ({problem})</h1>"
           f"<p>Ground-truth labels that matched no captured record: {result.unmatched_labels}.</p>"
           f"<table><tr><th>window</th><th>records</th><th>labelled</th><th>gated metrics</th><th>violations</th></tr>{rows}</table>"
           f"<div class=grid>{''.join(plots)}</div></body></html>")  # fmt: skip
    path.write_text(doc)
    return path

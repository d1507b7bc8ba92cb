"""Plots are written as real PNGs from small arrays; the HTML page embeds them with the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_all_plots_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.uniform(50, 2000, 60)
    p = y * rng.normal(1, 0.1, 60)
    days = rng.integers(0, 300, 60)
    lab = np.arange(60) % 10 == 0
    scores = rng.normal(0.4, 0.05, 60) + 0.3 * lab
    paths = [
        plots.predicted_vs_actual(y, p, tmp_path / "a.png"),
        plots.error_by_days_to_departure(days, y, p, tmp_path / "b.png"),
        plots.confusion_matrix([[5, 1, 0], [2, 7, 1], [0, 0, 0]], ["low", "medium", "high"], tmp_path / "c.png"),
        plots.score_distribution(scores, lab, 0.6, tmp_path / "d.png"),
        plots.score_distribution(scores, None, None, tmp_path / "e.png"),
        plots.precision_recall(lab, scores, 0.6, tmp_path / "f.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000


def test_plots_reject_bad_input(tmp_path):
    with pytest.raises(ValueError, match="equal, non-empty"):
        plots.predicted_vs_actual([1, 2], [1], tmp_path / "x.png")
    with pytest.raises(ValueError, match="does not match"):
        plots.confusion_matrix([[1, 2]], ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one positive"):
        plots.precision_recall([0, 0], [0.1, 0.2], None, tmp_path / "x.png")


def test_html_embeds_images_and_escapes(tmp_path):
    img = plots.confusion_matrix([[1, 0], [0, 1]], ["a", "b"], tmp_path / "cm.png")
    report = {
        "model": "demand", "n_test": 2, "generated_at": "now",
        "leakage": {"passed": False, "reasons": ["feature '<x>' leaks"]},
        "multiclass_classification_metrics": {"accuracy": {"value": 0.5}},
    }
    page = plots.write_html(report, [img], tmp_path / "r.html", ["FAIL: accuracy"]).read_text()
    assert page.count("data:image/png;base64,") == 1
    assert "multiclass_classification_metrics.accuracy" in page and "0.5" in page
    assert "&lt;x&gt;" in page and "<x>" not in page
    assert "FAIL: accuracy" in page

"""The DataQuality pipeline step (run as ``python -m data_quality.entry [--end-date YYYY-MM-DD]``).

Reads Preprocess' splits from ``/opt/ml/processing/input/{train,validation,test}/{offers,flights}.parquet``,
runs the suites and writes ``/opt/ml/processing/output/dq/{dq_result.json,validation.json,report.html}``.

It exits 0 even when blocking expectations fail: the pipeline's ConditionStep reads
``blocking_failures`` from ``dq_result.json`` and its Fail step names ``failed_expectations``.
The job fails only when the splits cannot be read at all (then there is nothing to judge).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from core.pipeline_contract import DQ_RESULT_FILE, DQ_VALIDATION_FILE, REPORT_HTML_FILE


def write_outputs(run, out_dir: Path, title: str) -> dict:
    """Write dq_result.json, validation.json and report.html; return the summary."""
    from data_quality.validate import render_html, summarize, validation_json

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(run)
    (out_dir / DQ_RESULT_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out_dir / DQ_VALIDATION_FILE).write_text(json.dumps(validation_json(run), indent=2, default=str) + "\n")
    (out_dir / REPORT_HTML_FILE).write_text(render_html(run, title))
    return summary


def run_step(input_dir: Path, out_dir: Path, *, end_date: dt.date | None = None, reference_path: Path | None = None) -> dict:
    """Validate the three splits under ``input_dir`` and write the outputs to ``out_dir``.

    Raises ``tables.DataReadError`` when a split cannot be read.
    """
    from data_quality import tables
    from data_quality.reference import load_reference
    from data_quality.validate import run_checks, split_checks

    splits = tables.read_splits(input_dir)
    reference = load_reference(reference_path)
    context = {
        "input": str(input_dir),
        "expected_end_date": end_date.isoformat() if end_date else None,
        "rows": {s: {t: len(splits[s][t].frame) for t in ("offers", "flights")} for s in splits},
        "reference_built_at": reference.get("built_at"),
        "validated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
    run = run_checks(split_checks(splits, reference, end_date=end_date), context=context)
    return write_outputs(run, out_dir, "Data quality: train / validation / test splits")

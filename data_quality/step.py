"""The DataQuality pipeline step: ``python -m data_quality.step [--end-date YYYY-MM-DD]``.

Reads Preprocess' splits from ``/opt/ml/processing/input/{train,validation,test}/{offers,flights}.parquet``,
runs the suites and writes ``/opt/ml/processing/output/dq/{dq_result.json,validation.json,report.html}``.

It exits 0 even when blocking expectations fail: the pipeline's ConditionStep reads
``blocking_failures`` from ``dq_result.json`` and its Fail step names ``failed_expectations``.
It exits non-zero only when the splits cannot be read at all (then there is nothing to judge).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from processing.sm_paths import processing_dir

EXIT_UNREADABLE = 2


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def write_outputs(run, out_dir: Path, title: str) -> dict:
    """Write dq_result.json, validation.json and report.html; return the summary."""
    from data_quality.validate import render_html, summarize, validation_json

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(run)
    (out_dir / "dq_result.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out_dir / "validation.json").write_text(json.dumps(validation_json(run), indent=2, default=str) + "\n")
    (out_dir / "report.html").write_text(render_html(run, title))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_quality.step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=processing_dir("input"), help="folder holding train/ validation/ test/")
    parser.add_argument("--output-dir", type=Path, default=processing_dir("output", "dq"), help="where the reports go")
    parser.add_argument(
        "--end-date",
        type=_date,
        default=_date(os.environ["DQ_END_DATE"]) if os.environ.get("DQ_END_DATE") else None,
        help="expected window end (makes freshness blocking; default: env DQ_END_DATE, else freshness vs today is a warning)",
    )
    parser.add_argument("--reference", type=Path, default=None, help="distribution reference JSON (default: data_quality/reference.json)")
    args = parser.parse_args(argv)

    from data_quality.tables import DataReadError

    try:
        summary = run_step(args.input_dir, args.output_dir, end_date=args.end_date, reference_path=args.reference)
    except (DataReadError, ValueError) as exc:
        print(f"data quality: cannot read the input: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    verdict = "passed" if summary["passed"] else f"FAILED: {summary['failed_expectations']}"
    print(f"data quality {verdict} ({summary['blocking_failures']} blocking, {summary['warnings']} warnings) -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

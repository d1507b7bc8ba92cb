"""The DataQuality job: ``python -m data_quality.entry [--end-date YYYY-MM-DD]`` (see :mod:`data_quality.step`).

Blocking expectations that fail do not fail the job (the pipeline's ConditionStep judges
``dq_result.json``); unreadable splits do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from core.job import JobFailed, run_job
from core.pipeline_contract import DQ_OUTPUT
from core.sm_paths import processing_dir


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_quality.entry", description="The DataQuality pipeline step.")
    p.add_argument("--input-dir", type=Path, default=processing_dir("input"), help="folder holding train/ validation/ test/")
    p.add_argument("--output-dir", type=Path, default=processing_dir("output", DQ_OUTPUT), help="where the reports go")
    p.add_argument(
        "--end-date",
        type=_date,
        default=_date(os.environ["DQ_END_DATE"]) if os.environ.get("DQ_END_DATE") else None,
        help="expected window end (makes freshness blocking; default: env DQ_END_DATE, else freshness vs today is a warning)",
    )
    p.add_argument("--reference", type=Path, default=None, help="distribution reference JSON (default: data_quality/reference.json)")
    return p


def _run(args: argparse.Namespace) -> None:
    from data_quality.step import run_step
    from data_quality.tables import DataReadError

    try:
        summary = run_step(args.input_dir, args.output_dir, end_date=args.end_date, reference_path=args.reference)
    except (DataReadError, ValueError) as exc:
        raise JobFailed(f"cannot read the input: {exc}") from exc
    verdict = "passed" if summary["passed"] else f"FAILED: {summary['failed_expectations']}"
    print(f"data quality {verdict} ({summary['blocking_failures']} blocking, {summary['warnings']} warnings) -> {args.output_dir}")


def main(argv: list[str] | None = None) -> int:
    return run_job("DataQuality", _run, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

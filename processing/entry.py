"""The Preprocess job: ``python -m processing.entry --curated-uri URI --outcomes-uri URI
--start-date D --end-date D [--validation-days N --test-days N]`` (docs/contracts.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import sm_paths
from core.job import run_job
from processing.preprocess import (
    DEFAULT_TEST_DAYS, DEFAULT_VALIDATION_DAYS, preprocess, read_curated, read_outcomes, write_splits,
)  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m processing.entry", description="The Preprocess step: curated offers + outcomes -> time-split train/validation/test.")
    p.add_argument("--curated-uri", required=True)
    p.add_argument("--outcomes-uri", required=True)
    p.add_argument("--start-date", default="")
    p.add_argument("--end-date", default="")
    p.add_argument("--validation-days", type=int, default=DEFAULT_VALIDATION_DAYS)
    p.add_argument("--test-days", type=int, default=DEFAULT_TEST_DAYS)
    p.add_argument("--output-dir", default=None, help="default: /opt/ml/processing/output (SM_OPT_ML aware)")
    return p


def _run(a: argparse.Namespace) -> None:
    offers = read_curated(a.curated_uri, a.start_date, a.end_date)
    outcomes = read_outcomes(a.outcomes_uri)
    reader = "awswrangler" if a.curated_uri.startswith("s3://") else "pyarrow"
    print(f"read {len(offers):,} curated offers from {a.curated_uri} and {len(outcomes):,} flight outcomes "
          f"from {a.outcomes_uri} ({reader})")
    splits, summary = preprocess(offers, outcomes, a.validation_days, a.test_days)
    summary["inputs"] = {"curated_uri": a.curated_uri, "outcomes_uri": a.outcomes_uri,
                         "start_date": a.start_date, "end_date": a.end_date}
    out_root = Path(a.output_dir) if a.output_dir else sm_paths.processing_dir("output")
    write_splits(splits, summary, out_root)
    for name, s in summary["splits"].items():
        print(f"{name:>10}: {s['start_date']} .. {s['end_date']}  offers={s['offers']:,}  flights={s['flights']:,}  {s['demand_classes']}")
    ds_ = summary["demand_table"]
    print(f"demand table: {ds_['snapshots']:,} snapshots, {ds_.get('dropped_without_outcome', 0):,} dropped "
          f"without an outcome ({ds_.get('dropped_flights_without_outcome', 0):,} flights); written to {out_root}")


def main(argv: list[str] | None = None) -> int:
    return run_job("Preprocess", _run, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

"""The MergeSplits step (the reduce of Preprocess): shards -> train/validation/test splits.

``python -m processing.merge_splits --outcomes-uri URI [--train-sample-rows N ...]`` reads every
shard that the Preprocess instances wrote (``/opt/ml/processing/input/shards/<host>/``), merges the
offer samples (cut again to the sample sizes: the result is exactly the single-instance sample),
builds the demand table's cross-day features from the sampled flights' snapshots, labels them
with the flight outcomes, and writes ``/opt/ml/processing/output/<split>/{offers,flights}.parquet``
with ``split_summary.json``. One instance: what it holds is bounded by the sample sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from core import sm_paths
from core.job import run_job
from processing.preprocess import (add_sampling_arguments, check_sampling_arguments, read_outcomes, read_shards,
                                   reduce_shards, sampling_sizes, write_splits)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m processing.merge_splits", description=__doc__.splitlines()[0])
    p.add_argument("--outcomes-uri", required=True)
    add_sampling_arguments(p)
    p.add_argument("--input-dir", default=None, help="default: /opt/ml/processing/input/shards (SM_OPT_ML aware)")
    p.add_argument("--output-dir", default=None, help="default: /opt/ml/processing/output (SM_OPT_ML aware)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    check_sampling_arguments(p, p.parse_args(argv))
    return run_job("MergeSplits", _run, parser(), argv)


def _run(a: argparse.Namespace) -> None:
    in_root = Path(a.input_dir) if a.input_dir else sm_paths.processing_dir("input", "shards")
    shards, meta = read_shards(in_root)
    bounds = {k: (dt.date.fromisoformat(lo), dt.date.fromisoformat(hi)) for k, (lo, hi) in meta["bounds"].items()}
    splits, summary = reduce_shards(shards, bounds, read_outcomes(a.outcomes_uri), sampling_sizes(a), a.sample_seed,
                                    a.sample_flights)
    summary["inputs"] = {**meta["inputs"], "outcomes_uri": a.outcomes_uri}
    out_root = Path(a.output_dir) if a.output_dir else sm_paths.processing_dir("output")
    write_splits(splits, summary, out_root)
    for name, s in summary["splits"].items():
        print(f"{name:>10}: {s['start_date']} .. {s['end_date']}  offers={s['offers']:,} of {s['offers_available']:,}  "
              f"flights={s['flights']:,}  {s['demand_classes']}")
    ds_ = summary["demand_table"]
    print(f"{len(shards)} shard(s); demand table: {ds_['snapshots']:,} snapshots, {ds_.get('dropped_without_outcome', 0):,} "
          f"dropped without an outcome ({ds_.get('dropped_flights_without_outcome', 0):,} flights); written to {out_root}")


if __name__ == "__main__":
    sys.exit(main())

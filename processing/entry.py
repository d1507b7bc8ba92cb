"""The Preprocess job (the map): ``python -m processing.entry --curated-uri URI --start-date D --end-date D
[--validation-days N --test-days N --train-sample-rows N ... --sample-flights N]`` (docs/contracts.md).

On instance i of n (SageMaker's ``/opt/ml/config/resourceconfig.json``) it streams every n-th ``dt``
day of the window and writes one shard to ``/opt/ml/processing/output/shards/<host>/``;
``processing.merge_splits`` (the reduce) writes the splits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import sm_paths
from core.job import run_job
from processing.preprocess import (
    DEFAULT_BATCH_ROWS, DEFAULT_TEST_DAYS, DEFAULT_VALIDATION_DAYS, SHARDS_DIR, add_sampling_arguments,
    check_sampling_arguments, day_splits, iter_day, list_days, map_days, sampling_sizes, this_host, write_shard,
)  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m processing.entry",
                                description="The Preprocess step (map): this instance's days -> offer samples + flight snapshots.")
    p.add_argument("--curated-uri", required=True)
    p.add_argument("--start-date", default="")
    p.add_argument("--end-date", default="")
    p.add_argument("--validation-days", type=int, default=DEFAULT_VALIDATION_DAYS)
    p.add_argument("--test-days", type=int, default=DEFAULT_TEST_DAYS)
    add_sampling_arguments(p)
    p.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS, help="rows per streamed batch")
    p.add_argument("--output-dir", default=None, help="default: /opt/ml/processing/output (SM_OPT_ML aware)")
    return p


def _run(a: argparse.Namespace) -> None:
    index, count, host = this_host()
    days = list_days(a.curated_uri, a.start_date, a.end_date)
    reader = "awswrangler" if a.curated_uri.startswith("s3://") else "pyarrow"
    print(f"reading {len(days)} day(s) of curated offers from {a.curated_uri} ({reader})")
    bounds, day_split = day_splits(days, a.validation_days, a.test_days)
    mine = days[index::count]
    shard = map_days(mine, day_split, lambda d: iter_day(a.curated_uri, d, a.batch_rows), sampling_sizes(a),
                     a.sample_seed, a.sample_flights)
    out_root = Path(a.output_dir) if a.output_dir else sm_paths.processing_dir("output")
    meta = {"host": host, "hosts": count, "days": days, "my_days": mine,
            "bounds": {k: [lo.isoformat(), hi.isoformat()] for k, (lo, hi) in bounds.items()},
            "inputs": {"curated_uri": a.curated_uri, "start_date": a.start_date, "end_date": a.end_date}}
    write_shard(shard, meta, out_root / SHARDS_DIR / host)
    print(f"{host} ({index + 1} of {count}): {len(mine)} of {len(days)} days, {sum(shard.day_rows.values()):,} offers; "
          f"samples {({s: (t.num_rows if t is not None else 0) for s, t in shard.samples.items()})}, "
          f"{0 if shard.snapshots is None else len(shard.snapshots):,} flight snapshots -> {out_root / SHARDS_DIR / host}")


def main(argv: list[str] | None = None) -> int:
    p = parser()
    a = p.parse_args(argv)
    check_sampling_arguments(p, a)
    if a.batch_rows < 1:
        p.error("--batch-rows must be >= 1")
    return run_job("Preprocess", _run, parser(), argv)


if __name__ == "__main__":
    sys.exit(main())

"""AWS Glue entry for the ETL: a thin shell around seed_infra.etl.job.run_etl.

On Glue (awsglue importable): arguments through getResolvedOptions, the session from GlueContext,
job bookmarks through Job.init/commit. Elsewhere it runs the same code on plain local Spark, e.g.
``python seed_infra/glue_job.py --raw_path DIR --curated_path DIR [--dates D1,D2]``.

Arguments: --raw_path (raw root), --curated_path (curated root: offers/, quarantine/,
etl_summary.json), optional --dates (comma-separated search dates, as the S3 trigger Lambda passes
them); --partitions from the Lambda is accepted and ignored (the dates decide what is read).
"""

from __future__ import annotations

import argparse
import json
import sys


def _optional(argv: list[str], name: str) -> str | None:
    flag = f"--{name}"
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def parse_dates(value: str | None) -> list[str] | None:
    dates = sorted({d.strip() for d in (value or "").split(",") if d.strip()})
    return dates or None


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv if argv is None else argv)
    from seed_infra.etl.job import run_etl, spark_session

    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from awsglue.utils import getResolvedOptions
        from pyspark.context import SparkContext
    except ImportError:  # not on Glue: plain local Spark, same functions
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--raw_path", required=True)
        parser.add_argument("--curated_path", required=True)
        parser.add_argument("--dates", default=None)
        parser.add_argument("--partitions", default=None)
        args, _ = parser.parse_known_args(argv[1:])
        spark = spark_session()
        try:
            summary = run_etl(spark, args.raw_path, args.curated_path, parse_dates(args.dates))
        finally:
            spark.stop()
    else:
        args = getResolvedOptions(argv, ["JOB_NAME", "raw_path", "curated_path"])
        glue = GlueContext(SparkContext.getOrCreate())
        job = Job(glue)
        job.init(args["JOB_NAME"], args)
        run_id = _optional(argv, "JOB_RUN_ID")
        summary = run_etl(glue.spark_session, args["raw_path"], args["curated_path"], parse_dates(_optional(argv, "dates")), run_id=run_id)
        job.commit()
    print(json.dumps({k: summary[k] for k in ("run_id", "input_records", "curated_events", "curated_offers", "quarantined", "duplicates")}))
    return summary


if __name__ == "__main__":
    main()

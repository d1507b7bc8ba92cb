"""AWS Glue entry for the ETL: a thin shell around seed_infra.etl.job.run_etl.

On Glue (awsglue importable): arguments through getResolvedOptions, the session from GlueContext,
Job.init/commit. Elsewhere it runs the same code on plain local Spark, e.g.
``python seed_infra/glue_job.py --raw_path DIR --curated_path DIR``.

Arguments: --raw_path (raw root), --curated_path (curated root: offers/, quarantine/,
etl_summary.json, _manifest/), optional --dates (search dates to rebuild in full as well) and
--full true (forget the manifest, rebuild everything). A run curates every raw file that arrived
since the last run, whatever its folder (run_etl's manifest plays the part of a job bookmark, for
the whole lake rather than per source, and it also tells which earlier files hold a date).
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


def parse_bool(value: str | None) -> bool:
    if value is None or value.strip().lower() in ("", "false", "0", "no"):
        return False
    if value.strip().lower() in ("true", "1", "yes"):
        return True
    raise ValueError(f"--full must be true or false, not {value!r}")


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv if argv is None else argv)
    from seed_infra.etl.job import run_etl, spark_session, stop_spark

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
        parser.add_argument("--full", default="false")
        args, _ = parser.parse_known_args(argv[1:])
        from pyspark.sql import SparkSession

        owned = SparkSession.getActiveSession() is None  # a caller's session (tests) is left running
        spark = spark_session()
        try:
            summary = run_etl(spark, args.raw_path, args.curated_path, parse_dates(args.dates), full=parse_bool(args.full))
        finally:
            if owned:
                stop_spark(spark)
    else:
        args = getResolvedOptions(argv, ["JOB_NAME", "raw_path", "curated_path"])
        glue = GlueContext(SparkContext.getOrCreate())
        job = Job(glue)
        job.init(args["JOB_NAME"], args)
        run_id = _optional(argv, "JOB_RUN_ID")
        summary = run_etl(glue.spark_session, args["raw_path"], args["curated_path"], parse_dates(_optional(argv, "dates")), run_id=run_id,
                          full=parse_bool(_optional(argv, "full")))
        job.commit()
    print(json.dumps({k: summary[k] for k in ("run_id", "new_raw_files", "rebuilt_dates", "input_records", "curated_events", "curated_offers",
                                              "quarantined", "duplicates")}))
    for f in summary["quarantined_files"]:  # one line per unreadable raw file, naming it (CloudWatch: alarm on it)
        print(json.dumps({"msg": "raw_file_quarantined", "path": f["path"], "reason": f["reason"], "detail": f["detail"]}))
    return summary


if __name__ == "__main__":
    main()

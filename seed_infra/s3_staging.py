"""The local shells' S3 staging: the world generator and the ETL against a real S3 API.

Glue reads and writes ``s3://`` natively; local Spark here has no S3 connector jar (Maven is not
reachable), so the local ETL shell stages raw from S3 into a scratch folder, runs the very same
``run_etl`` on it, and puts curated back, replacing the partitions the run wrote the way Spark's
dynamic partition overwrite does on S3. The generator (standing for Firehose and the airline's
exports) writes a scratch folder whose world folders then replace theirs in the bucket. The ETL
transform code itself knows nothing of this.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from core import contract
from core.s3lake import S3Lake, join, parse_s3_uri, staging_dir


def ensure_bucket(lake: S3Lake, bucket: str) -> None:
    """Create ``bucket`` when the endpoint has no such bucket (a fresh moto or MinIO); an existing
    bucket (always the case on AWS, made by the stacks) is left as it is."""
    from botocore.exceptions import ClientError

    try:
        lake.client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        region = lake.client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        lake.client.create_bucket(**kwargs)


def generate_world_to_s3(lake: S3Lake, out_uri: str, **world_options: Any):
    """``generate_world`` into ``out_uri`` (``s3://bucket[/prefix]``): its world folders (raw/,
    outcomes/flights/, truth/) are replaced in the bucket, anything else there is left alone."""
    from seed_infra.world import generate_world
    from seed_infra.world.writer import WORLD_FOLDERS

    parse_s3_uri(out_uri)
    with staging_dir("world") as tmp:
        summary = generate_world(Path(tmp), **world_options)
        for folder in WORLD_FOLDERS:
            lake.delete_prefix(join(out_uri, folder) + "/")
            lake.upload(Path(tmp) / folder, join(out_uri, folder))
    summary.out_dir = out_uri
    return summary


def run_etl_via_s3(
    spark,
    lake: S3Lake,
    raw_uri: str,
    out_uri: str,
    dates: list[str] | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> dict:
    """Stage ``raw_uri`` from S3, run the ETL locally, put curated/quarantine/summary under ``out_uri``.

    Partitions are replaced as the job replaces them in place: every ``dt=`` partition in the
    run's scope (written now, or emptied because no row of that date survived) loses its old
    objects before the new ones are uploaded; other dates are not touched. The summary names the
    S3 locations, not the scratch folder.
    """
    from seed_infra.etl.job import OFFERS_DIR, QUARANTINE_DIR, SUMMARY_FILE, run_etl

    parse_s3_uri(raw_uri)
    parse_s3_uri(out_uri)
    with staging_dir("etl") as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "curated"
        progress(f"staging {raw_uri} from S3")
        if not lake.download(raw_uri, raw):
            from seed_infra.etl.job import NoRawDataError

            raise NoRawDataError(f"no raw objects under {raw_uri}")
        summary = run_etl(spark, str(raw), str(out), dates, progress=progress)
        progress(f"uploading curated data to {out_uri}")
        scope = set(summary.get("per_date") or {}) | set(summary.get("dates") or [])
        for dataset in (OFFERS_DIR, QUARANTINE_DIR):
            for day in sorted(scope):
                lake.delete_prefix(join(out_uri, dataset, f"{contract.PARTITION_COLUMN}={day}") + "/")
            lake.replace_partitions(out / dataset, join(out_uri, dataset))
        summary["raw_path"], summary["out_path"] = raw_uri.rstrip("/"), out_uri.rstrip("/")  # as run_etl writes them
        lake.put_bytes((json.dumps(summary, indent=2, default=str) + "\n").encode(), join(out_uri, SUMMARY_FILE))
    return summary

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
    full: bool = False,
) -> dict:
    """Stage ``raw_uri`` from S3, run the ETL locally, put curated/quarantine/summary under ``out_uri``.

    The processed-files manifest (``<out>/_manifest/``) travels both ways, so incremental runs over
    S3 take only what arrived since the last one: staged raw files keep their S3 LastModified as
    mtime, and manifest paths name the S3 objects in the bucket and the staged files locally.
    Partitions are replaced as the job replaces them in place: every ``dt=`` partition in the
    run's scope (rebuilt now, or emptied because no row of that date survived) loses its old
    objects before the new ones are uploaded; other dates are not touched. The summary names the
    S3 locations, not the scratch folder.
    """
    import os

    from seed_infra.etl.job import MANIFEST_DIR, OFFERS_DIR, QUARANTINE_DIR, SUMMARY_FILE, HadoopFS, run_etl

    parse_s3_uri(raw_uri)
    parse_s3_uri(out_uri)
    raw_s3 = raw_uri.rstrip("/")
    with staging_dir("etl") as tmp:
        raw, out = Path(tmp) / "raw", Path(tmp) / "curated"
        progress(f"staging {raw_uri} from S3")
        if not lake.download(raw_uri, raw):
            from seed_infra.etl.job import NoRawDataError

            raise NoRawDataError(f"no raw objects under {raw_uri}")
        _, base, objects = lake._objects_under(raw_uri)
        for obj in objects:  # the manifest knows a file by (path, size, mtime): mtime = the object's
            target = raw / obj["Key"][len(base):]
            if target.is_file() and obj.get("LastModified") is not None:
                ts = obj["LastModified"].timestamp()
                os.utime(target, (ts, ts))
        listing = HadoopFS(spark, str(raw)).status(str(raw))
        local_raw = str(raw.resolve())
        first = listing[0][0] if listing else ""
        local_prefix = first[: first.find(local_raw) + len(local_raw)] if local_raw in first else local_raw
        manifest_uri = join(out_uri, MANIFEST_DIR)
        if not full:
            for f in lake.download(manifest_uri, out / MANIFEST_DIR) if any(True for _ in lake.list(manifest_uri + "/")) else []:
                f.write_text(_repath(f.read_text(), raw_s3, local_prefix))
        summary = run_etl(spark, str(raw), str(out), dates, progress=progress, full=full)
        progress(f"uploading curated data to {out_uri}")
        scope = set(summary.get("per_date") or {}) | set(summary.get("dates") or []) | set(summary.get("rebuilt_dates") or [])
        for dataset in (OFFERS_DIR, QUARANTINE_DIR):
            for day in sorted(scope):
                lake.delete_prefix(join(out_uri, dataset, f"{contract.PARTITION_COLUMN}={day}") + "/")
            lake.replace_partitions(out / dataset, join(out_uri, dataset))
        local_manifest = out / MANIFEST_DIR
        if local_manifest.is_dir():  # after the data: a run that dies before this is redone by the next
            lake.delete_prefix(manifest_uri + "/")
            for f in sorted(local_manifest.glob("*.jsonl")):
                lake.put_bytes(_repath(f.read_text(), local_prefix, raw_s3).encode(), join(manifest_uri, f.name))
        summary = json.loads(_repath(json.dumps(summary, default=str), local_prefix, raw_s3))
        summary["raw_path"], summary["out_path"] = raw_s3, out_uri.rstrip("/")  # as run_etl writes them
        lake.put_bytes((json.dumps(summary, indent=2, default=str) + "\n").encode(), join(out_uri, SUMMARY_FILE))
    return summary


def _repath(text: str, old_prefix: str, new_prefix: str) -> str:
    """Manifest/summary JSON with raw file paths under ``old_prefix`` moved under ``new_prefix``."""
    return text.replace(json.dumps(old_prefix + "/")[1:-1], json.dumps(new_prefix + "/")[1:-1])


"""Lambda: start the Glue ETL job when Firehose lands new raw objects in S3.

The seed's ``lambda_trigger.py``. Wired to the raw bucket's ``s3:ObjectCreated:*`` notifications
(or the equivalent EventBridge "Object Created" events), it collects the ``dt`` (and ``hour``)
partitions of the new objects under ``raw/``, de-duplicates them, and starts one Glue job run per
bucket with arguments the ETL job reads:

- ``--raw_path``: ``s3://BUCKET/raw/`` (the raw root);
- ``--dates``: comma-separated search dates, e.g. ``2026-01-01,2026-01-02``;
- ``--partitions``: comma-separated ``dt=YYYY-MM-DD/hour=HH`` (or ``dt=YYYY-MM-DD``) partitions.

Other keys (Firehose error output, folder markers, anything outside ``raw/dt=...``) are ignored.
When Glue refuses a run because one is already going (``ConcurrentRunsExceededException``) the
handler reports the skipped partitions (a ``glue_run_skipped`` log line to alarm on) instead of
failing: the ETL rewrites whole ``dt`` partitions, so the next run of those dates picks the new
objects up. Any other error is raised, so that a misconfiguration fails visibly.

Dependency-light on purpose: boto3 and the standard library only, so this file alone makes the
Lambda zip. Configuration: ``GLUE_JOB_NAME`` (required), ``RAW_PREFIX`` (default ``raw/``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from urllib.parse import unquote_plus

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

DEFAULT_RAW_PREFIX = "raw/"


def _glue_client():
    """Glue client: the project's factory when packaged with it, plain boto3 in a bare Lambda zip."""
    try:
        from core.aws import client
    except ImportError:
        import boto3

        return boto3.client("glue")
    return client("glue")


def _key_pattern(raw_prefix: str) -> re.Pattern:
    prefix = re.escape(raw_prefix.rstrip("/") + "/")
    return re.compile(rf"^{prefix}dt=(?P<dt>\d{{4}}-\d{{2}}-\d{{2}})/(?:hour=(?P<hour>\d{{2}})/)?(?:[^/]+/)*[^/]+$")


def raw_partition(key: str, raw_prefix: str = DEFAULT_RAW_PREFIX) -> str | None:
    """The ``dt=.../hour=..`` partition of a raw object key, or None when the key is not a raw object."""
    match = _key_pattern(raw_prefix).match(key)
    if not match:
        return None
    try:
        dt.date.fromisoformat(match["dt"])
    except ValueError:
        return None
    hour = match["hour"]
    if hour is not None and not 0 <= int(hour) <= 23:
        return None
    return f"dt={match['dt']}" + (f"/hour={hour}" if hour is not None else "")


def created_objects(event: dict) -> list[tuple[str, str, int | None]]:
    """``(bucket, key, size)`` of the created objects in an S3 notification or EventBridge event."""
    out: list[tuple[str, str, int | None]] = []
    for record in event.get("Records") or []:  # S3 event notification (keys URL-encoded)
        if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        if bucket and obj.get("key"):
            out.append((bucket, unquote_plus(obj["key"]), obj.get("size")))
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":  # EventBridge (not encoded)
        detail = event.get("detail") or {}
        bucket = (detail.get("bucket") or {}).get("name")
        obj = detail.get("object") or {}
        if bucket and obj.get("key"):
            out.append((bucket, obj["key"], obj.get("size")))
    return out


def plan_runs(event: dict, raw_prefix: str = DEFAULT_RAW_PREFIX) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Glue arguments per bucket for the raw partitions in ``event``, and the ignored keys."""
    partitions: dict[str, set[str]] = {}
    ignored: list[str] = []
    for bucket, key, size in created_objects(event):
        part = raw_partition(key, raw_prefix)
        if part is None or size == 0:  # not raw data, or an empty folder marker
            ignored.append(f"s3://{bucket}/{key}")
            continue
        partitions.setdefault(bucket, set()).add(part)
    prefix = raw_prefix.strip("/")
    runs = {}
    for bucket, parts in sorted(partitions.items()):
        ordered = sorted(parts)
        dates = sorted({p.split("/")[0].removeprefix("dt=") for p in ordered})
        runs[bucket] = {
            "--raw_path": f"s3://{bucket}/{prefix}/",
            "--dates": ",".join(dates),
            "--partitions": ",".join(ordered),
        }
    return runs, ignored


def handler(event: dict, context: object = None, *, glue=None) -> dict:
    """Lambda entry point: start the ETL for the new raw partitions; returns what it did."""
    job_name = os.environ.get("GLUE_JOB_NAME")
    if not job_name:
        raise RuntimeError("GLUE_JOB_NAME is not set: the Lambda does not know which Glue job to start")
    raw_prefix = os.environ.get("RAW_PREFIX", DEFAULT_RAW_PREFIX)
    runs, ignored = plan_runs(event, raw_prefix)
    report: dict = {"job_name": job_name, "started": [], "skipped": [], "ignored_keys": ignored}
    if ignored:
        logger.info(json.dumps({"msg": "ignored_keys", "count": len(ignored), "keys": ignored[:20]}))
    if not runs:
        return report
    glue = glue or _glue_client()
    for bucket, arguments in runs.items():
        try:
            run_id = glue.start_job_run(JobName=job_name, Arguments=arguments)["JobRunId"]
        except glue.exceptions.ConcurrentRunsExceededException as exc:
            skipped = {"bucket": bucket, "arguments": arguments, "reason": str(exc)}
            report["skipped"].append(skipped)
            logger.warning(json.dumps({"msg": "glue_run_skipped", "job_name": job_name, **skipped}))
            continue
        started = {"bucket": bucket, "job_run_id": run_id, "arguments": arguments}
        report["started"].append(started)
        logger.info(json.dumps({"msg": "glue_run_started", "job_name": job_name, **started}))
    return report

"""Lambda: start the Glue ETL job when Firehose lands new raw objects in S3, and on a schedule.

The seed's ``lambda_trigger.py``. Wired to the raw bucket's ``s3:ObjectCreated:*`` notifications
(or the equivalent EventBridge "Object Created" events), it starts one Glue job run per bucket with
``--raw_path s3://BUCKET/raw/``. The job curates every raw object that arrived since its last run,
whatever its ``dt`` folder (Firehose files by arrival time, not by event date: see
seed_infra/etl/job.py), so no dates are passed. The ``dt=.../hour=..`` partitions of the event are
logged, not passed.

Nothing is dropped when the job is busy: Glue refuses a second run (``ConcurrentRunsExceeded``),
and the handler logs ``glue_run_deferred`` and returns; the new objects are not in the job's
manifest, so the next run takes them. A next run is guaranteed by the scheduled sweep (an
EventBridge schedule in glue_stack.yaml invokes this handler with a "Scheduled Event", which starts
a run with the job's default arguments). The stack alarms when runs stay deferred for an hour (the
ETL does not keep up) and when the trigger's dead-letter queue receives anything. Any other error
is raised, so that a misconfiguration fails visibly (async retries, then the DLQ).

Other keys (Firehose error output, folder markers, anything outside ``raw/dt=...``) are ignored.
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


def is_sweep(event: dict) -> bool:
    """An EventBridge schedule's event (the periodic sweep), not an S3 notification."""
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def plan_runs(event: dict, raw_prefix: str = DEFAULT_RAW_PREFIX) -> tuple[dict[str, dict[str, str]], dict[str, list[str]], list[str]]:
    """Glue arguments per bucket for the raw objects in ``event``, their partitions (for the log),
    and the ignored keys."""
    partitions: dict[str, set[str]] = {}
    ignored: list[str] = []
    for bucket, key, size in created_objects(event):
        part = raw_partition(key, raw_prefix)
        if part is None or size == 0:  # not raw data, or an empty folder marker
            ignored.append(f"s3://{bucket}/{key}")
            continue
        partitions.setdefault(bucket, set()).add(part)
    prefix = raw_prefix.strip("/")
    runs = {bucket: {"--raw_path": f"s3://{bucket}/{prefix}/"} for bucket in sorted(partitions)}
    return runs, {b: sorted(p) for b, p in sorted(partitions.items())}, ignored


def handler(event: dict, context: object = None, *, glue=None) -> dict:
    """Lambda entry point: start the ETL for the new raw partitions; returns what it did."""
    job_name = os.environ.get("GLUE_JOB_NAME")
    if not job_name:
        raise RuntimeError("GLUE_JOB_NAME is not set: the Lambda does not know which Glue job to start")
    raw_prefix = os.environ.get("RAW_PREFIX", DEFAULT_RAW_PREFIX)
    if is_sweep(event):
        runs, partitions, ignored = {"(job default)": {}}, {}, []
    else:
        runs, partitions, ignored = plan_runs(event, raw_prefix)
    report: dict = {"job_name": job_name, "started": [], "deferred": [], "ignored_keys": ignored}
    if ignored:
        logger.info(json.dumps({"msg": "ignored_keys", "count": len(ignored), "keys": ignored[:20]}))
    if not runs:
        return report
    glue = glue or _glue_client()
    for bucket, arguments in runs.items():
        try:
            run_id = glue.start_job_run(JobName=job_name, Arguments=arguments)["JobRunId"]
        except glue.exceptions.ConcurrentRunsExceededException as exc:
            # The objects stay out of the job's manifest: the next run (next object, or the sweep) takes them.
            deferred = {"bucket": bucket, "arguments": arguments, "partitions": partitions.get(bucket, []), "reason": str(exc)}
            report["deferred"].append(deferred)
            logger.warning(json.dumps({"msg": "glue_run_deferred", "job_name": job_name, **deferred}))
            continue
        started = {"bucket": bucket, "job_run_id": run_id, "arguments": arguments, "partitions": partitions.get(bucket, [])}
        report["started"].append(started)
        logger.info(json.dumps({"msg": "glue_run_started", "job_name": job_name, **started}))
    return report

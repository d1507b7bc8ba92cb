"""The S3 -> Glue Lambda trigger: partitions from keys, de-duplication, runs on moto's Glue."""

from __future__ import annotations

import uuid

import pytest

from seed_infra import lambda_trigger
from seed_infra.lambda_trigger import created_objects, handler, is_sweep, plan_runs, raw_partition

SWEEP = {"version": "0", "id": "5e1c4b0e", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
         "time": "2026-03-01T12:15:00Z", "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"], "detail": {}}


def s3_record(bucket: str, key: str, size: int = 1234, name: str = "ObjectCreated:Put") -> dict:
    """One record of a real S3 event notification (keys arrive URL-encoded)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-03-01T12:05:01.123Z",
        "eventName": name,
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:firehose"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "raw-created",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": size, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"},
        },
    }


def test_raw_partition_parses_only_raw_keys():
    assert raw_partition("raw/dt=2026-03-01/hour=05/searches-1-2026-03-01-05-00-00-abc.gz") == "dt=2026-03-01/hour=05"
    assert raw_partition("raw/dt=2026-03-01/part-0.json.gz") == "dt=2026-03-01"
    assert raw_partition("landing/dt=2026-03-01/x.gz", "landing") == "dt=2026-03-01"
    for key in [
        "raw-errors/dt=2026-03-01/hour=05/x.gz",  # Firehose error output
        "raw/dt=2026-03-01/hour=05/",  # folder marker
        "curated/offers/dt=2026-03-01/a.parquet",
        "raw/dt=2026-02-30/hour=05/x.gz",  # not a date
        "raw/dt=2026-03-01/hour=25/x.gz",
        "raw/2026/03/01/05/x.gz",  # Firehose default layout, not the contract's
        "raw/x.gz",
    ]:
        assert raw_partition(key) is None, key


def test_created_objects_reads_s3_and_eventbridge_and_decodes_keys():
    event = {"Records": [s3_record("b", "raw/dt=2026-03-01/hour=05/a+b%3D1.gz"), s3_record("b", "raw/x", name="ObjectRemoved:Delete")]}
    assert created_objects(event) == [("b", "raw/dt=2026-03-01/hour=05/a b=1.gz", 1234)]
    eb = {"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {"key": "raw/dt=2026-03-01/k.gz", "size": 9}}}
    assert created_objects(eb) == [("b", "raw/dt=2026-03-01/k.gz", 9)]
    assert created_objects({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}) == []


def test_plan_runs_deduplicates_partitions_and_groups_by_bucket():
    keys = [
        "raw/dt=2026-03-02/hour=00/f1.gz",
        "raw/dt=2026-03-01/hour=23/f1.gz",
        "raw/dt=2026-03-01/hour=23/f2.gz",
        "raw/dt=2026-03-01/hour=23/f3.gz",
        "raw-errors/dt=2026-03-01/hour=23/bad.gz",
    ]
    event = {"Records": [s3_record("lake", k) for k in keys] + [s3_record("lake", "raw/dt=2026-03-03/hour=01/", size=0), s3_record("other", keys[0])]}
    runs, partitions, ignored = plan_runs(event)
    # No dates: the arrival folders say nothing about the events' dates; the job takes what is new.
    assert runs == {"lake": {"--raw_path": "s3://lake/raw/"}, "other": {"--raw_path": "s3://other/raw/"}}
    assert partitions == {"lake": ["dt=2026-03-01/hour=23", "dt=2026-03-02/hour=00"], "other": ["dt=2026-03-02/hour=00"]}
    assert not is_sweep(event) and is_sweep(SWEEP)
    assert ignored == ["s3://lake/raw-errors/dt=2026-03-01/hour=23/bad.gz", "s3://lake/raw/dt=2026-03-03/hour=01/"]


@pytest.fixture()
def slow_glue_runs(aws_endpoint):
    """Keep moto's job runs STARTING (its default finishes them at once), restored afterwards."""
    import httpx

    api = f"{aws_endpoint}/moto-api/state-manager"
    model = "glue::job_run"
    httpx.post(f"{api}/set-transition", json={"model_name": model, "transition": {"progression": "manual", "times": 1000}}).raise_for_status()
    yield
    httpx.post(f"{api}/unset-transition", json={"model_name": model}).raise_for_status()


@pytest.fixture()
def glue_job(aws_endpoint, monkeypatch):
    from core.aws import client

    glue = client("glue")
    name = f"airfare-etl-{uuid.uuid4().hex[:8]}"
    glue.create_job(
        Name=name,
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": "s3://code/etl/glue_job.py", "PythonVersion": "3"},
        DefaultArguments={"--curated_path": "s3://lake/curated/offers/"},
        ExecutionProperty={"MaxConcurrentRuns": 1},
        GlueVersion="5.0",
    )
    monkeypatch.setenv("GLUE_JOB_NAME", name)
    return glue, name


def test_handler_starts_glue_run_and_defers_when_busy(glue_job, slow_glue_runs, caplog):
    glue, name = glue_job
    event = {"Records": [s3_record("lake", "raw/dt=2026-03-01/hour=05/a.gz"), s3_record("lake", "raw/dt=2026-03-01/hour=05/b.gz")]}
    report = handler(event, None)
    assert report["deferred"] == [] and len(report["started"]) == 1
    assert report["started"][0]["partitions"] == ["dt=2026-03-01/hour=05"]
    # A second event while that run is still starting: Glue refuses; the handler defers (logs, no crash).
    again = handler({"Records": [s3_record("lake", "raw/dt=2026-03-01/hour=06/c.gz")]}, None)
    assert again["started"] == [] and len(again["deferred"]) == 1
    assert again["deferred"][0]["partitions"] == ["dt=2026-03-01/hour=06"]
    assert "already running" in again["deferred"][0]["reason"]
    assert any('"msg": "glue_run_deferred"' in r.getMessage() for r in caplog.records)  # what the stack's alarm counts
    # The sweep, while still busy, defers too; nothing is started twice.
    assert len(handler(SWEEP, None)["deferred"]) == 1

    runs = glue.get_job_runs(JobName=name)["JobRuns"]
    assert [r["Id"] for r in runs] == [report["started"][0]["job_run_id"]]
    args = runs[0]["Arguments"]
    assert args["--raw_path"] == "s3://lake/raw/" and "--dates" not in args
    assert args["--curated_path"] == "s3://lake/curated/offers/"  # the job's defaults still apply


def test_handler_ignores_non_raw_events_without_calling_glue(monkeypatch):
    monkeypatch.setenv("GLUE_JOB_NAME", "job")

    class NoGlue:
        def start_job_run(self, **kw):  # pragma: no cover - must not be called
            raise AssertionError("Glue called for an event with no raw objects")

    report = handler({"Records": [s3_record("lake", "curated/offers/dt=2026-03-01/x.parquet")]}, None, glue=NoGlue())
    assert report["started"] == [] and report["ignored_keys"] == ["s3://lake/curated/offers/dt=2026-03-01/x.parquet"]


def test_handler_unknown_job_and_missing_config_fail_loudly(aws_endpoint, monkeypatch):
    event = {"Records": [s3_record("lake", "raw/dt=2026-03-01/hour=05/a.gz")]}
    monkeypatch.delenv("GLUE_JOB_NAME", raising=False)
    with pytest.raises(RuntimeError, match="GLUE_JOB_NAME"):
        handler(event, None)
    monkeypatch.setenv("GLUE_JOB_NAME", "no-such-job-xyz")
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="EntityNotFound"):
        handler(event, None)


def test_lambda_module_needs_only_boto3_and_stdlib():
    import ast
    import inspect
    import sys

    tree = ast.parse(inspect.getsource(lambda_trigger))
    top = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    top |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert top - set(sys.stdlib_module_names) <= {"boto3", "core", "__future__"}  # core is optional (ImportError fallback)

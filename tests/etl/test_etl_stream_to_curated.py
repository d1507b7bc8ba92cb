"""The automated path end to end on moto: `airfare produce` streams a past-dated world into Kinesis,
Firehose delivers it to S3, the S3 -> Glue Lambda handler (in-process: Lambda invoke needs Docker)
starts the Glue job on moto, and the job's code (glue_job.main on local Spark) curates it all, by
event date, including objects whose trigger found the job busy (deferred, then the sweep).

Where moto stops short of AWS, the test does the service's part, openly:
- moto's Firehose does not consume a Kinesis source: the test reads the shards and hands the records
  to Firehose's PutRecordBatch, as the service's poller would (each call becomes one S3 object);
- moto renders no ``!{timestamp:..}`` prefix and does not gzip: the prefix is rendered at arrival
  time as Firehose would, and the ETL reads plain or gzip text alike;
- local Spark has no S3 connector (hadoop-aws cannot be fetched here): each job run stages
  ``s3://BUCKET/raw/`` into a local folder (object times kept, so the manifest sees the same objects).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
import typer
from typer.testing import CliRunner

pytestmark = [pytest.mark.spark]


@pytest.fixture()
def aws(aws_endpoint, monkeypatch):
    from core.aws import client

    name = uuid.uuid4().hex[:8]
    s3, kinesis, firehose, glue = (client(s) for s in ("s3", "kinesis", "firehose", "glue"))
    bucket, stream, job = f"lake-{name}", f"searches-{name}", f"etl-{name}"
    s3.create_bucket(Bucket=bucket)
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    now = dt.datetime.now(dt.UTC)
    firehose.create_delivery_stream(
        DeliveryStreamName=f"{stream}-to-raw",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": "arn:aws:iam::123456789012:role/firehose"},
        ExtendedS3DestinationConfiguration={
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            # kinesis_stack.yaml's prefix, rendered at arrival time (moto leaves !{timestamp:..} as is)
            "Prefix": f"raw/dt={now:%Y-%m-%d}/hour={now:%H}/",
        },
    )
    glue.create_job(Name=job, Role="arn:aws:iam::123456789012:role/glue",
                    Command={"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/glue/glue_job.py", "PythonVersion": "3"},
                    DefaultArguments={"--raw_path": f"s3://{bucket}/raw/", "--curated_path": f"s3://{bucket}/curated/"},
                    ExecutionProperty={"MaxConcurrentRuns": 1}, GlueVersion="5.1")
    monkeypatch.setenv("GLUE_JOB_NAME", job)
    return {"s3": s3, "kinesis": kinesis, "firehose": firehose, "glue": glue, "bucket": bucket, "stream": stream,
            "delivery": f"{stream}-to-raw", "job": job, "endpoint": aws_endpoint}


def produce(stream: str, start: str, n: int, per_day: int, seed: int) -> None:
    from seed_infra import producer_cli

    root = typer.Typer()
    root.add_typer(producer_cli.app)

    @root.callback()
    def _root():
        pass

    result = CliRunner().invoke(root, ["produce", "--stream-name", stream, "-n", str(n), "--start-date", start,
                                       "--searches-per-day", str(per_day), "--seed", str(seed), "--json"])
    assert result.exit_code == 0, result.output


def pump(aws, iterators: dict, per_object: int = 40) -> int:
    """Firehose's Kinesis poller: new shard records -> PutRecordBatch (one S3 object per call)."""
    records = []
    for shard, it in list(iterators.items()):
        while it:
            resp = aws["kinesis"].get_records(ShardIterator=it, Limit=10_000)
            records += [r["Data"] for r in resp["Records"]]
            it = resp.get("NextShardIterator")
            if not resp["Records"]:
                break
        iterators[shard] = it
    for i in range(0, len(records), per_object):
        aws["firehose"].put_record_batch(DeliveryStreamName=aws["delivery"], Records=[{"Data": d} for d in records[i : i + per_object]])
    return len(records)


def s3_event(aws, keys: list[str]) -> dict:
    """The S3 notification for new objects, as S3 would send it to the Lambda."""
    records = []
    for key in keys:
        head = aws["s3"].head_object(Bucket=aws["bucket"], Key=key)
        records.append({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-1",
                        "s3": {"bucket": {"name": aws["bucket"]}, "object": {"key": key, "size": head["ContentLength"]}}})
    return {"Records": records}


def run_job(aws, run_id: str, stage) -> dict:
    """Run the Glue job run's arguments through glue_job.main, s3:// staged to local folders."""
    from seed_infra import glue_job

    args = aws["glue"].get_job_run(JobName=aws["job"], RunId=run_id)["JobRun"]["Arguments"]
    prefix = f"s3://{aws['bucket']}/"
    local = {k: str(stage / v.removeprefix(prefix)) for k, v in args.items() if v.startswith(prefix)}
    pages = aws["s3"].get_paginator("list_objects_v2").paginate(Bucket=aws["bucket"], Prefix=args["--raw_path"].removeprefix(prefix))
    for obj in (o for page in pages for o in page.get("Contents", [])):
        target = stage / obj["Key"]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            aws["s3"].download_file(aws["bucket"], obj["Key"], str(target))
            t = obj["LastModified"].timestamp()
            os.utime(target, (t, t))
    argv = ["glue_job.py"] + [x for k in ("--raw_path", "--curated_path") for x in (k, local[k])]
    return glue_job.main(argv)


@pytest.fixture()
def busy_glue(aws):
    """Job runs stay STARTING until released (moto finishes them at once by default)."""
    import httpx

    api = f"{aws['endpoint']}/moto-api/state-manager"
    httpx.post(f"{api}/set-transition", json={"model_name": "glue::job_run", "transition": {"progression": "manual", "times": 1000}}).raise_for_status()
    yield lambda: httpx.post(f"{api}/unset-transition", json={"model_name": "glue::job_run"}).raise_for_status()
    httpx.post(f"{api}/unset-transition", json={"model_name": "glue::job_run"})


def test_past_dated_stream_is_curated_in_full_through_the_lambda_path(spark, aws, busy_glue, tmp_path):
    from seed_infra.lambda_trigger import handler

    shards = aws["kinesis"].list_shards(StreamName=aws["stream"])["Shards"]
    iterators = {s["ShardId"]: aws["kinesis"].get_shard_iterator(StreamName=aws["stream"], ShardId=s["ShardId"],
                                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"] for s in shards}
    listed: set[str] = set()

    def new_keys() -> list[str]:
        keys = {o["Key"] for o in aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix="raw/").get("Contents", [])}
        fresh = sorted(keys - listed)
        listed.update(fresh)
        return fresh

    # A past-dated world (January; today's folder is where Firehose puts it), two days of 60 searches.
    produce(aws["stream"], "2026-01-05", 120, 60, seed=5)
    assert pump(aws, iterators) == 120
    first = handler(s3_event(aws, new_keys()), None)
    assert len(first["started"]) == 1
    run1 = first["started"][0]["job_run_id"]
    stage = tmp_path / "stage"
    s1 = run_job(aws, run1, stage)  # run 1 lists raw now: the objects below arrive after it started

    # More searches (later January days) while run 1 is still going: the trigger defers.
    produce(aws["stream"], "2026-01-09", 50, 50, seed=6)  # another seed: event ids follow the seed, not the date
    assert pump(aws, iterators) == 50
    second = handler(s3_event(aws, new_keys()), None)
    assert second["started"] == [] and len(second["deferred"]) == 1
    busy_glue()  # run 1 finishes
    assert aws["glue"].get_job_run(JobName=aws["job"], RunId=run1)["JobRun"]["JobRunState"] == "SUCCEEDED"

    # The scheduled sweep starts the next run, which takes what the deferred trigger left.
    sweep = handler({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, None)
    assert len(sweep["started"]) == 1
    s2 = run_job(aws, sweep["started"][0]["job_run_id"], stage)

    assert s1["reconciled"] and s2["reconciled"]
    assert s1["curated_events"] == 120 and s1["rebuilt_dates"] == ["2026-01-05", "2026-01-06"]
    assert s2["new_raw_files"] >= 1 and s2["reread_raw_files"] == 0 and s2["rebuilt_dates"] == ["2026-01-09"]
    assert s2["curated_events"] == 50 and s2["quarantined"] == 0 and s2["duplicates"] == 0
    import pyarrow.dataset as ds

    offers = ds.dataset(stage / "curated" / "offers", partitioning="hive", format="parquet").to_table(columns=["event_id", "dt"])
    # every produced search is curated (170 above); those the world answered with no offer have no offer rows
    with_offers = 170 - s1["events_without_offers"] - s2["events_without_offers"]
    assert len(set(offers["event_id"].to_pylist())) == with_offers and with_offers > 100
    assert sorted(set(offers["dt"].to_pylist())) == ["2026-01-05", "2026-01-06", "2026-01-09"]  # event dates, not arrival

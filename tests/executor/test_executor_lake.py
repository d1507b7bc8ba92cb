"""The executor's lakes: s3:// URI validation, the folder lake's confinement, and the S3 lake
against a moto server (SageMaker's S3Prefix download / EndOfJob upload semantics)."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest

from pipelines.local_executor.lake import FolderLake, LakeError, S3Lake
from core.s3lake import S3UriError, join, parse_s3_uri

ESCAPES = [
    "s3://bucket//etc/passwd",  # empty first segment: an absolute key
    "s3://bucket/../other-bucket/x",
    "s3://bucket/a/../../etc",
    "s3://bucket/a/./b",
    "s3://bucket/a//b",
    "s3://bucket/a\\..\\b",
    "s3://../etc/passwd",
    "s3:///etc/passwd",
    "s3://Bucket/x",  # not a bucket name
    "s3://b/x",  # too short for a bucket name
    "s3://bucket/a\nb",
    "file:///etc/passwd",
    "/etc/passwd",
]


@pytest.mark.parametrize("uri", ESCAPES)
def test_uris_that_could_escape_the_lake_are_refused(uri, tmp_path):
    with pytest.raises(S3UriError):
        parse_s3_uri(uri)
    with pytest.raises(LakeError):
        FolderLake(tmp_path / "lake").s3_to_local(uri)
    if uri.startswith("s3://") and "\n" not in uri:  # as a job argument, in either lake
        for lake in (FolderLake(tmp_path / "lake"), S3Lake(client=_NoCalls())):
            with pytest.raises(LakeError):
                lake.map_text(f"--uri={uri}", None)


class _NoCalls:
    """An S3 client stand-in for checks that must fail before any call."""

    class meta:
        endpoint_url = "http://unused"


def test_valid_uris_parse_and_keep_prefix_semantics():
    assert parse_s3_uri("s3://airfare-lake/curated/offers/") == ("airfare-lake", "curated/offers/")
    assert parse_s3_uri("s3://airfare-lake") == ("airfare-lake", "")
    assert parse_s3_uri("s3://my.bucket-1/a/dt=2026-01-05/part-0.parquet")[1] == "a/dt=2026-01-05/part-0.parquet"
    assert join("s3://bkt/p/", "x", "y.json") == "s3://bkt/p/x/y.json"
    with pytest.raises(S3UriError):
        join("s3://bkt/p", "..", "x")


def test_folder_lake_refuses_a_symlink_out_of_the_lake(tmp_path):
    lake = tmp_path / "lake"
    (lake / "bkt").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, lake / "bkt" / "link")
    with pytest.raises(LakeError, match="outside"):
        FolderLake(lake).s3_to_local("s3://bkt/link/secret")
    assert FolderLake(lake).s3_to_local("s3://bkt/ok/x") == lake.resolve() / "bkt/ok/x"


@pytest.fixture()
def s3(moto_server):
    client = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    bucket = f"lake-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    for key, body in {"raw/a.txt": b"a", "raw/nested/b.txt": b"b", "raw_old/c.txt": b"c", "models/m/model.tar.gz": b"tar"}.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return client, bucket, moto_server


def test_s3_lake_downloads_a_prefix_like_sagemaker(s3, tmp_path):
    client, bucket, endpoint = s3
    lake = S3Lake(endpoint)
    got = lake.download(f"s3://{bucket}/raw", tmp_path / "in")
    # Everything under raw/ by its relative key; raw_old/ shares the string prefix but is another folder.
    assert sorted(p.relative_to(tmp_path / "in").as_posix() for p in got) == ["a.txt", "nested/b.txt"]
    assert (tmp_path / "in/nested/b.txt").read_bytes() == b"b"
    one = lake.download(f"s3://{bucket}/models/m/model.tar.gz", tmp_path / "model")
    assert [p.name for p in one] == ["model.tar.gz"] and one[0].read_bytes() == b"tar"
    with pytest.raises(LakeError, match="no S3 objects"):
        lake.download(f"s3://{bucket}/nothing/", tmp_path / "none")
    with pytest.raises(LakeError):
        lake.download(f"s3://{bucket}//etc/passwd", tmp_path / "x")


def test_s3_lake_uploads_reads_and_fingerprints(s3, tmp_path):
    client, bucket, endpoint = s3
    lake = S3Lake(endpoint)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "evaluation.json").write_text('{"rmse": 1.5}')
    (out / "sub" / "plot.png").write_bytes(b"png")
    lake.upload(out, f"s3://{bucket}/runs/e1/Evaluate/evaluation")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="runs/")["Contents"]}
    assert keys == {"runs/e1/Evaluate/evaluation/evaluation.json", "runs/e1/Evaluate/evaluation/sub/plot.png"}
    assert lake.read_json(f"s3://{bucket}/runs/e1/Evaluate/evaluation/evaluation.json", "report") == {"rmse": 1.5}
    assert lake.exists(f"s3://{bucket}/runs/e1/Evaluate/evaluation") and not lake.exists(f"s3://{bucket}/runs/e2")

    lake.put_archive(out, f"s3://{bucket}/models/job/output/model.tar.gz")
    assert client.head_object(Bucket=bucket, Key="models/job/output/model.tar.gz")["ContentLength"] > 0

    def fp(uri):
        h = hashlib.sha256()
        lake.fingerprint(uri, h)
        return h.hexdigest()

    before = fp(f"s3://{bucket}/raw/")
    client.put_object(Bucket=bucket, Key="raw/a.txt", Body=b"changed")
    assert fp(f"s3://{bucket}/raw/") != before
    assert fp(f"s3://{bucket}/raw_old/") != fp(f"s3://{bucket}/raw/")


def test_replace_partitions_drops_stale_part_files_of_written_partitions_only(s3, tmp_path):
    from core.s3lake import S3Lake as Objects

    client, bucket, endpoint = s3
    for key in ("cur/offers/dt=2026-01-05/part-old.parquet", "cur/offers/dt=2026-01-06/part-old.parquet"):
        client.put_object(Bucket=bucket, Key=key, Body=b"old")
    local = tmp_path / "offers"
    (local / "dt=2026-01-05").mkdir(parents=True)
    (local / "dt=2026-01-05" / "part-new.parquet").write_bytes(b"new")
    (local / "_SUCCESS").write_bytes(b"")
    Objects(endpoint).replace_partitions(local, f"s3://{bucket}/cur/offers")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="cur/")["Contents"])
    assert keys == ["cur/offers/dt=2026-01-05/part-new.parquet", "cur/offers/dt=2026-01-06/part-old.parquet"]


def test_container_paths_cannot_climb_out_of_opt_ml(tmp_path):
    from pipelines.local_executor.lake import map_opt_ml

    assert map_opt_ml("/opt/ml/processing/in", tmp_path) == tmp_path / "processing/in"
    for path in ("/opt/ml/../../etc", "/opt/ml/processing/../../../root"):
        with pytest.raises(LakeError, match="climbs out"):
            map_opt_ml(path, tmp_path)

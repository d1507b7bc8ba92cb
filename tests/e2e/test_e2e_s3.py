"""The S3 code paths, end to end: `airfare run --s3-endpoint-url` on a tiny world against a moto
S3 server. Generate, ETL (staged through S3), every pipeline step's inputs and outputs, the model
archives and the registry's artifacts go through S3 calls; the --lake folder is never created.
The objects are then looked up in moto's buckets, and compared with what the steps report.
"""

from __future__ import annotations

import json
import tarfile

import boto3
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.registry import LocalRegistry

pytestmark = [pytest.mark.spark, pytest.mark.slow]

BUCKET = "airfare-e2e-s3"
LOOSE_GATES = ["-p", "PriceRmseMax=1e9", "-p", "PriceR2Min=-1e9", "-p", "DemandAccuracyMin=0", "-p", "AnomalyPrecisionMin=0"]


def _keys(s3, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_airfare_run_against_an_s3_api_keeps_the_whole_lake_in_s3(moto_server, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # only S3 goes to moto: the flag, not a catch-all
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    lake, runs, registry = tmp_path / "lake", tmp_path / "runs", tmp_path / "registry"

    result = CliRunner().invoke(app, [
        "run", "--s3-endpoint-url", moto_server, "--bucket", BUCKET, "--seed", "5", "--start-date", "2026-02-02",
        "--days", "21", "--searches-per-day", "300", "--lake", str(lake), "--runs", str(runs),
        "--registry", str(registry), "--workers", "2",
        "-p", "ValidationDays=4", "-p", "TestDays=4", *LOOSE_GATES,
    ], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output[-3000:]
    assert not lake.exists(), "nothing may be written to the folder lake in S3 mode"

    # Generate and ETL: raw, outcomes and truth from the world; curated written back by the ETL shell.
    assert any(k.endswith(".json.gz") for k in _keys(s3, "raw/dt=2026-02-02/"))
    assert _keys(s3, "outcomes/flights/") and _keys(s3, "truth/offers/")
    offers = _keys(s3, "curated/offers/")
    assert {k.split("/")[2] for k in offers} == {f"dt=2026-02-{d:02d}" for d in range(2, 23)}
    assert all(k.endswith(".parquet") for k in offers)
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key="curated/etl_summary.json")["Body"].read())
    assert summary["reconciled"] and summary["out_path"] == f"s3://{BUCKET}/curated"
    # The ETL's processed-files manifest went back to S3, naming the raw objects (not the scratch copy).
    (manifest_key,) = _keys(s3, "curated/_manifest/")
    entries = [json.loads(line) for line in s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read().decode().splitlines()]
    raw_keys = {f"s3://{BUCKET}/{k}" for k in _keys(s3, "raw/")}
    assert {e["path"] for e in entries} == raw_keys

    # The pipeline: each step's outputs are under the execution's prefix in the bucket.
    execution = next(p.name for p in runs.iterdir() if not p.name.startswith("."))
    prefix = f"pipeline-runs/{execution}/"
    steps = {k[len(prefix):].split("/")[0] for k in _keys(s3, prefix)}
    assert {"Preprocess", "MergeSplits", "DataQuality", "TrainPrice", "TrainDemand", "TrainAnomaly",
            "EvaluatePrice", "EvaluateDemand", "EvaluateAnomaly"} <= steps  # fmt: skip
    for split in ("train", "validation", "test"):
        assert f"{prefix}MergeSplits/{split}/offers.parquet" in _keys(s3, f"{prefix}MergeSplits/{split}/")
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}EvaluatePrice/evaluation/evaluation.json")["Body"].read())
    assert report["regression_metrics"]["rmse"]["value"] > 0

    # Preprocess read curated through awswrangler (the s3:// branch), not through a mapped folder.
    pre_log = (runs / execution / "Preprocess" / "stdout.log").read_text()
    assert f"from s3://{BUCKET}/curated/offers/" in pre_log and "(awswrangler)" in pre_log
    pre_step = json.loads((runs / execution / "Preprocess" / "step.json").read_text())
    argv = pre_step["command"]
    assert argv[argv.index("--curated-uri") + 1] == f"s3://{BUCKET}/curated/offers/"
    assert pre_step["environment"]["AWS_ENDPOINT_URL_S3"] == moto_server

    # Model archives: a real model.tar.gz per training job; the registry copied each into S3.
    packages = LocalRegistry(registry).list()
    assert sorted(p["ModelPackageGroupName"] for p in packages) == ["airfare-anomaly", "airfare-demand", "airfare-price"]
    for pkg in packages:
        url = pkg["ModelDataUrl"]
        assert url == f"s3://{BUCKET}/registry/{pkg['ModelPackageGroupName']}/1/model.tar.gz"
        trained = pkg["Source"]["model_data_url"]
        assert trained.startswith(f"s3://{BUCKET}/{prefix}Train") and trained.endswith("/output/model.tar.gz")
        archive = tmp_path / f"{pkg['ModelPackageGroupName']}.tar.gz"
        s3.download_file(BUCKET, url.split("/", 3)[3], str(archive))
        with tarfile.open(archive) as tar:
            assert "model_meta.json" in tar.getnames()
    assert not any(registry.rglob("*.tar.gz")), "the local registry keeps package records, the artifacts stay in S3"

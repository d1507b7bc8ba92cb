"""kinesis_stack.yaml and glue_stack.yaml created through CloudFormation in the moto server.

moto 5.2.5 creates the Kinesis stream, S3 buckets, KMS key, IAM roles, log groups, Lambda, SQS and
EventBridge rule; it accepts but does not create Firehose delivery streams, bucket policies, Glue
resources and Athena workgroups (those are covered by the static tests). mlops_stack.yaml is not
created here: moto's Fn::Select over Fn::GetAZs fails (KeyError in moto's parser).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.integration  # the real thing, run locally: `pytest -m integration`

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "seed_infra"
ACCOUNT = "123456789012"
REGION = "us-east-1"
PROJECT = "infratest"  # unique names on the shared moto server


def _create(cf, name: str, template: str, params: dict[str, str]) -> dict:
    cf.create_stack(
        StackName=name,
        TemplateBody=(INFRA / template).read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cf.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


@pytest.fixture(scope="module")
def stacks(moto_server):
    import warnings

    clients = {s: boto3.client(s, endpoint_url=moto_server, region_name=REGION) for s in ("cloudformation", "kinesis", "s3", "lambda", "events", "kms")}
    with warnings.catch_warnings():  # moto warns about each resource type it only accepts
        warnings.simplefilter("ignore")
        kinesis = _create(clients["cloudformation"], f"{PROJECT}-dev-kinesis", "kinesis_stack.yaml", {"ProjectName": PROJECT, "ShardCount": "3"})
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.write(INFRA / "lambda_trigger.py", "lambda_trigger.py")
        clients["s3"].put_object(Bucket=kinesis["CodeBucketName"], Key="lambda/trigger.zip", Body=buf.getvalue())
        glue = _create(clients["cloudformation"], f"{PROJECT}-dev-glue", "glue_stack.yaml", {"ProjectName": PROJECT, "LambdaCodeKey": "lambda/trigger.zip"})
    return clients, kinesis, glue


def test_kinesis_stack_creates_the_stream(stacks):
    clients, out, _ = stacks
    assert out["SearchStreamName"] == f"{PROJECT}-dev-searches"
    summary = clients["kinesis"].describe_stream_summary(StreamName=out["SearchStreamName"])["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["OpenShardCount"] == 3  # the ShardCount parameter
    assert summary["RetentionPeriodHours"] == 24


def test_kinesis_stack_creates_the_buckets(stacks):
    clients, out, _ = stacks
    names = {b["Name"] for b in clients["s3"].list_buckets()["Buckets"]}
    for key in ("RawBucketName", "CuratedBucketName", "CodeBucketName", "AccessLogsBucketName"):
        assert out[key] in names
        assert out[key] == out[key].lower() and len(out[key]) <= 63
    assert out["RawBucketName"] == f"{PROJECT}-dev-raw-{ACCOUNT}-{REGION}"
    sse = clients["s3"].get_bucket_encryption(Bucket=out["RawBucketName"])["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert sse["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == out["DataKeyArn"]
    # Firehose writes there: it is a real bucket that takes objects under the contract's layout.
    clients["s3"].put_object(Bucket=out["RawBucketName"], Key="raw/dt=2026-03-01/hour=07/x.json.gz", Body=b"")


def test_kinesis_stack_exports_what_the_other_stacks_import(stacks):
    clients, _, _ = stacks
    exports = {e["Name"] for e in clients["cloudformation"].list_exports()["Exports"]}
    for name in ("SearchStreamName", "RawBucketName", "CuratedBucketArn", "CodeBucketName", "DataKeyArn"):
        assert f"{PROJECT}-dev-{name}" in exports


def test_glue_stack_resolves_imports_and_creates_the_trigger(stacks):
    clients, kinesis, glue = stacks
    fn = clients["lambda"].get_function(FunctionName=glue["TriggerFunctionName"])["Configuration"]
    assert fn["Handler"] == "lambda_trigger.handler"
    assert fn["Environment"]["Variables"]["RAW_PREFIX"] == "raw/"
    rule = clients["events"].describe_rule(Name=f"{PROJECT}-dev-raw-object-created")
    assert kinesis["RawBucketName"] in rule["EventPattern"]  # the imported bucket name, resolved
    targets = clients["events"].list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert targets[0]["Arn"] == fn["FunctionArn"]

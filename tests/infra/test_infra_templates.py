"""Static checks of the CloudFormation templates: cfn-lint, checkov, and their agreement with the code.

cfn-lint and checkov each run once per session over all four templates (checkov is slow).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from cfnlint.decode import decode

from core.pipeline_contract import MODEL_PACKAGE_GROUPS
from core.contract import CURATED_OFFER_SCHEMA, PARTITION_COLUMN
from seed_infra import lambda_trigger

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "seed_infra"
BIN = Path(sys.executable).parent
TEMPLATES = ["kinesis_stack.yaml", "glue_stack.yaml", "mlops_stack.yaml", "cicd_stack.yaml"]


def load(name: str) -> dict:
    template, matches = decode(str(INFRA / name))
    assert not matches, matches
    return template


def resources(template: dict, rtype: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == rtype}


def one(template: dict, rtype: str) -> dict:
    found = resources(template, rtype)
    assert len(found) == 1, f"expected one {rtype}, found {sorted(found)}"
    return next(iter(found.values()))["Properties"]


# ---------------------------------------------------------------------------------------------
# cfn-lint and checkov
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cfn_lint_matches() -> list[dict]:
    proc = subprocess.run(
        [str(BIN / "cfn-lint"), "--format", "json", *[str(INFRA / t) for t in TEMPLATES]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode in (0, 2, 4, 6, 8, 10, 12, 14) or proc.stdout, proc.stderr
    return json.loads(proc.stdout or "[]")


@pytest.mark.parametrize("template", TEMPLATES)
def test_cfn_lint_has_no_errors_or_warnings(cfn_lint_matches, template):
    mine = [m for m in cfn_lint_matches if Path(m["Filename"]).name == template and m["Level"] in ("Error", "Warning")]
    assert not mine, "\n".join(f"{m['Rule']['Id']} {m['Location']['Path']}: {m['Message']}" for m in mine)


@pytest.fixture(scope="session")
def checkov_results() -> dict:
    args = [str(BIN / "checkov"), "--framework", "cloudformation", "--skip-download", "-o", "json"]
    for t in TEMPLATES:
        args += ["-f", str(INFRA / t)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env={"BC_SKIP_MAPPING": "TRUE", "PATH": str(BIN)})
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "cloudformation"
    return report


def _checks(report: dict, kind: str, template: str) -> list[dict]:
    return [c for c in report["results"][kind] if Path(c["file_path"]).name == template]


@pytest.mark.parametrize("template", TEMPLATES)
def test_checkov_has_no_failed_checks(checkov_results, template):
    failed = _checks(checkov_results, "failed_checks", template)
    assert not failed, "\n".join(f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed)
    # The template was really scanned (a parse failure would show as zero checks, not as a failure).
    assert len(_checks(checkov_results, "passed_checks", template)) >= 10


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_checkov_skip_is_justified_and_used(checkov_results, template):
    declared = {
        (name, skip["id"]): skip.get("comment", "")
        for name, res in load(template)["Resources"].items()
        for skip in ((res.get("Metadata") or {}).get("checkov") or {}).get("skip", [])
    }
    for (name, check_id), comment in declared.items():
        assert len(comment) > 20, f"{name} skips {check_id} without a written reason"
    applied = {(c["resource"].split(".")[-1], c["check_id"]) for c in _checks(checkov_results, "skipped_checks", template)}
    assert applied == set(declared), "a skip in the template matches no check checkov runs (stale or mistyped id)"


# ---------------------------------------------------------------------------------------------
# kinesis_stack.yaml: the raw layout of docs/contracts.md, and what the Lambda accepts
# ---------------------------------------------------------------------------------------------
def render_firehose_prefix(prefix: str, when: str = "2026-03-01T07:15:00", error_type: str = "processing-failed") -> str:
    """The S3 key prefix Firehose writes for an arrival time (its !{timestamp:...} namespaces)."""
    import datetime as dt

    t = dt.datetime.fromisoformat(when)
    java_to_py = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}

    def ts(m: re.Match) -> str:
        fmt = m.group(1)
        for java, py in java_to_py.items():
            fmt = fmt.replace(java, py)
        return t.strftime(fmt)

    out = re.sub(r"!\{timestamp:([^}]+)\}", ts, prefix)
    out = out.replace("!{firehose:error-output-type}", error_type)
    assert "!{" not in out, out
    return out


def test_firehose_writes_the_raw_layout_that_the_etl_trigger_reads():
    t = load("kinesis_stack.yaml")
    firehose = one(t, "AWS::KinesisFirehose::DeliveryStream")
    s3 = firehose["ExtendedS3DestinationConfiguration"]
    assert firehose["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert s3["CompressionFormat"] == "GZIP" and s3["FileExtension"] == ".json.gz"
    assert s3["Prefix"] == "raw/dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"
    key = render_firehose_prefix(s3["Prefix"]) + "airfare-dev-searches-to-raw-1-2026-03-01-07-15-00-abc.json.gz"
    assert lambda_trigger.raw_partition(key) == "dt=2026-03-01/hour=07"
    error_key = render_firehose_prefix(s3["ErrorOutputPrefix"]) + "x.gz"
    assert lambda_trigger.raw_partition(error_key) is None, "Firehose errors must not start the ETL"
    assert {"IntervalInSeconds", "SizeInMBs"} <= set(s3["BufferingHints"])
    assert "KMSEncryptionConfig" in s3["EncryptionConfiguration"]


def test_stream_and_buckets_are_encrypted_private_and_tls_only():
    t = load("kinesis_stack.yaml")
    stream = one(t, "AWS::Kinesis::Stream")
    assert stream["ShardCount"] == {"Ref": "ShardCount"}
    assert stream["StreamEncryption"]["EncryptionType"] == "KMS"
    assert {"ProjectName", "Environment", "ShardCount"} <= set(t["Parameters"])
    buckets = resources(t, "AWS::S3::Bucket")
    policies = {p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"] for p in resources(t, "AWS::S3::BucketPolicy").values()}
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert all(props["PublicAccessBlockConfiguration"].values()), name
        deny = [s for s in policies[name]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in deny), f"{name} accepts plain HTTP"
        if name != "AccessLogsBucket":  # access-log delivery supports SSE-S3 only
            sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            assert sse["SSEAlgorithm"] == "aws:kms", name
    raw_rules = {r["Id"]: r for r in buckets["RawBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert raw_rules["raw-to-glacier"]["Transitions"][0]["StorageClass"] == "GLACIER"
    assert t["Parameters"]["RawGlacierAfterDays"]["Default"] == 90
    curated_rules = buckets["CuratedBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(tr["StorageClass"] == "INTELLIGENT_TIERING" for r in curated_rules for tr in r.get("Transitions", []))
    # The raw bucket's notifications go to EventBridge, where glue_stack's rule picks them up.
    assert buckets["RawBucket"]["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"]


# ---------------------------------------------------------------------------------------------
# glue_stack.yaml: the table is the contract; the job and the Lambda are wired as the code reads them
# ---------------------------------------------------------------------------------------------
GLUE_TYPES = {
    pa.string(): "string",
    pa.date32(): "date",
    pa.int16(): "smallint",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "boolean",
}


def glue_type(t: pa.DataType) -> str:
    return "timestamp" if pa.types.is_timestamp(t) else GLUE_TYPES[t]


def test_curated_table_columns_match_the_contract():
    table = one(load("glue_stack.yaml"), "AWS::Glue::Table")["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    expected = [(f.name, glue_type(f.type)) for f in CURATED_OFFER_SCHEMA if f.name != PARTITION_COLUMN]
    assert columns == expected  # same names, types and Parquet column order
    assert [(p["Name"], p["Type"]) for p in table["PartitionKeys"]] == [(PARTITION_COLUMN, "string")]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert table["Parameters"]["projection.dt.format"] == "yyyy-MM-dd"


GLUE_SPARK = {"5.0": "3.5.4", "5.1": "3.5.6"}  # AWS Glue release notes


def test_local_spark_is_the_glue_jobs_spark():
    job = one(load("glue_stack.yaml"), "AWS::Glue::Job")
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    assert f"pyspark=={GLUE_SPARK[job['GlueVersion']]}" in lock


def test_busy_trigger_is_swept_and_alarmed():
    """The trigger defers when the job is busy: a schedule invokes it anyway, and the log line it
    writes when deferring is counted and alarmed on, as is its dead-letter queue."""
    t = load("glue_stack.yaml")
    rules = resources(t, "AWS::Events::Rule")
    sweep = next(r["Properties"] for r in rules.values() if "ScheduleExpression" in r["Properties"])
    assert sweep["Targets"][0]["Arn"] == {"Fn::GetAtt": ["TriggerFunction", "Arn"]}
    perms = [p["Properties"] for p in resources(t, "AWS::Lambda::Permission").values()]
    assert {"Fn::GetAtt": ["EtlSweepRule", "Arn"]} in [p["SourceArn"] for p in perms]
    (flt,) = resources(t, "AWS::Logs::MetricFilter").values()
    pattern = flt["Properties"]["FilterPattern"].strip('"')
    assert f'"msg": "{pattern}"' in (INFRA / "lambda_trigger.py").read_text()  # what the handler logs when deferring
    alarms = {a["Properties"]["MetricName"]: a["Properties"] for a in resources(t, "AWS::CloudWatch::Alarm").values()}
    assert alarms[flt["Properties"]["MetricTransformations"][0]["MetricName"]]["EvaluationPeriods"] >= 1
    assert "ApproximateNumberOfMessagesVisible" in alarms


def test_glue_job_runs_the_entry_script_with_the_arguments_it_reads():
    job = one(load("glue_stack.yaml"), "AWS::Glue::Job")
    assert job["GlueVersion"] == "5.1" and job["Command"]["Name"] == "glueetl"  # Spark 3.5.6, the pinned pyspark
    assert job["Command"]["ScriptLocation"]["Fn::Sub"].endswith("${GlueScriptKey}")
    source = (INFRA / "glue_job.py").read_text()
    required = re.search(r'getResolvedOptions\(argv, \[(.*?)\]\)', source).group(1)
    for arg in re.findall(r'"(\w+)"', required):
        if arg != "JOB_NAME":  # Glue passes JOB_NAME itself
            assert f"--{arg}" in job["DefaultArguments"], f"glue_job.py requires --{arg}"
    # Its imports (seed_infra.etl, core.contract) ship as --extra-py-files.
    assert "--extra-py-files" in job["DefaultArguments"]
    assert job["ExecutionProperty"]["MaxConcurrentRuns"] == 1
    # The static Spark settings the local session sets, passed to Glue's session the only way it takes them.
    from seed_infra.etl.job import CODEGEN_CACHE_ENTRIES
    assert job["DefaultArguments"]["--conf"] == f"spark.sql.codegen.cache.maxEntries={CODEGEN_CACHE_ENTRIES}"


def test_trigger_lambda_matches_lambda_trigger_py():
    t = load("glue_stack.yaml")
    fn = one(t, "AWS::Lambda::Function")
    module, func = fn["Handler"].split(".")
    assert module == "lambda_trigger" and callable(getattr(lambda_trigger, func))
    assert fn["Environment"]["Variables"]["GLUE_JOB_NAME"] == {"Ref": "EtlJob"}
    assert fn["Environment"]["Variables"]["RAW_PREFIX"] == lambda_trigger.DEFAULT_RAW_PREFIX
    perm = t["Resources"]["TriggerFunctionPermission"]["Properties"]
    assert perm["Principal"] == "events.amazonaws.com" and perm["SourceArn"] == {"Fn::GetAtt": ["RawObjectCreatedRule", "Arn"]}
    rule = t["Resources"]["RawObjectCreatedRule"]["Properties"]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["TriggerFunction", "Arn"]}
    pattern = rule["EventPattern"]
    assert matches(pattern, s3_event("raw/dt=2026-03-01/hour=07/a.json.gz"), bucket_ref=True)
    assert not matches(pattern, s3_event("errors/processing-failed/dt=2026-03-01/hour=07/a.gz"), bucket_ref=True)
    # The handler understands exactly that event.
    assert lambda_trigger.plan_runs(s3_event("raw/dt=2026-03-01/hour=07/a.json.gz"))[0] == {"raw-bucket": {"--raw_path": "s3://raw-bucket/raw/"}}


def test_athena_workgroup_encrypts_results_and_enforces_it():
    wg = one(load("glue_stack.yaml"), "AWS::Athena::WorkGroup")["WorkGroupConfiguration"]
    assert wg["EnforceWorkGroupConfiguration"] is True
    assert wg["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"


def s3_event(key: str, bucket: str = "raw-bucket") -> dict:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}},
    }


def matches(pattern, event, bucket_ref: bool = False) -> bool:
    """EventBridge matching for what these templates use: value lists, ``{"prefix": ...}``, nesting.

    With ``bucket_ref`` an intrinsic (the imported bucket name) stands for any value.
    """
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(k in event and matches(v, event[k], bucket_ref) for k, v in pattern.items())
    for allowed in pattern:
        if isinstance(allowed, dict) and "prefix" in allowed:
            if isinstance(event, str) and event.startswith(allowed["prefix"]):
                return True
        elif isinstance(allowed, dict) and bucket_ref:
            return True
        elif allowed == event:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# mlops_stack.yaml
# ---------------------------------------------------------------------------------------------
def approval_event(group: str, status: str) -> dict:
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "detail": {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": status,
            "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/3",
        },
    }


def test_deployment_starts_on_approval_only_for_the_three_groups():
    t = load("mlops_stack.yaml")
    groups = {r["Properties"]["ModelPackageGroupName"]: k for k, r in resources(t, "AWS::SageMaker::ModelPackageGroup").items()}
    assert set(groups) == set(MODEL_PACKAGE_GROUPS.values())
    rule = t["Resources"]["ModelApprovedRule"]["Properties"]
    pattern = rule["EventPattern"]  # literal names: the event carries names, a group's Ref is its ARN
    for group in MODEL_PACKAGE_GROUPS.values():
        assert matches(pattern, approval_event(group, "Approved"))
        for other in ("PendingManualApproval", "Rejected"):
            assert not matches(pattern, approval_event(group, other)), f"{other} must not deploy"
    assert not matches(pattern, approval_event("someone-elses-model", "Approved"))
    target = rule["Targets"][0]
    assert target["Arn"] == {"Fn::GetAtt": ["DeployProject", "Arn"]}
    # The transformer fills the deploy build's variables from the event.
    assert target["InputTransformer"]["InputPathsMap"] == {"arn": "$.detail.ModelPackageArn", "group": "$.detail.ModelPackageGroupName"}
    template = target["InputTransformer"]["InputTemplate"].replace("<arn>", '"a"').replace("<group>", '"g"')
    overrides = {v["name"]: v["value"] for v in json.loads(template)["environmentVariablesOverride"]}
    assert overrides == {"MODEL_PACKAGE_ARN": "a", "MODEL_PACKAGE_GROUP": "g"}
    buildspec = t["Resources"]["DeployProject"]["Properties"]["Source"]["BuildSpec"]
    # One code path: the build runs `airfare deploy` (pipelines/deploy.py) in the project's image.
    assert 'airfare deploy "$MODEL_PACKAGE_ARN" --on-approval' in buildspec and "aws sagemaker" not in buildspec
    image = t["Resources"]["DeployProject"]["Properties"]["Environment"]["Image"]
    assert "ImageRepository" in json.dumps(image)


def test_deployment_defaults_and_permissions_match_airfare_deploy():
    from pipelines import deploy

    t = load("mlops_stack.yaml")
    p = t["Parameters"]
    assert (p["EndpointMinInstances"]["Default"], p["EndpointMaxInstances"]["Default"]) == (2, 10)
    assert p["InvocationsPerInstanceTarget"]["Default"] == deploy.DEFAULT_INVOCATIONS_TARGET
    env = {v["Name"] for v in t["Resources"]["DeployProject"]["Properties"]["Environment"]["EnvironmentVariables"]}
    assert {"MIN_INSTANCES", "MAX_INSTANCES", "INSTANCE_TYPE", "INVOCATIONS_TARGET", "ENDPOINT_ROLE_ARN",
            "DATA_CAPTURE_URI", "KMS_KEY_ARN", "SUBNETS", "SECURITY_GROUP", "ALARM_TOPIC_ARN"} <= env
    statements = t["Resources"]["DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    granted = {a for st in statements for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    needed = {
        # airfare deploy's own calls
        "sagemaker:DescribeModelPackage", "sagemaker:CreateModel", "sagemaker:CreateEndpointConfig",
        "sagemaker:DescribeEndpointConfig", "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint",
        "sagemaker:DescribeEndpoint", "sagemaker:AddTags", "sagemaker:ListTags", "iam:PassRole",
        "cloudwatch:PutMetricAlarm", "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget", "application-autoscaling:PutScalingPolicy",
        # AWS's auto scaling prerequisites
        "sagemaker:UpdateEndpointWeightsAndCapacities", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms",
        "iam:CreateServiceLinkedRole", "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies", "application-autoscaling:DeleteScalingPolicy",
        # KMS-encrypted capture and volumes
        "kms:CreateGrant", "kms:DescribeKey",
    }
    assert needed <= granted, sorted(needed - granted)


def test_deploy_buildspec_script_parses_with_bash():
    import yaml

    t = load("mlops_stack.yaml")
    spec = yaml.safe_load(t["Resources"]["DeployProject"]["Properties"]["Source"]["BuildSpec"])
    script = "\n".join(spec["phases"]["build"]["commands"])
    proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_alarms_cover_the_seed_signals():
    t = load("mlops_stack.yaml")
    alarms = {a["Properties"]["MetricName"]: a["Properties"] for a in resources(t, "AWS::CloudWatch::Alarm").values()}
    age = alarms["GetRecords.IteratorAgeMilliseconds"]
    assert age["ComparisonOperator"] == "GreaterThanThreshold" and t["Parameters"]["IteratorAgeAlarmMs"]["Default"] == 3_600_000
    assert "glue.driver.aggregate.numFailedTasks" in alarms
    assert alarms["accuracy"]["ComparisonOperator"] == "LessThanThreshold"
    fives = [a for a in resources(t, "AWS::CloudWatch::Alarm").values() if a["Properties"]["MetricName"] == "Invocation5XXErrors"]
    assert len(fives) == 3
    for a in resources(t, "AWS::CloudWatch::Alarm").values():
        assert a["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}]
    assert one(t, "AWS::SNS::Topic")["KmsMasterKeyId"] == {"Fn::GetAtt": ["MlopsKey", "Arn"]}
    body = t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    json.loads(re.sub(r"\$\{[^}]+\}", "0", body))  # valid JSON once substituted
    for needle in ("AWS/Kinesis", "Glue", "Invocation5XXErrors", "model-metrics"):
        assert needle in body


def test_trail_ecr_and_roles():
    t = load("mlops_stack.yaml")
    trail = one(t, "AWS::CloudTrail::Trail")
    assert trail["EnableLogFileValidation"] is True and "KMSKeyId" in trail
    ecr = one(t, "AWS::ECR::Repository")
    assert ecr["ImageTagMutability"] == "IMMUTABLE" and ecr["ImageScanningConfiguration"]["ScanOnPush"] is True
    for role in resources(t, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                assert not any(a == "*" or a.endswith(":*") for a in actions), f"wildcard action in {policy['PolicyName']}"
        assert "ManagedPolicyArns" not in role["Properties"], "broad managed policies are not least privilege"
    endpoints = {r["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[-1] for r in resources(t, "AWS::EC2::VPCEndpoint").values()}
    assert {"s3", "api", "runtime"} <= endpoints
    for subnet in resources(t, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    assert not resources(t, "AWS::EC2::InternetGateway") and not resources(t, "AWS::EC2::NatGateway")


def test_cicd_builds_main_with_buildspec_privileged():
    t = load("cicd_stack.yaml")
    project = one(t, "AWS::CodeBuild::Project")
    assert project["Source"]["BuildSpec"] == "buildspec.yml" and project["Environment"]["PrivilegedMode"] is True
    provided = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]} | {"AWS_DEFAULT_REGION", "CODEBUILD_RESOLVED_SOURCE_VERSION", "CODEBUILD_BUILD_SUCCEEDING"}
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "buildspec.yml").read_text()))
    defined_in_buildspec = {"IMAGE_TAG", "REGISTRY", "IMAGE_URI", "SERVE_IMAGE_URI", "NET_ARGS", "SUBNETS", "SAGEMAKER_VALIDATE_ROLE"}
    assert used - defined_in_buildspec <= provided, f"buildspec.yml reads variables nobody sets: {used - defined_in_buildspec - provided}"
    pipeline = one(t, "AWS::CodePipeline::Pipeline")
    source = pipeline["Stages"][0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == {"Ref": "ConnectionArn"} and t["Parameters"]["BranchName"]["Default"] == "main"
    assert pipeline["ArtifactStore"]["EncryptionKey"]["Type"] == "KMS"


def test_stack_imports_are_exported_upstream():
    """Every Fn::ImportValue names an export of a stack deployed earlier (setup script order)."""
    exported: set[str] = set()
    for name in TEMPLATES:
        t = load(name)
        imports = set(re.findall(r'"Fn::ImportValue": \{"Fn::Sub": "\$\{ProjectName\}-\$\{Environment\}-(\w+)"', json.dumps(t)))
        missing = imports - exported
        assert not missing, f"{name} imports {missing}, not exported by a stack deployed before it"
        for out in t.get("Outputs", {}).values():
            if "Export" in out:
                exported.add(out["Export"]["Name"]["Fn::Sub"].split("}-", 2)[-1])


# Glue 5.1 (Python 3.11, Spark 3.5.6) provides these; everything else the ETL imports must be pinned.
GLUE_PROVIDED = {"pyspark", "pyarrow", "awsglue", "pandas", "numpy", "boto3", "botocore", "dateutil"}
PYDANTIC_DEPS = {"annotated_types", "pydantic_core", "typing_extensions", "typing_inspection"}


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def glue_job_imports() -> set[str]:
    """Top-level third-party modules imported by glue_job.py and, transitively, the project modules it imports."""
    import ast

    todo, seen, found = [INFRA / "glue_job.py"], set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ("seed_infra", "core"):
                    parts = name.split(".")
                    for i in range(1, len(parts) + 1):  # packages' __init__ run too
                        if (f := _module_file(".".join(parts[:i]))) is not None:
                            todo.append(f)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.add(top)
    return found


def test_glue_job_dependencies_are_provided_or_pinned():
    job = one(load("glue_stack.yaml"), "AWS::Glue::Job")
    pinned = dict(spec.split("==") for spec in job["DefaultArguments"]["--additional-python-modules"].split(","))
    lock = dict(
        line.split("==") for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line and not line.startswith("#")
    )  # fmt: skip
    needed = glue_job_imports() - GLUE_PROVIDED
    if "pydantic" in needed:
        needed -= PYDANTIC_DEPS  # installed with pydantic
    assert needed, "the ETL imports third-party packages; the scan found none"
    for module in needed:
        dist = module.replace("_", "-")
        assert dist in pinned, f"the ETL imports {module}, which Glue 5.1 lacks: add it to --additional-python-modules"
        assert pinned[dist] == lock[dist], f"{dist}: Glue gets {pinned[dist]}, requirements.lock pins {lock[dist]}"

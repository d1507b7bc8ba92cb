#!/usr/bin/env bash
# Deploy the airfare stacks to one AWS account, in dependency order:
#   kinesis (stream, Firehose, buckets, data key) -> upload Glue script + source zip + Lambda zip
#   -> glue (catalog, ETL job, trigger, Athena) -> mlops (IAM, VPC, registry, ECR, deploy, alarms)
#   -> cicd (CodePipeline + CodeBuild; only when CONNECTION_ARN and REPOSITORY_ID are set).
# Re-running is safe: `aws cloudformation deploy` applies only the changes.
# See docs/deployment.md.
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
Usage: seed_infra/setup_aws_resources.sh dev|prod

Environment (all optional unless noted):
  AWS_REGION / AWS_DEFAULT_REGION  region to deploy to (else the AWS CLI's configured region)
  AWS_PROFILE                      credentials profile for the AWS CLI
  PROJECT_NAME                     resource name prefix, lower case (default: airfare)
  SHARD_COUNT                      Kinesis shards (default: 2)
  ALARM_EMAIL                      e-mail subscribed to the alert topic
  CONNECTION_ARN                   CodeStar/CodeConnections connection ARN  } both needed for
  REPOSITORY_ID                    owner/repo of this project               } the cicd stack
  BRANCH                           branch that triggers CI/CD (default: main)
  SAGEMAKER_PIPELINE_NAME          SageMaker pipeline name (default: airfare-pipeline)
EOF
  exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
  dev | prod) ENVIRONMENT="$1" ;;
  -h | --help) usage ;;
  *) echo "error: unknown environment '$1'" >&2; usage ;;
esac

for tool in aws python3; do
  command -v "$tool" >/dev/null || { echo "error: '$tool' is not on PATH" >&2; exit 1; }
done

PROJECT_NAME="${PROJECT_NAME:-airfare}"
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}"
[[ -n "$REGION" ]] || { echo "error: set AWS_REGION (or configure a default region)" >&2; exit 1; }
export AWS_DEFAULT_REGION="$REGION"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPLATES="$REPO_ROOT/seed_infra"
PREFIX="${PROJECT_NAME}-${ENVIRONMENT}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

ACCOUNT_ID="$(aws sts get-caller-identity --query Account --output text)"
echo "==> deploying ${PREFIX} to account ${ACCOUNT_ID}, region ${REGION}"

deploy() {  # deploy STACK_SUFFIX TEMPLATE [Key=Value ...]
  local stack="${PREFIX}-$1" template="$2"
  shift 2
  echo "==> stack ${stack} (${template})"
  aws cloudformation deploy \
    --stack-name "$stack" \
    --template-file "$TEMPLATES/$template" \
    --capabilities CAPABILITY_NAMED_IAM \
    --no-fail-on-empty-changeset \
    --tags "project=${PROJECT_NAME}" "environment=${ENVIRONMENT}" \
    --parameter-overrides ProjectName="$PROJECT_NAME" Environment="$ENVIRONMENT" "$@"
}

output() {  # output STACK_SUFFIX OUTPUT_KEY
  aws cloudformation describe-stacks --stack-name "${PREFIX}-$1" \
    --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text
}

# 1. Ingestion and buckets.
deploy kinesis kinesis_stack.yaml ShardCount="${SHARD_COUNT:-2}"
CODE_BUCKET="$(output kinesis CodeBucketName)"

# 2. Code the Glue job and the Lambda run. Zips are built with fixed timestamps, so the Lambda key
#    (content-addressed) changes only when lambda_trigger.py does.
python3 - "$REPO_ROOT" "$WORK" <<'PY'
import hashlib, pathlib, sys, zipfile
root, work = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

def write_zip(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for src, arc in sorted(files, key=lambda f: f[1]):
            info = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, src.read_bytes(), zipfile.ZIP_DEFLATED)

# glue_job.py imports seed_infra.etl and core.contract: ship both packages.
src = [(p, str(p.relative_to(root))) for pkg in ("core", "seed_infra") for p in (root / pkg).rglob("*.py")
       if "__pycache__" not in p.parts]
write_zip(work / "airfare_src.zip", src)
write_zip(work / "lambda.zip", [(root / "seed_infra/lambda_trigger.py", "lambda_trigger.py")])
digest = hashlib.sha256((work / "lambda.zip").read_bytes()).hexdigest()[:16]
(work / "lambda_key").write_text(f"lambda/lambda_trigger-{digest}.zip")
write_zip(work / "retrain.zip", [(root / "pipelines/retrain_trigger.py", "retrain_trigger.py")])
digest = hashlib.sha256((work / "retrain.zip").read_bytes()).hexdigest()[:16]
(work / "retrain_key").write_text(f"lambda/retrain_trigger-{digest}.zip")
PY
LAMBDA_KEY="$(cat "$WORK/lambda_key")"
RETRAIN_KEY="$(cat "$WORK/retrain_key")"
echo "==> uploading code to s3://${CODE_BUCKET}/"
aws s3 cp "$REPO_ROOT/seed_infra/glue_job.py" "s3://${CODE_BUCKET}/glue/glue_job.py"
aws s3 cp "$WORK/airfare_src.zip" "s3://${CODE_BUCKET}/glue/airfare_src.zip"
aws s3 cp "$WORK/lambda.zip" "s3://${CODE_BUCKET}/${LAMBDA_KEY}"
aws s3 cp "$WORK/retrain.zip" "s3://${CODE_BUCKET}/${RETRAIN_KEY}"

# 3. ETL, catalog, trigger, Athena.
deploy glue glue_stack.yaml GlueScriptKey=glue/glue_job.py SourceZipKey=glue/airfare_src.zip LambdaCodeKey="$LAMBDA_KEY"

# 4. MLOps platform.
deploy mlops mlops_stack.yaml AlarmEmail="${ALARM_EMAIL:-}" RetrainTriggerCodeKey="$RETRAIN_KEY" \
  PipelineName="${SAGEMAKER_PIPELINE_NAME:-airfare-pipeline}"

# 5. CI/CD, once a connection to the Git provider exists (it needs a console handshake).
if [[ -n "${CONNECTION_ARN:-}" && -n "${REPOSITORY_ID:-}" ]]; then
  deploy cicd cicd_stack.yaml ConnectionArn="$CONNECTION_ARN" FullRepositoryId="$REPOSITORY_ID" \
    BranchName="${BRANCH:-main}" PipelineName="${SAGEMAKER_PIPELINE_NAME:-airfare-pipeline}"
else
  echo "==> skipping the cicd stack: set CONNECTION_ARN and REPOSITORY_ID to deploy it"
fi

echo "==> done. Outputs:"
for s in kinesis glue mlops; do
  aws cloudformation describe-stacks --stack-name "${PREFIX}-$s" \
    --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
done

#!/usr/bin/env bash
# `make deploy`: builds the Lambda zips, then packages and deploys
# infra/template.yaml with the AWS CLI (no SAM CLI needed: `cloudformation
# package` uploads the zips, `cloudformation deploy` applies the SAM
# transform). The replica buckets come first, with infra/replica.yaml, one
# stack per region (infra/README.md).
#
#   RAPTR_STACK            stack name (default raptr)
#   RAPTR_ARTIFACTS        an S3 bucket for the packaged zips (required)
#   RAPTR_BUCKET           the primary bucket (required)
#   RAPTR_REPLICA_BUCKETS  comma-separated replica buckets (required)
#   RAPTR_SIGNING_SECRET   ARN of the signing key's secret (required)
#   RAPTR_MORE_SECRETS     comma-separated ARNs of further secrets: a second
#                          signing key during a rotation, passphrase secrets
#   RAPTR_UPLOAD_KEYRINGS  comma-separated ARNs of upload keyring secrets
#   RAPTR_MIRROR_KEYRINGS  comma-separated ARNs of mirror keyring secrets
#   RAPTR_MIRROR_BUCKETS   comma-separated buckets of s3:// mirrors
set -euo pipefail
cd "$(dirname "$0")/.."
need() { [ -n "${!1:-}" ] || { echo "deploy: set $1 (see scripts/deploy.sh)" >&2; exit 2; }; }
need RAPTR_ARTIFACTS; need RAPTR_BUCKET; need RAPTR_REPLICA_BUCKETS; need RAPTR_SIGNING_SECRET
export PATH="$PWD/.cache/venv/bin:$PATH"
ARCH=arm64 scripts/build-lambdas.sh
packaged=$(mktemp --suffix=.yaml)
trap 'rm -f "$packaged"' EXIT
aws cloudformation package --template-file infra/template.yaml \
  --s3-bucket "$RAPTR_ARTIFACTS" --s3-prefix raptr --output-template-file "$packaged"
aws cloudformation deploy --template-file "$packaged" --stack-name "${RAPTR_STACK:-raptr}" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
  --parameter-overrides "PrimaryBucketName=$RAPTR_BUCKET" \
    "ReplicaBucketNames=$RAPTR_REPLICA_BUCKETS" "SigningKeySecretArn=$RAPTR_SIGNING_SECRET" \
    "MoreSigningSecretArns=${RAPTR_MORE_SECRETS:-}" "UploadKeyringSecretArns=${RAPTR_UPLOAD_KEYRINGS:-}" \
    "MirrorKeyringSecretArns=${RAPTR_MIRROR_KEYRINGS:-}" "MirrorBucketNames=${RAPTR_MIRROR_BUCKETS:-}"
aws cloudformation describe-stacks --stack-name "${RAPTR_STACK:-raptr}" \
  --query 'Stacks[0].Outputs' --output table

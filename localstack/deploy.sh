#!/usr/bin/env bash
# Deploys raptr's real Lambda zips on a bootstrapped LocalStack
# (localstack/up.sh runs scripts/bootstrap.sh, then this): a signing key in
# Secrets Manager, the repository's configuration, both functions, the
# primary bucket's queue -> ingest, the table's stream -> publish (journal
# appends only, as in infra/template.yaml), and the sweep schedule.
# Idempotent: what exists is updated or left alone.
#
#   ARCH            x86_64 or arm64 (default: this machine's)
#   RAPTR_BUCKET, RAPTR_TABLE, RAPTR_QUEUE, RAPTR_REPLICAS   as for scripts/bootstrap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/.cache/venv/bin:$PATH"
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} RAPTR_S3_PATH_STYLE=true
bucket=${RAPTR_BUCKET:-raptr-primary}
table=${RAPTR_TABLE:-raptr}
queue=${RAPTR_QUEUE:-raptr-ingest}
replicas=${RAPTR_REPLICAS-raptr-replica-eu@eu-west-1 raptr-replica-us@us-west-2 raptr-replica-ap@ap-southeast-1}
arch=${ARCH:-$(uname -m | sed 's/^aarch64$/arm64/')}
say() { printf 'deploy: %s\n' "$*" >&2; }
# Some services of AWS CLI v1 ignore AWS_ENDPOINT_URL: pass it explicitly.
aws() { command aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }

zips=target/lambda/$arch
if [ ! -s "$zips/raptr-ingest/bootstrap.zip" ] || [ ! -s "$zips/raptr-publish/bootstrap.zip" ]; then
  ARCH=$arch scripts/build-lambdas.sh
fi
cargo build --locked -q -p raptr
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
raptr=$target/debug/raptr

# The signing key: generated once, its private half only in Secrets Manager.
secret=raptr/signing-key
if ! aws secretsmanager describe-secret --secret-id "$secret" >/dev/null 2>&1; then
  keys=$(mktemp -d)
  "$raptr" key generate --name "raptr on LocalStack <raptr@localhost>" --out "$keys" >/dev/null
  aws secretsmanager create-secret --name "$secret" --secret-string "file://$keys/private.asc" >/dev/null
  rm -rf "$keys"
  say "signing key in secret $secret"
fi

# The configuration: the bootstrap's replicas, distributions stable and testing.
config=$(mktemp)
python3 - "$bucket" "$secret" $replicas >"$config" <<'PY'
import json, sys
bucket, secret, replicas = sys.argv[1], sys.argv[2], sys.argv[3:]
dist = {"components": ["main"], "architectures": ["amd64", "arm64", "source"]}
print(json.dumps({
    "layouts": {"default": {"distributions": {"stable": dist, "testing": dist}}},
    "primary": {"bucket": bucket, "region": "us-east-1", "layout": "default"},
    "replicas": [{"name": r.split("@")[0].rsplit("-", 1)[-1], "bucket": r.split("@")[0],
                  "region": r.split("@")[1], "layout": "default"} for r in replicas],
    "release": {"origin": "raptr", "label": "raptr on LocalStack"},
    "signing_key": {"secret": secret},
}, indent=2))
PY
"$raptr" --repo "s3://$bucket" init "$config" | sed 's/^/deploy: /' >&2
rm -f "$config"

role=raptr-functions
aws iam get-role --role-name "$role" >/dev/null 2>&1 ||
  aws iam create-role --role-name "$role" --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
role_arn=$(aws iam get-role --role-name "$role" --query Role.Arn --output text)

env="Variables={RAPTR_BUCKET=$bucket,RAPTR_TABLE=$table,RAPTR_S3_PATH_STYLE=true,RUST_LOG=info}"
deploy_function() { # name memory timeout
  local zip=$zips/$1/bootstrap.zip
  if aws lambda get-function --function-name "$1" >/dev/null 2>&1; then
    aws lambda update-function-code --function-name "$1" --zip-file "fileb://$zip" >/dev/null
  else
    aws lambda create-function --function-name "$1" --runtime provided.al2023 \
      --handler bootstrap --architectures "$arch" --role "$role_arn" \
      --zip-file "fileb://$zip" --memory-size "$2" --timeout "$3" --environment "$env" >/dev/null
  fi
  aws lambda wait function-active-v2 --function-name "$1"
  say "function $1 ($arch)"
}
deploy_function raptr-ingest 512 300
deploy_function raptr-publish 1024 900

has_mapping() { # function source-arn
  [ -n "$(aws lambda list-event-source-mappings --function-name "$1" --event-source-arn "$2" \
    --query 'EventSourceMappings[0].UUID' --output text | grep -v None)" ]
}
queue_url=$(aws sqs get-queue-url --queue-name "$queue" --query QueueUrl --output text)
queue_arn=$(aws sqs get-queue-attributes --queue-url "$queue_url" --attribute-names QueueArn \
  --query Attributes.QueueArn --output text)
if ! has_mapping raptr-ingest "$queue_arn"; then
  aws lambda create-event-source-mapping --function-name raptr-ingest \
    --event-source-arn "$queue_arn" --batch-size 10 >/dev/null
fi
say "queue $queue -> raptr-ingest"

stream_arn=$(aws dynamodb describe-table --table-name "$table" --query Table.LatestStreamArn --output text)
if ! has_mapping raptr-publish "$stream_arn"; then
  aws lambda create-event-source-mapping --function-name raptr-publish \
    --event-source-arn "$stream_arn" --starting-position LATEST --batch-size 100 \
    --maximum-batching-window-in-seconds 5 \
    --filter-criteria '{"Filters":[{"Pattern":"{\"eventName\":[\"INSERT\"],\"dynamodb\":{\"NewImage\":{\"body\":{\"S\":[{\"exists\":true}]}}}}"}]}' >/dev/null
fi
say "table $table stream (journal appends) -> raptr-publish"

rule_arn=$(aws events put-rule --name raptr-sweep --schedule-expression 'rate(15 minutes)' \
  --query RuleArn --output text)
aws lambda add-permission --function-name raptr-publish --statement-id raptr-sweep \
  --action lambda:InvokeFunction --principal events.amazonaws.com --source-arn "$rule_arn" \
  >/dev/null 2>&1 || true
publish_arn=$(aws lambda get-function --function-name raptr-publish --query Configuration.FunctionArn --output text)
aws events put-targets --rule raptr-sweep --targets "Id=publish,Arn=$publish_arn" >/dev/null
say "schedule raptr-sweep (every 15 minutes) -> raptr-publish"
cat <<MSG
deploy: ready. Upload as a CI job would:
  aws s3 cp --recursive build/ s3://$bucket/incoming/testing/main/build-1/
and read a replica with apt: deb [signed-by=...] $AWS_ENDPOINT_URL/${replicas%%@*} testing main
MSG

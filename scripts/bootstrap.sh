#!/usr/bin/env bash
# Creates what a raptr repository needs in S3, DynamoDB and SQS, on the
# endpoint of the standard AWS environment (AWS_ENDPOINT_URL): the primary
# bucket, the replica buckets in their regions, the table (lease, journal,
# replica generations) with its stream, the ingest queue, and the primary
# bucket's event notifications for incoming/ and requests/ into that queue.
#
# Used by the test harness, the demo and localstack/ alike. Idempotent: what
# exists already is left as it is.
#
#   RAPTR_BUCKET    primary bucket            (default raptr-primary)
#   RAPTR_REPLICAS  "bucket@region ..."       (default raptr-replica-eu@eu-west-1 raptr-replica-us@us-west-2)
#   RAPTR_TABLE     DynamoDB table            (default raptr)
#   RAPTR_QUEUE     SQS queue for S3 events   (default raptr-ingest)
#   AWS_CLI         the aws command           (default aws)
set -euo pipefail

bucket=${RAPTR_BUCKET:-raptr-primary}
replicas=${RAPTR_REPLICAS-raptr-replica-eu@eu-west-1 raptr-replica-us@us-west-2}
table=${RAPTR_TABLE:-raptr}
queue=${RAPTR_QUEUE:-raptr-ingest}
aws_cli=${AWS_CLI:-aws}
region=${AWS_DEFAULT_REGION:-us-east-1}

# Some services of AWS CLI v1 ignore AWS_ENDPOINT_URL: pass it explicitly.
aws() { command "$aws_cli" ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} "$@"; }
aws=aws

say() { printf 'bootstrap: %s\n' "$*" >&2; }

make_bucket() { # name region
    if $aws s3api head-bucket --bucket "$1" >/dev/null 2>&1; then
        return
    fi
    if [ "$2" = us-east-1 ]; then
        $aws s3api create-bucket --bucket "$1" --region "$2" >/dev/null
    else
        $aws s3api create-bucket --bucket "$1" --region "$2" \
            --create-bucket-configuration "LocationConstraint=$2" >/dev/null
    fi
    say "bucket $1 ($2)"
}

make_bucket "$bucket" "$region"
for r in $replicas; do
    make_bucket "${r%@*}" "${r#*@}"
done

if ! $aws dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then
    $aws dynamodb create-table --table-name "$table" \
        --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
        --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
        --billing-mode PAY_PER_REQUEST \
        --stream-specification StreamEnabled=true,StreamViewType=NEW_IMAGE >/dev/null
    $aws dynamodb wait table-exists --table-name "$table"
    say "table $table"
fi

queue_url=$($aws sqs create-queue --queue-name "$queue" --query QueueUrl --output text)
queue_arn=$($aws sqs get-queue-attributes --queue-url "$queue_url" \
    --attribute-names QueueArn --query Attributes.QueueArn --output text)

notify=$(cat <<JSON
{"QueueConfigurations": [
  {"Id": "raptr-incoming", "QueueArn": "$queue_arn", "Events": ["s3:ObjectCreated:*"],
   "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}},
  {"Id": "raptr-requests", "QueueArn": "$queue_arn", "Events": ["s3:ObjectCreated:*"],
   "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "requests/"}]}}}
]}
JSON
)
$aws s3api put-bucket-notification-configuration --bucket "$bucket" \
    --notification-configuration "$notify"
say "events of $bucket (incoming/, requests/) -> $queue"

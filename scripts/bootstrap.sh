#!/usr/bin/env bash
# Creates what a raptr repository needs in S3, DynamoDB and SQS, on the
# endpoint of the standard AWS environment (AWS_ENDPOINT_URL): the primary
# bucket (versioned), the replica buckets in their regions (anonymous read of pool/,
# dists/ and keys/ only, as apt reads them), the table (lease, journal,
# replica generations) with its stream and TTL, the ingest queue, and the primary
# bucket's event notifications for incoming/ and requests/ into that queue.
#
# Used by the test harness, the demo and localstack/ alike. Idempotent: what
# exists already is left as it is.
#
#   RAPTR_BUCKET    primary bucket            (default raptr-primary)
#   RAPTR_REPLICAS  "bucket@region ..."       (default raptr-replica-eu@eu-west-1, -us@us-west-2, -ap@ap-southeast-1)
#   RAPTR_TABLE     DynamoDB table            (default raptr)
#   RAPTR_QUEUE     SQS queue for S3 events   (default raptr-ingest)
#   AWS_CLI         the aws command           (default aws)
set -euo pipefail

bucket=${RAPTR_BUCKET:-raptr-primary}
replicas=${RAPTR_REPLICAS-raptr-replica-eu@eu-west-1 raptr-replica-us@us-west-2 raptr-replica-ap@ap-southeast-1}
table=${RAPTR_TABLE:-raptr}
queue=${RAPTR_QUEUE:-raptr-ingest}
aws_cli=${AWS_CLI:-aws}
region=${AWS_DEFAULT_REGION:-us-east-1}

# Some services of AWS CLI v1 ignore AWS_ENDPOINT_URL: pass it explicitly.
aws() { command "$aws_cli" ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} "$@"; }
aws=aws

say() { printf 'bootstrap: %s\n' "$*" >&2; }

make_bucket() { # name region; fails if the bucket was there already
    if $aws s3api head-bucket --bucket "$1" >/dev/null 2>&1; then
        return 1
    fi
    if [ "$2" = us-east-1 ]; then
        $aws s3api create-bucket --bucket "$1" --region "$2" >/dev/null
    else
        $aws s3api create-bucket --bucket "$1" --region "$2" \
            --create-bucket-configuration "LocationConstraint=$2" >/dev/null
    fi
    say "bucket $1 ($2)"
}

if make_bucket "$bucket" "$region"; then
    # As infra/template.yaml has it: a purge, a remove or an overwrite by
    # mistake can be recovered from the primary's object versions.
    $aws s3api put-bucket-versioning --bucket "$bucket" \
        --versioning-configuration Status=Enabled
fi
# apt reads replicas anonymously over HTTP: GetObject on what a replica
# serves, nothing else (no listing, no other prefix). infra/template.yaml
# grants the same.
public_read() { # bucket
    cat <<JSON
{"Version": "2012-10-17", "Statement": [{"Sid": "AptRead", "Effect": "Allow",
  "Principal": "*", "Action": "s3:GetObject",
  "Resource": ["arn:aws:s3:::$1/dists/*", "arn:aws:s3:::$1/pool/*", "arn:aws:s3:::$1/keys/*"]}]}
JSON
}
for r in $replicas; do
    if make_bucket "${r%@*}" "${r#*@}"; then
        $aws s3api put-bucket-policy --bucket "${r%@*}" --policy "$(public_read "${r%@*}")"
    fi
done

if ! $aws dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then
    $aws dynamodb create-table --table-name "$table" \
        --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
        --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
        --billing-mode PAY_PER_REQUEST \
        --stream-specification StreamEnabled=true,StreamViewType=NEW_IMAGE >/dev/null
    $aws dynamodb wait table-exists --table-name "$table"
    # Idempotency keys of the journal expire through the attribute `ttl`.
    $aws dynamodb update-time-to-live --table-name "$table" \
        --time-to-live-specification Enabled=true,AttributeName=ttl >/dev/null
    say "table $table"
fi

queue_url=$($aws sqs create-queue --queue-name "$queue" --query QueueUrl --output text)
queue_arn=$($aws sqs get-queue-attributes --queue-url "$queue_url" \
    --attribute-names QueueArn --query Attributes.QueueArn --output text)
# As in infra/template.yaml: a message whose handling failed five times
# moves to the dead-letter queue instead of coming back for ever.
dlq_url=$($aws sqs create-queue --queue-name "$queue-dead" --query QueueUrl --output text)
dlq_arn=$($aws sqs get-queue-attributes --queue-url "$dlq_url" \
    --attribute-names QueueArn --query Attributes.QueueArn --output text)
redrive=$(printf '{"RedrivePolicy": "{\\"deadLetterTargetArn\\": \\"%s\\", \\"maxReceiveCount\\": \\"5\\"}"}' "$dlq_arn")
$aws sqs set-queue-attributes --queue-url "$queue_url" --attributes "$redrive"

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
say "events of $bucket (incoming/, requests/) -> $queue (dead letters -> $queue-dead)"

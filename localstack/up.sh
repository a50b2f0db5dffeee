#!/usr/bin/env bash
# Starts LocalStack (docker compose), bootstraps raptr's buckets, table,
# queue and S3 event notifications on it with scripts/bootstrap.sh (the same
# bootstrap the tests and the demo run on moto), then deploys the real Lambda
# zips with their triggers (localstack/deploy.sh). Needs a Docker engine and
# `make setup` (for the AWS CLI in .cache/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
docker compose -f localstack/docker-compose.yml up -d
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
echo "localstack: waiting for $AWS_ENDPOINT_URL"
for _ in $(seq 1 60); do
  if curl -fsS "$AWS_ENDPOINT_URL/_localstack/health" >/dev/null 2>&1; then
    break
  fi
  sleep 2
done
curl -fsS "$AWS_ENDPOINT_URL/_localstack/health" >/dev/null
PATH="$PWD/.cache/venv/bin:$PATH" scripts/bootstrap.sh
localstack/deploy.sh
echo "localstack: ready; use AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL RAPTR_S3_PATH_STYLE=true"

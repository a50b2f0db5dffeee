#!/usr/bin/env bash
# Checks what deploys raptr without deploying it: cfn-lint on the templates
# as written (infra/template.yaml, infra/replica.yaml, infra/access.yaml) and on the plain
# CloudFormation the SAM transform makes of template.yaml
# (infra/transform.py); the LocalStack compose file parses and pins its
# image; every shell script parses. Needs `make setup` (.cache/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/venv
[ -x "$venv/bin/cfn-lint" ] || { echo "lint-infra: run \`make setup\` first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$venv/bin/cfn-lint" infra/template.yaml infra/replica.yaml infra/access.yaml
"$venv/bin/python" infra/transform.py infra/template.yaml "$tmp/template.json"
"$venv/bin/cfn-lint" "$tmp/template.json"
echo "lint-infra: cfn-lint clean on infra/template.yaml, infra/replica.yaml, infra/access.yaml and the SAM-transformed template"

"$venv/bin/python" - localstack/docker-compose.yml <<'PY'
import sys, yaml
path = sys.argv[1]
doc = yaml.safe_load(open(path))
svc = doc["services"]["localstack"]
image = svc["image"]
name, _, tag = image.rpartition(":")
assert name and tag and tag != "latest" and tag[0].isdigit() and tag.count(".") == 2, \
    f"{path}: the image must be pinned to a full version, not {image!r}"
for p in svc.get("ports", []):
    assert str(p).startswith("127.0.0.1:"), f"{path}: port {p} must bind to 127.0.0.1"
print(f"lint-infra: {path} parses; image {image}")
PY

for f in scripts/*.sh localstack/*.sh .ci/run; do
  bash -n "$f"
done
echo "lint-infra: shell scripts parse"

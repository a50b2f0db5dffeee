#!/usr/bin/env bash
# The demo (`make demo`): the whole job on the emulator, as a user would do
# it. It starts the emulator on 127.0.0.1, bootstraps the primary bucket,
# three replica buckets, the table and the event wiring (scripts/bootstrap.sh),
# generates a signing key into Secrets Manager, builds a sample bundle with
# dpkg tools, uploads it with `aws s3 cp`, lets the functions run (the
# emulator's S3 -> SQS events handed to the ingest and publish functions
# in-process by raptr-dispatch), promotes it with a JSON request, and ends with
# apt-get update and apt-get install from a replica bucket over HTTP, in an apt
# sandbox with signed-by. The emulator stops and everything is removed when it
# ends. Set RAPTR_DEMO_KEEP=1 to keep the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
step() { printf '\n==> %s\n' "$*"; }
run() { printf '    $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/    /'; }

venv=$root/.cache/venv
[ -x "$venv/bin/aws" ] || { echo "demo: run \`make setup\` first (make demo does)" >&2; exit 1; }
export PATH="$venv/bin:$PATH"

step "building raptr and raptr-dispatch"
bin=$(scripts/tools.sh)
export PATH="$bin:$PATH"

work=$(mktemp -d)
emulator_pid=
cleanup() {
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true
  if [ "${RAPTR_DEMO_KEEP:-}" = 1 ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

step "starting the emulator (moto's server) on 127.0.0.1"
# It serves until its standard input closes: fd 3 holds it open until the
# demo ends, whichever way it ends.
mkfifo "$work/emulator.in"
"$venv/bin/python" scripts/emulator.py 0 <"$work/emulator.in" >"$work/emulator.out" 2>"$work/emulator.log" &
emulator_pid=$!
exec 3>"$work/emulator.in"
for _ in $(seq 1 100); do
  grep -q '^port ' "$work/emulator.out" 2>/dev/null && break
  sleep 0.1
done
port=$(awk '/^port /{print $2}' "$work/emulator.out")
[ -n "$port" ] || { echo "demo: the emulator did not start:" >&2; cat "$work/emulator.log" >&2; exit 1; }
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=raptr-demo \
  AWS_SECRET_ACCESS_KEY=raptr-demo AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
  RAPTR_S3_PATH_STYLE=true
echo "    endpoint $AWS_ENDPOINT_URL"

step "bootstrap: primary bucket, three replica buckets, table, queue, S3 event notifications"
scripts/bootstrap.sh 2>&1 | sed 's/^/    /'

step "a signing key, its private half in Secrets Manager"
run raptr key generate --name "raptr demo <demo@example.com>" --out "$work/key"
aws secretsmanager create-secret --name raptr/signing-key \
  --secret-string "file://$work/key/private.asc" --query ARN --output text | sed 's/^/    secret /'
rm -f "$work/key/private.asc"

step "the repository's configuration: layout, replicas, identity, key"
cat >"$work/raptr.json" <<'JSON'
{
  "layouts": {
    "default": {
      "distributions": {
        "stable":  { "components": ["main"], "architectures": ["amd64", "arm64", "source"] },
        "testing": { "components": ["main"], "architectures": ["amd64", "arm64", "source"] }
      }
    }
  },
  "primary": { "bucket": "raptr-primary", "region": "us-east-1", "layout": "default" },
  "replicas": [
    { "name": "eu", "bucket": "raptr-replica-eu", "region": "eu-west-1", "layout": "default" },
    { "name": "us", "bucket": "raptr-replica-us", "region": "us-west-2", "layout": "default" },
    { "name": "ap", "bucket": "raptr-replica-ap", "region": "ap-southeast-1", "layout": "default" }
  ],
  "release": { "origin": "raptr", "label": "raptr demo" },
  "signing_key": { "secret": "raptr/signing-key" }
}
JSON
sed 's/^/    /' "$work/raptr.json"
run raptr --repo s3://raptr-primary init "$work/raptr.json"

step "a sample bundle built with dpkg tools: source package, amd64, arm64 and an Architecture: all package"
scripts/sample-bundle.sh "$work/build-1" | sed 's/^/    /'

step "the CI job's upload: aws s3 cp into incoming/testing/main/build-1/"
printf '    $ aws s3 cp --recursive %s s3://raptr-primary/incoming/testing/main/build-1/\n' "$work/build-1"
aws s3 cp --recursive --only-show-errors "$work/build-1" s3://raptr-primary/incoming/testing/main/build-1/

step "the functions run: S3 events -> ingest; journal -> publish, to every replica"
run raptr-dispatch

step "the uploader's report for the amd64 package"
run aws s3 cp s3://raptr-primary/reports/incoming/testing/main/build-1/raptr-hello_1.0-1_amd64.deb.json -

step "promotion to stable: a JSON request uploaded to requests/link/<distribution>/<component>/"
cat >"$work/promote.json" <<'JSON'
{ "action": "link", "bundle": "raptr-hello", "version": "1.0-1", "component": "main", "distribution": "stable" }
JSON
sed 's/^/    /' "$work/promote.json"
run aws s3 cp --only-show-errors "$work/promote.json" s3://raptr-primary/requests/link/stable/main/promote-raptr-hello-1.0-1.json
run raptr-dispatch
run aws s3 cp s3://raptr-primary/reports/requests/link/stable/main/promote-raptr-hello-1.0-1.json.json -

replica_url=$AWS_ENDPOINT_URL/raptr-replica-eu
step "apt, in a sandbox, against the replica raptr-replica-eu over HTTP"
sandbox=$work/apt
mkdir -p "$sandbox"/etc/apt/{sources.list.d,preferences.d,apt.conf.d,keyrings} \
  "$sandbox"/var/lib/apt/lists/partial "$sandbox"/var/cache/apt/archives/partial \
  "$sandbox"/var/lib/dpkg/{info,updates} "$sandbox"/log "$sandbox"/root
touch "$sandbox"/var/lib/dpkg/status "$sandbox"/var/lib/dpkg/available
deb_line="deb [signed-by=$sandbox/etc/apt/keyrings/raptr.gpg] $replica_url stable main"
echo "$deb_line" >"$sandbox/etc/apt/sources.list"
# apt's state, caches and dpkg's database live in the sandbox; dpkg
# installs into $sandbox/root. Signature checking stays on.
cat >"$sandbox/apt.conf" <<CONF
Dir "$sandbox/";
Dir::State::status "$sandbox/var/lib/dpkg/status";
Dir::Etc::trusted "/dev/null";
Dir::Etc::trustedparts "$sandbox/none";
Dir::Log "$sandbox/log";
Debug::NoLocking "1";
APT::Sandbox::User "root";
APT::Architecture "amd64";
Acquire::Languages "none";
DPkg::Options { "--root=$sandbox/root"; "--admindir=$sandbox/var/lib/dpkg"; "--force-not-root"; "--force-script-chrootless"; "--log=$sandbox/log/dpkg.log"; };
CONF
export APT_CONFIG=$sandbox/apt.conf
# The public key, as a user fetches it: from the replica itself.
run /usr/lib/apt/apt-helper download-file "$replica_url/keys/repo.gpg" "$sandbox/etc/apt/keyrings/raptr.gpg"
echo "    sources.list: $deb_line"
run apt-get update
run apt-get install -y raptr-hello
run dpkg-query --admindir="$sandbox/var/lib/dpkg" -W raptr-hello
run "$sandbox/root/usr/bin/raptr-hello"
unset APT_CONFIG

step "done"
cat <<MSG
    raptr-hello 1.0-1 went from aws s3 cp to apt-get install: ingested, published,
    signed, fanned out to raptr-replica-eu, -us and -ap, promoted to stable by a
    request, and installed by apt with its signature checked.

    On a machine of yours, with a replica bucket in AWS, the line would be:
      deb [signed-by=/etc/apt/keyrings/raptr.gpg] https://raptr-replica-eu.s3.eu-west-1.amazonaws.com stable main
    (the key: curl -o /etc/apt/keyrings/raptr.gpg https://raptr-replica-eu.s3.eu-west-1.amazonaws.com/keys/repo.gpg)
MSG

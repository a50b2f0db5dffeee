#!/usr/bin/env bash
# Installs what raptr's tests and demo need on a Debian machine: the dpkg
# tools, the emulator (moto's server) and the AWS CLI in a project-local
# virtual environment (.cache/venv, pinned in scripts/requirements-emulator.txt),
# then fetches real Debian packages into .cache/fixtures/. Everything lands
# under .cache/ (ignored by git). Safe to re-run: it installs only what is
# missing and downloads only what is not cached.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(dpkg-dev apt-utils xz-utils zstd gzip gpgv gnupg sqv reprepro aptly)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v python3 >/dev/null || missing+=(python3)
# Debian's python3 lacks venv and ensurepip until python3-venv is installed.
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

scripts/venv.sh .cache/venv scripts/requirements-emulator.txt \
  "the emulator, the AWS CLI and cfn-lint"
scripts/venv.sh .cache/lambda scripts/requirements-lambda.txt \
  "cargo-lambda's Lambda runtime emulator" --no-deps

scripts/fetch-fixtures.sh

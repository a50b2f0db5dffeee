#!/usr/bin/env bash
# Installs what raptr's tests and demo need on a Debian machine, then fetches
# real Debian packages into .cache/fixtures/ (ignored by git). Safe to re-run:
# it installs only what is missing and downloads only what is not cached.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(dpkg-dev apt-utils xz-utils zstd gzip)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

scripts/fetch-fixtures.sh

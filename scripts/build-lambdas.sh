#!/usr/bin/env bash
# `make build`: the deployment zips of the two Lambda functions, built with
# cargo-lambda (installed from its PyPI wheel, with the Zig toolchain it
# cross-compiles with, into .cache/build-venv) for provided.al2023:
#
#   target/lambda/<arch>/raptr-ingest/bootstrap.zip
#   target/lambda/<arch>/raptr-publish/bootstrap.zip
#
# ARCH=arm64 (the default, what infra/template.yaml deploys) or x86_64 (for
# LocalStack on an x86 machine without arm64 emulation).
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${ARCH:-arm64}
case "$arch" in
  arm64) triple=aarch64-unknown-linux-gnu; flag=--arm64 ;;
  x86_64) triple=x86_64-unknown-linux-gnu; flag=--x86-64 ;;
  *) echo "build: ARCH must be arm64 or x86_64, not $arch" >&2; exit 2 ;;
esac

venv=.cache/build-venv
scripts/venv.sh "$venv" scripts/requirements-build.txt "cargo-lambda and zig"
export PATH="$PWD/$venv/bin:$PATH"
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"

out=target/lambda/$arch
echo "build: raptr-ingest and raptr-publish for $arch ($triple), release, into $out/"
cargo lambda build --release --locked "$flag" --output-format zip --lambda-dir "$out" \
  -p raptr-ingest -p raptr-publish
for f in raptr-ingest raptr-publish; do
  zip=$out/$f/bootstrap.zip
  [ -s "$zip" ] || { echo "build: $zip was not produced" >&2; exit 1; }
  printf 'build: %s (%s bytes)\n' "$zip" "$(stat -c %s "$zip")"
done

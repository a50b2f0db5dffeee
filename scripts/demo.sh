#!/usr/bin/env bash
# The demo: builds a sample bundle with dpkg tools and shows what raptr makes of
# it: the verdict on every file (exactly what the ingest function will decide),
# the index stanzas it will publish, and a tampered file being refused.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*"; }

say "building raptr"
cargo build --release --locked -q -p raptr
raptr=$PWD/target/release/raptr

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "building a sample bundle (source + amd64 + arm64 + all) with dpkg-source and dpkg-deb"
scripts/sample-bundle.sh "$work/build-1" | sed 's/^/    /'

say "raptr check $work/build-1   (one upload folder = one bundle)"
"$raptr" check "$work/build-1"

say "raptr scan --component main   (the stanzas that will be published)"
"$raptr" scan --component main "$work/build-1"

say "tampering with the orig tarball: the .dsc and its files must be refused"
printf 'x' >>"$work/build-1/raptr-hello_1.0.orig.tar.gz"
if "$raptr" check "$work/build-1"; then
  echo "demo: a tampered bundle was accepted" >&2
  exit 1
fi
say "done: the bundle was validated, indexed, and tampering was caught"

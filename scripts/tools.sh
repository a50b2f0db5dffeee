#!/usr/bin/env bash
# Builds raptr's command-line tools (raptr, raptr-dispatch) for the demo and
# the fuzz seeds, and prints the folder that holds them.
#
# It builds them as `make test` does (every workspace member's tests), so
# the two share one set of compiled dependencies: a plain `cargo build -p
# raptr` resolves the dependencies' features without the test-only ones and
# compiles the AWS SDK a second time, which doubles the target folder.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q --workspace --tests >&2
cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"] + "/debug")'

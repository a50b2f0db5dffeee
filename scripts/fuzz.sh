#!/usr/bin/env bash
# Runs raptr's fuzz targets (fuzz/) with cargo-fuzz on the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets stable rustc take the sanitizer flags cargo-fuzz
# passes, so no nightly toolchain is needed.
#
#   scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]    (default: 60, every target)
#
# For each target: first every committed regression input
# (fuzz/regressions/<target>/) must pass, then the target runs for the given
# time from its seed corpus (fuzz/corpus/<target>/, made by
# scripts/fuzz-seeds.sh). Each input runs with at most 256 MB allocated at
# once, 256 MB resident and 10 s; a crash, a panic, a breach of a limit or a
# time-out stops the run with the input saved under fuzz/artifacts/<target>/.
# Turn such an input into a regression by copying it into
# fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
all=(deb control dsc changes request config manifest folder upload_key signing_key archive)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --quiet --locked cargo-fuzz --version 0.13.2
fi
scripts/fuzz-seeds.sh

cd fuzz
echo "fuzz: building the targets"
cargo fuzz build -O
# Each input: at most 256 MB allocated at once and 256 MB resident (the
# targets keep ASan's quarantine small: fuzz/src/lib.rs), 10 s.
limits=(-rss_limit_mb=256 -malloc_limit_mb=256 -timeout=10)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() { # TARGET ARGS...: runs the target; on failure shows its report and stops
  local t=$1
  shift
  if ! cargo fuzz run -O "$t" "$@" "${limits[@]}" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t failed: the input is in fuzz/artifacts/$t/ (or the regression named above)" >&2
    exit 1
  fi
}
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
    run "$t" "regressions/$t" -- -runs=0
    echo "fuzz: $t: $(ls "regressions/$t" | wc -l) regression input(s) pass"
  fi
  run "$t" "corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz: $t: ${seconds} s, ${execs:-?} executions, $(ls "corpus/$t" | wc -l) corpus inputs, no failure"
done
echo "fuzz: ${#targets[@]} target(s), ${seconds} s each, no failure"

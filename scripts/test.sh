#!/usr/bin/env bash
# The test suite, as `make test` runs it: every test binary of the
# workspace, then the doc tests, with exactly the tests `cargo test
# --workspace` runs.
#
# The test binaries that drive an emulator (each starts its own moto server
# on a free loopback port) spend most of their time waiting on it, so the
# longest of them run side by side in two background lanes while the other
# binaries run in the foreground. Each binary's output goes to .cache/test-logs/<name>.log;
# a failing one's is printed whole, and a summary line per binary at the
# end. Extra arguments go to every test binary (a name filter, --ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
logs=.cache/test-logs
rm -rf "$logs"
mkdir -p "$logs"

# Build every test binary once, and learn where each is.
$CARGO test --workspace --locked --no-run --message-format=json-render-diagnostics >"$logs/build.json"
python3 - "$logs/build.json" >"$logs/binaries" <<'PY'
import json, os, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("profile", {}).get("test"):
        continue
    if not m.get("executable"):
        continue
    t = m["target"]
    cwd = os.path.dirname(m["manifest_path"])
    # The package id ends in #name@version, or #version when the name is
    # the directory's.
    pid = m["package_id"].rsplit("#", 1)[-1]
    pkg = pid.split("@")[0] if "@" in pid else os.path.basename(cwd)
    print(f"{pkg}:{t['kind'][0]}:{t['name']}\t{m['executable']}\t{cwd}")
PY

# The longest emulator-bound binaries, in two lanes (longest first; the
# ingest emulator binary balances the foreground); everything
# else runs in the foreground.
lane_a="raptr-aws:test:emulator raptr-publish:test:emulator"
lane_b="raptr-e2e:test:apt raptr:test:cli"

run_one() { # id executable cwd [args...]
  local id=$1 exe=$2 cwd=$3; shift 3
  local log="$logs/${id//:/-}.log" start rc
  start=$(date +%s)
  if (cd "$cwd" && "$exe" "$@") >"$log" 2>&1; then rc=0; else rc=$?; fi
  local summary
  summary=$(grep -E '^test result:' "$log" | tail -1 || true)
  printf '%-34s %4ss  exit %s  %s\n' "$id" $(( $(date +%s) - start )) "$rc" "$summary" >>"$logs/summary"
  if [ "$rc" -ne 0 ]; then
    echo "== $id failed (exit $rc):"
    cat "$log"
  fi
  return "$rc"
}

run_lane() { # ids... (-- args)
  local failed=0 id line exe cwd
  for id in "$@"; do
    line=$(grep -P "^\Q$id\E\t" "$logs/binaries" || true)
    [ -n "$line" ] || { echo "test.sh: no test binary $id"; failed=1; continue; }
    IFS=$'\t' read -r _ exe cwd <<<"$line"
    run_one "$id" "$exe" "$cwd" "${extra[@]}" || failed=1
  done
  return "$failed"
}

extra=("$@")
read -r -a a_ids <<<"$lane_a"
read -r -a b_ids <<<"$lane_b"
run_lane "${a_ids[@]}" & pid_a=$!
run_lane "${b_ids[@]}" & pid_b=$!

failed=0
while IFS=$'\t' read -r id exe cwd; do
  case " $lane_a $lane_b " in *" $id "*) continue ;; esac
  run_one "$id" "$exe" "$cwd" "${extra[@]}" || failed=1
done <"$logs/binaries"
wait "$pid_a" || failed=1
wait "$pid_b" || failed=1

# Doc tests (cargo runs them after the binaries).
if [ ${#extra[@]} -eq 0 ]; then
  if ! $CARGO test --workspace --locked --doc >"$logs/doc.log" 2>&1; then
    echo "== doc tests failed:"; cat "$logs/doc.log"; failed=1
  fi
  echo "doc tests: $(grep -cE '^test result:' "$logs/doc.log") crate(s)" >>"$logs/summary"
fi

echo "== test binaries (seconds, exit status, result):"
sort "$logs/summary"
passed=$(awk '/test result:/ { for (i = 1; i <= NF; i++) if ($i == "passed;") s += $(i-1) } END { print s + 0 }' "$logs/summary")
echo "== $passed tests passed in all; $( [ "$failed" -eq 0 ] && echo "no failure" || echo "FAILURES above" )"
exit "$failed"

#!/usr/bin/env bash
# raptr's benchmarks. Prints figures; asserts nothing.
#  1. Size + MD5 + SHA-1 + SHA-256 + SHA-512 of a 1 GiB file in one pass,
#     next to sha256sum computing SHA-256 alone on the same file.
#  2. raptr scan over 10,000 small debs, next to apt-ftparchive packages on the
#     same directory, and whether their stanzas are identical.
#  3. Lease acquire+release round-trips and journal appends per second, on
#     the local table and on DynamoDB in the emulator.
#  4. Ingest: MB/s for one 1 GiB deb (and a 64 MiB one, to show memory stays
#     flat), bundles per second for 1,000 one-deb bundles, on a local
#     directory and on the emulator (BENCH_INGEST_MIB, BENCH_BUNDLES).
# Peak memory (max RSS) is printed for each timed run.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=.cache/bench
mkdir -p "$bench"
count=${BENCH_DEBS:-10000}

cargo build --release --locked -q -p raptr
cargo build --release --locked -q -p raptr-formats --example digest --example gen_debs
bin=target/release
timed() { # label command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$bench/time" "$@" >"$bench/out" 2>"$bench/err" || {
    echo "$label failed:"; cat "$bench/err"; exit 1; }
  read -r secs kb <"$bench/time"
  printf '  %-38s %7.2f s   max RSS %6d MB\n' "$label" "$secs" $((kb / 1024))
}

echo "== hashing a 1 GiB file"
if [ ! -f "$bench/1GiB.bin" ]; then
  head -c 1073741824 /dev/urandom >"$bench/1GiB.bin"
fi
cat "$bench/1GiB.bin" >/dev/null   # warm the page cache for both runs
timed "sha256sum (SHA-256 only)" sha256sum "$bench/1GiB.bin"
timed "raptr, four digests in one pass" "$bin/examples/digest" "$bench/1GiB.bin"
head -c 268435456 /dev/urandom >"$bench/256MiB.bin"
timed "raptr, four digests of 256 MiB" "$bin/examples/digest" "$bench/256MiB.bin"
rm -f "$bench/256MiB.bin"

echo "== scanning $count small debs"
if [ ! -f "$bench/debs-$count/.done" ]; then
  rm -rf "$bench/debs-$count"
  "$bin/examples/gen_debs" "$bench/debs-$count" "$count" >/dev/null
  touch "$bench/debs-$count/.done"
fi
(cd "$bench/debs-$count" && /usr/bin/time -f "%e %M" -o ../time.ftp apt-ftparchive packages pool >../ftp.txt 2>/dev/null)
read -r secs kb <"$bench/time.ftp"
printf '  %-38s %7.2f s   max RSS %6d MB\n' "apt-ftparchive packages" "$secs" $((kb / 1024))
ftp_secs=$secs
(cd "$bench/debs-$count" && /usr/bin/time -f "%e %M" -o ../time.raptr "$OLDPWD/$bin/raptr" scan pool >../raptr.txt 2>/dev/null)
read -r secs kb <"$bench/time.raptr"
printf '  %-38s %7.2f s   max RSS %6d MB\n' "raptr scan" "$secs" $((kb / 1024))
awk -v a="$ftp_secs" -v b="$secs" 'BEGIN { if (b > 0) printf "  raptr scan is %.1fx apt-ftparchive\n", a / b }'
if cmp -s <(python3 scripts/sort-stanzas.py <"$bench/ftp.txt") <(python3 scripts/sort-stanzas.py <"$bench/raptr.txt"); then
  echo "  stanzas: identical"
else
  echo "  stanzas: DIFFERENT (diff $bench/ftp.txt $bench/raptr.txt)"
fi

echo "== lease lock and journal (local table, and DynamoDB on the emulator)"
cargo run --release --locked -q -p raptr-aws --example table_bench

echo "== ingest (a 1 GiB deb, then 1,000 small bundles; locally, then on the emulator)"
cargo build --release --locked -q -p raptr-ingest --example ingest_bench
"$bin/examples/ingest_bench" "${BENCH_INGEST_MIB:-1024}" "${BENCH_BUNDLES:-1000}"

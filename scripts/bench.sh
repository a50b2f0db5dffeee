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
#  5. Publish in local mode: a full publish of 10,000 and 100,000 packages,
#     then the upload and the publish of one more, next to apt-ftparchive
#     generate+release and reprepro includedeb on the same debs
#     (BENCH_PUBLISH="10000 100000"); then six publishes of one change each
#     (that package unlinked, linked again, ...) on the settled repository;
#     for reference, the time this disk takes just to write and sync the
#     bytes of the new index files; and last, `.xz` indices turned on: the
#     publish that adds them, then six one-change publishes again.
#  6. Inventory: `raptr list`, `show` and `search` on a repository of
#     BENCH_INVENTORY (100,000) packages, on a local directory and on the
#     emulator: wall time and store requests (GET and LIST), and the binary's
#     own wall time; next to `reprepro list` and `reprepro ls` on section 5's
#     reprepro repository of the same size, when section 5 has made it.
#  7. Snapshots, restore and retention in local mode on BENCH_SNAPSHOT
#     (100,000) packages: the publish that publishes a snapshot and the
#     bytes it adds (next to the size of one set of index files), a restore
#     (dry run, then its publish), a link under a keep-1 policy, and a
#     whole-distribution retention dry run.
#  8. Import: BENCH_IMPORT (10,000) packages from a local upstream (section
#     2's debs, indexed by apt-ftparchive, signed by GnuPG, served over
#     HTTP on 127.0.0.1): the first import and a no-op re-sync, with the
#     HTTP requests each made; next to `aptly mirror update` (installed from
#     Debian's packages) on the same upstream, first and again.
# Peak memory (max RSS) is printed for each timed run. BENCH_SECTIONS="4 5"
# runs only those sections.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=.cache/bench
mkdir -p "$bench"
count=${BENCH_DEBS:-10000}

cargo build --release --locked -q -p raptr
cargo build --release --locked -q -p raptr-formats --example digest --example gen_debs
bin=target/release
# BENCH_SECTIONS picks sections by number (default: all).
want() { [[ " ${BENCH_SECTIONS:-1 2 3 4 5 6 7 8} " == *" $1 "* ]]; }
timed() { # label command...
  local label=$1; shift
  # Whatever the set-up left unwritten goes to disk first, so that no run
  # pays for the writeback of the one before it.
  sync
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$bench/time" "$@" >"$bench/out" 2>"$bench/err" || {
    echo "$label failed:"; cat "$bench/err"; exit 1; }
  end=$(date +%s%N)
  read -r kb <"$bench/time"
  # Milliseconds from the wall clock (time's %e only has hundredths).
  secs=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.3f", ns / 1e9 }')
  printf '  %-38s %7.3f s   max RSS %6d MB\n' "$label" "$secs" $((kb / 1024))
}

if want 1; then
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

fi

if want 2; then
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

fi

if want 3; then
echo "== lease lock and journal (local table, and DynamoDB on the emulator)"
cargo run --release --locked -q -p raptr-aws --example table_bench

fi

if want 4; then
echo "== ingest (a 1 GiB deb, then 1,000 small bundles; locally, then on the emulator)"
cargo build --release --locked -q -p raptr-ingest --example ingest_bench
"$bin/examples/ingest_bench" "${BENCH_INGEST_MIB:-1024}" "${BENCH_BUNDLES:-1000}"

fi

# Six publishes of one change each on the repository of $d (the package
# bench-extra1 unlinked, linked, ...), timed after a sync; prints them sorted.
# Each request file has a name of its own: a request is done once per name.
flips() {
  local times=() i action start file
  for i in 1 2 3 4 5 6; do
    action=link; (( i % 2 )) && action=unlink
    flip_count=$(( ${flip_count:-0} + 1 ))
    file="$d/change-$flip_count.json"
    printf '{"action":"%s","bundle":"bench-extra1","version":"1.0-1","component":"main","distribution":"stable"}\n' \
      "$action" >"$file"
    "$bin/raptr" --repo "$d/repo" request "$file" >/dev/null
    sync
    start=$(date +%s%N)
    "$bin/raptr" --repo "$d/repo" publish >/dev/null
    times+=($(( ($(date +%s%N) - start) / 1000000 )))
  done
  printf '  %-38s %s ms (sorted)\n' "$1" "$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')"
}

if want 5; then
echo "== publish in local mode: a full publish, then one more package; apt-ftparchive and reprepro on the same debs"
if ! command -v reprepro >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends reprepro >/dev/null
fi
cargo build --release --locked -q -p raptr-core --example publish_bench
for n in ${BENCH_PUBLISH:-10000 100000}; do
  d=$PWD/$bench/publish-$n
  rm -rf "$d"
  echo "  -- $n packages (generating them...)"
  "$bin/examples/publish_bench" "$d" "$n" >/dev/null 2>&1
  timed "raptr publish, full" "$bin/raptr" --repo "$d/repo" publish
  timed "raptr upload, one more package" "$bin/raptr" --repo "$d/repo" upload stable/main "$d/extra-1.deb"
  upload_secs=$secs
  timed "raptr publish, one more package" "$bin/raptr" --repo "$d/repo" publish
  awk -v a="$upload_secs" -v b="$secs" 'BEGIN { printf "  %-38s %7.3f s\n", "raptr upload + publish, one more", a + b }'
  # Then one change per publish on the settled repository (that package
  # unlinked, linked, ...), six times: the spread of a steady state.
  flips "raptr publish, one change, 6 times"
  # For reference: what writing the new index files alone costs on this disk.
  idx="$d/repo/dists/stable/main/binary-amd64"
  timed "floor: dd of Packages(.gz), synced" sh -c "cat '$idx/Packages' '$idx/Packages.gz' | dd of='$bench/floor' bs=256k conv=fdatasync"
  rm -f "$bench/floor"

  cat >"$d/ftp.conf" <<CONF
Dir { ArchiveDir "$d/repo"; CacheDir "$d/ftp-cache"; };
Default { Packages::Compress ". gzip"; };
TreeDefault { Directory "pool/"; };
Tree "dists/ftp" { Sections "main"; Architectures "amd64"; };
CONF
  mkdir -p "$d/ftp-cache" "$d/repo/dists/ftp/main/binary-amd64"
  timed "apt-ftparchive generate, full" apt-ftparchive -q generate "$d/ftp.conf"
  timed "apt-ftparchive release" apt-ftparchive release "$d/repo/dists/ftp"
  mkdir -p "$d/repo/pool/main/b/bench-extra2/1.0-1"
  cp "$d/extra-2.deb" "$d/repo/pool/main/b/bench-extra2/1.0-1/bench-extra2_1.0-1_amd64.deb"
  timed "apt-ftparchive generate, one more" apt-ftparchive -q generate "$d/ftp.conf"

  mkdir -p "$d/reprepro/conf"
  printf 'Codename: stable\nArchitectures: amd64\nComponents: main\n' >"$d/reprepro/conf/distributions"
  start=$(date +%s)
  find "$d/repo/pool/main/b" -name 'bench-pkg*.deb' -print0 |
    xargs -0 -n 5000 reprepro -b "$d/reprepro" --export=silent-never --silent includedeb stable
  printf '  %-38s %7d s   (untimed set-up)\n' "reprepro includedeb of all $n" $(( $(date +%s) - start ))
  timed "reprepro export, full" reprepro -b "$d/reprepro" export
  timed "reprepro includedeb, one more" reprepro -b "$d/reprepro" includedeb stable "$d/extra-2.deb"

  # The same repository with `.xz` indices turned on: the first publish
  # builds them whole, then one change per publish as above.
  python3 - "$d/repo/config/raptr.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
for layout in config["layouts"].values():
    for dist in layout["distributions"].values():
        dist["xz"] = True
json.dump(config, open(path, "w"), indent=2)
PY
  timed "raptr publish, .xz turned on" "$bin/raptr" --repo "$d/repo" publish
  flips "raptr publish with .xz, one change, 6x"
done
fi

if want 6; then
n=${BENCH_INVENTORY:-100000}
echo "== inventory: list, show and search on $n packages (locally, then on the emulator)"
cargo build --release --locked -q -p raptr-aws --example inventory_bench
"$bin/examples/inventory_bench" "$n" "$bin/raptr"
r=$bench/publish-$n/reprepro
if [ -d "$r/db" ]; then
  timed "reprepro list stable (all $n)" reprepro -b "$r" list stable
  timed "reprepro ls one package" reprepro -b "$r" ls bench-pkg000042
else
  echo "  (reprepro: run section 5 with $n packages first for its figures)"
fi
fi

if want 7; then
n=${BENCH_SNAPSHOT:-100000}
echo "== snapshots, restore and retention on $n packages (local mode)"
cargo build --release --locked -q -p raptr-core --example publish_bench
d=$PWD/$bench/snapshot-$n
rm -rf "$d"
"$bin/examples/publish_bench" "$d" "$n" >/dev/null 2>&1
start=$(date +%s)
"$bin/raptr" --repo "$d/repo" publish >/dev/null
printf '  %-38s %7d s   (untimed set-up)\n' "raptr publish, full" $(( $(date +%s) - start ))
# One set of index files: the canonical ones (by-hash holds the same bytes).
idx="$d/repo/dists/stable/main/binary-amd64"
indices=$(cat "$idx/Packages" "$idx/Packages.gz" | wc -c)
"$bin/raptr" --repo "$d/repo" snapshot stable s1 >/dev/null
timed "raptr publish of a snapshot" "$bin/raptr" --repo "$d/repo" publish
# Bytes the snapshot's files hold (a directory store may hard-link copies:
# counted as written all the same), the state included in nothing.
printf '  %-38s %7d KB   (one set of index files: %d KB; it also has them by hash)\n' \
  "bytes the snapshot wrote" $(( $(du -sbl "$d/repo/dists/stable/_s1" | cut -f1) / 1024 )) $(( indices / 1024 ))
# A promotion to undo: 1.0-2 of one package, 1.0-1 unlinked.
"$bin/raptr" --repo "$d/repo" upload stable/main "$d/next-1.deb" >/dev/null
"$bin/raptr" --repo "$d/repo" unlink bench-pkg000000 1.0-1 --from stable >/dev/null
"$bin/raptr" --repo "$d/repo" publish >/dev/null
timed "raptr restore --dry-run" "$bin/raptr" --repo "$d/repo" restore stable s1 --dry-run
"$bin/raptr" --repo "$d/repo" restore stable s1 >/dev/null
timed "raptr publish of the restore" "$bin/raptr" --repo "$d/repo" publish
python3 - "$d/repo/config/raptr.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
for layout in config["layouts"].values():
    for dist in layout["distributions"].values():
        dist["retention"] = {"keep": 1}
json.dump(config, open(path, "w"), indent=2)
PY
"$bin/raptr" --repo "$d/repo" upload stable/main "$d/next-2.deb" >/dev/null
timed "raptr publish, a link under keep-1" "$bin/raptr" --repo "$d/repo" publish
timed "raptr retention --dry-run, all $n" "$bin/raptr" --repo "$d/repo" retention stable --keep 1 --dry-run
fi

if want 8; then
n=${BENCH_IMPORT:-10000}
echo "== import of $n packages from a local upstream over HTTP; aptly mirror update on the same"
if ! command -v aptly >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends aptly >/dev/null
fi
up=$PWD/$bench/upstream-$n
if [ ! -f "$up/.done" ]; then
  rm -rf "$up"
  mkdir -p "$up/dists/stable/main/binary-amd64"
  "$bin/examples/gen_debs" "$up" "$n" >/dev/null
  export GNUPGHOME=$up/.gnupg
  mkdir -p -m 700 "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key "raptr bench upstream <bench@raptr.invalid>" ed25519 cert,sign never
  gpg --batch --quiet --export >"$up/.keyring.gpg"
  (cd "$up" && apt-ftparchive packages pool >dists/stable/main/binary-amd64/Packages)
  gzip -kf "$up/dists/stable/main/binary-amd64/Packages"
  (cd "$up/dists/stable" && apt-ftparchive -o APT::FTPArchive::Release::Suite=stable \
    -o APT::FTPArchive::Release::Codename=stable \
    -o APT::FTPArchive::Release::Architectures=amd64 \
    -o APT::FTPArchive::Release::Components=main release . >Release)
  gpg --batch --quiet --yes --clearsign -o "$up/dists/stable/InRelease" "$up/dists/stable/Release"
  gpg --batch --quiet --yes --armor --detach-sign -o "$up/dists/stable/Release.gpg" "$up/dists/stable/Release"
  unset GNUPGHOME
  touch "$up/.done"
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$PWD/$bench/http.log
# The server stops by itself after an hour, and when this script ends.
timeout 3600 python3 -m http.server --bind 127.0.0.1 --directory "$up" "$port" 2>"$log" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
  sleep 0.1
done
url=http://127.0.0.1:$port/
requests() { # label: the HTTP requests since the last call
  local now; now=$(grep -c '"GET \|"HEAD ' "$log" || true)
  printf '  %-38s %7d HTTP requests\n' "$1" $((now - ${seen:-0}))
  seen=$now
}
requests "(server start)" >/dev/null
d=$PWD/$bench/import-$n
rm -rf "$d"
"$bin/raptr" --repo "$d/repo" init >/dev/null 2>&1
imp=("$bin/raptr" --repo "$d/repo" import "$url" --suite stable --keyring "$up/.keyring.gpg" --to stable)
timed "raptr import, $n packages" "${imp[@]}"
requests "  raptr import"
tail -1 "$bench/out" | sed 's/^/    /'
timed "raptr import again (no-op)" "${imp[@]}"
requests "  raptr import again"
timed "raptr publish of the import" "$bin/raptr" --repo "$d/repo" publish
a=$PWD/$bench/aptly-$n
rm -rf "$a"
mkdir -p "$a"
printf '{"rootDir": "%s", "gpgProvider": "gpg", "downloadConcurrency": 4}\n' "$a/root" >"$a/aptly.conf"
aptly_bin=$(command -v aptly)
GNUPGHOME=$a/.gnupg
export GNUPGHOME
mkdir -p -m 700 "$GNUPGHOME"
gpg --batch --quiet --no-default-keyring --keyring trustedkeys.gpg --import "$up/.keyring.gpg" 2>/dev/null
"$aptly_bin" -config="$a/aptly.conf" mirror create -architectures=amd64 bench "$url" stable main >/dev/null
timed "aptly mirror update, $n packages" "$aptly_bin" -config="$a/aptly.conf" mirror update bench
requests "  aptly mirror update"
timed "aptly mirror update again" "$aptly_bin" -config="$a/aptly.conf" mirror update bench
requests "  aptly mirror update again"
unset GNUPGHOME
kill $server 2>/dev/null || true
fi

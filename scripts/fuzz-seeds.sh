#!/usr/bin/env bash
# Makes the seed corpora of the fuzz targets in fuzz/corpus/<target>/ from
# real Debian packages (.cache/fixtures, fetched by scripts/fetch-fixtures.sh),
# a bundle built with dpkg tools (scripts/sample-bundle.sh), and the records a
# local repository writes when that bundle is uploaded to it with raptr.
# Nothing third-party is committed: the corpora are made here, once, and
# left alone when they exist (delete fuzz/corpus to make them again).
#   scripts/fuzz-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
corpus=$top/fuzz/corpus
if [ -f "$corpus/.seeded" ]; then
  exit 0
fi
scripts/fetch-fixtures.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in control deb dsc changes request config manifest folder upload_key signing_key archive; do
  mkdir -p "$corpus/$t"
done

# Real binary packages small enough to mutate (the fuzzer cuts inputs at
# -max_len anyway), their control files, and a bundle built by dpkg tools.
scripts/sample-bundle.sh "$work/bundle" >/dev/null
for deb in .cache/fixtures/real/*.deb "$work"/bundle/*.deb; do
  base=$(basename "$deb" .deb)
  if [ "$(stat -c %s "$deb")" -le 262144 ]; then
    cp "$deb" "$corpus/deb/$base.deb"
  fi
  dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./control >"$corpus/control/$base" 2>/dev/null ||
    dpkg-deb -f "$deb" >"$corpus/control/$base"
done
# One tiny package per member compression dpkg-deb offers.
root=$work/tiny
mkdir -p "$root/DEBIAN" "$root/usr/share/doc/tiny"
echo hello >"$root/usr/share/doc/tiny/README"
printf 'Package: tiny\nVersion: 1:1.0~rc1+b1\nArchitecture: all\nMaintainer: raptr <fuzz@example.com>\nSource: tiny-src (1.0)\nDescription: tiny\n one\n .\n two\n' >"$root/DEBIAN/control"
for z in gzip xz zstd none; do
  dpkg-deb --root-owner-group -Z"$z" --build "$root" "$corpus/deb/tiny-$z.deb" >/dev/null
done

# Source packages: Debian's own (signed) and the sample (unsigned); a
# .changes made by dpkg-genchanges, and that .changes in signature armour
# (the reader strips the armour; it does not verify it).
cp .cache/fixtures/source/*.dsc "$work"/bundle/*.dsc "$corpus/dsc/"
# An archive of the bundle as apt-ftparchive writes it: its Packages,
# Sources and Release.
(cd "$work/bundle" && apt-ftparchive packages . >"$corpus/archive/Packages" &&
  apt-ftparchive sources . >"$corpus/archive/Sources" 2>/dev/null &&
  apt-ftparchive release . >"$corpus/archive/Release")
src=$work/changes/raptr-fuzz-1.0
mkdir -p "$src/debian/source"
echo "3.0 (native)" >"$src/debian/source/format"
printf 'Source: raptr-fuzz\nMaintainer: raptr <fuzz@example.com>\n\nPackage: raptr-fuzz\nArchitecture: all\nDescription: fuzz\n seed\n' >"$src/debian/control"
printf 'raptr-fuzz (1.0) unstable; urgency=low\n\n  * Seed.\n\n -- raptr <fuzz@example.com>  Mon, 02 Nov 2026 12:00:00 +0000\n' >"$src/debian/changelog"
(cd "$work/changes" && dpkg-source -q -b raptr-fuzz-1.0 >/dev/null 2>&1)
(cd "$src" && dpkg-genchanges -S -q >"$corpus/changes/raptr-fuzz_1.0_source.changes" 2>/dev/null)
{
  printf -- '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n'
  cat "$corpus/changes/raptr-fuzz_1.0_source.changes"
  printf -- '-----BEGIN PGP SIGNATURE-----\n\niHUEARYKAB0WIQQ=\n=abcd\n-----END PGP SIGNATURE-----\n'
} >"$corpus/changes/signed.changes"
cp "$corpus"/dsc/*.dsc "$corpus/changes/"

# Requests, one per action, and upload keys.
for a in link unlink remove; do
  printf '{ "action": "%s", "bundle": "raptr-hello", "version": "1.0-1", "component": "main", "distribution": "stable", "packages": ["raptr-hello", "source"], "architectures": ["amd64"], "dry_run": true }\n' "$a" \
    >"$corpus/request/$a.json"
done
printf '{ "action": "purge", "dry_run": false }\n' >"$corpus/request/purge.json"
printf '{ "action": "verify" }\n' >"$corpus/request/verify.json"
printf '{ "action": "link", "bundle": "zlib", "version": "all", "component": "main", "distribution": "testing" }\n' >"$corpus/request/all.json"
i=0
for k in incoming/testing/main/build-1/raptr-hello_1.0-1_amd64.deb \
         incoming/stable/main/ci.42/g++_1:2.0~rc1+b1_arm64.deb \
         incoming/testing/main/x/raptr-hello_1.0-1.dsc \
         incoming/testing/main/x/ incoming/testing/main/build-2 'incoming/testing/main/a\b/c.deb'; do
  printf '%s' "$k" >"$corpus/upload_key/key-$i"
  i=$((i + 1))
done

# The configuration, manifests and folder records a repository really
# writes: the sample bundle and a real Debian package uploaded with raptr.
raptr=$(scripts/tools.sh)/raptr
repo=$work/repo
RAPTR_KEY_DIR=$work/keys "$raptr" --repo "$repo" init >/dev/null
"$raptr" --repo "$repo" upload testing/main "$work"/bundle/* >/dev/null 2>&1 || true
for deb in .cache/fixtures/real/zlib1g_*.deb; do
  "$raptr" --repo "$repo" upload testing/main "$deb" >/dev/null 2>&1 || true
done
cp "$repo/config/raptr.json" "$corpus/config/local.json"
find "$repo/pool" -name manifest.json | while read -r m; do
  cp "$m" "$corpus/manifest/$(echo "$m" | sha256sum | cut -c1-16).json"
done
find "$repo/reports/incoming" -mindepth 3 -maxdepth 3 -name '*.json' | while read -r f; do
  cp "$f" "$corpus/folder/$(echo "$f" | sha256sum | cut -c1-16).json"
done
# Signing keys as raptr and GnuPG make them, and what carries signatures.
cp "$work"/keys/*.asc "$corpus/signing_key/"
"$raptr" key generate --name "fuzz <fuzz@raptr.invalid>" --algorithm rsa3072 --out "$work/rsa" >/dev/null
cp "$work/rsa/private.asc" "$corpus/signing_key/rsa3072.asc"
cp "$work/rsa/repo.gpg" "$corpus/signing_key/rsa3072.pub.gpg"
if command -v gpg >/dev/null; then
  export GNUPGHOME="$work/gnupg"
  mkdir -m 700 "$GNUPGHOME"
  g=(gpg --batch --quiet --pinentry-mode loopback --passphrase "")
  "${g[@]}" --quick-gen-key "fuzz <gpg@raptr.invalid>" ed25519 cert never
  fpr=$(gpg --with-colons --list-keys gpg@raptr.invalid | awk -F: '/^fpr/ {print $10; exit}')
  "${g[@]}" --quick-add-key "$fpr" ed25519 sign never
  "${g[@]}" --export-secret-subkeys "$fpr" >"$corpus/signing_key/gnupg-subkey.gpg"
  "${g[@]}" --armor --export-secret-keys "$fpr" >"$corpus/signing_key/gnupg.asc"
fi
"$raptr" --repo "$repo" publish >/dev/null
cp "$repo/dists/testing/InRelease" "$corpus/signing_key/InRelease"
cp "$repo/dists/testing/Release.gpg" "$corpus/signing_key/Release.gpg"
touch "$corpus/.seeded"
for t in "$corpus"/*/; do
  echo "fuzz seeds: $(basename "$t"): $(find "$t" -type f | wc -l) input(s)"
done

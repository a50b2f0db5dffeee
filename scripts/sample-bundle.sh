#!/usr/bin/env bash
# Builds a sample bundle with Debian's own tools: the source package
# raptr-hello 1.0-1 (.dsc, orig tarball, debian tarball) and its binary package
# for amd64 and arm64, plus an Architecture: all documentation package.
# Usage: scripts/sample-bundle.sh OUTDIR
set -euo pipefail
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

name=raptr-hello
upstream=1.0
rev=1
src=$work/$name-$upstream
mkdir -p "$src/debian/source"
printf '#!/bin/sh\necho "Hello from raptr"\n' >"$src/raptr-hello"
chmod +x "$src/raptr-hello"
tar -C "$work" -czf "$work/${name}_$upstream.orig.tar.gz" "$name-$upstream"
echo "3.0 (quilt)" >"$src/debian/source/format"
cat >"$src/debian/control" <<CTL
Source: $name
Section: utils
Priority: optional
Maintainer: raptr demo <demo@example.com>
Standards-Version: 4.6.2

Package: $name
Architecture: any
Description: greets you from a raptr repository
 A tiny package built by raptr's demo.

Package: $name-doc
Architecture: all
Description: documentation for raptr-hello
 A tiny package built by raptr's demo.
CTL
cat >"$src/debian/changelog" <<CHL
$name ($upstream-$rev) unstable; urgency=medium

  * Demo release.

 -- raptr demo <demo@example.com>  Mon, 02 Nov 2026 12:00:00 +0000
CHL
(cd "$work" && dpkg-source -q -b "$name-$upstream" >/dev/null 2>&1)
cp "$work/${name}_$upstream-$rev.dsc" "$work/${name}_$upstream.orig.tar.gz" \
   "$work/${name}_$upstream-$rev.debian.tar.xz" "$out/"

build_deb() { # package arch description
  local pkg=$1 arch=$2 root=$work/root-$1-$2
  mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$pkg"
  if [ "$arch" != all ]; then
    mkdir -p "$root/usr/bin"
    cp "$src/raptr-hello" "$root/usr/bin/raptr-hello"
  fi
  echo "$pkg for $arch" >"$root/usr/share/doc/$pkg/README"
  cat >"$root/DEBIAN/control" <<CTL
Package: $pkg
Version: $upstream-$rev
Architecture: $arch
Maintainer: raptr demo <demo@example.com>
Installed-Size: 8
Source: $name
Section: utils
Priority: optional
Description: $3
 A tiny package built by raptr's demo.
CTL
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${pkg}_$upstream-${rev}_$arch.deb" >/dev/null
}
build_deb "$name" amd64 "greets you from a raptr repository"
build_deb "$name" arm64 "greets you from a raptr repository"
build_deb "$name-doc" all "documentation for raptr-hello"
ls "$out"

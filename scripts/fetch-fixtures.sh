#!/usr/bin/env bash
# Downloads real Debian packages for the tests into .cache/fixtures/real (binary
# packages) and .cache/fixtures/source (one multi-binary source package). Nothing
# third-party is committed: the tests fetch what they judge against.
#
# The set covers: an epoch (vim-common, zlib1g), Architecture: all (vim-common),
# '+' in a name (libstdc++6), '.' in a name (libpython3.11-minimal), a large
# package (libllvm15), a multi-binary source (zlib).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
real=.cache/fixtures/real
src=.cache/fixtures/source
mkdir -p "$real" "$src"

# The URI of the first archive apt's own configuration lists for SUITE, in
# deb822 .sources files or one-line .list files.
mirror_of() {
  local suite=$1 f
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk -v s="$suite" 'BEGIN { RS = ""; FS = "\n" } {
        uri = ""; ok = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { split($i, a, " "); uri = a[2] }
          if ($i ~ /^Suites:/) { n = split($i, b, " "); for (j = 2; j <= n; j++) if (b[j] == s) ok = 1 }
        }
        if (ok && uri != "") print uri
      }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      awk -v s="$suite" '$1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) print $i
      }' "$f"
    done
  } | head -n 1
}

binaries=(vim-common zlib1g libstdc++6 libpython3.11-minimal libllvm15)
if [ ! -f .cache/fixtures/real.done ]; then
  echo "fixtures: downloading ${binaries[*]}"
  (cd "$real" && apt-get -o APT::Sandbox::User=root download -q "${binaries[@]}" >/dev/null)
  touch .cache/fixtures/real.done
fi

if [ ! -f .cache/fixtures/source.done ]; then
  # A private apt state with a deb-src entry, so the machine's own apt
  # configuration is left as it is.
  state=$top/.cache/apt-src
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  # The archive this machine's apt already uses for its suite: no mirror is
  # named here.
  mirror=$(mirror_of "$suite")
  if [ -z "$mirror" ]; then
    echo "fixtures: apt's configuration (/etc/apt/sources.list*) has no archive for $suite" >&2
    exit 1
  fi
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$mirror" "$suite" >"$state/sources.list"
  opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root -q)
  echo "fixtures: fetching the source index for $suite (once)"
  apt-get "${opts[@]}" update >/dev/null
  (cd "$src" && apt-get "${opts[@]}" source --download-only zlib >/dev/null)
  touch .cache/fixtures/source.done
fi
echo "fixtures: $(ls "$real" | wc -l) binary packages, $(ls "$src" | wc -l) source files in .cache/fixtures"

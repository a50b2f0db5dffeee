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
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' "$suite" >"$state/sources.list"
  opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root -q)
  echo "fixtures: fetching the source index for $suite (once)"
  apt-get "${opts[@]}" update >/dev/null
  (cd "$src" && apt-get "${opts[@]}" source --download-only zlib >/dev/null)
  touch .cache/fixtures/source.done
fi
echo "fixtures: $(ls "$real" | wc -l) binary packages, $(ls "$src" | wc -l) source files in .cache/fixtures"

#!/usr/bin/env bash
# Makes a project-local virtual environment hold exactly a pinned
# requirements file: VENV is rebuilt whenever REQUIREMENTS changes (a stamp
# named after its hash), and left alone otherwise.
#   scripts/venv.sh VENV REQUIREMENTS WHAT [PIP-FLAG...]
set -euo pipefail
venv=${1:?usage: $0 VENV REQUIREMENTS WHAT [PIP-FLAG...]} reqs=${2:?} what=${3:-$2}
shift $(($# < 3 ? $# : 3))
stamp="$venv/.installed-$(sha256sum "$reqs" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing $what into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" -r "$reqs"
  touch "$stamp"
fi

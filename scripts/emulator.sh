#!/usr/bin/env bash
# Starts the emulator (scripts/emulator.py) on 127.0.0.1, bootstraps it
# (scripts/bootstrap.sh) and prints the environment to use it; stops it on
# Ctrl-C or when this script ends. `make emulator` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/venv
[ -x "$venv/bin/python" ] || { echo "emulator: run \`make setup\` first" >&2; exit 1; }
fifo=$(mktemp -u)
mkfifo "$fifo"
# The emulator serves until its standard input closes: hold it open on fd 3.
"$venv/bin/python" scripts/emulator.py "${1:-0}" <"$fifo" >"$fifo.out" &
exec 3>"$fifo"
rm -f "$fifo"
for _ in $(seq 1 100); do
  [ -s "$fifo.out" ] && break
  sleep 0.1
done
port=$(awk '/^port /{print $2}' "$fifo.out")
rm -f "$fifo.out"
[ -n "$port" ] || { echo "emulator: did not start" >&2; exit 1; }
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=raptr-emulator \
  AWS_SECRET_ACCESS_KEY=raptr-emulator AWS_DEFAULT_REGION=us-east-1
PATH="$PWD/$venv/bin:$PATH" scripts/bootstrap.sh
cat <<MSG
emulator: listening on $AWS_ENDPOINT_URL; in another shell:
  export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID=raptr-emulator AWS_SECRET_ACCESS_KEY=raptr-emulator AWS_DEFAULT_REGION=us-east-1 RAPTR_S3_PATH_STYLE=true
  PATH=$PWD/$venv/bin:\$PATH aws s3 ls
Ctrl-C stops it.
MSG
trap 'exit 0' INT TERM
while :; do sleep 3600; done

#!/usr/bin/env bash
# Runs orderkv locally and opens the shell on it: installs missing Debian
# packages, builds, starts one orderkvd on 127.0.0.1:7400 with its data under
# ./data, and stops it (cleanly, SIGTERM) when the shell exits.
# ORDERKV_PORT picks another port. Extra arguments go to the shell
# (e.g. scripts/run.sh -e 'tables').
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
echo "building orderkv (log: build/build.log)" >&2
mkdir -p build
if ! { cmake -S . -B build && cmake --build build -j"$(nproc)" --target orderkvd orderkv_shell; } \
     >build/build.log 2>&1; then
  tail -n 30 build/build.log >&2
  echo "build failed; full log in build/build.log" >&2
  exit 1
fi

port="${ORDERKV_PORT:-7400}"
mkdir -p data
addr_file=data/node1.addr
log=data/node1.log
rm -f "$addr_file"
build/server/orderkvd --data-dir data/node1 --listen "127.0.0.1:$port" \
  --port-file "$addr_file" 2>>"$log" &
pid=$!
cleanup() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 150); do
  [ -s "$addr_file" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "orderkvd failed to start; the end of $log:" >&2
    tail -n 5 "$log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$addr_file" ] || { echo "orderkvd did not come up within 15 s (see $log)" >&2; exit 1; }
addr="$(cat "$addr_file")"
echo "orderkvd (pid $pid) serving on $addr, data in ./data/node1, log in $log" >&2
build/client/shell/orderkv --addr "$addr" "$@"

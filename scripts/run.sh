#!/usr/bin/env bash
# Runs orderkv locally and opens the shell on it: installs missing Debian
# packages, builds, starts a 3-node cluster on 127.0.0.1:7401-7403 with its
# data under ./data (scripts/cluster.sh), and opens the shell on all three
# nodes. The cluster keeps running after the shell exits only with
# ORDERKV_KEEP=1; otherwise it is stopped cleanly (SIGTERM).
# Extra arguments go to the shell (e.g. scripts/run.sh -e 'cluster status').
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

addrs="$(scripts/cluster.sh up --dir ./data)"
if [ "${ORDERKV_KEEP:-0}" != 1 ]; then
  trap 'scripts/cluster.sh down --dir ./data >&2 || true' EXIT INT TERM
fi
echo "orderkv cluster up: $addrs (data and logs in ./data; scripts/cluster.sh status|kill N|restart N)" >&2
build/client/shell/orderkv --addr "$addrs" "$@"

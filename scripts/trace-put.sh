#!/usr/bin/env bash
# Where a one-client put's time goes on a local 3-node cluster: builds (or
# reuses) a tracing build, runs orderkv-bench puts against a cluster of it
# with ORDERKV_TRACE=1, and prints each stage's distribution
# (scripts/trace-put.py; common/trace.h; docs/performance.md).
#   scripts/trace-put.sh [SECONDS, default 8] [CLIENTS, default 1] [TRACE BUILD DIR, default build-trace]
# Tracing writes a line per event: the puts run a little slower than untraced.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
clients="${2:-1}"
build="${3:-build-trace}"
if ! grep -q '^ORDERKV_TRACE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DORDERKV_TRACE=ON >/dev/null
fi
cmake --build "$build" -j2 --target orderkvd orderkv-bench orderkv_shell >/dev/null
build="$(cd "$build" && pwd)"
tmp="$(mktemp -d /tmp/okv-trace-XXXXXX)"
cleanup() { scripts/cluster.sh down --dir "$tmp/okv" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
addrs="$(ORDERKV_TRACE=1 scripts/cluster.sh up --dir "$tmp/okv" --base-port "${OKV_BASE_PORT:-27801}" \
         --build "$build")"
# Only the measured puts: the logs so far hold start-up and the ready check.
for f in "$tmp"/okv/node*.log; do : >"$f"; done
"$build/client/bench/orderkv-bench" --target orderkv --addr "$addrs" --workload put \
  --clients "$clients" --duration "$secs" --warmup 1 --key-size 16 --value-size 256 \
  --keys 100000 --no-progress
scripts/trace-put.py "$tmp"/okv/node*.log

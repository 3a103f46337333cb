#!/usr/bin/env bash
# orderkv (3-node cluster) against etcd (3-member cluster), same load tool,
# same machine, one run: durable puts at 1 and 256 clients, linearizable gets
# at 64 clients; 16-byte keys, 256-byte values. Prints a Markdown table.
# "clients" is the number of requests in flight (orderkv-bench drives both
# targets asynchronously); "bench cpu" is the load tool's own CPU time per
# request over the measured window (docs/bench.md).
#   scripts/bench-cluster.sh [SECONDS per run, default 10] [BUILD dir]
# Needs etcd-server and etcd-client (Debian packages) for the etcd side.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
build="$(cd "${2:-build}" && pwd)"
tmp="$(mktemp -d /tmp/okvbench-cluster-XXXXXX)"
cleanup() {
  scripts/cluster.sh down --dir "$tmp/okv" >/dev/null 2>&1 || true
  scripts/etcd-cluster.sh down "$tmp/etcd" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
okv="$(scripts/cluster.sh up --dir "$tmp/okv" --base-port "${OKV_BASE_PORT:-17401}" --build "$build")"
etcd="$(scripts/etcd-cluster.sh up 3 "$tmp/etcd")"
common=(--duration "$secs" --warmup 2 --key-size 16 --value-size 256 --keys 100000 --no-progress --json)
row() {
  /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("| %s | %s | %d | %.0f | %.3f | %.3f | %.3f | %d | %.1f |" % (r["target"], r["workload"], r["clients"], r["ops_per_s"], r["p50_ms"], r["p99_ms"], r["p999_ms"], r["errors"], r["cpu_us_per_op"]))'
}
echo "| target | workload | clients | ops/s | p50 ms | p99 ms | p999 ms | errors | bench cpu us/op |"
echo "|---|---|---|---|---|---|---|---|---|"
for spec in "orderkv $okv" "etcd $etcd"; do
  set -- $spec
  b=("$build/client/bench/orderkv-bench" --target "$1" --addr "$2" "${common[@]}")
  "${b[@]}" --workload put --clients 1 | row
  "${b[@]}" --workload put --clients 256 | row
  "${b[@]}" --workload get --clients 64 --preload | row
done

#!/usr/bin/env bash
# Single-node benchmark: starts a fresh orderkvd (data in a temp dir), then
# runs orderkv-bench for durable puts and for gets at 1, 16 and 64 clients
# (16-byte keys, 256-byte values; "clients" = requests in flight) and prints
# a Markdown table with the load tool's own CPU per request. Run from a
# built tree: scripts/bench-node.sh [SECONDS per run, default 10] [BUILD dir]
set -euo pipefail
secs="${1:-10}"
build="$(cd "${2:-build}" && pwd)"
tmp="$(mktemp -d /tmp/okvbench-XXXXXX)"
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$build/server/orderkvd" --data-dir "$tmp/data" --listen 127.0.0.1:0 --port-file "$tmp/addr" \
  --log-level warn 2>"$tmp/log" &
pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/addr" ] && break; sleep 0.1; done
addr="$(cat "$tmp/addr")"
bench=("$build/client/bench/orderkv-bench" --addr "$addr" --duration "$secs" --warmup 2
       --key-size 16 --value-size 256 --keys 100000 --no-progress --json)
echo "| workload | clients | ops/s | p50 ms | p99 ms | p999 ms | bench cpu us/op |"
echo "|---|---|---|---|---|---|---|"
row() {
  /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print("| %s | %d | %.0f | %.3f | %.3f | %.3f | %.1f |" % (r["workload"], r["clients"], r["ops_per_s"], r["p50_ms"], r["p99_ms"], r["p999_ms"], r["cpu_us_per_op"]))'
}
for c in 1 16 64; do "${bench[@]}" --workload put --clients "$c" | row; done
# Group commit factor: alternate 1 and 64 clients three times, so a noisy
# minute on a shared machine hits both sides, and compare medians.
ones=(); sixtyfours=()
rate() { /usr/bin/python3 -c 'import json,sys; print(round(json.loads(sys.stdin.read())["ops_per_s"]))'; }
for _ in 1 2 3; do
  ones+=("$("${bench[@]}" --workload put --clients 1 | rate)")
  sixtyfours+=("$("${bench[@]}" --workload put --clients 64 | rate)")
done
/usr/bin/python3 - "${ones[@]}" "${sixtyfours[@]}" <<'PY'
import statistics, sys
v = [int(x) for x in sys.argv[1:]]
one, many = v[:3], v[3:]
print()
print("puts/s, 1 client: %s (median %d); 64 clients: %s (median %d); ratio of medians %.1fx"
      % (one, statistics.median(one), many, statistics.median(many),
         statistics.median(many) / statistics.median(one)))
print()
PY
"${bench[@]}" --workload get --clients 1 --preload --duration 1 >/dev/null
for c in 1 16 64; do "${bench[@]}" --workload get --clients "$c" | row; done
"$build/client/shell/orderkv" --addr "$addr" -e status | grep -E "^(writes|syncs)"

#!/usr/bin/env bash
# TLS on against TLS off (issue 14): the same 3-node orderkv cluster setup,
# once plaintext and once with mutual TLS (scripts/make-certs.sh; every node
# uses node1's certificate, whose IP SAN 127.0.0.1 names them all), driven
# by orderkv-bench with the same options: durable puts at 1, 64 and 256 in
# flight and linearizable gets at 64 (16-byte keys, 256-byte values).
# Rounds alternate plaintext and TLS, so a noisy minute hits both; every
# run is one row of the Markdown table printed, then the TLS/plaintext
# ratio of each workload's mean ops/s.
#   scripts/bench-tls.sh [SECONDS per run, default 10] [BUILD dir] [ROUNDS, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
build="$(cd "${2:-build}" && pwd)"
rounds="${3:-2}"
tmp="$(mktemp -d /tmp/okvbench-tls-XXXXXX)"
live=""
cleanup() {
  [ -z "$live" ] || scripts/cluster.sh down --dir "$live" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
scripts/make-certs.sh "$tmp/certs" 1 >/dev/null
c="$tmp/certs"
common=(--duration "$secs" --warmup 2 --key-size 16 --value-size 256 --keys 100000
        --no-progress --json)
runs="$tmp/runs.jsonl"
row() {
  /usr/bin/python3 -c 'import json,sys; m=sys.argv[1]; r=json.loads(sys.stdin.read()); print("| %s | %s | %d | %.0f | %.3f | %.3f | %.1f |" % (m, r["workload"], r["clients"], r["ops_per_s"], r["p50_ms"], r["p99_ms"], r["cpu_us_per_op"]))' "$1"
}
echo "| mode | workload | clients | ops/s | p50 ms | p99 ms | bench cpu us/op |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
  for mode in plain tls; do
    tls_bench=()
    if [ "$mode" = tls ]; then
      export ORDERKVD_EXTRA_FLAGS="--tls-ca $c/ca.crt --tls-cert $c/node1.crt --tls-key $c/node1.key"
      export ORDERKV_TLS_CA="$c/ca.crt" ORDERKV_TLS_CERT="$c/client.crt" ORDERKV_TLS_KEY="$c/client.key"
      tls_bench=(--tls-ca "$c/ca.crt" --tls-cert "$c/client.crt" --tls-key "$c/client.key")
    else
      unset ORDERKVD_EXTRA_FLAGS ORDERKV_TLS_CA ORDERKV_TLS_CERT ORDERKV_TLS_KEY
    fi
    live="$tmp/okv-$mode-$r"
    okv="$(scripts/cluster.sh up --dir "$live" --base-port "${OKV_BASE_PORT:-17501}" --build "$build")"
    b=("$build/client/bench/orderkv-bench" --target orderkv --addr "$okv" "${tls_bench[@]}"
       "${common[@]}")
    "${b[@]}" --workload put --clients 1 | tee -a "$runs.$mode" | row "$mode"
    "${b[@]}" --workload put --clients 64 | tee -a "$runs.$mode" | row "$mode"
    "${b[@]}" --workload put --clients 256 | tee -a "$runs.$mode" | row "$mode"
    "${b[@]}" --workload get --clients 64 --preload | tee -a "$runs.$mode" | row "$mode"
    scripts/cluster.sh down --dir "$live" >/dev/null
    live=""
  done
done
echo
/usr/bin/python3 - "$runs.plain" "$runs.tls" <<'PY'
import json, sys
def load(p):
    out = {}
    for line in open(p):
        r = json.loads(line)
        out.setdefault((r["workload"], r["clients"]), []).append(r["ops_per_s"])
    return out
plain, tls = load(sys.argv[1]), load(sys.argv[2])
for k in sorted(plain):
    p, t = sum(plain[k]) / len(plain[k]), sum(tls[k]) / len(tls[k])
    print("%s at %d in flight: TLS %.0f ops/s against plaintext %.0f (%.2fx)" % (k[0], k[1], t, p, t / p))
PY

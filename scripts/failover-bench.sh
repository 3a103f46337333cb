#!/usr/bin/env bash
# Leader failover time: on a fresh local 3-node cluster, TRIALS times
# (default 20): find the leader of orders partition 0, kill -9 it, and time
# until a write to that partition succeeds again (each attempt a put with a
# 200 ms deadline, retried at once); then restart the node and wait until
# leaders have spread again. Prints each trial and the distribution.
#   scripts/failover-bench.sh [TRIALS] [BUILD dir]
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-20}"
build="$(cd "${2:-build}" && pwd)"
dir="$(mktemp -d /tmp/okvfailover-XXXXXX)"
trap 'scripts/cluster.sh down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
addrs="$(scripts/cluster.sh up --dir "$dir" --base-port "${OKV_BASE_PORT:-19401}" --build "$build")"
shell=("$build/client/shell/orderkv" --addr "$addrs")
# A key of orders partition 0 (FNV-1a 64 of the partition key, mod 8).
key="$(/usr/bin/python3 -c '
for i in range(1000):
    k = "f%d" % i
    h = 1469598103934665603
    for b in k.encode():
        h = ((h ^ b) * 1099511628211) % (1 << 64)
    if h % 8 == 0:
        print(k + "/x"); break')"
leader() {
  "${shell[@]}" --json -e 'partitions orders' | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
print(next(p["leader"] or 0 for p in r["partitions"] if p["partition"] == 0))'
}
times=()
for t in $(seq 1 "$trials"); do
  l="$(leader)"
  [ "$l" != 0 ] || { sleep 1; l="$(leader)"; }
  start=$(date +%s%N)
  scripts/cluster.sh kill "$l" --dir "$dir" >/dev/null 2>&1
  until "${shell[@]}" --timeout 200 -e "put orders $key v$t" >/dev/null 2>&1; do :; done
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  times+=("$ms")
  echo "trial $t: killed leader node $l; writes resumed after $ms ms"
  scripts/cluster.sh restart "$l" --dir "$dir" >/dev/null 2>&1
  sleep 4   # let it catch up and take back the leaderships it prefers
done
/usr/bin/python3 - "${times[@]}" <<'PY'
import statistics, sys
v = sorted(int(x) for x in sys.argv[1:])
print("failover ms over %d trials: min %d, median %d, p90 %d, max %d" % (
    len(v), v[0], statistics.median(v), v[int(0.9 * (len(v) - 1))], v[-1]))
print("all:", v)
PY

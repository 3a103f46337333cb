#!/usr/bin/env bash
# Where a put's cost goes on a 3-node cluster: CPU microseconds per put on
# the partition's leader and on each follower, syncs per second and entries
# per sync on every node. All puts go to one partition (its keys share the
# partition key "hot"), so one node leads every write and the other two
# only follow; the script reads each node's CPU time (/proc/PID/stat) and
# its Status counters before and after an orderkv-bench run.
#   scripts/write-path.sh [SECONDS, default 10] [BUILD dir] [CLIENTS, default 256] [PREFIX]
# PREFIX "" spreads the keys over every partition instead (default "hot").
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
build="$(cd "${2:-build}" && pwd)"
clients="${3:-256}"
prefix="${4-hot}"
dir="$(mktemp -d /tmp/okvwritepath-XXXXXX)"
trap 'scripts/cluster.sh down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
addrs="$(scripts/cluster.sh up --dir "$dir" --base-port "${OKV_BASE_PORT:-19501}" --build "$build")"
shell="$build/client/shell/orderkv"

snapshot() {   # one line per node: id cpu_ticks writes syncs proposals applied
  for i in 1 2 3; do
    pid="$(cat "$dir/node$i.pid")"
    ticks="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
    addr="$(cat "$dir/node$i.addr")"
    "$shell" --addr "$addr" --json -e status | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.readline()); c = r["counters"]
# orderkvd before 2026-12-05 reports no raft counters: zeros, role by CPU
print(sys.argv[1], sys.argv[2], c.get("writes", 0), c.get("syncs", 0), c.get("proposals", 0),
      c.get("entries_applied", 0))' "$i" "$ticks"
  done
}

snapshot >"$dir/before"
t0="$(date +%s.%N)"
"$build/client/bench/orderkv-bench" --addr "$addrs" --workload put --clients "$clients" \
  --duration "$secs" --warmup 0 --key-size 16 --value-size 256 --keys 100000 \
  ${prefix:+--key-prefix "$prefix"} --no-progress --json >"$dir/bench.json"
t1="$(date +%s.%N)"
snapshot >"$dir/after"
/usr/bin/python3 - "$dir/before" "$dir/after" "$dir/bench.json" "$t0" "$t1" "$prefix" <<'PY'
import json, os, sys
before = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[1])}
after = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in open(sys.argv[2])}
bench = json.load(open(sys.argv[3]))
wall = float(sys.argv[5]) - float(sys.argv[4])
hz = os.sysconf("SC_CLK_TCK")
puts = bench["ok"] if "ok" in bench else bench["ops_per_s"] * bench["duration_s"]
print("puts acknowledged: %d (%.0f/s in the measured window), wall %.1f s, bench CPU %s"
      % (puts, bench["ops_per_s"], wall, bench.get("cpu_us_per_op", "?")) + " us/put")
print()
print("| node | role | CPU s | CPU us per put | syncs/s | entries per sync |")
print("|---|---|---|---|---|---|")
cpus = {n: (after[n][0] - before[n][0]) / hz for n in before}
counted = any(after[n][3] > before[n][3] for n in before)
for n in sorted(before):
    b, a = before[n], after[n]
    cpu = cpus[n]
    writes, syncs, props = a[1] - b[1], a[2] - b[2], a[3] - b[3]
    if not counted:   # no counters: in a one-partition run the leader works hardest
        role = ("leader" if cpu == max(cpus.values()) else "follower") if sys.argv[6] else "?"
    else:
        role = ("leader" if props > puts / 2 else "follower") if sys.argv[6] else "leads %d%%" % (100 * props / max(puts, 1))
    if syncs:
        print("| %s | %s | %.2f | %.1f | %.0f | %.1f |"
              % (n, role, cpu, cpu * 1e6 / max(puts, 1), syncs / wall, writes / syncs))
    else:
        print("| %s | %s | %.2f | %.1f | - | - |" % (n, role, cpu, cpu * 1e6 / max(puts, 1)))
PY

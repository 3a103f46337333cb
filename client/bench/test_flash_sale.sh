#!/usr/bin/env bash
# test_flash_sale.sh REPO BUILD — orderkv-bench's flash-sale audit (--verify)
# against real clusters: a safe sale of 200 units with 64 in flight sells
# out and verifies (no oversell), and the same sale with --unsafe-reserve
# (a test aid that drops the floor, or etcd's compare) is flagged.
#
# orderkv: a 3-node cluster from scripts/cluster.sh on three free loopback
# ports; etcd: one member from scripts/etcd-cluster.sh. Each is stopped by
# the PIDs those scripts recorded. Exit status: 0 all passed, 1 a check
# failed, 77 orderkv passed but etcd is not installed (its part skipped).
# Every step is bounded by `timeout`; about 30 s in all.
set -u

REPO=${1:?usage: test_flash_sale.sh REPO BUILD}
BUILD=${2:?usage: test_flash_sale.sh REPO BUILD}
BENCH="$BUILD/client/bench/orderkv-bench"
PY=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderkv-flash-sale.XXXXXX")

cleanup() {
    "$REPO/scripts/cluster.sh" down --dir "$tmp/okv" >/dev/null 2>&1
    [ -d "$tmp/etcd" ] && "$REPO/scripts/etcd-cluster.sh" down "$tmp/etcd" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
check() {   # check NAME PYTHON-ASSERTION (on the JSON in $out, exit status in $rc)
    if "$PY" -c "import json, sys
r = json.loads(sys.stdin.read()); rc = $rc
assert $2, r" <<<"$out" 2>"$tmp/py.err"; then
        echo "ok - $1"
    else
        echo "not ok - $1 (exit status $rc)"
        echo "  stdout: $out"
        sed 's/^/  /' "$tmp/py.err" "$tmp/stderr"
        failures=$((failures + 1))
    fi
}
sale() {   # sale TARGET ADDR SKU [extra flags]: one sale of 200 units, 64 in flight
    local target=$1 addr=$2 sku=$3
    shift 3
    out=$(timeout 90 "$BENCH" --target "$target" --addr "$addr" --workload flash-sale \
        --sku "$sku" --stock 200 --clients 64 --warmup 0 --verify --json --no-progress \
        "$@" 2>"$tmp/stderr")
    rc=$?
}

# Three consecutive free ports for scripts/cluster.sh's --base-port.
base=$("$PY" -c 'import random, socket
for _ in range(200):
    b = random.randrange(20000, 60000)
    ss = []
    try:
        for p in range(b, b + 3):
            s = socket.socket(); ss.append(s); s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in ss: s.close()
    print(b); break')
okv=$(timeout 120 "$REPO/scripts/cluster.sh" up --dir "$tmp/okv" --base-port "$base" \
    --build "$BUILD" 2>"$tmp/up.log") || { cat "$tmp/up.log"; exit 1; }
echo "# orderkv cluster $okv"

sale orderkv "$okv" safe --duration 60
check "orderkv: the sale sells out, 200 reservations, verified" \
    'rc == 0 and r["sold_out_at_s"] is not None and r["reservations"] == 200 and r["oversell"] == 0 and r["verify"]["ok"] and r["verify"]["available"] == 0'
sale orderkv "$okv" unsafe --duration 1 --unsafe-reserve
check "orderkv --unsafe-reserve: the audit reports the oversell" \
    'rc == 1 and r["oversell"] > 0 and not r["verify"]["ok"] and r["verify"]["available"] < 0'

if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    echo "# etcd not installed: its part skipped"
    [ "$failures" = 0 ] && exit 77
    exit 1
fi
etcd=$(ETCD_BASE_PORT=$((base + 10)) timeout 60 "$REPO/scripts/etcd-cluster.sh" up 1 "$tmp/etcd" \
    2>"$tmp/eup.log") || { cat "$tmp/eup.log"; exit 1; }
echo "# etcd member $etcd"
sale etcd "$etcd" safe --duration 60
check "etcd: the sale sells out, 200 reservations, verified" \
    'rc == 0 and r["sold_out_at_s"] is not None and r["oversell"] == 0 and r["verify"]["ok"] and r["verify"]["reservations"] == 200'
sale etcd "$etcd" unsafe --duration 30 --unsafe-reserve
check "etcd --unsafe-reserve (no compare): the audit reports the oversell" \
    'rc == 1 and not r["verify"]["ok"] and (r["oversell"] > 0 or r["verify"]["unaccounted"] != 0)'

[ "$failures" = 0 ]

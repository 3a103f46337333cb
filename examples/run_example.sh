#!/usr/bin/env bash
# run_example.sh BUILD_DIR EXAMPLE [ARGS...] — runs `EXAMPLE ARGS... ADDRS`
# against a real 3-node orderkvd cluster (scripts/cluster.sh) on free
# loopback ports, ADDRS being the cluster's address list, and exits with its
# status. The ctests `examples.orders` (the C program) and
# `examples.orders_py` (EXAMPLE /usr/bin/python3, ARGS examples/orders.py)
# run it, so the code docs/orders.md shows keeps working. An example's exit
# status 77 (skipped: grpcio missing) passes through.
#
# Bounded: the cluster's start (ORDERKV_UP_WAIT_S), the program (60 s);
# the nodes are stopped by `cluster.sh down`, which signals only the PIDs it
# recorded, on any exit.
set -euo pipefail
build="$(cd "${1:?usage: run_example.sh BUILD_DIR EXAMPLE}" && pwd)"
example="${2:?usage: run_example.sh BUILD_DIR EXAMPLE}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/orderkv-example.XXXXXX")"
cleanup() {
  "$repo/scripts/cluster.sh" down --dir "$tmp" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Three consecutive free ports (cluster.sh uses BASE..BASE+2): try random
# bases until all three bind.
base=$(/usr/bin/python3 -c 'import random, socket
for _ in range(200):
    b = random.randrange(20000, 60000)
    ss = []
    try:
        for p in range(b, b + 3):
            s = socket.socket(); s.bind(("127.0.0.1", p)); ss.append(s)
    except OSError:
        continue
    finally:
        for s in ss: s.close()
    if len(ss) == 3:
        print(b); break')
[ -n "$base" ] || { echo "run_example: no three free ports"; exit 1; }

export ORDERKVD_EXTRA_FLAGS="--raft-tick-ms 50 --log-level warn"
export ORDERKV_UP_WAIT_S=60
if ! addrs=$("$repo/scripts/cluster.sh" up --dir "$tmp" --base-port "$base" --build "$build"); then
  echo "run_example: the cluster did not come up"
  tail -n 20 "$tmp"/node*.log 2>/dev/null || true
  exit 1
fi
timeout 60 "$example" "${@:3}" "$addrs"

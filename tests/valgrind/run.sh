#!/usr/bin/env bash
# Memory checks with valgrind on a built tree (default ./build):
#  - the client library: its unit test, its asynchronous core (the
#    integration.async test against a live node), transactions, the orders
#    API (cluster.orders: its own 3-node cluster, whose servers run
#    outside valgrind), and the shell (linked with liborderkv) doing every
#    call against a live node;
#  - the server's start-up and shutdown path: orderkvd under valgrind serves
#    a few requests and (--metrics-listen) a few scrapes, a bad request and
#    an idle connection on its metrics port, then SIGTERM; it must exit 0.
# "Definitely lost" must be 0. gRPC's background threads leave "possibly
# lost" blocks from grpc_init (GRPC-CORE-NOTES), which are not counted.
set -euo pipefail
build="$(cd "${1:-build}" && pwd)"
vg=(valgrind --quiet --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=definite --error-exitcode=99)
tmp="$(mktemp -d /tmp/okvtest-valgrind-XXXXXX)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "valgrind: client unit test"
timeout 300 "${vg[@]}" "$build/tests/unit/client/test_client" >"$tmp/client.log" 2>&1 ||
  { cat "$tmp/client.log"; echo "valgrind: client unit test failed"; exit 1; }

echo "valgrind: the asynchronous client core (integration.async, against a live node)"
timeout 600 "${vg[@]}" "$build/tests/integration/test_async" >"$tmp/async.log" 2>&1 ||
  { cat "$tmp/async.log"; echo "valgrind: asynchronous client test failed"; exit 1; }

echo "valgrind: transactions through the client (integration.txn, against a live node)"
timeout 600 "${vg[@]}" "$build/tests/integration/test_txn_client" >"$tmp/txn.log" 2>&1 ||
  { cat "$tmp/txn.log"; echo "valgrind: transaction client test failed"; exit 1; }

echo "valgrind: the orders API through the client (cluster.orders, against a 3-node cluster)"
timeout 900 "${vg[@]}" "$build/tests/cluster/test_cluster_orders" >"$tmp/orders.log" 2>&1 ||
  { cat "$tmp/orders.log"; echo "valgrind: orders client test failed"; exit 1; }
echo "valgrind: orderkvd start, serve, SIGTERM"
mport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${vg[@]}" --log-file="$tmp/server.vg" "$build/server/orderkvd" --data-dir "$tmp/data" \
  --listen 127.0.0.1:0 --port-file "$tmp/port" --log-level warn \
  --metrics-listen "127.0.0.1:$mport" 2>"$tmp/server.log" &
pid=$!
for _ in $(seq 1 600); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { cat "$tmp/server.log"; echo "orderkvd did not start under valgrind"; exit 1; }
addr="$(cat "$tmp/port")"

echo "valgrind: shell (liborderkv) against it"
timeout 300 "${vg[@]}" "$build/client/shell/orderkv" --addr "$addr" >"$tmp/shell.out" 2>"$tmp/shell.log" <<'CMDS' ||
put orders c1/o1 hello
get orders c1/o1
put payments o1/p1 "\x00\x01"
scan orders c1/
del orders c1/o1
get orders c1/o1
txn accounts add s1/a 10 put s1/b x
txn accounts int s1/a ge 5 add s1/a -20 floor 0
get accounts s1/a --int yes
tables
status
CMDS
  true
if grep -q "definitely lost" "$tmp/shell.log" || grep -q "ERROR SUMMARY: [1-9]" "$tmp/shell.log"; then
  cat "$tmp/shell.log"; echo "valgrind: shell reported errors"; exit 1
fi
grep -q "hello" "$tmp/shell.out" || { cat "$tmp/shell.out" "$tmp/shell.log"; echo "shell did not work"; exit 1; }

echo "valgrind: /metrics scrapes, a bad request, an idle connection"
scrape() {   # $1: the request; prints the answer
  exec 3<>"/dev/tcp/127.0.0.1/$mport"
  printf '%b' "$1" >&3
  timeout 30 cat <&3
  exec 3<&-
}
scrape 'GET /metrics HTTP/1.1\r\n\r\n' >"$tmp/metrics.out"
grep -q '^orderkv_rpc_requests_total{method="KV/Put",code="OK"} [1-9]' "$tmp/metrics.out" ||
  { head -50 "$tmp/metrics.out"; echo "valgrind: /metrics did not count the shell's puts"; exit 1; }
scrape 'garbage\r\n\r\n' | head -1 | grep -q '^HTTP/1.1 400' ||
  { echo "valgrind: garbage on /metrics's port was not answered 400"; exit 1; }
exec 4<>"/dev/tcp/127.0.0.1/$mport"   # left open across the SIGTERM

kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
pid=""
exec 4<&-
if [ "$rc" -ne 0 ]; then
  cat "$tmp/server.vg" "$tmp/server.log"
  echo "valgrind: orderkvd exited $rc (99 = valgrind found errors)"
  exit 1
fi
echo "valgrind: clean"

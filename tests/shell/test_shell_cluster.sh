#!/usr/bin/env bash
# test_shell_cluster.sh ORDERKVD ORDERKV — the shell's cluster admin commands
# (`cluster status`, `partitions`, `transfer-leader`, `audit tail`) against a real 3-node
# orderkvd cluster on free loopback ports, in human and JSON output.
#
# Every step is bounded (`timeout`, bounded polls); every node is killed by
# PID on exit. Runs in about 10 s.
set -u

ORDERKVD=${1:?usage: test_shell_cluster.sh ORDERKVD ORDERKV}
ORDERKV=${2:?usage: test_shell_cluster.sh ORDERKVD ORDERKV}
PY=/usr/bin/python3
STEP_TIMEOUT=20

tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderkv-shell-cluster.XXXXXX")
pids=()

cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
pass() { echo "ok - $1"; }
fail() {
    echo "not ok - $1"
    echo "  rc=$rc"
    echo "  stdout: ${out//$'\n'/$'\n          '}"
    echo "  stderr: ${err//$'\n'/$'\n          '}"
    failures=$((failures + 1))
}
run() {
    out=$(timeout "$STEP_TIMEOUT" "$ORDERKV" -a "$addr" "$@" 2>"$tmp/stderr")
    rc=$?
    err=$(cat "$tmp/stderr")
}
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
rc_is() { [ "$rc" -eq "$1" ]; }
out_has() { grep -qF -- "$1" <<<"$out"; }
err_has() { grep -qF -- "$1" <<<"$err"; }
json() {
    "$PY" -c "import json, sys
objs = [json.loads(l) for l in sys.stdin.read().splitlines()]
assert all(isinstance(o, dict) for o in objs), objs
$1" <<<"$out"
}
dump_logs() {
    for i in 1 2 3; do
        local p=${pids[$((i - 1))]} state=running
        if ! kill -0 "$p" 2>/dev/null; then
            wait "$p" 2>/dev/null
            local st=$?
            state="exited with status $st"
            [ "$st" -gt 128 ] && state="$state (signal $((st - 128)))"
        fi
        echo "# --- node $i (pid $p) $state; log:"
        grep -A40 "ERROR: AddressSanitizer" "$tmp/node$i.log" || tail -20 "$tmp/node$i.log"
    done
}

# ---- start three nodes ------------------------------------------------------
# Free ports: bind three sockets to port 0 at once, so they differ, and let go.
read -r p1 p2 p3 < <("$PY" -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
spec="1=127.0.0.1:$p1,2=127.0.0.1:$p2,3=127.0.0.1:$p3"
ports=("" "$p1" "$p2" "$p3")
for i in 1 2 3; do
    "$ORDERKVD" --node-id "$i" --listen "127.0.0.1:${ports[$i]}" --initial-cluster "$spec" \
        --data-dir "$tmp/data$i" --raft-tick-ms 50 --log-level warn \
        >"$tmp/node$i.log" 2>&1 &
    pids+=($!)
done
addr=127.0.0.1:$p1
echo "# cluster $spec, pids ${pids[*]}"

# Ready when every node answers and every partition has a leader (bounded).
ready=0
SECONDS=0
while [ "$SECONDS" -lt 60 ]; do
    out=$(timeout 10 "$ORDERKV" -a "$addr" --timeout 5000 --json -e 'cluster status' 2>/dev/null)
    if "$PY" -c 'import json, sys
o = json.loads(sys.stdin.read())
assert o["ok"] and all(n["up"] for n in o["nodes"]) and o["leaderless"] == 0
assert len(o["partitions"]) > 0' <<<"$out" 2>/dev/null; then
        ready=1
        break
    fi
    dead=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || dead=1; done
    [ "$dead" -eq 0 ] || break
    sleep 0.2
done
if [ "$ready" -ne 1 ]; then
    echo "not ok - the cluster did not come up with every leader elected within 60 s"
    echo "  last: $out"
    dump_logs
    exit 1
fi
pass "3-node cluster up, every partition has a leader"

# ---- cluster status ------------------------------------------------------------
run -e 'cluster status'
check "cluster status succeeds" rc_is 0
check "  ...names the cluster and the up nodes" out_has "3 nodes, 3 up"
for i in 1 2 3; do
    check "  ...lists node $i as up" \
        grep -qE "^$i +127\.0\.0\.1:${ports[$i]} +up " <<<"$out"
done
check "  ...has the partition table" out_has "REPLICAS (node:role commit/applied lag)"
check "  ...has a row for orders/0" grep -qE "^orders +0 +[123] +[0-9]+ " <<<"$out"
check "  ...shows replica cells" grep -qE "[123]:leader [0-9]+/[0-9]+ lag 0" <<<"$out"
check "  ...says no partition lacks a leader" out_has "0 without a leader)"

run --json -e 'cluster status'
check "--json cluster status" json "
o, = objs
assert o['ok'] is True and o['cmd'] == 'cluster' and o['subcommand'] == 'status', o
assert o['single_node'] is False and isinstance(o['cluster_id'], int) and o['cluster_id'] > 0
assert [n['id'] for n in o['nodes']] == [1, 2, 3], o['nodes']
assert all(n['up'] and n['uptime_ms'] > 0 and n['error'] is None for n in o['nodes'])
tables = {p['table'] for p in o['partitions']}
assert {'orders', 'payments', 'accounts'} <= tables, tables
assert o['leaderless'] == 0
for p in o['partitions']:
    assert isinstance(p['leader'], int) and p['term'] >= 1, p
    nodes = [r['node'] for r in p['replicas']]
    assert nodes == sorted(nodes) and len(nodes) == 3, p
    lead = [r for r in p['replicas'] if r['node'] == p['leader']]
    assert lead and lead[0]['role'] == 'leader', p
    for r in p['replicas']:
        assert r['lag'] == max(0, lead[0]['commit'] - r['applied']), p
"

# ---- partitions ------------------------------------------------------------------
run -e 'partitions orders'
check "partitions orders succeeds" rc_is 0
check "  ...heads the table" out_has "table orders (id "
check "  ...has no other table's rows" bash -c '! grep -q "payments" <<<"$0"' "$out"
run --json -e 'partitions orders'
check "--json partitions orders" json "
o, = objs
assert o['ok'] and o['cmd'] == 'partitions' and o['table'] == 'orders', o
parts = o['partitions']
assert [p['partition'] for p in parts] == list(range(len(parts))) and len(parts) >= 1
assert all(p['table'] == 'orders' and len(p['replicas']) == 3 for p in parts), parts
"
leader=$("$PY" -c 'import json, sys
o = json.loads(sys.stdin.read())
print(o["partitions"][0]["leader"])' <<<"$out")
term=$("$PY" -c 'import json, sys
print(json.loads(sys.stdin.read())["partitions"][0]["term"])' <<<"$out")
run -e 'partitions nosuchtable'
check "partitions of an unknown table exits 1" rc_is 1
check "  ...with not found" err_has "error: not found: no table named nosuchtable"

# ---- transfer-leader ----------------------------------------------------------------
target=$(( leader % 3 + 1 ))
echo "# orders/0 is led by node $leader in term $term; moving it to node $target"
run -e "transfer-leader orders 0 $target"
check "transfer-leader orders 0 $target succeeds" rc_is 0
check "  ...and reports the move" out_has "leader of orders/0: node $leader -> node $target"
run --json -e 'partitions orders'
check "  ...partitions shows the new leader and a newer term" json "
p = objs[0]['partitions'][0]
assert p['leader'] == $target and p['term'] > $term, p
r = [r for r in p['replicas'] if r['node'] == $target][0]
assert r['role'] == 'leader', p"
# The nodes re-spread leaders to their preferred nodes every 10 ticks; an
# admin's transfer must not be undone by that (regression: it was, within
# half a second). Wait several rebalance periods and look again.
sleep 1.5
run --json -e 'partitions orders'
check "  ...and the new leader stays after several rebalance periods" json "
p = objs[0]['partitions'][0]
assert p['leader'] == $target, p"

# The combined TABLE/PARTITION form, in JSON, moving it back.
run --json -e "transfer-leader orders/0 $leader"
check "--json transfer-leader orders/0 back" json "
o, = objs
assert o['ok'] and o['cmd'] == 'transfer-leader', o
assert o['table'] == 'orders' and o['partition'] == 0, o
assert o['from'] == $target and o['to'] == $leader == o['leader'] and o['changed'] is True, o
assert o['term'] > $term and o['waited_ms'] >= 0, o"

run -e "transfer-leader orders 0 $leader"
check "transfer to the current leader is a no-op success" rc_is 0
check "  ...and says so" out_has "node $leader already leads orders/0"

run -e 'transfer-leader orders 0 9'
check "transfer to a node outside the map exits 1" err_has "no node 9 in the cluster map"
run -e 'transfer-leader orders 999 1'
check "transfer of a partition that does not exist exits 1" err_has "has partitions 0 to"
run -e 'transfer-leader orders 0'
check "transfer-leader without NODE is a usage error" err_has "usage: transfer-leader"
run -e 'transfer-leader orders x 1'
check "transfer-leader with a bad partition is a usage error" \
    err_has "PARTITION must be a partition number"

# ---- audit tail (docs/operations.md "Audit log") --------------------------------------
# The transfers above were recorded by the node that led orders/0 when each
# arrived; look on every node, as the shell would be pointed at one.
audit_all=""
for i in 1 2 3; do
    run --json -e "audit tail 1000 --node 127.0.0.1:${ports[$i]}"
    check "--json audit tail --node (node $i)" json "
o, = objs
assert o['ok'] and o['cmd'] == 'audit' and o['subcommand'] == 'tail', o
assert o['node'] == '127.0.0.1:${ports[$i]}', o
for l in o['lines']:
    r = json.loads(l)
    assert list(r) == ['time', 'who', 'from', 'what', 'result'], r"
    audit_all+=${audit_all:+$'\n'}$out
done
out=$audit_all
check "  ...the transfer to node $target is there with result ok, anonymous, from loopback" json "
recs = [json.loads(l) for o in objs for l in o['lines']]
ok = [r for r in recs if r['what'] == 'transfer-leader table=orders partition=0 to=$target'
      and r['result'] == 'ok']
assert ok, recs
assert all(r['who'] == 'anonymous' and r['from'].startswith('ipv4:127.0.0.1:') for r in ok), ok"
check "  ...and the one back to node $leader" json "
recs = [json.loads(l) for o in objs for l in o['lines']]
assert any(r['what'] == 'transfer-leader table=orders partition=0 to=$leader'
           and r['result'] == 'ok' for r in recs), recs"
run -e 'audit tail 2'
check "audit tail N (text) prints the first node's lines as JSON" bash -c '
[ "$1" -eq 0 ] && [ -n "$2" ] || exit 1
while IFS= read -r l; do "$3" -c "import json, sys; json.loads(sys.argv[1])" "$l" || exit 1; done <<<"$2"' \
    _ "$rc" "$out" "$PY"
run -e 'audit tail 1001'
check "audit tail with too many lines is a usage error" err_has "N must be a number of lines, 1..1000"
run -e 'audit head'
check "audit with another subcommand is a usage error" err_has "usage: audit tail [N] [--node ADDR]"
run -e 'help audit'
check "help audit explains it" out_has "usage: audit tail [N] [--node ADDR]"

# ---- transactions across partitions and tables ------------------------------------------
run -e 'add accounts alice 1000'
check "add outside a transaction commits on its own" out_has "ok (version"
run -e 'txn accounts add alice -300 floor 0 add bob 300'
check "a one-shot txn across partitions commits" out_has "committed (across partitions)"
run -e 'txn accounts add bob 1 add alice -5000 floor 0'
check "  ...one whose floor fails on another partition names the item" \
    err_has "write 1 (add -5000, floor 0) would leave key 'alice' below its floor"
run -e 'begin; get accounts alice --int yes; add accounts alice -200 --floor 0; add accounts bob 200; put orders o77 paid; get accounts bob --int yes; commit'
check "begin/add/put/commit over three partitions commits" out_has "committed"
check "  ...reads its own buffered add" grep -qx "500" <<<"$out"
run -e 'get accounts alice --int yes; get accounts bob --int yes; get orders o77'
check "  ...and every write applied" bash -c 'grep -qx 500 <<<"$1" && grep -qx 500 <<<"$1" && grep -qx paid <<<"$1"' _ "$out"
run -e 'begin; get accounts alice --int yes; abort; get accounts alice --int yes'
check "abort writes nothing" out_has "aborted: nothing was written"
run -e 'commit'
check "commit without begin is a usage error" err_has "no transaction is open"
run -e 'begin; begin'
check "begin inside a transaction is a usage error" err_has "already open"

# ---- orders, accounts, stock (docs/orders.md) ------------------------------------------
jget() { "$PY" -c "import json, sys; o = json.loads(sys.stdin.read().splitlines()[-1]); print($1)" <<<"$out"; }
run -e 'account create acct1 CNY --owner c1'
check "account create" out_has "account acct1  currency CNY  owner c1"
run -e 'account create acct1 USD'
check "  ...the id with another currency exits 1 with condition failed" \
    bash -c '[ "$1" -eq 1 ] && grep -qF "error: condition failed: " <<<"$2"' _ "$rc" "$err"
run -e 'account deposit acct1 100.00 --key top1'
check "account deposit (major units) shows the amount and balance" \
    bash -c 'grep -qF "deposited 100.00 CNY" <<<"$1" && grep -qF "balance   100.00 CNY" <<<"$1"' _ "$out"
run -e 'account deposit acct1 100.00 --key top1'
check "  ...the same --key again is a replay: balance still 100.00 CNY" out_has "balance   100.00 CNY"
run -e 'account deposit acct1 5.00 --key top1'
check "  ...the --key with another amount: idempotency error" \
    err_has "error: idempotency key reused with another request: "
check "  ...which says a new request needs a new key" err_has "(a new request needs a new --key)"
run -e 'account deposit acct1 1.005'
check "  ...an amount with 3 decimals in CNY is refused before sending" \
    err_has "error: invalid argument: amount '1.005': CNY has 2 decimal places"
run --json -e 'account show acct1'
check "--json account show: balance in minor units and as text" json "
o, = objs
assert o['ok'] and o['cmd'] == 'account' and o['subcommand'] == 'show', o
assert o['account']['account_id'] == 'acct1' and o['account']['currency'] == 'CNY', o
assert o['balance'] == 10000 and o['balance_text'] == '100.00 CNY', o"
run -e 'account create poor CNY; account deposit poor 1.00'
run -e 'stock set tea 5; stock show tea'
check "stock set / show" out_has "sku tea: 5 available"
run --json -e 'stock show tea'
check "--json stock show" json "o, = objs; assert o['sku'] == 'tea' and o['available'] == 5, o"

run --json -e 'order create c1 CNY tea:2:15.00 --reserve --merchant m1 --key cart1'
check "--json order create reserving stock" json "
o, = objs
assert o['ok'] and o['subcommand'] == 'create', o
d = o['order']
assert d['status'] == 'CREATED' and d['total'] == 3000 and d['total_text'] == '30.00 CNY', d
assert d['items'][0]['sku'] == 'tea' and d['items'][0]['reservation_id'], d"
oid=$(jget "o['order']['order_id']")
run --json -e 'order create c1 CNY tea:2:15.00 --reserve --merchant m1 --key cart1'
check "  ...the same --key again returns the same order" json "
o, = objs; assert o['order']['order_id'] == '$oid', o"
run -e 'stock show tea'
check "  ...and took 2 units once" out_has "sku tea: 3 available"
run -e 'order create c1 CNY tea:4:1.00 --reserve'
check "order create beyond the stock: sold out, with the hint" \
    bash -c 'grep -qF "error: sold out: " <<<"$1" && grep -qF "(nothing was taken; retrying will not help)" <<<"$1"' _ "$err"
run -e "order show c1 $oid"
check "order show: amounts with the currency" \
    bash -c 'grep -qF "status    CREATED" <<<"$1" && grep -qF "total     30.00 CNY" <<<"$1" && grep -qF "tea x 2 at 15.00 CNY  (stock reserved)" <<<"$1"' _ "$out"
run -e "order ship c1 $oid"
check "order ship of a CREATED order: illegal transition, exit 1" \
    bash -c '[ "$1" -eq 1 ] && grep -qF "error: illegal transition: " <<<"$2"' _ "$rc" "$err"
run --json -e "order ship c1 $oid"
check "  ...--json names the reason" json "
o, = objs
assert not o['ok'] and o['code'] == -16 and o['reason'] == 'ILLEGAL_TRANSITION', o
assert o['message'] and o['hint'], o"
run -e "order pay c1 $oid --account poor --key payp"
check "order pay from a poor account: insufficient funds" \
    bash -c 'grep -qF "error: insufficient funds: " <<<"$1" && grep -qF "nothing was charged" <<<"$1"' _ "$err"
run -e "order pay c1 $oid 29.99 --account acct1"
check "order pay of another amount: invalid argument" err_has "error: invalid argument: "
run --json -e "order pay c1 $oid --account acct1 --key pay1"
check "--json order pay (the total by default) with a key" json "
o, = objs
assert o['ok'] and o['order']['status'] == 'PAID' and o['order']['captured'] == 3000, o
assert o['payment']['amount_text'] == '30.00 CNY' and o['payment']['account_id'] == 'acct1', o"
pid1=$(jget "o['payment']['payment_id']")
run --json -e "order pay c1 $oid --account acct1 --key pay1"
check "  ...resent with the same key: the same payment" json "
o, = objs; assert o['ok'] and o['payment']['payment_id'] == '$pid1', o"
run -e "order pay c1 $oid --account poor --key pay1"
check "  ...the key with another request: idempotency key reused" \
    err_has "error: idempotency key reused with another request: "
run -e "order pay c1 $oid --account acct1 --key pay2"
check "  ...another key: illegal transition (paid already)" err_has "error: illegal transition: "
run -e 'account show acct1'
check "  ...charged once: balance 70.00 CNY" out_has "balance   70.00 CNY"
run -e 'order list c1'
check "order list" bash -c 'grep -qE "^$2 +PAID +30.00 CNY" <<<"$1" && grep -qF "(1 order)" <<<"$1"' _ "$out" "$oid"
run --json -e 'order list c1 --limit 10'
check "--json order list" json "
o, = objs; assert o['count'] == 1 and o['orders'][0]['order_id'] == '$oid' and o['next_start_after'] == '', o"
run -e "order ship c1 $oid; order complete c1 $oid"
check "order ship, then complete" \
    bash -c 'grep -qF "status    SHIPPED" <<<"$1" && grep -qF "status    COMPLETED" <<<"$1"' _ "$out"
run -e "order cancel c1 $oid"
check "order cancel after shipping: illegal transition" err_has "error: illegal transition: "
run -e "order refund c1 $oid 10.50 --key r1 --reason dented"
check "order refund part" \
    bash -c 'grep -qF "refunded 10.50 CNY to account acct1" <<<"$1" && grep -qF "status    PARTIALLY_REFUNDED" <<<"$1"' _ "$out"
run -e "order refund c1 $oid 100"
check "order refund beyond what is left: illegal transition, names what is left" \
    bash -c 'grep -qF "error: illegal transition: " <<<"$1" && grep -qF "19.50 CNY" <<<"$1"' _ "$err"
run --json -e "order refund c1 $oid 19.50 --key r2"
check "--json order refund the rest: REFUNDED" json "
o, = objs
assert o['order']['status'] == 'REFUNDED' and o['refund']['amount'] == 1950, o"
run -e 'account show acct1'
check "  ...the money came back: 100.00 CNY" out_has "balance   100.00 CNY"
run --json -e 'order create c2 CNY tea:1:2.50 --reserve'
oid2=$(jget "o['order']['order_id']")
run --json -e "order pay c2 $oid2 --account acct1; order cancel c2 $oid2 --reason changed"
check "order cancel of a paid order refunds it and releases its stock" json "
p, c = objs
assert p['ok'] and c['ok'] and c['order']['status'] == 'CANCELLED', objs
assert c['refund']['amount'] == 250 and c['refund']['account_id'] == 'acct1', c"
run -e 'stock show tea; account show acct1'
check "  ...stock back to 3, balance back to 100.00 CNY" \
    bash -c 'grep -qF "sku tea: 3 available" <<<"$1" && grep -qF "balance   100.00 CNY" <<<"$1"' _ "$out"
run -e 'stock reserve tea 2 --customer c9 --key flash1'
check "stock reserve" out_has "reserved 2 of tea: reservation "
run -e 'stock reserve tea 2 --customer c9 --key flash1; stock show tea'
check "  ...the same --key again takes nothing more" out_has "sku tea: 1 available"
run --json -e 'stock reserve tea 2 --key flash2'
check "stock reserve beyond the stock: --json sold out" json "
o, = objs; assert not o['ok'] and o['code'] == -18 and o['reason'] == 'SOLD_OUT', o"
run -e 'order show c1 nosuch'
check "order show of an unknown order: not found" err_has "error: not found: "
run --json -e 'account show nosuch'
check "--json account show of an unknown account: not found" json "
o, = objs; assert o['code'] == -1 and o['reason'] == 'NOT_FOUND', o"
run -e 'order pay c1'
check "order pay without ORDER: the subcommand's usage" \
    err_has "error: usage: order pay CUSTOMER ORDER [AMOUNT] [--account A] [--method M] [--key K] (missing arguments)"
run -e 'order create c1 CNY tea-2-15'
check "order create with a malformed item: usage" err_has "is not SKU:QTY:PRICE"

# ---- a node goes down -------------------------------------------------------------------
kill -KILL "${pids[2]}"
wait "${pids[2]}" 2>/dev/null
run --timeout 5000 --json -e 'cluster status'
check "with node 3 killed, cluster status still succeeds" rc_is 0
check "  ...and shows node 3 down, the others up" json "
o, = objs
up = {n['id']: n['up'] for n in o['nodes']}
assert up == {1: True, 2: True, 3: False}, o['nodes']
n3 = o['nodes'][2]
assert n3['uptime_ms'] is None and n3['error'] and n3['code'] < 0, n3
assert all(3 not in [r['node'] for r in p['replicas']] for p in o['partitions'])"
run --timeout 5000 -e 'cluster status'
check "  ...human output marks it down" grep -qE "^3 +127\.0\.0\.1:$p3 +down " <<<"$out"

[ "$failures" -eq 0 ] || dump_logs
echo "# $failures failure(s)"
[ "$failures" -eq 0 ]

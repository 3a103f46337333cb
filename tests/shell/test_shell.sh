#!/usr/bin/env bash
# test_shell.sh ORDERKVD ORDERKV — drives the real `orderkv` shell against a
# real orderkvd: one-shot, stdin and interactive (pty) modes, human and JSON
# output, exit statuses, scans that page, and error reporting.
#
# Every client run is bounded by `timeout`; the server is started on a free
# port (--listen 127.0.0.1:0 --port-file) and killed by PID on exit.
set -u

ORDERKVD=${1:?usage: test_shell.sh ORDERKVD ORDERKV}
ORDERKV=${2:?usage: test_shell.sh ORDERKVD ORDERKV}
PY=/usr/bin/python3
STEP_TIMEOUT=20

tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderkv-shell-test.XXXXXX")
server_pid=

cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        # Bounded wait for a clean exit, then make sure.
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
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

# run ARGS... — runs the shell against the server; sets out, err, rc.
# Stdin is whatever the caller redirected (a heredoc for stdin mode).
run() {
    out=$(timeout "$STEP_TIMEOUT" "$ORDERKV" -a "$addr" "$@" 2>"$tmp/stderr")
    rc=$?
    err=$(cat "$tmp/stderr")
}

# check NAME CONDITION... — CONDITION is a command; passes if it succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
rc_is() { [ "$rc" -eq "$1" ]; }
out_has() { grep -qF -- "$1" <<<"$out"; }
err_has() { grep -qF -- "$1" <<<"$err"; }
out_is() { [ "$out" = "$1" ]; }
# json PYTHON — every stdout line must be a JSON object; PYTHON asserts over
# `objs` (the parsed lines, in order).
json() {
    "$PY" -c "import json, sys
objs = [json.loads(l) for l in sys.stdin.read().splitlines()]
assert all(isinstance(o, dict) for o in objs), objs
$1" <<<"$out"
}

# ---- start the server --------------------------------------------------------
"$ORDERKVD" --data-dir "$tmp/data" --listen 127.0.0.1:0 --port-file "$tmp/addr" \
    --log-level warn >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    [ -s "$tmp/addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -s "$tmp/addr" ]; then
    echo "not ok - orderkvd did not write its address within 10 s"
    cat "$tmp/server.log"
    exit 1
fi
addr=$(head -n1 "$tmp/addr")
echo "# orderkvd pid $server_pid at $addr"

# ---- one-shot mode -------------------------------------------------------------
run -e 'put orders cust1/o1 hello'
check "one-shot put succeeds" rc_is 0
check "put prints the version" out_has "ok (version "
put_version=$(sed -n 's/^ok (version \([0-9]*\))$/\1/p' <<<"$out")

run -e 'get orders cust1/o1'
check "get succeeds" rc_is 0
check "get prints value then version" out_is "hello
(version $put_version)"

run -e 'put orders cust1/o2 "two words"; get orders cust1/o2' -e 'get orders cust1/o1'
check "several commands per -e and several -e" rc_is 0
check "  ...all of them run, in order" \
    "$PY" -c 'import re, sys
lines = sys.argv[1].split("\n")
assert len(lines) == 5, lines
assert re.fullmatch(r"ok \(version \d+\)", lines[0]), lines
assert lines[1] == "two words" and lines[2].startswith("(version ")
assert lines[3:] == ["hello", "(version %s)" % sys.argv[2]], lines' "$out" "$put_version"

# ---- JSON output -----------------------------------------------------------------
run --json -e 'get orders cust1/o1'
check "--json get" json "
o, = objs
assert o == {'ok': True, 'cmd': 'get', 'table': 'orders', 'key': 'cust1/o1',
             'value': 'hello', 'version': $put_version}, o"

# Binary key and value: every byte value survives the round trip.
run --json -e 'put orders "bin/\x00\x01\x7f\x80\xff\"\\" "v\x00\n\t\xfe"' \
           -e 'get orders "bin/\x00\x01\x7f\x80\xff\"\\"'
check "--json binary put/get round-trips exact bytes" json "
p, g = objs
assert p['ok'] and g['ok'], objs
assert g['key'].encode('latin-1') == b'bin/\x00\x01\x7f\x80\xff\"\\\\', g
assert g['value'].encode('latin-1') == b'v\x00\n\t\xfe', g
assert g['version'] == p['version']"

run -e 'get orders "bin/\x00\x01\x7f\x80\xff\"\\"'
check "human output escapes binary values" out_has '"v\x00\n\t\xfe"'

run --json -e 'get orders cust1/nope'
check "--json failure exits 1" rc_is 1
check "--json failure is an error object on stdout" json "
o, = objs
assert o['ok'] is False and o['cmd'] == 'get' and o['error'] == 'not found', o
assert o['code'] == -1 and isinstance(o['message'], str), o"

# ---- exit statuses and error messages ----------------------------------------------
run -e 'get orders cust1/nope'
check "get of a missing key exits 1" rc_is 1
check "  ...with 'error: not found' on stderr" err_has "error: not found"
check "  ...and nothing on stdout" out_is ""

run -e 'get nosuchtable k'
check "unknown table exits 1" rc_is 1
check "  ...with the server's message" err_has "nosuchtable"

run -e 'put nosuchtable k v'
check "put to an unknown table exits 1" rc_is 1

run -e 'frobnicate orders'
check "unknown command exits 1" rc_is 1
check "  ...and says so" err_has "error: unknown command: no command named frobnicate"

run -e 'get orders'
check "wrong arity exits 1" rc_is 1
check "  ...with the usage" err_has "usage: get TABLE KEY"

run -e 'get orders "unterminated'
check "syntax error exits 1" rc_is 1
check "  ...and names the problem" err_has "error: syntax: unterminated string"

run -e 'get orders "\xZZ"'
check "bad \\x escape exits 1" rc_is 1
check "  ...and names the problem" err_has "two hex digits"

run --bogus
check "unknown option exits 2" rc_is 2
run --timeout soon -e 'tables'
check "bad --timeout exits 2" rc_is 2
run get orders k
check "commands without -e exit 2" rc_is 2
check "  ...with a hint" err_has "after -e"
out=$(timeout "$STEP_TIMEOUT" "$ORDERKV" -a "" -e tables 2>&1 </dev/null); rc=$?; err=
check "an empty --addr is replaced by the default, not an error" [ "$rc" -ne 2 ]

run --help
check "--help exits 0" rc_is 0
check "  ...and documents --json" out_has "--json"
run --version
check "--version" out_has "orderkv 0."

out=$(timeout "$STEP_TIMEOUT" "$ORDERKV" -a 127.0.0.1:1 --timeout 1000 -e 'get orders k' 2>&1)
rc=$?; err=
check "an unreachable server exits 1" rc_is 1
check "  ...and says why" out_has "error: "

out=$(ORDERKV_ADDR=$addr timeout "$STEP_TIMEOUT" "$ORDERKV" -e 'get orders cust1/o1' 2>&1)
rc=$?; err=
check "ORDERKV_ADDR supplies the address" out_has "hello"

# ---- compare-and-set and delete -------------------------------------------------------
run -e "put orders cust1/o1 again --if-version $put_version"
check "put --if-version with the current version succeeds" rc_is 0
run -e "put orders cust1/o1 stale --if-version $put_version"
check "put --if-version with an old version fails" rc_is 1
check "  ...with conflict" err_has "error: conflict"
run -e 'put orders cust1/new first --if-version 0'
check "put --if-version 0 creates an absent key" rc_is 0
run -e 'put orders cust1/new second --if-version 0'
check "put --if-version 0 on an existing key fails" rc_is 1
run -e 'put orders cust1/x v --if-version banana'
check "put --if-version with a non-number is a usage error" err_has "usage: put"
run -e 'put orders cust1/dash "--if-version"; get orders cust1/dash'
check "a quoted --flag is data" out_has "--if-version"

run -e 'del orders cust1/new' -e 'get orders cust1/new'
check "del then get: the get fails" rc_is 1
check "  ...del said deleted" out_has "deleted"
run -e 'del orders cust1/new'
check "deleting a missing key succeeds" rc_is 0
check "  ...and says so" out_has "no such key"
run --json -e 'del orders cust1/new'
check "--json del reports existed" json "assert objs[0]['existed'] is False, objs"

# ---- stdin mode --------------------------------------------------------------------------
run <<'EOF'
# a comment line
put payments p1 100
get payments p1
get payments missing
put payments p2 "x y"; get payments p2

del payments p1
EOF
check "stdin mode: a failure makes the exit status 1" rc_is 1
check "  ...later commands still ran" out_has "x y"
check "  ...the failure was reported" err_has "error: not found"
check "  ...no prompt is printed" bash -c '! grep -q "orderkv>" <<<"$0"' "$out"
check "  ...the last command ran" out_has "deleted"

run --json <<'EOF'
put accounts a1 10
get accounts a1
EOF
check "stdin mode with --json: all succeed" rc_is 0
check "  ...one JSON object per result" json "
assert [o['cmd'] for o in objs] == ['put', 'get'], objs
assert objs[1]['value'] == '10'"

run <<'EOF'
get accounts a1
quit
get accounts nope
EOF
check "quit stops reading stdin" rc_is 0

# ---- scan ----------------------------------------------------------------------------------
# 250 keys under one prefix plus neighbours on both sides that must not show.
{
    echo 'put orders cust2. before'
    for i in $(seq -w 0 249); do echo "put orders cust2/k$i v$i"; done
    echo 'put orders cust20/x after'
    echo 'put orders cust3/k000 after'
} >"$tmp/load"
run <"$tmp/load"
check "loading 253 keys through stdin" rc_is 0

run --json -e 'scan orders cust2/ --limit 230 --page-size 7'
check "scan with prefix and limit across pages" json "
o, = objs
keys = [i['key'] for i in o['items']]
assert o['count'] == 230 == len(keys), o['count']
assert keys == ['cust2/k%03d' % i for i in range(230)], keys[:5]
assert all(i['value'] == 'v' + i['key'][-3:] for i in o['items'])
assert all(isinstance(i['version'], int) and i['version'] > 0 for i in o['items'])
assert o['more'] is True"

run --json -e 'scan orders cust2/ --limit 1000 --page-size 16'
check "scan to the end of a prefix" json "
o, = objs
assert o['count'] == 250 and o['more'] is False, (o['count'], o['more'])
assert [i['key'] for i in o['items']] == ['cust2/k%03d' % i for i in range(250)]"

run --json -e 'scan orders cust2/'
check "scan's default limit is 100" json "
o, = objs
assert o['count'] == 100 and o['more'] is True, (o['count'], o['more'])"

run --json -e 'scan orders --from cust2/k010 --to cust2/k020 --page-size 3'
check "scan --from/--to is half-open" json "
o, = objs
assert [i['key'] for i in o['items']] == ['cust2/k%03d' % i for i in range(10, 20)], o"

run -e 'scan orders cust2/k00'
check "human scan prints a table" out_has "KEY"
check "  ...with rows" out_has "cust2/k009  "
check "  ...and a count" out_has "(10 rows)"

run -e 'scan orders cust2/ --from a'
check "scan with a prefix and a range is a usage error" err_has "not both"
run -e 'scan orders --limit 0'
check "scan --limit 0 is a usage error" rc_is 1
run -e 'scan orders --limt 5'
check "a misspelt flag is a usage error" err_has "unknown option --limt"

# ---- tables, status, help --------------------------------------------------------------------
run -e tables
check "tables" rc_is 0
check "  ...lists orders" out_has "orders"
check "  ...lists payments" out_has "payments"
check "  ...lists accounts" out_has "accounts"
run --json -e tables
check "--json tables" json "
names = {t['name'] for t in objs[0]['tables']}
assert {'orders', 'payments', 'accounts'} <= names, names
assert all(t['partitions'] >= 1 for t in objs[0]['tables'])"

run -e status
check "status" rc_is 0
check "  ...shows the server version" out_has "server version:"
run --json -e status
check "--json status" json "
o, = objs
for k in ('node_id', 'server_version', 'address', 'uptime_ms', 'tables', 'counters'):
    assert k in o, k
assert o['counters']['writes'] >= 1, o['counters']"

# ---- cluster commands on a node running alone ------------------------------------------------
# (the 3-node cluster is test_shell_cluster.sh)
run -e 'cluster status'
check "cluster status on a single node succeeds" rc_is 0
check "  ...with a one-line note" out_has "single node: this node runs alone"
check "  ...and the node's status" out_has "server version:"
run --json -e 'cluster status'
check "--json cluster status on a single node" json "
o, = objs
assert o['ok'] and o['cmd'] == 'cluster' and o['single_node'] is True, o
assert o['cluster_id'] == 0 and o['node']['node_id'] >= 1 and 'counters' in o['node'], o"
run --json -e 'partitions orders'
check "--json partitions on a single node" json "
o, = objs
assert o['ok'] and o['single_node'] is True and o['table'] == 'orders', o
assert all(p['leader'] == o['partitions'][0]['leader'] and p['replicas'] == []
           for p in o['partitions']) and len(o['partitions']) >= 1, o"
run -e 'transfer-leader orders 0 2'
check "transfer-leader on a single node exits 1" rc_is 1
check "  ...and says why" err_has "runs alone"
run -e 'cluster nodes'
check "an unknown cluster subcommand is a usage error" err_has "usage: cluster status"

# ---- transactions (one partition) --------------------------------------------------------------
run -e 'txn accounts add t1/alice 1000'
check "txn add commits" out_has "committed (version"
run -e 'txn accounts int t1/alice ge 300 add t1/alice -300 floor 0 add t1/bob 300'
check "txn transfer commits" out_has "committed (version"
run -e 'get accounts t1/alice --int yes'
check "get --int shows the counter" out_has "700"
run -e 'txn accounts add t1/bob 5 add t1/alice -5000 floor 0'
check "txn below a floor exits 1" rc_is 1
check "  ...and names the write" err_has "write 1 (add -5000, floor 0)"
run --json -e 'txn accounts add t1/bob 5 add t1/alice -5000 floor 0'
check "--json txn failure names the item" json "assert objs[0]['ok'] is False and objs[0]['failed'] == 1 and objs[0]['reason'] == 'floor', objs"
run -e 'get accounts t1/bob --int yes'
check "  ...and applied nothing" out_has "300"
run -e 'txn accounts add t1/bob 1 add t2/bob 1'
check "txn across partitions is refused on a single node" err_has "across partitions run on a cluster"
run -e 'begin; add accounts t1/carol 40; get accounts t1/carol --int yes; commit; get accounts t1/carol --int yes'
check "begin/add/commit in one partition commits" out_has "committed (version"
check "  ...and reads its buffered add, then the applied one" bash -c '[ "$(grep -cx 40 <<<"$1")" = 2 ]' _ "$out"
run -e 'begin; get accounts t1/carol --int yes; add accounts t1/carol -50 --floor 0; commit'
check "a floor in an interactive transaction fails the commit" err_has "below its floor"
run -e 'begin; put accounts t1/dave d; scan accounts t1/; commit'
check "scan in a transaction shows its buffered put" out_has "t1/dave"
check "  ...and commits in one partition" out_has "committed (version"
run -e 'txn accounts add t1/bob'
check "txn with a missing argument is a usage error" err_has "needs 2 arguments"
run -e 'txn accounts frobnicate t1/bob'
check "txn with an unknown item is a usage error" err_has "unknown item"
run -e 'put accounts t1/text hello'
run -e 'get accounts t1/text --int yes'
check "get --int of a non-counter fails" err_has "not a counter"

run -e help
check "help" rc_is 0
for c in get txn put del scan tables status cluster partitions transfer-leader backup help quit exit; do
    check "  ...lists $c" bash -c 'grep -q "^  $1\b" <<<"$0"' "$out" "$c"
done
for c in get txn put del scan tables status cluster partitions transfer-leader backup help quit exit; do
    run -e "help $c"
    check "help $c" out_has "usage: $c"
done
run -e 'help nope'
check "help of an unknown command exits 1" rc_is 1
run --json -e help
check "--json help" json "assert len(objs[0]['commands']) == 24, objs"

# ---- interactive mode through a pty ------------------------------------------------------------
# Checks the prompt, Tab completion of a command and a table name, and history.
mkdir -p "$tmp/home"
out=$(HOME=$tmp/home timeout "$STEP_TIMEOUT" "$PY" - "$ORDERKV" "$addr" <<'EOF' 2>&1
import os, pty, select, sys, time

exe, addr = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execv(exe, [exe, "-a", addr])

buf = b""
def expect(what, secs=10):
    global buf
    end = time.time() + secs
    while what not in buf:
        left = end - time.time()
        if left <= 0:
            sys.exit("timed out waiting for %r; got %r" % (what, buf))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                sys.exit("pty closed waiting for %r; got %r" % (what, buf))
    buf = buf[buf.index(what) + len(what):]

def send(s):
    os.write(fd, s.encode())

expect(b"orderkv> ")
send("put orders tty/k1 typed\r")
expect(b"ok (version")
expect(b"orderkv> ")
# "ge<Tab>" completes the command, "ord<Tab>" the table name.
send("ge\t")
send("ord\t")
send("tty/k1\r")
expect(b"typed")
expect(b"(version")
expect(b"orderkv> ")
# "aud<Tab>" completes the command, "ta<Tab>" its subcommand; a single
# node that did no admin action has an empty audit log.
send("aud\t")
send("ta\t")
send("\r")
expect(b"is empty")
expect(b"orderkv> ")
send("get orders tty/none\r")
expect(b"error: not found")
send("quit\r")
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
print("interactive ok")
EOF
)
rc=$?; err=
check "interactive session through a pty (completion, prompt, quit)" out_has "interactive ok"
# libedit stores spaces as \040, hence the loose pattern.
check "  ...history saved to ~/.orderkv_history" \
    grep -q "put.*orders.*tty/k1.*typed" "$tmp/home/.orderkv_history"

# ---- audit tail (test_shell_cluster.sh reads transfers back) ----
run -e 'audit tail'
check "audit tail of a node that did no admin action" out_has "the audit log of $addr is empty"
run --json -e 'audit tail 5'
check "--json audit tail" json "
o, = objs
assert o['ok'] and o['cmd'] == 'audit' and o['node'] == '$addr' and o['lines'] == [], o"

# ---- the orders commands need a cluster (test_shell_cluster.sh runs them) ----
run -e 'order show c1 o1'
check "order on a single node exits 1" rc_is 1
check "  ...saying the orders service needs a cluster" \
    err_has "error: unimplemented: "
check "  ...with the hint" err_has "(the orders service runs on a cluster)"
run -e 'order fly c1 o1'
check "an unknown order subcommand is a usage error" \
    err_has "error: usage: order create|show|list|pay|cancel|ship|complete|refund"
run -e 'help order'
check "help order explains the subcommands" out_has "order refund CUSTOMER ORDER AMOUNT"

echo "# $failures failure(s)"
[ "$failures" -eq 0 ]

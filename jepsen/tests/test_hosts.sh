#!/usr/bin/env bash
# test_hosts.sh — checks jepsen/hosts.sh against real orderkvd processes in
# network namespaces (jepsen/HOSTS.md): setup, start-all, serving through the
# client namespace, cut/heal (a cut really blocks node-to-node TCP, never
# client-to-node), kill/start with the data kept, stop, pause/resume, clock
# steps under libfaketime (when installed), pid-file safety, usage errors,
# teardown (no namespace, no process left, root namespace untouched), a
# setup that fails half-way, and cleanup after a run that was never torn down.
#
#   jepsen/tests/test_hosts.sh BUILD_DIR
#
# Needs root; exits 77 (skip) without it. Bounded: the whole test runs under
# `timeout` (OKVJ_TEST_TIMEOUT_S, default 240). Exit status: 0 pass, 1 fail,
# 2 bad command line, 77 skipped. OKVJ_KEEP=1 keeps the run dirs (they are
# kept anyway when the test fails). Safe beside other runs of the suite: it
# only ever tears down or cleans up the run ids it created.
set -euo pipefail

if [ -z "${OKVJ_TEST_INNER:-}" ]; then
  OKVJ_TEST_INNER=1 exec timeout -k 60 "${OKVJ_TEST_TIMEOUT_S:-240}" "$0" "$@"
fi

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
H="$here/../hosts.sh"
orderkvd="$build/server/orderkvd"
shell_bin="$build/client/shell/orderkv"

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (network namespaces)"; exit 77; fi
for t in ip nft; do command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }; done
[ -x "$orderkvd" ] || { echo "FAIL: $orderkvd not built"; exit 1; }
[ -x "$shell_bin" ] || { echo "FAIL: $shell_bin not built"; exit 1; }

faketime_flag=()
for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/local/lib/faketime/libfaketime.so.1; do
  if [ -f "$f" ]; then faketime_flag=(--faketime); break; fi
done

t0=$(date +%s)
passed=0
failed=0
runs=()       # run dirs to tear down
ids=()        # run ids to clean up
tmp="$(mktemp -d "${TMPDIR:-/tmp}/okvj-test-hosts.XXXXXX")"

log() { echo "[$(($(date +%s) - t0))s] $*"; }
ok() { passed=$((passed + 1)); log "ok   $*"; }
fail() { failed=$((failed + 1)); log "FAIL $*"; }
check() {   # description, command...
  local what="$1"; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
not() { ! "$@"; }
quiet() { "$@" >/dev/null; }
fatal() {
  fail "$*"
  exit 1
}

finish() {
  local rc=$? d i
  set +e
  for d in "${runs[@]+"${runs[@]}"}"; do "$H" teardown --run "$d" >/dev/null 2>&1; done
  for i in "${ids[@]+"${ids[@]}"}"; do "$H" cleanup --id "$i" >/dev/null 2>&1; done
  if [ "$rc" = 0 ] && [ "$failed" = 0 ]; then
    [ -n "${OKVJ_KEEP:-}" ] || rm -rf "$tmp"
  else
    echo "run dirs and node logs kept in $tmp"
    for d in "${runs[@]+"${runs[@]}"}"; do
      for i in "$d"/n*/log; do [ -f "$i" ] && { echo "--- $i"; tail -n 5 "$i"; }; done
    done
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ] && exit "$rc" || exit 1
}
trap finish EXIT
trap 'exit 1' INT TERM HUP

# 0 if PID $1 is a live process (not a zombie, not just a thread id).
alive() {
  local key value state=""
  [ -r "/proc/$1/status" ] || return 1
  while read -r key value; do
    case "$key" in
      State:) state="$value" ;;
      Tgid:) [ "$value" = "$1" ] || return 1 ;;
    esac
  done 2>/dev/null <"/proc/$1/status"
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

restarted() { not alive "$1" && [ "$2" != "$1" ]; }   # old PID, new PID
alive_any() { local p; for p in "$@"; do alive "$p" && return 0; done; return 1; }

# 0 if PID $1 used less than $2 % of one CPU over 2 s.
idle_cpu_below() {
  local a b hz
  hz="$(getconf CLK_TCK)"
  a="$(awk '{ print $14 + $15 }' "/proc/$1/stat")"
  sleep 2
  b="$(awk '{ print $14 + $15 }' "/proc/$1/stat")"
  log "PID $1 used $(((b - a) * 100 / (2 * hz)))% of a CPU over 2 s"
  [ $(((b - a) * 100)) -lt $(($2 * 2 * hz)) ]
}

# Starts a command in the background, detached from this shell (so its death
# is not reported as a job), and prints its PID.
bg_pid() { bash -c '"$@" >/dev/null 2>&1 </dev/null & echo $!' bg "$@"; }

env_get() { sed -n "s/^$2=//p" "$1/hosts.env"; }
ns_count() { ip netns list | awk '{ print $1 }' | grep -c "^okvj$1-" || true; }

# Runs a shell command line on the cluster from the client namespace.
okv() {   # run dir, addrs, commands
  "$H" exec --run "$1" --client -- timeout 20 "$shell_bin" --addr "$2" --timeout 2000 -e "$3"
}

# Retries okv until it succeeds (a leader may have to be elected first).
okv_retry() {   # seconds, run dir, addrs, commands
  local end=$(($(date +%s) + $1)) out
  while :; do
    if out="$(okv "$2" "$3" "$4" 2>&1)"; then printf '%s\n' "$out"; return 0; fi
    if [ "$(date +%s)" -ge "$end" ]; then printf '%s\n' "$out" >&2; return 1; fi
    sleep 0.3
  done
}

get_is() {   # run dir, addrs, key, value: reads key (retrying) and compares
  [ "$(okv_retry 20 "$1" "$2" "get orders $3" | head -n1)" = "$4" ]
}

# TCP connect from a namespace, 2 s at most: 0 connected, else failed.
connects() {   # run dir, --client | --node I, address, port
  local run="$1" where=("$2") addr port
  if [ "$2" = --node ]; then where+=("$3"); shift; fi
  addr="$3" port="$4"
  "$H" exec --run "$run" "${where[@]}" -- timeout 2 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null
}

status_field() {   # run dir, node, field (state | pid | cuts | clock)
  local line
  line="$("$H" status --run "$1" 2>/dev/null | grep "^node$2 ")" || return 1
  case "$3" in
    state) awk '{ print $3 }' <<<"$line" ;;
    *) grep -o "$3=[^ ]*" <<<"$line" | cut -d= -f2 ;;
  esac
}

# ---- usage errors ---------------------------------------------------------------

expect_rc() {   # want, description, command...
  local want="$1" what="$2" rc=0
  shift 2
  "$@" >/dev/null 2>&1 || rc=$?
  if [ "$rc" = "$want" ]; then ok "$what (exit $rc)"; else fail "$what: exit $rc, want $want"; fi
}
expect_rc 2 "unknown command" "$H" frobnicate
expect_rc 2 "setup with a missing run dir" "$H" setup --run "$tmp/missing" --nodes 3
touch "$tmp/file"
expect_rc 2 "setup with a run dir that is a file" "$H" setup --run "$tmp/file" --nodes 3
expect_rc 2 "setup without --nodes" "$H" setup --run "$tmp"
expect_rc 2 "an option the command does not take" "$H" kill --run "$tmp" --node 1 --pairs 1-2
expect_rc 1 "start before setup" "$H" start --run "$tmp" --node 1

# ---- setup ------------------------------------------------------------------------

ip -o link show >"$tmp/root-links.before"
ip route show >"$tmp/root-routes.before"
nft list ruleset >"$tmp/root-nft.before" 2>/dev/null || true

run="$tmp/run"
mkdir "$run"
runs+=("$run")
addrs="$("$H" setup --run "$run" --nodes 3 --orderkvd "$orderkvd" --tick-ms 50 "${faketime_flag[@]+"${faketime_flag[@]}"}")" ||
  fatal "setup"
id="$(env_get "$run" id)"
ids+=("$id")
net="169.254.$id"
check "setup prints the address list ($addrs)" \
  test "$addrs" = "$net.1:7400,$net.2:7400,$net.3:7400"
check "setup made 5 namespaces okvj$id-*" test "$(ns_count "$id")" = 5
check "setup wrote hosts.env" grep -qx "addrs=$addrs" "$run/hosts.env"
expect_rc 1 "a second setup of the same run dir is refused" "$H" setup --run "$run" --nodes 3
expect_rc 2 "a node outside the run" "$H" kill --run "$run" --node 4
expect_rc 2 "a pair cutting a node from itself" "$H" cut --run "$run" --pairs 1-1

"$H" start-all --run "$run" 7>"$tmp/leaked-fd" || fatal "start-all"
pids=()
for i in 1 2 3; do pids+=("$(cat "$run/n$i/pid")"); done
check "nodes hold no lock file and no fd leaked by the caller" \
  not grep -qE "leaked-fd|/lock$|okvj.lock" <(ls -l "/proc/${pids[0]}/fd/")
check "status shows 3 nodes up" test "$(for i in 1 2 3; do status_field "$run" "$i" state; done | tr '\n' ' ')" = "up up up "
check "node 1 runs in namespace okvj$id-n1" \
  test "$(readlink "/proc/${pids[0]}/ns/net")" = "$(ip netns exec "okvj$id-n1" readlink /proc/self/ns/net)"
check "nodes run in their own session (setsid)" \
  test "$(awk '{ print $6 }' "/proc/${pids[1]}/stat")" = "${pids[1]}"
check "the root namespace's links are untouched" diff -q "$tmp/root-links.before" <(ip -o link show)
check "the root namespace's routes are untouched" diff -q "$tmp/root-routes.before" <(ip route show)

okv_retry 30 "$run" "$addrs" "put orders hosts-k1 v1" >/dev/null || fatal "the cluster did not serve a put within 30 s"
ok "the cluster serves through the client namespace"
check "get returns the value" test "$(okv "$run" "$addrs" "get orders hosts-k1" | head -n1)" = v1
expect_rc 7 "exec passes the exit status through" "$H" exec --run "$run" --client -- sh -c 'exit 7'
expect_rc 2 "exec without -- CMD" "$H" exec --run "$run" --client

# ---- cut / heal -----------------------------------------------------------------------

check "before a cut, node 1 reaches node 2" connects "$run" --node 1 "$net.2" 7400
"$H" cut --run "$run" --pairs 1-2 || fatal "cut 1-2"
check "a cut 1-2 blocks node 1 -> node 2" not connects "$run" --node 1 "$net.2" 7400
check "a cut 1-2 blocks node 2 -> node 1" not connects "$run" --node 2 "$net.1" 7400
check "a cut 1-2 leaves node 1 -> node 3" connects "$run" --node 1 "$net.3" 7400
check "the client still reaches node 1" connects "$run" --client "$net.1" 7400
check "the client still reaches node 2" connects "$run" --client "$net.2" 7400
check "status shows the cut" test "$(status_field "$run" 1 cuts)/$(status_field "$run" 2 cuts)/$(status_field "$run" 3 cuts)" = "2/1/-"
"$H" cut --run "$run" --pairs 1-3,1-2 || fatal "cut 1-3,1-2"
check "cuts add up and repeat harmlessly" test "$(status_field "$run" 1 cuts)" = "2,3"
check "node 1 keeps exactly two drop rules" \
  test "$(ip netns exec "okvj$id-n1" nft list table inet okvj | grep -c drop)" = 2
check "an isolated node 1 cannot reach node 3" not connects "$run" --node 1 "$net.3" 7400
check "the majority 2+3 serves a read of node 1's partitions and a write" \
  quiet okv_retry 20 "$run" "$net.2:7400,$net.3:7400" "put orders hosts-k2 v2; get orders hosts-k1"
"$H" heal --run "$run" || fatal "heal"
check "heal restores node 1 -> node 2" connects "$run" --node 1 "$net.2" 7400
check "heal restores node 1 -> node 3" connects "$run" --node 1 "$net.3" 7400
check "heal removes the nft table" bash -c "! ip netns exec okvj$id-n1 nft list table inet okvj >/dev/null 2>&1"
check "status shows no cuts" test "$(status_field "$run" 1 cuts)" = "-"

# ---- kill / start, stop, pid-file safety -----------------------------------------------

"$H" kill --run "$run" --node 3 || fatal "kill 3"
check "kill: node 3's process is gone" not alive "${pids[2]}"
check "kill: status shows node 3 down" test "$(status_field "$run" 3 state)" = down
expect_rc 0 "kill of a node that is down is a no-op" "$H" kill --run "$run" --node 3
expect_rc 1 "pause of a node that is down fails" "$H" pause --run "$run" --node 3
decoy="$(bg_pid sleep 60)"
echo "$decoy" >"$run/n3/pid"
"$H" kill --run "$run" --node 3 >/dev/null 2>&1 || true
"$H" stop --run "$run" --node 3 >/dev/null 2>&1 || true
check "a pid file naming another process is never signalled" alive "$decoy"
kill "$decoy"
"$H" start --run "$run" --node 3 || fatal "start 3"
pids[2]="$(cat "$run/n3/pid")"
check "start: node 3 is up again" test "$(status_field "$run" 3 state)" = up
check "start: node 3 kept its data (reads hosts-k1 through node 3 alone)" \
  get_is "$run" "$net.3:7400" hosts-k1 v1
check "start: node 3's log was appended to" test "$(grep -c "starting node 3" "$run/n3/log")" = 2

old="${pids[0]}"
"$H" stop --run "$run" --node 1 || fatal "stop 1"
check "stop: node 1 is gone" not alive "$old"
"$H" start --run "$run" --node 1 || fatal "start 1"
pids[0]="$(cat "$run/n1/pid")"
old="${pids[0]}"
"$H" start --run "$run" --node 1 || fatal "start 1 (restart)"
pids[0]="$(cat "$run/n1/pid")"
check "start restarts a running node" restarted "$old" "${pids[0]}"

# ---- pause / resume ---------------------------------------------------------------------

"$H" pause --run "$run" --node 2 || fatal "pause 2"
check "pause: node 2 is stopped (T)" test "$(awk '{ print $3 }' "/proc/${pids[1]}/stat")" = T
check "pause: status shows paused" test "$(status_field "$run" 2 state)" = paused
"$H" resume --run "$run" --node 2 || fatal "resume 2"
check "resume: status shows up" test "$(status_field "$run" 2 state)" = up
check "the cluster serves after kill, stop and pause" \
  quiet okv_retry 20 "$run" "$addrs" "put orders hosts-k3 v3; get orders hosts-k3"

# ---- clock --------------------------------------------------------------------------------

# Runs `date` in node I's namespace under the LD_PRELOAD/FAKETIME_*
# environment of node I's orderkvd process (read from /proc/PID/environ), so
# it sees exactly the clock that process sees.
node_date() {   # node, date format
  local pid kv fenv=()
  pid="$(cat "$run/n$1/pid")"
  while IFS= read -r -d '' kv; do
    case "$kv" in LD_PRELOAD=*|FAKETIME*) fenv+=("$kv") ;; esac
  done <"/proc/$pid/environ"
  "$H" exec --run "$run" --node "$1" -- env LC_ALL=C "${fenv[@]}" date "$2"
}
skew_is() {   # node, expected offset, tolerance: 0 if the node's clock is real + offset
  local fake real
  fake="$(node_date "$1" +%s.%N)"
  real="$(date +%s.%N)"
  awk -v f="$fake" -v r="$real" -v o="$2" -v t="$3" 'BEGIN { d = f - r - o; exit !(d < t && d > -t) }'
}

if [ "${#faketime_flag[@]}" -gt 0 ]; then
  check "faketime: node 2 runs with libfaketime preloaded" \
    grep -qz '^LD_PRELOAD=.*libfaketime' "/proc/${pids[1]}/environ"
  check "faketime: node 2 does not fake the monotonic clock" \
    grep -qzx 'FAKETIME_DONT_FAKE_MONOTONIC=1' "/proc/${pids[1]}/environ"
  check "faketime: node 2's clock is real at first" skew_is 2 0 2
  # libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 breaks timed
  # waits on CLOCK_MONOTONIC condvars unless FAKETIME_FORCE_MONOTONIC_FIX=0
  # (HOSTS.md): gRPC's threads then spin at about 50% of a CPU per node.
  check "faketime: idle node 2 does not spin (< 30% of a CPU)" idle_cpu_below "${pids[1]}" 30
  "$H" clock --run "$run" --node 2 --offset -86400 || fatal "clock -86400"
  check "clock -86400: node 2 is a day behind, at once" skew_is 2 -86400 2
  check "clock -86400: node 1 is not" skew_is 1 0 2
  check "clock -86400: status shows it" test "$(status_field "$run" 2 clock)" = -86400
  "$H" clock --run "$run" --node 2 --offset +7.5 || fatal "clock +7.5"
  check "clock +7.5: node 2 is 7.5 s ahead" skew_is 2 7.5 0.5
  "$H" clock --run "$run" --node 2 --offset -86400 || fatal "clock -86400"
  "$H" start --run "$run" --node 2 || fatal "start 2 with its clock a day behind"
  pids[1]="$(cat "$run/n2/pid")"
  yesterday="$(date -u -d "@$(($(date +%s) - 86400))" +%F)"
  check "orderkvd itself reads the skewed clock (its log is dated $yesterday)" \
    grep -q "^$yesterday" <(tail -n 1 "$run/n2/log")
  check "the cluster serves with node 2 a day behind" \
    quiet okv_retry 20 "$run" "$addrs" "put orders hosts-k4 v4; get orders hosts-k4"
  "$H" clock --run "$run" --node 2 --offset 0 || fatal "clock 0"
  check "clock 0: node 2 is back to real time" skew_is 2 0 2
else
  expect_rc 1 "clock without --faketime fails" "$H" clock --run "$run" --node 2 --offset 5
  log "skip clock checks: libfaketime is not installed (apt-get install -y faketime)"
fi

# ---- teardown -------------------------------------------------------------------------------

client_sleep_pid="$(bg_pid "$H" exec --run "$run" --client -- sleep 120)"
sleep 0.3
"$H" teardown --run "$run" || fatal "teardown"
check "teardown: no namespace okvj$id-* is left" test "$(ns_count "$id")" = 0
for i in 1 2 3; do
  check "teardown: node $i (PID ${pids[i-1]}) is gone" not alive "${pids[i-1]}"
done
check "teardown: a client process in the namespace is gone" not alive "$client_sleep_pid"
check "teardown keeps the logs and data" test -s "$run/n1/log" -a -d "$run/n1/data"
expect_rc 0 "teardown again is a no-op" "$H" teardown --run "$run"
expect_rc 1 "start after teardown fails" "$H" start --run "$run" --node 1
check "status after teardown shows every node down" \
  test "$("$H" status --run "$run" 2>/dev/null | awk '{ print $3 }' | sort -u)" = down
check "the root namespace's links are still untouched" diff -q "$tmp/root-links.before" <(ip -o link show)
check "the root namespace's routes are still untouched" diff -q "$tmp/root-routes.before" <(ip route show)
check "the root namespace's nft ruleset is untouched" diff -q "$tmp/root-nft.before" <(nft list ruleset 2>/dev/null)

# A torn-down run dir can be set up again: it gets its id back (its data
# dirs store their addresses) unless another run took it meanwhile.
rc=0
readdrs="$("$H" setup --run "$run" --nodes 3 --orderkvd "$orderkvd" --tick-ms 50 2>"$tmp/resetup.err")" || rc=$?
if [ "$rc" = 1 ] && grep -q "used by another run" "$tmp/resetup.err"; then
  log "skip re-setup checks: run id $id was taken by another run meanwhile"
else
  check "setup of a torn-down run dir gets the same addresses back" test "$readdrs" = "$addrs"
  "$H" start-all --run "$run" 2>/dev/null || fatal "start-all after re-setup"
  check "after re-setup the nodes still hold the data" get_is "$run" "$addrs" hosts-k1 v1
  "$H" teardown --run "$run" 2>/dev/null || fatal "teardown after re-setup"
  check "after the second teardown no namespace okvj$id-* is left" test "$(ns_count "$id")" = 0
fi

# ---- a setup that fails half-way tears itself down ---------------------------------------------

half="$tmp/half"
mkdir "$half"
rc=0
OKVJ_TEST_FAIL_SETUP=1 "$H" setup --run "$half" --nodes 2 --orderkvd "$orderkvd" >/dev/null 2>"$tmp/half.err" || rc=$?
half_id="$(grep -o 'okvj[0-9]*-' "$tmp/half.err" | head -n1 | tr -dc 0-9)"
[ -z "$half_id" ] || ids+=("$half_id")
check "a setup failing half-way exits 1 (id '$half_id')" test "$rc" = 1 -a -n "$half_id"
check "a setup failing half-way leaves no namespace" test "$(ns_count "${half_id:-none}")" = 0

# ---- cleanup after a run that was never torn down -------------------------------------------------

crashed="$tmp/crashed"
mkdir "$crashed"
runs+=("$crashed")
"$H" setup --run "$crashed" --nodes 2 --orderkvd "$orderkvd" >/dev/null || fatal "setup of the crashed run"
cid="$(env_get "$crashed" id)"
ids+=("$cid")
"$H" start-all --run "$crashed" 2>/dev/null || fatal "start-all of the crashed run"
cpids=("$(cat "$crashed/n1/pid")" "$(cat "$crashed/n2/pid")")
csleep="$(bg_pid "$H" exec --run "$crashed" --client -- sleep 120)"
sleep 0.3
"$H" cleanup --id "$cid" || fatal "cleanup --id $cid"
check "cleanup: no namespace okvj$cid-* is left" test "$(ns_count "$cid")" = 0
check "cleanup: the run's nodes are gone" not alive_any "${cpids[@]}"
check "cleanup: the client process is gone" not alive "$csleep"
expect_rc 0 "cleanup again finds nothing to do" "$H" cleanup --id "$cid"
expect_rc 0 "teardown after cleanup is a no-op" "$H" teardown --run "$crashed"

log "done in $(($(date +%s) - t0)) s"

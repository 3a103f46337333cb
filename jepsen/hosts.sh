#!/usr/bin/env bash
# hosts.sh — the Jepsen suite's hosts: every orderkvd node runs in its own
# network namespace, joined to the others and to a client namespace by a
# bridge, so faults are real (jepsen/HOSTS.md). Needs root.
#
#   jepsen/hosts.sh setup     --run DIR --nodes N [--orderkvd PATH] [--tick-ms MS] [--faketime]
#        create the namespaces and the network; write DIR/hosts.env; print the
#        client address list "A1:P,A2:P,..." (the only stdout line)
#   jepsen/hosts.sh start     --run DIR --node I [--env 'K=V K2=V2'] [--extra-flags '...']
#        start node I (SIGTERM it first if it runs); return once it serves
#   jepsen/hosts.sh start-all --run DIR [--env ...] [--extra-flags ...]
#        start every node, one after the other, as `start` does
#   jepsen/hosts.sh kill      --run DIR --node I     SIGKILL; wait until gone
#   jepsen/hosts.sh stop      --run DIR --node I     SIGTERM, wait 15 s, SIGKILL
#   jepsen/hosts.sh pause     --run DIR --node I     SIGSTOP
#   jepsen/hosts.sh resume    --run DIR --node I     SIGCONT
#   jepsen/hosts.sh cut       --run DIR --pairs '1-2,1-3'
#        drop node-to-node traffic of each pair, both ways (adds to earlier
#        cuts; client traffic is never cut)
#   jepsen/hosts.sh heal      --run DIR              remove every cut
#   jepsen/hosts.sh clock     --run DIR --node I --offset SECONDS
#        step node I's wall clock to real time + SECONDS (-30, +7.5; 0
#        resets), at once, also while it runs (needs setup --faketime)
#   jepsen/hosts.sh exec      --run DIR --client -- CMD ARGS...
#   jepsen/hosts.sh exec      --run DIR --node I -- CMD ARGS...
#        run CMD in the client's / node I's namespace (exit status passes through)
#   jepsen/hosts.sh status    --run DIR
#        one stdout line per node: nodeI ADDR up|paused|down pid=P cuts=J,K|- clock=OFFSET|-
#   jepsen/hosts.sh teardown  --run DIR
#        kill every process of the run, delete its namespaces; keeps DIR
#   jepsen/hosts.sh cleanup   [--id ID]
#        kill and delete everything of every run (or of run ID) of this suite
#
# Addresses: run id X (1..254) gives namespaces okvjX-hub (the bridge),
# okvjX-n1..okvjX-nN and okvjX-c, network 169.254.X.0/24: node I is
# 169.254.X.I, listening on port 7400; the client is 169.254.X.100. Nothing
# is created in the root network namespace.
#
# Files: DIR/hosts.env (key=value, written by setup); node I keeps
# DIR/nI/data (its data dir, kept across kill/start), DIR/nI/log (appended),
# DIR/nI/pid, DIR/nI/addr (orderkvd's --port-file), DIR/nI/faketime.
#
# Exit status: 0 done, 1 failure (the message says why), 2 bad command line.
set -euo pipefail

prog="hosts.sh"
repo="$(cd "$(dirname "$0")/.." && pwd)"
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"

die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }
bad() { echo "$prog: $*" >&2; echo "$prog: run '$0 --help' for usage" >&2; exit 2; }
usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$self" >&2
  exit 2
}

PORT=7400
CLIENT_HOST=100
LOCK_FILE=/run/okvj.lock
WAIT_TENTHS=200        # every wait for a process or a lock: 20 s at most

is_num() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# ---- command line -----------------------------------------------------------

cmd="${1:-}"
[ -n "$cmd" ] || usage
shift
case "$cmd" in
  setup|start|start-all|kill|stop|pause|resume|cut|heal|clock|exec|status|teardown|cleanup) ;;
  -h|--help|help) usage ;;
  *) bad "unknown command '$cmd'" ;;
esac

opt_run="" opt_nodes="" opt_orderkvd="" opt_tick="" opt_faketime=0 opt_node=""
opt_env="" opt_extra="" opt_pairs="" opt_offset="" opt_client=0 opt_id=""
have_offset=0
given=()
exec_argv=()
while [ $# -gt 0 ]; do
  arg="$1"
  case "$arg" in
    --) shift; exec_argv=("$@"); break ;;
    --faketime|--client)
      given+=("$arg")
      [ "$arg" = --faketime ] && opt_faketime=1 || opt_client=1
      shift ;;
    --run|--nodes|--orderkvd|--tick-ms|--node|--env|--extra-flags|--pairs|--offset|--id)
      [ $# -ge 2 ] || bad "$arg needs a value"
      val="$2"; shift 2 ;;
    --run=*|--nodes=*|--orderkvd=*|--tick-ms=*|--node=*|--env=*|--extra-flags=*|--pairs=*|--offset=*|--id=*)
      val="${arg#*=}"; arg="${arg%%=*}"; shift ;;
    *) bad "unexpected argument '$arg'" ;;
  esac
  case "$arg" in
    --faketime|--client) continue ;;
  esac
  given+=("$arg")
  case "$arg" in
    --run) opt_run="$val" ;;
    --nodes) opt_nodes="$val" ;;
    --orderkvd) opt_orderkvd="$val" ;;
    --tick-ms) opt_tick="$val" ;;
    --node) opt_node="$val" ;;
    --env) opt_env="$val" ;;
    --extra-flags) opt_extra="$val" ;;
    --pairs) opt_pairs="$val" ;;
    --offset) opt_offset="$val"; have_offset=1 ;;
    --id) opt_id="$val" ;;
  esac
done

# Which options each command takes; anything else is a usage error, so a
# typo never silently changes what a fault does.
case "$cmd" in
  setup) allowed="--run --nodes --orderkvd --tick-ms --faketime" ;;
  start) allowed="--run --node --env --extra-flags" ;;
  start-all) allowed="--run --env --extra-flags" ;;
  kill|stop|pause|resume) allowed="--run --node" ;;
  cut) allowed="--run --pairs" ;;
  heal|status|teardown) allowed="--run" ;;
  clock) allowed="--run --node --offset" ;;
  exec) allowed="--run --node --client" ;;
  cleanup) allowed="--id" ;;
esac
for g in "${given[@]+"${given[@]}"}"; do
  case " $allowed " in
    *" $g "*) ;;
    *) bad "$cmd does not take $g" ;;
  esac
done
if [ "$cmd" = exec ]; then
  [ "${#exec_argv[@]}" -gt 0 ] || bad "exec needs -- CMD ARGS..."
  if [ "$opt_client" = 1 ] && [ -n "$opt_node" ]; then bad "exec takes --client or --node I, not both"; fi
  if [ "$opt_client" = 0 ] && [ -z "$opt_node" ]; then bad "exec needs --client or --node I"; fi
elif [ "${#exec_argv[@]}" -gt 0 ]; then
  bad "$cmd takes no command after --"
fi
case "$cmd" in
  start|kill|stop|pause|resume|clock) [ -n "$opt_node" ] || bad "$cmd needs --node I" ;;
esac
[ "$cmd" != setup ] || [ -n "$opt_nodes" ] || bad "setup needs --nodes N"
[ "$cmd" != cut ] || [ -n "$opt_pairs" ] || bad "cut needs --pairs 'I-J,...'"
[ "$cmd" != clock ] || [ "$have_offset" = 1 ] || bad "clock needs --offset SECONDS"
if [ -n "$opt_node" ] && ! is_num "$opt_node"; then bad "--node must be a node number, got '$opt_node'"; fi
if [ -n "$opt_nodes" ] && { ! is_num "$opt_nodes" || [ "$opt_nodes" -lt 1 ] || [ "$opt_nodes" -gt 99 ]; }; then
  bad "--nodes must be a number in 1..99, got '$opt_nodes'"
fi
if [ -n "$opt_tick" ] && { ! is_num "$opt_tick" || [ "$opt_tick" -lt 1 ]; }; then
  bad "--tick-ms must be a positive number of milliseconds, got '$opt_tick'"
fi
if [ -n "$opt_id" ] && { ! is_num "$opt_id" || [ "$opt_id" -lt 1 ] || [ "$opt_id" -gt 254 ]; }; then
  bad "--id must be a run id in 1..254, got '$opt_id'"
fi
if [ "$have_offset" = 1 ] && ! [[ "$opt_offset" =~ ^[+-]?[0-9]+(\.[0-9]+)?$ ]]; then
  bad "--offset must be signed seconds like -30, +7.5 or 0, got '$opt_offset'"
fi

# --env 'K=V K2=V2': names are checked here; values cannot hold spaces.
env_args=()
if [ -n "$opt_env" ]; then
  read -r -a env_args <<<"$opt_env"
  for kv in "${env_args[@]}"; do
    [[ "$kv" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || bad "--env takes K=V words, got '$kv'"
  done
fi
extra_args=()
if [ -n "$opt_extra" ]; then read -r -a extra_args <<<"$opt_extra"; fi

# The run dir must exist already: setup never creates (or guesses) one.
dir=""
if [ "$cmd" != cleanup ]; then
  [ -n "$opt_run" ] || bad "$cmd needs --run DIR"
  [ -e "$opt_run" ] || bad "--run $opt_run does not exist"
  [ -d "$opt_run" ] || bad "--run $opt_run is not a directory"
  dir="$(cd "$opt_run" && pwd -P)"
  case "$dir" in *$'\n'*) bad "--run path holds a newline" ;; esac
fi

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, nft); run it as root"
for tool in ip nft flock setsid timeout; do
  command -v "$tool" >/dev/null || die "$tool not found; install iproute2, nftables, util-linux, coreutils"
done

# ---- the run's state: DIR/hosts.env ----------------------------------------------

# Every ip/nft call is bounded: a wedged netlink call must not hang a test.
ipq() { timeout 20 ip "$@"; }
nsq() { local ns="$1"; shift; timeout 20 ip netns exec "$ns" "$@"; }

id="" token="" nodes="" orderkvd="" tick_ms="" faketime=0 faketime_lib=""
net="" prefix="" hub="" bridge="" client_ns=""

set_names() {   # from $id
  net="169.254.$id"
  prefix="okvj$id-"
  hub="${prefix}hub"
  bridge="vj${id}br"
  client_ns="${prefix}c"
}
node_ns() { echo "${prefix}n$1"; }
node_addr() { echo "$net.$1:$PORT"; }
node_dir() { echo "$dir/n$1"; }
all_addrs() {
  local i out=""
  for i in $(seq 1 "$nodes"); do out+="${out:+,}$(node_addr "$i")"; done
  echo "$out"
}
initial_cluster() {
  local i out=""
  for i in $(seq 1 "$nodes"); do out+="${out:+,}$i=$(node_addr "$i")"; done
  echo "$out"
}

load_env() {   # reads DIR/hosts.env; returns 1 if there is none
  local f="$dir/hosts.env" key value
  [ -f "$f" ] || return 1
  while IFS='=' read -r key value; do
    case "$key" in
      id) id="$value" ;;
      token) token="$value" ;;
      nodes) nodes="$value" ;;
      orderkvd) orderkvd="$value" ;;
      tick_ms) tick_ms="$value" ;;
      faketime) faketime="$value" ;;
      faketime_lib) faketime_lib="$value" ;;
    esac
  done <"$f"
  if ! is_num "$id" || ! is_num "$nodes" || ! [[ "$token" =~ ^[0-9a-f]{16}$ ]] || [ -z "$orderkvd" ]; then
    die "$f is malformed (needs id, token, nodes, orderkvd); run teardown and setup again"
  fi
  set_names
}

need_env() {
  load_env || die "no $dir/hosts.env: run '$0 setup --run $dir --nodes N' first"
}

write_env() {
  local f="$dir/hosts.env"
  {
    echo "# written by jepsen/hosts.sh setup; key=value, read by the other commands (HOSTS.md)"
    echo "version=1"
    echo "id=$id"
    echo "token=$token"
    echo "prefix=$prefix"
    echo "net=$net.0/24"
    echo "nodes=$nodes"
    echo "port=$PORT"
    echo "client_addr=$net.$CLIENT_HOST"
    echo "addrs=$(all_addrs)"
    echo "orderkvd=$orderkvd"
    echo "tick_ms=$tick_ms"
    echo "faketime=$faketime"
    echo "faketime_lib=$faketime_lib"
  } >"$f.tmp"
  mv -f "$f.tmp" "$f"
}

ns_exists() { [ -e "/run/netns/$1" ]; }

# 0 if the hub namespace exists and carries this run's token (as the bridge's
# alias). A stale DIR whose id was reused by a later run fails this, so its
# commands never touch the other run's namespaces.
hub_is_ours() {
  local out
  ns_exists "$hub" || return 1
  out="$(ipq -n "$hub" link show dev "$bridge" 2>/dev/null)" || return 1
  grep -q "alias okvj:$token\$" <<<"$out"
}

# "ours", "none" (no hub), "unclaimed" (a hub whose bridge has no token:
# a setup killed before it set one; only meaningful under the setup lock,
# which every setup holds until its token is set) or "other".
hub_state() {
  local out
  if ! ns_exists "$hub"; then echo none; return; fi
  if hub_is_ours; then echo ours; return; fi
  out="$(ipq -n "$hub" link show 2>/dev/null)" || { echo other; return; }
  if grep -q "alias okvj:" <<<"$out"; then echo other; else echo unclaimed; fi
}

need_live() {
  hub_is_ours || die "run $dir is not set up: namespaces ${prefix}* are gone or belong to another run (teardown ran, or the machine rebooted); run setup again"
}

check_node() {
  if [ "$1" -lt 1 ] || [ "$1" -gt "$nodes" ]; then
    echo "$prog: no node $1: this run has nodes 1..$nodes" >&2; exit 2
  fi
}

# ---- processes ---------------------------------------------------------------------

# 0 if PID $2 is this run's orderkvd for node $1: a process (not a thread)
# whose argv[0] is the recorded orderkvd, with --node-id $1 and --data-dir
# DIR/n$1/data. Guards against stale pid files and reused PIDs; a zombie
# (empty cmdline) fails.
is_ours() {
  local n="$1" pid="$2" i want_dir args=()
  is_num "$pid" || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  is_process "$pid" || return 1
  mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [ "${#args[@]}" -gt 0 ] && [ "${args[0]}" = "$orderkvd" ] || return 1
  want_dir="$(node_dir "$n")/data"
  local id_ok=0 dir_ok=0
  for ((i = 1; i + 1 < ${#args[@]}; i++)); do
    [ "${args[i]}" = --node-id ] && [ "${args[i+1]}" = "$n" ] && id_ok=1
    [ "${args[i]}" = --data-dir ] && [ "${args[i+1]}" = "$want_dir" ] && dir_ok=1
  done
  [ "$id_ok" = 1 ] && [ "$dir_ok" = 1 ]
}

# /proc/N also answers for a thread id N of another process: require that N
# is a thread group leader, i.e. a process.
is_process() {
  local key value
  while read -r key value; do
    [ "$key" = Tgid: ] && { [ "$value" = "$1" ]; return; }
  done 2>/dev/null <"/proc/$1/status"
  return 1
}

running_pid() {   # prints node $1's PID if it runs
  local f pid
  f="$(node_dir "$1")/pid"
  [ -s "$f" ] || return 0
  pid="$(cat "$f")"
  if is_ours "$1" "$pid"; then echo "$pid"; fi
}

proc_state() { awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true; }

# A process that is exiting has already lost its command line (the kernel
# frees its memory first) but is not yet a zombie: it still holds its
# sockets and files, and a caller told it is gone could see it alive.
exiting() {   # pid
  local state="" key value cmd=""
  [ -r "/proc/$1/status" ] || return 1
  while read -r key value; do
    [ "$key" = State: ] && state="$value"
  done 2>/dev/null <"/proc/$1/status"
  [ -n "$state" ] && [ "${state:0:1}" != Z ] || return 1
  cmd="$(tr -d '\0' 2>/dev/null <"/proc/$1/cmdline")" || return 1
  [ -z "$cmd" ]
}

wait_gone() {   # node, pid, tenths of a second
  local i
  for ((i = 0; i < $3; i++)); do
    is_ours "$1" "$2" || exiting "$2" || return 0
    sleep 0.1
  done
  ! is_ours "$1" "$2" && ! exiting "$2"
}

# Serialises start/stop/kill/pause/resume/clock of one node (fd 9), so two
# callers never race on its pid file. Started nodes do not inherit fd 9
# (close_fds).
lock_node() {
  local d; d="$(node_dir "$1")"
  mkdir -p "$d"
  exec 9>"$d/lock"
  flock -w $((WAIT_TENTHS / 10)) 9 || die "node $1 is busy: another hosts.sh holds $d/lock for more than $((WAIT_TENTHS / 10)) s"
}

kill_node() {   # SIGKILL node $1 if it runs; waits until it is gone
  local n="$1" pid
  pid="$(running_pid "$n")"
  if [ -z "$pid" ]; then rm -f "$(node_dir "$n")/pid"; return 1; fi
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$n" "$pid" "$WAIT_TENTHS" || die "node $n (PID $pid) still exists $((WAIT_TENTHS / 10)) s after SIGKILL"
  rm -f "$(node_dir "$n")/pid"
  say "node $n (PID $pid) killed with SIGKILL"
}

stop_node() {   # SIGTERM node $1, wait 15 s, then SIGKILL
  local n="$1" pid
  pid="$(running_pid "$n")"
  if [ -z "$pid" ]; then rm -f "$(node_dir "$n")/pid"; return 1; fi
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true   # a paused node handles TERM only once continued
  if wait_gone "$n" "$pid" 150; then
    say "node $n (PID $pid) stopped with SIGTERM"
  else
    say "node $n (PID $pid) did not exit within 15 s of SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$n" "$pid" 50 || die "node $n (PID $pid) survived SIGKILL for 5 s"
  fi
  rm -f "$(node_dir "$n")/pid"
}

# Closes every fd above 2 (our locks, and whatever the caller leaked to us),
# so a node never holds a lock or a caller's pipe open.
close_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd="${fd##*/}"
    if is_num "$fd" && [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

# Starts node $1 in its namespace and waits (20 s at most) until it serves,
# i.e. until its --port-file appears. The chain subshell -> setsid -> ip
# netns exec -> env -> orderkvd execs in place, so $! is orderkvd's PID.
start_node() {
  local n="$1" d ns log pid i state envs=()
  [ -x "$orderkvd" ] || die "$orderkvd is not an executable; build it or pass setup --orderkvd PATH"
  d="$(node_dir "$n")"
  ns="$(node_ns "$n")"
  log="$d/log"
  mkdir -p "$d/data"
  if [ "$faketime" = 1 ]; then
    [ -f "$d/faketime" ] || echo "+0" >"$d/faketime"
    local preload="$faketime_lib" kv rest=()
    for kv in "${env_args[@]+"${env_args[@]}"}"; do
      case "$kv" in
        LD_PRELOAD=*) preload="${kv#LD_PRELOAD=}:$faketime_lib" ;;
        *) rest+=("$kv") ;;
      esac
    done
    envs=("LD_PRELOAD=$preload" "FAKETIME_TIMESTAMP_FILE=$d/faketime" "FAKETIME_NO_CACHE=1"
          "FAKETIME_DONT_FAKE_MONOTONIC=1" "FAKETIME_FORCE_MONOTONIC_FIX=0" "${rest[@]+"${rest[@]}"}")
  else
    envs=("${env_args[@]+"${env_args[@]}"}")
  fi
  local flags=(--node-id "$n" --listen "$(node_addr "$n")" --initial-cluster "$(initial_cluster)"
               --data-dir "$d/data" --port-file "$d/addr")
  [ -z "$tick_ms" ] || flags+=(--raft-tick-ms "$tick_ms")
  flags+=("${extra_args[@]+"${extra_args[@]}"}")
  rm -f "$d/addr" "$d/pid"
  echo "--- $(date -u '+%FT%TZ') $prog starting node $n in $ns: ${envs[*]} $orderkvd ${flags[*]}" >>"$log"
  ( close_fds; exec setsid ip netns exec "$ns" env "${envs[@]+"${envs[@]}"}" "$orderkvd" "${flags[@]}" ) \
    </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$d/pid"
  for ((i = 0; i < WAIT_TENTHS; i++)); do
    if [ -s "$d/addr" ] && is_ours "$n" "$pid"; then
      say "node $n (PID $pid) serving on $(node_addr "$n")"
      return 0
    fi
    state="$(proc_state "$pid")"
    if [ -z "$state" ] || [ "$state" = Z ]; then
      local rc=0
      wait "$pid" || rc=$?
      rm -f "$d/pid"
      tail -n 8 "$log" >&2
      die "node $n exited (status $rc) during start-up; see $log"
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true   # our own child: safe to signal
  rm -f "$d/pid"
  tail -n 8 "$log" >&2
  die "node $n did not serve within $((WAIT_TENTHS / 10)) s; killed it; see $log"
}

# Kills every process in the given namespaces, by PID, and waits (20 s at
# most) until none is left. Never this script or its ancestors (someone may
# run hosts.sh through `exec`).
kill_ns_procs() {
  local ns pid i spared=" " p=$$ pids
  while is_num "$p" && [ "$p" -gt 1 ]; do
    spared+="$p "
    p="$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null || true)"
  done
  for ((i = 0; i < WAIT_TENTHS; i++)); do
    pids=()
    for ns in "$@"; do
      ns_exists "$ns" || continue
      for pid in $(ipq netns pids "$ns" 2>/dev/null || true); do
        case "$spared" in *" $pid "*) continue ;; esac
        pids+=("$pid")
      done
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    [ "$i" -gt 0 ] || say "killing ${#pids[@]} process(es) in ${prefix:-okvj}* namespaces: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.1
  done
  die "processes still alive in namespaces $* after $((WAIT_TENTHS / 10)) s: ${pids[*]}"
}

# Deletes the namespaces of run $id: processes first, node and client
# namespaces next, the hub last (it carries the token, so a half-done
# teardown can be finished by running it again). Veths and the bridge go with
# their namespaces.
remove_namespaces() {
  local list=() ns
  for ns in /run/netns/"$prefix"*; do
    [ -e "$ns" ] && list+=("${ns##*/}")
  done
  [ "${#list[@]}" -gt 0 ] || return 0
  kill_ns_procs "${list[@]}"
  for ns in "${list[@]}"; do
    [ "$ns" = "$hub" ] || ipq netns del "$ns" 2>/dev/null || ! ns_exists "$ns" || die "cannot delete namespace $ns"
  done
  if ns_exists "$hub"; then ipq netns del "$hub" || die "cannot delete namespace $hub"; fi
  say "deleted ${#list[@]} namespace(s) ${prefix}*"
}

# ---- setup ---------------------------------------------------------------------------------

find_faketime_lib() {
  local f
  for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 /usr/lib/*/faketime/libfaketime.so.1 \
           /usr/local/lib/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

used_ids() {   # run ids of every okvj namespace on the machine
  local ns name
  for ns in /run/netns/okvj*; do
    [ -e "$ns" ] || continue
    name="${ns##*/}"
    [[ "$name" =~ ^okvj([0-9]+)- ]] && echo "${BASH_REMATCH[1]}"
  done | sort -un
}

setup_done=0
setup_exit() {
  local rc=$?
  set +e
  if [ "$setup_done" = 0 ] && [ -n "$id" ]; then
    # hosts.env stays: it names no live namespace now (every command
    # refuses it), and a later setup of DIR gets the same id back.
    say "setup failed; removing what it created (${prefix}*)"
    remove_namespaces
  fi
  exit "$rc"
}

link_ns() {   # namespace, host number, veth name in it: veth to the bridge, address, up
  local ns="$1" host="$2" veth="$3"
  ipq netns add "$ns" || die "cannot create namespace $ns"
  ipq -n "$hub" link add "${veth}b" type veth peer name "$veth" netns "$ns" || die "cannot create veth $veth"
  ipq -n "$hub" link set "${veth}b" master "$bridge" up || die "cannot attach ${veth}b to $bridge"
  ipq -n "$ns" link set lo up || die "cannot bring lo up in $ns"
  ipq -n "$ns" addr add "$net.$host/24" dev "$veth" || die "cannot address $veth in $ns"
  ipq -n "$ns" link set "$veth" up || die "cannot bring $veth up in $ns"
}

cmd_setup() {
  local prev_id="" prev_nodes="" has_data=0 i
  if load_env; then
    hub_is_ours && die "run $dir is already set up (namespaces ${prefix}*); run teardown first"
    prev_id="$id"; prev_nodes="$nodes"
  fi
  for i in "$dir"/n*/data; do
    if [ -d "$i" ] && [ -n "$(ls -A "$i")" ]; then has_data=1; fi
  done
  if [ "$has_data" = 1 ]; then
    [ -n "$prev_id" ] || die "$dir holds node data dirs but no hosts.env; use an empty run dir"
    [ "$prev_nodes" = "$opt_nodes" ] || die "$dir holds data of a $prev_nodes-node cluster; --nodes $opt_nodes does not match (use an empty run dir)"
  fi
  nodes="$opt_nodes"
  orderkvd="${opt_orderkvd:-$repo/build/server/orderkvd}"
  [ -x "$orderkvd" ] || die "$orderkvd is not an executable; build it (cmake --build build --target orderkvd) or pass --orderkvd PATH"
  orderkvd="$(cd "$(dirname "$orderkvd")" && pwd -P)/$(basename "$orderkvd")"
  tick_ms="$opt_tick"
  faketime="$opt_faketime"
  faketime_lib=""
  if [ "$faketime" = 1 ]; then
    faketime_lib="$(find_faketime_lib)" || die "--faketime needs libfaketime: apt-get install -y faketime"
  fi
  command -v od >/dev/null || die "od not found (coreutils)"
  token="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

  # Choose the id and claim it by creating the hub, under the machine-wide
  # lock, so concurrent setups never pick the same one. A run dir set up
  # before gets its old id back when free: its data dirs store addresses.
  exec 8>"$LOCK_FILE"
  flock -w $((WAIT_TENTHS / 10)) 8 || die "$LOCK_FILE is held by another setup for more than $((WAIT_TENTHS / 10)) s"
  local used start x
  used=" $(used_ids | tr '\n' ' ') "
  id=""
  if [ -n "$prev_id" ] && [[ "$used" != *" $prev_id "* ]]; then
    id="$prev_id"
  elif [ "$has_data" = 1 ]; then
    die "$dir's data dirs store addresses in 169.254.$prev_id.0/24, whose id $prev_id is used by another run; tear that down or use an empty run dir"
  else
    start=$((RANDOM % 254))
    for ((i = 0; i < 254; i++)); do
      x=$(((start + i) % 254 + 1))
      if [[ "$used" != *" $x "* ]]; then id="$x"; break; fi
    done
    [ -n "$id" ] || die "all 254 run ids are in use (ip netns list | grep okvj); run '$0 cleanup' if they are leftovers"
  fi
  set_names
  trap setup_exit EXIT
  trap 'exit 1' INT TERM HUP
  write_env   # first: a setup killed from here on can be torn down
  ipq netns add "$hub" || die "cannot create namespace $hub"
  ipq -n "$hub" link set lo up || die "cannot bring lo up in $hub"
  ipq -n "$hub" link add "$bridge" type bridge forward_delay 0 || die "cannot create bridge $bridge in $hub"
  ipq -n "$hub" link set "$bridge" alias "okvj:$token" up || die "cannot bring $bridge up in $hub"
  flock -u 8
  exec 8>&-

  for i in $(seq 1 "$nodes"); do
    mkdir -p "$(node_dir "$i")"
    rm -f "$(node_dir "$i")/pid" "$(node_dir "$i")/addr"
    [ "$faketime" = 0 ] || echo "+0" >"$(node_dir "$i")/faketime"
    link_ns "$(node_ns "$i")" "$i" "vj${id}n$i"
  done
  link_ns "$client_ns" "$CLIENT_HOST" "vj${id}c"
  if [ -n "${OKVJ_TEST_FAIL_SETUP:-}" ]; then die "failing on purpose (OKVJ_TEST_FAIL_SETUP is set)"; fi
  setup_done=1
  trap - EXIT INT TERM HUP
  say "run $dir: $nodes node(s) in ${prefix}n1..n$nodes, client ${client_ns} at $net.$CLIENT_HOST, bridge $bridge in $hub${tick_ms:+, tick $tick_ms ms}$([ "$faketime" = 1 ] && echo ", faketime on")"
  all_addrs
}

# ---- the other commands -------------------------------------------------------------------

cmd_start() {   # node
  check_node "$1"
  need_live
  lock_node "$1"
  if [ -n "$(running_pid "$1")" ]; then say "node $1 is running; stopping it first"; stop_node "$1" || true; fi
  start_node "$1"
}

cmd_signal() {   # command, node
  local n="$2" pid i
  check_node "$n"
  lock_node "$n"
  case "$1" in
    kill) kill_node "$n" || say "node $n is not running" ;;
    stop) stop_node "$n" || say "node $n is not running" ;;
    pause|resume)
      pid="$(running_pid "$n")"
      [ -n "$pid" ] || die "node $n is not running"
      if [ "$1" = pause ]; then kill -STOP "$pid"; else kill -CONT "$pid"; fi
      # Return only once the kernel shows the new state.
      for ((i = 0; i < WAIT_TENTHS; i++)); do
        case "$1:$(proc_state "$pid")" in
          pause:T|resume:[!T]*) say "node $n (PID $pid) ${1}d"; return 0 ;;
        esac
        sleep 0.1
      done
      die "node $n (PID $pid) did not reach the ${1}d state within $((WAIT_TENTHS / 10)) s" ;;
  esac
}

parse_pairs() {   # prints "a b" lines
  local p a b
  local IFS=','
  for p in ${opt_pairs// /}; do
    [[ "$p" =~ ^([0-9]+)-([0-9]+)$ ]] || bad "--pairs takes I-J pairs separated by commas, got '$p'"
    a="${BASH_REMATCH[1]}"; b="${BASH_REMATCH[2]}"
    [ "$a" != "$b" ] || bad "--pairs: $p cuts a node from itself"
    check_node "$a"; check_node "$b"
    echo "$a $b"
  done
}

# One nft transaction per node: (re)declares the table with its set and two
# chains, rewrites the two drop rules (so repeating it never duplicates
# them) and adds the peers. Idempotent and atomic, so concurrent cuts are safe.
nft_cut() {   # node, peer addresses...
  local ns n="$1"; shift
  ns="$(node_ns "$n")"
  local elems; elems="$(IFS=','; echo "$*")"
  nsq "$ns" nft -f - <<EOF || die "nft failed in $ns"
add table inet okvj
add set inet okvj peers { type ipv4_addr; }
add chain inet okvj input { type filter hook input priority filter; policy accept; }
add chain inet okvj output { type filter hook output priority filter; policy accept; }
flush chain inet okvj input
flush chain inet okvj output
add rule inet okvj input ip saddr @peers drop
add rule inet okvj output ip daddr @peers drop
add element inet okvj peers { $elems }
EOF
}

cmd_cut() {
  local pairs a b i
  pairs="$(parse_pairs)"
  [ -n "$pairs" ] || bad "--pairs is empty"
  need_live
  declare -A peers=()
  while read -r a b; do
    peers[$a]+=" $net.$b"
    peers[$b]+=" $net.$a"
  done <<<"$pairs"
  for i in "${!peers[@]}"; do
    # shellcheck disable=SC2086 # word splitting of the address list is wanted
    nft_cut "$i" ${peers[$i]}
  done
  say "cut $(tr '\n ' ',-' <<<"$pairs" | sed 's/,$//'); active: $(cuts_summary)"
}

cuts_of() {   # node: the nodes it is cut from, "2,3" or "-"
  local out
  out="$(nsq "$(node_ns "$1")" nft list set inet okvj peers 2>/dev/null |
         grep -oE "169\.254\.$id\.[0-9]+" | sed "s/^169\.254\.$id\.//" | sort -n | paste -sd, -)" || true
  echo "${out:--}"
}

cuts_summary() {
  local i c out=""
  for i in $(seq 1 "$nodes"); do
    c="$(cuts_of "$i")"
    [ "$c" = - ] || out+="${out:+ }$i:$c"
  done
  echo "${out:-none}"
}

cmd_heal() {
  need_live
  local i
  for i in $(seq 1 "$nodes"); do
    printf 'add table inet okvj\ndelete table inet okvj\n' | nsq "$(node_ns "$i")" nft -f - ||
      die "nft failed in $(node_ns "$i")"
  done
  say "healed: no cuts"
}

cmd_clock() {
  local n="$opt_node" d off pid
  check_node "$n"
  [ "$faketime" = 1 ] || die "clock needs a run set up with --faketime (nodes are not running under libfaketime)"
  lock_node "$n"
  d="$(node_dir "$n")"
  off="$opt_offset"
  case "$off" in [+-]*) ;; *) off="+$off" ;; esac
  # libfaketime rereads the file on every clock call (FAKETIME_NO_CACHE);
  # rename makes the change atomic, so it never reads half a file.
  echo "$off" >"$d/faketime.tmp"
  mv -f "$d/faketime.tmp" "$d/faketime"
  pid="$(running_pid "$n")"
  if [ -n "$pid" ]; then
    say "node $n wall clock is now real time $off s (PID $pid sees it at once)"
  else
    say "node $n wall clock is now real time $off s (from its next start)"
  fi
}

cmd_exec() {
  local ns
  need_live
  if [ "$opt_client" = 1 ]; then ns="$client_ns"; else check_node "$opt_node"; ns="$(node_ns "$opt_node")"; fi
  exec ip netns exec "$ns" "${exec_argv[@]}"
}

cmd_status() {
  local i pid state clock live=1
  hub_is_ours || { live=0; say "run $dir is not set up (namespaces ${prefix}* are gone)"; }
  for i in $(seq 1 "$nodes"); do
    pid="$(running_pid "$i")"
    if [ -z "$pid" ]; then state=down
    elif [ "$(proc_state "$pid")" = T ]; then state=paused
    else state=up
    fi
    clock=-
    if [ "$faketime" = 1 ] && [ -s "$(node_dir "$i")/faketime" ]; then clock="$(cat "$(node_dir "$i")/faketime")"; fi
    echo "node$i $(node_addr "$i") $state pid=${pid:--} cuts=$([ "$live" = 1 ] && cuts_of "$i" || echo -) clock=$clock"
  done
  say "client namespace $client_ns at $net.$CLIENT_HOST; addresses $(all_addrs)"
}

cmd_teardown() {
  load_env || { say "no $dir/hosts.env: nothing to tear down"; return 0; }
  local i
  for i in $(seq 1 "$nodes"); do kill_node "$i" || true; rm -f "$(node_dir "$i")/addr"; done
  exec 8>"$LOCK_FILE"
  flock -w $((WAIT_TENTHS / 10)) 8 || die "$LOCK_FILE is held by a setup for more than $((WAIT_TENTHS / 10)) s"
  if [ "$(hub_state)" = other ]; then
    say "namespaces ${prefix}* belong to another run now; left them alone"
  else
    remove_namespaces
  fi
  exec 8>&-
  say "run $dir torn down; logs and data dirs kept"
}

cmd_cleanup() {
  exec 8>"$LOCK_FILE"
  flock -w $((WAIT_TENTHS / 10)) 8 || die "$LOCK_FILE is held by a setup for more than $((WAIT_TENTHS / 10)) s"
  local ids runs=0
  if [ -n "$opt_id" ]; then ids="$(used_ids | grep -x "$opt_id" || true)"; else ids="$(used_ids)"; fi
  for id in $ids; do
    set_names
    remove_namespaces
    runs=$((runs + 1))
  done
  say "cleaned up $runs run(s)"
}

case "$cmd" in
  setup) cmd_setup ;;
  start) need_env; cmd_start "$opt_node" ;;
  start-all)
    need_env; need_live
    for n in $(seq 1 "$nodes"); do cmd_start "$n"; exec 9>&-; done ;;
  kill|stop|pause|resume) need_env; cmd_signal "$cmd" "$opt_node" ;;
  cut) need_env; cmd_cut ;;
  heal) need_env; cmd_heal ;;
  clock) need_env; cmd_clock ;;
  exec) need_env; cmd_exec ;;
  status) need_env; cmd_status ;;
  teardown) cmd_teardown ;;
  cleanup) cmd_cleanup ;;
esac

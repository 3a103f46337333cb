#!/usr/bin/env bash
# cluster.sh — a local orderkv cluster of 3 (or 5) orderkvd processes on
# 127.0.0.1, for development and fault drills (docs/cluster.md).
#
#   scripts/cluster.sh up            start every node not running; wait until
#                                    every partition takes writes; print the
#                                    client address list (the only stdout line)
#   scripts/cluster.sh down          SIGTERM every node, wait, SIGKILL stragglers
#   scripts/cluster.sh status        each node: up / stopped / down, with PID
#   scripts/cluster.sh kill N        kill -9 node N (a crash)
#   scripts/cluster.sh restart N     start node N again with the same flags
#                                    (SIGTERMs it first if it is running)
#   scripts/cluster.sh stop N        SIGSTOP node N (a hung or partitioned node)
#   scripts/cluster.sh cont N        SIGCONT node N
#   scripts/cluster.sh restore BACKUP  make DIR a new cluster from a backup
#                                    (`orderkv -e 'backup BACKUP'`): each
#                                    node's data dir by `orderkv restore`;
#                                    then `up` starts it. DIR must hold no
#                                    cluster yet
#
# options (anywhere after the command):
#   --nodes 3|5        cluster size (default 3; fixed when DIR is first used)
#   --dir DIR          where everything lives (default ./data)
#   --base-port P      node I listens on P+I-1 (default 7401; fixed with --nodes)
#   --build DIR        the CMake build dir (default: build/ of this checkout)
#
# Layout: DIR/nodeI (data dir), DIR/nodeI.log, DIR/nodeI.pid, DIR/nodeI.addr
# (orderkvd's --port-file), DIR/cluster.conf (nodes and base port, written by
# the first `up`, so later commands need no flags). Node I runs
#   orderkvd --node-id I --listen 127.0.0.1:PORT_I --initial-cluster
#            1=127.0.0.1:PORT_1,... --data-dir DIR/nodeI --port-file DIR/nodeI.addr
# in its own session (setsid), so ^C in the terminal does not reach it.
# Signals go only to the PIDs in the pid files, after checking that
# /proc/PID/cmdline is orderkvd with this node's --data-dir.
#
# Environment: ORDERKV_UP_WAIT_S (default 30) bounds `up`'s wait;
# ORDERKVD_EXTRA_FLAGS is appended to every orderkvd command line (e.g.
# "--raft-tick-ms 50 --log-level debug").
#
# Exit status: 0 done (also when there was nothing to do), 1 failure,
# 2 bad command line.
set -euo pipefail

prog="cluster.sh"
die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }
usage() {
  sed -n '4,26p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

repo="$(cd "$(dirname "$0")/.." && pwd)"
cmd="${1:-}"
[ -n "$cmd" ] || usage
shift
target=""
case "$cmd" in
  up|down|status) ;;
  kill|restart|stop|cont)
    [ $# -ge 1 ] || { echo "$prog: $cmd needs a node number" >&2; exit 2; }
    target="$1"; shift ;;
  restore)
    [ $# -ge 1 ] || { echo "$prog: restore needs the backup's directory" >&2; exit 2; }
    target="$1"; shift ;;
  -h|--help|help) usage ;;
  *) echo "$prog: unknown command '$cmd'" >&2; usage ;;
esac

opt_nodes="" opt_port="" dir="./data" build="$repo/build"
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes|--dir|--base-port|--build)
      [ $# -ge 2 ] || { echo "$prog: $1 needs a value" >&2; exit 2; }
      case "$1" in
        --nodes) opt_nodes="$2" ;;
        --dir) dir="$2" ;;
        --base-port) opt_port="$2" ;;
        --build) build="$2" ;;
      esac
      shift 2 ;;
    --nodes=*) opt_nodes="${1#*=}"; shift ;;
    --dir=*) dir="${1#*=}"; shift ;;
    --base-port=*) opt_port="${1#*=}"; shift ;;
    --build=*) build="${1#*=}"; shift ;;
    *) echo "$prog: unexpected argument '$1'" >&2; exit 2 ;;
  esac
done

is_num() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }
if [ -n "$opt_nodes" ] && [ "$opt_nodes" != 3 ] && [ "$opt_nodes" != 5 ]; then
  echo "$prog: --nodes must be 3 or 5, got '$opt_nodes'" >&2; exit 2
fi
if [ -n "$opt_port" ] && { ! is_num "$opt_port" || [ "$opt_port" -lt 1024 ] || [ "$opt_port" -gt 65530 ]; }; then
  echo "$prog: --base-port must be a number in 1024..65530, got '$opt_port'" >&2; exit 2
fi
[ -n "$dir" ] || { echo "$prog: --dir is empty" >&2; exit 2; }

orderkvd="$build/server/orderkvd"
shell_bin="$build/client/shell/orderkv"

# ---- the cluster's shape: flags, else DIR/cluster.conf, else defaults ------

nodes="" base_port=""
load_conf() {
  local conf="$dir/cluster.conf" key value
  [ -f "$conf" ] || return 1
  while IFS='=' read -r key value; do
    case "$key" in
      nodes) nodes="$value" ;;
      base_port) base_port="$value" ;;
    esac
  done <"$conf"
  if ! is_num "$nodes" || ! is_num "$base_port"; then
    die "$conf is malformed; expected nodes=N and base_port=P lines"
  fi
}

resolve_shape() {   # $1 = 1 when this command may create the cluster
  if load_conf; then
    if [ -n "$opt_nodes" ] && [ "$opt_nodes" != "$nodes" ]; then
      die "$dir holds a $nodes-node cluster; --nodes $opt_nodes does not match (the membership is static: run down and remove $dir to start over)"
    fi
    if [ -n "$opt_port" ] && [ "$opt_port" != "$base_port" ]; then
      die "$dir holds a cluster on base port $base_port; --base-port $opt_port does not match (addresses are stored in every data dir)"
    fi
    return 0
  fi
  [ "$1" = 1 ] || die "no cluster in $dir (no $dir/cluster.conf); start one with: $0 up --dir $dir"
  nodes="${opt_nodes:-3}"
  base_port="${opt_port:-7401}"
  mkdir -p "$dir"
  printf 'nodes=%s\nbase_port=%s\n' "$nodes" "$base_port" >"$dir/cluster.conf"
}

port_of() { echo $((base_port + $1 - 1)); }
addr_of() { echo "127.0.0.1:$(port_of "$1")"; }
all_addrs() {
  local i out=""
  for i in $(seq 1 "$nodes"); do out+="${out:+,}$(addr_of "$i")"; done
  echo "$out"
}
initial_cluster() {
  local i out=""
  for i in $(seq 1 "$nodes"); do out+="${out:+,}$i=$(addr_of "$i")"; done
  echo "$out"
}

# ---- processes ---------------------------------------------------------------

pid_of() { local f="$dir/node$1.pid"; if [ -s "$f" ]; then cat "$f"; fi; }

# 0 if PID $2 is our orderkvd for node $1 (guards against a reused PID and
# against signalling someone else's process).
is_ours() {
  local n="$1" pid="$2" args
  is_num "$pid" || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  args="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [ -n "$args" ] || return 1   # a zombie has an empty cmdline
  [[ "$(head -n1 <<<"$args")" == */orderkvd ]] || return 1
  grep -qxF -- "--data-dir" <<<"$args" || return 1
  grep -qxF -- "$dir/node$n" <<<"$args" || return 1
  grep -qxF -- "--node-id" <<<"$args" || return 1
}

running_pid() {   # prints the PID of node $1 if it is running
  local pid; pid="$(pid_of "$1")"
  if [ -n "$pid" ] && is_ours "$1" "$pid"; then echo "$pid"; fi
}

proc_state() { awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true; }

check_node() {
  if ! is_num "$1" || [ "$1" -lt 1 ] || [ "$1" -gt "$nodes" ]; then
    die "no node '$1': nodes are 1..$nodes"
  fi
}

# Starts node $1 in the background and waits (bounded) until it serves.
start_node() {
  local n="$1" port log pid
  [ -x "$orderkvd" ] || die "$orderkvd not found or not executable; build first (cmake --build build) or pass --build DIR"
  port="$(port_of "$n")"
  log="$dir/node$n.log"
  rm -f "$dir/node$n.addr" "$dir/node$n.pid"
  local extra=()
  if [ -n "${ORDERKVD_EXTRA_FLAGS:-}" ]; then read -r -a extra <<<"$ORDERKVD_EXTRA_FLAGS"; fi
  echo "--- $(date '+%F %T') $prog starting node $n" >>"$log"
  setsid "$orderkvd" --node-id "$n" --listen "127.0.0.1:$port" \
    --initial-cluster "$(initial_cluster)" --data-dir "$dir/node$n" \
    --port-file "$dir/node$n.addr" "${extra[@]}" </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/node$n.pid"
  local i
  for i in $(seq 1 150); do   # 15 s
    [ -s "$dir/node$n.addr" ] && { say "node $n (PID $pid) serving on 127.0.0.1:$port"; return 0; }
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      rm -f "$dir/node$n.pid"
      tail -n 5 "$log" >&2
      die "node $n exited during start-up; see $log"
    fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/node$n.pid"
  die "node $n did not start serving within 15 s; killed it; see $log"
}

# SIGTERMs node $1 and waits (bounded) for it to exit; SIGKILL as a last resort.
stop_node() {
  local n="$1" pid
  pid="$(running_pid "$n")"
  [ -n "$pid" ] || { rm -f "$dir/node$n.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true   # a SIGSTOPped node handles TERM only once continued
  wait_gone "$n" "$pid" 150 || {
    say "node $n (PID $pid) did not exit within 15 s of SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$n" "$pid" 50 || die "node $n (PID $pid) survived SIGKILL"
  }
  rm -f "$dir/node$n.pid"
}

wait_gone() {   # node, pid, tenths of a second
  local i
  for i in $(seq 1 "$3"); do
    is_ours "$1" "$2" || return 0
    sleep 0.1
  done
  ! is_ours "$1" "$2"
}

# ---- readiness -----------------------------------------------------------------

# One key per partition: with 8 partitions per table (orderkvd's default),
# okv-up-probe-0..7 hash (FNV-1a of the key, mod 8) to 8 distinct
# partitions. Deleting a missing key is a write that changes nothing, so it
# succeeds only once that partition has a leader with a quorum.
probe_cmds() {
  local t i out=""
  for t in orders payments accounts stock; do
    for i in 0 1 2 3 4 5 6 7; do out+="${out:+; }del $t okv-up-probe-$i"; done
  done
  echo "$out"
}

wait_ready() {
  [ -x "$shell_bin" ] || die "$shell_bin not found; build it (cmake --build build --target orderkv_shell)"
  local wait_s="${ORDERKV_UP_WAIT_S:-30}" end left addrs cmds out=""
  is_num "$wait_s" || die "ORDERKV_UP_WAIT_S must be a number of seconds"
  addrs="$(all_addrs)"
  cmds="$(probe_cmds)"
  end=$(($(date +%s) + wait_s))
  while :; do
    left=$((end - $(date +%s)))
    if [ "$left" -le 0 ]; then
      grep '^error' <<<"$out" | sort | uniq -c | head -n 5 >&2 || true
      die "not every partition accepted a write within ${wait_s} s; logs in $dir/node*.log"
    fi
    # Each call may take up to --timeout; `timeout` bounds the whole attempt.
    if out="$(timeout "$left" "$shell_bin" --addr "$addrs" --timeout 1000 -e "$cmds" 2>&1)"; then
      return 0
    fi
    sleep 0.3
  done
}

# ---- commands --------------------------------------------------------------------

cmd_up() {
  resolve_shape 1
  dir="$(cd "$dir" && pwd)"
  local n pid started=0
  for n in $(seq 1 "$nodes"); do
    pid="$(running_pid "$n")"
    if [ -n "$pid" ]; then
      [ "$(proc_state "$pid")" = T ] && say "node $n (PID $pid) is stopped (SIGSTOP); run: $0 cont $n --dir $dir"
      continue
    fi
    start_node "$n"
    started=$((started + 1))
  done
  [ "$started" -gt 0 ] || say "all $nodes nodes were already running"
  wait_ready
  say "cluster of $nodes nodes ready; data and logs in $dir"
  all_addrs
}

# A new cluster from a backup: every node's data dir is written by
# `orderkv restore` (which checks every file's SHA-256 first and leaves
# nothing behind on an error), for this DIR's map of nodes.
cmd_restore() {
  local backup="$target" n shell="$build/client/shell/orderkv"
  [ -f "$backup/MANIFEST" ] || die "$backup holds no backup (no MANIFEST)"
  [ -x "$shell" ] || die "no $shell: build first (scripts/build.sh)"
  if [ -f "$dir/cluster.conf" ]; then
    die "$dir already holds a cluster; restore into a new --dir"
  fi
  resolve_shape 1
  dir="$(cd "$dir" && pwd)"
  for n in $(seq 1 "$nodes"); do
    [ ! -e "$dir/node$n" ] || die "$dir/node$n exists; restore into a new --dir"
  done
  for n in $(seq 1 "$nodes"); do
    if ! "$shell" restore "$backup" --node-id "$n" --initial-cluster "$(initial_cluster)" \
         --data-dir "$dir/node$n" >&2; then
      local k
      for k in $(seq 1 "$n"); do rm -rf "${dir:?}/node$k"; done
      rm -f "$dir/cluster.conf"
      die "restoring node $n failed (above); nothing was kept and nothing started"
    fi
  done
  say "restored $backup into $dir ($nodes nodes); start it with: $0 up --dir $dir"
}

cmd_down() {
  resolve_shape 0
  dir="$(cd "$dir" && pwd)"
  local n pid pids=() count=0
  # TERM everyone first so they shut down in parallel, then wait for each.
  for n in $(seq 1 "$nodes"); do
    pid="$(running_pid "$n")"
    if [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      kill -CONT "$pid" 2>/dev/null || true
      pids+=("$n")
    else
      rm -f "$dir/node$n.pid"
    fi
  done
  for n in "${pids[@]+"${pids[@]}"}"; do stop_node "$n"; count=$((count + 1)); done
  say "stopped $count node(s); data left in $dir"
}

cmd_status() {
  resolve_shape 0
  dir="$(cd "$dir" && pwd)"
  local n pid up=0
  for n in $(seq 1 "$nodes"); do
    pid="$(running_pid "$n")"
    if [ -z "$pid" ]; then
      echo "node$n $(addr_of "$n") down"
    elif [ "$(proc_state "$pid")" = T ]; then
      echo "node$n $(addr_of "$n") stopped PID $pid (SIGSTOP; cont $n resumes it)"
    else
      echo "node$n $(addr_of "$n") up PID $pid"
      up=$((up + 1))
    fi
  done
  say "$up of $nodes nodes up; client addresses: $(all_addrs)"
  say "Raft status of every partition: $shell_bin --addr $(all_addrs) -e 'cluster status'"
}

cmd_signal() {   # command, node
  resolve_shape 0
  dir="$(cd "$dir" && pwd)"
  check_node "$2"
  local n="$2" pid
  pid="$(running_pid "$n")"
  case "$1" in
    kill)
      [ -n "$pid" ] || { say "node $n is not running"; return 0; }
      kill -KILL "$pid"
      wait_gone "$n" "$pid" 50 || die "node $n (PID $pid) still exists 5 s after SIGKILL"
      rm -f "$dir/node$n.pid"
      say "node $n (PID $pid) killed with SIGKILL" ;;
    stop)
      [ -n "$pid" ] || die "node $n is not running"
      kill -STOP "$pid"
      say "node $n (PID $pid) stopped (SIGSTOP)" ;;
    cont)
      [ -n "$pid" ] || die "node $n is not running"
      kill -CONT "$pid"
      say "node $n (PID $pid) continued (SIGCONT)" ;;
    restart)
      if [ -n "$pid" ]; then say "node $n (PID $pid) is running; stopping it first"; stop_node "$n"; fi
      start_node "$n" ;;
  esac
}

case "$cmd" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill|stop|cont|restart) cmd_signal "$cmd" "$target" ;;
  restore) cmd_restore ;;
esac

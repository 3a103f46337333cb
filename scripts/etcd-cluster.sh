#!/usr/bin/env bash
# etcd-cluster.sh — a local etcd cluster on loopback to benchmark orderkv
# against (docs/bench.md). Needs Debian's etcd-server and etcd-client.
#
#   scripts/etcd-cluster.sh up [N] DIR     start N members (default 3; 1 works)
#   scripts/etcd-cluster.sh status DIR     processes and etcdctl endpoint status
#   scripts/etcd-cluster.sh down DIR       stop the members by PID, keep DIR
#
# Members m1..mN listen on 127.0.0.1 only. Ports are taken from
# ETCD_BASE_PORT (default 23790) upward, skipping any port already in use:
# each member gets a client port and a peer port. Everything lives under DIR:
# DIR/mI.etcd (data), DIR/mI.log, DIR/members (name client-url peer-url pid),
# DIR/endpoints. etcd runs with its default settings, so every write batch is
# fsynced to its WAL before it is acknowledged, as orderkv does.
# `up` waits (ETCD_WAIT_S, default 30 s) until every member is healthy and
# prints the client endpoints, comma-separated, on stdout (the only stdout
# line, so `addr=$(scripts/etcd-cluster.sh up 3 DIR)` works).
set -euo pipefail

die() { echo "etcd-cluster.sh: $*" >&2; exit 1; }
usage() { echo "usage: $0 up|down|status [N] DIR   (N members, default 3)" >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd="$1"
if [ $# -eq 3 ]; then n="$2"; dir="$3"   # N is only used by up
elif [ $# -eq 2 ]; then n=3; dir="$2"
else usage; fi
case "$n" in ''|*[!0-9]*) die "N must be a number, got '$n'";; esac
if [ "$n" -lt 1 ] || [ "$n" -gt 9 ]; then die "N must be 1..9"; fi
export ETCDCTL_API=3

port_free() { [ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]; }

# PID of a member still running from DIR (guards against a reused PID).
alive() {
  local pid="$1" name="$2"
  [ -r "/proc/$pid/cmdline" ] || return 1
  local args; args="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$args" == *"--name $name --data-dir $dir/$name.etcd "* ]]
}

endpoints() { awk '{ sub("http://", "", $2); printf "%s%s", (NR > 1 ? "," : ""), $2 } END { print "" }' "$dir/members"; }

up() {
  command -v etcd >/dev/null || die "etcd not found: apt-get install -y etcd-server etcd-client"
  command -v etcdctl >/dev/null || die "etcdctl not found: apt-get install -y etcd-client"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -s "$dir/members" ]; then
    while read -r name _ _ pid; do
      alive "$pid" "$name" && die "$dir already has a running cluster ($name, PID $pid); run down first"
    done <"$dir/members"
  fi
  rm -rf "$dir"/m[0-9].etcd "$dir"/m[0-9].log "$dir/members" "$dir/endpoints"
  local port="${ETCD_BASE_PORT:-23790}" i cluster="" clients=() peers=()
  for i in $(seq 1 "$n"); do
    while ! port_free "$port"; do port=$((port + 1)); done
    clients+=("$port"); port=$((port + 1))
    while ! port_free "$port"; do port=$((port + 1)); done
    peers+=("$port"); port=$((port + 1))
    cluster+="${cluster:+,}m$i=http://127.0.0.1:${peers[$((i - 1))]}"
  done
  local token="okv-bench-$$-$RANDOM"
  : >"$dir/members"
  for i in $(seq 1 "$n"); do
    local c="http://127.0.0.1:${clients[$((i - 1))]}" p="http://127.0.0.1:${peers[$((i - 1))]}"
    # setsid: the members outlive this script and ignore the terminal's ^C.
    setsid etcd --name "m$i" --data-dir "$dir/m$i.etcd" \
      --listen-client-urls "$c" --advertise-client-urls "$c" \
      --listen-peer-urls "$p" --initial-advertise-peer-urls "$p" \
      --initial-cluster "$cluster" --initial-cluster-token "$token" \
      --initial-cluster-state new --logger zap --log-outputs stderr \
      </dev/null >"$dir/m$i.log" 2>&1 &
    echo "m$i $c $p $!" >>"$dir/members"
  done
  endpoints >"$dir/endpoints"
  local eps; eps="$(cat "$dir/endpoints")"
  local wait_s="${ETCD_WAIT_S:-30}" t=0
  until etcdctl --endpoints="$eps" --command-timeout=2s endpoint health >/dev/null 2>&1; do
    while read -r name _ _ pid; do
      alive "$pid" "$name" || { tail -5 "$dir/$name.log" >&2; down; die "$name exited; see $dir/$name.log"; }
    done <"$dir/members"
    t=$((t + 1))
    if [ "$t" -gt "$((wait_s * 2))" ]; then
      etcdctl --endpoints="$eps" --command-timeout=2s endpoint health >&2 || true
      down
      die "cluster not healthy within ${wait_s}s; logs in $dir"
    fi
    sleep 0.5
  done
  echo "$eps"
}

down() {
  [ -s "$dir/members" ] || { echo "etcd-cluster.sh: no cluster recorded in $dir" >&2; return 0; }
  local name pid pids=()
  while read -r name _ _ pid; do
    if alive "$pid" "$name"; then kill -TERM "$pid"; pids+=("$pid:$name"); fi
  done <"$dir/members"
  for entry in "${pids[@]}"; do
    pid="${entry%%:*}"; name="${entry#*:}"
    for _ in $(seq 1 50); do alive "$pid" "$name" || break; sleep 0.2; done
    if alive "$pid" "$name"; then echo "etcd-cluster.sh: $name (PID $pid) ignored TERM; KILL" >&2; kill -KILL "$pid"; fi
  done
  rm -f "$dir/members" "$dir/endpoints"
  echo "etcd-cluster.sh: stopped ${#pids[@]} member(s); data left in $dir" >&2
}

status() {
  [ -s "$dir/members" ] || die "no cluster recorded in $dir"
  local name c pid
  while read -r name c _ pid; do
    if alive "$pid" "$name"; then echo "$name $c PID $pid running"; else echo "$name $c PID $pid NOT running"; fi
  done <"$dir/members"
  etcdctl --endpoints="$(cat "$dir/endpoints")" --command-timeout=2s endpoint status -w table || true
}

case "$cmd" in
  up) up ;;
  down) dir="$(cd "$dir" 2>/dev/null && pwd)" || die "no such directory"; down ;;
  status) dir="$(cd "$dir" 2>/dev/null && pwd)" || die "no such directory"; status ;;
  *) usage ;;
esac

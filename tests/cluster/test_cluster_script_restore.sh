#!/usr/bin/env bash
# test_cluster_script_restore.sh BUILD — `scripts/cluster.sh restore`: a
# local cluster backed up while it runs becomes a second cluster (other
# ports) holding every acknowledged write; restoring into a dir that holds
# a cluster, or from a damaged backup, is refused and leaves nothing.
# Loopback only, free ports found at run time; every node it starts is
# stopped by cluster.sh down (PID files), also when a check fails.
set -euo pipefail
build="$(cd "${1:?usage: test_cluster_script_restore.sh BUILD}" && pwd)"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cl="$repo/scripts/cluster.sh"
shell="$build/client/shell/orderkv"
tmp="$(mktemp -d /tmp/okvtest-restore-XXXXXX)"
fails=0
cleanup() {
  for d in a b c; do
    if [ -f "$tmp/$d/cluster.conf" ]; then "$cl" down --dir "$tmp/$d" >/dev/null 2>&1 || true; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
check() {   # name, then the command: passes when it exits 0
  local name="$1"; shift
  if "$@"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi
}
# Three free consecutive loopback ports (bound and released: a race with
# another process is possible but not one with the other tests, which
# claim theirs through okv_cluster's lock files or port 0).
free_base() {
  /usr/bin/python3 - <<'PY'
import random, socket
for _ in range(200):
    base = random.randint(20000, 60000)
    socks = []
    try:
        for p in range(base, base + 3):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
}
export ORDERKV_UP_WAIT_S=60
a="$("$cl" up --dir "$tmp/a" --base-port "$(free_base)" --build "$build" 2>"$tmp/up-a.log")"
"$shell" -a "$a" -e 'put orders c1/o1 hello; txn accounts add a1 100 add a2 50' >/dev/null
"$shell" -a "$a" -e "backup $tmp/bk" >"$tmp/backup.log"
"$cl" down --dir "$tmp/a" >/dev/null 2>&1

check "restore into a new dir" "$cl" restore "$tmp/bk" --dir "$tmp/b" --base-port "$(free_base)" \
  --build "$build"
b="$("$cl" up --dir "$tmp/b" --build "$build" 2>"$tmp/up-b.log")"
out="$("$shell" -a "$b" -e 'get orders c1/o1; get accounts a1 --int yes; get accounts a2 --int yes')"
check "the restored cluster holds the writes" grep -qx hello <<<"$out"
both_sides() { grep -qx 100 <<<"$1" && grep -qx 50 <<<"$1"; }
check "  ...and both sides of the transaction" both_sides "$out"
check "restoring over a cluster is refused" \
  bash -c '! "$1" restore "$2" --dir "$3" --build "$4" 2>/dev/null' _ "$cl" "$tmp/bk" "$tmp/b" "$build"
"$cl" down --dir "$tmp/b" >/dev/null 2>&1

# A flipped byte in one partition file: refused, nothing left behind.
cp -r "$tmp/bk" "$tmp/bad"
f="$(ls "$tmp/bad"/*.snap | head -1)"
printf '\xff' | dd of="$f" bs=1 seek=40 conv=notrunc status=none
check "a damaged backup is refused" \
  bash -c '! "$1" restore "$2" --dir "$3" --base-port "$4" --build "$5" 2>/dev/null' \
  _ "$cl" "$tmp/bad" "$tmp/c" "$(free_base)" "$build"
check "  ...and leaves no data dir" bash -c '! ls "$1"/node* >/dev/null 2>&1 && [ ! -e "$1/cluster.conf" ]' _ "$tmp/c"
[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; tail -20 "$tmp"/b/node1.log 2>/dev/null || true; exit 1; }

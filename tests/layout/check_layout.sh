#!/usr/bin/env bash
# The layout rules of server/ (docs/architecture.md "Modules"), checked by
# ctest (layout.rules):
#  1. pure code includes neither gRPC nor RocksDB: the raft core, the state
#     machine (sm/), the replica host (replica/), the snapshot format and
#     install code, request decoding, tables, placement, flags, metrics;
#  2. a folder's private headers (*_int.h) are included only inside it.
# Prints every violation; exit status 1 if there is one.
set -u
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bad=0
pure=(server/raft server/sm server/replica server/snapshot/fsm_snapshot.c
      server/snapshot/snap_format.c server/api/request.c server/control/catalog.c
      server/control/cluster.c server/node/config.c server/txn server/orders
      server/metrics server/audit)
while IFS= read -r hit; do
  echo "layout: pure code includes an I/O library: $hit"
  bad=1
done < <(grep -rnE '#include[[:space:]]*[<"](grpc|rocksdb)/' "${pure[@]}" 2>/dev/null)
for hdr in $(cd server && find . -name '*_int.h' | sed 's|^\./||'); do
  dir=$(dirname "server/$hdr")
  name=$(basename "$hdr")
  while IFS= read -r hit; do
    case "$hit" in "$dir"/*) continue ;; esac
    echo "layout: $name is private to $dir/ but included by $hit"
    bad=1
  done < <(grep -rln "#include \"$name\"" server client tests 2>/dev/null)
done
if [ "$bad" = 0 ]; then
  echo "layout: pure code includes no I/O library; private headers stay in their folders"
fi
exit "$bad"

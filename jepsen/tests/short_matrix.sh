#!/usr/bin/env bash
# jepsen/tests/short_matrix.sh BUILD_DIR — ctest jepsen_short_matrix: a few
# workload x nemesis pairs on real 3-node clusters, 12 s each, every one of
# which must check valid. About 3 minutes on 2 cores. Needs root and
# network namespaces; exits 77 (ctest: skipped) without them.
#
# The run directories are removed when everything is valid and kept (path
# printed) otherwise. OKV_JEPSEN_KEEP=1 keeps them always.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build="$(cd "$1" && pwd)"
jepsen="$(cd "$(dirname "$0")/.." && pwd)"

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the Jepsen tests need root (network namespaces)"
  exit 77
fi
if ! unshare -n true 2>/dev/null; then
  echo "SKIP: cannot create network namespaces here"
  exit 77
fi

PAIRS="register:partition-leader,register:kill-leader,set:kill-all,set:partition-leader,set:pause-minority,sequential:partition-halves,sequential:kill-leader,bank:partition-leader,bank:kill-leader,list-append:partition-leader,orders:partition-leader"
out="$(mktemp -d "${TMPDIR:-/tmp}/okvj-matrix-XXXXXX")"
rc=0
"$jepsen/run" --pairs "$PAIRS" --time 12 --nemesis-interval 3 --tick-ms 50 \
  --concurrency 5 --build "$build" --out "$out" --time-limit-s 60 || rc=$?
if [ "$rc" = 0 ] && [ "${OKV_JEPSEN_KEEP:-0}" != 1 ]; then
  rm -rf "$out"
else
  echo "run directories kept in $out"
fi
exit "$rc"

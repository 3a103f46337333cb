#!/usr/bin/env bash
# Line coverage of server/raft/ by the raft tests (unit tests, simulator,
# benchmark smoke). Builds BUILD_DIR with -DORDERKV_COVERAGE=ON, runs the
# ctest tests labelled "raft" (planted-bug tests excluded: they cover code
# production builds do not have), prints the gcovr summary and fails under
# 90% of lines.
#
#   tests/sim/coverage.sh BUILD_DIR
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
build="$1"
min="${RAFT_COVERAGE_MIN:-90}"
cmake -S "$src" -B "$build" -DORDERKV_COVERAGE=ON -DORDERKV_RAFT_PLANTED_BUGS=OFF \
      -DCMAKE_BUILD_TYPE=Debug >/dev/null
targets=(raft-sim raft-bench)
for t in "$src"/tests/unit/raft/test_raft_*.c; do
  targets+=("$(basename "$t" .c)")
done
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]}" >/dev/null
find "$build" -name '*.gcda' -delete
# The 10k soak is slow under -O0 --coverage and adds nothing over 2k seeds.
ctest --test-dir "$build" -L '^raft$' -LE planted -E raft_sim_10k --output-on-failure >/dev/null
"$build"/tests/sim/raft-sim --seeds 2000 --quiet
gcovr -r "$src" --object-directory "$build" --filter "$src/server/raft/" \
      --print-summary --fail-under-line "$min" -o "$build/raft-coverage.txt"
cat "$build/raft-coverage.txt"

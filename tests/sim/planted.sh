#!/usr/bin/env bash
# Proves the simulator's checks bite: builds the raft core WITH the planted
# bugs (-DORDERKV_RAFT_PLANTED_BUGS=ON) in its own build directory and runs
# the ctest tests labelled "planted", each of which requires raft-sim to
# report a violation for one bug. Production builds never contain them.
#
#   tests/sim/planted.sh [BUILD_DIR]     (default: build-raft-planted)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
build="${1:-build-raft-planted}"
cmake -S "$src" -B "$build" -DORDERKV_RAFT_PLANTED_BUGS=ON -DORDERKV_WERROR=ON >/dev/null
cmake --build "$build" --target raft-sim -j "${JOBS:-2}" >/dev/null
ctest --test-dir "$build" -L planted --output-on-failure

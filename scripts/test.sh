#!/usr/bin/env bash
# Runs the whole test suite: installs missing Debian packages, builds with
# warnings as errors, and runs every test through ctest. Then builds the
# failpoint variant (build-failpoints/, never shipped) and runs the tests
# that need it: rare paths of the cluster (label failpoint) and the jepsen
# suite's self-test against planted bugs (label planted). The failpoint
# build also compiles the write-path tracing in (common/trace.h, silent
# unless ORDERKV_TRACE=1), so that code is built with -Werror too.
# Extra arguments go to the first ctest (e.g. scripts/test.sh -R storage).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/build.sh
(cd build && ctest --output-on-failure -j2 "$@")
if [ $# -eq 0 ]; then
  cmake -S . -B build-failpoints -DORDERKV_WERROR=ON -DORDERKV_FAILPOINTS=ON -DORDERKV_TRACE=ON >/dev/null
  cmake --build build-failpoints -j"$(nproc)"
  (cd build-failpoints && ctest --output-on-failure -L 'failpoint|planted')
fi

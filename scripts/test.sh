#!/usr/bin/env bash
# Runs the whole test suite: installs missing Debian packages, builds with
# warnings as errors, and runs every test through ctest.
# Extra arguments go to ctest (e.g. scripts/test.sh -R storage).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/build.sh
cd build
ctest --output-on-failure -j2 "$@"

#!/usr/bin/env bash
# Configures and builds orderkv into ./build (warnings are errors).
# Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DORDERKV_WERROR=ON "$@" >/dev/null
cmake --build build -j"$(nproc)"

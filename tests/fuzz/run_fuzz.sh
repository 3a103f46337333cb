#!/bin/sh
# run_fuzz.sh SECONDS — build fuzz_request with clang + libFuzzer in its own
# build dir and fuzz request decoding for SECONDS seconds. Exits non-zero if
# the build fails, if a seed or saved crash input fails, or if fuzzing finds a
# crash, leak, sanitizer report or broken invariant (the input is saved under
# $OKV_FUZZ_ARTIFACTS, default <build dir>/artifacts/, and printed).
#
#   tests/fuzz/run_fuzz.sh 60          # what CI runs
#   OKV_FUZZ_BUILD=/tmp/fz JOBS=2 tests/fuzz/run_fuzz.sh 600
#
# Environment: OKV_FUZZ_BUILD (build dir, default build-fuzz in the tree),
# JOBS (make parallelism, default 2), CC (default clang), FUZZ_ARGS (extra
# libFuzzer flags).
set -eu

if [ $# -ne 1 ] || ! [ "$1" -gt 0 ] 2>/dev/null; then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi
seconds=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${OKV_FUZZ_BUILD:-$src/build-fuzz}
jobs=${JOBS:-2}
cc=${CC:-clang}

echo "== configure $build (CC=$cc)"
CC=$cc cmake -S "$src" -B "$build" -DORDERKV_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.cmake.log" 2>&1 ||
    { cat "$build.cmake.log"; exit 1; }
echo "== build fuzz_request"
cmake --build "$build" --target fuzz_request -j"$jobs"
fuzzer=$build/tests/fuzz/fuzz_request

# Seeds and saved crashes must pass before fuzzing starts (a regression check).
regress=$(find "$src/tests/fuzz/corpus" "$src/tests/fuzz/crashes" -type f ! -name 'README*' 2>/dev/null || true)
if [ -n "$regress" ]; then
    echo "== regression run over $(echo "$regress" | wc -l) saved inputs"
    # shellcheck disable=SC2086
    "$fuzzer" $regress >"$build/regress.log" 2>&1 || { tail -40 "$build/regress.log"; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/okv-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp "$src"/tests/fuzz/corpus/* "$work/" 2>/dev/null || true
artifacts=${OKV_FUZZ_ARTIFACTS:-$build/artifacts}
mkdir -p "$artifacts"

echo "== fuzzing for ${seconds}s (corpus copy in $work, artifacts in $artifacts)"
status=0
# shellcheck disable=SC2086
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -dict="$src/tests/fuzz/request.dict" \
    -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$work" \
    >"$build/fuzz.log" 2>&1 || status=$?
grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb' "$build/fuzz.log" || true
if [ "$status" -ne 0 ]; then
    echo "== fuzz_request FAILED (exit $status); log tail:"
    tail -60 "$build/fuzz.log"
    echo "== reproducer(s):"
    ls -l "$artifacts"
    exit 1
fi
echo "== no crash in ${seconds}s"

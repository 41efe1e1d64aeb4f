#!/usr/bin/env bash
# Builds the benchmark drivers (bench/*.c, bench/CMakeLists.txt) into an
# existing build tree by turning COFI_BUILD_BENCH on there.
# usage: bench/build.sh [BUILD_DIR]   (default: build; configure it first,
# e.g. with scripts/build.sh). Binaries land in BUILD_DIR/bench/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ -f "$build/CMakeCache.txt" ] || { echo "bench/build.sh: $build is not a configured build tree: run scripts/build.sh first" >&2; exit 1; }
cmake -S "$root" -B "$build" -DCOFI_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench
ls "$build"/bench/*_bench | sed 's/^/built /'

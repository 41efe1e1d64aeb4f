#!/usr/bin/env bash
# Builds the benchmark drivers (bench/*.c) against a built library.
# usage: bench/build.sh [BUILD_DIR]   (default: build; run cmake --build first)
# The drivers use internal functions (src/internal.h), so they link the
# static library directly; binaries land in BUILD_DIR/bench/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ -f "$build/libcofi.a" ] || { echo "bench/build.sh: $build/libcofi.a not found: build the project first" >&2; exit 1; }
mkdir -p "$build/bench"
cc=${CC:-cc}
flags="-std=c11 -D_GNU_SOURCE -O3 -g -march=native -fopenmp -Wall -Wextra -Werror -Wshadow -Wvla -Wno-unused-parameter"
for src in "$root"/bench/*.c; do
  name=$(basename "$src" .c)
  $cc $flags -I"$root/include" -I"$root/src" $(pkg-config --cflags openblas) "$src" \
    "$build/libcofi.a" $(pkg-config --libs openblas) -lm -o "$build/bench/$name"
  echo "built $build/bench/$name"
done

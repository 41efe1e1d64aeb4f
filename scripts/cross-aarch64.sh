#!/usr/bin/env bash
# Cross-compiles the kernels layer (src/kernels/) and its unit test
# (tests/unit/test_kernels.c) for aarch64 with Debian's cross compiler,
# and runs the test under qemu-user: the generic set (vector extensions,
# NEON there) against the reference, as on any CPU. Only the kernels: they
# need no BLAS, so no arm64 OpenBLAS is installed; cmocka comes from
# Debian's arm64 packages (multiarch).
#
# usage: scripts/cross-aarch64.sh [OUT_DIR]   (default /tmp/cofi-aarch64)
# Installs what is missing with apt-get (needs root):
#   gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libcmocka-dev:arm64
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/cofi-aarch64}
need=()
command -v aarch64-linux-gnu-gcc > /dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 > /dev/null || need+=(qemu-user)
if [ ! -e /usr/lib/aarch64-linux-gnu/libcmocka.so ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  apt-get update -qq
  need+=(libcmocka-dev:arm64)
fi
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" > /dev/null
fi
mkdir -p "$out/include"
# cofi.h includes the version header that CMake generates from project(VERSION).
v=$(sed -n 's/^project(cofi VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
IFS=. read -r vmaj vmin vpat <<<"$v"
sed -e "s/@PROJECT_VERSION_MAJOR@/$vmaj/; s/@PROJECT_VERSION_MINOR@/$vmin/" \
    -e "s/@PROJECT_VERSION_PATCH@/$vpat/; s/@PROJECT_VERSION@/$v/" \
    include/cofi_version.h.in >"$out/include/cofi_version.h"
# The project's warning flags (CMakeLists.txt); -Wno-psabi as for generic.c there.
flags=(-std=c11 -D_GNU_SOURCE -O3 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla
       -Wno-unused-parameter -fno-strict-aliasing -Wno-psabi -Werror
       -Iinclude -I"$out/include" -Isrc -Itests/unit)
aarch64-linux-gnu-gcc "${flags[@]}" src/kernels/reference.c src/kernels/generic.c \
  src/kernels/kernels.c src/kernels/avx2.c src/kernels/avx512.c \
  tests/unit/test_kernels.c tests/unit/testutil.c \
  -o "$out/test_kernels" -lcmocka -lm -lpthread
# The generic set must really be NEON code: fused multiply-adds on vectors.
n_fmla=$(aarch64-linux-gnu-objdump -d "$out/test_kernels" | grep -c 'fmla.*v[0-9]*\.4s' || true)
[ "$n_fmla" -gt 0 ] || { echo "cross-aarch64: no NEON fmla in the generic kernels" >&2; exit 1; }
echo "aarch64: $(aarch64-linux-gnu-gcc --version | head -1); running test_kernels under qemu-user"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/test_kernels"

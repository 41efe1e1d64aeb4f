#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test
# (unit, end-to-end, data) with ctest; then builds with AddressSanitizer +
# UndefinedBehaviorSanitizer and runs the suite again under them.
# COFI_SKIP_SANITIZE=1 skips the second pass.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh build
(cd build && ctest --output-on-failure -j2 --timeout 600)
if [ "${COFI_SKIP_SANITIZE:-0}" != 1 ]; then
  ./scripts/build.sh build-asan -DCOFI_SANITIZE=ON
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j2 --timeout 900 -LE nosan)
fi

#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test
# (unit, end-to-end, data, replays of the fuzz corpora) with ctest; then
# builds with AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# suite again under them (leak detection on); then, when clang's libFuzzer
# is installed (scripts/install-deps.sh --dev), runs every fuzz target for
# 10 seconds (docs/robustness.md; fuzz/run.sh runs them long).
# Last, the kernels cross-compiled for aarch64 and their unit test under
# qemu-user (scripts/cross-aarch64.sh; installs the cross tools).
# COFI_SKIP_SANITIZE=1 skips the second pass, COFI_SKIP_FUZZ=1 the third,
# COFI_SKIP_CROSS=1 the aarch64 one.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh build
(cd build && ctest --output-on-failure -j2 --timeout 600)
if [ "${COFI_SKIP_SANITIZE:-0}" != 1 ]; then
  # Out of the tree, so that build/cofi stays the only `cofi` binary in it
  # (tools that look for the binary, like ../shared/acceptance, must not
  # pick the much slower sanitizer build).
  asan=${COFI_ASAN_BUILD:-${TMPDIR:-/tmp}/cofi-asan-$(pwd | md5sum | cut -c1-12)}
  ./scripts/build.sh "$asan" -DCOFI_SANITIZE=ON
  (cd "$asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j2 --timeout 900 -LE nosan)
fi
if [ "${COFI_SKIP_FUZZ:-0}" != 1 ]; then
  probe=$(mktemp -d)
  if command -v clang >/dev/null &&
     printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' |
       clang -fsanitize=fuzzer -x c - -o "$probe/probe" 2>/dev/null; then
    # Only the fuzz targets (the libraries are compiled again inside with
    # coverage + ASan + UBSan). -Werror off: clang warns where gcc does not.
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFI_FUZZ=ON \
      -DCOFI_WERROR=OFF -DCOFI_FUZZ_SECONDS=10 >/dev/null
    cmake --build build-fuzz -j"$(nproc)" --target fuzz_model fuzz_dataset fuzz_items \
      fuzz_sampled fuzz_cli_lists fuzz_query fuzz_json
    (cd build-fuzz && ctest --output-on-failure -j2 -L fuzz)
  else
    echo "fuzz pass skipped: clang with libFuzzer not installed (scripts/install-deps.sh --dev)"
  fi
  rm -rf "$probe"
fi
if [ "${COFI_SKIP_CROSS:-0}" != 1 ]; then
  ./scripts/cross-aarch64.sh
fi

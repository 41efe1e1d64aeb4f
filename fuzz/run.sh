#!/usr/bin/env bash
# Long fuzzing: runs every libFuzzer target (or the ones named) for SECONDS
# each, one after the other, keeping what they learn in fuzz/corpus-<target>/
# (git-ignored) so the next run continues from there.
#   CC=clang cmake -S . -B build-fuzz -DCOFI_FUZZ=ON && cmake --build build-fuzz -j2
#   fuzz/run.sh build-fuzz 3600                  # an hour per target
#   fuzz/run.sh build-fuzz 600 fuzz_model        # one target
# Add -jobs=N -workers=N after "--" to use N cores:  fuzz/run.sh build-fuzz 600 fuzz_json -- -jobs=2 -workers=2
# Findings are written to fuzz/corpus-<target>-artifacts/ as crash-*, leak-*,
# timeout-* files (with the full log, run.log); reproduce one with `build-fuzz/fuzz/<target> FILE`.
# To fold new coverage into the committed seeds (keep them small):
#   build-fuzz/fuzz/<t> -merge=1 fuzz/corpus/<t> fuzz/corpus-<t>
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...] [-- libFuzzer flags]}
secs=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...] [-- libFuzzer flags]}
shift 2
targets=() extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; extra=("$@"); break; fi
  targets+=("$1"); shift
done
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_model fuzz_dataset fuzz_items fuzz_sampled fuzz_cli_lists fuzz_query fuzz_json)
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
status=0
for t in "${targets[@]}"; do
  echo "== $t: ${secs}s"
  log=fuzz/corpus-$t-artifacts/run.log
  mkdir -p "fuzz/corpus-$t-artifacts"
  fuzz/run_one.sh "$build/fuzz/$t" "fuzz/corpus-$t" "fuzz/corpus/$t" "$secs" \
    "${extra[@]}" >"$log" 2>&1
  rc=$?
  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|SUMMARY|Test unit written" "$log"
  echo "   corpus: $(ls "fuzz/corpus-$t" | wc -l) inputs"
  [ "$rc" -ne 0 ] && { echo "== $t: FOUND SOMETHING (exit $rc), see $log"; status=1; }
done
exit $status

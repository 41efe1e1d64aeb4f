#!/usr/bin/env bash
# repeat.sh N CMD...: runs CMD N times, stops at the first failure and
# says which run failed and how (the output of the failed run is shown).
# Used by ctest for tests that must pass every time (label "stress").
set -u
n=$1
shift
for ((i = 1; i <= n; i++)); do
  if ! out=$("$@" 2>&1); then
    rc=$?
    printf '%s\n' "$out" | tail -40
    echo "FAIL: run $i of $n: '$*' exited $rc"
    exit 1
  fi
done
echo "PASS: $n runs of '$*'"

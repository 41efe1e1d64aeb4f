#!/usr/bin/env bash
# Cost growth: train_bench.sh over logs of 2M, 5M and 20M nonzeros (same
# catalog, users and nonzeros scaled together) at several factor counts.
# usage: bench/scaling.sh [--cofi BIN] [DIR] [--factors "32 64 128"] [--runs 3]
# DIR holds synth2m/, synth5m/, synth20m/ from bench/gen_data.sh
# (default /tmp/cofi-bench).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cofi=$root/build/cofi
if [ "${1:-}" = --cofi ]; then cofi=$2; shift 2; fi
dir=/tmp/cofi-bench
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then dir=$1; shift; fi
factors="32 64 128" runs=3
while [ $# -gt 0 ]; do
  case $1 in
    --factors) factors=$2 ;; --runs) runs=$2 ;;
    *) echo "scaling.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
for s in 2m 5m 20m; do
  f=$dir/synth$s/interactions.csv
  [ -s "$f" ] || { echo "scaling.sh: $f missing: run bench/gen_data.sh $dir first" >&2; exit 1; }
  echo "== synth$s"
  "$root/bench/train_bench.sh" "$f" --cofi "$cofi" --factors "$factors" --runs "$runs" --iterations 3
done

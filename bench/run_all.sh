#!/usr/bin/env bash
# Every measurement in docs/performance.md, in one go (about 30 minutes on
# 2 cores): generates the logs if missing, then
#   1. train_bench on synth20m: 32/64/128/256 factors, CG and Cholesky, 3 runs
#   2. train_bench on synth1m, synth2m, synth5m (cost growth; 1m: the ML-1M shape)
#   3. the acceptance measure: wall time of 1 and of 4 iterations, (t4 - t1) / 3
#   4. sweep_bench: CPU seconds per half-sweep (steadier than wall under load)
#   5. recommend_bench: users per second, batched against single-user
# usage: bench/run_all.sh [BUILD_DIR] [DATA_DIR] [OUT_DIR]
#   (defaults: build, /tmp/cofi-bench, /tmp/cofi-bench/results)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build} data=${2:-/tmp/cofi-bench} out=${3:-/tmp/cofi-bench/results}
cofi=$build/cofi
mkdir -p "$out"
"$root/bench/build.sh" "$build" > /dev/null
"$root/bench/gen_data.sh" --cofi "$cofi" "$data"
log() { echo "== $* ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))"; }
{
  log "1. synth20m"
  "$root/bench/train_bench.sh" "$data/synth20m/interactions.csv" --cofi "$cofi" \
    --factors "32 64 128 256" --runs 3 --iterations 3 --raw "$out/train20m.tsv" 2> "$out/train20m.log"
  for s in 1m 2m 5m; do
    log "2. synth$s"
    "$root/bench/train_bench.sh" "$data/synth$s/interactions.csv" --cofi "$cofi" \
      --factors "32 64 128" --runs 3 --iterations 3 --raw "$out/train$s.tsv" 2> "$out/train$s.log"
  done
  log "3. acceptance measure (f=64, CG, 2 threads), 3 times"
  t() { local s; s=$(date +%s.%N)
        "$cofi" train "$data/synth20m/interactions.csv" --factors 64 --iterations "$1" --threads 2 \
          -o "$out/m20m.cofi" --quiet > /dev/null
        awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'; }
  for r in 1 2 3; do
    a=$(t 1); b=$(t 4)
    awk -v a="$a" -v b="$b" -v r="$r" 'BEGIN { printf "run %d: 1 iteration %.2fs, 4 iterations %.2fs, per iteration %.3fs\n", r, a, b, (b - a) / 3 }'
  done
  log "4. sweep_bench (CPU seconds), 2 threads"
  for f in 32 64 128; do
    echo "factors $f:"
    "$build/bench/sweep_bench" "$data/synth20m/interactions.csv" --factors "$f" --reps 2 | grep '^rep'
  done
  log "5. recommend_bench on the 4-iteration f=64 model, k=10, 2 threads"
  "$build/bench/recommend_bench" "$out/m20m.cofi" --k 10 --threads 2 --reps 3
  log "done"
} 2>&1 | tee "$out/summary.txt"

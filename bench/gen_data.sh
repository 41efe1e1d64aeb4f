#!/usr/bin/env bash
# Generates the benchmark logs with `cofi synth` (deterministic: the same
# command always writes the same bytes).
#   20m: MovieLens-20M-shaped, 138,493 users x 26,744 items, 20,000,263 rows
#   5m, 2m: the same catalog with users and rows scaled down (rows per user
#        kept), for cost growth
#   1m: MovieLens-1M-shaped, 6,040 users x 3,706 items, 1,000,209 rows
# usage: bench/gen_data.sh [--cofi BIN] [OUT_DIR] [SIZES...]   (default: all)
# Writes OUT_DIR/synth<size>/interactions.csv (default OUT_DIR: /tmp/cofi-bench);
# existing files are kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cofi=$root/build/cofi
if [ "${1:-}" = --cofi ]; then cofi=$2; shift 2; fi
out=${1:-/tmp/cofi-bench}
shift || true
sizes=${*:-1m 2m 5m 20m}
[ -x "$cofi" ] || { echo "gen_data.sh: $cofi not found (build first, or pass --cofi BIN)" >&2; exit 1; }
for s in $sizes; do
  case $s in
    20m) args="--users 138493 --items 26744 --interactions 20000263" ;;
    5m) args="--users 34623 --items 26744 --interactions 5000066" ;;
    2m) args="--users 13849 --items 26744 --interactions 2000026" ;;
    1m) args="--users 6040 --items 3706 --interactions 1000209" ;;
    *) echo "gen_data.sh: unknown size $s (1m 2m 5m 20m)" >&2; exit 2 ;;
  esac
  dir=$out/synth$s
  if [ -s "$dir/interactions.csv" ]; then echo "$dir: exists"; continue; fi
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$cofi" synth $args --seed 1 -o "$dir" >/dev/null
  echo "$dir: $(($(wc -l < "$dir/interactions.csv") - 1)) rows in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
done

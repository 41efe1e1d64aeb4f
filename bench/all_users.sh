#!/usr/bin/env bash
# Users per second of `cofi recommend MODEL --all-users` on an
# ml-20M-sized model: 138,493 users x 26,744 items, 64 factors, from
# `cofi synth` (deterministic). Training quality does not change the speed
# of scoring, so the model is trained for one iteration only.
#
#   bench/all_users.sh [BUILD_DIR] [WORK_DIR] [RUNS]
#
# Env: INTERACTIONS (default 20000263, the 20M shape), FACTORS (64), K (10),
# THREADS (0 = all cores). Prints every run (wall seconds, CPU seconds) and
# the medians of users per wall second and users per CPU second: on a
# shared machine the wall rate moves with the load, the CPU rate much less
# (times the cores the command had to itself, it is the wall rate of an
# unloaded machine, as far as the cores scale).
set -eu
BUILD=${1:-build}; WORK=${2:-/tmp/cofi-bench-all-users}; RUNS=${3:-5}
COFI=$BUILD/cofi
INTERACTIONS=${INTERACTIONS:-20000263}; FACTORS=${FACTORS:-64}; K=${K:-10}; THREADS=${THREADS:-0}
mkdir -p "$WORK"
data=$WORK/synth-$INTERACTIONS
model=$WORK/model-$INTERACTIONS-$FACTORS.cofi
if [ ! -s "$data/interactions.csv" ]; then
  "$COFI" synth -o "$data" --users 138493 --items 26744 --interactions "$INTERACTIONS" --seed 1 >/dev/null
fi
if [ ! -s "$model" ]; then
  "$COFI" train "$data/interactions.csv" --factors "$FACTORS" --iterations 1 --seed 1 -o "$model" --quiet >/dev/null
fi
users=$("$COFI" info "$model" --json | jq .n_users)
echo "model: $users users, $("$COFI" info "$model" --json | jq .n_items) items, $FACTORS factors; k $K;" \
     "threads ${THREADS/#0/all}; $("$COFI" --version | grep kernels)"
rates=(); cpu_rates=()
for r in $(seq "$RUNS"); do
  /usr/bin/time -f "%e %U %S" -o "$WORK/time.txt" \
    "$COFI" recommend "$model" --all-users -k "$K" --threads "$THREADS" -o "$WORK/recs.csv"
  read -r wall usr sys <"$WORK/time.txt"
  rate=$(awk -v u="$users" -v w="$wall" 'BEGIN { printf "%.0f", u / w }')
  cpu_rate=$(awk -v u="$users" -v a="$usr" -v b="$sys" 'BEGIN { printf "%.0f", u / (a + b) }')
  echo "run $r: ${wall}s wall, $(awk -v a="$usr" -v b="$sys" 'BEGIN { print a + b }')s CPU: $rate users/s, $cpu_rate users per CPU second"
  rates+=("$rate"); cpu_rates+=("$cpu_rate")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "median over $RUNS runs: $(median "${rates[@]}") users/s (wall), $(median "${cpu_rates[@]}") users per CPU second; load average $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$WORK/recs.csv"

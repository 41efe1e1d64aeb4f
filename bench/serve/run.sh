#!/usr/bin/env bash
# Benchmark of `cofi serve` (never a timed test): wrk on
#   GET /recommend?user_id=ID&k=10
# cycling through the real users of a model trained on ml-latest-small with
# the seeds' parameters, RUNS times; prints each run and the median run
# (by requests per second) with p50 and p99 latency.
#
# usage: bench/serve/run.sh [path/to/cofi]
# environment (defaults): DURATION=20s CONNECTIONS=64 WRK_THREADS=2 RUNS=3
#   K=10 SERVER_THREADS= (one per core) QUIET=1 (0 keeps the access log,
#   written to a file) MODEL= (a model file to use instead of training one)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
COFI=${1:-${COFI:-$root/build/cofi}}
ML=${ML:-$root/../shared/data/ml-latest-small}
DURATION=${DURATION:-20s} CONNECTIONS=${CONNECTIONS:-64} WRK_THREADS=${WRK_THREADS:-2}
RUNS=${RUNS:-3} K=${K:-10} QUIET=${QUIET:-1}
command -v wrk >/dev/null || { echo "wrk is needed (scripts/install-deps.sh --dev)"; exit 1; }
[ -x "$COFI" ] || { echo "no cofi binary at $COFI (build first, or pass its path)"; exit 1; }
[ -r "$ML/ratings.csv" ] || { echo "no $ML/ratings.csv"; exit 1; }

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

model=${MODEL:-$work/ml.cofi}
if [ -z "${MODEL:-}" ]; then
  echo "training on ml-latest-small (the seeds' parameters) ..."
  "$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 --items "$ML/movies.csv" \
    --factors 64 --regularization 0.02 --alpha 20 --iterations 20 --seed 42 -o "$model" --quiet
fi
# The model's users are those with at least one rating >= 4.
awk -F, 'NR > 1 && $3 >= 4 {print $1}' "$ML/ratings.csv" | sort -un >"$work/users.txt"

args=("$model" --port 0)
[ "$QUIET" = 1 ] && args+=(--quiet)
[ -n "${SERVER_THREADS:-}" ] && args+=(--threads "$SERVER_THREADS")
"$COFI" serve "${args[@]}" 2>"$work/serve.log" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\) with.*/\1/p' "$work/serve.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$work/serve.log"; exit 1; }
url=http://127.0.0.1:$port/
users=$(curl -s "${url}health" | sed -n 's/.*"users":\([0-9]*\).*/\1/p')
[ "$users" = "$(wc -l <"$work/users.txt")" ] || { echo "the model has $users users, the list $(wc -l <"$work/users.txt")"; exit 1; }

export COFI_BENCH_USERS=$work/users.txt COFI_BENCH_K=$K
cmd=(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/users.lua" "$url")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "cofi: $("$COFI" --version | tr "\n" " "), server threads: $(sed -n 's/.* with \([0-9]*\) threads.*/\1/p' "$work/serve.log"), access log: $([ "$QUIET" = 1 ] && echo off || echo on)"
echo "users: $users, k=$K"
echo "command: COFI_BENCH_USERS=users.txt ${cmd[*]}"
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s -s "$here/users.lua" "$url" >/dev/null # warm-up

# wrk prints latencies with units (us, ms, s): to milliseconds.
to_ms() { awk '{v = $1; if (v ~ /us$/) printf "%.3f", v / 1000; else if (v ~ /ms$/) printf "%.3f", v + 0;
                else if (v ~ /s$/) printf "%.3f", v * 1000; else print v}'; }
printf '%-4s %12s %9s %9s %8s %s\n' run req/s p50_ms p99_ms non2xx load
for r in $(seq "$RUNS"); do
  "${cmd[@]}" >"$work/run$r.txt"
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/run$r.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/run$r.txt" | to_ms)
  p99=$(awk '$1 == "99%" {print $2}' "$work/run$r.txt" | to_ms)
  bad=$(awk '/Non-2xx/ {print $NF}' "$work/run$r.txt")
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf '%-4s %12s %9s %9s %8s %s\n' "$r" "$rps" "$p50" "$p99" "${bad:-0}" "$load" | tee -a "$work/table"
done
echo "median run (by req/s):"
sort -k2 -g "$work/table" | awk -v n="$RUNS" 'NR == int((n + 1) / 2)'

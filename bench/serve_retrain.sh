#!/usr/bin/env bash
# bench/serve_retrain.sh [COFI] — what background retraining costs the
# requests: GET /recommend with wrk (users.lua, 16 connections, 2 threads)
# for DURATION seconds (default 20) on an idle server, then for as long
# again while retrains run back to back (POST /admin/retrain, queued one
# after the other), on a SQLite store of ml-latest-small (ratings >= 4,
# 64 factors, 20 iterations, --retrain-threads 1). Prints wrk's latency
# percentiles and requests/s for both, the non-2xx answers (must be 0), the
# retrains done and their last duration, the CPU model and the load (the
# machine may be shared: say so with the numbers).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
COFI=$(realpath "${1:-$root/build/cofi}")
ML=${ML:-$root/../shared/data/ml-latest-small}
DURATION=${DURATION:-20}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
T=$(mktemp -d /tmp/cofi-bench-retrain.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; COFI_KERNELS=${COFI_KERNELS:-unset}; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
S=sqlite:$T/s.db
"$COFI" import "$ML/ratings.csv" --store "$S" --format movielens --min-value 4 --items "$ML/movies.csv" >/dev/null 2>&1
"$COFI" train --store "$S" -o "$T/m.cofi" --factors 64 --regularization 0.02 --alpha 20 --iterations 20 --seed 42 --quiet >/dev/null 2>&1
awk -F, 'NR > 1 && $3 >= 4 {print $1}' "$ML/ratings.csv" | sort -u >"$T/users.txt"
echo tok >"$T/tok"
"$COFI" serve "$T/m.cofi" --store "$S" --models-dir "$T/models" --admin-token-file "$T/tok" \
  --port 0 --quiet 2>"$T/serve.log" &
pid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\) with.*/\1/p' "$T/serve.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.05
done
U=http://127.0.0.1:$port
echo "kernel set: $(curl -s "$U/health" | jq -r .server.kernel_set)"
export COFI_BENCH_USERS=$T/users.txt
load() {
  wrk -t2 -c16 -d"${DURATION}s" --latency -s "$root/bench/serve/users.lua" "$U" >"$T/wrk.txt"
  echo "$1: $(grep -E 'Requests/sec' "$T/wrk.txt")"
  grep -E '^ +(50|90|99)%' "$T/wrk.txt" | tr -s ' ' | sed 's/^/  p/'
  grep -E 'Non-2xx' "$T/wrk.txt" || echo "  non-2xx: 0"
}
wrk -t2 -c16 -d2s -s "$root/bench/serve/users.lua" "$U" >/dev/null # warm-up
load "idle"
( end=$((SECONDS + DURATION)); while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -X POST -H 'Authorization: Bearer tok' "$U/admin/retrain"; sleep 0.5; done ) &
trigger=$!
load "during retrains"
wait "$trigger"
sleep 1
curl -s -H 'Authorization: Bearer tok' "$U/admin/models" |
  jq -r '"retrains: \(.retrain.succeeded) succeeded, \(.retrain.rejected) rejected, \(.retrain.failed) failed; last took \(.retrain.last_duration_seconds) s; live version \(.live)"'

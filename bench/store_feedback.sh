#!/usr/bin/env bash
# bench/store_feedback.sh [COFI] — POST /feedback throughput of
# `cofi serve --store` on SQLite (WAL, synchronous=FULL: every answered
# request is committed and fsynced), with wrk:
#   1. single events, one per request (bench/store/feedback_single.lua)
#   2. batches of 100 events per request (bench/store/feedback_batch.lua)
# 64 connections, 2 wrk threads, DURATION seconds each (default 15). Prints
# requests/s and events/s, the non-200 answers (must be 0), the group
# commit sizes seen by the server (/metrics), the CPU model and the load.
# The server runs with its default threads for a store (64), no model
# file needed for these routes (a model is served if MODEL is set).
# SINGLE=0 skips the single-event run (batches only).
# BENCH_PG=1: the same two runs against a throwaway PostgreSQL server
# (tests/store/with_postgres.sh starts and stops it) after SQLite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
COFI=$(realpath "${1:-$root/build/cofi}")
if [ "${BENCH_PG:-0}" = 1 ] && [ -z "${COFI_TEST_PG_URL:-}" ]; then
  exec bash "$root/tests/store/with_postgres.sh" bash "$0" "$@"
fi
DURATION=${DURATION:-15}
CONNS=${CONNS:-64}
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
T=$(mktemp -d /tmp/cofi-bench-feedback.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "disk of the store: $(df -h "$T" | awk 'NR == 2 {print $1, $6}')"

STORE=
run() { # $1 = label, $2 = lua script, $3 = events per request
  rm -f "$T"/s.db*
  local url=${STORE:-sqlite:$T/s.db}
  if [ -n "$STORE" ]; then # a fresh database each run
    psql -q "$COFI_TEST_PG_URL" -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench" >/dev/null
  fi
  "$COFI" serve ${MODEL:+"$MODEL"} --store "$url" --port 0 --quiet 2>"$T/serve.log" &
  pid=$!
  local port=
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\) with.*/\1/p' "$T/serve.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$T/serve.log" >&2; exit 1; }
  wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$2" "http://127.0.0.1:$port/" >"$T/wrk.out"
  local rps non2xx commits events
  rps=$(sed -n 's/^Requests\/sec: *//p' "$T/wrk.out")
  non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *//p' "$T/wrk.out")
  curl -s "http://127.0.0.1:$port/metrics" >"$T/metrics"
  # CPU seconds the server used (user + system), from /proc
  local cpu
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$pid/stat")
  commits=$(sed -n 's/^cofi_store_commit_batch_events_count //p' "$T/metrics")
  events=$(sed -n 's/^cofi_store_events_accepted_total //p' "$T/metrics")
  kill $pid; wait $pid 2>/dev/null || true; pid=
  local csum ccount
  csum=$(sed -n 's/^cofi_store_commit_duration_seconds_sum //p' "$T/metrics")
  printf '%s: %s requests/s = %.0f events/s; non-2xx: %s; %s events in %s commits (%.1f events per commit, %.2f ms per commit); server CPU %.1f s = %.1f us per event\n' \
    "$1" "$rps" "$(echo "$rps * $3" | bc -l)" "${non2xx:-0}" "$events" "$commits" \
    "$(echo "$events / $commits" | bc -l)" "$(echo "$csum * 1000 / $commits" | bc -l)" \
    "$cpu" "$(echo "$cpu * 1000000 / $events" | bc -l)"
  grep -E "Latency|Socket errors" "$T/wrk.out" | sed 's/^/    /'
}

[ "${SINGLE:-1}" = 1 ] && run "SQLite, single events, $CONNS connections" "$root/bench/store/feedback_single.lua" 1
run "SQLite, batches of 100, $CONNS connections" "$root/bench/store/feedback_batch.lua" 100
if [ -n "${COFI_TEST_PG_URL:-}" ]; then
  STORE=${COFI_TEST_PG_URL%/*}/bench
  run "PostgreSQL, single events, $CONNS connections" "$root/bench/store/feedback_single.lua" 1
  run "PostgreSQL, batches of 100, $CONNS connections" "$root/bench/store/feedback_batch.lua" 100
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

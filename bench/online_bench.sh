#!/usr/bin/env bash
# bench/online_bench.sh [COFI] — the cost of online updates in
# `cofi serve MODEL --store sqlite:...` (docs/performance.md, "Online
# updates"), on ml-latest-small (64 factors). Server time per request is
# the access log's latency_us (from the request's headers to its answer
# sent); N requests per case (default 300), one at a time over loopback:
#   1. a user the model knows, no new events: with the store and without
#      (the online layer must cost nothing here)
#   2. users with 100 fresh events each (not in the model): cache miss
#      (--online-cache-users 0: every request reads the store and folds in)
#      and cache hit
#   3. a heavy user with 10,000 events: miss and hit
#   4. POST /feedback then /recommend for the same user, end to end
#      (curl's time_total of both, summed), p50 and p99
# Prints the CPU, the kernel set (cofi info) and the load: the figures are
# noisy when the machine is shared.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
COFI=$(realpath "${1:-$root/build/cofi}")
ML=${ML:-$root/../shared/data/ml-latest-small}
N=${N:-300}
T=$(mktemp -d /tmp/cofi-bench-online.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT

S=sqlite:$T/s.db
"$COFI" import "$ML/ratings.csv" --store "$S" --format movielens --min-value 4 --items "$ML/movies.csv" >/dev/null 2>&1
"$COFI" train --store "$S" -o "$T/m.cofi" --factors 64 --regularization 0.02 --alpha 20 --iterations 15 --seed 1 --quiet >/dev/null 2>&1
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; kernels: $("$COFI" info "$T/m.cofi" | awk '$1 == "kernels" {print $2}'); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
mapfile -t items < <(sqlite3 "$T/s.db" "SELECT id FROM cofi_items ORDER BY ikey")

start() { # log, args...
  local log=$1; shift
  "$COFI" serve "$T/m.cofi" --port 0 --access-log --quiet "$@" 2>"$log" &
  pid=$!
  port=
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$port" ] && break; sleep 0.05
  done
  U=http://127.0.0.1:$port
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
post() { curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- "$U/feedback"; }
# events USER COUNT OFFSET: a JSON batch of COUNT events on distinct items
events() {
  local u=$1 n=$2 off=$3 i sep=
  printf '{"events":['
  for ((i = 0; i < n; i++)); do
    printf '%s{"user_id":"%s","item_id":"%s","event":"watch"}' "$sep" "$u" "${items[$(((off + i * 7) % ${#items[@]}))]}"
    sep=,
  done
  printf ']}'
}
# stats LOG TARGET-PREFIX: p50 and p99 of latency_us of the matching requests
stats() {
  grep -F "\"target\":\"$2" "$1" | sed -n 's/.*"latency_us":\([0-9]*\).*/\1/p' | sort -n |
    awk '{v[NR] = $1} END {if (NR) {q = int(NR * 0.99); if (q < 1) q = 1; printf "p50 %d us, p99 %d us (n=%d)\n", v[int(NR * 0.5) + 1], v[q], NR}}'
}
hit() { local i; for ((i = 0; i < N; i++)); do curl -s -o /dev/null "$U$1"; done; }

# 1. known users, no new events: without and with the store
start "$T/nostore.log"
for ((i = 0; i < N; i++)); do curl -s -o /dev/null "$U/recommend?user_id=$((1 + i % 600))&k=10"; done
stop
echo "known user, no store:            $(stats "$T/nostore.log" /recommend)"
start "$T/store.log" --store "$S"
for ((i = 0; i < N; i++)); do curl -s -o /dev/null "$U/recommend?user_id=$((1 + i % 600))&k=10"; done
echo "known user, store, no new events: $(stats "$T/store.log" /recommend)"
# fresh users and the heavy user
for ((u = 0; u < N; u++)); do events "fresh$u" 100 "$u" | post; done
events heavy 10000 0 | post
stop

start "$T/miss.log" --store "$S" --online-cache-users 0
for ((u = 0; u < N; u++)); do curl -s -o /dev/null "$U/recommend?user_id=fresh$u&k=10"; done
hit "/recommend?user_id=heavy&k=10"
stop
echo "100 fresh events, cache miss:    $(stats "$T/miss.log" "/recommend?user_id=fresh")"
echo "10,000 events, cache miss:       $(stats "$T/miss.log" "/recommend?user_id=heavy")"

start "$T/hit.log" --store "$S"
for ((u = 0; u < N; u++)); do curl -s -o /dev/null "$U/recommend?user_id=fresh$u&k=10"; done
for ((u = 0; u < N; u++)); do curl -s -o /dev/null "$U/recommend?user_id=fresh$u&k=10"; done
hit "/recommend?user_id=heavy&k=10"
grep -F '"target":"/recommend?user_id=fresh' "$T/hit.log" | tail -n "$N" >"$T/hit2.log"
echo "100 fresh events, cache hit:     $(stats "$T/hit2.log" "/recommend?user_id=fresh")"
grep -F '"target":"/recommend?user_id=heavy&k=10"' "$T/hit.log" | tail -n +2 >"$T/heavy_hit.log"
echo "10,000 events, cache hit:        $(stats "$T/heavy_hit.log" "/recommend?user_id=heavy")"

# 4. POST /feedback then /recommend, end to end (curl's time_total), and
# the heavy user's next answer after one new event (their cached set gains
# the item: a fold-in, no store read)
for ((i = 0; i < N; i++)); do
  a=$(printf '{"user_id":"e2e%d","item_id":"%s","event":"like"}' $((i % 20)) "${items[$((i * 13 % ${#items[@]}))]}" |
    curl -s -o /dev/null -w '%{time_total}' -X POST -H 'Content-Type: application/json' --data-binary @- "$U/feedback")
  b=$(curl -s -o /dev/null -w '%{time_total}' "$U/recommend?user_id=e2e$((i % 20))&k=10")
  echo "$a $b"
done >"$T/e2e.txt"
pct() { sort -n | awk '{v[NR] = $1} END {q = int(NR * 0.99); if (q < 1) q = 1; printf "p50 %d us, p99 %d us (n=%d)\n", v[int(NR * 0.5) + 1], v[q], NR}'; }
echo "POST /feedback alone (commit + fsync): $(awk '{print $1 * 1e6}' "$T/e2e.txt" | pct)"
echo "the /recommend after it:               $(awk '{print $2 * 1e6}' "$T/e2e.txt" | pct)"
echo "both, end to end:                      $(awk '{print ($1 + $2) * 1e6}' "$T/e2e.txt" | pct)"
for ((i = 0; i < N / 4; i++)); do
  printf '{"user_id":"heavy","item_id":"%s","event":"like"}' "${items[$((i * 11 % ${#items[@]}))]}" | post
  curl -s -o /dev/null "$U/recommend?user_id=heavy&k=11"
done
stop
echo "10,000 events, after 1 new event: $(stats "$T/hit.log" "/recommend?user_id=heavy&k=11")"
echo "server time of that /recommend:   $(stats "$T/hit.log" "/recommend?user_id=e2e")"
echo "server time of POST /feedback:    $(stats "$T/hit.log" "/feedback")"

#!/usr/bin/env bash
# Soak test of `cofi serve` (bounded, loopback only; not part of ctest):
# for DURATION seconds, two wrk processes hit one server at once, one with
# valid requests of every endpoint (GET and POST, cold start, batch,
# similar, items, health, metrics), one with invalid ones (unknown IDs, bad
# k, bad encodings, malformed JSON, oversized bodies, wrong methods,
# traversal, a wrong admin token); meanwhile the model file is replaced
# and reloaded through POST /admin/reload every RELOAD seconds, alternating
# between two models and between two ways of deploying them: an atomic
# rename, and a copy over the served file in place (the lease-break path:
# the server must switch to a private copy, then load the new file on the
# reload); and the server's RSS is sampled.
#
# Pass criteria (exit 1 otherwise):
#   - every valid request answered 2xx: 0 other answers, 0 socket errors;
#   - every invalid request answered 4xx: 0 2xx, 0 5xx or other;
#   - every reload succeeded, and the server still answers at the end;
#   - every in-place copy was met by a switch to a private copy (a line in
#     the server's log), and the slot was never empty;
#   - RSS flat: the mean of the last minute within 10% (and 8 MB) of the
#     mean of the second minute (the first is warm-up).
#
# usage: bench/soak/run.sh [path/to/cofi]
# environment (defaults): DURATION=600 RELOAD=10 SERVER_THREADS=2 OUT=
#   (a directory to keep rss.csv, the wrk outputs and the server log)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
COFI=${1:-${COFI:-$root/build/cofi}}
DURATION=${DURATION:-600} RELOAD=${RELOAD:-10} SERVER_THREADS=${SERVER_THREADS:-2}
command -v wrk >/dev/null || { echo "wrk is needed (scripts/install-deps.sh --dev)"; exit 1; }
[ -x "$COFI" ] || { echo "no cofi binary at $COFI (build first, or pass its path)"; exit 1; }

work=$(mktemp -d)
pid= bgpids=()
cleanup() {
  local p
  for p in "${bgpids[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp "$work"/*.csv "$work"/*.txt "$work"/*.log "$OUT"/ 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "data and two models (20000 users, 5000 items, 400000 interactions) ..."
"$COFI" synth -o "$work/d" --users 20000 --items 5000 --interactions 400000 >/dev/null || exit 1
for s in 1 2; do
  "$COFI" train "$work/d/interactions.csv" --items "$work/d/items.csv" --factors 32 \
    --iterations 5 --seed "$s" --quiet -o "$work/m$s.cofi" || exit 1
done
cp "$work/m1.cofi" "$work/model.cofi"
# IDs for the requests (synth IDs are URL-safe: u00001, v00001).
awk -F, 'NR > 1 && !u[$1]++ && nu++ < 500 {print "u " $1} NR > 1 && !i[$2]++ && ni++ < 500 {print "i " $2}' \
  "$work/d/interactions.csv" >"$work/ids.txt"

token=soak-$RANDOM$RANDOM
"$COFI" serve "$work/model.cofi" --port 0 --threads "$SERVER_THREADS" --quiet --max-body 4096 \
  --admin-token "$token" 2>"$work/serve.log" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9][0-9]*\) with.*/\1/p' "$work/serve.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$work/serve.log"; exit 1; }
url=http://127.0.0.1:$port
echo "machine: $(nproc) cores; cofi $("$COFI" --version 2>/dev/null | head -1); server pid $pid, $SERVER_THREADS threads"
echo "running ${DURATION}s: wrk valid (-t1 -c8) + wrk invalid (-t1 -c4), reload every ${RELOAD}s"

export SOAK_IDS=$work/ids.txt
SOAK_MODE=valid wrk -t1 -c8 -d"${DURATION}s" --latency -s "$here/mixed.lua" "$url" >"$work/wrk_valid.txt" 2>&1 &
wv=$!
SOAK_MODE=invalid wrk -t1 -c4 -d"${DURATION}s" -s "$here/mixed.lua" "$url" >"$work/wrk_invalid.txt" 2>&1 &
wi=$!
bgpids+=("$wv" "$wi")

# Reloads and RSS samples until wrk is done.
echo "seconds,rss_kb" >"$work/rss.csv"
reloads=0 reload_fail=0 inplace=0 t0=$SECONDS next_reload=$RELOAD next_sample=0
while kill -0 "$wv" 2>/dev/null || kill -0 "$wi" 2>/dev/null; do
  el=$((SECONDS - t0))
  if ((el >= next_sample)); then
    echo "$el,$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")" >>"$work/rss.csv"
    next_sample=$((next_sample + 5))
  fi
  if ((el >= next_reload)); then
    # Replace the file with the other model, then reload: by rename, or
    # (every other time) by copying over the served file in place.
    src=$work/m$(( (reloads % 2 == 0) ? 2 : 1 )).cofi
    if (( (reloads / 2) % 2 == 1 )); then
      cp "$src" "$work/model.cofi" && inplace=$((inplace + 1))
    else
      cp "$src" "$work/model.cofi.new" && mv "$work/model.cofi.new" "$work/model.cofi"
    fi
    code=$(curl -s -m 30 -o "$work/reload.json" -w '%{http_code}' -X POST \
      -H "Authorization: Bearer $token" "$url/admin/reload")
    if [ "$code" = 200 ]; then reloads=$((reloads + 1)); else
      reload_fail=$((reload_fail + 1)); echo "reload failed ($code): $(cat "$work/reload.json")"; fi
    next_reload=$((next_reload + RELOAD))
  fi
  sleep 1
done
wait "$wv"; wait "$wi"
bgpids=()

status=0
check() { if eval "$2"; then echo "ok:   $1"; else echo "FAIL: $1"; status=1; fi; }
val=$(grep '^SOAK valid' "$work/wrk_valid.txt")
inv=$(grep '^SOAK invalid' "$work/wrk_invalid.txt")
get() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }
echo "$val"
echo "$inv"
grep -E 'Requests/sec|Latency ' "$work/wrk_valid.txt" | sed 's/^/  valid:   /'
grep -E 'Requests/sec' "$work/wrk_invalid.txt" | sed 's/^/  invalid: /'
check "valid requests: $(get "$val" requests) sent, all 2xx" \
  '[ -n "$val" ] && [ "$(get "$val" 2xx)" -gt 0 ] && [ "$(get "$val" 4xx)" = 0 ] && [ "$(get "$val" other)" = 0 ] && [ "$(get "$val" errors)" = 0 ]'
check "invalid requests: $(get "$inv" requests) sent, all 4xx" \
  '[ -n "$inv" ] && [ "$(get "$inv" 4xx)" -gt 0 ] && [ "$(get "$inv" 2xx)" = 0 ] && [ "$(get "$inv" other)" = 0 ]'
check "reloads: $reloads succeeded, $reload_fail failed" '[ "$reloads" -ge $((DURATION / RELOAD - 2)) ] && [ "$reload_fail" = 0 ]'
switched=$(grep -c 'is being rewritten in place: now serving a private copy' "$work/serve.log")
check "in-place copies: $inplace, switches to a private copy: $switched, empty slot: never" \
  '[ "$switched" = "$inplace" ] && ! grep -q "no model is served" "$work/serve.log"'
check "server alive at the end" '[ "$(curl -s -m 5 "$url/ping")" = "{\"status\":\"ok\"}" ]'
# RSS: second minute (warm) against the last minute.
read -r early late <<<"$(awk -F, -v d="$DURATION" 'NR > 1 && $1 >= 60 && $1 < 120 {a += $2; na++}
  NR > 1 && $1 >= d - 60 {b += $2; nb++} END {printf "%d %d", na ? a / na : 0, nb ? b / nb : 0}' "$work/rss.csv")"
echo "rss: second minute ${early} kB, last minute ${late} kB, min $(awk -F, 'NR > 1 {print $2}' "$work/rss.csv" | sort -n | head -1) kB, max $(awk -F, 'NR > 1 {print $2}' "$work/rss.csv" | sort -n | tail -1) kB"
if ((DURATION >= 180)); then
  check "rss flat (last minute within 10% and 8 MB of the second)" \
    '[ "$early" -gt 0 ] && [ $((late - early)) -le $((early / 10)) ] && [ $((late - early)) -le 8192 ]'
else
  echo "note: rss trend needs DURATION >= 180"
fi
grep -iE 'sanitizer|runtime error' "$work/serve.log" && { echo "FAIL: sanitizer report in the server log"; status=1; }
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
check "clean stop (exit $rc)" '[ "$rc" = 0 ]'
exit $status

#!/usr/bin/env bash
# `mpirun cofi train --store postgresql://...` and serving replicas, on a
# real PostgreSQL server (started by tests/store/with_postgres.sh, which this
# script runs itself under; docs/mpi.md, docs/scale-out.md):
#   - each rank reads its share of the events (a range of seq): the model
#     from -np 2 and 4 equals the one-process model from the same store
#     (factor sections byte for byte, content checksum), titles included
#   - two `cofi serve` replicas on loopback over that one model file and the
#     one store: an event POSTed through one is in the history read through
#     the other; the other's event feed marks the user, so within ~5 s both
#     answer /recommend identically (both "source": "online" for u7); an
#     event whose transaction commits after a later one (a seq below the
#     feed's watermark) still reaches both (the feed's gaps)
# Skips (77) when mpirun is not installed or cofi was built without MPI.
set -u
here=$(cd "$(dirname "$0")" && pwd)
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
ldd "${COFI:-cofi}" 2>/dev/null | grep -q libmpi || { echo "SKIP: cofi built without MPI (COFI_MPI)"; exit 77; }
if [ -z "${COFI_TEST_PG_URL:-}" ]; then
  exec bash "$here/../store/with_postgres.sh" bash "$0" "$@"
fi
source "$here/serve_common.bash"
PG=$COFI_TEST_PG_URL
export OMP_NUM_THREADS=1 SOURCE_DATE_EPOCH=1700000000
MR=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader,tcp
    --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)

# a log with titles; duplicates of one pair across the whole store
awk 'BEGIN { srand(11); OFS = "\t"; print "user_id", "item_id", "event", "value"
  split("watch like complete", ev, " ")
  for (n = 0; n < 1500; n++) {
    u = int(rand() * 50); i = int(rand() * 30)
    if (n % 71 == 0) { u = 3; i = 4 }
    print "u" u, "i" i, ev[1 + n % 3], sprintf("%.2f", 0.5 + rand() * 2) } }' >"$T/log.tsv"
awk 'BEGIN { OFS = "\t"; print "item_id", "title"; for (i = 0; i < 30; i++) print "i" i, "Title " i }' \
  >"$T/items.tsv"
"$COFI" import "$T/log.tsv" --items "$T/items.tsv" --store "$PG" >"$T/imp.log" 2>&1 \
  || fail "import: $(cat "$T/imp.log")"

section() { od -An -tu8 -j $((64 + 32 * $2 + 8)) -N16 "$1" | tr -s ' ' | sed 's/^ //'; }
factors() {
  local e o l
  for e in 1 2; do
    read -r o l < <(section "$1" $e)
    od -An -tx1 -v -j "$o" -N "$l" "$1"
  done | md5sum
}
args=(--factors 8 --iterations 3 --seed 5 --quiet)
"$COFI" train --store "$PG" -o "$T/m1.cofi" "${args[@]}" 2>"$T/t1.log" \
  || fail "one-process train --store: $(cat "$T/t1.log")"
want=$(factors "$T/m1.cofi")
want_c=$("$COFI" info "$T/m1.cofi" --json | jq -r .content_checksum)
for np in 2 4; do
  "${MR[@]}" -np $np "$COFI" train --store "$PG" -o "$T/m$np.cofi" "${args[@]}" --json \
    >"$T/s$np.json" 2>"$T/s$np.log" || fail "-np $np train --store: $(head -5 "$T/s$np.log")"
  jq -e --argjson n $np '.ranks == $n and .mpi_input_bytes_received > 0 and .interactions == 1500' \
    "$T/s$np.json" >/dev/null || fail "-np $np: summary: $(cat "$T/s$np.json")"
  [ "$(factors "$T/m$np.cofi")" = "$want" ] || fail "-np $np --store: factors differ from one process"
  [ "$("$COFI" info "$T/m$np.cofi" --json | jq -r .content_checksum)" = "$want_c" ] \
    || fail "-np $np --store: content checksum differs (titles?)"
done
"$COFI" recommend "$T/m4.cofi" --user u1 -k 3 --json | jq -e '.recommendations[0].title | test("^Title ")' \
  >/dev/null || fail "the -np 4 model has no titles from the store"

# an unreachable store: every rank stops with one message, no model
"${MR[@]}" -np 2 "$COFI" train --store "postgresql://postgres@127.0.0.1:1/none" -o "$T/x.cofi" \
  "${args[@]}" >"$T/x.log" 2>&1 && fail "unreachable store: mpirun succeeded"
[ "$(grep -c 'opening the store' "$T/x.log")" -ge 1 ] || fail "unreachable store: no message: $(head -3 "$T/x.log")"
ls "$T"/x.cofi* >/dev/null 2>&1 && fail "unreachable store left a model file"

# two replicas over the MPI-trained model and the one store
start_server "$T/ra.log" "$T/m4.cofi" --store "$PG" --port 0
UA=$U
start_server "$T/rb.log" "$T/m4.cofi" --store "$PG" --port 0
UB=$U
ok 200 '.accepted == 1' -X POST -H 'Content-Type: application/json' \
  -d '{"user_id":"u7","item_id":"i29","event":"like","timestamp":"2026-05-01T00:00:00Z"}' "$UA/feedback"
ok 200 '.events[0].item_id == "i29" and .events[0].title == "Title 29"' "$UB/users/u7/history"
ok 200 '.accepted == 1' -X POST -H 'Content-Type: application/json' \
  -d '{"user_id":"new-user","item_id":"i2","event":"watch"}' "$UB/feedback"
ok 200 '.events[0].item_id == "i2"' "$UA/users/new-user/history"
ok 200 '(.recommendations | length) == 10' "$UA/recommend?user_id=u0&k=10"
# B learns of u7's event through its event feed (--feed-interval, 1 s by
# default): within ~5 s both fold u7 in from the same history
ok 200 '.source == "online"' "$UA/recommend?user_id=u7&k=10"
a=$(jq -cS 'del(.took_ms, .request_id)' "$T/body")
for i in $(seq 50); do
  req "$UB/recommend?user_id=u7&k=10"
  b=$(jq -cS 'del(.took_ms, .request_id)' "$T/body")
  [ "$a" = "$b" ] && break
  sleep 0.1
done
[ "$a" = "$b" ] || fail "replica B never folded in u7's event from A: $a / $b"
curl -s "$UB/metrics" | awk '$1 == "cofi_feed_users_marked_total" && $2 >= 1 {f = 1} END {exit !f}' \
  || fail "replica B's feed marked no user: $(curl -s "$UB/metrics" | grep cofi_feed)"
# PostgreSQL takes a seq at insertion, not at commit: an event whose
# transaction is still open while a later one commits is below the feed's
# watermark when it commits. The feed holds such gaps and reads them again:
# u13's event, committed last with the lower seq, still reaches both replicas.
fmetric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
command -v psql >/dev/null || fail "psql is needed (postgresql-client)"
coproc HOLD { psql "$PG" -q -A -t -v ON_ERROR_STOP=1 2>&1; }
echo "BEGIN; INSERT INTO cofi_events(ukey, ikey, value) SELECT u.ukey, i.ikey, 1 FROM cofi_users u,
  cofi_items i WHERE u.id = 'u13' AND i.id = 'i28'; SELECT 'inserted';" >&"${HOLD[1]}"
read -r -t 20 line <&"${HOLD[0]}"; [ "$line" = inserted ] || fail "psql: the open transaction: $line"
ok 200 '.accepted == 1' -X POST -H 'Content-Type: application/json' \
  -d '{"user_id":"u49","item_id":"i3","event":"like"}' "$UA/feedback"
for i in $(seq 100); do [ "$(fmetric "$UB" cofi_feed_gaps)" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
[ "$(fmetric "$UB" cofi_feed_gaps)" -ge 1 ] || fail "B's feed holds no gap below u49's event: $(curl -s "$UB/metrics" | grep cofi_feed)"
ok 200 '.source == null' "$UB/recommend?user_id=u13&k=10"
echo "COMMIT; SELECT 'committed';" >&"${HOLD[1]}"
read -r -t 20 line <&"${HOLD[0]}"; [ "$line" = committed ] || fail "psql: commit: $line"
echo '\q' >&"${HOLD[1]}"
for V in "$UA" "$UB"; do
  for i in $(seq 50); do
    req "$V/recommend?user_id=u13&k=10"
    jq -e '.source == "online"' "$T/body" >/dev/null && break
    sleep 0.1
  done
  jq -e '.source == "online"' "$T/body" >/dev/null || fail "$V never saw u13's late-committed event: $(cat "$T/body")"
done
for i in $(seq 100); do [ "$(fmetric "$UB" cofi_feed_gaps)" = 0 ] && break; sleep 0.1; done
[ "$(fmetric "$UB" cofi_feed_gaps)" = 0 ] || fail "B still holds the filled gap: $(curl -s "$UB/metrics" | grep cofi_feed)"
for u in u0 u7 u13 u49 new-user; do
  req "$UA/recommend?user_id=$u&k=10"; a_code=$CODE; a=$(jq -cS 'del(.took_ms, .request_id)' "$T/body")
  req "$UB/recommend?user_id=$u&k=10"; b_code=$CODE; b=$(jq -cS 'del(.took_ms, .request_id)' "$T/body")
  [ "$a_code" = "$b_code" ] && [ "$a" = "$b" ] || fail "replicas answer /recommend for $u differently: $a_code $a / $b_code $b"
done
pass

#!/usr/bin/env bash
# `cofi serve --store`: the feedback API on SQLite and on a real PostgreSQL
# server (started by tests/store/with_postgres.sh, which this script runs
# itself under; no server means failure, not a skip).
#   - POST /feedback single and batch; a bad batch is refused whole with
#     the index and the field named; unknown event types, bad timestamps
#   - GET /users/{id}/history newest first, with titles, limit
#   - PUT/GET/DELETE /items/{id}, PUT/GET/DELETE /users/{id}
#   - writes off loopback need the token (and the server refuses to start
#     without one); without --store the routes answer 404 store_disabled (history comes from the model)
#   - no model: the store routes work, the others answer 503
#   - kill -9 during a stream of acknowledged POSTs (several delays, four
#     concurrent clients): after a restart every acknowledged event is there
#   - PostgreSQL: the same core flow; two servers on one database see each
#     other's events; the database stopped: 503 store_unavailable while
#     /recommend keeps answering, and writes work again once it is back
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${COFI_TEST_PG_URL:-}" ]; then
  exec bash "$here/../store/with_postgres.sh" bash "$0" "$@"
fi
source "$here/serve_common.bash"
make_models

post() { ok "$1" "$2" -X POST -H 'Content-Type: application/json' -d "$3" "$U/feedback"; }
hist() { req "$U/users/$1/history${2:-}"; }

core_flow() { # $1 = store URL, $2 = label
  local S=$1 name=$2
  "$COFI" import "$T/data.tsv" --items "$T/items.tsv" --store "$S" >"$T/imp.log" 2>&1 ||
    fail "$name: import: $(cat "$T/imp.log")"
  start_server "$T/$name.log" "$T/a.cofi" --store "$S" --port 0
  post 200 '.accepted == 1' '{"user_id":"1","item_id":"i1","event":"like"}'
  post 200 '.accepted == 1' '{"user_id":7,"item_id":3,"event":"watch","value":2.5}'
  post 200 '.accepted == 3' '{"events":[
      {"user_id":"h","item_id":"i2","event":"watch","timestamp":"2026-01-02T03:04:05Z"},
      {"user_id":"h","item_id":"i3","event":"complete","timestamp":"2026-03-01T00:00:00+01:00"},
      {"user_id":"h","item_id":"i4","event":"like","timestamp":1700000000}]}'
  # a bad event anywhere: nothing written, index and field named
  post 400 '(.error.message | test("event 2: value"))' '{"events":[
      {"user_id":"rej","item_id":"i2","event":"watch"},{"user_id":"rej","item_id":"i3","event":"watch"},
      {"user_id":"rej","item_id":"i4","event":"watch","value":-1}]}'
  post 400 '(.error.message | test("event 1: user_id"))' \
    '{"events":[{"user_id":"rej","item_id":"i2","event":"watch"},{"user_id":"","item_id":"i3","event":"watch"}]}'
  post 400 '(.error.message | test("event 0: item_id"))' \
    '{"events":[{"user_id":"rej","item_id":"'"$(head -c 300 /dev/zero | tr '\0' x)"'","event":"watch"}]}'
  post 400 '(.error.message | test("event 1: timestamp"))' \
    '{"events":[{"user_id":"rej","item_id":"i2","event":"watch"},{"user_id":"rej","item_id":"i3","event":"watch","timestamp":"2026-02-30T00:00:00Z"}]}'
  post 400 '(.error.message | test("unknown event type .teleport"))' '{"user_id":"rej","item_id":"i2","event":"teleport"}'
  post 400 '(.error.message | test("event: missing"))' '{"user_id":"rej","item_id":"i2"}'
  post 400 '.error.code == "invalid_json"' '{"user_id":'
  post 400 '(.error.message | test("colour: unknown field"))' '{"user_id":"rej","item_id":"i2","event":"like","colour":1}'
  hist rej
  [ "$CODE" = 404 ] || fail "$name: a refused request left user 'rej' behind ($CODE: $(cat "$T/body"))"

  # history: newest first (timestamps, not insertion order), titles, limit
  ok 200 '[.events[].item_id] == ["i3","i2","i4"] and .events[0].title == "Title of i3 (\"q\")"
          and .events[0].event == "complete" and .events[0].timestamp == "2026-02-28T23:00:00Z"
          and .events[2].timestamp == "2023-11-14T22:13:20Z"' "$U/users/h/history"
  ok 200 '(.events | length) == 2 and .events[1].item_id == "i2"' "$U/users/h/history?limit=2"
  err 400 invalid_limit "$U/users/h/history?limit=0"
  ok 200 '.events[0].item_id == "3" and .events[0].value == 2.5 and .events[0].title == null' "$U/users/7/history?limit=1"
  # user 1 has imported events (no timestamps: last); the new one comes first
  ok 200 '.events[0].item_id == "i1" and .events[0].event == "like" and .events[1].event == null' "$U/users/1/history"

  # items
  ok 200 '.stored' -X PUT -d '{"title":"A Brand New Film (2026)","categories":["Drama","New"],"fields":{"director":"X"},"timestamp":"2026-05-01T00:00:00Z"}' "$U/items/brand%20new"
  ok 200 '.title == "A Brand New Film (2026)" and .categories == ["Drama","New"] and .fields.director == "X"
          and .hidden == false and .timestamp == "2026-05-01T00:00:00Z"' "$U/items/brand%20new"
  ok 200 '.title == "Title of i5 (\"q\")"' "$U/items/i5"
  ok 200 '.hidden' -X DELETE "$U/items/brand%20new"
  ok 200 '.hidden == true' "$U/items/brand%20new"
  err 404 unknown_item -X DELETE "$U/items/never-seen"
  err 404 unknown_item "$U/items/never-seen"
  err 400 invalid_request -X PUT -d '{"categories":"Drama"}' "$U/items/x"
  # users
  ok 200 '.stored' -X PUT -d '{"labels":["vip"]}' "$U/users/u%2Fslash"
  ok 200 '.user_id == "u/slash" and .labels == ["vip"]' "$U/users/u%2Fslash"
  ok 200 '.deleted and .events_deleted == 3' -X DELETE "$U/users/h"
  hist h
  [ "$CODE" = 404 ] || fail "$name: deleted user's history answered $CODE: $(cat "$T/body")"
  err 404 unknown_user -X DELETE "$U/users/h"
  err 405 method_not_allowed -X DELETE "$U/users/1/history"
  # the model's routes are untouched
  ok 200 '(.recommendations | length) == 10' "$U/recommend?user_id=1"
  req "$U/metrics"
  grep -q '^cofi_store_events_accepted_total 5$' "$T/body" || fail "$name: accepted counter: $(grep store_events "$T/body")"
  grep -q '^cofi_store_events_rejected_total{reason="invalid"} [1-9]' "$T/body" || fail "$name: rejected counter"
  grep -q '^cofi_store_commit_batch_events_count [1-9]' "$T/body" || fail "$name: batch histogram"
  grep -q '^cofi_store_commit_duration_seconds_bucket{le="+Inf"} [1-9]' "$T/body" || fail "$name: commit histogram"
  stop_server
}

# ---- SQLite -----------------------------------------------------------------
core_flow "sqlite:$T/s.db" sqlite

# without --store: the store routes say so
start_server "$T/plain.log" "$T/a.cofi" --port 0
err 404 store_disabled -X POST -d '{"user_id":"1","item_id":"i1","event":"like"}' "$U/feedback"
ok 200 '.source == "model" and (.events | length) > 0' "$U/users/1/history"  # from the model's matrix without a store
ok 200 '.item_id == "i1"' "$U/items/i1"
err 404 store_disabled -X DELETE "$U/items/i1"
stop_server

# no model yet: the store routes work, the personalized ones say 503
start_server "$T/nomodel.log" --store "sqlite:$T/s.db" --port 0
err 503 model_unavailable "$U/recommend?user_id=1"
post 200 '.accepted == 1' '{"user_id":"nm","item_id":"i1","event":"watch"}'
ok 200 '.events[0].item_id == "i1"' "$U/users/nm/history"
stop_server

# writes off loopback: no token, no start; with one, writes need it
"$COFI" serve "$T/a.cofi" --store "sqlite:$T/s.db" --host 0.0.0.0 --port 0 >"$T/open.log" 2>&1 &
p=$!
SERVER_PIDS+=("$p")
for _ in $(seq 100); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
kill -0 $p 2>/dev/null && fail "serve --store on 0.0.0.0 without a token is running"
wait $p && fail "serve --store on 0.0.0.0 without a token exited 0"
grep -q "API token" "$T/open.log" || fail "the refusal does not mention the token: $(cat "$T/open.log")"
echo "s3cret-token" >"$T/token"
start_server "$T/tok.log" "$T/a.cofi" --store "sqlite:$T/s.db" --host 0.0.0.0 --api-token-file "$T/token" --port 0
err 401 unauthorized -X POST -d '{"user_id":"t","item_id":"i1","event":"like"}' "$U/feedback"
err 401 unauthorized -H 'Authorization: Bearer s3cret-tokeN' -X POST -d '{"user_id":"t","item_id":"i1","event":"like"}' "$U/feedback"
err 401 unauthorized -X DELETE "$U/users/nm"
err 401 unauthorized -X PUT -d '{}' "$U/items/i1"
ok 200 '.accepted == 1' -H 'Authorization: Bearer s3cret-token' -X POST -d '{"user_id":"t","item_id":"i1","event":"like"}' "$U/feedback"
ok 200 '.events | length == 1' "$U/users/t/history" # reads stay open
stop_server
COFI_API_TOKEN=env-token start_server "$T/tok2.log" "$T/a.cofi" --store "sqlite:$T/s.db" --host 0.0.0.0 --port 0
ok 200 '.accepted == 1' -H 'Authorization: Bearer env-token' -X POST -d '{"user_id":"t","item_id":"i2","event":"like"}' "$U/feedback"
stop_server

# kill -9 during a stream of acknowledged POSTs: every acknowledged event
# survives. Four clients post concurrently (so commits are shared); each
# records an event only once it got its 200.
client() { # $1 = user, $2 = file of acknowledged items
  local i=0 c
  while :; do
    i=$((i + 1))
    c=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST \
      -d "{\"user_id\":\"$1\",\"item_id\":\"k$i\",\"event\":\"watch\"}" "$U/feedback") || break
    [ "$c" = 200 ] || break
    echo "k$i" >>"$2"
  done
}
for delay in 0.3 0.7 1.2 2; do
  start_server "$T/k.log" "$T/a.cofi" --store "sqlite:$T/s.db" --port 0
  cpids=()
  for c in 1 2 3 4; do
    : >"$T/ack.$c"
    client "kill-$delay-$c" "$T/ack.$c" &
    cpids+=($!)
  done
  sleep "$delay"
  kill -KILL "$PID"
  wait "$PID" 2>/dev/null
  for p in "${cpids[@]}"; do wait "$p"; done
  start_server "$T/k2.log" "$T/a.cofi" --store "sqlite:$T/s.db" --port 0
  total=0
  for c in 1 2 3 4; do
    ok 200 '' "$U/users/kill-$delay-$c/history?limit=10000"
    jq -r '.events[].item_id' "$T/body" | sort >"$T/have"
    sort "$T/ack.$c" >"$T/want"
    missing=$(comm -23 "$T/want" "$T/have" | wc -l)
    [ "$missing" = 0 ] || fail "kill -9 after ${delay}s: $missing of $(wc -l <"$T/want") acknowledged events of client $c are missing"
    total=$((total + $(wc -l <"$T/want")))
  done
  [ "$total" -gt 0 ] || fail "kill -9 after ${delay}s: no event was acknowledged at all"
  echo "kill -9 after ${delay}s: $total acknowledged events, all present"
  stop_server
done

# ---- PostgreSQL ---------------------------------------------------------------
command -v psql >/dev/null || fail "psql is needed (the postgresql-client package)"
psql -q -v ON_ERROR_STOP=1 "$COFI_TEST_PG_URL" -c "CREATE DATABASE serve_store" >/dev/null ||
  fail "cannot create the database"
PG=${COFI_TEST_PG_URL%/*}/serve_store
core_flow "$PG" postgresql

# two servers on one database
start_server "$T/pa.log" "$T/a.cofi" --store "$PG" --port 0
UA=$U PA=$PID
start_server "$T/pb.log" "$T/a.cofi" --store "$PG" --port 0
UB=$U PB=$PID
ok 200 '.accepted == 2' -X POST -d '{"events":[{"user_id":"two","item_id":"i7","event":"like","timestamp":"2026-01-01T00:00:00Z"},{"user_id":"two","item_id":"i8","event":"watch","timestamp":"2026-01-02T00:00:00Z"}]}' "$UA/feedback"
ok 200 '[.events[].item_id] == ["i8","i7"] and .events[0].title == "Title of i8 (\"q\")"' "$UB/users/two/history"
ok 200 '.accepted == 1' -X POST -d '{"user_id":"two","item_id":"i9","event":"complete","timestamp":"2026-01-03T00:00:00Z"}' "$UB/feedback"
ok 200 '.events[0].item_id == "i9"' "$UA/users/two/history"

# the database goes away: 503 with a clear message, recommendations go on;
# it comes back: writes work again without a restart
as_pg() { if [ "$(id -u)" = 0 ]; then local q; printf -v q '%q ' "$@"; su postgres -s /bin/sh -c "$q"; else "$@"; fi; }
as_pg "$COFI_TEST_PG_BIN/pg_ctl" -D "$COFI_TEST_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 ||
  fail "cannot stop PostgreSQL"
U=$UA
ok 503 '.error.code == "store_unavailable" and (.error.message | test("nothing was written"))' \
  -X POST -d '{"user_id":"two","item_id":"i1","event":"like"}' "$UA/feedback"
err 503 store_unavailable "$UA/users/two/history"
ok 200 '(.recommendations | length) == 10' "$UA/recommend?user_id=1"
ok 200 '.item_id == "i1"' "$UA/items/i1" # from the model while the store is down
as_pg "$COFI_TEST_PG_BIN/pg_ctl" -D "$COFI_TEST_PG_DIR/data" -w -t 30 -l "$COFI_TEST_PG_DIR/server.log" \
  -o "-p $COFI_TEST_PG_PORT -k $COFI_TEST_PG_DIR -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null 2>&1 ||
  fail "cannot restart PostgreSQL"
ok 200 '.accepted == 1' -X POST -d '{"user_id":"two","item_id":"i1","event":"like","timestamp":"2026-01-04T00:00:00Z"}' "$UA/feedback"
ok 200 '[.events[].item_id] == ["i1","i9","i8","i7"]' "$UB/users/two/history"
PID=$PB; stop_server
PID=$PA; stop_server
pass

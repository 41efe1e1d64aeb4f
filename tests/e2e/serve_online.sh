#!/usr/bin/env bash
# `cofi serve MODEL --store sqlite:...` on ml-latest-small: recommendations
# that follow each new event (docs/serving.md, "Online updates").
#   - fold-in: after POST /feedback, a known user's /recommend equals
#     `cofi recommend MODEL --liked <their whole history>` (items, and
#     scores within 1e-5), and the new items are filtered as seen; the
#     second answer comes from the cache, a new event invalidates it
#   - a user the model does not know, with store events, is folded in the
#     same way; a user with no events at all gets the popular list
#   - category= and items= filters against a brute-force filter of the
#     full ranking; hidden items (DELETE /items/{id}) never come back, in
#     /recommend, /similar_items, /popular and /latest
#   - /popular (all time, a window) and /latest against a brute-force
#     computation over the SQLite file (python3)
#   - bad parameters: clear 400s; without a store /latest is 503
#   - two (three) servers on one SQLite file: an event POSTed to one shows in
#     the other's /recommend after its next feed poll (--feed-interval), in
#     both directions; --feed-interval 0 turns the feed off; a store error in
#     the poll is logged once, retried, and its end logged once
set -u
source "$(dirname "$0")/serve_common.bash"
need_ml
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }

S=sqlite:$T/cofi.db
"$COFI" import "$ML/ratings.csv" --store "$S" --format movielens --min-value 4 --items "$ML/movies.csv" \
  >"$T/imp.log" 2>&1 || fail "import: $(cat "$T/imp.log")"
"$COFI" train --store "$S" -o "$T/m.cofi" --factors 32 --regularization 0.02 --alpha 20 \
  --iterations 10 --seed 42 --quiet >"$T/train.log" 2>&1 || fail "train --store: $(cat "$T/train.log")"
start_server "$T/s.log" "$T/m.cofi" --store "$S" --port 0
post() { ok 200 "${2:-}" -X POST -H 'Content-Type: application/json' -d "$1" "$U/feedback"; }
metric() { curl -s "$U/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# compare FILE-A FILE-B: same items in the same order, scores within 1e-5
same_answer() {
  python3 - "$1" "$2" <<'PY' || fail "answers differ: $(head -c 300 "$1") vs $(head -c 300 "$2")"
import json, sys
a, b = (json.load(open(p))["recommendations"] for p in sys.argv[1:3])
assert [x["item_id"] for x in a] == [x["item_id"] for x in b], "items differ"
assert all(abs(x["score"] - y["score"]) <= 1e-5 for x, y in zip(a, b)), "scores differ"
PY
}
# liked FILE: the distinct item IDs of a history answer, comma-separated
liked() { jq -r '[.events[].item_id] | unique | join(",")' "$1"; }

# ---- fold-in of a known user's whole history --------------------------------
ok 200 '.source == null and (.recommendations | length) == 10' "$U/recommend?user_id=1&k=10"
cp "$T/body" "$T/before"
new=$(jq -r '[.recommendations[0:5][].item_id] | join(" ")' "$T/before")
ev=$(for i in $new; do printf '{"user_id":"1","item_id":"%s","event":"complete"},' "$i"; done)
post "{\"events\":[${ev%,}]}" '.accepted == 5'
ok 200 '.source == "online" and (.recommendations | length) == 20' "$U/recommend?user_id=1&k=20"
cp "$T/body" "$T/after"
for i in $new; do
  jq -e --arg i "$i" '[.recommendations[].item_id] | index($i) == null' "$T/after" >/dev/null ||
    fail "item $i that user 1 just completed is recommended back"
done
ok 200 '' "$U/users/1/history?limit=10000"
"$COFI" recommend "$T/m.cofi" --liked "$(liked "$T/body")" -k 20 --json >"$T/cli" ||
  fail "cofi recommend --liked"
same_answer "$T/after" "$T/cli"
# the same again: from the cache, same answer
hits=$(metric cofi_online_cache_hits_total)
ok 200 '.source == "online"' "$U/recommend?user_id=1&k=20"
same_answer "$T/body" "$T/cli"
[ "$(metric cofi_online_cache_hits_total)" -gt "$hits" ] || fail "the second answer did not come from the cache"
# a new event invalidates the cached vector
top=$(jq -r '.recommendations[0].item_id' "$T/after")
post "{\"user_id\":\"1\",\"item_id\":\"$top\",\"event\":\"like\"}"
ok 200 '' "$U/recommend?user_id=1&k=20"
jq -e --arg i "$top" '[.recommendations[].item_id] | index($i) == null' "$T/body" >/dev/null ||
  fail "after a new event the cached answer was served (item $top is back)"
cp "$T/body" "$T/after2"
ok 200 '' "$U/users/1/history?limit=10000"
"$COFI" recommend "$T/m.cofi" --liked "$(liked "$T/body")" -k 20 --json >"$T/cli"
same_answer "$T/after2" "$T/cli"
# a user the model knows with no new events: answered from the model, as before
ok 200 '.source == null' "$U/recommend?user_id=2&k=10"

# ---- concurrent events and answers for the same users ---------------------------
# Writers post events one by one while readers ask for the same users (so
# vectors are computed while their user changes); afterwards every user's
# answer must still be the fold-in of their whole history (a vector that
# missed an acknowledged event must never have been cached).
ok 200 '' "$U/popular?k=300"
mapfile -t pool < <(jq -r '.recommendations[].item_id' "$T/body")
clients=()
for w in 0 1 2 3; do
  (for i in $(seq 0 24); do
     it=${pool[$(((w * 37 + i * 11) % ${#pool[@]}))]}
     curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
       -m 20 -d "{\"user_id\":\"$((w + 3))\",\"item_id\":\"$it\",\"event\":\"watch\"}" "$U/feedback"
     curl -s -m 20 -o /dev/null "$U/recommend?user_id=$((w + 3))&k=5"
   done) &
  clients+=($!)
  (for i in $(seq 0 40); do curl -s -m 20 -o /dev/null "$U/recommend?user_id=$((w + 3))&k=5"; done) &
  clients+=($!)
done
wait "${clients[@]}" # not a bare wait: the server is a background job too
for u in 3 4 5 6; do
  ok 200 '.source == "online"' "$U/recommend?user_id=$u&k=10"
  cp "$T/body" "$T/conc"
  ok 200 '' "$U/users/$u/history?limit=10000"
  "$COFI" recommend "$T/m.cofi" --liked "$(liked "$T/body")" -k 10 --json >"$T/cli"
  same_answer "$T/conc" "$T/cli"
done

# ---- a user unknown to the model, known to the store -------------------------
post '{"events":[{"user_id":"fresh","item_id":"1","event":"like"},{"user_id":"fresh","item_id":"260","event":"like"},{"user_id":"fresh","item_id":"1196","event":"watch"}]}'
ok 200 '.user_id == "fresh" and .source == "online" and (.recommendations | length) == 10' \
  "$U/recommend?user_id=fresh&k=10"
cp "$T/body" "$T/fresh"
"$COFI" recommend "$T/m.cofi" --liked 1,260,1196 -k 10 --json >"$T/cli"
same_answer "$T/fresh" "$T/cli"
# events only on items the model does not know: like no events at all
post '{"user_id":"newonly","item_id":"not-in-model","event":"like"}'
ok 200 '.source == "popular"' "$U/recommend?user_id=newonly&k=5"

# ---- no events at all: the popular list, marked -------------------------------
ok 200 '.user_id == "nobody-at-all" and .source == "popular" and (.recommendations | length) == 7' \
  "$U/recommend?user_id=nobody-at-all&k=7"
jq -c '[.recommendations[].item_id]' "$T/body" >"$T/pop_user"
ok 200 '.source == "popular"' "$U/popular?k=7"
[ "$(jq -c '[.recommendations[].item_id]' "$T/body")" = "$(cat "$T/pop_user")" ] ||
  fail "a user with no events is not given /popular"

# ---- filters -------------------------------------------------------------------
python3 - "$T/cofi.db" Comedy >"$T/comedy" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (i, c) in db.execute("SELECT id, categories FROM cofi_items"):
    if sys.argv[2] in json.loads(c): print(i)
PY
[ "$(wc -l <"$T/comedy")" -gt 100 ] || fail "the store has too few Comedy items"
ok 200 '' "$U/recommend?user_id=2&k=1000"
cp "$T/body" "$T/full2"
ok 200 '(.recommendations | length) == 10' "$U/recommend?user_id=2&k=10&category=Comedy"
python3 - "$T/full2" "$T/body" "$T/comedy" <<'PY' || fail "category=Comedy is not the Comedy items of the full ranking"
import json, sys
full = json.load(open(sys.argv[1]))["recommendations"]
got = json.load(open(sys.argv[2]))["recommendations"]
comedy = set(open(sys.argv[3]).read().split())
want = [x for x in full if x["item_id"] in comedy][:10]
assert [x["item_id"] for x in got] == [x["item_id"] for x in want], (got, want)
assert all(abs(x["score"] - y["score"]) <= 1e-5 for x, y in zip(got, want))
PY
ok 200 '(.recommendations | length) == 0' "$U/recommend?user_id=2&k=10&category=NoSuchCategory"
# items=: a re-ranking of the caller's list (unknown and seen IDs dropped)
cands=$(jq -r '[.recommendations[5,40,3,200,17].item_id] | join(",")' "$T/full2")
seen2=$(curl -s "$U/users/2/history?limit=1" | jq -r '.events[0].item_id')
ok 200 '(.recommendations | length) == 4' "$U/recommend?user_id=2&k=4&items=$cands,unknown-id,$seen2"
python3 - "$T/full2" "$T/body" "$cands" <<'PY' || fail "items= is not the caller's list in score order"
import json, sys
full = json.load(open(sys.argv[1]))["recommendations"]
got = json.load(open(sys.argv[2]))["recommendations"]
c = set(sys.argv[3].split(","))
want = [x for x in full if x["item_id"] in c][:4]
assert [x["item_id"] for x in got] == [x["item_id"] for x in want], (got, want)
PY
# both filters at once; a category set by PUT /items takes effect at once
for it in 2571 4993 5952; do
  ok 200 '.stored' -X PUT -H 'Content-Type: application/json' \
    -d '{"categories":["OnlineTest"],"timestamp":"2001-01-01T00:00:00Z"}' "$U/items/$it"
done
ok 200 '[.recommendations[].item_id] - ["2571","4993","5952"] == [] and (.recommendations | length) >= 1' \
  "$U/recommend?user_id=2&k=10&category=OnlineTest"
ok 200 '[.recommendations[].item_id] == ["2571"] or [.recommendations[].item_id] == []' \
  "$U/recommend?user_id=2&k=10&category=OnlineTest&items=2571,1"

# ---- hidden items are never returned ------------------------------------------------
hid=$(jq -r '.recommendations[0].item_id' "$T/full2")
ok 200 '' "$U/similar_items?item_id=$hid&k=3"
probe=$(jq -r '.similar[0].item_id' "$T/body")
ok 200 '' "$U/similar_items?item_id=$probe&k=10"
jq -e --arg i "$hid" '[.similar[].item_id] | index($i) != null' "$T/body" >/dev/null ||
  fail "test setup: $hid is not among $probe's similar items"
ok 200 '' "$U/popular?k=1000" # cached now: the DELETE must clear it
jq -e --arg i "$hid" '[.recommendations[].item_id] | index($i) != null' "$T/body" >/dev/null ||
  fail "test setup: $hid is not in /popular?k=1000"
ok 200 '.hidden' -X DELETE "$U/items/$hid"
ok 200 '' "$U/items/$hid"
notin() { jq -e --arg i "$hid" "[$1] | index(\$i) == null" "$T/body" >/dev/null || fail "hidden item $hid returned by $2"; }
ok 200 '(.recommendations | length) == 50' "$U/recommend?user_id=2&k=50"; notin '.recommendations[].item_id' /recommend
ok 200 '' "$U/recommend?user_id=2&k=10&items=$hid,1,2,3"; notin '.recommendations[].item_id' "/recommend items="
ok 200 '(.similar | length) == 10' "$U/similar_items?item_id=$probe&k=10"; notin '.similar[].item_id' /similar_items
ok 200 '' "$U/recommend?liked=$probe&k=50"; notin '.recommendations[].item_id' "/recommend liked="
ok 200 '' "$U/recommend?user_id=fresh&k=100"; notin '.recommendations[].item_id' "/recommend (online)"
ok 200 '' "$U/popular?k=1000"; notin '.recommendations[].item_id' /popular

# ---- /popular and /latest against brute force -----------------------------------------
now=$(date -u +%s)
n=0
for it in late-a late-b late-c; do
  n=$((n + 1))
  ok 200 '.stored' -X PUT -H 'Content-Type: application/json' \
    -d "{\"title\":\"Film $it\",\"categories\":[\"Sci-Fi\"],\"timestamp\":$((now - n * 60))}" "$U/items/$it"
done
ok 200 '.stored' -X PUT -H 'Content-Type: application/json' \
  -d "{\"title\":\"Hidden new\",\"categories\":[\"Sci-Fi\"],\"timestamp\":$((now + 100)),\"hidden\":true}" "$U/items/late-hidden"
brute() { # kind k category window_seconds
  python3 - "$T/cofi.db" "$@" <<'PY'
import json, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1]); kind, k, cat, win = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
items = {ikey: (i, json.loads(c), h, ts) for ikey, i, c, h, ts in db.execute("SELECT ikey, id, categories, hidden, ts FROM cofi_items")}
ok = lambda ikey: not items[ikey][2] and (not cat or cat in items[ikey][1])
if kind == "popular":
    since = time.time() - win if win else None
    n = {}
    for ikey, ts in db.execute("SELECT ikey, ts FROM cofi_events"):
        if since is None or (ts is not None and ts >= since): n[ikey] = n.get(ikey, 0) + 1
    rows = sorted(((-c, items[i][0].encode()) for i, c in n.items() if ok(i)))
    print(json.dumps([[r[1].decode(), -r[0]] for r in rows[:k]]))
else:
    rows = sorted(((-items[i][3], items[i][0].encode()) for i in items if items[i][3] is not None and ok(i)))
    print(json.dumps([[r[1].decode(), -r[0]] for r in rows[:k]]))
PY
}
check_list() { # url kind k category window
  ok 200 '' "$U$1"
  got=$(jq -c '[.recommendations[] | [.item_id, .score]]' "$T/body")
  want=$(brute "$2" "$3" "$4" "$5" | jq -c .)
  [ "$got" = "$want" ] || fail "$1: $got, brute force: $want"
}
check_list "/popular?k=20" popular 20 "" 0
check_list "/popular?k=15&category=Comedy" popular 15 Comedy 0
check_list "/popular?k=10&window=1d" popular 10 "" 86400
check_list "/popular?k=10&window=2h&category=Drama" popular 10 Drama 7200
check_list "/latest?k=5" latest 5 "" 0
check_list "/latest?k=5&category=Sci-Fi" latest 5 Sci-Fi 0
ok 200 '.recommendations[0].item_id == "late-a" and .recommendations[0].title == "Film late-a" and .source == "latest"' "$U/latest?k=3"
ok 200 '.window == "1d" and .counted == "events"' "$U/popular?k=1&window=1d"

# ---- bad parameters -------------------------------------------------------------------------
long=$(head -c 300 /dev/zero | tr '\0' c)
err 400 invalid_category "$U/recommend?user_id=2&category=$long"
err 400 invalid_category "$U/recommend?user_id=2&category="
err 400 invalid_category "$U/popular?category=$long"
# items= over the list limit (--max-list, 1000 by default): a 400 naming items
err 400 too_many_ids "$U/recommend?user_id=2&items=$(seq 1 1001 | paste -sd, -)"
jq -e '.error.message | test("items")' "$T/body" >/dev/null || fail "items= limit: $(cat "$T/body")"
err 400 invalid_k "$U/recommend?user_id=2&k=0&category=Comedy"
err 400 invalid_k "$U/popular?k=0"
err 400 invalid_k "$U/latest?k=100000"
err 400 invalid_window "$U/popular?window=7x"
err 400 invalid_window "$U/popular?window=0d"
err 400 invalid_window "$U/popular?window=999999999d"
err 400 unknown_parameter "$U/popular?user_id=1"
err 400 unknown_parameter "$U/latest?window=1d"
err 400 duplicate_parameter "$U/popular?k=1&k=2"
err 400 duplicate_parameter "$U/recommend?user_id=2&category=a&category=b"
err 400 invalid_parameter "$U/recommend?liked=1&category=Comedy"
ok 200 '.paths["/popular"] and .paths["/latest"]' "$U/openapi.json"
stop_server

# ---- no cache: the same answers; without a store: /latest 503 ----------------------------
start_server "$T/s2.log" "$T/m.cofi" --store "$S" --port 0 --online-cache-users 0 --max-header-bytes 1048576
ok 200 '.source == "online"' "$U/recommend?user_id=fresh&k=10"
same_answer "$T/body" "$T/fresh"
err 400 too_many_ids "$U/recommend?user_id=2&items=$(seq 1 10000 | paste -sd, -)"
stop_server

# ---- two servers on one SQLite file: each sees the other's events (event feed) ----------
start_server "$T/fa.log" "$T/m.cofi" --store "$S" --port 0
UA=$U PA=$PID
start_server "$T/fb.log" "$T/m.cofi" --store "$S" --port 0 --feed-interval 0.5
UB=$U PB=$PID
start_server "$T/fc.log" "$T/m.cofi" --store "$S" --port 0 --feed-interval 0
UC=$U PC=$PID
ok 200 '.source == null' "$UB/recommend?user_id=9&k=10"
cp "$T/body" "$T/b9-model"
ok 200 '.accepted == 2' -X POST -H 'Content-Type: application/json' \
  -d '{"events":[{"user_id":"9","item_id":"1","event":"like"},{"user_id":"9","item_id":"2571","event":"complete"}]}' \
  "$UA/feedback"
ok 200 '.source == "online"' "$UA/recommend?user_id=9&k=10"
cp "$T/body" "$T/a9"
# B polls every 0.5 s: its answer becomes A's (within ~5 s, not timed)
for i in $(seq 50); do
  req "$UB/recommend?user_id=9&k=10"
  jq -e '.source == "online"' "$T/body" >/dev/null && break
  sleep 0.1
done
jq -e '.source == "online"' "$T/body" >/dev/null || fail "server B never saw user 9's new events: $(cat "$T/body")"
same_answer "$T/body" "$T/a9"
# and the other way round, from B to A (default interval, 1 s)
ok 200 '.accepted == 1' -X POST -H 'Content-Type: application/json' \
  -d '{"user_id":"9","item_id":"318","event":"like"}' "$UB/feedback"
ok 200 '.source == "online"' "$UB/recommend?user_id=9&k=10"
cp "$T/body" "$T/b9"
for i in $(seq 50); do
  req "$UA/recommend?user_id=9&k=10"
  cmp -s <(jq -c .recommendations "$T/body") <(jq -c .recommendations "$T/b9") && break
  sleep 0.1
done
same_answer "$T/body" "$T/b9"
U=$UB
m=$(metric cofi_feed_users_marked_total)
[ "${m:-0}" -ge 1 ] || fail "B's feed marked no user: $(curl -s "$UB/metrics" | grep cofi_feed)"
[ "$(metric cofi_feed_errors_total)" = 0 ] || fail "B's feed failed: $(cat "$T/fb.log")"
# --feed-interval 0: no feed (no metric; C answers user 9 from the model, as B did before)
U=$UC
[ -z "$(metric cofi_feed_polls_total)" ] || fail "--feed-interval 0 still polls"
ok 200 '.source == null' "$UC/recommend?user_id=9&k=10"
for p in "$PC" "$PB" "$PA"; do PID=$p; stop_server; done
# a store error in the poll: logged once, retried, logged once when it works
# again; the server keeps answering (the events table renamed away and back)
start_server "$T/fd.log" "$T/m.cofi" --store "$S" --port 0 --feed-interval 0.1
rename() { python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=10); c.execute(sys.argv[2]); c.commit()' "$T/cofi.db" "$1"; }
rename "ALTER TABLE cofi_events RENAME TO cofi_events_away"
for i in $(seq 100); do [ "$(metric cofi_feed_errors_total)" -ge 3 ] 2>/dev/null && break; sleep 0.1; done
[ "$(metric cofi_feed_errors_total)" -ge 3 ] || fail "the feed saw no store error: $(cat "$T/fd.log")"
ok 200 '.source == null' "$U/recommend?user_id=2&k=3"
rename "ALTER TABLE cofi_events_away RENAME TO cofi_events"
for i in $(seq 100); do grep -q 'event feed: reading the store again' "$T/fd.log" && break; sleep 0.1; done
[ "$(grep -c "event feed: reading the store's new events failed" "$T/fd.log")" = 1 ] \
  || fail "the feed's failure is not logged exactly once: $(cat "$T/fd.log")"
grep -q 'event feed: reading the store again' "$T/fd.log" || fail "the feed did not recover: $(cat "$T/fd.log")"
grep "event feed: reading the store's new events failed" "$T/fd.log" | grep -q cofi_events \
  || fail "the feed's failure does not say what failed: $(cat "$T/fd.log")"
ok 200 '.accepted == 1' -X POST -H 'Content-Type: application/json' \
  -d '{"user_id":"2","item_id":"318","event":"like"}' "$U/feedback"
stop_server
expect_fail 2 "--feed-interval" "$COFI" serve "$T/m.cofi" --store "$S" --feed-interval -1
expect_fail 2 "--feed-interval" "$COFI" serve "$T/m.cofi" --store "$S" --feed-interval soon

start_server "$T/s3.log" "$T/m.cofi" --port 0
err 503 store_disabled "$U/latest?k=3"
ok 200 '.source == "popular" and (.recommendations | length) == 3' "$U/popular?k=3"
ok 200 '(.recommendations | length) == 3' "$U/popular?k=3&category=Comedy"
err 400 invalid_window "$U/popular?window=1d"
err 404 unknown_user "$U/recommend?user_id=nobody-at-all"
ok 200 '(.recommendations | length) == 5' "$U/recommend?user_id=2&k=5&category=Comedy"
stop_server
expect_fail 2 "--online-cache-users" "$COFI" serve "$T/m.cofi" --online-cache-users x
pass

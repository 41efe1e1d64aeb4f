#!/usr/bin/env bash
# `cofi serve --store URL --models-dir DIR`: versions, background retraining
# and rollback, on a SQLite store of ml-latest-small (ratings >= 4), with a
# small model (16 factors, 5 iterations) to keep it quick.
#   - MODEL becomes version 1 (copied); GET /admin/models' shape; the admin
#     routes without the token -> 401, without --admin-token -> 403
#   - POST /admin/retrain -> 202 at once ("queued" behind a running one);
#     the new version goes live; rollback to the previous version restores
#     its answers exactly (IDs and scores), and to a named version; unknown
#     version 404, bad bodies 400
#   - several retrains under continuous keep-alive load: 0 non-2xx answers
#   - --retrain-after N: N accepted events start a retrain; --retrain-every
#   - a model that fails the check (--retrain-margin -0.5: it must beat the
#     live one by 0.5 Recall@10) is kept, flagged rejected with its reason,
#     never served, and cannot be rolled back to (409)
#   - --keep 3: never more than 3 versions, the live one always among them
#   - restart without MODEL: the live version of the directory is served
#   - SIGTERM during a retrain: exit 0 at once, no temp file, no new version
#   - bad flags and a corrupt manifest are refused with a clear message
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/serve_common.bash"
need_ml
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }

S=sqlite:$T/cofi.db
D=$T/models
"$COFI" import "$ML/ratings.csv" --store "$S" --format movielens --min-value 4 \
  --items "$ML/movies.csv" >"$T/imp.log" 2>&1 || fail "import: $(cat "$T/imp.log")"
"$COFI" train --store "$S" -o "$T/m.cofi" --factors 16 --iterations 5 --seed 3 --quiet \
  >"$T/train.log" 2>&1 || fail "train --store: $(cat "$T/train.log")"
echo tok-123 >"$T/tok"
H=(-H 'Authorization: Bearer tok-123')

# Events the store does not hold as POST /feedback bodies: new information
# that no model has seen. fb*.json: ratings 3..3.5 of 300 users, 5 each;
# late*.json: ratings below 3 of the same users, 5 each.
python3 - "$ML/ratings.csv" "$T" <<'PY'
import csv, json, sys, collections
fb, late = collections.defaultdict(list), collections.defaultdict(list)
for r in csv.DictReader(open(sys.argv[1])):
    x = float(r["rating"])
    if 3.0 <= x < 4: fb[r["userId"]].append(r["movieId"])
    elif x < 3: late[r["userId"]].append(r["movieId"])
def write(rows, name):
    ev = [{"user_id": u, "item_id": i, "event": "watch"}
          for u in sorted(rows, key=int)[:300] for i in rows[u][:5]]
    for j in range(0, len(ev), 500):
        json.dump({"events": ev[j:j + 500]}, open(f"{sys.argv[2]}/{name}{j // 500}.json", "w"))
write(fb, "fb")
write(late, "late")
PY

admin() { ok "$1" "$2" "${H[@]}" "${@:3}"; }
models() { admin 200 "${1:-}" "$U/admin/models"; }
# wait_retrains N: until N retrains have ended (any result), 120 s at most.
wait_retrains() {
  local i
  for i in $(seq 600); do
    req "${H[@]}" "$U/admin/models"
    jq -e --argjson n "$1" '.retrain.state == "idle" and
      (.retrain.succeeded + .retrain.rejected + .retrain.failed + .retrain.cancelled) >= $n' \
      "$T/body" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "retrain $1 did not end within 120 s: $(head -c 600 "$T/body")"
}
answer() { # user -> [[item, score]...] of /recommend
  ok 200 '' "$U/recommend?user_id=$1&k=10"
  jq -c '[.recommendations[] | [.item_id, .score]]' "$T/body"
}
feed() { ok 200 '' -X POST -H 'Content-Type: application/json' --data-binary "@$1" "$U/feedback"; }

# ---- bad flags ----------------------------------------------------------------
expect_fail 2 "--retrain-every needs --models-dir" "$COFI" serve "$T/m.cofi" --store "$S" --retrain-every 1h
expect_fail 2 "--models-dir needs --store" "$COFI" serve "$T/m.cofi" --models-dir "$D"
expect_fail 2 "--retrain-every: expected a duration" "$COFI" serve "$T/m.cofi" --store "$S" --models-dir "$D" --retrain-every 5x
expect_fail 2 "--keep" "$COFI" serve "$T/m.cofi" --store "$S" --models-dir "$D" --keep 1
expect_fail 2 "--retrain-margin" "$COFI" serve "$T/m.cofi" --store "$S" --models-dir "$D" --retrain-margin 2
[ ! -e "$D" ] || fail "a refused start created $D"

# ---- version 1, the admin routes' answers ------------------------------------
start_server "$T/s1.log" "$T/m.cofi" --port 0 --store "$S" --models-dir "$D" --admin-token-file "$T/tok" --keep 3
[ -f "$D/v000001.cofi" ] && cmp -s "$T/m.cofi" "$D/v000001.cofi" || fail "MODEL was not copied to $D/v000001.cofi"
models '.live == 1 and (.models | length) == 1 and .models[0].version == 1 and .models[0].status == "live"
        and (.models[0].created | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))
        and .models[0].users == 609 and .models[0].items > 6000 and .models[0].interactions > 40000
        and (.models[0].metrics | type) == "object" and .retrain.state == "idle"'
err 401 unauthorized "$U/admin/models"
err 401 unauthorized -X POST "$U/admin/rollback"
err 401 unauthorized -X POST -H 'Authorization: Bearer wrong' "$U/admin/retrain"
ok 200 '.versions.live == 1 and .versions.retrain.state == "idle" and (.model.path | endswith("v000001.cofi"))' "$U/health"
err 409 no_previous_version "${H[@]}" -X POST "$U/admin/rollback"
# User 600 has no POSTed events (the feeds cover the first 300 users), so
# its answers come from the live version alone, not from an online fold-in.
orig=$(answer 600)

# ---- a retrain on new events, rollback --------------------------------------
for f in "$T"/fb*.json; do feed "$f"; done
admin 202 '.status == "started" and .live == 1' -X POST "$U/admin/retrain"
wait_retrains 1
models '.live == 2 and ([.models[].version] == [1, 2]) and .models[1].status == "live"
        and .models[0].status == "kept" and .models[1].metrics.held_out_users >= 20
        and (.models[1].metrics.recall_at_10 | type) == "number"
        and (.models[1].metrics.live_recall_at_10 | type) == "number"
        and .models[1].metrics.compared_with_version == 1 and .retrain.last_result == "succeeded"'
ok 200 '.versions.live == 2 and (.model.path | endswith("v000002.cofi")) and .model.generation == 2' "$U/health"
new=$(answer 600)
[ "$new" != "$orig" ] || fail "user 600's answer did not change with version 2"
req "$U/metrics"
grep -q '^cofi_retrains_total{result="succeeded"} 1$' "$T/body" && grep -q '^cofi_model_version 2$' "$T/body" \
  && grep -q '^cofi_retrain_last_duration_seconds ' "$T/body" || fail "/metrics lacks the retrain counters"
admin 200 '.status == "rolled_back" and .live == 1 and .previous == 2' -X POST "$U/admin/rollback"
[ "$(answer 600)" = "$orig" ] || fail "after rollback user 600's answer is not version 1's: $(answer 600) vs $orig"
models '.live == 1 and .models[0].status == "live" and .models[1].status == "kept"
        and (.models[1].reason | test("rolled back to version 1"))'
admin 200 '.status == "rolled_back" and .live == 2' -X POST -d '{"version": 2}' "$U/admin/rollback"
[ "$(answer 600)" = "$new" ] || fail "after rolling forward to version 2 user 600's answer is not version 2's"
admin 200 '.status == "already_live" and .live == 2' -X POST -d '{"version": 2}' "$U/admin/rollback"
err 404 unknown_version "${H[@]}" -X POST -d '{"version": 99}' "$U/admin/rollback"
err 400 invalid_version "${H[@]}" -X POST -d '{"version": "1"}' "$U/admin/rollback"
err 400 invalid_version "${H[@]}" -X POST -d '{"version": 0}' "$U/admin/rollback"
err 400 invalid_body "${H[@]}" -X POST -d '{"versoin": 1}' "$U/admin/rollback"
err 400 invalid_body "${H[@]}" -X POST -d '[1]' "$U/admin/rollback"
err 400 invalid_json "${H[@]}" -X POST -d '{"version":' "$U/admin/rollback"
err 400 invalid_body "${H[@]}" -X POST -d '{"now": true}' "$U/admin/retrain"

# ---- retrains under continuous load: not one non-2xx --------------------------
python3 - "$PORT" "$T/load" "$ML/ratings.csv" <<'PY' &
import csv, http.client, os, random, sys
port, out = int(sys.argv[1]), sys.argv[2]
# users of the model (ratings >= 4): every one of them must get a 2xx
users = sorted({r["userId"] for r in csv.DictReader(open(sys.argv[3])) if float(r["rating"]) >= 4})
stop = out + ".stop"
ok = bad = 0
rnd = random.Random(5)
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
while not os.path.exists(stop):
    conn.request("GET", f"/recommend?user_id={rnd.choice(users)}&k=10")
    r = conn.getresponse()
    r.read()
    if 200 <= r.status < 300: ok += 1
    else:
        bad += 1
        sys.stderr.write(f"status {r.status}\n")
open(out, "w").write(f"{ok} {bad}\n")
PY
LOAD=$!
admin 202 '.status == "started"' -X POST "$U/admin/retrain"
admin 202 '.status == "queued"' -X POST "$U/admin/retrain"
wait_retrains 3
admin 202 '.status == "started"' -X POST "$U/admin/retrain"
wait_retrains 4
touch "$T/load.stop"
wait "$LOAD" || fail "the load client failed"
read -r n_ok n_bad <"$T/load"
[ "$n_bad" = 0 ] || fail "$n_bad non-2xx answers during retrains ($n_ok 2xx)"
[ "$n_ok" -gt 20 ] || fail "the load client made only $n_ok requests"
models '.live == 5 and .retrain.succeeded == 4'
# --keep 3: the live one and the two before it
models '([.models[].version] == [3, 4, 5]) and .models[2].status == "live"'
[ "$(ls "$D" | grep -c '^v[0-9]*\.cofi$')" = 3 ] || fail "--keep 3 left $(ls "$D")"
stop_server
echo "load during 3 retrains: $n_ok answers, all 2xx"

# ---- restart without MODEL: the live version; --retrain-after ------------------
start_server "$T/s2.log" --port 0 --store "$S" --models-dir "$D" --admin-token-file "$T/tok" --keep 3 \
  --retrain-after 40
ok 200 '(.model.path | endswith("v000005.cofi")) and .versions.live == 5' "$U/health"
python3 -c '
import json, sys
ev = [{"user_id": str(u), "item_id": str(i), "event": "like"} for u in range(1, 9) for i in (1, 2, 3, 5, 7)]
json.dump({"events": ev}, open(sys.argv[1], "w"))' "$T/forty.json"
feed "$T/forty.json"
wait_retrains 1
models '.retrain.trigger == "events" and .retrain.started_total == 1 and .live == 6'

# ---- a model that fails the check ----------------------------------------------
stop_server
start_server "$T/s3.log" --port 0 --store "$S" --models-dir "$D" --admin-token-file "$T/tok" --keep 3 \
  --retrain-margin -0.5
for f in "$T"/late*.json; do feed "$f"; done
admin 202 '' -X POST "$U/admin/retrain"
wait_retrains 1
models '.live == 6 and .models[-1].version == 7 and .models[-1].status == "rejected"
        and (.models[-1].reason | test("worse by more than the margin -0.5"))
        and .retrain.last_result == "rejected" and (.retrain.last_error | test("version 7 rejected"))'
ok 200 '(.model.path | endswith("v000006.cofi"))' "$U/health"
err 409 version_rejected "${H[@]}" -X POST -d '{"version": 7}' "$U/admin/rollback"
req "$U/metrics"
grep -q '^cofi_retrains_total{result="rejected"} 1$' "$T/body" || fail "/metrics does not count the rejection"
stop_server

# ---- --retrain-every --------------------------------------------------------------
start_server "$T/s7.log" --port 0 --store "$S" --models-dir "$D" --admin-token-file "$T/tok" --keep 3 \
  --retrain-every 1s
wait_retrains 1
models '.retrain.trigger == "schedule" and .retrain.last_result == "succeeded" and .live >= 8
        and .live == ([.models[].version] | max)'
stop_server

# ---- SIGTERM during a retrain ---------------------------------------------------
# A model with many iterations makes the retrain (same parameters) last.
"$COFI" train --store "$S" -o "$T/slow.cofi" --factors 64 --iterations 200 --seed 3 --quiet \
  >"$T/train.log" 2>&1 || fail "train the slow model: $(cat "$T/train.log")"
start_server "$T/s4.log" "$T/slow.cofi" --port 0 --store "$S" --models-dir "$D" --admin-token-file "$T/tok" --keep 3
models '.live == ([.models[].version] | max) and .models[-1].status == "live"
        and (.models[-1].reason | not)'
before=$(ls "$D")
admin 202 '.status == "started"' -X POST "$U/admin/retrain"
for i in $(seq 100); do grep -q 'retrain started' "$T/s4.log" && break; sleep 0.05; done
sleep 1
ok 200 '.versions.retrain.state == "running"' "$U/health"
stop_server
grep -q 'cancelling the running retrain' "$T/s4.log" || fail "no cancel message: $(cat "$T/s4.log")"
[ "$(ls "$D")" = "$before" ] || fail "a cancelled retrain changed $D: $(ls "$D") (was $before)"
ls -a "$D" | grep -q 'tmp' && fail "temp files left in $D: $(ls -a "$D")"

# ---- without --admin-token: 403; without --models-dir: 404 -------------------------
start_server "$T/s5.log" --port 0 --store "$S" --models-dir "$D"
err 403 admin_disabled "$U/admin/models"
err 403 admin_disabled -X POST "$U/admin/rollback"
err 403 admin_disabled -X POST "$U/admin/retrain"
stop_server
start_server "$T/s6.log" "$T/m.cofi" --port 0 --store "$S" --admin-token-file "$T/tok"
err 404 versions_disabled "${H[@]}" "$U/admin/models"
err 404 versions_disabled "${H[@]}" -X POST "$U/admin/retrain"
stop_server

# ---- a corrupt manifest ----------------------------------------------------------
echo '{"models": [{"version": "x"}]}' >"$D/manifest.json"
expect_fail 3 "manifest.json: models[0] has no version" "$COFI" serve --store "$S" --models-dir "$D"
pass

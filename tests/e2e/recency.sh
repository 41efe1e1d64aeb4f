#!/usr/bin/env bash
# The recency half-life of every model kind (`--recency H`, docs/evaluation.md,
# Recency) end to end on a generated log with timestamps:
#   - train records it (info, info --json, the parameter file tune writes)
#   - a known user's answer equals `--liked` with their items oldest first
#     (the order the model weighs), and differs from the newest-first order
#   - `cofi tune` scores each trial's model with the sweep's half-lives
#   - cofi serve --store: after POST /feedback a known user's answer is
#     their model history oldest first followed by the new item
#   - ALS: users re-fitted with it (a known user = --liked oldest first too)
#   - bad values are refused with a clear message
set -u
source "$(dirname "$0")/serve_common.bash"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to compare answers"; exit 77; }

# 60 users x 25 items; a user's events a minute apart, in an order that
# differs from the item order, so that time order matters.
awk 'BEGIN {
  srand(7)
  print "user_id,item_id,value,timestamp" > "'"$T"'/log.csv"
  for (u = 1; u <= 60; u++) {
    n = 0
    for (j = 0; j < 25; j++)
      if (rand() < 0.2 + (u % 3) * 0.1 + (j % 5) * 0.05) {
        it = (j * 11 + u) % 25 + 1
        print "u" u ",i" it ",1," 1700000000 + u * 10000 + n * 60 > "'"$T"'/log.csv"; n++
      }
  }
}'
"$COFI" train "$T/log.csv" --model ease --lambda 5 --recency 2 -o "$T/e.cofi" --quiet \
  >"$T/train.log" 2>&1 || fail "train --model ease --recency 2: $(cat "$T/train.log")"
"$COFI" info "$T/e.cofi" --json | jq -e '.params.recency == 2' >/dev/null ||
  fail "info --json lacks the recency: $("$COFI" info "$T/e.cofi" --json | head -c 400)"
"$COFI" info "$T/e.cofi" | grep -q "half-life 2 items" || fail "cofi info does not show the half-life"
"$COFI" train "$T/log.csv" --model itemknn --neighbors 10 --recency 3 -o "$T/k.cofi" --quiet \
  >"$T/train.log" 2>&1 || fail "train --model itemknn --recency 3: $(cat "$T/train.log")"

# same_answer A B: the same scores rank by rank (within 1e-5), and the same
# items but where scores tie within 1e-5 (sums in another order may swap them)
same_answer() {
  python3 - "$1" "$2" <<'PY' || fail "answers differ: $(head -c 300 "$1") vs $(head -c 300 "$2")"
import json, sys
a, b = (json.load(open(p))["recommendations"] for p in sys.argv[1:3])
assert len(a) == len(b), "lengths differ"
assert all(abs(x["score"] - y["score"]) <= 1e-5 for x, y in zip(a, b)), "scores differ"
sb = {x["item_id"]: x["score"] for x in b}
last = b[-1]["score"]
for x in a:
    s = sb.get(x["item_id"])
    assert (s is not None and abs(s - x["score"]) <= 1e-5) or (s is None and abs(x["score"] - last) <= 1e-5), "items differ: " + x["item_id"]
PY
}
# user_items U [sort flags]: U's items by time, oldest first (or -r: newest first)
user_items() { awk -F, -v u="$1" '$1 == u {print $4, $2}' "$T/log.csv" | sort -n ${2:-} | awk '{print $2}' | paste -sd,; }

# ALS: users re-fitted with the half-life, a version 3 file
"$COFI" train "$T/log.csv" --factors 8 --iterations 8 --regularization 0.5 --alpha 5 --recency 2 \
  -o "$T/a.cofi" --quiet >"$T/train.log" 2>&1 || fail "train ALS --recency 2: $(cat "$T/train.log")"
"$COFI" info "$T/a.cofi" --json | jq -e '.params.recency == 2 and .params.model == "als"' >/dev/null ||
  fail "ALS info lacks the recency"
for m in e k a; do
  for u in u7 u12 u33; do
    "$COFI" recommend "$T/$m.cofi" --user "$u" -k 8 --json >"$T/user.json" || fail "recommend --user $u"
    "$COFI" recommend "$T/$m.cofi" --liked "$(user_items "$u")" -k 8 --json >"$T/liked.json" ||
      fail "recommend --liked"
    same_answer "$T/user.json" "$T/liked.json"
  done
done
# the order counts: newest first gives another answer for some user
differs=0
for u in u7 u12 u33 u41; do
  "$COFI" recommend "$T/e.cofi" --liked "$(user_items "$u")" -k 8 --json | jq -c '[.recommendations[].item_id]' >"$T/a"
  "$COFI" recommend "$T/e.cofi" --liked "$(user_items "$u" -r)" -k 8 --json | jq -c '[.recommendations[].item_id]' >"$T/b"
  cmp -s "$T/a" "$T/b" || differs=1
done
[ $differs = 1 ] || fail "with a half-life, the order of --liked changed no answer"

# bad values
expect_fail 2 "--recency" "$COFI" train "$T/log.csv" --model ease --recency -1 -o "$T/x.cofi"
expect_fail 2 "--recency" "$COFI" train "$T/log.csv" --model ease --recency nan -o "$T/x.cofi"
[ ! -e "$T/x.cofi" ] || fail "a refused training wrote a model"

# tune: every trial scores the half-lives of the sweep on its trained model
# and keeps the best; --recency fixes it; the file round-trips
"$COFI" tune "$T/log.csv" --model all --budget 6 --trial-seeds 1 --factors 8 --iterations 3 -o "$T/t.params" \
  >"$T/tune.log" 2>&1 || fail "tune: $(tail -3 "$T/tune.log")"
# half_lives LOG: the recency column of a trial table
half_lives() { awk -F'|' '/^\| trial/ {for (i = 1; i <= NF; i++) if ($i ~ /recency/) c = i}
                          /^\| +[0-9]+ \|/ {gsub(/ /, "", $c); print $c}' "$1"; }
half_lives "$T/tune.log" >"$T/hl"
[ "$(wc -l <"$T/hl")" = 8 ] || fail "tune ran $(wc -l <"$T/hl") trials, expected 8: $(cat "$T/tune.log")"
grep -vxE '0|1|2|4|8|16|32' "$T/hl" && fail "a trial's half-life is not one of the sweep: $(cat "$T/tune.log")"
grep -q "| ease lambda 500 " "$T/tune.log" && grep -q "| itemknn cosine 100 " "$T/tune.log" ||
  fail "tune --model all did not try EASE and item-kNN: $(cat "$T/tune.log")"
best=$(sed -n 's/.*recency half-life \([0-9.]*\);.*/\1/p' "$T/tune.log")
if [ -n "$best" ]; then
  grep -qx "recency = $best" "$T/t.params" || fail "the best half-life $best is not in the parameter file: $(cat "$T/t.params")"
else
  grep -q "^recency" "$T/t.params" && fail "a half-life in the file but not in the best trial"
fi
"$COFI" tune "$T/log.csv" --budget 3 --trial-seeds 1 --factors 8 --iterations 3 --recency 0 -o "$T/t0.params" \
  >"$T/tune0.log" 2>&1 || fail "tune --recency 0: $(tail -3 "$T/tune0.log")"
[ "$(half_lives "$T/tune0.log" | sort -u)" = 0 ] ||
  fail "tune --recency 0 tried other half-lives: $(cat "$T/tune0.log")"
grep -q "^recency" "$T/t0.params" && fail "tune --recency 0 wrote a half-life"
printf 'model = ease\nlambda = 5\nrecency = 2\n' >"$T/r.params"
"$COFI" train "$T/log.csv" --params "$T/r.params" -o "$T/p.cofi" --quiet || fail "train --params with recency"
"$COFI" info "$T/p.cofi" --json | jq -e '.params.recency == 2 and .params.model == "ease"' >/dev/null ||
  fail "the parameter file's recency did not reach the model"
"$COFI" eval "$T/log.csv" --params "$T/r.params" --json --quiet | jq -e '.n_users > 0' >/dev/null ||
  fail "eval --params with recency"

# serve: an online user's history is the model row oldest first, then the new item
S=sqlite:$T/cofi.db
"$COFI" import "$T/log.csv" --store "$S" >"$T/imp.log" 2>&1 || fail "import: $(cat "$T/imp.log")"
for pair in e:u12 a:u33; do # EASE and ALS, a user each
  m=${pair%%:*} u=${pair#*:}
  start_server "$T/s.log" "$T/$m.cofi" --store "$S" --port 0
  ok 200 '.source == null' "$U/recommend?user_id=$u&k=8"
  cp "$T/body" "$T/served"
  "$COFI" recommend "$T/$m.cofi" --user "$u" -k 8 --json >"$T/cli" || fail "recommend --user $u"
  same_answer "$T/served" "$T/cli"
  new=$(jq -r '.recommendations[3].item_id' "$T/served")
  ok 200 '.accepted == 1' -X POST -H 'Content-Type: application/json' \
    -d "{\"user_id\":\"$u\",\"item_id\":\"$new\",\"event\":\"watch\"}" "$U/feedback"
  ok 200 '.source == "online"' "$U/recommend?user_id=$u&k=8"
  cp "$T/body" "$T/online"
  "$COFI" recommend "$T/$m.cofi" --liked "$(user_items "$u"),$new" -k 8 --json >"$T/cli2" ||
    fail "recommend --liked (+new)"
  same_answer "$T/online" "$T/cli2"
  stop_server
done
echo "recency: ranks, known users = --liked oldest first, tune, parameter files, online order: all pass"

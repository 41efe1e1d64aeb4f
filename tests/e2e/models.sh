#!/usr/bin/env bash
# EASE and item-kNN end to end on ml-latest-small: train, info, recommend
# (known user, liked items, all users), similar items, eval --model, tune
# --model and --params, and cofi serve (recommend, cold start, batch,
# similar items); the ALS-only paths (explain, similar users) refused with
# the reason; bad flags and an EASE over --max-memory refused.
set -u
. "$(dirname "$0")/lib.bash"
need_ml
command -v jq >/dev/null && command -v curl >/dev/null || { echo "SKIP: jq and curl are needed"; exit 77; }
T=$(mktemp -d)
SPID=
trap '[ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null; rm -rf "$T"' EXIT
R=$ML/ratings.csv
MLF=(--format movielens --min-value 4)

for spec in "ease --lambda 300" "itemknn --knn-weighting cosine" "itemknn --knn-weighting tfidf --neighbors 50" \
            "itemknn --knn-weighting bm25"; do
  read -r kind rest <<<"$spec"
  name=${spec// /_}
  # shellcheck disable=SC2086
  "$COFI" train "$R" "${MLF[@]}" --items "$ML/movies.csv" --model $spec -o "$T/$name.cofi" --quiet \
    >"$T/train.log" 2>&1 || fail "train --model $spec: $(tail -2 "$T/train.log")"
  info=$("$COFI" info "$T/$name.cofi" --json) || fail "info $spec"
  jq -e --arg k "$kind" '.model == $k and .params.model == $k and .factors == 0 and .n_users == 609' \
    <<<"$info" >/dev/null || fail "info of $spec: $info"
  "$COFI" info "$T/$name.cofi" | grep -q "^model  *$( [ "$kind" = ease ] && echo EASE || echo item-kNN)" \
    || fail "info text of $spec names no model"
  out=$("$COFI" recommend "$T/$name.cofi" --user 1 -k 10 --json) || fail "recommend $spec"
  jq -e '(.recommendations | length) == 10 and .recommendations[0].title != null
         and ([.recommendations[].score] | . == (sort | reverse))' <<<"$out" >/dev/null \
    || fail "recommend from $spec: $out"
  # the user's own items are filtered: none of user 1's training items
  seen=$(awk -F, '$1 == 1 && $3 >= 4 {print $2}' "$R" | sort -u)
  for it in $(jq -r '.recommendations[].item_id' <<<"$out"); do
    grep -qx "$it" <<<"$seen" && fail "$spec recommended user 1's item $it"
  done
  out=$("$COFI" recommend "$T/$name.cofi" --liked 296,318,593,nosuch -k 5 --json) || fail "liked $spec"
  jq -e '(.recommendations | length) == 5 and .unknown == ["nosuch"]
         and ([.recommendations[].item_id] | index("296") == null)' <<<"$out" >/dev/null \
    || fail "cold start from $spec: $out"
  out=$("$COFI" similar "$T/$name.cofi" --item 1 -k 5 --json) || fail "similar $spec"
  jq -e '(.similar | length) == 5 and ([.similar[].item_id] | index("1") == null)' <<<"$out" >/dev/null \
    || fail "similar from $spec: $out"
  expect_fail 2 "finding similar users needs an ALS model; this model is $kind" \
    "$COFI" similar "$T/$name.cofi" --user 1
  expect_fail 2 "explaining needs an ALS model; this model is $kind" \
    "$COFI" recommend "$T/$name.cofi" --user 1 --explain
done

# all users at once: one line per user and item (plus the header)
"$COFI" recommend "$T/ease_--lambda_300.cofi" --all-users -k 3 -o "$T/recs.csv" >/dev/null 2>&1 \
  || fail "recommend --all-users from EASE"
[ "$(wc -l <"$T/recs.csv")" = $((609 * 3 + 1)) ] || fail "--all-users wrote $(wc -l <"$T/recs.csv") lines"
# the batch's first user equals the single query
first=$(sed -n 2,4p "$T/recs.csv" | cut -d, -f2 | paste -sd,)
user=$(sed -n 2p "$T/recs.csv" | cut -d, -f1)
single=$("$COFI" recommend "$T/ease_--lambda_300.cofi" --user "$user" -k 3 --json | jq -r '[.recommendations[].item_id] | join(",")')
[ "$first" = "$single" ] || fail "--all-users gives $first for user $user, --user gives $single"

# eval --model: the model's row is named after it, next to the baselines
for kind in ease itemknn; do
  out=$("$COFI" eval "$R" "${MLF[@]}" --protocol leave-last-out --model $kind --k 10 --json --quiet) \
    || fail "eval --model $kind"
  jq -e --arg k "$kind" '.[$k]["recall@10"] > .random["recall@10"] and .popularity["recall@10"] > 0' \
    <<<"$out" >/dev/null || fail "eval --model $kind: $out"
done
"$COFI" eval "$R" "${MLF[@]}" --protocol leave-last-out --model ease --k 10 --quiet | grep -q "^| EASE |" \
  || fail "eval table has no EASE row"

# tune --model ease writes the model into the parameter file; train and eval honour it
"$COFI" tune "$R" "${MLF[@]}" --protocol leave-last-out --model ease --budget 2 -o "$T/e.params" --quiet \
  >"$T/tune.log" 2>&1 || fail "tune --model ease: $(tail -2 "$T/tune.log")"
grep -qx "model = ease" "$T/e.params" || fail "tuned parameters lack the model: $(cat "$T/e.params")"
grep -Eq '^lambda = [0-9]+$' "$T/e.params" || fail "tuned lambda not a round number: $(cat "$T/e.params")"
"$COFI" train "$R" "${MLF[@]}" --params "$T/e.params" -o "$T/p.cofi" --quiet >/dev/null 2>&1 \
  || fail "train --params with an EASE parameter file"
"$COFI" info "$T/p.cofi" --json | jq -e '.model == "ease"' >/dev/null || fail "train --params did not train EASE"
out=$("$COFI" eval "$R" "${MLF[@]}" --protocol leave-last-out --params "$T/e.params" --k 10 --json --quiet) \
  || fail "eval --params with an EASE parameter file"
jq -e 'has("ease")' <<<"$out" >/dev/null || fail "eval --params did not evaluate EASE: $out"

# tune --model all: --budget counts ALS trials, EASE comes on top (trial 4)
out=$("$COFI" tune "$R" "${MLF[@]}" --protocol leave-last-out --model all --budget 4 --factors 8 --iterations 2 \
  --trial-seeds 1 --json 2>"$T/tune_all.log") || fail "tune --model all: $(tail -2 "$T/tune_all.log")"
jq -e '.trials == 5' <<<"$out" >/dev/null || fail "tune --model all --budget 4 ran $(jq .trials <<<"$out") trials"
grep -Eq '^\|   4 \| ease lambda 500 ' "$T/tune_all.log" || fail "trial 4 is not EASE: $(cat "$T/tune_all.log")"
[ "$(grep -Ec '^\| +[0-9]+ \| als ' "$T/tune_all.log")" = 4 ] || fail "tune --model all did not run 4 ALS trials"

# cofi serve with an item-kNN model
"$COFI" serve "$T/itemknn_--knn-weighting_cosine.cofi" --host 127.0.0.1 --port 0 >"$T/serve.log" 2>&1 &
SPID=$!
PORT=
for _ in $(seq 200); do
  PORT=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\) with.*/\1/p' "$T/serve.log" | head -n 1)
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "$PORT" ] || fail "serve did not start: $(cat "$T/serve.log")"
U=http://127.0.0.1:$PORT
curl -sf "$U/recommend?user_id=1&k=4" | jq -e '(.recommendations | length) == 4' >/dev/null \
  || fail "serve /recommend from item-kNN"
curl -sf "$U/recommend?liked=296,318&k=4" | jq -e '(.recommendations | length) == 4 and .liked == ["296","318"]' \
  >/dev/null || fail "serve cold start from item-kNN"
curl -sf "$U/similar_items?item_id=1&k=3" | jq -e '(.similar | length) == 3' >/dev/null \
  || fail "serve /similar_items from item-kNN"
curl -sf -XPOST "$U/recommend/batch" -d '{"users":["1","2"],"k":2}' \
  | jq -e '(.results | length) == 2 and (.results[1].recommendations | length) == 2' >/dev/null \
  || fail "serve /recommend/batch from item-kNN"
code=$(curl -s -o "$T/body" -w '%{http_code}' "$U/similar_users?user_id=1")
[ "$code" = 400 ] && jq -e '.error.code == "needs_als_model" and (.error.message | test("this model is itemknn"))' \
  "$T/body" >/dev/null || fail "/similar_users on item-kNN: $code $(cat "$T/body")"
code=$(curl -s -o "$T/body" -w '%{http_code}' "$U/recommend?user_id=1&explain=1")
[ "$code" = 400 ] && jq -e '.error.code == "needs_als_model"' "$T/body" >/dev/null \
  || fail "explain on item-kNN: $code $(cat "$T/body")"
curl -sf "$U/health" | jq -e '.model.params.model == "itemknn" and .model.params.neighbors == 100' >/dev/null \
  || fail "/health does not name the model kind"
kill "$SPID"
wait "$SPID" 2>/dev/null
SPID=

# bad flags, and EASE over the memory limit (the sizes in the message)
expect_fail 2 "--model: expected als, ease or itemknn, got 'foo'" "$COFI" train "$R" --model foo -o "$T/x.cofi"
expect_fail 2 "--knn-weighting: expected cosine, tfidf or bm25" "$COFI" train "$R" --model itemknn \
  --knn-weighting jaccard -o "$T/x.cofi"
expect_fail 2 "--neighbors: " "$COFI" train "$R" --model itemknn --neighbors 0 -o "$T/x.cofi"
expect_fail 2 "--lambda: " "$COFI" train "$R" --model ease --lambda -1 -o "$T/x.cofi"
expect_fail 2 "--max-memory: expected a byte count" "$COFI" train "$R" --model ease --max-memory 4X -o "$T/x.cofi"
expect_fail 2 "--model: expected als, ease, itemknn or all" "$COFI" tune "$R" --model svd --budget 1
expect_fail 2 "6298 x 6298 floats = 151.3 MiB, more than the memory limit of 10.0 MiB (--max-memory)" \
  "$COFI" train "$R" "${MLF[@]}" --model ease --max-memory 10M -o "$T/x.cofi" --quiet
[ ! -e "$T/x.cofi" ] || fail "a refused training wrote a model"
pass

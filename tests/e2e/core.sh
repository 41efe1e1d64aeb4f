#!/usr/bin/env bash
# End to end on ml-latest-small with the seeds' parameters: train, then
# recommend for user 1 (10 titled items, none of the movies user 1 rated
# >= 4), cold start, similar, info --json, unknown IDs, bad k, and
# byte-identical model files for --threads 1 and 2.
set -u
. "$(dirname "$0")/lib.bash"
need_ml
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

"$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 --items "$ML/movies.csv" \
  --factors 64 --regularization 0.02 --alpha 20 --iterations 20 -o "$T/ml.cofi" --quiet \
  || fail "train on ml-latest-small"
r=$("$COFI" recommend "$T/ml.cofi" --user 1 -k 10 --json) || fail "recommend --user 1"
[ "$(jq '.recommendations | length' <<<"$r")" = 10 ] || fail "not 10 recommendations: $r"
jq -e '.recommendations | all(.title != null and .title != "" and .score != null)' <<<"$r" >/dev/null \
  || fail "recommendations without titles: $r"
liked=$(awk -F, 'NR>1 && $1==1 && $3>=4 {print $2}' "$ML/ratings.csv" | sort -u)
for i in $(jq -r '.recommendations[].item_id' <<<"$r"); do
  grep -qx "$i" <<<"$liked" && fail "recommended movie $i that user 1 rated >= 4"
done
# --no-filter brings seen items back; --exclude removes the given one
top=$(jq -r '.recommendations[0].item_id' <<<"$r")
"$COFI" recommend "$T/ml.cofi" --user 1 -k 10 --exclude "$top" --json | jq -e --arg t "$top" \
  '[.recommendations[].item_id] | index($t) == null' >/dev/null || fail "--exclude ignored"
"$COFI" recommend "$T/ml.cofi" --user 1 -k 10 --no-filter --json | jq -e \
  '[.recommendations[].item_id] | any(. == "260" or . == "1196" or . == "2571" or . == "1198")' >/dev/null \
  || fail "--no-filter should bring back user 1's favourites"

c=$("$COFI" recommend "$T/ml.cofi" --liked 296,318,593,no-such -k 5 --json) || fail "cold start"
jq -e '(.recommendations | length) == 5 and .unknown == ["no-such"] and
       ([.recommendations[].item_id] | any(. == "296" or . == "318" or . == "593") | not)' <<<"$c" >/dev/null \
  || fail "cold start output: $c"
expect_fail 1 "none of the --liked" "$COFI" recommend "$T/ml.cofi" --liked nope,nada
expect_fail 1 "use --liked" "$COFI" recommend "$T/ml.cofi" --user no-such-user
expect_fail 2 "-k" "$COFI" recommend "$T/ml.cofi" --user 1 -k 0
expect_fail 2 "-k" "$COFI" recommend "$T/ml.cofi" --user 1 -k abc
n=$("$COFI" recommend "$T/ml.cofi" --user 1 -k 100000 --json | jq '.recommendations | length')
[ "$n" -gt 6000 ] && [ "$n" -lt 6298 ] || fail "k beyond the catalog should clamp ($n)"

s=$("$COFI" similar "$T/ml.cofi" --item 1 -k 5 --json) || fail "similar --item"
jq -e '(.similar | length) == 5 and ([.similar[].item_id] | index("1") == null)' <<<"$s" >/dev/null || fail "similar: $s"
"$COFI" similar "$T/ml.cofi" --user 1 -k 5 --json | jq -e '(.similar | length) == 5' >/dev/null || fail "similar --user"
expect_fail 1 "unknown item" "$COFI" similar "$T/ml.cofi" --item no-such-item
"$COFI" info "$T/ml.cofi" --json | jq -e '.n_users == 609 and .n_items == 6298 and .factors == 64
   and .params.alpha == 20 and .file_bytes > 0 and (.created | test("^20"))' >/dev/null || fail "info --json"

for th in 1 2; do
  SOURCE_DATE_EPOCH=1700000000 "$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 \
    --factors 32 --iterations 5 --threads $th -o "$T/t$th.cofi" --quiet || fail "train --threads $th"
done
cmp -s "$T/t1.cofi" "$T/t2.cofi" || fail "model files differ between --threads 1 and 2"
SOURCE_DATE_EPOCH=1700000000 "$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 \
  --factors 32 --iterations 5 --threads 2 --solver cholesky -o "$T/c.cofi" --quiet || fail "cholesky"
pass

#!/usr/bin/env bash
# cofi recommend --explain on ml-latest-small: every recommendation has
# "because" items from the user's own history, largest contribution first;
# for a cold-start user with three liked items the three contributions add
# up to the recommendation's score (the score of the folded-in vector); the
# table shows a "because you liked" line per recommendation; and the plain
# answer is the same with and without --explain.
set -u
. "$(dirname "$0")/lib.bash"
need_ml
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
"$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 --items "$ML/movies.csv" \
  --factors 32 --regularization 0.02 --alpha 20 --iterations 10 -o "$T/ml.cofi" --quiet \
  || fail "train on ml-latest-small"

r=$("$COFI" recommend "$T/ml.cofi" --user 1 -k 10 --explain --json) || fail "recommend --explain"
jq -e '.recommendations | length == 10 and all(.because | length == 3)' <<<"$r" >/dev/null \
  || fail "not 3 'because' items for each of 10 recommendations: $r"
jq -e '.recommendations | all([.because[].contribution] as $c | $c == ($c | sort | reverse))' <<<"$r" >/dev/null \
  || fail "'because' items are not largest first: $r"
liked=$(awk -F, 'NR>1 && $1==1 && $3>=4 {print $2}' "$ML/ratings.csv" | sort -u)
for i in $(jq -r '.recommendations[].because[].item_id' <<<"$r" | sort -u); do
  grep -qx "$i" <<<"$liked" || fail "'because' item $i is not in user 1's history"
done
jq -e '.recommendations | all(.because | all(.title != null))' <<<"$r" >/dev/null || fail "because without titles"
plain=$("$COFI" recommend "$T/ml.cofi" --user 1 -k 10 --json | jq -c '[.recommendations[] | [.item_id, .score]]')
[ "$(jq -c '[.recommendations[] | [.item_id, .score]]' <<<"$r")" = "$plain" ] \
  || fail "--explain changed the recommendations"

c=$("$COFI" recommend "$T/ml.cofi" --liked 296,318,593 -k 5 --explain --json) || fail "cold start --explain"
jq -e '.recommendations | length == 5 and all(
         ([.because[].contribution] | add) as $t | ((($t - .score) | fabs) <= 1e-4 * ((.score | fabs) + 1e-3)))' \
  <<<"$c" >/dev/null || fail "cold start: the contributions of the 3 liked items do not add up to the score: $c"

"$COFI" recommend "$T/ml.cofi" --user 1 -k 3 --explain >"$T/table" || fail "table --explain"
[ "$(grep -c 'because you liked' "$T/table")" = 3 ] || fail "table: not one 'because' line per row: $(cat "$T/table")"
pass

#!/usr/bin/env bash
# What the dashboard asks of `cofi serve`, on ml-latest-small: explain=1
# (every recommendation gets 3 "because" items from the user's history,
# largest first, and the plain answer is unchanged), GET /explain (the
# contributions sum to the score, n= keeps the top n and sums the rest in
# "others", cold start gives exactly the recommendation's score), title
# search (ranking, case, counts), a user's history (the training row),
# interactions in /items/{id} (counted from ratings.csv), kernel_set in
# /health, the dashboard's files (types, CSP, /ui redirect), and the errors.
set -u
. "$(dirname "$0")/serve_common.bash"
need_ml
"$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 --items "$ML/movies.csv" \
  --factors 32 --regularization 0.02 --alpha 20 --iterations 10 --seed 42 -o "$T/ml.cofi" --quiet \
  || fail "train on ml-latest-small"
start_server "$T/serve.log" "$T/ml.cofi" --host 127.0.0.1 --port 0
liked1=$(awk -F, 'NR>1 && $1==1 && $3>=4 {print $2}' "$ML/ratings.csv" | sort -u)

# explain=1 on /recommend: 3 because items each, from the history, largest first.
ok 200 '.recommendations | length == 10 and all(.because | length == 3)' "$U/recommend?user_id=1&k=10&explain=1"
cp "$T/body" "$T/ex.json"
jq -e '.recommendations | all([.because[].contribution] as $c | $c == ($c | sort | reverse))' "$T/ex.json" >/dev/null \
  || fail "because not largest first"
for i in $(jq -r '.recommendations[].because[].item_id' "$T/ex.json" | sort -u); do
  grep -qx "$i" <<<"$liked1" || fail "because item $i is not in user 1's history"
done
jq -e '.recommendations | all(.because | all(.title | length > 0))' "$T/ex.json" >/dev/null || fail "because without titles"
ok 200 '' "$U/recommend?user_id=1&k=10"
[ "$(jq -c '[.recommendations[] | [.item_id, .score]]' "$T/body")" = \
  "$(jq -c '[.recommendations[] | [.item_id, .score]]' "$T/ex.json")" ] || fail "explain=1 changed the recommendations"
jq -e '.recommendations | all(has("because") | not)' "$T/body" >/dev/null || fail "because without explain=1"
ok 200 '.recommendations | all(has("because") | not)' "$U/recommend?user_id=1&k=3&explain=0"
# /invocations
ok 200 '.recommendations[0].because | length == 3' -X POST -d '{"user_id": 1, "k": 2, "explain": true}' "$U/invocations"
err 400 invalid_type -X POST -d '{"user_id": 1, "explain": "yes"}' "$U/invocations"
err 400 invalid_parameter "$U/recommend?user_id=1&explain=maybe"
err 400 duplicate_parameter "$U/recommend?user_id=1&explain=1&explain=1"

# cold start: the 3 liked items' contributions add up to each score.
ok 200 '.recommendations | length == 5 and all(
          (.because | length == 3) and
          (([.because[].contribution] | add) - .score | fabs) <= 1e-4 * ((.score | fabs) + 1e-3))' \
  "$U/recommend_cold?liked=296,318,593&k=5&explain=1"
cold=$(jq -r '.recommendations[0].item_id' "$T/body"); cold_score=$(jq '.recommendations[0].score' "$T/body")

# /explain: all contributions sum to the score; n keeps the top n.
item=$(jq -r '.recommendations[0].item_id' "$T/ex.json")
ok 200 ".item_id == \"$item\" and .user_id == \"1\" and .history == $(wc -l <<<"$liked1") and
        (.because | length) == .history and .others == 0 and (.title | length > 0) and
        ((([.because[].contribution] | add) - .score) | fabs) <= 1e-4 * (.score | fabs)" \
  "$U/explain?user_id=1&item_id=$item"
full=$(jq -c '.because[:3]' "$T/body"); score=$(jq .score "$T/body")
ok 200 "(.because | length) == 3 and ((([.because[].contribution] | add) + .others - $score) | fabs) <= 1e-4 * ($score | fabs)" \
  "$U/explain?user_id=1&item_id=$item&n=3"
[ "$(jq -c .because "$T/body")" = "$full" ] || fail "n=3 is not the first 3 of the full list"
[ "$(jq -c '.recommendations[0].because' "$T/ex.json")" = "$full" ] || fail "explain=1's because is not /explain's top 3"
ok 200 "(.score - $cold_score | fabs) <= 1e-5 * ($cold_score | fabs) and .liked == [\"296\",\"318\",\"593\"]" \
  "$U/explain?liked=296,318,593,296,nope&item_id=$cold"
err 400 missing_parameter "$U/explain?user_id=1"
err 400 missing_parameter "$U/explain?item_id=1"
err 400 invalid_parameter "$U/explain?user_id=1&liked=1&item_id=1"
err 400 invalid_parameter "$U/explain?user_id=1&item_id=1&n=0"
err 400 unknown_parameter "$U/explain?user_id=1&item_id=1&k=3"
err 404 unknown_user "$U/explain?user_id=nobody&item_id=1"
err 404 unknown_item "$U/explain?user_id=1&item_id=nothing"
err 404 unknown_items "$U/explain?liked=nope&item_id=1"

# title search
ok 200 '.matches == 4 and .items[0].item_id == "2571" and ([.items[].title] | all(test("matrix"; "i")))' \
  "$U/items?search=MaTrIx&k=10"
ok 200 '.items[0].title | startswith("Toy Story")' "$U/items?search=toy%20story&k=3"
ok 200 '.items[0].item_id == "296"' "$U/items?search=296&k=3"
ok 200 '.matches == 0 and .items == []' "$U/items?search=qqqzzzxx"
# every title of the model (items with a rating >= 4) holding "the", any case
n_the=$(python3 -c '
import csv, sys
ml = sys.argv[1]
keep = {r["movieId"] for r in csv.DictReader(open(ml + "/ratings.csv")) if float(r["rating"]) >= 4}
print(sum(1 for r in csv.DictReader(open(ml + "/movies.csv", encoding="utf-8"))
          if r["movieId"] in keep and "the" in r["title"].lower()))' "$ML")
ok 200 ".matches == $n_the and (.items | length) == 7" "$U/items?search=the&k=7"
ok 200 '[.items[].interactions] as $c | $c == ($c | sort | reverse)' "$U/items?search=star%20wars&k=5"
err 400 missing_parameter "$U/items?search=%20"
err 400 missing_parameter "$U/items"
err 400 invalid_k "$U/items?search=a&k=0"
err 400 invalid_parameter "$U/items?search=$(head -c 300 /dev/zero | tr '\0' a)"

# history from the model
ok 200 ".user_id == \"1\" and .source == \"model\" and .total == $(wc -l <<<"$liked1") and (.events | length) == 5 and
        (.events | all(.value == 1 and (.title | length > 0)))" "$U/users/1/history?limit=5"
jq -r '.events[].item_id' "$T/body" | while read -r i; do grep -qx "$i" <<<"$liked1" || fail "history item $i"; done
ok 200 ".events | length == $(wc -l <<<"$liked1")" "$U/users/1/history?limit=100000"
err 404 unknown_user "$U/users/nobody/history"
err 404 not_found "$U/users/1"
err 404 not_found "$U/users/1/friends"
err 400 invalid_parameter "$U/users/1/history?limit=0"
err 400 unknown_parameter "$U/users/1/history?k=3"

# interactions of an item = users with a rating >= 4 for it
n296=$(awk -F, 'NR>1 && $2==296 && $3>=4 {print $1}' "$ML/ratings.csv" | sort -u | wc -l)
ok 200 ".interactions == $n296 and .title == \"Pulp Fiction (1994)\"" "$U/items/296"
ok 200 '.server.kernel_set | test("^(avx512|avx2|generic|reference)$")' "$U/health"

# the dashboard's files
for f in "/ui/ text/html" "/ui/index.html text/html" "/ui/app.js text/javascript" "/ui/style.css text/css"; do
  set -- $f
  curl -s -D "$T/h" -o "$T/f" "$U$1" || fail "GET $1"
  grep -qi "^content-type: $2; charset=utf-8" "$T/h" || fail "$1: type: $(grep -i content-type "$T/h")"
  grep -qi "^content-security-policy: default-src 'self'" "$T/h" || fail "$1: no CSP"
  [ -s "$T/f" ] || fail "$1: empty"
done
cmp -s "$T/f" "$COFI_ROOT/ui/style.css" || fail "/ui/style.css is not ui/style.css"
[ "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$U/ui")" = "301 $U/ui/" ] || fail "/ui redirect"
err 404 not_found "$U/ui/nothing.js"
err 404 not_found --path-as-is "$U/ui/../health"
stop_server
pass

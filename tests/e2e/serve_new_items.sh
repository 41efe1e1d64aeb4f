#!/usr/bin/env bash
# `cofi serve --store`: items the model has not seen get a vector from
# their categories (server/new_items.c, docs/serving.md "New items").
# A SQLite store from ml-latest-small (cofi import --items), a model
# trained from it (cofi train --store), then:
#   - PUT /items/newest-film {"categories": ["Sci-Fi"]}: /similar_items of it
#     answers 5 model items that are all Sci-Fi, marked source: metadata
#   - it is merged into /recommend by score, marked, for the user it suits
#     best, once k reaches its rank (and not before); scores stay sorted
#   - DELETE hides it everywhere; unknown categories or hidden: no vector
#   - the mean map the same way; a bad --metadata-map is a usage error
#   - PostgreSQL (a throwaway server, tests/store/with_postgres.sh): the
#     same store scan gives a new item its vector, and a restart rebuilds it
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${COFI_TEST_PG_URL:-}" ]; then
  exec bash "$here/../store/with_postgres.sh" bash "$0" "$@"
fi
source "$here/serve_common.bash"
need_ml
S=sqlite:$T/store.db
"$COFI" import "$ML/ratings.csv" --store "$S" --format movielens --min-value 4 --items "$ML/movies.csv" \
  >"$T/imp.log" 2>&1 || fail "import: $(cat "$T/imp.log")"
"$COFI" train --store "$S" -o "$T/m.cofi" --factors 32 --regularization 0.02 --alpha 20 --iterations 10 \
  --seed 1 --quiet >"$T/train.log" 2>&1 || fail "train --store: $(cat "$T/train.log")"
n_items=$("$COFI" info "$T/m.cofi" --json | jq '.n_items')

put() { ok 200 '.stored == true' -X PUT -H 'Content-Type: application/json' -d "$2" "$U/items/$1"; }
genres_of() { req "$U/items/$1"; jq -r '.categories | join("|")' "$T/body"; }

check_map() { # $1 = ridge | mean
  start_server "$T/$1.log" "$T/m.cofi" --store "$S" --max-k 20000 --metadata-map "$1" --port 0
  grep -q "new items: $1 map over 20 categories" "$T/$1.log" || fail "$1: start message: $(cat "$T/$1.log")"
  put newest-film '{"title":"Tomorrow'"'"'s Film (2026)","categories":["Sci-Fi"]}'
  ok 200 '.item_id == "newest-film" and .source == "metadata" and (.similar | length) == 5
          and all(.similar[]; .source == null)' "$U/similar_items?item_id=newest-film&k=5"
  for it in $(jq -r '.similar[].item_id' "$T/body"); do
    g=$(genres_of "$it")
    grep -q 'Sci-Fi' <<<"$g" || fail "$1: similar item $it of a Sci-Fi film has genres '$g'"
  done

  # /recommend: find the user (of the first 15) it ranks best for
  best_u=; best_r=999999
  for u in $(seq 1 15); do
    ok 200 '' "$U/recommend?user_id=$u&k=$n_items"
    jq -e '[.recommendations[].score] as $s | [range(1; $s | length) | $s[. - 1] >= $s[.]] | all' \
      "$T/body" >/dev/null || fail "$1: user $u: merged scores are not sorted"
    r=$(jq '[.recommendations[].item_id] | index("newest-film") // 999999' "$T/body")
    [ "$r" -lt "$best_r" ] && { best_r=$r; best_u=$u; }
  done
  [ "$best_r" -lt 999999 ] || fail "$1: newest-film is in nobody's full list"
  ok 200 ".recommendations[$best_r].item_id == \"newest-film\" and .recommendations[$best_r].source == \"metadata\"
          and .recommendations[$best_r].title == \"Tomorrow's Film (2026)\"
          and (.recommendations | length) == $((best_r + 1))" "$U/recommend?user_id=$best_u&k=$((best_r + 1))"
  if [ "$best_r" -gt 0 ]; then
    ok 200 '[.recommendations[].item_id] | index("newest-film") == null' "$U/recommend?user_id=$best_u&k=$best_r"
  fi
  # excluded like a model item
  ok 200 '[.recommendations[].item_id] | index("newest-film") == null' \
    "$U/recommend?user_id=$best_u&k=$((best_r + 1))&exclude=newest-film"
  # cold start (liked) merges it too
  ok 200 '[.recommendations[] | select(.source == "metadata") | .item_id] == ["newest-film"]' \
    "$U/recommend?liked=260,1196,1210&k=$n_items"
  # a second new item is a candidate of the first's similar items
  put second-film '{"categories":["Sci-Fi","Action"]}'
  ok 200 '[.similar[] | select(.source == "metadata") | .item_id] == ["second-film"]' \
    "$U/similar_items?item_id=newest-film&k=$n_items"

  # DELETE hides it: no vector, not recommended, not similar
  ok 200 '.hidden == true' -X DELETE "$U/items/newest-film"
  err 404 unknown_item "$U/similar_items?item_id=newest-film&k=5"
  ok 200 '[.recommendations[].item_id] | index("newest-film") == null' "$U/recommend?user_id=$best_u&k=$n_items"
  ok 200 '[.similar[].item_id] | index("newest-film") == null' "$U/similar_items?item_id=second-film&k=$n_items"
  # categories the model does not know, or hidden: no vector, and a message saying why
  put odd-film '{"categories":["Nonexistent genre"]}'
  err 404 unknown_item "$U/similar_items?item_id=odd-film&k=5"
  jq -e '.error.message | test("category the model knows")' "$T/body" >/dev/null || fail "$1: 404 message: $(cat "$T/body")"
  put hidden-film '{"categories":["Sci-Fi"],"hidden":true}'
  err 404 unknown_item "$U/similar_items?item_id=hidden-film&k=5"
  stop_server
  # a restart rebuilds the table from the store: second-film still has its vector
  start_server "$T/$1-2.log" "$T/m.cofi" --store "$S" --metadata-map "$1" --port 0
  grep -q "1 store items not in the model have a vector" "$T/$1-2.log" || fail "$1: restart: $(cat "$T/$1-2.log")"
  ok 200 '.source == "metadata" and (.similar | length) == 3' "$U/similar_items?item_id=second-film&k=3"
  ok 200 '.hidden == true' -X DELETE "$U/items/second-film"
  stop_server
}
check_map ridge
check_map mean
expect_fail 2 "--metadata-map: expected ridge or mean, got 'median'" \
  "$COFI" serve "$T/m.cofi" --store "$S" --metadata-map median

# PostgreSQL: the model above, the catalogue imported again into a database
psql -q -v ON_ERROR_STOP=1 "$COFI_TEST_PG_URL" -c "CREATE DATABASE new_items" >/dev/null ||
  fail "cannot create the test database"
PG=${COFI_TEST_PG_URL%/*}/new_items
"$COFI" import "$ML/ratings.csv" --store "$PG" --format movielens --min-value 4 --items "$ML/movies.csv" \
  >"$T/pgimp.log" 2>&1 || fail "import into PostgreSQL: $(cat "$T/pgimp.log")"
start_server "$T/pg.log" "$T/m.cofi" --store "$PG" --port 0
grep -q "new items: ridge map over 20 categories" "$T/pg.log" || fail "postgresql: start message: $(cat "$T/pg.log")"
put pg-film '{"categories":["Animation","Children"]}'
ok 200 '.source == "metadata" and (.similar | length) == 5' "$U/similar_items?item_id=pg-film&k=5"
for it in $(jq -r '.similar[].item_id' "$T/body"); do
  g=$(genres_of "$it")
  grep -qE 'Animation|Children' <<<"$g" || fail "postgresql: similar item $it of an animated children's film has genres '$g'"
done
stop_server
start_server "$T/pg2.log" "$T/m.cofi" --store "$PG" --port 0
grep -q "1 store items not in the model have a vector" "$T/pg2.log" || fail "postgresql: restart: $(cat "$T/pg2.log")"
ok 200 '.hidden == true' -X DELETE "$U/items/pg-film"
err 404 unknown_item "$U/similar_items?item_id=pg-film&k=5"
stop_server
pass

#!/usr/bin/env bash
# `cofi eval --protocol new-items`: bad inputs give one clear line and the
# right exit code; a small run prints every method in text and JSON, and
# the maps beat random on data where the categories carry the taste.
set -u
. "$(dirname "$0")/lib.bash"
command -v jq >/dev/null || { echo "SKIP: jq is needed"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# 60 users in 3 taste groups, 60 items in 3 genres: group g likes genre g
{ echo "user_id,item_id"
  for u in $(seq 0 59); do g=$((u % 3)); for j in $(seq 0 11); do echo "u$u,i$(( (j * 7 + u) % 20 * 3 + g ))"; done; done
} >"$T/r.csv"
{ echo "item_id,title,genres"; for i in $(seq 0 59); do echo "i$i,Item $i,G$((i % 3))|Any"; done; } >"$T/items.csv"
run() { "$COFI" eval "$T/r.csv" --protocol new-items "$@"; }
expect_fail 2 "--protocol new-items needs the items' metadata: --items FILE" run
expect_fail 1 "the item metadata has no field 'tags' (its fields: 'title', 'genres')" \
  run --items "$T/items.csv" --metadata-field tags --seeds 1 --quiet
expect_fail 2 "--holdout-items: expected a number in [0, 1], got '1.5'" run --items "$T/items.csv" --holdout-items 1.5
expect_fail 2 "--holdout-items: expected a share strictly between 0 and 1, got '0'" run --items "$T/items.csv" --holdout-items 0
expect_fail 2 "leaves 0 held out: need at least 1 and fewer than all" \
  run --items "$T/items.csv" --holdout-items 0.001 --quiet
expect_fail 2 "--ridge-lambda" run --items "$T/items.csv" --ridge-lambda -1
out=$(run --items "$T/items.csv" --holdout-items 0.25 --seeds 3 --factors 8 --iterations 8 --k 5 --quiet) ||
  fail "eval new-items failed: $out"
for m in ridge mean category_popularity user_categories random; do grep -q "^$m " <<<"$out" || fail "no $m row: $out"; done
js=$(run --items "$T/items.csv" --holdout-items 0.25 --seeds 3 --factors 8 --iterations 8 --k 5 --quiet --json) ||
  fail "eval new-items --json failed"
jq -e '.protocol == "new-items" and .k == 5 and .seeds == 3 and .heldout_items == 15
       and (.methods | keys | length) == 5 and all(.methods[]; .recall >= 0 and .recall <= 1)
       and .methods.ridge.recall > .methods.random.recall and .methods.mean.recall > .methods.random.recall' \
  <<<"$js" >/dev/null || fail "JSON: $js"
pass

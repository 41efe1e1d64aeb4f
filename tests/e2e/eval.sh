#!/usr/bin/env bash
# cofi eval / split / tune on ml-latest-small with the seeds' protocol:
# the JSON shape, 573 evaluated users and 35 skipped (their test movie is
# never in training), popularity's exact numbers (implicit's reference:
# Recall@10 0.0419, NDCG@10 0.0229), ALS above popularity, identical
# results from an in-process split and from `cofi split` files, the other
# protocols, and a short tune whose parameter file `cofi eval --params`
# uses on train + validation.
set -u
. "$(dirname "$0")/lib.bash"
need_ml
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
SEEDS=(--factors 64 --regularization 0.02 --alpha 20 --iterations 20)
DATA=("$ML/ratings.csv" --format movielens --min-value 4)

out=$("$COFI" eval "${DATA[@]}" "${SEEDS[@]}" --k 5,10 --json --quiet) || fail "eval --json"
jq -e 'keys == ["als", "cold_max", "head_items", "n_items", "n_users", "popularity", "random", "skipped"]' <<<"$out" >/dev/null \
  || fail "eval JSON keys: $out"
[ "$(jq .n_users <<<"$out")" = 573 ] || fail "n_users: $out"
[ "$(jq '.skipped.no_test_item_in_training' <<<"$out")" = 35 ] || fail "skipped: $out"
[ "$(jq '.skipped.user_not_in_training' <<<"$out")" = 0 ] || fail "skipped: $out"
jq -e '.popularity["recall@10"] > 0.04185 and .popularity["recall@10"] < 0.04190
       and .popularity["ndcg@10"] > 0.0228 and .popularity["ndcg@10"] < 0.0230' <<<"$out" >/dev/null \
  || fail "popularity differs from the reference 0.0419 / 0.0229: $out"
jq -e '.als["recall@10"] > .popularity["recall@10"] and .random["recall@10"] < 0.01
       and (.als | keys | length) == 15 and .als["coverage@10"] > .popularity["coverage@10"]' \
  <<<"$out" >/dev/null || fail "ALS should beat popularity, random be near 0: $out"

# The same split written by cofi split and read back gives the same numbers.
"$COFI" split "${DATA[@]}" -o "$T/split" >"$T/split.log" || fail "split"
grep -q "test.csv: 608 interactions" "$T/split.log" || fail "split counts: $(cat "$T/split.log")"
head -1 "$T/split/train.csv" | grep -qx "user_id,item_id,value,timestamp" || fail "split header"
out2=$("$COFI" eval --split-dir "$T/split" "${SEEDS[@]}" --k 5,10 --json --quiet) || fail "eval --split-dir"
[ "$out" = "$out2" ] || fail "in-process and file splits differ: $out vs $out2"

# Table output names the protocol, the parts and the skipped users.
tab=$("$COFI" eval "${DATA[@]}" "${SEEDS[@]}" --metrics recall,ndcg --quiet) || fail "eval table"
grep -q "^| ALS |" <<<"$tab" && grep -q "^| Popularity |" <<<"$tab" && grep -q "^| Random |" <<<"$tab" \
  || fail "table rows: $tab"
grep -q "Users evaluated: 573" <<<"$tab" && grep -q "35 (no_test_item_in_training)" <<<"$tab" \
  || fail "table header: $tab"

# Seeds: mean and sd objects.
s=$("$COFI" eval "${DATA[@]}" --factors 16 --iterations 5 --seeds 2 --json --quiet) || fail "--seeds"
jq -e '.als["recall@10"].mean > 0 and (.als["recall@10"].sd | type) == "number"
       and .popularity["recall@10"].sd == 0' <<<"$s" >/dev/null || fail "--seeds JSON: $s"

# Other protocols run and report.
"$COFI" eval "${DATA[@]}" --protocol random --factors 16 --iterations 5 --k 20 --json --quiet \
  | jq -e '.n_users > 500 and .als["recall@20"] > .random["recall@20"]' >/dev/null || fail "random protocol"
"$COFI" eval "${DATA[@]}" --protocol users --heldout-users 50 --factors 16 --iterations 5 --k 20 --json --quiet \
  | jq -e '.n_users >= 45 and .n_users <= 50 and .als["recall@20"] > .random["recall@20"]' >/dev/null \
  || fail "users protocol"

# A short tune: the table, the best, a parameter file eval --params uses.
"$COFI" tune "${DATA[@]}" --budget 2 --factors 16 --trial-seeds 1 -o "$T/best.params" >"$T/tune.log" 2>&1 \
  || fail "tune: $(tail -3 "$T/tune.log")"
grep -q "^|   2 |" "$T/tune.log" && grep -q "^Best: trial" "$T/tune.log" || fail "tune output: $(cat "$T/tune.log")"
grep -q "^factors = 16$" "$T/best.params" || fail "fixed --factors not kept: $(cat "$T/best.params")"
tab=$("$COFI" eval "${DATA[@]}" --params "$T/best.params" --metrics recall --quiet) || fail "eval --params"
grep -q "Training: train + validation" <<<"$tab" || fail "eval --params should train on train + validation: $tab"
pass

#!/usr/bin/env bash
# cofi eval / split / tune without shared data: a generated log, the
# sampled-negatives protocol on small NCF-format fixtures, and the errors
# for bad flags and bad files (exit code and a one-line message).
set -u
. "$(dirname "$0")/lib.bash"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# 60 users in two taste groups over 40 items, 8 events each, timestamps.
awk 'BEGIN { print "user_id,item_id,timestamp";
  for (u = 0; u < 60; u++) for (e = 0; e < 8; e++) {
    g = u % 2; i = g * 20 + (u * 3 + e * 7) % 20; print "u" u ",i" i "," (u * 100 + e) } }' >"$T/log.csv"
out=$("$COFI" eval "$T/log.csv" --factors 8 --iterations 5 --k 3,5 --json --quiet) || fail "eval on a CSV log"
jq -e '.n_users > 0 and .als["recall@5"] >= 0 and .als["recall@5"] <= 1' <<<"$out" >/dev/null || fail "eval JSON: $out"
"$COFI" split "$T/log.csv" --protocol random --holdout 0.25 --split-seed 3 -o "$T/sp" >/dev/null || fail "split random"
[ "$(($(wc -l <"$T/sp/train.csv") + $(wc -l <"$T/sp/validation.csv") + $(wc -l <"$T/sp/test.csv") - 3))" = \
  "$(($(wc -l <"$T/log.csv") - 1))" ] || fail "split lost rows"

# Sampled negatives (NCF format): train file in u.data layout (tab, no header).
awk -F, 'NR > 1 { sub(/^u/, "", $1); sub(/^i/, "", $2); print $1 "\t" $2 "\t5\t" $3 }' "$T/log.csv" >"$T/train.rating"
# user 0 is in taste group 0 (items 0-19), user 1 in group 1 (20-39): each
# test item is from the user's group, the negatives from the other one.
printf '0\t3\t5\t1\n1\t26\t5\t1\n999\t3\t5\t1\n' >"$T/test.rating"
printf '(0,3)\t21\t22\t23\n(1,26)\t1\t2\t3\n(999,3)\t1\t2\n' >"$T/test.negative"
out=$("$COFI" eval "$T/train.rating" --format movielens --protocol sampled --test "$T/test.rating" \
  --negatives "$T/test.negative" --factors 8 --iterations 5 --k 1,3 --json --quiet) || fail "sampled protocol"
jq -e '.n_users == 2 and .skipped.user_not_in_training == 1 and .als["hit_rate@1"] == 1
       and .popularity["hit_rate@3"] >= 0 and (.als | has("ndcg@1"))' <<<"$out" >/dev/null || fail "sampled: $out"
printf '(0,4)\t1\n(1,26)\t21\n(999,3)\t1\n' >"$T/bad.negative"
expect_fail 3 "bad.negative:1: pair (0,4) does not match" "$COFI" eval "$T/train.rating" --format movielens \
  --protocol sampled --test "$T/test.rating" --negatives "$T/bad.negative" --quiet

# Errors: usage (2) with a message naming the flag; data (3).
expect_fail 2 "--protocol: expected" "$COFI" eval "$T/log.csv" --protocol nope
expect_fail 2 "--k: expected an integer" "$COFI" eval "$T/log.csv" --k 5,x
expect_fail 2 "--metrics: unknown metric 'rcall'" "$COFI" eval "$T/log.csv" --metrics rcall
expect_fail 2 "--holdout: expected a number" "$COFI" eval "$T/log.csv" --protocol random --holdout 0.7
expect_fail 2 "needs --test FILE and --negatives FILE" "$COFI" eval "$T/log.csv" --protocol sampled
expect_fail 2 "missing DATA" "$COFI" eval --k 5
expect_fail 2 "cannot hold out 40 test and 40 validation users" "$COFI" eval "$T/log.csv" --protocol users --heldout-users 40
expect_fail 2 "missing -o DIR" "$COFI" split "$T/log.csv"
expect_fail 2 "--search: expected random, refine or grid" "$COFI" tune --model als "$T/log.csv" --search nope
expect_fail 2 "--metric: expected NAME@K" "$COFI" tune --model als "$T/log.csv" --metric ndcg
expect_fail 6 "no-such-file" "$COFI" eval "$T/no-such-file.csv"
expect_fail 2 "--on validation cannot train on the validation part" "$COFI" eval "$T/log.csv" --on validation --train-on train+validation

# Grid tune stops at the budget and writes parameters cofi eval accepts.
"$COFI" tune --model als "$T/log.csv" --search grid --budget 3 --iterations 5 --factors 8 --trial-seeds 1 -o "$T/p" >"$T/tune.log" 2>&1 \
  || fail "grid tune: $(tail -2 "$T/tune.log")"
grep -q "^Best: trial . of 3" "$T/tune.log" || fail "grid tune output: $(cat "$T/tune.log")"
"$COFI" eval "$T/log.csv" --params "$T/p" --json --quiet | jq -e '.n_users > 0' >/dev/null || fail "eval --params after grid tune"
# Early stopping: the trial keeps its best iteration (<= the maximum 12).
"$COFI" tune --model als "$T/log.csv" --budget 2 --factors 8 --iterations 12 --early-stopping 2 --trial-seeds 1 -o "$T/es" >"$T/es.log" 2>&1 \
  || fail "tune --early-stopping: $(tail -2 "$T/es.log")"
grep -q "^Early stopping: patience 2" "$T/es.log" || fail "early stopping not announced: $(cat "$T/es.log")"
it=$(awk -F' = ' '$1 == "iterations" { print $2 }' "$T/es")
[ "$it" -ge 1 ] && [ "$it" -le 12 ] || fail "early-stopped iterations $it"
pass

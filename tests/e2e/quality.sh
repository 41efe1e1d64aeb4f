#!/usr/bin/env bash
# Issue 19 on the command line, on a small generated count log (no shared
# data needed): confidence transforms (--confidence linear|log|bm25 change
# the model, are recorded in it and in parameter files, bad values are
# refused).
set -u
. "$(dirname "$0")/lib.bash"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# 60 users x 40 items, play counts up to 500 (heavy-tailed)
awk 'BEGIN { srand(3); print "user_id,item_id,value";
  for (u = 1; u <= 60; u++) for (i = 1; i <= 40; i++)
    if ((u * 7 + i * 13) % 5 < 2) printf "u%d,i%d,%d\n", u, i, int(1 + 500 * rand() ^ 4) }' >"$T/counts.csv"

# --- confidence transforms
for c in linear log bm25; do
  "$COFI" train "$T/counts.csv" --confidence $c --factors 8 --iterations 4 -o "$T/$c.cofi" --quiet \
    || fail "train --confidence $c"
  [ "$("$COFI" info "$T/$c.cofi" --json | jq -r .params.confidence)" = $c ] \
    || fail "info --json does not show confidence $c"
  "$COFI" recommend "$T/$c.cofi" --liked i1,i2,i3 -k 5 --json | jq -e '(.recommendations | length) == 5' \
    >/dev/null || fail "cold start on a $c model"
  "$COFI" info "$T/$c.cofi" --json | jq -r .content_checksum >>"$T/sums"
done
[ "$(sort -u "$T/sums" | wc -l)" = 3 ] || fail "the transforms gave identical models"
"$COFI" info "$T/log.cofi" | grep -q "confidence log (epsilon 1)" || fail "info text lacks the transform"
"$COFI" train "$T/counts.csv" --confidence log --epsilon 10 --factors 8 --iterations 2 -o "$T/e.cofi" \
  --quiet && [ "$("$COFI" info "$T/e.cofi" --json | jq .params.epsilon)" = 10 ] || fail "--epsilon not recorded"
"$COFI" train "$T/counts.csv" --confidence bm25 --bm25-k1 1.2 --bm25-b 0.75 --factors 8 --iterations 2 \
  -o "$T/b.cofi" --quiet || fail "train with --bm25-k1 --bm25-b"
"$COFI" info "$T/b.cofi" --json | jq -e '.params.bm25_k1 == 1.2 and .params.bm25_b == 0.75' >/dev/null \
  || fail "bm25 parameters not recorded: $("$COFI" info "$T/b.cofi" --json | jq -c .params)"
# a parameter file carries the transform (and no float noise)
printf 'factors = 8\niterations = 2\nconfidence = bm25\nbm25_k1 = 20\nregularization = 0.02\n' >"$T/p.params"
"$COFI" train "$T/counts.csv" --params "$T/p.params" -o "$T/p.cofi" --quiet || fail "train --params"
"$COFI" info "$T/p.cofi" --json | jq -e '.params.confidence == "bm25" and .params.bm25_k1 == 20' >/dev/null \
  || fail "--params did not set the transform"
expect_fail 2 "expected linear, log or bm25" "$COFI" train "$T/counts.csv" --confidence sqrt -o "$T/x.cofi"
expect_fail 2 "--epsilon" "$COFI" train "$T/counts.csv" --confidence log --epsilon 0 -o "$T/x.cofi"
expect_fail 2 "--bm25-b" "$COFI" train "$T/counts.csv" --bm25-b 2 -o "$T/x.cofi"
# cofi tune searches the transform with --search-confidence and records it
"$COFI" tune --model als "$T/counts.csv" --protocol random --search-confidence --factors 8 --iterations 3 --regularization 0.1 --alpha 5 --trial-seeds 1 \
  --budget 3 --search grid -o "$T/t.params" >"$T/tune.log" 2>&1 || fail "tune --search-confidence: $(tail -2 "$T/tune.log")"
for c in linear log bm25; do grep -q "| $c " "$T/tune.log" || fail "tune did not try $c: $(cat "$T/tune.log")"; done
grep -Eq '^confidence = (linear|log|bm25)$' "$T/t.params" || fail "no confidence in the parameter file"
# random search: the other dimensions are drawn as without --search-confidence
for f in "" --search-confidence; do
  "$COFI" tune --model als "$T/counts.csv" --protocol random $f --iterations 2 --trial-seeds 1 --budget 3 \
    2>/dev/null | awk -F'|' '/^\| +[0-9]+ \|/ {print $3 $4 $5}' >"$T/draws$f" || fail "tune $f"
done
[ "$(wc -l <"$T/draws")" = 3 ] || fail "no trial table: $(cat "$T/draws")"
cmp -s "$T/draws" "$T/draws--search-confidence" || fail "--search-confidence changed the other draws"
grep -Eq '[0-9]\.[0-9]{6,}' "$T/t.params" && fail "float noise in $(cat "$T/t.params")"
"$COFI" train "$T/counts.csv" --params "$T/t.params" -o "$T/t.cofi" --quiet || fail "train --params (tuned)"
[ "$("$COFI" info "$T/t.cofi" --json | jq -r .params.confidence)" = "$(sed -n 's/^confidence = //p' "$T/t.params")" ] \
  || fail "the tuned transform did not reach the model"

# --- headerless CSV with column numbers
tail -n +2 "$T/counts.csv" | awk -F, '{print $3 "," $2 "," $1}' >"$T/nohdr.csv"
"$COFI" train "$T/nohdr.csv" --no-header --user-col 3 --item-col 2 --value-col 1 --factors 8 \
  --iterations 2 -o "$T/nh.cofi" 2>"$T/nh.err" || fail "train --no-header: $(cat "$T/nh.err")"
grep -q "no header: column 3 (user), column 2 (item), column 1 (value)" "$T/nh.err" \
  || fail "the columns note: $(cat "$T/nh.err")"
"$COFI" train "$T/counts.csv" --factors 8 --iterations 2 -o "$T/h.cofi" --quiet
[ "$("$COFI" info "$T/nh.cofi" --json | jq -c '[.n_users, .n_items, .nnz]')" = \
  "$("$COFI" info "$T/h.cofi" --json | jq -c '[.n_users, .n_items, .nnz]')" ] || fail "--no-header read other data"
[ "$("$COFI" info "$T/nh.cofi" --json | jq .data_fingerprint)" = "$("$COFI" info "$T/h.cofi" --json | jq .data_fingerprint)" ] \
  || fail "--no-header values differ from the headed file's"
expect_fail 2 "must be a column number in 1..3" "$COFI" train "$T/nohdr.csv" --no-header --item-col 4 -o "$T/x.cofi"

# --- --split-dir is reported as what it is
"$COFI" split "$T/counts.csv" --protocol random -o "$T/split" --quiet >/dev/null 2>&1 || fail "cofi split"
out=$("$COFI" eval --split-dir "$T/split" --factors 8 --iterations 2 2>"$T/ev.err") || fail "eval --split-dir"
grep -q "Protocol: split from files" <<<"$out" || fail "eval --split-dir says: $(grep Protocol <<<"$out")"
grep -q "leave-last-out" <<<"$out$(cat "$T/ev.err")" && fail "eval --split-dir still says leave-last-out"

# --- every user at once (batched, threaded)
"$COFI" train "$T/counts.csv" --factors 8 --iterations 4 -o "$T/all.cofi" --quiet
nu=$("$COFI" info "$T/all.cofi" --json | jq .n_users)
"$COFI" recommend "$T/all.cofi" --all-users -k 4 -o "$T/recs.csv" || fail "recommend --all-users"
[ "$(head -1 "$T/recs.csv")" = "user_id,item_id,score,rank" ] || fail "no CSV header"
[ "$(wc -l <"$T/recs.csv")" = $((nu * 4 + 1)) ] || fail "--all-users wrote $(wc -l <"$T/recs.csv") lines for $nu users x 4"
[ "$(tail -n +2 "$T/recs.csv" | cut -d, -f1 | sort -u | wc -l)" = "$nu" ] || fail "not every user"
for u in u1 u17 u60; do
  want=$("$COFI" recommend "$T/all.cofi" --user $u -k 4 --json | jq -r '[.recommendations[].item_id] | join(" ")')
  got=$(awk -F, -v u=$u '$1 == u {printf "%s%s", s, $2; s = " "}' "$T/recs.csv")
  [ "$got" = "$want" ] || fail "--all-users for $u gave '$got', --user gave '$want'"
  awk -F, -v u=$u '$1 == u {if ($4 != ++r) exit 1}' "$T/recs.csv" || fail "ranks of $u not 1..4"
done
"$COFI" recommend "$T/all.cofi" --all-users -k 4 --threads 1 --no-csv-header -o "$T/recs1.csv"
cmp -s <(tail -n +2 "$T/recs.csv") "$T/recs1.csv" || fail "--threads 1 gave other recommendations"
# --users FILE (unknown IDs reported and skipped), JSON Lines, standard output
printf 'u5\nnobody\nu9\r\n\n' >"$T/users.txt"
"$COFI" recommend "$T/all.cofi" --users "$T/users.txt" -k 3 --jsonl >"$T/recs.jsonl" 2>"$T/u.err" || fail "--users --jsonl"
grep -q "unknown user 'nobody' skipped" "$T/u.err" || fail "unknown --users ID not reported: $(cat "$T/u.err")"
jq -se 'length == 2 and .[0].user_id == "u5" and .[1].user_id == "u9" and all(.recommendations | length == 3)' \
  "$T/recs.jsonl" >/dev/null || fail "--jsonl: $(cat "$T/recs.jsonl")"
# --no-filter brings training items back
"$COFI" recommend "$T/all.cofi" --all-users -k 40 --no-filter --no-csv-header -o "$T/nf.csv"
[ "$(wc -l <"$T/nf.csv")" = $((nu * 40)) ] || fail "--no-filter -k 40 (the whole catalog) should list all 40 items per user"
expect_fail 2 "exactly one of" "$COFI" recommend "$T/all.cofi" --all-users --user u1
expect_fail 2 "--exclude, --explain and --json are for one user" "$COFI" recommend "$T/all.cofi" --all-users --json
expect_fail 2 "go with --all-users" "$COFI" recommend "$T/all.cofi" --user u1 -o "$T/x.csv"

# --- tuning on the sampled protocol, validation derived from DATA
mkdir -p "$T/tmp"
TMPDIR="$T/tmp" "$COFI" tune --model als "$T/counts.csv" --protocol sampled --metric ndcg@10 --budget 2 \
  --factors 8 --trial-seeds 1 --sampled-negatives 20 -o "$T/s.params" >"$T/st.log" 2>&1 \
  || fail "tune --protocol sampled: $(tail -3 "$T/st.log")"
grep -q "ranked among 20 sampled items" "$T/st.log" || fail "tune does not say how it validates: $(head -5 "$T/st.log")"
grep -q "leave-last-out" "$T/st.log" && fail "tune --protocol sampled reports leave-last-out"
grep -Eq '^regularization = ' "$T/s.params" || fail "no parameter file"
grep -Eq '[0-9]\.[0-9]{6,}' "$T/s.params" && fail "float noise: $(cat "$T/s.params")"
[ -z "$(ls -A "$T/tmp")" ] || fail "tune left temporary files: $(ls -A "$T/tmp")"
"$COFI" tune --model als "$T/counts.csv" --protocol sampled --budget 1 --factors 8 --trial-seeds 1 --json \
  --quiet >"$T/s1.json" 2>/dev/null && "$COFI" tune --model als "$T/counts.csv" --protocol sampled --budget 1 \
  --factors 8 --trial-seeds 1 --json --quiet >"$T/s2.json" 2>/dev/null || fail "tune --json"
[ "$(jq .best.score "$T/s1.json")" = "$(jq .best.score "$T/s2.json")" ] || fail "sampled validation is not seeded"
expect_fail 2 "tuning never looks at the test files" "$COFI" tune --model als "$T/counts.csv" --protocol sampled \
  --test "$T/counts.csv" --negatives "$T/counts.csv" --budget 1
expect_fail 2 "--early-stopping is not available with --protocol sampled" "$COFI" tune --model als "$T/counts.csv" \
  --protocol sampled --early-stopping 2 --budget 1

# --- --model: every kind trains here; an unknown one is refused, never ALS
# under another name (tests/e2e/models.sh covers EASE and item-kNN in full)
expect_fail 2 "--model: expected als, ease or itemknn, got 'svd'" "$COFI" train "$T/counts.csv" \
  --model svd -o "$T/x.cofi"
expect_fail 2 "--model: expected als, ease or itemknn, got 'svd'" "$COFI" eval "$T/counts.csv" --model svd
[ ! -e "$T/x.cofi" ] || fail "a refused --model wrote a model"
for m in ease itemknn; do
  "$COFI" train "$T/counts.csv" --model $m -o "$T/$m.cofi" --quiet || fail "--model $m"
  "$COFI" info "$T/$m.cofi" --json | jq -e --arg m $m '.model == $m' >/dev/null || fail "--model $m trained another kind"
done
"$COFI" train "$T/counts.csv" --model als --factors 8 --iterations 2 -o "$T/als.cofi" --quiet || fail "--model als"
pass

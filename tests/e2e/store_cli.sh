#!/usr/bin/env bash
# The store from the command line, on SQLite and on a real PostgreSQL
# server (started by tests/store/with_postgres.sh, which this script runs
# itself under; no server means failure, not a skip): `cofi import`
# ml-latest-small, `cofi train --store` gives the same model as training
# from the CSV (top-10 for user 1 identical, and the model file byte for
# byte), `cofi export` writes the 48,580 kept events back out, and
# importing that export gives the same model again. Bad store URLs and
# bad input fail with a clear message and leave the store as it was.
# Skips (77) without ml-latest-small.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.bash"
need_ml
if [ -z "${COFI_TEST_PG_URL:-}" ]; then
  exec bash "$here/../store/with_postgres.sh" bash "$0" "$@"
fi
T=$(mktemp -d /tmp/cofi-e2e-store.XXXXXX)
trap 'rm -rf "$T"' EXIT
export SOURCE_DATE_EPOCH=1700000000
PARAMS=(--factors 64 --regularization 0.02 --alpha 20 --iterations 20 --seed 42 --quiet)

"$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 --items "$ML/movies.csv" \
  -o "$T/csv.cofi" "${PARAMS[@]}" || fail "train from the CSV"
top10() { "$COFI" recommend "$1" --user 1 -k 10 --json | jq -c '[.recommendations[].item_id]'; }
want=$(top10 "$T/csv.cofi")
[ "$(jq length <<<"$want")" = 10 ] || fail "no top-10 from the CSV model: $want"

# A fresh database for PostgreSQL, so that the run starts empty.
pg_db() {
  local name=$1 base=${COFI_TEST_PG_URL%/*}
  psql -q -v ON_ERROR_STOP=1 "$COFI_TEST_PG_URL" -c "CREATE DATABASE $name" >/dev/null ||
    fail "cannot create database $name"
  echo "$base/$name"
}

run_backend() { # $1 = store URL, $2 = second store URL (round trip), $3 = label
  local S=$1 S2=$2 name=$3
  "$COFI" import "$ML/ratings.csv" --store "$S" --format movielens --min-value 4 \
    --items "$ML/movies.csv" 2>"$T/imp.err" || fail "$name: import: $(cat "$T/imp.err")"
  grep -q "imported 48580 events (609 users, 6298 items)" "$T/imp.err" || fail "$name: import summary: $(cat "$T/imp.err")"
  "$COFI" train --store "$S" -o "$T/store.cofi" "${PARAMS[@]}" || fail "$name: train --store"
  got=$(top10 "$T/store.cofi")
  [ "$got" = "$want" ] || fail "$name: top-10 from the store $got differs from the CSV's $want"
  cmp -s "$T/store.cofi" "$T/csv.cofi" || fail "$name: the model files differ"
  # titles came along
  "$COFI" recommend "$T/store.cofi" --user 1 -k 1 --json | jq -e '.recommendations[0].title | length > 0' \
    >/dev/null || fail "$name: no titles in the model trained from the store"

  "$COFI" export --store "$S" -o "$T/exp.csv" 2>/dev/null || fail "$name: export"
  n=$(($(wc -l <"$T/exp.csv") - 1))
  [ "$n" = 48580 ] || fail "$name: export has $n events, expected 48580"
  [ "$(head -1 "$T/exp.csv")" = "user_id,item_id,value,timestamp" ] || fail "$name: export header: $(head -1 "$T/exp.csv")"
  # round trip: the export imported into an empty store trains the same model
  "$COFI" import "$T/exp.csv" --store "$S2" --quiet || fail "$name: import of the export"
  "$COFI" export --store "$S2" -o "$T/exp2.csv" --quiet || fail "$name: second export"
  cmp -s "$T/exp.csv" "$T/exp2.csv" || fail "$name: export -> import -> export changed the log"
  "$COFI" train --store "$S2" -o "$T/rt.cofi" "${PARAMS[@]}" || fail "$name: train after the round trip"
  [ "$(top10 "$T/rt.cofi")" = "$want" ] || fail "$name: round trip changed the top-10"

  # a bad log writes nothing: the store keeps its 48580 events
  printf 'user_id,item_id\nu1,i1\nu2,\n' >"$T/bad.csv"
  expect_fail 3 "blank item ID" "$COFI" import "$T/bad.csv" --store "$S"
  "$COFI" export --store "$S" -o "$T/exp3.csv" --quiet || fail "$name: export after a failed import"
  cmp -s "$T/exp.csv" "$T/exp3.csv" || fail "$name: a failed import changed the store"
  # flags travel: --min-value at training time on the stored values
  "$COFI" train --store "$S" --min-value 2 -o "$T/none.cofi" --quiet 2>"$T/none.err" &&
    fail "$name: --min-value 2 on binary values should leave nothing"
  grep -q "none of the 48580 events has a value >= 2" "$T/none.err" || fail "$name: $(cat "$T/none.err")"
}

run_backend "sqlite:$T/a.db" "sqlite:$T/b.db" sqlite
run_backend "$(pg_db cofi_e2e_a)" "$(pg_db cofi_e2e_b)" postgresql

# bad URLs and flags
expect_fail 2 "unknown store URL 'mysql://x'" "$COFI" import "$ML/ratings.csv" --store mysql://x
expect_fail 2 "missing --store URL" "$COFI" import "$ML/ratings.csv"
expect_fail 2 "either DATA or --store" "$COFI" train "$ML/ratings.csv" --store "sqlite:$T/a.db" -o "$T/x.cofi"
expect_fail 1 "cannot connect" "$COFI" train --store "postgresql://nobody:pw@127.0.0.1:1/x" -o "$T/x.cofi"
expect_fail 1 "sqlite" "$COFI" export --store "sqlite:$T/no/such/dir/x.db" -o "$T/x.csv"
"$COFI" train --store "postgresql://nobody:hunter2@127.0.0.1:1/x" -o "$T/x.cofi" 2>&1 | grep -q hunter2 &&
  fail "a password was echoed"
pass

#!/usr/bin/env bash
# `cofi synth` and the data errors of `cofi train`, through the real binary:
# the demo data set (row counts, determinism, quoting of titles), refused
# synth flags, and one clear line naming file, line and problem for each
# kind of malformed log (exit 3) or unreadable file (exit 6).
set -u
. "$(dirname "$0")/lib.bash"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

"$COFI" synth -o "$T/a" >/dev/null || fail "synth with defaults"
[ "$(wc -l <"$T/a/interactions.csv")" = 60001 ] || fail "default rows"
[ "$(wc -l <"$T/a/items.csv")" = 1001 ] || fail "default items"
head -1 "$T/a/interactions.csv" | grep -qx 'user_id,item_id,event,timestamp' || fail "log header"
grep -q '^v[0-9]*,".*"".*"$' "$T/a/items.csv" || fail "no RFC 4180 quoted title"
"$COFI" synth -o "$T/b/nested" --users 300 --items 100 --interactions 5000 --seed 3 >/dev/null || fail "synth small"
"$COFI" synth -o "$T/c" --users 300 --items 100 --interactions 5000 --seed 3 >/dev/null || fail "synth small again"
cmp -s "$T/b/nested/interactions.csv" "$T/c/interactions.csv" || fail "same seed, different bytes"
"$COFI" synth -o "$T/d" --users 300 --items 100 --interactions 5000 --seed 4 >/dev/null || fail "synth seed 4"
cmp -s "$T/c/interactions.csv" "$T/d/interactions.csv" && fail "different seeds, same bytes"
[ "$(tail -n +2 "$T/c/interactions.csv" | cut -d, -f1,2 | sort -u | wc -l)" = 5000 ] || fail "pairs not distinct"

expect_fail 2 "missing -o DIR" "$COFI" synth
expect_fail 2 "--users" "$COFI" synth -o "$T/x" --users 0
expect_fail 2 "--users" "$COFI" synth -o "$T/x" --users 12abc
expect_fail 2 "every user needs at least one row" "$COFI" synth -o "$T/x" --users 10 --interactions 9
expect_fail 2 "distinct pairs" "$COFI" synth -o "$T/x" --users 10 --items 10 --interactions 101
expect_fail 2 "unknown option" "$COFI" synth -o "$T/x" --bogus
: >"$T/file"
expect_fail 6 "not a directory" "$COFI" synth -o "$T/file"

# Malformed logs: exit 3 and FILE:LINE: problem.
bad() { # name content... -> path
  local p=$T/$1; shift
  printf "$@" >"$p"
  echo "$p"
}
m="-o $T/m.cofi --quiet --iterations 1 --factors 2"
# shellcheck disable=SC2086
{
expect_fail 3 "empty.csv: the file is empty" "$COFI" train "$(bad empty.csv '')" $m
expect_fail 3 "head.csv: no data rows" "$COFI" train "$(bad head.csv 'user_id,item_id\n')" $m
expect_fail 3 "col.csv:1: no column 'rating'" "$COFI" train "$(bad col.csv 'user_id,item_id\nu,i\n')" --value-col rating $m
expect_fail 3 "dup.csv:1: duplicate column name 'item_id'" "$COFI" train "$(bad dup.csv 'user_id,item_id,item_id\nu,i,j\n')" $m
expect_fail 3 "short.csv:3: short row" "$COFI" train "$(bad short.csv 'user_id,item_id,value\nu,i,1\nu,i\n')" $m
expect_fail 3 "num.csv:2: column 'value' (3): 'abc' is not a number" "$COFI" train "$(bad num.csv 'user_id,item_id,value\nu,i,abc\n')" $m
expect_fail 3 "neg.csv:2: column 'value' (3): '-2' is negative" "$COFI" train "$(bad neg.csv 'user_id,item_id,value\nu,i,-2\n')" $m
expect_fail 3 "nan.csv:2: column 'value' (3): 'NaN' is not a finite number" "$COFI" train "$(bad nan.csv 'user_id,item_id,value\nu,i,NaN\n')" $m
expect_fail 3 "inf.csv:2: column 'value' (3): 'inf' is not a finite number" "$COFI" train "$(bad inf.csv 'user_id,item_id,value\nu,i,inf\n')" $m
expect_fail 3 "nul.csv:2: NUL byte" "$COFI" train "$(bad nul.csv 'user_id,item_id\nu\0,i\n')" $m
expect_fail 3 "quote.csv:2: unterminated quoted field" "$COFI" train "$(bad quote.csv 'user_id,item_id\nu,"i\n')" $m
expect_fail 3 "utf.csv:2: invalid UTF-8 (byte 0xe9)" "$COFI" train "$(bad utf.csv 'user_id,item_id\nJos\351,i\n')" $m
expect_fail 3 "blank.csv:2: column 'user_id' (1): blank user ID" "$COFI" train "$(bad blank.csv 'user_id,item_id\n ,i\n')" $m
expect_fail 3 "ev.csv:2: column 'event' (3): unknown event 'share'" "$COFI" train "$(bad ev.csv 'user_id,item_id,event\nu,i,share\n')" $m
expect_fail 6 "cannot open" "$COFI" train "$T/none.csv" $m
}
head -c 1100000 /dev/zero | tr '\0' x >"$T/long.csv.body"
{ printf 'user_id,item_id\nu,'; cat "$T/long.csv.body"; printf '\n'; } >"$T/long.csv"
# shellcheck disable=SC2086
expect_fail 3 "long.csv:2: line longer than 1 MiB" "$COFI" train "$T/long.csv" $m

# The demo log trains (the reader, end to end).
"$COFI" train "$T/c/interactions.csv" --items "$T/c/items.csv" -o "$T/c.cofi" --quiet \
  --factors 8 --iterations 2 >/dev/null 2>&1 || fail "train on the synth log"
pass

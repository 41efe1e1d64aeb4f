#!/usr/bin/env bash
# The CLI against a hostile user, through the real binary: outputs that are
# inputs or not regular files are refused and left untouched; '-' is
# standard input; every JSON document parses with a strict parser; two
# identical trainings have the same content checksum; control characters
# from IDs and titles never reach the terminal; the messages of issue 12;
# event columns under other names.
set -u
. "$(dirname "$0")/lib.bash"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# strict JSON: no NaN/Infinity, no duplicate keys, valid UTF-8: python3's
# parser when there is one, else jq (which reads NaN as null) plus a check
# for the non-standard constants outside strings
strict_json() {
  if [ -z "${NO_PYTHON:-}" ] && command -v python3 >/dev/null; then
    python3 -c '
import json, sys
def no_const(c): raise ValueError("non-standard constant " + c)
def no_dups(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)): raise ValueError("duplicate key")
    return dict(pairs)
json.loads(sys.stdin.buffer.read().decode("utf-8", "strict"),
           parse_constant=no_const, object_pairs_hook=no_dups)'
  else
    local doc; doc=$(cat)
    jq -e . >/dev/null <<<"$doc" || return 1
    ! sed 's/"\([^"\\]\|\\.\)*"//g' <<<"$doc" | grep -qiE '(nan|infinity)'
  fi
}
sum_of() { md5sum <"$1"; }

"$COFI" synth -o "$T/d" --users 300 --items 120 --interactions 6000 >/dev/null || fail "synth"
L=$T/d/interactions.csv
cp "$L" "$T/in.csv"
base=$(sum_of "$T/in.csv")
tr_args=(--factors 8 --iterations 2 --quiet)

# ---- outputs that are inputs -----------------------------------------------
ln -s "$T/in.csv" "$T/sym.csv"
ln "$T/in.csv" "$T/hard.csv"
expect_fail 2 "is the input" "$COFI" train "$T/in.csv" -o "$T/in.csv" "${tr_args[@]}"
expect_fail 2 "is the input" "$COFI" train "$T/sym.csv" -o "$T/in.csv" "${tr_args[@]}"
expect_fail 2 "is the input" "$COFI" train "$T/in.csv" -o "$T/sym.csv" "${tr_args[@]}"
expect_fail 2 "is the input" "$COFI" train "$T/in.csv" -o "$T/hard.csv" "${tr_args[@]}"
expect_fail 2 "is the input" "$COFI" train "$L" --items "$T/in.csv" -o "$T/in.csv" "${tr_args[@]}"
err=$("$COFI" train - -o "$T/in.csv" "${tr_args[@]}" <"$T/in.csv" 2>&1 >/dev/null); rc=$?
[ $rc = 2 ] && grep -q "is the input <stdin>" <<<"$err" || fail "train - -o INPUT (stdin redirect): exit $rc: $err"
expect_fail 2 "is the input" "$COFI" tune "$T/in.csv" --budget 1 -o "$T/in.csv"
mkdir "$T/sp"; cp "$L" "$T/sp/train.csv"; spsum=$(sum_of "$T/sp/train.csv")
expect_fail 2 "is the input" "$COFI" split "$T/sp/train.csv" -o "$T/sp"
[ "$(sum_of "$T/sp/train.csv")" = "$spsum" ] || fail "split -o DIR replaced its input"
[ "$(sum_of "$T/in.csv")" = "$base" ] || fail "a refused command changed the input"
[ -L "$T/sym.csv" ] || fail "the symlink was replaced"

# ---- outputs that are not regular files ------------------------------------
mkfifo "$T/fifo"
expect_fail 2 "is a FIFO" timeout 20 "$COFI" train "$L" -o "$T/fifo" "${tr_args[@]}"
[ -p "$T/fifo" ] || fail "train -o FIFO replaced the FIFO"
expect_fail 2 "is a character device" "$COFI" train "$L" -o /dev/null "${tr_args[@]}"
[ -c /dev/null ] || fail "/dev/null is gone"
expect_fail 2 "is a directory" "$COFI" train "$L" -o "$T/d" "${tr_args[@]}"
expect_fail 2 "is a FIFO" timeout 20 "$COFI" tune "$L" --budget 1 -o "$T/fifo"
mkdir "$T/sy"; mkfifo "$T/sy/items.csv"
expect_fail 2 "is a FIFO" timeout 20 "$COFI" synth -o "$T/sy"
[ -p "$T/sy/items.csv" ] && [ ! -e "$T/sy/interactions.csv" ] || fail "synth wrote beside a FIFO"
expect_fail 2 "give a file path" "$COFI" train "$L" -o - "${tr_args[@]}"
expect_fail 2 "give a directory" "$COFI" split "$L" -o -
expect_fail 2 "only one input" "$COFI" train - --items - -o "$T/x.cofi"

# ---- '-' is standard input --------------------------------------------------
"$COFI" train - -o "$T/stdin.cofi" --items "$T/d/items.csv" "${tr_args[@]}" <"$L" || fail "train -"
"$COFI" train "$L" -o "$T/items-stdin.cofi" --items - "${tr_args[@]}" <"$T/d/items.csv" || fail "train --items -"
cat "$L" | "$COFI" train - -o "$T/pipe.cofi" "${tr_args[@]}" || fail "train - from a pipe"
"$COFI" train "$L" -o "$T/file.cofi" "${tr_args[@]}" || fail "train FILE"
c1=$("$COFI" info "$T/pipe.cofi" --json | jq -r .content_checksum)
c2=$("$COFI" info "$T/file.cofi" --json | jq -r .content_checksum)
[ "$c1" = "$c2" ] || fail "train from a pipe and from the file differ ($c1 vs $c2)"
cat "$T/file.cofi" | "$COFI" info - --json | jq -e ".content_checksum == \"$c2\"" >/dev/null || fail "info - (model from a pipe)"
cat "$L" | "$COFI" split - -o "$T/split" >/dev/null 2>&1 || fail "split -"
[ -s "$T/split/test.csv" ] || fail "split - wrote no test.csv"
cat "$L" | "$COFI" eval - --factors 8 --iterations 2 --quiet --json | strict_json || fail "eval - --json"
printf 'factors = 8\niterations = 2\n' | "$COFI" train "$L" --params - -o "$T/params.cofi" --quiet || fail "--params -"
"$COFI" info "$T/params.cofi" --json | jq -e '.params.factors == 8' >/dev/null || fail "--params - not applied"
cat "$L" | "$COFI" tune - --budget 1 --iterations 2 --factors 8 -o - --quiet >"$T/p.txt" || fail "tune - -o -"
grep -q '^factors = 8$' "$T/p.txt" || fail "tune -o - did not write the parameters to stdout: $(cat "$T/p.txt")"
! grep -q '^| trial' "$T/p.txt" || fail "tune -o - mixed the trial table into the parameters"

# ---- JSON summaries, all strict ---------------------------------------------
"$COFI" train "$L" -o "$T/a.cofi" --factors 8 --iterations 2 --seed 5 --quiet --json >"$T/tj" || fail "train --json"
strict_json <"$T/tj" || fail "train --json is not strict JSON: $(cat "$T/tj")"
jq -e '.model and .users == 300 and .items == 120 and .interactions == 6000 and .params.factors == 8
       and (.loss | type) == "number" and (.seconds | type) == "number" and .content_checksum' \
  "$T/tj" >/dev/null || fail "train --json lacks a field: $(cat "$T/tj")"
"$COFI" tune "$L" --budget 2 --iterations 2 -o "$T/p.params" --json >"$T/uj" 2>/dev/null || fail "tune --json"
strict_json <"$T/uj" || fail "tune --json is not strict JSON: $(cat "$T/uj")"
jq -e '.trials == 2 and .best.params.factors and (.best.score | type) == "number" and .metric == "ndcg@20"
       and .output' "$T/uj" >/dev/null || fail "tune --json lacks a field: $(cat "$T/uj")"
expect_fail 2 "both want standard output" "$COFI" tune "$L" --budget 1 -o - --json
for f in "$T/a.cofi" "$T/stdin.cofi"; do
  "$COFI" info "$f" --json | strict_json || fail "info --json on $f"
done

# ---- content checksum: blind to the run, not to the model -------------------
sleep 1.1
"$COFI" train "$L" -o "$T/b.cofi" --factors 8 --iterations 2 --seed 5 --quiet || fail "second train"
"$COFI" train "$L" -o "$T/c.cofi" --factors 8 --iterations 2 --seed 6 --quiet || fail "third train"
ca=$("$COFI" info "$T/a.cofi" --json | jq -r .content_checksum)
cb=$("$COFI" info "$T/b.cofi" --json | jq -r .content_checksum)
cc=$("$COFI" info "$T/c.cofi" --json | jq -r .content_checksum)
[ "$ca" = "$cb" ] || fail "content_checksum differs between identical trainings ($ca vs $cb)"
[ "$ca" != "$cc" ] || fail "content_checksum is the same for another seed"
[ "$("$COFI" info "$T/a.cofi" --json | jq -r .checksum)" != "$("$COFI" info "$T/b.cofi" --json | jq -r .checksum)" ] ||
  fail "the file checksums are equal: the test did not see two creation times"
[[ "$ca" =~ ^[0-9a-f]{16}$ ]] || fail "content_checksum is not 16 hex digits: $ca"

# ---- control characters never reach the terminal ----------------------------
printf 'user_id,item_id\nu1,"\033[2Jevil"\nu1,i2\nu2,i2\nu2,i3\nu3,"\033[2Jevil"\nu3,i3\nu4,"two\nlines"\nu4,i2\n' >"$T/ctrl.csv"
printf 'item_id,title\n"\033[2Jevil","T\033]0;owned\007itle"\ni2,"line\nbreak"\ni3,plain\n"two\nlines",x\n' >"$T/ctrl-items.csv"
"$COFI" train "$T/ctrl.csv" --items "$T/ctrl-items.csv" -o "$T/ctrl.cofi" --factors 4 --iterations 2 --quiet ||
  fail "train on control characters"
for args in "recommend $T/ctrl.cofi --user u2 -k 5" "recommend $T/ctrl.cofi --liked i2 -k 5" \
            "similar $T/ctrl.cofi --item i2 -k 5" "similar $T/ctrl.cofi --user u1 -k 5"; do
  # shellcheck disable=SC2086
  out=$("$COFI" $args 2>&1) || fail "cofi $args: $out"
  ! grep -q $'[\x01-\x08\x0b-\x1f\x7f]' <<<"$out" || fail "cofi $args printed a control character raw"
  # shellcheck disable=SC2086
  "$COFI" $args --json | strict_json || fail "cofi $args --json is not strict JSON"
done
out=$("$COFI" recommend "$T/ctrl.cofi" --user u2 -k 5)
grep -qF '\x1b[2Jevil' <<<"$out" || fail "the escape sequence is not shown as \\x1b: $out"
[ "$(wc -l <<<"$out")" -le 7 ] || fail "a newline inside an ID or title broke the table: $out"
out=$("$COFI" recommend "$T/ctrl.cofi" --user $'\033[31mnobody' 2>&1)
! grep -q $'\033' <<<"$out" || fail "an unknown user ID was echoed raw: $out"

# ---- messages -----------------------------------------------------------------
expect_fail 6 "cannot create the temporary file $T/none/m.cofi.tmp." \
  "$COFI" train "$L" -o "$T/none/m.cofi" "${tr_args[@]}"
printf 'user_id,item_id,value\nu1,a,3e38\nu1,b,1\nu2,a,3e38\nu2,c,2\n' >"$T/big.csv"
err=$("$COFI" train "$T/big.csv" -o "$T/big.cofi" --quiet 2>&1); rc=$?
[ $rc = 7 ] || fail "3e38 with CG: exit $rc: $err"
! grep -q "use the CG solver" <<<"$err" || fail "CG in use but the hint says to use CG: $err"
err=$("$COFI" train "$T/big.csv" -o "$T/big.cofi" --quiet --solver cholesky 2>&1)
grep -q "use the CG solver" <<<"$err" || fail "Cholesky: the hint should offer CG: $err"
printf 'user_id,item_id\nu1,a\nu1,b\nu2,a\nu2,c\n' >"$T/tiny.csv"
expect_fail 3 "every row went to validation or test" "$COFI" eval "$T/tiny.csv" --quiet
expect_fail 3 "2 in validation, 2 in test" "$COFI" tune "$T/tiny.csv" --budget 1 --quiet

# ---- event columns under other names ------------------------------------------
sed '1s/,event,/,action,/' "$L" >"$T/action.csv"
cut -d, -f1,2,4 "$L" >"$T/noevent.csv"
err=$("$COFI" train "$T/action.csv" -o "$T/action.cofi" --factors 8 --iterations 2 2>&1) || fail "train action: $err"
grep -q "'action' (event, recognised by its values; default weights watch=1, like=2, complete=3)" <<<"$err" ||
  fail "the event column 'action' is not reported as used: $err"
"$COFI" train "$L" -o "$T/event.cofi" --factors 8 --iterations 2 --quiet || fail "train event"
"$COFI" train "$T/noevent.csv" -o "$T/noevent.cofi" --factors 8 --iterations 2 --quiet || fail "train noevent"
e1=$("$COFI" info "$T/action.cofi" --json | jq -r .content_checksum)
e2=$("$COFI" info "$T/event.cofi" --json | jq -r .content_checksum)
e3=$("$COFI" info "$T/noevent.cofi" --json | jq -r .content_checksum)
[ "$e1" = "$e2" ] || fail "a column named action did not train like one named event"
[ "$e1" != "$e3" ] || fail "the event weights were not applied"
printf 'user_id,item_id,type,device\nu1,a,movie,tv\nu1,b,show,tv\nu2,a,movie,pc\nu2,b,show,pc\n' >"$T/type.csv"
err=$("$COFI" train "$T/type.csv" -o "$T/type.cofi" --factors 2 --iterations 1 2>&1) || fail "train type: $err"
grep -q "ignored 'type', 'device' (not an event column: 'type' holds 'movie'" <<<"$err" ||
  fail "the ignored columns are not reported: $err"
err=$("$COFI" train "$T/type.csv" -o "$T/type.cofi" --factors 2 --iterations 1 --quiet 2>&1)
[ -z "$err" ] || fail "--quiet still reports the columns: $err"
"$COFI" train "$T/type.csv" -o "$T/type.cofi" --factors 2 --iterations 1 --event-weights movie=1,show=3 \
  2>&1 | grep -q "'type' (event, recognised by its values; the given weights movie=1, show=3)" ||
  fail "--event-weights did not make 'type' the event column"
expect_fail 3 "replaces this table" "$COFI" train "$T/action.csv" -o "$T/x.cofi" --event-weights watch=1,like=2
"$COFI" train --help | grep -q "replaces the default table" || fail "train --help does not say --event-weights replaces"
pass

#!/usr/bin/env bash
# mpirun -np 1/2/4 cofi train (docs/mpi.md) on a synthetic log: the model
# equals the single-process one (factor sections byte for byte, so the
# top-10 of every user too), cofi info records the ranks, train --json
# prints one summary whose byte counts match the cost model, bad input
# stops every rank with the file and line and no model file, and a rank
# killed mid-training ends the job and leaves the previous model intact.
# Skips (77) when mpirun is not installed or cofi was built without MPI.
set -u
. "$(dirname "$0")/lib.bash"
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"; exit 77; }
ldd "$COFI" 2>/dev/null | grep -q libmpi || { echo "SKIP: cofi built without MPI (COFI_MPI)"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1 SOURCE_DATE_EPOCH=1700000000
# shared-memory and loopback transports only: no network probing in CI
MR=(mpirun --allow-run-as-root --oversubscribe --mca btl self,vader,tcp
    --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)

"$COFI" synth --users 150 --items 80 --interactions 3000 --seed 5 -o "$T/d" >/dev/null 2>&1 \
  || fail "synth"
args=(--factors 16 --iterations 4 --seed 11 --quiet)
"$COFI" train "$T/d/interactions.csv" -o "$T/m1.cofi" "${args[@]}" || fail "single-process train"

# factor sections: offsets from the section table (id 2, 3 at entries 1, 2)
section() { # FILE ENTRY -> "offset length"
  od -An -tu8 -j $((64 + 32 * $2 + 8)) -N16 "$1" | tr -s ' ' | sed 's/^ //'
}
factors() { # FILE -> the bytes of both factor matrices, hex
  local e o l
  for e in 1 2; do
    read -r o l < <(section "$1" $e)
    od -An -tx1 -v -j "$o" -N "$l" "$1"
  done | md5sum
}
users=$(cut -d, -f1 "$T/d/interactions.csv" | tail -n +2 | sort -u)
top10() { # MODEL -> every user's top-10, one line each
  local u
  for u in $users; do
    "$COFI" recommend "$1" --user "$u" -k 10 --json | jq -c '[.recommendations[].item_id]'
  done
}
want_factors=$(factors "$T/m1.cofi")
want_top=$(top10 "$T/m1.cofi" | md5sum)
want_content=$("$COFI" info "$T/m1.cofi" --json | jq -r .content_checksum)
for np in 1 2 4; do
  "${MR[@]}" -np $np "$COFI" train "$T/d/interactions.csv" -o "$T/m$np.cofi" "${args[@]}" --json \
    >"$T/s$np.json" 2>"$T/s$np.log" || fail "-np $np: $(head -5 "$T/s$np.log")"
  jq -se --argjson n $np 'length == 1 and .[0].ranks == $n' "$T/s$np.json" >/dev/null \
    || fail "-np $np: not one summary with ranks $np: $(cat "$T/s$np.json")"
  [ "$("$COFI" info "$T/m$np.cofi" --json | jq .ranks)" = $np ] || fail "-np $np: info ranks"
  [ "$(factors "$T/m$np.cofi")" = "$want_factors" ] || fail "-np $np: factors differ from one process"
  [ "$("$COFI" info "$T/m$np.cofi" --json | jq -r .content_checksum)" = "$want_content" ] \
    || fail "-np $np: content checksum differs from one process"
  [ "$(top10 "$T/m$np.cofi" | md5sum)" = "$want_top" ] || fail "-np $np: some user's top-10 differs"
done
# the bytes against the cost model (docs/mpi.md): with 2 ranks, rank 0
# sends its rows and receives the others, so sent + received is every
# factor row once per iteration, plus the small agreements: 3 per
# iteration and 2 in training (4 int64 each), 2 in the CLI (2 int64 each)
rows_bytes=$(( (150 + 80) * 16 * 4 * 4 ))
small=$(( (3 * 4 + 2) * 32 * 2 + 2 * 16 * 2 ))
jq -e --argjson w $((rows_bytes + small)) '.mpi_bytes_sent + .mpi_bytes_received == $w' \
  "$T/s2.json" >/dev/null || fail "-np 2 bytes: want $((rows_bytes + small)): $(cat "$T/s2.json")"
jq -e '.mpi_bytes_sent == 0 and .mpi_bytes_received == 0' "$T/s1.json" >/dev/null \
  || fail "-np 1 exchanges nothing"
"$COFI" train "$T/d/interactions.csv" -o "$T/x.cofi" "${args[@]}" --json \
  | jq -e '.ranks == 1 and .mpi_bytes_sent == 0' >/dev/null || fail "plain train --json: ranks 1"

# ---- input per rank: byte ranges of one file (docs/mpi.md) ------------
# same_model NAME FILE ARGS...: one process and -np 2 and 4 give the same
# factors and content checksum
same_model() {
  local name=$1 file=$2 np want want_c
  shift 2
  "$COFI" train "$file" -o "$T/$name.1.cofi" "$@" --quiet 2>"$T/$name.log" \
    || fail "$name: single-process train: $(head -3 "$T/$name.log")"
  want=$(factors "$T/$name.1.cofi")
  want_c=$("$COFI" info "$T/$name.1.cofi" --json | jq -r .content_checksum)
  for np in 2 4; do
    "${MR[@]}" -np $np "$COFI" train "$file" -o "$T/$name.$np.cofi" "$@" --quiet \
      2>"$T/$name.$np.log" || fail "$name -np $np: $(head -5 "$T/$name.$np.log")"
    [ "$(factors "$T/$name.$np.cofi")" = "$want" ] || fail "$name -np $np: factors differ"
    [ "$("$COFI" info "$T/$name.$np.cofi" --json | jq -r .content_checksum)" = "$want_c" ] \
      || fail "$name -np $np: content checksum differs"
  done
}
small=(--factors 8 --iterations 2 --seed 3)
# values with duplicates of one pair spread over the whole file (summed in
# file order on every rank count), a header, long and short lines
awk 'BEGIN { srand(7); print "user_id,item_id,value";
  for (n = 0; n < 2000; n++) {
    u = int(rand() * 60); i = int(rand() * 40);
    if (n % 97 == 0) { u = 1; i = 1 }            # one pair, 21 times
    printf "user-%d%s,item-%d,%.3f\n", u, (n % 13 ? "" : "-with-a-much-longer-id"), i, rand() * 3 }
}' >"$T/dup.csv"
same_model dup "$T/dup.csv" "${small[@]}"
same_model dup-log "$T/dup.csv" "${small[@]}" --confidence log
same_model dup-bm25 "$T/dup.csv" "${small[@]}" --confidence bm25
same_model dup-min "$T/dup.csv" "${small[@]}" --min-value 1.5
same_model dup-loss "$T/dup.csv" "${small[@]}" --loss
# CRLF line ends and a UTF-8 byte-order mark
printf '\xef\xbb\xbf' >"$T/crlf.csv"; sed 's/$/\r/' "$T/dup.csv" >>"$T/crlf.csv"
same_model crlf "$T/crlf.csv" "${small[@]}"
# fewer lines than ranks
printf 'user_id,item_id\nu1,i1\nu2,i1\n' >"$T/tiny.csv"
same_model tiny "$T/tiny.csv" "${small[@]}"
# event weights (the synthetic log's events) with item titles (--items),
# and ml-latest-small's layout
same_model events "$T/d/interactions.csv" "${small[@]}" --event-weights watch=1,like=3,complete=5 \
  --items "$T/d/items.csv"
"$COFI" recommend "$T/events.4.cofi" --user u00001 -k 1 --json \
  | jq -e '.recommendations[0].title | length > 0' >/dev/null || fail "-np 4 --items: no titles"
ML=${COFI_ML_SMALL:-/work/shared/data/ml-latest-small/ratings.csv}
if [ -f "$ML" ]; then
  same_model ml "$ML" "${small[@]}" --format movielens --min-value 4
fi
# only a header: every rank stops with the one-process message, once
printf 'user_id,item_id\n' >"$T/header.csv"
"${MR[@]}" -np 4 "$COFI" train "$T/header.csv" -o "$T/header.cofi" "${small[@]}" \
  >"$T/header.log" 2>&1 && fail "header only: mpirun succeeded"
[ "$(grep -c 'no data rows' "$T/header.log")" = 1 ] \
  || fail "header only: not one message: $(head -5 "$T/header.log")"
# a bad line in rank 2's share (of 4): every rank stops; the message names
# the file and the file's own line number
awk 'NR == 1300 { print "u1,i1,not-a-number" } { print }' "$T/dup.csv" >"$T/bad2.csv"
"${MR[@]}" -np 4 "$COFI" train "$T/bad2.csv" -o "$T/bad2.cofi" "${small[@]}" \
  >"$T/bad2.log" 2>&1 && fail "bad line on rank 2: mpirun succeeded"
grep -q "bad2.csv:1300:" "$T/bad2.log" || fail "bad line on rank 2: no file:1300: $(head -5 "$T/bad2.log")"
[ "$(grep -c 'not-a-number' "$T/bad2.log")" = 1 ] || fail "bad line on rank 2: not one message"
ls "$T"/bad2.cofi* >/dev/null 2>&1 && fail "bad line on rank 2 left a model file"

# bad input: every rank stops, one message with file and line, no model
cp "$T/d/interactions.csv" "$T/bad.csv"; printf 'u1,v1,watch,not-a-time\n' >>"$T/bad.csv"
"${MR[@]}" -np 2 "$COFI" train "$T/bad.csv" -o "$T/bad.cofi" "${args[@]}" >"$T/bad.log" 2>&1 \
  && fail "bad input: mpirun succeeded"
grep -q "bad.csv:3002:" "$T/bad.log" || fail "bad input: no file:line: $(head -3 "$T/bad.log")"
[ "$(grep -c 'not a timestamp' "$T/bad.log")" = 1 ] || fail "bad input: reported more than once"
ls "$T"/bad.cofi* >/dev/null 2>&1 && fail "bad input left a model file"

# a rank killed mid-training: the job ends with an error, the previous
# model stays as it was, no temporary file is left
"$COFI" synth --users 20000 --items 4000 --interactions 600000 --seed 2 -o "$T/big" >/dev/null 2>&1 \
  || fail "synth big"
cp "$T/m1.cofi" "$T/keep.cofi"; before=$(md5sum <"$T/keep.cofi")
"${MR[@]}" -np 2 "$COFI" train "$T/big/interactions.csv" -o "$T/keep.cofi" --factors 64 \
  --iterations 200 >"$T/kill.log" 2>&1 &
mp=$!
for _ in $(seq 100); do grep -q "^read " "$T/kill.log" && break; sleep 0.2; done
grep -q "^read " "$T/kill.log" || { kill $mp; fail "big training did not start: $(head -3 "$T/kill.log")"; }
sleep 1
victim=$(pgrep -P $mp -x cofi | tail -1)
[ -n "$victim" ] || { kill $mp; fail "no rank process under mpirun $mp"; }
kill -KILL "$victim"
wait $mp && fail "mpirun succeeded with a killed rank"
grep -qiE "signal|killed|exited" "$T/kill.log" || fail "no clear error: $(tail -5 "$T/kill.log")"
[ "$(md5sum <"$T/keep.cofi")" = "$before" ] || fail "the previous model changed"
ls "$T"/keep.cofi.tmp.* >/dev/null 2>&1 && fail "a temporary file was left"
pass

# Helpers for the `cofi serve` end-to-end tests (sourced by serve*.sh; the
# .bash extension keeps ctest from running this file as a test).
#
# Every server is started on 127.0.0.1 with --port 0 (the kernel picks a
# free port; the server prints it), and killed at exit if a test failed
# before stopping it. Requests go through curl; bodies are checked with jq.
. "$(dirname "$0")/lib.bash"
command -v curl >/dev/null && command -v jq >/dev/null \
  || { echo "SKIP: curl and jq are needed (scripts/install-deps.sh)"; exit 77; }
[ -x "$COFI" ] || fail "no cofi binary at $COFI"

T=$(mktemp -d)
SERVER_PIDS=()
serve_cleanup() {
  local p
  for p in "${SERVER_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap serve_cleanup EXIT

# make_models: a small log whose IDs need care in URLs (spaces, commas,
# backslash, slash, UTF-8), an items file with titles, and two models
# trained from it ($T/a.cofi, $T/b.cofi: different factors, so different
# checksums). Users 1..40 plus the five special ones; items i1..i30 plus
# four special ones. Every user has items.
make_models() {
  awk 'BEGIN {
    OFS = "\t"
    print "user_id", "item_id", "value" > "'"$T"'/data.tsv"
    print "item_id", "title", "genre" > "'"$T"'/items.tsv"
    split("sp ace|a,b|back\\slash|ünï|sl/ash", su, "|")
    split("item,comma|item space|it/em|ïtem", si, "|")
    for (j = 0; j < 34; j++) {
      it = j < 30 ? "i" (j + 1) : si[j - 29]; items[j] = it
      print it, "Title of " it " (\"q\")", (j % 3 == 0 ? "Drama" : "Comedy") > "'"$T"'/items.tsv"
    }
    for (u = 0; u < 45; u++) {
      us = u < 40 ? (u + 1) : su[u - 39]
      for (j = 0; j < 34; j++)
        if ((u * 7 + j * (1 + u % 4)) % 5 < 2) print us, items[j], 1 + (u + j) % 3 > "'"$T"'/data.tsv"
    }
  }'
  "$COFI" train "$T/data.tsv" --items "$T/items.tsv" --factors 8 --iterations 5 --quiet \
    -o "$T/a.cofi" >"$T/train.log" 2>&1 || fail "train model a: $(cat "$T/train.log")"
  "$COFI" train "$T/data.tsv" --items "$T/items.tsv" --factors 6 --iterations 4 --seed 7 --quiet \
    -o "$T/b.cofi" >"$T/train.log" 2>&1 || fail "train model b: $(cat "$T/train.log")"
}

# start_server LOG ARGS...: starts `cofi serve ARGS` (stderr and stdout to
# LOG), waits until it prints where it listens; sets PID, PORT and U.
start_server() {
  local log=$1 i
  shift
  # Emptied here, not only by the background job's redirection: the loop
  # below could otherwise read a reused LOG's old port before the job runs.
  : >"$log"
  "$COFI" serve "$@" >"$log" 2>&1 &
  PID=$!
  SERVER_PIDS+=("$PID")
  PORT=
  for i in $(seq 200); do
    PORT=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\) with.*/\1/p' "$log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || fail "cofi serve $* exited at start: $(cat "$log")"
    sleep 0.05
  done
  [ -n "$PORT" ] || fail "cofi serve $* did not start: $(cat "$log")"
  U=http://127.0.0.1:$PORT
}

# stop_server: SIGTERM, then the exit code must be 0 within 10 s.
stop_server() {
  local i rc
  kill -TERM "$PID"
  for i in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$PID" 2>/dev/null && fail "server still running 10 s after SIGTERM"
  wait "$PID"; rc=$?
  # Reaped: its PID may now be anyone's, so the exit trap must not kill it.
  local p keep=()
  for p in "${SERVER_PIDS[@]}"; do [ "$p" = "$PID" ] || keep+=("$p"); done
  SERVER_PIDS=("${keep[@]}")
  [ "$rc" = 0 ] || fail "server exited $rc after SIGTERM"
}

# req CURL-ARGS...: one request; CODE = status, body in $T/body.
req() { CODE=$(curl -g -s -m 10 -o "$T/body" -w '%{http_code}' "$@"); }

# ok STATUS JQ-FILTER CURL-ARGS...: the status must match and the JSON
# body satisfy the filter (jq -e).
ok() {
  local want=$1 filter=$2
  shift 2
  req "$@"
  [ "$CODE" = "$want" ] || fail "$* -> $CODE, expected $want: $(head -c 400 "$T/body")"
  [ -z "$filter" ] || jq -e "$filter" "$T/body" >/dev/null \
    || fail "$* -> body fails '$filter': $(head -c 400 "$T/body")"
}

# err STATUS CODE CURL-ARGS...: an error answer with that status and code
# word, and a non-empty message.
err() {
  local want=$1 code=$2
  shift 2
  ok "$want" "(.error.code == \"$code\") and (.error.message | length > 0)" "$@"
}

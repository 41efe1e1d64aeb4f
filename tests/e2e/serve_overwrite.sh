#!/usr/bin/env bash
# cofi serve: the served model file rewritten in place (the same inode, not
# a rename) must not hurt the server. The server maps its model under a
# read lease; a writer opening the file is held by the kernel until the
# server has read the old bytes into private memory and let go.
#  1. `cp other.cofi served.cofi` while a client hammers /recommend: the cp
#     completes, every answer is a 200 from the OLD model, /health shows
#     the old checksum with storage "private"; SIGHUP then serves the new
#     file, mapped again.
#  2. `: > served.cofi` (truncation): the server survives and answers;
#     SIGHUP fails cleanly ("empty file") and the old model keeps serving.
#  3. No lease possible (a writer holds the file open when the server
#     starts): the server says so once and reads the model into private
#     memory; an in-place overwrite then cannot touch it.
# On a server that maps without a lease, step 1 serves the new file's
# bytes under the old tables (wrong answers) and step 2 ends the process
# with SIGBUS.
set -u
. "$(dirname "$0")/serve_common.bash"
make_models
S=$T/served.cofi
cp "$T/a.cofi" "$S"
LOG=$T/serve.log
start_server "$LOG" "$S" --port 0 --threads 2 --quiet

# health_is FILTER: /health answers 200 and satisfies the jq filter.
health_is() { ok 200 "$1" "$U/health"; }
# wait_log PATTERN COUNT: until $LOG has COUNT lines matching (5 s).
wait_log() {
  local i
  for i in $(seq 50); do
    [ "$(grep -c -- "$1" "$LOG")" -ge "$2" ] && return 0
    sleep 0.1
  done
  fail "no '$1' (x$2) in the server log: $(tail -5 "$LOG")"
}
# rec: the answer to one fixed query (status must be 200).
rec() {
  req "$U/recommend?user_id=1&k=3"
  [ "$CODE" = 200 ] || fail "/recommend -> $CODE: $(head -c 300 "$T/body")"
  cat "$T/body"
}

# ---- 1. cp over the served file under load
health_is '.model.storage == "mapped" and .model.generation == 1'
sum_a=$(jq -r .model.checksum "$T/body")
want_a=$(rec)
urls=(); for i in $(seq 300); do urls+=("$U/recommend?user_id=1&k=3"); done
curl -s -m 20 -w '\n%{http_code}\n' "${urls[@]}" >"$T/load" &
client=$!
sleep 0.05
t0=$(date +%s%N)
timeout 10 cp "$T/b.cofi" "$S" || fail "cp over the served file failed or hung (exit $?)"
cp_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
cmp -s "$T/b.cofi" "$S" || fail "the cp did not write the new file"
[ "$(rec)" = "$want_a" ] || fail "after the cp, /recommend is not the old model's answer: $(cat "$T/body")"
wait "$client"
n=$(grep -cx 200 "$T/load")
[ "$n" = 300 ] || fail "$n of 300 requests around the cp were 200: $(grep -v '^{' "$T/load" | sort | uniq -c)"
bad=$(grep '^{' "$T/load" | grep -vxF -e "$want_a" | head -n 1)
[ -z "$bad" ] || fail "an answer around the cp was not the old model's: $bad"
health_is ".model.checksum == \"$sum_a\" and .model.storage == \"private\" and .model.generation == 1"
grep -q "is being rewritten in place: now serving a private copy of generation 1" "$LOG" \
  || fail "no private-copy line in the log: $(tail -3 "$LOG")"
grep -Eq '^cofi_model_info\{.*storage="private".*\} 1$' <(curl -s "$U/metrics") \
  || fail "/metrics: no storage=\"private\" in cofi_model_info"
echo "cp over the served file: done in $cp_ms ms, 300/300 answers from the old model"

kill -HUP "$PID"
wait_log 'cofi serve: reloaded' 1
health_is ".model.checksum != \"$sum_a\" and .model.storage == \"mapped\" and .model.generation == 2"
sum_b=$(jq -r .model.checksum "$T/body")
want_b=$(rec)
[ "$want_a" != "$want_b" ] || fail "models a and b answer alike; the test would prove nothing"

# ---- 2. truncation in place
timeout 10 bash -c ': >"$1"' _ "$S" || fail "truncating the served file failed or hung"
[ ! -s "$S" ] || fail "the file was not truncated"
[ "$(rec)" = "$want_b" ] || fail "after truncation, /recommend changed: $(cat "$T/body")"
health_is ".model.checksum == \"$sum_b\" and .model.storage == \"private\" and .model.generation == 2"
wait_log "now serving a private copy of generation 2" 1
kill -HUP "$PID"
wait_log 'reload failed, still serving generation 2' 1
health_is ".model.generation == 2 and .model.checksum == \"$sum_b\" and .reloads.failed == 1
           and (.reloads.last_error | contains(\"empty file\"))"
[ "$(rec)" = "$want_b" ] || fail "a failed reload of the truncated file changed the answers"
ok 200 '.status == "ok"' "$U/ping"
stop_server

# ---- 3. no lease: a writer has the file open when the server starts
S2=$T/served2.cofi
cp "$T/a.cofi" "$S2"
LOG=$T/serve2.log
exec 3>>"$S2"
start_server "$LOG" "$S2" --port 0 --threads 2 --quiet 3>&- # the server must not inherit it
exec 3>&-
grep -q "no read lease (another process has the file open for writing): the model is read into private memory" \
  "$LOG" || fail "no lease fallback line: $(cat "$LOG")"
[ "$(grep -c 'no read lease' "$LOG")" = 1 ] || fail "the fallback should be said once"
health_is ".model.storage == \"private\" and .model.checksum == \"$sum_a\""
timeout 10 cp "$T/b.cofi" "$S2" || fail "cp over the private-memory model's file failed"
[ "$(rec)" = "$want_a" ] || fail "an overwrite changed a private model's answers: $(cat "$T/body")"
health_is ".model.storage == \"private\" and .model.checksum == \"$sum_a\" and .model.generation == 1"
kill -HUP "$PID"
wait_log 'cofi serve: reloaded' 1
# nobody writes the file now: the reload takes a lease and maps it
health_is ".model.storage == \"mapped\" and .model.checksum == \"$sum_b\" and .model.generation == 2"
[ "$(rec)" = "$want_b" ] || fail "after the reload, not model b's answer"
stop_server
pass

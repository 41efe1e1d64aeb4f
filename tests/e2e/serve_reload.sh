#!/usr/bin/env bash
# cofi serve: reload and shutdown. POST /admin/reload (token checks) and
# SIGHUP while three keep-alive clients hammer /recommend: every answer is
# a 200 and byte-identical to model A's or model B's answer (never a mix,
# never an error). A bad or truncated new file leaves the old model serving
# and is reported. SIGTERM with a request in flight (a slow upload): new
# connections are refused, the request completes, the exit code is 0.
# SIGINT and --drain-timeout too.
set -u
. "$(dirname "$0")/serve_common.bash"
make_models
cp "$T/a.cofi" "$T/model.cofi"
start_server "$T/serve.log" "$T/model.cofi" --port 0 --threads 2 --admin-token s3cret-token
AUTH='Authorization: Bearer s3cret-token'

# ---- the admin endpoint's guard
err 401 unauthorized -X POST "$U/admin/reload"
curl -s -D - -o /dev/null -X POST "$U/admin/reload" | grep -qi '^www-authenticate: Bearer' \
  || fail "401 without WWW-Authenticate"
err 401 unauthorized -X POST -H 'Authorization: Bearer wrong' "$U/admin/reload"
err 401 unauthorized -X POST -H 'Authorization: Bearer s3cret-toke' "$U/admin/reload"
err 401 unauthorized -X POST -H 'Authorization: Bearer s3cret-token-and-more' "$U/admin/reload"
err 401 unauthorized -X POST -H 'Authorization: Basic czNjcmV0LXRva2Vu' "$U/admin/reload"
err 405 method_not_allowed "$U/admin/reload"
ok 200 '.status == "reloaded" and .model.generation == 2' -X POST -H "$AUTH" "$U/admin/reload"

# ---- reload under load: the answers of both models for one query
want_a=$(curl -s "$U/recommend?user_id=1&k=3")
cp "$T/b.cofi" "$T/next.cofi" && mv -f "$T/next.cofi" "$T/model.cofi"
ok 200 '.model.generation == 3' -X POST -H "$AUTH" "$U/admin/reload"
want_b=$(curl -s "$U/recommend?user_id=1&k=3")
[ "$want_a" != "$want_b" ] || fail "models a and b answer alike; the test would prove nothing"
urls=(); for i in $(seq 400); do urls+=("$U/recommend?user_id=1&k=3"); done
for c in 1 2 3; do
  curl -s -w '\n%{http_code}\n' "${urls[@]}" >"$T/load.$c" &
  eval "client_$c=\$!"
done
reloads=0
while kill -0 "$client_1" 2>/dev/null || kill -0 "$client_2" 2>/dev/null || kill -0 "$client_3" 2>/dev/null \
      || [ "$reloads" -lt 6 ]; do
  src=$([ $((reloads % 2)) = 0 ] && echo a || echo b)
  cp "$T/$src.cofi" "$T/next.cofi" && mv -f "$T/next.cofi" "$T/model.cofi"
  if [ $((reloads % 2)) = 0 ]; then
    kill -HUP "$PID"
  else
    ok 200 '.status == "reloaded"' -X POST -H "$AUTH" "$U/admin/reload"
  fi
  reloads=$((reloads + 1))
  sleep 0.05
done
wait "$client_1" "$client_2" "$client_3"
for c in 1 2 3; do
  n=$(grep -cx 200 "$T/load.$c")
  [ "$n" = 400 ] || fail "client $c: $n of 400 answers were 200: $(grep -vx 200 "$T/load.$c" | grep -v '^{' | sort | uniq -c)"
  bad=$(grep '^{' "$T/load.$c" | grep -vxF -e "$want_a" -e "$want_b" | head -n 1)
  [ -z "$bad" ] || fail "client $c got an answer from neither model: $bad"
done
# SIGHUP reloads are asynchronous: wait for the log to show them all
for i in $(seq 50); do
  [ "$(grep -c 'cofi serve: reloaded' "$T/serve.log")" -ge $((reloads + 2)) ] && break
  sleep 0.1
done
ok 200 ".reloads.succeeded == $((reloads + 2)) and .reloads.failed == 0 and .model.generation == $((reloads + 3))" \
  "$U/health"

# ---- a bad new file leaves the old model serving, and says why
gen=$((reloads + 3))
serving=$(curl -s "$U/recommend?user_id=1&k=3")
echo "this is not a model" >"$T/next.cofi" && mv -f "$T/next.cofi" "$T/model.cofi"
err 500 reload_failed -X POST -H "$AUTH" "$U/admin/reload"
jq -e ".error.message | contains(\"still serving generation $gen\")" "$T/body" >/dev/null \
  || fail "reload_failed should say what is still serving: $(cat "$T/body")"
[ "$(curl -s "$U/recommend?user_id=1&k=3")" = "$serving" ] || fail "a failed reload changed the answers"
ok 200 ".model.generation == $gen and .reloads.failed == 1 and (.reloads.last_error | contains(\"cannot load\"))" "$U/health"
head -c 5000 "$T/a.cofi" >"$T/next.cofi" && mv -f "$T/next.cofi" "$T/model.cofi"
kill -HUP "$PID"
for i in $(seq 50); do grep -q 'reload failed.*' "$T/serve.log" && [ "$(grep -c 'reload failed' "$T/serve.log")" -ge 2 ] && break; sleep 0.1; done
ok 200 ".model.generation == $gen and .reloads.failed == 2" "$U/health"
grep -q "cofi serve: reload failed, still serving generation $gen" "$T/serve.log" || fail "no reload failure in the log"
[ "$(curl -s "$U/recommend?user_id=1&k=3")" = "$serving" ] || fail "a truncated file changed the answers"
rm -f "$T/model.cofi"
err 500 reload_failed -X POST -H "$AUTH" "$U/admin/reload"
cp "$T/a.cofi" "$T/model.cofi"
ok 200 ".model.generation == $((gen + 1))" -X POST -H "$AUTH" "$U/admin/reload"
ok 200 '.reloads.last_error == null' "$U/health"
grep -Eq '^cofi_model_reloads_total\{result="error"\} 3$' <(curl -s "$U/metrics") || fail "/metrics reload errors"

# ---- SIGTERM with a request in flight: a 300 KB body uploaded at 100 KB/s
{ printf '{"user_id": "1", "k": 2}'; head -c 300000 /dev/zero | tr '\0' ' '; } >"$T/slow"
curl -s -m 20 -o "$T/slow.out" -D "$T/slow.headers" -w '%{http_code}' --limit-rate 100K -X POST \
  --data-binary @"$T/slow" "$U/invocations" >"$T/slow.code" &
slow=$!
sleep 1
kill -TERM "$PID"
sleep 0.3
kill -0 "$PID" 2>/dev/null || fail "the server exited before its in-flight request finished"
curl -s -m 2 -o /dev/null "$U/ping" && fail "a new connection was accepted while draining"
wait "$slow"
[ "$(cat "$T/slow.code")" = 200 ] || fail "the in-flight request got $(cat "$T/slow.code"): $(cat "$T/slow.out")"
jq -e '(.recommendations | length) == 2' "$T/slow.out" >/dev/null || fail "in-flight answer: $(cat "$T/slow.out")"
grep -qi '^connection: close' "$T/slow.headers" || fail "an answer while draining should close its connection"
stop_waited() {
  local i rc
  for i in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$PID" 2>/dev/null && fail "server still running 10 s after SIGTERM"
  wait "$PID"; rc=$?
  [ "$rc" = 0 ] || fail "server exited $rc after the drain"
}
stop_waited
grep -q 'SIGTERM: finishing 1 in-flight' "$T/serve.log" || fail "no drain message: $(tail -3 "$T/serve.log")"

# ---- SIGINT stops the same way
start_server "$T/int.log" "$T/a.cofi" --port 0 --quiet
ok 200 '' "$U/ping"
kill -INT "$PID"
stop_waited

# ---- --drain-timeout bounds the wait for a request that does not finish
start_server "$T/drain.log" "$T/a.cofi" --port 0 --quiet --drain-timeout 1
curl -s -m 20 -o /dev/null --limit-rate 20K -X POST --data-binary @"$T/slow" "$U/invocations" &
slow=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$PID"
stop_waited
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 4000 ] || fail "the 1 s drain timeout took $ms ms"
grep -q 'stopping with 1 requests unfinished' "$T/drain.log" || fail "no unfinished-request message"
wait "$slow" 2>/dev/null
pass

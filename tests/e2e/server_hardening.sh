#!/usr/bin/env bash
# cofi serve against hostile clients: what serve.sh and serve_reload.sh do
# not already cover (they test 413/414/431 at the defaults, the admin
# token's answers, and draining).
#   - default bind: 127.0.0.1 only;
#   - configured limits: --max-header-bytes, --max-body, --max-id-len;
#   - malformed request lines and headers sent raw (no HTTP client
#     cleaning them up): each gets a 4xx/5xx or a closed connection, and
#     the server keeps answering;
#   - path traversal on every route family (/items/../.., /docs/../, %2e%2e,
#     absolute-form targets): 404 or 400, and (when strace works here) the
#     server opens no file while answering them;
#   - a slow client sending one byte a second does not hold the only worker
#     thread: other clients are answered at once;
#   - the idle timeout closes a silent connection;
#   - the connection limit: connections beyond --max-connections wait
#     unserved (not accepted), and are served when a slot frees.
set -u
. "$(dirname "$0")/serve_common.bash"
# The server may answer a malformed request and close before the whole of
# it is sent: a write to that socket must fail, not kill the test.
trap '' PIPE
make_models

# Raw HTTP on a fresh connection: sends $1 (printf format), prints the
# status line's code ("closed" when the server closed without answering).
raw() {
  local fd line=
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || { echo "noconnect"; return; }
  printf "$1" 2>/dev/null >&"$fd"
  if IFS= read -r -t 5 line <&"$fd" && [[ "$line" == HTTP/* ]]; then
    line=${line#HTTP/1.? }
    echo "${line%% *}"
  elif [ -z "${line:-}" ]; then
    echo closed
  else
    echo "unexpected: $line"
  fi
  exec {fd}>&-
}

# ---- default bind address: loopback only
start_server "$T/default.log" "$T/a.cofi" --port 0 --threads 1
hexport=$(printf '%04X' "$PORT")
# /proc/net/tcp: local address of listening sockets (state 0A), hex.
listen=$(awk -v p=":$hexport" '$4 == "0A" && $2 ~ p"$" {print $2}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
[ "$listen" = "0100007F:$hexport" ] || fail "default bind is not 127.0.0.1 only: $listen"
grep -q "listening on http://127.0.0.1:$PORT" "$T/default.log" || fail "start line: $(head -3 "$T/default.log")"
stop_server

# ---- configured limits
start_server "$T/serve.log" "$T/a.cofi" --port 0 --threads 1 --max-header-bytes 4096 \
  --max-body 1024 --max-id-len 32 --timeout 2 --max-connections 8 --admin-token hunter2-hunter2
ok 200 '.status == "ok"' "$U/ping"
req "$U/recommend?user_id=$(head -c 6000 /dev/zero | tr '\0' x)"
[ "$CODE" = 414 ] || fail "a 6 KB URL with --max-header-bytes 4096 gave $CODE, not 414"
req -H "X-A: $(head -c 5000 /dev/zero | tr '\0' x)" "$U/ping"
[ "$CODE" = 431 ] || [ "$CODE" = 413 ] || fail "a 5 KB header gave $CODE, not 431"
hdrs=(); for i in $(seq 400); do hdrs+=(-H "X-H$i: v"); done
req "${hdrs[@]}" "$U/ping"
[ "$CODE" = 431 ] || [ "$CODE" = 413 ] || fail "400 headers in 4 KB gave $CODE, not 431"
{ printf '{"user_id": "1"}'; head -c 2000 /dev/zero | tr '\0' ' '; } >"$T/body2k"
err 413 body_too_large -X POST --data-binary @"$T/body2k" "$U/invocations"
err 413 body_too_large -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$T/body2k" "$U/invocations"
err 400 invalid_id "$U/recommend?user_id=$(head -c 33 /dev/zero | tr '\0' u)"
err 400 invalid_id "$U/recommend?user_id=a%00b"
err 400 invalid_encoding "$U/recommend?user_id=%zz"
err 400 invalid_json -X POST -d '{"user_id": "1"' "$U/invocations"
err 400 invalid_json -X POST -d "$(printf '%.0s[' $(seq 1000))" "$U/invocations"
ok 200 '.status == "ok"' "$U/ping"

# ---- malformed requests, raw
declare -A want=(
  ['GARBAGE\r\n\r\n']='4 closed'
  ['GET\r\n\r\n']='4 closed'
  ['GET /ping\r\n\r\n']='4 closed 2'
  ['GET /ping HTTP/9.9\r\nHost: x\r\n\r\n']='4 5 closed'
  ['GET /ping HTTP/1.1\r\n\r\n']='4 2'
  ['GET /ping HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n']='4 closed'
  ['GET /ping HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n']='4 closed 2'
  ['GET /p\001ng HTTP/1.1\r\nHost: x\r\n\r\n']='4 closed'
  ['POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n']='4 closed'
  ['POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n']='4 closed'
  ['POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}']='4 closed'
  ['POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n']='4 closed'
  ['BREW /ping HTTP/1.1\r\nHost: x\r\n\r\n']='4 5'
  ['GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n']='4'
  ['GET http://x/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n']='4'
  ['GET * HTTP/1.1\r\nHost: x\r\n\r\n']='4'
)
for q in "${!want[@]}"; do
  got=$(raw "$q")
  okay=0
  for w in ${want[$q]}; do [[ "$got" == "$w"* ]] && okay=1; done
  [ "$okay" = 1 ] || fail "raw request '$q' -> '$got', expected one of: ${want[$q]}"
  ok 200 '.status == "ok"' "$U/ping"
done

# ---- path traversal: nothing outside the routes, no file touched
trav=(/items/../.. /items/..%2F..%2Fetc%2Fpasswd /items/%2e%2e/%2e%2e/etc/passwd /docs/../
      /docs/..%2F..%2Fetc%2Fpasswd /docs/../../etc/passwd /openapi.json/../../etc/passwd
      /..%2f..%2f..%2fetc%2fpasswd //etc/passwd /%2e%2e/%2e%2e/etc/passwd /static/../../etc/passwd
      "/items/....//....//etc/passwd" /ping/../../etc/passwd)
check_traversal() {
  local p
  for p in "${trav[@]}"; do
    req --path-as-is "$U$p"
    case "$CODE" in
      404|400) ;;
      *) fail "$p -> $CODE (expected 404 or 400): $(head -c 300 "$T/body")" ;;
    esac
    grep -q 'root:' "$T/body" && fail "$p served /etc/passwd"
    jq -e '.error.code' "$T/body" >/dev/null || fail "$p -> no JSON error: $(head -c 300 "$T/body")"
  done
}
check_traversal
spid=
if command -v strace >/dev/null; then
  strace -f -qq -e trace=open,openat,openat2,stat,newfstatat,statx,readlink -p "$PID" \
    -o "$T/strace.log" 2>/dev/null &
  spid=$!
  sleep 0.5
  kill -0 "$spid" 2>/dev/null || spid= # could not attach (no ptrace here)
fi
if [ -n "$spid" ]; then
  check_traversal
  sleep 0.3
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
  if grep -v -- '--- SIG' "$T/strace.log" | grep -q .; then
    fail "the server touched files while answering traversal attempts: $(head -5 "$T/strace.log")"
  fi
  echo "strace: no file opened or stat'ed during ${#trav[@]} traversal attempts"
else
  echo "note: strace cannot attach here; traversal checked by the answers only"
fi

# ---- the admin token: right token accepted, any other refused
err 401 unauthorized -X POST -H 'Authorization: Bearer hunter2-hunter' "$U/admin/reload"
err 401 unauthorized -X POST -H 'Authorization: Bearer hunter2-hunter2x' "$U/admin/reload"
err 401 unauthorized -X POST -H 'Authorization: Bearer ' "$U/admin/reload"
err 401 unauthorized -X POST -H 'Authorization: Bearer HUNTER2-HUNTER2' "$U/admin/reload"
ok 200 '.status == "reloaded"' -X POST -H 'Authorization: Bearer hunter2-hunter2' "$U/admin/reload"

# ---- a slow client (one byte a second) and the only worker thread
(
  exec 5<>"/dev/tcp/127.0.0.1/$PORT"
  msg='GET /recommend?user_id=1 HTTP/1.1\r\nHost: x\r\n\r\n'
  for ((i = 0; i < 12; i++)); do printf '%s' "${msg:i:1}" >&5 || exit 0; sleep 1; done
) &
slow=$!
sleep 2.5
# Each answer's own latency (curl's time_total): a worker held by the slow
# client would make requests wait for its next byte, about a second.
worst=0
for i in $(seq 20); do
  t=$(curl -s -m 10 -o "$T/body" -w '%{time_total}' "$U/recommend?user_id=$i")
  jq -e '.recommendations | length == 10' "$T/body" >/dev/null || fail "slow-client phase: $(head -c 300 "$T/body")"
  worst=$(awk -v a="$worst" -v b="$t" 'BEGIN { print (b > a ? b : a) }')
done
awk -v w="$worst" 'BEGIN { exit !(w < 0.5) }' || fail "a request waited ${worst} s while a slow client trickled"
kill -0 "$slow" 2>/dev/null || fail "the slow client was cut off before the test ran"
kill "$slow" 2>/dev/null; wait "$slow" 2>/dev/null
echo "slow client: 20 other requests answered by the single worker, slowest ${worst} s"

# ---- idle timeout: a silent connection is closed after --timeout 2
exec 6<>"/dev/tcp/127.0.0.1/$PORT"
t0=$SECONDS
IFS= read -r -t 10 line <&6
((SECONDS - t0 <= 5)) || fail "idle connection still open after $((SECONDS - t0)) s (--timeout 2)"
exec 6>&-

# ---- connection limit: with 8 connections held open (idle), a 9th gets a
# 503 server_busy at once, with Connection: close and Retry-After; it is
# served as soon as one of the 8 goes. (The 8 are freed by hand, before the
# 2 s idle timeout would free them.)
fds=()
for i in $(seq 8); do exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"; fds+=("$fd"); done
sleep 0.2
CODE=$(curl -s -m 10 -D "$T/hdrs" -o "$T/body" -w '%{http_code}' "$U/ping")
[ "$CODE" = 503 ] || fail "a 9th connection got $CODE with --max-connections 8, not 503"
jq -e '.error.code == "server_busy"' "$T/body" >/dev/null || fail "busy answer: $(head -c 300 "$T/body")"
grep -qi '^connection: close' "$T/hdrs" || fail "busy answer without Connection: close: $(cat "$T/hdrs")"
grep -qi '^retry-after: 1' "$T/hdrs" || fail "busy answer without Retry-After: $(cat "$T/hdrs")"
for fd in "${fds[@]}"; do exec {fd}>&-; done
for i in $(seq 50); do
  req "$U/ping"; [ "$CODE" = 200 ] && break; sleep 0.1
done
ok 200 '.status == "ok"' "$U/ping"
echo "connection limit: a 9th connection got 503 server_busy while 8 were held; served once they closed"

kill -0 "$PID" || fail "the server died"
stop_server
grep -qiE 'AddressSanitizer|runtime error' "$T/serve.log" && fail "sanitizer report: $(grep -iE -m3 'Sanitizer|runtime error' "$T/serve.log")"
pass

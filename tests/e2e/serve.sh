#!/usr/bin/env bash
# cofi serve: every endpoint and every error code, with a real client
# (curl) against the real binary on a free loopback port: /ping, /health,
# /recommend (known user, cold start, filter_seen, exclude), /recommend_cold,
# /invocations, /recommend/batch, /similar_items, /similar_users,
# /items/{id}, /metrics, /openapi.json, /docs; IDs with spaces, commas,
# backslashes, slashes and UTF-8; 400/404/405/413/414/431; the access log
# (JSON lines with --access-log, off by default).
set -u
. "$(dirname "$0")/serve_common.bash"
make_models
start_server "$T/serve.log" "$T/a.cofi" --port 0 --threads 2 --max-list 100 --access-log

# ---- liveness and metadata
ok 200 '.status == "ok"' "$U/ping"
[ "$(curl -s -I -o /dev/null -w '%{http_code}' "$U/ping")" = 200 ] || fail "HEAD /ping"
ok 200 '.status == "ok" and .model.users == 45 and .model.items == 34 and .model.factors == 8
        and .model.generation == 1 and (.model.checksum | length) == 16
        and .model.item_fields == ["title", "genre"] and .model.params.factors == 8
        and .reloads.last_error == null' "$U/health"
sum=$("$COFI" info "$T/a.cofi" | awk '$1 == "checksum" {print $2}')
jq -e --arg s "$sum" '.model.checksum == $s' "$T/body" >/dev/null || fail "/health checksum is not cofi info's ($sum)"

# ---- /recommend, known users (IDs percent-encoded, '+' as space)
ok 200 '.user_id == "1" and (.recommendations | length) == 5 and
        (.recommendations | all(.item_id and .score and (.title | startswith("Title of"))))' \
  "$U/recommend?user_id=1&k=5"
jq -e '[.recommendations[].score] | . == (sort | reverse)' "$T/body" >/dev/null || fail "scores not sorted"
seen=$(awk -F'\t' '$1 == "1" {print $2}' "$T/data.tsv")
for i in $(jq -r '.recommendations[].item_id' "$T/body"); do
  grep -qxF -- "$i" <<<"$seen" && fail "/recommend returned $i, which user 1 has in training"
done
ok 200 '.user_id == "sp ace"' "$U/recommend?user_id=sp%20ace"
ok 200 '.user_id == "sp ace"' "$U/recommend?user_id=sp+ace"
ok 200 '.user_id == "a,b"' "$U/recommend?user_id=a%2Cb&k=3"
ok 200 '.user_id == "back\\slash"' "$U/recommend?user_id=back%5Cslash"
ok 200 '.user_id == "ünï"' "$U/recommend?user_id=%C3%BCn%C3%AF"
ok 200 '.user_id == "sl/ash"' "$U/recommend?user_id=sl%2Fash"
ok 200 '(.recommendations | length) == 10' "$U/recommend?user_id=2"   # default k
# filter_seen=false brings training items back: all 34 items are candidates
n_seen=$(awk -F'\t' '$1 == "1"' "$T/data.tsv" | wc -l)
ok 200 "(.recommendations | length) == 34" "$U/recommend?user_id=1&k=1000&filter_seen=false"
ok 200 "(.recommendations | length) == $((34 - n_seen))" "$U/recommend?user_id=1&k=1000&filter_seen=true"
# exclude, with an ID holding a comma (escaped as \,) and an unknown one
top=$(curl -s "$U/recommend?user_id=1&k=1" | jq -r '.recommendations[0].item_id')
ok 200 "[.recommendations[].item_id] | (index(\"$top\") == null) and (index(\"item,comma\") == null)" \
  "$U/recommend?user_id=1&k=1000&exclude=$top,item%5C%2Ccomma,nope"

# the same answers as the CLI's --json, to the digit
for u in 1 "sp ace" 17; do
  a=$(curl -s -G "$U/recommend" --data-urlencode "user_id=$u" -d k=10 | jq -c .)
  b=$("$COFI" recommend "$T/a.cofi" --user "$u" -k 10 --json | jq -c .)
  [ "$a" = "$b" ] || fail "/recommend and cofi recommend --json differ for user $u: $a vs $b"
done
a=$(curl -s "$U/recommend?liked=i1,i2,zzz&k=5" | jq -c .)
b=$("$COFI" recommend "$T/a.cofi" --liked i1,i2,zzz -k 5 --json 2>/dev/null | jq -c .)
[ "$a" = "$b" ] || fail "cold start differs from cofi recommend --liked --json: $a vs $b"
a=$(curl -s "$U/similar_items?item_id=i3&k=5" | jq -c .)
b=$("$COFI" similar "$T/a.cofi" --item i3 -k 5 --json | jq -c .)
[ "$a" = "$b" ] || fail "/similar_items differs from cofi similar --json: $a vs $b"
a=$(curl -s "$U/similar_users?user_id=3&k=5" | jq -c .)
b=$("$COFI" similar "$T/a.cofi" --user 3 -k 5 --json | jq -c .)
[ "$a" = "$b" ] || fail "/similar_users differs from cofi similar --json: $a vs $b"

# ---- cold start: liked (lists with escapes, repeated parameters)
ok 200 '.liked == ["i1", "item,comma", "item space"] and .unknown == ["zzz"] and
        (.recommendations | length) == 4 and
        ([.recommendations[].item_id] | all(. != "i1" and . != "item,comma" and . != "item space"))' \
  "$U/recommend?liked=i1,item%5C%2Ccomma,zzz&liked=item+space,i1&k=4"
ok 200 '.liked == ["it/em", "ïtem"] and .unknown == []' "$U/recommend_cold?liked=it%2Fem,%C3%AFtem&k=2"
ok 200 '(.recommendations | length) == 10' "$U/recommend_cold?liked=i2"
err 404 unknown_items "$U/recommend?liked=nope,nada"
err 400 unknown_parameter "$U/recommend_cold?user_id=1"
err 400 missing_parameter "$U/recommend_cold?k=3"

# ---- /recommend errors
err 404 unknown_user "$U/recommend?user_id=nobody&k=10"
jq -e '.error.message | contains("liked")' "$T/body" >/dev/null || fail "unknown_user should point to liked"
for k in abc 0 -1 1001 1.5 '' 99999999999999999999; do err 400 invalid_k "$U/recommend?user_id=1&k=$k"; done
ok 200 '(.recommendations | length) <= 34' "$U/recommend?user_id=1&k=1000"
err 400 missing_parameter "$U/recommend"
err 400 missing_parameter "$U/recommend?k=3"
err 400 invalid_parameter "$U/recommend?user_id=1&liked=i1"
err 400 unknown_parameter "$U/recommend?userid=1"
err 400 duplicate_parameter "$U/recommend?user_id=1&user_id=2"
err 400 duplicate_parameter "$U/recommend?user_id=1&k=2&k=3"
err 400 invalid_parameter "$U/recommend?user_id=1&filter_seen=maybe"
err 400 invalid_encoding "$U/recommend?user_id=%zz"
err 400 invalid_encoding "$U/recommend?user_id=ab%4"
err 400 invalid_id "$U/recommend?user_id="
err 400 invalid_id "$U/recommend?user_id=a%00b"
err 400 invalid_id "$U/recommend?liked=i1,,i2"
err 400 invalid_id "$U/recommend?user_id=$(head -c 600 /dev/zero | tr '\0' x)"
err 400 too_many_ids "$U/recommend?liked=$(seq -s, 1 101)"
# input echoed in messages is cut and escaped: valid JSON whatever was sent
err 404 unknown_user "$U/recommend?user_id=%22%5C%01%FF$(head -c 200 /dev/zero | tr '\0' y)"
jq -e '.error.message | length < 400' "$T/body" >/dev/null || fail "echoed input not truncated"

# ---- /invocations (SageMaker), same answers as /recommend
ok 200 '.user_id == "1" and (.recommendations | length) == 3' \
  -X POST -H 'Content-Type: application/json' -d '{"user_id": "1", "k": 3}' "$U/invocations"
ok 200 '.user_id == "7" and (.recommendations | length) == 5' -X POST -d '{"user_id": 7}' "$U/invocations"
ok 200 '.user_id == "a,b"' -X POST -d '{"user_id": "a,b", "k": 1}' "$U/invocations"
ok 200 '.liked == ["i1", "i2"] and (.recommendations | length) == 2' -X POST -d '{"liked": ["i1", "i2"], "k": 2}' "$U/invocations"
ok 200 '(.recommendations | length) == 34' -X POST -d '{"user_id": "1", "k": 100, "filter_seen": false}' "$U/invocations"
ok 200 "[.recommendations[].item_id] | index(\"$top\") == null" -X POST -d "{\"user_id\": \"1\", \"exclude\": [\"$top\"]}" "$U/invocations"
a=$(curl -s -X POST -d '{"user_id":"3","k":4}' "$U/invocations")
b=$(curl -s "$U/recommend?user_id=3&k=4")
[ "$a" = "$b" ] || fail "/invocations and /recommend differ: $a vs $b"
err 400 invalid_json -X POST -H 'Content-Type: application/json' -d '{"user_id":' "$U/invocations"
err 400 invalid_json -X POST -d '' "$U/invocations"
err 400 invalid_type -X POST -d '["1"]' "$U/invocations"
err 400 invalid_type -X POST -d '{"user_id": true}' "$U/invocations"
err 400 invalid_type -X POST -d '{"liked": "i1"}' "$U/invocations"
err 400 invalid_type -X POST -d '{"user_id": "1", "filter_seen": "no"}' "$U/invocations"
err 400 invalid_k -X POST -d '{"user_id": "1", "k": "5"}' "$U/invocations"
err 400 invalid_k -X POST -d '{"user_id": "1", "k": 0}' "$U/invocations"
err 400 unknown_field -X POST -d '{"userId": "1"}' "$U/invocations"
err 400 missing_parameter -X POST -d '{"k": 3}' "$U/invocations"
err 400 invalid_parameter -X POST -d '{"user_id": "1", "liked": ["i1"]}' "$U/invocations"
err 400 invalid_parameter -X POST -d '{"liked": []}' "$U/invocations"
err 404 unknown_user -X POST -d '{"user_id": "nobody"}' "$U/invocations"
# 413: declared too large (answered before the body is read), and chunked
head -c 2000000 /dev/zero | tr '\0' ' ' >"$T/big"
err 413 body_too_large -X POST -H 'Content-Type: application/json' --data-binary @"$T/big" "$U/invocations"
err 413 body_too_large -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$T/big" "$U/invocations"
# a body just under the limit is fine (JSON allows trailing whitespace)
{ printf '{"user_id": "1", "k": 2}'; head -c 1000000 /dev/zero | tr '\0' ' '; } >"$T/fits"
ok 200 '(.recommendations | length) == 2' -X POST --data-binary @"$T/fits" "$U/invocations"

# ---- /recommend/batch
ok 200 '(.results | length) == 4 and .results[0].user_id == "1" and (.results[0].recommendations | length) == 2
        and .results[1].error.code == "unknown_user" and .results[1].user_id == "nobody"
        and .results[2].user_id == "sp ace" and .results[3].user_id == "9"' \
  -X POST -d '{"users": ["1", "nobody", "sp ace", 9], "k": 2}' "$U/recommend/batch"
err 400 missing_parameter -X POST -d '{"k": 2}' "$U/recommend/batch"
err 400 invalid_parameter -X POST -d '{"users": []}' "$U/recommend/batch"
err 400 too_many_ids -X POST -d "{\"users\": [$(seq -s, 1 101)]}" "$U/recommend/batch"
err 400 unknown_field -X POST -d '{"users": ["1"], "liked": ["i1"]}' "$U/recommend/batch"
ok 200 '(.results | length) == 100 and (.results[0].recommendations | length) > 10 and .results[99].error.code == "unknown_user"' \
  -X POST -d "{\"users\": [$(seq -s, 1 100)], \"k\": 1000}" "$U/recommend/batch"

# ---- similar items and users
ok 200 '.item_id == "i1" and (.similar | length) == 3 and ([.similar[].item_id] | index("i1") == null)
        and (.similar[0].title | startswith("Title of"))' "$U/similar_items?item_id=i1&k=3"
ok 200 '.item_id == "item space" and (.similar | length) == 10' "$U/similar_items?item_id=item%20space"
ok 200 '.user_id == "1" and (.similar | length) == 4 and ([.similar[].user_id] | index("1") == null)' \
  "$U/similar_users?user_id=1&k=4"
err 404 unknown_item "$U/similar_items?item_id=nope"
err 404 unknown_user "$U/similar_users?user_id=nope"
err 400 missing_parameter "$U/similar_items?k=3"
err 400 unknown_parameter "$U/similar_items?item_id=i1&user_id=1"
err 400 invalid_k "$U/similar_users?user_id=1&k=0"

# ---- /items/{id}
ok 200 '.item_id == "i11" and .title == "Title of i11 (\"q\")" and .genre == "Comedy"' "$U/items/i11"
ok 200 '.item_id == "it/em"' "$U/items/it%2Fem"
ok 200 '.item_id == "item space"' "$U/items/item%20space"
ok 200 '.item_id == "item,comma"' "$U/items/item,comma"
err 404 unknown_item "$U/items/no-such-item"
err 400 invalid_id "$U/items/"

# ---- metrics, OpenAPI, docs
req "$U/metrics"
[ "$CODE" = 200 ] || fail "/metrics -> $CODE"
grep -q '^# TYPE cofi_requests_total counter' "$T/body" || fail "/metrics lacks cofi_requests_total"
grep -Eq '^cofi_requests_total\{route="/recommend",status="200"\} [1-9]' "$T/body" || fail "/metrics: no /recommend 200 count"
grep -Eq '^cofi_requests_total\{route="/recommend",status="400"\} [1-9]' "$T/body" || fail "/metrics: no /recommend 400 count"
grep -Eq '^cofi_request_duration_seconds_bucket\{route="/recommend",le="\+Inf"\} [1-9]' "$T/body" || fail "/metrics: no histogram"
grep -Eq '^cofi_model_info\{.*checksum="'"$sum"'".*\} 1$' "$T/body" || fail "/metrics: no model info"
grep -q 'text/plain' <(curl -s -D - -o /dev/null "$U/metrics") || fail "/metrics content type"
ok 200 '(.openapi | startswith("3.")) and (.paths | length) == 25 and
        .components.parameters.k.schema.maximum == 1000' "$U/openapi.json"
for p in /ping /health /recommend /recommend_cold /invocations /recommend/batch /similar_items \
         /similar_users '/items/{id}' /metrics /openapi.json /docs /admin/reload /explain /items \
         '/users/{id}/history' '/ui/{file}' /ui /popular /latest; do
  jq -e --arg p "$p" '.paths[$p]' "$T/body" >/dev/null || fail "/openapi.json lacks $p"
done
req "$U/docs"
[ "$CODE" = 200 ] && grep -q "fetch('/openapi.json')" "$T/body" || fail "/docs"
grep -Eq 'src=.http|href=.http' "$T/body" && fail "/docs loads something from the network"
# the page's script, run by node against this server (skipped without node)
if command -v node >/dev/null && node -e 'process.exit(typeof fetch === "function" ? 0 : 1)'; then
  node "$(dirname "$0")/serve_docs.js" "$U" "$T/body" || fail "/docs page script"
else
  echo "note: no node >= 18, the /docs page script is not exercised"
fi

# ---- routing errors: 404, 405 with Allow
err 404 not_found "$U/no/such/route"
err 404 not_found "$U/"
err 405 method_not_allowed -X DELETE "$U/ping"
curl -s -D - -o /dev/null -X DELETE "$U/ping" | grep -qi '^allow: GET, HEAD' || fail "405 without Allow: GET, HEAD"
err 405 method_not_allowed "$U/invocations"
curl -s -D - -o /dev/null "$U/invocations" | grep -qi '^allow: POST' || fail "405 without Allow: POST"
err 405 method_not_allowed -X POST -d '{}' "$U/recommend"
err 403 admin_disabled -X POST "$U/admin/reload"

# ---- request line and headers beyond the connection memory: refused by
# libmicrohttpd (414, 431), and the server goes on
req "$U/recommend?user_id=$(head -c 100000 /dev/zero | tr '\0' x)"
[ "$CODE" = 414 ] || fail "a 100 KB URL gave $CODE, not 414"
req -H "X-Big: $(head -c 100000 /dev/zero | tr '\0' x)" "$U/ping"
[ "$CODE" = 431 ] || [ "$CODE" = 413 ] || fail "a 100 KB header gave $CODE, not 431"
ok 200 '.status == "ok"' "$U/ping"
# around the limit MHD drops some requests without an answer: they must
# still end (the in-flight count is what SIGTERM waits for)
for n in $(seq 32000 100 33200); do
  curl -s -m 5 -o /dev/null "$U/recommend?user_id=$(head -c "$n" /dev/zero | tr '\0' x)"
done
ok 200 '.server.in_flight == 1' "$U/health"

# ---- keep-alive: many requests on one connection, errors included (a
# 404 or 400 must not cost the client its connection)
urls=(); for i in $(seq 50); do urls+=(-o /dev/null "$U/recommend?user_id=$(( i % 40 + 1 ))&k=3"); done
urls+=(-o /dev/null "$U/nope" -o /dev/null "$U/recommend?k=0" -o /dev/null "$U/ping")
codes=$(curl -s -w '%{http_code}/%{num_connects}\n' "${urls[@]}" | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
[ "$codes" = "200/0x50 200/1x1 400/0x1 404/0x1 " ] || fail "keep-alive run (status/new connections x count): $codes"

# ---- the access log (--access-log): one JSON object per line, with an
# ISO 8601 UTC time, the client address, method, target, status, latency
grep '^{' "$T/serve.log" >"$T/access.jsonl"
jq -e -s 'length > 50 and all(.[]; (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}Z$"))
  and (.client | test("^127[.]0[.]0[.]1:[0-9]+$")) and (.status | type == "number")
  and (.latency_us | type == "number") and (.method | type == "string") and (.target | type == "string"))' \
  "$T/access.jsonl" >/dev/null || fail "access log lines are not all well-formed JSON: $(head -3 "$T/access.jsonl")"
jq -e -s 'any(.[]; .method == "GET" and .target == "/recommend?user_id=1&k=5" and .status == 200)' \
  "$T/access.jsonl" >/dev/null || fail "no access log line for GET /recommend?user_id=1&k=5"
jq -e -s 'any(.[]; .method == "DELETE" and .target == "/ping" and .status == 405)' \
  "$T/access.jsonl" >/dev/null || fail "no access log line for the 405"
stop_server
grep -q 'cofi serve: stopped' "$T/serve.log" || fail "no stop message"

# Default flags: no access log. (Default limits here: a batch of 101 users
# x k 1000 is over the 100,000 results a batch may ask for.)
start_server "$T/quiet.log" "$T/a.cofi" --port 0
ok 200 '' "$U/ping"
ok 200 '' "$U/recommend?user_id=1"
err 400 batch_too_large -X POST -d "{\"users\": [$(seq -s, 1 101)], \"k\": 1000}" "$U/recommend/batch"
stop_server
grep -Eq 'GET /ping|/recommend|"method"' "$T/quiet.log" && fail "requests are logged by default: $(cat "$T/quiet.log")"

# ---- start-up errors
expect_fail 6 "No such file" "$COFI" serve "$T/no-such.cofi" --port 0
echo "not a model" >"$T/junk.cofi"
expect_fail 4 "cannot load the model" "$COFI" serve "$T/junk.cofi" --port 0
expect_fail 2 "--port" "$COFI" serve "$T/a.cofi" --port 99999
expect_fail 2 "--max-body" "$COFI" serve "$T/a.cofi" --max-body 12Q
expect_fail 2 "--default-k" "$COFI" serve "$T/a.cofi" --max-k 5 --default-k 10
expect_fail 6 "cannot listen" "$COFI" serve "$T/a.cofi" --host 192.0.2.1 --port 0
pass

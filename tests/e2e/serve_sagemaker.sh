#!/usr/bin/env bash
# cofi serve, SageMaker mode: with no model argument (or the container
# argument `serve`) the model is $SM_MODEL_DIR/model.cofi (else the
# directory's only *.cofi), the bind address 0.0.0.0 and the port
# $SAGEMAKER_BIND_TO_PORT or 8080 (the tests override it, never using 8080);
# /ping and /invocations answer as SageMaker expects. Also the Dockerfile's
# contract (no Docker engine here): multi-stage on debian:bookworm-slim,
# entry point cofi, default argument serve, port 8080.
set -u
. "$(dirname "$0")/serve_common.bash"
make_models
mkdir -p "$T/sm"
cp "$T/a.cofi" "$T/sm/model.cofi"
export SM_MODEL_DIR=$T/sm
unset SAGEMAKER_BIND_TO_PORT

# no model argument: $SM_MODEL_DIR/model.cofi, bound to 0.0.0.0
t0=$(date +%s%N)
start_server "$T/sm.log" --port 0
ok 200 '.status == "ok"' "$U/ping"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 2000 ] || fail "/ping answered $ms ms after start; SageMaker allows 2 s"
grep -q "cofi serve: $T/sm/model.cofi: 45 users" "$T/sm.log" || fail "did not load \$SM_MODEL_DIR/model.cofi: $(cat "$T/sm.log")"
grep -q "listening on http://0.0.0.0:$PORT" "$T/sm.log" || fail "SageMaker mode should bind 0.0.0.0: $(cat "$T/sm.log")"
ok 200 '.user_id == "1" and (.recommendations | length) == 5' \
  -X POST -H 'Content-Type: application/json' -d '{"user_id": "1"}' "$U/invocations"
ok 200 '(.recommendations | length) == 3' -X POST -d '{"liked": ["i1", "i2"], "k": 3}' "$U/invocations"
stop_server

# the container argument: `docker run IMAGE serve` runs `cofi serve`; an
# entry point of `cofi serve` would make it `cofi serve serve`
start_server "$T/sm2.log" serve --port 0 --host 127.0.0.1
ok 200 '.status == "ok"' "$U/ping"
grep -q "cofi serve: $T/sm/model.cofi:" "$T/sm2.log" || fail "'serve serve' did not use SageMaker mode"
grep -q "listening on http://127.0.0.1:$PORT" "$T/sm2.log" || fail "--host should override 0.0.0.0"
stop_server

# SAGEMAKER_BIND_TO_PORT (SageMaker's setting for inference pipelines):
# take a port the kernel just gave out, then ask for it by the variable
start_server "$T/probe.log" "$T/a.cofi" --port 0 --quiet
free=$PORT
stop_server
SAGEMAKER_BIND_TO_PORT=$free start_server "$T/sm3.log" --host 127.0.0.1 --quiet
[ "$PORT" = "$free" ] || fail "SAGEMAKER_BIND_TO_PORT=$free gave port $PORT"
ok 200 '.status == "ok"' "$U/ping"
stop_server

# without model.cofi, the directory's only *.cofi file
mkdir -p "$T/one" "$T/none" "$T/two"
cp "$T/b.cofi" "$T/one/my-model.cofi"
SM_MODEL_DIR=$T/one start_server "$T/sm4.log" --port 0 --quiet
grep -q "cofi serve: $T/one/my-model.cofi:" "$T/sm4.log" || fail "did not fall back to the only *.cofi"
ok 200 '.model.factors == 6' "$U/health"
stop_server
cp "$T/a.cofi" "$T/two/x.cofi"; cp "$T/b.cofi" "$T/two/y.cofi"
SM_MODEL_DIR=$T/none expect_fail 4 "has no model.cofi" "$COFI" serve --port 0
SM_MODEL_DIR=$T/two expect_fail 4 "name the one to serve model.cofi" "$COFI" serve --port 0
SM_MODEL_DIR=$T/missing expect_fail 4 "cannot be read" "$COFI" serve --port 0

# ---- the Dockerfile's contract
root=${COFI_ROOT:-$(dirname "$0")/../..}
df=$root/Dockerfile
[ -r "$df" ] || fail "no Dockerfile at $df"
[ "$(grep -c '^FROM debian:bookworm-slim' "$df")" -ge 2 ] || fail "Dockerfile: not multi-stage on debian:bookworm-slim"
grep -Eq '^FROM .* AS build' "$df" || fail "Dockerfile: no build stage"
grep -Eq '^COPY --from=build .*/cofi /usr/local/bin/cofi' "$df" || fail "Dockerfile: the binary is not copied from the build stage"
grep -Eq '^ENTRYPOINT \["/usr/local/bin/cofi"\]' "$df" || fail "Dockerfile: entry point is not cofi"
grep -Eq '^CMD \["serve"\]' "$df" || fail "Dockerfile: default argument is not serve"
grep -Eq '^EXPOSE 8080' "$df" || fail "Dockerfile: port 8080 not exposed"
grep -q 'COFI_NATIVE=OFF' "$df" || fail "Dockerfile: the image must not be tuned for the build machine's CPU"
pass

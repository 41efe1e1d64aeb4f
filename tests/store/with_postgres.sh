#!/usr/bin/env bash
# with_postgres.sh CMD [ARGS...]: starts a throwaway PostgreSQL server
# (Debian's postgresql: initdb + pg_ctl in a temporary directory, on a
# random loopback port, as the unprivileged `postgres` user when run as
# root), runs CMD with COFI_TEST_PG_URL set to its URL, stops the server
# and removes the directory, and exits with CMD's status.
#
# It never skips: when no server can be started it prints why and exits 1,
# so the PostgreSQL tests fail rather than silently pass (issue 15).
set -u
fail() { echo "with_postgres: $*" >&2; exit 1; }

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] ||
  fail "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): install the postgresql package (scripts/install-deps.sh)"

dir=$(mktemp -d /tmp/cofi-pg.XXXXXX) || fail "mktemp failed"
chmod 755 "$dir"
as_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || fail "running as root, but there is no 'postgres' user to run the server as"
  chown postgres "$dir"
  as_pg() { local q; printf -v q '%q ' "$@"; su postgres -s /bin/sh -c "$q"; }
fi
stop() {
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap stop EXIT

as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; fail "initdb failed"; }
started=
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -w -t 30 -l "$dir/server.log" \
       -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null 2>&1; then
    started=1
    break
  fi
done
[ -n "$started" ] || { tail -5 "$dir/server.log" >&2; fail "the server did not start"; }

export COFI_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
# For tests that stop and restart the server (tests/e2e/serve_store.sh).
export COFI_TEST_PG_BIN=$PGBIN COFI_TEST_PG_DIR=$dir COFI_TEST_PG_PORT=$port
"$@"

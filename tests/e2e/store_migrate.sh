#!/usr/bin/env bash
# A SQLite store of schema version 1 (the DDL of that release, rows written
# by the sqlite3 shell) opened by this cofi: the first command says once on
# stderr that it migrated the schema from version 1 to 2 with the number of
# events kept, every event comes back out of `cofi export`, a second
# command says nothing, and the history index, the event types table and
# the pack table exist (docs/store.md, "Version 2").
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.bash"
command -v sqlite3 >/dev/null || fail "the sqlite3 shell is needed (Debian package sqlite3)"
T=$(mktemp -d /tmp/cofi-e2e-migrate.XXXXXX)
trap 'rm -rf "$T"' EXIT

sqlite3 "$T/v1.db" <<'SQL' || fail "cannot write the version-1 store"
CREATE TABLE cofi_schema_version (version INTEGER PRIMARY KEY,
  applied_at INTEGER NOT NULL DEFAULT (unixepoch()));
CREATE TABLE cofi_users (ukey INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  labels TEXT NOT NULL DEFAULT '[]') STRICT;
CREATE TABLE cofi_items (ikey INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT,
  categories TEXT NOT NULL DEFAULT '[]', hidden INTEGER NOT NULL DEFAULT 0, ts INTEGER,
  fields TEXT NOT NULL DEFAULT '{}') STRICT;
CREATE TABLE cofi_events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ukey INTEGER NOT NULL REFERENCES cofi_users(ukey),
  ikey INTEGER NOT NULL REFERENCES cofi_items(ikey), event TEXT, value REAL NOT NULL,
  ts INTEGER) STRICT;
CREATE INDEX cofi_events_user ON cofi_events(ukey, ts, seq);
INSERT INTO cofi_schema_version(version) VALUES (1);
INSERT INTO cofi_users(id) VALUES ('alice'), ('bob');
INSERT INTO cofi_items(id, title) VALUES ('m1', 'One'), ('m2', 'Two');
INSERT INTO cofi_events(ukey, ikey, event, value, ts) VALUES
  (1, 1, 'like', 1, 100), (1, 2, NULL, 4, 101), (2, 1, 'watch', 1, 102),
  (2, 2, 'complete', 1, 103), (1, 1, 'like', 1, 104);
SQL

"$COFI" export --store "sqlite:$T/v1.db" -o "$T/a.csv" 2>"$T/first.err" ||
  fail "export from the version-1 store: $(cat "$T/first.err")"
grep -qF "cofi export: $T/v1.db: the store's schema was migrated from version 1 to version 2 (5 events kept, 0 packed)" "$T/first.err" ||
  fail "no migration line: $(cat "$T/first.err")"
[ "$(grep -c migrated "$T/first.err")" = 1 ] || fail "the migration was said more than once"
# default weights: like 2, complete 3, watch 1; the untyped event keeps its value
printf 'user_id,item_id,value,timestamp\nalice,m1,2,100\nalice,m2,4,101\nbob,m1,1,102\nbob,m2,3,103\nalice,m1,2,104\n' >"$T/want.csv"
diff "$T/want.csv" "$T/a.csv" >&2 || fail "the events after the migration differ"

"$COFI" export --store "sqlite:$T/v1.db" -o "$T/b.csv" 2>"$T/second.err" || fail "second export"
grep -q migrated "$T/second.err" && fail "migrated twice: $(cat "$T/second.err")"
cmp -s "$T/a.csv" "$T/b.csv" || fail "the second export differs"
[ "$(sqlite3 "$T/v1.db" "SELECT group_concat(version) FROM cofi_schema_version")" = "1,2" ] ||
  fail "schema versions: $(sqlite3 "$T/v1.db" "SELECT * FROM cofi_schema_version")"
[ "$(sqlite3 "$T/v1.db" "SELECT sql FROM sqlite_master WHERE name = 'cofi_events_user'")" = \
  "CREATE INDEX cofi_events_user ON cofi_events(ukey, ts)" ] || fail "history index not rebuilt"
[ "$(sqlite3 "$T/v1.db" "SELECT group_concat(name) FROM (SELECT name FROM cofi_event_types ORDER BY code)")" = \
  "complete,like,watch" ] || fail "event types: $(sqlite3 "$T/v1.db" "SELECT * FROM cofi_event_types")"
[ "$(sqlite3 "$T/v1.db" "SELECT count(*) FROM cofi_event_packs")" = 0 ] || fail "no pack table"
echo "ok: a version-1 store migrated once, every event kept"

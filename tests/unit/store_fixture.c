/*
 * store_fixture.c — a fresh store per test, and the DDL of store schema
 * version 1 for the migration tests (store_fixture.h).
 */
#include "store_fixture.h"
#include "testutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tu_store_url(bool pg, const char *dir, const char *tag, char *url, size_t cap) {
  static int n_databases;
  if (!pg) {
    snprintf(url, cap, "sqlite:%s/store.db", dir);
    return;
  }
  const char *base = getenv("COFI_TEST_PG_URL");
  assert_non_null(base);
  const char *slash = strrchr(base, '/');
  assert_non_null(slash);
  char name[64], q[128];
  snprintf(name, sizeof name, "%s_%d_%d", tag, (int)getpid(), ++n_databases);
  PGconn *c = PQconnectdb(base);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  snprintf(q, sizeof q, "CREATE DATABASE %s ENCODING 'UTF8' TEMPLATE template0", name);
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s", PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
  snprintf(url, cap, "%.*s/%s", (int)(slash - base), base, name);
}

/* Version 1 of the store schema, the DDL of that release verbatim. */
const char tu_store_v1_sqlite[] =
    "CREATE TABLE cofi_schema_version (version INTEGER PRIMARY KEY,"
    "  applied_at INTEGER NOT NULL DEFAULT (unixepoch()));"
    "CREATE TABLE cofi_users (ukey INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    "  labels TEXT NOT NULL DEFAULT '[]') STRICT;"
    "CREATE TABLE cofi_items (ikey INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT,"
    "  categories TEXT NOT NULL DEFAULT '[]', hidden INTEGER NOT NULL DEFAULT 0, ts INTEGER,"
    "  fields TEXT NOT NULL DEFAULT '{}') STRICT;"
    "CREATE TABLE cofi_events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ukey INTEGER NOT NULL REFERENCES cofi_users(ukey),"
    "  ikey INTEGER NOT NULL REFERENCES cofi_items(ikey), event TEXT, value REAL NOT NULL,"
    "  ts INTEGER) STRICT;"
    "CREATE INDEX cofi_events_user ON cofi_events(ukey, ts, seq);"
    "INSERT INTO cofi_schema_version(version) VALUES (1);";
const char tu_store_v1_pg[] =
    "CREATE TABLE cofi_schema_version (version integer PRIMARY KEY,"
    "  applied_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE cofi_users (ukey bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id text NOT NULL UNIQUE, labels text NOT NULL DEFAULT '[]');"
    "CREATE TABLE cofi_items (ikey bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id text NOT NULL UNIQUE, title text, categories text NOT NULL DEFAULT '[]',"
    "  hidden boolean NOT NULL DEFAULT false, ts bigint, fields text NOT NULL DEFAULT '{}');"
    "CREATE TABLE cofi_events (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  ukey bigint NOT NULL CONSTRAINT cofi_events_user_fk REFERENCES cofi_users(ukey),"
    "  ikey bigint NOT NULL CONSTRAINT cofi_events_item_fk REFERENCES cofi_items(ikey),"
    "  event text, value double precision NOT NULL CHECK (value >= 0 AND value < 'Infinity'),"
    "  ts bigint);"
    "CREATE INDEX cofi_events_user ON cofi_events(ukey, ts DESC NULLS LAST, seq DESC);"
    "INSERT INTO cofi_schema_version(version) VALUES (1);";


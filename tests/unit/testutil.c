/*
 * testutil.c — temporary files, test stores and shared-data lookup for the
 * unit tests.
 */
#include "testutil.h"

#include "kernels/kernels.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_mkdtemp(void) {
  char tmpl[] = "/tmp/cofi-test.XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

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

void tu_rmdir(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

char *tu_write_file(const char *dir, const char *name, const void *data, size_t len) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *path = malloc(n);
  assert_non_null(path);
  snprintf(path, n, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  return path;
}

unsigned char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*len ? *len : 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

char *tu_shared_data(const char *rel) {
  const char *root = getenv("COFI_SHARED");
  if (!root) root = "../shared";
  size_t n = strlen(root) + strlen(rel) + 8;
  char *path = malloc(n);
  assert_non_null(path);
  snprintf(path, n, "%s/data/%s", root, rel);
  if (access(path, R_OK) != 0) { free(path); return NULL; }
  return path;
}

int tu_run_per_kernel_set(const char *group, const struct CMUnitTest *tests, size_t n) {
  int failed = 0;
  for (size_t i = 0; cofi__kernel_names[i]; i++) {
    const char *set = cofi__kernel_names[i];
    char name[128];
    snprintf(name, sizeof name, "%s [kernels %s]", group, set);
    if (cofi__kernels_use(set) != COFI_OK) {
      printf("[ SKIPPED  ] %s: this CPU does not run it\n", name);
      continue;
    }
    failed += _cmocka_run_group_tests(name, tests, n, NULL, NULL);
  }
  return failed;
}

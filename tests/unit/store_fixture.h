/*
 * store_fixture.h — what the store unit tests (test_store*.c) share: a
 * fresh store per test and the version-1 schema (store_fixture.c, linked
 * into those tests only: it needs libpq).
 */
#ifndef COFI_STORE_FIXTURE_H
#define COFI_STORE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

/* A URL for a fresh, empty store of the test's own: "sqlite:DIR/store.db",
 * or (pg) a new database on the server $COFI_TEST_PG_URL names, called
 * TAG_<pid>_<n>. Aborts the test when it cannot. */
void tu_store_url(bool pg, const char *dir, const char *tag, char *url, size_t cap);
/* The DDL of store schema version 1 (SQLite, PostgreSQL), for migration
 * tests: a store of that release made by hand. */
extern const char tu_store_v1_sqlite[];
extern const char tu_store_v1_pg[];
#endif

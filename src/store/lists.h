/*
 * lists.h — the non-personalized lists of the store (lists.c: checks and
 * the answer's layout; lists_sql.c: the SQL of each back end), and the
 * one accessor each back end gives them: its connection handle.
 * Only src/store/ includes it.
 */
#ifndef COFI_STORE_LISTS_H
#define COFI_STORE_LISTS_H

#include "store.h"

#include <libpq-fe.h>
#include <sqlite3.h>

/* The back ends' connections (sqlite.c, postgres.c). */
sqlite3 *cofi__sqlite_db(cofi_store *s);
PGconn *cofi__pg_conn(cofi_store *s);

/* One row of a list, strings borrowed for the call. 0 continues. */
typedef int (*cofi__ranked_fn)(void *ctx, const cofi_store_ranked *row);

enum { COFI__LIST_POPULAR = 0, COFI__LIST_LATEST = 1 };

/* What a list asks for, checked by lists.c. category NULL: any;
 * has_since (popular only): only events with ts >= since count. */
typedef struct cofi__list_query {
  int kind;
  const char *category;
  size_t category_len;
  bool has_since;
  int64_t since;
  uint32_t k;
} cofi__list_query;

/* Runs the list's query on the store's back end (lists_sql.c), calling fn
 * per row in order. */
int cofi__list_run(cofi_store *s, const cofi__list_query *q, cofi__ranked_fn fn, void *ctx,
                   cofi_diag *d);

#endif

/*
 * lists_sql.c — the SQL behind cofi_store_popular and cofi_store_latest,
 * once per back end (docs/store.md, "Lists").
 *
 * popular: events per item (counted, not time-decayed), optionally only
 * those with ts >= since; the grouping runs first, the item filters
 * (hidden, category) on the grouped rows, so a category test runs once
 * per item, not once per event. latest: items with a timestamp, newest
 * first. Ties: the item ID in byte order (COLLATE "C" in PostgreSQL, as
 * SQLite's BINARY), so any client can reproduce the order. Categories
 * are the JSON array in cofi_items.categories: SQLite's json_each, and
 * PostgreSQL's jsonb `?` operator.
 */
#include "lists.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char lite_popular[] =
    "SELECT i.id, i.title, i.ts, c.n FROM"
    " (SELECT ikey, count(*) AS n FROM cofi_events WHERE ?1 IS NULL OR ts >= ?1 GROUP BY ikey) c"
    " JOIN cofi_items i ON i.ikey = c.ikey"
    " WHERE i.hidden = 0 AND (?2 IS NULL OR EXISTS"
    " (SELECT 1 FROM json_each(i.categories) j WHERE j.value = ?2))"
    " ORDER BY c.n DESC, i.id LIMIT ?3";
static const char lite_latest[] =
    "SELECT id, title, ts, ts FROM cofi_items"
    " WHERE hidden = 0 AND ts IS NOT NULL AND (?2 IS NULL OR EXISTS"
    " (SELECT 1 FROM json_each(categories) j WHERE j.value = ?2))"
    " ORDER BY ts DESC, id LIMIT ?3";

static const char pg_popular[] =
    "SELECT i.id, i.title, i.ts, c.n FROM"
    " (SELECT ikey, count(*) AS n FROM cofi_events WHERE $1::bigint IS NULL OR ts >= $1::bigint"
    " GROUP BY ikey) c"
    " JOIN cofi_items i ON i.ikey = c.ikey"
    " WHERE NOT i.hidden AND ($2::text IS NULL OR i.categories::jsonb ? $2::text)"
    " ORDER BY c.n DESC, i.id COLLATE \"C\" LIMIT $3::bigint";
static const char pg_latest[] =
    "SELECT id, title, ts, ts FROM cofi_items"
    /* $1 is unused here, but PostgreSQL needs every parameter's type. */
    " WHERE NOT hidden AND ts IS NOT NULL AND ($1::bigint IS NULL OR true)"
    " AND ($2::text IS NULL OR categories::jsonb ? $2::text)"
    " ORDER BY ts DESC, id COLLATE \"C\" LIMIT $3::bigint";

static const char *what(const cofi__list_query *q) {
  return q->kind == COFI__LIST_POPULAR ? "popular items" : "latest items";
}

static int run_sqlite(cofi_store *s, const cofi__list_query *q, cofi__ranked_fn fn, void *ctx,
                      cofi_diag *d) {
  sqlite3 *db = cofi__sqlite_db(s);
  sqlite3_stmt *st = NULL;
  const char *sql = q->kind == COFI__LIST_POPULAR ? lite_popular : lite_latest;
  int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (src != SQLITE_OK)
    return cofi__fail(d, src == SQLITE_NOMEM ? COFI_ERR_NOMEM : COFI_ERR_STORE, s->where, 0,
                      "sqlite: %s: %s", what(q), sqlite3_errmsg(db));
  if (q->has_since) sqlite3_bind_int64(st, 1, q->since);
  if (q->category) sqlite3_bind_text(st, 2, q->category, (int)q->category_len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, q->k);
  int rc = COFI_OK;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    cofi_store_ranked row;
    memset(&row, 0, sizeof row);
    if (sqlite3_column_type(st, 0) != SQLITE_TEXT ||
        (sqlite3_column_type(st, 1) != SQLITE_TEXT && sqlite3_column_type(st, 1) != SQLITE_NULL)) {
      rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_items: an item's id or title is not text (%s)", what(q));
      break;
    }
    row.item_id = (const char *)sqlite3_column_text(st, 0);
    row.item_len = (size_t)sqlite3_column_bytes(st, 0);
    row.title = (const char *)sqlite3_column_text(st, 1);
    row.title_len = row.title ? (size_t)sqlite3_column_bytes(st, 1) : 0;
    row.has_timestamp = sqlite3_column_type(st, 2) == SQLITE_INTEGER;
    row.timestamp = row.has_timestamp ? sqlite3_column_int64(st, 2) : 0;
    row.score = (double)sqlite3_column_int64(st, 3);
    if (!row.item_id) {
      rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
      break;
    }
    if ((rc = cofi__store_check_row(s, "cofi_items", 0, "id", row.item_id, row.item_len, d)) ||
        (rc = fn(ctx, &row)))
      break;
  }
  if (!rc && src != SQLITE_DONE)
    rc = cofi__fail(d, src == SQLITE_NOMEM ? COFI_ERR_NOMEM : COFI_ERR_STORE, s->where, 0,
                    "sqlite: %s: %s", what(q), sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return rc;
}

static int run_pg(cofi_store *s, const cofi__list_query *q, cofi__ranked_fn fn, void *ctx,
                  cofi_diag *d) {
  PGconn *c = cofi__pg_conn(s);
  char since[24], k[24], *cat = NULL;
  snprintf(since, sizeof since, "%lld", (long long)q->since);
  snprintf(k, sizeof k, "%u", q->k);
  if (q->category) {
    /* Text parameters are NUL-terminated; the category has no NUL (checked). */
    cat = cofi__malloc(q->category_len + 1);
    if (!cat) return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
    memcpy(cat, q->category, q->category_len);
    cat[q->category_len] = 0;
  }
  const char *vals[3] = {q->has_since ? since : NULL, cat, k};
  PGresult *r = PQexecParams(c, q->kind == COFI__LIST_POPULAR ? pg_popular : pg_latest, 3, NULL,
                             vals, NULL, NULL, 0);
  cofi__free(cat);
  int rc = COFI_OK;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    char msg[400];
    const char *m = PQresultErrorMessage(r);
    snprintf(msg, sizeof msg, "%s", m && *m ? m : PQerrorMessage(c));
    msg[strcspn(msg, "\n")] = 0;
    rc = cofi__fail(d, COFI_ERR_STORE, s->where, 0, "postgresql: %s: %s", what(q), msg);
    PQclear(r);
    return rc;
  }
  for (int i = 0; i < PQntuples(r) && !rc; i++) {
    cofi_store_ranked row;
    memset(&row, 0, sizeof row);
    row.item_id = PQgetvalue(r, i, 0);
    row.item_len = (size_t)PQgetlength(r, i, 0);
    if (!PQgetisnull(r, i, 1)) {
      row.title = PQgetvalue(r, i, 1);
      row.title_len = (size_t)PQgetlength(r, i, 1);
    }
    row.has_timestamp = !PQgetisnull(r, i, 2);
    row.timestamp = row.has_timestamp ? strtoll(PQgetvalue(r, i, 2), NULL, 10) : 0;
    row.score = strtod(PQgetvalue(r, i, 3), NULL);
    if (!(rc = cofi__store_check_row(s, "cofi_items", 0, "id", row.item_id, row.item_len, d)))
      rc = fn(ctx, &row);
  }
  PQclear(r);
  return rc;
}

int cofi__list_run(cofi_store *s, const cofi__list_query *q, cofi__ranked_fn fn, void *ctx,
                   cofi_diag *d) {
  if (!strcmp(s->ops->name, "sqlite")) return run_sqlite(s, q, fn, ctx, d);
  return run_pg(s, q, fn, ctx, d);
}

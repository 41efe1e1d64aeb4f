/*
 * feed.c — the store's event feed: which users have events after a
 * sequence number (cofi_store_last_seq, cofi_store_users_since), so that
 * servers sharing one store learn of each other's events
 * (docs/serving.md, "Replicas and the event feed").
 *
 * Both queries walk the events' primary key (seq: SQLite's rowid,
 * PostgreSQL's identity primary key) and join each event to its user by
 * the users' primary key, so a poll costs the rows it returns, whatever
 * the size of the store.
 */
#include "lists.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char lite_since[] =
    "SELECT e.seq, u.id FROM cofi_events e JOIN cofi_users u ON u.ukey = e.ukey"
    " WHERE e.seq > ?1 AND e.seq <= ?2 ORDER BY e.seq LIMIT ?3";
static const char pg_since[] =
    "SELECT e.seq, u.id FROM cofi_events e JOIN cofi_users u ON u.ukey = e.ukey"
    " WHERE e.seq > $1::bigint AND e.seq <= $2::bigint ORDER BY e.seq LIMIT $3::bigint";

typedef struct feed_query {
  int64_t after, upto;
  uint32_t max;
  cofi_store_seq_user_fn fn;
  void *ctx;
  int64_t last;
  bool stopped;
} feed_query;

static int lite_fail(cofi_store *s, sqlite3 *db, int src, const char *what, cofi_diag *d) {
  return cofi__fail(d, src == SQLITE_NOMEM ? COFI_ERR_NOMEM : COFI_ERR_STORE, s->where, 0,
                    "sqlite: %s: %s", what, sqlite3_errmsg(db));
}

static int pg_fail(cofi_store *s, PGconn *c, PGresult *r, const char *what, cofi_diag *d) {
  char msg[400];
  const char *m = PQresultErrorMessage(r);
  snprintf(msg, sizeof msg, "%s", m && *m ? m : PQerrorMessage(c));
  msg[strcspn(msg, "\n")] = 0;
  return cofi__fail(d, COFI_ERR_STORE, s->where, 0, "postgresql: %s: %s", what, msg);
}

/* One row read back: checked, then handed to the caller. */
static int feed_row(cofi_store *s, feed_query *q, int64_t seq, const char *id, size_t len,
                    cofi_diag *d) {
  if (seq <= q->last)
    return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_events: seq %lld out of order after %lld", (long long)seq,
                      (long long)q->last);
  int rc = cofi__store_check_row(s, "cofi_users", 0, "id", id, len, d);
  if (rc) return rc;
  q->last = seq;
  if (q->fn(seq, id, len, q->ctx)) {
    q->stopped = true;
    return COFI_ERR_CANCELLED;
  }
  return COFI_OK;
}

static int since_sqlite(cofi_store *s, feed_query *q, cofi_diag *d) {
  sqlite3 *db = cofi__sqlite_db(s);
  sqlite3_stmt *st = NULL;
  int src = sqlite3_prepare_v2(db, lite_since, -1, &st, NULL);
  if (src != SQLITE_OK) return lite_fail(s, db, src, "reading new events", d);
  sqlite3_bind_int64(st, 1, q->after);
  sqlite3_bind_int64(st, 2, q->upto);
  sqlite3_bind_int64(st, 3, q->max);
  int rc = COFI_OK;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || sqlite3_column_type(st, 1) != SQLITE_TEXT) {
      rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_events: an event's seq or its user's id has the wrong type");
      break;
    }
    const char *id = (const char *)sqlite3_column_text(st, 1);
    if (!id) {
      rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
      break;
    }
    rc = feed_row(s, q, sqlite3_column_int64(st, 0), id, (size_t)sqlite3_column_bytes(st, 1), d);
    if (rc) break;
  }
  if (!rc && src != SQLITE_DONE) rc = lite_fail(s, db, src, "reading new events", d);
  sqlite3_finalize(st);
  return rc;
}

static int since_pg(cofi_store *s, feed_query *q, cofi_diag *d) {
  PGconn *c = cofi__pg_conn(s);
  char after[24], upto[24], max[24];
  snprintf(after, sizeof after, "%lld", (long long)q->after);
  snprintf(upto, sizeof upto, "%lld", (long long)q->upto);
  snprintf(max, sizeof max, "%u", q->max);
  const char *vals[3] = {after, upto, max};
  PGresult *r = PQexecParams(c, pg_since, 3, NULL, vals, NULL, NULL, 0);
  int rc = COFI_OK;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    rc = pg_fail(s, c, r, "reading new events", d);
    PQclear(r);
    return rc;
  }
  for (int i = 0; i < PQntuples(r) && !rc; i++) {
    char *end = NULL;
    const char *v = PQgetvalue(r, i, 0);
    long long seq = strtoll(v, &end, 10);
    if (PQgetisnull(r, i, 0) || PQgetisnull(r, i, 1) || end == v || *end) {
      rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_events: an event's seq or its user's id is not readable");
      break;
    }
    rc = feed_row(s, q, (int64_t)seq, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), d);
  }
  PQclear(r);
  return rc;
}

int cofi_store_users_since(cofi_store *s, int64_t after_seq, int64_t upto_seq,
                           uint32_t max_events, cofi_store_seq_user_fn fn, void *ctx,
                           int64_t *last_seq, cofi_diag *diag) {
  if (last_seq) *last_seq = after_seq;
  if (!s || !fn) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no store or no callback");
  if (after_seq < 0)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "after_seq: %lld, expected >= 0",
                      (long long)after_seq);
  if (upto_seq >= 0 && upto_seq < after_seq)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "upto_seq: %lld is below after_seq %lld", (long long)upto_seq,
                      (long long)after_seq);
  if (max_events == 0)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "max_events: 0, expected at least 1");
  feed_query q = {after_seq, upto_seq < 0 ? INT64_MAX : upto_seq, max_events, fn, ctx,
                  after_seq, false};
  int rc = !strcmp(s->ops->name, "sqlite") ? since_sqlite(s, &q, diag) : since_pg(s, &q, diag);
  if (last_seq) *last_seq = q.last;
  return rc;
}

int cofi_store_last_seq(cofi_store *s, int64_t *seq, cofi_diag *diag) {
  *seq = 0;
  int64_t lo = 0, hi = 0;
  int rc = cofi__store_seq_bounds(s, &lo, &hi, diag);
  if (rc == COFI_OK) *seq = hi;
  return rc;
}

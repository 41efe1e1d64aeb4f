/*
 * postgres.c — the PostgreSQL back end of the store (postgresql://... or
 * postgres://..., handed to libpq as given).
 *
 * One connection per cofi_store. Every statement is prepared once on the
 * connection (PQprepare, on first use) and run with bound parameters;
 * strings travel as binary text parameters with explicit lengths, so an ID
 * is never SQL text. A batch of events is three statements whatever its
 * size: the new users and the new items (ON CONFLICT DO NOTHING, in sorted
 * order so that concurrent batches cannot deadlock), then the events,
 * each statement taking whole arrays (unnest), so a request costs a fixed
 * number of round trips. Scans read through a cursor in blocks of 50,000
 * rows inside one REPEATABLE READ transaction: one snapshot, bounded
 * memory.
 *
 * Durability is the server's: with its default synchronous_commit=on,
 * COMMIT returns after the WAL is flushed to disk.
 */
#include "store.h"
#include "lists.h" /* cofi__pg_conn */

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  P_UINS, P_UKEYS, P_IINS, P_IKEYS, P_UKEY, P_IKEY, P_EV_INS,
  P_TYPES_INS, P_TYPES_GET, P_PUT_USER, P_GET_USER, P_DEL_EVENTS, P_DEL_USER,
  P_PUT_ITEM, P_GET_ITEM, P_HIDE_ITEM, P_HISTORY, P_COUNT, P_USER_ITEMS,
  P_N
};

static const char *const psql[P_N] = {
    [P_UINS] = "INSERT INTO cofi_users(id) SELECT DISTINCT x FROM unnest($1::text[]) AS x "
               "ORDER BY x ON CONFLICT (id) DO NOTHING",
    [P_UKEYS] = "SELECT u.ukey FROM unnest($1::text[]) WITH ORDINALITY AS a(id, ord) "
                "LEFT JOIN cofi_users u ON u.id = a.id ORDER BY a.ord",
    [P_IINS] = "INSERT INTO cofi_items(id) SELECT DISTINCT x FROM unnest($1::text[]) AS x "
               "ORDER BY x ON CONFLICT (id) DO NOTHING",
    [P_IKEYS] = "SELECT i.ikey FROM unnest($1::text[]) WITH ORDINALITY AS a(id, ord) "
                "LEFT JOIN cofi_items i ON i.id = a.id ORDER BY a.ord",
    [P_UKEY] = "SELECT ukey FROM cofi_users WHERE id = $1::text",
    [P_IKEY] = "SELECT ikey FROM cofi_items WHERE id = $1::text",
    /* Event types are codes (cofi_event_types). Types the connection has
     * not seen yet are added (ON CONFLICT: another session may add the
     * same one; the next statement, in READ COMMITTED, sees it) and their
     * codes read back, then the events go in with their codes. */
    [P_TYPES_INS] = "INSERT INTO cofi_event_types(name) SELECT DISTINCT e FROM "
                    "unnest($1::text[]) AS e ORDER BY e ON CONFLICT (name) DO NOTHING",
    [P_TYPES_GET] = "SELECT code, name FROM cofi_event_types WHERE name = ANY($1::text[])",
    [P_EV_INS] = "INSERT INTO cofi_events(ukey, ikey, event, value, ts) "
                 "SELECT u, i, e, v, t FROM unnest($1::int8[], $2::int8[], $3::int4[], "
                 "$4::float8[], $5::int8[]) WITH ORDINALITY AS x(u, i, e, v, t, o) ORDER BY o",
    [P_PUT_USER] = "INSERT INTO cofi_users(id, labels) VALUES ($1::text, $2::text) "
                   "ON CONFLICT (id) DO UPDATE SET labels = excluded.labels",
    [P_GET_USER] = "SELECT labels FROM cofi_users WHERE id = $1::text",
    [P_DEL_EVENTS] = "DELETE FROM cofi_events WHERE ukey = $1::int8",
    [P_DEL_USER] = "DELETE FROM cofi_users WHERE ukey = $1::int8",
    [P_PUT_ITEM] = "INSERT INTO cofi_items(id, title, categories, hidden, ts, fields) "
                   "VALUES ($1::text, $2::text, $3::text, $4::boolean, $5::int8, $6::text) "
                   "ON CONFLICT (id) DO UPDATE SET title = excluded.title, "
                   "categories = excluded.categories, hidden = excluded.hidden, "
                   "ts = excluded.ts, fields = excluded.fields",
    [P_GET_ITEM] = "SELECT ikey, id, title, categories, hidden, ts, fields FROM cofi_items "
                   "WHERE id = $1::text",
    [P_HIDE_ITEM] = "UPDATE cofi_items SET hidden = $2::boolean WHERE id = $1::text",
    [P_HISTORY] = "SELECT e.seq, i.id, t.name, e.value, e.ts, i.title, e.event FROM cofi_events e "
                  "JOIN cofi_items i ON i.ikey = e.ikey "
                  "LEFT JOIN cofi_event_types t ON t.code = e.event WHERE e.ukey = $1::int8 "
                  "ORDER BY e.ts DESC NULLS LAST, e.seq DESC LIMIT $2::int8",
    [P_USER_ITEMS] = "SELECT ikey, id FROM cofi_items WHERE ikey IN "
                     "(SELECT ikey FROM cofi_events WHERE ukey = $1::int8)",
    [P_COUNT] = "SELECT (SELECT count(*) FROM cofi_users), (SELECT count(*) FROM cofi_items), "
                "(SELECT count(*) FROM cofi_events), "
                "(SELECT count(*) FROM cofi_items WHERE hidden)",
};

static const char schema_v1[] =
    "CREATE TABLE cofi_users ("
    "  ukey bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id text NOT NULL UNIQUE,"
    "  labels text NOT NULL DEFAULT '[]');"
    "CREATE TABLE cofi_items ("
    "  ikey bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  id text NOT NULL UNIQUE,"
    "  title text,"
    "  categories text NOT NULL DEFAULT '[]',"
    "  hidden boolean NOT NULL DEFAULT false,"
    "  ts bigint,"
    "  fields text NOT NULL DEFAULT '{}');"
    "CREATE TABLE cofi_events ("
    "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  ukey bigint NOT NULL CONSTRAINT cofi_events_user_fk REFERENCES cofi_users(ukey),"
    "  ikey bigint NOT NULL CONSTRAINT cofi_events_item_fk REFERENCES cofi_items(ikey),"
    "  event text,"
    "  value double precision NOT NULL CHECK (value >= 0 AND value < 'Infinity'),"
    "  ts bigint);"
    "CREATE INDEX cofi_events_user ON cofi_events(ukey, ts DESC NULLS LAST, seq DESC);";

/* Version 2 (docs/store.md): event types become integer codes, as in
 * SQLite (there the history index and the packs changed too; this back
 * end has neither change to make: its index has no implicit seq, and it
 * keeps no packs). The code is not a foreign key: checking it is one
 * lookup per inserted event (a fifth of an append's time measured with
 * store_append_bench); codes come only from cofi_event_types, and a read
 * refuses a code that has no row there. */
static const char schema_v2[] =
    "CREATE TABLE cofi_event_types ("
    "  code integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  name text NOT NULL UNIQUE);"
    "INSERT INTO cofi_event_types(name) "
    "  SELECT DISTINCT event FROM cofi_events WHERE event IS NOT NULL ORDER BY 1;"
    "ALTER TABLE cofi_events ADD COLUMN event_code integer;"
    "UPDATE cofi_events e SET event_code = t.code FROM cofi_event_types t WHERE t.name = e.event;"
    "ALTER TABLE cofi_events DROP COLUMN event;"
    "ALTER TABLE cofi_events RENAME COLUMN event_code TO event;";

typedef struct pg {
  PGconn *conn;
  bool prepared[P_N];
  bool fk_dropped; /* inside a bulk load */
  /* Event types' codes seen by this connection (never deleted; dropped on
   * a rollback, which may have removed one this connection added). */
  cofi__idmap types;
  int64_t *codes; /* [types.n] */
} pg;

#define G(s) ((pg *)(s)->impl)

/* For the lists (lists_sql.c). */
PGconn *cofi__pg_conn(cofi_store *s) { return G(s)->conn; }

/* The first line of libpq's message. */
static int fail_pg(cofi_store *s, const char *what, const PGresult *res, cofi_diag *d) {
  char msg[400];
  const char *m = res ? PQresultErrorMessage(res) : NULL;
  if (!m || !*m) m = PQerrorMessage(G(s)->conn);
  snprintf(msg, sizeof msg, "%s", m && *m ? m : "unknown error");
  msg[strcspn(msg, "\n")] = 0;
  if (PQstatus(G(s)->conn) != CONNECTION_OK)
    return cofi__fail(d, COFI_ERR_STORE, s->where, 0, "postgresql: %s: the connection is lost: %s",
                      what, msg);
  return cofi__fail(d, COFI_ERR_STORE, s->where, 0, "postgresql: %s: %s", what, msg);
}

/* Parameters of one statement: text format for numbers and arrays
 * (NUL-terminated), binary format for strings (explicit length). */
typedef struct params {
  const char *v[6];
  int len[6], fmt[6];
  int n;
  char num[6][32];
} params;

static void p_str(params *p, const char *s, size_t n) {
  p->v[p->n] = s;
  p->len[p->n] = (int)n;
  p->fmt[p->n++] = 1;
}
static void p_cstr(params *p, const char *s) {
  p->v[p->n] = s;
  p->len[p->n] = 0;
  p->fmt[p->n++] = 0;
}
static void p_null(params *p) { p_cstr(p, NULL); }
static void p_i64(params *p, int64_t x) {
  snprintf(p->num[p->n], sizeof p->num[0], "%lld", (long long)x);
  p_cstr(p, p->num[p->n]);
}

/* Runs statement q (preparing it on first use); *res to PQclear. */
static int exec_q(cofi_store *s, int q, params *p, const char *what, PGresult **res,
                  cofi_diag *d) {
  pg *g = G(s);
  *res = NULL;
  char name[16];
  snprintf(name, sizeof name, "cofi_%d", q);
  if (!g->prepared[q]) {
    PGresult *r = PQprepare(g->conn, name, psql[q], 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      int rc = fail_pg(s, what, r, d);
      PQclear(r);
      return rc;
    }
    PQclear(r);
    g->prepared[q] = true;
  }
  PGresult *r = PQexecPrepared(g->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                               p ? p->fmt : NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    int rc = fail_pg(s, what, r, d);
    PQclear(r);
    return rc;
  }
  *res = r;
  return COFI_OK;
}

static int exec_sql(cofi_store *s, const char *text, const char *what, cofi_diag *d) {
  PGresult *r = PQexec(G(s)->conn, text);
  ExecStatusType st = PQresultStatus(r);
  int rc = COFI_OK;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) rc = fail_pg(s, what, r, d);
  PQclear(r);
  return rc;
}

/* ---- reading values back ------------------------------------------------- */

static int bad_col(cofi_store *s, const char *table, int64_t row, const char *col,
                   const char *why, cofi_diag *d) {
  return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0, "table %s, row %lld: column %s %s", table,
                    (long long)row, col, why);
}

static int get_i64(cofi_store *s, const PGresult *r, int row, int c, const char *table,
                   int64_t key, bool nullable, int64_t *v, bool *present, cofi_diag *d) {
  if (present) *present = !PQgetisnull(r, row, c);
  if (PQgetisnull(r, row, c)) {
    *v = 0;
    return nullable ? COFI_OK : bad_col(s, table, key, PQfname(r, c), "is NULL", d);
  }
  const char *t = PQgetvalue(r, row, c);
  char *end;
  errno = 0;
  long long x = strtoll(t, &end, 10);
  if (errno || end == t || *end) return bad_col(s, table, key, PQfname(r, c), "is not an integer", d);
  *v = x;
  return COFI_OK;
}

static int get_f64(cofi_store *s, const PGresult *r, int row, int c, int64_t key, double *v,
                   cofi_diag *d) {
  if (PQgetisnull(r, row, c)) return bad_col(s, "cofi_events", key, "value", "is NULL", d);
  const char *t = PQgetvalue(r, row, c);
  char *end;
  errno = 0;
  *v = strtod(t, &end);
  if (end == t || *end) return bad_col(s, "cofi_events", key, "value", "is not a number", d);
  return COFI_OK;
}

static void get_str(const PGresult *r, int row, int c, const char **p, size_t *n) {
  if (PQgetisnull(r, row, c)) {
    *p = NULL;
    *n = 0;
    return;
  }
  *p = PQgetvalue(r, row, c);
  *n = (size_t)PQgetlength(r, row, c);
}

static int get_str_nn(cofi_store *s, const PGresult *r, int row, int c, const char *table,
                      int64_t key, const char **p, size_t *n, cofi_diag *d) {
  get_str(r, row, c, p, n);
  return *p ? COFI_OK : bad_col(s, table, key, PQfname(r, c), "is NULL", d);
}

/* ---- the operations ------------------------------------------------------ */

static void forget_types(pg *g) {
  cofi__idmap_free(&g->types);
  cofi__idmap_init(&g->types);
  cofi__free(g->codes);
  g->codes = NULL;
}

static void pg_close(cofi_store *s) {
  pg *g = G(s);
  if (!g) return;
  if (g->conn) PQfinish(g->conn);
  forget_types(g);
  cofi__idmap_free(&g->types);
  cofi__free(g);
  s->impl = NULL;
}

static int pg_begin(cofi_store *s, bool write, cofi_diag *d) {
  return exec_sql(s, write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", "begin",
                  d);
}

static int pg_commit(cofi_store *s, cofi_diag *d) { return exec_sql(s, "COMMIT", "commit", d); }

static void pg_rollback(cofi_store *s) {
  forget_types(G(s));
  if (PQtransactionStatus(G(s)->conn) != PQTRANS_IDLE) exec_sql(s, "ROLLBACK", "rollback", NULL);
}

/* Serializes schema changes of concurrent openers (an arbitrary constant:
 * "cofi" in ASCII). */
#define SCHEMA_LOCK "1668245097"

static int pg_schema_version(cofi_store *s, uint32_t *v, cofi_diag *d) {
  int rc = exec_sql(s, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")", "locking the schema", d);
  if (rc) return rc;
  if ((rc = exec_sql(s,
                     "CREATE TABLE IF NOT EXISTS cofi_schema_version ("
                     "  version integer PRIMARY KEY,"
                     "  applied_at timestamptz NOT NULL DEFAULT now())",
                     "creating cofi_schema_version", d)))
    return rc;
  PGresult *r = PQexec(G(s)->conn, "SELECT max(version) FROM cofi_schema_version");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    rc = fail_pg(s, "reading the schema version", r, d);
  } else {
    int64_t x;
    bool present;
    rc = get_i64(s, r, 0, 0, "cofi_schema_version", 0, true, &x, &present, d);
    if (!rc) {
      if (!present) *v = 0;
      else if (x < 1 || x > UINT32_MAX)
        rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                        "table cofi_schema_version holds a bad version");
      else *v = (uint32_t)x;
    }
  }
  PQclear(r);
  return rc;
}

static int pg_migrate(cofi_store *s, uint32_t v, cofi_diag *d) {
  int rc = COFI_OK;
  if (v == 1) rc = exec_sql(s, schema_v1, "creating the schema (version 1)", d);
  else if (v == 2) rc = exec_sql(s, schema_v2, "migrating the schema to version 2", d);
  if (rc) return rc;
  char q[128];
  snprintf(q, sizeof q, "INSERT INTO cofi_schema_version(version) VALUES (%u)", v);
  return exec_sql(s, q, "recording the schema version", d);
}

/* A PostgreSQL array literal of strings ("{"a","b\"c"}"); NULL entries
 * (ids[i] NULL) become NULL. */
static int text_array(cofi__buf *b, size_t n, const char *const *ids, const size_t *lens) {
  b->n = 0;
  int rc = cofi__buf_put(b, "{", 1);
  for (size_t i = 0; i < n && !rc; i++) {
    if (i) rc = cofi__buf_put(b, ",", 1);
    if (rc) break;
    if (!ids[i]) {
      rc = cofi__buf_put(b, "NULL", 4);
      continue;
    }
    rc = cofi__buf_put(b, "\"", 1);
    size_t run = 0;
    const char *s = ids[i];
    for (size_t k = 0; k < lens[i] && !rc; k++) {
      if (s[k] != '"' && s[k] != '\\') continue;
      rc = cofi__buf_put(b, s + run, k - run);
      if (!rc) rc = cofi__buf_put(b, "\\", 1);
      run = k;
    }
    if (!rc) rc = cofi__buf_put(b, s + run, lens[i] - run);
    if (!rc) rc = cofi__buf_put(b, "\"", 1);
  }
  if (!rc) rc = cofi__buf_put(b, "}", 1);
  return rc;
}

static int pg_keys(cofi_store *s, int table, size_t n, const char *const *ids, const size_t *lens,
                   bool create, int64_t *keys, cofi_diag *d) {
  const bool users = table == COFI__USERS;
  PGresult *r = NULL;
  int rc;
  if (n == 1 && !create) {
    params p = {0};
    p_str(&p, ids[0], lens[0]);
    if ((rc = exec_q(s, users ? P_UKEY : P_IKEY, &p, "looking up a key", &r, d))) return rc;
    keys[0] = -1;
    if (PQntuples(r) == 1)
      rc = get_i64(s, r, 0, 0, users ? "cofi_users" : "cofi_items", 0, false, &keys[0], NULL, d);
    PQclear(r);
    return rc;
  }
  cofi__buf arr = {0};
  if (text_array(&arr, n, ids, lens)) {
    cofi__buf_free(&arr);
    return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  }
  params p = {0};
  p_cstr(&p, arr.p);
  if (create) {
    rc = exec_q(s, users ? P_UINS : P_IINS, &p, users ? "adding users" : "adding items", &r, d);
    PQclear(r);
    r = NULL;
    if (rc) goto done;
  }
  if ((rc = exec_q(s, users ? P_UKEYS : P_IKEYS, &p, "looking up keys", &r, d))) goto done;
  if ((size_t)PQntuples(r) != n) {
    rc = cofi__fail(d, COFI_ERR_STORE, s->where, 0, "postgresql: %d keys for %zu IDs",
                    PQntuples(r), n);
    goto done;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    bool present;
    rc = get_i64(s, r, (int)i, 0, users ? "cofi_users" : "cofi_items", 0, true, &keys[i],
                 &present, d);
    if (!present) keys[i] = -1;
  }
done:
  PQclear(r);
  cofi__buf_free(&arr);
  return rc;
}

/* codes[i]: the code of rows[i]'s event type (0 when untyped); types this
 * connection has not seen are added and read back in two statements. */
static int type_codes(cofi_store *s, const cofi__store_row *rows, size_t n, int64_t *codes,
                      cofi_diag *d) {
  pg *g = G(s);
  cofi__idmap fresh;
  cofi__idmap_init(&fresh);
  int rc = COFI_OK;
  for (size_t i = 0; i < n && !rc; i++)
    if (rows[i].event && cofi__idmap_find(&g->types, rows[i].event, rows[i].event_len) < 0) {
      uint32_t idx;
      rc = cofi__idmap_intern(&fresh, rows[i].event, rows[i].event_len, &idx, NULL);
    }
  cofi__buf arr = {0};
  PGresult *r = NULL;
  if (!rc && fresh.n) {
    const char **names = cofi__malloc(fresh.n * sizeof *names);
    size_t *lens = cofi__malloc(fresh.n * sizeof *lens);
    if (!names || !lens) rc = COFI_ERR_NOMEM;
    for (uint32_t k = 0; !rc && k < fresh.n; k++) names[k] = cofi__idmap_get(&fresh, k, &lens[k]);
    if (!rc) rc = text_array(&arr, fresh.n, names, lens);
    cofi__free(names);
    cofi__free(lens);
    if (rc) goto done;
    params p = {0};
    p_cstr(&p, arr.p);
    if ((rc = exec_q(s, P_TYPES_INS, &p, "adding event types", &r, d))) goto done;
    PQclear(r);
    if ((rc = exec_q(s, P_TYPES_GET, &p, "reading event types", &r, d))) goto done;
    for (int row = 0; row < PQntuples(r) && !rc; row++) {
      int64_t code;
      const char *name;
      size_t len;
      if ((rc = get_i64(s, r, row, 0, "cofi_event_types", 0, false, &code, NULL, d))) break;
      get_str(r, row, 1, &name, &len);
      uint32_t idx;
      bool added;
      if (!name || (rc = cofi__idmap_intern(&g->types, name, len, &idx, &added))) {
        if (!name) rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                                   "table cofi_event_types: a NULL name");
        break;
      }
      int64_t *c = cofi__realloc(g->codes, g->types.n * sizeof *c);
      if (!c) {
        rc = COFI_ERR_NOMEM;
        break;
      }
      g->codes = c;
      c[idx] = code;
    }
  }
  for (size_t i = 0; i < n && !rc; i++) {
    codes[i] = 0;
    if (!rows[i].event) continue;
    int64_t k = cofi__idmap_find(&g->types, rows[i].event, rows[i].event_len);
    if (k < 0)
      rc = cofi__fail(d, COFI_ERR_STORE, s->where, 0,
                      "postgresql: event type %zu of the batch was not added", i);
    else codes[i] = g->codes[k];
  }
done:
  if (rc == COFI_ERR_NOMEM) rc = cofi__fail(d, rc, "", 0, "out of memory");
  PQclear(r);
  cofi__buf_free(&arr);
  cofi__idmap_free(&fresh);
  return rc;
}

static int pg_insert_rows(cofi_store *s, const cofi__store_row *rows, size_t n, cofi_diag *d) {
  int64_t *codes = cofi__malloc((n ? n : 1) * sizeof *codes);
  if (!codes) return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  int trc = type_codes(s, rows, n, codes, d);
  if (trc) {
    cofi__free(codes);
    return trc;
  }
  cofi__buf a[5] = {{0}};
  int rc = COFI_OK;
  for (int k = 0; k < 5 && !rc; k++) rc = cofi__buf_put(&a[k], "{", 1);
  char num[40];
  for (size_t i = 0; i < n && !rc; i++) {
    const cofi__store_row *r = &rows[i];
    const char *sep = i ? "," : "";
    int len = snprintf(num, sizeof num, "%s%lld", sep, (long long)r->user);
    rc = cofi__buf_put(&a[0], num, (size_t)len);
    len = snprintf(num, sizeof num, "%s%lld", sep, (long long)r->item);
    if (!rc) rc = cofi__buf_put(&a[1], num, (size_t)len);
    if (codes[i]) len = snprintf(num, sizeof num, "%s%lld", sep, (long long)codes[i]);
    else len = snprintf(num, sizeof num, "%sNULL", sep);
    if (!rc) rc = cofi__buf_put(&a[2], num, (size_t)len);
    len = snprintf(num, sizeof num, "%s%.17g", sep, r->value);
    if (!rc) rc = cofi__buf_put(&a[3], num, (size_t)len);
    if (r->has_ts) len = snprintf(num, sizeof num, "%s%lld", sep, (long long)r->ts);
    else len = snprintf(num, sizeof num, "%sNULL", sep);
    if (!rc) rc = cofi__buf_put(&a[4], num, (size_t)len);
  }
  for (int k = 0; k < 5 && !rc; k++) rc = cofi__buf_put(&a[k], "}", 1);
  if (rc) {
    rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  } else {
    params p = {0};
    for (int k = 0; k < 5; k++) p_cstr(&p, a[k].p);
    PGresult *r;
    rc = exec_q(s, P_EV_INS, &p, "adding events", &r, d);
    PQclear(r);
  }
  for (int k = 0; k < 5; k++) cofi__buf_free(&a[k]);
  cofi__free(codes);
  return rc;
}

/* A foreign key costs two lookups per inserted event (two thirds of a
 * 2M-row import's time). A bulk load drops both keys inside its
 * transaction and adds them back at the end, which checks every row once
 * with a join; the transaction holds the events table exclusively until
 * it commits. A role that may not alter the table keeps the keys (the
 * savepoint undoes the attempt). */
static int pg_bulk_begin(cofi_store *s, cofi_diag *d) {
  G(s)->fk_dropped = false;
  int rc = exec_sql(s, "SAVEPOINT cofi_bulk", "bulk load", d);
  if (rc) return rc;
  if (exec_sql(s,
               "ALTER TABLE cofi_events DROP CONSTRAINT cofi_events_user_fk, "
               "DROP CONSTRAINT cofi_events_item_fk",
               "bulk load", NULL) == COFI_OK) {
    G(s)->fk_dropped = true;
    return exec_sql(s, "RELEASE SAVEPOINT cofi_bulk", "bulk load", d);
  }
  return exec_sql(s, "ROLLBACK TO SAVEPOINT cofi_bulk", "bulk load", d);
}

static int pg_bulk_end(cofi_store *s, cofi_diag *d) {
  if (G(s)->fk_dropped) {
    G(s)->fk_dropped = false;
    int rc = exec_sql(s,
                      "ALTER TABLE cofi_events "
                      "ADD CONSTRAINT cofi_events_user_fk FOREIGN KEY (ukey) REFERENCES cofi_users(ukey), "
                      "ADD CONSTRAINT cofi_events_item_fk FOREIGN KEY (ikey) REFERENCES cofi_items(ikey)",
                      "checking the events' users and items", d);
    if (rc) return rc;
  }
  /* Fresh statistics for the planner after a large load. */
  return exec_sql(s, "ANALYZE cofi_events", "analyzing the events", d);
}

static int pg_put_user(cofi_store *s, const cofi_store_user *u, cofi_diag *d) {
  params p = {0};
  p_str(&p, u->id, u->id_len);
  if (u->labels) p_str(&p, u->labels, u->labels_len);
  else p_cstr(&p, "[]");
  PGresult *r;
  int rc = exec_q(s, P_PUT_USER, &p, "writing a user", &r, d);
  PQclear(r);
  return rc;
}

static int pg_get_user(cofi_store *s, const char *id, size_t len, char **labels,
                       size_t *labels_len, cofi_diag *d) {
  params p = {0};
  p_str(&p, id, len);
  PGresult *r;
  int rc = exec_q(s, P_GET_USER, &p, "reading a user", &r, d);
  if (rc) return rc;
  if (PQntuples(r) == 0) rc = COFI_ERR_NOT_FOUND;
  else {
    const char *t;
    size_t n;
    if (!(rc = get_str_nn(s, r, 0, 0, "cofi_users", 0, &t, &n, d))) {
      *labels = cofi__malloc(n + 1);
      if (!*labels) rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
      else {
        memcpy(*labels, t, n);
        (*labels)[n] = 0;
        *labels_len = n;
      }
    }
  }
  PQclear(r);
  return rc;
}

static int pg_delete_user(cofi_store *s, int64_t key, uint64_t *n_events, cofi_diag *d) {
  params p = {0};
  p_i64(&p, key);
  PGresult *r;
  int rc = exec_q(s, P_DEL_EVENTS, &p, "deleting a user's events", &r, d);
  if (rc) return rc;
  *n_events = strtoull(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  rc = exec_q(s, P_DEL_USER, &p, "deleting a user", &r, d);
  PQclear(r);
  return rc;
}

static int pg_put_item(cofi_store *s, const cofi_store_item *it, cofi_diag *d) {
  params p = {0};
  p_str(&p, it->id, it->id_len);
  if (it->title) p_str(&p, it->title, it->title_len);
  else p_null(&p);
  if (it->categories) p_str(&p, it->categories, it->categories_len);
  else p_cstr(&p, "[]");
  p_cstr(&p, it->hidden ? "true" : "false");
  if (it->has_timestamp) p_i64(&p, it->timestamp);
  else p_null(&p);
  if (it->fields) p_str(&p, it->fields, it->fields_len);
  else p_cstr(&p, "{}");
  PGresult *r;
  int rc = exec_q(s, P_PUT_ITEM, &p, "writing an item", &r, d);
  PQclear(r);
  return rc;
}

/* Row `row` of r as an item (columns as in P_GET_ITEM). */
static int row_item(cofi_store *s, const PGresult *r, int row, int64_t *key, cofi_store_item *it,
                    cofi_diag *d) {
  memset(it, 0, sizeof *it);
  int rc;
  bool has_ts;
  if ((rc = get_i64(s, r, row, 0, "cofi_items", 0, false, key, NULL, d)) ||
      (rc = get_str_nn(s, r, row, 1, "cofi_items", *key, &it->id, &it->id_len, d)) ||
      (rc = get_str_nn(s, r, row, 3, "cofi_items", *key, &it->categories, &it->categories_len,
                       d)) ||
      (rc = get_i64(s, r, row, 5, "cofi_items", *key, true, &it->timestamp, &has_ts, d)) ||
      (rc = get_str_nn(s, r, row, 6, "cofi_items", *key, &it->fields, &it->fields_len, d)))
    return rc;
  get_str(r, row, 2, &it->title, &it->title_len);
  it->hidden = !strcmp(PQgetvalue(r, row, 4), "t");
  it->has_timestamp = has_ts;
  return cofi__store_check_row(s, "cofi_items", (uint64_t)*key, "id", it->id, it->id_len, d);
}

static int pg_get_item(cofi_store *s, const char *id, size_t len, cofi__item_fn fn, void *ctx,
                       cofi_diag *d) {
  params p = {0};
  p_str(&p, id, len);
  PGresult *r;
  int rc = exec_q(s, P_GET_ITEM, &p, "reading an item", &r, d);
  if (rc) return rc;
  if (PQntuples(r) == 0) rc = COFI_ERR_NOT_FOUND;
  else {
    cofi_store_item it;
    int64_t key;
    rc = row_item(s, r, 0, &key, &it, d);
    if (!rc) rc = fn(ctx, key, &it);
  }
  PQclear(r);
  return rc;
}

static int pg_hide_item(cofi_store *s, const char *id, size_t len, int hidden, cofi_diag *d) {
  params p = {0};
  p_str(&p, id, len);
  p_cstr(&p, hidden ? "true" : "false");
  PGresult *r;
  int rc = exec_q(s, P_HIDE_ITEM, &p, "hiding an item", &r, d);
  if (rc) return rc;
  if (!strcmp(PQcmdTuples(r), "0")) rc = COFI_ERR_NOT_FOUND;
  PQclear(r);
  return rc;
}

static int pg_history(cofi_store *s, int64_t user, uint32_t limit, cofi__hist_fn fn, void *ctx,
                      cofi_diag *d) {
  params p = {0};
  p_i64(&p, user);
  if (limit) p_i64(&p, limit);
  else p_null(&p); /* LIMIT NULL: no limit */
  PGresult *r;
  int rc = exec_q(s, P_HISTORY, &p, "reading a history", &r, d);
  if (rc) return rc;
  for (int row = 0; row < PQntuples(r) && !rc; row++) {
    cofi_store_event ev = {0};
    int64_t seq;
    bool has_ts;
    if ((rc = get_i64(s, r, row, 0, "cofi_events", 0, false, &seq, NULL, d)) ||
        (rc = get_str_nn(s, r, row, 1, "cofi_items", seq, &ev.item_id, &ev.item_len, d)) ||
        (rc = get_f64(s, r, row, 3, seq, &ev.value, d)) ||
        (rc = get_i64(s, r, row, 4, "cofi_events", seq, true, &ev.timestamp, &has_ts, d)))
      break;
    get_str(r, row, 2, &ev.event, &ev.event_len);
    get_str(r, row, 5, &ev.title, &ev.title_len);
    if (!ev.event && !PQgetisnull(r, row, 6)) {
      rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_events, row %lld: event code %s has no row in "
                      "cofi_event_types",
                      (long long)seq, PQgetvalue(r, row, 6));
      break;
    }
    ev.seq = (uint64_t)seq;
    ev.has_timestamp = has_ts;
    rc = fn(ctx, &ev);
  }
  PQclear(r);
  return rc;
}

static int pg_user_items(cofi_store *s, int64_t user, cofi__key_fn fn, void *ctx,
                         cofi_diag *d) {
  params p = {0};
  p_i64(&p, user);
  PGresult *r;
  int rc = exec_q(s, P_USER_ITEMS, &p, "reading a user's items", &r, d);
  if (rc) return rc;
  for (int row = 0; row < PQntuples(r) && !rc; row++) {
    int64_t key;
    const char *id;
    size_t len;
    if (!(rc = get_i64(s, r, row, 0, "cofi_items", 0, false, &key, NULL, d)) &&
        !(rc = get_str_nn(s, r, row, 1, "cofi_items", key, &id, &len, d)))
      rc = fn(ctx, key, id, len);
  }
  PQclear(r);
  return rc;
}

/* Runs query through a cursor, calling per_row for each row. Inside the
 * caller's transaction. */
typedef int (*row_fn)(cofi_store *s, const PGresult *r, int row, void *ctx, cofi_diag *d);

static int cursor_scan(cofi_store *s, const char *query, row_fn per_row, void *ctx,
                       cofi_diag *d) {
  char decl[512];
  snprintf(decl, sizeof decl, "DECLARE cofi_scan NO SCROLL CURSOR FOR %s", query);
  int rc = exec_sql(s, decl, "opening a cursor", d);
  if (rc) return rc;
  for (;;) {
    PGresult *r = PQexec(G(s)->conn, "FETCH 50000 FROM cofi_scan");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      rc = fail_pg(s, "reading", r, d);
      PQclear(r);
      return rc;
    }
    int n = PQntuples(r);
    for (int row = 0; row < n && !rc; row++) rc = per_row(s, r, row, ctx, d);
    PQclear(r);
    if (rc) return rc;
    if (n == 0) break;
  }
  return exec_sql(s, "CLOSE cofi_scan", "closing a cursor", d);
}

typedef struct key_ctx {
  cofi__key_fn fn;
  void *ctx;
  const char *table;
} key_ctx;

static int key_row(cofi_store *s, const PGresult *r, int row, void *ctx, cofi_diag *d) {
  key_ctx *k = ctx;
  int64_t key;
  const char *id;
  size_t len;
  int rc = get_i64(s, r, row, 0, k->table, 0, false, &key, NULL, d);
  if (!rc) rc = get_str_nn(s, r, row, 1, k->table, key, &id, &len, d);
  if (!rc) rc = k->fn(k->ctx, key, id, len);
  return rc;
}

static int pg_scan_keys(cofi_store *s, int table, cofi__key_fn fn, void *ctx, cofi_diag *d) {
  key_ctx k = {fn, ctx, table == COFI__USERS ? "cofi_users" : "cofi_items"};
  return cursor_scan(s,
                     table == COFI__USERS ? "SELECT ukey, id FROM cofi_users ORDER BY ukey"
                                          : "SELECT ikey, id FROM cofi_items ORDER BY ikey",
                     key_row, &k, d);
}

typedef struct item_ctx {
  cofi__item_fn fn;
  void *ctx;
} item_ctx;

static int item_row(cofi_store *s, const PGresult *r, int row, void *ctx, cofi_diag *d) {
  item_ctx *c = ctx;
  cofi_store_item it;
  int64_t key;
  int rc = row_item(s, r, row, &key, &it, d);
  if (!rc) rc = c->fn(c->ctx, key, &it);
  return rc;
}

static int pg_scan_items(cofi_store *s, cofi__item_fn fn, void *ctx, cofi_diag *d) {
  item_ctx c = {fn, ctx};
  return cursor_scan(s,
                     "SELECT ikey, id, title, categories, hidden, ts, fields FROM cofi_items "
                     "ORDER BY ikey",
                     item_row, &c, d);
}

typedef struct ev_ctx {
  cofi__row_fn fn;
  void *ctx;
  PGresult *types; /* code, name of every event type, read in the scan's snapshot */
  int last;        /* the row of types that matched last */
} ev_ctx;

static int load_types(cofi_store *s, ev_ctx *c, cofi_diag *d) {
  c->types = PQexec(G(s)->conn, "SELECT code, name FROM cofi_event_types");
  if (PQresultStatus(c->types) == PGRES_TUPLES_OK) return COFI_OK;
  int rc = fail_pg(s, "reading the event types", c->types, d);
  PQclear(c->types);
  c->types = NULL;
  return rc;
}

static int event_row(cofi_store *s, const PGresult *r, int row, void *ctx, cofi_diag *d) {
  ev_ctx *c = ctx;
  cofi__store_row e;
  int64_t seq;
  int rc = get_i64(s, r, row, 0, "cofi_events", 0, false, &seq, NULL, d);
  if (rc) return rc;
  e.seq = (uint64_t)seq;
  if ((rc = get_i64(s, r, row, 1, "cofi_events", seq, false, &e.user, NULL, d)) ||
      (rc = get_i64(s, r, row, 2, "cofi_events", seq, false, &e.item, NULL, d)) ||
      (rc = get_f64(s, r, row, 4, seq, &e.value, d)) ||
      (rc = get_i64(s, r, row, 5, "cofi_events", seq, true, &e.ts, &e.has_ts, d)))
    return rc;
  e.event = NULL;
  e.event_len = 0;
  e.code = 0;
  if (!PQgetisnull(r, row, 3)) {
    const char *code = PQgetvalue(r, row, 3);
    int n = PQntuples(c->types), k = c->last < n ? c->last : 0;
    for (int tried = 0; tried < n && strcmp(PQgetvalue(c->types, k, 0), code); tried++)
      k = (k + 1) % n;
    if (n == 0 || strcmp(PQgetvalue(c->types, k, 0), code))
      return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                        "table cofi_events, row %lld: event code %s has no row in "
                        "cofi_event_types",
                        (long long)seq, code);
    c->last = k;
    get_str(c->types, k, 1, &e.event, &e.event_len);
  }
  return c->fn(c->ctx, &e);
}

static int pg_scan_rows(cofi_store *s, cofi__row_fn fn, void *ctx, cofi_diag *d) {
  ev_ctx c = {fn, ctx, NULL, 0};
  int rc = load_types(s, &c, d);
  if (!rc)
    rc = cursor_scan(s, "SELECT seq, ukey, ikey, event, value, ts FROM cofi_events ORDER BY seq",
                     event_row, &c, d);
  PQclear(c.types);
  return rc;
}

static int pg_count(cofi_store *s, cofi_store_counts *out, cofi_diag *d) {
  PGresult *r;
  int rc = exec_q(s, P_COUNT, NULL, "counting", &r, d);
  if (rc) return rc;
  int64_t v[4];
  for (int c = 0; c < 4 && !rc; c++) rc = get_i64(s, r, 0, c, "count", 0, false, &v[c], NULL, d);
  PQclear(r);
  if (rc) return rc;
  out->users = (uint64_t)v[0];
  out->items = (uint64_t)v[1];
  out->events = (uint64_t)v[2];
  out->hidden_items = (uint64_t)v[3];
  return COFI_OK;
}

/* A share of the events by seq (lo < seq <= hi), for `mpirun cofi train
 * --store` (docs/mpi.md): each rank selects its consecutive range, so the
 * shares in rank order are the events in seq order. Not given to the
 * one-process parallel scan (no open_reader here). */
static int pg_seq_bounds(cofi_store *s, int64_t *lo, int64_t *hi, cofi_diag *d) {
  PGresult *r = PQexec(G(s)->conn,
                       "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM cofi_events");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    int rc = fail_pg(s, "reading the event range", r, d);
    PQclear(r);
    return rc;
  }
  int rc = get_i64(s, r, 0, 0, "cofi_events", 0, false, lo, NULL, d);
  if (!rc) rc = get_i64(s, r, 0, 1, "cofi_events", 0, false, hi, NULL, d);
  PQclear(r);
  return rc;
}

static int pg_scan_range(cofi_store *s, int64_t lo, int64_t hi, cofi__row_fn fn, void *ctx,
                         cofi_diag *d) {
  char q[256];
  snprintf(q, sizeof q,
           "SELECT seq, ukey, ikey, event, value, ts FROM cofi_events WHERE seq > %lld AND "
           "seq <= %lld ORDER BY seq",
           (long long)lo, (long long)hi);
  ev_ctx c = {fn, ctx, NULL, 0};
  int rc = load_types(s, &c, d);
  if (!rc) rc = cursor_scan(s, q, event_row, &c, d);
  PQclear(c.types);
  return rc;
}

static const cofi__store_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .schema_version = pg_schema_version,
    .migrate = pg_migrate,
    .keys = pg_keys,
    .insert_rows = pg_insert_rows,
    .bulk_begin = pg_bulk_begin,
    .bulk_end = pg_bulk_end,
    .put_user = pg_put_user,
    .get_user = pg_get_user,
    .delete_user = pg_delete_user,
    .put_item = pg_put_item,
    .get_item = pg_get_item,
    .hide_item = pg_hide_item,
    .history = pg_history,
    .user_items = pg_user_items,
    .scan_keys = pg_scan_keys,
    .scan_items = pg_scan_items,
    .scan_rows = pg_scan_rows,
    .count = pg_count,
    .seq_bounds = pg_seq_bounds,
    .scan_range = pg_scan_range,
};

static void no_notices(void *arg, const char *message) { (void)arg, (void)message; }

int cofi__pg_open(cofi_store *s, const char *url, cofi_diag *d) {
  pg *g = cofi__calloc(1, sizeof *g);
  if (!g) return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  cofi__idmap_init(&g->types);
  s->impl = g;
  s->ops = &pg_ops;
  /* A connect timeout unless the URL sets one (later values win). */
  const char *const keys[] = {"connect_timeout", "dbname", NULL};
  const char *const vals[] = {"10", url, NULL};
  g->conn = PQconnectdbParams(keys, vals, 1);
  if (!g->conn) return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  if (PQstatus(g->conn) != CONNECTION_OK) {
    char msg[400];
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(g->conn));
    msg[strcspn(msg, "\n")] = 0;
    return cofi__fail(d, COFI_ERR_STORE, s->where, 0, "postgresql: cannot connect: %s", msg);
  }
  PQsetNoticeProcessor(g->conn, no_notices, NULL);
  if (PQsetClientEncoding(g->conn, "UTF8"))
    return fail_pg(s, "setting the client encoding to UTF8", NULL, d);
  return COFI_OK;
}

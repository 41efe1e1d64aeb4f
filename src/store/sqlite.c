/*
 * sqlite.c — the SQLite back end of the store (sqlite:PATH).
 *
 * One connection per cofi_store, statements prepared once at open and
 * reset after each use. The file is created on first use. Settings:
 *   journal_mode=WAL   readers never block the writer, one writer at a time
 *   synchronous=FULL   a commit is fsynced into the WAL before it returns:
 *                      acknowledged = on disk (kill -9 and power loss)
 *   busy_timeout=10s   a second writer process waits instead of failing
 * Tables are STRICT (SQLite checks column types on every write) and every
 * row read back is checked again. Foreign keys are declared but not
 * enforced by SQLite (that would cost two lookups per event); the library
 * creates users and items before their events, deletes events with their
 * user, and refuses a dangling key (or event code) when it reads one.
 * Event types are stored as codes (cofi_event_types), cached per
 * connection both ways; every scan reads the event packs (pack.c) where
 * they cover its range and the rows elsewhere (lite_scan_range).
 */
#include "store.h"
#include "lists.h" /* cofi__sqlite_db */

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

enum {
  Q_BEGIN_W, Q_BEGIN_R, Q_COMMIT, Q_ROLLBACK, Q_DATA_VERSION,
  Q_UKEY, Q_UINS, Q_IKEY, Q_IINS, Q_EV_INS,
  Q_PUT_USER, Q_GET_USER, Q_DEL_EVENTS, Q_DEL_USER,
  Q_PUT_ITEM, Q_GET_ITEM, Q_HIDE_ITEM, Q_HISTORY,
  Q_SCAN_USERS, Q_SCAN_ITEMKEYS, Q_SCAN_ITEMS, Q_COUNT,
  Q_SEQ_BOUNDS, Q_SCAN_RANGE, Q_COUNT_RANGE, Q_EV_INS_MANY, Q_UINS_MANY, Q_IINS_MANY,
  Q_USER_ITEMS, Q_TYPE_BY_NAME, Q_TYPE_INS, Q_TYPE_BY_CODE, Q_PACKS, Q_PACK_LIST, Q_PACK_INS,
  Q_PACKED,
  Q_N
};

static const char *const sql[Q_N] = {
    [Q_BEGIN_W] = "BEGIN IMMEDIATE",
    [Q_BEGIN_R] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_DATA_VERSION] = "PRAGMA data_version",
    [Q_UKEY] = "SELECT ukey FROM cofi_users WHERE id = ?1",
    [Q_UINS] = "INSERT INTO cofi_users(id) VALUES (?1)",
    [Q_IKEY] = "SELECT ikey FROM cofi_items WHERE id = ?1",
    [Q_IINS] = "INSERT INTO cofi_items(id) VALUES (?1)",
    [Q_EV_INS] = "INSERT INTO cofi_events(ukey, ikey, event, value, ts) VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_PUT_USER] = "INSERT INTO cofi_users(id, labels) VALUES (?1, ?2) "
                   "ON CONFLICT(id) DO UPDATE SET labels = excluded.labels",
    [Q_GET_USER] = "SELECT labels FROM cofi_users WHERE id = ?1",
    [Q_DEL_EVENTS] = "DELETE FROM cofi_events WHERE ukey = ?1",
    [Q_DEL_USER] = "DELETE FROM cofi_users WHERE ukey = ?1",
    [Q_PUT_ITEM] = "INSERT INTO cofi_items(id, title, categories, hidden, ts, fields) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "
                   "title = excluded.title, categories = excluded.categories, "
                   "hidden = excluded.hidden, ts = excluded.ts, fields = excluded.fields",
    [Q_GET_ITEM] = "SELECT ikey, id, title, categories, hidden, ts, fields FROM cofi_items "
                   "WHERE id = ?1",
    [Q_HIDE_ITEM] = "UPDATE cofi_items SET hidden = ?2 WHERE id = ?1",
    /* NULL times sort lowest in SQLite, so last when descending; the
     * index (ukey, ts, seq) is walked backwards. */
    [Q_HISTORY] = "SELECT e.seq, i.id, t.name, e.value, e.ts, i.title, e.event "
                  "FROM cofi_events e JOIN cofi_items i ON i.ikey = e.ikey "
                  "LEFT JOIN cofi_event_types t ON t.code = e.event WHERE e.ukey = ?1 "
                  "ORDER BY e.ts DESC, e.seq DESC LIMIT ?2",
    /* The fold-in's read (user_items.c): the distinct items only, each
     * item row read once, no titles, no order. */
    [Q_USER_ITEMS] = "SELECT ikey, id FROM cofi_items WHERE ikey IN "
                     "(SELECT ikey FROM cofi_events WHERE ukey = ?1)",
    [Q_SCAN_USERS] = "SELECT ukey, id FROM cofi_users ORDER BY ukey",
    [Q_SCAN_ITEMKEYS] = "SELECT ikey, id FROM cofi_items ORDER BY ikey",
    [Q_SCAN_ITEMS] = "SELECT ikey, id, title, categories, hidden, ts, fields FROM cofi_items "
                     "ORDER BY ikey",
    [Q_COUNT] = "SELECT (SELECT count(*) FROM cofi_users), (SELECT count(*) FROM cofi_items), "
                "(SELECT count(*) FROM cofi_events), "
                "(SELECT count(*) FROM cofi_items WHERE hidden <> 0)",
    /* Two subqueries: SQLite answers a lone min() or max() of the rowid
     * from one end of the table, but both in one SELECT by reading every
     * row (the event feed asks for this on every poll). */
    [Q_SEQ_BOUNDS] = "SELECT coalesce((SELECT min(seq) FROM cofi_events), 0), "
                     "coalesce((SELECT max(seq) FROM cofi_events), 0)",
    [Q_SCAN_RANGE] = "SELECT seq, ukey, ikey, event, value, ts FROM cofi_events "
                     "WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
    [Q_COUNT_RANGE] = "SELECT count(*) FROM cofi_events WHERE seq > ?1 AND seq <= ?2",
    [Q_TYPE_BY_NAME] = "SELECT code FROM cofi_event_types WHERE name = ?1",
    [Q_TYPE_INS] = "INSERT INTO cofi_event_types(name) VALUES (?1)",
    [Q_TYPE_BY_CODE] = "SELECT name FROM cofi_event_types WHERE code = ?1",
    /* The packs holding any seq in (?1, ?2], in seq order. */
    [Q_PACKS] = "SELECT last, first, n, data FROM cofi_event_packs WHERE last > ?1 AND first <= ?2 "
                "ORDER BY last",
    [Q_PACK_LIST] = "SELECT first, last FROM cofi_event_packs ORDER BY last",
    [Q_PACK_INS] = "INSERT INTO cofi_event_packs(last, first, n, data) VALUES (?1, ?2, ?3, ?4)",
    [Q_PACKED] = "SELECT coalesce(sum(n), 0) FROM cofi_event_packs",
    [Q_EV_INS_MANY] = NULL, /* built by prepare_all: EV_PER_INSERT rows per statement */
    [Q_UINS_MANY] = NULL,   /* and KEYS_PER_INSERT new users or items, RETURNING their keys */
    [Q_IINS_MANY] = NULL,
};

/* Events per INSERT statement on the bulk path: one statement execution
 * (cursor opened and closed, mutexes taken) for many rows. */
#define EV_PER_INSERT 64
#define KEYS_PER_INSERT 64

/* Version 1 of the schema (docs/store.md), as the first release wrote it:
 * a new store is created with it, then migrated to version 2 like an old
 * one. */
static const char schema_v1[] =
    "CREATE TABLE cofi_users ("
    "  ukey INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  labels TEXT NOT NULL DEFAULT '[]') STRICT;"
    "CREATE TABLE cofi_items ("
    "  ikey INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  title TEXT,"
    "  categories TEXT NOT NULL DEFAULT '[]',"
    "  hidden INTEGER NOT NULL DEFAULT 0,"
    "  ts INTEGER,"
    "  fields TEXT NOT NULL DEFAULT '{}') STRICT;"
    "CREATE TABLE cofi_events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ukey INTEGER NOT NULL REFERENCES cofi_users(ukey),"
    "  ikey INTEGER NOT NULL REFERENCES cofi_items(ikey),"
    "  event TEXT,"
    "  value REAL NOT NULL,"
    "  ts INTEGER) STRICT;"
    "CREATE INDEX cofi_events_user ON cofi_events(ukey, ts, seq);";

/* Version 2 (docs/store.md, "Version 2"), from version 1:
 * - event types become small integer codes (cofi_event_types): an event
 *   row is all numbers, a few bytes smaller on every write;
 * - the history index is (ukey, ts): SQLite ends every index entry with
 *   the rowid (= seq), so (ukey, ts, seq) stored seq twice; the order is
 *   the same and the entries, written at scattered places by every group
 *   commit, are smaller;
 * - cofi_event_packs: runs of events packed column by column for the
 *   training scan (pack.c), a cache of cofi_events; the triggers drop
 *   every pack holding an event that is deleted or changed, in the same
 *   transaction.
 * SQLite cannot change a column's type, so cofi_events is rebuilt (same
 * seqs); sqlite_sequence keeps the highest seq ever used, so no seq is
 * reused after the rebuild either. */
static const char schema_v2[] =
    "CREATE TABLE cofi_event_types ("
    "  code INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE) STRICT;"
    "INSERT INTO cofi_event_types(name) "
    "  SELECT DISTINCT event FROM cofi_events WHERE event IS NOT NULL ORDER BY event;"
    "CREATE TABLE cofi_events_v2 ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ukey INTEGER NOT NULL REFERENCES cofi_users(ukey),"
    "  ikey INTEGER NOT NULL REFERENCES cofi_items(ikey),"
    "  event INTEGER REFERENCES cofi_event_types(code),"
    "  value REAL NOT NULL,"
    "  ts INTEGER) STRICT;"
    "INSERT INTO cofi_events_v2(seq, ukey, ikey, event, value, ts) "
    "  SELECT e.seq, e.ukey, e.ikey, t.code, e.value, e.ts FROM cofi_events e "
    "  LEFT JOIN cofi_event_types t ON t.name = e.event ORDER BY e.seq;"
    "DELETE FROM sqlite_sequence WHERE name = 'cofi_events_v2';"
    "INSERT INTO sqlite_sequence(name, seq) SELECT 'cofi_events_v2', max(seq) FROM ("
    "  SELECT seq FROM sqlite_sequence WHERE name = 'cofi_events' "
    "  UNION ALL SELECT max(seq) FROM cofi_events_v2) HAVING max(seq) IS NOT NULL;"
    "DROP TABLE cofi_events;"
    "ALTER TABLE cofi_events_v2 RENAME TO cofi_events;"
    "CREATE INDEX cofi_events_user ON cofi_events(ukey, ts);"
    "CREATE TABLE cofi_event_packs ("
    "  last INTEGER PRIMARY KEY,"
    "  first INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  data BLOB NOT NULL) STRICT;"
    "CREATE TRIGGER cofi_events_unpack_delete AFTER DELETE ON cofi_events BEGIN"
    "  DELETE FROM cofi_event_packs WHERE first <= OLD.seq AND last = "
    "    (SELECT min(last) FROM cofi_event_packs WHERE last >= OLD.seq);"
    "END;"
    "CREATE TRIGGER cofi_events_unpack_update AFTER UPDATE ON cofi_events BEGIN"
    "  DELETE FROM cofi_event_packs WHERE first <= OLD.seq AND last = "
    "    (SELECT min(last) FROM cofi_event_packs WHERE last >= OLD.seq);"
    "  DELETE FROM cofi_event_packs WHERE first <= NEW.seq AND last = "
    "    (SELECT min(last) FROM cofi_event_packs WHERE last >= NEW.seq);"
    "END;";

/* An event type's name and code, cached by a connection. */
typedef struct ev_type {
  int64_t code;
  size_t len;
  char *name;
} ev_type;

typedef struct lite {
  sqlite3 *db;
  char *path; /* for a second connection (open_reader) */
  sqlite3_stmt *st[Q_N];
  bool prepared; /* all of st[], not only the transaction statements */
  /* Keys of users and items seen (see keycache.c), used only inside a
   * write transaction, after checking that no other connection wrote
   * since the last one (data_version). */
  cofi__keycache cache[2];
  bool writing;
  bool have_version;
  int64_t version;
  /* Event types seen (never deleted; dropped with the keys, since one
   * created by a transaction rolled back is gone). */
  ev_type *types;
  size_t n_types, cap_types, last_type;
} lite;

#define L(s) ((lite *)(s)->impl)

/* For the lists (lists_sql.c). */
sqlite3 *cofi__sqlite_db(cofi_store *s) { return L(s)->db; }

static int fail_db(cofi_store *s, const char *what, int src, cofi_diag *d) {
  lite *l = L(s);
  int code = COFI_ERR_STORE;
  int prim = src & 0xff;
  if (prim == SQLITE_NOMEM) code = COFI_ERR_NOMEM;
  else if (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB) code = COFI_ERR_CORRUPT;
  const char *msg = l && l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(src);
  return cofi__fail(d, code, s->where, 0, "sqlite: %s: %s", what, msg);
}

static int exec(cofi_store *s, const char *what, const char *text, cofi_diag *d) {
  int rc = sqlite3_exec(L(s)->db, text, NULL, NULL, NULL);
  return rc == SQLITE_OK ? COFI_OK : fail_db(s, what, rc, d);
}

/* The prepared statement q, reset and unbound. */
static sqlite3_stmt *stmt(cofi_store *s, int q) {
  sqlite3_stmt *st = L(s)->st[q];
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

/* Runs a statement that returns no rows. */
static int run(cofi_store *s, sqlite3_stmt *st, const char *what, cofi_diag *d) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? COFI_OK : fail_db(s, what, rc, d);
}

static void forget_types(lite *l) {
  for (size_t t = 0; t < l->n_types; t++) cofi__free(l->types[t].name);
  l->n_types = l->last_type = 0;
}

static void lite_close(cofi_store *s) {
  lite *l = L(s);
  if (!l) return;
  forget_types(l);
  cofi__free(l->types);
  for (int q = 0; q < Q_N; q++) sqlite3_finalize(l->st[q]);
  cofi__keycache_clear(&l->cache[COFI__USERS]);
  cofi__keycache_clear(&l->cache[COFI__ITEMS]);
  sqlite3_close(l->db);
  cofi__free(l->path);
  cofi__free(l);
  s->impl = NULL;
}

static void forget_keys(lite *l) {
  cofi__keycache_clear(&l->cache[COFI__USERS]);
  cofi__keycache_clear(&l->cache[COFI__ITEMS]);
  forget_types(l);
}

/* A write transaction holds the write lock from BEGIN IMMEDIATE on, so
 * data_version read then tells whether another connection (process or
 * not) committed since this one's last write: if so, it may have deleted
 * a user whose key the cache holds, and the cache is dropped. */
static int lite_begin(cofi_store *s, bool write, cofi_diag *d) {
  int rc = run(s, stmt(s, write ? Q_BEGIN_W : Q_BEGIN_R), "begin", d);
  if (rc || !write) return rc;
  lite *l = L(s);
  sqlite3_stmt *st = stmt(s, Q_DATA_VERSION);
  int src = sqlite3_step(st);
  int64_t v = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (src != SQLITE_ROW) {
    rc = fail_db(s, "reading data_version", src, d);
    run(s, stmt(s, Q_ROLLBACK), "rollback", NULL);
    forget_keys(l);
    return rc;
  }
  if (!l->have_version || v != l->version) forget_keys(l);
  l->version = v;
  l->have_version = true;
  l->writing = true;
  return COFI_OK;
}

static int prepare_all(cofi_store *s, cofi_diag *d);

/* The statements on the tables are prepared after the first commit, which
 * is the one of the schema migration at open. */
static int lite_commit(cofi_store *s, cofi_diag *d) {
  L(s)->writing = false;
  int rc = run(s, stmt(s, Q_COMMIT), "commit", d);
  if (!rc && !L(s)->prepared) rc = prepare_all(s, d);
  return rc;
}

/* Keys created by the transaction are gone with it: the cache too. */
static void lite_rollback(cofi_store *s) {
  L(s)->writing = false;
  forget_keys(L(s));
  if (!sqlite3_get_autocommit(L(s)->db)) run(s, stmt(s, Q_ROLLBACK), "rollback", NULL);
}

static int lite_schema_version(cofi_store *s, uint32_t *v, cofi_diag *d) {
  int rc = exec(s, "creating cofi_schema_version",
                "CREATE TABLE IF NOT EXISTS cofi_schema_version ("
                "  version INTEGER PRIMARY KEY,"
                "  applied_at INTEGER NOT NULL DEFAULT (unixepoch()))",
                d);
  if (rc) return rc;
  sqlite3_stmt *st;
  int src = sqlite3_prepare_v2(L(s)->db, "SELECT max(version) FROM cofi_schema_version", -1, &st,
                               NULL);
  if (src) return fail_db(s, "reading the schema version", src, d);
  src = sqlite3_step(st);
  if (src != SQLITE_ROW) {
    rc = fail_db(s, "reading the schema version", src, d);
  } else {
    int type = sqlite3_column_type(st, 0);
    sqlite3_int64 x = sqlite3_column_int64(st, 0);
    if (type == SQLITE_NULL) *v = 0;
    else if (type != SQLITE_INTEGER || x < 1 || x > UINT32_MAX)
      rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_schema_version holds a bad version");
    else *v = (uint32_t)x;
  }
  sqlite3_finalize(st);
  return rc;
}

static int lite_migrate(cofi_store *s, uint32_t v, cofi_diag *d) {
  int rc = COFI_OK;
  if (v == 1) rc = exec(s, "creating the schema (version 1)", schema_v1, d);
  else if (v == 2) rc = exec(s, "migrating the schema to version 2", schema_v2, d);
  if (rc) return rc;
  char q[160];
  snprintf(q, sizeof q,
           "INSERT INTO cofi_schema_version(version) VALUES (%u)", v);
  return exec(s, "recording the schema version", q, d);
}

static int prepare_all(cofi_store *s, cofi_diag *d) {
  if (!L(s)->st[Q_EV_INS_MANY]) {
    char text[64 + EV_PER_INSERT * 24];
    size_t o = (size_t)snprintf(text, sizeof text,
                                "INSERT INTO cofi_events(ukey, ikey, event, value, ts) VALUES ");
    for (int r = 0; r < EV_PER_INSERT; r++)
      o += (size_t)snprintf(text + o, sizeof text - o, "%s(?,?,?,?,?)", r ? "," : "");
    int src = sqlite3_prepare_v3(L(s)->db, text, -1, SQLITE_PREPARE_PERSISTENT,
                                 &L(s)->st[Q_EV_INS_MANY], NULL);
    if (src) return fail_db(s, "preparing statements", src, d);
  }
  for (int t = 0; t < 2; t++) {
    const int q = t == COFI__USERS ? Q_UINS_MANY : Q_IINS_MANY;
    if (L(s)->st[q]) continue;
    char text[96 + KEYS_PER_INSERT * 4];
    size_t o = (size_t)snprintf(text, sizeof text, "INSERT INTO %s(id) VALUES ",
                                t == COFI__USERS ? "cofi_users" : "cofi_items");
    for (int r = 0; r < KEYS_PER_INSERT; r++)
      o += (size_t)snprintf(text + o, sizeof text - o, "%s(?)", r ? "," : "");
    snprintf(text + o, sizeof text - o, " RETURNING %s, id", t == COFI__USERS ? "ukey" : "ikey");
    int src = sqlite3_prepare_v3(L(s)->db, text, -1, SQLITE_PREPARE_PERSISTENT, &L(s)->st[q],
                                 NULL);
    if (src) return fail_db(s, "preparing statements", src, d);
  }
  for (int q = 0; q < Q_N; q++) {
    if (L(s)->st[q]) continue;
    int src = sqlite3_prepare_v3(L(s)->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &L(s)->st[q],
                                 NULL);
    if (src) return fail_db(s, "preparing statements", src, d);
  }
  L(s)->prepared = true;
  return COFI_OK;
}

/* Creates the users or items ids[which[0..n)] (distinct, none in the
 * table), their keys into keys[which[k]]: KEYS_PER_INSERT per statement,
 * the keys matched back by ID from RETURNING (whose order SQLite does not
 * promise), then the rest one by one. */
static int add_keys(cofi_store *s, int table, const char *const *ids, const size_t *lens,
                    const size_t *which, size_t n, int64_t *keys, cofi_diag *d) {
  const char *what = table == COFI__USERS ? "adding users" : "adding items";
  sqlite3_stmt *many = L(s)->st[table == COFI__USERS ? Q_UINS_MANY : Q_IINS_MANY];
  size_t i = 0;
  for (; i + KEYS_PER_INSERT <= n; i += KEYS_PER_INSERT) {
    for (int r = 0; r < KEYS_PER_INSERT; r++) {
      size_t w = which[i + (size_t)r];
      sqlite3_bind_text(many, r + 1, ids[w], (int)lens[w], SQLITE_STATIC);
    }
    int src;
    size_t got = 0;
    while ((src = sqlite3_step(many)) == SQLITE_ROW) {
      int64_t key = sqlite3_column_int64(many, 0);
      const char *t = (const char *)sqlite3_column_text(many, 1);
      size_t tl = (size_t)sqlite3_column_bytes(many, 1);
      for (size_t r = 0; t && r < KEYS_PER_INSERT; r++) {
        size_t w = which[i + r];
        if (keys[w] < 0 && lens[w] == tl && !memcmp(ids[w], t, tl)) {
          keys[w] = key;
          got++;
          break;
        }
      }
    }
    sqlite3_reset(many);
    if (src != SQLITE_DONE) return fail_db(s, what, src, d);
    if (got != KEYS_PER_INSERT)
      return cofi__fail(d, COFI_ERR_STORE, s->where, 0, "sqlite: %s: %zu keys back for %d IDs",
                        what, got, KEYS_PER_INSERT);
  }
  sqlite3_stmt *one = stmt(s, table == COFI__USERS ? Q_UINS : Q_IINS);
  for (; i < n; i++) {
    size_t w = which[i];
    sqlite3_bind_text(one, 1, ids[w], (int)lens[w], SQLITE_STATIC);
    int rc = run(s, one, what, d);
    if (rc) return rc;
    keys[w] = sqlite3_last_insert_rowid(L(s)->db);
  }
  return COFI_OK;
}

/* Remembers id -> key; a cache that cannot grow is emptied (it is only a
 * shortcut). */
static void remember(cofi__keycache *c, const char *id, size_t len, int64_t key) {
  if (c && cofi__keycache_put(c, id, len, key)) cofi__keycache_clear(c);
}

static int lite_keys(cofi_store *s, int table, size_t n, const char *const *ids,
                     const size_t *lens, bool create, int64_t *keys, cofi_diag *d) {
  lite *l = L(s);
  cofi__keycache *cache = l->writing ? &l->cache[table] : NULL;
  sqlite3_stmt *sk = stmt(s, table == COFI__USERS ? Q_UKEY : Q_IKEY);
  size_t *missing = NULL, n_missing = 0;
  int rc = COFI_OK;
  for (size_t i = 0; i < n; i++) {
    keys[i] = cache ? cofi__keycache_find(cache, ids[i], lens[i]) : -1;
    if (keys[i] >= 0) continue;
    sqlite3_bind_text(sk, 1, ids[i], (int)lens[i], SQLITE_STATIC);
    int src = sqlite3_step(sk);
    if (src == SQLITE_ROW) keys[i] = sqlite3_column_int64(sk, 0);
    sqlite3_reset(sk);
    if (src == SQLITE_ROW) {
      remember(cache, ids[i], lens[i], keys[i]);
      continue;
    }
    if (src != SQLITE_DONE) {
      rc = fail_db(s, "looking up a key", src, d);
      goto done;
    }
    if (!create) continue;
    if (!missing && !(missing = cofi__malloc(n * sizeof *missing))) {
      rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
      goto done;
    }
    missing[n_missing++] = i;
  }
  if (n_missing && !(rc = add_keys(s, table, ids, lens, missing, n_missing, keys, d)))
    for (size_t k = 0; k < n_missing; k++)
      remember(cache, ids[missing[k]], lens[missing[k]], keys[missing[k]]);
done:
  cofi__free(missing);
  return rc;
}

static int insert_coded(cofi_store *s, const cofi__store_row *rows, size_t n, cofi_diag *d);

/* ---- event types ------------------------------------------------------ */

static int remember_type(lite *l, int64_t code, const char *name, size_t len) {
  if (l->n_types == l->cap_types) {
    size_t cap = l->cap_types ? 2 * l->cap_types : 8;
    ev_type *t = cofi__realloc(l->types, cap * sizeof *t);
    if (!t) return COFI_ERR_NOMEM;
    l->types = t;
    l->cap_types = cap;
  }
  char *copy = cofi__malloc(len + 1);
  if (!copy) return COFI_ERR_NOMEM;
  memcpy(copy, name, len);
  copy[len] = 0;
  l->types[l->n_types++] = (ev_type){code, len, copy};
  return COFI_OK;
}

/* The code of event type name, created when missing (in the caller's
 * write transaction). */
static int type_code(cofi_store *s, const char *name, size_t len, int64_t *code, cofi_diag *d) {
  lite *l = L(s);
  if (l->last_type < l->n_types) {
    const ev_type *t = &l->types[l->last_type];
    if (t->len == len && !memcmp(t->name, name, len)) {
      *code = t->code;
      return COFI_OK;
    }
  }
  for (size_t k = 0; k < l->n_types; k++)
    if (l->types[k].len == len && !memcmp(l->types[k].name, name, len)) {
      l->last_type = k;
      *code = l->types[k].code;
      return COFI_OK;
    }
  sqlite3_stmt *st = stmt(s, Q_TYPE_BY_NAME);
  sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) *code = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (src == SQLITE_DONE) {
    st = stmt(s, Q_TYPE_INS);
    sqlite3_bind_text(st, 1, name, (int)len, SQLITE_STATIC);
    int rc = run(s, st, "adding an event type", d);
    if (rc) return rc;
    *code = sqlite3_last_insert_rowid(l->db);
  } else if (src != SQLITE_ROW) {
    return fail_db(s, "looking up an event type", src, d);
  }
  if (*code <= 0)
    return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_event_types: code %lld is not positive", (long long)*code);
  if (remember_type(l, *code, name, len))
    return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  l->last_type = l->n_types - 1;
  return COFI_OK;
}

/* The name of event type code (of the event row seq, for messages). */
static int type_name(cofi_store *s, int64_t code, uint64_t seq, const char **name, size_t *len,
                     cofi_diag *d) {
  lite *l = L(s);
  if (l->last_type < l->n_types && l->types[l->last_type].code == code) {
    *name = l->types[l->last_type].name;
    *len = l->types[l->last_type].len;
    return COFI_OK;
  }
  for (size_t k = 0; k < l->n_types; k++)
    if (l->types[k].code == code) {
      l->last_type = k;
      *name = l->types[k].name;
      *len = l->types[k].len;
      return COFI_OK;
    }
  sqlite3_stmt *st = stmt(s, Q_TYPE_BY_CODE);
  sqlite3_bind_int64(st, 1, code);
  int src = sqlite3_step(st), rc = COFI_OK;
  if (src == SQLITE_DONE)
    rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                    "table cofi_events, row %llu: event code %lld has no row in "
                    "cofi_event_types",
                    (unsigned long long)seq, (long long)code);
  else if (src != SQLITE_ROW) rc = fail_db(s, "reading an event type", src, d);
  else if (sqlite3_column_type(st, 0) != SQLITE_TEXT)
    rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                    "table cofi_event_types, row %lld: column name is not text", (long long)code);
  else {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    if (!t || remember_type(l, code, t, (size_t)sqlite3_column_bytes(st, 0)))
      rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  }
  sqlite3_reset(st);
  if (rc) return rc;
  l->last_type = l->n_types - 1;
  *name = l->types[l->last_type].name;
  *len = l->types[l->last_type].len;
  return COFI_OK;
}

/* Binds row r (its code already set) to the parameters first..first+4 of st. */
static void bind_row(sqlite3_stmt *st, int first, const cofi__store_row *r) {
  sqlite3_bind_int64(st, first, r->user);
  sqlite3_bind_int64(st, first + 1, r->item);
  if (r->code > 0) sqlite3_bind_int64(st, first + 2, r->code);
  else sqlite3_bind_null(st, first + 2);
  sqlite3_bind_double(st, first + 3, r->value);
  if (r->has_ts) sqlite3_bind_int64(st, first + 4, r->ts);
  else sqlite3_bind_null(st, first + 4);
}

static int lite_insert_rows(cofi_store *s, const cofi__store_row *in, size_t n, cofi_diag *d) {
  /* the rows with their event types' codes */
  cofi__store_row *rows = cofi__malloc((n ? n : 1) * sizeof *rows);
  if (!rows) return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  int rc = COFI_OK;
  for (size_t k = 0; k < n && !rc; k++) {
    rows[k] = in[k];
    rows[k].code = 0;
    if (in[k].event) rc = type_code(s, in[k].event, in[k].event_len, &rows[k].code, d);
  }
  if (!rc) rc = insert_coded(s, rows, n, d);
  cofi__free(rows);
  return rc;
}

static int insert_coded(cofi_store *s, const cofi__store_row *rows, size_t n, cofi_diag *d) {
  size_t i = 0;
  sqlite3_stmt *many = L(s)->st[Q_EV_INS_MANY];
  for (; i + EV_PER_INSERT <= n; i += EV_PER_INSERT) {
    for (int r = 0; r < EV_PER_INSERT; r++) bind_row(many, 1 + 5 * r, &rows[i + (size_t)r]);
    int src = sqlite3_step(many);
    sqlite3_reset(many);
    if (src != SQLITE_DONE) return fail_db(s, "adding events", src, d);
  }
  sqlite3_stmt *st = stmt(s, Q_EV_INS);
  for (; i < n; i++) {
    bind_row(st, 1, &rows[i]);
    int src = sqlite3_step(st);
    sqlite3_reset(st);
    if (src != SQLITE_DONE) return fail_db(s, "adding events", src, d);
  }
  return COFI_OK;
}

static int lite_bulk_begin(cofi_store *s, cofi_diag *d) { return COFI_OK; }

static int lite_bulk_end(cofi_store *s, cofi_diag *d) { return COFI_OK; }

static void bind_opt_text(sqlite3_stmt *st, int i, const char *p, size_t n, const char *dflt) {
  if (p) sqlite3_bind_text(st, i, p, (int)n, SQLITE_STATIC);
  else if (dflt) sqlite3_bind_text(st, i, dflt, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, i);
}

static int lite_put_user(cofi_store *s, const cofi_store_user *u, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_PUT_USER);
  sqlite3_bind_text(st, 1, u->id, (int)u->id_len, SQLITE_STATIC);
  bind_opt_text(st, 2, u->labels, u->labels_len, "[]");
  return run(s, st, "writing a user", d);
}

/* Column c of a row as text (NULL when SQL NULL); a non-text value is a
 * broken row. */
static int col_text(cofi_store *s, sqlite3_stmt *st, int c, const char *table, int64_t row,
                    bool nullable, const char **p, size_t *n, cofi_diag *d) {
  int type = sqlite3_column_type(st, c);
  if (type == SQLITE_NULL && nullable) {
    *p = NULL;
    *n = 0;
    return COFI_OK;
  }
  if (type != SQLITE_TEXT)
    return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0, "table %s, row %lld: column %s is not text",
                      table, (long long)row, sqlite3_column_name(st, c));
  *p = (const char *)sqlite3_column_text(st, c);
  *n = (size_t)sqlite3_column_bytes(st, c);
  if (!*p) return COFI_ERR_NOMEM;
  return COFI_OK;
}

static int col_int(cofi_store *s, sqlite3_stmt *st, int c, const char *table, int64_t row,
                   bool nullable, int64_t *v, bool *present, cofi_diag *d) {
  int type = sqlite3_column_type(st, c);
  if (present) *present = type != SQLITE_NULL;
  if (type == SQLITE_NULL && nullable) {
    *v = 0;
    return COFI_OK;
  }
  if (type != SQLITE_INTEGER)
    return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table %s, row %lld: column %s is not an integer", table, (long long)row,
                      sqlite3_column_name(st, c));
  *v = sqlite3_column_int64(st, c);
  return COFI_OK;
}

static int lite_get_user(cofi_store *s, const char *id, size_t len, char **labels,
                         size_t *labels_len, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_GET_USER);
  sqlite3_bind_text(st, 1, id, (int)len, SQLITE_STATIC);
  int src = sqlite3_step(st);
  int rc = COFI_OK;
  if (src == SQLITE_DONE) rc = COFI_ERR_NOT_FOUND;
  else if (src != SQLITE_ROW) rc = fail_db(s, "reading a user", src, d);
  else {
    const char *p = NULL;
    size_t n = 0;
    if (!(rc = col_text(s, st, 0, "cofi_users", 0, false, &p, &n, d))) {
      *labels = cofi__malloc(n + 1);
      if (!*labels) rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
      else {
        memcpy(*labels, p, n);
        (*labels)[n] = 0;
        *labels_len = n;
      }
    }
  }
  sqlite3_reset(st);
  return rc;
}

static int lite_delete_user(cofi_store *s, int64_t key, uint64_t *n_events, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_DEL_EVENTS);
  sqlite3_bind_int64(st, 1, key);
  int rc = run(s, st, "deleting a user's events", d);
  if (rc) return rc;
  *n_events = (uint64_t)sqlite3_changes64(L(s)->db);
  cofi__keycache_clear(&L(s)->cache[COFI__USERS]); /* the key is free again */
  st = stmt(s, Q_DEL_USER);
  sqlite3_bind_int64(st, 1, key);
  return run(s, st, "deleting a user", d);
}

static int lite_put_item(cofi_store *s, const cofi_store_item *it, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_PUT_ITEM);
  sqlite3_bind_text(st, 1, it->id, (int)it->id_len, SQLITE_STATIC);
  bind_opt_text(st, 2, it->title, it->title_len, NULL);
  bind_opt_text(st, 3, it->categories, it->categories_len, "[]");
  sqlite3_bind_int(st, 4, it->hidden != 0);
  if (it->has_timestamp) sqlite3_bind_int64(st, 5, it->timestamp);
  else sqlite3_bind_null(st, 5);
  bind_opt_text(st, 6, it->fields, it->fields_len, "{}");
  return run(s, st, "writing an item", d);
}

/* The item in the current row of st (columns as in Q_GET_ITEM). */
static int row_item(cofi_store *s, sqlite3_stmt *st, int64_t *key, cofi_store_item *it,
                    cofi_diag *d) {
  memset(it, 0, sizeof *it);
  int rc;
  int64_t hidden = 0;
  bool has_ts = false;
  if ((rc = col_int(s, st, 0, "cofi_items", 0, false, key, NULL, d))) return rc;
  if ((rc = col_text(s, st, 1, "cofi_items", *key, false, &it->id, &it->id_len, d)) ||
      (rc = col_text(s, st, 2, "cofi_items", *key, true, &it->title, &it->title_len, d)) ||
      (rc = col_text(s, st, 3, "cofi_items", *key, false, &it->categories, &it->categories_len,
                     d)) ||
      (rc = col_int(s, st, 4, "cofi_items", *key, false, &hidden, NULL, d)) ||
      (rc = col_int(s, st, 5, "cofi_items", *key, true, &it->timestamp, &has_ts, d)) ||
      (rc = col_text(s, st, 6, "cofi_items", *key, false, &it->fields, &it->fields_len, d)))
    return rc;
  it->hidden = hidden != 0;
  it->has_timestamp = has_ts;
  return cofi__store_check_row(s, "cofi_items", (uint64_t)*key, "id", it->id, it->id_len, d);
}

static int lite_get_item(cofi_store *s, const char *id, size_t len, cofi__item_fn fn, void *ctx,
                         cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_GET_ITEM);
  sqlite3_bind_text(st, 1, id, (int)len, SQLITE_STATIC);
  int src = sqlite3_step(st);
  int rc;
  if (src == SQLITE_DONE) rc = COFI_ERR_NOT_FOUND;
  else if (src != SQLITE_ROW) rc = fail_db(s, "reading an item", src, d);
  else {
    cofi_store_item it;
    int64_t key;
    rc = row_item(s, st, &key, &it, d);
    if (!rc) rc = fn(ctx, key, &it);
  }
  sqlite3_reset(st);
  return rc;
}

static int lite_hide_item(cofi_store *s, const char *id, size_t len, int hidden, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_HIDE_ITEM);
  sqlite3_bind_text(st, 1, id, (int)len, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, hidden);
  int rc = run(s, st, "hiding an item", d);
  if (!rc && sqlite3_changes64(L(s)->db) == 0) rc = COFI_ERR_NOT_FOUND;
  return rc;
}

/* The event row of st: seq, ukey, ikey, event, value, ts. STRICT tables
 * guarantee the types of the NOT NULL columns (SQLite refuses any other
 * on write, and versions that do not know STRICT cannot write the file),
 * so only the nullable ones are asked their type: this is the training
 * scan's inner loop. */
static int row_event(cofi_store *s, sqlite3_stmt *st, cofi__store_row *r, cofi_diag *d) {
  r->seq = (uint64_t)sqlite3_column_int64(st, 0);
  r->user = sqlite3_column_int64(st, 1);
  r->item = sqlite3_column_int64(st, 2);
  r->value = sqlite3_column_double(st, 4);
  int type = sqlite3_column_type(st, 3);
  r->event = NULL;
  r->event_len = 0;
  r->code = 0;
  if (type == SQLITE_INTEGER) {
    r->code = sqlite3_column_int64(st, 3);
    int rc = type_name(s, r->code, r->seq, &r->event, &r->event_len, d);
    if (rc) return rc;
  } else if (type != SQLITE_NULL) {
    return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_events, row %llu: column event is not an integer",
                      (unsigned long long)r->seq);
  }
  type = sqlite3_column_type(st, 5);
  r->has_ts = type != SQLITE_NULL;
  r->ts = r->has_ts ? sqlite3_column_int64(st, 5) : 0;
  if (r->has_ts && type != SQLITE_INTEGER)
    return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_events, row %llu: column ts is not an integer",
                      (unsigned long long)r->seq);
  return COFI_OK;
}

static int lite_history(cofi_store *s, int64_t user, uint32_t limit, cofi__hist_fn fn,
                        void *ctx, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_HISTORY);
  sqlite3_bind_int64(st, 1, user);
  sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
  int src, rc = COFI_OK;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t seq = 0;
    cofi_store_event ev = {0};
    bool has_ts = false;
    if ((rc = col_int(s, st, 0, "cofi_events", 0, false, &seq, NULL, d)) ||
        (rc = col_text(s, st, 1, "cofi_items", seq, false, &ev.item_id, &ev.item_len, d)) ||
        (rc = col_text(s, st, 2, "cofi_events", seq, true, &ev.event, &ev.event_len, d)) ||
        (rc = col_int(s, st, 4, "cofi_events", seq, true, &ev.timestamp, &has_ts, d)) ||
        (rc = col_text(s, st, 5, "cofi_items", seq, true, &ev.title, &ev.title_len, d)))
      break;
    if (!ev.event && sqlite3_column_type(st, 6) != SQLITE_NULL) {
      rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_events, row %lld: event code %lld has no row in "
                      "cofi_event_types",
                      (long long)seq, (long long)sqlite3_column_int64(st, 6));
      break;
    }
    ev.seq = (uint64_t)seq;
    ev.has_timestamp = has_ts;
    ev.value = sqlite3_column_double(st, 3);
    if ((rc = fn(ctx, &ev))) break;
  }
  if (!rc && src != SQLITE_DONE) rc = fail_db(s, "reading a history", src, d);
  sqlite3_reset(st);
  return rc;
}

static int lite_user_items(cofi_store *s, int64_t user, cofi__key_fn fn, void *ctx,
                           cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_USER_ITEMS);
  sqlite3_bind_int64(st, 1, user);
  int src, rc = COFI_OK;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t key = 0;
    const char *id = NULL;
    size_t len = 0;
    if ((rc = col_int(s, st, 0, "cofi_items", 0, false, &key, NULL, d)) ||
        (rc = col_text(s, st, 1, "cofi_items", key, false, &id, &len, d)) ||
        (rc = fn(ctx, key, id, len)))
      break;
  }
  if (!rc && src != SQLITE_DONE) rc = fail_db(s, "reading a user's items", src, d);
  sqlite3_reset(st);
  return rc;
}

static int lite_scan_keys(cofi_store *s, int table, cofi__key_fn fn, void *ctx, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, table == COFI__USERS ? Q_SCAN_USERS : Q_SCAN_ITEMKEYS);
  const char *name = table == COFI__USERS ? "cofi_users" : "cofi_items";
  int src, rc = COFI_OK;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t key = 0;
    const char *id = NULL;
    size_t len = 0;
    if ((rc = col_int(s, st, 0, name, 0, false, &key, NULL, d)) ||
        (rc = col_text(s, st, 1, name, key, false, &id, &len, d)) ||
        (rc = fn(ctx, key, id, len)))
      break;
  }
  if (!rc && src != SQLITE_DONE) rc = fail_db(s, "reading keys", src, d);
  sqlite3_reset(st);
  return rc;
}

static int lite_scan_items(cofi_store *s, cofi__item_fn fn, void *ctx, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_SCAN_ITEMS);
  int src, rc = COFI_OK;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    cofi_store_item it;
    int64_t key;
    if ((rc = row_item(s, st, &key, &it, d)) || (rc = fn(ctx, key, &it))) break;
  }
  if (!rc && src != SQLITE_DONE) rc = fail_db(s, "reading items", src, d);
  sqlite3_reset(st);
  return rc;
}

static int scan_stmt(cofi_store *s, sqlite3_stmt *st, cofi__row_fn fn, void *ctx, cofi_diag *d) {
  int src, rc = COFI_OK;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    cofi__store_row r;
    if ((rc = row_event(s, st, &r, d)) || (rc = fn(ctx, &r))) break;
  }
  if (!rc && src != SQLITE_DONE) rc = fail_db(s, "reading events", src, d);
  sqlite3_reset(st);
  return rc;
}

/* The rows of cofi_events with lo < seq <= hi (no packs). */
static int scan_table(cofi_store *s, int64_t lo, int64_t hi, cofi__row_fn fn, void *ctx,
                      cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_SCAN_RANGE);
  sqlite3_bind_int64(st, 1, lo);
  sqlite3_bind_int64(st, 2, hi);
  return scan_stmt(s, st, fn, ctx, d);
}

/* A pack's events on their way to the caller: the event type's name
 * from its code, the seq checked against the pack's range. */
typedef struct pack_read {
  cofi_store *s;
  cofi__row_fn fn;
  void *ctx;
  int64_t first, last;
  cofi_diag *d;
} pack_read;

static int pack_row(void *ctx, const cofi__store_row *in) {
  pack_read *p = ctx;
  cofi__store_row r = *in;
  if ((int64_t)r.seq < p->first || (int64_t)r.seq > p->last)
    return cofi__fail(p->d, COFI_ERR_CORRUPT, p->s->where, 0,
                      "table cofi_event_packs, row %lld: seq %llu outside the pack's range; "
                      "DELETE FROM cofi_event_packs makes cofi read the events row by row",
                      (long long)p->last, (unsigned long long)r.seq);
  if (r.code) {
    int rc = type_name(p->s, r.code, r.seq, &r.event, &r.event_len, p->d);
    if (rc) return rc;
  }
  return p->fn(p->ctx, &r);
}

/* The events with lo < seq <= hi in seq order: from the packs where they
 * cover the range, from cofi_events between them. */
static int lite_scan_range(cofi_store *s, int64_t lo, int64_t hi, cofi__row_fn fn, void *ctx,
                           cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_PACKS);
  sqlite3_bind_int64(st, 1, lo);
  sqlite3_bind_int64(st, 2, hi);
  int64_t at = lo; /* everything <= at has been read */
  int src, rc = COFI_OK;
  while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
    pack_read p = {s, fn, ctx, sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 0), d};
    const unsigned char *blob = sqlite3_column_blob(st, 3);
    size_t len = (size_t)sqlite3_column_bytes(st, 3);
    if (sqlite3_column_type(st, 3) != SQLITE_BLOB || !blob || p.first > p.last) {
      rc = cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_event_packs, row %lld: not a pack; DELETE FROM "
                      "cofi_event_packs makes cofi read the events row by row",
                      (long long)p.last);
      break;
    }
    int64_t before = p.first - 1 < hi ? p.first - 1 : hi; /* rows before the pack */
    if (before > at && (rc = scan_table(s, at, before, fn, ctx, d))) break;
    const char *problem = NULL;
    rc = cofi__pack_decode(blob, len, at > lo ? at : lo, hi, pack_row, &p, &problem);
    if (rc == COFI_ERR_CORRUPT && problem)
      rc = cofi__fail(d, rc, s->where, 0,
                      "table cofi_event_packs, row %lld: %s; DELETE FROM cofi_event_packs makes "
                      "cofi read the events row by row",
                      (long long)p.last, problem);
    at = p.last;
  }
  if (!rc && src != SQLITE_ROW && src != SQLITE_DONE)
    rc = fail_db(s, "reading event packs", src, d);
  sqlite3_reset(st);
  if (!rc && at < hi) rc = scan_table(s, at, hi, fn, ctx, d);
  return rc;
}

static int lite_scan_rows(cofi_store *s, cofi__row_fn fn, void *ctx, cofi_diag *d) {
  return lite_scan_range(s, INT64_MIN, INT64_MAX, fn, ctx, d);
}

/* ---- packing (compaction) --------------------------------------------- */

typedef struct packer {
  cofi_store *s;
  cofi__store_row *rows; /* [COFI__PACK_EVENTS] */
  size_t n;
  uint64_t packed;
  uint32_t packs, max_packs; /* written, the most to write (0: no limit) */
  cofi_diag *d;
} packer;

/* pack_add's answer when max_packs are written: stops the scan (not an
 * error; lite_compact turns it back into COFI_OK). */
#define PACKS_DONE 1

static int write_pack(packer *k) {
  unsigned char *blob = NULL;
  size_t len = 0;
  int rc = cofi__pack_encode(k->rows, k->n, &blob, &len);
  if (rc) return cofi__fail(k->d, rc, "", 0, "out of memory");
  sqlite3_stmt *st = stmt(k->s, Q_PACK_INS);
  sqlite3_bind_int64(st, 1, (int64_t)k->rows[k->n - 1].seq);
  sqlite3_bind_int64(st, 2, (int64_t)k->rows[0].seq);
  sqlite3_bind_int64(st, 3, (int64_t)k->n);
  sqlite3_bind_blob(st, 4, blob, (int)len, SQLITE_STATIC);
  rc = run(k->s, st, "writing an event pack", k->d);
  sqlite3_clear_bindings(st);
  cofi__free(blob);
  if (!rc) {
    k->packed += k->n;
    k->packs++;
  }
  k->n = 0;
  return rc;
}

static int pack_add(void *ctx, const cofi__store_row *r) {
  packer *k = ctx;
  k->rows[k->n] = *r;
  k->rows[k->n].event = NULL; /* the code is what is packed; the name is not kept */
  if (++k->n < COFI__PACK_EVENTS) return COFI_OK;
  int rc = write_pack(k);
  return rc ? rc : k->max_packs && k->packs >= k->max_packs ? PACKS_DONE : COFI_OK;
}

uint64_t cofi__pack_min = 4096;

static int lite_packed(cofi_store *s, uint64_t *n, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_PACKED);
  int src = sqlite3_step(st);
  int rc = src == SQLITE_ROW ? COFI_OK : fail_db(s, "counting packed events", src, d);
  if (!rc) *n = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc;
}

/* Packs the events of every seq range no pack covers (runs of at least
 * cofi__pack_min events; shorter ones stay rows), max_packs at most. */
static int lite_compact(cofi_store *s, uint32_t max_packs, uint64_t *packed, cofi_diag *d) {
  *packed = 0;
  int64_t *bounds = NULL; /* first, last of each pack, in order */
  size_t nb = 0, cap = 0;
  packer k = {s, cofi__malloc(COFI__PACK_EVENTS * sizeof *k.rows), 0, 0, 0, max_packs, d};
  int rc = k.rows ? COFI_OK : cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  sqlite3_stmt *st = stmt(s, Q_PACK_LIST);
  int src;
  while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
    if (nb + 2 > cap) {
      cap = cap ? 2 * cap : 256;
      int64_t *b = cofi__realloc(bounds, cap * sizeof *b);
      if (!b) {
        rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
        break;
      }
      bounds = b;
    }
    bounds[nb++] = sqlite3_column_int64(st, 0);
    bounds[nb++] = sqlite3_column_int64(st, 1);
  }
  if (!rc && src != SQLITE_DONE) rc = fail_db(s, "listing event packs", src, d);
  sqlite3_reset(st);
  /* the gaps: (at, next pack's first - 1], then (last pack's last, end] */
  int64_t at = INT64_MIN;
  for (size_t g = 0; !rc && g <= nb && !(max_packs && k.packs >= max_packs); g += 2) {
    int64_t upto = g < nb ? bounds[g] - 1 : INT64_MAX;
    if (upto > at) {
      k.n = 0;
      rc = scan_table(s, at, upto, pack_add, &k, d);
      if (rc == PACKS_DONE) rc = COFI_OK;
      else if (!rc && k.n >= cofi__pack_min) rc = write_pack(&k);
    }
    if (g < nb) at = bounds[g + 1];
  }
  if (!rc) *packed = k.packed;
  cofi__free(bounds);
  cofi__free(k.rows);
  return rc;
}

static int lite_count_range(cofi_store *s, int64_t lo, int64_t hi, uint64_t *n, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_COUNT_RANGE);
  sqlite3_bind_int64(st, 1, lo);
  sqlite3_bind_int64(st, 2, hi);
  int src = sqlite3_step(st);
  int rc = src == SQLITE_ROW ? COFI_OK : fail_db(s, "counting events", src, d);
  if (!rc) *n = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc;
}

static int lite_seq_bounds(cofi_store *s, int64_t *lo, int64_t *hi, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_SEQ_BOUNDS);
  int src = sqlite3_step(st);
  int rc = src == SQLITE_ROW ? COFI_OK : fail_db(s, "reading the event range", src, d);
  if (!rc) {
    *lo = sqlite3_column_int64(st, 0);
    *hi = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  return rc;
}

static int lite_open_reader(cofi_store *s, cofi_store **out, cofi_diag *d);

static int lite_count(cofi_store *s, cofi_store_counts *out, cofi_diag *d) {
  sqlite3_stmt *st = stmt(s, Q_COUNT);
  int src = sqlite3_step(st);
  if (src != SQLITE_ROW) {
    int rc = fail_db(s, "counting", src, d);
    sqlite3_reset(st);
    return rc;
  }
  out->users = (uint64_t)sqlite3_column_int64(st, 0);
  out->items = (uint64_t)sqlite3_column_int64(st, 1);
  out->events = (uint64_t)sqlite3_column_int64(st, 2);
  out->hidden_items = (uint64_t)sqlite3_column_int64(st, 3);
  sqlite3_reset(st);
  return COFI_OK;
}

static const cofi__store_ops lite_ops = {
    .name = "sqlite",
    .close = lite_close,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .schema_version = lite_schema_version,
    .migrate = lite_migrate,
    .keys = lite_keys,
    .insert_rows = lite_insert_rows,
    .bulk_begin = lite_bulk_begin,
    .bulk_end = lite_bulk_end,
    .put_user = lite_put_user,
    .get_user = lite_get_user,
    .delete_user = lite_delete_user,
    .put_item = lite_put_item,
    .get_item = lite_get_item,
    .hide_item = lite_hide_item,
    .history = lite_history,
    .user_items = lite_user_items,
    .scan_keys = lite_scan_keys,
    .scan_items = lite_scan_items,
    .scan_rows = lite_scan_rows,
    .count = lite_count,
    .open_reader = lite_open_reader,
    .seq_bounds = lite_seq_bounds,
    .scan_range = lite_scan_range,
    .count_range = lite_count_range,
    .compact = lite_compact,
    .packed = lite_packed,
};

/* A setting whose answer must be checked (journal_mode answers the mode
 * it got, which is not WAL on a file system without shared memory). */
static int pragma_expect(cofi_store *s, const char *text, const char *want, cofi_diag *d) {
  sqlite3_stmt *st;
  int src = sqlite3_prepare_v2(L(s)->db, text, -1, &st, NULL);
  if (src) return fail_db(s, text, src, d);
  src = sqlite3_step(st);
  int rc = COFI_OK;
  if (src != SQLITE_ROW) rc = fail_db(s, text, src, d);
  else {
    const char *got = (const char *)sqlite3_column_text(st, 0);
    if (!got || strcmp(got, want))
      rc = cofi__fail(d, COFI_ERR_STORE, s->where, 0, "sqlite: %s answered '%s', not '%s'", text,
                      got ? got : "", want);
  }
  sqlite3_finalize(st);
  return rc;
}

/* wal_autocheckpoint for a WAL of about `bytes` at the file's page size. */
static int set_autocheckpoint(cofi_store *s, int64_t bytes, cofi_diag *d) {
  sqlite3_stmt *st;
  int src = sqlite3_prepare_v2(L(s)->db, "PRAGMA page_size", -1, &st, NULL);
  if (src) return fail_db(s, "reading page_size", src, d);
  src = sqlite3_step(st);
  int64_t page = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (page <= 0) return fail_db(s, "reading page_size", src, d);
  char q[64];
  snprintf(q, sizeof q, "PRAGMA wal_autocheckpoint=%lld", (long long)(bytes / page));
  return exec(s, "setting wal_autocheckpoint", q, d);
}

int cofi__sqlite_open(cofi_store *s, const char *path, cofi_diag *d) {
  lite *l = cofi__calloc(1, sizeof *l);
  if (!l) return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  s->impl = l;
  s->ops = &lite_ops;
  int src = sqlite3_open_v2(path, &l->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (src) return fail_db(s, "cannot open the database", src, d);
  sqlite3_extended_result_codes(l->db, 1);
  sqlite3_busy_timeout(l->db, 10000);
  size_t plen = strlen(path);
  l->path = cofi__malloc(plen + 1);
  if (!l->path) return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  memcpy(l->path, path, plen + 1);
  int rc;
  /* A new file gets 16 KiB pages (before WAL mode fixes the size): fewer,
   * fuller pages for the history index's scattered inserts cost a group
   * commit about a third less CPU than 4 KiB ones (docs/performance.md).
   * An existing file keeps its size. */
  if ((rc = exec(s, "setting page_size", "PRAGMA page_size=16384", d))) return rc;
  if ((rc = pragma_expect(s, "PRAGMA journal_mode=WAL", "wal", d))) return rc;
  if ((rc = exec(s, "setting synchronous=FULL", "PRAGMA synchronous=FULL", d))) return rc;
  if ((rc = exec(s, "setting the cache size", "PRAGMA cache_size=-65536", d))) return rc;
  /* Checkpoint when the WAL passes 256 MiB, not SQLite's 1,000 pages: a
   * group commit of a few thousand events dirties that many pages by
   * itself (about 11 MB of 16 KiB pages for 3,200 events of 10,000
   * users), and the checkpoint, run by the committing writer, copies every
   * distinct page once and fsyncs the file: at 64 MiB that was every sixth
   * commit, at 256 MiB about every twentieth (docs/performance.md). */
  if ((rc = set_autocheckpoint(s, (int64_t)256 << 20, d))) return rc;
  /* Reads through a memory map (up to 2 GB of the file): a training scan
   * then copies no page out of the kernel. Writes still go through the
   * WAL as usual. */
  if ((rc = exec(s, "setting mmap_size", "PRAGMA mmap_size=2147418112", d))) return rc;
  for (int q = Q_BEGIN_W; q <= Q_DATA_VERSION; q++) {
    src = sqlite3_prepare_v3(l->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &l->st[q], NULL);
    if (src) return fail_db(s, "preparing statements", src, d);
  }
  return COFI_OK;
}

/* The schema exists (the first connection migrated it): prepare all. */
static int lite_open_reader(cofi_store *s, cofi_store **out, cofi_diag *d) {
  *out = NULL;
  cofi_store *r = cofi__calloc(1, sizeof *r);
  if (!r) return cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
  memcpy(r->where, s->where, sizeof r->where);
  int rc = cofi__sqlite_open(r, L(s)->path, d);
  if (!rc) rc = prepare_all(r, d);
  if (rc) {
    cofi_store_close(r);
    return rc;
  }
  *out = r;
  return COFI_OK;
}

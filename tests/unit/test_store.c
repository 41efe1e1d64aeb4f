/*
 * test_store.c — the store (src/store/), one suite run twice: against
 * SQLite (a file in a temporary directory) and against a real PostgreSQL
 * server (a fresh database per test). The server is started by
 * tests/store/with_postgres.sh, which this program runs itself under when
 * COFI_TEST_PG_URL is not set; when no server can be started the program
 * fails (the PostgreSQL half never silently skips).
 *
 * Cases: schema created and versioned (and a newer one refused), append
 * and read back, a batch with one bad event writes nothing, history newest
 * first with a limit, deleting a user removes their events, items put /
 * get / hide, users, bad inputs and bad rows read back, reopening keeps
 * everything, and the dataset read from the store equals the one read
 * from the same CSV (and from ml-latest-small when it is there).
 */
#include "testutil.h"
#include "store_fixture.h"

#include "internal.h"
#include "store/store.h"

#include <libpq-fe.h>
#include <libgen.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SQLITE, PG };

typedef struct fixture {
  int backend;
  char *dir;
  char url[512];
} fixture;


/* ---- raw SQL on the store's database, for checks and for damage ------- */

static void raw_sql(const fixture *f, const char *q) {
  if (f->backend == SQLITE) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->url + 7, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK) fail_msg("sqlite: %s: %s", q, err);
    sqlite3_close(db);
  } else {
    PGconn *c = PQconnectdb(f->url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
      fail_msg("postgresql: %s: %s", q, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
  }
}

static long long raw_int(const fixture *f, const char *q) {
  long long v = -1;
  if (f->backend == SQLITE) {
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->url + 7, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
  } else {
    PGconn *c = PQconnectdb(f->url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, q);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
  }
  return v;
}

/* ---- fixtures ---------------------------------------------------------- */

static int setup(void **state, int backend) {
  fixture *f = calloc(1, sizeof *f);
  f->backend = backend;
  f->dir = tu_mkdtemp();
  tu_store_url(backend != SQLITE, f->dir, "cofi_test", f->url, sizeof f->url);
  *state = f;
  return 0;
}
static int setup_sqlite(void **state) { return setup(state, SQLITE); }
static int setup_pg(void **state) { return setup(state, PG); }

static int teardown(void **state) {
  fixture *f = *state;
  tu_rmdir(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static cofi_store *open_ok(const fixture *f) {
  cofi_store *s = NULL;
  cofi_diag d = {0};
  int rc = cofi_store_open(f->url, &s, &d);
  if (rc) fail_msg("open %s: %d %s", f->url, rc, d.message);
  return s;
}

#define S(lit) lit, sizeof(lit) - 1

static cofi_store_event ev(const char *u, const char *i, const char *e, double v, int64_t ts,
                           int has_ts) {
  cofi_store_event x = {0};
  x.user_id = u;
  x.user_len = strlen(u);
  x.item_id = i;
  x.item_len = strlen(i);
  x.event = e;
  x.event_len = e ? strlen(e) : 0;
  x.value = v;
  x.timestamp = ts;
  x.has_timestamp = has_ts;
  return x;
}

static void append_ok(cofi_store *s, const cofi_store_event *e, size_t n) {
  cofi_diag d = {0};
  int rc = cofi_store_append_events(s, e, n, &d);
  if (rc) fail_msg("append: %d %s", rc, d.message);
}

static void expect(int rc, int want, const cofi_diag *d, const char *what) {
  if (rc != want) fail_msg("expected code %d, got %d (%s)", want, rc, d->message);
  if (what && !strstr(d->message, what)) fail_msg("message '%s' lacks '%s'", d->message, what);
}

static cofi_store_counts counts(cofi_store *s) {
  cofi_store_counts c;
  cofi_diag d = {0};
  int rc = cofi_store_count(s, &c, &d);
  if (rc) fail_msg("count: %s", d.message);
  return c;
}

/* Events of a scan, copied. */
typedef struct scanned {
  size_t n;
  char user[64][32], item[64][32], event[64][32];
  bool typed[64], has_ts[64];
  double value[64];
  int64_t ts[64];
  uint64_t seq[64];
} scanned;

static int collect(const cofi_store_event *e, void *ctx) {
  scanned *sc = ctx;
  if (sc->n == 64) return 1;
  size_t k = sc->n++;
  snprintf(sc->user[k], 32, "%.*s", (int)e->user_len, e->user_id);
  snprintf(sc->item[k], 32, "%.*s", (int)e->item_len, e->item_id);
  sc->typed[k] = e->event != NULL;
  snprintf(sc->event[k], 32, "%.*s", (int)e->event_len, e->event ? e->event : "");
  sc->value[k] = e->value;
  sc->ts[k] = e->timestamp;
  sc->has_ts[k] = e->has_timestamp;
  sc->seq[k] = e->seq;
  return 0;
}

static void scan_ok(cofi_store *s, scanned *sc) {
  memset(sc, 0, sizeof *sc);
  cofi_diag d = {0};
  int rc = cofi_store_scan_events(s, collect, sc, &d);
  if (rc) fail_msg("scan: %d %s", rc, d.message);
}

/* ---- the cases --------------------------------------------------------- */

static void test_schema_versioned(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  assert_string_equal(cofi_store_backend(s), f->backend == SQLITE ? "sqlite" : "postgresql");
  cofi_store_close(s);
  assert_int_equal(raw_int(f, "SELECT max(version) FROM cofi_schema_version"),
                   COFI_STORE_SCHEMA_VERSION);
  /* one row per version applied, a new store going through each */
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_schema_version"),
                   COFI_STORE_SCHEMA_VERSION);
  s = open_ok(f); /* opening again applies nothing, and a new store was not "migrated" */
  assert_null(cofi_store_migration(s));
  cofi_store_close(s);
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_schema_version"),
                   COFI_STORE_SCHEMA_VERSION);
  /* A store written by a newer cofi is refused, not misread. */
  raw_sql(f, "INSERT INTO cofi_schema_version(version) VALUES (99)");
  cofi_diag d = {0};
  s = (cofi_store *)1;
  expect(cofi_store_open(f->url, &s, &d), COFI_ERR_VERSION, &d, "version 99");
  assert_null(s);
}

/* A store of schema version 1 as cofi wrote it before version 2 (the DDL
 * of that release, verbatim), with rows written as that version wrote
 * them: opening it migrates it once, keeps every event (seq, user, item,
 * type, value, time), and no seq is used twice afterwards. */
static void test_migrates_version_1(void **state) {
  fixture *f = *state;
  raw_sql(f, f->backend == SQLITE ? tu_store_v1_sqlite : tu_store_v1_pg);
  raw_sql(f, "INSERT INTO cofi_users(id) VALUES ('u1'), ('u2'), ('u3')");
  raw_sql(f, "INSERT INTO cofi_items(id, title) VALUES ('i1', 'One'), ('i2', NULL)");
  /* 40 events: typed (three types) and untyped, with and without a time */
  const char *types[4] = {"like", NULL, "watch", "complete"};
  for (int k = 0; k < 40; k++) {
    char q[300], type[32];
    if (types[k % 4]) snprintf(type, sizeof type, "'%s'", types[k % 4]);
    else snprintf(type, sizeof type, "NULL");
    snprintf(q, sizeof q,
             "INSERT INTO cofi_events(ukey, ikey, event, value, ts) VALUES "
             "(%d, %d, %s, %g, %s)",
             1 + k % 3, 1 + k % 2, type, 0.5 * k, k % 5 ? "1000 + 7 * 3" : "NULL");
    raw_sql(f, q);
  }
  /* the last two events deleted: their seqs (39, 40) must not come back */
  raw_sql(f, "DELETE FROM cofi_events WHERE seq > 38");
  cofi_store *s = open_ok(f);
  const char *note = cofi_store_migration(s);
  assert_non_null(note);
  assert_non_null(strstr(note, "migrated from version 1 to version 2 (38 events kept, 0 packed)"));
  scanned sc;
  scan_ok(s, &sc);
  assert_int_equal(sc.n, 38);
  for (size_t k = 0; k < 38; k++) {
    char u[8], i[8];
    snprintf(u, sizeof u, "u%zu", 1 + k % 3);
    snprintf(i, sizeof i, "i%zu", 1 + k % 2);
    assert_int_equal(sc.seq[k], k + 1);
    assert_string_equal(sc.user[k], u);
    assert_string_equal(sc.item[k], i);
    assert_int_equal(sc.typed[k], types[k % 4] != NULL);
    if (types[k % 4]) assert_string_equal(sc.event[k], types[k % 4]);
    assert_true(sc.value[k] == 0.5 * (double)k);
    assert_int_equal(sc.has_ts[k], k % 5 != 0);
    if (k % 5) assert_int_equal(sc.ts[k], 1021);
  }
  /* history reads the types by their codes */
  cofi_store_event *h;
  size_t n;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_history(s, S("u1"), 1, &h, &n, &d), COFI_OK);
  assert_int_equal(n, 1);
  assert_int_equal(h[0].seq, 37); /* newest time 1021, highest seq: event 36 (k = 36) */
  assert_string_equal(h[0].event, "like");
  cofi_store_events_free(h);
  /* a new event after the migration: a seq above every one used before */
  cofi_store_event e = ev("u9", "i1", "share", 1, 5, 1);
  append_ok(s, &e, 1);
  scan_ok(s, &sc);
  assert_int_equal(sc.n, 39);
  assert_true(sc.seq[38] > 40);
  assert_string_equal(sc.event[38], "share");
  cofi_store_close(s);
  assert_int_equal(raw_int(f, "SELECT max(version) FROM cofi_schema_version"), 2);
  s = open_ok(f); /* once */
  assert_null(cofi_store_migration(s));
  cofi_store_close(s);
}

static void test_append_read_back(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_store_event e[3] = {ev("u1", "i1", "like", 1, 100, 1), ev("u2", "i1", NULL, 2.5, 0, 0),
                           ev("u1", "PROD \"x\"", "watch", 0, -5, 1)};
  append_ok(s, e, 3);
  append_ok(s, &e[1], 1);
  scanned sc;
  scan_ok(s, &sc);
  assert_int_equal(sc.n, 4);
  const size_t want[4] = {0, 1, 2, 1};
  for (size_t k = 0; k < 4; k++) {
    const cofi_store_event *w = &e[want[k]];
    assert_string_equal(sc.user[k], w->user_id);
    assert_string_equal(sc.item[k], w->item_id);
    assert_int_equal(sc.typed[k], w->event != NULL);
    if (w->event) assert_string_equal(sc.event[k], w->event);
    assert_true(sc.value[k] == w->value);
    assert_int_equal(sc.has_ts[k], w->has_timestamp);
    if (w->has_timestamp) assert_int_equal(sc.ts[k], w->timestamp);
    if (k) assert_true(sc.seq[k] > sc.seq[k - 1]);
  }
  cofi_store_counts c = counts(s);
  assert_int_equal(c.users, 2);
  assert_int_equal(c.items, 2);
  assert_int_equal(c.events, 4);
  cofi_store_close(s);
}

static void test_batch_all_or_nothing(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  char longid[COFI_STORE_MAX_ID + 2];
  memset(longid, 'x', sizeof longid - 1);
  longid[sizeof longid - 1] = 0;
  struct {
    cofi_store_event bad;
    const char *what;
  } cases[] = {
      {ev("", "i", NULL, 1, 0, 0), "event 2: user_id: empty ID"},
      {ev("u", "", NULL, 1, 0, 0), "event 2: item_id: empty"},
      {ev("  ", "i", NULL, 1, 0, 0), "event 2: user_id: blank ID"},
      {ev(longid, "i", NULL, 1, 0, 0), "user_id: ID of 257 bytes, longer than 256"},
      {ev("u\xff", "i", NULL, 1, 0, 0), "not valid UTF-8"},
      {ev("u", "\xc0\xaf", NULL, 1, 0, 0), "item_id"},
      {ev("u", "i", "", 1, 0, 0), "event 2: event: empty event type"},
      {ev("u", "i", NULL, NAN, 0, 0), "value: nan is not a finite number"},
      {ev("u", "i", NULL, INFINITY, 0, 0), "not a finite number"},
      {ev("u", "i", NULL, -1, 0, 0), "value: -1 is negative"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    cofi_store_event batch[3] = {ev("a", "b", "watch", 1, 1, 1), ev("c", "d", NULL, 1, 0, 0),
                                 cases[k].bad};
    cofi_diag d = {0};
    expect(cofi_store_append_events(s, batch, 3, &d), COFI_ERR_INVALID, &d, cases[k].what);
  }
  /* An ID with a NUL byte inside its length. */
  cofi_store_event nul = ev("u", "i", NULL, 1, 0, 0);
  nul.user_id = "a\0b";
  nul.user_len = 3;
  cofi_diag d = {0};
  expect(cofi_store_append_events(s, &nul, 1, &d), COFI_ERR_INVALID, &d, "NUL");
  cofi_store_counts c = counts(s);
  assert_int_equal(c.events, 0);
  assert_int_equal(c.users, 0);
  assert_int_equal(c.items, 0);
  /* The check alone says the same. */
  expect(cofi_store_check_event(&cases[0].bad, &d), COFI_ERR_INVALID, &d, "user_id: empty");
  cofi_store_event good = ev("u", "i", "watch", 1, 0, 0);
  assert_int_equal(cofi_store_check_event(&good, &d), COFI_OK);
  expect(cofi_store_append_events(s, &good, 0, &d), COFI_ERR_INVALID, &d, "no events");
  cofi_store_close(s);
}

static void test_history(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_store_item it = {0};
  it.id = "i2";
  it.id_len = 2;
  it.title = "Two";
  it.title_len = 3;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_put_item(s, &it, &d), COFI_OK);
  cofi_store_event e[] = {ev("u", "i1", "watch", 1, 200, 1), ev("u", "i2", "like", 1, 300, 1),
                          ev("u", "i3", NULL, 1, 0, 0),       ev("u", "i4", "watch", 1, 200, 1),
                          ev("other", "i1", NULL, 1, 999, 1), ev("u", "i5", NULL, 2, 100, 1)};
  append_ok(s, e, 6);
  cofi_store_event *h = NULL;
  size_t n = 0;
  int rc = cofi_store_history(s, S("u"), 0, &h, &n, &d);
  if (rc) fail_msg("history: %s", d.message);
  /* Newest first; equal times by insertion, latest first; unknown time last. */
  const char *order[] = {"i2", "i4", "i1", "i5", "i3"};
  assert_int_equal(n, 5);
  for (size_t k = 0; k < n; k++) {
    assert_string_equal(h[k].item_id, order[k]);
    assert_string_equal(h[k].user_id, "u");
  }
  assert_non_null(h[0].title);
  assert_string_equal(h[0].title, "Two");
  assert_null(h[1].title);
  assert_string_equal(h[0].event, "like");
  assert_null(h[4].event);
  assert_int_equal(h[4].has_timestamp, 0);
  assert_int_equal(h[0].timestamp, 300);
  cofi_store_events_free(h);
  assert_int_equal(cofi_store_history(s, S("u"), 2, &h, &n, &d), COFI_OK);
  assert_int_equal(n, 2);
  assert_string_equal(h[1].item_id, "i4");
  cofi_store_events_free(h);
  expect(cofi_store_history(s, S("nobody"), 0, &h, &n, &d), COFI_ERR_NOT_FOUND, &d, "nobody");
  assert_null(h);
  /* A known user without events has an empty history. */
  cofi_store_user u = {"quiet", 5, NULL, 0};
  assert_int_equal(cofi_store_put_user(s, &u, &d), COFI_OK);
  assert_int_equal(cofi_store_history(s, S("quiet"), 0, &h, &n, &d), COFI_OK);
  assert_int_equal(n, 0);
  cofi_store_events_free(h);
  cofi_store_close(s);
}

/* cofi_store_user_items: the collected IDs, sorted, joined by ','. */
typedef struct item_ids {
  char ids[16][8];
  int n, stop_after;
} item_ids;

static int collect_id(const char *id, size_t len, void *ctx) {
  item_ids *c = ctx;
  assert_true(c->n < 16 && len < 8);
  memcpy(c->ids[c->n], id, len);
  c->ids[c->n][len] = 0;
  c->n++;
  return c->stop_after && c->n >= c->stop_after;
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static const char *joined_ids(item_ids *c, char *buf, size_t size) {
  qsort(c->ids, (size_t)c->n, sizeof c->ids[0], cmp_id);
  buf[0] = 0;
  for (int i = 0; i < c->n; i++) {
    if (i) strncat(buf, ",", size - strlen(buf) - 1);
    strncat(buf, c->ids[i], size - strlen(buf) - 1);
  }
  return buf;
}

static void test_user_items(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_diag d = {0};
  cofi_store_item hidden = {.id = "i3", .id_len = 2, .title = "Three", .title_len = 5, .hidden = 1};
  assert_int_equal(cofi_store_put_item(s, &hidden, &d), COFI_OK);
  /* Repeated items come back once; hidden items too; other users' not. */
  cofi_store_event e[] = {ev("u", "i1", "watch", 1, 200, 1), ev("u", "i2", "like", 1, 300, 1),
                          ev("u", "i1", NULL, 2, 0, 0),      ev("u", "i3", "watch", 1, 100, 1),
                          ev("other", "i4", NULL, 1, 9, 1),  ev("u", "i2", NULL, 1, 50, 1)};
  append_ok(s, e, 6);
  item_ids c = {0};
  char buf[128];
  int rc = cofi_store_user_items(s, S("u"), collect_id, &c, &d);
  if (rc) fail_msg("user_items: %s", d.message);
  assert_string_equal(joined_ids(&c, buf, sizeof buf), "i1,i2,i3");
  memset(&c, 0, sizeof c);
  assert_int_equal(cofi_store_user_items(s, S("other"), collect_id, &c, &d), COFI_OK);
  assert_string_equal(joined_ids(&c, buf, sizeof buf), "i4");
  /* A callback that stops: CANCELLED, and the store still reads after. */
  memset(&c, 0, sizeof c);
  c.stop_after = 1;
  assert_int_equal(cofi_store_user_items(s, S("u"), collect_id, &c, &d), COFI_ERR_CANCELLED);
  assert_int_equal(c.n, 1);
  memset(&c, 0, sizeof c);
  assert_int_equal(cofi_store_user_items(s, S("u"), collect_id, &c, &d), COFI_OK);
  assert_int_equal(c.n, 3);
  /* Unknown user; a known user without events calls nothing. */
  memset(&c, 0, sizeof c);
  expect(cofi_store_user_items(s, S("nobody"), collect_id, &c, &d), COFI_ERR_NOT_FOUND, &d,
         "no user 'nobody'");
  cofi_store_user u = {"quiet", 5, NULL, 0};
  assert_int_equal(cofi_store_put_user(s, &u, &d), COFI_OK);
  assert_int_equal(cofi_store_user_items(s, S("quiet"), collect_id, &c, &d), COFI_OK);
  assert_int_equal(c.n, 0);
  /* Bad arguments. */
  expect(cofi_store_user_items(s, S(""), collect_id, &c, &d), COFI_ERR_INVALID, &d, "user_id");
  expect(cofi_store_user_items(s, S("u"), NULL, &c, &d), COFI_ERR_INVALID, &d, "no callback");
  expect(cofi_store_user_items(NULL, S("u"), collect_id, &c, &d), COFI_ERR_INVALID, &d,
         "no store");
  /* After a user's deletion, their items are gone with them. */
  uint64_t n_del;
  assert_int_equal(cofi_store_delete_user(s, S("other"), &n_del, &d), COFI_OK);
  expect(cofi_store_user_items(s, S("other"), collect_id, &c, &d), COFI_ERR_NOT_FOUND, &d,
         "other");
  cofi_store_close(s);
  /* An item row written behind the library's back with a blank ID. */
  raw_sql(f, "UPDATE cofi_items SET id = '  ' WHERE id = 'i2'");
  s = open_ok(f);
  memset(&c, 0, sizeof c);
  expect(cofi_store_user_items(s, S("u"), collect_id, &c, &d), COFI_ERR_CORRUPT, &d,
         "table cofi_items, row 3: id: blank ID");
  cofi_store_close(s);
}

static void test_delete_user(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_store_event e[] = {ev("gone", "i1", NULL, 1, 1, 1), ev("stays", "i1", NULL, 1, 2, 1),
                          ev("gone", "i2", "like", 1, 3, 1)};
  append_ok(s, e, 3);
  cofi_diag d = {0};
  uint64_t n = 99;
  assert_int_equal(cofi_store_delete_user(s, S("gone"), &n, &d), COFI_OK);
  assert_int_equal(n, 2);
  scanned sc;
  scan_ok(s, &sc);
  assert_int_equal(sc.n, 1);
  assert_string_equal(sc.user[0], "stays");
  cofi_store_event *h = NULL;
  size_t hn;
  expect(cofi_store_history(s, S("gone"), 0, &h, &hn, &d), COFI_ERR_NOT_FOUND, &d, "gone");
  expect(cofi_store_delete_user(s, S("gone"), &n, &d), COFI_ERR_NOT_FOUND, &d, "no user 'gone'");
  cofi_store_counts c = counts(s);
  assert_int_equal(c.users, 1);
  assert_int_equal(c.items, 2); /* items and their other events stay */
  assert_int_equal(c.events, 1);
  cofi_store_close(s);
}

static void test_items(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_diag d = {0};
  cofi_store_item it = {0};
  it.id = "film-1";
  it.id_len = 6;
  it.title = "Ébène (2026)";
  it.title_len = strlen(it.title);
  it.categories = "[\"Drama\", \"Comedy\"]";
  it.categories_len = strlen(it.categories);
  it.has_timestamp = 1;
  it.timestamp = 1767225600;
  it.fields = "{\"year\": 2026, \"director\": \"A \\\"B\\\"\"}";
  it.fields_len = strlen(it.fields);
  assert_int_equal(cofi_store_put_item(s, &it, &d), COFI_OK);
  cofi_store_item *got = NULL;
  assert_int_equal(cofi_store_get_item(s, S("film-1"), &got, &d), COFI_OK);
  assert_string_equal(got->id, "film-1");
  assert_string_equal(got->title, it.title);
  assert_string_equal(got->categories, it.categories);
  assert_string_equal(got->fields, it.fields);
  assert_int_equal(got->hidden, 0);
  assert_int_equal(got->has_timestamp, 1);
  assert_int_equal(got->timestamp, 1767225600);
  cofi_store_item_free(got);
  /* put replaces every attribute. */
  cofi_store_item bare = {0};
  bare.id = "film-1";
  bare.id_len = 6;
  assert_int_equal(cofi_store_put_item(s, &bare, &d), COFI_OK);
  assert_int_equal(cofi_store_get_item(s, S("film-1"), &got, &d), COFI_OK);
  assert_null(got->title);
  assert_string_equal(got->categories, "[]");
  assert_string_equal(got->fields, "{}");
  assert_int_equal(got->has_timestamp, 0);
  cofi_store_item_free(got);
  /* hide and show */
  assert_int_equal(cofi_store_hide_item(s, S("film-1"), 1, &d), COFI_OK);
  assert_int_equal(cofi_store_get_item(s, S("film-1"), &got, &d), COFI_OK);
  assert_int_equal(got->hidden, 1);
  cofi_store_item_free(got);
  assert_int_equal(counts(s).hidden_items, 1);
  assert_int_equal(cofi_store_hide_item(s, S("film-1"), 0, &d), COFI_OK);
  assert_int_equal(counts(s).hidden_items, 0);
  expect(cofi_store_hide_item(s, S("nope"), 1, &d), COFI_ERR_NOT_FOUND, &d, "no item 'nope'");
  expect(cofi_store_get_item(s, S("nope"), &got, &d), COFI_ERR_NOT_FOUND, &d, "nope");
  assert_null(got);
  /* An item first seen in an event exists, without a title. */
  cofi_store_event e = ev("u", "from-event", NULL, 1, 0, 0);
  append_ok(s, &e, 1);
  assert_int_equal(cofi_store_get_item(s, S("from-event"), &got, &d), COFI_OK);
  assert_null(got->title);
  cofi_store_item_free(got);
  /* Bad attributes, nothing written. */
  struct {
    const char *cat, *fields, *title, *what;
  } bad[] = {
      {"[1, 2]", NULL, NULL, "categories: is not an array of strings"},
      {"[\"a\",]", NULL, NULL, "categories"},
      {"\"Drama\"", NULL, NULL, "categories: is not a JSON array"},
      {NULL, "[]", NULL, "fields: is not a JSON object"},
      {NULL, "{\"a\": NaN}", NULL, "fields"},
      {NULL, "{\"a\": 1} x", NULL, "text after"},
      {NULL, "{\"a\": \"\\ud800\"}", NULL, "surrogate"},
      {NULL, NULL, "bad \xe2\x28\xa1", "title: is not valid UTF-8"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    cofi_store_item b = {0};
    b.id = "bad";
    b.id_len = 3;
    b.categories = bad[k].cat;
    b.categories_len = bad[k].cat ? strlen(bad[k].cat) : 0;
    b.fields = bad[k].fields;
    b.fields_len = bad[k].fields ? strlen(bad[k].fields) : 0;
    b.title = bad[k].title;
    b.title_len = bad[k].title ? strlen(bad[k].title) : 0;
    expect(cofi_store_put_item(s, &b, &d), COFI_ERR_INVALID, &d, bad[k].what);
  }
  expect(cofi_store_get_item(s, S("bad"), &got, &d), COFI_ERR_NOT_FOUND, &d, NULL);
  cofi_store_close(s);
}

static void test_users(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_diag d = {0};
  cofi_store_user u = {"ann", 3, "[\"vip\",\"beta\"]", 14};
  assert_int_equal(cofi_store_put_user(s, &u, &d), COFI_OK);
  cofi_store_user *got = NULL;
  assert_int_equal(cofi_store_get_user(s, S("ann"), &got, &d), COFI_OK);
  assert_string_equal(got->id, "ann");
  assert_string_equal(got->labels, "[\"vip\",\"beta\"]");
  cofi_store_user_free(got);
  cofi_store_user v = {"ann", 3, NULL, 0};
  assert_int_equal(cofi_store_put_user(s, &v, &d), COFI_OK);
  assert_int_equal(cofi_store_get_user(s, S("ann"), &got, &d), COFI_OK);
  assert_string_equal(got->labels, "[]");
  cofi_store_user_free(got);
  cofi_store_user bad = {"bob", 3, "{}", 2};
  expect(cofi_store_put_user(s, &bad, &d), COFI_ERR_INVALID, &d, "labels");
  expect(cofi_store_get_user(s, S("bob"), &got, &d), COFI_ERR_NOT_FOUND, &d, "no user 'bob'");
  assert_int_equal(counts(s).users, 1);
  cofi_store_close(s);
}

static void test_bad_open(void **state) {
  fixture *f = *state;
  cofi_diag d = {0};
  cofi_store *s = (cofi_store *)1;
  expect(cofi_store_open("mysql://localhost/x", &s, &d), COFI_ERR_INVALID, &d,
         "unknown store URL 'mysql://localhost/x'");
  assert_null(s);
  expect(cofi_store_open("sqlite:", &s, &d), COFI_ERR_INVALID, &d, "no file");
  expect(cofi_store_open("", &s, &d), COFI_ERR_INVALID, &d, "no store URL");
  char path[600];
  snprintf(path, sizeof path, "sqlite:%s/no/such/dir/x.db", f->dir);
  expect(cofi_store_open(path, &s, &d), COFI_ERR_STORE, &d, "sqlite");
  /* Not a database at all. */
  char *junk = tu_write_file(f->dir, "junk.db", S("this is not a database, just some text!!!!"
                                                  "padding padding padding padding padding"));
  snprintf(path, sizeof path, "sqlite:%s", junk);
  int rc = cofi_store_open(path, &s, &d);
  assert_true(rc == COFI_ERR_CORRUPT || rc == COFI_ERR_STORE);
  assert_non_null(strstr(d.message, "not a database"));
  free(junk);
  /* Nothing listens on port 1; the password is not echoed. */
  expect(cofi_store_open("postgresql://me:secret@127.0.0.1:1/x?connect_timeout=3", &s, &d),
         COFI_ERR_STORE, &d, "cannot connect");
  assert_null(strstr(d.message, "secret"));
  assert_null(strstr(d.file, "secret"));
  assert_null(s);
  assert_int_equal(cofi_store_append_events(NULL, NULL, 0, &d), COFI_ERR_INVALID);
  cofi_store_close(NULL);
}

static void test_bad_rows_read_back(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_store_event e = ev("u", "i", NULL, 1, 0, 0);
  append_ok(s, &e, 1);
  cofi_store_close(s);
  /* A row written behind the library's back with an empty event type. */
  raw_sql(f, "INSERT INTO cofi_event_types(name) VALUES ('')");
  raw_sql(f, "INSERT INTO cofi_events(ukey, ikey, event, value) "
             "SELECT ukey, ikey, (SELECT code FROM cofi_event_types WHERE name = ''), 1 "
             "FROM cofi_users, cofi_items");
  s = open_ok(f);
  scanned sc = {0};
  cofi_diag d = {0};
  expect(cofi_store_scan_events(s, collect, &sc, &d), COFI_ERR_CORRUPT, &d,
         "table cofi_events, row 2: event: empty event type");
  cofi_dataset *ds = (cofi_dataset *)1;
  expect(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_ERR_CORRUPT, &d, "row 2");
  assert_null(ds);
  cofi_store_event *h;
  size_t n;
  expect(cofi_store_history(s, S("u"), 0, &h, &n, &d), COFI_ERR_CORRUPT, &d, "event: empty");
  cofi_store_close(s);
  raw_sql(f, "DELETE FROM cofi_events WHERE event = "
             "(SELECT code FROM cofi_event_types WHERE name = '')");
  /* An event code without its type (neither back end makes it a foreign
   * key: a lookup per append). */
  raw_sql(f, "UPDATE cofi_events SET event = 99");
  s = open_ok(f);
  expect(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_ERR_CORRUPT, &d,
         "table cofi_events, row 1: event code 99 has no row in cofi_event_types");
  expect(cofi_store_history(s, S("u"), 0, &h, &n, &d), COFI_ERR_CORRUPT, &d,
         "table cofi_events, row 1: event code 99 has no row in cofi_event_types");
  cofi_store_close(s);
  raw_sql(f, "UPDATE cofi_events SET event = NULL");
  /* A blank user ID. */
  raw_sql(f, "INSERT INTO cofi_users(id) VALUES ('   ')");
  s = open_ok(f);
  memset(&sc, 0, sizeof sc);
  expect(cofi_store_scan_events(s, collect, &sc, &d), COFI_ERR_CORRUPT, &d,
         "table cofi_users, row 2: id: blank ID");
  cofi_store_close(s);
  if (f->backend == SQLITE) { /* bytes that are not UTF-8, a dangling key */
    raw_sql(f, "DELETE FROM cofi_users WHERE id = '   '");
    raw_sql(f, "UPDATE cofi_items SET id = CAST(X'ff41' AS TEXT)");
    s = open_ok(f);
    expect(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_ERR_CORRUPT, &d,
           "not valid UTF-8");
    cofi_store_close(s);
    raw_sql(f, "UPDATE cofi_items SET id = 'i'; UPDATE cofi_events SET ukey = 77");
    s = open_ok(f);
    expect(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_ERR_CORRUPT, &d,
           "user key 77 has no row in cofi_users");
    cofi_store_close(s);
  }
}

static void test_reopen_persists(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_store_event e[] = {ev("u1", "i1", "like", 1, 5, 1), ev("u2", "i2", NULL, 3, 0, 0)};
  append_ok(s, e, 2);
  cofi_store_user u = {"u1", 2, "[\"x\"]", 5};
  cofi_diag d = {0};
  assert_int_equal(cofi_store_put_user(s, &u, &d), COFI_OK);
  cofi_store_close(s);
  s = open_ok(f);
  scanned sc;
  scan_ok(s, &sc);
  assert_int_equal(sc.n, 2);
  assert_string_equal(sc.user[1], "u2");
  assert_true(sc.value[1] == 3);
  cofi_store_user *got;
  assert_int_equal(cofi_store_get_user(s, S("u1"), &got, &d), COFI_OK);
  assert_string_equal(got->labels, "[\"x\"]");
  cofi_store_user_free(got);
  /* New events after a reopen continue the sequence. */
  append_ok(s, e, 1);
  uint64_t last = sc.seq[1];
  scan_ok(s, &sc);
  assert_int_equal(sc.n, 3);
  assert_true(sc.seq[2] > last);
  cofi_store_close(s);
}

/* Two datasets hold the same rows, IDs in the same order, and metadata. */
static void assert_same_dataset(const cofi_dataset *a, const cofi_dataset *b) {
  assert_int_equal(a->n, b->n);
  assert_int_equal(a->users.n, b->users.n);
  assert_int_equal(a->items.n, b->items.n);
  assert_int_equal(a->has_time, b->has_time);
  for (uint32_t k = 0; k < a->users.n; k++) {
    size_t la, lb;
    const char *x = cofi__idmap_get(&a->users, k, &la), *y = cofi__idmap_get(&b->users, k, &lb);
    assert_true(la == lb && !memcmp(x, y, la));
  }
  for (uint32_t k = 0; k < a->items.n; k++) {
    size_t la, lb;
    const char *x = cofi__idmap_get(&a->items, k, &la), *y = cofi__idmap_get(&b->items, k, &lb);
    assert_true(la == lb && !memcmp(x, y, la));
  }
  for (size_t r = 0; r < a->n; r++) {
    if (a->user[r] != b->user[r] || a->item[r] != b->item[r] || a->value[r] != b->value[r] ||
        a->time[r] != b->time[r])
      fail_msg("row %zu differs: (%u %u %g %lld) vs (%u %u %g %lld)", r, a->user[r], a->item[r],
               (double)a->value[r], (long long)a->time[r], b->user[r], b->item[r],
               (double)b->value[r], (long long)b->time[r]);
  }
  assert_int_equal(a->meta.n_fields, b->meta.n_fields);
  assert_int_equal(a->meta.names.n, b->meta.names.n);
  assert_int_equal(a->meta.cells.n, b->meta.cells.n);
  for (size_t k = 0; k < a->meta.names.n; k++) {
    size_t la, lb;
    const char *x = cofi__strtab_get(&a->meta.names, k, &la);
    const char *y = cofi__strtab_get(&b->meta.names, k, &lb);
    assert_true(la == lb && !memcmp(x, y, la));
  }
  for (size_t k = 0; k < a->meta.cells.n; k++) {
    size_t la, lb;
    const char *x = cofi__strtab_get(&a->meta.cells, k, &la);
    const char *y = cofi__strtab_get(&b->meta.cells, k, &lb);
    if (la != lb || memcmp(x, y, la)) fail_msg("cell %zu: '%.*s' vs '%.*s'", k, (int)la, x, (int)lb, y);
  }
}

static void import_and_compare(fixture *f, const char *data, const char *items,
                               const cofi_read_options *o) {
  cofi_diag d = {0};
  cofi_dataset *csv = NULL, *back = NULL;
  int rc = cofi_dataset_read(data, o, &csv, &d);
  if (rc) fail_msg("read %s: %s", data, d.message);
  if (items && (rc = cofi_dataset_read_items(csv, items, NULL, &d))) fail_msg("%s", d.message);
  cofi_store *s = open_ok(f);
  uint64_t n = 0;
  if ((rc = cofi_store_import_dataset(s, csv, &n, &d))) fail_msg("import: %s", d.message);
  assert_int_equal(n, csv->n);
  cofi_store_close(s);
  s = open_ok(f);
  if ((rc = cofi_store_read_dataset(s, NULL, &back, &d))) fail_msg("read back: %s", d.message);
  assert_same_dataset(csv, back);
  cofi_dataset_free(back);
  cofi_store_close(s);
  cofi_dataset_free(csv);
}

static void test_dataset_equals_csv(void **state) {
  fixture *f = *state;
  char *log = tu_write_file(f->dir, "log.csv",
                            S("user_id,item_id,event,timestamp\n"
                              "u2,PROD_A,watch,100\n"
                              "u1,42,like,200\n"
                              "u2,42,complete,300\n"
                              "\"u,3\",PROD_A,like,400\n"
                              "u2,PROD_A,like,2026-01-02T03:04:05Z\n"));
  char *items = tu_write_file(f->dir, "items.csv",
                              S("item_id,title,genres,year\n"
                                "42,\"The Answer, \"\"Part\"\" 1\",Sci-Fi|Comedy,1979\n"
                                "PROD_A,A product,,\n"
                                "unused,Never seen,Drama,2000\n"));
  cofi_read_options o = cofi_read_options_default();
  o.has_min_value = 1;
  o.min_value = 2; /* drops the watch */
  import_and_compare(f, log, items, &o);
  /* The categories came from the genres column. */
  cofi_store *s = open_ok(f);
  cofi_store_item *it;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_get_item(s, S("42"), &it, &d), COFI_OK);
  assert_string_equal(it->categories, "[\"Sci-Fi\",\"Comedy\"]");
  assert_string_equal(it->fields, "{\"genres\":\"Sci-Fi|Comedy\",\"year\":\"1979\"}");
  cofi_store_item_free(it);
  /* Typed events added through the API are weighted when read. */
  cofi_store_event e[] = {ev("u9", "42", "complete", 2, 500, 1), ev("u9", "zz", NULL, 0.5, 600, 1)};
  append_ok(s, e, 2);
  cofi_dataset *ds = NULL;
  assert_int_equal(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_OK);
  assert_int_equal(ds->n, 6);
  assert_true(ds->value[4] == 6.0f);
  assert_true(ds->value[5] == 0.5f);
  cofi_dataset_free(ds);
  cofi_event_weight w[] = {{"complete", 0.25f}};
  cofi_read_options ow = cofi_read_options_default();
  ow.event_weights = w;
  ow.n_event_weights = 1;
  ow.has_min_value = 1;
  ow.min_value = 0.6;
  assert_int_equal(cofi_store_read_dataset(s, &ow, &ds, &d), COFI_OK);
  assert_int_equal(ds->n, 4); /* 2 x 0.25 and the 0.5 are dropped */
  cofi_dataset_free(ds);
  cofi_event_weight other[] = {{"watch", 1}};
  ow.event_weights = other;
  ds = (cofi_dataset *)1;
  expect(cofi_store_read_dataset(s, &ow, &ds, &d), COFI_ERR_INVALID, &d,
         "event type 'complete' has no weight");
  assert_null(ds);
  ow = cofi_read_options_default();
  ow.has_min_value = 1;
  ow.min_value = 1000;
  expect(cofi_store_read_dataset(s, &ow, &ds, &d), COFI_ERR_EMPTY, &d, "none of the 6 events");
  cofi_store_close(s);
  free(log);
  free(items);
}

/* The parallel training scan (two connections, two halves) gives the same
 * dataset as one scan; a gap in seq (a deleted user) is fine. */
static void test_parallel_scan(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  enum { N = 3000 };
  static cofi_store_event e[N];
  static char ids[N][2][16];
  for (int k = 0; k < N; k++) {
    snprintf(ids[k][0], 16, "u%d", (k * 7) % 101);
    snprintf(ids[k][1], 16, "i%d", (k * 13) % 257);
    e[k] = ev(ids[k][0], ids[k][1], k % 3 ? "like" : NULL, k % 5, k, k % 11 != 0);
  }
  append_ok(s, e, N);
  cofi_diag d = {0};
  assert_int_equal(cofi_store_delete_user(s, S("u3"), NULL, &d), COFI_OK);
  cofi_read_options o = cofi_read_options_default();
  o.has_min_value = 1;
  o.min_value = 1;
  cofi_dataset *one = NULL, *two = NULL;
  uint64_t saved = cofi__store_parallel_min;
  cofi__store_parallel_min = UINT64_MAX;
  assert_int_equal(cofi_store_read_dataset(s, &o, &one, &d), COFI_OK);
  cofi__store_parallel_min = 10;
  uint64_t before = cofi__store_parallel_scans;
  int rc = cofi_store_read_dataset(s, &o, &two, &d);
  cofi__store_parallel_min = saved;
  if (rc) fail_msg("parallel read: %s", d.message);
  /* SQLite reads in two halves; PostgreSQL has no second reader (yet). */
  assert_int_equal(cofi__store_parallel_scans - before, f->backend == SQLITE ? 1 : 0);
  assert_false(one->has_time);
  assert_same_dataset(one, two);
  cofi_dataset_free(one);
  cofi_dataset_free(two);
  cofi_store_close(s);
}

/* Every allocation of the library failing in turn: each call returns
 * COFI_OK or COFI_ERR_NOMEM with a message, a failed write writes nothing,
 * and nothing leaks (the sanitizer build checks). */
typedef int (*oom_call)(cofi_store *s, cofi_diag *d);

static int oom_append(cofi_store *s, cofi_diag *d) {
  cofi_store_event e[] = {ev("m1", "i1", "like", 1, 7, 1), ev("m2", "new-item", NULL, 2, 0, 0)};
  return cofi_store_append_events(s, e, 2, d);
}
static int oom_history(cofi_store *s, cofi_diag *d) {
  cofi_store_event *h = NULL;
  size_t n;
  int rc = cofi_store_history(s, S("u1"), 0, &h, &n, d);
  cofi_store_events_free(h);
  return rc;
}
static int oom_get_item(cofi_store *s, cofi_diag *d) {
  cofi_store_item *it = NULL;
  int rc = cofi_store_get_item(s, S("42"), &it, d);
  cofi_store_item_free(it);
  return rc;
}
static int oom_get_user(cofi_store *s, cofi_diag *d) {
  cofi_store_user *u = NULL;
  int rc = cofi_store_get_user(s, S("u1"), &u, d);
  cofi_store_user_free(u);
  return rc;
}
static int oom_read(cofi_store *s, cofi_diag *d) {
  cofi_dataset *ds = NULL;
  int rc = cofi_store_read_dataset(s, NULL, &ds, d);
  cofi_dataset_free(ds);
  return rc;
}
static int oom_scan(cofi_store *s, cofi_diag *d) {
  scanned sc = {0};
  return cofi_store_scan_events(s, collect, &sc, d);
}
static cofi_dataset *oom_ds;
static int oom_import(cofi_store *s, cofi_diag *d) {
  return cofi_store_import_dataset(s, oom_ds, NULL, d);
}

static void test_out_of_memory(void **state) {
  fixture *f = *state;
  char *log = tu_write_file(f->dir, "log.csv", S("user_id,item_id,value\nu1,42,1\nu2,7,2\n"));
  char *items = tu_write_file(f->dir, "items.csv", S("item_id,title,genres\n42,Answer,A|B\n"));
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(log, NULL, &oom_ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_read_items(oom_ds, items, NULL, &d), COFI_OK);
  cofi_store *s = open_ok(f);
  assert_int_equal(cofi_store_import_dataset(s, oom_ds, NULL, &d), COFI_OK);
  cofi_store_user u = {"u1", 2, "[\"a\"]", 5};
  assert_int_equal(cofi_store_put_user(s, &u, &d), COFI_OK);
  const struct {
    const char *name;
    oom_call call;
    bool writes;
  } calls[] = {{"append", oom_append, true},   {"history", oom_history, false},
               {"get_item", oom_get_item, false}, {"get_user", oom_get_user, false},
               {"read_dataset", oom_read, false}, {"scan", oom_scan, false},
               {"import", oom_import, true}};
  uint64_t saved = cofi__store_parallel_min;
  cofi__store_parallel_min = 2; /* the parallel read too, on SQLite */
  for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
    for (uint64_t n = 1;; n++) {
      cofi_store_counts before = counts(s);
      memset(&d, 0, sizeof d);
      cofi__alloc_fail_after(n);
      int rc = calls[c].call(s, &d);
      cofi__alloc_fail_after(0);
      if (rc != COFI_OK && rc != COFI_ERR_NOMEM)
        fail_msg("%s: allocation %llu failing gave %d (%s)", calls[c].name,
                 (unsigned long long)n, rc, d.message);
      if (rc == COFI_OK) {
        if (n == 1) fail_msg("%s: no allocation failure reached it", calls[c].name);
        break;
      }
      if (!d.message[0]) fail_msg("%s: NOMEM without a message", calls[c].name);
      if (calls[c].writes) {
        cofi_store_counts after = counts(s);
        assert_int_equal(after.events, before.events);
        assert_int_equal(after.users, before.users);
        assert_int_equal(after.items, before.items);
      }
      if (n > 10000) fail_msg("%s: still failing after %llu", calls[c].name, (unsigned long long)n);
    }
  }
  cofi__store_parallel_min = saved;
  cofi_store_close(s);
  cofi_dataset_free(oom_ds);
  oom_ds = NULL;
  free(log);
  free(items);
}

/* ---- the append path: distinct keys, key cache, multi-row key inserts -- */

/* Events of a scan compared, in seq order, with the events appended. */
typedef struct expected {
  const cofi_store_event *e;
  size_t n, at;
} expected;

static int compare_next(const cofi_store_event *got, void *ctx) {
  expected *x = ctx;
  if (x->at >= x->n) fail_msg("more events read back than the %zu appended", x->n);
  const cofi_store_event *w = &x->e[x->at++];
  if (got->user_len != w->user_len || memcmp(got->user_id, w->user_id, w->user_len) ||
      got->item_len != w->item_len || memcmp(got->item_id, w->item_id, w->item_len))
    fail_msg("event %zu: read back %.*s/%.*s, appended %s/%s", x->at - 1, (int)got->user_len,
             got->user_id, (int)got->item_len, got->item_id, w->user_id, w->item_id);
  assert_int_equal(got->event != NULL, w->event != NULL);
  if (w->event) assert_memory_equal(got->event, w->event, w->event_len);
  assert_true(got->value == w->value);
  assert_int_equal(got->has_timestamp, w->has_timestamp);
  if (w->has_timestamp) assert_int_equal(got->timestamp, w->timestamp);
  return 0;
}

static long long dangling(const fixture *f) {
  return raw_int(f, "SELECT count(*) FROM cofi_events e WHERE NOT EXISTS "
                    "(SELECT 1 FROM cofi_users u WHERE u.ukey = e.ukey) OR NOT EXISTS "
                    "(SELECT 1 FROM cofi_items i WHERE i.ikey = e.ikey)");
}

/* Property: batches of any size, with users and items repeated inside a
 * batch, known from earlier batches or new (more than 64 new at once: the
 * multi-row key inserts), read back exactly as appended one by one would
 * be: same events in the same order, one key per distinct ID. */
static void test_append_batches_like_one_by_one(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  enum { N = 1500 };
  static char uid[N][16], iid[N][16];
  static cofi_store_event e[N];
  uint64_t r = 0x9e3779b97f4a7c15ull;
  for (size_t k = 0; k < N; k++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    /* IDs drawn from pools that grow with k: early batches create most,
     * later ones mostly reuse */
    snprintf(uid[k], sizeof uid[k], "u%llu", (unsigned long long)((r >> 33) % (50 + k / 3)));
    snprintf(iid[k], sizeof iid[k], "i%llu", (unsigned long long)((r >> 17) % (20 + k / 5)));
    e[k] = ev(uid[k], iid[k], (r >> 5) % 3 ? "like" : NULL, (double)((r >> 40) % 7),
              (int64_t)(r >> 44), (r >> 9) % 2);
  }
  size_t sizes[] = {1, 2, 300, 7, 64, 65, 129, 1, 500, 3, 428};
  size_t at = 0;
  for (size_t b = 0; at < N; b++) {
    size_t m = sizes[b % (sizeof sizes / sizeof sizes[0])];
    if (m > N - at) m = N - at;
    append_ok(s, e + at, m);
    at += m;
  }
  expected x = {e, N, 0};
  cofi_diag d = {0};
  int rc = cofi_store_scan_events(s, compare_next, &x, &d);
  if (rc) fail_msg("scan: %d %s", rc, d.message);
  assert_int_equal(x.at, N);
  /* as many users and items as distinct IDs, every event's keys exist */
  cofi__idmap users, items;
  cofi__idmap_init(&users);
  cofi__idmap_init(&items);
  for (size_t k = 0; k < N; k++) {
    uint32_t idx;
    assert_int_equal(cofi__idmap_intern(&users, uid[k], strlen(uid[k]), &idx, NULL), 0);
    assert_int_equal(cofi__idmap_intern(&items, iid[k], strlen(iid[k]), &idx, NULL), 0);
  }
  cofi_store_counts c = counts(s);
  assert_int_equal(c.users, users.n);
  assert_int_equal(c.items, items.n);
  assert_int_equal(c.events, N);
  cofi__idmap_free(&users);
  cofi__idmap_free(&items);
  cofi_store_close(s);
  assert_int_equal(dangling(f), 0);
}

/* A connection's cached keys never outlive their rows: a user deleted by
 * another connection or by this one, or created by a transaction that was
 * rolled back, is created again by the next event, never referred to by a
 * stale key. */
static void test_append_keys_stay_valid(void **state) {
  fixture *f = *state;
  cofi_store *a = open_ok(f), *b = open_ok(f);
  cofi_store_event e1 = ev("u1", "i1", NULL, 1, 0, 0), e2 = ev("u1", "i2", NULL, 1, 0, 0);
  append_ok(a, &e1, 1);
  uint64_t n = 0;
  cofi_diag d = {0};
  if (cofi_store_delete_user(b, S("u1"), &n, &d)) fail_msg("delete: %s", d.message);
  assert_int_equal(n, 1);
  append_ok(a, &e2, 1); /* another connection deleted u1 */
  assert_int_equal(dangling(f), 0);
  cofi_store_event *h = NULL;
  size_t nh = 0;
  if (cofi_store_history(a, S("u1"), 0, &h, &nh, &d)) fail_msg("history: %s", d.message);
  assert_int_equal(nh, 1);
  assert_string_equal(h[0].item_id, "i2");
  cofi_store_events_free(h);
  /* deleted by the same connection */
  if (cofi_store_delete_user(a, S("u1"), &n, &d)) fail_msg("delete: %s", d.message);
  append_ok(a, &e1, 1);
  assert_int_equal(dangling(f), 0);
  /* created by a transaction rolled back: events of value 7 are refused by
   * the database itself here */
  if (f->backend == SQLITE)
    raw_sql(f, "CREATE TRIGGER no7 BEFORE INSERT ON cofi_events WHEN NEW.value = 7 "
               "BEGIN SELECT RAISE(ABORT, 'no 7'); END");
  else
    raw_sql(f, "ALTER TABLE cofi_events ADD CONSTRAINT no7 CHECK (value <> 7)");
  cofi_store_event bad[2] = {ev("new", "inew", NULL, 1, 0, 0), ev("new", "inew", NULL, 7, 0, 0)};
  memset(&d, 0, sizeof d);
  expect(cofi_store_append_events(a, bad, 2, &d), COFI_ERR_STORE, &d, NULL);
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_users WHERE id = 'new'"), 0);
  append_ok(a, bad, 1);
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_users WHERE id = 'new'"), 1);
  assert_int_equal(dangling(f), 0);
  cofi_store_close(a);
  cofi_store_close(b);
}

static void test_empty_store(void **state) {
  fixture *f = *state;
  cofi_store *s = open_ok(f);
  cofi_dataset *ds = (cofi_dataset *)1;
  cofi_diag d = {0};
  expect(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_ERR_EMPTY, &d, "no events");
  assert_null(ds);
  cofi_store_close(s);
}

static void test_movielens_equals_csv(void **state) {
  fixture *f = *state;
  char *ratings = tu_shared_data("ml-latest-small/ratings.csv");
  char *movies = tu_shared_data("ml-latest-small/movies.csv");
  if (!ratings || !movies) {
    free(ratings);
    free(movies);
    skip();
  }
  cofi_read_options o = cofi_read_options_default();
  o.format = COFI_FORMAT_MOVIELENS;
  o.has_min_value = 1;
  o.min_value = 4;
  import_and_compare(f, ratings, movies, &o);
  cofi_store *s = open_ok(f);
  cofi_store_counts c = counts(s);
  assert_int_equal(c.events, 48580);
  if (f->backend == PG) /* the foreign keys are back after the bulk load */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM pg_constraint WHERE conname IN "
                                "('cofi_events_user_fk', 'cofi_events_item_fk')"), 2);
  cofi_store_close(s);
  free(ratings);
  free(movies);
}

#define CASES(setup_fn)                                                                     \
  {                                                                                         \
    cmocka_unit_test_setup_teardown(test_schema_versioned, setup_fn, teardown),             \
    cmocka_unit_test_setup_teardown(test_migrates_version_1, setup_fn, teardown),           \
    cmocka_unit_test_setup_teardown(test_append_read_back, setup_fn, teardown),             \
    cmocka_unit_test_setup_teardown(test_append_batches_like_one_by_one, setup_fn, teardown), \
    cmocka_unit_test_setup_teardown(test_append_keys_stay_valid, setup_fn, teardown),       \
    cmocka_unit_test_setup_teardown(test_batch_all_or_nothing, setup_fn, teardown),         \
    cmocka_unit_test_setup_teardown(test_history, setup_fn, teardown),                      \
    cmocka_unit_test_setup_teardown(test_user_items, setup_fn, teardown),                   \
    cmocka_unit_test_setup_teardown(test_delete_user, setup_fn, teardown),                  \
    cmocka_unit_test_setup_teardown(test_items, setup_fn, teardown),                        \
    cmocka_unit_test_setup_teardown(test_users, setup_fn, teardown),                        \
    cmocka_unit_test_setup_teardown(test_bad_open, setup_fn, teardown),                     \
    cmocka_unit_test_setup_teardown(test_bad_rows_read_back, setup_fn, teardown),           \
    cmocka_unit_test_setup_teardown(test_reopen_persists, setup_fn, teardown),              \
    cmocka_unit_test_setup_teardown(test_dataset_equals_csv, setup_fn, teardown),           \
    cmocka_unit_test_setup_teardown(test_empty_store, setup_fn, teardown),                  \
    cmocka_unit_test_setup_teardown(test_parallel_scan, setup_fn, teardown),                \
    cmocka_unit_test_setup_teardown(test_out_of_memory, setup_fn, teardown),                \
    cmocka_unit_test_setup_teardown(test_movielens_equals_csv, setup_fn, teardown),         \
  }

int main(int argc, char **argv) {
  /* Without a server URL, run again under the wrapper that starts one. */
  if (!getenv("COFI_TEST_PG_URL")) {
    char src[] = __FILE__;
    char script[4096];
    snprintf(script, sizeof script, "%s/../store/with_postgres.sh", dirname(src));
    char *args[] = {"bash", script, argv[0], NULL};
    execvp("bash", args);
    perror("test_store: running tests/store/with_postgres.sh");
    return 1;
  }
  /* Every import takes the bulk path (PostgreSQL: foreign keys set aside
   * and checked at the end). */
  cofi__store_bulk_min = 1;
  const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
  const struct CMUnitTest pg_tests[] = CASES(setup_pg);
  int failed = cmocka_run_group_tests_name("store_sqlite", sqlite_tests, NULL, NULL);
  failed += cmocka_run_group_tests_name("store_postgresql", pg_tests, NULL, NULL);
  return failed;
}

/*
 * test_store_feed.c — the store's event feed (src/store/feed.c):
 * cofi_store_last_seq and cofi_store_users_since, run twice: on SQLite and
 * on a real PostgreSQL server (started by tests/store/with_postgres.sh,
 * which this program runs itself under when COFI_TEST_PG_URL is not set;
 * no server means failure, not a skip).
 *
 * Cases: an empty store; events in seq order with their users; the limit
 * and the next call going on from *last_seq; the upper bound; a deleted
 * user's events gone; a stop from the callback; bad arguments named; and
 * on PostgreSQL the gap the server's poll must hold: a transaction open
 * while a later one commits shows its lower seq only once it commits.
 */
#include "testutil.h"
#include "store_fixture.h"

#include <libgen.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
  char *dir;
  char url[512];
  bool pg;
  cofi_store *s;
} fixture;


static int setup(void **state, bool pg) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  f->pg = pg;
  tu_store_url(pg, f->dir, "cofi_feed", f->url, sizeof f->url);
  cofi_diag d = {0};
  if (cofi_store_open(f->url, &f->s, &d)) fail_msg("open %s: %s", f->url, d.message);
  *state = f;
  return 0;
}
static int setup_sqlite(void **state) { return setup(state, false); }
static int setup_pg(void **state) { return setup(state, true); }

static int teardown(void **state) {
  fixture *f = *state;
  cofi_store_close(f->s);
  tu_rmdir(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static void add(cofi_store *s, const char *user, const char *item) {
  cofi_store_event ev;
  memset(&ev, 0, sizeof ev);
  ev.user_id = user;
  ev.user_len = strlen(user);
  ev.item_id = item;
  ev.item_len = strlen(item);
  ev.value = 1;
  cofi_diag d = {0};
  if (cofi_store_append_events(s, &ev, 1, &d)) fail_msg("append: %s", d.message);
}

/* What the feed handed over: "user user ..." and the seqs. */
typedef struct seen {
  char users[512];
  int64_t seqs[64];
  size_t n;
  size_t stop_after; /* 0: never stop */
} seen;

static int collect(int64_t seq, const char *user, size_t len, void *ctx) {
  seen *c = ctx;
  assert_true(c->n < 64);
  assert_int_equal(user[len], 0); /* NUL-terminated as promised */
  size_t at = strlen(c->users);
  snprintf(c->users + at, sizeof c->users - at, "%s%.*s", at ? " " : "", (int)len, user);
  c->seqs[c->n++] = seq;
  return c->stop_after && c->n == c->stop_after;
}

static int64_t since(cofi_store *s, int64_t after, int64_t upto, uint32_t max, seen *c) {
  memset(c, 0, sizeof *c);
  int64_t last = -7;
  cofi_diag d = {0};
  int rc = cofi_store_users_since(s, after, upto, max, collect, c, &last, &d);
  if (rc) fail_msg("users_since(%lld): %s", (long long)after, d.message);
  return last;
}

static void test_empty(void **state) {
  fixture *f = *state;
  int64_t last = -1;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_last_seq(f->s, &last, &d), COFI_OK);
  assert_int_equal(last, 0);
  seen c;
  assert_int_equal(since(f->s, 0, -1, 100, &c), 0);
  assert_int_equal(c.n, 0);
  /* after_seq beyond the end: nothing, and the watermark stays */
  assert_int_equal(since(f->s, 50, -1, 100, &c), 50);
  assert_int_equal(c.n, 0);
}

static void test_events_in_order(void **state) {
  fixture *f = *state;
  add(f->s, "u1", "i1");
  add(f->s, "ünï", "i2");
  add(f->s, "u1", "i3");
  add(f->s, "u2", "i1");
  int64_t top = 0;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_last_seq(f->s, &top, &d), COFI_OK);
  seen c;
  assert_int_equal(since(f->s, 0, -1, 100, &c), top);
  assert_string_equal(c.users, "u1 ünï u1 u2");
  for (size_t i = 1; i < c.n; i++) assert_true(c.seqs[i] > c.seqs[i - 1]);
  assert_int_equal(c.seqs[3], top);
  int64_t first = c.seqs[0], second = c.seqs[1];

  /* a limit, and the next call from *last_seq goes on */
  assert_int_equal(since(f->s, 0, -1, 2, &c), second);
  assert_string_equal(c.users, "u1 ünï");
  assert_int_equal(since(f->s, second, -1, 2, &c), top);
  assert_string_equal(c.users, "u1 u2");
  /* an upper bound: only (first, second] */
  assert_int_equal(since(f->s, first, second, 100, &c), second);
  assert_string_equal(c.users, "ünï");
  /* nothing after the newest */
  assert_int_equal(since(f->s, top, -1, 100, &c), top);
  assert_int_equal(c.n, 0);
  /* later appends come after the watermark */
  add(f->s, "u3", "i9");
  assert_true(since(f->s, top, -1, 100, &c) > top);
  assert_string_equal(c.users, "u3");

  /* a deleted user's events are gone from the feed */
  assert_int_equal(cofi_store_delete_user(f->s, "u1", 2, NULL, &d), COFI_OK);
  since(f->s, 0, -1, 100, &c);
  assert_string_equal(c.users, "ünï u2 u3");

  /* a stop from the callback: CANCELLED, *last_seq at the stopped event */
  memset(&c, 0, sizeof c);
  c.stop_after = 2;
  int64_t last = 0;
  assert_int_equal(cofi_store_users_since(f->s, 0, -1, 100, collect, &c, &last, &d),
                   COFI_ERR_CANCELLED);
  assert_int_equal(c.n, 2);
  assert_int_equal(last, c.seqs[1]);
  /* the connection is usable after the stop */
  since(f->s, 0, -1, 100, &c);
  assert_int_equal(c.n, 3);
}

static void expect_invalid(cofi_store *s, int64_t after, int64_t upto, uint32_t max,
                           cofi_store_seq_user_fn fn, const char *what) {
  seen c;
  memset(&c, 0, sizeof c);
  cofi_diag d = {0};
  int64_t last = -7;
  assert_int_equal(cofi_store_users_since(s, after, upto, max, fn, &c, &last, &d), COFI_ERR_INVALID);
  if (!strstr(d.message, what)) fail_msg("expected '%s' in: %s", what, d.message);
  assert_int_equal(last, after);
  assert_int_equal(c.n, 0);
}

static void test_bad_arguments(void **state) {
  fixture *f = *state;
  add(f->s, "u1", "i1");
  expect_invalid(f->s, -1, -1, 10, collect, "after_seq: -1");
  expect_invalid(f->s, 5, 4, 10, collect, "upto_seq: 4 is below after_seq 5");
  expect_invalid(f->s, 0, -1, 0, collect, "max_events: 0");
  expect_invalid(f->s, 0, -1, 10, NULL, "no callback");
}

static PGresult *pg_exec(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  return r;
}

/* PostgreSQL takes a seq at insertion: an open transaction holds a lower
 * seq than a later one that commits first. The feed shows the later one
 * alone, then the lower seq once its transaction commits: the gap the
 * server's poll keeps reading (server/feed.c). */
static void test_pg_open_transaction(void **state) {
  fixture *f = *state;
  add(f->s, "u1", "i1");
  add(f->s, "u2", "i2");
  int64_t base = 0;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_last_seq(f->s, &base, &d), COFI_OK);
  PGconn *raw = PQconnectdb(f->url);
  assert_int_equal(PQstatus(raw), CONNECTION_OK);
  PQclear(pg_exec(raw, "BEGIN"));
  PQclear(pg_exec(raw, "INSERT INTO cofi_events(ukey, ikey, value) SELECT u.ukey, i.ikey, 1 "
                       "FROM cofi_users u, cofi_items i WHERE u.id = 'u2' AND i.id = 'i1'"));
  add(f->s, "u1", "i2"); /* commits a higher seq */
  seen c;
  int64_t wm = since(f->s, base, -1, 100, &c);
  assert_string_equal(c.users, "u1");
  assert_int_equal(c.seqs[0], base + 2); /* base + 1 is the open transaction's */
  PQclear(pg_exec(raw, "COMMIT"));
  PQfinish(raw);
  /* nothing new after the watermark ... */
  assert_int_equal(since(f->s, wm, -1, 100, &c), wm);
  assert_int_equal(c.n, 0);
  /* ... but the gap now holds u2's event */
  assert_int_equal(since(f->s, base, base + 1, 100, &c), base + 1);
  assert_string_equal(c.users, "u2");
}

#define CASES(setup_fn)                                                         \
  cmocka_unit_test_setup_teardown(test_empty, setup_fn, teardown),              \
      cmocka_unit_test_setup_teardown(test_events_in_order, setup_fn, teardown), \
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup_fn, teardown)

int main(int argc, char **argv) {
  (void)argc;
  if (!getenv("COFI_TEST_PG_URL")) {
    char src[] = __FILE__;
    char script[4096];
    snprintf(script, sizeof script, "%s/../store/with_postgres.sh", dirname(src));
    char *args[] = {"bash", script, argv[0], NULL};
    execvp("bash", args);
    perror("test_store_feed: running tests/store/with_postgres.sh");
    return 1;
  }
  const struct CMUnitTest sqlite_tests[] = {CASES(setup_sqlite)};
  const struct CMUnitTest pg_tests[] = {
      CASES(setup_pg),
      cmocka_unit_test_setup_teardown(test_pg_open_transaction, setup_pg, teardown),
  };
  int failed = cmocka_run_group_tests_name("store_feed_sqlite", sqlite_tests, NULL, NULL);
  failed += cmocka_run_group_tests_name("store_feed_postgresql", pg_tests, NULL, NULL);
  return failed;
}

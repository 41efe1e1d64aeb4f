/*
 * test_store_lists.c — the store's lists (src/store/lists.c, lists_sql.c):
 * cofi_store_popular, cofi_store_latest and cofi_store_scan_items, run
 * twice: on SQLite and on a real PostgreSQL server (started by
 * tests/store/with_postgres.sh, which this program runs itself under when
 * COFI_TEST_PG_URL is not set; no server means failure, not a skip).
 *
 * Cases: counts, most first, ties by ID in byte order ("B" < "a" < "b"),
 * hidden items left out, k; a time window (events without a timestamp do
 * not count then); the category filter; latest newest first, items without
 * a timestamp left out; bad arguments named; the scan of every item and
 * its stop.
 */
#include "testutil.h"
#include "store_fixture.h"

#include <libgen.h>
#include <stdbool.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
  char *dir;
  char url[512];
  cofi_store *s;
} fixture;


static void seed(cofi_store *s);

static int setup(void **state, bool pg) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  tu_store_url(pg, f->dir, "cofi_lists", f->url, sizeof f->url);
  cofi_diag d = {0};
  if (cofi_store_open(f->url, &f->s, &d)) fail_msg("open %s: %s", f->url, d.message);
  seed(f->s);
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

#define L(lit) lit, sizeof(lit) - 1

static void put_item(cofi_store *s, const char *id, const char *cats, int hidden, int64_t ts) {
  cofi_store_item it;
  memset(&it, 0, sizeof it);
  it.id = id;
  it.id_len = strlen(id);
  it.title = id;
  it.title_len = strlen(id);
  it.categories = cats;
  it.categories_len = cats ? strlen(cats) : 0;
  it.hidden = hidden;
  it.timestamp = ts;
  it.has_timestamp = ts != 0;
  cofi_diag d = {0};
  if (cofi_store_put_item(s, &it, &d)) fail_msg("put_item %s: %s", id, d.message);
}

/* events: item, timestamp (0: none), repeated n times. */
static void add_events(cofi_store *s, const char *item, int64_t ts, int n) {
  for (int i = 0; i < n; i++) {
    char user[16];
    snprintf(user, sizeof user, "u%d", i);
    cofi_store_event ev;
    memset(&ev, 0, sizeof ev);
    ev.user_id = user;
    ev.user_len = strlen(user);
    ev.item_id = item;
    ev.item_len = strlen(item);
    ev.value = 1;
    ev.timestamp = ts;
    ev.has_timestamp = ts != 0;
    cofi_diag d = {0};
    if (cofi_store_append_events(s, &ev, 1, &d)) fail_msg("append: %s", d.message);
  }
}

/* Items: "a" 3 events (2 at t=1000, 1 at t=5000), "B" and "b" 2 each (t=5000),
 * "hid" 9 (hidden), "c" 1 without time, "quiet" none. Categories: x on a,
 * b, c; y on B and quiet. Timestamps of items: a 100, B 300, b 300, c none,
 * hid 900 (hidden), quiet 200. */
static void seed(cofi_store *s) {
  put_item(s, "a", "[\"x\"]", 0, 100);
  put_item(s, "B", "[\"y\"]", 0, 300);
  put_item(s, "b", "[\"x\",\"z\"]", 0, 300);
  put_item(s, "c", "[\"x\"]", 0, 0);
  put_item(s, "hid", "[\"x\",\"y\"]", 1, 900);
  put_item(s, "quiet", "[\"y\"]", 0, 200);
  add_events(s, "a", 1000, 2);
  add_events(s, "a", 5000, 1);
  add_events(s, "B", 5000, 2);
  add_events(s, "b", 5000, 2);
  add_events(s, "hid", 5000, 9);
  add_events(s, "c", 0, 1);
}

/* The list as "id:score id:score ...". */
static void expect_list(cofi_store_ranked *rows, size_t n, const char *want) {
  char got[512] = "";
  for (size_t i = 0; i < n; i++) {
    char one[96];
    snprintf(one, sizeof one, "%s%.*s:%g", i ? " " : "", (int)rows[i].item_len, rows[i].item_id,
             rows[i].score);
    strncat(got, one, sizeof got - strlen(got) - 1);
    assert_int_equal(strlen(rows[i].item_id), rows[i].item_len);
    assert_non_null(rows[i].title);
    assert_memory_equal(rows[i].title, rows[i].item_id, rows[i].item_len);
  }
  assert_string_equal(got, want);
  cofi_store_ranked_free(rows);
}

static void test_popular(void **state) {
  fixture *f = *state;
  cofi_store_ranked *rows;
  size_t n;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_popular(f->s, NULL, 0, 0, 0, 10, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "a:3 B:2 b:2 c:1");
  assert_int_equal(cofi_store_popular(f->s, NULL, 0, 0, 0, 2, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "a:3 B:2");
  /* a window: only events at or after t=5000 (c has no time: left out) */
  assert_int_equal(cofi_store_popular(f->s, NULL, 0, 1, 5000, 10, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "B:2 b:2 a:1");
  assert_int_equal(cofi_store_popular(f->s, NULL, 0, 1, 5001, 10, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "");
  assert_int_equal(n, 0);
  /* categories */
  assert_int_equal(cofi_store_popular(f->s, L("x"), 0, 0, 10, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "a:3 b:2 c:1");
  assert_int_equal(cofi_store_popular(f->s, L("y"), 1, 2000, 10, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "B:2");
  assert_int_equal(cofi_store_popular(f->s, L("nope"), 0, 0, 10, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "");
  /* unhiding brings the item back */
  assert_int_equal(cofi_store_hide_item(f->s, L("hid"), 0, &d), COFI_OK);
  assert_int_equal(cofi_store_popular(f->s, NULL, 0, 0, 0, 2, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "hid:9 a:3");
}

static void test_latest(void **state) {
  fixture *f = *state;
  cofi_store_ranked *rows;
  size_t n;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_latest(f->s, NULL, 0, 10, &rows, &n, &d), COFI_OK);
  assert_true(rows[0].has_timestamp);
  assert_int_equal(rows[0].timestamp, 300);
  expect_list(rows, n, "B:300 b:300 quiet:200 a:100");
  assert_int_equal(cofi_store_latest(f->s, L("x"), 1, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "b:300");
  assert_int_equal(cofi_store_latest(f->s, L("y"), 10, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "B:300 quiet:200");
  /* a new item is the newest */
  put_item(f->s, "new", "[]", 0, 1000);
  assert_int_equal(cofi_store_latest(f->s, NULL, 0, 1, &rows, &n, &d), COFI_OK);
  expect_list(rows, n, "new:1000");
}

static void test_bad_arguments(void **state) {
  fixture *f = *state;
  cofi_store_ranked *rows = (cofi_store_ranked *)1;
  size_t n = 7;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_popular(f->s, NULL, 0, 0, 0, 0, &rows, &n, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "k: 0"));
  assert_null(rows);
  assert_int_equal(n, 0);
  char longcat[300];
  memset(longcat, 'c', sizeof longcat);
  memset(&d, 0, sizeof d);
  assert_int_equal(cofi_store_latest(f->s, longcat, sizeof longcat, 5, &rows, &n, &d),
                   COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "category: 300 bytes"));
  memset(&d, 0, sizeof d);
  assert_int_equal(cofi_store_popular(f->s, "", 0, 0, 0, 5, &rows, &n, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "category"));
  memset(&d, 0, sizeof d);
  assert_int_equal(cofi_store_popular(f->s, L("\xff\xfe"), 0, 0, 5, &rows, &n, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "category"));
}

typedef struct scan_count {
  int items, hidden, stop_after;
} scan_count;

static int count_item(const cofi_store_item *it, void *ctx) {
  scan_count *c = ctx;
  c->items++;
  c->hidden += it->hidden != 0;
  assert_true(it->id_len > 0);
  return c->stop_after && c->items == c->stop_after;
}

static void test_scan_items(void **state) {
  fixture *f = *state;
  cofi_diag d = {0};
  scan_count c = {0, 0, 0};
  assert_int_equal(cofi_store_scan_items(f->s, count_item, &c, &d), COFI_OK);
  assert_int_equal(c.items, 6);
  assert_int_equal(c.hidden, 1);
  scan_count stop = {0, 0, 2};
  assert_int_equal(cofi_store_scan_items(f->s, count_item, &stop, &d), COFI_ERR_CANCELLED);
  assert_int_equal(stop.items, 2);
  /* the connection is usable after a stopped scan */
  assert_int_equal(cofi_store_scan_items(f->s, count_item, &c, &d), COFI_OK);
}

#define CASES(setup_fn)                                                          \
  {                                                                              \
    cmocka_unit_test_setup_teardown(test_popular, setup_fn, teardown),           \
    cmocka_unit_test_setup_teardown(test_latest, setup_fn, teardown),            \
    cmocka_unit_test_setup_teardown(test_bad_arguments, setup_fn, teardown),     \
    cmocka_unit_test_setup_teardown(test_scan_items, setup_fn, teardown),        \
  }

int main(int argc, char **argv) {
  (void)argc;
  if (!getenv("COFI_TEST_PG_URL")) {
    char src[] = __FILE__;
    char script[4096];
    snprintf(script, sizeof script, "%s/../store/with_postgres.sh", dirname(src));
    char *args[] = {"bash", script, argv[0], NULL};
    execvp("bash", args);
    perror("test_store_lists: running tests/store/with_postgres.sh");
    return 1;
  }
  const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
  const struct CMUnitTest pg_tests[] = CASES(setup_pg);
  int failed = cmocka_run_group_tests_name("store_lists_sqlite", sqlite_tests, NULL, NULL);
  failed += cmocka_run_group_tests_name("store_lists_postgresql", pg_tests, NULL, NULL);
  return failed;
}

/*
 * test_store_scan_items.c — cofi_store_scan_items on a SQLite store: every
 * item with its attributes, hidden ones flagged, absent JSON columns as
 * "[]" / "{}", a callback that stops the scan, and the argument errors.
 * (PostgreSQL runs the same back-end scan through cofi_store_read_dataset
 * in the store suite.)
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
  int n, hidden, stop_after;
  char ids[8][16];
  char cats[8][64];
} seen;

static int collect(const cofi_store_item *it, void *ctx) {
  seen *s = ctx;
  assert_true(s->n < 8);
  snprintf(s->ids[s->n], sizeof s->ids[0], "%.*s", (int)it->id_len, it->id);
  snprintf(s->cats[s->n], sizeof s->cats[0], "%.*s", (int)it->categories_len, it->categories);
  assert_non_null(it->fields);
  s->hidden += it->hidden;
  s->n++;
  return s->stop_after && s->n >= s->stop_after;
}

static int find(const seen *s, const char *id) {
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->ids[i], id)) return i;
  return -1;
}

static void test_scan(void **state) {
  (void)state;
  char *dir = tu_mkdtemp(), url[512];
  snprintf(url, sizeof url, "sqlite:%s/s.db", dir);
  cofi_store *st;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_open(url, &st, &d), COFI_OK);
  cofi_store_item a = {.id = "a", .id_len = 1, .categories = "[\"X\",\"Y\"]", .categories_len = 9};
  cofi_store_item b = {.id = "b", .id_len = 1, .title = "B", .title_len = 1, .hidden = 1};
  cofi_store_item c = {.id = "c", .id_len = 1, .categories = "[\"Z\"]", .categories_len = 5};
  assert_int_equal(cofi_store_put_item(st, &a, &d), COFI_OK);
  assert_int_equal(cofi_store_put_item(st, &b, &d), COFI_OK);
  assert_int_equal(cofi_store_put_item(st, &c, &d), COFI_OK);
  seen s = {0};
  assert_int_equal(cofi_store_scan_items(st, collect, &s, &d), COFI_OK);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.hidden, 1);
  assert_string_equal(s.cats[find(&s, "a")], "[\"X\",\"Y\"]");
  assert_string_equal(s.cats[find(&s, "b")], "[]");
  assert_string_equal(s.cats[find(&s, "c")], "[\"Z\"]");
  /* stopping */
  seen s2 = {0};
  s2.stop_after = 2;
  assert_int_equal(cofi_store_scan_items(st, collect, &s2, &d), COFI_ERR_CANCELLED);
  assert_int_equal(s2.n, 2);
  /* the store still works after a stopped scan (its transaction ended) */
  seen s3 = {0};
  assert_int_equal(cofi_store_scan_items(st, collect, &s3, &d), COFI_OK);
  assert_int_equal(s3.n, 3);
  assert_int_equal(cofi_store_scan_items(st, NULL, NULL, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "no callback"));
  assert_int_equal(cofi_store_scan_items(NULL, collect, &s, &d), COFI_ERR_INVALID);
  cofi_store_close(st);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_scan)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

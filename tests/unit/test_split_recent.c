/*
 * test_split_recent.c — cofi_split_recent on hand-made logs: the newest
 * share by time (ties in input order, input order without time), pairs
 * with an earlier row kept in training, the held-out users' other rows
 * marked as their fold-in history, and bad fractions refused.
 */
#include "testutil.h"

#include "internal.h"

#include <string.h>

typedef struct row {
  const char *user, *item;
  int64_t time;
} row;

static cofi_dataset *make_ds(const row *rows, size_t n, bool has_time) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(cofi__dataset_add(ds, rows[i].user, strlen(rows[i].user), rows[i].item,
                                       strlen(rows[i].item), 1.0f, rows[i].time),
                     COFI_OK);
  ds->has_time = has_time;
  return ds;
}

static void expect(const uint8_t *parts, const uint8_t *want, int n) {
  for (int i = 0; i < n; i++)
    if (parts[i] != want[i]) fail_msg("row %d: part %d, expected %d", i, parts[i], want[i]);
}

enum { TR = COFI_PART_TRAIN, TE = COFI_PART_TEST, FO = COFI_PART_TEST_FOLDIN };

static void test_newest_by_time(void **state) {
  (void)state;
  /* 10 rows, 30%: the three newest by time are rows 7 (t=90), 2 (t=95)
   * and 9 (t=99). Row 2 is a's pair (a,x) that row 0 had before: a repeat,
   * so it stays in training. b's y (row 7) and c's z (row 9) are new. */
  static const row rows[] = {{"a", "x", 10}, {"b", "p", 20}, {"a", "x", 95}, {"c", "q", 30},
                             {"a", "w", 40}, {"d", "r", 50}, {"b", "s", 60}, {"b", "y", 90},
                             {"d", "t", 70}, {"c", "z", 99}};
  cofi_dataset *ds = make_ds(rows, 10, true);
  uint8_t parts[10];
  uint64_t counts[COFI_PART_COUNT];
  cofi_diag d = {0};
  assert_int_equal(cofi_split_recent(ds, 0.3, NULL, parts, counts, &d), COFI_OK);
  const uint8_t want[10] = {TR, FO, TR, FO, TR, TR, FO, TE, TR, TE};
  expect(parts, want, 10);
  assert_int_equal(counts[COFI_PART_TEST], 2);
  assert_int_equal(counts[COFI_PART_TEST_FOLDIN], 3);
  assert_int_equal(counts[COFI_PART_TRAIN], 5);
  /* Without time the last three rows in input order: 7, 8, 9. */
  ds->has_time = false;
  assert_int_equal(cofi_split_recent(ds, 0.3, NULL, parts, counts, &d), COFI_OK);
  const uint8_t want2[10] = {TR, FO, TR, FO, TR, FO, FO, TE, TE, TE};
  expect(parts, want2, 10);
  cofi_dataset_free(ds);
}

static void test_pair_split_across_cut_and_ties(void **state) {
  (void)state;
  /* (a,x) has rows on both sides of the cut: all training. Ties at t=5
   * keep input order, so of rows 1 and 2 (both t=5) only row 2 is newest
   * with one row held out. */
  static const row rows[] = {{"a", "x", 1}, {"a", "y", 5}, {"b", "y", 5}, {"a", "x", 4}};
  cofi_dataset *ds = make_ds(rows, 4, true);
  uint8_t parts[4];
  cofi_diag d = {0};
  assert_int_equal(cofi_split_recent(ds, 0.2, NULL, parts, NULL, &d), COFI_OK);
  const uint8_t want[4] = {TR, TR, TE, TR};
  expect(parts, want, 4);
  /* Half: rows 3 (t=4)... sorted 0(1),3(4),1(5),2(5): newest two are 1, 2;
   * (a,y) and (b,y) are new pairs; a's x rows are its history. */
  assert_int_equal(cofi_split_recent(ds, 0.5, NULL, parts, NULL, &d), COFI_OK);
  const uint8_t want2[4] = {FO, TE, TE, FO};
  expect(parts, want2, 4);
  cofi_dataset_free(ds);
}

static void test_unseen_by_model(void **state) {
  (void)state;
  /* A model trained on the first four rows; the log then gains (a,z) and
   * (b,y) at times 5 and 6, and repeats (a,x) at time 9. Half of 7 rows
   * rounds to 4 candidates, but only pairs the model has not seen qualify:
   * rows 4 and 5 are held out; the repeat at 9 is not. */
  static const row rows[] = {{"a", "x", 1}, {"a", "y", 2}, {"b", "x", 3}, {"b", "z", 4},
                             {"a", "z", 5}, {"b", "y", 6}, {"a", "x", 9}};
  cofi_dataset *old = make_ds(rows, 4, true), *ds = make_ds(rows, 7, true);
  cofi_params p = cofi_params_default();
  p.factors = 2;
  p.iterations = 2;
  p.threads = 1;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(old, &p, &m, &d), COFI_OK);
  uint8_t parts[7];
  uint64_t counts[COFI_PART_COUNT];
  assert_int_equal(cofi_split_recent(ds, 0.5, m, parts, counts, &d), COFI_OK);
  const uint8_t want[7] = {FO, FO, FO, FO, TE, TE, FO};
  expect(parts, want, 7);
  assert_int_equal(counts[COFI_PART_TEST], 2);
  /* Without the model the four newest rows by time: 9 (a repeat of an
   * earlier pair: stays), 6, 5, 4. */
  assert_int_equal(cofi_split_recent(ds, 0.5, NULL, parts, counts, &d), COFI_OK);
  const uint8_t want2[7] = {FO, FO, FO, TE, TE, TE, FO};
  expect(parts, want2, 7);
  cofi_model_close(m);
  cofi_dataset_free(old);
  cofi_dataset_free(ds);
}

static void test_bad_fraction(void **state) {
  (void)state;
  static const row rows[] = {{"a", "x", 1}};
  cofi_dataset *ds = make_ds(rows, 1, true);
  uint8_t parts[1];
  cofi_diag d = {0};
  assert_int_equal(cofi_split_recent(ds, 0, NULL, parts, NULL, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "(0, 1)"));
  assert_int_equal(cofi_split_recent(ds, 1.0, NULL, parts, NULL, &d), COFI_ERR_INVALID);
  assert_int_equal(cofi_split_recent(ds, 0.0 / 0.0, NULL, parts, NULL, &d), COFI_ERR_INVALID);
  cofi_dataset_free(ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_newest_by_time),
      cmocka_unit_test(test_pair_split_across_cut_and_ties),
      cmocka_unit_test(test_unseen_by_model),
      cmocka_unit_test(test_bad_fraction),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

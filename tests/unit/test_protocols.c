/*
 * test_protocols.c — the global time-cutoff split against a slow obvious
 * reference (every pair's first event found by scanning all rows, the
 * quantile by sorting) and at its boundaries, held-out users (disjoint from
 * training, exact fold-in counts, a share of users, deterministic by seed),
 * and the segment metrics and long-tail share on a tiny hand-computed case.
 */
#include "testutil.h"

#include "eval/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define assert_near(a, b, eps)                                                \
  do {                                                                        \
    double a_ = (a), b_ = (b);                                                \
    if (!(fabs(a_ - b_) <= (eps)))                                            \
      fail_msg("%s = %.12g, expected %.12g", #a, a_, b_);                     \
  } while (0)

static void add(cofi_dataset *ds, const char *u, const char *i, int64_t t) {
  assert_int_equal(cofi__dataset_add(ds, u, strlen(u), i, strlen(i), 1.0f, t), COFI_OK);
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

/* A random log: users u0..u19, items i0..i29, times 1000..1999, with
 * repeated pairs. */
static cofi_dataset *random_log(uint64_t seed, size_t n) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  char u[16], it[16];
  for (size_t r = 0; r < n; r++) {
    snprintf(u, sizeof u, "u%llu", (unsigned long long)(lcg(&seed) % 20));
    snprintf(it, sizeof it, "i%llu", (unsigned long long)(lcg(&seed) % 30));
    add(ds, u, it, 1000 + (int64_t)(lcg(&seed) % 1000));
  }
  ds->has_time = true;
  return ds;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The reference: O(n^2) first times, quantiles by sorting. */
static void reference_time_split(const cofi_dataset *ds, double fraction, int64_t date,
                                 uint8_t *want) {
  size_t n = ds->n;
  int64_t *first = malloc(n * sizeof *first), *t = malloc(n * sizeof *t);
  for (size_t i = 0; i < n; i++) {
    first[i] = ds->time[i];
    for (size_t j = 0; j < n; j++)
      if (ds->user[j] == ds->user[i] && ds->item[j] == ds->item[i] && ds->time[j] < first[i])
        first[i] = ds->time[j];
  }
  int64_t c = date;
  if (fraction > 0) {
    memcpy(t, ds->time, n * sizeof *t);
    qsort(t, n, sizeof *t, cmp64);
    c = t[(size_t)(fraction * (double)n)];
  }
  size_t m = 0, n_test = 0;
  for (size_t i = 0; i < n; i++) {
    if (first[i] >= c) n_test++;
    else if (ds->time[i] < c) t[m++] = ds->time[i];
  }
  qsort(t, m, sizeof *t, cmp64);
  double share = (double)n_test / (double)(n_test + m);
  size_t vi = (size_t)((1.0 - share) * (double)m);
  int64_t v = t[vi < m ? vi : m - 1];
  if (v <= t[0]) v = c;
  for (size_t i = 0; i < n; i++)
    want[i] = first[i] >= c         ? COFI_PART_TEST
              : ds->time[i] >= c    ? COFI_PART_NONE
              : first[i] >= v       ? COFI_PART_VALIDATION
                                    : COFI_PART_TRAIN;
  free(first);
  free(t);
}

static void test_time_cutoff_reference(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 4; seed++) {
    cofi_dataset *ds = random_log(seed, 400);
    uint8_t *parts = malloc(ds->n), *want = malloc(ds->n);
    const char *cut[] = {"0.3", "0.5", "0.8", "1500", "1900"};
    const double frac[] = {0.3, 0.5, 0.8, 0, 0};
    const int64_t date[] = {0, 0, 0, 1500, 1900};
    for (int k = 0; k < 5; k++) {
      cofi_split_options o = cofi_split_options_default();
      o.protocol = COFI_PROTOCOL_TIME_CUTOFF;
      o.cutoff = cut[k];
      uint64_t counts[COFI_PART_COUNT];
      cofi_diag d = {0};
      assert_int_equal(cofi_split(ds, &o, parts, counts, &d), COFI_OK);
      reference_time_split(ds, frac[k], date[k], want);
      uint64_t sum = 0;
      for (size_t i = 0; i < ds->n; i++) {
        if (parts[i] != want[i])
          fail_msg("seed %llu cutoff %s row %zu: part %d, expected %d",
                   (unsigned long long)seed, cut[k], i, parts[i], want[i]);
        if (parts[i] < COFI_PART_COUNT) sum++;
      }
      assert_int_equal(counts[COFI_PART_TRAIN] + counts[COFI_PART_VALIDATION] +
                           counts[COFI_PART_TEST],
                       sum);
      assert_true(counts[COFI_PART_TRAIN] > 0 && counts[COFI_PART_TEST] > 0);
    }
    free(parts);
    free(want);
    cofi_dataset_free(ds);
  }
}

static int split_with(const cofi_dataset *ds, const char *cutoff, uint8_t *parts, cofi_diag *d) {
  cofi_split_options o = cofi_split_options_default();
  o.protocol = COFI_PROTOCOL_TIME_CUTOFF;
  o.cutoff = cutoff;
  return cofi_split(ds, &o, parts, NULL, d);
}

static void test_time_cutoff_boundaries(void **state) {
  (void)state;
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  /* 2015-01-01T00:00:00Z = 1420070400 */
  add(ds, "a", "x", 1420070399); /* one second before: training side (validation:
                                    test is 2 of 4 events, so validation is the
                                    later half of the training side) */
  add(ds, "a", "y", 1420070400); /* at the cutoff: test */
  add(ds, "a", "x", 1420070500); /* a training pair again after it: no part */
  add(ds, "b", "z", 1400000000); /* long before: train */
  add(ds, "c", "y", 1420070600); /* c has no training event */
  ds->has_time = true;
  uint8_t p[5];
  cofi_diag d = {0};
  static const uint8_t want[5] = {COFI_PART_VALIDATION, COFI_PART_TEST, COFI_PART_NONE,
                                  COFI_PART_TRAIN, COFI_PART_TEST};
  const char *same[] = {"2015-01-01", "2015-01-01T00:00:00Z", "2015-01-01T01:00:00+01:00",
                        "1420070400"};
  for (int k = 0; k < 4; k++) {
    assert_int_equal(split_with(ds, same[k], p, &d), COFI_OK);
    for (int i = 0; i < 5; i++)
      if (p[i] != want[i]) fail_msg("cutoff %s row %d: part %d, expected %d", same[k], i, p[i], want[i]);
  }
  int64_t v, c;
  cofi_split_options o = cofi_split_options_default();
  o.protocol = COFI_PROTOCOL_TIME_CUTOFF;
  o.cutoff = "2015-01-01";
  assert_int_equal(cofi_split_cutoffs(ds, &o, &v, &c, &d), COFI_OK);
  assert_int_equal(c, 1420070400);
  assert_int_equal(v, 1420070399);
  uint64_t nu, dropped;
  assert_int_equal(cofi_split_part_users(ds, p, COFI_PART_TEST,
                                         COFI_PART_BIT(COFI_PART_TRAIN) |
                                             COFI_PART_BIT(COFI_PART_VALIDATION),
                                         &nu, &dropped),
                   COFI_OK);
  assert_int_equal(nu, 2);      /* a and c */
  assert_int_equal(dropped, 1); /* c */
  /* The last event is a valid cutoff; after it or at the first is not. */
  assert_int_equal(split_with(ds, "1420070600", p, &d), COFI_OK);
  assert_int_equal(p[4], COFI_PART_TEST);
  assert_int_equal(split_with(ds, "1420070601", p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "outside the data's time range"));
  assert_int_equal(split_with(ds, "1400000000", p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "outside the data's time range"));
  /* Only a repeat after the cutoff: the test side is empty. */
  assert_int_equal(split_with(ds, "1420070450", p, &d), COFI_OK);
  assert_int_equal(split_with(ds, "0.999", p, &d), COFI_OK);
  /* A fraction on the first timestamp. */
  assert_int_equal(split_with(ds, "0.1", p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "first timestamp"));
  /* Bad cutoffs. */
  assert_int_equal(split_with(ds, "0.0", p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "fraction must be in (0, 1)"));
  assert_int_equal(split_with(ds, "2015-13-01", p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "expected an ISO 8601 date"));
  assert_int_equal(split_with(ds, NULL, p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "needs a cutoff"));
  ds->has_time = false;
  assert_int_equal(split_with(ds, "2015-01-01", p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "timestamp"));
  cofi_dataset_free(ds);

  /* Every later event repeats an earlier pair: nothing to predict. */
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  add(ds, "a", "x", 10);
  add(ds, "a", "x", 20);
  add(ds, "b", "y", 11);
  ds->has_time = true;
  assert_int_equal(split_with(ds, "15", p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "test side empty"));
  cofi_dataset_free(ds);
}

/* 20 users u0..u19 with 10 items each (user u has items u..u+9). */
static cofi_dataset *users_log(void) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  char u[16], it[16];
  for (int a = 0; a < 20; a++)
    for (int b = 0; b < 10; b++) {
      snprintf(u, sizeof u, "u%d", a);
      snprintf(it, sizeof it, "i%d", a + b);
      add(ds, u, it, b);
    }
  ds->has_time = true;
  return ds;
}

static void test_heldout_users(void **state) {
  (void)state;
  cofi_dataset *ds = users_log();
  size_t n = ds->n;
  uint8_t *p = malloc(n), *p2 = malloc(n);
  cofi_split_options o = cofi_split_options_default();
  o.protocol = COFI_PROTOCOL_USERS;
  o.heldout_users_fraction = 0.2; /* 4 test and 4 validation users of 20 */
  o.foldin_fraction = 0.8;
  o.seed = 7;
  cofi_diag d = {0};
  uint64_t counts[COFI_PART_COUNT];
  assert_int_equal(cofi_split(ds, &o, p, counts, &d), COFI_OK);
  uint32_t role_count[3] = {0};
  for (uint32_t u = 0; u < 20; u++) {
    uint32_t per[COFI_PART_COUNT] = {0};
    for (size_t i = 0; i < n; i++)
      if (ds->user[i] == u) per[p[i]]++;
    if (per[COFI_PART_TRAIN]) {
      /* Disjoint: a training user has nothing held out. */
      assert_int_equal(per[COFI_PART_TRAIN], 10);
      role_count[0]++;
    } else if (per[COFI_PART_TEST]) {
      assert_int_equal(per[COFI_PART_TEST_FOLDIN], 8); /* exactly 80% folded in */
      assert_int_equal(per[COFI_PART_TEST], 2);        /* 20% predicted */
      role_count[2]++;
    } else {
      assert_int_equal(per[COFI_PART_VALIDATION_FOLDIN], 8);
      assert_int_equal(per[COFI_PART_VALIDATION], 2);
      role_count[1]++;
    }
  }
  assert_int_equal(role_count[0], 12);
  assert_int_equal(role_count[1], 4);
  assert_int_equal(role_count[2], 4);
  assert_int_equal(counts[COFI_PART_TEST], 8);
  assert_int_equal(counts[COFI_PART_TEST_FOLDIN], 32);
  /* Deterministic with the seed; another seed draws other users. */
  assert_int_equal(cofi_split(ds, &o, p2, NULL, &d), COFI_OK);
  assert_memory_equal(p, p2, n);
  o.seed = 8;
  assert_int_equal(cofi_split(ds, &o, p2, NULL, &d), COFI_OK);
  assert_true(memcmp(p, p2, n) != 0);
  /* A count still works and the fraction is checked. */
  o.heldout_users_fraction = 0;
  o.heldout_users = 3;
  assert_int_equal(cofi_split(ds, &o, p, counts, &d), COFI_OK);
  assert_int_equal(counts[COFI_PART_TEST] + counts[COFI_PART_TEST_FOLDIN], 30);
  o.heldout_users_fraction = 0.5;
  assert_int_equal(cofi_split(ds, &o, p, counts, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "heldout_users_fraction"));
  free(p);
  free(p2);
  cofi_dataset_free(ds);
}

/* Three users, K = 3, items 0..5.
 *   user 0: history 2 (cold), list [0 1 2], test {1}      recall@2 1, hit
 *   user 1: history 5 (cold), list [3 4 -], test {5}      recall@2 0
 *   user 2: history 9 (warm), list [0 5 4], test {4 5}    recall@2 1/2
 * Head (training pairs per item 0:5 1:3 2:1 3:1 4:0 5:0, total 10): items
 * 0 and 1 hold 8 = 80%, so the head is {0, 1}.
 * Long tail @2: slots 0 1 | 3 4 | 0 5 -> tail 3, 4, 5 = 3 of 6.
 * Coverage @2: cold {0 1 3 4} = 4/6, warm {0 5} = 2/6. */
static void test_segments_hand(void **state) {
  (void)state;
  uint64_t indptr[] = {0, 4, 7, 10};
  uint32_t indices[] = {0, 1, 2, 3, 0, 1, 1, 0, 0, 0};
  float data[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  cofi__csr train = {.n_rows = 3, .n_cols = 6, .nnz = 10, .indptr = indptr,
                     .indices = indices, .data = data, .borrowed = true};
  uint8_t head[6];
  uint64_t n_head;
  assert_int_equal(cofi__head_items(&train, head, &n_head), COFI_OK);
  assert_int_equal(n_head, 2);
  assert_true(head[0] && head[1] && !head[2] && !head[3] && !head[4] && !head[5]);

  const uint32_t top[] = {0, 1, 2, 3, 4, 0, 0, 5, 4};
  const uint32_t n_top[] = {3, 2, 3};
  const uint64_t hist_ptr[] = {0, 2, 7, 16};
  const uint64_t test_ptr[] = {0, 1, 2, 4};
  const uint32_t test[] = {1, 5, 4, 5};
  cofi__seglists l = {.n_users = 3, .n_items = 6, .K = 3, .top = top, .n_top = n_top,
                      .hist_ptr = hist_ptr, .test_ptr = test_ptr, .test = test,
                      .is_head = head, .n_head = n_head};
  cofi_eval_options o = cofi_eval_options_default();
  assert_int_equal(o.cold_max, 5);
  o.ks[0] = 2;
  cofi_eval_result r;
  memset(&r, 0, sizeof r);
  assert_int_equal(cofi__eval_segments(&l, &o, &r), COFI_OK);
  assert_int_equal(r.segment_users[COFI_SEGMENT_COLD], 2);
  assert_int_equal(r.segment_users[COFI_SEGMENT_WARM], 1);
  assert_near(r.segment_metrics[0][COFI_SEGMENT_COLD][COFI_METRIC_RECALL], 0.5, 1e-12);
  assert_near(r.segment_metrics[0][COFI_SEGMENT_COLD][COFI_METRIC_HIT_RATE], 0.5, 1e-12);
  assert_near(r.segment_metrics[0][COFI_SEGMENT_WARM][COFI_METRIC_RECALL], 0.5, 1e-12);
  assert_near(r.segment_metrics[0][COFI_SEGMENT_COLD][COFI_METRIC_COVERAGE], 4.0 / 6, 1e-12);
  assert_near(r.segment_metrics[0][COFI_SEGMENT_WARM][COFI_METRIC_COVERAGE], 2.0 / 6, 1e-12);
  assert_near(r.long_tail[0], 0.5, 1e-12);
  assert_int_equal(r.head_items, 2);
  /* cold_max 1: nobody is cold; the empty segment is NAN, not 0. */
  o.cold_max = 1;
  assert_int_equal(cofi__eval_segments(&l, &o, &r), COFI_OK);
  assert_int_equal(r.segment_users[COFI_SEGMENT_COLD], 0);
  assert_true(isnan(r.segment_metrics[0][COFI_SEGMENT_COLD][COFI_METRIC_RECALL]));
  assert_int_equal(r.segment_users[COFI_SEGMENT_WARM], 3);
  assert_near(r.segment_metrics[0][COFI_SEGMENT_WARM][COFI_METRIC_RECALL], 0.5, 1e-12);
  assert_string_equal(cofi_segment_name(COFI_SEGMENT_COLD), "cold");
  assert_null(cofi_segment_name(COFI_SEGMENT_COUNT));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_time_cutoff_reference),
      cmocka_unit_test(test_time_cutoff_boundaries),
      cmocka_unit_test(test_heldout_users),
      cmocka_unit_test(test_segments_hand),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_topk.c — partial selection against a full sort (the slow obvious
 * reference), with ties, -inf exclusions and k beyond n.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_ref(const void *a, const void *b) {
  const cofi_scored *x = a, *y = b;
  if (cofi__better(x->score, x->index, y->score, y->index)) return -1;
  if (cofi__better(y->score, y->index, x->score, x->index)) return 1;
  return 0;
}

static uint64_t rng = 88172645463325252ull;
static uint32_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)rng; }

static void check_against_sort(size_t n, size_t k, int distinct_values) {
  float *s = malloc(n * sizeof *s);
  cofi_scored *all = malloc(n * sizeof *all), *got = malloc((k + 1) * sizeof *got);
  size_t n_valid = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t r = next();
    s[i] = (r % 13 == 0) ? -INFINITY : (float)(r % (uint32_t)distinct_values) / 7.0f;
    if (s[i] != -INFINITY) all[n_valid++] = (cofi_scored){(uint32_t)i, s[i]};
  }
  qsort(all, n_valid, sizeof *all, cmp_ref);
  size_t m = cofi__topk_scores(s, n, k, got);
  assert_int_equal(m, k < n_valid ? k : n_valid);
  for (size_t i = 0; i < m; i++) {
    assert_int_equal(got[i].index, all[i].index);
    assert_true(got[i].score == all[i].score);
  }
  free(s); free(all); free(got);
}

static void topk_matches_full_sort(void **state) {
  (void)state;
  size_t ns[] = {1, 2, 7, 100, 1000, 20000};
  size_t ks[] = {1, 3, 10, 50, 100000};
  for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
    for (size_t b = 0; b < sizeof ks / sizeof *ks; b++) {
      check_against_sort(ns[a], ks[b], 5);      /* many ties */
      check_against_sort(ns[a], ks[b], 1 << 20); /* few ties */
    }
}

static void topk_ties_prefer_lower_index(void **state) {
  (void)state;
  float s[6] = {1, 2, 2, 2, 0, 2};
  cofi_scored out[3];
  assert_int_equal(cofi__topk_scores(s, 6, 3, out), 3);
  assert_int_equal(out[0].index, 1);
  assert_int_equal(out[1].index, 2);
  assert_int_equal(out[2].index, 3);
}

static void topk_skips_nan_and_excluded(void **state) {
  (void)state;
  float s[4] = {NAN, -INFINITY, 1, 0.5f};
  cofi_scored out[4];
  assert_int_equal(cofi__topk_scores(s, 4, 4, out), 2);
  assert_int_equal(out[0].index, 2);
  assert_int_equal(out[1].index, 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(topk_matches_full_sort),
      cmocka_unit_test(topk_ties_prefer_lower_index),
      cmocka_unit_test(topk_skips_nan_and_excluded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

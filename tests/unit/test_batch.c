/*
 * test_batch.c — batched recommendation (recommend/batch.c) against
 * single-user cofi_recommend_user, for every user of small trained models
 * whose factor counts hit the kernels' tails: the same number of results,
 * scores equal up to float rounding of a k-term sum, the same items except
 * where two scores tie within that rounding, best first; the same output
 * for any thread count and any order of the users; and the errors.
 */
#include "testutil.h"

#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cofi_model *train(uint32_t users, uint32_t items, uint32_t factors) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  uint64_t r = 7;
  char u[16], it[16];
  for (uint32_t a = 0; a < users; a++)
    for (int t = 0; t < 9; t++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      uint32_t i = (a % 5) * (items / 5) + (uint32_t)((r >> 33) % (items / 5));
      if ((r >> 20) % 4 == 0) i = (uint32_t)((r >> 40) % items);
      int ul = snprintf(u, sizeof u, "u%u", a), il = snprintf(it, sizeof it, "i%u", i);
      assert_int_equal(cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, 1, 0), COFI_OK);
    }
  cofi_params p = cofi_params_default();
  p.factors = factors;
  p.iterations = 4;
  p.alpha = 5;
  p.regularization = 0.1f;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_dataset_free(ds);
  return m;
}

/* Bound on the difference of two float evaluations of x . y. */
static double tol_of(const float *x, const float *y, uint32_t k) {
  double mag = 0;
  for (uint32_t j = 0; j < k; j++) mag += fabs((double)x[j] * y[j]);
  return 2.0 * (k + 2) * FLT_EPSILON * mag;
}

static void check_model(cofi_model *m, uint32_t want_k, int filter) {
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  uint32_t nu = info.n_users, kf = info.factors;
  cofi_scored *out = malloc(sizeof *out * nu * want_k);
  cofi_scored *out2 = malloc(sizeof *out2 * nu * want_k);
  uint32_t *n_out = malloc(sizeof *n_out * nu), *n_out2 = malloc(sizeof *n_out2 * nu);
  cofi_scored *single = malloc(sizeof *single * want_k);
  assert_int_equal(cofi__recommend_batch(m, NULL, nu, want_k, filter, 1, out, n_out), COFI_OK);
  cofi_workspace *ws = cofi_workspace_new();
  const float *X = cofi_model_user_factors(m), *Y = cofi_model_item_factors(m);
  for (uint32_t u = 0; u < nu; u++) {
    cofi_recommend_options o = cofi_recommend_options_default();
    o.k = want_k;
    o.filter_seen = filter;
    size_t n1;
    assert_int_equal(cofi_recommend_user(m, ws, u, &o, single, &n1), COFI_OK);
    assert_int_equal(n_out[u], n1);
    const cofi_scored *b = out + (size_t)u * want_k;
    for (size_t j = 0; j < n1; j++) {
      const float *x = X + (size_t)u * kf;
      double tol = tol_of(x, Y + (size_t)b[j].index * kf, kf);
      /* the batch score is the item's score */
      double exact = 0;
      for (uint32_t l = 0; l < kf; l++) exact += (double)x[l] * Y[(size_t)b[j].index * kf + l];
      if (fabs(b[j].score - exact) > tol)
        fail_msg("user %u rank %zu item %u: batch score %.9g, exact %.9g", u, j, b[j].index,
                 (double)b[j].score, exact);
      /* same rank, same score up to rounding; another item only on a tie */
      if (fabs(b[j].score - single[j].score) > 2 * tol)
        fail_msg("user %u rank %zu: batch %u (%.9g) vs single %u (%.9g)", u, j, b[j].index,
                 (double)b[j].score, single[j].index, (double)single[j].score);
      if (j > 0) assert_true(cofi__better(b[j - 1].score, b[j - 1].index, b[j].score, b[j].index));
    }
  }
  /* any thread count, and users given in any order, give the same output */
  assert_int_equal(cofi__recommend_batch(m, NULL, nu, want_k, filter, 3, out2, n_out2), COFI_OK);
  assert_memory_equal(n_out, n_out2, sizeof *n_out * nu);
  for (uint32_t u = 0; u < nu; u++)
    assert_memory_equal(out + (size_t)u * want_k, out2 + (size_t)u * want_k,
                        sizeof *out * n_out[u]);
  uint32_t *rev = malloc(sizeof *rev * nu);
  for (uint32_t u = 0; u < nu; u++) rev[u] = nu - 1 - u;
  assert_int_equal(cofi__recommend_batch(m, rev, nu, want_k, filter, 2, out2, n_out2), COFI_OK);
  for (uint32_t u = 0; u < nu; u++) {
    assert_int_equal(n_out2[u], n_out[rev[u]]);
    assert_memory_equal(out2 + (size_t)u * want_k, out + (size_t)rev[u] * want_k,
                        sizeof *out * n_out2[u]);
  }
  free(rev);
  cofi_workspace_free(ws);
  free(out); free(out2); free(n_out); free(n_out2); free(single);
}

static void matches_single_user(void **s) {
  (void)s;
  /* 150 users: blocks of 64 with a partial last one; 530 items: tiles of
   * 512 with a partial last one; factors 8, 20 (ragged), 64 */
  const uint32_t factors[] = {8, 20, 64};
  for (size_t f = 0; f < 3; f++) {
    cofi_model *m = train(150, 530, factors[f]);
    check_model(m, 10, 1);
    check_model(m, 10, 0);
    check_model(m, 1, 1);
    cofi_model_close(m);
  }
}

static void k_beyond_catalog_and_errors(void **s) {
  (void)s;
  cofi_model *m = train(20, 25, 8);
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  check_model(m, 40, 0); /* every item comes back */
  cofi_scored out[40];
  uint32_t n_out[1];
  assert_int_equal(cofi__recommend_batch(m, NULL, 1, 40, 0, 1, out, n_out), COFI_OK);
  assert_int_equal(n_out[0], info.n_items);
  assert_int_equal(cofi__recommend_batch(m, NULL, 1, 0, 0, 1, out, n_out), COFI_ERR_INVALID);
  uint32_t bad = info.n_users;
  assert_int_equal(cofi__recommend_batch(m, &bad, 1, 5, 0, 1, out, n_out), COFI_ERR_NOT_FOUND);
  assert_int_equal(cofi__recommend_batch(m, NULL, 0, 5, 0, 1, out, n_out), COFI_OK);
  /* every allocation failing in turn: a clean COFI_ERR_NOMEM */
  for (uint64_t at = 1; at <= 4; at++) {
    cofi__alloc_fail_after(at);
    int rc = cofi__recommend_batch(m, NULL, 1, 5, 1, 1, out, n_out);
    cofi__alloc_fail_after(0);
    assert_int_equal(rc, COFI_ERR_NOMEM);
  }
  cofi_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(matches_single_user),
      cmocka_unit_test(k_beyond_catalog_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

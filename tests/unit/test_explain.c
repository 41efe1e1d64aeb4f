/*
 * test_explain.c — cofi_explain against a slow, obvious reference: the
 * fold-in matrix A built from every item factor in double precision,
 * inverted by Gauss-Jordan, each history item's contribution
 * c_j y_i^T A^-1 y_j. Also: the contributions add up to the explained
 * score, that score equals the score of cofi_fold_in's vector for the same
 * history, for CG- and Cholesky-trained models, classic and iALS
 * parameters, known users and given histories; and the errors.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cofi_dataset *dataset(void) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  uint64_t r = 7;
  char u[16], it[16];
  for (int a = 0; a < 60; a++)
    for (int t = 0; t < 10; t++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      int i = (a % 3) * 12 + (int)((r >> 33) % 12);
      if ((r >> 20) % 4 == 0) i = (int)((r >> 40) % 45);
      int ul = snprintf(u, sizeof u, "u%d", a), il = snprintf(it, sizeof it, "i%d", i);
      assert_int_equal(cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, 1 + (float)(t % 3), 0),
                       COFI_OK);
    }
  return ds;
}

static cofi_model *train(cofi_solver solver, bool ials) {
  cofi_dataset *ds = dataset();
  cofi_params p = cofi_params_default();
  p.factors = 10; p.iterations = 8; p.alpha = 4; p.regularization = 0.5f;
  p.solver = solver; p.threads = 1;
  if (ials) { p.unobserved_weight = 0.3f; p.reg_exponent = 0.5f; }
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_dataset_free(ds);
  return m;
}

/* Reference contributions of `item` for a history, in double. */
static double reference(const cofi_model *m, const uint32_t *hist, const float *vals, size_t n,
                        uint32_t item, double *contrib) {
  uint32_t k = m->factors, ni = m->n_items;
  const float *Y = m->item_factors;
  const cofi_params *p = &m->params;
  double A[32][64];
  for (uint32_t r = 0; r < k; r++)
    for (uint32_t c = 0; c < 2 * k; c++) A[r][c] = c == k + r;
  for (uint32_t i = 0; i < ni; i++)
    for (uint32_t r = 0; r < k; r++)
      for (uint32_t c = 0; c < k; c++)
        A[r][c] += (double)p->unobserved_weight * Y[i * k + r] * Y[i * k + c];
  double lambda = p->regularization;
  if (p->reg_exponent != 0)
    lambda *= pow((double)n + (double)p->unobserved_weight * ni, p->reg_exponent);
  for (uint32_t r = 0; r < k; r++) A[r][r] += lambda;
  for (size_t j = 0; j < n; j++) {
    double c = 1.0 + (double)p->alpha * (vals ? vals[j] : 1.0);
    for (uint32_t r = 0; r < k; r++)
      for (uint32_t q = 0; q < k; q++)
        A[r][q] += (c - p->unobserved_weight) * Y[hist[j] * k + r] * Y[hist[j] * k + q];
  }
  /* Gauss-Jordan with partial pivoting on [A | I]. */
  for (uint32_t col = 0; col < k; col++) {
    uint32_t piv = col;
    for (uint32_t r = col + 1; r < k; r++)
      if (fabs(A[r][col]) > fabs(A[piv][col])) piv = r;
    for (uint32_t c = 0; c < 2 * k; c++) { double t = A[col][c]; A[col][c] = A[piv][c]; A[piv][c] = t; }
    double d = A[col][col];
    for (uint32_t c = 0; c < 2 * k; c++) A[col][c] /= d;
    for (uint32_t r = 0; r < k; r++)
      if (r != col) {
        double f = A[r][col];
        for (uint32_t c = 0; c < 2 * k; c++) A[r][c] -= f * A[col][c];
      }
  }
  double total = 0;
  for (size_t j = 0; j < n; j++) {
    double c = 1.0 + (double)p->alpha * (vals ? vals[j] : 1.0), s = 0;
    for (uint32_t r = 0; r < k; r++)
      for (uint32_t q = 0; q < k; q++)
        s += Y[item * k + r] * A[r][k + q] * Y[hist[j] * k + q];
    contrib[j] = c * s;
    total += contrib[j];
  }
  return total;
}

static void check_history(const cofi_model *m, cofi_workspace *ws, const uint32_t *hist,
                          const float *vals, size_t n, cofi_explainer *e) {
  uint32_t k = m->factors;
  float vec[16];
  assert_int_equal(cofi_fold_in(m, ws, hist, vals, n, vec), COFI_OK);
  cofi_contribution out[64];
  double ref[64];
  for (uint32_t item = 0; item < m->n_items; item += 3) {
    size_t got;
    double score;
    assert_int_equal(cofi_explain(e, item, n, out, &got, &score), COFI_OK);
    assert_int_equal(got, n);
    double sum = 0;
    for (size_t j = 0; j < got; j++) {
      sum += out[j].contribution;
      if (j) assert_true(out[j - 1].contribution >= out[j].contribution);
    }
    assert_true(fabs(sum - score) <= 1e-9 * (fabs(score) + 1e-12));
    /* the same score as the fold-in vector's (float Cholesky) */
    double folded = 0;
    for (uint32_t r = 0; r < k; r++) folded += (double)vec[r] * m->item_factors[item * k + r];
    assert_true(fabs(folded - score) <= 1e-4 * (fabs(score) + 1e-2));
    /* each contribution as the reference computes it */
    double ref_total = reference(m, hist, vals, n, item, ref);
    /* Scores near 0 are sums that cancel: measure error against the
     * contributions' magnitude. */
    double scale = 1e-3;
    for (size_t j = 0; j < n; j++) scale += fabs(ref[j]);
    assert_true(fabs(ref_total - score) <= 1e-5 * scale);
    for (size_t j = 0; j < got; j++) {
      size_t at = 0;
      while (hist[at] != out[j].item) at++; /* histories here have distinct items */
      /* the model's gram is float: about 1e-7 relative per entry */
      assert_true(fabs(ref[at] - out[j].contribution) <= 1e-5 * scale);
    }
  }
}

static void explains_known_users(cofi_solver solver, bool ials) {
  cofi_model *m = train(solver, ials);
  cofi_workspace *ws = cofi_workspace_new();
  for (uint32_t u = 0; u < m->n_users; u += 7) {
    const uint32_t *hist;
    const float *vals;
    size_t n = cofi_model_user_items(m, u, &hist, &vals);
    cofi_explainer *e;
    assert_int_equal(cofi_explainer_new_user(m, u, &e), COFI_OK);
    check_history(m, ws, hist, vals, n, e);
    cofi_explainer_free(e);
  }
  cofi_workspace_free(ws);
  cofi_model_close(m);
}

static void cg_model(void **state) { (void)state; explains_known_users(COFI_SOLVER_CG, false); }
static void cholesky_model(void **state) { (void)state; explains_known_users(COFI_SOLVER_CHOLESKY, false); }
static void ials_model(void **state) { (void)state; explains_known_users(COFI_SOLVER_CG, true); }

static void given_history(void **state) {
  (void)state;
  cofi_model *m = train(COFI_SOLVER_CHOLESKY, false);
  cofi_workspace *ws = cofi_workspace_new();
  uint32_t hist[3] = {4, 17, 30};
  float vals[3] = {1, 3, 0.5f};
  cofi_explainer *e;
  assert_int_equal(cofi_explainer_new_history(m, hist, NULL, 3, &e), COFI_OK);
  check_history(m, ws, hist, NULL, 3, e);
  cofi_explainer_free(e);
  assert_int_equal(cofi_explainer_new_history(m, hist, vals, 3, &e), COFI_OK);
  check_history(m, ws, hist, vals, 3, e);
  /* top smaller than the history: the largest ones, in order */
  cofi_contribution all[3], two[2];
  size_t n;
  double s1, s2;
  assert_int_equal(cofi_explain(e, 9, 3, all, &n, &s1), COFI_OK);
  assert_int_equal(cofi_explain(e, 9, 2, two, &n, &s2), COFI_OK);
  assert_int_equal(n, 2);
  assert_true(s1 == s2);
  for (size_t j = 0; j < 2; j++) {
    assert_int_equal(all[j].item, two[j].item);
    assert_true(all[j].contribution == two[j].contribution);
  }
  assert_int_equal(cofi_explain(e, 9, 0, NULL, &n, &s2), COFI_OK);
  assert_int_equal(n, 0);
  assert_true(s1 == s2);
  cofi_explainer_free(e);
  cofi_workspace_free(ws);
  cofi_model_close(m);
}

static void errors(void **state) {
  (void)state;
  cofi_model *m = train(COFI_SOLVER_CG, false);
  cofi_explainer *e = (cofi_explainer *)1;
  assert_int_equal(cofi_explainer_new_user(m, m->n_users, &e), COFI_ERR_NOT_FOUND);
  assert_null(e);
  uint32_t bad[2] = {1, m->n_items};
  assert_int_equal(cofi_explainer_new_history(m, bad, NULL, 2, &e), COFI_ERR_NOT_FOUND);
  assert_int_equal(cofi_explainer_new_history(m, bad, NULL, 0, &e), COFI_ERR_INVALID);
  float nan_value[1] = {NAN};
  assert_int_equal(cofi_explainer_new_history(m, bad, nan_value, 1, &e), COFI_ERR_INVALID);
  assert_int_equal(cofi_explainer_new_user(m, 0, &e), COFI_OK);
  size_t n = 9;
  assert_int_equal(cofi_explain(e, m->n_items, 0, NULL, &n, NULL), COFI_ERR_NOT_FOUND);
  assert_int_equal(n, 0);
  cofi_explainer_free(e);
  cofi_explainer_free(NULL);
  cofi_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cg_model),      cmocka_unit_test(cholesky_model),
      cmocka_unit_test(ials_model),    cmocka_unit_test(given_history),
      cmocka_unit_test(errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

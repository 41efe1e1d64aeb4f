/*
 * test_solve.c — the ALS row solver against a slow obvious reference (the
 * normal equations formed explicitly and solved by Gaussian elimination in
 * double), CG converging to the exact solution, and training-level
 * properties: CG and Cholesky reach the same objective, the objective never
 * rises across Cholesky iterations, and degenerate inputs never yield NaN.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x1234567ull;
static float frand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

/* x = A^-1 b with A, b formed explicitly, in double. */
static void reference_solve(const float *Y, uint32_t k, const uint32_t *cols, const float *vals,
                            size_t n, uint32_t n_other, float alpha, float alpha0, float lambda,
                            double *x) {
  double *A = calloc((size_t)k * (k + 1), sizeof *A);
  for (uint32_t r = 0; r < k; r++) {
    for (uint32_t c = 0; c < k; c++) {
      double s = 0;
      for (uint32_t i = 0; i < n_other; i++) s += (double)Y[i * k + r] * Y[i * k + c];
      A[r * (k + 1) + c] = alpha0 * s + (r == c ? lambda : 0);
    }
  }
  for (size_t t = 0; t < n; t++) {
    const float *y = Y + (size_t)cols[t] * k;
    double c = 1.0 + (double)alpha * vals[t];
    for (uint32_t r = 0; r < k; r++) {
      for (uint32_t cc = 0; cc < k; cc++) A[r * (k + 1) + cc] += (c - alpha0) * y[r] * y[cc];
      A[r * (k + 1) + k] += c * y[r];
    }
  }
  for (uint32_t p = 0; p < k; p++) { /* Gauss-Jordan, partial pivoting */
    uint32_t best = p;
    for (uint32_t r = p + 1; r < k; r++)
      if (fabs(A[r * (k + 1) + p]) > fabs(A[best * (k + 1) + p])) best = r;
    for (uint32_t c = 0; c <= k; c++) {
      double t = A[p * (k + 1) + c];
      A[p * (k + 1) + c] = A[best * (k + 1) + c];
      A[best * (k + 1) + c] = t;
    }
    for (uint32_t r = 0; r < k; r++) {
      if (r == p) continue;
      double f = A[r * (k + 1) + p] / A[p * (k + 1) + p];
      for (uint32_t c = p; c <= k; c++) A[r * (k + 1) + c] -= f * A[p * (k + 1) + c];
    }
  }
  for (uint32_t r = 0; r < k; r++) x[r] = A[r * (k + 1) + k] / A[r * (k + 1) + r];
  free(A);
}

static void solve_matches_reference(cofi_solver solver, uint32_t cg_steps, float alpha0,
                                    float tol) {
  enum { K = 8, N_OTHER = 40 };
  float *Y = aligned_alloc(64, sizeof(float) * N_OTHER * K);
  float gram[K * K], x[K], scratch[1024];
  for (int i = 0; i < N_OTHER * K; i++) Y[i] = frand();
  uint32_t cols[5] = {1, 4, 9, 20, 33};
  float vals[5] = {1, 3, 1, 2, 5};
  cofi__gram(Y, N_OTHER, K, alpha0, gram);
  cofi__row_problem pr = {.gram = gram, .Y = Y, .k = K, .alpha = 4, .alpha0 = alpha0,
                          .lambda = 0.1f, .nu = 0, .n_other = N_OTHER, .solver = solver,
                          .cg_steps = cg_steps};
  assert_true(cofi__solve_row_scratch(K) <= 1024);
  memset(x, 0, sizeof x);
  assert_int_equal(cofi__solve_row(&pr, cols, vals, 5, x, scratch), COFI_OK);
  double ref[K];
  reference_solve(Y, K, cols, vals, 5, N_OTHER, 4, alpha0, 0.1f, ref);
  for (int j = 0; j < K; j++) assert_true(fabs(x[j] - ref[j]) <= tol * (1 + fabs(ref[j])));
  free(Y);
}

static void cholesky_is_exact(void **s) { (void)s; solve_matches_reference(COFI_SOLVER_CHOLESKY, 1, 1.0f, 1e-4f); }
static void cholesky_is_exact_ials(void **s) { (void)s; solve_matches_reference(COFI_SOLVER_CHOLESKY, 1, 0.3f, 1e-4f); }
/* With as many steps as dimensions, CG is exact in exact arithmetic. */
static void cg_converges(void **s) { (void)s; solve_matches_reference(COFI_SOLVER_CG, 30, 1.0f, 1e-3f); }

/* Larger rows and factor counts: the 16-row blocks and the specialized
 * kernels (k a multiple of 16), ragged k, rows read in place from Y
 * (gather_rows 0) and gathered into the scratch first. */
static void solve_large_matches_reference(void **s) {
  (void)s;
  const uint32_t ks[] = {16, 33, 64};
  for (size_t a = 0; a < 3; a++)
    for (int solver = 0; solver < 2; solver++)
      for (int gather = 0; gather < 2; gather++) {
        uint32_t k = ks[a], n_other = 300;
        size_t n = 70, kp = cofi__kpad(k);
        /* aligned_alloc needs a size that is a multiple of the alignment
         * (k = 33 gives 39600 bytes; ASan aborts on it): round up. */
        float *Y = aligned_alloc(64, (sizeof(float) * n_other * k + 63) / 64 * 64);
        float *gram = aligned_alloc(64, (sizeof(float) * k * k + 63) / 64 * 64);
        for (size_t i = 0; i < (size_t)n_other * k; i++) Y[i] = frand();
        uint32_t cols[70];
        float vals[70];
        for (size_t t = 0; t < n; t++) {
          cols[t] = (uint32_t)(t * 4 + 1);
          vals[t] = 1.0f + (float)(t % 4);
        }
        cofi__gram(Y, n_other, k, 1.0f, gram);
        cofi__row_problem pr = {.gram = gram, .Y = Y, .k = k, .alpha = 2, .alpha0 = 1,
                                .lambda = 0.5f, .n_other = n_other,
                                .solver = (cofi_solver)solver, .cg_steps = 3 * k,
                                .gather_rows = gather ? n : 0};
        size_t sz = cofi__solve_row_scratch_gather(k, pr.gather_rows);
        float *scratch = aligned_alloc(64, (sizeof(float) * (sz + 16) + 63) / 64 * 64);
        float x[64] = {0};
        (void)kp;
        assert_int_equal(cofi__solve_row(&pr, cols, vals, n, x, scratch), COFI_OK);
        double ref[64];
        reference_solve(Y, k, cols, vals, n, n_other, 2, 1, 0.5f, ref);
        for (uint32_t j = 0; j < k; j++)
          if (fabs(x[j] - ref[j]) > 2e-3 * (1 + fabs(ref[j])))
            fail_msg("k=%u solver %d gather %d: x[%u] = %.7g, reference %.7g", k, solver, gather,
                     j, (double)x[j], ref[j]);
        free(Y); free(gram); free(scratch);
      }
}

/* A small random dataset with latent structure. */
static cofi_dataset *small_dataset(uint32_t users, uint32_t items, uint32_t per_user) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  char u[32], it[32];
  for (uint32_t a = 0; a < users; a++)
    for (uint32_t t = 0; t < per_user; t++) {
      uint32_t i = (a % 3) * (items / 3) + (uint32_t)((frand() + 0.5f) * (items / 3));
      if (i >= items) i = items - 1;
      int ul = snprintf(u, sizeof u, "u%u", a), il = snprintf(it, sizeof it, "i%u", i);
      assert_int_equal(cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, 1.0f + (float)(t % 3), 0), COFI_OK);
    }
  return ds;
}

typedef struct losses { double v[64]; int n; } losses;
static int record_loss(const cofi_progress *p, void *ctx) {
  losses *l = ctx;
  l->v[l->n++] = p->loss;
  return 0;
}

static void objective_never_rises_with_cholesky(void **s) {
  (void)s;
  cofi_dataset *ds = small_dataset(60, 45, 8);
  cofi_params p = cofi_params_default();
  p.factors = 6; p.iterations = 30; p.solver = COFI_SOLVER_CHOLESKY; p.alpha = 5;
  p.regularization = 0.1f; p.compute_loss = 1; p.progress = record_loss;
  losses l = {0};
  p.progress_ctx = &l;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  assert_int_equal(l.n, 30);
  for (int i = 1; i < l.n; i++) assert_true(l.v[i] <= l.v[i - 1] * (1 + 1e-5));
  /* CG with enough steps reaches the same objective. */
  cofi_params q = p;
  q.solver = COFI_SOLVER_CG; q.cg_steps = 3;
  losses l2 = {0};
  q.progress_ctx = &l2;
  cofi_model *m2;
  assert_int_equal(cofi_train(ds, &q, &m2, &d), COFI_OK);
  cofi_model_info a, b;
  cofi_model_get_info(m, &a);
  cofi_model_get_info(m2, &b);
  print_message("cholesky loss %.9g, cg loss %.9g\n", a.train_loss, b.train_loss);
  assert_true(fabs(a.train_loss - b.train_loss) <= 0.02 * a.train_loss);
  cofi_model_close(m);
  cofi_model_close(m2);
  cofi_dataset_free(ds);
}

static void degenerate_data_stays_finite(void **s) {
  (void)s;
  struct { uint32_t users, items, per_user, factors; } cases[] = {
      {1, 1, 1, 8},    /* one user, one item */
      {1, 30, 10, 4},  /* one user */
      {30, 1, 1, 4},   /* one item, every user the same single item */
      {3, 4, 2, 64},   /* more factors than users and items */
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    cofi_dataset *ds = small_dataset(cases[c].users, cases[c].items, cases[c].per_user);
    for (int solver = 0; solver < 2; solver++) {
      cofi_params p = cofi_params_default();
      p.factors = cases[c].factors; p.iterations = 5; p.solver = (cofi_solver)solver;
      cofi_model *m;
      cofi_diag d = {0};
      assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
      cofi_model_info info;
      cofi_model_get_info(m, &info);
      const float *X = cofi_model_user_factors(m), *Y = cofi_model_item_factors(m);
      for (size_t i = 0; i < (size_t)info.n_users * info.factors; i++) assert_true(isfinite(X[i]));
      for (size_t i = 0; i < (size_t)info.n_items * info.factors; i++) assert_true(isfinite(Y[i]));
      cofi_model_close(m);
    }
    cofi_dataset_free(ds);
  }
}

/* Factors are bit-identical whatever the thread count, at factor counts
 * that use the specialized kernels (64) and the general ones (20), with
 * rows long enough for several 16-row blocks. */
static void deterministic_across_threads_large(void **s) {
  (void)s;
  cofi_dataset *ds = small_dataset(300, 240, 40);
  const uint32_t ks[] = {20, 64};
  for (size_t a = 0; a < 2; a++)
    for (int solver = 0; solver < 2; solver++) {
      cofi_model *m[3];
      for (uint32_t t = 0; t < 3; t++) {
        cofi_params p = cofi_params_default();
        p.factors = ks[a]; p.iterations = 3; p.solver = (cofi_solver)solver;
        p.regularization = 0.1f; p.threads = t + 1;
        cofi_diag d = {0};
        assert_int_equal(cofi_train(ds, &p, &m[t], &d), COFI_OK);
      }
      cofi_model_info info;
      cofi_model_get_info(m[0], &info);
      for (uint32_t t = 1; t < 3; t++) {
        assert_memory_equal(cofi_model_user_factors(m[0]), cofi_model_user_factors(m[t]),
                            sizeof(float) * info.n_users * info.factors);
        assert_memory_equal(cofi_model_item_factors(m[0]), cofi_model_item_factors(m[t]),
                            sizeof(float) * info.n_items * info.factors);
      }
      for (uint32_t t = 0; t < 3; t++) cofi_model_close(m[t]);
    }
  cofi_dataset_free(ds);
}

static void huge_values_fail_cleanly(void **s) {
  (void)s;
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  assert_int_equal(cofi__dataset_add(ds, "a", 1, "x", 1, 3e38f, 0), COFI_OK);
  assert_int_equal(cofi__dataset_add(ds, "b", 1, "x", 1, 3e38f, 0), COFI_OK);
  cofi_params p = cofi_params_default();
  p.alpha = 1000;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  int rc = cofi_train(ds, &p, &m, &d);
  assert_int_equal(rc, COFI_ERR_NUMERIC);
  assert_null(m);
  assert_non_null(strstr(d.message, "not a finite float"));
  cofi_dataset_free(ds);
}

static void params_are_checked(void **s) {
  (void)s;
  cofi_params p = cofi_params_default();
  cofi_diag d = {0};
  assert_int_equal(cofi_params_check(&p, &d), COFI_OK);
  p.factors = 0;
  assert_int_equal(cofi_params_check(&p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "factors"));
  p = cofi_params_default(); p.regularization = NAN;
  assert_int_equal(cofi_params_check(&p, &d), COFI_ERR_INVALID);
  p = cofi_params_default(); p.alpha = -1;
  assert_int_equal(cofi_params_check(&p, &d), COFI_ERR_INVALID);
  p = cofi_params_default(); p.iterations = 0;
  assert_int_equal(cofi_params_check(&p, &d), COFI_ERR_INVALID);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cholesky_is_exact),
      cmocka_unit_test(cholesky_is_exact_ials),
      cmocka_unit_test(cg_converges),
      cmocka_unit_test(solve_large_matches_reference),
      cmocka_unit_test(deterministic_across_threads_large),
      cmocka_unit_test(objective_never_rises_with_cholesky),
      cmocka_unit_test(degenerate_data_stays_finite),
      cmocka_unit_test(huge_values_fail_cleanly),
      cmocka_unit_test(params_are_checked),
  };
  return tu_run_per_kernel_set("solve", tests, sizeof tests / sizeof *tests);
}

/*
 * test_recommend.c — recommending on a trained model: seen items filtered,
 * exclusions honoured, k clamped to the catalog, results equal to a full
 * sort of the dot products, fold-in of a training user's own row
 * reproducing its trained vector, similar items excluding the query, and
 * identical factors for 1 and 2 threads.
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
  uint64_t r = 99;
  char u[16], it[16];
  for (int a = 0; a < 80; a++)
    for (int t = 0; t < 12; t++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      int i = (a % 4) * 10 + (int)((r >> 33) % 10); /* 4 taste groups of 10 items */
      if ((r >> 20) % 5 == 0) i = (int)((r >> 40) % 50);
      int ul = snprintf(u, sizeof u, "u%d", a), il = snprintf(it, sizeof it, "i%d", i);
      assert_int_equal(cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, 1, 0), COFI_OK);
    }
  return ds;
}

static cofi_model *train(cofi_dataset *ds, uint32_t threads, cofi_solver solver) {
  cofi_params p = cofi_params_default();
  p.factors = 8; p.iterations = 25; p.alpha = 10; p.regularization = 0.1f;
  p.threads = threads; p.solver = solver;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  return m;
}

static void recommend_filters_and_sorts(void **state) {
  (void)state;
  cofi_dataset *ds = dataset();
  cofi_model *m = train(ds, 0, COFI_SOLVER_CG);
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  cofi_workspace *ws = cofi_workspace_new();
  cofi_scored out[100];
  for (uint32_t u = 0; u < info.n_users; u++) {
    const uint32_t *seen;
    size_t n_seen = cofi_model_user_items(m, u, &seen, NULL);
    uint32_t excl[2] = {0, 1};
    cofi_recommend_options o = cofi_recommend_options_default();
    o.k = 5; o.exclude = excl; o.n_exclude = 2;
    size_t n;
    assert_int_equal(cofi_recommend_user(m, ws, u, &o, out, &n), COFI_OK);
    /* reference: every candidate scored, best 5 by full comparison */
    const float *x = cofi_model_user_factors(m) + (size_t)u * info.factors;
    size_t expect = 0;
    for (uint32_t i = 0; i < info.n_items; i++) {
      bool is_seen = i == 0 || i == 1;
      for (size_t s = 0; s < n_seen; s++) is_seen |= seen[s] == i;
      if (is_seen) continue;
      expect++;
      float sc = cofi__dot(x, cofi_model_item_factors(m) + (size_t)i * info.factors, info.factors);
      size_t better = 0;
      for (uint32_t j = 0; j < info.n_items; j++) {
        bool js = j == 0 || j == 1;
        for (size_t s = 0; s < n_seen; s++) js |= seen[s] == j;
        if (js) continue;
        float sj = cofi__dot(x, cofi_model_item_factors(m) + (size_t)j * info.factors, info.factors);
        if (cofi__better(sj, j, sc, i)) better++;
      }
      if (better < 5) {
        assert_int_equal(out[better].index, i);
        assert_true(out[better].score == sc);
      }
    }
    assert_int_equal(n, expect < 5 ? expect : 5);
  }
  /* k beyond the catalog is clamped; without filtering every item comes back */
  cofi_recommend_options o = cofi_recommend_options_default();
  o.k = 1000; o.filter_seen = 0;
  size_t n;
  cofi_scored *all = malloc(sizeof *all * 1000);
  assert_int_equal(cofi_recommend_user(m, ws, 0, &o, all, &n), COFI_OK);
  assert_int_equal(n, info.n_items);
  o.k = 0;
  assert_int_equal(cofi_recommend_user(m, ws, 0, &o, all, &n), COFI_ERR_INVALID);
  assert_int_equal(cofi_recommend_user(m, ws, info.n_users, &o, all, &n), COFI_ERR_NOT_FOUND);
  free(all);
  cofi_workspace_free(ws);
  cofi_model_close(m);
  cofi_dataset_free(ds);
}

static void fold_in_reproduces_training_user(void **state) {
  (void)state;
  cofi_dataset *ds = dataset();
  /* Cholesky training: after the last sweep, user vectors are the exact
   * solutions against the previous item factors; fold-in solves against
   * the final ones, so they agree closely once training has converged. */
  cofi_model *m = train(ds, 0, COFI_SOLVER_CHOLESKY);
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  cofi_workspace *ws = cofi_workspace_new();
  float vec[8];
  double worst = 0;
  for (uint32_t u = 0; u < info.n_users; u++) {
    const uint32_t *items;
    const float *vals;
    size_t n = cofi_model_user_items(m, u, &items, &vals);
    assert_int_equal(cofi_fold_in(m, ws, items, vals, n, vec), COFI_OK);
    const float *x = cofi_model_user_factors(m) + (size_t)u * info.factors;
    double num = 0, den = 0;
    for (uint32_t j = 0; j < info.factors; j++) {
      num += (vec[j] - x[j]) * (vec[j] - x[j]);
      den += x[j] * x[j];
    }
    if (sqrt(num / den) > worst) worst = sqrt(num / den);
  }
  print_message("fold-in worst relative difference %.3g\n", worst);
  assert_true(worst < 0.05);
  uint32_t bad = info.n_items;
  assert_int_equal(cofi_fold_in(m, ws, &bad, NULL, 1, vec), COFI_ERR_NOT_FOUND);
  cofi_workspace_free(ws);
  cofi_model_close(m);
  cofi_dataset_free(ds);
}

static void similar_excludes_query(void **state) {
  (void)state;
  cofi_dataset *ds = dataset();
  cofi_model *m = train(ds, 0, COFI_SOLVER_CG);
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  cofi_workspace *ws = cofi_workspace_new();
  cofi_scored out[10];
  size_t n;
  for (uint32_t i = 0; i < info.n_items; i++) {
    assert_int_equal(cofi_similar_items(m, ws, i, 10, out, &n), COFI_OK);
    assert_int_equal(n, 10);
    for (size_t j = 0; j < n; j++) {
      assert_int_not_equal(out[j].index, i);
      assert_true(out[j].score <= 1.0001f && out[j].score >= -1.0001f);
      if (j) assert_true(out[j].score <= out[j - 1].score);
    }
  }
  assert_int_equal(cofi_similar_users(m, ws, 3, 10, out, &n), COFI_OK);
  for (size_t j = 0; j < n; j++) assert_int_not_equal(out[j].index, 3);
  cofi_workspace_free(ws);
  cofi_model_close(m);
  cofi_dataset_free(ds);
}

static void deterministic_across_threads(void **state) {
  (void)state;
  cofi_dataset *ds = dataset();
  for (int solver = 0; solver < 2; solver++) {
    cofi_model *a = train(ds, 1, (cofi_solver)solver), *b = train(ds, 2, (cofi_solver)solver);
    cofi_model_info info;
    cofi_model_get_info(a, &info);
    assert_memory_equal(cofi_model_user_factors(a), cofi_model_user_factors(b),
                        sizeof(float) * info.n_users * info.factors);
    assert_memory_equal(cofi_model_item_factors(a), cofi_model_item_factors(b),
                        sizeof(float) * info.n_items * info.factors);
    cofi_model_close(a);
    cofi_model_close(b);
  }
  cofi_dataset_free(ds);
}

static void train_release_matches_train(void **state) {
  (void)state;
  cofi_dataset *ds = dataset(), *ds2 = dataset();
  cofi_model *a = train(ds, 2, COFI_SOLVER_CG);
  cofi_params p = cofi_params_default();
  p.factors = 8; p.iterations = 25; p.alpha = 10; p.regularization = 0.1f; p.threads = 2;
  cofi_model *b;
  cofi_diag d = {0};
  size_t users = cofi_dataset_n_users(ds2);
  assert_int_equal(cofi_train_release(ds2, &p, &b, &d), COFI_OK);
  assert_int_equal(cofi_dataset_n_interactions(ds2), 0);
  assert_int_equal(cofi_dataset_n_users(ds2), users);
  cofi_model_info info;
  cofi_model_get_info(a, &info);
  assert_memory_equal(cofi_model_user_factors(a), cofi_model_user_factors(b),
                      sizeof(float) * info.n_users * info.factors);
  size_t l1, l2;
  const char *s1 = cofi_model_user_id(a, 5, &l1), *s2 = cofi_model_user_id(b, 5, &l2);
  assert_int_equal(l1, l2);
  assert_memory_equal(s1, s2, l1);
  cofi_model_close(a);
  cofi_model_close(b);
  cofi_dataset_free(ds);
  cofi_dataset_free(ds2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recommend_filters_and_sorts),
      cmocka_unit_test(fold_in_reproduces_training_user),
      cmocka_unit_test(similar_excludes_query),
      cmocka_unit_test(deterministic_across_threads),
      cmocka_unit_test(train_release_matches_train),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

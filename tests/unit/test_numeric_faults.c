/*
 * test_numeric_faults.c — numerical faults never pass silently: on
 * degenerate or extreme input, training, fold-in and ranking either give
 * finite numbers or fail with COFI_ERR_NUMERIC and a message that says
 * what to change. test_solve.c already covers one user, one item, every
 * user with the same single item, more factors than users and items, and a
 * confidence that overflows; this file adds what it does not:
 *   - no regularization (lambda 0) with Cholesky and with CG, on a
 *     singular system (more factors than items) and a regular one;
 *   - values whose per-pair sum overflows float (duplicates of 2e38);
 *   - huge finite values (1e30) and tiny ones (denormals, zeros);
 *   - a value times its event weight overflowing, through the CSV reader
 *     (refused with the line);
 *   - negative values;
 *   - iALS extremes: a frequency exponent that overflows the row
 *     regularization, and an unobserved weight near zero without lambda;
 *   - fold-in against a model trained without regularization;
 *   - a model file whose factors are finite but so large that dot
 *     products overflow: refused on open, or ranked without NaN scores.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* users x items, each user with per_user items from its taste group. */
static cofi_dataset *dataset(uint32_t users, uint32_t items, uint32_t per_user, float value) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  uint64_t r = 12345;
  char u[32], it[32];
  for (uint32_t a = 0; a < users; a++)
    for (uint32_t t = 0; t < per_user; t++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      uint32_t i = (uint32_t)((r >> 33) % items);
      int ul = snprintf(u, sizeof u, "u%u", a), il = snprintf(it, sizeof it, "i%u", i);
      assert_int_equal(cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, value, 0), COFI_OK);
    }
  return ds;
}

static void assert_all_finite(const float *a, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(a[i])) fail_msg("%s[%zu] = %g", what, i, (double)a[i]);
}

/* Ranks for every user and similar items for every item: each list full
 * (ranking skips NaN scores, so a NaN would show up as a short list) and
 * no score NaN. */
static void assert_rankings_clean(const cofi_model *m) {
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  cofi_workspace *ws = cofi_workspace_new();
  assert_non_null(ws);
  cofi_scored out[8];
  size_t n;
  cofi_recommend_options o = cofi_recommend_options_default();
  o.k = 8;
  o.filter_seen = 0;
  for (uint32_t u = 0; u < info.n_users && u < 50; u++) {
    assert_int_equal(cofi_recommend_user(m, ws, u, &o, out, &n), COFI_OK);
    if (n != (info.n_items < 8 ? info.n_items : 8))
      fail_msg("recommend user %u: %zu of %u items ranked (NaN scores?)", u, n, info.n_items);
    for (size_t t = 0; t < n; t++)
      if (isnan(out[t].score)) fail_msg("recommend user %u: NaN score at rank %zu", u, t + 1);
  }
  for (uint32_t i = 0; i < info.n_items && i < 50; i++) {
    assert_int_equal(cofi_similar_items(m, ws, i, 8, out, &n), COFI_OK);
    if (n != (info.n_items - 1 < 8 ? info.n_items - 1 : 8))
      fail_msg("similar to item %u: %zu of %u items ranked (NaN scores?)", i, n,
               info.n_items - 1);
    for (size_t t = 0; t < n; t++)
      if (isnan(out[t].score)) fail_msg("similar to item %u: NaN score at rank %zu", i, t + 1);
  }
  cofi_workspace_free(ws);
}

/* Trains; returns the code. On success the factors must be finite and
 * rankings free of NaN; on failure the code must be COFI_ERR_NUMERIC with a
 * message, and no model. */
static int train_checked(const cofi_dataset *ds, const cofi_params *p, const char *label,
                         cofi_model **keep) {
  cofi_model *m = (cofi_model *)0x1;
  cofi_diag d = {0};
  int rc = cofi_train(ds, p, &m, &d);
  print_message("  %-40s -> %s%s%s\n", label, cofi_error_name(rc), rc ? ": " : "",
                rc ? d.message : "");
  if (rc == COFI_OK) {
    cofi_model_info info;
    cofi_model_get_info(m, &info);
    assert_all_finite(cofi_model_user_factors(m), (size_t)info.n_users * info.factors, "X");
    assert_all_finite(cofi_model_item_factors(m), (size_t)info.n_items * info.factors, "Y");
    assert_rankings_clean(m);
    if (keep) *keep = m;
    else cofi_model_close(m);
  } else {
    if (rc != COFI_ERR_NUMERIC)
      fail_msg("%s: expected success or COFI_ERR_NUMERIC, got %s: %s", label,
               cofi_error_name(rc), d.message);
    assert_null(m);
    assert_true(strlen(d.message) > 10);
    /* The remedy offered must fit: "use a regularization > 0" is wrong
     * advice when there is one already (values overflowed instead). */
    if (p->regularization > 0 && strstr(d.message, "regularization > 0"))
      fail_msg("%s: lambda is %g but the message says: %s", label, (double)p->regularization,
               d.message);
  }
  return rc;
}

static void no_regularization(void **state) {
  (void)state;
  /* Singular: 16 factors, 4 items. Cholesky must refuse it clearly. */
  cofi_dataset *ds = dataset(3, 4, 2, 1.0f);
  cofi_params p = cofi_params_default();
  p.factors = 16;
  p.iterations = 3;
  p.regularization = 0;
  p.solver = COFI_SOLVER_CHOLESKY;
  int rc = train_checked(ds, &p, "lambda 0, cholesky, singular", NULL);
  assert_int_equal(rc, COFI_ERR_NUMERIC);
  p.solver = COFI_SOLVER_CG;
  train_checked(ds, &p, "lambda 0, cg, singular", NULL);
  cofi_dataset_free(ds);
  /* Regular: many users and items, few factors; Y^T Y has full rank, so
   * the system is positive definite even without lambda. */
  ds = dataset(200, 60, 10, 1.0f);
  p.factors = 4;
  p.solver = COFI_SOLVER_CHOLESKY;
  assert_int_equal(train_checked(ds, &p, "lambda 0, cholesky, regular", NULL), COFI_OK);
  p.solver = COFI_SOLVER_CG;
  assert_int_equal(train_checked(ds, &p, "lambda 0, cg, regular", NULL), COFI_OK);
  cofi_dataset_free(ds);
}

static void sum_overflows(void **state) {
  (void)state;
  /* Each value is a finite float; their sum for the pair is not. */
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  for (int i = 0; i < 2; i++)
    assert_int_equal(cofi__dataset_add(ds, "a", 1, "x", 1, 2e38f, 0), COFI_OK);
  assert_int_equal(cofi__dataset_add(ds, "b", 1, "y", 1, 1, 0), COFI_OK);
  cofi_params p = cofi_params_default();
  p.alpha = 0; /* the confidence alone would not overflow */
  assert_int_equal(train_checked(ds, &p, "pair sum 4e38", NULL), COFI_ERR_NUMERIC);
  cofi_dataset_free(ds);
}

static void extreme_values(void **state) {
  (void)state;
  cofi_params p = cofi_params_default();
  p.factors = 8;
  p.iterations = 4;
  static const float values[] = {1e30f, 1e15f, 1e-40f, 0.0f};
  static const char *const labels[] = {"values 1e30", "values 1e15", "values 1e-40 (denormal)",
                                       "values 0"};
  for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
    cofi_dataset *ds = dataset(40, 20, 5, values[v]);
    for (int solver = 0; solver < 2; solver++) {
      p.solver = (cofi_solver)solver;
      char label[80];
      snprintf(label, sizeof label, "%s, %s", labels[v], solver ? "cholesky" : "cg");
      train_checked(ds, &p, label, NULL);
    }
    cofi_dataset_free(ds);
  }
}

static void negative_values(void **state) {
  (void)state;
  cofi_dataset *ds = dataset(10, 5, 3, -2.0f);
  cofi_params p = cofi_params_default();
  assert_int_equal(train_checked(ds, &p, "negative values", NULL), COFI_ERR_NUMERIC);
  cofi_dataset_free(ds);
}

/* Through the reader: 3e38 is a valid float, times the weight 5 is not. */
static void weighted_value_overflows(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  static const char csv[] = "user_id,item_id,value,event\nu1,i1,3e38,buy\nu2,i1,1,view\n";
  char *path = tu_write_file(dir, "data.csv", csv, sizeof csv - 1);
  static const cofi_event_weight w[] = {{"view", 1}, {"buy", 5}};
  cofi_read_options o = cofi_read_options_default();
  o.event_weights = w;
  o.n_event_weights = 2;
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  int rc = cofi_dataset_read(path, &o, &ds, &d);
  print_message("  read 3e38 x weight 5 -> %s%s%s\n", cofi_error_name(rc), rc ? ": " : "",
                rc ? d.message : "");
  /* Refused by the reader, naming the line (was: read as infinity, and
   * `cofi split` wrote "inf" into its output files). */
  assert_int_equal(rc, COFI_ERR_PARSE);
  assert_int_equal(d.line, 2);
  assert_non_null(strstr(d.message, "out of range"));
  assert_null(ds);
  cofi_dataset_free(ds);
  free(path);
  tu_rmdir(dir);
  free(dir);
}

static void ials_extremes(void **state) {
  (void)state;
  /* (n + alpha0 * n_other)^nu = (1 + 3000)^10 ~ 6e34, times lambda 100
   * overflows float. */
  cofi_dataset *ds = dataset(3000, 2, 1, 1.0f);
  cofi_params p = cofi_params_default();
  p.factors = 2;
  p.iterations = 2;
  p.reg_exponent = 10;
  p.regularization = 100;
  train_checked(ds, &p, "row lambda overflows (nu 10)", NULL);
  p.solver = COFI_SOLVER_CHOLESKY;
  train_checked(ds, &p, "row lambda overflows, cholesky", NULL);
  cofi_dataset_free(ds);
  /* Unobserved pairs weigh almost nothing and there is no lambda. */
  ds = dataset(30, 20, 3, 1.0f);
  p = cofi_params_default();
  p.factors = 8;
  p.iterations = 3;
  p.regularization = 0;
  p.unobserved_weight = 1e-9f;
  train_checked(ds, &p, "alpha0 1e-9, lambda 0, cg", NULL);
  p.solver = COFI_SOLVER_CHOLESKY;
  train_checked(ds, &p, "alpha0 1e-9, lambda 0, cholesky", NULL);
  cofi_dataset_free(ds);
}

static void fold_in_without_regularization(void **state) {
  (void)state;
  cofi_dataset *ds = dataset(200, 60, 10, 1.0f);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 3;
  p.regularization = 0;
  cofi_model *m = NULL;
  assert_int_equal(train_checked(ds, &p, "lambda 0 model for fold-in", &m), COFI_OK);
  cofi_workspace *ws = cofi_workspace_new();
  float vec[4];
  cofi_scored out[10];
  size_t n;
  /* One liked item: a rank-one update of a full-rank Gram, solvable. */
  uint32_t one = 7;
  int rc = cofi_fold_in(m, ws, &one, NULL, 1, vec);
  assert_true(rc == COFI_OK || rc == COFI_ERR_NUMERIC);
  if (rc == COFI_OK) {
    assert_all_finite(vec, 4, "fold-in vector");
    cofi_recommend_options o = cofi_recommend_options_default();
    o.k = 10;
    assert_int_equal(cofi_recommend_vector(m, ws, vec, &one, 1, &o, out, &n), COFI_OK);
    for (size_t t = 0; t < n; t++) assert_false(isnan(out[t].score));
  }
  /* Huge liked values. */
  float big[2] = {3e38f, 3e38f};
  uint32_t two[2] = {1, 2};
  rc = cofi_fold_in(m, ws, two, big, 2, vec);
  print_message("  fold-in with values 3e38 -> %s\n", cofi_error_name(rc));
  assert_true(rc == COFI_OK || rc == COFI_ERR_NUMERIC || rc == COFI_ERR_INVALID);
  if (rc == COFI_OK) assert_all_finite(vec, 4, "fold-in vector (3e38)");
  cofi_workspace_free(ws);
  cofi_model_close(m);
  cofi_dataset_free(ds);
}

/* ---- a model file with huge finite factors ------------------------------- */

static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void wr64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

/* Sets every factor to `value` and recomputes the checksums (the layout is
 * in src/model/model_file.c), as a forger or a diverged trainer would. */
static void forge_factors(unsigned char *b, size_t size, float value) {
  uint32_t n = rd32(b + 24);
  uint64_t table = rd64(b + 32);
  for (uint32_t i = 0; i < n; i++) {
    unsigned char *e = b + table + (size_t)i * 32;
    uint32_t id = rd32(e);
    uint64_t off = rd64(e + 8), len = rd64(e + 16);
    if (id == 2 || id == 3) /* USER_FACTORS, ITEM_FACTORS */
      for (uint64_t j = 0; j < len; j += 4) {
        /* Mixed signs in user vectors, so dot products meet inf - inf. */
        float x = id == 2 && (j / 4) % 2 ? -value : value;
        memcpy(b + off + j, &x, 4);
      }
    wr64(e + 24, cofi__hash_bytes(b + off, (size_t)len, 0));
  }
  wr64(b + 40, cofi__hash_bytes(b + table, (size_t)n * 32, 0));
  wr64(b + 48, cofi__hash_bytes(b, 48, 0));
  (void)size;
}

static void huge_factors_in_a_file(void **state) {
  (void)state;
  cofi_dataset *ds = dataset(20, 10, 4, 1.0f);
  cofi_params p = cofi_params_default();
  p.factors = 8;
  p.iterations = 2;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  char *dir = tu_mkdtemp();
  char path[600];
  snprintf(path, sizeof path, "%s/m.cofi", dir);
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  cofi_model_close(m);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  size_t size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(size);
  assert_int_equal(fread(b, 1, size, f), size);
  fclose(f);
  static const float values[] = {1e20f, -3e38f};
  for (size_t v = 0; v < 2; v++) {
    forge_factors(b, size, values[v]);
    cofi_model *o = NULL;
    int rc = cofi_model_open_memory(b, size, &o, &d);
    print_message("  model with factors %g -> %s%s%s\n", (double)values[v], cofi_error_name(rc),
                  rc ? ": " : "", rc ? d.message : "");
    if (rc == COFI_OK) assert_rankings_clean(o);
    else assert_int_equal(rc, COFI_ERR_CORRUPT);
    cofi_model_close(o);
  }
  free(b);
  tu_rmdir(dir);
  free(dir);
  cofi_dataset_free(ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(no_regularization),
      cmocka_unit_test(sum_overflows),
      cmocka_unit_test(extreme_values),
      cmocka_unit_test(negative_values),
      cmocka_unit_test(weighted_value_overflows),
      cmocka_unit_test(ials_extremes),
      cmocka_unit_test(fold_in_without_regularization),
      cmocka_unit_test(huge_factors_in_a_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_confidence.c — confidence transforms (train/confidence.c): the
 * trained matrix holds log1p(r/eps) or implicit's bm25 weights (checked
 * against a direct computation), a cold-start fold-in of a known user's raw
 * values gives the vector explain recomputes from the stored weights, the
 * transform and its statistics survive save/open, a version-1 file (no
 * confidence fields) still opens as linear, and bad parameters or a
 * hostile mean row sum are refused.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NU = 12, NI = 9 };

static float raw_value(int u, int i) {
  if ((u * 7 + i * 3) % 4 == 0) return 0; /* no interaction */
  return (float)(1 + (u * i + u) % 17);   /* counts 1..17 */
}

static cofi_dataset *counts(void) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  char us[16], is[16];
  for (int u = 0; u < NU; u++)
    for (int i = 0; i < NI; i++) {
      float r = raw_value(u, i);
      if (r == 0) continue;
      snprintf(us, sizeof us, "u%d", u);
      snprintf(is, sizeof is, "i%d", i);
      /* two rows per pair: the transform applies to their sum */
      assert_int_equal(cofi__dataset_add(ds, us, strlen(us), is, strlen(is), r - 0.5f, 0),
                       COFI_OK);
      assert_int_equal(cofi__dataset_add(ds, us, strlen(us), is, strlen(is), 0.5f, 0), COFI_OK);
    }
  return ds;
}

static cofi_model *train(cofi_confidence c) {
  cofi_dataset *ds = counts();
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 4;
  p.alpha = 3;
  p.regularization = 0.1f;
  p.confidence = c;
  p.epsilon = 2;
  p.bm25_k1 = 50;
  p.bm25_b = 0.7f;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_dataset_free(ds);
  return m;
}

static float stored(const cofi_model *m, int u, int i, bool *found) {
  char us[16], is[16];
  snprintf(us, sizeof us, "u%d", u);
  snprintf(is, sizeof is, "i%d", i);
  int64_t ui = cofi_model_find_user(m, us, strlen(us)), ii = cofi_model_find_item(m, is, strlen(is));
  *found = false;
  if (ui < 0 || ii < 0) return 0;
  const uint32_t *items;
  const float *vals;
  size_t n = cofi_model_user_items(m, (uint32_t)ui, &items, &vals);
  for (size_t j = 0; j < n; j++)
    if (items[j] == (uint32_t)ii) { *found = true; return vals[j]; }
  return 0;
}

static void log_weights_are_stored(void **state) {
  (void)state;
  cofi_model *m = train(COFI_CONFIDENCE_LOG);
  for (int u = 0; u < NU; u++)
    for (int i = 0; i < NI; i++) {
      bool f;
      float w = stored(m, u, i, &f);
      assert_true(f == (raw_value(u, i) != 0));
      if (f) assert_float_equal(w, log1p(raw_value(u, i) / 2.0), 1e-6);
    }
  cofi_model_close(m);
}

static void bm25_weights_match_implicit(void **state) {
  (void)state;
  cofi_model *m = train(COFI_CONFIDENCE_BM25);
  /* implicit's bm25_weight on the user x item matrix, written out. */
  double rowsum[NU] = {0}, mean = 0;
  int df[NI] = {0};
  for (int u = 0; u < NU; u++)
    for (int i = 0; i < NI; i++) {
      rowsum[u] += raw_value(u, i);
      df[i] += raw_value(u, i) != 0;
    }
  for (int u = 0; u < NU; u++) mean += rowsum[u] / NU;
  int checked = 0;
  for (int u = 0; u < NU; u++)
    for (int i = 0; i < NI; i++) {
      bool f;
      float w = stored(m, u, i, &f);
      if (!f) continue;
      double idf = fmax(0, log((double)NU) - log1p(df[i]));
      double ln = (1 - 0.7) + 0.7 * rowsum[u] / mean;
      double r = raw_value(u, i);
      assert_float_equal(w, r * 51 / (50 * ln + r) * idf, 1e-5);
      checked++;
    }
  assert_true(checked > NU * NI / 2);
  cofi_model_close(m);
}

/* The vector folded in from a user's raw values scores every item as
 * explain does from the stored weights (the user's trained row). */
static void check_fold_in_matches_explain(const cofi_model *m) {
  cofi_workspace *ws = cofi_workspace_new();
  float vec[4];
  for (int u = 0; u < NU; u++) {
    char us[16];
    snprintf(us, sizeof us, "u%d", u);
    int64_t ui = cofi_model_find_user(m, us, strlen(us));
    assert_true(ui >= 0);
    uint32_t items[NI];
    float raw[NI];
    size_t n = 0;
    for (int i = 0; i < NI; i++) {
      if (raw_value(u, i) == 0) continue;
      char is[16];
      snprintf(is, sizeof is, "i%d", i);
      items[n] = (uint32_t)cofi_model_find_item(m, is, strlen(is));
      raw[n++] = raw_value(u, i);
    }
    assert_int_equal(cofi_fold_in(m, ws, items, raw, n, vec), COFI_OK);
    cofi_explainer *e;
    assert_int_equal(cofi_explainer_new_user(m, (uint32_t)ui, &e), COFI_OK);
    cofi_explainer *h;
    assert_int_equal(cofi_explainer_new_history(m, items, raw, n, &h), COFI_OK);
    for (uint32_t it = 0; it < m->n_items; it++) {
      double s_user, s_hist;
      cofi_contribution top[2];
      size_t nt;
      assert_int_equal(cofi_explain(e, it, 2, top, &nt, &s_user), COFI_OK);
      assert_int_equal(cofi_explain(h, it, 2, top, &nt, &s_hist), COFI_OK);
      double s_fold = 0;
      for (uint32_t j = 0; j < m->factors; j++)
        s_fold += (double)vec[j] * m->item_factors[(size_t)it * m->factors + j];
      assert_float_equal(s_fold, s_user, 1e-3 * (1 + fabs(s_user)));
      assert_float_equal(s_hist, s_user, 1e-6 * (1 + fabs(s_user)));
    }
    cofi_explainer_free(e);
    cofi_explainer_free(h);
  }
  cofi_workspace_free(ws);
}

static void fold_in_transforms_raw_values(void **state) {
  (void)state;
  for (int c = 0; c < 3; c++) {
    cofi_model *m = train((cofi_confidence)c);
    check_fold_in_matches_explain(m);
    cofi_model_close(m);
  }
}

static void reseal(unsigned char *b, size_t len) {
  uint32_t n;
  memcpy(&n, b + 24, 4);
  for (uint32_t i = 0; i < n; i++) {
    unsigned char *e = b + 64 + i * 32;
    uint64_t off, l, sum;
    memcpy(&off, e + 8, 8);
    memcpy(&l, e + 16, 8);
    if (off > len || l > len - off) continue;
    sum = cofi__hash_bytes(b + off, (size_t)l, 0);
    memcpy(e + 24, &sum, 8);
  }
  uint64_t t = cofi__hash_bytes(b + 64, (size_t)n * 32, 0);
  memcpy(b + 40, &t, 8);
  uint64_t h = cofi__hash_bytes(b, 48, 0);
  memcpy(b + 48, &h, 8);
}

static unsigned char *save_bytes(const cofi_model *m, size_t *len) {
  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof path, "%s/m.cofi", dir);
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  unsigned char *b = tu_read_file(path, len);
  tu_rmdir(dir);
  free(dir);
  return b;
}

static void transform_survives_save_and_open(void **state) {
  (void)state;
  cofi_model *m = train(COFI_CONFIDENCE_BM25);
  size_t len;
  unsigned char *b = save_bytes(m, &len);
  cofi_model *o = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_model_open_memory(b, len, &o, &d), COFI_OK);
  assert_int_equal(o->params.confidence, COFI_CONFIDENCE_BM25);
  assert_float_equal(o->params.bm25_k1, 50, 0);
  assert_float_equal(o->params.bm25_b, 0.7, 1e-7);
  assert_true(o->conf_mean_rowsum == m->conf_mean_rowsum && m->conf_mean_rowsum > 0);
  for (uint32_t i = 0; i < m->n_items; i++) assert_true(o->item_idf[i] == m->item_idf[i]);
  check_fold_in_matches_explain(o);
  cofi_model_close(o);

  /* A hostile mean row sum with valid checksums. */
  uint64_t meta_off;
  memcpy(&meta_off, b + 64 + 8, 8);
  double nan = NAN;
  memcpy(b + meta_off + 136, &nan, 8);
  reseal(b, len);
  assert_int_equal(cofi_model_open_memory(b, len, &o, &d), COFI_ERR_CORRUPT);
  assert_non_null(strstr(d.message, "mean row sum"));
  uint32_t bad = 7;
  double zero = 0;
  memcpy(b + meta_off + 136, &zero, 8);
  memcpy(b + meta_off + 120, &bad, 4);
  reseal(b, len);
  assert_int_equal(cofi_model_open_memory(b, len, &o, &d), COFI_ERR_CORRUPT);
  assert_non_null(strstr(d.message, "confidence"));
  free(b);
  cofi_model_close(m);
}

static void version_1_files_open_as_linear(void **state) {
  (void)state;
  cofi_model *m = train(COFI_CONFIDENCE_LINEAR);
  size_t len;
  unsigned char *b = save_bytes(m, &len);
  uint32_t v;
  memcpy(&v, b + 8, 4);
  assert_int_equal(v, 2);
  /* What version 1 wrote: the same but no confidence fields in META. */
  v = 1;
  memcpy(b + 8, &v, 4);
  uint64_t meta_off;
  memcpy(&meta_off, b + 64 + 8, 8);
  memset(b + meta_off + 120, 0, 24);
  reseal(b, len);
  cofi_model *o = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_model_open_memory(b, len, &o, &d), COFI_OK);
  assert_int_equal(o->params.confidence, COFI_CONFIDENCE_LINEAR);
  assert_float_equal(o->params.epsilon, 1, 0);
  assert_float_equal(o->params.bm25_k1, 100, 0);
  check_fold_in_matches_explain(o);
  cofi_workspace *ws = cofi_workspace_new();
  cofi_recommend_options opt = cofi_recommend_options_default();
  opt.k = 5;
  cofi_scored a[5], c[5];
  size_t na, nc;
  for (uint32_t u = 0; u < m->n_users; u++) {
    assert_int_equal(cofi_recommend_user(m, ws, u, &opt, a, &na), COFI_OK);
    assert_int_equal(cofi_recommend_user(o, ws, u, &opt, c, &nc), COFI_OK);
    assert_int_equal(na, nc);
    assert_memory_equal(a, c, na * sizeof a[0]);
  }
  cofi_workspace_free(ws);
  cofi_model_close(o);
  /* Version 0 and 4 are refused (3 is the EASE / item-kNN format). */
  v = 4;
  memcpy(b + 8, &v, 4);
  reseal(b, len);
  assert_int_equal(cofi_model_open_memory(b, len, &o, &d), COFI_ERR_VERSION);
  v = 0;
  memcpy(b + 8, &v, 4);
  reseal(b, len);
  assert_int_equal(cofi_model_open_memory(b, len, &o, &d), COFI_ERR_CORRUPT);
  free(b);
  cofi_model_close(m);
}

static void bad_parameters_are_refused(void **state) {
  (void)state;
  cofi_diag d = {0};
  cofi_params p = cofi_params_default();
  assert_int_equal(p.confidence, COFI_CONFIDENCE_LINEAR);
  assert_int_equal(cofi_params_check(&p, &d), COFI_OK);
  p.epsilon = 0;
  assert_int_equal(cofi_params_check(&p, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "epsilon"));
  p = cofi_params_default();
  p.bm25_b = 1.5f;
  assert_int_equal(cofi_params_check(&p, &d), COFI_ERR_INVALID);
  p = cofi_params_default();
  p.confidence = (cofi_confidence)3;
  assert_int_equal(cofi_params_check(&p, &d), COFI_ERR_INVALID);
  assert_string_equal(cofi_confidence_name(COFI_CONFIDENCE_LOG), "log");
  assert_string_equal(cofi_confidence_name(COFI_CONFIDENCE_BM25), "bm25");
  assert_null(cofi_confidence_name(3));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(log_weights_are_stored),
      cmocka_unit_test(bm25_weights_match_implicit),
      cmocka_unit_test(fold_in_transforms_raw_values),
      cmocka_unit_test(transform_survives_save_and_open),
      cmocka_unit_test(version_1_files_open_as_linear),
      cmocka_unit_test(bad_parameters_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

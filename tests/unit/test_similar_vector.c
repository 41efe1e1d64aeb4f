/*
 * test_similar_vector.c — cofi_similar_items_vector against a plain double
 * loop (cosine, and projection around a center), and against
 * cofi_similar_items when the vector is one of the model's items; errors.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cofi_model *train_model(void) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  uint64_t r = 5;
  char u[16], it[16];
  for (int a = 0; a < 40; a++)
    for (int t = 0; t < 8; t++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      int i = (a % 4) * 10 + (int)((r >> 33) % 10);
      int ul = snprintf(u, sizeof u, "u%d", a), il = snprintf(it, sizeof it, "i%d", i);
      assert_int_equal(cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, 1, 0), COFI_OK);
    }
  cofi_params p = cofi_params_default();
  p.factors = 5; p.iterations = 4; p.threads = 1;
  cofi_model *m;
  assert_int_equal(cofi_train(ds, &p, &m, NULL), COFI_OK);
  cofi_dataset_free(ds);
  return m;
}

static double ref_score(const cofi_model *m, const float *v, const float *c, uint32_t i) {
  uint32_t k = m->factors;
  double dot = 0, a = 0, b = 0;
  for (uint32_t f = 0; f < k; f++) {
    double q = v[f] - (c ? c[f] : 0), y = m->item_factors[i * k + f] - (c ? c[f] : 0);
    dot += q * y;
    a += q * q;
    b += y * y;
  }
  if (c) return a > 0 ? dot / sqrt(a) : 0; /* projection on the direction of v - c */
  return a * b > 0 ? dot / sqrt(a * b) : 0;
}

static void test_against_reference(void **state) {
  (void)state;
  cofi_model *m = train_model();
  cofi_workspace *ws = cofi_workspace_new();
  float v[5] = {0.3f, -0.1f, 0.5f, 0.2f, -0.4f}, c[5] = {0.1f, 0.05f, -0.02f, 0.2f, 0.0f};
  cofi_scored out[8];
  for (int centered = 0; centered < 2; centered++) {
    const float *cp = centered ? c : NULL;
    size_t n = 0;
    assert_int_equal(cofi_similar_items_vector(m, ws, v, cp, 8, out, &n), COFI_OK);
    assert_int_equal(n, 8);
    /* each score right, in order, and nothing left out beats the last */
    for (size_t j = 0; j < n; j++) {
      double want = ref_score(m, v, cp, out[j].index);
      if (fabs(out[j].score - want) > 1e-5) fail_msg("item %u: %g, reference %g", out[j].index, out[j].score, want);
      if (j) assert_true(out[j - 1].score >= out[j].score);
    }
    for (uint32_t i = 0; i < m->n_items; i++) {
      bool in = false;
      for (size_t j = 0; j < n; j++) in = in || out[j].index == i;
      if (!in) assert_true(ref_score(m, v, cp, i) <= out[n - 1].score + 1e-5);
    }
  }
  cofi_workspace_free(ws);
  cofi_model_close(m);
}

/* The vector of item q itself: q first (cosine 1), then cofi_similar_items's list. */
static void test_same_as_similar_items(void **state) {
  (void)state;
  cofi_model *m = train_model();
  cofi_workspace *ws = cofi_workspace_new();
  uint32_t q = 7;
  cofi_scored a[6], b[5];
  size_t na, nb;
  assert_int_equal(cofi_similar_items_vector(m, ws, m->item_factors + q * m->factors, NULL, 6, a, &na), COFI_OK);
  assert_int_equal(cofi_similar_items(m, ws, q, 5, b, &nb), COFI_OK);
  assert_int_equal(na, 6);
  assert_int_equal(nb, 5);
  assert_int_equal(a[0].index, q);
  assert_float_equal(a[0].score, 1.0f, 1e-5);
  for (size_t j = 0; j < 5; j++) {
    assert_int_equal(a[j + 1].index, b[j].index);
    assert_float_equal(a[j + 1].score, b[j].score, 1e-5);
  }
  assert_int_equal(cofi_similar_items_vector(m, ws, m->item_factors, NULL, 0, a, &na),
                   COFI_ERR_INVALID);
  assert_int_equal(cofi_similar_items_vector(m, ws, NULL, NULL, 3, a, &na), COFI_ERR_INVALID);
  cofi_workspace_free(ws);
  cofi_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_against_reference),
      cmocka_unit_test(test_same_as_similar_items),
  };
  return tu_run_per_kernel_set("similar_vector", tests, sizeof tests / sizeof tests[0]);
}

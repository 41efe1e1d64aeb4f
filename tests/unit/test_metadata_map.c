/*
 * test_metadata_map.c — the metadata map (src/recommend/metadata_map.c):
 * the ridge map against a slow, obvious reference (the centered normal
 * equations built from a dense one-hot matrix, solved by Gauss-Jordan in
 * double), the mean map on hand-computed numbers, unknown and repeated
 * categories, items without categories, the model's own genres field, and
 * the errors.
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
  uint64_t r = 11;
  char u[16], it[16];
  for (int a = 0; a < 50; a++)
    for (int t = 0; t < 8; t++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      int i = (a % 4) * 8 + (int)((r >> 33) % 8);
      int ul = snprintf(u, sizeof u, "u%d", a), il = snprintf(it, sizeof it, "i%d", i);
      assert_int_equal(cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, 1, 0), COFI_OK);
    }
  cofi_params p = cofi_params_default();
  p.factors = 6; p.iterations = 5; p.threads = 1;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_dataset_free(ds);
  return m;
}

/* The categories of item i in the synthetic catalogue: "g<i%4>" and
 * "h<i%3>", item 5 none, item 7 "g3" twice. */
static const char *const names[] = {"g0", "g1", "g2", "g3", "h0", "h1", "h2"};
#define N_NAMES 7
static size_t item_cats(uint32_t i, const char **out) {
  if (i == 5) return 0;
  out[0] = names[i % 4];
  out[1] = names[4 + i % 3];
  if (i == 7) { out[2] = names[3]; return 3; }
  return 2;
}

static void build_lists(const cofi_model *m, const char ***cats, size_t **offsets) {
  *cats = malloc(3 * m->n_items * sizeof **cats);
  *offsets = malloc((m->n_items + 1) * sizeof **offsets);
  (*offsets)[0] = 0;
  for (uint32_t i = 0; i < m->n_items; i++)
    (*offsets)[i + 1] = (*offsets)[i] + item_cats(i, *cats + (*offsets)[i]);
}

static int name_index(const char *s) {
  for (int c = 0; c < N_NAMES; c++)
    if (!strcmp(names[c], s)) return c;
  return -1;
}

/* Ridge by the book: X (n x C one-hot, distinct), Yc = Y - mean,
 * W = (X^T X + lambda I)^-1 X^T Yc by Gauss-Jordan on [A | B]. */
static void ridge_reference(const cofi_model *m, double lambda, double W[N_NAMES][16],
                            double mean[16]) {
  uint32_t k = m->factors, n = m->n_items;
  double X[64][N_NAMES];
  memset(X, 0, sizeof X);
  for (uint32_t i = 0; i < n; i++) {
    const char *c[3];
    size_t nc = item_cats(i, c);
    for (size_t j = 0; j < nc; j++) X[i][name_index(c[j])] = 1;
  }
  for (uint32_t f = 0; f < k; f++) {
    mean[f] = 0;
    for (uint32_t i = 0; i < n; i++) mean[f] += m->item_factors[i * k + f];
    mean[f] /= n;
  }
  double G[N_NAMES][N_NAMES + 16];
  for (int a = 0; a < N_NAMES; a++) {
    for (int b = 0; b < N_NAMES; b++) {
      G[a][b] = a == b ? lambda : 0;
      for (uint32_t i = 0; i < n; i++) G[a][b] += X[i][a] * X[i][b];
    }
    for (uint32_t f = 0; f < k; f++) {
      G[a][N_NAMES + f] = 0;
      for (uint32_t i = 0; i < n; i++) G[a][N_NAMES + f] += X[i][a] * (m->item_factors[i * k + f] - mean[f]);
    }
  }
  int cols = N_NAMES + (int)k;
  for (int p = 0; p < N_NAMES; p++) {
    int best = p;
    for (int r = p + 1; r < N_NAMES; r++)
      if (fabs(G[r][p]) > fabs(G[best][p])) best = r;
    for (int c = 0; c < cols; c++) { double t = G[p][c]; G[p][c] = G[best][c]; G[best][c] = t; }
    double piv = G[p][p];
    for (int c = 0; c < cols; c++) G[p][c] /= piv;
    for (int r = 0; r < N_NAMES; r++) {
      if (r == p) continue;
      double f = G[r][p];
      for (int c = 0; c < cols; c++) G[r][c] -= f * G[p][c];
    }
  }
  for (int a = 0; a < N_NAMES; a++)
    for (uint32_t f = 0; f < k; f++) W[a][f] = G[a][N_NAMES + f];
}

static void test_ridge_matches_reference(void **state) {
  (void)state;
  cofi_model *m = train_model();
  assert_true(m->n_items <= 64 && m->factors <= 16);
  const char **cats;
  size_t *offsets;
  build_lists(m, &cats, &offsets);
  cofi_metadata_map_options o = cofi_metadata_map_options_default();
  assert_int_equal(o.kind, COFI_METADATA_MAP_RIDGE);
  o.lambda = 0.7f;
  cofi_metadata_map *map;
  cofi_diag d = {0};
  assert_int_equal(cofi_metadata_map_fit(m, cats, NULL, offsets, &o, &map, &d), COFI_OK);
  assert_int_equal(cofi_metadata_map_n_categories(map), N_NAMES);
  assert_int_equal(cofi_metadata_map_factors(map), m->factors);
  double W[N_NAMES][16], mean[16];
  ridge_reference(m, 0.7, W, mean);
  /* every pair of categories, plus each alone */
  for (int a = 0; a < N_NAMES; a++)
    for (int b = a; b < N_NAMES; b++) {
      const char *q[2] = {names[a], names[b]};
      size_t nq = a == b ? 1 : 2, known;
      float v[16];
      assert_int_equal(cofi_metadata_map_vector(map, q, NULL, nq, v, &known), COFI_OK);
      assert_int_equal(known, nq);
      for (uint32_t f = 0; f < m->factors; f++) {
        double want = mean[f] + W[a][f] + (a == b ? 0 : W[b][f]);
        if (fabs(v[f] - want) > 1e-5 + 1e-4 * fabs(want))
          fail_msg("categories %s,%s factor %u: %.9g, reference %.9g", names[a], names[b], f,
                   (double)v[f], want);
      }
    }
  cofi_metadata_map_free(map);
  free(cats);
  free(offsets);
  cofi_model_close(m);
}

/* Three items with factors written out: y0 = (1,0) {a}, y1 = (3,2) {a,b},
 * y2 = (0,4) {b}; a fourth, not used, must not count. */
static const float Y3[8] = {1, 0, 3, 2, 0, 4, 100, 100};
static const char *const C3[] = {"a", "a", "b", "b", "a"};
static const size_t O3[5] = {0, 1, 3, 4, 5};
static const bool use3[4] = {true, true, true, false};

static void test_mean_by_hand(void **state) {
  (void)state;
  cofi_metadata_map_options o = {COFI_METADATA_MAP_MEAN, 1.0f};
  cofi_metadata_map *map;
  cofi_diag d = {0};
  assert_int_equal(cofi__metadata_map_fit_rows(Y3, 4, 2, use3, C3, NULL, O3, &o, &map, &d), COFI_OK);
  float v[2];
  size_t known;
  const char *ab[] = {"a", "b"}, *a[] = {"a"}, *b[] = {"b"};
  assert_int_equal(cofi_metadata_map_vector(map, a, NULL, 1, v, &known), COFI_OK);
  assert_int_equal(known, 1);
  assert_float_equal(v[0], 2.0f, 1e-6); /* (1 + 3) / 2 */
  assert_float_equal(v[1], 1.0f, 1e-6);
  assert_int_equal(cofi_metadata_map_vector(map, b, NULL, 1, v, &known), COFI_OK);
  assert_float_equal(v[0], 1.5f, 1e-6);
  assert_float_equal(v[1], 3.0f, 1e-6);
  assert_int_equal(cofi_metadata_map_vector(map, ab, NULL, 2, v, &known), COFI_OK);
  assert_int_equal(known, 2);
  assert_float_equal(v[0], 1.75f, 1e-6);
  assert_float_equal(v[1], 2.0f, 1e-6);
  cofi_metadata_map_free(map);
}

/* Ridge by hand on the same three items, lambda 1: mean (4/3, 2),
 * A = [[3, 1], [1, 3]], B_a = y0 + y1 - 2 mean, B_b = y1 + y2 - 2 mean. */
static void test_ridge_by_hand(void **state) {
  (void)state;
  cofi_metadata_map_options o = {COFI_METADATA_MAP_RIDGE, 1.0f};
  cofi_metadata_map *map;
  assert_int_equal(cofi__metadata_map_fit_rows(Y3, 4, 2, use3, C3, NULL, O3, &o, &map, NULL), COFI_OK);
  double mean[2] = {4.0 / 3, 2}, Ba[2], Bb[2];
  for (int f = 0; f < 2; f++) {
    Ba[f] = Y3[f] + Y3[2 + f] - 2 * mean[f];
    Bb[f] = Y3[2 + f] + Y3[4 + f] - 2 * mean[f];
  }
  /* [[3,1],[1,3]]^-1 = [[3,-1],[-1,3]] / 8 */
  const char *a[] = {"a"};
  float v[2];
  assert_int_equal(cofi_metadata_map_vector(map, a, NULL, 1, v, NULL), COFI_OK);
  for (int f = 0; f < 2; f++)
    assert_float_equal(v[f], mean[f] + (3 * Ba[f] - Bb[f]) / 8, 1e-5);
  cofi_metadata_map_free(map);
}

static void test_unknown_repeated_and_none(void **state) {
  (void)state;
  for (int kind = 0; kind < 2; kind++) {
    cofi_metadata_map_options o = {(cofi_metadata_map_kind)kind, 1.0f};
    cofi_metadata_map *map;
    assert_int_equal(cofi__metadata_map_fit_rows(Y3, 4, 2, use3, C3, NULL, O3, &o, &map, NULL),
                     COFI_OK);
    float v[2], w[2];
    size_t known = 99;
    const char *a[] = {"a"}, *a_unknown[] = {"zz", "a", "a", "yy"}, *none[] = {"zz"};
    size_t lens[] = {2, 1, 1, 2};
    assert_int_equal(cofi_metadata_map_vector(map, a, NULL, 1, v, NULL), COFI_OK);
    assert_int_equal(cofi_metadata_map_vector(map, a_unknown, lens, 4, w, &known), COFI_OK);
    assert_int_equal(known, 1); /* unknown ones ignored, the repeat counted once */
    assert_memory_equal(v, w, sizeof v);
    /* nothing known, or nothing at all: the mean of the fitted items */
    assert_int_equal(cofi_metadata_map_vector(map, none, NULL, 1, w, &known), COFI_OK);
    assert_int_equal(known, 0);
    assert_float_equal(w[0], 4.0f / 3, 1e-6);
    assert_float_equal(w[1], 2.0f, 1e-6);
    assert_int_equal(cofi_metadata_map_vector(map, NULL, NULL, 0, w, &known), COFI_OK);
    assert_int_equal(known, 0);
    assert_float_equal(w[0], 4.0f / 3, 1e-6);
    assert_int_equal(cofi_metadata_map_vector(map, NULL, NULL, 1, w, &known), COFI_ERR_INVALID);
    assert_int_equal(cofi_metadata_map_vector(map, a, NULL, 1, NULL, &known), COFI_ERR_INVALID);
    cofi_metadata_map_free(map);
  }
}

static void test_errors(void **state) {
  (void)state;
  cofi_metadata_map *map = (cofi_metadata_map *)1;
  cofi_diag d = {0};
  cofi_metadata_map_options o = {COFI_METADATA_MAP_RIDGE, 0.0f};
  assert_int_equal(cofi__metadata_map_fit_rows(Y3, 4, 2, use3, C3, NULL, O3, &o, &map, &d),
                   COFI_ERR_INVALID);
  assert_null(map);
  assert_non_null(strstr(d.message, "lambda"));
  o.lambda = NAN;
  assert_int_equal(cofi__metadata_map_fit_rows(Y3, 4, 2, use3, C3, NULL, O3, &o, &map, &d),
                   COFI_ERR_INVALID);
  o = (cofi_metadata_map_options){(cofi_metadata_map_kind)7, 1.0f};
  assert_int_equal(cofi__metadata_map_fit_rows(Y3, 4, 2, use3, C3, NULL, O3, &o, &map, &d),
                   COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "kind"));
  o.kind = COFI_METADATA_MAP_MEAN;
  const size_t bad_off[5] = {0, 2, 1, 4, 5};
  assert_int_equal(cofi__metadata_map_fit_rows(Y3, 4, 2, NULL, C3, NULL, bad_off, &o, &map, &d),
                   COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "decrease at item 1"));
  const char *empty[] = {"a", ""};
  const size_t off2[3] = {0, 1, 2};
  assert_int_equal(cofi__metadata_map_fit_rows(Y3, 2, 2, NULL, empty, NULL, off2, &o, &map, &d),
                   COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "item 1 has an empty category"));
  const size_t none[5] = {0, 0, 0, 0, 0};
  assert_int_equal(cofi__metadata_map_fit_rows(Y3, 4, 2, NULL, C3, NULL, none, &o, &map, &d),
                   COFI_ERR_EMPTY);
  assert_non_null(strstr(d.message, "no item has a category"));
  assert_int_equal(cofi_metadata_map_fit(NULL, C3, NULL, O3, &o, &map, &d), COFI_ERR_INVALID);
  assert_string_equal(cofi_metadata_map_kind_name(1), "mean");
  assert_null(cofi_metadata_map_kind_name(2));
  assert_int_equal(cofi_metadata_map_kind_parse("ridge", 5), COFI_METADATA_MAP_RIDGE);
  assert_int_equal(cofi_metadata_map_kind_parse("mean", 4), COFI_METADATA_MAP_MEAN);
  assert_int_equal(cofi_metadata_map_kind_parse("ridg", 4), -1);
  cofi_metadata_map_free(NULL);
}

/* The model's own "genres" field, split on '|', "(no genres listed)" no
 * category; a model without the field is NOT_FOUND naming its fields. */
static void test_model_field(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  static const char ratings[] = "user_id,item_id\nu1,a\nu1,b\nu2,b\nu2,c\nu3,a\nu3,c\nu4,d\n";
  static const char items[] =
      "item_id,title,genres\na,A,X|Y\nb,B,Y\nc,C,X\nd,D,(no genres listed)\n";
  char *rp = tu_write_file(dir, "r.csv", ratings, sizeof ratings - 1);
  char *ip = tu_write_file(dir, "i.csv", items, sizeof items - 1);
  cofi_read_options ro = cofi_read_options_default();
  cofi_dataset *ds;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(rp, &ro, &ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_read_items(ds, ip, NULL, &d), COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 3; p.iterations = 3; p.threads = 1;
  cofi_model *m;
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_metadata_map_options o = {COFI_METADATA_MAP_MEAN, 1.0f};
  cofi_metadata_map *map;
  assert_int_equal(cofi_metadata_map_fit_field(m, NULL, &o, &map, &d), COFI_OK);
  assert_int_equal(cofi_metadata_map_n_categories(map), 2); /* X, Y */
  /* X's mean is the mean of a's and c's factors */
  const char *x[] = {"X"};
  float v[3];
  assert_int_equal(cofi_metadata_map_vector(map, x, NULL, 1, v, NULL), COFI_OK);
  int64_t a = cofi_model_find_item(m, "a", 1), c = cofi_model_find_item(m, "c", 1);
  const float *Y = cofi_model_item_factors(m);
  for (int f = 0; f < 3; f++) assert_float_equal(v[f], (Y[a * 3 + f] + Y[c * 3 + f]) / 2, 1e-6);
  cofi_metadata_map_free(map);
  assert_int_equal(cofi_metadata_map_fit_field(m, "tags", &o, &map, &d), COFI_ERR_NOT_FOUND);
  assert_null(map);
  assert_non_null(strstr(d.message, "no field 'tags'"));
  assert_non_null(strstr(d.message, "'genres'"));
  cofi_model_close(m);
  cofi_dataset_free(ds);
  free(rp);
  free(ip);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ridge_matches_reference),
      cmocka_unit_test(test_mean_by_hand),
      cmocka_unit_test(test_ridge_by_hand),
      cmocka_unit_test(test_unknown_repeated_and_none),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_model_field),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_item_models.c — EASE and item-kNN against slow, obvious references
 * on a tiny matrix: EASE's B from X^T X + lambda I inverted by Gauss-Jordan
 * in double precision; item-kNN's neighbours from the dense item x item
 * products of the weighted matrix, sorted by hand. Then the queries
 * (known user, history, batch, similar items) against brute force, the
 * ALS-only functions refusing these kinds, the memory limit, and the model
 * file: round trip byte for byte, every truncation and every byte flip
 * refused, sections of the wrong kind refused.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU 7
#define NI 6

/* r[u][i] > 0: user u has item i with that value. */
static const float R[NU][NI] = {
    {1, 0, 2, 0, 1, 0}, {0, 1, 1, 0, 0, 3}, {1, 1, 0, 1, 0, 0}, {0, 0, 1, 1, 1, 0},
    {2, 0, 0, 0, 1, 1}, {1, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 1, 1},
};

/* Users "u0".."u6" and items "i0".."i5"; model indices follow first
 * appearance, so the checks map them back with col_of / row_of. */
static cofi_dataset *tiny(void) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  char u[8], it[8];
  for (int x = 0; x < NU; x++)
    for (int i = 0; i < NI; i++)
      if (R[x][i] > 0) {
        snprintf(u, sizeof u, "u%d", x);
        snprintf(it, sizeof it, "i%d", i);
        assert_int_equal(cofi__dataset_add(ds, u, strlen(u), it, strlen(it), R[x][i], 0), COFI_OK);
      }
  return ds;
}

/* Column number of model item index i ("iN" -> N). */
static int col_of(const cofi_model *m, uint32_t i) {
  size_t len;
  const char *id = cofi_model_item_id(m, i, &len);
  return atoi(id + 1);
}

static cofi_model *train_kind(cofi_model_kind kind, cofi_knn_weighting w, uint32_t k) {
  cofi_dataset *ds = tiny();
  cofi_params p = cofi_params_default();
  p.model = kind;
  p.lambda = 2.0f;
  p.knn_weighting = w;
  p.neighbors = k;
  p.threads = 2;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  int rc = cofi_train(ds, &p, &m, &d);
  if (rc) fail_msg("train: %s", d.message);
  cofi_dataset_free(ds);
  return m;
}

/* Gauss-Jordan inverse of the n x n matrix a (destroyed) into inv. */
static void gauss_jordan(double *a, double *inv, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) inv[i * n + j] = i == j;
  for (int c = 0; c < n; c++) {
    int piv = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(a[r * n + c]) > fabs(a[piv * n + c])) piv = r;
    for (int j = 0; j < n; j++) {
      double t = a[c * n + j]; a[c * n + j] = a[piv * n + j]; a[piv * n + j] = t;
      t = inv[c * n + j]; inv[c * n + j] = inv[piv * n + j]; inv[piv * n + j] = t;
    }
    double d = a[c * n + c];
    for (int j = 0; j < n; j++) {
      a[c * n + j] /= d;
      inv[c * n + j] /= d;
    }
    for (int r = 0; r < n; r++) {
      if (r == c) continue;
      double f = a[r * n + c];
      for (int j = 0; j < n; j++) {
        a[r * n + j] -= f * a[c * n + j];
        inv[r * n + j] -= f * inv[c * n + j];
      }
    }
  }
}

/* The reference B over columns (binarized X, lambda 2). */
static void ease_reference(double B[NI][NI]) {
  double G[NI * NI], P[NI * NI];
  for (int i = 0; i < NI; i++)
    for (int j = 0; j < NI; j++) {
      double s = 0;
      for (int u = 0; u < NU; u++) s += (R[u][i] > 0) * (R[u][j] > 0);
      G[i * NI + j] = s + (i == j ? 2.0 : 0.0);
    }
  gauss_jordan(G, P, NI);
  for (int i = 0; i < NI; i++)
    for (int j = 0; j < NI; j++) B[i][j] = i == j ? 0.0 : -P[i * NI + j] / P[j * NI + j];
}

static void ease_matches_gauss_jordan(void **state) {
  (void)state;
  cofi_model *m = train_kind(COFI_MODEL_EASE, COFI_KNN_COSINE, 100);
  double B[NI][NI];
  ease_reference(B);
  assert_int_equal(m->n_items, NI);
  assert_int_equal(m->factors, 0);
  for (uint32_t i = 0; i < NI; i++)
    for (uint32_t j = 0; j < NI; j++) {
      double got = m->ease_weights[(size_t)i * NI + j], want = B[col_of(m, i)][col_of(m, j)];
      if (fabs(got - want) > 1e-5 + 1e-4 * fabs(want))
        fail_msg("B[%u][%u] = %g, reference %g", i, j, got, want);
    }
  /* A known user's scores: x_u B over the binarized row, seen items dropped. */
  cofi_workspace *ws = cofi_workspace_new();
  cofi_scored out[NI];
  size_t n;
  cofi_recommend_options opt = cofi_recommend_options_default();
  opt.k = NI;
  for (uint32_t u = 0; u < m->n_users; u++) {
    size_t len;
    int row = atoi(cofi_model_user_id(m, u, &len) + 1);
    assert_int_equal(cofi_recommend_user(m, ws, u, &opt, out, &n), COFI_OK);
    size_t unseen = 0;
    for (int j = 0; j < NI; j++) unseen += R[row][j] == 0;
    assert_int_equal(n, unseen);
    for (size_t r = 0; r < n; r++) {
      int j = col_of(m, out[r].index);
      assert_true(R[row][j] == 0);
      double s = 0;
      for (int i = 0; i < NI; i++) s += (R[row][i] > 0) * B[i][j];
      assert_true(fabs(out[r].score - s) < 1e-4);
      if (r) assert_true(out[r - 1].score >= out[r].score);
    }
  }
  cofi_workspace_free(ws);
  cofi_model_close(m);
}

/* The reference neighbours: weighted item x user rows, dense products. */
static void knn_reference(cofi_knn_weighting w, double S[NI][NI]) {
  double A[NI][NU];
  double idf[NU];
  for (int u = 0; u < NU; u++) {
    int df = 0;
    for (int i = 0; i < NI; i++) df += R[u][i] > 0;
    idf[u] = log((double)NI) - log1p((double)df);
  }
  double mean = 0;
  for (int i = 0; i < NI; i++)
    for (int u = 0; u < NU; u++) mean += R[u][i];
  mean /= NI;
  for (int i = 0; i < NI; i++) {
    double rowsum = 0, norm = 0;
    for (int u = 0; u < NU; u++) rowsum += R[u][i];
    for (int u = 0; u < NU; u++) {
      double r = R[u][i];
      if (w == COFI_KNN_COSINE) A[i][u] = r;
      else if (w == COFI_KNN_TFIDF) A[i][u] = r > 0 ? sqrt(r) * idf[u] : 0;
      else {
        double ln = 0.2 + 0.8 * rowsum / mean;
        A[i][u] = r > 0 ? r * 101.0 / (100.0 * ln + r) * idf[u] : 0;
      }
      norm += A[i][u] * A[i][u];
    }
    if (w != COFI_KNN_BM25)
      for (int u = 0; u < NU; u++) A[i][u] /= sqrt(norm);
  }
  for (int i = 0; i < NI; i++)
    for (int j = 0; j < NI; j++) {
      double s = 0;
      for (int u = 0; u < NU; u++) s += A[i][u] * A[j][u];
      S[i][j] = s;
    }
}

static void knn_matches_brute_force(void **state) {
  (void)state;
  const uint32_t K = 2;
  for (int w = COFI_KNN_COSINE; w <= COFI_KNN_BM25; w++) {
    cofi_model *m = train_kind(COFI_MODEL_ITEMKNN, (cofi_knn_weighting)w, K);
    double S[NI][NI];
    knn_reference((cofi_knn_weighting)w, S);
    const cofi__csr *N = &m->neighbors;
    for (uint32_t i = 0; i < NI; i++) {
      int ci = col_of(m, i);
      /* the reference's top K of j != i with S > 0 (ties by lower index) */
      int best[NI];
      int nb = 0;
      for (uint32_t j = 0; j < NI; j++) {
        int cj = col_of(m, j);
        if (j != i && S[ci][cj] > 1e-12) best[nb++] = (int)j;
      }
      for (int a = 0; a < nb; a++)
        for (int b = a + 1; b < nb; b++) {
          double sa = S[ci][col_of(m, (uint32_t)best[a])], sb = S[ci][col_of(m, (uint32_t)best[b])];
          if (sb > sa + 1e-9 || (fabs(sb - sa) <= 1e-9 && best[b] < best[a])) {
            int t = best[a]; best[a] = best[b]; best[b] = t;
          }
        }
      uint32_t want = nb < (int)K ? (uint32_t)nb : K;
      assert_int_equal(N->indptr[i + 1] - N->indptr[i], want);
      for (uint32_t q = 0; q < want; q++) {
        bool found = false;
        for (uint64_t t = N->indptr[i]; t < N->indptr[i + 1]; t++)
          if ((int)N->indices[t] == best[q]) {
            found = true;
            double ref = S[ci][col_of(m, N->indices[t])];
            if (fabs(N->data[t] - ref) > 1e-5 * (1 + fabs(ref)))
              fail_msg("%s: S[%u][%u] = %g, reference %g", cofi_knn_weighting_name(w), i,
                       N->indices[t], (double)N->data[t], ref);
          }
        if (!found) fail_msg("%s: item %u misses neighbour %d", cofi_knn_weighting_name(w), i, best[q]);
      }
    }
    cofi_model_close(m);
  }
}

/* cofi_recommend_history and cofi_recommend_users agree with
 * cofi_recommend_user; similar items are B's row / the neighbour row. */
static void queries_agree(void **state) {
  (void)state;
  for (int kind = COFI_MODEL_EASE; kind <= COFI_MODEL_ITEMKNN; kind++) {
    cofi_model *m = train_kind((cofi_model_kind)kind, COFI_KNN_COSINE, 3);
    cofi_workspace *ws = cofi_workspace_new();
    cofi_recommend_options opt = cofi_recommend_options_default();
    opt.k = 3;
    cofi_scored a[3], b[3], all[NU * 3];
    uint32_t n_all[NU];
    size_t na, nb;
    assert_int_equal(cofi_recommend_users(m, NULL, m->n_users, 3, 1, 2, all, n_all), COFI_OK);
    for (uint32_t u = 0; u < m->n_users; u++) {
      assert_int_equal(cofi_recommend_user(m, ws, u, &opt, a, &na), COFI_OK);
      const uint32_t *items;
      const float *w;
      size_t nh = cofi_model_user_items(m, u, &items, &w);
      /* linear transform: the stored weights are the raw values */
      assert_int_equal(cofi_recommend_history(m, ws, items, w, nh, 3, NULL, b, &nb), COFI_OK);
      assert_int_equal(na, nb);
      assert_int_equal(n_all[u], na);
      for (size_t r = 0; r < na; r++) {
        assert_int_equal(a[r].index, b[r].index);
        assert_int_equal(a[r].index, all[u * 3 + r].index);
        assert_true(fabsf(a[r].score - b[r].score) <= 1e-6f * (1 + fabsf(a[r].score)));
      }
    }
    /* similar items: the row, the item itself excluded */
    cofi_scored s[NI];
    size_t ns;
    assert_int_equal(cofi_similar_items(m, ws, 0, NI, s, &ns), COFI_OK);
    for (size_t r = 0; r < ns; r++) {
      assert_int_not_equal(s[r].index, 0);
      float want = -INFINITY;
      if (kind == COFI_MODEL_EASE) want = m->ease_weights[s[r].index];
      else
        for (uint64_t t = m->neighbors.indptr[0]; t < m->neighbors.indptr[1]; t++)
          if (m->neighbors.indices[t] == s[r].index) want = m->neighbors.data[t];
      assert_true(s[r].score == want);
    }
    assert_int_equal(cofi_similar_items(m, ws, NI, 3, s, &ns), COFI_ERR_NOT_FOUND);
    /* history errors */
    uint32_t bad = NI;
    float neg = -1.0f;
    uint32_t one = 0;
    assert_int_equal(cofi_recommend_history(m, ws, &bad, NULL, 1, 3, NULL, b, &nb), COFI_ERR_NOT_FOUND);
    assert_int_equal(cofi_recommend_history(m, ws, &one, &neg, 1, 3, NULL, b, &nb), COFI_ERR_INVALID);
    assert_int_equal(cofi_recommend_history(m, ws, &one, NULL, 0, 3, NULL, b, &nb), COFI_ERR_INVALID);
    /* ALS-only functions refuse, and say why */
    float vec[8];
    cofi_explainer *e = NULL;
    assert_int_equal(cofi_fold_in(m, ws, &one, NULL, 1, vec), COFI_ERR_INVALID);
    assert_int_equal(cofi_recommend_vector(m, ws, vec, NULL, 0, &opt, a, &na), COFI_ERR_INVALID);
    assert_int_equal(cofi_similar_users(m, ws, 0, 2, s, &ns), COFI_ERR_INVALID);
    assert_int_equal(cofi_explainer_new_user(m, 0, &e), COFI_ERR_INVALID);
    assert_int_equal(cofi_explainer_new_history(m, &one, NULL, 1, &e), COFI_ERR_INVALID);
    assert_null(cofi_model_user_factors(m));
    assert_int_equal(cofi_model_kind_of(m), kind);
    char want[96];
    snprintf(want, sizeof want, "explaining needs an ALS model; this model is %s",
             cofi_model_kind_name(kind));
    assert_string_equal(cofi_model_kind_error(m, "explaining"), want);
    cofi_workspace_free(ws);
    cofi_model_close(m);
  }
}

/* The same history recommends the same way for ALS through fold-in. */
static void history_on_als_is_fold_in(void **state) {
  (void)state;
  cofi_model *m = train_kind(COFI_MODEL_ALS, COFI_KNN_COSINE, 1);
  cofi_workspace *ws = cofi_workspace_new();
  uint32_t items[2] = {0, 2};
  float vec[COFI_MAX_FACTORS];
  cofi_recommend_options opt = cofi_recommend_options_default();
  opt.k = 3;
  cofi_scored a[3], b[3];
  size_t na, nb;
  assert_int_equal(cofi_fold_in(m, ws, items, NULL, 2, vec), COFI_OK);
  assert_int_equal(cofi_recommend_vector(m, ws, vec, items, 2, &opt, a, &na), COFI_OK);
  assert_int_equal(cofi_recommend_history(m, ws, items, NULL, 2, 3, &opt, b, &nb), COFI_OK);
  assert_int_equal(na, nb);
  for (size_t r = 0; r < na; r++) {
    assert_int_equal(a[r].index, b[r].index);
    assert_true(a[r].score == b[r].score);
  }
  cofi_workspace_free(ws);
  cofi_model_close(m);
}

static void ease_memory_limit(void **state) {
  (void)state;
  cofi_dataset *ds = tiny();
  cofi_params p = cofi_params_default();
  p.model = COFI_MODEL_EASE;
  p.max_memory = NI * NI * 4 - 1; /* one byte short */
  cofi_model *m = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_ERR_INVALID);
  assert_null(m);
  assert_non_null(strstr(d.message, "6 x 6 floats"));
  assert_non_null(strstr(d.message, "--max-memory"));
  p.max_memory = NI * NI * 4;
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_model_close(m);
  p.lambda = 0;
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "lambda"));
  p = cofi_params_default();
  p.model = (cofi_model_kind)7;
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "model must be"));
  cofi_dataset_free(ds);
}

static int open_buf(const unsigned char *b, size_t len, cofi_diag *d) {
  cofi_model *m = NULL;
  int rc = cofi_model_open_memory(b, len, &m, d);
  if (rc == COFI_OK) cofi_model_close(m);
  else assert_null(m);
  return rc;
}

/* Rewrites checksums so that only the semantic checks stand in the way. */
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

static unsigned char *saved(cofi_model *m, const char *dir, const char *name, size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  return tu_read_file(path, len);
}

static void model_file_round_trip_and_damage(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  for (int kind = COFI_MODEL_EASE; kind <= COFI_MODEL_ITEMKNN; kind++) {
    cofi_model *m = train_kind((cofi_model_kind)kind, COFI_KNN_TFIDF, 3);
    size_t len, len2;
    unsigned char *b = saved(m, dir, "a.cofi", &len);
    uint32_t version;
    memcpy(&version, b + 8, 4);
    assert_int_equal(version, 3);
    cofi_model *o = NULL;
    cofi_diag d = {0};
    assert_int_equal(cofi_model_open_memory(b, len, &o, &d), COFI_OK);
    cofi_model_info mi, oi;
    cofi_model_get_info(m, &mi);
    cofi_model_get_info(o, &oi);
    assert_int_equal(oi.params.model, kind);
    assert_true(oi.params.lambda == mi.params.lambda);
    assert_int_equal(oi.params.knn_weighting, mi.params.knn_weighting);
    assert_int_equal(oi.params.neighbors, mi.params.neighbors);
    if (kind == COFI_MODEL_EASE)
      assert_memory_equal(m->ease_weights, o->ease_weights, sizeof(float) * NI * NI);
    else {
      assert_int_equal(m->neighbors.nnz, o->neighbors.nnz);
      assert_memory_equal(m->neighbors.indices, o->neighbors.indices, 4 * m->neighbors.nnz);
      assert_memory_equal(m->neighbors.data, o->neighbors.data, 4 * m->neighbors.nnz);
    }
    /* the opened model saves to the same bytes */
    unsigned char *b2 = saved(o, dir, "b.cofi", &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(b, b2, len);
    free(b2);
    cofi_model_close(o);
    /* every truncation, every byte flip */
    for (size_t n = 1; n < len; n++) {
      int rc = open_buf(b, n, &d);
      assert_true(rc == COFI_ERR_CORRUPT || rc == COFI_ERR_NOT_MODEL);
    }
    unsigned char *c = malloc(len);
    for (size_t i = 0; i < len; i++) {
      memcpy(c, b, len);
      c[i] ^= 0x5a;
      int rc = open_buf(c, len, &d);
      if (rc == COFI_OK) fail_msg("%s: flip at byte %zu accepted", cofi_model_kind_name(kind), i);
      assert_true(rc == COFI_ERR_CORRUPT || rc == COFI_ERR_NOT_MODEL || rc == COFI_ERR_VERSION);
    }
    /* valid checksums, wrong semantics: the kind changed to the other one
     * (its sections are missing), or to ALS (factors missing), or an old
     * version number */
    uint64_t meta_off;
    memcpy(&meta_off, b + 64 + 8, 8);
    uint32_t other[] = {kind == COFI_MODEL_EASE ? COFI_MODEL_ITEMKNN : COFI_MODEL_EASE,
                        COFI_MODEL_ALS};
    for (int t = 0; t < 2; t++) {
      memcpy(c, b, len);
      memcpy(c + meta_off + 148, &other[t], 4);
      reseal(c, len);
      assert_int_equal(open_buf(c, len, &d), COFI_ERR_CORRUPT);
      if (!strstr(d.message, other[t] == COFI_MODEL_ALS ? "factors" : "section"))
        fail_msg("kind %u: %s", other[t], d.message);
    }
    memcpy(c, b, len);
    uint32_t v2 = 2;
    memcpy(c + 8, &v2, 4);
    reseal(c, len);
    assert_int_equal(open_buf(c, len, &d), COFI_ERR_CORRUPT);
    if (kind == COFI_MODEL_ITEMKNN) {
      /* a neighbour that is the item itself, resealed */
      memcpy(c, b, len);
      cofi_model *q = NULL;
      assert_int_equal(cofi_model_open_memory(c, len, &q, &d), COFI_OK);
      size_t at = (size_t)((const unsigned char *)q->neighbors.indices - (const unsigned char *)q->map);
      uint32_t row0 = 0;
      int64_t first = q->neighbors.indptr[1] > 0 ? 0 : -1;
      cofi_model_close(q);
      if (first == 0) {
        memcpy(c + at, &row0, 4);
        reseal(c, len);
        assert_int_equal(open_buf(c, len, &d), COFI_ERR_CORRUPT);
        assert_non_null(strstr(d.message, "neighbours of item 0"));
      }
    } else {
      /* a non-zero diagonal, resealed */
      memcpy(c, b, len);
      cofi_model *q = NULL;
      assert_int_equal(cofi_model_open_memory(c, len, &q, &d), COFI_OK);
      size_t at = (size_t)((const unsigned char *)q->ease_weights - (const unsigned char *)q->map);
      cofi_model_close(q);
      float one = 1.0f;
      memcpy(c + at, &one, 4);
      reseal(c, len);
      assert_int_equal(open_buf(c, len, &d), COFI_ERR_CORRUPT);
      assert_non_null(strstr(d.message, "weighs itself"));
    }
    free(c);
    free(b);
    cofi_model_close(m);
  }
  tu_rmdir(dir);
  free(dir);
}

/* ALS files are still written as version 2, byte for byte as before: no
 * field of version 3 set, the same 14 sections. */
static void als_files_stay_version_2(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  cofi_model *m = train_kind(COFI_MODEL_ALS, COFI_KNN_COSINE, 1);
  size_t len;
  unsigned char *b = saved(m, dir, "als.cofi", &len);
  uint32_t version, n;
  memcpy(&version, b + 8, 4);
  memcpy(&n, b + 24, 4);
  assert_int_equal(version, 2);
  assert_int_equal(n, 14);
  uint64_t meta_off;
  memcpy(&meta_off, b + 64 + 8, 8);
  for (int i = 148; i < 256; i++) assert_int_equal(b[meta_off + i], 0);
  free(b);
  cofi_model_close(m);
  tu_rmdir(dir);
  free(dir);
}

/* Every allocation of training, opening and querying failing in turn:
 * COFI_ERR_NOMEM, nothing leaked (ASan), then success once none fails. */
static void allocation_failures(void **state) {
  (void)state;
  cofi_dataset *ds = tiny();
  char *dir = tu_mkdtemp();
  for (int kind = COFI_MODEL_EASE; kind <= COFI_MODEL_ITEMKNN; kind++) {
    cofi_params p = cofi_params_default();
    p.model = (cofi_model_kind)kind;
    p.lambda = 2.0f;
    cofi_model *m = NULL;
    cofi_diag d = {0};
    for (uint64_t n = 1;; n++) {
      cofi__alloc_fail_after(n);
      int rc = cofi_train(ds, &p, &m, &d);
      cofi__alloc_fail_after(0);
      if (rc == COFI_OK) break;
      assert_int_equal(rc, COFI_ERR_NOMEM);
      assert_null(m);
    }
    size_t len;
    unsigned char *b = saved(m, dir, "m.cofi", &len);
    for (uint64_t n = 1;; n++) {
      cofi_model *o = NULL;
      cofi__alloc_fail_after(n);
      int rc = cofi_model_open_memory(b, len, &o, &d);
      cofi__alloc_fail_after(0);
      if (rc == COFI_OK) {
        cofi_model_close(o);
        break;
      }
      assert_int_equal(rc, COFI_ERR_NOMEM);
    }
    uint32_t items[2] = {0, 1};
    cofi_scored out[3];
    size_t got;
    uint32_t n_all[NU];
    cofi_scored all[NU * 3];
    for (uint64_t n = 1;; n++) {
      cofi_workspace *ws = cofi_workspace_new();
      assert_non_null(ws);
      cofi__alloc_fail_after(n);
      int rc = cofi_recommend_history(m, ws, items, NULL, 2, 3, NULL, out, &got);
      if (rc == COFI_OK) rc = cofi_recommend_users(m, NULL, NU, 3, 1, 2, all, n_all);
      cofi__alloc_fail_after(0);
      cofi_workspace_free(ws);
      if (rc == COFI_OK) break;
      assert_int_equal(rc, COFI_ERR_NOMEM);
    }
    free(b);
    cofi_model_close(m);
  }
  cofi_dataset_free(ds);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ease_matches_gauss_jordan),
      cmocka_unit_test(knn_matches_brute_force),
      cmocka_unit_test(queries_agree),
      cmocka_unit_test(history_on_als_is_fold_in),
      cmocka_unit_test(ease_memory_limit),
      cmocka_unit_test(model_file_round_trip_and_damage),
      cmocka_unit_test(als_files_stay_version_2),
      cmocka_unit_test(allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_prune.c — the pruned top-k search (recommend/prune.c) against the
 * slow obvious reference: every item scored with cofi__dot, excluded items
 * dropped, a full sort. The answers must be identical, indices and score
 * bits, on random models and on the cases that stress the error bound:
 * exact ties, scores a few ulps apart, tiny and huge magnitudes, zero
 * vectors, one item, k beyond the catalog. Also: every exact score lies
 * within its bounds, on items built to reach them; the vectorized scan
 * matches its reference; a trained model answers the same through the
 * public call as by full sorting; similar items by cosine, likewise.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 12345;
static uint32_t next_u32(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng >> 32);
}
static float uniform(void) { return (float)next_u32() / 4294967296.0f * 2.0f - 1.0f; }

/* A model with the given factors and no training data. */
static cofi_model *model_from(uint32_t n_items, uint32_t k, const float *items) {
  cofi_model *m;
  assert_int_equal(cofi__model_new(&m), COFI_OK);
  m->n_users = 1;
  m->n_items = n_items;
  m->factors = k;
  m->item_factors = cofi__aligned_alloc((size_t)n_items * k * sizeof(float));
  m->user_factors = cofi__aligned_alloc((size_t)k * sizeof(float));
  assert_non_null(m->item_factors);
  assert_non_null(m->user_factors);
  memcpy(m->item_factors, items, (size_t)n_items * k * sizeof(float));
  memset(m->user_factors, 0, (size_t)k * sizeof(float));
  assert_int_equal(cofi__model_prepare(m), COFI_OK);
  assert_int_equal(cofi__model_build_panel(m), COFI_OK); /* also where the fast kernel is absent */
  assert_non_null(m->item_q8);
  return m;
}

static int cmp_scored(const void *a, const void *b) {
  const cofi_scored *x = a, *y = b;
  if (cofi__better(x->score, x->index, y->score, y->index)) return -1;
  if (cofi__better(y->score, y->index, x->score, x->index)) return 1;
  return 0;
}

/* Reference: full scoring and sorting. Returns the count. */
static size_t reference(const cofi_model *m, const float *q, const uint32_t *excl, size_t n_excl,
                        uint32_t k, cofi_scored *out) {
  cofi_scored *all = malloc(m->n_items * sizeof *all);
  size_t n = 0;
  for (uint32_t i = 0; i < m->n_items; i++) {
    bool skip = false;
    for (size_t e = 0; e < n_excl; e++) skip |= excl[e] == i;
    float s = cofi__dot(m->item_factors + (size_t)i * m->factors, q, m->factors);
    if (skip || !(s > -INFINITY)) continue;
    all[n].index = i;
    all[n].score = s;
    n++;
  }
  qsort(all, n, sizeof *all, cmp_scored);
  if (n > k) n = k;
  memcpy(out, all, n * sizeof *out);
  free(all);
  return n;
}

/* got must equal want: the same items in the same order, the same score
 * bits. */
static void assert_same_top(const char *what, const cofi_scored *got, size_t n_got,
                            const cofi_scored *want, size_t n_want) {
  if (n_got != n_want) fail_msg("%s: %zu results, reference %zu", what, n_got, n_want);
  for (size_t r = 0; r < n_got; r++)
    if (got[r].index != want[r].index || memcmp(&got[r].score, &want[r].score, sizeof(float)))
      fail_msg("%s: rank %zu: item %u score %.9g, reference item %u score %.9g", what, r,
               got[r].index, (double)got[r].score, want[r].index, (double)want[r].score);
}

static void check_query(const cofi_model *m, cofi_workspace *ws, const float *q,
                        const uint32_t *excl, size_t n_excl, uint32_t k, const char *what) {
  cofi_scored want[64], got[64];
  size_t n_want = reference(m, q, excl, n_excl, k, want), n_got = 99;
  uint32_t kk = k < m->n_items ? k : m->n_items;
  int rc = cofi__recommend_pruned(m, ws, q, excl, n_excl, NULL, 0, kk, got, &n_got);
  if (rc != COFI_OK) fail_msg("%s: rc %d", what, rc);
  assert_same_top(what, got, n_got, want, n_want);
}

static void random_models_match_reference(void **state) {
  (void)state;
  const uint32_t dims[] = {1, 3, 16, 17, 64, 100};
  const uint32_t sizes[] = {1, 15, 16, 17, 300};
  cofi_workspace *ws = cofi_workspace_new();
  char what[128];
  for (size_t di = 0; di < sizeof dims / sizeof *dims; di++)
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
      uint32_t k = dims[di], n = sizes[si];
      float *y = malloc((size_t)n * k * sizeof *y), q[100];
      for (size_t t = 0; t < (size_t)n * k; t++) y[t] = uniform();
      cofi_model *m = model_from(n, k, y);
      for (int rep = 0; rep < 20; rep++) {
        for (uint32_t j = 0; j < k; j++) q[j] = uniform();
        uint32_t excl[8];
        size_t n_excl = rep % 3 == 0 ? 0 : 1 + next_u32() % 8;
        for (size_t e = 0; e < n_excl; e++) excl[e] = next_u32() % (n + 2); /* some out of range */
        uint32_t kq = 1 + next_u32() % 40;
        snprintf(what, sizeof what, "k=%u n=%u rep=%d top=%u", k, n, rep, kq);
        check_query(m, ws, q, excl, n_excl, kq, what);
      }
      cofi_model_close(m);
      free(y);
    }
  cofi_workspace_free(ws);
}

/* Items built so that many scores tie exactly or differ by an ulp or two,
 * at magnitudes from 1e-30 to 1e15, plus zero items and a zero query. */
static void adversarial_scores_match_reference(void **state) {
  (void)state;
  const uint32_t k = 32, n = 400;
  const float magnitudes[] = {1e-30f, 1e-6f, 1.0f, 3e7f, 1e15f};
  cofi_workspace *ws = cofi_workspace_new();
  float *y = malloc((size_t)n * k * sizeof *y), q[32];
  char what[128];
  for (size_t mi = 0; mi < sizeof magnitudes / sizeof *magnitudes; mi++) {
    float mag = magnitudes[mi];
    float base[32];
    for (uint32_t j = 0; j < k; j++) base[j] = uniform() * mag;
    for (uint32_t i = 0; i < n; i++) {
      float *row = y + (size_t)i * k;
      switch (i % 5) {
      case 0: /* exact duplicates of one row: ties broken by index */
        memcpy(row, base, sizeof base);
        break;
      case 1: /* the same row nudged by one ulp in one coordinate */
        memcpy(row, base, sizeof base);
        row[i % k] = nextafterf(row[i % k], INFINITY);
        break;
      case 2: /* zero item */
        memset(row, 0, k * sizeof *row);
        break;
      case 3: /* a scaled copy: scores proportional */
        for (uint32_t j = 0; j < k; j++) row[j] = base[j] * (1.0f + (float)(i % 7) * 0x1p-20f);
        break;
      default:
        for (uint32_t j = 0; j < k; j++) row[j] = uniform() * mag;
      }
    }
    cofi_model *m = model_from(n, k, y);
    for (int rep = 0; rep < 12; rep++) {
      for (uint32_t j = 0; j < k; j++) q[j] = rep == 0 ? 0.0f : (rep < 6 ? base[j] / mag : uniform());
      uint32_t excl[2] = {0, 5};
      snprintf(what, sizeof what, "magnitude %g rep %d", (double)mag, rep);
      check_query(m, ws, q, excl, rep % 2 ? 2 : 0, 1 + (uint32_t)rep * 5, what);
    }
    cofi_model_close(m);
  }
  free(y);
  cofi_workspace_free(ws);
}

/* Reference for similar items: every cosine as the exact path computes
 * it (dot / (|q| |y|), 0 when that is 0), the query left out, full sort. */
static size_t similar_reference(const cofi_model *m, uint32_t query, uint32_t k,
                                cofi_scored *out) {
  cofi_scored *all = malloc(m->n_items * sizeof *all);
  size_t n = 0;
  const float *q = m->item_factors + (size_t)query * m->factors;
  for (uint32_t i = 0; i < m->n_items; i++) {
    if (i == query) continue;
    float dot = cofi__dot(m->item_factors + (size_t)i * m->factors, q, m->factors);
    float d = m->item_norms[query] * m->item_norms[i];
    all[n].index = i;
    all[n].score = d > 0 ? dot / d : 0.0f;
    n++;
  }
  qsort(all, n, sizeof *all, cmp_scored);
  if (n > k) n = k;
  memcpy(out, all, n * sizeof *out);
  free(all);
  return n;
}

static void check_similar(const cofi_model *m, cofi_workspace *ws, uint32_t query, uint32_t k,
                          const char *what) {
  cofi_scored want[64], got[64];
  size_t n_want = similar_reference(m, query, k, want), n_got = 99;
  uint32_t kk = k < m->n_items - 1 ? k : m->n_items - 1;
  int rc = cofi__similar_items_pruned(m, ws, query, kk, got, &n_got);
  if (rc != COFI_OK) fail_msg("%s: rc %d", what, rc);
  assert_same_top(what, got, n_got, want, n_want);
}

/* Similar items: random models, duplicated and scaled rows (cosine ties,
 * exactly or within an ulp), zero rows, and the public call on a model
 * large enough to take the pruned path. */
static void similar_items_match_reference(void **state) {
  (void)state;
  cofi_workspace *ws = cofi_workspace_new();
  char what[128];
  const uint32_t dims[] = {3, 17, 64};
  for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
    uint32_t k = dims[di], n = 400;
    float *y = malloc((size_t)n * k * sizeof *y);
    for (uint32_t i = 0; i < n; i++)
      for (uint32_t j = 0; j < k; j++) {
        float v = uniform();
        if (i % 7 == 3) v = y[(size_t)(i - 1) * k + j] * 2.0f;  /* same direction */
        if (i % 11 == 5) v = y[(size_t)(i - 1) * k + j];        /* duplicate */
        if (i % 13 == 6) v = 0.0f;                              /* zero row */
        y[(size_t)i * k + j] = v;
      }
    cofi_model *m = model_from(n, k, y);
    for (uint32_t query = 0; query < n; query += 37) {
      for (uint32_t kq = 1; kq <= 25; kq += 12) {
        snprintf(what, sizeof what, "similar: k=%u query=%u top=%u", k, query, kq);
        check_similar(m, ws, query, kq, what);
      }
    }
    /* the public call agrees (pruned where the build has the kernel) */
    cofi_scored got[20], want[20];
    size_t n_got;
    assert_int_equal(cofi_similar_items(m, ws, 5, 20, got, &n_got), COFI_OK);
    assert_int_equal(n_got, similar_reference(m, 5, 20, want));
    assert_memory_equal(got, want, n_got * sizeof *got);
    cofi_model_close(m);
    free(y);
  }
  cofi_workspace_free(ws);
}

/* Items whose factors are subnormal (their int8 scale is subnormal too, so
 * 1 / scale would overflow: found by fuzz_model as a NaN cast to int8
 * under UBSan), mixed with zero rows and ordinary ones. */
static void subnormal_factors_match_reference(void **state) {
  (void)state;
  const uint32_t k = 16, n = 64;
  float y[64 * 16], q[16];
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j < k; j++) {
      float v = uniform();
      if (i % 3 == 0) v *= 1e-40f;        /* subnormal */
      else if (i % 3 == 1) v = j == i % k ? 1e-40f : 0.0f; /* one subnormal, zeros around it */
      y[i * k + j] = v;
    }
  cofi_model *m = model_from(n, k, y);
  cofi_workspace *ws = cofi_workspace_new();
  char what[64];
  for (int rep = 0; rep < 10; rep++) {
    for (uint32_t j = 0; j < k; j++) q[j] = rep == 0 ? 1e-40f : uniform();
    snprintf(what, sizeof what, "subnormal rep %d", rep);
    check_query(m, ws, q, NULL, 0, 1 + (uint32_t)rep, what);
  }
  cofi_workspace_free(ws);
  cofi_model_close(m);
}

/* Norms too large for the bound: no panel, and a huge query is refused. */
static void out_of_range_norms_skip(void **state) {
  (void)state;
  float y[2 * 4] = {1e30f, 0, 0, 0, 1, 2, 3, 4}, q[4] = {1, 1, 1, 1};
  cofi_model *m;
  assert_int_equal(cofi__model_new(&m), COFI_OK);
  m->n_users = 1; m->n_items = 2; m->factors = 4;
  m->item_factors = cofi__aligned_alloc(sizeof y);
  m->user_factors = cofi__aligned_alloc(sizeof q);
  memcpy(m->item_factors, y, sizeof y);
  memcpy(m->user_factors, q, sizeof q);
  assert_int_equal(cofi__model_prepare(m), COFI_OK);
  assert_int_equal(cofi__model_build_panel(m), COFI_OK);
  assert_null(m->item_q8);
  cofi_model_close(m);

  float small[2 * 4] = {1, 0, 0, 0, 0, 1, 0, 0};
  m = model_from(2, 4, small);
  cofi_workspace *ws = cofi_workspace_new();
  cofi_scored out[2];
  size_t n_out;
  float huge[4] = {1e35f, 0, 0, 0}, nan_q[4] = {NAN, 0, 0, 0};
  assert_int_equal(cofi__recommend_pruned(m, ws, huge, NULL, 0, NULL, 0, 1, out, &n_out),
                   COFI__PRUNE_SKIP);
  assert_int_equal(cofi__recommend_pruned(m, ws, nan_q, NULL, 0, NULL, 0, 1, out, &n_out),
                   COFI__PRUNE_SKIP);
  cofi_workspace_free(ws);
  cofi_model_close(m);
}

/* lo <= exact <= hi for every item, on random items and on items built so
 * that every quantization error has the same sign as its partner's value
 * (the worst case of the bound). Reports how close the worst item gets
 * to its bound: far below 1 would mean the bound is loose. */
static void bounds_hold_and_are_tight(void **state) {
  (void)state;
  const uint32_t k = 64, n = 64;
  float *y = malloc((size_t)n * k * sizeof *y), q[64];
  float *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi), T;
  cofi_workspace *ws = cofi_workspace_new();
  double worst = 0;
  for (int kind = 0; kind < 2; kind++) {
    for (uint32_t i = 0; i < n; i++)
      for (uint32_t j = 0; j < k; j++) {
        float v = kind == 0 ? uniform() : (j == 0 ? 1.0f : (float)(1 + next_u32() % 125) + 0.4999f);
        y[(size_t)i * k + j] = kind == 0 ? v : v / 127.0f;
      }
    cofi_model *m = model_from(n, k, y);
    for (int rep = 0; rep < 50; rep++) {
      for (uint32_t j = 0; j < k; j++)
        q[j] = kind == 0 ? uniform() : (j == 0 ? 127.0f : (float)(1 + next_u32() % 125) + 0.4999f);
      size_t scanned;
      assert_int_equal(cofi__prune_bounds(m, ws, q, NULL, 0, NULL, 0, 0, lo, hi, &T, &scanned),
                       COFI_OK);
      assert_int_equal(scanned, n);
      const uint32_t *item_at = cofi__panel_order(m);
      for (uint32_t pos = 0; pos < n; pos++) {
        uint32_t i = item_at[pos];
        float s = cofi__dot(m->item_factors + (size_t)i * k, q, k);
        if (!(lo[pos] <= s && s <= hi[pos]))
          fail_msg("kind %d item %u: exact %.9g outside [%.9g, %.9g]", kind, i, (double)s,
                   (double)lo[pos], (double)hi[pos]);
        double mid = ((double)lo[pos] + hi[pos]) / 2, half = ((double)hi[pos] - lo[pos]) / 2;
        if (kind == 1 && fabs(s - mid) / half > worst) worst = fabs(s - mid) / half;
      }
    }
    cofi_model_close(m);
  }
  print_message("aligned errors reach %.2f of the bound\n", worst);
  assert_true(worst > 0.3); /* the construction really is adversarial */
  cofi_workspace_free(ws);
  free(y);
  free(lo);
  free(hi);
}

/* The optimized scan against its reference on random data: the same
 * bounds up to the margin's rounding, the same skipped items, the same
 * threshold. */
static void scan_kernel_matches_reference(void **state) {
  (void)state;
  enum { groups = 24, blocks = 7, n = blocks * 16 };
  int8_t *panel = cofi__aligned_alloc((size_t)blocks * groups * 64);
  int32_t qsum[n];
  float scale[n], err[n], l1[n], norm[n], hi_a[n], hi_b[n], lo_a[n], lo_b[n], heap[40];
  uint32_t uq[groups];
  uint16_t skip[blocks];
  for (size_t t = 0; t < (size_t)blocks * groups * 64; t++) panel[t] = (int8_t)((int)(next_u32() % 255) - 127);
  for (int i = 0; i < n; i++) {
    qsum[i] = (int32_t)(next_u32() % 2001) - 1000;
    scale[i] = (float)next_u32() / 4294967296.0f;
    err[i] = scale[i] / 2;
    l1[i] = (float)next_u32() / 4294967296.0f * 10;
    norm[i] = l1[i] / 3;
  }
  for (int rep = 0; rep < 10; rep++) {
    for (uint32_t g = 0; g < groups; g++) uq[g] = rep == 0 ? 0xFFFFFFFFu : next_u32();
    for (int b = 0; b < blocks; b++) skip[b] = rep < 2 ? 0 : (uint16_t)next_u32();
    size_t k = rep == 3 ? 0 : 1 + next_u32() % 40;
    cofi__qscan sc = {.panel = panel, .n_blocks = blocks, .groups = groups, .qsum = qsum,
                      .scale = scale, .err = err, .l1 = l1, .norm = norm, .uq = uq,
                      .t = rep == 1 ? 0.0f : (float)next_u32() / 4294967296.0f,
                      .coef = {3.0f, 0.01f, 1e-5f, 1e-30f}, .stop_coef = INFINITY,
                      .skip = skip};
    size_t done_a, done_b;
    float ta = cofi__k_qscan(&sc, k, heap, hi_a, lo_a, &done_a);
    float tb = cofi__k_qscan_ref(&sc, k, heap, hi_b, lo_b, &done_b);
    assert_int_equal(done_a, blocks);
    assert_int_equal(done_b, blocks);
    for (int i = 0; i < n; i++) {
      bool skipped = (skip[i / 16] >> (i % 16)) & 1;
      if (skipped) {
        assert_true(hi_a[i] == -INFINITY && lo_a[i] == -INFINITY);
        assert_true(hi_b[i] == -INFINITY && lo_b[i] == -INFINITY);
      } else {
        assert_float_equal(hi_a[i], hi_b[i], 1e-5 * (fabs(hi_b[i]) + 1));
        assert_float_equal(lo_a[i], lo_b[i], 1e-5 * (fabs(lo_b[i]) + 1));
      }
    }
    if (ta == -INFINITY || tb == -INFINITY) assert_true(ta == tb);
    else assert_float_equal(ta, tb, 1e-5 * (fabs(tb) + 1));
    /* and tb really is the k-th largest lower bound */
    size_t above = 0, at_least = 0;
    for (int i = 0; i < n; i++) {
      above += lo_b[i] > tb;
      at_least += lo_b[i] >= tb && lo_b[i] > -INFINITY;
    }
    if (tb > -INFINITY) assert_true(above < k && at_least >= k);
  }
  cofi__aligned_free(panel);
}

/* A trained model: the public call (pruned where the build has the fast
 * kernel) equals the exact path for every user, several k, filter on. */
static void trained_model_public_call_matches(void **state) {
  (void)state;
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  char u[16], it[16];
  for (int a = 0; a < 200; a++)
    for (int t = 0; t < 15; t++) {
      int i = (a % 5) * 40 + (int)(next_u32() % 40);
      if (next_u32() % 4 == 0) i = (int)(next_u32() % 600);
      int ul = snprintf(u, sizeof u, "u%d", a), il = snprintf(it, sizeof it, "i%d", i);
      assert_int_equal(cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, 1, 0), COFI_OK);
    }
  cofi_params p = cofi_params_default();
  p.factors = 24; p.iterations = 10; p.threads = 1;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  assert_int_equal(cofi__model_build_panel(m), COFI_OK);
  cofi_workspace *ws = cofi_workspace_new();
  char what[64];
  for (uint32_t user = 0; user < m->n_users; user++) {
    const uint32_t *seen;
    size_t n_seen = cofi_model_user_items(m, user, &seen, NULL);
    for (uint32_t k = 1; k <= 50; k += 49) {
      cofi_recommend_options o = cofi_recommend_options_default();
      o.k = k;
      cofi_scored got[50];
      size_t n_got;
      assert_int_equal(cofi_recommend_user(m, ws, user, &o, got, &n_got), COFI_OK);
      cofi_scored want[50];
      size_t n_want = reference(m, m->user_factors + (size_t)user * m->factors, seen, n_seen, k, want);
      snprintf(what, sizeof what, "user %u k %u", user, k);
      assert_same_top(what, got, n_got, want, n_want);
      check_query(m, ws, m->user_factors + (size_t)user * m->factors, seen, n_seen, k, what);
    }
  }
  cofi_workspace_free(ws);
  cofi_model_close(m);
  cofi_dataset_free(ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scan_kernel_matches_reference),
      cmocka_unit_test(bounds_hold_and_are_tight),
      cmocka_unit_test(random_models_match_reference),
      cmocka_unit_test(adversarial_scores_match_reference),
      cmocka_unit_test(similar_items_match_reference),
      cmocka_unit_test(subnormal_factors_match_reference),
      cmocka_unit_test(out_of_range_norms_skip),
      cmocka_unit_test(trained_model_public_call_matches),
  };
  return tu_run_per_kernel_set("prune", tests, sizeof tests / sizeof *tests);
}

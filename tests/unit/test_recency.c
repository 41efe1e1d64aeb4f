/*
 * test_recency.c — the recency half-life of EASE and item-kNN
 * (cofi_params.recency, train/recency.c) against slow, obvious references:
 * each pair's rank by the time of its latest event (ties by the later row)
 * counted by hand, a known user's scores as the sum of 2^(-rank/H) times
 * the item rows, a history given in time order scoring as the known user
 * does, the ranks through the model file (and damaged ranks refused), ALS
 * users re-fitted as the fold-in of their history in time order, and the
 * parameter refused out of range.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU 9
#define NI 12
#define NROWS 70

typedef struct row {
  int user, item;
  int64_t time;
} row;

/* A log with repeated pairs at other times and ties in time. */
static void make_rows(row *r) {
  uint64_t s = 12345;
  for (int i = 0; i < NROWS; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    r[i].user = (int)((s >> 33) % NU);
    r[i].item = (int)((s >> 45) % NI);
    r[i].time = (int64_t)((s >> 20) % 6); /* few distinct times: many ties */
  }
}

static cofi_dataset *dataset_of(const row *r) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  for (int i = 0; i < NROWS; i++) {
    char u[8], it[8];
    snprintf(u, sizeof u, "u%d", r[i].user);
    snprintf(it, sizeof it, "i%d", r[i].item);
    assert_int_equal(cofi__dataset_add(ds, u, strlen(u), it, strlen(it), 1.0f, r[i].time),
                     COFI_OK);
  }
  ds->has_time = true;
  return ds;
}

static cofi_model *train(const row *r, cofi_model_kind kind, float recency) {
  cofi_dataset *ds = dataset_of(r);
  cofi_params p = cofi_params_default();
  p.model = kind;
  p.lambda = 3.0f;
  p.neighbors = 5;
  p.recency = recency;
  p.threads = 2;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  if (cofi_train(ds, &p, &m, &d)) fail_msg("train: %s", d.message);
  cofi_dataset_free(ds);
  return m;
}

/* The reference rank of (user u, item i) in model indices: 1 + the number
 * of u's other items whose latest event is later (time, then row). */
static uint32_t reference_rank(const row *r, const cofi_model *m, uint32_t u, uint32_t i) {
  int64_t best_t[NI];
  int best_row[NI];
  for (int j = 0; j < NI; j++) best_row[j] = -1;
  size_t len;
  int uid = atoi(cofi_model_user_id(m, u, &len) + 1);
  for (int x = 0; x < NROWS; x++) {
    if (r[x].user != uid) continue;
    int j = r[x].item;
    if (best_row[j] < 0 || r[x].time >= best_t[j]) {
      best_t[j] = r[x].time;
      best_row[j] = x;
    }
  }
  int me = atoi(cofi_model_item_id(m, i, &len) + 1);
  uint32_t rank = 0;
  for (int j = 0; j < NI; j++)
    if (j != me && best_row[j] >= 0 &&
        (best_t[j] > best_t[me] || (best_t[j] == best_t[me] && best_row[j] > best_row[me])))
      rank++;
  return rank;
}

static void ranks_match_reference(void **state) {
  (void)state;
  row r[NROWS];
  make_rows(r);
  for (int kind = COFI_MODEL_EASE; kind <= COFI_MODEL_ITEMKNN; kind++) {
    cofi_model *m = train(r, (cofi_model_kind)kind, 2.0f);
    assert_non_null(m->seen_ranks);
    for (uint32_t u = 0; u < m->n_users; u++)
      for (uint64_t t = m->user_items.indptr[u]; t < m->user_items.indptr[u + 1]; t++) {
        uint32_t want = reference_rank(r, m, u, m->user_items.indices[t]);
        if (m->seen_ranks[t] != want)
          fail_msg("user %u item %u: rank %u, want %u", u, m->user_items.indices[t],
                   m->seen_ranks[t], want);
      }
    cofi_model_close(m);
  }
  /* without a half-life there are no ranks */
  cofi_model *m = train(r, COFI_MODEL_EASE, 0.0f);
  assert_null(m->seen_ranks);
  cofi_model_close(m);
}

/* Brute-force scores of a known user: sum of 2^(-rank/H) (times the
 * training weight for item-kNN) times the item rows. */
static void reference_scores(const cofi_model *m, uint32_t u, double *s) {
  for (uint32_t j = 0; j < m->n_items; j++) s[j] = 0;
  for (uint64_t t = m->user_items.indptr[u]; t < m->user_items.indptr[u + 1]; t++) {
    uint32_t i = m->user_items.indices[t];
    double w = pow(2.0, -(double)m->seen_ranks[t] / m->params.recency);
    if (m->params.model == COFI_MODEL_EASE) {
      for (uint32_t j = 0; j < m->n_items; j++) s[j] += w * m->ease_weights[(size_t)i * m->n_items + j];
    } else {
      w *= m->user_items.data[t];
      for (uint64_t q = m->neighbors.indptr[i]; q < m->neighbors.indptr[i + 1]; q++)
        s[m->neighbors.indices[q]] += w * m->neighbors.data[q];
    }
  }
}

static void check_top(const cofi_model *m, uint32_t u, const cofi_scored *got, size_t n,
                      const char *what) {
  double s[NI];
  reference_scores(m, u, s);
  for (size_t x = 0; x < n; x++) {
    double want = s[got[x].index];
    if (fabs(got[x].score - want) > 1e-5 + 1e-4 * fabs(want))
      fail_msg("%s: user %u item %u score %g, want %g", what, u, got[x].index, got[x].score, want);
    /* nothing unseen outside the list scores higher than its last */
    for (uint32_t j = 0; j < m->n_items; j++) {
      bool seen = false, listed = false;
      for (uint64_t t = m->user_items.indptr[u]; t < m->user_items.indptr[u + 1]; t++)
        seen |= m->user_items.indices[t] == j;
      for (size_t y = 0; y < n; y++) listed |= got[y].index == j;
      if (!seen && !listed && s[j] > got[n - 1].score + 1e-4)
        fail_msg("%s: user %u item %u (%g) left out of the top %zu", what, u, j, s[j], n);
    }
  }
}

static void scores_match_reference(void **state) {
  (void)state;
  row r[NROWS];
  make_rows(r);
  for (int kind = COFI_MODEL_EASE; kind <= COFI_MODEL_ITEMKNN; kind++) {
    cofi_model *m = train(r, (cofi_model_kind)kind, 1.5f);
    cofi_workspace *ws = cofi_workspace_new();
    cofi_recommend_options o = cofi_recommend_options_default();
    o.k = 4;
    for (uint32_t u = 0; u < m->n_users; u++) {
      cofi_scored top[4], hist_top[4];
      size_t n = 0, hn = 0;
      assert_int_equal(cofi_recommend_user(m, ws, u, &o, top, &n), COFI_OK);
      assert_true(n > 0);
      check_top(m, u, top, n, "recommend_user");
      /* the same history given oldest first answers the same */
      uint64_t b = m->user_items.indptr[u], len = m->user_items.indptr[u + 1] - b;
      uint32_t items[NI];
      float vals[NI];
      for (uint64_t t = 0; t < len; t++) {
        items[len - 1 - m->seen_ranks[b + t]] = m->user_items.indices[b + t];
        vals[len - 1 - m->seen_ranks[b + t]] = m->user_items.data[b + t]; /* linear: raw sums */
      }
      assert_int_equal(cofi_recommend_history(m, ws, items, vals, (size_t)len, 4, &o, hist_top, &hn),
                       COFI_OK);
      assert_int_equal(hn, n);
      for (size_t x = 0; x < n; x++) {
        assert_int_equal(hist_top[x].index, top[x].index);
        assert_true(fabsf(hist_top[x].score - top[x].score) <= 1e-5f + 1e-4f * fabsf(top[x].score));
      }
    }
    cofi_workspace_free(ws);
    cofi_model_close(m);
  }
}

static void model_file_keeps_ranks(void **state) {
  (void)state;
  row r[NROWS];
  make_rows(r);
  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof path, "%s/r.cofi", dir);
  for (int kind = COFI_MODEL_EASE; kind <= COFI_MODEL_ITEMKNN; kind++) {
    cofi_model *m = train(r, (cofi_model_kind)kind, 3.0f);
    cofi_diag d = {0};
    assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
    cofi_model *o = NULL;
    assert_int_equal(cofi_model_open(path, &o, &d), COFI_OK);
    cofi_model_info info;
    cofi_model_get_info(o, &info);
    assert_true(info.params.recency == 3.0f);
    assert_non_null(o->seen_ranks);
    assert_memory_equal(o->seen_ranks, m->seen_ranks, 4 * m->user_items.nnz);
    cofi_model_close(o);
    /* ranks that are not a permutation of a row are refused, by name */
    uint64_t b = m->user_items.indptr[0];
    assert_true(m->user_items.indptr[1] - b >= 2);
    m->seen_ranks[b] = m->seen_ranks[b + 1];
    assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
    assert_int_equal(cofi_model_open(path, &o, &d), COFI_ERR_CORRUPT);
    assert_null(o);
    if (!strstr(d.message, "recency ranks of user 0")) fail_msg("message: %s", d.message);
    cofi_model_close(m);
  }
  tu_rmdir(dir);
  free(dir);
}

/* ALS: every user re-fitted with the recency weights equals the fold-in
 * of their items in time order; the model file (version 3 with the ranks)
 * gives back the same vectors and ranks. */
static void als_users_are_recency_fold_ins(void **state) {
  (void)state;
  row r[NROWS];
  make_rows(r);
  cofi_dataset *ds = dataset_of(r);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 5;
  p.regularization = 0.1f;
  p.alpha = 5;
  p.recency = 2.0f;
  p.threads = 2;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  if (cofi_train(ds, &p, &m, &d)) fail_msg("train: %s", d.message);
  cofi_dataset_free(ds);
  assert_non_null(m->seen_ranks);
  cofi_workspace *ws = cofi_workspace_new();
  for (uint32_t u = 0; u < m->n_users; u++) {
    uint64_t b = m->user_items.indptr[u], len = m->user_items.indptr[u + 1] - b;
    uint32_t items[NI];
    float vals[NI], vec[4];
    for (uint64_t t = 0; t < len; t++) {
      items[len - 1 - m->seen_ranks[b + t]] = m->user_items.indices[b + t];
      vals[len - 1 - m->seen_ranks[b + t]] = m->user_items.data[b + t];
    }
    assert_int_equal(cofi_fold_in(m, ws, items, vals, (size_t)len, vec), COFI_OK);
    for (int j = 0; j < 4; j++) {
      float got = m->user_factors[(size_t)u * 4 + j];
      if (fabsf(got - vec[j]) > 1e-4f + 1e-3f * fabsf(vec[j]))
        fail_msg("user %u factor %d: %g, fold-in in time order %g", u, j, got, vec[j]);
    }
  }
  cofi_workspace_free(ws);
  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof path, "%s/als.cofi", dir);
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  size_t len;
  unsigned char *bytes = tu_read_file(path, &len);
  uint32_t version;
  memcpy(&version, bytes + 8, 4);
  assert_int_equal(version, 3);
  free(bytes);
  cofi_model *o = NULL;
  assert_int_equal(cofi_model_open(path, &o, &d), COFI_OK);
  assert_true(o->params.recency == 2.0f);
  assert_memory_equal(o->seen_ranks, m->seen_ranks, 4 * m->user_items.nnz);
  assert_memory_equal(o->user_factors, m->user_factors, 4 * (size_t)m->n_users * 4);
  cofi_model_close(o);
  tu_rmdir(dir);
  free(dir);
  cofi_model_close(m);
}

/* cofi_model_set_recency on a model trained without a half-life gives
 * what training with it gives, bit for bit, for every kind; then refuses
 * what it cannot do. */
static void set_recency_equals_training_with_it(void **state) {
  (void)state;
  row r[NROWS];
  make_rows(r);
  cofi_dataset *ds = dataset_of(r);
  for (int kind = COFI_MODEL_ALS; kind <= COFI_MODEL_ITEMKNN; kind++) {
    cofi_params p = cofi_params_default();
    p.model = (cofi_model_kind)kind;
    p.factors = 4;
    p.iterations = 4;
    p.lambda = 3.0f;
    p.neighbors = 5;
    p.threads = 2;
    cofi_model *plain = NULL, *with = NULL;
    cofi_diag d = {0};
    assert_int_equal(cofi_train(ds, &p, &plain, &d), COFI_OK);
    p.recency = 3.0f;
    assert_int_equal(cofi_train(ds, &p, &with, &d), COFI_OK);
    /* another half-life first: each re-fit starts from the item factors */
    assert_int_equal(cofi_model_set_recency(plain, ds, 1.0f, &d), COFI_OK);
    assert_int_equal(cofi_model_set_recency(plain, ds, 3.0f, &d), COFI_OK);
    assert_true(plain->params.recency == 3.0f);
    assert_memory_equal(plain->seen_ranks, with->seen_ranks, 4 * with->user_items.nnz);
    if (kind == COFI_MODEL_ALS)
      assert_memory_equal(plain->user_factors, with->user_factors,
                          4 * (size_t)with->n_users * with->factors);
    /* refused: 0 or out of range, other data */
    assert_int_equal(cofi_model_set_recency(plain, ds, 0.0f, &d), COFI_ERR_INVALID);
    assert_non_null(strstr(d.message, "recency must be"));
    assert_int_equal(cofi_model_set_recency(plain, ds, NAN, &d), COFI_ERR_INVALID);
    cofi_dataset *other;
    assert_int_equal(cofi__dataset_new(&other), COFI_OK);
    assert_int_equal(cofi__dataset_add(other, "x", 1, "y", 1, 1.0f, 0), COFI_OK);
    assert_int_equal(cofi_model_set_recency(plain, other, 2.0f, &d), COFI_ERR_INVALID);
    assert_non_null(strstr(d.message, "not what the model"));
    cofi_dataset_free(other);
    cofi_model_close(plain);
    cofi_model_close(with);
  }
  /* a model opened from a file keeps its half-life */
  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof path, "%s/o.cofi", dir);
  cofi_params p = cofi_params_default();
  p.model = COFI_MODEL_EASE;
  p.lambda = 3.0f;
  cofi_model *m = NULL, *o = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  assert_int_equal(cofi_model_open(path, &o, &d), COFI_OK);
  assert_int_equal(cofi_model_set_recency(o, ds, 2.0f, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "opened from a file"));
  cofi_model_close(o);
  cofi_model_close(m);
  tu_rmdir(dir);
  free(dir);
  cofi_dataset_free(ds);
}

static void parameter_checked(void **state) {
  (void)state;
  cofi_diag d = {0};
  cofi_params p = cofi_params_default();
  p.recency = 4.0f;
  assert_int_equal(cofi_params_check(&p, &d), COFI_OK);
  p.model = COFI_MODEL_EASE;
  assert_int_equal(cofi_params_check(&p, &d), COFI_OK);
  float bad[] = {-1.0f, NAN, INFINITY, 2e6f};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    p.recency = bad[i];
    assert_int_equal(cofi_params_check(&p, &d), COFI_ERR_INVALID);
    assert_non_null(strstr(d.message, "recency must be"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ranks_match_reference),
      cmocka_unit_test(scores_match_reference),
      cmocka_unit_test(model_file_keeps_ranks),
      cmocka_unit_test(als_users_are_recency_fold_ins),
      cmocka_unit_test(set_recency_equals_training_with_it),
      cmocka_unit_test(parameter_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

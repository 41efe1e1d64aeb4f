/*
 * recommend.c — answering queries on a model: top-k for a known user,
 * cold-start fold-in, top-k for any user vector, and cosine similarity.
 * Top-k for a vector and similar items go through the pruned search
 * (prune.c) when the model has an int8 copy of its item factors and k is
 * small against the catalog; otherwise (and for similar users) scores are
 * one pass of dot products over the factors (an sgemv) into the
 * workspace's buffer, excluded items set to -inf, then partial selection
 * (topk.c). Both give the same answer. Nothing is allocated once the
 * workspace has grown.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

cofi_recommend_options cofi_recommend_options_default(void) {
  cofi_recommend_options o = {.k = 10, .filter_seen = 1, .exclude = NULL, .n_exclude = 0};
  return o;
}

/* scores[i] = F[i] . v for i < n: the gemv kernel, 16 rows per step,
 * rounding exactly as cofi__dot does. */
static void score_all(const float *F, uint32_t n, uint32_t k, const float *v, float *scores) {
  cofi__rows rows = {.base = F, .ld = k, .idx = NULL};
  cofi__k_gemv(&rows, n, k, v, scores);
}

static int select_top(cofi_workspace *ws, const float *scores, uint32_t n, uint32_t k,
                      cofi_scored *out, size_t *n_out) {
  size_t got = cofi__topk_scores(scores, n, k, ws->heap);
  memcpy(out, ws->heap, got * sizeof *out);
  *n_out = got;
  return COFI_OK;
}

int cofi__recommend_exact(const cofi_model *m, cofi_workspace *ws, const float *vec,
                          const uint32_t *seen, size_t n_seen, const uint32_t *exclude,
                          size_t n_exclude, uint32_t k, cofi_scored *out, size_t *n_out) {
  *n_out = 0;
  int rc = cofi__ws_reserve(ws, m->n_items, 0, k);
  if (rc) return rc;
  float *scores = ws->scores;
  score_all(m->item_factors, m->n_items, m->factors, vec, scores);
  for (size_t i = 0; i < n_seen; i++)
    if (seen[i] < m->n_items) scores[seen[i]] = -INFINITY;
  for (size_t i = 0; i < n_exclude; i++)
    if (exclude[i] < m->n_items) scores[exclude[i]] = -INFINITY;
  return select_top(ws, scores, m->n_items, k, out, n_out);
}

int cofi_recommend_vector(const cofi_model *m, cofi_workspace *ws, const float *vec,
                          const uint32_t *seen, size_t n_seen,
                          const cofi_recommend_options *opt, cofi_scored *out, size_t *n_out) {
  *n_out = 0;
  if (!opt || opt->k == 0 || !cofi__is_als(m)) return COFI_ERR_INVALID;
  uint32_t k = opt->k < m->n_items ? opt->k : m->n_items;
  if (cofi__prune_pays(k, m->n_items)) {
    int rc = cofi__recommend_pruned(m, ws, vec, seen, n_seen, opt->exclude, opt->n_exclude, k,
                                    out, n_out);
    if (rc != COFI__PRUNE_SKIP) return rc;
  }
  return cofi__recommend_exact(m, ws, vec, seen, n_seen, opt->exclude, opt->n_exclude, k, out,
                               n_out);
}

int cofi_recommend_user(const cofi_model *m, cofi_workspace *ws, uint32_t user,
                        const cofi_recommend_options *opt, cofi_scored *out, size_t *n_out) {
  *n_out = 0;
  if (user >= m->n_users) return COFI_ERR_NOT_FOUND;
  if (!cofi__is_als(m)) {
    if (!opt || opt->k == 0) return COFI_ERR_INVALID;
    return cofi__recommend_user_items(m, ws, user, opt, out, n_out);
  }
  const uint32_t *seen = NULL;
  size_t n_seen = 0;
  if (opt && opt->filter_seen) n_seen = cofi_model_user_items(m, user, &seen, NULL);
  return cofi_recommend_vector(m, ws, m->user_factors + (size_t)user * m->factors, seen,
                               n_seen, opt, out, n_out);
}

int cofi__fold_in_given(const cofi_model *m, cofi_workspace *ws, const uint32_t *items,
                        const float *values, size_t n, bool in_time_order, float *vec) {
  uint32_t k = m->factors;
  if (n == 0 || !cofi__is_als(m)) return COFI_ERR_INVALID;
  for (size_t i = 0; i < n; i++)
    if (items[i] >= m->n_items) return COFI_ERR_NOT_FOUND;
  /* The weights the solver needs: the raw values (or 1 each) through the
   * model's confidence transform (and recency), held in scores. */
  int rc = cofi__ws_reserve(ws, n, cofi__solve_row_scratch(k), 0);
  if (rc) return rc;
  cofi__given_history_weights(m, items, values, n, in_time_order, ws->scores);
  return cofi__fold_in_row(m, items, ws->scores, n, vec, ws->scratch);
}

int cofi_fold_in(const cofi_model *m, cofi_workspace *ws, const uint32_t *items,
                 const float *values, size_t n, float *vec) {
  return cofi__fold_in_given(m, ws, items, values, n, true, vec);
}

static int similar(const float *F, const float *norms, uint32_t n, uint32_t k_dim,
                   cofi_workspace *ws, uint32_t query, uint32_t k, cofi_scored *out,
                   size_t *n_out) {
  *n_out = 0;
  if (k == 0) return COFI_ERR_INVALID;
  if (query >= n) return COFI_ERR_NOT_FOUND;
  uint32_t want = n - 1 < k ? n - 1 : k;
  int rc = cofi__ws_reserve(ws, n, 0, want ? want : 1);
  if (rc) return rc;
  float *scores = ws->scores;
  const float *q = F + (size_t)query * k_dim;
  float qn = norms[query];
  score_all(F, n, k_dim, q, scores);
  for (uint32_t i = 0; i < n; i++) {
    float d = qn * norms[i];
    scores[i] = d > 0 ? scores[i] / d : 0.0f;
  }
  scores[query] = -INFINITY;
  return select_top(ws, scores, n, want, out, n_out);
}

int cofi_similar_items(const cofi_model *m, cofi_workspace *ws, uint32_t item, uint32_t k,
                       cofi_scored *out, size_t *n_out) {
  uint32_t want = m->n_items - 1 < k ? m->n_items - 1 : k;
  if (!cofi__is_als(m)) {
    *n_out = 0;
    if (k == 0) return COFI_ERR_INVALID;
    if (item >= m->n_items) return COFI_ERR_NOT_FOUND;
    return cofi__similar_items_items(m, ws, item, k, out, n_out);
  }
  if (k > 0 && item < m->n_items && want > 0 && cofi__prune_pays(want, m->n_items)) {
    int rc = cofi__similar_items_pruned(m, ws, item, want, out, n_out);
    if (rc != COFI__PRUNE_SKIP) return rc;
  }
  return similar(m->item_factors, m->item_norms, m->n_items, m->factors, ws, item, k, out,
                 n_out);
}

int cofi_similar_users(const cofi_model *m, cofi_workspace *ws, uint32_t user, uint32_t k,
                       cofi_scored *out, size_t *n_out) {
  *n_out = 0;
  if (!cofi__is_als(m)) return COFI_ERR_INVALID;
  return similar(m->user_factors, m->user_norms, m->n_users, m->factors, ws, user, k, out,
                 n_out);
}

/*
 * item_queries.c — queries on the item-item models (EASE, item-kNN).
 *
 * A user's scores under an item-item model are a sum of item rows:
 *   EASE      s = sum_{i in history} r_i B_i        (each item counts 1)
 *   item-kNN  s = sum_{i in history} r_i w_i S_i    (w: training weights)
 * where r_i is the recency weight (1 unless the model has a half-life,
 * train/recency.c)
 * accumulated into the workspace's score buffer, the history and the
 * exclusions set to -inf, then the same partial selection as the ALS
 * exact path (topk.c).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

void cofi__history_scores(const cofi_model *m, const uint32_t *items, const float *w,
                          size_t n, float *scores) {
  uint32_t ni = m->n_items;
  memset(scores, 0, (size_t)ni * sizeof *scores);
  if (m->params.model == COFI_MODEL_EASE) {
    for (size_t h = 0; h < n; h++) {
      const float *row = m->ease_weights + (size_t)items[h] * ni;
      float wi = w ? w[h] : 1.0f;
      for (uint32_t j = 0; j < ni; j++) scores[j] += wi * row[j];
    }
    return;
  }
  const cofi__csr *S = &m->neighbors;
  for (size_t h = 0; h < n; h++) {
    float wi = w ? w[h] : 1.0f;
    for (uint64_t t = S->indptr[items[h]]; t < S->indptr[items[h] + 1]; t++)
      scores[S->indices[t]] += wi * S->data[t];
  }
}

/* Top-k of scores over the whole catalog with the history and the
 * exclusions dropped. */
int cofi__select_from(const cofi_model *m, cofi_workspace *ws, const uint32_t *seen,
                       size_t n_seen, const cofi_recommend_options *opt, uint32_t k,
                       cofi_scored *out, size_t *n_out) {
  float *scores = ws->scores;
  for (size_t i = 0; i < n_seen; i++) scores[seen[i]] = -INFINITY;
  for (size_t i = 0; opt && i < opt->n_exclude; i++)
    if (opt->exclude[i] < m->n_items) scores[opt->exclude[i]] = -INFINITY;
  size_t got = cofi__topk_scores(scores, m->n_items, k, ws->heap);
  memcpy(out, ws->heap, got * sizeof *out);
  *n_out = got;
  return COFI_OK;
}

/* cofi_recommend_user for EASE and item-kNN. */
int cofi__recommend_user_items(const cofi_model *m, cofi_workspace *ws, uint32_t user,
                               const cofi_recommend_options *opt, cofi_scored *out,
                               size_t *n_out) {
  uint32_t k = opt->k < m->n_items ? opt->k : m->n_items;
  uint64_t len = m->user_items.indptr[user + 1] - m->user_items.indptr[user];
  int rc = cofi__ws_reserve(ws, m->n_items, (size_t)len, k);
  if (rc) return rc;
  const uint32_t *items;
  size_t n = cofi__user_history(m, user, &items, ws->scratch);
  cofi__history_scores(m, items, ws->scratch, n, ws->scores);
  return cofi__select_from(m, ws, items, opt->filter_seen ? n : 0, opt, k, out, n_out);
}


/* cofi_similar_items for EASE (B's row) and item-kNN (the neighbour row). */
int cofi__similar_items_items(const cofi_model *m, cofi_workspace *ws, uint32_t item,
                              uint32_t k, cofi_scored *out, size_t *n_out) {
  uint32_t want = m->n_items - 1 < k ? m->n_items - 1 : k;
  int rc = cofi__ws_reserve(ws, m->n_items, 0, want ? want : 1);
  if (rc) return rc;
  float *scores = ws->scores;
  if (m->params.model == COFI_MODEL_EASE) {
    memcpy(scores, m->ease_weights + (size_t)item * m->n_items, (size_t)m->n_items * sizeof *scores);
  } else {
    for (uint32_t j = 0; j < m->n_items; j++) scores[j] = -INFINITY;
    const cofi__csr *S = &m->neighbors;
    for (uint64_t t = S->indptr[item]; t < S->indptr[item + 1]; t++)
      scores[S->indices[t]] = S->data[t];
  }
  scores[item] = -INFINITY;
  size_t got = cofi__topk_scores(scores, m->n_items, want, ws->heap);
  memcpy(out, ws->heap, got * sizeof *out);
  *n_out = got;
  return COFI_OK;
}

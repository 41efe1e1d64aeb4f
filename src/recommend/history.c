/*
 * history.c — the one history query every kind of model answers
 * (cofi_recommend_history): ALS folds the history in and ranks by the
 * vector (recommend.c); EASE and item-kNN sum item rows (item_queries.c).
 */
#include "internal.h"

#include <math.h>

int cofi_recommend_history(const cofi_model *m, cofi_workspace *ws, const uint32_t *items,
                           const float *values, size_t n, uint32_t k,
                           const cofi_recommend_options *opt, cofi_scored *out,
                           size_t *n_out) {
  *n_out = 0;
  if (!m || !ws || !items || n == 0 || k == 0) return COFI_ERR_INVALID;
  for (size_t i = 0; i < n; i++) {
    if (items[i] >= m->n_items) return COFI_ERR_NOT_FOUND;
    if (values && (!isfinite(values[i]) || values[i] < 0)) return COFI_ERR_INVALID;
  }
  cofi_recommend_options o = opt ? *opt : cofi_recommend_options_default();
  o.k = k;
  if (cofi__is_als(m)) {
    /* the fold-in uses the other buffers: the vector has its own */
    if (!ws->vec && !(ws->vec = cofi__aligned_alloc(COFI_MAX_FACTORS * sizeof *ws->vec)))
      return COFI_ERR_NOMEM;
    int rc = cofi_fold_in(m, ws, items, values, n, ws->vec);
    if (!rc) rc = cofi_recommend_vector(m, ws, ws->vec, items, n, &o, out, n_out);
    return rc;
  }
  uint32_t kk = k < m->n_items ? k : m->n_items;
  int rc = cofi__ws_reserve(ws, m->n_items, n, kk);
  if (rc) return rc;
  float *w = ws->scratch; /* the history's weights, as training transformed them */
  cofi__given_history_weights(m, items, values, n, true, w);
  cofi__history_scores(m, items, w, n, ws->scores);
  return cofi__select_from(m, ws, items, n, &o, kk, out, n_out);
}

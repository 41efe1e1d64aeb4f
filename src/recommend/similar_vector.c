/*
 * similar_vector.c — the model's items most similar to a vector that is
 * not one of them (a new item's vector from its metadata, see
 * metadata_map.c): the cosine of the vector with every item's factors,
 * as cofi_similar_items ranks the model's own items.
 */
#include "internal.h"
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

int cofi_similar_items_vector(const cofi_model *m, cofi_workspace *ws, const float *vec,
                              uint32_t k, cofi_scored *out, size_t *n_out) {
  if (n_out) *n_out = 0;
  if (!m || !ws || !vec || !out || !n_out || k == 0) return COFI_ERR_INVALID;
  uint32_t want = m->n_items < k ? m->n_items : k;
  if (want == 0) return COFI_OK;
  int rc = cofi__ws_reserve(ws, m->n_items, 0, want);
  if (rc) return rc;
  uint32_t dim = m->factors;
  double qn2 = 0;
  for (uint32_t f = 0; f < dim; f++) qn2 += (double)vec[f] * vec[f];
  float qn = (float)sqrt(qn2);
  cofi__rows rows = {.base = m->item_factors, .ld = dim, .idx = NULL};
  cofi__k_gemv(&rows, m->n_items, dim, vec, ws->scores);
  for (uint32_t i = 0; i < m->n_items; i++) {
    float d = qn * m->item_norms[i];
    ws->scores[i] = d > 0 ? ws->scores[i] / d : 0.0f;
  }
  size_t got = cofi__topk_scores(ws->scores, m->n_items, want, ws->heap);
  memcpy(out, ws->heap, got * sizeof *out);
  *n_out = got;
  return COFI_OK;
}

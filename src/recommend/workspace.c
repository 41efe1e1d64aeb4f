/*
 * workspace.c — the per-thread workspace of queries (public
 * cofi_workspace): buffers that grow to the largest query seen and are
 * reused, so that answering allocates nothing once warm. Used by
 * recommend.c and prune.c alike.
 */
#include "internal.h"

cofi_workspace *cofi_workspace_new(void) { return cofi__calloc(1, sizeof(cofi_workspace)); }

void cofi_workspace_free(cofi_workspace *ws) {
  if (!ws) return;
  cofi__aligned_free(ws->scores);
  cofi__aligned_free(ws->scratch);
  cofi__aligned_free(ws->vec);
  cofi__free(ws->heap);
  cofi__free(ws->cand);
  cofi__free(ws->skip);
  cofi__free(ws);
}

int cofi__ws_reserve(cofi_workspace *ws, size_t n_scores, size_t n_scratch, size_t n_heap) {
  if (n_scores > ws->scores_cap) {
    float *p = cofi__aligned_alloc(n_scores * sizeof *p);
    if (!p) return COFI_ERR_NOMEM;
    cofi__aligned_free(ws->scores);
    ws->scores = p;
    ws->scores_cap = n_scores;
  }
  if (n_scratch > ws->scratch_cap) {
    float *p = cofi__aligned_alloc(n_scratch * sizeof *p);
    if (!p) return COFI_ERR_NOMEM;
    cofi__aligned_free(ws->scratch);
    ws->scratch = p;
    ws->scratch_cap = n_scratch;
  }
  if (n_heap > ws->heap_cap) {
    cofi_scored *p = cofi__malloc(n_heap * sizeof *p);
    if (!p) return COFI_ERR_NOMEM;
    cofi__free(ws->heap);
    ws->heap = p;
    ws->heap_cap = n_heap;
  }
  return COFI_OK;
}

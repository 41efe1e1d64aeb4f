/*
 * candidates.c — recommendations among a restricted set of items: the
 * category= and items= filters of /recommend. The library's top-k calls
 * rank the whole catalog; here the candidates are scored one by one (the
 * float dot product of the user's vector and the item's factors, as the
 * library's exact path does) and the best k kept, so the cost follows
 * the candidate count, not the catalog.
 */
#include "online.h"

#include <stdlib.h>

static int cmp_u32(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return (a > b) - (a < b);
}

/* Better: higher score, then lower index (the library's order). */
static bool better(float sa, uint32_t ia, float sb, uint32_t ib) {
  return sa > sb || (sa == sb && ia < ib);
}

size_t srv_top_candidates(const srv_model *sm, const srv_attr_view *v, const float *vec,
                          const uint32_t *cands, size_t n_cands, int64_t category,
                          const uint32_t *skip, size_t n_skip, uint32_t k, cofi_scored *out) {
  const float *Y = cofi_model_item_factors(sm->m);
  uint32_t f = sm->info.factors;
  size_t total = cands ? n_cands : sm->info.n_items, n = 0;
  for (size_t c = 0; c < total; c++) {
    uint32_t it = cands ? cands[c] : (uint32_t)c;
    if ((v && (srv_attrs_is_hidden(v, it) || !srv_attrs_in_category(v, it, category))) ||
        (!v && category >= 0))
      continue;
    if (n_skip && bsearch(&it, skip, n_skip, sizeof it, cmp_u32)) continue;
    /* A candidate listed twice is scored once. */
    bool dup = false;
    for (size_t j = 0; cands && j < n && !dup; j++) dup = out[j].index == it;
    if (dup) continue;
    const float *y = Y + (size_t)it * f;
    float s = 0;
    for (uint32_t d = 0; d < f; d++) s += vec[d] * y[d];
    if (n == k && !better(s, it, out[n - 1].score, out[n - 1].index)) continue;
    size_t pos = n < k ? n++ : n - 1;
    while (pos > 0 && better(s, it, out[pos - 1].score, out[pos - 1].index)) {
      out[pos] = out[pos - 1];
      pos--;
    }
    out[pos] = (cofi_scored){it, s};
  }
  return n;
}

/*
 * prune.c — exact top-k for one query vector without scoring every item in
 * full precision: approximate scores from an int8 copy of the item
 * factors, a proven bound on their error, and an exact re-score of the few
 * items the bound cannot rule out.
 *
 * Why: one query reads all item factors. In float32 they are 1.6 MB for
 * ml-latest-small at 64 factors, more than a core's 1 MB L2, so the exact
 * pass streams them from L3 on every request; in int8 they are 400 KB,
 * stay in L2 next to the server's own working set, and the kernels score
 * them with exact integer sums (AVX512-VNNI: 16 items x 4 factors per
 * instruction; AVX2: VPMADDWD on sign-extended bytes; kernels/).
 *
 * Quantization (model/panel.c builds the items' side when the model is
 * prepared; the query's is made here by the same cofi__quantize). Item i:
 * scale s_i = max_j |y_ij| / 127, q_ij = round(y_ij / s_i) in [-127, 127],
 * e_ij = y_ij - s_i q_ij. The query the same way with one scale t: p_j,
 * d_j. The panel stores q for blocks of 16 items and groups of 4 factors,
 * 64 bytes each:
 *
 *   block b, group g: [ q(16b+0)[4g..4g+3] | q(16b+1)[4g..4g+3] | ... ]
 *
 * Items past the catalog and factors past k are zero. The instruction
 * multiplies unsigned by signed bytes, so the query goes in as p_j + 128
 * and 128 sum_j q_ij (stored per item) is taken off again.
 *
 * The bound. P_i = sum_j p_j q_ij (exact, an integer) and the approximate
 * score a_i = P_i s_i t (two float roundings). Expanding u_j = t p_j + d_j
 * and y_ij = s_i q_ij + e_ij, with D = max |d_j|, E_i = max_j |e_ij| (both
 * measured, not assumed), |u|_1 and |y_i|_1:
 *
 *   |u . y_i - s_i t P_i| <= E_i (|u|_1 + 3 k D) + D |y_i|_1
 *
 * The exact path's float32 dot product s_i^ is within (k + 4) 2^-24 |u||y_i|
 * of u . y_i, the stored norms are as close to the true ones, and the
 * float steps of a_i and of the bound itself each add a few 2^-24
 * relative; a term gamma |y_i| and a slight inflation cover them. So, with
 * margin_i = alpha E_i + beta |y_i|_1 + gamma |y_i| + slack (alpha, beta,
 * gamma per query; slack for underflow), |a_i - s_i^| <= margin_i.
 *
 * The search. With L_i = a_i - margin_i and U_i = a_i + margin_i, let T be
 * the k-th largest L over the items not excluded. At least k items then
 * have an exact score >= T, so an item with U_i < T has k items strictly
 * ahead of it and cannot be in the top k, whatever the tie rule. Every
 * other item is scored exactly (the gemv kernel over the picked rows,
 * whose sums are cofi__dot's, as in the exact path) and offered to the
 * same top-k selection: the answer is identical, scores bit for bit.
 *
 * Order. The panel holds the items by decreasing norm (item_at / pos_of
 * map positions and items). The best scores tend to sit early, so the
 * running threshold rises fast and few lower bounds enter its heap; and
 * since no item scores above |u| |y_i| (Cauchy-Schwarz, plus the float
 * errors), the scan stops at the first block whose largest norm cannot
 * reach the threshold. On ml-latest-small, k = 10: 68% of the items
 * scanned, 18 of 6298 re-scored exactly.
 *
 * When the bound cannot be trusted (norms so large that products could
 * overflow, a non-finite query) the caller takes the exact path.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* The workspace: scores [k] holds the threshold's heap, heap [k] the
 * result's, cand [n] the survivors, skip [blocks] the excluded items. */
static int reserve(cofi_workspace *ws, size_t n, size_t blocks, uint32_t k) {
  int rc = cofi__ws_reserve(ws, k, 0, k);
  if (rc) return rc;
  if (n > ws->cand_cap) {
    uint32_t *c = cofi__malloc(n * sizeof *c);
    if (!c) return COFI_ERR_NOMEM;
    cofi__free(ws->cand);
    ws->cand = c;
    ws->cand_cap = n;
  }
  if (blocks > ws->skip_cap) {
    uint16_t *sk = cofi__malloc(blocks * sizeof *sk);
    if (!sk) return COFI_ERR_NOMEM;
    cofi__free(ws->skip);
    ws->skip = sk;
    ws->skip_cap = blocks;
  }
  return COFI_OK;
}

static void mark(uint16_t *skip, const uint32_t *pos_of, const uint32_t *items, size_t n_items,
                 uint32_t n) {
  for (size_t i = 0; i < n_items; i++)
    if (items[i] < n) {
      uint32_t pos = pos_of[items[i]];
      skip[pos / 16] |= (uint16_t)(1u << (pos % 16));
    }
}

int cofi__prune_bounds(const cofi_model *m, cofi_workspace *ws, const float *vec,
                       const uint32_t *seen, size_t n_seen, const uint32_t *exclude,
                       size_t n_exclude, uint32_t k, float *lo, float *hi, float *T,
                       size_t *n_scanned) {
  const struct cofi__qpanel *p = m->item_q8;
  if (!p) return COFI__PRUNE_SKIP;
  uint32_t f = m->factors, n = m->n_items;
  float unorm = sqrtf(cofi__dot(vec, vec, f));
  if (!(unorm < COFI__PRUNE_NORM_LIMIT)) return COFI__PRUNE_SKIP; /* also NaN */
  int rc = reserve(ws, n, p->blocks, k);
  if (rc) return rc;

  /* The query as bytes p_j + 128, four to a word; padding is p = 0. */
  int8_t qv[COFI_MAX_FACTORS];
  float D, l1u;
  float t = cofi__quantize(vec, f, qv, &D, &l1u);
  uint32_t uq[COFI_MAX_FACTORS / 4 + 4];
  for (uint32_t g = 0; g < p->groups; g++) {
    uint32_t w = 0;
    for (uint32_t b = 0; b < 4; b++) {
      uint32_t j = 4 * g + b;
      w |= (uint32_t)((j < f ? qv[j] : 0) + 128) << (8 * b);
    }
    uq[g] = w;
  }
  /* Excluded items and the lanes past the catalog. */
  uint16_t *skip = ws->skip;
  memset(skip, 0, p->blocks * sizeof *skip);
  if (n % 16) skip[p->blocks - 1] = (uint16_t)(0xFFFFu << (n % 16));
  mark(skip, p->pos_of, seen, n_seen, n);
  mark(skip, p->pos_of, exclude, n_exclude, n);

  /* margin_i = alpha E_i + beta |y_i|_1 + gamma |y_i| + slack (see the
   * top); the inflation covers the rounding of its own evaluation. */
  float inflate = 1 + 0x1p-18f;
  cofi__qscan s = {
      .panel = p->q, .n_blocks = p->blocks, .groups = p->groups, .qsum = p->qsum,
      .scale = p->scale, .err = p->err, .l1 = p->l1, .norm = p->norm, .uq = uq, .t = t,
      .coef = {cofi__round_up(((double)l1u + 3.0 * f * D) * inflate), cofi__round_up((double)D * inflate),
               cofi__round_up((double)unorm * ((2.0 * f + 16) * 0x1p-24 + 0x1p-20)),
               (float)f * 0x1p-100f},
      /* Cauchy-Schwarz: no item at or after a position scores above
       * |u| times the norm there (norms descend), with the float errors
       * of the exact dot product and of the norms. */
      .stop_coef = cofi__round_up((double)unorm * (1 + (3.0 * f + 16) * 0x1p-24 + 0x1p-20)),
      .skip = skip};
  size_t blocks = p->blocks;
  *T = cofi__k_qscan(&s, k, ws->scores, hi, lo, &blocks);
  *n_scanned = blocks * 16 < n ? blocks * 16 : n;
  return COFI_OK;
}

bool cofi__prune_pays(uint32_t k, uint32_t n) { return (uint64_t)k * 16 <= n; }

/* The survivors: panel positions p < n with hi[p] >= T (and not -inf),
 * as items, in position order, into ws->cand. Returns their count. */
static size_t survivors(const struct cofi__qpanel *p, const float *hi, size_t n, float T,
                        uint32_t *cand) {
  float below = T > -INFINITY ? nextafterf(T, -INFINITY) : -INFINITY;
  size_t n_cand = 0;
  for (size_t i = cofi__k_first_above(hi, n, below); i < n;) {
    cand[n_cand++] = p->item_at[i];
    i++;
    i += cofi__k_first_above(hi + i, n - i, below);
  }
  return n_cand;
}

/* The survivors' exact scores, as the exact path computes them: the gemv
 * kernel over the picked rows (it prefetches them; its sums are
 * cofi__dot's, bit for bit), divided by qn |y_i| when cosine; then the
 * same top-k selection (-inf and NaN never listed). ws->scores holds
 * n_cand floats, ws->heap k entries. */
static size_t exact_top(const cofi_model *m, cofi_workspace *ws, const float *vec,
                        size_t n_cand, uint32_t k, bool cosine, float qn, cofi_scored *out) {
  float *exact = ws->scores;
  cofi__rows rows = {.base = m->item_factors, .ld = m->factors, .idx = ws->cand};
  cofi__k_gemv(&rows, n_cand, m->factors, vec, exact);
  cofi__topk top;
  cofi__topk_init(&top, ws->heap, k);
  for (size_t c = 0; c < n_cand; c++) {
    uint32_t i = ws->cand[c];
    float s = exact[c];
    if (cosine) {
      float d = qn * m->item_norms[i];
      s = d > 0 ? s / d : 0.0f;
    }
    if (!(s > -INFINITY)) continue;
    cofi__topk_push(&top, i, s);
  }
  size_t got = cofi__topk_finish(&top);
  memcpy(out, ws->heap, got * sizeof *out);
  return got;
}

int cofi__recommend_pruned(const cofi_model *m, cofi_workspace *ws, const float *vec,
                           const uint32_t *seen, size_t n_seen, const uint32_t *exclude,
                           size_t n_exclude, uint32_t k, cofi_scored *out, size_t *n_out) {
  *n_out = 0;
  uint32_t n = m->n_items;
  if (!m->item_q8) return COFI__PRUNE_SKIP;
  /* scratch: hi; scores: the threshold's heap, then the survivors' scores */
  int rc = cofi__ws_reserve(ws, n, ((size_t)n + 15) / 16 * 16, 0);
  if (rc) return rc;
  float T, *hi = ws->scratch;
  size_t n_scanned;
  rc = cofi__prune_bounds(m, ws, vec, seen, n_seen, exclude, n_exclude, k, NULL, hi, &T,
                          &n_scanned);
  if (rc) return rc;
  /* The scan stopped where no later item could reach T. */
  size_t n_cand = survivors(m->item_q8, hi, n_scanned, T, ws->cand);
  *n_out = exact_top(m, ws, vec, n_cand, k, false, 0.0f, out);
  return COFI_OK;
}

int cofi__similar_items_pruned(const cofi_model *m, cofi_workspace *ws, uint32_t query,
                               uint32_t want, cofi_scored *out, size_t *n_out) {
  *n_out = 0;
  const struct cofi__qpanel *p = m->item_q8;
  uint32_t f = m->factors, n = m->n_items;
  if (!p || want == 0) return COFI__PRUNE_SKIP;
  const float *vec = m->item_factors + (size_t)query * f;
  float qn = m->item_norms[query];
  /* scores: lo, then the survivors' dot products; scratch: hi. */
  int rc = cofi__ws_reserve(ws, p->blocks * 16, p->blocks * 16, want);
  if (rc) return rc;
  float T, *lo = ws->scores, *hi = ws->scratch;
  size_t n_scanned;
  /* k = 0: bounds on every dot product, no threshold (cosines do not
   * follow the norm order), and the kernel's heap argument unused. */
  rc = cofi__prune_bounds(m, ws, vec, &query, 1, NULL, 0, 0, lo, hi, &T, &n_scanned);
  if (rc) return rc;

  /* Bounds on the cosines the exact path computes, fl(dot / fl(qn |y|)):
   * rounding is monotone, so dividing both bounds by the same positive d
   * keeps the order; d = 0 gives exactly 0, as there. The query stays
   * -inf. */
  const float *norm = p->norm;
  for (size_t pos = 0; pos < n; pos++) { /* branch-free: it vectorizes */
    float l = lo[pos], h = hi[pos], d = qn * norm[pos];
    float dd = d > 0 ? d : 1.0f;
    float lc = d > 0 ? l / dd : 0.0f, hc = d > 0 ? h / dd : 0.0f;
    bool excluded = !(l > -INFINITY);
    lo[pos] = excluded ? l : lc;
    hi[pos] = excluded ? h : hc;
  }
  size_t got = cofi__topk_scores(lo, n, want, ws->heap);
  T = got == want ? ws->heap[got - 1].score : -INFINITY;
  size_t n_cand = survivors(p, hi, n, T, ws->cand);
  *n_out = exact_top(m, ws, vec, n_cand, want, true, qn, out);
  return COFI_OK;
}

/*
 * panel.c — the int8 copy of a model's item factors that the pruned
 * search (recommend/prune.c) scans: data derived from the model for
 * serving, like the Gram matrix and the norms (model.c), built when the
 * model is prepared.
 *
 * Item i: scale s_i = max_j |y_ij| / 127, q_ij = round(y_ij / s_i) in
 * [-127, 127], with the measured error E_i = max_j |y_ij - s_i q_ij| and
 * |y_i|_1 kept for the bound. The panel stores q for blocks of 16 items
 * and groups of 4 factors, 64 bytes each (one AVX-512 register, two AVX2
 * ones):
 *
 *   block b, group g: [ q(16b+0)[4g..4g+3] | q(16b+1)[4g..4g+3] | ... ]
 *
 * Items past the catalog and factors past k are zero; items are in order
 * of decreasing norm (item_at / pos_of map positions and items).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* The float at or above x. */
float cofi__round_up(double x) {
  float f = (float)x;
  return (double)f < x ? nextafterf(f, INFINITY) : f;
}

/* Quantizes v[0..k) to q with one scale: returns the scale (0 for a zero
 * vector); *err >= max |v_j - scale q_j| and *l1 >= |v|_1.
 *
 * Any rounding to integers would do: the bound uses the error measured
 * here, not an assumed half step. Each error is v_j - scale q_j with one
 * rounding (a fused multiply-add: the product is exact inside), so it is
 * within 2^-24 of itself; the sum of |v_j| in float is within k 2^-24 of
 * itself. Both are rounded up by more than that. Written so that the
 * compiler vectorizes it: this runs once per query. */
float cofi__quantize(const float *v, uint32_t k, int8_t *q, float *err, float *l1) {
  float amax = 0, sum = 0;
  for (uint32_t j = 0; j < k; j++) {
    float a = fabsf(v[j]);
    amax = a > amax ? a : amax;
    sum += a;
  }
  /* A division, not a multiply by 1 / sc: for a subnormal sc that
   * reciprocal overflows, and 0 * inf would be NaN (found by fuzz_model). */
  float sc = amax / 127.0f, e = 0;
  for (uint32_t j = 0; j < k; j++) {
    float r = sc > 0 ? nearbyintf(v[j] / sc) : 0.0f;
    r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
    q[j] = (int8_t)r;
    float d = fabsf(fmaf(-sc, r, v[j]));
    e = d > e ? d : e;
  }
  *err = cofi__round_up((double)e * (1 + 0x1p-22));
  *l1 = cofi__round_up((double)sum * (1 + (k + 2) * 0x1p-24));
  return sc;
}

void cofi__model_free_panel(cofi_model *m) {
  struct cofi__qpanel *p = m->item_q8;
  if (!p) return;
  cofi__aligned_free(p->q);
  cofi__aligned_free(p->qsum);
  cofi__aligned_free(p->scale);
  cofi__aligned_free(p->err);
  cofi__aligned_free(p->l1);
  cofi__aligned_free(p->norm);
  cofi__free(p->item_at);
  cofi__free(p->pos_of);
  cofi__free(p);
  m->item_q8 = NULL;
}

typedef struct norm_index {
  float norm;
  uint32_t index;
} norm_index;

/* Norm descending, then index ascending. */
static int by_norm_desc(const void *pa, const void *pb) {
  const norm_index *a = pa, *b = pb;
  if (a->norm != b->norm) return a->norm > b->norm ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

int cofi__model_build_panel(cofi_model *m) {
  if (m->item_q8) return COFI_OK;
  if (!(m->item_norm_max < COFI__PRUNE_NORM_LIMIT)) return COFI_OK; /* would never be used */
  struct cofi__qpanel *p = cofi__calloc(1, sizeof *p);
  if (!p) return COFI_ERR_NOMEM;
  m->item_q8 = p;
  uint32_t k = m->factors, n = m->n_items;
  p->groups = cofi__kpad(k) / 4;
  p->blocks = ((size_t)n + 15) / 16;
  size_t padded = p->blocks * 16;
  p->q = cofi__aligned_alloc(p->blocks * p->groups * 64);
  p->qsum = cofi__aligned_alloc(padded * sizeof *p->qsum);
  p->scale = cofi__aligned_alloc(padded * sizeof *p->scale);
  p->err = cofi__aligned_alloc(padded * sizeof *p->err);
  p->l1 = cofi__aligned_alloc(padded * sizeof *p->l1);
  p->norm = cofi__aligned_alloc(padded * sizeof *p->norm);
  p->item_at = cofi__malloc((size_t)n * sizeof *p->item_at);
  p->pos_of = cofi__malloc((size_t)n * sizeof *p->pos_of);
  norm_index *order = cofi__malloc((size_t)n * sizeof *order);
  if (!p->q || !p->qsum || !p->scale || !p->err || !p->l1 || !p->norm || !p->item_at ||
      !p->pos_of || !order) {
    cofi__free(order);
    cofi__model_free_panel(m);
    return COFI_ERR_NOMEM;
  }
  memset(p->q, 0, p->blocks * p->groups * 64);
  memset(p->qsum, 0, padded * sizeof *p->qsum);
  memset(p->scale, 0, padded * sizeof *p->scale);
  memset(p->err, 0, padded * sizeof *p->err);
  memset(p->l1, 0, padded * sizeof *p->l1);
  memset(p->norm, 0, padded * sizeof *p->norm);
  /* Largest norms first: they hold the best scores, so the threshold rises
   * early, and the scan can stop where no norm left can reach it. */
  for (uint32_t i = 0; i < n; i++) order[i] = (norm_index){m->item_norms[i], i};
  qsort(order, n, sizeof *order, by_norm_desc);
  int8_t row[COFI_MAX_FACTORS];
  for (uint32_t pos = 0; pos < n; pos++) {
    uint32_t i = order[pos].index;
    p->item_at[pos] = i;
    p->pos_of[i] = pos;
    p->norm[pos] = m->item_norms[i];
    p->scale[pos] = cofi__quantize(m->item_factors + (size_t)i * k, k, row, &p->err[pos], &p->l1[pos]);
    int8_t *dst = p->q + (size_t)(pos / 16) * p->groups * 64 + 4 * (pos % 16);
    int32_t sum = 0;
    for (uint32_t j = 0; j < k; j++) {
      dst[(size_t)(j / 4) * 64 + (j % 4)] = row[j];
      sum += row[j];
    }
    p->qsum[pos] = sum;
  }
  cofi__free(order);
  return COFI_OK;
}

const uint32_t *cofi__panel_order(const cofi_model *m) {
  return m->item_q8 ? m->item_q8->item_at : NULL;
}


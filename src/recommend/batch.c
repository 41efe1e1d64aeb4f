/*
 * batch.c — top-k recommendations for many users at once (evaluation,
 * batch export, benchmarks): scores come from blocked matrix products
 * instead of one matrix-vector product per user, and go straight into
 * per-user heaps, so neither a users x items score matrix nor a sort ever
 * exists.
 *
 *   for each block of UB users (threads take blocks in turn):
 *     Xt = the block's factors, packed transposed  [k x UB]
 *     for each tile of IB items:
 *       C = Xt^T Yt[tile]                           [UB x IB], cofi__k_gemm
 *       per user: seen items of the tile -> -inf; every score above the
 *       user's current k-th best enters its heap (most are rejected by
 *       one comparison, 16 at a time)
 *
 * Yt, the item factors packed transposed tile by tile (each tile a
 * contiguous [k x IB] panel, zero padded), is built once per call. The
 * packed layouts let the product's inner loop read 48 items' values for
 * one factor as three vectors and broadcast the 8 users' values: the same
 * register tiles as the Cholesky's Gram products.
 *
 * Each score is summed over the factors in order 0, 1, ..., k-1, which is
 * not cofi__dot's order: a score can differ from cofi_recommend_user's in
 * the last bits, and items whose scores tie that closely may come in
 * another order. A user's result never depends on the thread count or on
 * which other users share its block.
 */
#include "internal.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define UB 64  /* users per block (a multiple of 8) */
#define IB 512 /* items per tile (a multiple of 16) */
/* Row stride of the tile panels and of the scores: not a power of two, so
 * the rows a product step reads do not all fall in the same cache sets. */
#define LD (IB + 16)

/* Scores of one user over one tile into its heap. Once the heap is full
 * only scores strictly above its worst can enter (items come in
 * increasing index order, so an equal score loses the tie). */
static void scan_tile(const float *row, uint32_t i0, uint32_t cnt, cofi__topk *t) {
  size_t j = 0;
  while (j < cnt && t->n < t->k) { /* filling the heap: everything enters */
    if (row[j] > -INFINITY) cofi__topk_push(t, i0 + (uint32_t)j, row[j]);
    j++;
  }
  if (t->n < t->k) return;
  for (;;) {
    j += cofi__k_first_above(row + j, cnt - j, t->heap[0].score);
    if (j >= cnt) return;
    cofi__topk_push(t, i0 + (uint32_t)j, row[j]);
    j++;
  }
}

int cofi__recommend_batch(const cofi_model *m, const uint32_t *users, size_t n, uint32_t k,
                          int filter_seen, uint32_t threads, cofi_scored *out, uint32_t *n_out) {
  if (k == 0) return COFI_ERR_INVALID;
  if (users)
    for (size_t i = 0; i < n; i++)
      if (users[i] >= m->n_users) return COFI_ERR_NOT_FOUND;
  if (n == 0) return COFI_OK;
  uint32_t kf = m->factors, ni = m->n_items, ntp = (ni + IB - 1) / IB * LD;
  uint32_t keep = k < ni ? k : ni;
  threads = cofi__threads(threads);
  size_t per = (size_t)kf * UB + (size_t)UB * LD; /* Xt, C */
  float *Yt = cofi__aligned_alloc((size_t)kf * ntp * sizeof *Yt);
  float *bufs = cofi__aligned_alloc(per * threads * sizeof *bufs);
  uint64_t *cursor = cofi__malloc((size_t)UB * threads * sizeof *cursor);
  cofi__topk *heaps = cofi__malloc((size_t)UB * threads * sizeof *heaps);
  int rc = COFI_OK;
  if (!Yt || !bufs || !cursor || !heaps) {
    rc = COFI_ERR_NOMEM;
    goto done;
  }
  /* tile by tile, each tile's [kf x IB] panel contiguous (zero padded) */
  for (uint32_t i0 = 0; i0 < ni; i0 += IB) {
    uint32_t tcnt = ni - i0 < IB ? ni - i0 : IB;
    float *panel = Yt + (size_t)(i0 / IB) * kf * LD;
    for (uint32_t p = 0; p < kf; p++) {
      float *yt = panel + (size_t)p * LD;
      for (uint32_t i = 0; i < tcnt; i++) yt[i] = m->item_factors[(size_t)(i0 + i) * kf + p];
      memset(yt + tcnt, 0, (LD - tcnt) * sizeof *yt);
    }
  }
  size_t n_blocks = (n + UB - 1) / UB;
  const cofi__csr *seen = &m->user_items;
#pragma omp parallel num_threads(threads)
  {
    int me = omp_get_thread_num();
    float *Xt = bufs + (size_t)me * per, *C = Xt + (size_t)kf * UB;
    uint64_t *cur = cursor + (size_t)me * UB;
    cofi__topk *hp = heaps + (size_t)me * UB;
#pragma omp for schedule(dynamic, 1)
    for (size_t blk = 0; blk < n_blocks; blk++) {
      size_t b0 = blk * UB, cnt = n - b0 < UB ? n - b0 : UB;
      /* pack the block's user factors transposed, zero for missing users */
      for (uint32_t p = 0; p < kf; p++) {
        float *xt = Xt + (size_t)p * UB;
        for (size_t u = 0; u < cnt; u++) {
          uint32_t user = users ? users[b0 + u] : (uint32_t)(b0 + u);
          xt[u] = m->user_factors[(size_t)user * kf + p];
        }
        for (size_t u = cnt; u < UB; u++) xt[u] = 0.0f;
      }
      for (size_t u = 0; u < cnt; u++) {
        uint32_t user = users ? users[b0 + u] : (uint32_t)(b0 + u);
        cur[u] = seen->indptr[user];
        cofi__topk_init(&hp[u], out + (b0 + u) * (size_t)k, keep);
      }
      for (uint32_t i0 = 0; i0 < ni; i0 += IB) {
        uint32_t tcnt = ni - i0 < IB ? ni - i0 : IB, tpad = cofi__kpad(tcnt);
        cofi__k_gemm(Xt, UB, Yt + (size_t)(i0 / IB) * kf * LD, LD, kf, UB, tpad, C, LD);
        for (size_t u = 0; u < cnt; u++) {
          float *row = C + u * LD;
          if (filter_seen) {
            uint32_t user = users ? users[b0 + u] : (uint32_t)(b0 + u);
            uint64_t e = seen->indptr[user + 1];
            while (cur[u] < e && seen->indices[cur[u]] < i0 + tcnt)
              row[seen->indices[cur[u]++] - i0] = -INFINITY;
          }
          scan_tile(row, i0, tcnt, &hp[u]);
        }
      }
      for (size_t u = 0; u < cnt; u++) n_out[b0 + u] = (uint32_t)cofi__topk_finish(&hp[u]);
    }
  }
done:
  cofi__aligned_free(Yt);
  cofi__aligned_free(bufs);
  cofi__free(cursor);
  cofi__free(heaps);
  return rc;
}

/* cofi_recommend_users for EASE and item-kNN: one user per step, in
 * parallel. */
static int batch_items(const cofi_model *m, const uint32_t *users, size_t n,
                                uint32_t k, int filter_seen, uint32_t threads,
                                cofi_scored *out, uint32_t *n_out) {
  if (k == 0) return COFI_ERR_INVALID;
  for (size_t i = 0; i < n; i++)
    if (users && users[i] >= m->n_users) return COFI_ERR_NOT_FOUND;
  if (!users && n > m->n_users) return COFI_ERR_NOT_FOUND;
  threads = cofi__threads(threads);
  cofi_workspace **ws = cofi__calloc(threads, sizeof *ws);
  int rc = ws ? COFI_OK : COFI_ERR_NOMEM;
  for (uint32_t t = 0; !rc && t < threads; t++)
    if (!(ws[t] = cofi_workspace_new())) rc = COFI_ERR_NOMEM;
  cofi_recommend_options opt = cofi_recommend_options_default();
  opt.k = k;
  opt.filter_seen = filter_seen;
  if (!rc) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
    for (int64_t i = 0; i < (int64_t)n; i++) {
      uint32_t u = users ? users[i] : (uint32_t)i;
      size_t got = 0;
      int r = cofi__recommend_user_items(m, ws[omp_get_thread_num()], u, &opt,
                                         out + (size_t)i * k, &got);
      n_out[i] = (uint32_t)got;
      if (r) {
#pragma omp critical
        if (!rc) rc = r;
      }
    }
  }
  if (ws)
    for (uint32_t t = 0; t < threads; t++) cofi_workspace_free(ws[t]);
  cofi__free(ws);
  return rc;
}

int cofi_recommend_users(const cofi_model *m, const uint32_t *users, size_t n, uint32_t k,
                         int filter_seen, uint32_t threads, cofi_scored *out,
                         uint32_t *n_out) {
  if (!m || (n && (!out || !n_out))) return COFI_ERR_INVALID;
  if (!cofi__is_als(m)) return batch_items(m, users, n, k, filter_seen, threads, out, n_out);
  return cofi__recommend_batch(m, users, n, k, filter_seen, threads, out, n_out);
}

/*
 * rank.c — the ranking kernel of evaluation: the top-K items of every
 * evaluated user, their seen items excluded.
 *
 * Users are taken in blocks of B. For the model, one matrix product per
 * block scores all items at once (S[B x n_items] = U_block V^T, BLAS
 * sgemm); the baselines fill S directly. Then each row has its seen items
 * set to -inf and goes through a K-entry heap (cofi__topk_scores): O(n log K)
 * per user, the catalog is never sorted. Blocks are spread over OpenMP
 * threads, each with its own buffers and a single-threaded sgemm (the
 * trainer pins OpenBLAS to one thread for the same reason: nested BLAS
 * threads oversubscribe the cores). B is chosen so that one block's
 * scores stay near 4 MB, in cache-friendly reach.
 */
#include "eval.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

void cofi__popularity(const cofi__csr *train, float *pop) {
  memset(pop, 0, (size_t)train->n_cols * sizeof *pop);
  for (uint64_t t = 0; t < train->nnz; t++) pop[train->indices[t]] += 1.0f;
}

/* A well-mixed 64-bit hash (the splitmix64 finalizer). */
static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform [0, 1) per (seed, user, item), independent of block layout and
 * thread count. */
float cofi__random_score(uint64_t seed, uint32_t user, uint32_t item) {
  uint64_t h = mix64(seed * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull);
  h = mix64(h ^ ((uint64_t)user * 0xA24BAED4963EE407ull));
  h = mix64(h ^ ((uint64_t)item * 0x9FB21C651E98DF25ull + 1));
  return (float)(h >> 40) * (1.0f / 16777216.0f);
}

static uint32_t block_rows(uint32_t n_items) {
  size_t target = (size_t)1 << 20; /* floats per block: 4 MB */
  size_t b = n_items ? target / n_items : 256;
  if (b < 1) b = 1;
  if (b > 256) b = 256;
  return (uint32_t)b;
}

int cofi__eval_rank(const cofi__evalset *set, const cofi__scoring *sc, uint32_t K,
                    uint32_t *top, uint32_t *n_top) {
  uint32_t n_items = set->n_items, k = sc->k;
  uint32_t B = block_rows(n_items);
  uint32_t threads = sc->threads ? sc->threads : 1;
  uint32_t n_blocks = (set->n_users + B - 1) / B;
  if (threads > n_blocks) threads = n_blocks ? n_blocks : 1;
  const cofi_model *im = sc->kind == COFI_SCORER_MODEL ? sc->items_model : NULL;
  bool model = sc->kind == COFI_SCORER_MODEL && !im;
  size_t s_floats, u_floats = model ? (size_t)B * k : im ? n_items : 0;
  if (!cofi__mul_ok((size_t)B, n_items, &s_floats)) return COFI_ERR_NOMEM;
  size_t per = ((s_floats + u_floats + 15) & ~(size_t)15);
  size_t all;
  if (!cofi__mul_ok(per, threads, &all) || !cofi__mul_ok(all, sizeof(float), &all))
    return COFI_ERR_NOMEM;
  float *buf = cofi__aligned_alloc(all ? all : 64);
  cofi_scored *heaps = cofi__malloc((size_t)threads * K * sizeof *heaps);
  if (!buf || !heaps) {
    cofi__aligned_free(buf);
    cofi__free(heaps);
    return COFI_ERR_NOMEM;
  }
  if (model) openblas_set_num_threads(1);

#pragma omp parallel num_threads(threads)
  {
    int tid = omp_get_thread_num();
    float *S = buf + (size_t)tid * per;
    float *Ub = S + s_floats;
    cofi_scored *heap = heaps + (size_t)tid * K;
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < (int64_t)n_blocks; blk++) {
      uint32_t u0 = (uint32_t)blk * B;
      uint32_t nb = set->n_users - u0 < B ? set->n_users - u0 : B;
      if (model) {
        for (uint32_t b = 0; b < nb; b++) {
          const float *src = set->vecs ? set->vecs + (size_t)(u0 + b) * k
                                       : sc->U + (size_t)set->row[u0 + b] * k;
          memcpy(Ub + (size_t)b * k, src, (size_t)k * sizeof *Ub);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n_items, (int)k,
                    1.0f, Ub, (int)k, sc->V, (int)k, 0.0f, S, (int)n_items);
      }
      for (uint32_t b = 0; b < nb; b++) {
        uint32_t u = u0 + b;
        float *row = S + (size_t)b * n_items;
        if (im) {
          if (set->vecs || !set->seen_val) {
            const uint32_t *items;
            size_t n = cofi__user_history(im, set->row[u], &items, Ub);
            cofi__history_scores(im, items, Ub, n, row);
          } else {
            /* fold-in history: raw values through the transform; its rows
             * come as a matrix (by item), so no recency order */
            uint64_t hb = set->seen_ptr[u], he = set->seen_ptr[u + 1];
            cofi__given_history_weights(im, set->seen + hb, set->seen_val + hb, (size_t)(he - hb),
                                        false, Ub);
            cofi__history_scores(im, set->seen + hb, Ub, (size_t)(he - hb), row);
          }
        } else if (sc->kind == COFI_SCORER_POPULARITY) {
          memcpy(row, sc->pop, (size_t)n_items * sizeof *row);
        } else if (sc->kind == COFI_SCORER_RANDOM) {
          for (uint32_t i = 0; i < n_items; i++) row[i] = cofi__random_score(sc->seed, u, i);
        }
        for (uint64_t t = set->seen_ptr[u]; t < set->seen_ptr[u + 1]; t++)
          row[set->seen[t]] = -INFINITY;
        size_t got = cofi__topk_scores(row, n_items, K, heap);
        uint32_t *dst = top + (size_t)u * K;
        for (size_t i = 0; i < got; i++) dst[i] = heap[i].index;
        n_top[u] = (uint32_t)got;
      }
    }
  }
  cofi__aligned_free(buf);
  cofi__free(heaps);
  return COFI_OK;
}

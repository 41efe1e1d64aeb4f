/*
 * itemknn.c — item-kNN: for every item, the `neighbors` items with the
 * largest similarity, kept as a sparse item x item matrix (CSR). As
 * implicit's ItemItemRecommender family, on the item x user matrix A (rows
 * items, values the training weights):
 *
 *   cosine  A_iu = r_iu / |r_i|
 *   tfidf   A_iu = sqrt(r_iu) idf_u / |row|, idf_u = log(n_items) - log1p(items of u)
 *   bm25    A_iu = r_iu (K1 + 1) / (K1 L_i + r_iu) idf_u,
 *           L_i = (1 - B) + B rowsum_i / mean rowsum
 *
 * then S = A A^T, and row i keeps its top `neighbors` entries j != i with
 * S_ij > 0 (ties by lower index). The item itself is left out: its
 * similarity only ever scores items the user already has. A user's scores
 * are sum_i w_ui S_i (recommend/history.c).
 *
 * S's rows are computed one item at a time into a dense accumulator per
 * thread (touching only the items that share a user), then selected with
 * the same top-k as queries (cofi__topk_scores); the neighbour lists of
 * all items are concatenated in item order.
 */
#include "internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int by_index(const void *a, const void *b) {
  const cofi_scored *x = a, *y = b;
  return (x->index > y->index) - (x->index < y->index);
}

/* Weighs At (item x user, the training weights) into A in place. */
static int weigh(cofi__csr *At, uint32_t n_users, const cofi_params *p) {
  uint32_t ni = At->n_rows;
  double *idf = NULL;
  if (p->knn_weighting != COFI_KNN_COSINE) {
    uint64_t *df = cofi__calloc((size_t)n_users + 1, sizeof *df);
    idf = cofi__calloc((size_t)n_users + 1, sizeof *idf);
    if (!df || !idf) {
      cofi__free(df);
      cofi__free(idf);
      return COFI_ERR_NOMEM;
    }
    for (uint64_t t = 0; t < At->nnz; t++) df[At->indices[t]]++;
    for (uint32_t u = 0; u < n_users; u++) idf[u] = log((double)ni) - log1p((double)df[u]);
    cofi__free(df);
  }
  double mean = 0;
  if (p->knn_weighting == COFI_KNN_BM25) {
    for (uint64_t t = 0; t < At->nnz; t++) mean += At->data[t];
    mean = ni ? mean / ni : 0;
  }
  for (uint32_t i = 0; i < ni; i++) {
    uint64_t b = At->indptr[i], e = At->indptr[i + 1];
    if (p->knn_weighting == COFI_KNN_BM25) {
      double rowsum = 0;
      for (uint64_t t = b; t < e; t++) rowsum += At->data[t];
      double ln = cofi__bm25_len_norm(p, mean, rowsum), k1 = p->bm25_k1;
      for (uint64_t t = b; t < e; t++) {
        double r = At->data[t], den = k1 * ln + r;
        At->data[t] = den > 0 ? (float)(r * (k1 + 1.0) / den * idf[At->indices[t]]) : 0.0f;
      }
      continue;
    }
    if (p->knn_weighting == COFI_KNN_TFIDF)
      for (uint64_t t = b; t < e; t++)
        At->data[t] = (float)(sqrt((double)At->data[t]) * idf[At->indices[t]]);
    double norm = 0;
    for (uint64_t t = b; t < e; t++) norm += (double)At->data[t] * At->data[t];
    norm = sqrt(norm);
    for (uint64_t t = b; t < e; t++) At->data[t] = norm > 0 ? (float)(At->data[t] / norm) : 0.0f;
  }
  cofi__free(idf);
  return COFI_OK;
}

int cofi__itemknn_fit(const cofi__csr *R, const cofi_params *p, cofi__csr *out, cofi_diag *d) {
  memset(out, 0, sizeof *out);
  uint32_t ni = R->n_cols, K = p->neighbors < ni ? p->neighbors : ni;
  uint32_t threads = cofi__threads(p->threads);
  cofi__csr A = {0}, At = {0};
  int rc = cofi__csr_transpose(R, &At);
  if (!rc) rc = weigh(&At, R->n_rows, p);
  if (!rc) rc = cofi__csr_transpose(&At, &A); /* user x item, weighted */
  /* per item: up to K neighbours, written at i * K, then compacted */
  cofi_scored *lists = NULL;
  uint32_t *counts = NULL;
  float *acc = NULL;
  uint32_t *touched = NULL, *stamps = NULL;
  cofi_scored *heaps = NULL;
  size_t slots;
  if (!rc && !cofi__mul_ok((size_t)ni, K ? K : 1, &slots)) rc = COFI_ERR_NOMEM;
  if (!rc) {
    lists = cofi__malloc(slots * sizeof *lists);
    counts = cofi__calloc((size_t)ni + 1, sizeof *counts);
    acc = cofi__calloc((size_t)threads * ni + 1, sizeof *acc);
    touched = cofi__malloc(((size_t)threads * ni + 1) * sizeof *touched);
    stamps = cofi__calloc((size_t)threads * ni + 1, sizeof *stamps);
    heaps = cofi__malloc(((size_t)threads * (K ? K : 1)) * sizeof *heaps);
    if (!lists || !counts || !acc || !touched || !stamps || !heaps) rc = COFI_ERR_NOMEM;
  }
  if (!rc) {
#pragma omp parallel num_threads(threads)
    {
      int tid = omp_get_thread_num();
      float *row = acc + (size_t)tid * ni;
      uint32_t *seen = touched + (size_t)tid * ni;
      uint32_t *stamp = stamps + (size_t)tid * ni; /* i + 1 once j is listed for row i */
      cofi_scored *heap = heaps + (size_t)tid * K;
#pragma omp for schedule(dynamic, 64)
      for (int64_t ii = 0; ii < (int64_t)ni; ii++) {
        uint32_t i = (uint32_t)ii, n_seen = 0;
        for (uint64_t t = At.indptr[i]; t < At.indptr[i + 1]; t++) {
          uint32_t u = At.indices[t];
          float a = At.data[t];
          for (uint64_t s = A.indptr[u]; s < A.indptr[u + 1]; s++) {
            uint32_t j = A.indices[s];
            if (j == i) continue;
            if (stamp[j] != i + 1) {
              stamp[j] = i + 1;
              seen[n_seen++] = j;
            }
            row[j] += a * A.data[s];
          }
        }
        /* top K of the positive sums among the touched items */
        cofi__topk tk;
        cofi__topk_init(&tk, heap, K);
        for (uint32_t q = 0; q < n_seen; q++) {
          uint32_t j = seen[q];
          float v = row[j];
          row[j] = 0.0f;
          if (v > 0) cofi__topk_push(&tk, j, v);
        }
        size_t got = cofi__topk_finish(&tk);
        cofi_scored *dst = lists + (size_t)i * K;
        qsort(heap, got, sizeof *heap, by_index);
        memcpy(dst, heap, got * sizeof *dst);
        counts[i] = (uint32_t)got;
      }
    }
  }
  if (!rc) {
    out->n_rows = out->n_cols = ni;
    out->indptr = cofi__malloc(((size_t)ni + 1) * sizeof *out->indptr);
    uint64_t nnz = 0;
    for (uint32_t i = 0; i < ni; i++) nnz += counts[i];
    out->nnz = nnz;
    out->indices = cofi__malloc((nnz ? nnz : 1) * sizeof *out->indices);
    out->data = cofi__malloc((nnz ? nnz : 1) * sizeof *out->data);
    if (!out->indptr || !out->indices || !out->data) {
      rc = COFI_ERR_NOMEM;
    } else {
      uint64_t at = 0;
      for (uint32_t i = 0; i < ni; i++) {
        out->indptr[i] = at;
        const cofi_scored *src = lists + (size_t)i * K;
        for (uint32_t q = 0; q < counts[i]; q++, at++) {
          out->indices[at] = src[q].index;
          out->data[at] = src[q].score;
        }
      }
      out->indptr[ni] = at;
    }
  }
  cofi__free(lists);
  cofi__free(counts);
  cofi__free(acc);
  cofi__free(touched);
  cofi__free(stamps);
  cofi__free(heaps);
  cofi__csr_free(&A);
  cofi__csr_free(&At);
  if (rc) {
    cofi__csr_free(out);
    memset(out, 0, sizeof *out);
    if (rc == COFI_ERR_NOMEM) cofi__fail(d, rc, NULL, 0, "out of memory for the item-kNN neighbours");
  }
  return rc;
}

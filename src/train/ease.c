/*
 * ease.c — EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for
 * Sparse Data"): the item x item weights B minimizing
 * |X - X B|^2 + lambda |B|^2 subject to diag(B) = 0, in closed form:
 *
 *   G = X^T X + lambda I          (X binarized: each stored pair is 1)
 *   P = G^-1                       (Cholesky, LAPACK spotrf + spotri)
 *   B = I - P diagMat(1 / diag(P)), i.e. B_ij = -P_ij / P_jj, B_jj = 0
 *
 * One n_items^2 float matrix is the whole working set: G is accumulated in
 * it, inverted in place and turned into B in place, so the memory check is
 * n_items^2 x 4 bytes against p->max_memory. X is binarized because EASE's
 * objective is a regression onto the 0/1 interaction matrix: with summed
 * ratings (4, 4.5, 5) the targets stop being 0/1 and measured recall on
 * ml-latest-small drops (docs/evaluation.md).
 *
 * G is summed exactly in float (integer counts below 2^24) from the
 * transposed matrix, one item row per OpenMP iteration (no shared writes);
 * the inversion uses OpenBLAS's threads.
 */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

/* LAPACK (OpenBLAS ships it). Column-major; G is symmetric, so the
 * row-major matrix is its own column-major transpose. */
extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda, int *info);
extern void spotri_(const char *uplo, const int *n, float *a, const int *lda, int *info);

/* bytes as "1.50 GiB" or "152.1 MiB" */
static void human(char *buf, size_t size, uint64_t bytes) {
  if (bytes >= ((uint64_t)1 << 30)) snprintf(buf, size, "%.2f GiB", (double)bytes / (1u << 30));
  else snprintf(buf, size, "%.1f MiB", (double)bytes / (1u << 20));
}

int cofi__ease_fit(const cofi__csr *R, const cofi_params *p, float **B_out, cofi_diag *d) {
  *B_out = NULL;
  uint32_t n = R->n_cols;
  size_t cells, bytes;
  if (!cofi__mul_ok((size_t)n, n, &cells) || !cofi__mul_ok(cells, sizeof(float), &bytes))
    return cofi__fail(d, COFI_ERR_INVALID, NULL, 0, "EASE: %u items do not fit an item x item matrix", n);
  if (p->max_memory && bytes > p->max_memory) {
    char need[32], limit[32];
    human(need, sizeof need, bytes);
    human(limit, sizeof limit, p->max_memory);
    return cofi__fail(d, COFI_ERR_INVALID, NULL, 0,
                      "EASE needs an item x item matrix of %u x %u floats = %s, more than the "
                      "memory limit of %s (--max-memory); raise the limit, keep fewer items "
                      "(--min-value, a smaller catalog) or use --model itemknn",
                      n, n, need, limit);
  }
  if (n > (uint32_t)INT32_MAX / 2)
    return cofi__fail(d, COFI_ERR_INVALID, NULL, 0, "EASE: %u items are too many for LAPACK", n);
  cofi__csr Rt = {0};
  int rc = cofi__csr_transpose(R, &Rt);
  if (rc) return rc;
  float *G = cofi__aligned_alloc(bytes);
  if (!G) {
    cofi__csr_free(&Rt);
    return cofi__fail(d, COFI_ERR_NOMEM, NULL, 0,
                      "out of memory for EASE's %u x %u item matrix (%.2f GiB)", n, n,
                      (double)bytes / (1u << 30));
  }
  uint32_t threads = cofi__threads(p->threads);
  /* Upper triangle of X^T X: row i gets, for every user of i, that user's
   * items j >= i. */
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
  for (int64_t ii = 0; ii < (int64_t)n; ii++) {
    uint32_t i = (uint32_t)ii;
    float *row = G + (size_t)i * n;
    memset(row, 0, (size_t)n * sizeof *row);
    for (uint64_t t = Rt.indptr[i]; t < Rt.indptr[i + 1]; t++) {
      uint32_t u = Rt.indices[t];
      for (uint64_t s = R->indptr[u]; s < R->indptr[u + 1]; s++)
        if (R->indices[s] >= i) row[R->indices[s]] += 1.0f;
    }
    row[i] += p->lambda;
  }
  cofi__csr_free(&Rt);
  openblas_set_num_threads((int)threads);
  int nn = (int)n, info = 0;
  /* Row-major upper = column-major lower. */
  spotrf_("L", &nn, G, &nn, &info);
  if (info == 0) spotri_("L", &nn, G, &nn, &info);
  openblas_set_num_threads(1);
  if (info != 0) {
    cofi__aligned_free(G);
    return cofi__fail(d, COFI_ERR_NUMERIC, NULL, 0,
                      "EASE: X^T X + lambda I could not be inverted in single precision "
                      "(LAPACK info %d); raise --lambda (now %g)", info, (double)p->lambda);
  }
  /* P's upper triangle (row-major) is set: mirror it, then B. */
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j < i; j++) G[(size_t)i * n + j] = G[(size_t)j * n + i];
  float *dinv = cofi__malloc(((size_t)n + 1) * sizeof *dinv);
  if (!dinv) {
    cofi__aligned_free(G);
    return COFI_ERR_NOMEM;
  }
  for (uint32_t j = 0; j < n; j++) dinv[j] = 1.0f / G[(size_t)j * n + j];
  bool finite = true;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(&& : finite)
  for (int64_t ii = 0; ii < (int64_t)n; ii++) {
    float *row = G + (size_t)ii * n;
    for (uint32_t j = 0; j < n; j++) {
      row[j] = -row[j] * dinv[j];
      finite = finite && isfinite(row[j]);
    }
    row[ii] = 0.0f;
  }
  cofi__free(dinv);
  if (!finite) {
    cofi__aligned_free(G);
    return cofi__fail(d, COFI_ERR_NUMERIC, NULL, 0,
                      "EASE: the weights are not finite; raise --lambda (now %g)",
                      (double)p->lambda);
  }
  *B_out = G;
  return COFI_OK;
}

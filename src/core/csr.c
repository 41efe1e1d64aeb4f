/*
 * csr.c — compressed sparse rows: built once from a dataset's interaction
 * list by counting sort (two passes, no per-row allocation), duplicates
 * summed, columns sorted within each row; and the transpose, which a
 * counting sort over columns gives already sorted.
 */
#include "internal.h"

#include <string.h>

void cofi__csr_free(cofi__csr *a) {
  if (!a) return;
  if (!a->borrowed) {
    cofi__free(a->indptr);
    cofi__free(a->indices);
    cofi__free(a->data);
  }
  memset(a, 0, sizeof *a);
}

static int alloc_csr(cofi__csr *a, uint32_t rows, uint32_t cols, uint64_t nnz) {
  memset(a, 0, sizeof *a);
  a->n_rows = rows;
  a->n_cols = cols;
  a->nnz = nnz;
  a->indptr = cofi__calloc((size_t)rows + 1, sizeof *a->indptr);
  a->indices = cofi__malloc((size_t)nnz * sizeof *a->indices);
  a->data = cofi__malloc((size_t)nnz * sizeof *a->data);
  if (!a->indptr || !a->indices || !a->data) {
    cofi__csr_free(a);
    return COFI_ERR_NOMEM;
  }
  return COFI_OK;
}

/* Row-wise counting sort of (row, col, val) triples into a CSR whose rows
 * keep input order; then each row is sorted and duplicates merged. */
static int build(uint32_t rows, uint32_t cols, size_t n, const uint32_t *r,
                 const uint32_t *c, const float *v, cofi__csr *out) {
  cofi__csr t;
  int rc = alloc_csr(&t, rows, cols, n);
  if (rc) return rc;
  for (size_t i = 0; i < n; i++) t.indptr[r[i] + 1]++;
  for (uint32_t i = 0; i < rows; i++) t.indptr[i + 1] += t.indptr[i];
  uint64_t *fill = cofi__malloc(((size_t)rows + 1) * sizeof *fill);
  if (!fill) { cofi__csr_free(&t); return COFI_ERR_NOMEM; }
  memcpy(fill, t.indptr, ((size_t)rows + 1) * sizeof *fill);
  for (size_t i = 0; i < n; i++) {
    uint64_t at = fill[r[i]]++;
    t.indices[at] = c[i];
    t.data[at] = v ? v[i] : 1.0f;
  }
  cofi__free(fill);
  /* Sort each row by column in place (shell sort) and merge duplicates.
   * A second counting sort by column would avoid the sort (about 20% of a
   * short 20M-row training run) but needs another nnz-sized copy while the
   * dataset's rows are still alive, which raises peak memory above what
   * training itself needs; see docs/performance.md, Loading. */
  uint64_t w = 0;
  for (uint32_t row = 0; row < rows; row++) {
    uint64_t b = t.indptr[row], e = t.indptr[row + 1];
    uint32_t *ci = t.indices + b;
    float *cv = t.data + b;
    size_t len = (size_t)(e - b);
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
      size_t gap = gaps[g];
      for (size_t i = gap; i < len; i++) {
        uint32_t kc = ci[i];
        float kv = cv[i];
        size_t j = i;
        while (j >= gap && ci[j - gap] > kc) {
          ci[j] = ci[j - gap];
          cv[j] = cv[j - gap];
          j -= gap;
        }
        ci[j] = kc;
        cv[j] = kv;
      }
    }
    t.indptr[row] = w;
    for (size_t i = 0; i < len; i++) {
      if (i > 0 && ci[i] == ci[i - 1] && w > 0) {
        t.data[w - 1] += cv[i];
      } else {
        t.indices[w] = ci[i];
        t.data[w] = cv[i];
        w++;
      }
    }
  }
  t.indptr[rows] = w;
  t.nnz = w;
  /* Shrink when duplicates were merged (failure to shrink is harmless). */
  if (w < n && w > 0) {
    uint32_t *ni = cofi__realloc(t.indices, (size_t)w * sizeof *ni);
    if (ni) t.indices = ni;
    float *nd = cofi__realloc(t.data, (size_t)w * sizeof *nd);
    if (nd) t.data = nd;
  }
  *out = t;
  return COFI_OK;
}

int cofi__csr_from_dataset(const cofi_dataset *ds, cofi__csr *out) {
  return build(ds->users.n, ds->items.n, ds->n, ds->user, ds->item, ds->value, out);
}

int cofi__csr_from_triplets(uint32_t rows, uint32_t cols, size_t n, const uint32_t *r,
                            const uint32_t *c, const float *v, cofi__csr *out) {
  return build(rows, cols, n, r, c, v, out);
}

int cofi__csr_transpose(const cofi__csr *a, cofi__csr *out) {
  cofi__csr t;
  int rc = alloc_csr(&t, a->n_cols, a->n_rows, a->nnz);
  if (rc) return rc;
  for (uint64_t i = 0; i < a->nnz; i++) t.indptr[a->indices[i] + 1]++;
  for (uint32_t i = 0; i < t.n_rows; i++) t.indptr[i + 1] += t.indptr[i];
  uint64_t *fill = cofi__malloc(((size_t)t.n_rows + 1) * sizeof *fill);
  if (!fill) { cofi__csr_free(&t); return COFI_ERR_NOMEM; }
  memcpy(fill, t.indptr, ((size_t)t.n_rows + 1) * sizeof *fill);
  for (uint32_t r = 0; r < a->n_rows; r++)
    for (uint64_t j = a->indptr[r]; j < a->indptr[r + 1]; j++) {
      uint64_t at = fill[a->indices[j]]++;
      t.indices[at] = r;
      t.data[at] = a->data[j];
    }
  cofi__free(fill);
  *out = t;
  return COFI_OK;
}

uint64_t cofi__csr_fingerprint(const cofi__csr *a) {
  uint64_t h = cofi__hash_bytes(&a->n_rows, sizeof a->n_rows, a->n_cols);
  h = cofi__hash_bytes(a->indptr, ((size_t)a->n_rows + 1) * sizeof *a->indptr, h);
  h = cofi__hash_bytes(a->indices, (size_t)a->nnz * sizeof *a->indices, h);
  h = cofi__hash_bytes(a->data, (size_t)a->nnz * sizeof *a->data, h);
  return h;
}

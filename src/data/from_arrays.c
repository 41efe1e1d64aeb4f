/*
 * from_arrays.c — a cofi_dataset from a compressed-sparse-row matrix held
 * by the caller (scipy's csr_matrix, or any CSR in memory), for language
 * bindings that have the data as arrays, not as a file.
 *
 * Row r and column c get the IDs "r" and "c" (decimal), interned in index
 * order before any interaction, so dataset and model indices equal the
 * matrix's and rows or columns without entries still exist. The
 * interactions are the stored entries in row order; explicit entries are
 * kept even when their value is 0 (an entry is an observation, as in
 * implicit), and duplicates in a row are summed when training builds its
 * matrix. Everything is validated before anything is allocated.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>

/* Interns "0", "1", ..., "n-1" in order. */
static int intern_range(cofi__idmap *m, uint32_t n) {
  char buf[16];
  for (uint32_t i = 0; i < n; i++) {
    int len = snprintf(buf, sizeof buf, "%u", i);
    uint32_t idx;
    int rc = cofi__idmap_intern(m, buf, (size_t)len, &idx, NULL);
    if (rc) return rc;
  }
  return COFI_OK;
}

int cofi_dataset_from_csr(uint32_t n_rows, uint32_t n_cols, const uint64_t *indptr,
                          const uint32_t *indices, const float *values, cofi_dataset **out,
                          cofi_diag *d) {
#define BAD(...) return cofi__fail(d, COFI_ERR_INVALID, NULL, 0, __VA_ARGS__)
  if (!out) BAD("out is NULL");
  *out = NULL;
  if (n_rows == 0 || n_cols == 0)
    BAD("the matrix is %u x %u: it needs at least one row and one column", n_rows, n_cols);
  if (n_rows == UINT32_MAX || n_cols == UINT32_MAX) BAD("too many rows or columns");
  if (!indptr) BAD("indptr is NULL");
  if (indptr[0] != 0) BAD("indptr[0] is %llu, not 0", (unsigned long long)indptr[0]);
  for (uint32_t r = 0; r < n_rows; r++)
    if (indptr[r + 1] < indptr[r])
      BAD("indptr decreases at row %u (%llu after %llu)", r,
          (unsigned long long)indptr[r + 1], (unsigned long long)indptr[r]);
  uint64_t nnz = indptr[n_rows];
  if (nnz > 0 && !indices) BAD("indices is NULL");
  if (nnz > SIZE_MAX / sizeof(int64_t)) return cofi__fail(d, COFI_ERR_NOMEM, NULL, 0, "out of memory");
  for (uint64_t j = 0; j < nnz; j++) {
    if (indices[j] >= n_cols)
      BAD("column index %u of entry %llu is out of range (%u columns)", indices[j],
          (unsigned long long)j, n_cols);
    if (values && (!isfinite(values[j]) || values[j] < 0))
      BAD("value %g of entry %llu is not a finite number >= 0", (double)values[j],
          (unsigned long long)j);
  }
#undef BAD
  cofi_dataset *ds = NULL;
  int rc = cofi__dataset_new(&ds);
  if (rc) goto fail;
  if ((rc = intern_range(&ds->users, n_rows)) || (rc = intern_range(&ds->items, n_cols)))
    goto fail;
  size_t n = (size_t)nnz, cap = n ? n : 1;
  ds->user = cofi__malloc(cap * sizeof *ds->user);
  ds->item = cofi__malloc(cap * sizeof *ds->item);
  ds->value = cofi__malloc(cap * sizeof *ds->value);
  /* No time column, but every reader of the rows may index time[]. */
  ds->time = cofi__calloc(cap, sizeof *ds->time);
  if (!ds->user || !ds->item || !ds->value || !ds->time) {
    rc = COFI_ERR_NOMEM;
    goto fail;
  }
  ds->cap = cap;
  for (uint32_t r = 0; r < n_rows; r++)
    for (uint64_t j = indptr[r]; j < indptr[r + 1]; j++) {
      ds->user[j] = r;
      ds->item[j] = indices[j];
      ds->value[j] = values ? values[j] : 1.0f;
    }
  ds->n = n;
  ds->has_time = false;
  snprintf(ds->source, sizeof ds->source, "<csr %u x %u>", n_rows, n_cols);
  *out = ds;
  return COFI_OK;
fail:
  cofi_dataset_free(ds);
  return cofi__fail(d, rc, NULL, 0, "out of memory building a dataset from a CSR matrix");
}

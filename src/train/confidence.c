/*
 * confidence.c — confidence transforms: how a summed user-item value r
 * becomes the weight w of the confidence c = 1 + alpha * w.
 *
 *   linear  w = r
 *   log     w = log(1 + r / epsilon)                  (Hu et al. 2008, sec. 4)
 *   bm25    w = r (K1 + 1) / (K1 L_u + r) * idf_i     (implicit's bm25_weight
 *           L_u = (1 - B) + B * rowsum_u / mean_rowsum   on the user x item
 *           idf_i = max(0, log(N) - log1p(df_i))          matrix)
 *
 * For bm25, N is the number of users, df_i the number of stored pairs of
 * item i, rowsum_u the sum of user u's raw values, mean_rowsum its mean
 * over all users. idf is clamped at 0 (implicit lets it go negative for an
 * item every user has, which would make a confidence below 1).
 *
 * Training transforms the summed matrix once; the model keeps the weights
 * as its training matrix (so explaining a known user recomputes exactly the
 * trained vector) and, for bm25, mean_rowsum in META and idf_i derived at
 * open time from the matrix's column counts. A cold-start history of raw
 * values is transformed with the same statistics (cofi__confidence_history):
 * the history is one more row of the matrix, its own rowsum in L_u.
 */
#include "internal.h"

#include <math.h>

static inline float log_weight(float r, float eps) {
  return (float)log1p((double)r / (double)eps);
}

static inline float bm25_weight(float r, double k1, double len_norm, double idf) {
  double d = k1 * len_norm + (double)r;
  if (!(d > 0)) return 0.0f;
  return (float)((double)r * (k1 + 1.0) / d * idf);
}

static double bm25_idf(uint32_t n_rows, uint64_t df) {
  double v = log((double)n_rows) - log1p((double)df);
  return v > 0 ? v : 0.0;
}

int cofi__confidence_apply(const cofi_params *p, cofi__csr *R, double *mean_rowsum) {
  *mean_rowsum = 0;
  if (p->confidence == COFI_CONFIDENCE_LINEAR) return COFI_OK;
  if (p->confidence == COFI_CONFIDENCE_LOG) {
    for (uint64_t i = 0; i < R->nnz; i++) R->data[i] = log_weight(R->data[i], p->epsilon);
    return COFI_OK;
  }
  uint64_t *df = cofi__calloc((size_t)R->n_cols + 1, sizeof *df);
  if (!df) return COFI_ERR_NOMEM;
  double total = 0;
  for (uint64_t i = 0; i < R->nnz; i++) {
    df[R->indices[i]]++;
    total += R->data[i];
  }
  double mean = R->n_rows ? total / R->n_rows : 0;
  *mean_rowsum = mean;
  for (uint32_t u = 0; u < R->n_rows; u++) {
    double rowsum = 0;
    for (uint64_t t = R->indptr[u]; t < R->indptr[u + 1]; t++) rowsum += R->data[t];
    double ln = cofi__bm25_len_norm(p, mean, rowsum);
    for (uint64_t t = R->indptr[u]; t < R->indptr[u + 1]; t++)
      R->data[t] = bm25_weight(R->data[t], p->bm25_k1, ln,
                               bm25_idf(R->n_rows, df[R->indices[t]]));
  }
  cofi__free(df);
  return COFI_OK;
}

void cofi__confidence_bm25_rows(const cofi_params *p, cofi__csr *R, uint32_t r0, uint32_t r1,
                                const uint64_t *df, double mean_rowsum) {
  for (uint32_t u = r0; u < r1; u++) {
    double rowsum = 0;
    for (uint64_t t = R->indptr[u]; t < R->indptr[u + 1]; t++) rowsum += R->data[t];
    double ln = cofi__bm25_len_norm(p, mean_rowsum, rowsum);
    for (uint64_t t = R->indptr[u]; t < R->indptr[u + 1]; t++)
      R->data[t] = bm25_weight(R->data[t], p->bm25_k1, ln,
                               bm25_idf(R->n_rows, df[R->indices[t]]));
  }
}

double cofi__bm25_len_norm(const cofi_params *p, double mean_rowsum, double rowsum) {
  double b = p->bm25_b;
  return (1.0 - b) + (mean_rowsum > 0 ? b * rowsum / mean_rowsum : b);
}

int cofi__confidence_prepare(cofi_model *m) {
  if (m->params.confidence != COFI_CONFIDENCE_BM25) return COFI_OK;
  m->item_idf = cofi__aligned_alloc(((size_t)m->n_items + 1) * sizeof(float));
  uint64_t *df = cofi__calloc((size_t)m->n_items + 1, sizeof *df);
  if (!m->item_idf || !df) {
    cofi__free(df);
    return COFI_ERR_NOMEM;
  }
  for (uint64_t i = 0; i < m->user_items.nnz; i++) df[m->user_items.indices[i]]++;
  for (uint32_t i = 0; i < m->n_items; i++) m->item_idf[i] = (float)bm25_idf(m->n_users, df[i]);
  cofi__free(df);
  return COFI_OK;
}

void cofi__confidence_history(const cofi_model *m, const uint32_t *items, const float *raw,
                              size_t n, float *w) {
  const cofi_params *p = &m->params;
  switch (p->confidence) {
    case COFI_CONFIDENCE_LOG:
      for (size_t j = 0; j < n; j++) w[j] = log_weight(raw ? raw[j] : 1.0f, p->epsilon);
      return;
    case COFI_CONFIDENCE_BM25: {
      double rowsum = 0;
      for (size_t j = 0; j < n; j++) rowsum += raw ? raw[j] : 1.0f;
      double ln = cofi__bm25_len_norm(p, m->conf_mean_rowsum, rowsum);
      for (size_t j = 0; j < n; j++)
        w[j] = bm25_weight(raw ? raw[j] : 1.0f, p->bm25_k1, ln, m->item_idf[items[j]]);
      return;
    }
    default:
      for (size_t j = 0; j < n; j++) w[j] = raw ? raw[j] : 1.0f;
      return;
  }
}

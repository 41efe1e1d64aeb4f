/*
 * recency.c — how recent each of a user's items is, for the recency
 * weighting of histories (cofi_params.recency, every model kind).
 *
 * A training pair's time is that of its latest event; pairs of one user
 * are ranked newest first (rank 0), ties by the later row of the input
 * (data without a time column: input order alone). The ranks are stored
 * in the model beside the training matrix (model_file.c, SEEN_RANKS), so
 * that serving and evaluation weigh a known user's items as training saw
 * them; a given history (cold start, fold-in) is in time order already.
 *
 * EASE and item-kNN sum the weighted item rows of the history; ALS re-fits
 * each user's vector once more after training against the final item
 * factors, with each confidence weight w scaled (c = 1 + alpha * w * 2^(-r/H)),
 * and folds histories in the same way (cofi_fold_in).
 */
#include "internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

typedef struct pair_time {
  int64_t time;
  uint64_t row; /* input row + 1 of the latest event; 0 = none */
  uint64_t at;  /* position in the training matrix */
} pair_time;

/* Newest first: later time, then later row. */
static int newest_first(const void *a, const void *b) {
  const pair_time *x = a, *y = b;
  if (x->time != y->time) return x->time < y->time ? 1 : -1;
  return (x->row < y->row) - (x->row > y->row);
}

/* Position of item in row u of ui (columns ascending), or nnz if absent. */
static uint64_t find_in_row(const cofi__csr *ui, uint32_t u, uint32_t item) {
  uint64_t lo = ui->indptr[u], hi = ui->indptr[u + 1];
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (ui->indices[mid] < item) lo = mid + 1;
    else hi = mid;
  }
  return lo < ui->indptr[u + 1] && ui->indices[lo] == item ? lo : ui->nnz;
}

int cofi__recency_ranks(const cofi_dataset *ds, const cofi__csr *ui, uint32_t **out) {
  *out = NULL;
  uint64_t nnz = ui->nnz;
  pair_time *pt = cofi__calloc(nnz ? nnz : 1, sizeof *pt);
  uint32_t *ranks = cofi__malloc((nnz ? nnz : 1) * sizeof *ranks);
  if (!pt || !ranks) {
    cofi__free(pt);
    cofi__free(ranks);
    return COFI_ERR_NOMEM;
  }
  for (uint64_t t = 0; t < nnz; t++) pt[t] = (pair_time){.time = INT64_MIN, .row = 0, .at = t};
  for (size_t i = 0; i < ds->n; i++) {
    uint64_t at = ds->user[i] < ui->n_rows ? find_in_row(ui, ds->user[i], ds->item[i]) : nnz;
    if (at == nnz) { /* not the data of this matrix */
      cofi__free(pt);
      cofi__free(ranks);
      return COFI_ERR_INVALID;
    }
    int64_t time = ds->has_time ? ds->time[i] : 0;
    if (time >= pt[at].time) { /* rows go forward: equal time, later row */
      pt[at].time = time;
      pt[at].row = (uint64_t)i + 1;
    }
  }
  for (uint32_t u = 0; u < ui->n_rows; u++) {
    uint64_t b = ui->indptr[u], e = ui->indptr[u + 1];
    qsort(pt + b, (size_t)(e - b), sizeof *pt, newest_first);
    for (uint64_t t = b; t < e; t++) ranks[pt[t].at] = (uint32_t)(t - b);
  }
  cofi__free(pt);
  *out = ranks;
  return COFI_OK;
}

float cofi__recency_weight(float half_life, uint32_t rank) {
  return half_life > 0 ? exp2f(-(float)rank / half_life) : 1.0f;
}

size_t cofi__user_history(const cofi_model *m, uint32_t user, const uint32_t **items, float *w) {
  uint64_t b = m->user_items.indptr[user], e = m->user_items.indptr[user + 1];
  size_t n = (size_t)(e - b);
  *items = m->user_items.indices + b;
  bool valued = m->params.model != COFI_MODEL_EASE; /* EASE: binarized */
  for (size_t h = 0; h < n; h++) {
    float rw = m->seen_ranks ? cofi__recency_weight(m->params.recency, m->seen_ranks[b + h]) : 1.0f;
    w[h] = valued ? rw * m->user_items.data[b + h] : rw;
  }
  return n;
}

void cofi__given_history_weights(const cofi_model *m, const uint32_t *items, const float *raw,
                                 size_t n, bool in_time_order, float *w) {
  if (m->params.model != COFI_MODEL_EASE) cofi__confidence_history(m, items, raw, n, w);
  else
    for (size_t h = 0; h < n; h++) w[h] = 1.0f; /* EASE is fitted on binarized data */
  if (!in_time_order || !(m->params.recency > 0)) return;
  for (size_t h = 0; h < n; h++)
    w[h] *= cofi__recency_weight(m->params.recency, (uint32_t)(n - 1 - h));
}

int cofi__recency_refit_users(cofi_model *m, uint32_t threads) {
  int rc = COFI_OK;
  uint32_t k = m->factors;
  size_t longest = 0;
  for (uint32_t u = 0; u < m->n_users; u++) {
    size_t len = (size_t)(m->user_items.indptr[u + 1] - m->user_items.indptr[u]);
    if (len > longest) longest = len;
  }
  /* per thread: the solver's scratch (kept 64-byte aligned), the weights */
  size_t solver = (cofi__solve_row_scratch(k) + 15) & ~(size_t)15;
  size_t per = solver + ((longest + 15) & ~(size_t)15);
  float *buf = cofi__aligned_alloc((size_t)threads * per * sizeof *buf);
  if (!buf) return COFI_ERR_NOMEM;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 64)
  for (int64_t u = 0; u < (int64_t)m->n_users; u++) {
    float *scratch = buf + (size_t)omp_get_thread_num() * per;
    float *w = scratch + solver;
    const uint32_t *items;
    size_t n = cofi__user_history(m, (uint32_t)u, &items, w);
    int r = n ? cofi__fold_in_row(m, items, w, n, m->user_factors + (size_t)u * k, scratch)
              : COFI_OK;
    if (r) {
#pragma omp critical
      if (!rc) rc = r;
    }
  }
  cofi__aligned_free(buf);
  if (rc) return rc;
  for (uint32_t u = 0; u < m->n_users; u++) {
    const float *x = m->user_factors + (size_t)u * k;
    m->user_norms[u] = sqrtf(cofi__dot(x, x, k));
  }
  return COFI_OK;
}

int cofi_model_set_recency(cofi_model *m, const cofi_dataset *ds, float half_life, cofi_diag *d) {
  if (!m || !ds)
    return cofi__fail(d, COFI_ERR_INVALID, NULL, 0, "cofi_model_set_recency: model and data are required");
  if (m->map)
    return cofi__fail(d, COFI_ERR_INVALID, NULL, 0,
                      "a model opened from a file keeps the half-life it was trained with");
  if (!isfinite(half_life) || !(half_life > 0) || half_life > 1e6)
    return cofi__fail(d, COFI_ERR_INVALID, NULL, 0,
                      "recency must be a half-life in (0, 1e6] items, got %g", (double)half_life);
  if (ds->users.n != m->n_users || ds->items.n != m->n_items)
    return cofi__fail(d, COFI_ERR_INVALID, NULL, 0,
                      "the data (%u users, %u items) is not what the model (%u users, %u items) "
                      "was trained on", ds->users.n, ds->items.n, m->n_users, m->n_items);
  int rc = COFI_OK;
  if (!m->seen_ranks && (rc = cofi__recency_ranks(ds, &m->user_items, &m->seen_ranks)))
    return cofi__fail(d, rc, NULL, 0, rc == COFI_ERR_INVALID
                                          ? "the data has pairs the model was not trained on"
                                          : "out of memory");
  m->params.recency = half_life;
  if (!cofi__is_als(m)) return COFI_OK;
  rc = cofi__recency_refit_users(m, cofi__threads(m->params.threads));
  if (rc) return cofi__fail(d, rc, NULL, 0, "re-fitting the users failed: %s", cofi_error_message(rc));
  return COFI_OK;
}

/*
 * explain.c — why an item is recommended: its score split exactly into
 * the contributions of the user's history items (Hu, Koren, Volinsky 2008,
 * section 5; implicit's explain).
 *
 * A user's vector is the least-squares solve of the fold-in system
 *
 *   A x = b,  A = alpha0 Y^T Y + sum_j (c_j - alpha0) y_j y_j^T + lambda I,
 *             b = sum_j c_j y_j        (j over the history, c_j = 1 + alpha r_j)
 *
 * so the score of item i is y_i . x = sum_j c_j (y_i^T A^-1 y_j): with
 * z = A^-1 y_i (one solve per explained item), history item j contributes
 * c_j (z . y_j), and the contributions add up to the score. The score is
 * that of the recalculated vector (as implicit's explain), which equals a
 * fold-in of the same history; a trained model's stored user vector was
 * solved against the previous iteration's item factors, so its score can
 * differ slightly.
 *
 * A is formed and factored once per explainer, in double precision (k^3/3
 * flops, plus n k^2 for the history), so explaining a top-10 costs one
 * factorization and ten k^2 solves.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h> /* qsort */
#include <string.h>

struct cofi_explainer {
  const cofi_model *m;
  uint32_t k;
  size_t n;        /* history length */
  uint32_t *items; /* [n] */
  double *conf;    /* [n] c_j */
  double *L;       /* [k x k] lower Cholesky factor of A */
  double *z;       /* [k] scratch */
  cofi_contribution *all; /* [n] scratch for sorting */
};

void cofi_explainer_free(cofi_explainer *e) {
  if (!e) return;
  cofi__free(e->items);
  cofi__free(e->conf);
  cofi__free(e->L);
  cofi__free(e->z);
  cofi__free(e->all);
  cofi__free(e);
}

/* A = L L^T in place (lower triangle); false when A is not positive definite. */
static bool cholesky(double *A, uint32_t k) {
  for (uint32_t j = 0; j < k; j++) {
    double d = A[(size_t)j * k + j];
    for (uint32_t t = 0; t < j; t++) d -= A[(size_t)j * k + t] * A[(size_t)j * k + t];
    if (!(d > 0.0) || !isfinite(d)) return false;
    double ljj = sqrt(d);
    A[(size_t)j * k + j] = ljj;
    for (uint32_t i = j + 1; i < k; i++) {
      double s = A[(size_t)i * k + j];
      for (uint32_t t = 0; t < j; t++) s -= A[(size_t)i * k + t] * A[(size_t)j * k + t];
      A[(size_t)i * k + j] = s / ljj;
    }
  }
  return true;
}

/* z = (L L^T)^-1 y. */
static void chol_solve(const double *L, uint32_t k, const float *y, double *z) {
  for (uint32_t i = 0; i < k; i++) {
    double s = y[i];
    for (uint32_t t = 0; t < i; t++) s -= L[(size_t)i * k + t] * z[t];
    z[i] = s / L[(size_t)i * k + i];
  }
  for (uint32_t i = k; i-- > 0;) {
    double s = z[i];
    for (uint32_t t = i + 1; t < k; t++) s -= L[(size_t)t * k + i] * z[t];
    z[i] = s / L[(size_t)i * k + i];
  }
}

int cofi_explainer_new_history(const cofi_model *m, const uint32_t *items, const float *values,
                               size_t n, cofi_explainer **out) {
  *out = NULL;
  if (!m || (n && !items)) return COFI_ERR_INVALID;
  if (n == 0) return COFI_ERR_INVALID;
  for (size_t j = 0; j < n; j++) {
    if (items[j] >= m->n_items) return COFI_ERR_NOT_FOUND;
    if (values && !isfinite(values[j])) return COFI_ERR_INVALID;
  }
  uint32_t k = m->factors;
  cofi_explainer *e = cofi__calloc(1, sizeof *e);
  if (!e) return COFI_ERR_NOMEM;
  e->m = m;
  e->k = k;
  e->n = n;
  e->items = cofi__malloc(n * sizeof *e->items);
  e->conf = cofi__malloc(n * sizeof *e->conf);
  e->all = cofi__malloc(n * sizeof *e->all);
  e->L = cofi__malloc((size_t)k * k * sizeof *e->L);
  e->z = cofi__malloc((size_t)k * sizeof *e->z);
  if (!e->items || !e->conf || !e->all || !e->L || !e->z) {
    cofi_explainer_free(e);
    return COFI_ERR_NOMEM;
  }
  const cofi_params *p = &m->params;
  double alpha0 = p->unobserved_weight;
  cofi__row_problem pr = {.k = k, .alpha0 = p->unobserved_weight, .lambda = p->regularization,
                          .nu = p->reg_exponent, .n_other = m->n_items};
  double lambda = cofi__row_lambda(&pr, n);
  double *A = e->L;
  for (size_t i = 0; i < (size_t)k * k; i++) A[i] = m->item_gram[i];
  for (uint32_t i = 0; i < k; i++) A[(size_t)i * k + i] += lambda;
  for (size_t j = 0; j < n; j++) {
    e->items[j] = items[j];
    e->conf[j] = 1.0 + (double)p->alpha * (values ? values[j] : 1.0f);
    const float *y = m->item_factors + (size_t)items[j] * k;
    double w = e->conf[j] - alpha0;
    for (uint32_t r = 0; r < k; r++) {
      double wr = w * y[r];
      for (uint32_t c = 0; c <= r; c++) A[(size_t)r * k + c] += wr * y[c];
    }
  }
  /* The loop above filled the lower triangle only, as cholesky() reads it. */
  if (!cholesky(A, k)) {
    cofi_explainer_free(e);
    return COFI_ERR_NUMERIC;
  }
  *out = e;
  return COFI_OK;
}

int cofi_explainer_new_user(const cofi_model *m, uint32_t user, cofi_explainer **out) {
  *out = NULL;
  if (!m) return COFI_ERR_INVALID;
  if (user >= m->n_users) return COFI_ERR_NOT_FOUND;
  const uint32_t *items;
  const float *values;
  size_t n = cofi_model_user_items(m, user, &items, &values);
  return cofi_explainer_new_history(m, items, values, n, out);
}

/* Largest contribution first; equal ones by item index. */
static int by_contribution(const void *a, const void *b) {
  const cofi_contribution *x = a, *y = b;
  if (x->contribution != y->contribution) return x->contribution > y->contribution ? -1 : 1;
  return (x->item > y->item) - (x->item < y->item);
}

int cofi_explain(cofi_explainer *e, uint32_t item, size_t top, cofi_contribution *out,
                 size_t *n_out, double *score) {
  if (n_out) *n_out = 0;
  if (!e || (top && !out)) return COFI_ERR_INVALID;
  if (item >= e->m->n_items) return COFI_ERR_NOT_FOUND;
  uint32_t k = e->k;
  chol_solve(e->L, k, e->m->item_factors + (size_t)item * k, e->z);
  double total = 0.0;
  for (size_t j = 0; j < e->n; j++) {
    const float *y = e->m->item_factors + (size_t)e->items[j] * k;
    double d = 0.0;
    for (uint32_t r = 0; r < k; r++) d += e->z[r] * y[r];
    double c = e->conf[j] * d;
    total += c;
    e->all[j] = (cofi_contribution){.item = e->items[j], .contribution = c};
  }
  if (score) *score = total;
  size_t want = top < e->n ? top : e->n;
  if (want) {
    qsort(e->all, e->n, sizeof *e->all, by_contribution);
    memcpy(out, e->all, want * sizeof *out);
  }
  if (n_out) *n_out = want;
  return COFI_OK;
}

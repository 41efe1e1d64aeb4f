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
  double *U;       /* [k x k] its transpose */
  double *z;       /* [k] scratch */
  cofi_contribution *all; /* [n] scratch for sorting */
};

void cofi_explainer_free(cofi_explainer *e) {
  if (!e) return;
  cofi__free(e->items);
  cofi__free(e->conf);
  cofi__free(e->L);
  cofi__free(e->U);
  cofi__free(e->z);
  cofi__free(e->all);
  cofi__free(e);
}

/* A += w y y^T on the lower triangle. The hot loop for long histories
 * (n k^2 / 2): cloned per instruction set and picked at load time; the
 * clones give the same bits (an axpy per row, no reassociation, no
 * contraction in ISO C mode). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
rank1_lower(double *A, uint32_t k, double w, const float *y) {
  for (uint32_t r = 0; r < k; r++) {
    double wr = w * y[r];
    double *row = A + (size_t)r * k;
    for (uint32_t c = 0; c <= r; c++) row[c] += wr * y[c];
  }
}

/* z . y in 8 fixed lanes (vectorizable without reassociation, so every
 * clone gives the same bits). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static double
dot_lanes(const double *z, const float *y, uint32_t k) {
  double acc[8] = {0};
  uint32_t r = 0;
  for (; r + 8 <= k; r += 8)
    for (uint32_t l = 0; l < 8; l++) acc[l] += z[r + l] * y[r + l];
  for (uint32_t l = 0; r + l < k; l++) acc[l] += z[r + l] * y[r + l];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* a . b over n doubles, in 8 fixed lanes (as dot_lanes). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static double
dot_dd(const double *a, const double *b, uint32_t n) {
  double acc[8] = {0};
  uint32_t r = 0;
  for (; r + 8 <= n; r += 8)
    for (uint32_t l = 0; l < 8; l++) acc[l] += a[r + l] * b[r + l];
  for (uint32_t l = 0; r + l < n; l++) acc[l] += a[r + l] * b[r + l];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* A = L L^T in place (lower triangle, row-major), and U = L^T for the back
 * substitution, so that both solves read rows; false when A is not
 * positive definite. */
static bool cholesky(double *A, double *U, uint32_t k) {
  for (uint32_t j = 0; j < k; j++) {
    double *lj = A + (size_t)j * k;
    double d = lj[j] - dot_dd(lj, lj, j);
    if (!(d > 0.0) || !isfinite(d)) return false;
    double ljj = sqrt(d);
    lj[j] = ljj;
    for (uint32_t i = j + 1; i < k; i++) {
      double *li = A + (size_t)i * k;
      li[j] = (li[j] - dot_dd(li, lj, j)) / ljj;
    }
  }
  for (uint32_t i = 0; i < k; i++)
    for (uint32_t j = 0; j <= i; j++) U[(size_t)j * k + i] = A[(size_t)i * k + j];
  return true;
}

/* z = (L L^T)^-1 y. */
static void chol_solve(const double *L, const double *U, uint32_t k, const float *y, double *z) {
  for (uint32_t i = 0; i < k; i++)
    z[i] = (y[i] - dot_dd(L + (size_t)i * k, z, i)) / L[(size_t)i * k + i];
  for (uint32_t i = k; i-- > 0;)
    z[i] = (z[i] - dot_dd(U + (size_t)i * k + i + 1, z + i + 1, k - i - 1)) / U[(size_t)i * k + i];
}

/* values: weights (already through the confidence transform). */
static int explainer_new(const cofi_model *m, const uint32_t *items, const float *values,
                         size_t n, cofi_explainer **out);

int cofi_explainer_new_history(const cofi_model *m, const uint32_t *items, const float *values,
                               size_t n, cofi_explainer **out) {
  *out = NULL;
  if (!m || (n && !items) || !cofi__is_als(m)) return COFI_ERR_INVALID;
  if (n == 0) return COFI_ERR_INVALID;
  for (size_t j = 0; j < n; j++) {
    if (items[j] >= m->n_items) return COFI_ERR_NOT_FOUND;
    if (values && !isfinite(values[j])) return COFI_ERR_INVALID;
  }
  /* Raw values -> weights (and recency, in time order), as cofi_fold_in does. */
  float *w = cofi__malloc(n * sizeof *w);
  if (!w) return COFI_ERR_NOMEM;
  cofi__given_history_weights(m, items, values, n, true, w);
  int rc = explainer_new(m, items, w, n, out);
  cofi__free(w);
  return rc;
}

static int explainer_new(const cofi_model *m, const uint32_t *items, const float *values,
                         size_t n, cofi_explainer **out) {
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
  e->U = cofi__malloc((size_t)k * k * sizeof *e->U);
  e->z = cofi__malloc((size_t)k * sizeof *e->z);
  if (!e->items || !e->conf || !e->all || !e->L || !e->U || !e->z) {
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
    rank1_lower(A, k, e->conf[j] - alpha0, y);
  }
  /* The loop above filled the lower triangle only, as cholesky() reads it. */
  if (!cholesky(A, e->U, k)) {
    cofi_explainer_free(e);
    return COFI_ERR_NUMERIC;
  }
  *out = e;
  return COFI_OK;
}

int cofi_explainer_new_user(const cofi_model *m, uint32_t user, cofi_explainer **out) {
  *out = NULL;
  if (!m || !cofi__is_als(m)) return COFI_ERR_INVALID;
  if (user >= m->n_users) return COFI_ERR_NOT_FOUND;
  const uint32_t *items;
  const float *values;
  size_t n = cofi_model_user_items(m, user, &items, &values);
  if (n == 0) return COFI_ERR_INVALID;
  /* The stored values are the trained weights: no transform again; only
   * the recency weights of a model that has them (as its users were
   * re-fitted, train/recency.c). */
  float *w = cofi__malloc(n * sizeof *w);
  if (!w) return COFI_ERR_NOMEM;
  cofi__user_history(m, user, &items, w);
  int rc = explainer_new(m, items, w, n, out);
  cofi__free(w);
  return rc;
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
  chol_solve(e->L, e->U, k, e->m->item_factors + (size_t)item * k, e->z);
  double total = 0.0;
  for (size_t j = 0; j < e->n; j++) {
    double c = e->conf[j] * dot_lanes(e->z, e->m->item_factors + (size_t)e->items[j] * k, k);
    total += c;
    e->all[j] = (cofi_contribution){.item = e->items[j], .contribution = c};
  }
  if (score) *score = total;
  size_t want = top < e->n ? top : e->n;
  if (want >= 32) {
    qsort(e->all, e->n, sizeof *e->all, by_contribution);
    memcpy(out, e->all, want * sizeof *out);
  } else if (want) {
    /* A few of many (the usual "because" list): insertion into out. */
    size_t have = 0;
    for (size_t j = 0; j < e->n; j++) {
      const cofi_contribution *c = &e->all[j];
      if (have == want && by_contribution(c, &out[have - 1]) >= 0) continue;
      size_t at = have < want ? have++ : want - 1;
      while (at > 0 && by_contribution(c, &out[at - 1]) < 0) {
        out[at] = out[at - 1];
        at--;
      }
      out[at] = *c;
    }
  }
  if (n_out) *n_out = want;
  return COFI_OK;
}

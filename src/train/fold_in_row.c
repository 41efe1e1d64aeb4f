/*
 * fold_in_row.c — one user row solved against a model's fixed item
 * factors: the least-squares problem of an ALS user half-step with the
 * model's confidence (1 + alpha * w), regularization and unobserved
 * weight, for weights w already through the confidence transform. Shared
 * by the fold-in of a history (cofi_fold_in, recommend/recommend.c) and
 * the recency re-fit of trained users (recency.c).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

int cofi__fold_in_row(const cofi_model *m, const uint32_t *items, const float *w, size_t n,
                      float *vec, float *scratch) {
  uint32_t k = m->factors;
  cofi__row_problem pr = {
      .gram = m->item_gram, .Y = m->item_factors, .k = k, .alpha = m->params.alpha,
      .alpha0 = m->params.unobserved_weight, .lambda = m->params.regularization,
      .nu = m->params.reg_exponent, .n_other = m->n_items,
      .solver = COFI_SOLVER_CHOLESKY, .cg_steps = k};
  memset(vec, 0, k * sizeof *vec);
  int rc = cofi__solve_row(&pr, items, w, n, vec, scratch);
  if (rc == COFI_ERR_NUMERIC) {
    /* Singular without regularization: CG from zero stays in the range. */
    pr.solver = COFI_SOLVER_CG;
    memset(vec, 0, k * sizeof *vec);
    rc = cofi__solve_row(&pr, items, w, n, vec, scratch);
  }
  for (uint32_t j = 0; j < k && rc == COFI_OK; j++)
    if (!isfinite(vec[j])) rc = COFI_ERR_NUMERIC;
  return rc;
}

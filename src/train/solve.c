/*
 * solve.c — the per-row least-squares solve at the heart of implicit ALS
 * (Hu, Koren, Volinsky 2008), shared by training and cold-start fold-in.
 *
 * For a row with observed columns i (values r_i, confidence
 * c_i = 1 + alpha r_i) and fixed factors Y, the solution x of
 *
 *   A x = b,  A = alpha0 Y^T Y + sum_i (c_i - alpha0) y_i y_i^T + lambda I,
 *             b = sum_i c_i y_i
 *
 * minimizes sum_i c_i (1 - x.y_i)^2 + alpha0 sum_{j unobserved} (x.y_j)^2
 * + lambda |x|^2. The dense part alpha0 Y^T Y is shared by all rows (the
 * "gram"), so a row costs O(n k) for CG and O(n k^2 + k^3) for Cholesky.
 *
 * CG follows Takacs et al. 2011 as `implicit` does: warm-started from the
 * previous x, cg_steps steps, never forming A. The row's factor vectors are
 * first gathered into a contiguous block so the inner loops are dense.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

float cofi__row_lambda(const cofi__row_problem *pr, size_t n) {
  if (pr->nu == 0.0f) return pr->lambda;
  return pr->lambda *
         powf((float)n + pr->alpha0 * (float)pr->n_other, pr->nu);
}

size_t cofi__solve_row_scratch(uint32_t k) {
  /* r, p, Ap, tmp (k each, rounded to 16) + a k x k matrix */
  size_t kk = ((size_t)k + 15) & ~(size_t)15;
  return 4 * kk + kk * (size_t)k;
}

#define dot cofi__dot
#define axpy cofi__axpy

/* out = gram v (gram symmetric, row-major) */
static void symv(const float *restrict gram, const float *restrict v, float *restrict out,
                 uint32_t k) {
  for (uint32_t r = 0; r < k; r++) out[r] = dot(gram + (size_t)r * k, v, k);
}

/* out = A v without forming A. */
static void apply_A(const cofi__row_problem *pr, const uint32_t *cols, const float *vals,
                    size_t n, float lambda, const float *v, float *out) {
  uint32_t k = pr->k;
  symv(pr->gram, v, out, k);
  for (uint32_t j = 0; j < k; j++) out[j] += lambda * v[j];
  for (size_t t = 0; t < n; t++) {
    const float *y = pr->Y + (size_t)cols[t] * k;
    float w = 1.0f + pr->alpha * vals[t] - pr->alpha0;
    axpy(w * dot(y, v, k), y, out, k);
  }
}

static int solve_cg(const cofi__row_problem *pr, const uint32_t *cols, const float *vals,
                    size_t n, float *x, float *scratch) {
  uint32_t k = pr->k;
  size_t kk = ((size_t)k + 15) & ~(size_t)15;
  float *r = scratch, *p = scratch + kk, *Ap = scratch + 2 * kk;
  float lambda = cofi__row_lambda(pr, n);

  /* r = b - A x */
  apply_A(pr, cols, vals, n, lambda, x, Ap);
  for (uint32_t j = 0; j < k; j++) r[j] = -Ap[j];
  for (size_t t = 0; t < n; t++)
    axpy(1.0f + pr->alpha * vals[t], pr->Y + (size_t)cols[t] * k, r, k);
  memcpy(p, r, k * sizeof *p);
  float rs_old = dot(r, r, k);
  if (!isfinite(rs_old)) return COFI_ERR_NUMERIC;
  for (uint32_t step = 0; step < pr->cg_steps; step++) {
    if (rs_old < 1e-20f) break;
    apply_A(pr, cols, vals, n, lambda, p, Ap);
    float pAp = dot(p, Ap, k);
    if (!(pAp > 0)) break; /* p in the null space (lambda 0): stop, x stays finite */
    float a = rs_old / pAp;
    axpy(a, p, x, k);
    axpy(-a, Ap, r, k);
    float rs_new = dot(r, r, k);
    if (rs_new < 1e-20f) break;
    float beta = rs_new / rs_old;
    for (uint32_t j = 0; j < k; j++) p[j] = r[j] + beta * p[j];
    rs_old = rs_new;
  }
  return COFI_OK;
}

static int solve_cholesky(const cofi__row_problem *pr, const uint32_t *cols,
                          const float *vals, size_t n, float *x, float *scratch) {
  uint32_t k = pr->k;
  size_t kk = ((size_t)k + 15) & ~(size_t)15;
  float *b = scratch, *A = scratch + 4 * kk;
  float lambda = cofi__row_lambda(pr, n);

  memcpy(A, pr->gram, (size_t)k * k * sizeof *A);
  for (uint32_t j = 0; j < k; j++) A[(size_t)j * k + j] += lambda;
  memset(b, 0, k * sizeof *b);
  for (size_t t = 0; t < n; t++) {
    const float *y = pr->Y + (size_t)cols[t] * k;
    float c = 1.0f + pr->alpha * vals[t];
    float w = c - pr->alpha0;
    axpy(c, y, b, k);
    /* lower triangle only: A[r][0..r] += w y_r y */
    for (uint32_t rr = 0; rr < k; rr++) axpy(w * y[rr], y, A + (size_t)rr * k, rr + 1);
  }
  /* In-place Cholesky A = L L^T on the lower triangle, accumulating in
   * double for the diagonal so ill-conditioned rows are caught, not NaN. */
  for (uint32_t j = 0; j < k; j++) {
    float *Lj = A + (size_t)j * k;
    double d = (double)Lj[j] - (double)dot(Lj, Lj, j);
    if (!(d > 0) || !isfinite(d)) return COFI_ERR_NUMERIC;
    float ljj = (float)sqrt(d);
    Lj[j] = ljj;
    float inv = 1.0f / ljj;
    for (uint32_t i = j + 1; i < k; i++) {
      float *Li = A + (size_t)i * k;
      Li[j] = (Li[j] - dot(Li, Lj, j)) * inv;
    }
  }
  /* L z = b, then L^T x = z */
  for (uint32_t i = 0; i < k; i++) {
    const float *Li = A + (size_t)i * k;
    x[i] = (b[i] - dot(Li, x, i)) / Li[i];
  }
  for (uint32_t ii = k; ii-- > 0;) {
    float s = x[ii];
    for (uint32_t j = ii + 1; j < k; j++) s -= A[(size_t)j * k + ii] * x[j];
    x[ii] = s / A[(size_t)ii * k + ii];
  }
  return COFI_OK;
}

int cofi__solve_row(const cofi__row_problem *pr, const uint32_t *cols, const float *vals,
                    size_t n, float *x, float *scratch) {
  if (pr->solver == COFI_SOLVER_CHOLESKY) return solve_cholesky(pr, cols, vals, n, x, scratch);
  return solve_cg(pr, cols, vals, n, x, scratch);
}

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
 * previous x, cg_steps steps, never forming A. Each product A v is the
 * gram part (kernel symv) plus one fused pass over the row's factor
 * vectors (kernel rank1_pass: 16 dot products y_t . v at once, then the
 * weighted sum of the y_t). The first pass computes the residual b - A x
 * directly. When the caller's scratch allows, the row's factor vectors are
 * first gathered into a contiguous block, so the cg_steps + 1 passes read
 * dense memory from cache instead of scattered rows of Y.
 *
 * Cholesky forms A exactly: the row's vectors are gathered T at a time
 * into a block G (and H = diag(c - alpha0) G), A's upper triangle gets
 * G^T H with a register-blocked kernel (syrk_acc), then A = U^T U is
 * factored in place and two triangular solves give x.
 *
 * Scratch layout (floats; kp = k rounded up to 16, T = chunk rows,
 * g = gather_rows rounded up to 16):
 *   [x | r | p | Ap | b]  5 kp        the row's vectors
 *   then either  A [kp x kp], G [T x kp], H [T x kp]          (Cholesky)
 *   or           the gathered block [g x kp], its values [g]   (CG)
 *
 * Nothing here depends on the thread that runs it: a row's result is the
 * same bits whichever thread solves it, which makes training
 * deterministic for any thread count.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

float cofi__row_lambda(const cofi__row_problem *pr, size_t n) {
  if (pr->nu == 0.0f) return pr->lambda;
  return pr->lambda *
         powf((float)n + pr->alpha0 * (float)pr->n_other, pr->nu);
}

/* Rows of a Cholesky chunk: enough to amortize the tile loads of syrk_acc,
 * small enough that G and H stay in L1/L2. */
static size_t chunk_rows(uint32_t kp) { return kp < 16 ? 16 : kp > 128 ? 128 : kp; }

size_t cofi__solve_row_scratch(uint32_t k) {
  size_t kp = cofi__kpad(k);
  return 5 * kp + kp * kp + 2 * chunk_rows((uint32_t)kp) * kp;
}

size_t cofi__solve_row_scratch_gather(uint32_t k, size_t gather_rows) {
  size_t kp = cofi__kpad(k), base = cofi__solve_row_scratch(k);
  size_t rows = (gather_rows + 15) & ~(size_t)15; /* padded to whole blocks */
  size_t g = 5 * kp + rows * kp + rows;
  return g > base ? g : base;
}

static int solve_cg(const cofi__row_problem *pr, const uint32_t *cols, const float *vals,
                    size_t n, float *x, float *scratch) {
  uint32_t k = pr->k;
  size_t kp = cofi__kpad(k), gld = pr->gram_ld ? pr->gram_ld : k;
  float *xv = scratch, *r = xv + kp, *p = r + kp, *Ap = p + kp, *G = xv + 5 * kp;
  float lambda = cofi__row_lambda(pr, n);
  /* coefficients of rank1_pass: the residual b - (sparse part of A) x, and
   * the sparse part of A p (see internal.h) */
  const float cf_res[4] = {1.0f, pr->alpha, pr->alpha0 - 1.0f, -pr->alpha};
  const float cf_A[4] = {0.0f, 0.0f, 1.0f - pr->alpha0, pr->alpha};
  int rc = COFI_OK;

  memcpy(xv, x, k * sizeof *xv);
  cofi__rows rows = {.base = pr->Y, .ld = k, .idx = cols};
  if (n > 0 && n <= pr->gather_rows) {
    /* padded with zero rows (and zero values) to whole 16-row blocks, so
     * that every block takes the kernels' contiguous path; a zero row
     * adds exactly nothing */
    size_t n16 = (n + 15) & ~(size_t)15;
    float *vpad = G + n16 * kp;
    cofi__k_gather(&rows, n, k, G, kp);
    memset(G + n * kp, 0, (n16 - n) * kp * sizeof *G);
    memcpy(vpad, vals, n * sizeof *vpad);
    memset(vpad + n, 0, (n16 - n) * sizeof *vpad);
    rows = (cofi__rows){.base = G, .ld = kp, .idx = NULL};
    vals = vpad;
    n = n16;
  }
  /* r = b - A x */
  cofi__k_symv(pr->gram, gld, k, lambda, xv, Ap);
  for (uint32_t j = 0; j < k; j++) r[j] = -Ap[j];
  cofi__k_rank1_pass(&rows, n, k, vals, cf_res, xv, r);
  memcpy(p, r, k * sizeof *p);
  float rs_old = cofi__k_dot(r, r, k);
  if (!isfinite(rs_old)) { rc = COFI_ERR_NUMERIC; goto done; }
  for (uint32_t step = 0; step < pr->cg_steps; step++) {
    if (rs_old < 1e-20f) break;
    cofi__k_symv(pr->gram, gld, k, lambda, p, Ap);
    cofi__k_rank1_pass(&rows, n, k, vals, cf_A, p, Ap);
    float pAp = cofi__k_dot(p, Ap, k);
    if (!(pAp > 0)) break; /* p in the null space (lambda 0): stop, x stays finite */
    float a = rs_old / pAp;
    cofi__axpy(a, p, xv, k);
    cofi__axpy(-a, Ap, r, k);
    float rs_new = cofi__k_dot(r, r, k);
    if (rs_new < 1e-20f) break;
    float beta = rs_new / rs_old;
    for (uint32_t j = 0; j < k; j++) p[j] = r[j] + beta * p[j];
    rs_old = rs_new;
  }
done:
  memcpy(x, xv, k * sizeof *x);
  return rc;
}

static int solve_cholesky(const cofi__row_problem *pr, const uint32_t *cols,
                          const float *vals, size_t n, float *x, float *scratch) {
  uint32_t k = pr->k, kp = cofi__kpad(k), r1 = (k + 7u) & ~7u;
  size_t gld = pr->gram_ld ? pr->gram_ld : k, T = chunk_rows(kp);
  float *xv = scratch, *b = xv + 4 * (size_t)kp, *A = xv + 5 * (size_t)kp;
  float *G = A + (size_t)kp * kp, *H = G + T * kp;
  float lambda = cofi__row_lambda(pr, n);

  for (uint32_t i = 0; i < k; i++) {
    float *a = A + (size_t)i * kp;
    memcpy(a, pr->gram + i * gld, k * sizeof *a);
    memset(a + k, 0, (kp - k) * sizeof *a);
    a[i] += lambda;
  }
  for (uint32_t i = k; i < r1; i++) memset(A + (size_t)i * kp, 0, kp * sizeof *A);
  memset(b, 0, kp * sizeof *b);
  for (size_t t0 = 0; t0 < n; t0 += T) {
    size_t nb = n - t0 < T ? n - t0 : T;
    cofi__rows rows = {.base = pr->Y, .ld = k, .idx = cols + t0};
    cofi__k_gather(&rows, nb, k, G, kp);
    for (size_t t = 0; t < nb; t++) {
      const float *g = G + t * kp;
      float *h = H + t * kp;
      float c = 1.0f + pr->alpha * vals[t0 + t], w = c - pr->alpha0;
      for (uint32_t j = 0; j < kp; j++) h[j] = w * g[j];
      cofi__axpy(c, g, b, k);
    }
    cofi__k_syrk_acc(G, H, nb, kp, 0, r1, A, kp);
  }
  if (cofi__k_cholesky(A, kp, k)) return COFI_ERR_NUMERIC;
  cofi__k_chol_solve(A, kp, k, b, xv);
  memcpy(x, xv, k * sizeof *x);
  return COFI_OK;
}

int cofi__solve_row(const cofi__row_problem *pr, const uint32_t *cols, const float *vals,
                    size_t n, float *x, float *scratch) {
  if (pr->solver == COFI_SOLVER_CHOLESKY) return solve_cholesky(pr, cols, vals, n, x, scratch);
  return solve_cg(pr, cols, vals, n, x, scratch);
}

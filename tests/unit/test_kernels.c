/*
 * test_kernels.c — every kernel set this CPU runs (src/kernels/: generic,
 * avx2, avx512; main runs the whole group once per set, each made active
 * in turn, the reference included) against the plain reference versions
 * and against sums done in double,
 * over factor counts that hit every code path (below one vector, exact
 * multiples of 16 with a specialized kernel, multiples without one, ragged
 * tails) and row counts around the 16-row blocks.
 *
 * Tolerances are in multiples of float epsilon times the magnitude of the
 * terms summed (sum of |terms|), the bound a float sum of that many terms
 * obeys whatever its order; where two kernels promise the same order
 * (gemv and cofi__dot), the test demands bit equality.
 */
#include "testutil.h"

#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t KS[] = {1, 5, 15, 16, 17, 31, 32, 48, 64, 80, 100, 128, 160, 192, 256, 300};
static const size_t NS[] = {0, 1, 15, 16, 17, 33, 100};
#define N_KS (sizeof KS / sizeof *KS)
#define N_NS (sizeof NS / sizeof *NS)
#define EPS ((double)FLT_EPSILON)

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

static float *falloc(size_t n) {
  float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64 + 1) * 64);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) p[i] = frand();
  return p;
}

/* A factor matrix [m x k] and n row indices into it, in both layouts the
 * kernels take: picked by index, and gathered into a contiguous block. */
typedef struct fixture {
  uint32_t k;
  size_t n, m;
  float *Y;      /* [m x k] */
  uint32_t *idx; /* [n] */
  float *block;  /* [n x k] rows idx[t] of Y, contiguous */
} fixture;

static fixture make(uint32_t k, size_t n) {
  fixture f = {.k = k, .n = n, .m = n + 7};
  f.Y = falloc(f.m * k);
  f.idx = malloc((n + 1) * sizeof *f.idx);
  f.block = falloc(n * k + 1);
  for (size_t t = 0; t < n; t++) {
    f.idx[t] = (uint32_t)((t * 5 + 3) % f.m);
    memcpy(f.block + t * k, f.Y + (size_t)f.idx[t] * k, k * sizeof(float));
  }
  return f;
}

static void unmake(fixture *f) {
  free(f->Y);
  free(f->idx);
  free(f->block);
}

static void gemv_equals_dot(void **s) {
  (void)s;
  for (size_t a = 0; a < N_KS; a++)
    for (size_t b = 0; b < N_NS; b++) {
      uint32_t k = KS[a];
      size_t n = NS[b];
      fixture f = make(k, n);
      float *v = falloc(k), *o1 = falloc(n + 1), *o2 = falloc(n + 1), *o3 = falloc(n + 1);
      cofi__rows byidx = {.base = f.Y, .ld = k, .idx = f.idx};
      cofi__rows block = {.base = f.block, .ld = k, .idx = NULL};
      cofi__k_gemv(&byidx, n, k, v, o1);
      cofi__k_gemv(&block, n, k, v, o2);
      cofi__k_gemv_ref(&block, n, k, v, o3);
      for (size_t t = 0; t < n; t++) {
        float want = cofi__dot(f.block + t * k, v, k), d = cofi__k_dot(f.block + t * k, v, k);
        if (o1[t] != want || o2[t] != want || o3[t] != want || d != want)
          fail_msg("kernels %s k=%u n=%zu row %zu: gemv %a / %a / ref %a, dot %a, cofi__dot %a",
                   cofi_kernel_set(), k, n, t, (double)o1[t], (double)o2[t], (double)o3[t],
                   (double)d, (double)want);
      }
      free(v); free(o1); free(o2); free(o3);
      unmake(&f);
    }
}

static void dot_is_accurate(void **s) {
  (void)s;
  for (size_t a = 0; a < N_KS; a++) {
    uint32_t k = KS[a];
    float *x = falloc(k), *y = falloc(k);
    double exact = 0, mag = 0;
    for (uint32_t j = 0; j < k; j++) {
      exact += (double)x[j] * y[j];
      mag += fabs((double)x[j] * y[j]);
    }
    double got = cofi__dot(x, y, k);
    assert_true(fabs(got - exact) <= (k + 1) * EPS * mag);
    free(x); free(y);
  }
}

/* out0 + sum_t (cf0 + cf1 r_t + (cf2 + cf3 r_t)(y_t . v)) y_t in double,
 * and each output's error bound for a float evaluation in any order: the
 * dot products are off by (k + 2) eps sum|y v|, which the weight b_t
 * carries into the output, and the sum of n + 1 terms (each made with
 * a few roundings) is off by (n + 6) eps times the sum of their sizes. */
static void rank1_double(const fixture *f, const float *r, const float cf[4], const float *v,
                         const float *out0, double *want, double *tol) {
  uint32_t k = f->k;
  double *mag = malloc(k * sizeof *mag);
  for (uint32_t j = 0; j < k; j++) { want[j] = out0[j]; mag[j] = fabs(out0[j]); tol[j] = 0; }
  for (size_t t = 0; t < f->n; t++) {
    const float *y = f->block + t * k;
    double s = 0, smag = 0;
    for (uint32_t j = 0; j < k; j++) { s += (double)y[j] * v[j]; smag += fabs((double)y[j] * v[j]); }
    double a = (double)cf[0] + (double)cf[1] * r[t], b = (double)cf[2] + (double)cf[3] * r[t];
    double coef = a + b * s, cmag = fabs(a) + fabs(b) * fabs(s);
    for (uint32_t j = 0; j < k; j++) {
      want[j] += coef * y[j];
      mag[j] += cmag * fabs(y[j]);
      tol[j] += fabs(b) * (k + 2) * EPS * smag * fabs(y[j]);
    }
  }
  for (uint32_t j = 0; j < k; j++) tol[j] = 2 * (tol[j] + (f->n + 6) * EPS * mag[j]);
  free(mag);
}

static void rank1_pass_matches(void **s) {
  (void)s;
  for (size_t a = 0; a < N_KS; a++)
    for (size_t b = 0; b < N_NS; b++) {
      uint32_t k = KS[a];
      size_t n = NS[b];
      fixture f = make(k, n);
      float *v = falloc(k), *r = falloc(n + 1), *out0 = falloc(k);
      float *o_idx = falloc(k), *o_blk = falloc(k), *o_ref = falloc(k);
      for (size_t t = 0; t < n; t++) r[t] = fabsf(r[t]) * 4;
      const float cfs[2][4] = {{0, 0, 0.7f, 3}, {1, 3, -0.7f, -3}};
      double *want = malloc(k * sizeof *want), *tol = malloc(k * sizeof *tol);
      for (int c = 0; c < 2; c++) {
        memcpy(o_idx, out0, k * sizeof *out0);
        memcpy(o_blk, out0, k * sizeof *out0);
        memcpy(o_ref, out0, k * sizeof *out0);
        cofi__rows byidx = {.base = f.Y, .ld = k, .idx = f.idx};
        cofi__rows block = {.base = f.block, .ld = k, .idx = NULL};
        cofi__k_rank1_pass(&byidx, n, k, r, cfs[c], v, o_idx);
        cofi__k_rank1_pass(&block, n, k, r, cfs[c], v, o_blk);
        cofi__k_rank1_pass_ref(&block, n, k, r, cfs[c], v, o_ref);
        rank1_double(&f, r, cfs[c], v, out0, want, tol);
        for (uint32_t j = 0; j < k; j++) {
          if (fabs(o_idx[j] - want[j]) > tol[j] || fabs(o_blk[j] - want[j]) > tol[j] ||
              fabs(o_ref[j] - want[j]) > tol[j])
            fail_msg("k=%u n=%zu cf %d out[%u]: idx %.9g block %.9g ref %.9g, exact %.9g "
                     "(tolerance %.3g)",
                     k, n, c, j, (double)o_idx[j], (double)o_blk[j], (double)o_ref[j], want[j],
                     tol[j]);
        }
      }
      free(want); free(tol);
      free(v); free(r); free(out0); free(o_idx); free(o_blk); free(o_ref);
      unmake(&f);
    }
}

static void symv_matches(void **s) {
  (void)s;
  for (size_t a = 0; a < N_KS; a++) {
    uint32_t k = KS[a];
    size_t ld = cofi__kpad(k) + 16; /* a stride that is not k */
    float *S = falloc(k * ld), *v = falloc(k), *o = falloc(k), *o_ref = falloc(k);
    for (uint32_t i = 0; i < k; i++)
      for (uint32_t j = 0; j < i; j++) S[i * ld + j] = S[j * ld + i];
    for (size_t l = 0; l < 2; l++) {
      size_t lds = l ? ld : k;
      if (!l) /* the same matrix at stride k */
        for (uint32_t i = 0; i < k; i++) memmove(S + i * k, S + i * ld, k * sizeof *S);
      cofi__k_symv(S, lds, k, 0.25f, v, o);
      cofi__k_symv_ref(S, lds, k, 0.25f, v, o_ref);
      for (uint32_t i = 0; i < k; i++) {
        double want = 0.25 * v[i], mag = fabs(0.25 * v[i]);
        for (uint32_t j = 0; j < k; j++) {
          want += (double)S[i * lds + j] * v[j];
          mag += fabs((double)S[i * lds + j] * v[j]);
        }
        double tol = (k + 2) * EPS * mag;
        if (fabs(o[i] - want) > tol || fabs(o_ref[i] - want) > tol)
          fail_msg("symv k=%u lds=%zu out[%u]: %.9g ref %.9g exact %.9g", k, lds, i, (double)o[i],
                   (double)o_ref[i], want);
      }
      if (!l) /* back to stride ld for the second round */
        for (uint32_t i = k; i-- > 0;) memmove(S + i * ld, S + i * k, k * sizeof *S);
    }
    free(S); free(v); free(o); free(o_ref);
  }
}

static void gather_copies_and_pads(void **s) {
  (void)s;
  for (size_t a = 0; a < N_KS; a++) {
    uint32_t k = KS[a], kp = cofi__kpad(k);
    fixture f = make(k, 40);
    for (int l = 0; l < 2; l++) {
      size_t ldg = l ? kp : k;
      if (ldg % 16) continue; /* the kernel wants whole vectors per row */
      float *G = falloc(40 * ldg);
      cofi__rows rows = {.base = f.Y, .ld = k, .idx = f.idx};
      cofi__k_gather(&rows, 40, k, G, ldg);
      for (size_t t = 0; t < 40; t++) {
        assert_memory_equal(G + t * ldg, f.block + t * k, k * sizeof(float));
        for (size_t j = k; j < ldg; j++) assert_true(G[t * ldg + j] == 0.0f);
      }
      free(G);
    }
    unmake(&f);
  }
}

static void syrk_acc_matches(void **s) {
  (void)s;
  for (size_t a = 0; a < N_KS; a++)
    for (size_t b = 0; b < N_NS; b++) {
      uint32_t k = KS[a], kp = cofi__kpad(k);
      size_t n = NS[b], lda = kp + 16;
      float *G = falloc(n * kp + 1), *H = falloc(n * kp + 1);
      float *A0 = falloc(kp * lda), *A = falloc(kp * lda), *A_ref = falloc(kp * lda);
      /* rows [r0, r1) as the Cholesky's panels use them, and all rows */
      uint32_t ranges[2][2] = {{0, kp}, {kp >= 32 ? 16 : 0, kp >= 32 ? 24 : 8}};
      for (int q = 0; q < 2; q++) {
        uint32_t r0 = ranges[q][0], r1 = ranges[q][1];
        memcpy(A, A0, kp * lda * sizeof *A);
        memcpy(A_ref, A0, kp * lda * sizeof *A);
        cofi__k_syrk_acc(G, H, n, kp, r0, r1, A, lda);
        cofi__k_syrk_acc_ref(G, H, n, kp, r0, r1, A_ref, lda);
        for (uint32_t r = 0; r < kp; r++)
          for (uint32_t c = r; c < kp; c++) {
            double want = A0[r * lda + c], mag = fabs(want);
            if (r >= r0 && r < r1)
              for (size_t t = 0; t < n; t++) {
                want += (double)G[t * kp + r] * H[t * kp + c];
                mag += fabs((double)G[t * kp + r] * H[t * kp + c]);
              }
            double tol = (n + 1) * EPS * mag;
            if (fabs(A[r * lda + c] - want) > tol || fabs(A_ref[r * lda + c] - want) > tol)
              fail_msg("syrk k=%u n=%zu rows [%u,%u) A[%u][%u]: %.9g ref %.9g exact %.9g", k, n,
                       r0, r1, r, c, (double)A[r * lda + c], (double)A_ref[r * lda + c], want);
          }
      }
      free(G); free(H); free(A0); free(A); free(A_ref);
    }
}

static void gemm_matches(void **s) {
  (void)s;
  const uint32_t ms[] = {8, 16, 24, 64};
  const uint32_t nns[] = {16, 32, 48, 64, 80, 512};
  const size_t kds[] = {0, 1, 7, 64, 100};
  for (size_t a = 0; a < 4; a++)
    for (size_t b = 0; b < 6; b++)
      for (size_t c = 0; c < 5; c++) {
        uint32_t m = ms[a], nn = nns[b];
        size_t kd = kds[c], lda = m + 8, ldb = nn + 16, ldc = nn + 32;
        float *At = falloc(kd * lda + 1), *Bt = falloc(kd * ldb + 1);
        float *C0 = falloc(m * ldc), *C = falloc(m * ldc), *C_ref = falloc(m * ldc);
        memcpy(C, C0, m * ldc * sizeof *C);
        memcpy(C_ref, C0, m * ldc * sizeof *C);
        cofi__k_gemm(At, lda, Bt, ldb, kd, m, nn, C, ldc);
        cofi__k_gemm_ref(At, lda, Bt, ldb, kd, m, nn, C_ref, ldc);
        for (uint32_t i = 0; i < m; i++)
          for (uint32_t j = 0; j < ldc; j++) {
            if (j >= nn) { /* outside the product: untouched */
              assert_true(C[i * ldc + j] == C0[i * ldc + j]);
              continue;
            }
            double want = 0, mag = 0;
            for (size_t p = 0; p < kd; p++) {
              want += (double)At[p * lda + i] * Bt[p * ldb + j];
              mag += fabs((double)At[p * lda + i] * Bt[p * ldb + j]);
            }
            double tol = (kd + 1) * EPS * mag;
            if (fabs(C[i * ldc + j] - want) > tol || fabs(C_ref[i * ldc + j] - want) > tol)
              fail_msg("gemm m=%u nn=%u kd=%zu C[%u][%u]: %.9g ref %.9g exact %.9g", m, nn, kd, i,
                       j, (double)C[i * ldc + j], (double)C_ref[i * ldc + j], want);
          }
        free(At); free(Bt); free(C0); free(C); free(C_ref);
      }
}

/* The promise docs/performance.md makes about sets: the optimized sets
 * (generic, avx2, avx512) sum each entry of gemm and syrk_acc in the same
 * order with fused multiply-adds, so they agree bit for bit (the batch
 * scores and the training Gram matrix do not depend on the set). */
static void products_agree_across_sets(void **s) {
  (void)s;
  const char *sets[] = {"generic", "avx2", "avx512"};
  const uint32_t m = 24, nn = 80, kp = 80;
  const size_t kd = 100, lda = m + 8, ldb = nn + 16, ldc = nn + 32;
  float *At = falloc(kd * lda + 1), *Bt = falloc(kd * ldb + 1);
  float *G = falloc(kd * kp), *H = falloc(kd * kp), *A0 = falloc(kp * kp);
  float *C[3], *A[3];
  bool have[3];
  for (int i = 0; i < 3; i++) {
    const cofi__kernels *t = cofi__kernels_named(sets[i]);
    have[i] = t != NULL;
    C[i] = falloc(m * ldc);
    A[i] = falloc(kp * kp);
    if (!t) continue;
    t->gemm(At, lda, Bt, ldb, kd, m, nn, C[i], ldc);
    memcpy(A[i], A0, kp * kp * sizeof *A0);
    t->syrk_acc(G, H, kd, kp, 0, kp, A[i], kp);
  }
  for (int i = 1; i < 3; i++) {
    if (!have[i] || !have[0]) continue;
    for (uint32_t r = 0; r < m; r++)
      if (memcmp(C[i] + r * ldc, C[0] + r * ldc, nn * sizeof(float)))
        fail_msg("gemm: %s and %s differ in row %u", sets[i], sets[0], r);
    for (uint32_t r = 0; r < kp; r++)
      if (memcmp(A[i] + r * kp + r, A[0] + r * kp + r, (kp - r) * sizeof(float)))
        fail_msg("syrk_acc: %s and %s differ in row %u", sets[i], sets[0], r);
  }
  for (int i = 0; i < 3; i++) { free(C[i]); free(A[i]); }
  free(At); free(Bt); free(G); free(H); free(A0);
}

static void first_above_matches(void **s) {
  (void)s;
  float x[300];
  for (size_t i = 0; i < 300; i++) x[i] = (float)i * 0.5f;
  x[200] = NAN;
  for (size_t n = 0; n <= 300; n += 7)
    for (float thr = -1.0f; thr < 160.0f; thr += 13.25f) {
      size_t a = cofi__k_first_above(x, n, thr), b = cofi__k_first_above_ref(x, n, thr);
      if (a != b) fail_msg("first_above n=%zu thr=%g: %zu, reference %zu", n, (double)thr, a, b);
    }
  /* a hit in every position of a 16-vector and of a 64-block */
  for (size_t at = 0; at < 130; at++) {
    float y[130];
    for (size_t i = 0; i < 130; i++) y[i] = i == at ? 2.0f : 1.0f;
    assert_int_equal(cofi__k_first_above(y, 130, 1.5f), at);
    assert_int_equal(cofi__k_first_above(y, 130, 2.0f), 130); /* strictly above */
  }
}

/* A = B B^T / k + I: symmetric positive definite, well conditioned. */
static float *spd(uint32_t k, size_t lda) {
  uint32_t kp = cofi__kpad(k);
  float *B = falloc((size_t)k * k), *A = falloc((size_t)kp * lda);
  for (uint32_t i = 0; i < k; i++)
    for (uint32_t j = 0; j < k; j++) {
      double s = 0;
      for (uint32_t l = 0; l < k; l++) s += (double)B[i * k + l] * B[j * k + l];
      A[i * lda + j] = (float)(s / k + (i == j));
    }
  free(B);
  return A;
}

/* Backward error of U^T U = A: |U^T U - A|_ij <= c k eps (|U|^T |U|)_ij. */
static void check_factor(const float *A, const float *U, uint32_t k, size_t lda,
                         const char *what) {
  for (uint32_t i = 0; i < k; i++)
    for (uint32_t j = i; j < k; j++) {
      double s = 0, mag = 0;
      for (uint32_t p = 0; p <= i; p++) {
        s += (double)U[p * lda + i] * U[p * lda + j];
        mag += fabs((double)U[p * lda + i] * U[p * lda + j]);
      }
      if (fabs(s - A[i * lda + j]) > 4 * (k + 2) * EPS * mag)
        fail_msg("%s k=%u: (U^T U)[%u][%u] = %.9g, A = %.9g", what, k, i, j, s,
                 (double)A[i * lda + j]);
    }
}

static void cholesky_factors_and_solves(void **s) {
  (void)s;
  for (size_t a = 0; a < N_KS; a++) {
    uint32_t k = KS[a], kp = cofi__kpad(k);
    size_t lda = kp;
    float *A = spd(k, lda), *U = falloc(kp * lda), *U_ref = falloc(kp * lda);
    memcpy(U, A, kp * lda * sizeof *U);
    memcpy(U_ref, A, kp * lda * sizeof *U);
    assert_int_equal(cofi__k_cholesky(U, lda, k), 0);
    assert_int_equal(cofi__k_cholesky_ref(U_ref, lda, k), 0);
    check_factor(A, U, k, lda, "cholesky");
    check_factor(A, U_ref, k, lda, "cholesky_ref");
    /* solve: residual of A x = b within the backward-error bound */
    float *b = falloc(k), *x = falloc(k), *x_ref = falloc(k);
    cofi__k_chol_solve(U, lda, k, b, x);
    cofi__k_chol_solve_ref(U_ref, lda, k, b, x_ref);
    for (int w = 0; w < 2; w++) {
      const float *xs = w ? x_ref : x;
      for (uint32_t i = 0; i < k; i++) {
        double r = -b[i], mag = fabs(b[i]);
        for (uint32_t j = 0; j < k; j++) {
          double aij = i <= j ? A[i * lda + j] : A[j * lda + i];
          r += aij * xs[j];
          mag += fabs(aij * xs[j]);
        }
        if (fabs(r) > 16 * (k + 2) * EPS * mag)
          fail_msg("solve%s k=%u: residual %.3g of row %u (magnitude %.3g)", w ? "_ref" : "", k,
                   r, i, mag);
      }
    }
    /* x may alias b */
    memcpy(x_ref, b, k * sizeof *b);
    cofi__k_chol_solve(U, lda, k, x_ref, x_ref);
    assert_memory_equal(x_ref, x, k * sizeof *x);
    free(b); free(x); free(x_ref);
    free(A); free(U); free(U_ref);
  }
}

static void cholesky_refuses_indefinite(void **s) {
  (void)s;
  for (size_t a = 0; a < N_KS; a++) {
    uint32_t k = KS[a], kp = cofi__kpad(k);
    size_t lda = kp;
    for (int bad = 0; bad < 3; bad++) {
      float *A = spd(k, lda), *A2 = falloc(kp * lda);
      uint32_t at = k / 2;
      if (bad == 0) A[at * lda + at] = -1.0f;           /* negative pivot */
      if (bad == 1) A[at * lda + at] = NAN;             /* NaN */
      if (bad == 2) A[0 * lda + at] = A[at * lda + 0] = 1e6f; /* indefinite */
      if (bad == 2 && at == 0) { free(A); free(A2); continue; }
      memcpy(A2, A, kp * lda * sizeof *A);
      if (cofi__k_cholesky(A, lda, k) != -1 || cofi__k_cholesky_ref(A2, lda, k) != -1)
        fail_msg("k=%u case %d: factored a matrix that is not positive definite", k, bad);
      free(A); free(A2);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dot_is_accurate),
      cmocka_unit_test(gemv_equals_dot),
      cmocka_unit_test(rank1_pass_matches),
      cmocka_unit_test(symv_matches),
      cmocka_unit_test(gather_copies_and_pads),
      cmocka_unit_test(syrk_acc_matches),
      cmocka_unit_test(gemm_matches),
      cmocka_unit_test(products_agree_across_sets),
      cmocka_unit_test(first_above_matches),
      cmocka_unit_test(cholesky_factors_and_solves),
      cmocka_unit_test(cholesky_refuses_indefinite),
  };
  return tu_run_per_kernel_set("kernels", tests, sizeof tests / sizeof *tests);
}

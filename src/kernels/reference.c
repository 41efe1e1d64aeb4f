/*
 * kernels/reference.c — the reference kernels: the obvious loops, the spec
 * every other set is tested against (tests/unit/test_kernels.c), and the
 * set that runs where nothing better does. Compiled with the build's
 * baseline flags.
 */
#include "kernels/impl.h"

/* ======================================================================
 * Reference kernels: the obvious loops.
 * ====================================================================== */

void cofi__k_gemv_ref(const cofi__rows *rows, size_t n, uint32_t k, const float *v,
                      float *out) {
  for (size_t t = 0; t < n; t++) out[t] = cofi__dot(row_at(rows, t), v, k);
}

void cofi__k_rank1_pass_ref(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                            const float cf[4], const float *v, float *out) {
  for (size_t t = 0; t < n; t++) {
    const float *y = row_at(rows, t);
    float s = cofi__dot(y, v, k);
    float coef = (cf[0] + cf[1] * r[t]) + (cf[2] + cf[3] * r[t]) * s;
    cofi__axpy(coef, y, out, k);
  }
}

void cofi__k_symv_ref(const float *S, size_t lds, uint32_t k, float shift, const float *v,
                      float *out) {
  for (uint32_t i = 0; i < k; i++) out[i] = cofi__dot(S + i * lds, v, k) + shift * v[i];
}

void cofi__k_syrk_acc_ref(const float *G, const float *H, size_t n, uint32_t kp, uint32_t r0,
                          uint32_t r1, float *A, size_t lda) {
  for (uint32_t r = r0; r < r1; r++)
    for (size_t t = 0; t < n; t++) {
      float g = G[t * kp + r];
      const float *h = H + t * kp;
      float *a = A + r * lda;
      for (uint32_t c = r; c < kp; c++) a[c] += g * h[c];
    }
}

void cofi__k_gemm_ref(const float *At, size_t lda, const float *Bt, size_t ldb, size_t kd,
                      uint32_t m, uint32_t nn, float *C, size_t ldc) {
  for (uint32_t i = 0; i < m; i++) memset(C + i * ldc, 0, nn * sizeof *C);
  for (uint32_t i = 0; i < m; i++)
    for (size_t p = 0; p < kd; p++) {
      float a = At[p * lda + i];
      const float *b = Bt + p * ldb;
      float *c = C + i * ldc;
      for (uint32_t j = 0; j < nn; j++) c[j] += a * b[j];
    }
}

size_t cofi__k_first_above_ref(const float *x, size_t n, float thr) {
  size_t i = 0;
  while (i < n && !(x[i] > thr)) i++;
  return i;
}

float cofi__k_qscan_ref(const cofi__qscan *s, size_t k, float *heap, float *hi, float *lo,
                        size_t *n_blocks_done) {
  size_t have = 0, b = 0;
  for (; b < s->n_blocks; b++) {
    if (k > 0 && have == k && s->stop_coef * s->norm[b * 16] < heap[0]) break; /* as below */
    const int8_t *blk = s->panel + b * (size_t)s->groups * 64;
    for (uint32_t lane = 0; lane < 16; lane++) {
      size_t i = b * 16 + lane;
      int32_t acc = 0;
      for (uint32_t g = 0; g < s->groups; g++)
        for (uint32_t q = 0; q < 4; q++)
          acc += (int32_t)(uint8_t)(s->uq[g] >> (8 * q)) * blk[(size_t)g * 64 + 4 * lane + q];
      float a = (float)(acc - 128 * s->qsum[i]) * (s->scale[i] * s->t);
      float m = s->coef[0] * s->err[i] + s->coef[1] * s->l1[i] + s->coef[2] * s->norm[i] +
                s->coef[3];
      bool skip = (s->skip[b] >> lane) & 1;
      hi[i] = skip ? -INFINITY : a + m;
      float l = skip ? -INFINITY : a - m;
      if (lo) lo[i] = l;
      if (l > -INFINITY && k > 0) fheap_push(heap, &have, k, l);
    }
  }
  *n_blocks_done = b;
  return k > 0 && have == k ? heap[0] : -INFINITY;
}

int cofi__k_cholesky_ref(float *A, size_t lda, uint32_t k) {
  for (uint32_t j = 0; j < k; j++) {
    float *Uj = A + j * lda;
    float d = Uj[j];
    for (uint32_t p = 0; p < j; p++) d -= A[p * lda + j] * A[p * lda + j];
    if (!(d > 0) || !isfinite(d)) return -1;
    float ujj = sqrtf(d), inv = 1.0f / ujj;
    Uj[j] = ujj;
    for (uint32_t i = j + 1; i < k; i++) {
      float s = Uj[i];
      for (uint32_t p = 0; p < j; p++) s -= A[p * lda + j] * A[p * lda + i];
      Uj[i] = s * inv;
    }
  }
  return 0;
}

void cofi__k_chol_solve_ref(const float *U, size_t lda, uint32_t k, const float *b, float *x) {
  if (x != b) memmove(x, b, k * sizeof *x);
  for (uint32_t j = 0; j < k; j++) { /* U^T z = b */
    float s = x[j];
    for (uint32_t p = 0; p < j; p++) s -= U[p * lda + j] * x[p];
    x[j] = s / U[j * lda + j];
  }
  for (uint32_t i = k; i-- > 0;) { /* U x = z */
    float s = x[i];
    for (uint32_t j = i + 1; j < k; j++) s -= U[i * lda + j] * x[j];
    x[i] = s / U[i * lda + i];
  }
}

void cofi__k_gather_ref(const cofi__rows *rows, size_t n, uint32_t k, float *G, size_t ldg) {
  for (size_t t = 0; t < n; t++) {
    float *g = G + t * ldg;
    memcpy(g, row_at(rows, t), k * sizeof *g);
    memset(g + k, 0, (ldg - k) * sizeof *g);
  }
}

static float dot_ref(const float *a, const float *b, uint32_t k) { return cofi__dot(a, b, k); }

const cofi__kernels cofi__kernels_reference = {
    .name = "reference",
    .fast_i8 = false,
    .dot = dot_ref,
    .gemv = cofi__k_gemv_ref,
    .rank1_pass = cofi__k_rank1_pass_ref,
    .symv = cofi__k_symv_ref,
    .gather = cofi__k_gather_ref,
    .syrk_acc = cofi__k_syrk_acc_ref,
    .gemm = cofi__k_gemm_ref,
    .first_above = cofi__k_first_above_ref,
    .qscan = cofi__k_qscan_ref,
    .cholesky = cofi__k_cholesky_ref,
    .chol_solve = cofi__k_chol_solve_ref,
};

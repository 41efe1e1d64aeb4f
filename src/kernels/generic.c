/*
 * kernels/generic.c — the portable vector set: GCC/Clang vector extensions
 * over 16-float vectors (cofi__dot's 16 lanes), no intrinsics. On aarch64
 * the compiler lowers each vector to four 128-bit NEON registers and the
 * per-lane fused multiply-adds to FMLA; on any other target to what it
 * has (SSE2 on baseline x86-64, where FMA is a library call: slow but
 * the same bits; x86 CPUs with AVX2 run avx2.c instead).
 *
 * Why vector extensions rather than NEON intrinsics: one source serves
 * NEON today, and SVE, RISC-V V or POWER VSX tomorrow, with no second
 * copy of the algorithms to keep in step with the reference; the kernels'
 * shapes (16 lanes per row, 4-row dot blocks, a register tile) carry the
 * speed, and the compiler maps them well to 128-bit registers. The cost:
 * no masked loads (tails go through a zero-padded copy) and no control
 * over shuffles; the int8 scan, the Cholesky and its solves stay the
 * reference's here (fast_i8 false: queries take the exact path).
 *
 * Scores (dot, gemv) follow cofi__dot's order exactly, as in every set.
 */
#include "kernels/impl.h"

typedef float f32x16 __attribute__((vector_size(64)));

static inline f32x16 vload(const float *p) {
  f32x16 v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void vstore(float *p, f32x16 v) { memcpy(p, &v, sizeof v); }
/* The first n (< 16) floats of p, zeros after. */
static inline f32x16 vload_part(const float *p, uint32_t n) {
  float t[16] = {0};
  memcpy(t, p, n * sizeof *t);
  return vload(t);
}
/* Per lane a * b + c with one rounding (FMLA on aarch64). */
static inline f32x16 vfma(f32x16 a, f32x16 b, f32x16 c) {
  f32x16 r;
  for (int l = 0; l < 16; l++) r[l] = __builtin_fmaf(a[l], b[l], c[l]);
  return r;
}
/* cofi__dot's reduction tree over the 16 lanes. */
static inline float reduce(f32x16 a) {
  float w[4];
  for (int q = 0; q < 4; q++) w[q] = (a[q] + a[q + 8]) + (a[q + 4] + a[q + 12]);
  return (w[0] + w[2]) + (w[1] + w[3]);
}

/* Lane-wise partial dots of 4 rows with v. */
static inline void dots4(const float *const *rp, uint32_t k, const float *v, f32x16 *acc) {
  for (int i = 0; i < 4; i++) acc[i] = (f32x16){0};
  uint32_t j = 0;
  for (; j + 16 <= k; j += 16) {
    f32x16 vv = vload(v + j);
    for (int i = 0; i < 4; i++) acc[i] = vfma(vload(rp[i] + j), vv, acc[i]);
  }
  if (j < k) {
    f32x16 vv = vload_part(v + j, k - j);
    for (int i = 0; i < 4; i++) acc[i] = vfma(vload_part(rp[i] + j, k - j), vv, acc[i]);
  }
}

static const float zero_row[COFI_MAX_FACTORS + 16] __attribute__((aligned(64)));

static float dot_generic(const float *a, const float *b, uint32_t k) {
  const float *rp[4] = {a, zero_row, zero_row, zero_row};
  f32x16 acc[4];
  dots4(rp, k, b, acc);
  return reduce(acc[0]);
}

static size_t rows4(const cofi__rows *R, size_t n, size_t t0, const float **rp) {
  size_t nb = n - t0 < 4 ? n - t0 : 4;
  for (size_t i = 0; i < 4; i++) rp[i] = i < nb ? row_at(R, t0 + i) : zero_row;
  return nb;
}

static void gemv_generic(const cofi__rows *rows, size_t n, uint32_t k, const float *v,
                         float *out) {
  const float *rp[4];
  f32x16 acc[4];
  for (size_t t0 = 0; t0 < n; t0 += 4) {
    size_t nb = rows4(rows, n, t0, rp);
    dots4(rp, k, v, acc);
    for (size_t i = 0; i < nb; i++) out[t0 + i] = reduce(acc[i]);
  }
}

/* out += sum_i c[i] y_i over nb rows, 16 columns at a time. */
static void axpy4(const float *const *yp, const float *c, size_t nb, uint32_t k, float *out) {
  uint32_t j = 0;
  for (; j + 16 <= k; j += 16) {
    f32x16 o = vload(out + j);
    for (size_t i = 0; i < nb; i++) o = vfma((f32x16){0} + c[i], vload(yp[i] + j), o);
    vstore(out + j, o);
  }
  for (; j < k; j++)
    for (size_t i = 0; i < nb; i++) out[j] = __builtin_fmaf(c[i], yp[i][j], out[j]);
}

static void rank1_pass_generic(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                               const float cf[4], const float *v, float *out) {
  const float *rp[4];
  f32x16 acc[4];
  for (size_t t0 = 0; t0 < n; t0 += 4) {
    size_t nb = rows4(rows, n, t0, rp);
    dots4(rp, k, v, acc);
    float c[4];
    for (size_t i = 0; i < nb; i++) {
      float rt = r[t0 + i];
      c[i] = __builtin_fmaf(__builtin_fmaf(cf[3], rt, cf[2]), reduce(acc[i]),
                            __builtin_fmaf(cf[1], rt, cf[0]));
    }
    axpy4(rp, c, nb, k, out);
  }
}

/* out = S v + shift v as sum_c v[c] S[c][.], 16 columns at a time. */
static void symv_generic(const float *S, size_t lds, uint32_t k, float shift, const float *v,
                         float *out) {
  uint32_t j = 0;
  for (; j + 16 <= k; j += 16) {
    f32x16 a = {0}, b = {0};
    uint32_t c = 0;
    for (; c + 2 <= k; c += 2) {
      a = vfma((f32x16){0} + v[c], vload(S + c * lds + j), a);
      b = vfma((f32x16){0} + v[c + 1], vload(S + (c + 1) * lds + j), b);
    }
    if (c < k) a = vfma((f32x16){0} + v[c], vload(S + c * lds + j), a);
    vstore(out + j, vfma((f32x16){0} + shift, vload(v + j), a + b));
  }
  for (; j < k; j++) {
    float a = 0;
    for (uint32_t c = 0; c < k; c++) a = __builtin_fmaf(v[c], S[c * lds + j], a);
    out[j] = __builtin_fmaf(shift, v[j], a);
  }
}

/* A 4-row x 16-column tile: C[r+i][col..] (+/-)= sum_t G[t][r+i] H[t][col..],
 * summed in order t = 0, 1, ... (as in the other sets). sign: 1 add, -1
 * subtract, 0 set. */
static void tile(const float *G, size_t ldg, const float *H, size_t ldh, size_t n, uint32_t r,
                 uint32_t col, float *A, size_t lda, int sign) {
  f32x16 acc[4];
  for (int i = 0; i < 4; i++) acc[i] = sign ? vload(A + (r + i) * lda + col) : (f32x16){0};
  f32x16 s = (f32x16){0} + (sign < 0 ? -1.0f : 1.0f);
  for (size_t t = 0; t < n; t++) {
    const float *g = G + t * ldg + r;
    f32x16 h = vload(H + t * ldh + col) * s; /* exact: a sign */
    for (int i = 0; i < 4; i++) acc[i] = vfma((f32x16){0} + g[i], h, acc[i]);
  }
  for (int i = 0; i < 4; i++) vstore(A + (r + i) * lda + col, acc[i]);
}

static void syrk_acc_generic(const float *G, const float *H, size_t n, uint32_t kp, uint32_t r0,
                             uint32_t r1, float *A, size_t lda) {
  for (uint32_t r = r0; r < r1; r += 4)
    for (uint32_t c = r & ~15u; c < kp; c += 16) tile(G, kp, H, kp, n, r, c, A, lda, 1);
}

static void gemm_generic(const float *At, size_t lda, const float *Bt, size_t ldb, size_t kd,
                         uint32_t m, uint32_t nn, float *C, size_t ldc) {
  for (uint32_t r = 0; r < m; r += 4)
    for (uint32_t c = 0; c < nn; c += 16) tile(At, lda, Bt, ldb, kd, r, c, C, ldc, 0);
}

const cofi__kernels cofi__kernels_generic = {
    .name = "generic",
    .fast_i8 = false,
    .dot = dot_generic,
    .gemv = gemv_generic,
    .rank1_pass = rank1_pass_generic,
    .symv = symv_generic,
    .gather = cofi__k_gather_ref,
    .syrk_acc = syrk_acc_generic,
    .gemm = gemm_generic,
    .first_above = cofi__k_first_above_ref,
    .qscan = cofi__k_qscan_ref,
    .cholesky = cofi__k_cholesky_ref,
    .chol_solve = cofi__k_chol_solve_ref,
};

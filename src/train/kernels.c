/*
 * kernels.c — the dense numerical kernels under the ALS solvers and under
 * scoring, kept apart from the drivers that hold the algorithm (solve.c,
 * als.c, recommend/), as BLIS does: each has a plain reference version and
 * an optimized one, and test_kernels.c checks one against the other.
 *
 * Why not BLAS for these: the per-row problems are small (a few hundred
 * rows of k floats), where a BLAS call's overhead and packing dominate,
 * and the CG update wants two products fused in one pass over the rows;
 * OpenBLAS 0.3.21 also does not know Zen 5 and runs its AVX2 (Haswell)
 * kernels there.
 *
 * The optimized versions use AVX-512 when the build enables it
 * (-march=native on an AVX-512 machine); elsewhere the reference versions
 * serve, written so that compilers vectorize their inner loops.
 *
 * The central trick (gemv, rank1_pass): 16 rows are processed together.
 * Row i's dot product with v is kept as 16 partial sums in one register
 * acc[i] (one fused multiply-add per 16 columns); the 16 registers are
 * then reduced together by a transpose-and-add tree (reduce16), which
 * costs about three shuffles per row instead of a full horizontal sum
 * each. Per row, the lane order of that tree is fixed and equals
 * cofi__dot's, so scores match the scalar code bit for bit.
 *
 *   acc[0]  = [ r0: l0  l1 ... l15 ]          s = [ r0 r1 ... r15 ]
 *   acc[1]  = [ r1: l0  l1 ... l15 ]   -->   (one register, 16 dots)
 *   ...
 *   acc[15] = [ r15: ...          ]
 *
 * Every summation order depends only on the arguments, never on threads.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define COFI_AVX512 1
#endif

static inline const float *row_at(const cofi__rows *R, size_t t) {
  return R->base + (R->idx ? (size_t)R->idx[t] : t) * R->ld;
}

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

#if !defined(COFI_AVX512)
/* ======================================================================
 * Portable build: the reference kernels are the optimized ones.
 * ====================================================================== */
void cofi__k_gemv(const cofi__rows *rows, size_t n, uint32_t k, const float *v, float *out) {
  cofi__k_gemv_ref(rows, n, k, v, out);
}
void cofi__k_rank1_pass(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                        const float cf[4], const float *v, float *out) {
  cofi__k_rank1_pass_ref(rows, n, k, r, cf, v, out);
}
void cofi__k_symv(const float *S, size_t lds, uint32_t k, float shift, const float *v,
                  float *out) {
  cofi__k_symv_ref(S, lds, k, shift, v, out);
}
void cofi__k_syrk_acc(const float *G, const float *H, size_t n, uint32_t kp, uint32_t r0,
                      uint32_t r1, float *A, size_t lda) {
  cofi__k_syrk_acc_ref(G, H, n, kp, r0, r1, A, lda);
}
int cofi__k_cholesky(float *A, size_t lda, uint32_t k) { return cofi__k_cholesky_ref(A, lda, k); }
void cofi__k_chol_solve(const float *U, size_t lda, uint32_t k, const float *b, float *x) {
  cofi__k_chol_solve_ref(U, lda, k, b, x);
}
void cofi__k_gather(const cofi__rows *rows, size_t n, uint32_t k, float *G, size_t ldg) {
  for (size_t t = 0; t < n; t++) {
    float *g = G + t * ldg;
    memcpy(g, row_at(rows, t), k * sizeof *g);
    memset(g + k, 0, (ldg - k) * sizeof *g);
  }
}

#else
/* ======================================================================
 * AVX-512 kernels.
 * ====================================================================== */

/* A row of zeros standing in for the missing rows of a last, partial block
 * of 16 (its contribution is exactly zero). */
static const float zero_row[COFI_MAX_FACTORS + 16] __attribute__((aligned(64)));

/* Mask of the valid lanes of chunk c (16 floats) of a k-float row. */
static inline __mmask16 chunk_mask(uint32_t c, uint32_t nc, uint32_t k) {
  if (c + 1 < nc || (k & 15) == 0) return (__mmask16)0xFFFF;
  return (__mmask16)((1u << (k & 15)) - 1);
}

static inline __mmask16 first_mask(size_t nb) {
  return nb >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nb) - 1);
}

/* The 16 dot products held lane-wise in acc[0..15], as one register
 * (lane i = row i). Per row: w_q = (l_q + l_q+8) + (l_q+4 + l_q+12), then
 * (w_0 + w_2) + (w_1 + w_3): cofi__dot's order. */
static inline __m512 reduce16(const __m512 *acc) {
  __m512 b[8], c[4], d[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    __m512 x = acc[2 * i], y = acc[2 * i + 1];
    b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    __m512 x = b[2 * i], y = b[2 * i + 1];
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; i++) {
    __m512 x = c[2 * i], y = c[2 * i + 1];
    d[i] = _mm512_add_ps(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y));
  }
  __m512d d0 = _mm512_castps_pd(d[0]), d1 = _mm512_castps_pd(d[1]);
  __m512 e = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(d0, d1)),
                           _mm512_castpd_ps(_mm512_unpackhi_pd(d0, d1)));
  /* e[4j + m] holds row 4m + j */
  const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(perm, e);
}

/* Row pointers of block [t0, t0 + 16), the zero row past n; prefetches the
 * next block's rows when they are picked by index (scattered). */
static inline size_t block_rows(const cofi__rows *R, size_t n, size_t t0, uint32_t k,
                                const float **rp) {
  size_t nb = n - t0 < 16 ? n - t0 : 16;
  for (size_t i = 0; i < 16; i++) rp[i] = i < nb ? row_at(R, t0 + i) : zero_row;
  if (R->idx) {
    size_t end = t0 + 32 < n ? t0 + 32 : n;
    for (size_t t = t0 + 16; t < end; t++) {
      const char *p = (const char *)(R->base + (size_t)R->idx[t] * R->ld);
      for (uint32_t off = 0; off < k * 4u; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    }
  }
  return nb;
}

/* acc[i] = lane-wise partial dots of rp[i] with v. */
static inline void block_dots(const float **rp, uint32_t k, const float *v, __m512 *acc) {
  uint32_t nc = (k + 15) / 16;
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
  for (uint32_t c = 0; c < nc; c++) {
    __mmask16 m = chunk_mask(c, nc, k);
    __m512 vv = _mm512_maskz_loadu_ps(m, v + 16 * c);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
      acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, rp[i] + 16 * c), vv, acc[i]);
  }
}

/* ---- contiguous blocks: rows at a stride of exactly k = 16 NC floats ----
 * With NC a compile-time constant every load is base + constant, so no
 * row pointers compete for registers and no masks are needed. Used for
 * the full 16-row blocks of a gathered row (and of a factor matrix when
 * scoring); the last partial block goes through the general code. */
#define FORCE_INLINE static inline __attribute__((always_inline))

FORCE_INLINE void dots_fixed(const float *base, const float *v, __m512 *acc, const int NC) {
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int c = 0; c < NC; c++) {
    __m512 vv = _mm512_loadu_ps(v + 16 * c);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
      acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(base + (i * NC + c) * 16), vv, acc[i]);
  }
}

FORCE_INLINE void gemv_fixed(const float *base, size_t nblocks, const float *v, float *out,
                             const int NC) {
  __m512 acc[16];
  for (size_t b = 0; b < nblocks; b++) {
    dots_fixed(base + b * 256 * NC, v, acc, NC);
    _mm512_storeu_ps(out + 16 * b, reduce16(acc));
  }
}

FORCE_INLINE void rank1_fixed(const float *base, size_t nblocks, const float *r, __m512 p0,
                              __m512 p1, __m512 q0, __m512 q1, const float *v, float *out,
                              const int NC) {
  __m512 acc[16], bc[16];
  float cbuf[16] __attribute__((aligned(64)));
  for (size_t b = 0; b < nblocks; b++) {
    const float *blk = base + b * 256 * NC;
    dots_fixed(blk, v, acc, NC);
    __m512 s = reduce16(acc);
    __m512 rv = _mm512_loadu_ps(r + 16 * b);
    __m512 coef = _mm512_fmadd_ps(_mm512_fmadd_ps(q1, rv, q0), s, _mm512_fmadd_ps(p1, rv, p0));
    /* broadcasts through memory: they use the load ports, which have room,
     * instead of the shuffle unit, which reduce16 keeps busy */
    _mm512_store_ps(cbuf, coef);
    __asm__ volatile("" : : "r"(cbuf) : "memory"); /* keep the compiler from turning it back */
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) bc[i] = _mm512_set1_ps(cbuf[i]);
#pragma GCC unroll 16
    for (int c = 0; c < NC; c++) {
      __m512 o0 = _mm512_loadu_ps(out + 16 * c);
      __m512 o1 = _mm512_mul_ps(bc[1], _mm512_loadu_ps(blk + (1 * NC + c) * 16));
      __m512 o2 = _mm512_mul_ps(bc[2], _mm512_loadu_ps(blk + (2 * NC + c) * 16));
      __m512 o3 = _mm512_mul_ps(bc[3], _mm512_loadu_ps(blk + (3 * NC + c) * 16));
      o0 = _mm512_fmadd_ps(bc[0], _mm512_loadu_ps(blk + c * 16), o0);
#pragma GCC unroll 3
      for (int i = 4; i < 16; i += 4) {
        o0 = _mm512_fmadd_ps(bc[i], _mm512_loadu_ps(blk + (i * NC + c) * 16), o0);
        o1 = _mm512_fmadd_ps(bc[i + 1], _mm512_loadu_ps(blk + ((i + 1) * NC + c) * 16), o1);
        o2 = _mm512_fmadd_ps(bc[i + 2], _mm512_loadu_ps(blk + ((i + 2) * NC + c) * 16), o2);
        o3 = _mm512_fmadd_ps(bc[i + 3], _mm512_loadu_ps(blk + ((i + 3) * NC + c) * 16), o3);
      }
      _mm512_storeu_ps(out + 16 * c, _mm512_add_ps(_mm512_add_ps(o0, o1), _mm512_add_ps(o2, o3)));
    }
  }
}

/* The vector counts with a specialized kernel (k = 16 .. 256). */
#define FIXED_CASES(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(10) X(12) X(16)

#define GEMV_FN(NC)                                                                        \
  static void gemv_fixed##NC(const float *base, size_t nb, const float *v, float *out) {   \
    gemv_fixed(base, nb, v, out, NC);                                                      \
  }
#define RANK1_FN(NC)                                                                       \
  static void rank1_fixed##NC(const float *base, size_t nb, const float *r, __m512 p0,     \
                              __m512 p1, __m512 q0, __m512 q1, const float *v,             \
                              float *out) {                                                \
    rank1_fixed(base, nb, r, p0, p1, q0, q1, v, out, NC);                                  \
  }
FIXED_CASES(GEMV_FN)
FIXED_CASES(RANK1_FN)

/* How many leading full 16-row blocks the fixed kernels can take. */
static inline size_t fixed_blocks(const cofi__rows *R, size_t n, uint32_t k) {
  if (R->idx || (k & 15) || R->ld != k) return 0;
  switch (k / 16) {
#define CASE_OK(NC) case NC:
    FIXED_CASES(CASE_OK)
#undef CASE_OK
    return n / 16;
  default:
    return 0;
  }
}

static void gemv_general(const cofi__rows *rows, size_t n, uint32_t k, const float *v,
                         float *out) {
  const float *rp[16];
  __m512 acc[16];
  for (size_t t0 = 0; t0 < n; t0 += 16) {
    size_t nb = block_rows(rows, n, t0, k, rp);
    block_dots(rp, k, v, acc);
    _mm512_mask_storeu_ps(out + t0, first_mask(nb), reduce16(acc));
  }
}

void cofi__k_gemv(const cofi__rows *rows, size_t n, uint32_t k, const float *v, float *out) {
  size_t nb = fixed_blocks(rows, n, k);
  if (nb) {
    switch (k / 16) {
#define CASE_GEMV(NC) case NC: gemv_fixed##NC(rows->base, nb, v, out); break;
      FIXED_CASES(CASE_GEMV)
#undef CASE_GEMV
    default: break;
    }
  }
  cofi__rows rest = {.base = rows->base + (rows->idx ? 0 : nb * 16 * rows->ld), .ld = rows->ld,
                     .idx = rows->idx ? rows->idx + nb * 16 : NULL};
  gemv_general(&rest, n - nb * 16, k, v, out + nb * 16);
}

static void rank1_general(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                          const float cf[4], const float *v, float *out) {
  const float *rp[16];
  __m512 acc[16], bc[16];
  uint32_t nc = (k + 15) / 16;
  const __m512 p0 = _mm512_set1_ps(cf[0]), p1 = _mm512_set1_ps(cf[1]);
  const __m512 q0 = _mm512_set1_ps(cf[2]), q1 = _mm512_set1_ps(cf[3]);
  for (size_t t0 = 0; t0 < n; t0 += 16) {
    size_t nb = block_rows(rows, n, t0, k, rp);
    block_dots(rp, k, v, acc);
    __m512 s = reduce16(acc);
    __m512 rv = _mm512_maskz_loadu_ps(first_mask(nb), r + t0);
    /* lanes past nb get cf[0]: harmless, their rows are zero */
    __m512 coef = _mm512_fmadd_ps(_mm512_fmadd_ps(q1, rv, q0), s, _mm512_fmadd_ps(p1, rv, p0));
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) bc[i] = _mm512_permutexvar_ps(_mm512_set1_epi32(i), coef);
    for (uint32_t c = 0; c < nc; c++) {
      __mmask16 m = chunk_mask(c, nc, k);
      /* four independent chains so the adds overlap */
      __m512 o0 = _mm512_maskz_loadu_ps(m, out + 16 * c);
      __m512 o1 = _mm512_mul_ps(bc[1], _mm512_maskz_loadu_ps(m, rp[1] + 16 * c));
      __m512 o2 = _mm512_mul_ps(bc[2], _mm512_maskz_loadu_ps(m, rp[2] + 16 * c));
      __m512 o3 = _mm512_mul_ps(bc[3], _mm512_maskz_loadu_ps(m, rp[3] + 16 * c));
      o0 = _mm512_fmadd_ps(bc[0], _mm512_maskz_loadu_ps(m, rp[0] + 16 * c), o0);
#pragma GCC unroll 3
      for (int i = 4; i < 16; i += 4) {
        o0 = _mm512_fmadd_ps(bc[i], _mm512_maskz_loadu_ps(m, rp[i] + 16 * c), o0);
        o1 = _mm512_fmadd_ps(bc[i + 1], _mm512_maskz_loadu_ps(m, rp[i + 1] + 16 * c), o1);
        o2 = _mm512_fmadd_ps(bc[i + 2], _mm512_maskz_loadu_ps(m, rp[i + 2] + 16 * c), o2);
        o3 = _mm512_fmadd_ps(bc[i + 3], _mm512_maskz_loadu_ps(m, rp[i + 3] + 16 * c), o3);
      }
      _mm512_mask_storeu_ps(out + 16 * c, m,
                            _mm512_add_ps(_mm512_add_ps(o0, o1), _mm512_add_ps(o2, o3)));
    }
  }
}

void cofi__k_rank1_pass(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                        const float cf[4], const float *v, float *out) {
  size_t nb = fixed_blocks(rows, n, k);
  if (nb) {
    const __m512 p0 = _mm512_set1_ps(cf[0]), p1 = _mm512_set1_ps(cf[1]);
    const __m512 q0 = _mm512_set1_ps(cf[2]), q1 = _mm512_set1_ps(cf[3]);
    switch (k / 16) {
#define CASE_RANK1(NC)                                                                     \
  case NC: rank1_fixed##NC(rows->base, nb, r, p0, p1, q0, q1, v, out); break;
      FIXED_CASES(CASE_RANK1)
#undef CASE_RANK1
    default: break;
    }
  }
  cofi__rows rest = {.base = rows->base + (rows->idx ? 0 : nb * 16 * rows->ld), .ld = rows->ld,
                     .idx = rows->idx ? rows->idx + nb * 16 : NULL};
  rank1_general(&rest, n - nb * 16, k, r + nb * 16, cf, v, out);
}

/* out = S v + shift v, as sum_c v[c] S[c][.] (S symmetric): rows of S
 * stream contiguously and there is no horizontal sum. Columns in blocks
 * of 4 vectors, two accumulator sets (even and odd c) to hide latency. */
void cofi__k_symv(const float *S, size_t lds, uint32_t k, float shift, const float *v,
                  float *out) {
  uint32_t nc = (k + 15) / 16;
  for (uint32_t cb = 0; cb < nc; cb += 4) {
    __mmask16 m[4];
    __m512 a[4], b[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      m[j] = cb + j < nc ? chunk_mask(cb + j, nc, k) : 0;
      a[j] = _mm512_setzero_ps();
      b[j] = _mm512_setzero_ps();
    }
    const float *col = S + 16 * (size_t)cb;
    uint32_t c = 0;
    for (; c + 2 <= k; c += 2) {
      __m512 v0 = _mm512_set1_ps(v[c]), v1 = _mm512_set1_ps(v[c + 1]);
      const float *s0 = col + c * lds, *s1 = s0 + lds;
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++) {
        a[j] = _mm512_fmadd_ps(v0, _mm512_maskz_loadu_ps(m[j], s0 + 16 * j), a[j]);
        b[j] = _mm512_fmadd_ps(v1, _mm512_maskz_loadu_ps(m[j], s1 + 16 * j), b[j]);
      }
    }
    if (c < k) {
      __m512 v0 = _mm512_set1_ps(v[c]);
      const float *s0 = col + c * lds;
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++)
        a[j] = _mm512_fmadd_ps(v0, _mm512_maskz_loadu_ps(m[j], s0 + 16 * j), a[j]);
    }
    __m512 sh = _mm512_set1_ps(shift);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      if (!m[j]) continue;
      size_t off = 16 * ((size_t)cb + j);
      __m512 vv = _mm512_maskz_loadu_ps(m[j], v + off);
      _mm512_mask_storeu_ps(out + off, m[j],
                            _mm512_fmadd_ps(sh, vv, _mm512_add_ps(a[j], b[j])));
    }
  }
}

/* Rows ahead that the gather prefetches: enough misses in flight to cover
 * memory latency when the rows come from DRAM (the item sweep reads user
 * factors scattered over tens of megabytes). */
#define GATHER_AHEAD 16

FORCE_INLINE void gather_fixed(const cofi__rows *rows, size_t n, float *G, const int NC) {
  for (size_t t = 0; t < n; t++) {
    if (t + GATHER_AHEAD < n) {
      const char *p = (const char *)row_at(rows, t + GATHER_AHEAD);
#pragma GCC unroll 16
      for (int c = 0; c < NC; c++) _mm_prefetch(p + 64 * c, _MM_HINT_T0);
    }
    const float *src = row_at(rows, t);
    float *g = G + t * 16 * NC;
#pragma GCC unroll 16
    for (int c = 0; c < NC; c++) _mm512_storeu_ps(g + 16 * c, _mm512_loadu_ps(src + 16 * c));
  }
}
#define GATHER_FN(NC)                                                                      \
  static void gather_fixed##NC(const cofi__rows *rows, size_t n, float *G) {               \
    gather_fixed(rows, n, G, NC);                                                          \
  }
FIXED_CASES(GATHER_FN)

void cofi__k_gather(const cofi__rows *rows, size_t n, uint32_t k, float *G, size_t ldg) {
  if ((k & 15) == 0 && ldg == k) {
    switch (k / 16) {
#define CASE_GATHER(NC) case NC: gather_fixed##NC(rows, n, G); return;
      FIXED_CASES(CASE_GATHER)
#undef CASE_GATHER
    default: break;
    }
  }
  uint32_t nc = (k + 15) / 16;
  uint32_t ncg = (uint32_t)(ldg / 16);
  for (size_t t = 0; t < n; t++) {
    if (t + GATHER_AHEAD < n) {
      const char *p = (const char *)row_at(rows, t + GATHER_AHEAD);
      for (uint32_t off = 0; off < k * 4u; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    }
    const float *src = row_at(rows, t);
    float *g = G + t * ldg;
    for (uint32_t c = 0; c < nc; c++)
      _mm512_storeu_ps(g + 16 * c, _mm512_maskz_loadu_ps(chunk_mask(c, nc, k), src + 16 * c));
    for (uint32_t c = nc; c < ncg; c++) _mm512_storeu_ps(g + 16 * c, _mm512_setzero_ps());
  }
}

/* One 8-row tile of A, NC column vectors wide (NC <= 3: 24 accumulators). */
#define SYRK_TILE(NC)                                                                     \
  static void syrk_tile##NC(const float *G, const float *H, size_t n, uint32_t kp,        \
                            uint32_t r, uint32_t col, float *A, size_t lda) {             \
    __m512 acc[8][NC];                                                                    \
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                                   \
        _Pragma("GCC unroll 3") for (int j = 0; j < NC; j++)                              \
            acc[i][j] = _mm512_loadu_ps(A + (r + i) * lda + col + 16 * j);                \
    for (size_t t = 0; t < n; t++) {                                                      \
      const float *g = G + t * kp + r, *h = H + t * kp + col;                             \
      __m512 hv[NC];                                                                      \
      _Pragma("GCC unroll 3") for (int j = 0; j < NC; j++) hv[j] =                        \
          _mm512_loadu_ps(h + 16 * j);                                                    \
      _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {                               \
        __m512 gi = _mm512_set1_ps(g[i]);                                                 \
        _Pragma("GCC unroll 3") for (int j = 0; j < NC; j++) acc[i][j] =                  \
            _mm512_fmadd_ps(gi, hv[j], acc[i][j]);                                        \
      }                                                                                   \
    }                                                                                     \
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                                   \
        _Pragma("GCC unroll 3") for (int j = 0; j < NC; j++)                              \
            _mm512_storeu_ps(A + (r + i) * lda + col + 16 * j, acc[i][j]);                \
  }
SYRK_TILE(1)
SYRK_TILE(2)
SYRK_TILE(3)

void cofi__k_syrk_acc(const float *G, const float *H, size_t n, uint32_t kp, uint32_t r0,
                      uint32_t r1, float *A, size_t lda) {
  uint32_t nc = kp / 16;
  for (uint32_t r = r0; r < r1; r += 8) {
    uint32_t c = r / 16;
    /* widest tiles first; a remainder of 1 is done as 2 + 2 when possible
     * (two-wide tiles load less per multiply-add than one-wide) */
    while (c < nc) {
      uint32_t left = nc - c;
      if (left >= 3 && left != 4) {
        syrk_tile3(G, H, n, kp, r, 16 * c, A, lda);
        c += 3;
      } else if (left >= 2) {
        syrk_tile2(G, H, n, kp, r, 16 * c, A, lda);
        c += 2;
      } else {
        syrk_tile1(G, H, n, kp, r, 16 * c, A, lda);
        c += 1;
      }
    }
  }
}

/* Right-looking Cholesky in panels of 4 rows: factor the panel's rows, then
 * subtract their rank-4 contribution from every row below in one pass
 * (loads and stores of a trailing row are shared by 4 multiply-adds). The
 * trailing update works on whole 16-float vectors from the vector holding
 * the diagonal, so it also writes a few entries left of the diagonal:
 * those belong to the scratch lower triangle. */
int cofi__k_cholesky(float *A, size_t lda, uint32_t k) {
  for (uint32_t j0 = 0; j0 < k; j0 += 4) {
    uint32_t jb = k - j0 < 4 ? k - j0 : 4;
    for (uint32_t j = j0; j < j0 + jb; j++) {
      float *Uj = A + j * lda;
      float d = Uj[j];
      if (!(d > 0) || !isfinite(d)) return -1;
      float ujj = sqrtf(d), inv = 1.0f / ujj;
      Uj[j] = ujj;
      for (uint32_t c = j + 1; c < k; c++) Uj[c] *= inv;
      for (uint32_t i = j + 1; i < j0 + jb; i++) {
        float f = Uj[i];
        float *Ui = A + i * lda;
        for (uint32_t c = i; c < k; c++) Ui[c] -= f * Uj[c];
      }
    }
    if (j0 + jb >= k) break;
    const float *P[4];
    for (uint32_t p = 0; p < 4; p++) P[p] = A + (j0 + (p < jb ? p : 0)) * lda;
    for (uint32_t i = j0 + jb; i < k; i++) {
      float *Ui = A + i * lda;
      __m512 f[4];
#pragma GCC unroll 4
      for (uint32_t p = 0; p < 4; p++) f[p] = _mm512_set1_ps(p < jb ? P[p][i] : 0.0f);
      uint32_t c0 = i & ~15u;
      for (uint32_t c = c0; c < k; c += 16) {
        __mmask16 m = k - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - c)) - 1);
        __m512 u = _mm512_maskz_loadu_ps(m, Ui + c);
        __m512 s = _mm512_mul_ps(f[0], _mm512_maskz_loadu_ps(m, P[0] + c));
        s = _mm512_fmadd_ps(f[1], _mm512_maskz_loadu_ps(m, P[1] + c), s);
        s = _mm512_fmadd_ps(f[2], _mm512_maskz_loadu_ps(m, P[2] + c), s);
        s = _mm512_fmadd_ps(f[3], _mm512_maskz_loadu_ps(m, P[3] + c), s);
        _mm512_mask_storeu_ps(Ui + c, m, _mm512_sub_ps(u, s));
      }
    }
  }
  return 0;
}

void cofi__k_chol_solve(const float *U, size_t lda, uint32_t k, const float *b, float *x) {
  if (x != b) memmove(x, b, k * sizeof *x);
  /* U^T z = b, column by column: z_j final, then removed from the rest */
  for (uint32_t j = 0; j < k; j++) {
    const float *Uj = U + j * lda;
    float z = x[j] / Uj[j];
    x[j] = z;
    __m512 zv = _mm512_set1_ps(-z);
    for (uint32_t c = (j + 1) & ~15u; c < k; c += 16) {
      uint32_t lo = c < j + 1 ? j + 1 - c : 0;
      __mmask16 m = k - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - c)) - 1);
      m &= (__mmask16)(0xFFFFu << lo);
      __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
      _mm512_mask_storeu_ps(x + c, m, _mm512_fmadd_ps(zv, _mm512_maskz_loadu_ps(m, Uj + c), xv));
    }
  }
  /* U x = z, row by row from the bottom */
  for (uint32_t i = k; i-- > 0;) {
    const float *Ui = U + i * lda;
    __m512 acc = _mm512_setzero_ps();
    for (uint32_t c = (i + 1) & ~15u; c < k; c += 16) {
      uint32_t lo = c < i + 1 ? i + 1 - c : 0;
      __mmask16 m = k - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - c)) - 1);
      m &= (__mmask16)(0xFFFFu << lo);
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, Ui + c), _mm512_maskz_loadu_ps(m, x + c),
                            acc);
    }
    x[i] = (x[i] - _mm512_reduce_add_ps(acc)) / Ui[i];
  }
}
#endif

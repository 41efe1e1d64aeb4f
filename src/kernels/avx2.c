/*
 * kernels/avx2.c — the AVX2 + FMA kernel set (Intel Haswell and later,
 * AMD Zen 1-3: most cloud servers without AVX-512). Compiled with
 * -mavx2 -mfma (and -mno-avx512f, so that it stays an honest AVX2 build
 * even under -march=native on an AVX-512 machine); kernels.c runs it only
 * on CPUs that have both.
 *
 * The same designs as avx512.c, cut to 8-float registers and 16 of them:
 *
 * - Dot products (gemv, rank1_pass, dot) keep cofi__dot's 16 lanes as two
 *   registers per row (lanes 0-7 and 8-15) and reduce them in cofi__dot's
 *   order: (lo + hi), then the two 128-bit halves, then (w0 + w2) +
 *   (w1 + w3), four rows at once through one 4 x 4 transpose. So scores
 *   equal cofi__dot's bit for bit, as in every set.
 * - rank1_pass: 8 rows per block (two 4-row dot groups), their 8
 *   coefficients broadcast from memory, then out += sum c_t y_t over the
 *   8 rows, 8 columns at a time in two chains.
 * - The matrix products (syrk_acc, gemm, the Cholesky's trailing updates)
 *   share a 4-row x 24-column register tile: 12 accumulators, three
 *   vector loads and four broadcasts per step.
 * - The Cholesky factors 8 rows at a time (the 8 x 8 diagonal block and
 *   the panel's triangular solve in registers).
 * - The int8 scan has no VPDPBUSD: each 16 bytes of the panel (4 items x
 *   4 factors) are sign-extended to 16 bits and multiplied by the query's
 *   bytes, zero-extended, with VPMADDWD, whose 32-bit pair sums are exact
 *   (|q| <= 127, u <= 255); the pairs are added with one VPHADDD per 8
 *   items. The integer sums are the same exact integers VNNI forms, and
 *   the float steps after them are avx512.c's, so the bounds are
 *   bit-identical to the AVX-512 set's. (VPMADDUBSW would need half the
 *   instructions but saturates at 16 bits: 2 x 255 x 127 > 32767.)
 *
 * Every summation order depends only on the arguments, never on threads.
 */
#include "kernels/impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* A row of zeros standing in for the missing rows of a last, partial
 * block (its contribution is exactly zero). */
static const float zero_row[COFI_MAX_FACTORS + 16] __attribute__((aligned(64)));

/* mask_tab + 8 - n: the first n of 8 lanes (n in 0..8). */
static const int32_t mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i lanes_below(int64_t n) {
  n = n < 0 ? 0 : n > 8 ? 8 : n;
  return _mm256_loadu_si256((const __m256i *)(mask_tab + 8 - n));
}

/* ---- dot products in cofi__dot's order ---------------------------------- */

/* acc[2i], acc[2i+1] += lanes 0-7, 8-15 of rows rp[0..3] times v, over
 * the k columns (the last chunk masked). */
FORCE_INLINE void dots4(const float *const *rp, uint32_t k, const float *v, __m256 *acc) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
  uint32_t full = k / 16, rest = k & 15, c = 0;
  for (; c < full; c++) {
    __m256 vl = _mm256_loadu_ps(v + 16 * c), vh = _mm256_loadu_ps(v + 16 * c + 8);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      acc[2 * i] = _mm256_fmadd_ps(_mm256_loadu_ps(rp[i] + 16 * c), vl, acc[2 * i]);
      acc[2 * i + 1] = _mm256_fmadd_ps(_mm256_loadu_ps(rp[i] + 16 * c + 8), vh, acc[2 * i + 1]);
    }
  }
  if (rest) {
    __m256i ml = lanes_below(rest), mh = lanes_below((int64_t)rest - 8);
    const float *vc = v + 16 * c;
    __m256 vl = _mm256_maskload_ps(vc, ml);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
      acc[2 * i] = _mm256_fmadd_ps(_mm256_maskload_ps(rp[i] + 16 * c, ml), vl, acc[2 * i]);
    if (rest > 8) {
      __m256 vh = _mm256_maskload_ps(vc + 8, mh);
#pragma GCC unroll 4
      for (int i = 0; i < 4; i++)
        acc[2 * i + 1] =
            _mm256_fmadd_ps(_mm256_maskload_ps(rp[i] + 16 * c + 8, mh), vh, acc[2 * i + 1]);
    }
  }
}

/* The same for 4 contiguous rows at a stride of exactly 16 NC floats: every
 * load is base + constant. */
FORCE_INLINE void dots4_fixed(const float *base, const float *v, __m256 *acc, const int NC) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int c = 0; c < NC; c++) {
    __m256 vl = _mm256_loadu_ps(v + 16 * c), vh = _mm256_loadu_ps(v + 16 * c + 8);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      acc[2 * i] = _mm256_fmadd_ps(_mm256_loadu_ps(base + (i * NC + c) * 16), vl, acc[2 * i]);
      acc[2 * i + 1] =
          _mm256_fmadd_ps(_mm256_loadu_ps(base + (i * NC + c) * 16 + 8), vh, acc[2 * i + 1]);
    }
  }
}

/* The 4 dot products of dots4's accumulators, lane i = row i. Per row:
 * s = lo + hi (l_q + l_q+8), w = halves added (+ l_q+4 + l_q+12), then
 * (w0 + w2) + (w1 + w3): cofi__dot's order. */
FORCE_INLINE __m128 reduce4(const __m256 *acc) {
  __m128 w[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    __m256 s = _mm256_add_ps(acc[2 * i], acc[2 * i + 1]);
    w[i] = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  }
  _MM_TRANSPOSE4_PS(w[0], w[1], w[2], w[3]); /* w[q] = lane q of rows 0..3 */
  return _mm_add_ps(_mm_add_ps(w[0], w[2]), _mm_add_ps(w[1], w[3]));
}

static float dot_avx2(const float *a, const float *b, uint32_t k) {
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
  uint32_t c = 0;
  for (; c + 16 <= k; c += 16) {
    lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), lo);
    hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + c + 8), _mm256_loadu_ps(b + c + 8), hi);
  }
  if (c < k) {
    uint32_t rest = k - c;
    __m256i ml = lanes_below(rest);
    lo = _mm256_fmadd_ps(_mm256_maskload_ps(a + c, ml), _mm256_maskload_ps(b + c, ml), lo);
    if (rest > 8) {
      __m256i mh = lanes_below((int64_t)rest - 8);
      hi = _mm256_fmadd_ps(_mm256_maskload_ps(a + c + 8, mh), _mm256_maskload_ps(b + c + 8, mh),
                           hi);
    }
  }
  __m256 s = _mm256_add_ps(lo, hi);
  __m128 w = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  __m128 x = _mm_add_ps(w, _mm_movehl_ps(w, w)); /* w0 + w2, w1 + w3 */
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}

/* Blocks ahead whose rows are prefetched when rows are picked by index. */
#define PF_ROWS 8

static inline void prefetch_rows(const cofi__rows *R, size_t a, size_t b, uint32_t k) {
  for (size_t t = a; t < b; t++) {
    const char *p = (const char *)(R->base + (size_t)R->idx[t] * R->ld);
    for (uint32_t off = 0; off < k * 4u; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
  }
}

/* Row pointers of rows [t0, t0 + 4) (the zero row past n); prefetches
 * the rows PF_ROWS ahead when rows are picked by index. */
static inline size_t rows4(const cofi__rows *R, size_t n, size_t t0, uint32_t k,
                           const float **rp) {
  size_t nb = n - t0 < 4 ? n - t0 : 4;
  for (size_t i = 0; i < 4; i++) rp[i] = i < nb ? row_at(R, t0 + i) : zero_row;
  if (R->idx) {
    size_t a = t0 + PF_ROWS, b = a + 4;
    if (t0 == 0) a = 4;
    if (b > n) b = n;
    prefetch_rows(R, a, b, k);
  }
  return nb;
}

/* The factor counts with specialized contiguous kernels (k = 16 .. 256). */
#define FIXED_CASES(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(10) X(12) X(16)

/* How many leading rows (a multiple of 8) the fixed kernels can take. */
static inline size_t fixed_rows(const cofi__rows *R, size_t n, uint32_t k) {
  if (R->idx || (k & 15) || R->ld != k) return 0;
  switch (k / 16) {
#define CASE_OK(NC) case NC:
    FIXED_CASES(CASE_OK)
#undef CASE_OK
    return n & ~(size_t)7;
  default:
    return 0;
  }
}

/* ---- gemv ----------------------------------------------------------------- */

FORCE_INLINE void gemv_fixed(const float *base, size_t n, const float *v, float *out,
                             const int NC) {
  __m256 acc[8];
  for (size_t t = 0; t < n; t += 4) {
    dots4_fixed(base + t * 16 * NC, v, acc, NC);
    _mm_storeu_ps(out + t, reduce4(acc));
  }
}
#define GEMV_FN(NC)                                                                        \
  static void gemv_fixed##NC(const float *base, size_t n, const float *v, float *out) {    \
    gemv_fixed(base, n, v, out, NC);                                                       \
  }
FIXED_CASES(GEMV_FN)

static void gemv_general(const cofi__rows *rows, size_t n, uint32_t k, const float *v,
                         float *out) {
  const float *rp[4];
  __m256 acc[8];
  for (size_t t0 = 0; t0 < n; t0 += 4) {
    size_t nb = rows4(rows, n, t0, k, rp);
    dots4(rp, k, v, acc);
    __m128 s = reduce4(acc);
    if (nb == 4) _mm_storeu_ps(out + t0, s);
    else {
      float tmp[4];
      _mm_storeu_ps(tmp, s);
      memcpy(out + t0, tmp, nb * sizeof *out);
    }
  }
}

static void gemv_avx2(const cofi__rows *rows, size_t n, uint32_t k, const float *v,
                      float *out) {
  size_t nf = fixed_rows(rows, n, k);
  if (nf) {
    switch (k / 16) {
#define CASE_GEMV(NC) case NC: gemv_fixed##NC(rows->base, nf, v, out); break;
      FIXED_CASES(CASE_GEMV)
#undef CASE_GEMV
    default: break;
    }
  }
  cofi__rows rest = {.base = rows->base + (rows->idx ? 0 : nf * rows->ld), .ld = rows->ld,
                     .idx = rows->idx ? rows->idx + nf : NULL};
  gemv_general(&rest, n - nf, k, v, out + nf);
}

/* ---- rank1_pass ----------------------------------------------------------- */

/* out[0..k) += sum_{i<8} cbuf[i] y_i, two chains (even and odd rows). */
FORCE_INLINE void axpy8(const float *const *yp, const float *cbuf, uint32_t k, float *out) {
  __m256 b[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) b[i] = _mm256_broadcast_ss(cbuf + i);
  uint32_t j = 0;
  for (; j + 8 <= k; j += 8) {
    __m256 o0 = _mm256_loadu_ps(out + j);
    __m256 o1 = _mm256_mul_ps(b[1], _mm256_loadu_ps(yp[1] + j));
    o0 = _mm256_fmadd_ps(b[0], _mm256_loadu_ps(yp[0] + j), o0);
#pragma GCC unroll 3
    for (int i = 2; i < 8; i += 2) {
      o0 = _mm256_fmadd_ps(b[i], _mm256_loadu_ps(yp[i] + j), o0);
      o1 = _mm256_fmadd_ps(b[i + 1], _mm256_loadu_ps(yp[i + 1] + j), o1);
    }
    _mm256_storeu_ps(out + j, _mm256_add_ps(o0, o1));
  }
  if (j < k) {
    __m256i m = lanes_below(k - j);
    __m256 o0 = _mm256_maskload_ps(out + j, m);
    __m256 o1 = _mm256_mul_ps(b[1], _mm256_maskload_ps(yp[1] + j, m));
    o0 = _mm256_fmadd_ps(b[0], _mm256_maskload_ps(yp[0] + j, m), o0);
#pragma GCC unroll 3
    for (int i = 2; i < 8; i += 2) {
      o0 = _mm256_fmadd_ps(b[i], _mm256_maskload_ps(yp[i] + j, m), o0);
      o1 = _mm256_fmadd_ps(b[i + 1], _mm256_maskload_ps(yp[i + 1] + j, m), o1);
    }
    _mm256_maskstore_ps(out + j, m, _mm256_add_ps(o0, o1));
  }
}

/* The coefficients of 4 rows with dots s and values r. */
static inline __m128 coef4(__m128 s, __m128 rv, const float cf[4]) {
  __m128 p0 = _mm_set1_ps(cf[0]), p1 = _mm_set1_ps(cf[1]);
  __m128 q0 = _mm_set1_ps(cf[2]), q1 = _mm_set1_ps(cf[3]);
  return _mm_fmadd_ps(_mm_fmadd_ps(q1, rv, q0), s, _mm_fmadd_ps(p1, rv, p0));
}

/* The 8 sums of acc[0..7]'s lanes, lane i = acc[i] (any order within a
 * row: rank1_pass promises no particular rounding, only determinism). */
FORCE_INLINE __m256 reduce8(const __m256 *acc) {
  __m256 t0 = _mm256_hadd_ps(acc[0], acc[1]), t1 = _mm256_hadd_ps(acc[2], acc[3]);
  __m256 t2 = _mm256_hadd_ps(acc[4], acc[5]), t3 = _mm256_hadd_ps(acc[6], acc[7]);
  __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3); /* rows 0-3 | 0-3, 4-7 | 4-7 */
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* 8 contiguous rows at a stride of 16 NC floats per block: one register
 * of partial sums per row (the dot products need not follow cofi__dot's
 * order here), reduced 8 at once; then out += sum c_t y_t over the same 8
 * rows, now in L1. Per row that is 4 NC multiply-adds each way and about
 * 2.5 shuffles, against 6 for the bit-exact 4-row reduction of gemv. */
FORCE_INLINE void rank1_fixed(const float *base, size_t n, const float *r, const float cf[4],
                              const float *v, float *out, const int NC) {
  const __m256 p0 = _mm256_set1_ps(cf[0]), p1 = _mm256_set1_ps(cf[1]);
  const __m256 q0 = _mm256_set1_ps(cf[2]), q1 = _mm256_set1_ps(cf[3]);
  float cbuf[8] __attribute__((aligned(32)));
  for (size_t t = 0; t < n; t += 8) {
    const float *blk = base + t * 16 * NC;
    __m256 acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
#pragma GCC unroll 32
    for (int c = 0; c < 2 * NC; c++) {
      __m256 vv = _mm256_loadu_ps(v + 8 * c);
#pragma GCC unroll 8
      for (int i = 0; i < 8; i++)
        acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(blk + i * 16 * NC + 8 * c), vv, acc[i]);
    }
    __m256 sv = reduce8(acc), rv = _mm256_loadu_ps(r + t);
    _mm256_store_ps(cbuf, _mm256_fmadd_ps(_mm256_fmadd_ps(q1, rv, q0), sv,
                                          _mm256_fmadd_ps(p1, rv, p0)));
    const float *yp[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) yp[i] = blk + i * 16 * NC;
    axpy8(yp, cbuf, 16 * NC, out);
  }
}
#define RANK1_FN(NC)                                                                       \
  static void rank1_fixed##NC(const float *base, size_t n, const float *r, const float cf[4], \
                              const float *v, float *out) {                                \
    rank1_fixed(base, n, r, cf, v, out, NC);                                               \
  }
FIXED_CASES(RANK1_FN)

static void rank1_general(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                          const float cf[4], const float *v, float *out) {
  const float *rp[8];
  __m256 acc[8];
  float cbuf[8] __attribute__((aligned(32)));
  for (size_t t0 = 0; t0 < n; t0 += 8) {
    for (int h = 0; h < 2; h++) {
      size_t t = t0 + 4 * (size_t)h;
      float rr[4] = {0, 0, 0, 0};
      size_t nb = t < n ? rows4(rows, n, t, k, rp + 4 * h) : 0;
      if (!nb)
        for (int i = 0; i < 4; i++) rp[4 * h + i] = zero_row;
      if (nb) memcpy(rr, r + t, nb * sizeof *rr);
      /* rows past n: zero rows, so their coefficient (finite) adds 0 */
      dots4(rp + 4 * h, k, v, acc);
      _mm_store_ps(cbuf + 4 * h, coef4(reduce4(acc), _mm_loadu_ps(rr), cf));
    }
    axpy8(rp, cbuf, k, out);
  }
}

static void rank1_pass_avx2(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                            const float cf[4], const float *v, float *out) {
  size_t nf = fixed_rows(rows, n, k);
  if (nf) {
    switch (k / 16) {
#define CASE_RANK1(NC) case NC: rank1_fixed##NC(rows->base, nf, r, cf, v, out); break;
      FIXED_CASES(CASE_RANK1)
#undef CASE_RANK1
    default: break;
    }
  }
  cofi__rows rest = {.base = rows->base + (rows->idx ? 0 : nf * rows->ld), .ld = rows->ld,
                     .idx = rows->idx ? rows->idx + nf : NULL};
  rank1_general(&rest, n - nf, k, r + nf, cf, v, out);
}

/* ---- symv ----------------------------------------------------------------- */

/* out = S v + shift v, as sum_c v[c] S[c][.] (S symmetric): rows of S
 * stream contiguously and there is no horizontal sum. Columns in blocks
 * of 4 vectors, two accumulator sets (even and odd c). */
static void symv_avx2(const float *S, size_t lds, uint32_t k, float shift, const float *v,
                      float *out) {
  uint32_t nc = (k + 7) / 8;
  for (uint32_t cb = 0; cb < nc; cb += 4) {
    __m256i m[4];
    __m256 a[4], b[4];
    int nj = nc - cb < 4 ? (int)(nc - cb) : 4;
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      m[j] = lanes_below((int64_t)k - 8 * ((int64_t)cb + j));
      a[j] = _mm256_setzero_ps();
      b[j] = _mm256_setzero_ps();
    }
    const float *col = S + 8 * (size_t)cb;
    uint32_t c = 0;
    if (nj == 4 && 8 * (cb + 4) <= k) { /* whole vectors: plain loads */
      for (; c + 2 <= k; c += 2) {
        __m256 v0 = _mm256_broadcast_ss(v + c), v1 = _mm256_broadcast_ss(v + c + 1);
        const float *s0 = col + c * lds, *s1 = s0 + lds;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
          a[j] = _mm256_fmadd_ps(v0, _mm256_loadu_ps(s0 + 8 * j), a[j]);
          b[j] = _mm256_fmadd_ps(v1, _mm256_loadu_ps(s1 + 8 * j), b[j]);
        }
      }
    } else {
      for (; c + 2 <= k; c += 2) {
        __m256 v0 = _mm256_broadcast_ss(v + c), v1 = _mm256_broadcast_ss(v + c + 1);
        const float *s0 = col + c * lds, *s1 = s0 + lds;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
          a[j] = _mm256_fmadd_ps(v0, _mm256_maskload_ps(s0 + 8 * j, m[j]), a[j]);
          b[j] = _mm256_fmadd_ps(v1, _mm256_maskload_ps(s1 + 8 * j, m[j]), b[j]);
        }
      }
    }
    if (c < k) {
      __m256 v0 = _mm256_broadcast_ss(v + c);
      const float *s0 = col + c * lds;
#pragma GCC unroll 4
      for (int j = 0; j < 4; j++)
        a[j] = _mm256_fmadd_ps(v0, _mm256_maskload_ps(s0 + 8 * j, m[j]), a[j]);
    }
    __m256 sh = _mm256_set1_ps(shift);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      if (j >= nj) break;
      size_t off = 8 * ((size_t)cb + j);
      __m256 vv = _mm256_maskload_ps(v + off, m[j]);
      _mm256_maskstore_ps(out + off, m[j], _mm256_fmadd_ps(sh, vv, _mm256_add_ps(a[j], b[j])));
    }
  }
}

/* ---- gather --------------------------------------------------------------- */

/* Rows ahead that the gather prefetches: enough misses in flight to cover
 * memory latency when the rows come from DRAM. */
#define GATHER_AHEAD 16

static void gather_avx2(const cofi__rows *rows, size_t n, uint32_t k, float *G, size_t ldg) {
  uint32_t full = k & ~7u;
  __m256i mt = lanes_below(k - full);
  for (size_t t = 0; t < n; t++) {
    if (rows->idx && t + GATHER_AHEAD < n) {
      const char *p = (const char *)row_at(rows, t + GATHER_AHEAD);
      for (uint32_t off = 0; off < k * 4u; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    }
    const float *src = row_at(rows, t);
    float *g = G + t * ldg;
    uint32_t j = 0;
    for (; j < full; j += 8) _mm256_storeu_ps(g + j, _mm256_loadu_ps(src + j));
    if (j < k) {
      _mm256_storeu_ps(g + j, _mm256_maskload_ps(src + j, mt));
      j += 8;
    }
    for (; j < ldg; j += 8) _mm256_storeu_ps(g + j, _mm256_setzero_ps());
  }
}

/* ---- register tiles: syrk_acc, gemm, the Cholesky's updates --------------- */

/* One 4-row tile of C, NC column vectors wide (NC <= 3: 12 accumulators):
 * C[r+i][col..] (+/-)= sum_t G[t][r+i] H[t][col..] for t < n, G and H with
 * row strides ldg, ldh. Each entry is summed in order t = 0, 1, ... (as in
 * avx512.c, so syrk_acc and gemm give the AVX-512 set's bits). */
#define TILE(NAME, NC, OP, LOAD)                                                          \
  static void NAME(const float *G, size_t ldg, const float *H, size_t ldh, size_t n,      \
                   uint32_t r, uint32_t col, float *A, size_t lda) {                      \
    __m256 acc[4][NC];                                                                    \
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)                                   \
        _Pragma("GCC unroll 3") for (int j = 0; j < NC; j++)                              \
            acc[i][j] = LOAD ? _mm256_loadu_ps(A + (r + i) * lda + col + 8 * j)           \
                             : _mm256_setzero_ps();                                       \
    for (size_t t = 0; t < n; t++) {                                                      \
      const float *g = G + t * ldg + r, *h = H + t * ldh + col;                           \
      __m256 hv[NC];                                                                      \
      _Pragma("GCC unroll 3") for (int j = 0; j < NC; j++) hv[j] =                        \
          _mm256_loadu_ps(h + 8 * j);                                                     \
      _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {                               \
        __m256 gi = _mm256_broadcast_ss(g + i);                                           \
        _Pragma("GCC unroll 3") for (int j = 0; j < NC; j++) acc[i][j] =                  \
            OP(gi, hv[j], acc[i][j]);                                                     \
      }                                                                                   \
    }                                                                                     \
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)                                   \
        _Pragma("GCC unroll 3") for (int j = 0; j < NC; j++)                              \
            _mm256_storeu_ps(A + (r + i) * lda + col + 8 * j, acc[i][j]);                 \
  }
TILE(tile_add1, 1, _mm256_fmadd_ps, 1)
TILE(tile_add2, 2, _mm256_fmadd_ps, 1)
TILE(tile_add3, 3, _mm256_fmadd_ps, 1)
TILE(tile_sub1, 1, _mm256_fnmadd_ps, 1)
TILE(tile_sub2, 2, _mm256_fnmadd_ps, 1)
TILE(tile_sub3, 3, _mm256_fnmadd_ps, 1)
TILE(tile_set1, 1, _mm256_fmadd_ps, 0)
TILE(tile_set2, 2, _mm256_fmadd_ps, 0)
TILE(tile_set3, 3, _mm256_fmadd_ps, 0)

typedef void tile_fn(const float *, size_t, const float *, size_t, size_t, uint32_t, uint32_t,
                     float *, size_t);
enum { ADD, SUB, SET };
static tile_fn *const tile_fns[3][3] = {{tile_add1, tile_add2, tile_add3},
                                       {tile_sub1, tile_sub2, tile_sub3},
                                       {tile_set1, tile_set2, tile_set3}};

/* Rows [r0, r1) (multiples of 4) of C; columns from vector c0(r) to nc
 * (8-float vectors), where c0 is 0, or with upper set the vector holding
 * the diagonal. Widest tiles first; 4 left is done as 2 + 2. */
static void tiles(const float *G, size_t ldg, const float *H, size_t ldh, size_t n, uint32_t r0,
                  uint32_t r1, uint32_t nc, int upper, int op, float *A, size_t lda) {
  for (uint32_t r = r0; r < r1; r += 4) {
    uint32_t c = upper ? r / 8 : 0;
    while (c < nc) {
      uint32_t left = nc - c, w = left >= 3 && left != 4 ? 3 : left >= 2 ? 2 : 1;
      tile_fns[op][w - 1](G, ldg, H, ldh, n, r, 8 * c, A, lda);
      c += w;
    }
  }
}

static void syrk_acc_avx2(const float *G, const float *H, size_t n, uint32_t kp, uint32_t r0,
                          uint32_t r1, float *A, size_t lda) {
  tiles(G, kp, H, kp, n, r0, (r1 + 3) & ~3u, kp / 8, 1, ADD, A, lda);
}

static void gemm_avx2(const float *At, size_t lda, const float *Bt, size_t ldb, size_t kd,
                      uint32_t m, uint32_t nn, float *C, size_t ldc) {
  tiles(At, lda, Bt, ldb, kd, 0, m, nn / 8, 0, SET, C, ldc);
}

/* ---- first_above ---------------------------------------------------------- */

static size_t first_above_avx2(const float *x, size_t n, float thr) {
  __m256 t = _mm256_set1_ps(thr);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) { /* four compares per test: most tiles have no hit */
    __m256 a = _mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_GT_OQ);
    __m256 b = _mm256_cmp_ps(_mm256_loadu_ps(x + i + 8), t, _CMP_GT_OQ);
    __m256 c = _mm256_cmp_ps(_mm256_loadu_ps(x + i + 16), t, _CMP_GT_OQ);
    __m256 d = _mm256_cmp_ps(_mm256_loadu_ps(x + i + 24), t, _CMP_GT_OQ);
    if (_mm256_movemask_ps(_mm256_or_ps(_mm256_or_ps(a, b), _mm256_or_ps(c, d)))) break;
  }
  for (; i + 8 <= n; i += 8) {
    int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), t, _CMP_GT_OQ));
    if (hit) return i + (size_t)__builtin_ctz((unsigned)hit);
  }
  while (i < n && !(x[i] > thr)) i++;
  return i;
}

/* ---- Cholesky ------------------------------------------------------------- */

/* Lane j of v. */
static inline float lane(__m256 v, uint32_t j) {
  return _mm256_cvtss_f32(_mm256_permutevar8x32_ps(v, _mm256_set1_epi32((int)j)));
}

/* Blocked left-looking Cholesky, 8 rows per block: a block of rows first
 * takes the contribution of every row factored before it in the register
 * tiles (most of the k^3/6 multiply-adds), then its 8 x 8 diagonal block
 * is factored in registers and the rest of its rows (the panel) solved
 * against it, 8 columns at a time, also in registers. The tiles write some
 * entries left of the diagonal and past k: scratch. Pivots as the
 * reference: u_jj = sqrt(d), then a division. */
static int cholesky_avx2(float *A, size_t lda, uint32_t k) {
  uint32_t kp = cofi__kpad(k), nc = kp / 8;
  float u_row[8][8] __attribute__((aligned(32))) = {{0}};
  float inv[8] = {0};
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (uint32_t j0 = 0; j0 < k; j0 += 8) {
    uint32_t nb = k - j0 < 8 ? k - j0 : 8;
    if (j0) tiles(A, lda, A, lda, j0, j0, j0 + 8, nc, 1, SUB, A, lda);
    __m256 D[8];
#pragma GCC unroll 8
    for (uint32_t i = 0; i < 8; i++)
      D[i] = i < nb ? _mm256_loadu_ps(A + (j0 + i) * lda + j0) : _mm256_setzero_ps();
#pragma GCC unroll 8
    for (uint32_t j = 0; j < 8; j++) {
      if (j >= nb) {
        inv[j] = 0;
        continue;
      }
      float d = lane(D[j], j);
      if (!(d > 0) || !isfinite(d)) return -1;
      float ujj = sqrtf(d);
      inv[j] = 1.0f / ujj;
      __m256 at_j = _mm256_castsi256_ps(_mm256_cmpeq_epi32(iota, _mm256_set1_epi32((int)j)));
      D[j] = _mm256_blendv_ps(_mm256_mul_ps(D[j], _mm256_set1_ps(inv[j])), _mm256_set1_ps(ujj),
                              at_j);
      _mm256_store_ps(u_row[j], D[j]);
#pragma GCC unroll 8
      for (uint32_t i = j + 1; i < 8; i++)
        D[i] = _mm256_fnmadd_ps(_mm256_broadcast_ss(&u_row[j][i]), D[j], D[i]);
    }
    __m256i md = lanes_below(nb);
#pragma GCC unroll 8
    for (uint32_t i = 0; i < 8; i++)
      if (i < nb) _mm256_maskstore_ps(A + (j0 + i) * lda + j0, md, D[i]);
    /* panel: U_JJ^T P = A[J][j0+8 ..] */
    for (uint32_t c = j0 + 8; c < k; c += 8) {
      __m256i m = lanes_below(k - c);
      __m256 P[8];
#pragma GCC unroll 8
      for (uint32_t i = 0; i < 8; i++)
        P[i] = i < nb ? _mm256_maskload_ps(A + (j0 + i) * lda + c, m) : _mm256_setzero_ps();
#pragma GCC unroll 8
      for (uint32_t j = 0; j < 8; j++) {
        P[j] = _mm256_mul_ps(P[j], _mm256_set1_ps(inv[j]));
#pragma GCC unroll 8
        for (uint32_t i = j + 1; i < 8; i++)
          P[i] = _mm256_fnmadd_ps(_mm256_broadcast_ss(&u_row[j][i]), P[j], P[i]);
      }
#pragma GCC unroll 8
      for (uint32_t i = 0; i < 8; i++)
        if (i < nb) _mm256_maskstore_ps(A + (j0 + i) * lda + c, m, P[i]);
    }
  }
  return 0;
}

/* Sum of the 8 lanes. */
static inline float hsum(__m256 v) {
  __m128 w = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  w = _mm_add_ps(w, _mm_movehl_ps(w, w));
  return _mm_cvtss_f32(_mm_add_ss(w, _mm_movehdup_ps(w)));
}

/* U^T z = b row by row of U (each found z_j removed from the unknowns
 * after it with one vector pass over row j), then U x = z with one dot
 * product per row, from the last. */
static void chol_solve_avx2(const float *U, size_t lda, uint32_t k, const float *b, float *x) {
  if (x != b) memmove(x, b, k * sizeof *x);
  for (uint32_t j = 0; j < k; j++) {
    const float *Uj = U + j * lda;
    float z = x[j] / Uj[j];
    x[j] = z;
    __m256 zv = _mm256_set1_ps(z);
    uint32_t c = j + 1;
    for (; c + 8 <= k; c += 8)
      _mm256_storeu_ps(x + c, _mm256_fnmadd_ps(zv, _mm256_loadu_ps(Uj + c), _mm256_loadu_ps(x + c)));
    if (c < k) {
      __m256i m = lanes_below(k - c);
      _mm256_maskstore_ps(x + c, m,
                          _mm256_fnmadd_ps(zv, _mm256_maskload_ps(Uj + c, m),
                                           _mm256_maskload_ps(x + c, m)));
    }
  }
  for (uint32_t i = k; i-- > 0;) {
    const float *Ui = U + i * lda;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    uint32_t c = i + 1;
    for (; c + 16 <= k; c += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(Ui + c), _mm256_loadu_ps(x + c), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(Ui + c + 8), _mm256_loadu_ps(x + c + 8), a1);
    }
    for (; c < k; c += 8) {
      __m256i m = lanes_below(k - c);
      a0 = _mm256_fmadd_ps(_mm256_maskload_ps(Ui + c, m), _mm256_maskload_ps(x + c, m), a0);
    }
    x[i] = (x[i] - hsum(_mm256_add_ps(a0, a1))) / Ui[i];
  }
}

/* ---- the int8 scan of the pruned search ----------------------------------- */

FORCE_INLINE float qscan_body(const cofi__qscan *s, size_t k, float *heap, float *hi, float *lo,
                              size_t *done, uint32_t groups) {
  const __m256 tv = _mm256_set1_ps(s->t), neg_inf = _mm256_set1_ps(-INFINITY);
  const __m256 c0 = _mm256_set1_ps(s->coef[0]), c1 = _mm256_set1_ps(s->coef[1]),
               c2 = _mm256_set1_ps(s->coef[2]), c3 = _mm256_set1_ps(s->coef[3]);
  const __m256i perm = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  /* the query's 4 bytes of each group as 4 16-bit words */
  uint64_t qw[COFI_MAX_FACTORS / 4 + 4];
  for (uint32_t g = 0; g < groups; g++) {
    uint64_t w = 0;
    for (int q = 0; q < 4; q++) w |= (uint64_t)((s->uq[g] >> (8 * q)) & 0xff) << (16 * q);
    qw[g] = w;
  }
  size_t have = 0;
  __m256 thr = neg_inf;
  float root = -INFINITY; /* heap[0] once the heap is full */
  size_t b = 0;
  for (; b < s->n_blocks; b++) {
    if (s->stop_coef * s->norm[b * 16] < root) break;
    const int8_t *blk = s->panel + b * (size_t)groups * 64;
    /* acc[h]: items 4h .. 4h+3, two 32-bit pair sums each */
    __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                      _mm256_setzero_si256()};
    for (uint32_t g = 0; g < groups; g++) {
      __m256i qv = _mm256_set1_epi64x((long long)qw[g]);
#pragma GCC unroll 4
      for (int h = 0; h < 4; h++) {
        __m256i p = _mm256_cvtepi8_epi16(
            _mm_load_si128((const __m128i *)(blk + (size_t)g * 64 + 16 * h)));
        acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(p, qv));
      }
    }
    __m256i qs[2] = {
        _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[0], acc[1]), perm),
        _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[2], acc[3]), perm)};
    int up = 0;
    float lv[16];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
      size_t o = b * 16 + 8 * (size_t)h;
      __m256i a32 = _mm256_sub_epi32(
          qs[h], _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(s->qsum + o)), 7));
      __m256 sc = _mm256_mul_ps(_mm256_loadu_ps(s->scale + o), tv);
      __m256 a = _mm256_mul_ps(_mm256_cvtepi32_ps(a32), sc);
      __m256 m = _mm256_fmadd_ps(c0, _mm256_loadu_ps(s->err + o),
                                 _mm256_fmadd_ps(c1, _mm256_loadu_ps(s->l1 + o),
                                                 _mm256_fmadd_ps(c2, _mm256_loadu_ps(s->norm + o),
                                                                 c3)));
      __m256i sk = _mm256_set1_epi32((s->skip[b] >> (8 * h)) & 0xff);
      __m256 keep =
          _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(sk, bit), _mm256_setzero_si256()));
      __m256 hv = _mm256_blendv_ps(neg_inf, _mm256_add_ps(a, m), keep);
      __m256 l = _mm256_blendv_ps(neg_inf, _mm256_sub_ps(a, m), keep);
      _mm256_storeu_ps(hi + o, hv);
      if (lo) _mm256_storeu_ps(lo + o, l);
      _mm256_storeu_ps(lv + 8 * h, l);
      up |= _mm256_movemask_ps(_mm256_cmp_ps(l, thr, _CMP_GT_OQ)) << (8 * h);
    }
    if (__builtin_expect(up != 0, 0) && k > 0) {
      for (unsigned u = (unsigned)up; u; u &= u - 1) fheap_push(heap, &have, k, lv[__builtin_ctz(u)]);
      if (have == k) {
        root = heap[0];
        thr = _mm256_set1_ps(root);
      }
    }
  }
  *done = b;
  return k > 0 && have == k ? heap[0] : -INFINITY;
}

float cofi__k_qscan_avx2(const cofi__qscan *s, size_t k, float *heap, float *hi, float *lo,
                         size_t *n_blocks_done) {
  switch (s->groups) { /* factors 16, 32, 64, 128 */
  case 4: return qscan_body(s, k, heap, hi, lo, n_blocks_done, 4);
  case 8: return qscan_body(s, k, heap, hi, lo, n_blocks_done, 8);
  case 16: return qscan_body(s, k, heap, hi, lo, n_blocks_done, 16);
  case 32: return qscan_body(s, k, heap, hi, lo, n_blocks_done, 32);
  default: return qscan_body(s, k, heap, hi, lo, n_blocks_done, s->groups);
  }
}

const cofi__kernels cofi__kernels_avx2 = {
    .name = "avx2",
    .fast_i8 = true,
    .dot = dot_avx2,
    .gemv = gemv_avx2,
    .rank1_pass = rank1_pass_avx2,
    .symv = symv_avx2,
    .gather = gather_avx2,
    .syrk_acc = syrk_acc_avx2,
    .gemm = gemm_avx2,
    .first_above = first_above_avx2,
    .qscan = cofi__k_qscan_avx2,
    .cholesky = cholesky_avx2,
    .chol_solve = chol_solve_avx2,
};
#endif

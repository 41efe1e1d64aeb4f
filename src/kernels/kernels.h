/*
 * kernels/kernels.h — the dense numerical kernels under the ALS solvers,
 * the serving-side derived data and scoring: the lowest layer above core,
 * used by model/, train/ and recommend/, using none of them.
 *
 * Each kernel exists once per instruction set, in one file compiled with
 * that set's target flags (BLIS's and simdjson's layout):
 *
 *   reference.c  the spec: obvious loops, any CPU, any compiler
 *   generic.c    GCC/Clang vector extensions (16-float vectors): NEON on
 *                aarch64, SSE2 on a baseline x86-64 build
 *   avx2.c       AVX2 + FMA (Haswell, AMD Zen 1-3): 8-float vectors
 *   avx512.c     AVX-512 F/BW/VL (+ VNNI for the int8 scan)
 *   kernels.c   one table of function pointers per set; the best set the
 *                CPU runs is picked once, at first use (pthread_once)
 *
 * The environment variable COFI_KERNELS (reference, generic, avx2, avx512)
 * forces a set, for tests and benchmarks; asking for one this CPU cannot
 * run, or an unknown name, keeps the best set the CPU runs, and
 * cofi_kernel_set_refused() (cofi.h) says so. cofi_kernel_set() names the
 * active set.
 *
 * The callers use the cofi__k_* names below, which go through the active
 * table; tests reach every set's table with cofi__kernels_named.
 */
#ifndef COFI_KERNELS_H
#define COFI_KERNELS_H

#include "cofi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Dot product in 16 independent lanes, each a chain of fused multiply-adds,
 * then a fixed pairwise tree over the lanes. That order is exactly the one
 * every kernel set's gemv (and dot) uses, so a score computed here equals,
 * bit for bit, the score the scoring kernels return under any set; and it
 * is fixed, so results do not depend on threads. (Compiled without FMA
 * instructions, __builtin_fmaf is a correctly rounded library call: the
 * same bits, slower; hot loops use cofi__k_dot instead.) */
static inline float cofi__dot(const float *restrict a, const float *restrict b,
                              uint32_t k) {
  float acc[16] = {0};
  uint32_t j = 0;
  for (; j + 16 <= k; j += 16)
    for (uint32_t l = 0; l < 16; l++) acc[l] = __builtin_fmaf(a[j + l], b[j + l], acc[l]);
  for (uint32_t l = 0; j + l < k; l++) acc[l] = __builtin_fmaf(a[j + l], b[j + l], acc[l]);
  float w[4];
  for (uint32_t q = 0; q < 4; q++) w[q] = (acc[q] + acc[q + 8]) + (acc[q + 4] + acc[q + 12]);
  return (w[0] + w[2]) + (w[1] + w[3]);
}
static inline void cofi__axpy(float a, const float *restrict x,
                              float *restrict y, uint32_t k) {
  for (uint32_t j = 0; j < k; j++) y[j] += a * x[j];
}

/* The factor count rounded up to whole 16-float vectors. */
static inline uint32_t cofi__kpad(uint32_t k) { return (k + 15u) & ~15u; }

/* A set of factor rows, either a contiguous block or rows picked from a
 * factor matrix by index: row t is base + (idx ? idx[t] : t) * ld, with k
 * valid floats. Nothing past k of a row is read. */
typedef struct cofi__rows {
  const float *base;
  size_t ld;           /* floats between consecutive rows */
  const uint32_t *idx; /* [n] or NULL */
} cofi__rows;

/* One pass of the pruned search (recommend/prune.c) over 16-item blocks
 * of int8 factors. For item i = 16 b + l:
 *   a_i      = (float)(sum_j uq_j q_ij - 128 qsum[i]) * (scale[i] * t)
 *   margin_i = coef[0] err[i] + coef[1] l1[i] + coef[2] norm[i] + coef[3]
 *   hi[i]    = a_i + margin_i, or -inf when bit l of skip[b] is set
 *   lo[i]    = a_i - margin_i, likewise (only when lo is not NULL)
 * and returns the k-th largest lo over the items not skipped (-inf when
 * fewer than k; heap: [k] scratch). The scan stops before block b once
 * the heap holds k entries and stop_coef norm[16 b] is below its root
 * (norms descend along the panel; INFINITY never stops):
 * *n_blocks_done says where. uq holds the query's bytes (unsigned,
 * four to a word), the panel the items' (signed, -127..127), groups =
 * factors padded to 16, over 4. The per-item arrays and skip cover all
 * n_blocks blocks. The integer sums are exact in every set; the optimized
 * versions may round the margin differently (fused multiply-adds);
 * prune.c's bound allows for it. */
typedef struct cofi__qscan {
  const int8_t *panel; /* [n_blocks x groups x 64], 64-byte aligned */
  size_t n_blocks;
  uint32_t groups;
  const int32_t *qsum;
  const float *scale, *err, *l1, *norm; /* [16 n_blocks] each */
  const uint32_t *uq;                   /* [groups] */
  float t;
  float coef[4];
  float stop_coef;
  const uint16_t *skip; /* [n_blocks] */
} cofi__qscan;

/* One kernel set. Every entry is deterministic: its summation order
 * depends only on the arguments (and the set), never on threads. */
typedef struct cofi__kernels {
  const char *name; /* "reference", "generic", "avx2", "avx512" */
  /* The int8 scan is fast in this set (pruning pays; otherwise the model
   * builds no int8 panel and queries take the exact path). */
  bool fast_i8;
  /* cofi__dot's value, bit for bit. */
  float (*dot)(const float *a, const float *b, uint32_t k);
  /* out[t] = row_t . v for t < n (cofi__dot's value, bit for bit). */
  void (*gemv)(const cofi__rows *rows, size_t n, uint32_t k, const float *v, float *out);
  /* The fused pass of the CG solver over a row's factor vectors y_t with
   * values r_t: out += sum_t (cf[0] + cf[1] r_t + (cf[2] + cf[3] r_t) (y_t . v)) y_t.
   * With cf = {0, 0, 1 - alpha0, alpha} it adds sum_t (c_t - alpha0)(y_t.v) y_t
   * (the sparse part of A v); with {1, alpha, alpha0 - 1, -alpha} it adds
   * b - (that part of A v), i.e. the residual. out holds k floats. */
  void (*rank1_pass)(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                     const float cf[4], const float *v, float *out);
  /* out = S v + shift v for a symmetric S [k x k] with row stride lds. */
  void (*symv)(const float *S, size_t lds, uint32_t k, float shift, const float *v,
               float *out);
  /* Copies rows into a block G [n x ldg] (ldg >= k, multiple of 16), zero
   * padding each row from k to ldg. */
  void (*gather)(const cofi__rows *rows, size_t n, uint32_t k, float *G, size_t ldg);
  /* A[r][c] += sum_{t<n} G[t][r] H[t][c] for rows r in [r0, r1) and at
   * least the columns c >= r below kp (the upper triangle; entries left of
   * the diagonal may be written too). G, H: [n x kp], kp a multiple of 16,
   * r0 a multiple of 8, r1 <= kp. A: [kp x lda]. */
  void (*syrk_acc)(const float *G, const float *H, size_t n, uint32_t kp, uint32_t r0,
                   uint32_t r1, float *A, size_t lda);
  /* C[i][j] = sum_{p<kd} At[p][i] Bt[p][j] for i < m, j < nn: a matrix
   * product with both operands packed transposed (p-major), as scoring
   * packs users and items. m a multiple of 8, nn of 16; lda, ldb, ldc in
   * floats. Each entry is summed in order p = 0, 1, ... */
  void (*gemm)(const float *At, size_t lda, const float *Bt, size_t ldb, size_t kd,
               uint32_t m, uint32_t nn, float *C, size_t ldc);
  /* The first i < n with x[i] > thr (n when none): the top-k scan's test. */
  size_t (*first_above)(const float *x, size_t n, float thr);
  /* The pruned search's int8 pass (cofi__qscan above). */
  float (*qscan)(const cofi__qscan *s, size_t k, float *heap, float *hi, float *lo,
                 size_t *n_blocks_done);
  /* In-place Cholesky A = U^T U of the upper k x k triangle of A
   * [kpad(k) x lda], lda >= kpad(k) (row-major; the lower triangle and the
   * rows and columns past k are scratch). 0, or -1 when A is not
   * numerically positive definite (a pivot <= 0, NaN or infinite). */
  int (*cholesky)(float *A, size_t lda, uint32_t k);
  /* x = A^-1 b from U as cholesky leaves it; x may alias b. */
  void (*chol_solve)(const float *U, size_t lda, uint32_t k, const float *b, float *x);
} cofi__kernels;

/* The sets compiled into this build (a set's table exists only where its
 * instruction set can be compiled; on other targets the symbol is absent). */
extern const cofi__kernels cofi__kernels_reference;
extern const cofi__kernels cofi__kernels_generic;

/* The active set: chosen once, thread-safe. */
const cofi__kernels *cofi__kernels_init(void);
extern const cofi__kernels *cofi__kernels_active_ptr;
static inline const cofi__kernels *cofi__kernels_active(void) {
  const cofi__kernels *t = __atomic_load_n(&cofi__kernels_active_ptr, __ATOMIC_ACQUIRE);
  return t ? t : cofi__kernels_init();
}
/* The set of that name if this build has it and this CPU runs it, else
 * NULL. */
const cofi__kernels *cofi__kernels_named(const char *name);
/* The names of all sets, best last, NULL-terminated (tests loop over it
 * with cofi__kernels_named). */
extern const char *const cofi__kernel_names[];
/* Test hook: makes the named set active (not thread-safe: call it while
 * nothing else runs kernels). COFI_OK, or COFI_ERR_INVALID when the set is
 * missing or this CPU cannot run it. */
int cofi__kernels_use(const char *name);

/* The reference versions by name: the spec the tests hold every set to. */
void cofi__k_gemv_ref(const cofi__rows *rows, size_t n, uint32_t k, const float *v, float *out);
void cofi__k_rank1_pass_ref(const cofi__rows *rows, size_t n, uint32_t k, const float *r,
                            const float cf[4], const float *v, float *out);
void cofi__k_symv_ref(const float *S, size_t lds, uint32_t k, float shift, const float *v,
                      float *out);
void cofi__k_gather_ref(const cofi__rows *rows, size_t n, uint32_t k, float *G, size_t ldg);
void cofi__k_syrk_acc_ref(const float *G, const float *H, size_t n, uint32_t kp, uint32_t r0,
                          uint32_t r1, float *A, size_t lda);
void cofi__k_gemm_ref(const float *At, size_t lda, const float *Bt, size_t ldb, size_t kd,
                      uint32_t m, uint32_t nn, float *C, size_t ldc);
size_t cofi__k_first_above_ref(const float *x, size_t n, float thr);
float cofi__k_qscan_ref(const cofi__qscan *s, size_t k, float *heap, float *hi, float *lo,
                        size_t *n_blocks_done);
int cofi__k_cholesky_ref(float *A, size_t lda, uint32_t k);
void cofi__k_chol_solve_ref(const float *U, size_t lda, uint32_t k, const float *b, float *x);

/* The active set's kernels, under the names the callers use. */
static inline float cofi__k_dot(const float *a, const float *b, uint32_t k) {
  return cofi__kernels_active()->dot(a, b, k);
}
static inline void cofi__k_gemv(const cofi__rows *rows, size_t n, uint32_t k, const float *v,
                                float *out) {
  cofi__kernels_active()->gemv(rows, n, k, v, out);
}
static inline void cofi__k_rank1_pass(const cofi__rows *rows, size_t n, uint32_t k,
                                      const float *r, const float cf[4], const float *v,
                                      float *out) {
  cofi__kernels_active()->rank1_pass(rows, n, k, r, cf, v, out);
}
static inline void cofi__k_symv(const float *S, size_t lds, uint32_t k, float shift,
                                const float *v, float *out) {
  cofi__kernels_active()->symv(S, lds, k, shift, v, out);
}
static inline void cofi__k_gather(const cofi__rows *rows, size_t n, uint32_t k, float *G,
                                  size_t ldg) {
  cofi__kernels_active()->gather(rows, n, k, G, ldg);
}
static inline void cofi__k_syrk_acc(const float *G, const float *H, size_t n, uint32_t kp,
                                    uint32_t r0, uint32_t r1, float *A, size_t lda) {
  cofi__kernels_active()->syrk_acc(G, H, n, kp, r0, r1, A, lda);
}
static inline void cofi__k_gemm(const float *At, size_t lda, const float *Bt, size_t ldb,
                                size_t kd, uint32_t m, uint32_t nn, float *C, size_t ldc) {
  cofi__kernels_active()->gemm(At, lda, Bt, ldb, kd, m, nn, C, ldc);
}
static inline size_t cofi__k_first_above(const float *x, size_t n, float thr) {
  return cofi__kernels_active()->first_above(x, n, thr);
}
static inline float cofi__k_qscan(const cofi__qscan *s, size_t k, float *heap, float *hi,
                                  float *lo, size_t *n_blocks_done) {
  return cofi__kernels_active()->qscan(s, k, heap, hi, lo, n_blocks_done);
}
static inline int cofi__k_cholesky(float *A, size_t lda, uint32_t k) {
  return cofi__kernels_active()->cholesky(A, lda, k);
}
static inline void cofi__k_chol_solve(const float *U, size_t lda, uint32_t k, const float *b,
                                      float *x) {
  cofi__kernels_active()->chol_solve(U, lda, k, b, x);
}

/* scale * Y^T Y into gram [k x k] (full), Y [n x k] row-major, through
 * single-threaded BLAS: deterministic for any threads (kernels/gram.c). */
void cofi__gram(const float *Y, uint32_t n, uint32_t k, float scale, float *gram);

#endif

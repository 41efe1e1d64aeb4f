/*
 * kernels/impl.h — helpers shared by the kernel sets' files (not by their
 * callers). Static inline, so each set's file compiles them with its own
 * target flags.
 */
#ifndef COFI_KERNELS_IMPL_H
#define COFI_KERNELS_IMPL_H

#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

#define FORCE_INLINE static inline __attribute__((always_inline))

static inline const float *row_at(const cofi__rows *R, size_t t) {
  return R->base + (R->idx ? (size_t)R->idx[t] : t) * R->ld;
}

/* A min-heap of the k largest floats seen; heap[0] is the k-th largest
 * once n reaches k. */
static inline void fheap_push(float *heap, size_t *n, size_t k, float v) {
  size_t i;
  if (*n < k) {
    i = (*n)++;
    while (i > 0 && heap[(i - 1) / 2] > v) {
      heap[i] = heap[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    heap[i] = v;
    return;
  }
  if (!(v > heap[0])) return;
  i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    float mv = v;
    if (l < k && heap[l] < mv) { m = l; mv = heap[l]; }
    if (r < k && heap[r] < mv) m = r;
    if (m == i) break;
    heap[i] = heap[m];
    i = m;
  }
  heap[i] = v;
}

/* Tables of the ISA files (present when the build targets x86-64). */
extern const cofi__kernels cofi__kernels_avx2;
extern const cofi__kernels cofi__kernels_avx512;
/* The AVX-512 float kernels with the AVX2 int8 scan, for AVX-512 CPUs
 * without VNNI (Skylake-SP). */
extern const cofi__kernels cofi__kernels_avx512_novnni;
/* The AVX2 set's int8 scan (exact integer sums, no VNNI needed). */
float cofi__k_qscan_avx2(const cofi__qscan *s, size_t k, float *heap, float *hi, float *lo,
                         size_t *n_blocks_done);

#endif

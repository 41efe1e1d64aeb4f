/*
 * kernels/gram.c — scale * Y^T Y for a whole factor matrix (the Gram
 * matrix of fold-in and of the objective), through BLAS.
 */
#include "kernels/kernels.h"

#include <cblas.h>

void cofi__gram(const float *Y, uint32_t n, uint32_t k, float scale, float *gram) {
  /* Single-threaded BLAS: the summation order is fixed, hence reproducible. */
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)n, scale, Y, (int)k, 0.0f,
              gram, (int)k);
  for (uint32_t r = 0; r < k; r++)
    for (uint32_t c = 0; c < r; c++) gram[(size_t)r * k + c] = gram[(size_t)c * k + r];
}

/*
 * platform.c — clocks and thread counts.
 */
#include "internal.h"

#include <omp.h>
#include <time.h>

double cofi__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint32_t cofi__threads(uint32_t requested) {
  if (requested) return requested;
  int n = omp_get_num_procs();
  return n > 0 ? (uint32_t)n : 1;
}

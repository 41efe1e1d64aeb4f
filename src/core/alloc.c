/*
 * alloc.c — the library's allocator, with a failure-injection hook so tests
 * can prove every public call survives the n-th allocation failing.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic uint64_t fail_at;   /* 0 = never fail */
static _Atomic uint64_t attempts;  /* allocations since the last hook call */

uint64_t cofi__alloc_fail_after(uint64_t n) {
  uint64_t seen = atomic_exchange(&attempts, 0);
  atomic_store(&fail_at, n);
  return seen;
}

static bool should_fail(void) {
  uint64_t a = atomic_fetch_add(&attempts, 1) + 1;
  uint64_t f = atomic_load(&fail_at);
  return f != 0 && a >= f;
}

void *cofi__malloc(size_t n) {
  if (should_fail()) return NULL;
  return malloc(n ? n : 1);
}

void *cofi__calloc(size_t count, size_t size) {
  if (should_fail()) return NULL;
  return calloc(count ? count : 1, size ? size : 1);
}

void *cofi__realloc(void *p, size_t n) {
  if (should_fail()) return NULL;
  return realloc(p, n ? n : 1);
}

void *cofi__aligned_alloc(size_t n) {
  if (should_fail()) return NULL;
  void *p = NULL;
  if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
  return p;
}

void cofi__free(void *p) { free(p); }
void cofi__aligned_free(void *p) { free(p); }

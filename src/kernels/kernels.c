/*
 * kernels/kernels.c — the dispatch: which kernel set runs: the best this CPU supports,
 * chosen once at first use, or the one COFI_KERNELS names.
 *
 * Preference, best first: avx512 (F + BW + VL + FMA; with VNNI its own
 * int8 scan, without it the AVX2 one), avx2 (AVX2 + FMA), generic (vector
 * extensions: NEON on aarch64, SSE2 on x86-64), reference. The choice is
 * published with one release store after pthread_once, so every thread
 * sees one set from its first kernel call on.
 *
 * COFI_KERNELS=reference|generic|avx2|avx512 forces a set. The library
 * never prints nor fails for it: a name this build does not know, or a set
 * this CPU cannot run, leaves the best set active, and
 * cofi_kernel_set_refused() says why. The CLI refuses to start then (a
 * benchmark must not print a figure under the wrong name); an embedding
 * program can do the same or go on.
 */
#include "kernels/impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define COFI_X86 1
#endif

const char *const cofi__kernel_names[] = {"reference", "generic",
#if defined(COFI_X86)
                                          "avx2",      "avx512",
#endif
                                          NULL};

const cofi__kernels *cofi__kernels_active_ptr;
static char refused[160]; /* written once, before the set is published */

const cofi__kernels *cofi__kernels_named(const char *name) {
  if (!name) return NULL;
  if (!strcmp(name, "reference")) return &cofi__kernels_reference;
  if (!strcmp(name, "generic")) return &cofi__kernels_generic;
#if defined(COFI_X86)
  __builtin_cpu_init();
  if (!strcmp(name, "avx2"))
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &cofi__kernels_avx2
                                                                          : NULL;
  if (!strcmp(name, "avx512")) {
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx2") ||
        !__builtin_cpu_supports("fma"))
      return NULL;
    return __builtin_cpu_supports("avx512vnni") ? &cofi__kernels_avx512
                                                : &cofi__kernels_avx512_novnni;
  }
#endif
  return NULL;
}

static const cofi__kernels *best(void) {
  const cofi__kernels *t = NULL;
  for (size_t i = 0; cofi__kernel_names[i]; i++) {
    const cofi__kernels *c = cofi__kernels_named(cofi__kernel_names[i]);
    if (c) t = c;
  }
  return t;
}

static void choose(void) {
  const cofi__kernels *t = best();
  const char *want = getenv("COFI_KERNELS");
  if (want && *want) {
    const cofi__kernels *w = cofi__kernels_named(want);
    bool known = false;
    for (size_t i = 0; cofi__kernel_names[i]; i++) known |= !strcmp(want, cofi__kernel_names[i]);
    if (w) t = w;
    else
      snprintf(refused, sizeof refused, "COFI_KERNELS=%.40s: %s", want,
               known ? "this CPU does not run that kernel set"
                     : "unknown kernel set (reference, generic, avx2, avx512)");
  }
  __atomic_store_n(&cofi__kernels_active_ptr, t, __ATOMIC_RELEASE);
}

const cofi__kernels *cofi__kernels_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, choose);
  return __atomic_load_n(&cofi__kernels_active_ptr, __ATOMIC_ACQUIRE);
}

int cofi__kernels_use(const char *name) {
  const cofi__kernels *t = cofi__kernels_named(name);
  if (!t) return COFI_ERR_INVALID;
  cofi__kernels_init(); /* so a later first use does not override it */
  __atomic_store_n(&cofi__kernels_active_ptr, t, __ATOMIC_RELEASE);
  return COFI_OK;
}

const char *cofi_kernel_set(void) { return cofi__kernels_active()->name; }

const char *cofi_kernel_set_refused(void) {
  cofi__kernels_active();
  return refused[0] ? refused : NULL;
}

/*
 * recommend_bench.c — users per second when recommending to every user of
 * a model: the batched path (cofi__recommend_batch: blocked products with
 * a fused top-k), one cofi_recommend_user call per user (the pruned
 * search of recommend/prune.c where the build has it), and the same calls
 * through the exact path (every item scored in float32, then a partial
 * selection), interleaved in one run so that machine noise hits all alike.
 * The single-user paths are also checked to give identical answers.
 *
 * usage: recommend_bench MODEL [--k 10] [--threads 2] [--reps 3]
 *                              [--single-users N]
 * The single-user paths are timed on the first N users (default 20000);
 * all filter each user's training items.
 */
#include "internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: recommend_bench MODEL [--k 10] [--threads 2] [--reps 3] "
                    "[--single-users N]\n");
    return 2;
  }
  uint32_t k = 10, threads = 2;
  int reps = 3;
  size_t n_single = 20000;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--k")) k = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--threads")) threads = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--reps")) reps = (int)strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--single-users")) n_single = strtoull(argv[i + 1], NULL, 10);
    else { fprintf(stderr, "recommend_bench: unknown option %s\n", argv[i]); return 2; }
  }
  if (k < 1 || threads < 1 || reps < 1) {
    fprintf(stderr, "recommend_bench: --k, --threads and --reps must be >= 1\n");
    return 2;
  }
  cofi_diag d = {0};
  cofi_model *m;
  if (cofi_model_open(argv[1], &m, &d)) {
    fprintf(stderr, "recommend_bench: %s\n", d.message);
    return 1;
  }
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  size_t nu = info.n_users;
  if (n_single > nu) n_single = nu;
  printf("model: %u users x %u items, %u factors; k = %u, %u threads\n", info.n_users,
         info.n_items, info.factors, k, threads);
  cofi_scored *out = malloc(sizeof *out * nu * k);
  uint32_t *n_out = malloc(sizeof *n_out * nu);
  if (!out || !n_out) return 1;
  for (int rep = 0; rep < reps; rep++) {
    double t0 = cofi__now();
    int rc = cofi__recommend_batch(m, NULL, nu, k, 1, threads, out, n_out);
    double t1 = cofi__now();
    if (rc) {
      fprintf(stderr, "recommend_bench: batch: %s\n", cofi_error_message(rc));
      return 1;
    }
    /* the same users one call at a time, the threads splitting them:
     * pass 0 the public call, pass 1 the exact path */
    double single[2];
    int failed = 0, differ = 0;
    for (int pass = 0; pass < 2; pass++) {
      double ts = cofi__now();
#pragma omp parallel num_threads(threads)
      {
        cofi_workspace *ws = cofi_workspace_new();
        cofi_scored *o = malloc(sizeof *o * k);
        cofi_recommend_options opt = cofi_recommend_options_default();
        opt.k = k;
#pragma omp for schedule(dynamic, 256)
        for (size_t u = 0; u < n_single; u++) {
          size_t got;
          if (!ws || !o) {
            failed = 1;
            continue;
          }
          if (pass == 0) {
            if (cofi_recommend_user(m, ws, (uint32_t)u, &opt, o, &got)) failed = 1;
            memcpy(out + u * k, o, got * sizeof *o); /* kept for the check */
            n_out[u] = (uint32_t)got;
          } else {
            const uint32_t *seen;
            size_t n_seen = cofi_model_user_items(m, (uint32_t)u, &seen, NULL);
            uint32_t kk = k < info.n_items ? k : info.n_items;
            if (cofi__recommend_exact(m, ws, m->user_factors + u * info.factors, seen, n_seen,
                                      NULL, 0, kk, o, &got))
              failed = 1;
            if (got != n_out[u] || memcmp(o, out + u * k, got * sizeof *o)) differ = 1;
          }
        }
        free(o);
        cofi_workspace_free(ws);
      }
      single[pass] = cofi__now() - ts;
    }
    if (failed) {
      fprintf(stderr, "recommend_bench: single-user recommend failed\n");
      return 1;
    }
    if (differ) {
      fprintf(stderr, "recommend_bench: cofi_recommend_user and the exact path disagree\n");
      return 1;
    }
    printf("rep %d: batch %zu users in %.3fs = %.0f users/s | single %zu users: %.0f users/s "
           "(%.2f us each), exact path %.0f users/s (%.2f us each)\n",
           rep, nu, t1 - t0, (double)nu / (t1 - t0), n_single, (double)n_single / single[0],
           single[0] / (double)n_single * threads * 1e6, (double)n_single / single[1],
           single[1] / (double)n_single * threads * 1e6);
    fflush(stdout);
  }
  free(out);
  free(n_out);
  cofi_model_close(m);
  return 0;
}

/*
 * explain_bench.c — the cost of explaining: for every user of a model (or
 * the first N), the plain top-k (cofi_recommend_user) and the explained
 * top-k (the same call, then one cofi_explainer for the user and
 * cofi_explain with the top 3 contributions for each recommended item),
 * one thread, interleaved per user so machine noise hits both alike.
 * Each user's time is the best of the repetitions (robust to a loaded
 * machine); prints the median, 99th percentile and maximum over users, in
 * microseconds, and the longest history.
 *
 * usage: explain_bench MODEL [--k 10] [--users N] [--reps 3]
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double quantile(double *v, size_t n, double q) {
  qsort(v, n, sizeof *v, cmp_double);
  return v[(size_t)(q * (double)(n - 1))];
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: explain_bench MODEL [--k 10] [--users N] [--reps 3]\n");
    return 2;
  }
  uint32_t k = 10;
  size_t n_users = (size_t)-1;
  int reps = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--k")) k = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--users")) n_users = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--reps")) reps = (int)strtol(argv[i + 1], NULL, 10);
    else { fprintf(stderr, "explain_bench: unknown option %s\n", argv[i]); return 2; }
  }
  if (k < 1 || reps < 1) { fprintf(stderr, "explain_bench: --k and --reps must be >= 1\n"); return 2; }
  cofi_diag d = {0};
  cofi_model *m;
  if (cofi_model_open(argv[1], &m, &d)) { fprintf(stderr, "explain_bench: %s\n", d.message); return 1; }
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  if (n_users > info.n_users) n_users = info.n_users;
  printf("model: %u users x %u items, %u factors; k = %u, %zu users, kernels %s\n", info.n_users,
         info.n_items, info.factors, k, n_users, cofi_kernel_set());
  cofi_workspace *ws = cofi_workspace_new();
  cofi_scored *out = malloc(sizeof *out * k);
  double *plain = malloc(sizeof *plain * n_users), *expl = malloc(sizeof *expl * n_users);
  if (!ws || !out || !plain || !expl) return 1;
  cofi_recommend_options opt = cofi_recommend_options_default();
  opt.k = k;
  size_t longest = 0;
  for (size_t u = 0; u < n_users; u++) plain[u] = expl[u] = 1e300;
  for (int rep = 0; rep < reps; rep++) {
    for (size_t u = 0; u < n_users; u++) {
      size_t got;
      double t0 = cofi__now();
      if (cofi_recommend_user(m, ws, (uint32_t)u, &opt, out, &got)) return 1;
      double t1 = cofi__now();
      if (cofi_recommend_user(m, ws, (uint32_t)u, &opt, out, &got)) return 1;
      cofi_explainer *e;
      if (cofi_explainer_new_user(m, (uint32_t)u, &e)) return 1;
      cofi_contribution because[3];
      for (size_t i = 0; i < got; i++) {
        size_t nb;
        if (cofi_explain(e, out[i].index, 3, because, &nb, NULL)) return 1;
      }
      cofi_explainer_free(e);
      double t2 = cofi__now();
      if ((t1 - t0) * 1e6 < plain[u]) plain[u] = (t1 - t0) * 1e6;
      if ((t2 - t1) * 1e6 < expl[u]) expl[u] = (t2 - t1) * 1e6;
      const uint32_t *items;
      size_t hist = cofi_model_user_items(m, (uint32_t)u, &items, NULL);
      if (hist > longest) longest = hist;
    }
  }
  double pm = quantile(plain, n_users, 0.5), p99 = quantile(plain, n_users, 0.99);
  double em = quantile(expl, n_users, 0.5), e99 = quantile(expl, n_users, 0.99);
  printf("best of %d per user: plain top-%u median %.1f us p99 %.1f us max %.1f us; explained "
         "top-%u median %.1f us p99 %.1f us max %.1f us (longest history %zu)\n",
         reps, k, pm, p99, plain[n_users - 1], k, em, e99, expl[n_users - 1], longest);
  free(out); free(plain); free(expl);
  cofi_workspace_free(ws);
  cofi_model_close(m);
  return 0;
}

/*
 * parse_bench.c — times cofi_dataset_read on a log and prints the shape of
 * what it read (users, items, rows, distinct pairs, activity and popularity
 * quantiles), to check both the reader's speed and the synth generator's
 * realism on the same file.
 *
 * Build (from the project root, after building the library in build-data):
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/parse_bench.c \
 *       build-data/libcofi.a -lopenblas -fopenmp -lm -o build-data/parse_bench
 * Run:
 *   build-data/parse_bench FILE [--movielens] [--min-value V] [--stats]
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void quantiles(const char *what, uint32_t *c, size_t n) {
  qsort(c, n, sizeof *c, cmp_u32);
  printf("%-6s min %u  p10 %u  median %u  p90 %u  p99 %u  max %u\n", what, c[0],
         c[n / 10], c[n / 2], c[n * 9 / 10], c[n * 99 / 100], c[n - 1]);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: parse_bench FILE [--movielens] [--min-value V] [--stats]\n");
    return 2;
  }
  cofi_read_options o = cofi_read_options_default();
  bool stats = false;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--movielens")) o.format = COFI_FORMAT_MOVIELENS;
    else if (!strcmp(argv[i], "--stats")) stats = true;
    else if (!strcmp(argv[i], "--min-value") && i + 1 < argc) {
      o.has_min_value = 1;
      o.min_value = strtod(argv[++i], NULL);
    }
  }
  cofi_dataset *ds;
  cofi_diag d = {0};
  double t0 = cofi__now();
  int rc = cofi_dataset_read(argv[1], &o, &ds, &d);
  double t1 = cofi__now();
  if (rc) {
    fprintf(stderr, "%s:%llu: %s\n", d.file, (unsigned long long)d.line, d.message);
    return 1;
  }
  printf("read %zu rows, %zu users, %zu items in %.2f s\n",
         cofi_dataset_n_interactions(ds), cofi_dataset_n_users(ds),
         cofi_dataset_n_items(ds), t1 - t0);
  if (stats) {
    size_t n = ds->n, nu = ds->users.n, ni = ds->items.n;
    uint64_t *key = malloc(n * sizeof *key);
    uint32_t *uc = calloc(nu, sizeof *uc), *ic = calloc(ni, sizeof *ic);
    if (!key || !uc || !ic) return 1;
    for (size_t k = 0; k < n; k++) {
      key[k] = (uint64_t)ds->user[k] * ni + ds->item[k];
      uc[ds->user[k]]++;
      ic[ds->item[k]]++;
    }
    qsort(key, n, sizeof *key, cmp_u64);
    size_t distinct = n ? 1 : 0;
    for (size_t k = 1; k < n; k++) distinct += key[k] != key[k - 1];
    size_t back = 0; /* rows whose time goes back within a user run */
    for (size_t k = 1; k < n; k++)
      back += ds->user[k] == ds->user[k - 1] && ds->time[k] < ds->time[k - 1];
    printf("distinct pairs %zu, time going back within a user %zu\n", distinct, back);
    quantiles("users", uc, nu);
    quantiles("items", ic, ni);
    free(key);
    free(uc);
    free(ic);
  }
  cofi_dataset_free(ds);
  return 0;
}

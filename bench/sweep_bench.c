/*
 * sweep_bench.c — times the two half-sweeps of one ALS iteration (users
 * against item factors, items against user factors) separately, with the
 * library's row solver, for A/B experiments on the solver settings
 * (gathering on or off, solver, factors). Not the training driver: that
 * is timed by bench/train_bench.sh through `cofi train`.
 *
 * usage: sweep_bench DATA.csv [--factors K] [--solver cg|cholesky]
 *                    [--threads N] [--reps R] [--gather-bytes B,B,...]
 * Prints, per configuration and repetition (configurations interleaved,
 * so machine noise hits them alike): wall and CPU seconds of each side
 * (each including its Gram matrix). CPU seconds are the steadier measure
 * on a shared machine. --gather-bytes: the per-thread block size up to
 * which CG gathers a row (training uses 8 MiB). With HUGE=1 in the
 * environment the factor matrices get madvise(MADV_HUGEPAGE) (the
 * huge-page experiment of docs/performance.md). Rows are scheduled
 * dynamically 16 at a time, not by the trainer's equal-work chunks.
 */
#include "internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void half_sweep(const cofi__csr *R, float *X, const float *Y, uint32_t n_other,
                       uint32_t k, cofi_solver solver, size_t gather_rows, float *gram,
                       float *scratch, size_t per, int threads) {
  size_t kp = cofi__kpad(k);
  float *g = malloc(sizeof(float) * k * k);
  cofi__gram(Y, n_other, k, 1.0f, g);
  for (uint32_t r = 0; r < kp; r++)
    for (uint32_t c = 0; c < kp; c++)
      gram[r * kp + c] = r < k && c < k ? g[(size_t)r * k + c] : 0.0f;
  free(g);
  cofi__row_problem pr = {.gram = gram, .gram_ld = kp, .Y = Y, .k = k, .alpha = 1.0f,
                          .alpha0 = 1.0f, .lambda = 0.01f, .n_other = n_other,
                          .solver = solver, .cg_steps = 3, .gather_rows = gather_rows};
#pragma omp parallel num_threads(threads)
  {
    float *s = scratch + (size_t)omp_get_thread_num() * per;
#pragma omp for schedule(dynamic, 16)
    for (int64_t r = 0; r < (int64_t)R->n_rows; r++) {
      uint64_t b = R->indptr[r], e = R->indptr[r + 1];
      cofi__solve_row(&pr, R->indices + b, R->data + b, (size_t)(e - b), X + (size_t)r * k, s);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sweep_bench DATA.csv [--factors K] [--solver cg|cholesky] "
                    "[--threads N] [--reps R] [--gather-bytes B,B,...]\n");
    return 2;
  }
  uint32_t k = 64;
  int threads = 2, reps = 3;
  cofi_solver solver = COFI_SOLVER_CG;
  const char *gb = "8388608";
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--factors")) k = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--threads")) threads = (int)strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--reps")) reps = (int)strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--solver"))
      solver = !strcmp(argv[i + 1], "cholesky") ? COFI_SOLVER_CHOLESKY : COFI_SOLVER_CG;
    else if (!strcmp(argv[i], "--gather-bytes")) gb = argv[i + 1];
    else { fprintf(stderr, "sweep_bench: unknown option %s\n", argv[i]); return 2; }
  }
  if (k < 1 || k > COFI_MAX_FACTORS || threads < 1 || reps < 1) {
    fprintf(stderr, "sweep_bench: bad --factors, --threads or --reps\n");
    return 2;
  }
  size_t gathers[16];
  int n_cfg = 0;
  for (const char *p = gb; *p && n_cfg < 16;) {
    char *end;
    gathers[n_cfg++] = (size_t)strtoull(p, &end, 10);
    p = *end == ',' ? end + 1 : end;
    if (end == p && *end) break;
  }
  cofi_diag d = {0};
  cofi_dataset *ds;
  cofi_read_options ro = cofi_read_options_default();
  double t0 = cofi__now();
  if (cofi_dataset_read(argv[1], &ro, &ds, &d)) { fprintf(stderr, "%s\n", d.message); return 1; }
  double t1 = cofi__now();
  cofi__csr R, Rt;
  if (cofi__csr_from_dataset(ds, &R) || cofi__csr_transpose(&R, &Rt)) return 1;
  double t2 = cofi__now();
  printf("read %.2fs, csr+transpose %.2fs: %u users, %u items, %llu nnz\n", t1 - t0, t2 - t1,
         R.n_rows, R.n_cols, (unsigned long long)R.nnz);
  cofi_dataset_free(ds);
  size_t max_row = 0;
  for (uint32_t i = 0; i < Rt.n_rows; i++)
    if (Rt.indptr[i + 1] - Rt.indptr[i] > max_row) max_row = Rt.indptr[i + 1] - Rt.indptr[i];
  for (uint32_t i = 0; i < R.n_rows; i++)
    if (R.indptr[i + 1] - R.indptr[i] > max_row) max_row = R.indptr[i + 1] - R.indptr[i];
  size_t kp = cofi__kpad(k);
  float *X = cofi__aligned_alloc(sizeof(float) * R.n_rows * k);
  float *Y = cofi__aligned_alloc(sizeof(float) * R.n_cols * k);
  float *gram = cofi__aligned_alloc(sizeof(float) * kp * kp);
  if (getenv("HUGE")) {
    size_t a = ((uintptr_t)X + 4095) & ~(uintptr_t)4095, b = ((uintptr_t)(X + (size_t)R.n_rows * k)) & ~(uintptr_t)4095;
    if (madvise((void *)a, b - a, MADV_HUGEPAGE)) perror("madvise");
    a = ((uintptr_t)Y + 4095) & ~(uintptr_t)4095; b = ((uintptr_t)(Y + (size_t)R.n_cols * k)) & ~(uintptr_t)4095;
    if (madvise((void *)a, b - a, MADV_HUGEPAGE)) perror("madvise");
  }
  uint64_t s = 1;
  for (size_t i = 0; i < (size_t)R.n_rows * k; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    X[i] = (float)(s >> 40) * (0.01f / 16777216.0f);
  }
  for (size_t i = 0; i < (size_t)R.n_cols * k; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    Y[i] = (float)(s >> 40) * (0.01f / 16777216.0f);
  }
  openblas_set_num_threads(1);
  for (int rep = 0; rep < reps; rep++) {
    for (int c = 0; c < n_cfg; c++) {
      size_t rows = gathers[c] / (kp * sizeof(float));
      if (rows > max_row) rows = max_row;
      size_t per = (cofi__solve_row_scratch_gather(k, rows) + 15) & ~(size_t)15;
      float *scratch = cofi__aligned_alloc(sizeof(float) * per * (size_t)threads);
      double w0 = cofi__now(), c0 = cpu_now();
      half_sweep(&R, X, Y, R.n_cols, k, solver, rows, gram, scratch, per, threads);
      double w1 = cofi__now(), c1 = cpu_now();
      half_sweep(&Rt, Y, X, R.n_rows, k, solver, rows, gram, scratch, per, threads);
      double w2 = cofi__now(), c2 = cpu_now();
      printf("rep %d gather_bytes %zu (rows %zu): users %.3fs wall %.3fs cpu | items %.3fs "
             "wall %.3fs cpu | total %.3fs wall %.3fs cpu\n",
             rep, gathers[c], rows, w1 - w0, c1 - c0, w2 - w1, c2 - c1, w2 - w0, c2 - c0);
      fflush(stdout);
      cofi__aligned_free(scratch);
    }
  }
  cofi__aligned_free(X);
  cofi__aligned_free(Y);
  cofi__aligned_free(gram);
  cofi__csr_free(&R);
  cofi__csr_free(&Rt);
  return 0;
}

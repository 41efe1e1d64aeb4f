/*
 * mpi.c — cofi__comm over MPI_COMM_WORLD for `mpirun cofi train`
 * (docs/mpi.md). Factor rows travel as one derived datatype of k floats,
 * so counts stay rows (int) even when rows x k exceeds INT_MAX.
 */
#include "dist/mpi.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static cofi__mpi_stats stats;

static int mpi_allgather_rows(void *ctx, float *X, const uint32_t *first, uint32_t k) {
  (void)ctx;
  int size, rank;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int *counts = malloc(2 * (size_t)size * sizeof *counts), *displs = counts + size;
  if (!counts) return -1;
  for (int r = 0; r < size; r++) {
    if (first[r + 1] - first[r] > (uint32_t)INT_MAX || first[r] > (uint32_t)INT_MAX) {
      free(counts);
      return -1;
    }
    counts[r] = (int)(first[r + 1] - first[r]);
    displs[r] = (int)first[r];
  }
  MPI_Datatype row;
  int rc = MPI_Type_contiguous((int)k, MPI_FLOAT, &row);
  if (rc == MPI_SUCCESS) rc = MPI_Type_commit(&row);
  if (rc == MPI_SUCCESS) {
    rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, X, counts, displs, row,
                        MPI_COMM_WORLD);
    MPI_Type_free(&row);
  }
  if (rc == MPI_SUCCESS) {
    uint64_t row_bytes = (uint64_t)k * sizeof(float), mine = (uint64_t)counts[rank];
    uint64_t all = first[size] - first[0];
    stats.bytes_sent += mine * row_bytes * (uint64_t)(size - 1);
    stats.bytes_received += (all - mine) * row_bytes;
    stats.allgathers++;
  }
  free(counts);
  return rc == MPI_SUCCESS ? 0 : -1;
}

static int mpi_allreduce_max(void *ctx, int64_t *v, size_t n) {
  (void)ctx;
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (n > (size_t)INT_MAX) return -1;
  int rc = MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return -1;
  uint64_t bytes = (uint64_t)n * sizeof *v * (uint64_t)(size - 1);
  stats.bytes_sent += bytes;
  stats.bytes_received += bytes;
  stats.allreduces++;
  return 0;
}

/* ---- the input exchanges (counted apart: data_bytes_*) ---------------- */

static int mpi_allgatherv(void *ctx, const void *mine, size_t n, void **all, size_t *counts) {
  (void)ctx;
  int size, rank;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  *all = NULL;
  long long my = n > (size_t)INT_MAX ? -1 : (long long)n;
  long long *lens = malloc((size_t)size * sizeof *lens);
  int *cnt = malloc(2 * (size_t)size * sizeof *cnt), *displs = cnt ? cnt + size : NULL;
  if (!lens || !cnt) { free(lens); free(cnt); return -1; }
  int rc = MPI_Allgather(&my, 1, MPI_LONG_LONG, lens, 1, MPI_LONG_LONG, MPI_COMM_WORLD);
  size_t total = 0;
  for (int r = 0; r < size && rc == MPI_SUCCESS; r++) {
    if (lens[r] < 0 || total + (size_t)lens[r] > (size_t)INT_MAX) rc = MPI_ERR_COUNT;
    else { cnt[r] = (int)lens[r]; displs[r] = (int)total; total += (size_t)lens[r]; }
  }
  char *buf = rc == MPI_SUCCESS ? cofi__malloc(total ? total : 1) : NULL;
  int ok = buf != NULL, all_ok = 0;
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (rc == MPI_SUCCESS && !all_ok) rc = MPI_ERR_NO_MEM;
  if (rc == MPI_SUCCESS)
    rc = MPI_Allgatherv(mine, cnt[rank], MPI_BYTE, buf, cnt, displs, MPI_BYTE, MPI_COMM_WORLD);
  if (rc == MPI_SUCCESS) {
    for (int r = 0; r < size; r++) {
      counts[r] = (size_t)cnt[r];
      if (r != rank) stats.data_bytes_received += (uint64_t)cnt[r];
    }
    stats.data_bytes_sent += (uint64_t)n * (uint64_t)(size - 1);
    *all = buf;
  } else {
    cofi__free(buf);
  }
  free(lens);
  free(cnt);
  return rc == MPI_SUCCESS ? 0 : -1;
}

static int mpi_alltoallv(void *ctx, const void *send, const size_t *send_counts, size_t unit,
                         void **recv, size_t *recv_counts) {
  (void)ctx;
  int size, rank;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  *recv = NULL;
  int *sc = malloc(4 * (size_t)size * sizeof *sc);
  if (!sc || unit == 0 || unit > (size_t)INT_MAX) { free(sc); return -1; }
  int *sd = sc + size, *rcn = sd + size, *rd = rcn + size;
  int rc = MPI_SUCCESS;
  size_t at = 0;
  for (int r = 0; r < size; r++) {
    size_t units = send_counts[r] / unit;
    if (units > (size_t)INT_MAX || at / unit > (size_t)INT_MAX) rc = MPI_ERR_COUNT;
    sc[r] = (int)units;
    sd[r] = (int)(at / unit);
    at += send_counts[r];
  }
  /* a count too large on one rank must still take part in the collectives */
  int bad = rc != MPI_SUCCESS, any_bad = 0;
  MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any_bad) { free(sc); return -1; }
  rc = MPI_Alltoall(sc, 1, MPI_INT, rcn, 1, MPI_INT, MPI_COMM_WORLD);
  size_t total = 0;
  for (int r = 0; r < size && rc == MPI_SUCCESS; r++) {
    if (total > (size_t)INT_MAX) rc = MPI_ERR_COUNT;
    rd[r] = (int)total;
    total += (size_t)rcn[r];
  }
  char *buf = rc == MPI_SUCCESS ? cofi__malloc(total ? total * unit : 1) : NULL;
  int ok = buf != NULL, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (rc == MPI_SUCCESS && !all_ok) rc = MPI_ERR_NO_MEM;
  MPI_Datatype el;
  if (rc == MPI_SUCCESS) rc = MPI_Type_contiguous((int)unit, MPI_BYTE, &el);
  if (rc == MPI_SUCCESS) {
    rc = MPI_Type_commit(&el);
    if (rc == MPI_SUCCESS)
      rc = MPI_Alltoallv(send, sc, sd, el, buf, rcn, rd, el, MPI_COMM_WORLD);
    MPI_Type_free(&el);
  }
  if (rc == MPI_SUCCESS) {
    for (int r = 0; r < size; r++) {
      recv_counts[r] = (size_t)rcn[r] * unit;
      if (r != rank) {
        stats.data_bytes_sent += (uint64_t)sc[r] * unit;
        stats.data_bytes_received += (uint64_t)rcn[r] * unit;
      }
    }
    *recv = buf;
  } else {
    cofi__free(buf);
  }
  free(sc);
  return rc == MPI_SUCCESS ? 0 : -1;
}

static int mpi_allreduce_sum(void *ctx, uint64_t *v, size_t n) {
  (void)ctx;
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (size_t at = 0; at < n;) {
    size_t m = n - at < ((size_t)1 << 30) ? n - at : ((size_t)1 << 30);
    if (MPI_Allreduce(MPI_IN_PLACE, v + at, (int)m, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD) !=
        MPI_SUCCESS)
      return -1;
    at += m;
  }
  uint64_t bytes = (uint64_t)n * sizeof *v * (uint64_t)(size - 1);
  stats.data_bytes_sent += bytes;
  stats.data_bytes_received += bytes;
  return 0;
}

int cofi__mpi_init(cofi__comm *comm, char *err, size_t err_size) {
  int provided = 0, rank = 0, size = 1;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    snprintf(err, err_size, "MPI_Init_thread failed");
    return COFI_ERR_IO;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (provided < MPI_THREAD_FUNNELED) {
    snprintf(err, err_size, "the MPI library does not allow threads (MPI_THREAD_FUNNELED)");
    MPI_Finalize();
    return COFI_ERR_IO;
  }
  *comm = (cofi__comm){.rank = (uint32_t)rank, .size = (uint32_t)size, .ctx = NULL,
                       .allgather_rows = mpi_allgather_rows,
                       .allreduce_max = mpi_allreduce_max, .allgatherv = mpi_allgatherv,
                       .alltoallv = mpi_alltoallv, .allreduce_sum = mpi_allreduce_sum};
  return COFI_OK;
}

cofi__mpi_stats cofi__mpi_get_stats(void) { return stats; }

void cofi__mpi_finalize(void) {
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
}

void cofi__mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

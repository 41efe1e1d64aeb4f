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
                       .allreduce_max = mpi_allreduce_max};
  return COFI_OK;
}

cofi__mpi_stats cofi__mpi_get_stats(void) { return stats; }

void cofi__mpi_finalize(void) {
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
}

void cofi__mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

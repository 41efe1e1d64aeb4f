/*
 * mpi.h — the MPI side of `mpirun -np N cofi train` (docs/mpi.md): the
 * collectives the trainer needs (cofi__comm, internal.h) over
 * MPI_COMM_WORLD, with a count of the bytes this rank exchanged. Compiled
 * only with COFI_MPI, into the cofi tool alone: libcofi never links MPI.
 */
#ifndef COFI_DIST_MPI_H
#define COFI_DIST_MPI_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes this rank handed to and got from the other ranks through MPI: the
 * payload of each collective as if it were direct sends (allgather: this
 * rank's rows to each other rank, everyone else's rows to it; allreduce:
 * its n values to each other rank and theirs to it). Wire bytes depend on
 * the MPI library's algorithm (a ring forwards), not counted here. */
typedef struct cofi__mpi_stats {
  uint64_t bytes_sent, bytes_received;
  uint64_t allgathers, allreduces;
  /* the input exchanges before training (ID maps, rows to their owners,
   * the user rows to rank 0 for the model file): cost model in docs/mpi.md */
  uint64_t data_bytes_sent, data_bytes_received;
} cofi__mpi_stats;

/* MPI_Init_thread (FUNNELED: OpenMP threads compute, the main thread
 * talks) and comm over MPI_COMM_WORLD. COFI_OK, or COFI_ERR_IO with a
 * message in err. */
int cofi__mpi_init(cofi__comm *comm, char *err, size_t err_size);
/* The counts so far. */
cofi__mpi_stats cofi__mpi_get_stats(void);
/* MPI_Finalize (after a last barrier, so no rank leaves while others
 * still talk). */
void cofi__mpi_finalize(void);
/* Ends every rank of the job with this exit code (MPI_Abort): for a rank
 * that cannot take part in the agreed error path. */
void cofi__mpi_abort(int code);

#endif

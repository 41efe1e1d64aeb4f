/*
 * testutil.h — helpers shared by the cmocka unit tests.
 */
#ifndef COFI_TESTUTIL_H
#define COFI_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cofi.h"

/* A fresh temporary directory (removed by tu_rmdir); aborts the test on failure. */
char *tu_mkdtemp(void);
void tu_rmdir(const char *dir);
/* Writes len bytes to dir/name and returns the malloc'd path. */
char *tu_write_file(const char *dir, const char *name, const void *data, size_t len);
/* The whole file at path (malloc'd; *len its size); aborts the test on failure. */
unsigned char *tu_read_file(const char *path, size_t *len);
/* Path of a file under ../shared/data (from $COFI_SHARED), or NULL when absent. */
char *tu_shared_data(const char *rel);

/* Runs the group once under every kernel set this build has and this CPU
 * runs (src/kernels/: reference, generic, avx2, avx512), each made active
 * in turn, and names the sets it skips. Returns the failures summed. */
int tu_run_per_kernel_set(const char *group, const struct CMUnitTest *tests, size_t n);

#endif

/*
 * fuzz_util.h — helpers shared by the libFuzzer targets: handing fuzz input
 * to parsers that read a file by name, without touching the disk.
 */
#ifndef COFI_FUZZ_UTIL_H
#define COFI_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Replaces the contents of an in-memory file (memfd, created once per slot)
 * with data and returns a path naming it ("/proc/self/fd/N"). slot 0..3
 * lets one input feed several files. Aborts on failure: that is a harness
 * bug, not a finding. */
const char *fuzz_file(int slot, const uint8_t *data, size_t len);

/* Consumes one byte of the input as a selector (0 when empty). */
uint8_t fuzz_take(const uint8_t **data, size_t *len);

#endif

/*
 * fuzz_util.c — see fuzz_util.h. Files are memfds reused across runs: one
 * ftruncate + pwrite per input, so path-based parsers (the CSV reader opens
 * its file with open(2)) run at memory speed and nothing is left on disk.
 */
#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 4

const char *fuzz_file(int slot, const uint8_t *data, size_t len) {
  static int fds[SLOTS] = {-1, -1, -1, -1};
  static char paths[SLOTS][64];
  if (slot < 0 || slot >= SLOTS) abort();
  if (fds[slot] < 0) {
    fds[slot] = memfd_create("cofi-fuzz", MFD_CLOEXEC);
    if (fds[slot] < 0) { perror("memfd_create"); abort(); }
    snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
  }
  int fd = fds[slot];
  if (ftruncate(fd, 0) != 0) { perror("ftruncate"); abort(); }
  size_t off = 0;
  while (off < len) {
    ssize_t w = pwrite(fd, data + off, len - off, (off_t)off);
    if (w <= 0) { perror("pwrite"); abort(); }
    off += (size_t)w;
  }
  return paths[slot];
}

uint8_t fuzz_take(const uint8_t **data, size_t *len) {
  if (*len == 0) return 0;
  uint8_t b = **data;
  (*data)++;
  (*len)--;
  return b;
}

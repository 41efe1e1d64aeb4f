/*
 * share.c — one rank's byte range of an interaction file, for `mpirun cofi
 * train` (docs/mpi.md, Input per rank).
 *
 * The data bytes (after the header) are cut into N equal ranges; a rank
 * starts at the first line start at or after its cut (rank 0 at the first
 * data line) and reads up to the next rank's start, so the line that
 * straddles a cut belongs to the rank it started in. Line numbers in
 * messages are the file's: every rank counts the line ends of its range
 * (the csv reader's rule: LF, CRLF or a lone CR) and the counts are
 * exchanged (an exclusive prefix sum over an allgather) before parsing.
 * Each rank plans the columns from the same header (and first data row),
 * so the mapping is identical without an exchange.
 *
 * Limits (documented): a line end inside a quoted field must not fall on
 * a cut (the rank after it would start inside the quotes); a file whose
 * lines end with lone CRs has no LF to cut at, so rank 0 reads it whole.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK ((size_t)1 << 20)

typedef struct locate_ctx {
  const cofi__comm *comm;
  const char *path;
  char *buf;   /* [CHUNK] */
  bool called; /* locate took part in the agreement */
} locate_ctx;

/* Offset of the byte after the first LF at or after `from`, or size. */
static int next_line_start(int fd, char *buf, uint64_t from, uint64_t size, uint64_t *out) {
  if (!buf) return -1;
  uint64_t at = from;
  while (at < size) {
    size_t want = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
    ssize_t got = pread(fd, buf, want, (off_t)at);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    const char *lf = memchr(buf, '\n', (size_t)got);
    if (lf) { *out = at + (uint64_t)(lf - buf) + 1; return 0; }
    at += (uint64_t)got;
  }
  *out = size;
  return 0;
}

/* Line ends in [begin, end) (LF, CRLF, lone CR), or with stop_after > 0
 * the offset just after the stop_after-th line end from begin (in *ends
 * the number found when fewer). */
static int count_line_ends(int fd, char *buf, uint64_t begin, uint64_t end, uint64_t stop_after,
                           uint64_t *ends, uint64_t *stop_at) {
  if (!buf) return -1;
  uint64_t n = 0, at = begin;
  bool cr = false; /* the previous chunk ended with CR */
  *stop_at = end;
  while (at < end) {
    size_t want = end - at < CHUNK ? (size_t)(end - at) : CHUNK;
    ssize_t got = pread(fd, buf, want, (off_t)at);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    for (size_t i = 0; i < (size_t)got; i++) {
      char ch = buf[i];
      if (cr && ch != '\n') { /* a lone CR ended a line before this byte */
        n++;
        if (stop_after && n == stop_after) { *ends = n; *stop_at = at + i; return 0; }
      }
      cr = ch == '\r';
      if (ch == '\n') {
        n++;
        if (stop_after && n == stop_after) { *ends = n; *stop_at = at + i + 1; return 0; }
      }
    }
    at += (uint64_t)got;
  }
  if (cr) {
    n++; /* the range (or file) ends with a lone CR */
    if (stop_after && n == stop_after) { *ends = n; *stop_at = end; return 0; }
  }
  *ends = n;
  return 0;
}

static int locate(void *vctx, int plan_rc, int fd, uint64_t data_line, uint64_t *begin,
                  uint64_t *end, uint64_t *first_line, cofi_diag *d) {
  locate_ctx *c = vctx;
  c->called = true;
  const cofi__comm *comm = c->comm;
  uint32_t me = comm->rank, N = comm->size;
  int rc = plan_rc;
  uint64_t size = 0, data_start = 0, ends = 0, b = 0, e = 0;
  if (!rc) {
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
      rc = cofi__fail(d, COFI_ERR_IO, c->path, 0,
                      "under mpirun every rank reads its byte range of the file: it must be "
                      "a regular file");
    else
      size = (uint64_t)st.st_size;
  }
  /* the data start: after the data_line - 1 line ends of the header */
  if (!rc && data_line > 1) {
    uint64_t found;
    if (count_line_ends(fd, c->buf, 0, size, data_line - 1, &found, &data_start))
      rc = cofi__fail(d, COFI_ERR_IO, c->path, 0, "read failed: %s", strerror(errno));
    else if (found < data_line - 1)
      data_start = size;
  }
  if (!rc) {
    uint64_t span = size - data_start;
    uint64_t cut_b = data_start + (uint64_t)((unsigned __int128)span * me / N);
    uint64_t cut_e = data_start + (uint64_t)((unsigned __int128)span * (me + 1) / N);
    /* a line start at or after the cut: after the first LF at or after cut - 1 */
    b = data_start;
    e = size;
    int r1 = me == 0 || cut_b == 0 ? 0 : next_line_start(fd, c->buf, cut_b - 1, size, &b);
    int r2 = me + 1 == N || cut_e == 0 ? 0 : next_line_start(fd, c->buf, cut_e - 1, size, &e);
    if (me + 1 < N && cut_e == 0) e = 0;
    if (b < data_start) b = data_start;
    if (e < b) e = b;
    uint64_t dummy;
    if (r1 || r2 || count_line_ends(fd, c->buf, b, e, 0, &ends, &dummy))
      rc = cofi__fail(d, COFI_ERR_IO, c->path, 0, "read failed: %s", strerror(errno));
  }
  /* agree: every rank's outcome and line count */
  int64_t mine[2] = {rc, (int64_t)ends};
  void *all = NULL;
  size_t *counts = cofi__calloc(N, sizeof *counts);
  if (!counts || comm->allgatherv(comm->ctx, mine, sizeof mine, &all, counts)) {
    cofi__free(counts);
    cofi__free(all);
    return rc ? rc : cofi__fail(d, COFI_ERR_IO, c->path, 0, "rank %u: an MPI exchange failed", me);
  }
  const int64_t *v = all;
  int other = 0;
  uint32_t who = 0;
  uint64_t before = 0;
  for (uint32_t r = 0; r < N; r++) {
    if (v[2 * r] && !other) { other = (int)v[2 * r]; who = r; }
    if (r < me) before += (uint64_t)v[2 * r + 1];
  }
  cofi__free(all);
  cofi__free(counts);
  if (rc) return rc;
  if (other)
    return cofi__fail(d, other, c->path, 0, "rank %u could not read the file (its own message "
                      "says why)", who);
  *begin = b;
  *end = e;
  *first_line = data_line + before;
  return COFI_OK;
}

int cofi__share_read(const char *path, const cofi_read_options *opt, const cofi__comm *comm,
                     cofi_dataset **out, uint64_t *rows, cofi_diag *d) {
  *out = NULL;
  *rows = 0;
  locate_ctx c = {.comm = comm, .path = path, .buf = cofi__malloc(CHUNK)};
  cofi__share_locator loc = {.ctx = &c, .locate = locate, .rows = rows};
  int rc = c.buf ? cofi__dataset_read_share(path, opt, &loc, out, d)
                 : cofi__fail(d, COFI_ERR_NOMEM, path, 0, "out of memory");
  /* a failure before the reader got to the agreement (the file cannot be
   * opened, say): take part in it with the failure, or the others wait */
  if (!c.called) {
    uint64_t b, e, l;
    locate(&c, rc ? rc : COFI_ERR_IO, -1, 1, &b, &e, &l, d);
  }
  cofi__free(c.buf);
  return rc;
}

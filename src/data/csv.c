/*
 * csv.c — the streaming delimited-text tokenizer (see csv.h for what it
 * accepts and refuses).
 *
 * Design: the file comes in through one 4 MiB buffer. A record is scanned
 * in place; fields are recorded as (pointer, length) into the buffer. When a
 * record runs past the bytes read so far, its start is moved to the front
 * of the buffer, more is read, and the record is scanned again from its
 * start (this happens once per buffer fill, so the cost is nil). Quoted
 * fields are unescaped ("" -> ") in place only once the whole record has
 * been scanned, so a rescan never sees modified bytes. A NUL sentinel after
 * the last byte read lets the inner loops test one table lookup per byte
 * instead of a bounds check and four comparisons.
 */
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BUF_CAP ((size_t)4 << 20) /* > COFI__CSV_MAX_RECORD + a read */

/* Byte classes for the unquoted scan; 0 = ordinary byte. */
enum { C_ORD = 0, C_DELIM, C_LF, C_CR, C_NUL, C_HIGH };

/* Outcome of one scan attempt. */
enum { SCAN_OK = 0, SCAN_MORE = 1, SCAN_EOF = 2 };

static void set_classes(cofi__csv *r) {
  memset(r->cls, C_ORD, sizeof r->cls);
  for (int c = 0x80; c < 0x100; c++) r->cls[c] = C_HIGH;
  r->cls[0] = C_NUL;
  r->cls['\n'] = C_LF;
  r->cls['\r'] = C_CR;
  r->cls[(unsigned char)r->delim[0]] = C_DELIM;
}

int cofi__csv_open(cofi__csv *r, const char *path, cofi_diag *diag) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  r->path = path;
  r->delim[0] = ',';
  r->delim_len = 1;
  r->check_utf8 = true;
  r->next_line = 1;
  set_classes(r);
  if (!path)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no file name given");
  r->buf = cofi__malloc(BUF_CAP + 1);
  if (!r->buf)
    return cofi__fail(diag, COFI_ERR_NOMEM, path, 0, "out of memory");
  r->cap = BUF_CAP;
  r->buf[0] = 0;
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0)
    return cofi__fail(diag, COFI_ERR_IO, path, 0, "cannot open: %s",
                      strerror(errno));
  (void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return COFI_OK;
}

int cofi__csv_open_fd(cofi__csv *r, int fd, const char *name, cofi_diag *diag) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  r->path = name;
  r->delim[0] = ',';
  r->delim_len = 1;
  r->check_utf8 = true;
  r->next_line = 1;
  set_classes(r);
  if (!name)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no name given for the descriptor");
  r->buf = cofi__malloc(BUF_CAP + 1);
  if (!r->buf)
    return cofi__fail(diag, COFI_ERR_NOMEM, name, 0, "out of memory");
  r->cap = BUF_CAP;
  r->buf[0] = 0;
  /* A copy, so that closing the reader leaves the caller's descriptor. */
  r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r->fd < 0)
    return cofi__fail(diag, COFI_ERR_IO, name, 0, "cannot read: %s", strerror(errno));
  return COFI_OK;
}

void cofi__csv_close(cofi__csv *r) {
  if (!r) return;
  if (r->fd >= 0) close(r->fd);
  cofi__free(r->buf);
  cofi__free(r->fields);
  cofi__free(r->esc);
  r->fd = -1;
  r->buf = NULL;
  r->fields = NULL;
  r->esc = NULL;
  r->n_fields = r->fields_cap = 0;
}

int cofi__csv_set_delimiter(cofi__csv *r, const char *delim, size_t len,
                            cofi_diag *diag) {
  if (!delim || len < 1 || len > 2)
    return cofi__fail(diag, COFI_ERR_INVALID, r->path, 0,
                      "the delimiter must be one or two characters");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)delim[i];
    if (c == '"' || c == '\n' || c == '\r' || c == 0 || c >= 0x80)
      return cofi__fail(diag, COFI_ERR_INVALID, r->path, 0,
                        "the delimiter cannot be a quote, a line end, NUL or "
                        "a non-ASCII byte");
  }
  r->delim[0] = delim[0];
  r->delim[1] = len == 2 ? delim[1] : 0;
  r->delim_len = len;
  set_classes(r);
  return COFI_OK;
}

/* Keeps buf[keep .. end), moves it to the front, and reads until the buffer
 * is full or the file ends. */
static int refill(cofi__csv *r, size_t keep, cofi_diag *diag) {
  size_t n = r->end - keep;
  if (keep > 0 && n > 0) memmove(r->buf, r->buf + keep, n);
  r->end = n;
  r->pos -= keep;
  while (r->end < r->cap && !r->eof) {
    size_t want = r->cap - r->end;
    if (r->limited && want > r->left) want = (size_t)r->left;
    if (want == 0) { r->eof = true; break; }
    ssize_t got = read(r->fd, r->buf + r->end, want);
    if (got < 0) {
      if (errno == EINTR) continue;
      r->buf[r->end] = 0;
      return cofi__fail(diag, COFI_ERR_IO, r->path, r->next_line,
                        "read failed: %s", strerror(errno));
    }
    if (got == 0) r->eof = true;
    r->end += (size_t)got;
    if (r->limited) r->left -= (uint64_t)got;
  }
  r->buf[r->end] = 0; /* the sentinel */
  return COFI_OK;
}

static int start(cofi__csv *r, cofi_diag *diag) {
  if (r->started) return COFI_OK;
  if (r->fd < 0)
    return cofi__fail(diag, COFI_ERR_INVALID, r->path, 0, "file not open");
  int rc = refill(r, 0, diag);
  if (rc) return rc;
  if (r->end >= 3 && memcmp(r->buf, "\xef\xbb\xbf", 3) == 0) r->pos = 3;
  r->started = true;
  return COFI_OK;
}

int cofi__csv_restart_at(cofi__csv *r, uint64_t begin, uint64_t end, uint64_t first_line,
                         cofi_diag *diag) {
  if (r->fd < 0) return cofi__fail(diag, COFI_ERR_INVALID, r->path, 0, "file not open");
  if (end < begin || lseek(r->fd, (off_t)begin, SEEK_SET) < 0)
    return cofi__fail(diag, COFI_ERR_IO, r->path, 0, "cannot seek to byte %llu: %s",
                      (unsigned long long)begin, end < begin ? "bad range" : strerror(errno));
  r->pos = r->end = 0;
  r->eof = false;
  r->started = begin != 0; /* the BOM check belongs to byte 0 */
  r->limited = true;
  r->left = end - begin;
  r->line = r->next_line = first_line;
  r->n_fields = 0;
  if (r->buf) r->buf[0] = 0;
  return COFI_OK;
}

int cofi__csv_peek_line(cofi__csv *r, const char **line, size_t *len,
                        cofi_diag *diag) {
  *line = NULL;
  *len = 0;
  int rc = start(r, diag);
  if (rc) return rc;
  for (;;) {
    const char *b = r->buf + r->pos;
    size_t avail = r->end - r->pos;
    size_t i = 0;
    while (i < avail && b[i] != '\n' && b[i] != '\r') i++;
    if (i < avail || r->eof || avail > COFI__CSV_MAX_RECORD) {
      if (avail == 0) return COFI_OK;
      *line = b;
      *len = i > COFI__CSV_MAX_RECORD ? COFI__CSV_MAX_RECORD : i;
      return COFI_OK;
    }
    rc = refill(r, r->pos, diag);
    if (rc) return rc;
  }
}

size_t cofi__utf8_check(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
    else return i; /* continuation byte, overlong lead, or > U+10FFFF */
    for (size_t k = 1; k <= n; k++) {
      if (i + k >= len || (s[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return i;
    i += n + 1;
  }
  return len;
}

/* Line and 1-based byte column of bad within the record starting at rec on
 * line `line` (a quoted field may span lines). */
static void locate(const char *rec, const char *bad, uint64_t line,
                   uint64_t *bad_line, size_t *col) {
  const char *ls = rec;
  for (const char *p = rec; p < bad; p++) {
    /* p[1] is readable: bad is at most the sentinel. */
    if (*p == '\n' || (*p == '\r' && p[1] != '\n')) {
      line++;
      ls = p + 1;
    }
  }
  *bad_line = line;
  *col = (size_t)(bad - ls) + 1;
}

/* A parse error about byte `bad` of the record starting at rec:
 * "<what> at byte N of the line<tail>", on the line where bad is. */
static int fail_at(cofi__csv *r, cofi_diag *diag, const char *rec,
                   const char *bad, const char *what, const char *tail) {
  uint64_t line;
  size_t col;
  locate(rec, bad, r->next_line, &line, &col);
  return cofi__fail(diag, COFI_ERR_PARSE, r->path, line,
                    "%s at byte %zu of the line%s", what, col, tail);
}

static int too_long(cofi__csv *r, cofi_diag *diag) {
  return cofi__fail(diag, COFI_ERR_PARSE, r->path, r->next_line,
                    "line longer than 1 MiB (%zu bytes)",
                    COFI__CSV_MAX_RECORD);
}

static int push_field(cofi__csv *r, const char *p, size_t len, bool escaped) {
  if (r->n_fields == r->fields_cap) {
    size_t cap = r->fields_cap ? r->fields_cap * 2 : 16;
    cofi__csv_field *f = cofi__realloc(r->fields, cap * sizeof *f);
    if (!f) return COFI_ERR_NOMEM;
    r->fields = f;
    unsigned char *e = cofi__realloc(r->esc, cap);
    if (!e) return COFI_ERR_NOMEM; /* fields grew; fields_cap did not */
    r->esc = e;
    r->fields_cap = cap;
  }
  r->fields[r->n_fields].ptr = p;
  r->fields[r->n_fields].len = len;
  r->esc[r->n_fields] = escaped;
  r->n_fields++;
  return COFI_OK;
}

/* One attempt at scanning the record at buf[pos]. SCAN_MORE: the record
 * runs past the bytes read (not at EOF); SCAN_EOF: no record left. */
static int scan(cofi__csv *r, cofi_diag *diag) {
  const unsigned char *cls = r->cls;
  char *const lim = r->buf + r->end;
  char *p = r->buf + r->pos;
  const bool eof = r->eof;

  /* Blank lines are skipped: they carry no record. */
  for (;;) {
    if (p == lim) {
      r->pos = (size_t)(p - r->buf);
      return eof ? SCAN_EOF : SCAN_MORE;
    }
    if (*p == '\n') { p++; r->next_line++; continue; }
    if (*p == '\r') {
      if (p + 1 == lim && !eof) { r->pos = (size_t)(p - r->buf); return SCAN_MORE; }
      p += p[1] == '\n' ? 2 : 1;
      r->next_line++;
      continue;
    }
    break;
  }
  r->pos = (size_t)(p - r->buf);
  char *const rec = p;
  uint64_t inner_lines = 0; /* line ends inside quoted fields */
  bool high = false;
  r->n_fields = 0;

  for (;;) { /* one field per iteration */
    char *fstart = p;
    char *fend;
    bool escaped = false;
    if (*p == '"') { /* never the sentinel, which is NUL */
      char *q = ++p;
      for (;;) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
          if (q + 1 == lim && !eof) return SCAN_MORE;
          if (q[1] == '"') { escaped = true; q += 2; continue; }
          break;
        }
        if (c == 0) {
          if (q == lim) {
            if (!eof) return SCAN_MORE;
            return fail_at(r, diag, rec, fstart,
                           "unterminated quoted field: the quote opened",
                           " is never closed");
          }
          return fail_at(r, diag, rec, q, "NUL byte", "");
        }
        if (c == '\n') inner_lines++;
        else if (c == '\r') {
          if (q + 1 == lim && !eof) return SCAN_MORE;
          if (q[1] != '\n') inner_lines++;
        } else if (c >= 0x80) high = true;
        q++;
        if ((size_t)(q - rec) > COFI__CSV_MAX_RECORD)
          return fail_at(r, diag, rec, fstart,
                         "line longer than 1 MiB inside the quoted field "
                         "that opens", " (unterminated quote?)");
      }
      fend = q;
      p = q + 1;
      /* After the closing quote: a delimiter, a line end or the end. */
      unsigned char c = (unsigned char)*p;
      if (p == lim) {
        if (!eof) return SCAN_MORE;
      } else if (cls[c] == C_DELIM && r->delim_len == 2) {
        if (p + 1 == lim && !eof) return SCAN_MORE;
        if (p[1] != r->delim[1])
          return fail_at(r, diag, rec, p,
                         "unexpected character after a closing quote",
                         " (a quote inside a quoted field must be doubled)");
      } else if (cls[c] != C_DELIM && c != '\n' && c != '\r') {
        if (c == 0) return fail_at(r, diag, rec, p, "NUL byte", "");
        return fail_at(r, diag, rec, p,
                       "unexpected character after a closing quote",
                       " (a quote inside a quoted field must be doubled)");
      }
      fstart++;
    } else {
      for (;;) {
        while (cls[(unsigned char)*p] == C_ORD) p++;
        unsigned char k = cls[(unsigned char)*p];
        if (k == C_HIGH) { high = true; p++; continue; }
        if (k == C_NUL) {
          if (p == lim) {
            if (!eof) return SCAN_MORE;
            break;
          }
          return fail_at(r, diag, rec, p, "NUL byte", "");
        }
        if (k == C_DELIM && r->delim_len == 2) {
          if (p + 1 == lim && !eof) return SCAN_MORE;
          if (p[1] != r->delim[1]) { p++; continue; }
        }
        break;
      }
      fend = p;
      if ((size_t)(p - rec) > COFI__CSV_MAX_RECORD) return too_long(r, diag);
    }
    int rc = push_field(r, fstart, (size_t)(fend - fstart), escaped);
    if (rc) return cofi__fail(diag, rc, r->path, r->next_line, "out of memory");
    /* p is at a delimiter, a line end, or the end of the data. */
    if (p == lim) break;
    if (cls[(unsigned char)*p] == C_DELIM) {
      p += r->delim_len;
      continue;
    }
    break;
  }
  char *rec_end = p; /* before the line end */
  if ((size_t)(rec_end - rec) > COFI__CSV_MAX_RECORD) return too_long(r, diag);
  if (p < lim) {
    if (*p == '\r') {
      if (p + 1 == lim && !eof) return SCAN_MORE;
      p += p[1] == '\n' ? 2 : 1;
    } else {
      p++;
    }
  }
  if (high && r->check_utf8) {
    size_t bad = cofi__utf8_check(rec, (size_t)(rec_end - rec));
    if (bad < (size_t)(rec_end - rec)) {
      char what[64];
      snprintf(what, sizeof what, "invalid UTF-8 (byte 0x%02x)",
               (unsigned char)rec[bad]);
      return fail_at(r, diag, rec, rec + bad, what, "");
    }
  }
  r->line = r->next_line;
  r->next_line += 1 + inner_lines;
  r->pos = (size_t)(p - r->buf);
  return SCAN_OK;
}

/* Undoes "" -> " in the quoted fields of the record just scanned. */
static void unescape(cofi__csv *r) {
  for (size_t i = 0; i < r->n_fields; i++) {
    if (!r->esc[i]) continue;
    char *s = (char *)r->fields[i].ptr;
    size_t n = r->fields[i].len, o = 0;
    for (size_t k = 0; k < n; k++) {
      s[o++] = s[k];
      if (s[k] == '"') k++; /* the second quote of a pair */
    }
    r->fields[i].len = o;
  }
}

int cofi__csv_next(cofi__csv *r, cofi_diag *diag) {
  int rc = start(r, diag);
  if (rc) return rc;
  for (;;) {
    int s = scan(r, diag);
    if (s < 0) return s;
    if (s == SCAN_OK) {
      unescape(r);
      r->records++;
      return 1;
    }
    if (s == SCAN_EOF) return 0;
    /* SCAN_MORE: the record at pos is incomplete. */
    if (r->end - r->pos > COFI__CSV_MAX_RECORD + 2) return too_long(r, diag);
    rc = refill(r, r->pos, diag);
    if (rc) return rc;
  }
}

int cofi__csv_header(cofi__csv *r, char delim, cofi__idmap *names,
                     cofi_diag *diag) {
  const char *first;
  size_t first_len;
  int rc = cofi__csv_peek_line(r, &first, &first_len, diag);
  if (rc) return rc;
  if (!first)
    return cofi__fail(diag, COFI_ERR_EMPTY, r->path, 0, "the file is empty");
  if (delim == 0) delim = memchr(first, '\t', first_len) ? '\t' : ',';
  rc = cofi__csv_set_delimiter(r, &delim, 1, diag);
  if (rc) return rc;
  rc = cofi__csv_next(r, diag);
  if (rc < 0) return rc;
  if (rc == 0)
    return cofi__fail(diag, COFI_ERR_EMPTY, r->path, 0,
                      "the file is empty (only blank lines)");
  for (size_t c = 0; c < r->n_fields; c++) {
    uint32_t idx;
    bool added;
    rc = cofi__idmap_intern(names, r->fields[c].ptr, r->fields[c].len, &idx,
                            &added);
    if (rc)
      return cofi__fail(diag, rc, r->path, r->line, "%s",
                        rc == COFI_ERR_NOMEM ? "out of memory"
                                             : "too many columns");
    if (!added) {
      char q[200];
      return cofi__fail(diag, COFI_ERR_PARSE, r->path, r->line,
                        "duplicate column name '%s' in the header (columns "
                        "%u and %zu)",
                        cofi__quote(q, sizeof q, r->fields[c].ptr,
                                    r->fields[c].len),
                        idx + 1, c + 1);
    }
  }
  return COFI_OK;
}

void cofi__csv_column_list(const cofi__idmap *names, char *buf, size_t size) {
  size_t o = 0;
  buf[0] = 0;
  for (uint32_t c = 0; c < names->n; c++) {
    size_t len;
    const char *s = cofi__idmap_get(names, c, &len);
    char q[200];
    cofi__quote(q, sizeof q, s, len);
    size_t need = strlen(q) + 4;
    if (o + need + 5 >= size) {
      snprintf(buf + o, size - o, "%s...", c ? ", " : "");
      return;
    }
    o += (size_t)snprintf(buf + o, size - o, "%s'%s'", c ? ", " : "", q);
  }
}

bool cofi__csv_blank(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (s[i] != ' ' && s[i] != '\t') return false;
  return true;
}

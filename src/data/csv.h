/*
 * csv.h — a streaming tokenizer for delimited text (CSV, TSV, MovieLens
 * `::`), shared by the interaction reader (dataset.c) and the item metadata
 * reader (items.c).
 *
 * The reader pulls the file through one large buffer with read(2) and hands
 * out one record at a time as an array of fields pointing into that buffer
 * (valid until the next call): no allocation per record, one pass over the
 * bytes. What it accepts:
 *   - records end at LF, CRLF or a lone CR; completely blank lines are
 *     skipped; the last record may lack its line end;
 *   - RFC 4180 quoting: a field that starts with '"' runs to the matching
 *     '"', may contain delimiters, line ends and doubled quotes ("" -> ");
 *     a quote inside an unquoted field is an ordinary character;
 *   - a delimiter of one or two bytes (',', '\t', "::");
 *   - a UTF-8 byte-order mark at the start of the file is skipped.
 * What it refuses, each with the line where the record starts (diag->line)
 * and a message naming the problem: a NUL byte, a record longer than
 * COFI__CSV_MAX_RECORD bytes, an unterminated quoted field, characters
 * between a closing quote and the next delimiter, and (unless disabled)
 * bytes that are not valid UTF-8.
 */
#ifndef COFI_DATA_CSV_H
#define COFI_DATA_CSV_H

#include "internal.h"

/* The longest record accepted, line end excluded (1 MiB). */
#define COFI__CSV_MAX_RECORD ((size_t)1 << 20)

typedef struct cofi__csv_field {
  const char *ptr; /* into the reader's buffer; not NUL-terminated */
  size_t len;
} cofi__csv_field;

typedef struct cofi__csv {
  int fd;
  const char *path;   /* borrowed, for messages */
  char *buf;          /* [cap] */
  size_t cap;
  size_t pos, end;    /* unread bytes are buf[pos .. end) */
  bool eof;           /* read(2) returned 0 */
  bool started;       /* the BOM check is done */
  char delim[2];
  size_t delim_len;   /* 1 or 2 */
  bool check_utf8;    /* default true */
  uint64_t line;      /* line where the current record starts (1-based) */
  uint64_t next_line; /* line where the next record starts */
  uint64_t records;   /* records returned so far */
  bool limited;       /* read only `left` more bytes (a byte range) */
  uint64_t left;
  cofi__csv_field *fields; /* [fields_cap], n_fields used */
  unsigned char *esc;      /* [fields_cap]: field holds "" pairs to undo */
  size_t n_fields, fields_cap;
  unsigned char cls[256]; /* byte classes for the scanner */
} cofi__csv;

/* Opens path for reading with delimiter ','. COFI_ERR_IO (diag says why) or
 * COFI_ERR_NOMEM. Close with cofi__csv_close even after a failed open. */
int cofi__csv_open(cofi__csv *r, const char *path, cofi_diag *diag);
void cofi__csv_close(cofi__csv *r);
/* The same for a descriptor open for reading (a pipe is fine: the reader
 * makes one pass); it is duplicated, so the caller keeps fd. name is used
 * in messages. */
int cofi__csv_open_fd(cofi__csv *r, int fd, const char *name, cofi_diag *diag);

/* Sets the delimiter: 1 or 2 bytes, none of '"', CR, LF, NUL.
 * COFI_ERR_INVALID otherwise. */
int cofi__csv_set_delimiter(cofi__csv *r, const char *delim, size_t len,
                            cofi_diag *diag);

/* The first line of the file (BOM skipped, line end excluded, at most
 * COFI__CSV_MAX_RECORD bytes), without consuming it, for sniffing the
 * delimiter or the format. *len = 0 and *line = NULL for an empty file. */
int cofi__csv_peek_line(cofi__csv *r, const char **line, size_t *len,
                        cofi_diag *diag);

/* Restarts the reader on bytes [begin, end) of its file, the first of them
 * on line first_line (a byte range of one file per MPI rank: begin is the
 * start of a line). A UTF-8 byte-order mark is skipped only at begin 0.
 * COFI_ERR_IO when the descriptor cannot seek (a pipe). */
int cofi__csv_restart_at(cofi__csv *r, uint64_t begin, uint64_t end, uint64_t first_line,
                         cofi_diag *diag);

/* Reads the next record into r->fields / r->n_fields and sets r->line.
 * Returns 1 for a record, 0 at the end of the file, or a negative cofi_error
 * (COFI_ERR_PARSE, COFI_ERR_IO, COFI_ERR_NOMEM) with diag filled. */
int cofi__csv_next(cofi__csv *r, cofi_diag *diag);

/* Reads the header of a CSV/TSV with named columns: chooses the delimiter
 * (delim 0 = auto: tab when the first line has a tab, else comma), reads the
 * first record, and interns its names into `names` (column c = index c).
 * COFI_ERR_EMPTY for a file with no line at all, COFI_ERR_PARSE for a
 * duplicate column name, COFI_ERR_INVALID for a bad delimiter. */
int cofi__csv_header(cofi__csv *r, char delim, cofi__idmap *names,
                     cofi_diag *diag);

/* "'a', 'b', 'c'" (cut short with "...") for messages. */
void cofi__csv_column_list(const cofi__idmap *names, char *buf, size_t size);

/* True when s is empty or only spaces and tabs. */
bool cofi__csv_blank(const char *s, size_t len);

/* Validates UTF-8: returns the offset of the first bad byte, or len when
 * the whole of s is valid. Rejects overlong forms, surrogates and code
 * points above U+10FFFF. */
size_t cofi__utf8_check(const char *s, size_t len);

#endif

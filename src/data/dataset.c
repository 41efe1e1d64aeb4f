/*
 * dataset.c — reading an interaction log into a cofi_dataset: generic
 * CSV/TSV with named columns, and the three MovieLens ratings layouts.
 *
 * One pass over the file (csv.c hands out records from its buffer); per
 * row: two ID lookups (the previous row's user is checked first, since logs
 * are usually grouped by user; then a small cache; then the ID map), a number parsed by a hand-written fast path
 * (integers and short decimals, exact: see parse_value), an event looked up
 * in a small table, and four appends to arrays that grow geometrically.
 * Nothing is allocated per row.
 *
 * Every rejected input names the file, the line and the problem in the
 * diag; docs/data-formats.md lists them and the decisions behind them.
 */
#include "csv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- datasets ---------------------------------------------------------- */

int cofi__dataset_new(cofi_dataset **out) {
  *out = NULL;
  cofi_dataset *ds = cofi__calloc(1, sizeof *ds);
  if (!ds) return COFI_ERR_NOMEM;
  cofi__idmap_init(&ds->users);
  cofi__idmap_init(&ds->items);
  ds->meta.title_field = -1;
  cofi__strtab_init(&ds->meta.names);
  cofi__strtab_init(&ds->meta.cells);
  *out = ds;
  return COFI_OK;
}

void cofi_dataset_free(cofi_dataset *ds) {
  if (!ds) return;
  cofi__idmap_free(&ds->users);
  cofi__idmap_free(&ds->items);
  cofi__free(ds->user);
  cofi__free(ds->item);
  cofi__free(ds->value);
  cofi__free(ds->time);
  cofi__strtab_free(&ds->meta.names);
  cofi__strtab_free(&ds->meta.cells);
  cofi__free(ds);
}

size_t cofi_dataset_n_users(const cofi_dataset *ds) { return ds ? ds->users.n : 0; }
size_t cofi_dataset_n_items(const cofi_dataset *ds) { return ds ? ds->items.n : 0; }
size_t cofi_dataset_n_interactions(const cofi_dataset *ds) { return ds ? ds->n : 0; }
const char *cofi_dataset_columns(const cofi_dataset *ds) { return ds ? ds->columns : ""; }

/* Room for one more interaction. The four arrays grow together; a failure
 * leaves the ones already grown larger, which is harmless. */
int cofi__dataset_reserve_one(cofi_dataset *ds) {
  if (ds->n < ds->cap) return COFI_OK;
  size_t cap = ds->cap ? ds->cap * 2 : 1024;
  uint32_t *u = cofi__realloc(ds->user, cap * sizeof *u);
  if (!u) return COFI_ERR_NOMEM;
  ds->user = u;
  uint32_t *i = cofi__realloc(ds->item, cap * sizeof *i);
  if (!i) return COFI_ERR_NOMEM;
  ds->item = i;
  float *v = cofi__realloc(ds->value, cap * sizeof *v);
  if (!v) return COFI_ERR_NOMEM;
  ds->value = v;
  int64_t *t = cofi__realloc(ds->time, cap * sizeof *t);
  if (!t) return COFI_ERR_NOMEM;
  ds->time = t;
  ds->cap = cap;
  return COFI_OK;
}

int cofi__dataset_add(cofi_dataset *ds, const char *user, size_t ulen,
                      const char *item, size_t ilen, float value, int64_t time) {
  if (ulen == 0 || ilen == 0) return COFI_ERR_INVALID;
  int rc = cofi__dataset_reserve_one(ds);
  if (rc) return rc;
  uint32_t u, i;
  if ((rc = cofi__idmap_intern(&ds->users, user, ulen, &u, NULL))) return rc;
  if ((rc = cofi__idmap_intern(&ds->items, item, ilen, &i, NULL))) return rc;
  ds->user[ds->n] = u;
  ds->item[ds->n] = i;
  ds->value[ds->n] = value;
  ds->time[ds->n] = time;
  ds->n++;
  return COFI_OK;
}

static int copy_idmap(const cofi__idmap *from, cofi__idmap *to) {
  for (uint32_t k = 0; k < from->n; k++) {
    size_t len;
    const char *s = cofi__idmap_get(from, k, &len);
    uint32_t idx;
    int rc = cofi__idmap_intern(to, s, len, &idx, NULL);
    if (rc) return rc;
  }
  return COFI_OK;
}

static int copy_strtab(const cofi__strtab *from, cofi__strtab *to) {
  for (size_t k = 0; k < from->n; k++) {
    size_t len;
    const char *s = cofi__strtab_get(from, k, &len);
    int rc = cofi__strtab_push(to, s, len);
    if (rc) return rc;
  }
  return COFI_OK;
}

int cofi__dataset_subset(const cofi_dataset *ds, const bool *keep,
                         cofi_dataset **out) {
  *out = NULL;
  cofi_dataset *sub = NULL;
  int rc = cofi__dataset_new(&sub);
  if (rc) return rc;
  if ((rc = copy_idmap(&ds->users, &sub->users))) goto fail;
  if ((rc = copy_idmap(&ds->items, &sub->items))) goto fail;
  if ((rc = copy_strtab(&ds->meta.names, &sub->meta.names))) goto fail;
  if ((rc = copy_strtab(&ds->meta.cells, &sub->meta.cells))) goto fail;
  sub->meta.n_fields = ds->meta.n_fields;
  sub->meta.title_field = ds->meta.title_field;
  sub->has_time = ds->has_time;
  memcpy(sub->source, ds->source, sizeof sub->source);
  for (size_t k = 0; k < ds->n; k++) {
    if (!keep[k]) continue;
    if ((rc = cofi__dataset_reserve_one(sub))) goto fail;
    sub->user[sub->n] = ds->user[k];
    sub->item[sub->n] = ds->item[k];
    sub->value[sub->n] = ds->value[k];
    sub->time[sub->n] = ds->time[k];
    sub->n++;
  }
  *out = sub;
  return COFI_OK;
fail:
  cofi_dataset_free(sub);
  return rc;
}

/* ---- options ----------------------------------------------------------- */

static const cofi_event_weight default_weights[] = {
    {"watch", 1.0f}, {"like", 2.0f}, {"complete", 3.0f}};

cofi_read_options cofi_read_options_default(void) {
  cofi_read_options o;
  memset(&o, 0, sizeof o);
  o.format = COFI_FORMAT_CSV;
  return o;
}

/* ---- field parsing ----------------------------------------------------- */

static void trim(const char **s, size_t *n) {
  while (*n && ((*s)[0] == ' ' || (*s)[0] == '\t')) { (*s)++; (*n)--; }
  while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

enum { NUM_OK = 0, NUM_EMPTY, NUM_BAD, NUM_NEGATIVE, NUM_NONFINITE, NUM_RANGE };

static bool is_nonfinite_word(const char *s, size_t n) {
  if (n && (s[0] == '+' || s[0] == '-')) { s++; n--; }
  static const char *const words[] = {"nan", "inf", "infinity"};
  for (size_t w = 0; w < 3; w++)
    if (n == strlen(words[w]) && strncasecmp(s, words[w], n) == 0) return true;
  return false;
}

/* [+-] digits [. digits] [(e|E) [+-] digits], at least one mantissa digit. */
static bool is_decimal(const char *s, size_t n) {
  size_t i = 0, digits = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) i++;
  while (i < n && s[i] >= '0' && s[i] <= '9') { i++; digits++; }
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && s[i] >= '0' && s[i] <= '9') { i++; digits++; }
  }
  if (digits == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t e = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') { i++; e++; }
    if (e == 0) return false;
  }
  return i == n;
}

/* A non-negative finite decimal as the float strtof would give. Fast path:
 * up to 2^24 as the integer mantissa m and up to 10 fraction digits k, where
 * m and 10^k are exact floats, so the one correctly rounded division
 * m / 10^k equals strtof's correctly rounded result. Anything else goes to
 * strtof on a NUL-terminated copy. */
static int parse_value(const char *s, size_t n, float *out) {
  static const float pow10f[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
  trim(&s, &n);
  if (n == 0) return NUM_EMPTY;
  {
    size_t i = 0;
    uint32_t m = 0;
    int k = -1; /* fraction digits, -1 before the point */
    bool ok = true;
    for (; i < n; i++) {
      char c = s[i];
      if (c >= '0' && c <= '9') {
        m = m * 10 + (uint32_t)(c - '0');
        if (m > (1u << 24) || k >= 10) { ok = false; break; }
        if (k >= 0) k++;
      } else if (c == '.' && k < 0) {
        k = 0;
      } else {
        ok = false;
        break;
      }
    }
    /* "." alone, or "5." / ".5" are fine for strtof; require a digit. */
    if (ok && !(n == 1 && s[0] == '.')) {
      *out = k > 0 ? (float)m / pow10f[k] : (float)m;
      return NUM_OK;
    }
  }
  if (is_nonfinite_word(s, n)) return NUM_NONFINITE;
  if (!is_decimal(s, n)) return NUM_BAD;
  if (s[0] == '-') return NUM_NEGATIVE;
  char buf[128];
  if (n >= sizeof buf) return NUM_BAD;
  memcpy(buf, s, n);
  buf[n] = 0;
  char *end;
  float f = strtof(buf, &end);
  if (end != buf + n) return NUM_BAD;
  if (isinf(f)) return NUM_RANGE;
  *out = f;
  return NUM_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* n digits at s[*i] as a number; false when they are not all digits. */
static bool digits(const char *s, size_t len, size_t *i, int n, int *out) {
  if (*i + (size_t)n > len) return false;
  int v = 0;
  for (int k = 0; k < n; k++) {
    char c = s[*i + (size_t)k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *i += (size_t)n;
  *out = v;
  return true;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH[:]MM] -> unix seconds. */
static bool parse_iso8601(const char *s, size_t n, int64_t *out) {
  size_t i = 0;
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!digits(s, n, &i, 4, &y) || i >= n || s[i++] != '-') return false;
  if (!digits(s, n, &i, 2, &mo) || i >= n || s[i++] != '-') return false;
  if (!digits(s, n, &i, 2, &d)) return false;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo == 2 && d == 29 && !leap) return false;
  int64_t offset = 0;
  if (i < n && (s[i] == 'T' || s[i] == ' ')) {
    i++;
    if (!digits(s, n, &i, 2, &h) || i >= n || s[i++] != ':') return false;
    if (!digits(s, n, &i, 2, &mi)) return false;
    if (i < n && s[i] == ':') {
      i++;
      if (!digits(s, n, &i, 2, &sec)) return false;
      if (i < n && (s[i] == '.' || s[i] == ',')) {
        i++;
        size_t f = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') { i++; f++; }
        if (f == 0) return false;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return false;
    if (i < n && s[i] == 'Z') {
      i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
      int sign = s[i++] == '-' ? -1 : 1, oh, om;
      if (!digits(s, n, &i, 2, &oh)) return false;
      if (i < n && s[i] == ':') i++;
      if (!digits(s, n, &i, 2, &om)) return false;
      if (oh > 23 || om > 59) return false;
      offset = sign * (int64_t)(oh * 3600 + om * 60);
    }
  }
  if (i != n) return false;
  *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
         h * 3600 + mi * 60 + sec - offset;
  return true;
}

/* Integer seconds (a fraction is dropped) or ISO 8601. */
static bool parse_time(const char *s, size_t n, int64_t *out) {
  /* Fast path: 1 to 18 plain digits cannot overflow an int64. */
  if (n - 1 < 18) {
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n; i++) {
      unsigned d = (unsigned)(unsigned char)s[i] - '0';
      if (d > 9) break;
      v = v * 10 + d;
    }
    if (i == n) {
      *out = (int64_t)v;
      return true;
    }
  }
  trim(&s, &n);
  if (n == 0) return false;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') { neg = s[0] == '-'; i = 1; }
  uint64_t v = 0;
  size_t start = i;
  while (i < n && s[i] >= '0' && s[i] <= '9') {
    if (v > (uint64_t)INT64_MAX / 10) return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > (uint64_t)INT64_MAX) return false;
    i++;
  }
  if (i > start && i < n && s[i] == '.') {
    size_t f = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == f) return false;
  }
  if (i == n && i > start) {
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
  }
  if (i - start == 4 && i < n && s[i] == '-' && start == 0)
    return parse_iso8601(s, n, out);
  return false;
}

bool cofi__parse_time(const char *s, size_t n, int64_t *out) { return parse_time(s, n, out); }

/* ---- the reader -------------------------------------------------------- */

/* Equality of two short byte strings without a call to memcmp (IDs and
 * event names are a few bytes; the call dominated the comparison). */
static inline uint64_t ld64(const char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t ld32(const char *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Equality of two short byte strings without a call to memcmp (IDs and
 * event names are a few bytes; the call dominated the comparison). Tails
 * are compared with an overlapping last word instead of byte by byte. */
static inline bool same_bytes(const char *a, const char *b, size_t n) {
  if (n >= 8) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
      if (ld64(a + i) != ld64(b + i)) return false;
    return i == n || ld64(a + n - 8) == ld64(b + n - 8);
  }
  if (n >= 4) return ld32(a) == ld32(b) && ld32(a + n - 4) == ld32(b + n - 4);
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

/* A direct-mapped cache in front of the ID maps: slot = a cheap hash of
 * the ID's first and last bytes, value = index + 1 (0 = empty). A hit is
 * confirmed by comparing the bytes, so collisions only cost a miss. It
 * saves the full hash, the probe and a memcmp call on most rows. */
#define CACHE_BITS 16

static inline uint32_t quick_hash(const char *s, size_t n) {
  uint64_t a = 0, b = 0;
  if (n >= 8) {
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
  } else if (n >= 4) {
    uint32_t x, y;
    memcpy(&x, s, 4);
    memcpy(&y, s + n - 4, 4);
    a = x;
    b = y;
  } else if (n > 0) {
    a = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[n / 2] << 8 |
        (uint64_t)(unsigned char)s[n - 1] << 16;
  }
  uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + n) * 0xC2B2AE3D27D4EB4Full;
  return (uint32_t)(h >> (64 - CACHE_BITS));
}

static inline int intern_cached(cofi__idmap *m, uint32_t *cache, const char *s,
                                size_t n, uint32_t *idx) {
  uint32_t h = quick_hash(s, n), c = cache[h];
  if (c) {
    size_t len;
    const char *t = cofi__idmap_get(m, c - 1, &len);
    if (len == n && same_bytes(t, s, n)) {
      *idx = c - 1;
      return COFI_OK;
    }
  }
  int rc = cofi__idmap_intern(m, s, n, idx, NULL);
  if (rc) return rc;
  cache[h] = *idx + 1;
  return COFI_OK;
}

static inline bool blank(const char *s, size_t n) {
  return n == 0 || ((s[0] == ' ' || s[0] == '\t') && cofi__csv_blank(s, n));
}

enum { COL_USER, COL_ITEM, COL_VALUE, COL_EVENT, COL_TIME, N_COLS };
static const char *const col_default[N_COLS] = {"user_id", "item_id", "value",
                                                "event", "timestamp"};

typedef struct event_entry {
  const char *name;
  size_t len;
  float weight;
} event_entry;

typedef struct reader {
  cofi__csv csv;
  const char *path;
  int col[N_COLS];         /* column index, -1 when not used */
  char name[N_COLS][100];  /* quoted column names for messages */
  size_t n_cols;           /* fields every row must have */
  bool binarize;           /* MovieLens with a threshold: kept rows -> 1 */
  bool has_min;
  float min_value;
  event_entry *events;     /* [n_events] */
  size_t n_events;
  size_t last_event;       /* index of the last event matched */
  uint32_t *user_cache;    /* [1 << CACHE_BITS] */
  uint32_t *item_cache;    /* [1 << CACHE_BITS] */
  uint64_t rows;           /* data rows read (kept or not) */
  cofi__idmap names;       /* header names (CSV), column c = index c */
  int candidates[8];       /* columns that may hold events (by name) */
  size_t n_candidates;
  bool pending;            /* the first data row is already in csv */
  bool event_detected;     /* the event column was found by its values */
  char rejected[200];      /* why candidate columns were not used */
} reader;

static int field_error(reader *rd, cofi_diag *diag, int col, const char *s,
                       size_t n, const char *problem) {
  char q[200];
  return cofi__fail(diag, COFI_ERR_PARSE, rd->path, rd->csv.line,
                    "column '%s' (%d): '%s' %s", rd->name[col],
                    rd->col[col] + 1, cofi__quote(q, sizeof q, s, n), problem);
}

static int value_error(reader *rd, cofi_diag *diag, int col, const char *s,
                       size_t n, int kind) {
  if (kind == NUM_EMPTY)
    return cofi__fail(diag, COFI_ERR_PARSE, rd->path, rd->csv.line,
                      "column '%s' (%d): empty value", rd->name[col],
                      rd->col[col] + 1);
  static const char *const what[] = {
      "", "", "is not a number", "is negative (values must be >= 0)",
      "is not a finite number", "is out of range for a float"};
  return field_error(rd, diag, col, s, n, what[kind]);
}

static int unknown_event(reader *rd, cofi_diag *diag, const char *s, size_t n) {
  char known[256], q[200];
  size_t o = 0;
  known[0] = 0;
  for (size_t e = 0; e < rd->n_events && o + 4 < sizeof known; e++)
    o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", e ? ", " : "",
                          rd->events[e].name);
  if (o >= sizeof known) memcpy(known + sizeof known - 4, "...", 4);
  return cofi__fail(diag, COFI_ERR_PARSE, rd->path, rd->csv.line,
                    "column '%s' (%d): unknown event '%s' (known events: %s; "
                    "--event-weights NAME=W,... replaces this table: list every "
                    "event of the log)",
                    rd->name[COL_EVENT], rd->col[COL_EVENT] + 1,
                    cofi__quote(q, sizeof q, s, n), known);
}

static int set_events(reader *rd, const cofi_read_options *opt,
                      cofi_diag *diag) {
  const cofi_event_weight *w = opt->event_weights;
  size_t n = opt->n_event_weights;
  if (!w) {
    w = default_weights;
    n = sizeof default_weights / sizeof default_weights[0];
  }
  if (n == 0)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "the event weight table is empty");
  rd->events = cofi__calloc(n, sizeof *rd->events);
  if (!rd->events)
    return cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory");
  for (size_t e = 0; e < n; e++) {
    if (!w[e].event || !w[e].event[0])
      return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                        "event weight %zu has no event name", e + 1);
    if (!isfinite(w[e].weight) || w[e].weight < 0)
      return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                        "the weight of event '%.100s' must be a finite "
                        "number >= 0",
                        w[e].event);
    for (size_t f = 0; f < e; f++)
      if (!strcmp(w[f].event, w[e].event))
        return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                          "event '%.100s' has two weights", w[e].event);
    rd->events[e].name = w[e].event;
    rd->events[e].len = strlen(w[e].event);
    rd->events[e].weight = w[e].weight;
  }
  rd->n_events = n;
  return COFI_OK;
}

/* Names that often hold the event type when the column is not "event". */
static const char *const event_aliases[] = {"action", "event_type", "type", "interaction",
                                            "event"};

/* Without a header: the delimiter from the first line, the first record
 * read (kept pending: it is data), and its columns named "1".."n" so that
 * column numbers are looked up like names. */
static int headerless_names(reader *rd, const cofi_read_options *opt, cofi__idmap *names,
                            cofi_diag *diag) {
  const char *first;
  size_t first_len;
  int rc = cofi__csv_peek_line(&rd->csv, &first, &first_len, diag);
  if (rc) return rc;
  if (!first) return cofi__fail(diag, COFI_ERR_EMPTY, rd->path, 0, "the file is empty");
  char delim = opt->delimiter ? opt->delimiter : memchr(first, '\t', first_len) ? '\t' : ',';
  if ((rc = cofi__csv_set_delimiter(&rd->csv, &delim, 1, diag))) return rc;
  rc = cofi__csv_next(&rd->csv, diag);
  if (rc < 0) return rc;
  if (rc == 0)
    return cofi__fail(diag, COFI_ERR_EMPTY, rd->path, 0, "the file is empty (only blank lines)");
  rd->pending = true;
  for (size_t c = 0; c < rd->csv.n_fields; c++) {
    char num[24];
    int len = snprintf(num, sizeof num, "%zu", c + 1);
    uint32_t idx;
    if ((rc = cofi__idmap_intern(names, num, (size_t)len, &idx, NULL)))
      return cofi__fail(diag, rc, rd->path, rd->csv.line, "%s",
                        rc == COFI_ERR_NOMEM ? "out of memory" : "too many columns");
  }
  return COFI_OK;
}

static int header_plan(reader *rd, const cofi_read_options *opt,
                       cofi_diag *diag) {
  cofi__idmap names;
  cofi__idmap_init(&names);
  bool numbered = opt->no_header != 0;
  int rc = numbered ? headerless_names(rd, opt, &names, diag)
                    : cofi__csv_header(&rd->csv, opt->delimiter, &names, diag);
  if (rc) goto done;
  const char *given[N_COLS] = {opt->user_col, opt->item_col, opt->value_col,
                               opt->event_col, opt->time_col};
  /* Headerless: user and item default to columns 1 and 2; the optional
   * columns are used only when given. */
  static const char *const numbered_default[N_COLS] = {"1", "2", "", "", ""};
  for (int c = 0; c < N_COLS; c++) {
    const char *want = given[c] ? given[c] : numbered ? numbered_default[c] : col_default[c];
    int64_t idx = *want ? cofi__idmap_find(&names, want, strlen(want)) : -1;
    cofi__quote(rd->name[c], sizeof rd->name[c], want, strlen(want));
    rd->col[c] = (int)idx;
    bool required = given[c] != NULL || c == COL_USER || c == COL_ITEM;
    if (idx < 0 && required && numbered) {
      char q[100];
      rc = cofi__fail(diag, COFI_ERR_INVALID, rd->path, rd->csv.line,
                      "--no-header: the %s column must be a column number in 1..%u "
                      "(the first row has %u fields), got '%s'",
                      (const char *const[]){"user", "item", "value", "event", "time"}[c],
                      names.n, names.n, cofi__quote(q, sizeof q, want, strlen(want)));
      goto done;
    }
    if (idx < 0 && required) {
      char list[300];
      cofi__csv_column_list(&names, list, sizeof list);
      rc = cofi__fail(diag, COFI_ERR_PARSE, rd->path, rd->csv.line,
                      "no column '%s' in the header (it has %s)%s",
                      rd->name[c], list,
                      given[c] ? ""
                               : c == COL_USER ? "; name it with --user-col"
                                               : "; name it with --item-col");
      goto done;
    }
  }
  rd->n_cols = names.n;
  /* No column named "event" (nor --event-col): remember the columns whose
   * names often mean events (any case); the first data row decides. */
  if (!numbered && !opt->event_col && rd->col[COL_EVENT] < 0) {
    for (size_t a = 0; a < sizeof event_aliases / sizeof event_aliases[0]; a++)
      for (uint32_t c = 0; c < names.n; c++) {
        size_t len;
        const char *nm = cofi__idmap_get(&names, c, &len);
        bool taken = false;
        for (int k = 0; k < N_COLS; k++) taken |= rd->col[k] == (int)c;
        if (!taken && len == strlen(event_aliases[a]) &&
            strncasecmp(nm, event_aliases[a], len) == 0 &&
            rd->n_candidates < sizeof rd->candidates / sizeof rd->candidates[0])
          rd->candidates[rd->n_candidates++] = (int)c;
      }
  }
done:
  rd->names = names; /* freed by the caller, for the columns note */
  return rc;
}

/* Picks the event column among the candidates: the first whose value in
 * the first data row is an event of the table. Reads that row (kept
 * pending for read_rows). */
static int detect_events(reader *rd, cofi_diag *diag) {
  int rc = cofi__csv_next(&rd->csv, diag);
  if (rc < 0) return rc;
  if (rc == 0) return COFI_OK; /* no data: read_rows says so */
  rd->pending = true;
  size_t o = 0;
  for (size_t k = 0; k < rd->n_candidates; k++) {
    int c = rd->candidates[k];
    if ((size_t)c >= rd->csv.n_fields) continue; /* a short row: read_rows reports it */
    const cofi__csv_field *f = &rd->csv.fields[c];
    for (size_t e = 0; e < rd->n_events; e++)
      if (rd->events[e].len == f->len && !memcmp(rd->events[e].name, f->ptr, f->len)) {
        size_t len;
        const char *nm = cofi__idmap_get(&rd->names, (uint32_t)c, &len);
        rd->col[COL_EVENT] = c;
        cofi__quote(rd->name[COL_EVENT], sizeof rd->name[COL_EVENT], nm, len);
        rd->event_detected = true;
        return COFI_OK;
      }
    if (o + 1 < sizeof rd->rejected) {
      char q[100], qn[100];
      size_t len;
      const char *nm = cofi__idmap_get(&rd->names, (uint32_t)c, &len);
      int w = snprintf(rd->rejected + o, sizeof rd->rejected - o, "%s'%s' holds '%s'",
                       o ? ", " : "", cofi__quote(qn, sizeof qn, nm, len),
                       cofi__quote(q, sizeof q, f->ptr, f->len));
      if (w > 0) o += (size_t)w;
      if (o >= sizeof rd->rejected) o = sizeof rd->rejected - 1;
    }
  }
  return COFI_OK;
}

/* One line for people: which column was used as what, which ignored. */
static void columns_note(const reader *rd, const cofi_read_options *opt, cofi_dataset *ds) {
  static const char *const role[N_COLS] = {"user", "item", "value", "event", "time"};
  char *b = ds->columns;
  size_t size = sizeof ds->columns, o = 0;
#define PUT(...)                                                               \
  do {                                                                         \
    if (o < size) {                                                            \
      int w_ = snprintf(b + o, size - o, __VA_ARGS__);                         \
      o = w_ < 0 ? size : o + (size_t)w_;                                      \
    }                                                                          \
  } while (0)
  if (opt->format == COFI_FORMAT_MOVIELENS) {
    PUT("MovieLens layout: user '%s', item '%s', value '%s', time '%s'", rd->name[COL_USER],
        rd->name[COL_ITEM], rd->name[COL_VALUE], rd->name[COL_TIME]);
  } else if (opt->no_header) {
    PUT("no header: column %d (user), column %d (item)", rd->col[COL_USER] + 1,
        rd->col[COL_ITEM] + 1);
    if (rd->col[COL_VALUE] >= 0) PUT(", column %d (value)", rd->col[COL_VALUE] + 1);
    if (rd->col[COL_EVENT] >= 0) {
      PUT(", column %d (event; %s weights", rd->col[COL_EVENT] + 1,
          opt->event_weights ? "the given" : "default");
      for (size_t e = 0; e < rd->n_events && e < 8; e++)
        PUT("%s%s=%g", e ? ", " : " ", rd->events[e].name, (double)rd->events[e].weight);
      PUT(")");
    }
    if (rd->col[COL_TIME] >= 0) PUT(", column %d (time)", rd->col[COL_TIME] + 1);
    size_t unused = rd->n_cols;
    for (int k = 0; k < N_COLS; k++) unused -= rd->col[k] >= 0;
    if (unused) PUT("; %zu other column%s ignored", unused, unused == 1 ? "" : "s");
    if (rd->col[COL_VALUE] < 0 && rd->col[COL_EVENT] < 0) PUT("; every row weighs 1");
  } else {
    PUT("used");
    bool first = true;
    for (uint32_t c = 0; c < rd->names.n; c++)
      for (int k = 0; k < N_COLS; k++)
        if (rd->col[k] == (int)c) {
          char q[100];
          size_t len;
          const char *nm = cofi__idmap_get(&rd->names, c, &len);
          PUT("%s '%s' (%s", first ? "" : ",", cofi__quote(q, sizeof q, nm, len), role[k]);
          if (k == COL_EVENT) {
            PUT(rd->event_detected ? ", recognised by its values; " : "; ");
            PUT("%s weights", opt->event_weights ? "the given" : "default");
            for (size_t e = 0; e < rd->n_events && e < 8; e++)
              PUT("%s%s=%g", e ? ", " : " ", rd->events[e].name, (double)rd->events[e].weight);
            if (rd->n_events > 8) PUT(", ...");
          }
          PUT(")");
          first = false;
        }
    first = true;
    for (uint32_t c = 0; c < rd->names.n; c++) {
      bool used = false;
      for (int k = 0; k < N_COLS; k++) used |= rd->col[k] == (int)c;
      if (used) continue;
      char q[100];
      size_t len;
      const char *nm = cofi__idmap_get(&rd->names, c, &len);
      PUT("%s '%s'", first ? "; ignored" : ",", cofi__quote(q, sizeof q, nm, len));
      first = false;
    }
    if (rd->col[COL_EVENT] < 0 && rd->rejected[0])
      PUT(" (not an event column: %s, not in the event table; name it with --event-col "
          "and give its weights with --event-weights)", rd->rejected);
    else if (rd->col[COL_EVENT] < 0)
      PUT("; no event column: every row weighs its value (or 1)");
  }
  if (o >= size) memcpy(b + size - 4, "...", 4);
#undef PUT
}

static bool all_digits(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

/* MovieLens: ratings.dat (user::item::rating::time), u.data (tab) or
 * ratings.csv (comma, header userId,movieId,rating,timestamp), told apart
 * by the first line; always four columns in that order. */
static int movielens_plan(reader *rd, cofi_diag *diag) {
  const char *first;
  size_t len;
  int rc = cofi__csv_peek_line(&rd->csv, &first, &len, diag);
  if (rc) return rc;
  if (!first)
    return cofi__fail(diag, COFI_ERR_EMPTY, rd->path, 0, "the file is empty");
  const char *delim = ",";
  size_t dlen = 1;
  if (len >= 2 && memmem(first, len, "::", 2)) {
    delim = "::";
    dlen = 2;
  } else if (memchr(first, '\t', len)) {
    delim = "\t";
  }
  if ((rc = cofi__csv_set_delimiter(&rd->csv, delim, dlen, diag))) return rc;
  static const char *const ml_names[] = {"userId", "movieId", "rating",
                                         "timestamp"};
  for (int c = 0; c < 4; c++) {
    rd->col[c == 3 ? COL_TIME : c] = c;
    snprintf(rd->name[c == 3 ? COL_TIME : c], sizeof rd->name[0], "%s",
             ml_names[c]);
  }
  rd->col[COL_EVENT] = -1;
  rd->n_cols = 4;
  /* A header exists when the first field is not a number. */
  const char *end = memmem(first, len, delim, dlen);
  size_t flen = end ? (size_t)(end - first) : len;
  if (flen > 0 && !all_digits(first, flen)) {
    rc = cofi__csv_next(&rd->csv, diag);
    if (rc < 0) return rc;
    if (rd->csv.n_fields != 4) {
      return cofi__fail(diag, COFI_ERR_PARSE, rd->path, rd->csv.line,
                        "not a MovieLens ratings file: the header has %zu "
                        "columns, expected 4 (userId,movieId,rating,"
                        "timestamp)",
                        rd->csv.n_fields);
    }
    for (int c = 0; c < 4; c++) {
      int k = c == 3 ? COL_TIME : c;
      cofi__quote(rd->name[k], sizeof rd->name[k], rd->csv.fields[c].ptr,
                  rd->csv.fields[c].len);
    }
  }
  return COFI_OK;
}

static int count_error(reader *rd, cofi_diag *diag) {
  size_t got = rd->csv.n_fields;
  if (got < rd->n_cols)
    return cofi__fail(diag, COFI_ERR_PARSE, rd->path, rd->csv.line,
                      "short row: %zu field%s, expected %zu", got,
                      got == 1 ? "" : "s", rd->n_cols);
  return cofi__fail(diag, COFI_ERR_PARSE, rd->path, rd->csv.line,
                    "%zu fields, expected %zu (an unquoted delimiter inside "
                    "a field?)",
                    got, rd->n_cols);
}

static int read_rows(reader *rd, cofi_dataset *ds, cofi_diag *diag) {
  cofi__csv *csv = &rd->csv;
  const int cu = rd->col[COL_USER], ci = rd->col[COL_ITEM];
  const int cv = rd->col[COL_VALUE], ce = rd->col[COL_EVENT];
  const int ct = rd->col[COL_TIME];
  int64_t last_user = -1;
  int rc;
  for (;;) {
    if (rd->pending) {
      rd->pending = false;
      rc = 1;
    } else if ((rc = cofi__csv_next(csv, diag)) != 1) {
      break;
    }
    if (csv->n_fields != rd->n_cols) return count_error(rd, diag);
    rd->rows++;
    const cofi__csv_field *f = csv->fields;
    const char *us = f[cu].ptr, *is = f[ci].ptr;
    size_t ul = f[cu].len, il = f[ci].len;
    if (blank(us, ul) || blank(is, il)) {
      int c = blank(us, ul) ? COL_USER : COL_ITEM;
      return cofi__fail(diag, COFI_ERR_PARSE, rd->path, csv->line,
                        "column '%s' (%d): blank %s ID", rd->name[c],
                        rd->col[c] + 1, c == COL_USER ? "user" : "item");
    }
    float v = 1.0f;
    if (cv >= 0) {
      int k = parse_value(f[cv].ptr, f[cv].len, &v);
      if (k) return value_error(rd, diag, COL_VALUE, f[cv].ptr, f[cv].len, k);
    }
    if (ce >= 0) {
      const char *es = f[ce].ptr;
      size_t el = f[ce].len;
      const event_entry *ev = &rd->events[rd->last_event];
      if (ev->len != el || !same_bytes(ev->name, es, el)) {
        size_t e = 0;
        while (e < rd->n_events && (rd->events[e].len != el ||
                                    !same_bytes(rd->events[e].name, es, el)))
          e++;
        if (e == rd->n_events) return unknown_event(rd, diag, es, el);
        rd->last_event = e;
        ev = &rd->events[e];
      }
      v *= ev->weight;
      /* A finite value can overflow once weighted (3e38 x 5). */
      if (!isfinite(v)) {
        char q[200];
        return cofi__fail(diag, COFI_ERR_PARSE, rd->path, csv->line,
                          "column '%s' (%d): '%s' times the weight %g of event "
                          "'%.*s' is out of range for a float",
                          rd->name[COL_VALUE], rd->col[COL_VALUE] + 1,
                          cofi__quote(q, sizeof q, f[cv].ptr, f[cv].len),
                          (double)ev->weight, (int)(el < 64 ? el : 64), es);
      }
    }
    int64_t t = 0;
    if (ct >= 0 && !parse_time(f[ct].ptr, f[ct].len, &t))
      return field_error(rd, diag, COL_TIME, f[ct].ptr, f[ct].len,
                         "is not a timestamp (integer seconds since 1970 or "
                         "ISO 8601 YYYY-MM-DDTHH:MM:SS[Z])");
    if (rd->has_min) {
      if (!(v >= rd->min_value)) continue;
      if (rd->binarize) v = 1.0f;
    }
    if ((rc = cofi__dataset_reserve_one(ds))) goto oom;
    uint32_t u, i;
    size_t prev_len;
    const char *prev = last_user >= 0
                           ? cofi__idmap_get(&ds->users, (uint32_t)last_user,
                                             &prev_len)
                           : NULL;
    if (prev && prev_len == ul && same_bytes(prev, us, ul)) {
      u = (uint32_t)last_user;
    } else {
      if ((rc = intern_cached(&ds->users, rd->user_cache, us, ul, &u)))
        goto oom;
      last_user = u;
    }
    if ((rc = intern_cached(&ds->items, rd->item_cache, is, il, &i))) goto oom;
    ds->user[ds->n] = u;
    ds->item[ds->n] = i;
    ds->value[ds->n] = v;
    ds->time[ds->n] = t;
    ds->n++;
  }
  return rc;
oom:
  if (rc == COFI_ERR_INVALID)
    return cofi__fail(diag, COFI_ERR_INVALID, rd->path, csv->line,
                      "more than 4294967294 distinct user or item IDs");
  return cofi__fail(diag, rc, rd->path, csv->line, "out of memory");
}

/* fd >= 0: read from it (path names it in messages); else open path.
 * share: read only a byte range of the file (cofi__dataset_read_share),
 * NULL for the whole file. */
static int read_dataset(int fd, const char *path, const cofi_read_options *opt,
                        const cofi__share_locator *share, cofi_dataset **out,
                        cofi_diag *diag) {
  cofi_read_options defaults = cofi_read_options_default();
  if (!opt) opt = &defaults;
  if (!out)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output dataset");
  *out = NULL;
  if (!path)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no file name given");
  if (opt->format != COFI_FORMAT_CSV && opt->format != COFI_FORMAT_MOVIELENS)
    return cofi__fail(diag, COFI_ERR_INVALID, path, 0, "unknown format %d",
                      (int)opt->format);
  if (opt->has_min_value && !isfinite(opt->min_value))
    return cofi__fail(diag, COFI_ERR_INVALID, path, 0,
                      "the minimum value must be a finite number");

  reader rd;
  memset(&rd, 0, sizeof rd);
  rd.path = path;
  rd.has_min = opt->has_min_value != 0;
  /* Compared in single precision, the precision values are kept in, so
   * that "0.7" passes --min-value 0.7. */
  rd.min_value = (float)opt->min_value;
  cofi_dataset *ds = NULL;
  int rc = fd >= 0 ? cofi__csv_open_fd(&rd.csv, fd, path, diag)
                   : cofi__csv_open(&rd.csv, path, diag);
  if (rc) goto done;
  if (opt->format == COFI_FORMAT_MOVIELENS) {
    rd.binarize = rd.has_min;
    rc = movielens_plan(&rd, diag);
  } else {
    rc = header_plan(&rd, opt, diag);
    if (!rc && (rd.col[COL_EVENT] >= 0 || rd.n_candidates)) rc = set_events(&rd, opt, diag);
    if (!rc && rd.col[COL_EVENT] < 0 && rd.n_candidates) rc = detect_events(&rd, diag);
    /* Weights for a log without events would be silently meaningless. */
    if (!rc && rd.col[COL_EVENT] < 0 && opt->event_weights)
      rc = cofi__fail(diag, COFI_ERR_PARSE, path, rd.csv.line,
                      "event weights were given but the header has no "
                      "column '%s'%s%s%s (name it with --event-col)",
                      rd.name[COL_EVENT], rd.rejected[0] ? " and no column whose values are "
                      "in the given table (" : "", rd.rejected, rd.rejected[0] ? ")" : "");
  }
  if (share) {
    /* Every rank planned from the same header (and first data row), so the
     * column mapping is the same everywhere; the locator agrees the
     * outcome with the other ranks and picks this rank's bytes. */
    uint64_t data_line = rd.pending ? rd.csv.line : rd.csv.next_line, begin = 0, end = 0,
             first_line = 0;
    int lrc = share->locate(share->ctx, rc, rd.csv.fd, data_line, &begin, &end, &first_line,
                            diag);
    if (!rc) rc = lrc;
    if (!rc) rc = cofi__csv_restart_at(&rd.csv, begin, end, first_line, diag);
    rd.pending = false;
  }
  if (rc) goto done;
  if ((rc = cofi__dataset_new(&ds))) {
    rc = cofi__fail(diag, rc, path, 0, "out of memory");
    goto done;
  }
  rd.user_cache = cofi__calloc((size_t)1 << CACHE_BITS, sizeof(uint32_t));
  rd.item_cache = cofi__calloc((size_t)1 << CACHE_BITS, sizeof(uint32_t));
  if (!rd.user_cache || !rd.item_cache) {
    rc = cofi__fail(diag, COFI_ERR_NOMEM, path, 0, "out of memory");
    goto done;
  }
  ds->has_time = rd.col[COL_TIME] >= 0;
  snprintf(ds->source, sizeof ds->source, "%s", path);
  columns_note(&rd, opt, ds);
  if ((rc = read_rows(&rd, ds, diag))) goto done;
  if (share) *share->rows = rd.rows; /* a share may be empty: the caller checks the whole */
  else if (ds->n == 0) {
    if (rd.rows == 0)
      rc = cofi__fail(diag, COFI_ERR_EMPTY, path, 0,
                      "no data rows (the file has only a header)");
    else
      rc = cofi__fail(diag, COFI_ERR_EMPTY, path, 0,
                      "none of the %llu rows has a value >= %g",
                      (unsigned long long)rd.rows, opt->min_value);
    goto done;
  }
  *out = ds;
  ds = NULL;
done:
  cofi_dataset_free(ds);
  cofi__free(rd.user_cache);
  cofi__free(rd.item_cache);
  cofi__free(rd.events);
  cofi__csv_close(&rd.csv);
  cofi__idmap_free(&rd.names);
  return rc;
}

int cofi_dataset_read(const char *path, const cofi_read_options *opt,
                      cofi_dataset **out, cofi_diag *diag) {
  return read_dataset(-1, path, opt, NULL, out, diag);
}

int cofi__dataset_read_share(const char *path, const cofi_read_options *opt,
                             const cofi__share_locator *share, cofi_dataset **out,
                             cofi_diag *diag) {
  if (out) *out = NULL;
  return read_dataset(-1, path, opt, share, out, diag);
}

int cofi_dataset_read_fd(int fd, const char *name, const cofi_read_options *opt,
                         cofi_dataset **out, cofi_diag *diag) {
  if (out) *out = NULL;
  if (fd < 0)
    return cofi__fail(diag, COFI_ERR_IO, name ? name : "", 0, "bad file descriptor");
  return read_dataset(fd, name ? name : "<descriptor>", opt, NULL, out, diag);
}

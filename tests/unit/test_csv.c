/*
 * test_csv.c — the delimited-text tokenizer (src/data/csv.c): quoting, line
 * ends, delimiters, line numbers, every refusal with its line, records that
 * straddle the read buffer, and a randomized round trip against a simple
 * reference encoder.
 */
#include "testutil.h"

#include "data/csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
  char *dir;
  char *path; /* the last file written; readers borrow it */
} fixture;

/* A string literal and its length (embedded NULs included). */
#define S(lit) lit, sizeof(lit) - 1

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_rmdir(f->dir);
  free(f->dir);
  free(f->path);
  free(f);
  return 0;
}

/* Opens a file holding `text` (len bytes) with the given delimiter. */
static void open_text(fixture *f, cofi__csv *r, const char *text, size_t len,
                      const char *delim) {
  free(f->path);
  f->path = tu_write_file(f->dir, "t.csv", text, len);
  cofi_diag d = {0};
  assert_int_equal(cofi__csv_open(r, f->path, &d), COFI_OK);
  if (delim) assert_int_equal(cofi__csv_set_delimiter(r, delim, strlen(delim), &d), COFI_OK);
}

static void expect_record(cofi__csv *r, uint64_t line, size_t n, const char *const *want) {
  cofi_diag d = {0};
  int rc = cofi__csv_next(r, &d);
  if (rc != 1) fail_msg("expected a record on line %llu, got %d (%s)", (unsigned long long)line, rc, d.message);
  assert_int_equal(r->line, line);
  assert_int_equal(r->n_fields, n);
  for (size_t i = 0; i < n; i++) {
    if (r->fields[i].len != strlen(want[i]) || memcmp(r->fields[i].ptr, want[i], r->fields[i].len))
      fail_msg("line %llu field %zu: got '%.*s', want '%s'", (unsigned long long)line, i,
               (int)r->fields[i].len, r->fields[i].ptr, want[i]);
  }
}

static void expect_end(cofi__csv *r) {
  cofi_diag d = {0};
  assert_int_equal(cofi__csv_next(r, &d), 0);
}

/* Parses text and expects a PARSE error on `line` whose message holds `what`. */
static void expect_error(fixture *f, const char *text, size_t len, const char *delim,
                         uint64_t line, const char *what) {
  cofi__csv r;
  open_text(f, &r, text, len, delim);
  cofi_diag d = {0};
  int rc;
  while ((rc = cofi__csv_next(&r, &d)) == 1) {}
  if (rc != COFI_ERR_PARSE) fail_msg("expected a parse error (%s), got %d", what, rc);
  if (d.line != line) fail_msg("error '%s' on line %llu, expected %llu", d.message, (unsigned long long)d.line, (unsigned long long)line);
  if (!strstr(d.message, what)) fail_msg("message '%s' lacks '%s'", d.message, what);
  assert_non_null(strstr(d.file, "t.csv"));
  cofi__csv_close(&r);
}

static void test_basic_lf_crlf_cr(void **state) {
  const char *const h[] = {"a", "b", "c"}, *const r1[] = {"1", "2", "3"},
                    *const r2[] = {"x", "", "z"};
  const char *texts[] = {"a,b,c\n1,2,3\nx,,z\n", "a,b,c\r\n1,2,3\r\nx,,z\r\n",
                         "a,b,c\r1,2,3\rx,,z", "a,b,c\n1,2,3\r\nx,,z"};
  for (size_t t = 0; t < 4; t++) {
    cofi__csv r;
    open_text(*state, &r, texts[t], strlen(texts[t]), NULL);
    expect_record(&r, 1, 3, h);
    expect_record(&r, 2, 3, r1);
    expect_record(&r, 3, 3, r2);
    expect_end(&r);
    expect_end(&r); /* stays at the end */
    cofi__csv_close(&r);
  }
}

static void test_quoting(void **state) {
  const char *text =
      "\"x,y\",\"he said \"\"hi\"\"\",z\r\n"
      "\"multi\nline\",\"\",\"a\r\nb\"\n"
      "plain \"quote\" inside,\"\"\"\",last\n"
      "\"\"\n";
  cofi__csv r;
  open_text(*state, &r, text, strlen(text), NULL);
  const char *const a[] = {"x,y", "he said \"hi\"", "z"};
  const char *const b[] = {"multi\nline", "", "a\r\nb"};
  const char *const c[] = {"plain \"quote\" inside", "\"", "last"};
  const char *const e[] = {""};
  expect_record(&r, 1, 3, a);
  expect_record(&r, 2, 3, b);
  expect_record(&r, 5, 3, c); /* the quoted line ends moved it on */
  expect_record(&r, 6, 1, e);
  expect_end(&r);
  cofi__csv_close(&r);
}

static void test_blank_lines_bom_trailing(void **state) {
  const char *text = "\xef\xbb\xbfid,name\n\n\r\n1,\n\n2,b";
  cofi__csv r;
  open_text(*state, &r, text, strlen(text), NULL);
  const char *const h[] = {"id", "name"}, *const a[] = {"1", ""}, *const b[] = {"2", "b"};
  expect_record(&r, 1, 2, h);
  expect_record(&r, 4, 2, a);
  expect_record(&r, 6, 2, b);
  expect_end(&r);
  assert_int_equal(r.records, 3);
  cofi__csv_close(&r);
}

static void test_delimiters(void **state) {
  cofi__csv r;
  const char *dat = "1::1193::5::978300760\na:b::c:::d\n";
  open_text(*state, &r, dat, strlen(dat), "::");
  const char *const a[] = {"1", "1193", "5", "978300760"}, *const b[] = {"a:b", "c", ":d"};
  expect_record(&r, 1, 4, a);
  expect_record(&r, 2, 3, b);
  expect_end(&r);
  cofi__csv_close(&r);

  const char *tsv = "196\t242\t3\t881250949\n\"q\t\"\t,\n";
  open_text(*state, &r, tsv, strlen(tsv), "\t");
  const char *const c[] = {"196", "242", "3", "881250949"}, *const e[] = {"q\t", ","};
  expect_record(&r, 1, 4, c);
  expect_record(&r, 2, 2, e);
  expect_end(&r);
  cofi__csv_close(&r);

  cofi_diag d = {0};
  open_text(*state, &r, "x", 1, NULL);
  assert_int_equal(cofi__csv_set_delimiter(&r, "\"", 1, &d), COFI_ERR_INVALID);
  assert_int_equal(cofi__csv_set_delimiter(&r, "\n", 1, &d), COFI_ERR_INVALID);
  assert_int_equal(cofi__csv_set_delimiter(&r, ":::", 3, &d), COFI_ERR_INVALID);
  assert_int_equal(cofi__csv_set_delimiter(&r, "\xc3", 1, &d), COFI_ERR_INVALID);
  cofi__csv_close(&r);
}

static void test_errors(void **state) {
  fixture *f = *state;
  expect_error(f, S("a,b\n1,2\nx,y\0z\n"), NULL, 3, "NUL byte at byte 4");
  expect_error(f, S("a,b\n\"1,\0\",2\n"), NULL, 2, "NUL byte");
  expect_error(f, S("a,b\n1,2\n3,\"open\n4,5\n"), NULL, 3,
               "unterminated quoted field: the quote opened at byte 3 of the line is never closed");
  expect_error(f, S("a,b\n\"x\"y,2\n"), NULL, 2, "unexpected character after a closing quote at byte 4");
  expect_error(f, S("a::b\n\"x\":y::2\n"), "::", 2, "unexpected character after a closing quote");
  /* Invalid UTF-8: a lone continuation byte, a truncated sequence, an
   * overlong '/', a surrogate, a code point above U+10FFFF; the line and
   * the byte are named. */
  expect_error(f, S("a,b\n1,\x80\n"), NULL, 2, "invalid UTF-8 (byte 0x80) at byte 3");
  expect_error(f, S("a,b\n1,caf\xc3\n"), NULL, 2, "invalid UTF-8 (byte 0xc3) at byte 6");
  expect_error(f, S("a,b\n1,\xc0\xaf\n"), NULL, 2, "invalid UTF-8 (byte 0xc0)");
  expect_error(f, S("a,b\n1,\xed\xa0\x80\n"), NULL, 2, "invalid UTF-8 (byte 0xed)");
  expect_error(f, S("a,b\n1,\xf4\x90\x80\x80\n"), NULL, 2, "invalid UTF-8 (byte 0xf4)");
  /* Inside a multi-line quoted field, the error names the physical line. */
  expect_error(f, S("a,b\n\"x\ny\xff\",2\n"), NULL, 3, "invalid UTF-8 (byte 0xff) at byte 2");
}

static void test_utf8_valid(void **state) {
  (void)state;
  const char *ok = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xac \xef\xbf\xbf \xf4\x8f\xbf\xbf";
  assert_int_equal(cofi__utf8_check(ok, strlen(ok)), strlen(ok));
  assert_int_equal(cofi__utf8_check("ab\xe2\x82", 4), 2);   /* truncated at the end */
  assert_int_equal(cofi__utf8_check("\xe0\x80\xaf", 3), 0); /* overlong 3-byte */
  assert_int_equal(cofi__utf8_check("\xf0\x80\x80\xaf", 4), 0); /* overlong 4-byte */
  assert_int_equal(cofi__utf8_check("x\xc3(", 3), 1);
  /* A valid UTF-8 file reads. */
  cofi__csv r;
  char text[128];
  snprintf(text, sizeof text, "id,title\n1,%s\n", ok);
  open_text(*state, &r, text, strlen(text), NULL);
  const char *const h[] = {"id", "title"}, *const a[] = {"1", ok};
  expect_record(&r, 1, 2, h);
  expect_record(&r, 2, 2, a);
  expect_end(&r);
  cofi__csv_close(&r);
}

/* Exactly 1 MiB is accepted; one byte more is refused, quoted or not, with
 * the line of the long record. */
static void test_long_lines(void **state) {
  fixture *f = *state;
  size_t max = COFI__CSV_MAX_RECORD;
  char *text = malloc(max + 64);
  size_t n = 0;
  memcpy(text, "h\n", 2);
  n = 2;
  memset(text + n, 'x', max);
  n += max;
  text[n++] = '\n';
  cofi__csv r;
  open_text(f, &r, text, n, NULL);
  cofi_diag d = {0};
  assert_int_equal(cofi__csv_next(&r, &d), 1);
  assert_int_equal(cofi__csv_next(&r, &d), 1);
  assert_int_equal(r.fields[0].len, max);
  expect_end(&r);
  cofi__csv_close(&r);

  text[n - 1] = 'x';
  text[n++] = '\n';
  expect_error(f, text, n, NULL, 2, "line longer than 1 MiB");
  /* The same as one quoted field. */
  text[2] = '"';
  text[n - 2] = '"';
  expect_error(f, text, n, NULL, 2, "line longer than 1 MiB (1048576 bytes)");
  /* An unterminated quote early in a big file: the message suspects it. */
  size_t m = 3 * max;
  char *big = malloc(m);
  memcpy(big, "a,b\n\"open,1\n", 12);
  for (size_t i = 12; i < m; i++) big[i] = (i % 20 == 19) ? '\n' : 'y';
  expect_error(f, big, m, NULL, 2,
               "line longer than 1 MiB inside the quoted field that opens at byte 1 of the "
               "line (unterminated quote?)");
  free(big);
  free(text);
}

/* Reference encoder for the round trip: quotes a field when it must. */
static size_t encode(char *out, const char *s, size_t n, char delim, bool force) {
  bool q = force || n == 0 || s[0] == '"';
  for (size_t i = 0; i < n; i++)
    if (s[i] == delim || s[i] == '\n' || s[i] == '\r') q = true;
  size_t o = 0;
  if (q) out[o++] = '"';
  for (size_t i = 0; i < n; i++) {
    if (q && s[i] == '"') out[o++] = '"';
    out[o++] = s[i];
  }
  if (q) out[o++] = '"';
  return o;
}

/* About 9 MiB of random records (so records straddle the 4 MiB buffer at
 * arbitrary points), encoded by the reference and read back field by field. */
static void test_roundtrip_random(void **state) {
  fixture *f = *state;
  const char alphabet[] = "ab,\"\n\r\t x\xc3\xa9";
  const size_t alen = sizeof alphabet - 1;
  size_t cap = 10u << 20, n = 0;
  char *text = malloc(cap + 4096);
  /* Fields stored back to back, with per-record field counts. */
  char *want = malloc(cap);
  /* Every field and record costs at least one byte of text. */
  uint32_t *wlen = malloc(sizeof *wlen * cap);
  uint32_t *wcount = malloc(sizeof *wcount * cap);
  size_t nw = 0, nrec = 0, wn = 0;
  uint64_t s = 12345;
  while (n < (size_t)9 << 20) {
    size_t k = 1 + (s >> 33) % 5;
    wcount[nrec++] = (uint32_t)k;
    for (size_t j = 0; j < k; j++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      size_t len = (s >> 33) % 12;
      char field[64];
      size_t fl = 0;
      for (size_t c = 0; c < len; c++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t pick = (s >> 33) % alen;
        if (alphabet[pick] == '\xc3') { field[fl++] = '\xc3'; field[fl++] = '\xa9'; }
        else if (alphabet[pick] != '\xa9') field[fl++] = alphabet[pick];
      }
      /* A record of one empty field would be a blank line: force quotes. */
      n += encode(text + n, field, fl, ',', k == 1 && fl == 0);
      memcpy(want + wn, field, fl);
      wn += fl;
      wlen[nw++] = (uint32_t)fl;
      if (j + 1 < k) text[n++] = ',';
    }
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    if ((s >> 40) % 2) text[n++] = '\r';
    text[n++] = '\n';
  }
  cofi__csv r;
  open_text(f, &r, text, n, NULL);
  cofi_diag d = {0};
  size_t fi = 0, off = 0;
  for (size_t rec = 0; rec < nrec; rec++) {
    int rc = cofi__csv_next(&r, &d);
    if (rc != 1) fail_msg("record %zu: rc %d %s line %llu", rec, rc, d.message, (unsigned long long)d.line);
    assert_int_equal(r.n_fields, wcount[rec]);
    for (size_t j = 0; j < r.n_fields; j++, fi++) {
      if (r.fields[j].len != wlen[fi] || memcmp(r.fields[j].ptr, want + off, wlen[fi]))
        fail_msg("record %zu field %zu differs", rec, j);
      off += wlen[fi];
    }
  }
  expect_end(&r);
  cofi__csv_close(&r);
  free(text);
  free(want);
  free(wlen);
  free(wcount);
}

static void test_peek_and_header(void **state) {
  fixture *f = *state;
  cofi__csv r;
  cofi__idmap names;
  cofi_diag d = {0};
  const char *line;
  size_t len;

  const char *tsv = "user\titem,x\n1\t2,3\n";
  open_text(f, &r, tsv, strlen(tsv), NULL);
  assert_int_equal(cofi__csv_peek_line(&r, &line, &len, &d), COFI_OK);
  assert_int_equal(len, 11);
  assert_memory_equal(line, "user\titem,x", 11);
  cofi__idmap_init(&names);
  assert_int_equal(cofi__csv_header(&r, 0, &names, &d), COFI_OK); /* tab wins */
  assert_int_equal(names.n, 2);
  assert_int_equal(cofi__idmap_find(&names, "item,x", 6), 1);
  cofi__idmap_free(&names);
  cofi__csv_close(&r);

  open_text(f, &r, "", 0, NULL);
  assert_int_equal(cofi__csv_peek_line(&r, &line, &len, &d), COFI_OK);
  assert_null(line);
  cofi__idmap_init(&names);
  assert_int_equal(cofi__csv_header(&r, 0, &names, &d), COFI_ERR_EMPTY);
  assert_non_null(strstr(d.message, "empty"));
  cofi__idmap_free(&names);
  cofi__csv_close(&r);

  open_text(f, &r, "\n\r\n\n", 4, NULL);
  cofi__idmap_init(&names);
  assert_int_equal(cofi__csv_header(&r, 0, &names, &d), COFI_ERR_EMPTY);
  cofi__idmap_free(&names);
  cofi__csv_close(&r);

  open_text(f, &r, "a,b,a\n", 6, NULL);
  cofi__idmap_init(&names);
  assert_int_equal(cofi__csv_header(&r, 0, &names, &d), COFI_ERR_PARSE);
  assert_int_equal(d.line, 1);
  assert_string_equal(d.message, "duplicate column name 'a' in the header (columns 1 and 3)");
  char list[64];
  cofi__csv_column_list(&names, list, sizeof list);
  assert_string_equal(list, "'a', 'b'");
  cofi__idmap_free(&names);
  cofi__csv_close(&r);
}

static void test_open_failures(void **state) {
  fixture *f = *state;
  cofi__csv r;
  cofi_diag d = {0};
  char path[600];
  snprintf(path, sizeof path, "%s/missing.csv", f->dir);
  assert_int_equal(cofi__csv_open(&r, path, &d), COFI_ERR_IO);
  assert_non_null(strstr(d.message, "cannot open"));
  assert_string_equal(d.file, path);
  cofi__csv_close(&r);
  /* A directory opens but cannot be read. */
  assert_int_equal(cofi__csv_open(&r, f->dir, &d), COFI_OK);
  assert_int_equal(cofi__csv_next(&r, &d), COFI_ERR_IO);
  assert_non_null(strstr(d.message, "read failed"));
  cofi__csv_close(&r);
  cofi__alloc_fail_after(1);
  assert_int_equal(cofi__csv_open(&r, path, &d), COFI_ERR_NOMEM);
  cofi__alloc_fail_after(0);
  cofi__csv_close(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_basic_lf_crlf_cr, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blank_lines_bom_trailing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delimiters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_utf8_valid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
      cmocka_unit_test_setup_teardown(test_roundtrip_random, setup, teardown),
      cmocka_unit_test_setup_teardown(test_peek_and_header, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_failures, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

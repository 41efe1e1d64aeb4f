/*
 * test_cli_output.c — what the command-line tool writes from untrusted
 * bytes, and where it may write.
 *
 * The CLI's own sources are compiled into this test (it has no library of
 * its own): text.c (the JSON and terminal escapers), paths.c (output
 * checks), output.c (result lists), cmd_info.c and args.c.
 *   - JSON from any bytes parses with a strict parser (jansson rejects
 *     NaN, raw control characters and invalid UTF-8) and decodes to the
 *     input where the input was valid UTF-8;
 *   - terminal text never contains a control character;
 *   - `cofi info` on a model whose checksums are valid but whose creation
 *     time is 1e17, 2^63-1 or 2^64-1, whose duration is NaN, whose loss is
 *     infinite and whose version string holds ESC and invalid UTF-8: no
 *     crash, strict JSON, "created": null, no raw control character;
 *   - result lists (recommend, similar) with IDs holding ESC, newlines
 *     and invalid UTF-8: strict JSON, escaped table;
 *   - the content checksum ignores the creation time, duration and version
 *     and sees every other byte;
 *   - cli_check_output refuses an input (same path, symlink, hard link,
 *     descriptor 0) and anything not a regular file.
 */
#include "testutil.h"

#include "internal.h"

#include "../../tools/text.c"
#include "../../tools/paths.c"
#include "../../tools/output.c"
#include "../../tools/errors.c"
#include "../../tools/args.c"
#include "../../tools/cmd_info.c"

#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- capturing what a function writes to stdout ------------------------ */

typedef struct capture {
  char path[600];
  int saved;
} capture;

static void capture_begin(capture *c, const char *dir) {
  snprintf(c->path, sizeof c->path, "%s/stdout.txt", dir);
  fflush(stdout);
  c->saved = dup(1);
  int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(c->saved >= 0 && fd >= 0);
  assert_int_equal(dup2(fd, 1), 1);
  close(fd);
}

/* The captured bytes, NUL-terminated (malloc'd). */
static char *capture_end(capture *c, size_t *len) {
  fflush(stdout);
  assert_int_equal(dup2(c->saved, 1), 1);
  close(c->saved);
  size_t n;
  unsigned char *b = tu_read_file(c->path, &n);
  char *s = malloc(n + 1);
  memcpy(s, b, n);
  s[n] = 0;
  free(b);
  if (len) *len = n;
  return s;
}

static void assert_no_control(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') continue;
    if (c < 0x20 || c == 0x7f) fail_msg("control byte 0x%02x at %zu in: %s", c, i, s);
  }
}

/* Parses strictly (jansson: no NaN, valid UTF-8, no raw controls). */
static json_t *strict_parse(const char *s, size_t n) {
  json_error_t err;
  json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  if (!j) fail_msg("not strict JSON (%s at %d): %s", err.text, err.position, s);
  return j;
}

/* ---- escapers ----------------------------------------------------------- */

static char *json_of(const char *s, size_t n, const char *dir) {
  capture c;
  capture_begin(&c, dir);
  cli_json_string(stdout, s, n);
  return capture_end(&c, NULL);
}

static void json_strings_are_strict(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  static const struct {
    const char *in;
    size_t len;
    const char *decoded; /* NULL: only check it parses */
  } cases[] = {
      {"plain", 5, "plain"},
      {"q\"b\\s/", 6, "q\"b\\s/"},
      {"\x1b[2Jevil", 8, "\x1b[2Jevil"},
      {"a\nb\rc\td\x01\x7f", 9, "a\nb\rc\td\x01\x7f"},
      {"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
      {"bad\xff\xfe", 5, "bad\xef\xbf\xbd\xef\xbf\xbd"},         /* invalid bytes */
      {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},               /* overlong '/' */
      {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
      {"\xf4\x90\x80\x80", 4, NULL},                              /* > U+10FFFF */
      {"cut\xe2\x82", 5, "cut\xef\xbf\xbd\xef\xbf\xbd"},         /* truncated */
      {"\xe2\x80\xa8", 3, "\xe2\x80\xa8"},                        /* U+2028 */
      {"nul\0in", 6, NULL}, /* \u0000: valid JSON */
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char *out = json_of(cases[k].in, cases[k].len, dir);
    assert_no_control(out, strlen(out));
    json_t *j = strict_parse(out, strlen(out));
    assert_true(json_is_string(j));
    if (cases[k].decoded) assert_string_equal(json_string_value(j), cases[k].decoded);
    json_decref(j);
    free(out);
  }
  /* U+2028 is escaped (a JavaScript string literal cannot hold it raw). */
  char *out = json_of("\xe2\x80\xa8", 3, dir);
  assert_string_equal(out, "\"\\u2028\"");
  free(out);
  tu_rmdir(dir);
  free(dir);
}

static void json_numbers_are_strict(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  capture c;
  capture_begin(&c, dir);
  printf("[");
  cli_json_number(stdout, NAN);
  printf(",");
  cli_json_number(stdout, INFINITY);
  printf(",");
  cli_json_number(stdout, -INFINITY);
  printf(",");
  cli_json_number(stdout, 0.1f);
  printf(",");
  cli_json_number(stdout, 3e38);
  printf("]");
  size_t n;
  char *s = capture_end(&c, &n);
  json_t *j = strict_parse(s, n);
  assert_true(json_is_null(json_array_get(j, 0)));
  assert_true(json_is_null(json_array_get(j, 1)));
  assert_true(json_is_null(json_array_get(j, 2)));
  assert_float_equal(json_real_value(json_array_get(j, 3)), (double)0.1f, 1e-12);
  assert_float_equal(json_real_value(json_array_get(j, 4)), 3e38, 1e30);
  json_decref(j);
  free(s);
  tu_rmdir(dir);
  free(dir);
}

static char *text_of(const char *s, size_t n, const char *dir, size_t *width) {
  capture c;
  capture_begin(&c, dir);
  *width = cli_text(stdout, s, n);
  return capture_end(&c, NULL);
}

static void terminal_text_shows_controls(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  static const struct {
    const char *in;
    size_t len;
    const char *out;
    size_t width;
  } cases[] = {
      {"\x1b[2Jevil", 8, "\\x1b[2Jevil", 11},
      {"two\nlines\r\t", 11, "two\\nlines\\r\\t", 14},
      {"del\x7f", 4, "del\\x7f", 7},
      {"csi\xc2\x9b" "2J", 7, "csi\\u009b2J", 11}, /* C1 control U+009B */
      {"\xc3\xa9t\xc3\xa9", 5, "\xc3\xa9t\xc3\xa9", 3},
      {"bad\xff", 4, "bad\\xff", 7},
      {"back\\slash", 10, "back\\slash", 10},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    size_t w;
    char *out = text_of(cases[k].in, cases[k].len, dir, &w);
    assert_string_equal(out, cases[k].out);
    assert_int_equal(w, cases[k].width);
    free(out);
  }
  tu_rmdir(dir);
  free(dir);
}

/* ---- models with hostile contents --------------------------------------- */

/* A small model whose IDs hold ESC, newlines and invalid UTF-8 (bytes the
 * CSV reader refuses, but a model file can carry), and a title with ESC. */
static cofi_model *hostile_model(void) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  const char *users[] = {"u1", "u\x1b[31mred", "u3\nnext", "u4"};
  const char *items[] = {"\x1b[2Jevil", "line\nbreak", "bad\xff\xfe", "ok", "\xc2\x9b" "c1",
                         "fine"};
  for (int u = 0; u < 4; u++)
    for (int i = 0; i < 6; i++)
      if ((u + i) % 3 != 0)
        assert_int_equal(cofi__dataset_add(ds, users[u], strlen(users[u]), items[i],
                                           strlen(items[i]), 1.0f, 0),
                         COFI_OK);
  /* Titles: one metadata field "title". */
  ds->meta.n_fields = 1;
  ds->meta.title_field = 0;
  assert_int_equal(cofi__strtab_push(&ds->meta.names, "title", 5), COFI_OK);
  for (uint32_t i = 0; i < ds->items.n; i++) {
    const char *t = i % 2 ? "Title\x1b]0;owned\x07" : "T\xe9l\xe9";
    assert_int_equal(cofi__strtab_push(&ds->meta.cells, t, strlen(t)), COFI_OK);
  }
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 2;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_dataset_free(ds);
  return m;
}

static void result_lists_are_escaped(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  cofi_model *m = hostile_model();
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  cofi_scored r[8];
  size_t n = 0;
  for (uint32_t i = 0; i < info.n_items && n < 8; i++) r[n++] = (cofi_scored){i, 1.0f / (i + 1)};
  /* "because" lists name the same hostile items, with a non-finite value */
  cli_because why[8];
  for (size_t i = 0; i < 8; i++)
    why[i] = (cli_because){.top = {{(uint32_t)(i % n), 0.25}, {(uint32_t)((i + 1) % n), -INFINITY}},
                           .n = 2};
  for (int items = 0; items < 2; items++) {
    size_t count = items ? n : info.n_users;
    const cli_because *w = items ? why : NULL;
    capture c;
    capture_begin(&c, dir);
    cli_print_scored_json(m, r, count, items, w);
    size_t len;
    char *s = capture_end(&c, &len);
    json_t *j = strict_parse(s, len);
    assert_int_equal(json_array_size(j), count);
    json_decref(j);
    free(s);
    capture_begin(&c, dir);
    cli_print_scored_table(m, r, count, items, w);
    s = capture_end(&c, &len);
    assert_no_control(s, len);
    assert_int_equal(strchr(s, '\x1b'), NULL);
    /* one header line and one line per result (two with a "because"
     * line): no newline from an ID or title */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += s[i] == '\n';
    assert_int_equal(lines, (w ? 2 : 1) * count + 1);
    free(s);
  }
  cofi_model_close(m);
  tu_rmdir(dir);
  free(dir);
}

/* Rewrites every checksum so that a patched file opens (as a forger would). */
static void reseal(unsigned char *b, size_t len) {
  uint32_t n;
  memcpy(&n, b + 24, 4);
  for (uint32_t i = 0; i < n; i++) {
    unsigned char *e = b + 64 + i * 32;
    uint64_t off, l, sum;
    memcpy(&off, e + 8, 8);
    memcpy(&l, e + 16, 8);
    assert_true(off <= len && l <= len - off);
    sum = cofi__hash_bytes(b + off, (size_t)l, 0);
    memcpy(e + 24, &sum, 8);
  }
  uint64_t t = cofi__hash_bytes(b + 64, (size_t)n * 32, 0);
  memcpy(b + 40, &t, 8);
  uint64_t h = cofi__hash_bytes(b, 48, 0);
  memcpy(b + 48, &h, 8);
}

static unsigned char *meta_of(unsigned char *b) {
  uint64_t off;
  memcpy(&off, b + 64 + 8, 8); /* META is the first section */
  return b + off;
}

/* Runs `cofi info PATH [--json]` with stdout captured. */
static char *run_info(const char *dir, const char *path, bool json, int *rc, size_t *len) {
  char *argv[] = {"info", (char *)path, json ? "--json" : NULL, NULL};
  capture c;
  capture_begin(&c, dir);
  *rc = cmd_info(json ? 3 : 2, argv);
  return capture_end(&c, len);
}

static void info_survives_hostile_headers(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char path[600];
  snprintf(path, sizeof path, "%s/m.cofi", dir);
  cofi_model *m = hostile_model();
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  cofi_model_close(m);
  size_t len;
  unsigned char *orig = tu_read_file(path, &len);
  static const uint64_t times[] = {100000000000000000ull, 9223372036854775807ull,
                                   18446744073709551615ull, 253402300800ull, 0};
  for (size_t k = 0; k < sizeof times / sizeof times[0]; k++) {
    unsigned char *b = malloc(len);
    memcpy(b, orig, len);
    unsigned char *meta = meta_of(b);
    memcpy(meta + 72, &times[k], 8);           /* created_unix */
    double nan_ = NAN, inf_ = INFINITY;
    memcpy(meta + 88, &nan_, 8);               /* train_seconds */
    memcpy(meta + 96, &inf_, 8);               /* train_loss */
    memcpy(meta + 104, "0.1\x1b[2J\xff\n\x07zz", 12); /* cofi_version */
    reseal(b, len);
    char *p = tu_write_file(dir, "hostile.cofi", b, len);
    int rc;
    size_t n;
    char *out = run_info(dir, p, true, &rc, &n);
    assert_int_equal(rc, CLI_EXIT_OK);
    json_t *j = strict_parse(out, n);
    if (times[k] == 0) {
      assert_string_equal(json_string_value(json_object_get(j, "created")),
                          "1970-01-01T00:00:00Z");
    } else {
      assert_true(json_is_null(json_object_get(j, "created")));
    }
    if (times[k] == 0)
      assert_int_equal(json_integer_value(json_object_get(j, "created_unix")), 0);
    else
      assert_true(json_is_null(json_object_get(j, "created_unix")));
    assert_true(json_is_null(json_object_get(j, "train_seconds")));
    assert_true(json_is_null(json_object_get(j, "train_loss")));
    assert_true(json_is_string(json_object_get(j, "cofi_version")));
    assert_true(json_is_string(json_object_get(j, "content_checksum")));
    json_decref(j);
    free(out);
    out = run_info(dir, p, false, &rc, &n);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_no_control(out, n);
    if (times[k]) assert_non_null(strstr(out, "(not a valid date)"));
    assert_non_null(strstr(out, "n/a"));
    free(out);
    free(p);
    free(b);
  }
  free(orig);
  tu_rmdir(dir);
  free(dir);
}

/* ---- the content checksum ----------------------------------------------- */

static uint64_t content_of(const unsigned char *b, size_t len) {
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_model_open_memory(b, len, &m, &d), COFI_OK);
  cofi_model_info i;
  cofi_model_get_info(m, &i);
  cofi_model_close(m);
  assert_true(i.content_checksum != 0);
  return i.content_checksum;
}

static void content_checksum_ignores_only_the_run(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char path[600];
  snprintf(path, sizeof path, "%s/m.cofi", dir);
  cofi_model *m = hostile_model();
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  cofi_model_close(m);
  size_t len;
  unsigned char *orig = tu_read_file(path, &len);
  uint64_t base = content_of(orig, len);
  unsigned char *b = malloc(len);
  /* The run-dependent fields: created (72), duration (88), version (104),
   * ranks (144). */
  static const size_t run_fields[][2] = {{72, 8}, {88, 8}, {104, 16}, {144, 4}};
  for (size_t k = 0; k < 4; k++) {
    memcpy(b, orig, len);
    unsigned char *meta = meta_of(b);
    for (size_t i = 0; i < run_fields[k][1]; i++) meta[run_fields[k][0] + i] ^= 0x5a;
    meta[104 + 15] = 0;
    reseal(b, len);
    assert_true(content_of(b, len) == base);
  }
  /* Anything else: the loss, the seed, one bit of a factor, of an ID. */
  uint64_t off_factors;
  memcpy(&off_factors, b + 64 + 32 + 8, 8); /* USER_FACTORS, the second section */
  static const size_t other[] = {96, 48, 0};
  for (size_t k = 0; k < 4; k++) {
    memcpy(b, orig, len);
    if (k < 3) meta_of(b)[other[k] + 1] ^= 1;
    else b[off_factors] ^= 1;
    reseal(b, len);
    cofi_model *o;
    if (cofi_model_open_memory(b, len, &o, &d) != COFI_OK) continue; /* refused: fine */
    cofi_model_info i;
    cofi_model_get_info(o, &i);
    cofi_model_close(o);
    assert_true(i.content_checksum != base);
  }
  free(b);
  free(orig);
  tu_rmdir(dir);
  free(dir);
}

/* ---- outputs against inputs --------------------------------------------- */

static void outputs_never_replace_inputs(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char *in = tu_write_file(dir, "in.csv", "user_id,item_id\nu,i\n", 20);
  char other[600], lnk[600], hard[600], fifo[600], fresh[600];
  snprintf(other, sizeof other, "%s/other.csv", dir);
  snprintf(lnk, sizeof lnk, "%s/link.csv", dir);
  snprintf(hard, sizeof hard, "%s/hard.csv", dir);
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  snprintf(fresh, sizeof fresh, "%s/new.cofi", dir);
  free(tu_write_file(dir, "other.csv", "x", 1));
  assert_int_equal(symlink(in, lnk), 0);
  assert_int_equal(link(in, hard), 0);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  const char *inputs[] = {in, NULL, "-"};
  /* fd 0 is another file here: "-" must not match in.csv */
  assert_int_equal(cli_check_output("t", "-o", fresh, inputs, 3), CLI_EXIT_OK);
  assert_int_equal(cli_check_output("t", "-o", other, inputs, 3), CLI_EXIT_OK);
  assert_int_equal(cli_check_output("t", "-o", in, inputs, 3), CLI_EXIT_USAGE);
  assert_int_equal(cli_check_output("t", "-o", lnk, inputs, 3), CLI_EXIT_USAGE);
  assert_int_equal(cli_check_output("t", "-o", hard, inputs, 3), CLI_EXIT_USAGE);
  assert_int_equal(cli_check_output("t", "-o", fifo, inputs, 3), CLI_EXIT_USAGE);
  assert_int_equal(cli_check_output("t", "-o", dir, inputs, 3), CLI_EXIT_USAGE);
  assert_int_equal(cli_check_output("t", "-o", "/dev/null", NULL, 0), CLI_EXIT_USAGE);
  /* An input given as "-" whose descriptor 0 is in.csv (`< in.csv`). */
  int saved = dup(0), fd = open(in, O_RDONLY);
  assert_true(saved >= 0 && fd >= 0);
  assert_int_equal(dup2(fd, 0), 0);
  close(fd);
  const char *stdin_only[] = {"-"};
  int rc = cli_check_output("t", "-o", hard, stdin_only, 1);
  assert_int_equal(dup2(saved, 0), 0);
  close(saved);
  assert_int_equal(rc, CLI_EXIT_USAGE);
  /* Two inputs from standard input. */
  const char *two[] = {"-", in, "-"};
  assert_int_equal(cli_check_inputs("t", two, 3), CLI_EXIT_USAGE);
  assert_int_equal(cli_check_inputs("t", inputs, 3), CLI_EXIT_OK);
  /* Nothing was touched. */
  struct stat st;
  assert_int_equal(stat(fifo, &st), 0);
  assert_true(S_ISFIFO(st.st_mode));
  size_t n;
  unsigned char *b = tu_read_file(in, &n);
  assert_int_equal(n, 20);
  free(b);
  free(in);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_strings_are_strict),
      cmocka_unit_test(json_numbers_are_strict),
      cmocka_unit_test(terminal_text_shows_controls),
      cmocka_unit_test(result_lists_are_escaped),
      cmocka_unit_test(info_survives_hostile_headers),
      cmocka_unit_test(content_checksum_ignores_only_the_run),
      cmocka_unit_test(outputs_never_replace_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

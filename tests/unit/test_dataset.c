/*
 * test_dataset.c — reading interaction logs and item metadata
 * (src/data/dataset.c, src/data/items.c): columns by name, events and
 * weights, values (checked against strtof), timestamps, the MovieLens
 * layouts, every refusal with its code, line and message, subsets, and
 * out-of-memory at every allocation. Reads ../shared/data/ml-latest-small
 * when it is there.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
  char *dir;
} fixture;

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
  free(f);
  return 0;
}

#define S(lit) lit, sizeof(lit) - 1

static cofi_dataset *read_ok(fixture *f, const char *text, size_t len,
                             const cofi_read_options *o) {
  char *path = tu_write_file(f->dir, "log.csv", text, len);
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  int rc = cofi_dataset_read(path, o, &ds, &d);
  if (rc) fail_msg("read failed: %d %s:%llu: %s", rc, d.file, (unsigned long long)d.line, d.message);
  free(path);
  return ds;
}

/* Reads and expects code, line and a message containing `what`. */
static void read_fails(fixture *f, const char *text, size_t len, const cofi_read_options *o,
                       int code, uint64_t line, const char *what) {
  char *path = tu_write_file(f->dir, "bad.csv", text, len);
  cofi_dataset *ds = (cofi_dataset *)1;
  cofi_diag d = {0};
  int rc = cofi_dataset_read(path, o, &ds, &d);
  if (rc != code) fail_msg("'%s': expected code %d, got %d (%s)", what, code, rc, d.message);
  assert_null(ds);
  if (d.line != line)
    fail_msg("'%s': expected line %llu, got %llu (%s)", what, (unsigned long long)line,
             (unsigned long long)d.line, d.message);
  if (!strstr(d.message, what)) fail_msg("message '%s' lacks '%s'", d.message, what);
  if (code != COFI_ERR_INVALID) assert_string_equal(d.file, path);
  free(path);
}

static void assert_id(const cofi__idmap *m, uint32_t i, const char *want) {
  size_t len;
  const char *s = cofi__idmap_get(m, i, &len);
  if (len != strlen(want) || memcmp(s, want, len)) fail_msg("id %u is '%.*s', want '%s'", i, (int)len, s, want);
}

static void test_defaults_events_values(void **state) {
  cofi_read_options o = cofi_read_options_default();
  cofi_dataset *ds = read_ok(*state, S("user_id,item_id,event,timestamp,extra\n"
                                       "u2,PROD_A,watch,100,x\n"
                                       "u1,42,like,200,y\n"
                                       "u2,42,complete,300,z\n"
                                       "u2,PROD_A,like,400,w\n"), &o);
  assert_int_equal(cofi_dataset_n_interactions(ds), 4);
  assert_int_equal(cofi_dataset_n_users(ds), 2);
  assert_int_equal(cofi_dataset_n_items(ds), 2);
  /* IDs in order of first appearance, kept as given ("42" is a string). */
  assert_id(&ds->users, 0, "u2");
  assert_id(&ds->users, 1, "u1");
  assert_id(&ds->items, 0, "PROD_A");
  assert_id(&ds->items, 1, "42");
  const uint32_t wu[] = {0, 1, 0, 0}, wi[] = {0, 1, 1, 0};
  const float wv[] = {1, 2, 3, 2};
  const int64_t wt[] = {100, 200, 300, 400};
  for (int k = 0; k < 4; k++) {
    assert_int_equal(ds->user[k], wu[k]);
    assert_int_equal(ds->item[k], wi[k]);
    assert_true(ds->value[k] == wv[k]);
    assert_int_equal(ds->time[k], wt[k]);
  }
  assert_true(ds->has_time);
  assert_non_null(strstr(ds->source, "log.csv"));
  cofi_dataset_free(ds);

  /* value x weight, custom weights, named columns in another order. */
  cofi_event_weight w[] = {{"view", 0.5f}, {"buy", 4.0f}};
  o.user_col = "who";
  o.item_col = "what";
  o.value_col = "qty";
  o.event_col = "kind";
  o.time_col = "when";
  o.event_weights = w;
  o.n_event_weights = 2;
  ds = read_ok(*state, S("when,kind,qty,what,who\n"
                         "2017-07-14T02:40:00Z,view,3,i1,a\n"
                         "2017-07-14 02:40:01,buy,2.5,i2,a\n"), &o);
  assert_true(ds->value[0] == 1.5f);
  assert_true(ds->value[1] == 10.0f);
  assert_int_equal(ds->time[0], 1500000000);
  assert_int_equal(ds->time[1], 1500000001);
  cofi_dataset_free(ds);

  /* Only the two ID columns: value 1, time 0, no time column. */
  o = cofi_read_options_default();
  ds = read_ok(*state, S("item_id\tuser_id\nx\ty\n"), &o);
  assert_int_equal(ds->n, 1);
  assert_true(ds->value[0] == 1.0f);
  assert_int_equal(ds->time[0], 0);
  assert_false(ds->has_time);
  assert_id(&ds->users, 0, "y");
  cofi_dataset_free(ds);

  /* An explicit delimiter; quoted IDs with the delimiter inside. */
  o.delimiter = ';';
  ds = read_ok(*state, S("user_id;item_id;value\r\n\"a;b\";\"say \"\"hi\"\"\";7\r\n"), &o);
  assert_id(&ds->users, 0, "a;b");
  assert_id(&ds->items, 0, "say \"hi\"");
  assert_true(ds->value[0] == 7.0f);
  cofi_dataset_free(ds);
}

static void test_timestamps(void **state) {
  cofi_read_options o = cofi_read_options_default();
  cofi_dataset *ds = read_ok(*state, S("user_id,item_id,timestamp\n"
                                       "a,b,0\n"
                                       "a,b,-86400\n"
                                       "a,b,964982703.25\n"
                                       "a,b,2000-02-29\n"
                                       "a,b,2000-03-01T00:00:00+01:00\n"
                                       "a,b,1969-12-31T23:59:59Z\n"
                                       "a,b,2017-07-14T04:40:00.123+0200\n"
                                       "a,b, 1500000000 \n"), &o);
  const int64_t want[] = {0, -86400, 964982703, 951782400, 951865200, -1, 1500000000, 1500000000};
  for (int k = 0; k < 8; k++) assert_int_equal(ds->time[k], want[k]);
  cofi_dataset_free(ds);
  const char *bad[] = {"yesterday", "2017-13-01", "2017-02-29", "2017-07-14T25:00:00",
                       "2017-07-14T02:40:00Q", "12abc", "", "99999999999999999999", "1.", "2017-7-14"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char text[200];
    int n = snprintf(text, sizeof text, "user_id,item_id,timestamp\na,b,1\na,b,%s\n", bad[k]);
    read_fails(*state, text, (size_t)n, &o, COFI_ERR_PARSE, 3, "column 'timestamp' (3):");
    read_fails(*state, text, (size_t)n, &o, COFI_ERR_PARSE, 3, "is not a timestamp");
  }
}

/* Values: every kind of bad number, and exact agreement with strtof. */
static void test_values(void **state) {
  fixture *f = *state;
  cofi_read_options o = cofi_read_options_default();
  o.value_col = "rating";
  struct { const char *v; const char *what; } bad[] = {
      {"abc", "column 'rating' (3): 'abc' is not a number"},
      {"-1", "'-1' is negative"},
      {"-0.5", "is negative"},
      {"nan", "'nan' is not a finite number"},
      {"NaN", "is not a finite number"},
      {"inf", "'inf' is not a finite number"},
      {"-Infinity", "is not a finite number"},
      {"1e999", "'1e999' is out of range"},
      {"", "column 'rating' (3): empty value"},
      {"  ", "empty value"},
      {"1.2.3", "is not a number"},
      {"0x10", "is not a number"},
      {"1e", "is not a number"},
      {".", "is not a number"},
      {"4 stars", "is not a number"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    char text[200];
    int n = snprintf(text, sizeof text, "user_id,item_id,rating\na,b,1\n\nc,d,%s\n", bad[k].v);
    read_fails(f, text, (size_t)n, &o, COFI_ERR_PARSE, 4, bad[k].what);
  }
  /* Random decimals, short and long, with exponents: bit-equal to strtof. */
  size_t cap = 1 << 20, n = 0;
  char *text = malloc(cap);
  char (*tok)[40] = malloc(4000 * sizeof *tok);
  n += (size_t)snprintf(text, cap, "user_id,item_id,rating\n");
  uint64_t s = 99;
  for (int k = 0; k < 4000; k++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    unsigned a = (unsigned)(s >> 40) % 100000, b = (unsigned)(s >> 20) % 1000000;
    switch (k % 6) {
    case 0: snprintf(tok[k], 40, "%u", a); break;
    case 1: snprintf(tok[k], 40, "%u.%u", a % 10, b % 10); break;
    case 2: snprintf(tok[k], 40, "%u.%06u", a, b); break;
    case 3: snprintf(tok[k], 40, "%u%u.%u%u", a, b, b, a); break; /* slow path */
    case 4: snprintf(tok[k], 40, "%ue%d", a, (int)(b % 40) - 20); break;
    default: snprintf(tok[k], 40, "0.%u%u", b, a); break;
    }
    n += (size_t)snprintf(text + n, cap - n, "u%d,i%d,%s\n", k, k, tok[k]);
  }
  cofi_dataset *ds = read_ok(f, text, n, &o);
  assert_int_equal(ds->n, 4000);
  for (int k = 0; k < 4000; k++) {
    float want = strtof(tok[k], NULL);
    if (memcmp(&want, &ds->value[k], sizeof want) != 0)
      fail_msg("'%s' read as %.9g, strtof gives %.9g", tok[k], ds->value[k], want);
  }
  cofi_dataset_free(ds);
  free(tok);
  free(text);
}

static void test_structure_errors(void **state) {
  fixture *f = *state;
  cofi_read_options o = cofi_read_options_default();
  read_fails(f, S(""), &o, COFI_ERR_EMPTY, 0, "the file is empty");
  read_fails(f, S("\n\n"), &o, COFI_ERR_EMPTY, 0, "the file is empty");
  read_fails(f, S("user_id,item_id\n"), &o, COFI_ERR_EMPTY, 0, "no data rows (the file has only a header)");
  read_fails(f, S("user_id,item_id\r\n\r\n"), &o, COFI_ERR_EMPTY, 0, "only a header");
  read_fails(f, S("user,item_id\nu,i\n"), &o, COFI_ERR_PARSE, 1,
             "no column 'user_id' in the header (it has 'user', 'item_id'); name it with --user-col");
  read_fails(f, S("user_id,item\nu,i\n"), &o, COFI_ERR_PARSE, 1, "no column 'item_id'");
  o.value_col = "rating";
  read_fails(f, S("user_id,item_id,value\nu,i,1\n"), &o, COFI_ERR_PARSE, 1, "no column 'rating' in the header");
  o = cofi_read_options_default();
  o.time_col = "ts";
  read_fails(f, S("user_id,item_id\nu,i\n"), &o, COFI_ERR_PARSE, 1, "no column 'ts'");
  o = cofi_read_options_default();
  read_fails(f, S("user_id,item_id,user_id\nu,i,v\n"), &o, COFI_ERR_PARSE, 1,
             "duplicate column name 'user_id' in the header (columns 1 and 3)");
  read_fails(f, S("user_id,item_id\nu,i\nv\nw,x\n"), &o, COFI_ERR_PARSE, 3,
             "short row: 1 field, expected 2");
  read_fails(f, S("user_id,item_id,value\nu,i,1\nv,j\n"), &o, COFI_ERR_PARSE, 3,
             "short row: 2 fields, expected 3");
  read_fails(f, S("user_id,item_id\nu,i\nThe Good, the Bad,x\n"), &o, COFI_ERR_PARSE, 3,
             "3 fields, expected 2 (an unquoted delimiter inside a field?)");
  read_fails(f, S("user_id,item_id\nu,i\n,i\n"), &o, COFI_ERR_PARSE, 3,
             "column 'user_id' (1): blank user ID");
  read_fails(f, S("user_id,item_id\nu,i\nu,  \n"), &o, COFI_ERR_PARSE, 3,
             "column 'item_id' (2): blank item ID");
  read_fails(f, S("user_id,item_id\nu,i\nu,\"\"\n"), &o, COFI_ERR_PARSE, 3, "blank item ID");
  /* Tokenizer refusals come through with their lines. */
  read_fails(f, S("user_id,item_id\nu,i\nu\0,i\n"), &o, COFI_ERR_PARSE, 3, "NUL byte at byte 2");
  read_fails(f, S("user_id,item_id\nu,i\nu,\"i\n"), &o, COFI_ERR_PARSE, 3, "unterminated quoted field");
  read_fails(f, S("user_id,item_id\nu,i\nJos\xe9,i\n"), &o, COFI_ERR_PARSE, 3,
             "invalid UTF-8 (byte 0xe9) at byte 4 of the line");
  /* Events. */
  read_fails(f, S("user_id,item_id,event\nu,i,watch\nu,i,share\n"), &o, COFI_ERR_PARSE, 3,
             "column 'event' (3): unknown event 'share' (known events: watch, like, complete;");
  read_fails(f, S("user_id,item_id,event\nu,i,Watch\n"), &o, COFI_ERR_PARSE, 2, "unknown event 'Watch'");
  /* Missing file. */
  cofi_dataset *ds;
  cofi_diag d = {0};
  char path[600];
  snprintf(path, sizeof path, "%s/nope.csv", f->dir);
  assert_int_equal(cofi_dataset_read(path, &o, &ds, &d), COFI_ERR_IO);
  assert_non_null(strstr(d.message, "cannot open: No such file"));
}

static void test_bad_options(void **state) {
  fixture *f = *state;
  cofi_read_options o = cofi_read_options_default();
  const char *log = "user_id,item_id,event\nu,i,watch\n";
  cofi_event_weight neg[] = {{"watch", -1.0f}};
  o.event_weights = neg;
  o.n_event_weights = 1;
  read_fails(f, log, strlen(log), &o, COFI_ERR_INVALID, 0, "the weight of event 'watch' must be a finite number >= 0");
  cofi_event_weight dup[] = {{"watch", 1.0f}, {"watch", 2.0f}};
  o.event_weights = dup;
  o.n_event_weights = 2;
  read_fails(f, log, strlen(log), &o, COFI_ERR_INVALID, 0, "event 'watch' has two weights");
  cofi_event_weight noname[] = {{NULL, 1.0f}};
  o.event_weights = noname;
  o.n_event_weights = 1;
  read_fails(f, log, strlen(log), &o, COFI_ERR_INVALID, 0, "event weight 1 has no event name");
  cofi_event_weight ok[] = {{"watch", 1.0f}};
  o.event_weights = ok;
  read_fails(f, S("user_id,item_id\nu,i\n"), &o, COFI_ERR_PARSE, 1,
             "event weights were given but the header has no column 'event'");
  o = cofi_read_options_default();
  o.delimiter = '"';
  read_fails(f, log, strlen(log), &o, COFI_ERR_INVALID, 0, "the delimiter cannot be a quote");
  o = cofi_read_options_default();
  o.has_min_value = 1;
  o.min_value = NAN;
  read_fails(f, log, strlen(log), &o, COFI_ERR_INVALID, 0, "the minimum value must be a finite number");
  o = cofi_read_options_default();
  o.format = (cofi_format)7;
  read_fails(f, log, strlen(log), &o, COFI_ERR_INVALID, 0, "unknown format 7");
  cofi_dataset *ds;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(NULL, NULL, &ds, &d), COFI_ERR_INVALID);
  assert_null(ds);
  assert_int_equal(cofi_dataset_n_users(NULL), 0);
  cofi_dataset_free(NULL);
}

static void test_min_value(void **state) {
  cofi_read_options o = cofi_read_options_default();
  o.has_min_value = 1;
  o.min_value = 0.7; /* "0.7" passes: the comparison is in float */
  cofi_dataset *ds = read_ok(*state, S("user_id,item_id,value\na,x,0.7\nb,y,0.69\nc,z,3\n"), &o);
  assert_int_equal(ds->n, 2);
  assert_int_equal(cofi_dataset_n_users(ds), 2); /* b never kept, never interned */
  assert_true(ds->value[0] == 0.7f);
  assert_true(ds->value[1] == 3.0f); /* generic CSV keeps the value */
  cofi_dataset_free(ds);
  o.min_value = 5;
  read_fails(*state, S("user_id,item_id,value\na,x,0.7\nb,y,4.5\n"), &o, COFI_ERR_EMPTY, 0,
             "none of the 2 rows has a value >= 5");
  /* The threshold applies to value x weight. */
  o.min_value = 2;
  ds = read_ok(*state, S("user_id,item_id,event\na,x,watch\na,y,like\na,z,complete\n"), &o);
  assert_int_equal(ds->n, 2);
  assert_true(ds->value[0] == 2.0f && ds->value[1] == 3.0f);
  cofi_dataset_free(ds);
}

static void check_movielens(fixture *f, const char *text, size_t len, const char *user0) {
  cofi_read_options o = cofi_read_options_default();
  o.format = COFI_FORMAT_MOVIELENS;
  cofi_dataset *ds = read_ok(f, text, len, &o);
  assert_int_equal(ds->n, 4);
  assert_int_equal(cofi_dataset_n_users(ds), 2);
  assert_int_equal(cofi_dataset_n_items(ds), 3);
  assert_id(&ds->users, 0, user0);
  assert_id(&ds->items, 2, "1193");
  const float want[] = {4.0f, 3.5f, 5.0f, 1.0f};
  for (int k = 0; k < 4; k++) assert_true(ds->value[k] == want[k]);
  assert_int_equal(ds->time[0], 964982703);
  assert_true(ds->has_time);
  cofi_dataset_free(ds);
  o.has_min_value = 1;
  o.min_value = 4;
  ds = read_ok(f, text, len, &o);
  assert_int_equal(ds->n, 2);
  assert_true(ds->value[0] == 1.0f && ds->value[1] == 1.0f); /* binary positives */
  assert_int_equal(ds->item[1], 1);
  cofi_dataset_free(ds);
}

static void test_movielens_layouts(void **state) {
  fixture *f = *state;
  check_movielens(f, S("userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,3.5,964981247\r\n"
                       "2,1193,5.0,964982224\r\n2,1,1.0,964983815\r\n"), "1");
  check_movielens(f, S("1::1::4::964982703\n1::3::3.5::964981247\n2::1193::5::964982224\n"
                       "2::1::1::964983815\n"), "1");
  check_movielens(f, S("196\t1\t4\t964982703\n196\t3\t3.5\t964981247\n7\t1193\t5\t964982224\n"
                       "7\t1\t1\t964983815\n"), "196");
  cofi_read_options o = cofi_read_options_default();
  o.format = COFI_FORMAT_MOVIELENS;
  read_fails(f, S("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,1,x,964982703\n"), &o,
             COFI_ERR_PARSE, 3, "column 'rating' (3): 'x' is not a number");
  read_fails(f, S("1::1::4::964982703\n1::2::5\n"), &o, COFI_ERR_PARSE, 2,
             "short row: 3 fields, expected 4");
  read_fails(f, S("userId,movieId,rating\n1,1,4.0\n"), &o, COFI_ERR_PARSE, 1,
             "not a MovieLens ratings file: the header has 3 columns, expected 4");
  read_fails(f, S(""), &o, COFI_ERR_EMPTY, 0, "the file is empty");
  read_fails(f, S("userId,movieId,rating,timestamp\r\n"), &o, COFI_ERR_EMPTY, 0, "only a header");
  read_fails(f, S("1::1::4::yesterday\n"), &o, COFI_ERR_PARSE, 1,
             "column 'timestamp' (4): 'yesterday' is not a timestamp");
  read_fails(f, S("1\t1\t-4\t964982703\n"), &o, COFI_ERR_PARSE, 1, "column 'rating' (3): '-4' is negative");
}

static void test_ml_latest_small(void **state) {
  (void)state;
  char *path = tu_shared_data("ml-latest-small/ratings.csv");
  if (!path) skip();
  cofi_read_options o = cofi_read_options_default();
  o.format = COFI_FORMAT_MOVIELENS;
  cofi_dataset *ds;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(path, &o, &ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_n_interactions(ds), 100836);
  assert_int_equal(cofi_dataset_n_users(ds), 610);
  assert_int_equal(cofi_dataset_n_items(ds), 9724);
  assert_id(&ds->users, 0, "1");
  assert_id(&ds->items, 0, "1");
  assert_true(ds->value[0] == 4.0f);
  assert_int_equal(ds->time[0], 964982703);

  char *movies = tu_shared_data("ml-latest-small/movies.csv");
  assert_non_null(movies);
  assert_int_equal(cofi_dataset_read_items(ds, movies, NULL, &d), COFI_OK);
  assert_int_equal(ds->meta.n_fields, 2);
  assert_int_equal(ds->meta.title_field, 0);
  assert_int_equal(ds->meta.cells.n, 9724 * 2);
  size_t len;
  int64_t toy = cofi__idmap_find(&ds->items, "1", 1);
  const char *t = cofi__strtab_get(&ds->meta.cells, (size_t)toy * 2, &len);
  assert_int_equal(len, strlen("Toy Story (1995)"));
  assert_memory_equal(t, "Toy Story (1995)", len);
  /* movieId 11: "American President, The (1995)" is quoted for its comma. */
  int64_t ap = cofi__idmap_find(&ds->items, "11", 2);
  t = cofi__strtab_get(&ds->meta.cells, (size_t)ap * 2, &len);
  assert_int_equal(len, strlen("American President, The (1995)"));
  assert_memory_equal(t, "American President, The (1995)", len);
  /* Some title holds a double quote (doubled in the file). */
  bool quote = false;
  for (size_t i = 0; i < 9724 && !quote; i++) {
    t = cofi__strtab_get(&ds->meta.cells, i * 2, &len);
    quote = memchr(t, '"', len) != NULL;
  }
  assert_true(quote);
  cofi_dataset_free(ds);

  o.has_min_value = 1;
  o.min_value = 4;
  assert_int_equal(cofi_dataset_read(path, &o, &ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_n_interactions(ds), 48580);
  cofi_dataset_free(ds);
  free(movies);
  free(path);
}

static void items_fails(fixture *f, cofi_dataset *ds, const char *text, size_t len,
                        const char *id_col, int code, uint64_t line, const char *what) {
  char *path = tu_write_file(f->dir, "items.csv", text, len);
  cofi_diag d = {0};
  int rc = cofi_dataset_read_items(ds, path, id_col, &d);
  if (rc != code) fail_msg("'%s': expected %d, got %d (%s)", what, code, rc, d.message);
  if (d.line != line) fail_msg("'%s': line %llu, expected %llu", d.message, (unsigned long long)d.line, (unsigned long long)line);
  if (!strstr(d.message, what)) fail_msg("message '%s' lacks '%s'", d.message, what);
  free(path);
}

static void assert_cell(const cofi_dataset *ds, uint32_t item, uint32_t field, const char *want) {
  size_t len;
  const char *s = cofi__strtab_get(&ds->meta.cells, (size_t)item * ds->meta.n_fields + field, &len);
  if (len != strlen(want) || memcmp(s, want, len))
    fail_msg("item %u field %u is '%.*s', want '%s'", item, field, (int)len, s, want);
}

static void test_items(void **state) {
  fixture *f = *state;
  cofi_read_options o = cofi_read_options_default();
  cofi_dataset *ds = read_ok(f, S("user_id,item_id\nu,b\nu,a\nv,c\n"), &o);
  char *path = tu_write_file(f->dir, "items.csv",
                             S("genre,item_id,title\r\n"
                               "Drama,a,\"Good, the Bad\"\r\n"
                               "Comedy,zz,Unused\r\n"
                               "\"Sci\"\"Fi\",b,\"The \"\"Thing\"\"\"\r\n"));
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read_items(ds, path, "item_id", &d), COFI_OK);
  assert_int_equal(ds->meta.n_fields, 2);
  assert_int_equal(ds->meta.title_field, 1);
  size_t len;
  const char *name = cofi__strtab_get(&ds->meta.names, 0, &len);
  assert_memory_equal(name, "genre", len);
  assert_cell(ds, 0, 0, "Sci\"Fi"); /* item 0 is "b" */
  assert_cell(ds, 0, 1, "The \"Thing\"");
  assert_cell(ds, 1, 1, "Good, the Bad");
  assert_cell(ds, 2, 0, ""); /* "c" has no metadata */
  assert_cell(ds, 2, 1, "");
  free(path);

  /* Reading again replaces the metadata; without "title" the first
   * non-ID column is the title; the ID column defaults to the first. */
  path = tu_write_file(f->dir, "items2.tsv", S("id\tname\tyear\nc\tSee\t1999\n"));
  assert_int_equal(cofi_dataset_read_items(ds, path, NULL, &d), COFI_OK);
  assert_int_equal(ds->meta.n_fields, 2);
  assert_int_equal(ds->meta.title_field, 0);
  assert_cell(ds, 2, 0, "See");
  assert_cell(ds, 2, 1, "1999");
  assert_cell(ds, 0, 0, "");
  free(path);

  items_fails(f, ds, S("id,title\na,x\nb,y\na,z\n"), NULL, COFI_ERR_PARSE, 4,
              "item 'a' appears twice (first on line 2)");
  items_fails(f, ds, S("id,title\na,x\nb\n"), NULL, COFI_ERR_PARSE, 3, "short row: 1 field, expected 2");
  items_fails(f, ds, S("id,title\na,x,y\n"), NULL, COFI_ERR_PARSE, 2, "3 fields, expected 2");
  items_fails(f, ds, S("id,title\n ,x\n"), NULL, COFI_ERR_PARSE, 2, "column 1: blank item ID");
  items_fails(f, ds, S("id,title\na,\"x\n"), NULL, COFI_ERR_PARSE, 2, "unterminated quoted field");
  items_fails(f, ds, S("id,title\na,\xff\n"), NULL, COFI_ERR_PARSE, 2, "invalid UTF-8");
  items_fails(f, ds, S("id,title\na,x\n"), "movieId", COFI_ERR_PARSE, 1,
              "no column 'movieId' in the header (it has 'id', 'title')");
  items_fails(f, ds, S("id\na\n"), NULL, COFI_ERR_PARSE, 1, "the header has no column besides the item ID");
  items_fails(f, ds, S("id,title\n"), NULL, COFI_ERR_EMPTY, 0, "no item rows");
  items_fails(f, ds, S(""), NULL, COFI_ERR_EMPTY, 0, "the file is empty");
  items_fails(f, ds, S("id,title\nq,x\nr,y\n"), NULL, COFI_ERR_EMPTY, 0,
              "none of the 2 items in the file has interactions (is 'id' the item ID column?)");
  items_fails(f, ds, S("id,title,title\na,x,y\n"), NULL, COFI_ERR_PARSE, 1, "duplicate column name 'title'");
  /* Failures leave the previous metadata in place. */
  assert_cell(ds, 2, 0, "See");
  assert_int_equal(cofi_dataset_read_items(NULL, "x", NULL, &d), COFI_ERR_INVALID);
  cofi_dataset_free(ds);
}

static void test_subset_and_add(void **state) {
  (void)state;
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  assert_int_equal(cofi__dataset_add(ds, "u1", 2, "i1", 2, 1.0f, 10), COFI_OK);
  assert_int_equal(cofi__dataset_add(ds, "u2", 2, "i2", 2, 2.0f, 20), COFI_OK);
  assert_int_equal(cofi__dataset_add(ds, "u1", 2, "i3", 2, 3.0f, 30), COFI_OK);
  assert_int_equal(cofi__dataset_add(ds, "", 0, "i3", 2, 3.0f, 30), COFI_ERR_INVALID);
  ds->has_time = true;
  assert_int_equal(cofi__strtab_push(&ds->meta.names, "title", 5), COFI_OK);
  for (int i = 0; i < 3; i++) assert_int_equal(cofi__strtab_push(&ds->meta.cells, "T", 1), COFI_OK);
  ds->meta.n_fields = 1;
  ds->meta.title_field = 0;
  const bool keep[] = {false, true, true};
  cofi_dataset *sub;
  assert_int_equal(cofi__dataset_subset(ds, keep, &sub), COFI_OK);
  assert_int_equal(sub->n, 2);
  assert_int_equal(cofi_dataset_n_users(sub), 2); /* same maps as the parent */
  assert_int_equal(cofi_dataset_n_items(sub), 3);
  assert_id(&sub->users, 1, "u2");
  assert_int_equal(sub->user[0], 1);
  assert_int_equal(sub->item[1], 2);
  assert_true(sub->value[1] == 3.0f);
  assert_int_equal(sub->time[1], 30);
  assert_true(sub->has_time);
  assert_int_equal(sub->meta.cells.n, 3);
  assert_int_equal(sub->meta.title_field, 0);
  cofi_dataset_free(sub);
  /* Out of memory at each allocation of subset: an error, never a leak. */
  for (uint64_t n = 1;; n++) {
    cofi__alloc_fail_after(n);
    int rc = cofi__dataset_subset(ds, keep, &sub);
    cofi__alloc_fail_after(0);
    if (rc == COFI_OK) { cofi_dataset_free(sub); break; }
    assert_int_equal(rc, COFI_ERR_NOMEM);
    assert_null(sub);
  }
  cofi_dataset_free(ds);
}

/* Every allocation of a read (and of an item join) failing in turn gives
 * COFI_ERR_NOMEM with a message, and nothing leaks (run under ASan). */
static void test_out_of_memory(void **state) {
  fixture *f = *state;
  char *path = tu_write_file(f->dir, "log.csv",
                             S("user_id,item_id,event,value\nu1,i1,watch,1\nu2,i2,like,2\nu1,i2,complete,3\n"));
  char *items = tu_write_file(f->dir, "items.csv", S("item_id,title\ni1,One\ni2,\"Two, too\"\n"));
  cofi_read_options o = cofi_read_options_default();
  uint64_t n;
  for (n = 1;; n++) {
    cofi_dataset *ds = NULL;
    cofi_diag d = {0};
    cofi__alloc_fail_after(n);
    int rc = cofi_dataset_read(path, &o, &ds, &d);
    cofi__alloc_fail_after(0);
    if (rc == COFI_OK) {
      for (uint64_t m = 1;; m++) {
        cofi__alloc_fail_after(m);
        rc = cofi_dataset_read_items(ds, items, NULL, &d);
        cofi__alloc_fail_after(0);
        if (rc == COFI_OK) break;
        assert_int_equal(rc, COFI_ERR_NOMEM);
        assert_string_equal(d.message, "out of memory");
        assert_int_equal(ds->meta.n_fields, 0);
      }
      assert_int_equal(ds->meta.n_fields, 1);
      cofi_dataset_free(ds);
      break;
    }
    assert_int_equal(rc, COFI_ERR_NOMEM);
    assert_null(ds);
    assert_non_null(strstr(d.message, "out of memory"));
  }
  assert_true(n > 5);
  free(path);
  free(items);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_defaults_events_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timestamps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_structure_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
      cmocka_unit_test_setup_teardown(test_min_value, setup, teardown),
      cmocka_unit_test_setup_teardown(test_movielens_layouts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ml_latest_small, setup, teardown),
      cmocka_unit_test_setup_teardown(test_items, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subset_and_add, setup, teardown),
      cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

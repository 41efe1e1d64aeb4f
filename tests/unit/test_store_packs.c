/*
 * test_store_packs.c — the event packs of a SQLite store (src/store/pack.c,
 * docs/store.md "Event packs"): the layout round trip (edge values, seq
 * gaps, partial ranges, damaged blobs), packs read back exactly as the
 * rows they copy (a scan mixing packs and rows, the dataset, the two-half
 * parallel scan), `cofi import` packing what it imports, the triggers
 * dropping a pack when one of its events is deleted or changed, and a
 * damaged pack refused with its row named, and a version-1 store packed
 * by the open that migrates it.
 */
#include "testutil.h"
#include "store_fixture.h"

#include "internal.h"
#include "store/store.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) lit, sizeof(lit) - 1

/* ---- the layout -------------------------------------------------------- */

typedef struct got {
  size_t n;
  cofi__store_row r[64];
} got;

static int keep(void *ctx, const cofi__store_row *r) {
  got *g = ctx;
  assert_true(g->n < 64);
  g->r[g->n++] = *r;
  return COFI_OK;
}

static void assert_same_row(const cofi__store_row *a, const cofi__store_row *b) {
  assert_int_equal(a->seq, b->seq);
  assert_int_equal(a->user, b->user);
  assert_int_equal(a->item, b->item);
  assert_int_equal(a->code, b->code);
  assert_memory_equal(&a->value, &b->value, sizeof a->value);
  assert_int_equal(a->has_ts, b->has_ts);
  if (a->has_ts) assert_int_equal(a->ts, b->ts);
}

static void test_layout_round_trip(void **state) {
  (void)state;
  cofi__store_row rows[6] = {
      {1, 7, 3, NULL, 0, 0.1, INT64_MIN, true, 0},
      {2, 1, 70000, NULL, 0, 5.0, -5, false, 2},
      {9, INT64_MAX, 3, NULL, 0, 1e300, INT64_MAX, true, 1},
      {10, 7, 0, NULL, 0, 0.0, 0, true, 0},
      {11, 8, 3, NULL, 0, 2.5, 12, false, 300},
      {4000000000ULL, 9, 3, NULL, 0, 3.0, 13, true, 0},
  };
  unsigned char *blob;
  size_t len;
  assert_int_equal(cofi__pack_encode(rows, 6, &blob, &len), COFI_OK);
  got g = {0};
  const char *problem = NULL;
  assert_int_equal(cofi__pack_decode(blob, len, INT64_MIN, INT64_MAX, keep, &g, &problem),
                   COFI_OK);
  assert_int_equal(g.n, 6);
  for (size_t k = 0; k < 6; k++) assert_same_row(&g.r[k], &rows[k]);
  /* a range: 2 < seq <= 11 */
  memset(&g, 0, sizeof g);
  assert_int_equal(cofi__pack_decode(blob, len, 2, 11, keep, &g, &problem), COFI_OK);
  assert_int_equal(g.n, 3);
  assert_int_equal(g.r[0].seq, 9);
  assert_int_equal(g.r[2].seq, 11);
  /* damaged: shorter, another version, a width above 8 */
  assert_int_equal(cofi__pack_decode(blob, len - 1, 0, INT64_MAX, keep, &g, &problem),
                   COFI_ERR_CORRUPT);
  assert_string_equal(problem, "pack length does not match its header");
  blob[0] = 2;
  assert_int_equal(cofi__pack_decode(blob, len, 0, INT64_MAX, keep, &g, &problem),
                   COFI_ERR_CORRUPT);
  assert_non_null(strstr(problem, "version"));
  blob[0] = 1;
  blob[5] = 9;
  assert_int_equal(cofi__pack_decode(blob, len, 0, INT64_MAX, keep, &g, &problem),
                   COFI_ERR_CORRUPT);
  cofi__free(blob);
  /* consecutive seqs, one value, no times: the smallest layout */
  cofi__store_row same[3] = {{5, 1, 1, NULL, 0, 1.0, 0, false, 0},
                             {6, 2, 1, NULL, 0, 1.0, 0, false, 0},
                             {7, 3, 1, NULL, 0, 1.0, 0, false, 0}};
  assert_int_equal(cofi__pack_encode(same, 3, &blob, &len), COFI_OK);
  memset(&g, 0, sizeof g);
  assert_int_equal(cofi__pack_decode(blob, len, 0, INT64_MAX, keep, &g, &problem), COFI_OK);
  assert_int_equal(g.n, 3);
  for (size_t k = 0; k < 3; k++) assert_same_row(&g.r[k], &same[k]);
  assert_true(len < 1 + 4 + 45 + 2 + 8 + 3 + 8 + 1);
  cofi__free(blob);
  assert_int_equal(cofi__pack_encode(same, 0, &blob, &len), COFI_ERR_INVALID);
}

/* ---- a store ----------------------------------------------------------- */

typedef struct store_fx {
  char *dir;
  char url[512];
} store_fx;

static long long raw_int(const store_fx *f, const char *q) {
  sqlite3 *db;
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_open(f->url + 7, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  long long v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static void raw_sql(const store_fx *f, const char *q) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->url + 7, &db), SQLITE_OK);
  char *err = NULL;
  if (sqlite3_exec(db, q, NULL, NULL, &err) != SQLITE_OK) fail_msg("sqlite: %s: %s", q, err);
  sqlite3_close(db);
}

static cofi_store *open_ok(const store_fx *f) {
  cofi_store *s = NULL;
  cofi_diag d = {0};
  if (cofi_store_open(f->url, &s, &d)) fail_msg("open: %s", d.message);
  return s;
}

/* Everything a scan hands over, in order, as one string. */
typedef struct text {
  char buf[1 << 16];
  size_t n;
} text;

static int describe(const cofi_store_event *e, void *ctx) {
  text *t = ctx;
  uint64_t bits;
  memcpy(&bits, &e->value, 8);
  int w = snprintf(t->buf + t->n, sizeof t->buf - t->n, "%llu %.*s %.*s %.*s %llx %d %lld\n",
                   (unsigned long long)e->seq, (int)e->user_len, e->user_id, (int)e->item_len,
                   e->item_id, e->event ? (int)e->event_len : 1, e->event ? e->event : "-",
                   (unsigned long long)bits, e->has_timestamp,
                   (long long)(e->has_timestamp ? e->timestamp : 0));
  assert_true(w > 0 && (size_t)w < sizeof t->buf - t->n);
  t->n += (size_t)w;
  return 0;
}

static void scan_text(cofi_store *s, text *t) {
  t->n = 0;
  t->buf[0] = 0;
  cofi_diag d = {0};
  if (cofi_store_scan_events(s, describe, t, &d)) fail_msg("scan: %s", d.message);
}

/* Appends n events number from..from+n: users u0..u4, items i0..i6,
 * types like / watch / none, values not all floats, times mostly. */
static void append_some(cofi_store *s, int from, int n) {
  cofi_store_event ev[32];
  char ids[32][2][16];
  assert_true(n <= 32);
  const char *types[3] = {"like", "watch", NULL};
  for (int k = 0; k < n; k++) {
    int x = from + k;
    snprintf(ids[k][0], 16, "u%d", x % 5);
    snprintf(ids[k][1], 16, "i%d", x % 7);
    memset(&ev[k], 0, sizeof ev[k]);
    ev[k].user_id = ids[k][0];
    ev[k].user_len = strlen(ids[k][0]);
    ev[k].item_id = ids[k][1];
    ev[k].item_len = strlen(ids[k][1]);
    ev[k].event = types[x % 3];
    ev[k].event_len = ev[k].event ? strlen(ev[k].event) : 0;
    ev[k].value = x % 4 ? 0.1 * x : 2.0;
    ev[k].timestamp = 1000 - x;
    ev[k].has_timestamp = x % 6 != 0;
  }
  cofi_diag d = {0};
  if (cofi_store_append_events(s, ev, (size_t)n, &d)) fail_msg("append: %s", d.message);
}

static void compact_ok(cofi_store *s, uint64_t want) {
  uint64_t n = 99;
  cofi_diag d = {0};
  if (cofi_store_compact(s, &n, &d)) fail_msg("compact: %s", d.message);
  assert_int_equal(n, want);
}

static void datasets_equal(const cofi_dataset *a, const cofi_dataset *b) {
  assert_int_equal(a->n, b->n);
  assert_int_equal(a->users.n, b->users.n);
  assert_int_equal(a->items.n, b->items.n);
  assert_int_equal(a->has_time, b->has_time);
  assert_memory_equal(a->user, b->user, a->n * sizeof *a->user);
  assert_memory_equal(a->item, b->item, a->n * sizeof *a->item);
  assert_memory_equal(a->value, b->value, a->n * sizeof *a->value);
  assert_memory_equal(a->time, b->time, a->n * sizeof *a->time);
}

static int setup(void **state) {
  store_fx *f = calloc(1, sizeof *f);
  f->dir = tu_mkdtemp();
  snprintf(f->url, sizeof f->url, "sqlite:%s/s.db", f->dir);
  *state = f;
  cofi__pack_min = 3;
  return 0;
}

static int teardown(void **state) {
  store_fx *f = *state;
  tu_rmdir(f->dir);
  free(f->dir);
  free(f);
  cofi__pack_min = 4096;
  cofi__store_parallel_min = 2000000;
  cofi__store_parallel_always = false;
  return 0;
}

static void test_packs_read_as_rows(void **state) {
  store_fx *f = *state;
  cofi_store *s = open_ok(f);
  append_some(s, 0, 20);
  compact_ok(s, 20);
  append_some(s, 20, 2); /* too few to pack (pack_min 3): stay rows */
  compact_ok(s, 0);
  append_some(s, 22, 10);
  compact_ok(s, 12);
  append_some(s, 32, 7); /* rows after the last pack */
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_event_packs"), 2);
  assert_int_equal(raw_int(f, "SELECT sum(n) FROM cofi_event_packs"), 32);
  text packed, rows;
  scan_text(s, &packed);
  cofi_dataset *a = NULL, *b = NULL, *c = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_read_dataset(s, NULL, &a, &d), COFI_OK);
  cofi__store_parallel_min = 1; /* two halves, each through packs and rows */
  cofi__store_parallel_always = true;
  uint64_t before = cofi__store_parallel_scans;
  assert_int_equal(cofi_store_read_dataset(s, NULL, &c, &d), COFI_OK);
  assert_int_equal(cofi__store_parallel_scans, before + 1);
  cofi__store_parallel_min = 2000000;
  cofi__store_parallel_always = false;
  cofi_store_close(s);
  raw_sql(f, "DELETE FROM cofi_event_packs");
  s = open_ok(f);
  scan_text(s, &rows);
  assert_int_equal(cofi_store_read_dataset(s, NULL, &b, &d), COFI_OK);
  assert_string_equal(packed.buf, rows.buf);
  assert_int_equal(a->n, 39);
  datasets_equal(a, b);
  datasets_equal(c, b);
  cofi_dataset_free(a);
  cofi_dataset_free(b);
  cofi_dataset_free(c);
  cofi_store_close(s);
}

static void test_changes_drop_packs(void **state) {
  store_fx *f = *state;
  cofi_store *s = open_ok(f);
  append_some(s, 0, 10);
  compact_ok(s, 10);
  append_some(s, 10, 10);
  compact_ok(s, 10);
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_event_packs"), 2);
  /* u4 has events 4, 9, 14 and 19 (seq 5, 10, 15, 20): deleting them drops both packs */
  uint64_t n = 0;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_delete_user(s, S("u4"), &n, &d), COFI_OK);
  assert_int_equal(n, 4);
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_event_packs"), 0);
  text t;
  scan_text(s, &t);
  assert_null(strstr(t.buf, " u4 "));
  compact_ok(s, 16);
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_event_packs"), 1);
  cofi_store_close(s);
  /* a change behind cofi's back drops the pack holding that event */
  raw_sql(f, "UPDATE cofi_events SET value = 9 WHERE seq = 2");
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_event_packs"), 0);
  s = open_ok(f);
  scan_text(s, &t);
  assert_non_null(strstr(t.buf, "2 u1 i1 watch 4022000000000000 1 999\n"));
  cofi_store_close(s);
}

static void test_import_packs(void **state) {
  store_fx *f = *state;
  char *log = tu_write_file(f->dir, "log.csv",
                            S("user_id,item_id,rating,timestamp\n"
                              "a,x,1,10\nb,y,2.5,11\na,y,0.1,12\nc,x,4,13\nb,x,5,14\n"));
  cofi_dataset *csv = NULL, *st = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(log, NULL, &csv, &d), COFI_OK);
  cofi_store *s = open_ok(f);
  uint64_t n = 0;
  assert_int_equal(cofi_store_import_dataset(s, csv, &n, &d), COFI_OK);
  assert_int_equal(raw_int(f, "SELECT sum(n) FROM cofi_event_packs"), 5);
  compact_ok(s, 0); /* all covered */
  assert_int_equal(cofi_store_read_dataset(s, NULL, &st, &d), COFI_OK);
  datasets_equal(st, csv);
  cofi_dataset_free(st);
  cofi_dataset_free(csv);
  cofi_store_close(s);
  free(log);
}

static void test_damaged_pack(void **state) {
  store_fx *f = *state;
  cofi_store *s = open_ok(f);
  append_some(s, 0, 8);
  compact_ok(s, 8);
  cofi_store_close(s);
  raw_sql(f, "UPDATE cofi_event_packs SET data = substr(data, 1, length(data) - 1)");
  s = open_ok(f);
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_ERR_CORRUPT);
  if (!strstr(d.message, "table cofi_event_packs, row 8: pack length does not match"))
    fail_msg("%s", d.message);
  assert_non_null(strstr(d.message, "DELETE FROM cofi_event_packs"));
  cofi_store_close(s);
  /* a pack whose events fall outside its range */
  raw_sql(f, "DELETE FROM cofi_event_packs");
  s = open_ok(f);
  compact_ok(s, 8);
  cofi_store_close(s);
  raw_sql(f, "UPDATE cofi_event_packs SET last = 5");
  s = open_ok(f);
  assert_int_equal(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_ERR_CORRUPT);
  assert_non_null(strstr(d.message, "row 5: seq 6 outside the pack's range"));
  cofi_store_close(s);
  raw_sql(f, "UPDATE cofi_event_packs SET data = X'01'");
  s = open_ok(f);
  assert_int_equal(cofi_store_read_dataset(s, NULL, &ds, &d), COFI_ERR_CORRUPT);
  assert_non_null(strstr(d.message, "row 5: unknown pack version or truncated header"));
  cofi_store_close(s);
}

/* A version-1 store is packed by the open that migrates it. */
/* A backlog longer than two packs: cofi_store_compact packs it one pack
 * per write transaction, every event exactly once, and the scan reads
 * the same dataset as from the rows. */
static void test_compact_backlog_in_packs(void **state) {
  store_fx *f = *state;
  cofi_store *s = open_ok(f);
  enum { BATCH = 4096, N = 2 * COFI__PACK_EVENTS + 100 };
  cofi_store_event *ev = calloc(BATCH, sizeof *ev);
  char (*ids)[2][16] = calloc(BATCH, sizeof *ids);
  assert_non_null(ev);
  assert_non_null(ids);
  for (int from = 0; from < N; from += BATCH) {
    int n = N - from < BATCH ? N - from : BATCH;
    for (int k = 0; k < n; k++) {
      int x = from + k;
      snprintf(ids[k][0], 16, "u%d", x % 97);
      snprintf(ids[k][1], 16, "i%d", x % 89);
      ev[k] = (cofi_store_event){.user_id = ids[k][0], .user_len = strlen(ids[k][0]),
                                 .item_id = ids[k][1], .item_len = strlen(ids[k][1]),
                                 .event = "watch", .event_len = 5, .value = 1.0 + x % 3,
                                 .timestamp = x, .has_timestamp = true};
    }
    cofi_diag d = {0};
    if (cofi_store_append_events(s, ev, (size_t)n, &d)) fail_msg("append: %s", d.message);
  }
  free(ev);
  free(ids);
  cofi_dataset *rows = NULL, *packed = NULL;
  cofi_read_options ro = cofi_read_options_default();
  cofi_diag d = {0};
  assert_int_equal(cofi_store_read_dataset(s, &ro, &rows, &d), COFI_OK);
  compact_ok(s, N);
  assert_int_equal(raw_int(f, "SELECT count(*) FROM cofi_event_packs"), 3);
  assert_int_equal(raw_int(f, "SELECT max(n) FROM cofi_event_packs"), COFI__PACK_EVENTS);
  assert_int_equal(raw_int(f, "SELECT sum(n) FROM cofi_event_packs"), N);
  compact_ok(s, 0);
  assert_int_equal(cofi_store_read_dataset(s, &ro, &packed, &d), COFI_OK);
  datasets_equal(rows, packed);
  cofi_dataset_free(rows);
  cofi_dataset_free(packed);
  cofi_store_close(s);
}

static void test_migration_packs(void **state) {
  store_fx *f = *state;
  raw_sql(f, tu_store_v1_sqlite);
  raw_sql(f,
          "INSERT INTO cofi_users(id) VALUES ('a'), ('b');"
          "INSERT INTO cofi_items(id) VALUES ('x');"
          "INSERT INTO cofi_events(ukey, ikey, event, value, ts) VALUES"
          "  (1, 1, 'like', 1, 5), (2, 1, NULL, 2, NULL), (1, 1, 'watch', 3, 7),"
          "  (2, 1, 'like', 0.1, 8);");
  cofi_store *s = open_ok(f);
  assert_non_null(cofi_store_migration(s));
  assert_non_null(strstr(cofi_store_migration(s), "(4 events kept, 4 packed)"));
  text packed, rows;
  scan_text(s, &packed);
  cofi_store_close(s);
  assert_int_equal(raw_int(f, "SELECT sum(n) FROM cofi_event_packs"), 4);
  raw_sql(f, "DELETE FROM cofi_event_packs");
  s = open_ok(f);
  assert_null(cofi_store_migration(s));
  scan_text(s, &rows);
  assert_string_equal(packed.buf, rows.buf);
  assert_non_null(strstr(rows.buf, "1 a x like 3ff0000000000000 1 5\n"));
  assert_non_null(strstr(rows.buf, "2 b x - 4000000000000000 0 0\n"));
  cofi_store_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_layout_round_trip),
      cmocka_unit_test_setup_teardown(test_packs_read_as_rows, setup, teardown),
      cmocka_unit_test_setup_teardown(test_changes_drop_packs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_import_packs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_damaged_pack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migration_packs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_compact_backlog_in_packs, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

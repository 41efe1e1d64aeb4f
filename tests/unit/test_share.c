/*
 * test_share.c — one rank's byte range of a file (data/share.c), without
 * MPI: N threads play N ranks over an in-process allgatherv. For 1 to 5
 * ranks, the shares' rows, concatenated in rank order, are exactly the
 * one-process reader's rows (IDs, values), whatever the line ends (LF,
 * CRLF, lone CR), a byte-order mark, a header, blank lines or fewer lines
 * than ranks; a bad line is reported by the rank that holds it with the
 * file's own line number, and the other ranks read on.
 */
#include "testutil.h"

#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANKS 5

/* The in-process "MPI": a barrier-synchronised allgatherv. */
typedef struct world {
  uint32_t size;
  pthread_barrier_t bar;
  const void *data[MAX_RANKS];
  size_t len[MAX_RANKS];
} world;

typedef struct rank_ctx {
  world *w;
  uint32_t rank;
} rank_ctx;

static int fake_allgatherv(void *ctx, const void *mine, size_t n, void **all, size_t *counts) {
  rank_ctx *r = ctx;
  world *w = r->w;
  w->data[r->rank] = mine;
  w->len[r->rank] = n;
  pthread_barrier_wait(&w->bar);
  size_t total = 0;
  for (uint32_t i = 0; i < w->size; i++) total += w->len[i];
  char *buf = cofi__malloc(total ? total : 1), *p = buf;
  for (uint32_t i = 0; i < w->size; i++) {
    memcpy(p, w->data[i], w->len[i]);
    p += w->len[i];
    counts[i] = w->len[i];
  }
  *all = buf;
  pthread_barrier_wait(&w->bar); /* everyone copied before `mine` goes away */
  return 0;
}

typedef struct job {
  rank_ctx rc;
  cofi__comm comm;
  const char *path;
  const cofi_read_options *opt;
  cofi_dataset *ds;
  uint64_t rows;
  int result;
  cofi_diag d;
} job;

static void *run_rank(void *arg) {
  job *j = arg;
  j->result = cofi__share_read(j->path, j->opt, &j->comm, &j->ds, &j->rows, &j->d);
  return NULL;
}

/* Reads path as n ranks; jobs[r] holds rank r's outcome. */
static void read_as_ranks(const char *path, const cofi_read_options *opt, uint32_t n, job *jobs) {
  world w = {.size = n};
  pthread_barrier_init(&w.bar, NULL, n);
  pthread_t th[MAX_RANKS];
  for (uint32_t r = 0; r < n; r++) {
    memset(&jobs[r], 0, sizeof jobs[r]);
    jobs[r].rc = (rank_ctx){.w = &w, .rank = r};
    jobs[r].comm = (cofi__comm){.rank = r, .size = n, .ctx = &jobs[r].rc,
                                .allgatherv = fake_allgatherv};
    jobs[r].path = path;
    jobs[r].opt = opt;
    assert_int_equal(pthread_create(&th[r], NULL, run_rank, &jobs[r]), 0);
  }
  for (uint32_t r = 0; r < n; r++) pthread_join(th[r], NULL);
  pthread_barrier_destroy(&w.bar);
}

/* "user item value" of row i of ds, for comparing across maps. */
static void row_text(const cofi_dataset *ds, size_t i, char *out, size_t size) {
  size_t ul, il;
  const char *u = cofi__idmap_get(&ds->users, ds->user[i], &ul);
  const char *it = cofi__idmap_get(&ds->items, ds->item[i], &il);
  snprintf(out, size, "%.*s %.*s %.9g", (int)ul, u, (int)il, it, (double)ds->value[i]);
}

static void same_rows_any_ranks(const char *text, const cofi_read_options *opt) {
  char *dir = tu_mkdtemp();
  char *path = tu_write_file(dir, "log.csv", text, strlen(text));
  cofi_dataset *whole = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(path, opt, &whole, &d), COFI_OK);
  for (uint32_t n = 1; n <= MAX_RANKS; n++) {
    job jobs[MAX_RANKS];
    read_as_ranks(path, opt, n, jobs);
    size_t at = 0;
    for (uint32_t r = 0; r < n; r++) {
      if (jobs[r].result) fail_msg("%u ranks, rank %u: %s", n, r, jobs[r].d.message);
      for (size_t i = 0; i < jobs[r].ds->n; i++, at++) {
        char a[256], b[256];
        assert_true(at < whole->n);
        row_text(whole, at, a, sizeof a);
        row_text(jobs[r].ds, i, b, sizeof b);
        if (strcmp(a, b)) fail_msg("%u ranks, rank %u, row %zu: '%s', want '%s'", n, r, i, b, a);
      }
      cofi_dataset_free(jobs[r].ds);
    }
    assert_int_equal(at, whole->n);
  }
  cofi_dataset_free(whole);
  free(path);
  tu_rmdir(dir);
  free(dir);
}

static void lf_header(void **state) {
  (void)state;
  same_rows_any_ranks("user_id,item_id,value\nu1,i1,1\nu2,i2,2\nu1,i3,3\nu3,i1,4\n"
                      "a-much-longer-user-id,i2,5\nu2,i9,6\nu4,i4,7\n", NULL);
}

static void crlf_bom_blank_lines(void **state) {
  (void)state;
  same_rows_any_ranks("\xef\xbb\xbfuser_id,item_id,value\r\nu1,i1,1\r\n\r\nu2,i2,2\r\n"
                      "u1,i3,3\r\n\r\n\r\nu3,i1,4\r\nu2,i9,6\r\n", NULL);
}

static void lone_cr(void **state) { /* no LF to cut at: rank 0 reads it all */
  (void)state;
  same_rows_any_ranks("user_id,item_id\ru1,i1\ru2,i2\ru3,i3\r", NULL);
}

static void fewer_lines_than_ranks(void **state) {
  (void)state;
  same_rows_any_ranks("user_id,item_id\nu1,i1\n", NULL);
  same_rows_any_ranks("user_id,item_id\nu1,i1", NULL); /* no final line end */
}

static void min_value_and_no_header(void **state) {
  (void)state;
  cofi_read_options o = cofi_read_options_default();
  o.has_min_value = 1;
  o.min_value = 2;
  same_rows_any_ranks("user_id,item_id,value\nu1,i1,1\nu2,i2,2\nu1,i3,3\nu3,i1,1.5\nu4,i4,7\n", &o);
  cofi_read_options h = cofi_read_options_default();
  h.no_header = 1;
  same_rows_any_ranks("u1,i1,1\nu2,i2,2\nu1,i3,3\nu3,i1,4\nu2,i9,6\nu4,i4,7\n", &h);
}

/* A bad line: the rank holding it reports the file's line number; the
 * others read their shares. */
static void bad_line_on_its_rank(void **state) {
  (void)state;
  char text[4096] = "user_id,item_id,value\r\n";
  for (int i = 2; i <= 60; i++) {
    char line[64];
    snprintf(line, sizeof line, i == 47 ? "u%d,i%d,not-a-number\r\n" : "u%d,i%d,%d\r\n", i, i % 7, i);
    strcat(text, line);
  }
  char *dir = tu_mkdtemp();
  char *path = tu_write_file(dir, "log.csv", text, strlen(text));
  for (uint32_t n = 1; n <= MAX_RANKS; n++) {
    job jobs[MAX_RANKS];
    read_as_ranks(path, NULL, n, jobs);
    int failed = 0;
    for (uint32_t r = 0; r < n; r++) {
      if (jobs[r].result) {
        failed++;
        assert_int_equal(jobs[r].result, COFI_ERR_PARSE);
        assert_int_equal(jobs[r].d.line, 47);
      }
      cofi_dataset_free(jobs[r].ds);
    }
    assert_int_equal(failed, 1);
  }
  free(path);
  tu_rmdir(dir);
  free(dir);
}

/* A file no rank can open: every rank fails in the agreement, none hangs. */
static void missing_file(void **state) {
  (void)state;
  job jobs[3];
  read_as_ranks("/nonexistent/cofi-share.csv", NULL, 3, jobs);
  for (uint32_t r = 0; r < 3; r++) {
    assert_int_not_equal(jobs[r].result, COFI_OK);
    assert_null(jobs[r].ds);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lf_header),
      cmocka_unit_test(crlf_bom_blank_lines),
      cmocka_unit_test(lone_cr),
      cmocka_unit_test(fewer_lines_than_ranks),
      cmocka_unit_test(min_value_and_no_header),
      cmocka_unit_test(bad_line_on_its_rank),
      cmocka_unit_test(missing_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_model_file.c — save then open is bit-exact; every kind of damage is
 * refused with its specific error: empty, foreign, truncated anywhere,
 * any single byte flipped, future version, and a hostile header whose
 * checksums are all valid but whose counts lie (10^12 users).
 * From a descriptor: cofi_model_open_fd (mapped) and cofi_model_read_fd
 * (private memory) give the same model as cofi_model_open (checksum,
 * factors, every recommendation); bad descriptors, empty, truncated and
 * short-reading files get their errors; a read model is immune to the file
 * being rewritten afterwards.
 */
#include "testutil.h"

#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cofi_model *train_small(void) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  const char *users[] = {"alice", "bob", "carol", "dave", "eve"};
  const char *items[] = {"x,1", "y \"quoted\"", "z", "w", "v", "\xc3\xa9t\xc3\xa9"};
  for (int u = 0; u < 5; u++)
    for (int i = 0; i < 6; i++)
      if ((u + i) % 3 != 0)
        assert_int_equal(cofi__dataset_add(ds, users[u], strlen(users[u]), items[i],
                                           strlen(items[i]), (float)(1 + (u * i) % 3), 0),
                         COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 3;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_dataset_free(ds);
  return m;
}

static void save_open_is_bit_exact(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/a.cofi", dir);
  snprintf(b, sizeof b, "%s/b.cofi", dir);
  cofi_model *m = train_small();
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(m, a, &d), COFI_OK);
  cofi_model *o;
  assert_int_equal(cofi_model_open(a, &o, &d), COFI_OK);
  cofi_model_info mi, oi;
  cofi_model_get_info(m, &mi);
  cofi_model_get_info(o, &oi);
  assert_int_equal(mi.n_users, oi.n_users);
  assert_int_equal(mi.n_items, oi.n_items);
  assert_int_equal(mi.nnz, oi.nnz);
  assert_int_equal(mi.created_unix, oi.created_unix);
  assert_memory_equal(cofi_model_user_factors(m), cofi_model_user_factors(o),
                      sizeof(float) * mi.n_users * mi.factors);
  assert_memory_equal(cofi_model_item_factors(m), cofi_model_item_factors(o),
                      sizeof(float) * mi.n_items * mi.factors);
  for (uint32_t i = 0; i < mi.n_items; i++) {
    size_t l1, l2;
    const char *s1 = cofi_model_item_id(m, i, &l1), *s2 = cofi_model_item_id(o, i, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(s1, s2, l1);
    assert_int_equal(cofi_model_find_item(o, s1, l1), i);
  }
  /* Saving the opened model reproduces the file byte for byte. */
  assert_int_equal(cofi_model_save(o, b, &d), COFI_OK);
  size_t la, lb;
  unsigned char *ba = tu_read_file(a, &la), *bb = tu_read_file(b, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(ba, bb, la);
  assert_int_equal(la % 64, 0);
  free(ba);
  free(bb);
  cofi_model_close(m);
  cofi_model_close(o);
  tu_rmdir(dir);
  free(dir);
}

static int open_buf(const unsigned char *b, size_t len, cofi_diag *d) {
  cofi_model *m = NULL;
  int rc = cofi_model_open_memory(b, len, &m, d);
  if (rc == COFI_OK) cofi_model_close(m);
  else assert_null(m);
  return rc;
}

static unsigned char *saved_bytes(size_t *len, char **dir_out) {
  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof path, "%s/m.cofi", dir);
  cofi_model *m = train_small();
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  cofi_model_close(m);
  *dir_out = dir;
  return tu_read_file(path, len);
}

static void damaged_files_are_refused(void **state) {
  (void)state;
  char *dir;
  size_t len;
  unsigned char *b = saved_bytes(&len, &dir);
  cofi_diag d = {0};
  assert_int_equal(open_buf(b, len, &d), COFI_OK);
  assert_int_equal(open_buf(b, 0, &d), COFI_ERR_NOT_MODEL);
  assert_int_equal(open_buf((const unsigned char *)"hello\n", 6, &d), COFI_ERR_NOT_MODEL);
  /* Every truncation. */
  for (size_t n = 1; n < len; n++) {
    int rc = open_buf(b, n, &d);
    assert_true(rc == COFI_ERR_CORRUPT || rc == COFI_ERR_NOT_MODEL);
  }
  /* Every single-byte flip. */
  unsigned char *c = malloc(len);
  for (size_t i = 0; i < len; i++) {
    memcpy(c, b, len);
    c[i] ^= 0x5a;
    int rc = open_buf(c, len, &d);
    if (rc == COFI_OK) fail_msg("flip at byte %zu accepted", i);
    assert_true(rc == COFI_ERR_CORRUPT || rc == COFI_ERR_NOT_MODEL || rc == COFI_ERR_VERSION);
  }
  /* Appended bytes. */
  unsigned char *big = malloc(len + 64);
  memcpy(big, b, len);
  memset(big + len, 0, 64);
  assert_int_equal(open_buf(big, len + 64, &d), COFI_ERR_CORRUPT);
  assert_non_null(strstr(d.message, "extra bytes"));
  free(big);
  free(c);
  free(b);
  tu_rmdir(dir);
  free(dir);
}

/* Rewrites checksums so that only the semantic checks stand in the way. */
static void reseal(unsigned char *b, size_t len) {
  uint32_t n;
  memcpy(&n, b + 24, 4);
  for (uint32_t i = 0; i < n; i++) {
    unsigned char *e = b + 64 + i * 32;
    uint64_t off, l, sum;
    memcpy(&off, e + 8, 8);
    memcpy(&l, e + 16, 8);
    if (off > len || l > len - off) continue; /* lying entry: leave its checksum */
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

static void hostile_headers_are_refused(void **state) {
  (void)state;
  char *dir;
  size_t len;
  unsigned char *b = saved_bytes(&len, &dir);
  unsigned char *c = malloc(len);
  cofi_diag d = {0};

  memcpy(c, b, len);
  uint32_t huge = 4000000000u; /* users: 4e9 x factors far beyond the file */
  memcpy(meta_of(c), &huge, 4);
  reseal(c, len);
  assert_int_equal(open_buf(c, len, &d), COFI_ERR_CORRUPT);

  memcpy(c, b, len);
  uint64_t nnz = 1000000000000ull; /* 10^12 pairs */
  memcpy(meta_of(c) + 16, &nnz, 8);
  reseal(c, len);
  assert_int_equal(open_buf(c, len, &d), COFI_ERR_CORRUPT);

  memcpy(c, b, len);
  uint64_t off = 1ull << 62; /* section offset far outside */
  memcpy(c + 64 + 32 + 8, &off, 8);
  reseal(c, len);
  assert_int_equal(open_buf(c, len, &d), COFI_ERR_CORRUPT);

  memcpy(c, b, len);
  uint32_t v = 99; /* from the future */
  memcpy(c + 8, &v, 4);
  reseal(c, len);
  assert_int_equal(open_buf(c, len, &d), COFI_ERR_VERSION);

  memcpy(c, b, len);
  uint32_t k0 = 0;
  memcpy(meta_of(c) + 8, &k0, 4);
  reseal(c, len);
  assert_int_equal(open_buf(c, len, &d), COFI_ERR_CORRUPT);

  free(c);
  free(b);
  tu_rmdir(dir);
  free(dir);
}

/* META bytes 144..147: the ranks that trained the model (docs/mpi.md).
 * A one-process model records 1; a file from before the field (zero
 * there) reads as 1; another count reads back as written. */
static uint32_t ranks_of(const unsigned char *b, size_t len) {
  cofi_model *m = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_model_open_memory(b, len, &m, &d), COFI_OK);
  uint32_t r = cofi_model_train_ranks(m);
  cofi_model_close(m);
  return r;
}

static void ranks_field_old_and_new(void **state) {
  (void)state;
  char *dir;
  size_t len;
  unsigned char *b = saved_bytes(&len, &dir);
  uint32_t v;
  memcpy(&v, meta_of(b) + 144, 4);
  assert_int_equal(v, 1);
  assert_int_equal(ranks_of(b, len), 1);
  v = 0; /* as every file before the field */
  memcpy(meta_of(b) + 144, &v, 4);
  reseal(b, len);
  assert_int_equal(ranks_of(b, len), 1);
  v = 4;
  memcpy(meta_of(b) + 144, &v, 4);
  reseal(b, len);
  assert_int_equal(ranks_of(b, len), 4);
  free(b);
  tu_rmdir(dir);
  free(dir);
}

static void missing_file_is_io_error(void **state) {
  (void)state;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_model_open("/nonexistent/dir/m.cofi", &m, &d), COFI_ERR_IO);
  assert_non_null(strstr(d.message, "No such file"));
}

static void save_failure_leaves_old_file(void **state) {
  (void)state;
  cofi_model *m = train_small();
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(m, "/nonexistent/dir/m.cofi", &d), COFI_ERR_IO);
  assert_non_null(strstr(d.message, "temporary"));
  cofi_model_close(m);
}


/* ---- from a descriptor -------------------------------------------------- */

typedef int (*fd_open_fn)(int, const char *, cofi_model **, cofi_diag *);
static const fd_open_fn fd_opens[2] = {cofi_model_open_fd, cofi_model_read_fd};
static const char *const fd_open_names[2] = {"cofi_model_open_fd", "cofi_model_read_fd"};

/* Calls open_fd (which) on fd, expects code rc and a message containing
 * text; the output must be NULL. */
static void expect_fd_error(int which, int fd, const char *name, int rc, const char *text) {
  cofi_model *m = (cofi_model *)0x1;
  cofi_diag d = {0};
  int got = fd_opens[which](fd, name, &m, &d);
  if (got != rc || !strstr(d.message, text))
    fail_msg("%s: returned %d (%s), expected %d with '%s'", fd_open_names[which], got, d.message,
             rc, text);
  assert_null(m);
  assert_string_equal(d.file, name ? name : "<descriptor>");
}

static void fd_bad_descriptors(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof path, "%s/m.cofi", dir);
  cofi_model *m = train_small();
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  cofi_model_close(m);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  int wfd = open(path, O_WRONLY);
  assert_true(dfd >= 0 && wfd >= 0);
  /* Last, so that no later open() reuses its number. */
  int closed = open(path, O_RDONLY);
  assert_true(closed >= 0);
  close(closed);
  for (int w = 0; w < 2; w++) {
    expect_fd_error(w, -1, "neg.cofi", COFI_ERR_IO, "Bad file descriptor");
    expect_fd_error(w, closed, NULL, COFI_ERR_IO, "Bad file descriptor");
    expect_fd_error(w, dfd, dir, COFI_ERR_IO, "not a regular file");
  }
  /* Open for writing only: neither mappable nor readable. */
  expect_fd_error(0, wfd, path, COFI_ERR_IO, "cannot map");
  expect_fd_error(1, wfd, path, COFI_ERR_IO, "cannot read");
  close(dfd);
  close(wfd);
  tu_rmdir(dir);
  free(dir);
}

static void fd_empty_and_truncated(void **state) {
  (void)state;
  char *dir;
  size_t len;
  unsigned char *b = saved_bytes(&len, &dir);
  char *empty = tu_write_file(dir, "empty.cofi", "", 0);
  char *half = tu_write_file(dir, "half.cofi", b, len / 2);
  int efd = open(empty, O_RDONLY), hfd = open(half, O_RDONLY);
  assert_true(efd >= 0 && hfd >= 0);
  for (int w = 0; w < 2; w++) {
    expect_fd_error(w, efd, empty, COFI_ERR_NOT_MODEL, "empty file");
    expect_fd_error(w, hfd, half, COFI_ERR_CORRUPT, "truncated");
  }
  close(efd);
  close(hfd);
  free(empty);
  free(half);
  free(b);
  tu_rmdir(dir);
  free(dir);
}

/* A file whose size (fstat) promises more than a read delivers: sysfs
 * attributes say 4096 bytes and hold a few. That is what a model file
 * truncated while it is read looks like to cofi_model_read_fd. */
static void read_fd_short_read(void **state) {
  (void)state;
  const char *sys = "/sys/devices/system/cpu/online";
  int fd = open(sys, O_RDONLY);
  if (fd < 0) skip();
  expect_fd_error(1, fd, sys, COFI_ERR_CORRUPT, "truncated while being read");
  close(fd);
}

/* Every user's full ranking, seen items filtered and not, and every item's
 * neighbours, written into out (which must hold enough). */
static size_t all_answers(const cofi_model *m, cofi_scored *out) {
  cofi_workspace *ws = cofi_workspace_new();
  assert_non_null(ws);
  cofi_model_info in;
  cofi_model_get_info(m, &in);
  size_t total = 0, n;
  cofi_recommend_options o = cofi_recommend_options_default();
  o.k = in.n_items;
  for (int filter = 0; filter < 2; filter++) {
    o.filter_seen = filter;
    for (uint32_t u = 0; u < in.n_users; u++) {
      assert_int_equal(cofi_recommend_user(m, ws, u, &o, out + total, &n), COFI_OK);
      total += n;
    }
  }
  for (uint32_t i = 0; i < in.n_items; i++) {
    assert_int_equal(cofi_similar_items(m, ws, i, in.n_items, out + total, &n), COFI_OK);
    total += n;
  }
  cofi_workspace_free(ws);
  return total;
}

static void fd_opens_give_the_same_model(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof path, "%s/m.cofi", dir);
  cofi_model *trained = train_small();
  cofi_diag d = {0};
  assert_int_equal(cofi_model_save(trained, path, &d), COFI_OK);
  cofi_model_close(trained);
  cofi_model *ref, *got[2];
  assert_int_equal(cofi_model_open(path, &ref, &d), COFI_OK);
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  for (int w = 0; w < 2; w++) assert_int_equal(fd_opens[w](fd, path, &got[w], &d), COFI_OK);
  /* The descriptor's position is neither used nor moved, and the models
   * do not need the descriptor after the call. */
  assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
  close(fd);
  cofi_model_info ri;
  cofi_model_get_info(ref, &ri);
  size_t cap = 2 * (size_t)ri.n_users * ri.n_items + (size_t)ri.n_items * ri.n_items;
  cofi_scored *want = malloc(cap * sizeof *want), *have = malloc(cap * sizeof *have);
  assert_non_null(want);
  assert_non_null(have);
  size_t n_want = all_answers(ref, want);
  assert_true(n_want > 0);
  for (int w = 0; w < 2; w++) {
    cofi_model_info gi;
    cofi_model_get_info(got[w], &gi);
    assert_int_equal(gi.checksum, ri.checksum);
    assert_int_not_equal(gi.checksum, 0);
    assert_int_equal(gi.file_bytes, ri.file_bytes);
    assert_int_equal(gi.n_users, ri.n_users);
    assert_int_equal(gi.n_items, ri.n_items);
    assert_int_equal(gi.nnz, ri.nnz);
    assert_memory_equal(cofi_model_user_factors(got[w]), cofi_model_user_factors(ref),
                        sizeof(float) * ri.n_users * ri.factors);
    assert_memory_equal(cofi_model_item_factors(got[w]), cofi_model_item_factors(ref),
                        sizeof(float) * ri.n_items * ri.factors);
    assert_int_equal(all_answers(got[w], have), n_want);
    assert_memory_equal(have, want, n_want * sizeof *want);
  }
  /* The read model owns its bytes: rewriting the file in place (same
   * inode, first truncated, then other bytes) changes nothing for it. The
   * mapped one would see it, so it is closed first. */
  cofi_model_close(got[0]);
  cofi_model_close(ref);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (int i = 0; i < 100; i++) fputs("not a model any more\n", f);
  fclose(f);
  assert_int_equal(all_answers(got[1], have), n_want);
  assert_memory_equal(have, want, n_want * sizeof *want);
  cofi_model_get_info(got[1], &ri);
  assert_int_equal(ri.file_bytes % 64, 0);
  cofi_model_close(got[1]);
  free(want);
  free(have);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(save_open_is_bit_exact),
      cmocka_unit_test(damaged_files_are_refused),
      cmocka_unit_test(hostile_headers_are_refused),
      cmocka_unit_test(missing_file_is_io_error),
      cmocka_unit_test(save_failure_leaves_old_file),
      cmocka_unit_test(fd_bad_descriptors),
      cmocka_unit_test(fd_empty_and_truncated),
      cmocka_unit_test(read_fd_short_read),
      cmocka_unit_test(fd_opens_give_the_same_model),
      cmocka_unit_test(ranks_field_old_and_new),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

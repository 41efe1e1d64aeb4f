/*
 * test_synth.c — the demo data generator (src/data/synth.c): same seed, same
 * bytes; another seed, other bytes; exactly the requested rows, all distinct
 * user-item pairs; every user and item present; increasing time per user;
 * titles that need RFC 4180 quoting and read back through the item reader;
 * a taste structure (users' items concentrate in few title topics); refused
 * option values; and out-of-memory at each allocation.
 */
#include "testutil.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *dir, const char *name, size_t *len) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static void synth_into(const char *dir, uint32_t users, uint32_t items, uint64_t n, uint64_t seed) {
  cofi_synth_options o = {users, items, n, seed};
  cofi_diag d = {0};
  int rc = cofi_synth(&o, dir, &d);
  if (rc) fail_msg("synth failed: %d %s", rc, d.message);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void test_deterministic(void **state) {
  (void)state;
  char *root = tu_mkdtemp();
  char a[600], b[600], c[600];
  snprintf(a, sizeof a, "%s/a", root);
  snprintf(b, sizeof b, "%s/deeper/b", root); /* parents are created */
  snprintf(c, sizeof c, "%s/c", root);
  synth_into(a, 300, 200, 6000, 7);
  synth_into(b, 300, 200, 6000, 7);
  synth_into(c, 300, 200, 6000, 8);
  const char *files[] = {"interactions.csv", "items.csv"};
  for (int k = 0; k < 2; k++) {
    size_t la, lb, lc;
    char *x = slurp(a, files[k], &la), *y = slurp(b, files[k], &lb), *z = slurp(c, files[k], &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    assert_true(la != lc || memcmp(x, z, la) != 0);
    free(x);
    free(y);
    free(z);
  }
  /* No temp files are left behind. */
  char tmp[700];
  snprintf(tmp, sizeof tmp, "%s/interactions.csv.tmp", a);
  assert_int_not_equal(access(tmp, F_OK), 0);
  tu_rmdir(root);
  free(root);
}

static void check_log(const char *dir, uint32_t users, uint32_t items, uint64_t n) {
  char path[700];
  snprintf(path, sizeof path, "%s/interactions.csv", dir);
  cofi_read_options o = cofi_read_options_default();
  cofi_dataset *ds;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(path, &o, &ds, &d), COFI_OK);
  assert_int_equal(ds->n, n);
  assert_int_equal(cofi_dataset_n_users(ds), users);
  if (n >= items) assert_int_equal(cofi_dataset_n_items(ds), items);
  uint64_t *key = malloc(n * sizeof *key);
  for (size_t k = 0; k < n; k++) {
    key[k] = (uint64_t)ds->user[k] << 32 | ds->item[k];
    /* Events are the default ones: values 1, 2 or 3. */
    assert_true(ds->value[k] == 1.0f || ds->value[k] == 2.0f || ds->value[k] == 3.0f);
    if (k > 0 && ds->user[k] == ds->user[k - 1]) assert_true(ds->time[k] > ds->time[k - 1]);
    if (k > 0 && ds->user[k] != ds->user[k - 1]) assert_true(ds->user[k] == ds->user[k - 1] + 1);
    assert_true(ds->time[k] > 1400000000 && ds->time[k] < 2000000000);
  }
  qsort(key, n, sizeof *key, cmp_u64);
  for (size_t k = 1; k < n; k++) assert_true(key[k] != key[k - 1]); /* nnz == rows */
  free(key);
  /* IDs: u + zero-padded number, at least five digits. */
  size_t len;
  const char *id = cofi__idmap_get(&ds->users, 0, &len);
  char want[32];
  int w = snprintf(want, sizeof want, "%u", users) < 5 ? 5 : snprintf(want, sizeof want, "%u", users);
  snprintf(want, sizeof want, "u%0*u", w, 1u);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(id, want, len);
  /* Titles join and some need quoting. */
  snprintf(path, sizeof path, "%s/items.csv", dir);
  assert_int_equal(cofi_dataset_read_items(ds, path, "item_id", &d), COFI_OK);
  assert_int_equal(ds->meta.n_fields, 1);
  assert_int_equal(ds->meta.title_field, 0);
  for (size_t i = 0; i < cofi_dataset_n_items(ds); i++) {
    cofi__strtab_get(&ds->meta.cells, i, &len);
    assert_true(len > 5);
  }
  cofi_dataset_free(ds);
}

static void test_shape(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  synth_into(dir, 2000, 1000, 60000, 42); /* the demo defaults */
  check_log(dir, 2000, 1000, 60000);
  size_t len;
  char *items = slurp(dir, "items.csv", &len);
  assert_true(strncmp(items, "item_id,title\n", 14) == 0);
  assert_non_null(strstr(items, ",\"")); /* a quoted title */
  assert_non_null(strstr(items, "\"\""));  /* with a doubled quote */
  assert_non_null(strstr(items, ", Part")); /* with a comma */
  free(items);
  char *log = slurp(dir, "interactions.csv", &len);
  assert_true(strncmp(log, "user_id,item_id,event,timestamp\nu00001,v", 40) == 0);
  free(log);
  tu_rmdir(dir);
  free(dir);

  /* Small, dense and tiny cases. */
  dir = tu_mkdtemp();
  synth_into(dir, 10, 7, 70, 1); /* every pair */
  check_log(dir, 10, 7, 70);
  synth_into(dir, 5, 100, 5, 1); /* one row per user: not every item */
  check_log(dir, 5, 100, 5);
  synth_into(dir, 1, 1, 1, 3);
  check_log(dir, 1, 1, 1);
  synth_into(dir, 123456, 10, 200000, 2); /* six-digit user IDs */
  check_log(dir, 123456, 10, 200000);
  tu_rmdir(dir);
  free(dir);
}

/* The taste structure: a title starts with its genre's topic, so a user's
 * items should concentrate in few topics, far more than the same number
 * of items drawn by popularity alone would. Measured as the share of each
 * user's rows in the user's most frequent topic. */
static void test_taste(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  synth_into(dir, 500, 400, 20000, 5);
  char path[700];
  snprintf(path, sizeof path, "%s/interactions.csv", dir);
  cofi_read_options o = cofi_read_options_default();
  cofi_dataset *ds;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(path, &o, &ds, &d), COFI_OK);
  snprintf(path, sizeof path, "%s/items.csv", dir);
  assert_int_equal(cofi_dataset_read_items(ds, path, NULL, &d), COFI_OK);
  uint32_t n_items = (uint32_t)cofi_dataset_n_items(ds);
  uint32_t *topic = malloc(n_items * sizeof *topic);
  for (uint32_t i = 0; i < n_items; i++) {
    size_t len;
    const char *t = cofi__strtab_get(&ds->meta.cells, i, &len);
    const char *colon = memchr(t, ':', len);
    assert_non_null(colon);
    topic[i] = (uint32_t)cofi__hash_bytes(t, (size_t)(colon - t), 1) % 1024;
  }
  /* The same statistic for a log with the same users and row counts but
   * items drawn by popularity alone (random rows' items). */
  double share = 0, base = 0;
  uint32_t users = 0;
  uint64_t s = 77;
  uint32_t *counts = calloc(1024, sizeof *counts), *bcounts = calloc(1024, sizeof *bcounts);
  for (size_t k = 0; k < ds->n;) {
    size_t e = k;
    memset(counts, 0, 1024 * sizeof *counts);
    memset(bcounts, 0, 1024 * sizeof *bcounts);
    uint32_t best = 0, bbest = 0;
    while (e < ds->n && ds->user[e] == ds->user[k]) {
      uint32_t c = ++counts[topic[ds->item[e]]];
      if (c > best) best = c;
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      uint32_t rnd_item = ds->item[(s >> 33) % ds->n];
      c = ++bcounts[topic[rnd_item]];
      if (c > bbest) bbest = c;
      e++;
    }
    if (e - k >= 20) {
      share += (double)best / (double)(e - k);
      base += (double)bbest / (double)(e - k);
      users++;
    }
    k = e;
  }
  share /= users;
  base /= users;
  fprintf(stderr, "top-topic share %.3f (popularity alone: %.3f)\n", share, base);
  if (share < base + 0.15)
    fail_msg("top-topic share %.3f vs %.3f by popularity: no taste structure", share, base);
  free(counts);
  free(bcounts);
  free(topic);
  cofi_dataset_free(ds);
  tu_rmdir(dir);
  free(dir);
}

static void test_refusals(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  cofi_diag d = {0};
  cofi_synth_options o = cofi_synth_options_default();
  assert_int_equal(o.users, 2000);
  assert_int_equal(o.items, 1000);
  assert_int_equal(o.interactions, 60000);
  o.interactions = 1999;
  assert_int_equal(cofi_synth(&o, dir, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "1999 interactions cannot give each of the 2000 users one row"));
  o = cofi_synth_options_default();
  o.interactions = 2000001;
  assert_int_equal(cofi_synth(&o, dir, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "exceed the 2000000 distinct user-item pairs"));
  o = cofi_synth_options_default();
  o.items = 0;
  assert_int_equal(cofi_synth(&o, dir, &d), COFI_ERR_INVALID);
  assert_int_equal(cofi_synth(NULL, NULL, &d), COFI_ERR_INVALID);
  /* A file where the directory should be. */
  char *file = tu_write_file(dir, "plain", "x", 1);
  o = cofi_synth_options_default();
  assert_int_equal(cofi_synth(&o, file, &d), COFI_ERR_IO);
  assert_non_null(strstr(d.message, "not a directory"));
  free(file);
  tu_rmdir(dir);
  free(dir);
}

static void test_out_of_memory(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  cofi_synth_options o = {40, 30, 400, 9};
  uint64_t n;
  for (n = 1;; n++) {
    cofi_diag d = {0};
    cofi__alloc_fail_after(n);
    int rc = cofi_synth(&o, dir, &d);
    cofi__alloc_fail_after(0);
    if (rc == COFI_OK) break;
    assert_int_equal(rc, COFI_ERR_NOMEM);
    assert_string_equal(d.message, "out of memory");
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s/interactions.csv.tmp", dir);
    assert_int_not_equal(access(tmp, F_OK), 0);
  }
  assert_true(n > 10);
  check_log(dir, 40, 30, 400);
  tu_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_shape),
      cmocka_unit_test(test_taste),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

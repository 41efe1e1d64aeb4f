/*
 * test_split.c — the evaluation protocols on hand-made logs (time order,
 * ties in input order, duplicate pairs kept together, users with one
 * item), the seeded protocols' shares and determinism, selecting parts,
 * writing and reading back split files, and the seeds' split of
 * ml-latest-small when ../shared/data is present.
 */
#include "testutil.h"

#include "eval/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
  const char *user, *item;
  int64_t time;
} row;

static cofi_dataset *make_ds(const row *rows, size_t n) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(cofi__dataset_add(ds, rows[i].user, strlen(rows[i].user), rows[i].item,
                                       strlen(rows[i].item), 1.0f, rows[i].time),
                     COFI_OK);
  ds->has_time = true;
  return ds;
}

static void test_leave_last_out(void **state) {
  (void)state;
  static const row rows[] = {
      /* a: y(1) z(3) w(3) x(5): z and w tie, input order keeps z first, so
       * x is test and w validation. */
      {"a", "x", 5}, {"a", "y", 1}, {"a", "z", 3}, {"b", "only", 9}, {"a", "w", 3},
      /* c: p and q tie at 2: q (later in input) is last. */
      {"c", "p", 2}, {"c", "q", 2},
      /* d: i1 twice (earliest 1), i2 at 2: i2 test, both i1 rows validation. */
      {"d", "i1", 1}, {"d", "i2", 2}, {"d", "i1", 3}};
  cofi_dataset *ds = make_ds(rows, 10);
  cofi_split_options o = cofi_split_options_default();
  uint8_t parts[10];
  uint64_t counts[COFI_PART_COUNT];
  cofi_diag d = {0};
  assert_int_equal(cofi_split(ds, &o, parts, counts, &d), COFI_OK);
  const uint8_t want[10] = {COFI_PART_TEST,       COFI_PART_TRAIN,      COFI_PART_TRAIN,
                            COFI_PART_TRAIN,      COFI_PART_VALIDATION, COFI_PART_VALIDATION,
                            COFI_PART_TEST,       COFI_PART_VALIDATION, COFI_PART_TEST,
                            COFI_PART_VALIDATION};
  for (int i = 0; i < 10; i++) {
    if (parts[i] != want[i]) fail_msg("row %d: part %d, expected %d", i, parts[i], want[i]);
  }
  assert_int_equal(counts[COFI_PART_TRAIN], 3);
  assert_int_equal(counts[COFI_PART_VALIDATION], 4);
  assert_int_equal(counts[COFI_PART_TEST], 3);
  /* Without time: input order decides. a's last is w, then z. */
  ds->has_time = false;
  assert_int_equal(cofi_split(ds, &o, parts, NULL, &d), COFI_OK);
  assert_int_equal(parts[4], COFI_PART_TEST);
  assert_int_equal(parts[2], COFI_PART_VALIDATION);
  assert_int_equal(parts[0], COFI_PART_TRAIN);
  cofi_dataset_free(ds);
}

/* A log of n_users users with `per` items each, plus duplicate rows. */
static cofi_dataset *make_grid(uint32_t n_users, uint32_t per) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  char u[16], it[16];
  for (uint32_t a = 0; a < n_users; a++)
    for (uint32_t b = 0; b < per; b++) {
      snprintf(u, sizeof u, "u%u", a);
      snprintf(it, sizeof it, "i%u", (a * 7 + b * 3) % 50);
      assert_int_equal(cofi__dataset_add(ds, u, strlen(u), it, strlen(it), 1.0f, b), COFI_OK);
      if (b % 4 == 0) /* a repeated event of the same pair */
        assert_int_equal(cofi__dataset_add(ds, u, strlen(u), it, strlen(it), 2.0f, b + 100),
                         COFI_OK);
    }
  ds->has_time = true;
  return ds;
}

/* Every row of one user-item pair is in the same part. */
static void assert_pairs_together(const cofi_dataset *ds, const uint8_t *parts) {
  for (size_t i = 0; i < ds->n; i++)
    for (size_t j = i + 1; j < ds->n; j++)
      if (ds->user[i] == ds->user[j] && ds->item[i] == ds->item[j])
        assert_int_equal(parts[i], parts[j]);
}

static void test_random(void **state) {
  (void)state;
  cofi_dataset *ds = make_grid(20, 10);
  /* user 0 alone with 2 items: stays in train */
  assert_int_equal(cofi__dataset_add(ds, "solo", 4, "i1", 2, 1.0f, 0), COFI_OK);
  assert_int_equal(cofi__dataset_add(ds, "solo", 4, "i2", 2, 1.0f, 0), COFI_OK);
  size_t n = ds->n;
  uint8_t *p1 = malloc(n), *p2 = malloc(n), *p3 = malloc(n);
  cofi_split_options o = cofi_split_options_default();
  o.protocol = COFI_PROTOCOL_RANDOM;
  o.holdout = 0.2;
  o.seed = 5;
  cofi_diag d = {0};
  assert_int_equal(cofi_split(ds, &o, p1, NULL, &d), COFI_OK);
  assert_int_equal(cofi_split(ds, &o, p2, NULL, &d), COFI_OK);
  assert_memory_equal(p1, p2, n);
  o.seed = 6;
  assert_int_equal(cofi_split(ds, &o, p3, NULL, &d), COFI_OK);
  assert_memory_not_equal(p1, p3, n);
  assert_pairs_together(ds, p1);
  /* Per user of 10 distinct items: round(0.2 * 10) = 2 test, 2 validation. */
  for (uint32_t u = 0; u < 20; u++) {
    uint32_t seen_test[50] = {0}, seen_val[50] = {0}, n_test = 0, n_val = 0;
    for (size_t i = 0; i < n; i++) {
      if (ds->user[i] != u) continue;
      if (p1[i] == COFI_PART_TEST && !seen_test[ds->item[i]]++) n_test++;
      if (p1[i] == COFI_PART_VALIDATION && !seen_val[ds->item[i]]++) n_val++;
    }
    assert_int_equal(n_test, 2);
    assert_int_equal(n_val, 2);
  }
  assert_int_equal(p1[n - 1], COFI_PART_TRAIN);
  assert_int_equal(p1[n - 2], COFI_PART_TRAIN);
  o.holdout = 0.5;
  assert_int_equal(cofi_split(ds, &o, p1, NULL, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "holdout"));
  free(p1);
  free(p2);
  free(p3);
  cofi_dataset_free(ds);
}

static void test_users(void **state) {
  (void)state;
  cofi_dataset *ds = make_grid(10, 5);
  size_t n = ds->n;
  uint8_t *p = malloc(n);
  uint64_t counts[COFI_PART_COUNT];
  cofi_split_options o = cofi_split_options_default();
  o.protocol = COFI_PROTOCOL_USERS;
  o.heldout_users = 3;
  o.foldin_fraction = 0.8;
  cofi_diag d = {0};
  assert_int_equal(cofi_split(ds, &o, p, counts, &d), COFI_OK);
  assert_pairs_together(ds, p);
  /* Per user: one role; held-out users have round(0.8 * 5) = 4 fold-in
   * items and 1 predicted. */
  uint32_t roles[3] = {0};
  for (uint32_t u = 0; u < 10; u++) {
    uint32_t per_part[COFI_PART_COUNT] = {0};
    uint8_t item_seen[50][COFI_PART_COUNT];
    memset(item_seen, 0, sizeof item_seen);
    for (size_t i = 0; i < n; i++)
      if (ds->user[i] == u && !item_seen[ds->item[i]][p[i]]++) per_part[p[i]]++;
    if (per_part[COFI_PART_TRAIN]) {
      assert_int_equal(per_part[COFI_PART_TRAIN], 5);
      roles[0]++;
    } else if (per_part[COFI_PART_TEST]) {
      assert_int_equal(per_part[COFI_PART_TEST], 1);
      assert_int_equal(per_part[COFI_PART_TEST_FOLDIN], 4);
      roles[2]++;
    } else {
      assert_int_equal(per_part[COFI_PART_VALIDATION], 1);
      assert_int_equal(per_part[COFI_PART_VALIDATION_FOLDIN], 4);
      roles[1]++;
    }
  }
  assert_int_equal(roles[0], 4);
  assert_int_equal(roles[1], 3);
  assert_int_equal(roles[2], 3);
  /* 5 + 5 held out of 10 leaves nobody to train on. */
  o.heldout_users = 5;
  assert_int_equal(cofi_split(ds, &o, p, counts, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "cannot hold out"));
  o.heldout_users = 1;
  o.foldin_fraction = 1.0;
  assert_int_equal(cofi_split(ds, &o, p, counts, &d), COFI_ERR_INVALID);
  free(p);
  cofi_dataset_free(ds);
}

static void test_select_and_write(void **state) {
  (void)state;
  static const row rows[] = {{"u,1", "a", 1}, {"u2", "b\"q", 2}, {"u,1", "c", 3}, {"u3", "a", 4}};
  cofi_dataset *ds = make_ds(rows, 4);
  uint8_t parts[4] = {COFI_PART_TRAIN, COFI_PART_TEST, COFI_PART_TRAIN, COFI_PART_VALIDATION};
  cofi_dataset *sel = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_select(ds, parts, COFI_PART_BIT(COFI_PART_TRAIN), &sel, &d), COFI_OK);
  /* Only the users and items present: u,1 with a and c. */
  assert_int_equal(cofi_dataset_n_interactions(sel), 2);
  assert_int_equal(cofi_dataset_n_users(sel), 1);
  assert_int_equal(cofi_dataset_n_items(sel), 2);
  cofi_dataset_free(sel);
  assert_int_equal(cofi_dataset_select(ds, parts, COFI_PART_BIT(COFI_PART_TEST_FOLDIN), &sel, &d),
                   COFI_ERR_EMPTY);
  assert_null(sel);

  char *dir = tu_mkdtemp();
  char path[512];
  snprintf(path, sizeof path, "%s/train.csv", dir);
  assert_int_equal(cofi_dataset_write_csv(ds, parts,
                                          COFI_PART_BIT(COFI_PART_TRAIN) | COFI_PART_BIT(COFI_PART_TEST),
                                          path, &d),
                   COFI_OK);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char buf[512];
  size_t got = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[got] = 0;
  assert_string_equal(buf,
                      "user_id,item_id,value,timestamp\n\"u,1\",a,1,1\nu2,\"b\"\"q\",1,2\n\"u,1\",c,1,3\n");
  cofi_read_options ro = cofi_read_options_default();
  cofi_dataset *back = NULL;
  assert_int_equal(cofi_dataset_read(path, &ro, &back, &d), COFI_OK);
  assert_int_equal(cofi_dataset_n_interactions(back), 3);
  assert_int_equal(cofi_dataset_n_users(back), 2);
  size_t len;
  assert_true(back->has_time);
  assert_int_equal(back->time[2], 3);
  const char *s = cofi__idmap_get(&back->items, back->item[1], &len);
  assert_int_equal(len, 3);
  assert_memory_equal(s, "b\"q", 3);
  /* Appending joins files back into one index space. */
  assert_int_equal(cofi_dataset_append(back, ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_n_interactions(back), 7);
  assert_int_equal(cofi_dataset_n_users(back), 3);
  cofi_dataset_free(back);
  assert_int_equal(cofi_dataset_write_csv(ds, NULL, 0, "/nonexistent-dir/x.csv", &d), COFI_ERR_IO);
  assert_non_null(strstr(d.message, "nonexistent-dir"));
  tu_rmdir(dir);
  free(dir);
  cofi_dataset_free(ds);
}

static void test_split_oom(void **state) {
  (void)state;
  cofi_dataset *ds = make_grid(6, 5);
  uint8_t *p = malloc(ds->n);
  cofi_diag d = {0};
  for (int proto = 0; proto < 3; proto++) {
    cofi_split_options o = cofi_split_options_default();
    o.protocol = (cofi_protocol)proto;
    o.heldout_users = 1;
    for (uint64_t n = 1;; n++) {
      cofi__alloc_fail_after(n);
      int rc = cofi_split(ds, &o, p, NULL, &d);
      cofi__alloc_fail_after(0);
      if (rc == COFI_OK) break;
      assert_int_equal(rc, COFI_ERR_NOMEM);
      assert_true(n < 100);
    }
  }
  for (uint64_t n = 1;; n++) {
    cofi_dataset *sel = NULL;
    cofi__alloc_fail_after(n);
    int rc = cofi_dataset_select(ds, p, COFI_PART_BIT(COFI_PART_TRAIN), &sel, &d);
    cofi__alloc_fail_after(0);
    if (rc == COFI_OK) {
      cofi_dataset_free(sel);
      break;
    }
    assert_int_equal(rc, COFI_ERR_NOMEM);
    assert_null(sel);
    assert_true(n < 1000);
  }
  free(p);
  cofi_dataset_free(ds);
}

/* The seeds' protocol on ml-latest-small: 609 users with a positive, 608
 * with >= 2 (one test and one validation movie each), 47,364 training
 * rows (the seeds' 47,363 plus the one user with a single positive). */
static void test_movielens_seeds_split(void **state) {
  (void)state;
  char *path = tu_shared_data("ml-latest-small/ratings.csv");
  if (!path) skip();
  cofi_read_options ro = cofi_read_options_default();
  ro.format = COFI_FORMAT_MOVIELENS;
  ro.has_min_value = 1;
  ro.min_value = 4;
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(path, &ro, &ds, &d), COFI_OK);
  uint8_t *p = malloc(ds->n);
  uint64_t counts[COFI_PART_COUNT];
  cofi_split_options o = cofi_split_options_default();
  assert_int_equal(cofi_split(ds, &o, p, counts, &d), COFI_OK);
  assert_int_equal(counts[COFI_PART_TEST], 608);
  assert_int_equal(counts[COFI_PART_VALIDATION], 608);
  assert_int_equal(counts[COFI_PART_TRAIN], 47364);
  free(p);
  free(path);
  cofi_dataset_free(ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_leave_last_out),
      cmocka_unit_test(test_random),
      cmocka_unit_test(test_users),
      cmocka_unit_test(test_select_and_write),
      cmocka_unit_test(test_split_oom),
      cmocka_unit_test(test_movielens_seeds_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

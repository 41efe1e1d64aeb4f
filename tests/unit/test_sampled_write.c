/*
 * test_sampled_write.c — cofi_sampled_write, the validation files of
 * `cofi tune --protocol sampled`: one case per distinct held-out pair in
 * order of first appearance; each case's negatives are distinct training
 * items the user has no row with (in any part), as many as asked or as
 * exist; seeded (same seed, same files; another seed, other negatives);
 * cofi_evaluate_sampled reads the files back; IDs the format cannot hold
 * and an empty held-out part are refused.
 */
#include "testutil.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NU = 8, NI = 50 };

static cofi_dataset *make(uint8_t **parts_out, const char *odd_user) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  uint8_t *parts = malloc(4096);
  char us[32], is[32];
  size_t n = 0;
  for (int u = 0; u < NU; u++)
    for (int i = 0; i < NI; i++) {
      if ((u * 11 + i * 7) % 3 != 0) continue;
      snprintf(us, sizeof us, "%s%d", u == 0 && odd_user ? odd_user : "u", u);
      snprintf(is, sizeof is, "i%d", i);
      for (int rep = 0; rep < 2; rep++) { /* two rows per pair */
        assert_int_equal(cofi__dataset_add(ds, us, strlen(us), is, strlen(is), 1, 0), COFI_OK);
        /* held out: each user's item 48 or 49 (u's last), and item 45 only held */
        parts[n++] = (i >= 48 || i == 45) ? COFI_PART_TEST : COFI_PART_TRAIN;
      }
    }
  *parts_out = parts;
  return ds;
}

static char *slurp(const char *path) {
  size_t len;
  unsigned char *b = tu_read_file(path, &len);
  char *s = malloc(len + 1);
  memcpy(s, b, len);
  s[len] = 0;
  free(b);
  return s;
}

static void files_follow_the_rules(void **state) {
  (void)state;
  uint8_t *parts;
  cofi_dataset *ds = make(&parts, NULL);
  char *dir = tu_mkdtemp();
  char tp[512], np[512], tp2[512], np2[512];
  snprintf(tp, sizeof tp, "%s/t", dir);
  snprintf(np, sizeof np, "%s/n", dir);
  snprintf(tp2, sizeof tp2, "%s/t2", dir);
  snprintf(np2, sizeof np2, "%s/n2", dir);
  cofi_diag d = {0};
  assert_int_equal(cofi_sampled_write(ds, parts, COFI_PART_BIT(COFI_PART_TEST), 10, 3, tp, np, &d),
                   COFI_OK);
  char *t = slurp(tp), *n = slurp(np);
  /* expected cases: for each user in order, their held items in order, once */
  char want[4096] = "";
  size_t o = 0;
  for (int u = 0; u < NU; u++)
    for (int i = 0; i < NI; i++)
      if ((u * 11 + i * 7) % 3 == 0 && (i >= 48 || i == 45))
        o += (size_t)snprintf(want + o, sizeof want - o, "u%d\ti%d\n", u, i);
  assert_string_equal(t, want);
  /* negatives: 10 distinct training items the user never had */
  char *save = NULL;
  int lines = 0;
  for (char *line = strtok_r(n, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
    int u, it;
    assert_int_equal(sscanf(line, "(u%d,i%d)", &u, &it), 2);
    int negs[64], k = 0;
    for (char *p = strchr(line, '\t'); p; p = strchr(p + 1, '\t')) {
      assert_int_equal(sscanf(p, "\ti%d", &negs[k]), 1);
      int i = negs[k];
      assert_true((u * 11 + i * 7) % 3 != 0); /* not the user's */
      assert_true(i < 45 || (i > 45 && i < 48)); /* a training item (45, 48, 49: held only) */
      for (int j = 0; j < k; j++) assert_int_not_equal(negs[j], i);
      k++;
    }
    assert_int_equal(k, 10);
  }
  int cases = 0;
  for (const char *c = want; *c; c++) cases += *c == '\n';
  assert_int_equal(lines, cases);
  /* same seed, same files; another seed, other negatives */
  assert_int_equal(cofi_sampled_write(ds, parts, COFI_PART_BIT(COFI_PART_TEST), 10, 3, tp2, np2, &d),
                   COFI_OK);
  char *n2 = slurp(np2);
  char *n1 = slurp(np);
  assert_string_equal(n1, n2);
  free(n2);
  assert_int_equal(cofi_sampled_write(ds, parts, COFI_PART_BIT(COFI_PART_TEST), 10, 4, tp2, np2, &d),
                   COFI_OK);
  n2 = slurp(np2);
  assert_true(strcmp(n1, n2) != 0);
  free(n2);
  /* more than exist: every candidate, once (each user has 47 - own training items) */
  assert_int_equal(cofi_sampled_write(ds, parts, COFI_PART_BIT(COFI_PART_TEST), 1000, 3, tp2, np2, &d),
                   COFI_OK);
  n2 = slurp(np2);
  char *line = n2;
  int u;
  assert_int_equal(sscanf(line, "(u%d,", &u), 1);
  int avail = 0;
  for (int i = 0; i < 48; i++) avail += i != 45 && (u * 11 + i * 7) % 3 != 0;
  int tabs = 0;
  for (char *p = line; *p && *p != '\n'; p++) tabs += *p == '\t';
  assert_int_equal(tabs, avail);
  free(n2);

  /* read back by the evaluator with a model trained on the training rows */
  cofi_dataset *train;
  assert_int_equal(cofi_dataset_select(ds, parts, COFI_PART_BIT(COFI_PART_TRAIN), &train, &d), COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 3;
  cofi_model *m;
  assert_int_equal(cofi_train(train, &p, &m, &d), COFI_OK);
  cofi_eval_options eo = cofi_eval_options_default();
  cofi_eval_result res;
  int rc = cofi_evaluate_sampled(m, COFI_SCORER_MODEL, tp, np, &eo, &res, &d);
  /* the held items are unknown to the model (held only): skipped, by reason */
  assert_int_equal(rc, COFI_ERR_EMPTY);
  cofi_model_close(m);
  cofi_dataset_free(train);

  free(t);
  free(n);
  free(n1);
  tu_rmdir(dir);
  free(dir);
  free(parts);
  cofi_dataset_free(ds);
}

static void evaluator_reads_them(void **state) {
  (void)state;
  uint8_t *parts;
  cofi_dataset *ds = make(&parts, NULL);
  /* hold out user u's (u / 3)-th pair instead: users with the same items
   * hold different ones, so every held item is still a training item */
  for (size_t r = 0; r < ds->n; r++) parts[r] = COFI_PART_TRAIN;
  for (int u = 0; u < NU; u++) {
    int seen = 0;
    for (size_t r = 0; r < ds->n; r += 2)
      if (ds->user[r] == (uint32_t)u && seen++ == u / 3) {
        parts[r] = parts[r + 1] = COFI_PART_TEST; /* both rows of the pair */
        break;
      }
  }
  char *dir = tu_mkdtemp();
  char tp[512], np[512];
  snprintf(tp, sizeof tp, "%s/t", dir);
  snprintf(np, sizeof np, "%s/n", dir);
  cofi_diag d = {0};
  assert_int_equal(cofi_sampled_write(ds, parts, COFI_PART_BIT(COFI_PART_TEST), 5, 1, tp, np, &d),
                   COFI_OK);
  cofi_dataset *train;
  assert_int_equal(cofi_dataset_select(ds, parts, COFI_PART_BIT(COFI_PART_TRAIN), &train, &d), COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 3;
  cofi_model *m;
  assert_int_equal(cofi_train(train, &p, &m, &d), COFI_OK);
  cofi_eval_options eo = cofi_eval_options_default();
  cofi_eval_result res;
  assert_int_equal(cofi_evaluate_sampled(m, COFI_SCORER_MODEL, tp, np, &eo, &res, &d), COFI_OK);
  assert_int_equal(res.n_users + res.skipped[0] + res.skipped[1], NU);
  assert_int_equal(res.unknown_items, 0);        /* negatives are training items */
  assert_float_equal(res.metrics[0][COFI_METRIC_HIT_RATE], 1.0, 0); /* 6 candidates, k 10 */
  cofi_model_close(m);
  cofi_dataset_free(train);
  tu_rmdir(dir);
  free(dir);
  free(parts);
  cofi_dataset_free(ds);
}

static void refusals(void **state) {
  (void)state;
  uint8_t *parts;
  cofi_dataset *ds = make(&parts, "a,b");
  char *dir = tu_mkdtemp();
  char tp[512], np[512];
  snprintf(tp, sizeof tp, "%s/t", dir);
  snprintf(np, sizeof np, "%s/n", dir);
  cofi_diag d = {0};
  assert_int_equal(cofi_sampled_write(ds, parts, COFI_PART_BIT(COFI_PART_TEST), 5, 1, tp, np, &d),
                   COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "user ID 'a,b0'"));
  assert_int_equal(cofi_sampled_write(ds, parts, COFI_PART_BIT(COFI_PART_VALIDATION), 5, 1, tp, np, &d),
                   COFI_ERR_EMPTY);
  tu_rmdir(dir);
  free(dir);
  free(parts);
  cofi_dataset_free(ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(files_follow_the_rules),
      cmocka_unit_test(evaluator_reads_them),
      cmocka_unit_test(refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

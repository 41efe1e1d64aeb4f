/*
 * test_server_online.c — the in-memory pieces of online updates
 * (server/online.h): the string map under random puts, gets and removes
 * checked against a plain array (removal by backward shift must keep
 * every other key reachable), and the candidate ranking against a brute
 * force over a trained model, and the parsing of category= and items=.
 */
#include "testutil.h"

#include "online.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_KEYS 600

static void test_strmap_random(void **state) {
  (void)state;
  srv_strmap m;
  memset(&m, 0, sizeof m);
  static int present[N_KEYS];
  memset(present, 0, sizeof present);
  unsigned seed = 12345;
  for (int step = 0; step < 20000; step++) {
    seed = seed * 1103515245u + 12345u;
    int k = (int)((seed >> 8) % N_KEYS);
    char key[32];
    int len = snprintf(key, sizeof key, "key-%d", k);
    int op = (int)((seed >> 20) % 3);
    if (op == 0) {
      void *old = (void *)1;
      assert_true(srv_strmap_put(&m, key, (size_t)len, (void *)(uintptr_t)(k + 1), &old));
      assert_ptr_equal(old, present[k] ? (void *)(uintptr_t)(k + 1) : NULL);
      present[k] = 1;
    } else if (op == 1) {
      void *v = srv_strmap_remove(&m, key, (size_t)len);
      assert_ptr_equal(v, present[k] ? (void *)(uintptr_t)(k + 1) : NULL);
      present[k] = 0;
    }
    /* every key as the reference says, every few steps */
    if (step % 97 == 0) {
      size_t n = 0;
      for (int i = 0; i < N_KEYS; i++) {
        len = snprintf(key, sizeof key, "key-%d", i);
        void *v = srv_strmap_get(&m, key, (size_t)len);
        assert_ptr_equal(v, present[i] ? (void *)(uintptr_t)(i + 1) : NULL);
        n += (size_t)present[i];
      }
      assert_int_equal(m.n, n);
    }
  }
  /* keys that differ only in length or a byte, and the empty key */
  assert_true(srv_strmap_put(&m, "ab", 2, (void *)7, NULL));
  assert_true(srv_strmap_put(&m, "ab\0", 3, (void *)8, NULL));
  assert_true(srv_strmap_put(&m, "", 0, (void *)9, NULL));
  assert_ptr_equal(srv_strmap_get(&m, "ab", 2), (void *)7);
  assert_ptr_equal(srv_strmap_get(&m, "ab\0", 3), (void *)8);
  assert_ptr_equal(srv_strmap_get(&m, "", 0), (void *)9);
  assert_null(srv_strmap_get(&m, "a", 1));
  srv_strmap_free(&m, NULL);
  assert_null(srv_strmap_get(&m, "ab", 2));
}

static void free_counted(void *v) { (*(int *)v)++; }

static void test_strmap_free_values(void **state) {
  (void)state;
  srv_strmap m;
  memset(&m, 0, sizeof m);
  int freed = 0;
  for (int i = 0; i < 50; i++) {
    char key[16];
    int len = snprintf(key, sizeof key, "%d", i);
    assert_true(srv_strmap_put(&m, key, (size_t)len, &freed, NULL));
  }
  srv_strmap_free(&m, free_counted);
  assert_int_equal(freed, 50);
}

/* srv_top_candidates equals sorting every candidate's dot product. */
static void test_top_candidates(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char data[512], path[512];
  snprintf(data, sizeof data, "%s/d.csv", dir);
  snprintf(path, sizeof path, "%s/m.cofi", dir);
  FILE *f = fopen(data, "w");
  assert_non_null(f);
  fprintf(f, "user_id,item_id,value\n");
  for (int u = 0; u < 30; u++)
    for (int i = 0; i < 40; i++)
      if ((u * 7 + i * 3) % 5 < 2) fprintf(f, "u%d,i%d,1\n", u, i);
  fclose(f);
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(data, NULL, &ds, &d), COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 6;
  p.iterations = 3;
  cofi_model *m = NULL;
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  assert_int_equal(cofi_model_save(m, path, &d), COFI_OK);
  cofi_model_close(m);
  cofi_dataset_free(ds);
  srv_model *sm = NULL;
  assert_int_equal(srv_model_load(path, 1, 0, &sm, &d), COFI_OK);
  uint32_t n = sm->info.n_items, fct = sm->info.factors;
  const float *vec = cofi_model_user_factors(sm->m) + 3 * fct; /* user 3 */
  uint32_t cands[] = {5, 1, 30, 7, 7, 22, 1, 13};
  uint32_t skip[] = {13, 30};
  cofi_scored out[4];
  size_t got = srv_top_candidates(sm, NULL, vec, cands, 8, -1, skip, 2, 4, out);
  /* brute force over the distinct candidates not skipped: 5, 1, 7, 22 */
  uint32_t want_set[] = {5, 1, 7, 22};
  float sc[4];
  for (int i = 0; i < 4; i++) {
    const float *y = cofi_model_item_factors(sm->m) + (size_t)want_set[i] * fct;
    sc[i] = 0;
    for (uint32_t k = 0; k < fct; k++) sc[i] += vec[k] * y[k];
  }
  assert_int_equal(got, 4);
  for (size_t i = 0; i < got; i++) {
    if (i) assert_true(out[i - 1].score > out[i].score ||
                       (out[i - 1].score == out[i].score && out[i - 1].index < out[i].index));
    int found = 0;
    for (int j = 0; j < 4; j++)
      if (want_set[j] == out[i].index) {
        found = 1;
        assert_float_equal(out[i].score, sc[j], 1e-6);
      }
    assert_true(found);
  }
  /* all items, k = 3: the three best of the whole catalog */
  got = srv_top_candidates(sm, NULL, vec, NULL, 0, -1, NULL, 0, 3, out);
  assert_int_equal(got, 3);
  for (uint32_t it = 0; it < n; it++) {
    const float *y = cofi_model_item_factors(sm->m) + (size_t)it * fct;
    float s = 0;
    for (uint32_t k = 0; k < fct; k++) s += vec[k] * y[k];
    int in_top = it == out[0].index || it == out[1].index || it == out[2].index;
    if (!in_top) assert_true(s <= out[2].score);
  }
  /* a category with no view: nothing */
  assert_int_equal(srv_top_candidates(sm, NULL, vec, NULL, 0, 0, NULL, 0, 3, out), 0);
  srv_ref_release(&sm->ref);
  tu_rmdir(dir);
  free(dir);
}

/* category= and items= of GET /recommend (parse.c). */
static bool parse_rec(const char *text, srv_rec_query *q, srv_span *cands, srv_error *e) {
  static char buf[20000];
  static srv_span liked[4], exclude[4];
  size_t len = strlen(text);
  memcpy(buf, text, len + 1);
  srv_param ps[SRV_MAX_PARAMS];
  size_t n;
  srv_limits lim = {100, 4, 64};
  memset(q, 0, sizeof *q);
  q->liked = liked;
  q->exclude = exclude;
  q->cands = cands;
  return srv_query_parse(buf, len, buf, ps, SRV_MAX_PARAMS, &n, e) &&
         srv_rec_query_from_params(ps, n, &lim, 10, false, q, e);
}

static void test_filter_params(void **state) {
  (void)state;
  srv_rec_query q;
  srv_span cands[4];
  srv_error e;
  assert_true(parse_rec("user_id=u&category=Sci-Fi%20x&items=a,b%5C%2Cc", &q, cands, &e));
  assert_true(q.has_category && srv_span_eq(q.category, "Sci-Fi x"));
  assert_true(q.has_items);
  assert_int_equal(q.n_cands, 2);
  assert_true(srv_span_eq(cands[0], "a") && srv_span_eq(cands[1], "b,c"));
  /* items repeated: the lists are joined, up to the list limit (4 here) */
  assert_true(parse_rec("user_id=u&items=a,b&items=c", &q, cands, &e));
  assert_int_equal(q.n_cands, 3);
  assert_false(parse_rec("user_id=u&items=a,b,c,d,e", &q, cands, &e));
  assert_string_equal(e.code, "too_many_ids");
  assert_non_null(strstr(e.message, "items"));
  char longq[400];
  snprintf(longq, sizeof longq, "user_id=u&category=%0257d", 0);
  assert_false(parse_rec(longq, &q, cands, &e));
  assert_string_equal(e.code, "invalid_category");
  assert_non_null(strstr(e.message, "257"));
  assert_false(parse_rec("user_id=u&category=", &q, cands, &e));
  assert_string_equal(e.code, "invalid_category");
  assert_false(parse_rec("user_id=u&category=a&category=b", &q, cands, &e));
  assert_string_equal(e.code, "duplicate_parameter");
  assert_false(parse_rec("liked=1&category=a", &q, cands, &e));
  assert_string_equal(e.code, "invalid_parameter");
  assert_false(parse_rec("liked=1&items=a", &q, cands, &e));
  assert_string_equal(e.code, "invalid_parameter");
  /* a caller without a candidate list (the JSON forms) refuses items= */
  assert_false(parse_rec("user_id=u&items=a", &q, NULL, &e));
  assert_string_equal(e.code, "unknown_parameter");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strmap_random),
      cmocka_unit_test(test_strmap_free_values),
      cmocka_unit_test(test_top_candidates),
      cmocka_unit_test(test_filter_params),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

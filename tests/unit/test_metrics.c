/*
 * test_metrics.c — the ranking metrics against hand-computed cases, the
 * ranking kernel against a slow obvious reference (score every item, sort
 * the whole catalog), and cofi_evaluate end to end on a tiny data set
 * (skip reasons, seen-item filtering, fold-in, out-of-memory paths).
 */
#include "testutil.h"

#include "eval/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-9

/* cmocka 1.1 has no floating-point assertion; this one prints both values. */
#define assert_near(a, b, eps)                                                \
  do {                                                                        \
    double a_ = (a), b_ = (b);                                                \
    if (!(fabs(a_ - b_) <= (eps)))                                            \
      fail_msg("%s = %.12g, expected %.12g", #a, a_, b_);                     \
  } while (0)

/* ---- per-user metrics, by hand ----------------------------------------- */

/* ranked [5 3 9 1], held-out {1 3 7}: hits at ranks 2 and 4. */
static void test_metrics_hand_k4(void **state) {
  (void)state;
  const uint32_t ranked[] = {5, 3, 9, 1}, test[] = {1, 3, 7};
  double m[COFI_METRIC_COUNT];
  cofi__metrics_user(ranked, 4, test, 3, 4, m);
  /* recall = 2 / min(4, 3) */
  assert_near(m[COFI_METRIC_RECALL], 2.0 / 3.0, EPS);
  /* precision = 2 / 4 */
  assert_near(m[COFI_METRIC_PRECISION], 0.5, EPS);
  /* DCG = 1/log2(3) + 1/log2(5) = 0.630930 + 0.430677;
   * IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.130930 */
  assert_near(m[COFI_METRIC_NDCG], (0.6309297535714574 + 0.43067655807339306) / 2.1309297535714574, 1e-12);
  assert_near(m[COFI_METRIC_NDCG], 0.498189, 1e-6);
  assert_near(m[COFI_METRIC_HIT_RATE], 1.0, EPS);
  /* AP = (1/2 + 2/4) / min(4, 3) */
  assert_near(m[COFI_METRIC_MAP], 1.0 / 3.0, EPS);
}

/* The same list cut at K = 2: one hit at rank 2. */
static void test_metrics_hand_k2(void **state) {
  (void)state;
  const uint32_t ranked[] = {5, 3, 9, 1}, test[] = {1, 3, 7};
  double m[COFI_METRIC_COUNT];
  cofi__metrics_user(ranked, 4, test, 3, 2, m);
  assert_near(m[COFI_METRIC_RECALL], 0.5, EPS);     /* 1 / min(2, 3) */
  assert_near(m[COFI_METRIC_PRECISION], 0.5, EPS);  /* 1 / 2 */
  /* DCG = 1/log2(3); IDCG = 1 + 1/log2(3) */
  assert_near(m[COFI_METRIC_NDCG], 0.6309297535714574 / 1.6309297535714574, 1e-12);
  assert_near(m[COFI_METRIC_HIT_RATE], 1.0, EPS);
  assert_near(m[COFI_METRIC_MAP], 0.25, EPS);       /* (1/2) / 2 */
}

/* Recall divides by min(K, n), not n: 5 held-out items, K = 2, both hit. */
static void test_metrics_recall_capped(void **state) {
  (void)state;
  const uint32_t ranked[] = {4, 2}, test[] = {0, 1, 2, 3, 4};
  double m[COFI_METRIC_COUNT];
  cofi__metrics_user(ranked, 2, test, 5, 2, m);
  assert_near(m[COFI_METRIC_RECALL], 1.0, EPS);
  assert_near(m[COFI_METRIC_NDCG], 1.0, EPS);
  assert_near(m[COFI_METRIC_MAP], 1.0, EPS);        /* (1/1 + 2/2) / 2 */
  assert_near(m[COFI_METRIC_PRECISION], 1.0, EPS);
}

static void test_metrics_no_hit(void **state) {
  (void)state;
  const uint32_t ranked[] = {8, 6, 4}, test[] = {5};
  double m[COFI_METRIC_COUNT];
  cofi__metrics_user(ranked, 3, test, 1, 3, m);
  for (int i = 0; i < COFI_METRIC_COVERAGE; i++) assert_near(m[i], 0.0, EPS);
}

/* A list shorter than K (tiny catalog): precision still divides by K. */
static void test_metrics_short_list(void **state) {
  (void)state;
  const uint32_t ranked[] = {2}, test[] = {2};
  double m[COFI_METRIC_COUNT];
  cofi__metrics_user(ranked, 1, test, 1, 10, m);
  assert_near(m[COFI_METRIC_RECALL], 1.0, EPS);
  assert_near(m[COFI_METRIC_PRECISION], 0.1, EPS);
  assert_near(m[COFI_METRIC_NDCG], 1.0, EPS);
  assert_near(m[COFI_METRIC_HIT_RATE], 1.0, EPS);
  assert_near(m[COFI_METRIC_MAP], 1.0, EPS);
}

/* One held-out item at rank 3 of K = 10: NDCG = 1/log2(4) = 0.5, MAP = 1/3. */
static void test_metrics_single_item(void **state) {
  (void)state;
  const uint32_t ranked[] = {0, 1, 7, 3, 4}, test[] = {7};
  double m[COFI_METRIC_COUNT];
  cofi__metrics_user(ranked, 5, test, 1, 10, m);
  assert_near(m[COFI_METRIC_RECALL], 1.0, EPS);
  assert_near(m[COFI_METRIC_NDCG], 0.5, EPS);
  assert_near(m[COFI_METRIC_MAP], 1.0 / 3.0, EPS);
  assert_near(m[COFI_METRIC_PRECISION], 0.1, EPS);
}

/* Lists [0 1] and [1 2] over 5 items: coverage@2 = 3/5, coverage@1 = 2/5. */
static void test_coverage_hand(void **state) {
  (void)state;
  const uint32_t top[] = {0, 1, 1, 2}, n_top[] = {2, 2};
  uint8_t buf[5];
  assert_near(cofi__coverage(top, n_top, 2, 2, 2, 5, buf), 0.6, EPS);
  assert_near(cofi__coverage(top, n_top, 2, 2, 1, 5, buf), 0.4, EPS);
}

/* Averages over users: user 0 hits at rank 1, user 1 misses. */
static void test_eval_score_average(void **state) {
  (void)state;
  uint32_t row[] = {0, 1};
  uint64_t seen_ptr[] = {0, 0, 0}, test_ptr[] = {0, 1, 2};
  uint32_t test[] = {3, 4};
  cofi__evalset set = {.n_users = 2, .n_items = 6, .row = row, .seen_ptr = seen_ptr,
                       .test_ptr = test_ptr, .test = test};
  uint32_t top[] = {3, 0, 1, 2}, n_top[] = {2, 2};
  cofi_eval_options o = cofi_eval_options_default();
  o.ks[0] = 2;
  cofi_eval_result r;
  memset(&r, 0, sizeof r);
  assert_int_equal(cofi__eval_score(&set, top, n_top, 2, &o, &r), COFI_OK);
  assert_int_equal(r.n_users, 2);
  assert_near(r.metrics[0][COFI_METRIC_RECALL], 0.5, EPS);
  assert_near(r.metrics[0][COFI_METRIC_PRECISION], 0.25, EPS);
  assert_near(r.metrics[0][COFI_METRIC_NDCG], 0.5, EPS);
  assert_near(r.metrics[0][COFI_METRIC_HIT_RATE], 0.5, EPS);
  assert_near(r.metrics[0][COFI_METRIC_MAP], 0.5, EPS);
  assert_near(r.metrics[0][COFI_METRIC_COVERAGE], 4.0 / 6.0, EPS);
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(cofi_metric_name(COFI_METRIC_RECALL), "recall");
  assert_string_equal(cofi_metric_name(COFI_METRIC_HIT_RATE), "hit_rate");
  assert_null(cofi_metric_name(COFI_METRIC_COUNT));
  assert_null(cofi_metric_name(-1));
  assert_string_equal(cofi_skip_name(COFI_SKIP_ITEMS_UNKNOWN), "no_test_item_in_training");
  assert_null(cofi_skip_name(COFI_SKIP_COUNT));
}

static void test_options_check(void **state) {
  (void)state;
  cofi_eval_options o = cofi_eval_options_default();
  uint32_t mk;
  cofi_diag d = {0};
  assert_int_equal(cofi__eval_options_check(&o, &mk, &d), COFI_OK);
  assert_int_equal(mk, 10);
  o.ks[0] = 0;
  assert_int_equal(cofi__eval_options_check(&o, &mk, &d), COFI_ERR_INVALID);
  assert_non_null(strstr(d.message, "cutoff"));
  o.ks[0] = 5;
  o.n_ks = 0;
  assert_int_equal(cofi__eval_options_check(&o, &mk, &d), COFI_ERR_INVALID);
}

/* ---- ranking kernel against a reference --------------------------------- */

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

typedef struct ref_item {
  float score;
  uint32_t index;
} ref_item;

static int cmp_ref(const void *a, const void *b) {
  const ref_item *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

static void check_rank(cofi_scorer kind) {
  enum { NU = 37, NI = 53, K = 8, KD = 5 };
  uint64_t s = 7 + kind;
  float *U = malloc(sizeof(float) * NU * KD), *V = malloc(sizeof(float) * NI * KD);
  float pop[NI];
  for (int i = 0; i < NU * KD; i++) U[i] = (float)((int)(lcg(&s) % 200) - 100) / 50.0f;
  for (int i = 0; i < NI * KD; i++) V[i] = (float)((int)(lcg(&s) % 200) - 100) / 50.0f;
  for (int i = 0; i < NI; i++) pop[i] = (float)(lcg(&s) % 7); /* many ties */
  uint32_t row[NU];
  uint64_t seen_ptr[NU + 1], test_ptr[NU + 1];
  uint32_t seen[NU * 60], test[NU];
  seen_ptr[0] = 0;
  test_ptr[0] = 0;
  for (uint32_t u = 0; u < NU; u++) {
    row[u] = NU - 1 - u;
    uint64_t n = seen_ptr[u];
    /* user u has seen items 0, u+1, 2(u+1), ... (ascending); user 36 sees
     * all but 3 items, fewer than K candidates. */
    if (u == NU - 1) {
      for (uint32_t i = 3; i < NI; i++) seen[n++] = i;
    } else {
      for (uint32_t i = 0; i < NI; i += u + 1) seen[n++] = i;
    }
    seen_ptr[u + 1] = n;
    test[u] = 1;
    test_ptr[u + 1] = u + 1;
  }
  cofi__evalset set = {.n_users = NU, .n_items = NI, .row = row, .seen_ptr = seen_ptr,
                       .seen = seen, .test_ptr = test_ptr, .test = test};
  cofi__scoring sc = {.kind = kind, .U = U, .V = V, .k = KD, .pop = pop, .seed = 99, .threads = 2};
  uint32_t top[NU * K], n_top[NU];
  assert_int_equal(cofi__eval_rank(&set, &sc, K, top, n_top), COFI_OK);
  for (uint32_t u = 0; u < NU; u++) {
    ref_item all[NI];
    uint32_t n = 0;
    for (uint32_t i = 0; i < NI; i++) {
      bool is_seen = false;
      for (uint64_t t = seen_ptr[u]; t < seen_ptr[u + 1]; t++) is_seen |= seen[t] == i;
      if (is_seen) continue;
      float sco;
      if (kind == COFI_SCORER_MODEL) {
        sco = 0;
        for (int j = 0; j < KD; j++) sco += U[row[u] * KD + j] * V[i * KD + j];
      } else if (kind == COFI_SCORER_POPULARITY) {
        sco = pop[i];
      } else {
        sco = cofi__random_score(99, u, i);
      }
      all[n].score = sco;
      all[n].index = i;
      n++;
    }
    qsort(all, n, sizeof *all, cmp_ref);
    uint32_t want = n < K ? n : K;
    assert_int_equal(n_top[u], want);
    for (uint32_t i = 0; i < want; i++) assert_int_equal(top[u * K + i], all[i].index);
  }
  free(U);
  free(V);
}

static void test_rank_model_vs_reference(void **state) {
  (void)state;
  check_rank(COFI_SCORER_MODEL);
}
static void test_rank_popularity_vs_reference(void **state) {
  (void)state;
  check_rank(COFI_SCORER_POPULARITY);
}
static void test_rank_random_vs_reference(void **state) {
  (void)state;
  check_rank(COFI_SCORER_RANDOM);
}

static void test_random_score_range(void **state) {
  (void)state;
  double sum = 0;
  for (uint32_t i = 0; i < 10000; i++) {
    float r = cofi__random_score(3, i % 17, i);
    assert_true(r >= 0.0f && r < 1.0f);
    sum += r;
  }
  assert_true(fabs(sum / 10000 - 0.5) < 0.02);
  assert_true(cofi__random_score(1, 2, 3) == cofi__random_score(1, 2, 3));
  assert_true(cofi__random_score(1, 2, 3) != cofi__random_score(2, 2, 3));
}

/* ---- cofi_evaluate end to end ------------------------------------------ */

static cofi_dataset *make_ds(const char *const rows[][2], size_t n) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(cofi__dataset_add(ds, rows[i][0], strlen(rows[i][0]), rows[i][1],
                                       strlen(rows[i][1]), 1.0f, (int64_t)i),
                     COFI_OK);
  return ds;
}

static const char *const train_rows[][2] = {
    {"u1", "a"}, {"u1", "b"}, {"u2", "a"}, {"u2", "c"}, {"u3", "b"},
    {"u3", "c"}, {"u3", "d"}, {"u4", "d"}, {"u4", "e"}, {"u4", "a"}};

static void test_evaluate_skips_and_filters(void **state) {
  (void)state;
  cofi_dataset *train = make_ds(train_rows, 10);
  /* u1 -> c (evaluable), u2 -> zz (item unknown), u9 -> a (user unknown),
   * u3 -> e and zz (one known item, one unknown). */
  static const char *const test_rows[][2] = {
      {"u1", "c"}, {"u2", "zz"}, {"u9", "a"}, {"u3", "e"}, {"u3", "zz"}};
  cofi_dataset *test = make_ds(test_rows, 5);
  cofi_params p = cofi_params_default();
  p.factors = 3;
  p.iterations = 3;
  p.regularization = 0.1f;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(train, &p, &m, &d), COFI_OK);
  cofi_eval_options o = cofi_eval_options_default();
  o.ks[0] = 5;
  o.ks[1] = 1;
  o.n_ks = 2;
  cofi_eval_result r;
  for (int sc = 0; sc < 3; sc++) {
    assert_int_equal(cofi_evaluate(m, (cofi_scorer)sc, test, NULL, &o, &r, &d), COFI_OK);
    assert_int_equal(r.n_users, 2);
    assert_int_equal(r.skipped[COFI_SKIP_USER_UNKNOWN], 1);
    assert_int_equal(r.skipped[COFI_SKIP_ITEMS_UNKNOWN], 1);
    assert_int_equal(r.unknown_items, 2); /* zz twice */
    assert_int_equal(r.n_test_items, 2);
    assert_int_equal(r.n_items, 5);
    /* Each user has 5 - |seen| candidates: u1 3 (c d e), u3 2 (a e). With
     * K = 5 every candidate is listed, so both held-out items are found. */
    assert_near(r.metrics[0][COFI_METRIC_RECALL], 1.0, EPS);
    assert_near(r.metrics[0][COFI_METRIC_PRECISION], 0.2, EPS);
    /* coverage@5: union of {c d e} and {a e} = 4 of 5 items */
    assert_near(r.metrics[0][COFI_METRIC_COVERAGE], 0.8, EPS);
  }
  /* Popularity: a 3 users, b 2, c 2, d 2, e 1. u1 (seen a b): c d e, ties
   * by index (c=2 before d=3), so top-1 = c: a hit. u3 (seen b c d): a e,
   * top-1 = a: a miss. */
  assert_int_equal(cofi_evaluate(m, COFI_SCORER_POPULARITY, test, NULL, &o, &r, &d), COFI_OK);
  assert_near(r.metrics[1][COFI_METRIC_HIT_RATE], 0.5, EPS);
  /* Nobody evaluable. */
  static const char *const bad_rows[][2] = {{"u9", "a"}, {"u1", "zz"}};
  cofi_dataset *bad = make_ds(bad_rows, 2);
  assert_int_equal(cofi_evaluate(m, COFI_SCORER_MODEL, bad, NULL, &o, &r, &d), COFI_ERR_EMPTY);
  assert_non_null(strstr(d.message, "1 not in training"));
  /* Bad options. */
  o.ks[0] = 0;
  assert_int_equal(cofi_evaluate(m, COFI_SCORER_MODEL, test, NULL, &o, &r, &d), COFI_ERR_INVALID);
  o.ks[0] = 5;
  assert_int_equal(cofi_evaluate(m, (cofi_scorer)7, test, NULL, &o, &r, &d), COFI_ERR_INVALID);
  cofi_dataset_free(bad);
  cofi_dataset_free(test);
  cofi_dataset_free(train);
  cofi_model_close(m);
}

/* Held-out users: vectors folded in from their history, which is removed
 * from their ranking instead of any training row. */
static void test_evaluate_foldin(void **state) {
  (void)state;
  cofi_dataset *train = make_ds(train_rows, 10);
  static const char *const hist_rows[][2] = {{"new1", "a"}, {"new1", "b"}, {"new2", "zz"}};
  static const char *const test_rows[][2] = {{"new1", "c"}, {"new2", "a"}, {"new3", "a"}};
  cofi_dataset *hist = make_ds(hist_rows, 3), *test = make_ds(test_rows, 3);
  cofi_params p = cofi_params_default();
  p.factors = 3;
  p.iterations = 3;
  p.regularization = 0.1f;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(train, &p, &m, &d), COFI_OK);
  cofi_eval_options o = cofi_eval_options_default();
  o.ks[0] = 3;
  cofi_eval_result r;
  assert_int_equal(cofi_evaluate(m, COFI_SCORER_MODEL, test, hist, &o, &r, &d), COFI_OK);
  /* new1 evaluated (3 candidates c d e, K = 3: found); new2's history is
   * unknown and new3 has none: both "user not in training". */
  assert_int_equal(r.n_users, 1);
  assert_int_equal(r.skipped[COFI_SKIP_USER_UNKNOWN], 2);
  assert_near(r.metrics[0][COFI_METRIC_RECALL], 1.0, EPS);
  cofi_dataset_free(hist);
  cofi_dataset_free(test);
  cofi_dataset_free(train);
  cofi_model_close(m);
}

static void test_evaluate_oom(void **state) {
  (void)state;
  cofi_dataset *train = make_ds(train_rows, 10);
  static const char *const test_rows[][2] = {{"u1", "c"}, {"u3", "e"}};
  cofi_dataset *test = make_ds(test_rows, 2);
  cofi_params p = cofi_params_default();
  p.factors = 3;
  p.iterations = 2;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(train, &p, &m, &d), COFI_OK);
  cofi_eval_options o = cofi_eval_options_default();
  cofi_eval_result r;
  int sc = 0;
  for (uint64_t n = 1;; n++) {
    cofi__alloc_fail_after(n);
    int rc = cofi_evaluate(m, (cofi_scorer)sc, test, NULL, &o, &r, &d);
    cofi__alloc_fail_after(0);
    if (rc == COFI_OK) {
      if (++sc == 3) break;
      n = 0;
      continue;
    }
    assert_int_equal(rc, COFI_ERR_NOMEM);
    assert_true(n < 1000);
  }
  cofi_dataset_free(test);
  cofi_dataset_free(train);
  cofi_model_close(m);
}

/* Raw factors in the training dataset's index space (what a progress
 * callback sees) give exactly what the trained model gives. */
static void test_evaluate_factors_matches_model(void **state) {
  (void)state;
  cofi_dataset *train = make_ds(train_rows, 10);
  static const char *const test_rows[][2] = {{"u1", "c"}, {"u3", "e"}, {"u2", "d"}, {"u9", "a"}};
  cofi_dataset *test = make_ds(test_rows, 4);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 3;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(train, &p, &m, &d), COFI_OK);
  cofi_eval_options o = cofi_eval_options_default();
  o.ks[0] = 2;
  cofi_eval_result a, b;
  assert_int_equal(cofi_evaluate(m, COFI_SCORER_MODEL, test, NULL, &o, &a, &d), COFI_OK);
  assert_int_equal(cofi_evaluate_factors(train, cofi_model_user_factors(m),
                                         cofi_model_item_factors(m), 4, test, &o, &b, &d),
                   COFI_OK);
  assert_int_equal(a.n_users, 3);
  assert_int_equal(b.n_users, 3);
  assert_int_equal(b.skipped[COFI_SKIP_USER_UNKNOWN], 1);
  for (int j = 0; j < COFI_METRIC_COUNT; j++) assert_near(a.metrics[0][j], b.metrics[0][j], 0);
  assert_int_equal(cofi_evaluate_factors(train, NULL, cofi_model_item_factors(m), 4, test, &o, &b, &d),
                   COFI_ERR_INVALID);
  cofi_dataset_free(test);
  cofi_dataset_free(train);
  cofi_model_close(m);
}

/* ---- sampled negatives (NCF files) -------------------------------------- */

static void test_sampled(void **state) {
  (void)state;
  cofi_dataset *train = make_ds(train_rows, 10);
  cofi_params p = cofi_params_default();
  p.factors = 3;
  p.iterations = 3;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(train, &p, &m, &d), COFI_OK);
  char *dir = tu_mkdtemp();
  const char test_txt[] = "u1\tc\t5\t100\nu9\ta\t1\t1\nu2\tzz\t3\t3\nu3\te\t4\t4\n";
  const char neg_txt[] = "(u1,c)\td\te\n(u9,a)\tb\n(u2,zz)\ta\n(u3,e)\ta\tqq\r\n";
  char *tp = tu_write_file(dir, "t.rating", test_txt, sizeof test_txt - 1);
  char *np = tu_write_file(dir, "t.negative", neg_txt, sizeof neg_txt - 1);
  cofi_eval_options o = cofi_eval_options_default();
  o.ks[0] = 1;
  o.ks[1] = 3;
  o.n_ks = 2;
  cofi_eval_result r;
  /* Popularity: a 3, b/c/d 2, e 1. u1: candidates c d e -> c first (ties
   * by index): HR@1 = 1. u3: candidates e a (qq unknown) -> a first: HR@1 0,
   * rank 2: NDCG@3 = 1/log2(3). */
  assert_int_equal(cofi_evaluate_sampled(m, COFI_SCORER_POPULARITY, tp, np, &o, &r, &d), COFI_OK);
  assert_int_equal(r.n_users, 2);
  assert_int_equal(r.skipped[COFI_SKIP_USER_UNKNOWN], 1);
  assert_int_equal(r.skipped[COFI_SKIP_ITEMS_UNKNOWN], 1);
  assert_int_equal(r.unknown_items, 2); /* zz, qq */
  assert_near(r.metrics[0][COFI_METRIC_HIT_RATE], 0.5, EPS);
  assert_near(r.metrics[1][COFI_METRIC_HIT_RATE], 1.0, EPS);
  assert_near(r.metrics[1][COFI_METRIC_NDCG], (1.0 + 1.0 / log2(3.0)) / 2, 1e-12);
  assert_int_equal(cofi_evaluate_sampled(m, COFI_SCORER_MODEL, tp, np, &o, &r, &d), COFI_OK);
  assert_int_equal(r.n_users, 2);
  /* Mismatched pair, bad format, missing file, line count mismatch. */
  const char bad1[] = "(u1,d)\td\te\n(u9,a)\tb\n(u2,zz)\ta\n(u3,e)\ta\n";
  char *b1 = tu_write_file(dir, "b1", bad1, sizeof bad1 - 1);
  assert_int_equal(cofi_evaluate_sampled(m, COFI_SCORER_MODEL, tp, b1, &o, &r, &d), COFI_ERR_PARSE);
  assert_int_equal(d.line, 1);
  assert_non_null(strstr(d.message, "does not match"));
  const char bad2[] = "(u1,c)\td\te\nu9,a\tb\n";
  char *b2 = tu_write_file(dir, "b2", bad2, sizeof bad2 - 1);
  assert_int_equal(cofi_evaluate_sampled(m, COFI_SCORER_MODEL, tp, b2, &o, &r, &d), COFI_ERR_PARSE);
  assert_int_equal(d.line, 2);
  const char bad3[] = "(u1,c)\td\te\n";
  char *b3 = tu_write_file(dir, "b3", bad3, sizeof bad3 - 1);
  assert_int_equal(cofi_evaluate_sampled(m, COFI_SCORER_MODEL, tp, b3, &o, &r, &d), COFI_ERR_PARSE);
  assert_int_equal(d.line, 2);
  assert_int_equal(cofi_evaluate_sampled(m, COFI_SCORER_MODEL, "/nonexistent/x", np, &o, &r, &d),
                   COFI_ERR_IO);
  assert_string_equal(d.file, "/nonexistent/x");
  free(b1);
  free(b2);
  free(b3);
  free(tp);
  free(np);
  tu_rmdir(dir);
  free(dir);
  cofi_dataset_free(train);
  cofi_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_hand_k4),
      cmocka_unit_test(test_metrics_hand_k2),
      cmocka_unit_test(test_metrics_recall_capped),
      cmocka_unit_test(test_metrics_no_hit),
      cmocka_unit_test(test_metrics_short_list),
      cmocka_unit_test(test_metrics_single_item),
      cmocka_unit_test(test_coverage_hand),
      cmocka_unit_test(test_eval_score_average),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_options_check),
      cmocka_unit_test(test_rank_model_vs_reference),
      cmocka_unit_test(test_rank_popularity_vs_reference),
      cmocka_unit_test(test_rank_random_vs_reference),
      cmocka_unit_test(test_random_score_range),
      cmocka_unit_test(test_evaluate_skips_and_filters),
      cmocka_unit_test(test_evaluate_foldin),
      cmocka_unit_test(test_evaluate_oom),
      cmocka_unit_test(test_evaluate_factors_matches_model),
      cmocka_unit_test(test_sampled),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

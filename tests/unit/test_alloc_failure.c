/*
 * test_alloc_failure.c — out of memory, injected: for each public call that
 * allocates, fail its 1st allocation, then its 2nd, ... (each time with all
 * later ones failing too, as a real exhausted heap would) until the call
 * gets through. Every attempt must end in COFI_ERR_NOMEM with a message,
 * or in success; never a crash, an abort, another error code, a non-NULL
 * output after failure, or a temporary file left behind by a writer.
 *
 * Leaks are not counted here: the sanitizer pass of scripts/test.sh runs
 * this test under AddressSanitizer with leak detection, which reports any
 * block a failure path forgot to free.
 *
 * The hook is cofi__alloc_fail_after (src/core/alloc.c). Each case has a
 * setup (run with injection off: inputs, a fresh workspace), the call under
 * test (injection on), and a cleanup.
 */
#include "testutil.h"

#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the driver ---------------------------------------------------------- */

typedef struct fixture {
  char *dir;
  char *data_csv;   /* interactions with events and timestamps */
  char *ml_dat;     /* MovieLens ratings.dat */
  char *items_csv;  /* item metadata */
  char *ncf_test, *ncf_neg; /* sampled-negatives files */
  char *model_path; /* a saved model */
  unsigned char *model_bytes;
  size_t model_len;
  cofi_dataset *ds;
  cofi_model *model;
} fixture;

static fixture fx;

/* One case: setup and cleanup run without injection; call runs with the
 * n-th allocation (and all after it) failing and returns the library's
 * code. */
typedef struct alloc_case {
  const char *name;
  void (*setup)(void *st);
  int (*call)(void *st, cofi_diag *d);
  void (*cleanup)(void *st, int rc);
  bool has_diag; /* the call reports through a cofi_diag */
} alloc_case;

/* Entries of dir, to catch files a failed writer leaves behind; fails the
 * test on any name containing ".tmp". */
static size_t count_files(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (strstr(e->d_name, ".tmp")) fail_msg("temporary file %s/%s left behind", dir, e->d_name);
    n++;
  }
  closedir(d);
  return n;
}

static void run_case(const alloc_case *c, void *st) {
  size_t files_before = count_files(fx.dir);
  uint64_t n;
  for (n = 1;; n++) {
    if (c->setup) c->setup(st);
    cofi_diag d;
    memset(&d, 0, sizeof d);
    cofi__alloc_fail_after(n);
    int rc = c->call(st, &d);
    uint64_t attempts = cofi__alloc_fail_after(0);
    if (rc != COFI_OK && rc != COFI_ERR_NOMEM)
      fail_msg("%s: with allocation %llu failing it returned %d (%s: %s), "
               "expected COFI_ERR_NOMEM",
               c->name, (unsigned long long)n, rc, cofi_error_name(rc), d.message);
    if (rc == COFI_ERR_NOMEM && c->has_diag && d.message[0] == 0)
      fail_msg("%s: COFI_ERR_NOMEM at allocation %llu without a message", c->name,
               (unsigned long long)n);
    if (c->cleanup) c->cleanup(st, rc);
    if (rc != COFI_OK && count_files(fx.dir) != files_before)
      fail_msg("%s: a file was left in %s after failing at allocation %llu", c->name,
               fx.dir, (unsigned long long)n);
    if (rc == COFI_OK) {
      /* Success means every allocation it attempted was granted. */
      if (attempts >= n)
        fail_msg("%s: succeeded although allocation %llu of %llu failed", c->name,
                 (unsigned long long)n, (unsigned long long)attempts);
      break;
    }
    if (n > 20000) fail_msg("%s: still failing after %llu allocations", c->name,
                            (unsigned long long)n);
  }
  print_message("  %-28s %4llu allocation failure points\n", c->name,
                (unsigned long long)(n - 1));
}

/* ---- inputs -------------------------------------------------------------- */

static void write_inputs(void) {
  fx.dir = tu_mkdtemp();
  /* 24 users x 16 items in 4 taste groups, several events per pair, with
   * times, so reading, splitting and training all have real work. */
  size_t cap = 64 * 1024, len = 0;
  char *csv = malloc(cap);
  assert_non_null(csv);
  len += (size_t)snprintf(csv + len, cap - len, "user_id,item_id,event,timestamp\n");
  static const char *const ev[] = {"watch", "like", "complete"};
  uint64_t r = 7;
  long t = 1600000000;
  for (int u = 0; u < 24; u++)
    for (int j = 0; j < 7; j++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      int i = (u % 4) * 4 + (int)((r >> 33) % 4);
      if ((r >> 20) % 4 == 0) i = (int)((r >> 40) % 16);
      len += (size_t)snprintf(csv + len, cap - len, "user%d,\"item %d\",%s,%ld\n", u, i,
                              ev[(r >> 50) % 3], t++);
    }
  fx.data_csv = tu_write_file(fx.dir, "data.csv", csv, len);
  free(csv);
  static const char dat[] = "1::10::5::978300760\n1::11::3::978302109\n2::10::4::978301968\n"
                            "2::12::5::978300275\n3::11::4::978824291\n3::12::2::978302268\n";
  fx.ml_dat = tu_write_file(fx.dir, "ratings.dat", dat, sizeof dat - 1);
  char items[4096];
  size_t il = (size_t)snprintf(items, sizeof items, "item_id,title,genre\n");
  for (int i = 0; i < 16; i++)
    il += (size_t)snprintf(items + il, sizeof items - il, "item %d,\"Title %d, the film\",g%d\n",
                           i, i, i % 3);
  fx.items_csv = tu_write_file(fx.dir, "items.csv", items, il);
  static const char test[] = "user0\titem 1\t5\t100\nuser1\titem 2\t4\t101\n";
  static const char neg[] = "(user0,item 1)\titem 3\titem 4\titem 9\n"
                            "(user1,item 2)\titem 5\titem 6\titem 15\n";
  fx.ncf_test = tu_write_file(fx.dir, "ncf.test", test, sizeof test - 1);
  fx.ncf_neg = tu_write_file(fx.dir, "ncf.neg", neg, sizeof neg - 1);

  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(fx.data_csv, NULL, &fx.ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_read_items(fx.ds, fx.items_csv, NULL, &d), COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 2;
  p.threads = 2;
  assert_int_equal(cofi_train(fx.ds, &p, &fx.model, &d), COFI_OK);
  size_t pl = strlen(fx.dir) + 16;
  fx.model_path = malloc(pl);
  snprintf(fx.model_path, pl, "%s/m.cofi", fx.dir);
  assert_int_equal(cofi_model_save(fx.model, fx.model_path, &d), COFI_OK);
  FILE *f = fopen(fx.model_path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  fx.model_len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  fx.model_bytes = malloc(fx.model_len);
  assert_int_equal(fread(fx.model_bytes, 1, fx.model_len, f), fx.model_len);
  fclose(f);
}

static int group_setup(void **state) {
  (void)state;
  write_inputs();
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  cofi_model_close(fx.model);
  cofi_dataset_free(fx.ds);
  tu_rmdir(fx.dir);
  free(fx.dir);
  free(fx.data_csv);
  free(fx.ml_dat);
  free(fx.items_csv);
  free(fx.ncf_test);
  free(fx.ncf_neg);
  free(fx.model_path);
  free(fx.model_bytes);
  return 0;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct ds_state {
  cofi_dataset *ds;
  cofi_read_options opt;
  const char *path;
} ds_state;

static int call_read(void *p, cofi_diag *d) {
  ds_state *s = p;
  s->ds = (cofi_dataset *)0x1; /* must be reset to NULL on failure */
  int rc = cofi_dataset_read(s->path, &s->opt, &s->ds, d);
  if (rc) assert_null(s->ds);
  return rc;
}

static void cleanup_ds(void *p, int rc) {
  ds_state *s = p;
  (void)rc;
  cofi_dataset_free(s->ds);
  s->ds = NULL;
}

static void read_csv(void **state) {
  (void)state;
  ds_state s = {.opt = cofi_read_options_default(), .path = fx.data_csv};
  alloc_case c = {"cofi_dataset_read csv", NULL, call_read, cleanup_ds, true};
  run_case(&c, &s);
  static const cofi_event_weight w[] = {{"watch", 1}, {"like", 4}, {"complete", 2}};
  s.opt.event_weights = w;
  s.opt.n_event_weights = 3;
  s.opt.has_min_value = 1;
  s.opt.min_value = 2;
  c.name = "cofi_dataset_read weights";
  run_case(&c, &s);
  s.opt = cofi_read_options_default();
  s.opt.format = COFI_FORMAT_MOVIELENS;
  s.opt.has_min_value = 1;
  s.opt.min_value = 4;
  s.path = fx.ml_dat;
  c.name = "cofi_dataset_read movielens";
  run_case(&c, &s);
}

static void setup_items(void *p) {
  ds_state *s = p;
  cofi_diag d;
  assert_int_equal(cofi_dataset_read(fx.data_csv, NULL, &s->ds, &d), COFI_OK);
}

static int call_items(void *p, cofi_diag *d) {
  ds_state *s = p;
  int rc = cofi_dataset_read_items(s->ds, fx.items_csv, NULL, d);
  /* A failed join leaves the dataset without metadata, not half of it. */
  if (rc) assert_int_equal(s->ds->meta.n_fields, 0);
  return rc;
}

static void read_items(void **state) {
  (void)state;
  ds_state s = {0};
  alloc_case c = {"cofi_dataset_read_items", setup_items, call_items, cleanup_ds, true};
  run_case(&c, &s);
}

/* ---- training and the model file ----------------------------------------- */

typedef struct model_state {
  cofi_params p;
  cofi_model *m;
  const char *path;
} model_state;

static int call_train(void *p, cofi_diag *d) {
  model_state *s = p;
  s->m = (cofi_model *)0x1;
  int rc = cofi_train(fx.ds, &s->p, &s->m, d);
  if (rc) assert_null(s->m);
  return rc;
}

static void cleanup_model(void *p, int rc) {
  model_state *s = p;
  (void)rc;
  cofi_model_close(s->m);
  s->m = NULL;
}

static void train(void **state) {
  (void)state;
  model_state s = {.p = cofi_params_default()};
  s.p.factors = 4;
  s.p.iterations = 2;
  s.p.threads = 2;
  alloc_case c = {"cofi_train cg", NULL, call_train, cleanup_model, true};
  run_case(&c, &s);
  s.p.solver = COFI_SOLVER_CHOLESKY;
  s.p.compute_loss = 1;
  s.p.reg_exponent = 0.5f;
  s.p.threads = 1;
  c.name = "cofi_train cholesky+loss";
  run_case(&c, &s);
}

static int call_save(void *p, cofi_diag *d) {
  model_state *s = p;
  return cofi_model_save(fx.model, s->path, d);
}

static void save(void **state) {
  (void)state;
  char path[600];
  snprintf(path, sizeof path, "%s/saved.cofi", fx.dir);
  model_state s = {.path = path};
  alloc_case c = {"cofi_model_save", NULL, call_save, NULL, true};
  run_case(&c, &s);
  remove(path);
}

static int call_open(void *p, cofi_diag *d) {
  model_state *s = p;
  s->m = (cofi_model *)0x1;
  int rc = cofi_model_open(fx.model_path, &s->m, d);
  if (rc) assert_null(s->m);
  return rc;
}

static int call_open_memory(void *p, cofi_diag *d) {
  model_state *s = p;
  s->m = (cofi_model *)0x1;
  int rc = cofi_model_open_memory(fx.model_bytes, fx.model_len, &s->m, d);
  if (rc) assert_null(s->m);
  return rc;
}

/* The descriptor is opened once by the test and kept by it: the calls
 * must neither close it nor depend on its position. */
static int model_fd = -1;

static int call_open_fd(void *p, cofi_diag *d) {
  model_state *s = p;
  s->m = (cofi_model *)0x1;
  int rc = cofi_model_open_fd(model_fd, fx.model_path, &s->m, d);
  if (rc) assert_null(s->m);
  return rc;
}

static int call_read_fd(void *p, cofi_diag *d) {
  model_state *s = p;
  s->m = (cofi_model *)0x1;
  int rc = cofi_model_read_fd(model_fd, fx.model_path, &s->m, d);
  if (rc) assert_null(s->m);
  return rc;
}

static void open_model(void **state) {
  (void)state;
  model_state s = {0};
  alloc_case c = {"cofi_model_open", NULL, call_open, cleanup_model, true};
  run_case(&c, &s);
  alloc_case c2 = {"cofi_model_open_memory", NULL, call_open_memory, cleanup_model, true};
  run_case(&c2, &s);
  model_fd = open(fx.model_path, O_RDONLY | O_CLOEXEC);
  assert_true(model_fd >= 0);
  alloc_case c3 = {"cofi_model_open_fd", NULL, call_open_fd, cleanup_model, true};
  run_case(&c3, &s);
  alloc_case c4 = {"cofi_model_read_fd", NULL, call_read_fd, cleanup_model, true};
  run_case(&c4, &s);
  assert_int_equal(close(model_fd), 0); /* still ours, still open */
  model_fd = -1;
}

/* ---- recommending -------------------------------------------------------- */

typedef struct rec_state {
  cofi_workspace *ws;
  cofi_scored out[32];
  size_t n;
  float vec[COFI_MAX_FACTORS];
} rec_state;

/* A fresh workspace each time, so the call has to grow it. */
static void setup_ws(void *p) {
  rec_state *s = p;
  s->ws = cofi_workspace_new();
  assert_non_null(s->ws);
}

static void cleanup_ws(void *p, int rc) {
  rec_state *s = p;
  (void)rc;
  cofi_workspace_free(s->ws);
  s->ws = NULL;
}

static int call_ws_new(void *p, cofi_diag *d) {
  rec_state *s = p;
  (void)d;
  s->ws = cofi_workspace_new();
  return s->ws ? COFI_OK : COFI_ERR_NOMEM;
}

static int call_recommend(void *p, cofi_diag *d) {
  rec_state *s = p;
  (void)d;
  uint32_t excl[2] = {0, 3};
  cofi_recommend_options o = cofi_recommend_options_default();
  o.k = 10;
  o.exclude = excl;
  o.n_exclude = 2;
  return cofi_recommend_user(fx.model, s->ws, 1, &o, s->out, &s->n);
}

static int call_fold_in(void *p, cofi_diag *d) {
  rec_state *s = p;
  (void)d;
  uint32_t liked[3] = {0, 2, 5};
  return cofi_fold_in(fx.model, s->ws, liked, NULL, 3, s->vec);
}

static int call_recommend_vector(void *p, cofi_diag *d) {
  rec_state *s = p;
  (void)d;
  uint32_t liked[3] = {0, 2, 5};
  for (uint32_t j = 0; j < fx.model->factors; j++) s->vec[j] = 0.1f * (float)j;
  cofi_recommend_options o = cofi_recommend_options_default();
  o.k = 10;
  return cofi_recommend_vector(fx.model, s->ws, s->vec, liked, 3, &o, s->out, &s->n);
}

static int call_similar_items(void *p, cofi_diag *d) {
  rec_state *s = p;
  (void)d;
  return cofi_similar_items(fx.model, s->ws, 2, 10, s->out, &s->n);
}

static int call_similar_users(void *p, cofi_diag *d) {
  rec_state *s = p;
  (void)d;
  return cofi_similar_users(fx.model, s->ws, 2, 10, s->out, &s->n);
}

static int call_explainer(void *p, cofi_diag *d) {
  (void)p;
  (void)d;
  cofi_explainer *e = (cofi_explainer *)0x1;
  int rc = cofi_explainer_new_user(fx.model, 1, &e);
  if (rc) {
    assert_null(e);
    return rc;
  }
  cofi_contribution top[3];
  size_t n;
  rc = cofi_explain(e, 2, 3, top, &n, NULL);
  cofi_explainer_free(e);
  return rc;
}

static void recommend(void **state) {
  (void)state;
  rec_state s = {0};
  alloc_case cases[] = {
      {"cofi_workspace_new", NULL, call_ws_new, cleanup_ws, false},
      {"cofi_recommend_user", setup_ws, call_recommend, cleanup_ws, false},
      {"cofi_fold_in", setup_ws, call_fold_in, cleanup_ws, false},
      {"cofi_recommend_vector", setup_ws, call_recommend_vector, cleanup_ws, false},
      {"cofi_similar_items", setup_ws, call_similar_items, cleanup_ws, false},
      {"cofi_similar_users", setup_ws, call_similar_users, cleanup_ws, false},
      {"cofi_explainer_new_user", NULL, call_explainer, NULL, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], &s);
}

/* ---- evaluation ---------------------------------------------------------- */

typedef struct eval_state {
  uint8_t *parts;
  uint64_t counts[COFI_PART_COUNT];
  cofi_split_options so;
  cofi_dataset *out, *dst;
  cofi_scorer scorer;
  const cofi_dataset *test, *foldin;
  cofi_eval_result res;
  cofi_model *train_model;
  char path[600];
} eval_state;

static int call_split(void *p, cofi_diag *d) {
  eval_state *s = p;
  return cofi_split(fx.ds, &s->so, s->parts, s->counts, d);
}

static int call_select(void *p, cofi_diag *d) {
  eval_state *s = p;
  s->out = (cofi_dataset *)0x1;
  int rc = cofi_dataset_select(fx.ds, s->parts, COFI_PART_BIT(COFI_PART_TRAIN), &s->out, d);
  if (rc) assert_null(s->out);
  return rc;
}

static void cleanup_select(void *p, int rc) {
  eval_state *s = p;
  (void)rc;
  cofi_dataset_free(s->out);
  s->out = NULL;
}

static void setup_append(void *p) {
  eval_state *s = p;
  cofi_diag d;
  assert_int_equal(cofi_dataset_read(fx.ml_dat, &(cofi_read_options){.format = COFI_FORMAT_MOVIELENS},
                                     &s->dst, &d), COFI_OK);
}

static int call_append(void *p, cofi_diag *d) {
  eval_state *s = p;
  return cofi_dataset_append(s->dst, fx.ds, d);
}

static void cleanup_append(void *p, int rc) {
  eval_state *s = p;
  (void)rc;
  cofi_dataset_free(s->dst);
  s->dst = NULL;
}

static int call_write_csv(void *p, cofi_diag *d) {
  eval_state *s = p;
  return cofi_dataset_write_csv(fx.ds, s->parts, COFI_PART_BIT(COFI_PART_TEST), s->path, d);
}

static int call_evaluate(void *p, cofi_diag *d) {
  eval_state *s = p;
  cofi_eval_options o = cofi_eval_options_default();
  o.ks[0] = 5;
  o.ks[1] = 10;
  o.n_ks = 2;
  o.threads = 2;
  return cofi_evaluate(s->train_model, s->scorer, s->test, s->foldin, &o, &s->res, d);
}

static int call_evaluate_sampled(void *p, cofi_diag *d) {
  eval_state *s = p;
  cofi_eval_options o = cofi_eval_options_default();
  o.ks[0] = 2;
  o.n_ks = 1;
  return cofi_evaluate_sampled(fx.model, s->scorer, fx.ncf_test, fx.ncf_neg, &o, &s->res, d);
}

static void evaluate(void **state) {
  (void)state;
  eval_state s = {.so = cofi_split_options_default()};
  size_t n = cofi_dataset_n_interactions(fx.ds);
  s.parts = malloc(n);
  assert_non_null(s.parts);
  alloc_case split = {"cofi_split leave-last-out", NULL, call_split, NULL, true};
  run_case(&split, &s);
  s.so.protocol = COFI_PROTOCOL_RANDOM;
  split.name = "cofi_split random";
  run_case(&split, &s);
  s.so.protocol = COFI_PROTOCOL_USERS;
  s.so.heldout_users = 3;
  split.name = "cofi_split users";
  run_case(&split, &s);
  s.so = cofi_split_options_default();
  cofi_diag d;
  assert_int_equal(cofi_split(fx.ds, &s.so, s.parts, s.counts, &d), COFI_OK);

  alloc_case select = {"cofi_dataset_select", NULL, call_select, cleanup_select, true};
  run_case(&select, &s);
  alloc_case append = {"cofi_dataset_append", setup_append, call_append, cleanup_append, true};
  run_case(&append, &s);
  snprintf(s.path, sizeof s.path, "%s/test_part.csv", fx.dir);
  alloc_case write = {"cofi_dataset_write_csv", NULL, call_write_csv, NULL, true};
  run_case(&write, &s);
  remove(s.path);

  /* A model trained on the train part, evaluated on the test part. */
  cofi_dataset *train_ds, *test_ds;
  assert_int_equal(cofi_dataset_select(fx.ds, s.parts, COFI_PART_BIT(COFI_PART_TRAIN),
                                       &train_ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_select(fx.ds, s.parts, COFI_PART_BIT(COFI_PART_TEST),
                                       &test_ds, &d), COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 2;
  assert_int_equal(cofi_train(train_ds, &p, &s.train_model, &d), COFI_OK);
  s.test = test_ds;
  alloc_case ev = {"cofi_evaluate model", NULL, call_evaluate, NULL, true};
  run_case(&ev, &s);
  s.scorer = COFI_SCORER_POPULARITY;
  ev.name = "cofi_evaluate popularity";
  run_case(&ev, &s);
  s.scorer = COFI_SCORER_RANDOM;
  ev.name = "cofi_evaluate random";
  run_case(&ev, &s);
  cofi_model_close(s.train_model);
  cofi_dataset_free(train_ds);
  cofi_dataset_free(test_ds);

  /* Strong generalization: held-out users folded in. */
  s.so.protocol = COFI_PROTOCOL_USERS;
  s.so.heldout_users = 3;
  assert_int_equal(cofi_split(fx.ds, &s.so, s.parts, s.counts, &d), COFI_OK);
  cofi_dataset *fold_ds;
  assert_int_equal(cofi_dataset_select(fx.ds, s.parts, COFI_PART_BIT(COFI_PART_TRAIN),
                                       &train_ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_select(fx.ds, s.parts, COFI_PART_BIT(COFI_PART_TEST),
                                       &test_ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_select(fx.ds, s.parts, COFI_PART_BIT(COFI_PART_TEST_FOLDIN),
                                       &fold_ds, &d), COFI_OK);
  assert_int_equal(cofi_train(train_ds, &p, &s.train_model, &d), COFI_OK);
  s.test = test_ds;
  s.foldin = fold_ds;
  s.scorer = COFI_SCORER_MODEL;
  ev.name = "cofi_evaluate fold-in";
  run_case(&ev, &s);
  cofi_model_close(s.train_model);
  cofi_dataset_free(train_ds);
  cofi_dataset_free(test_ds);
  cofi_dataset_free(fold_ds);

  alloc_case sampled = {"cofi_evaluate_sampled", NULL, call_evaluate_sampled, NULL, true};
  run_case(&sampled, &s);
  free(s.parts);
}

/* ---- synthetic data ------------------------------------------------------ */

static int call_synth(void *p, cofi_diag *d) {
  const char *dir = p;
  cofi_synth_options o = cofi_synth_options_default();
  o.users = 20;
  o.items = 15;
  o.interactions = 200;
  return cofi_synth(&o, dir, d);
}

/* Each output file is written to a temp file and renamed: a failure may
 * leave the first file complete, never a temp file. */
static void cleanup_synth(void *p, int rc) {
  (void)rc;
  count_files(p);
}

static void synth(void **state) {
  (void)state;
  char dir[600];
  snprintf(dir, sizeof dir, "%s/synth", fx.dir);
  assert_int_equal(mkdir(dir, 0755), 0);
  alloc_case c = {"cofi_synth", NULL, call_synth, cleanup_synth, true};
  run_case(&c, dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(read_csv),   cmocka_unit_test(read_items),
      cmocka_unit_test(train),      cmocka_unit_test(save),
      cmocka_unit_test(open_model), cmocka_unit_test(recommend),
      cmocka_unit_test(evaluate),   cmocka_unit_test(synth),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

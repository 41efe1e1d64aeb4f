/*
 * cmd_eval.c — `cofi eval`: split (or read split files), train ALS on the
 * training part, and print ALS, popularity and random side by side on the
 * held-out part, as one table (or JSON).
 *
 * With --seeds N the model is trained N times (seeds 0..N-1) and each
 * metric is reported as mean and sample standard deviation: one run of ALS
 * on a small data set is noisy (implicit on the seeds' split: sd 0.0062 in
 * Recall@10), and comparisons between settings need the spread. The random
 * baseline uses the same seeds; popularity is deterministic (sd 0).
 *
 * Tuned parameters (--params FILE, written by `cofi tune`) were chosen on
 * the validation part, so by default the final model is then trained on
 * train + validation and reported on test, as is standard; the output says
 * which parts were used.
 */
#include "eval_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: cofi eval DATA [options]\n"
    "       cofi eval --split-dir DIR [options]          (files of cofi split)\n"
    "       cofi eval TRAIN --protocol sampled --test FILE --negatives FILE\n"
    "       cofi eval DATA --protocol new-items --items FILE   (cofi eval --protocol new-items --help)\n"
    "\n"
    "Trains ALS on the training part and reports ALS, popularity and random on the\n"
    "held-out part. Metrics: recall, precision, ndcg, hit_rate, map, coverage at each K\n"
    "(formulas in docs/evaluation.md).\n"
    "\n"
    "protocol:\n"
    "  --protocol P          leave-last-out (default; the seeds'), random, heldout-users\n"
    "                        (users), time-cutoff, sampled\n"
    "  --holdout F           random: share of each user's items in test (and validation), 0.2\n"
    "  --heldout-users N|F   heldout-users: test users (N, or a share F < 0.5 of all users),\n"
    "                        and as many validation users (100)\n"
    "  --fold-in-fraction F  heldout-users: share of a held-out user's items folded in (0.8)\n"
    "  --cutoff DATE|S|F     time-cutoff: pairs first seen from then on are test; an ISO 8601\n"
    "                        date, unix seconds, or a fraction F in (0,1) (time quantile)\n"
    "  --split-seed S        seed of the random and users splits (0)\n"
    "  --split-dir DIR       read DIR/train.csv, validation.csv, test.csv (+ *_foldin.csv)\n"
    "  --test F --negatives F   sampled: the NCF test and negatives files\n"
    "evaluation:\n"
    "  --k LIST              cutoffs, e.g. 5,10,20 (default 10)\n"
    "  --metrics LIST        which metrics to print (default all)\n"
    "  --cold-max N          segments: cold users have <= N training items (5)\n"
    "  --seeds N             train with seeds 0..N-1; report mean and sample sd\n"
    "  --on test|validation  held-out part to report on (default test)\n"
    "  --train-on train|train+validation\n"
    "                        default: train, or train+validation with --params\n"
    "  --json                JSON on stdout instead of the table\n"
    "  --quiet               no progress on stderr\n"
    "data options: --format csv|movielens, --min-value X, --user-col ... (as cofi train)\n"
    "DATA, --items or --params can be - (standard input; one of them)\n"
    "training options: --factors, --regularization, --alpha, --iterations, --seed,\n"
    "  --solver, --cg-steps, --threads, --reg-exponent, --unobserved-weight, --params FILE\n"
    "  --model als|ease|itemknn (the first row; EASE: --lambda, --max-memory; item-kNN:\n"
    "  --knn-weighting cosine|tfidf|bm25, --neighbors K)\n";

enum { M_ALS = 0, M_POP = 1, M_RANDOM = 2, N_MODELS = 3 };
/* The trained model's row is named after its kind (--model). */
static const char *model_key[N_MODELS] = {"als", "popularity", "random"};
static const char *model_label[N_MODELS] = {"ALS", "Popularity", "Random"};
static void name_model_row(cofi_model_kind kind) {
  static const char *const labels[] = {"ALS", "EASE", "item-kNN"};
  model_key[M_ALS] = cofi_model_kind_name((int)kind);
  model_label[M_ALS] = labels[kind];
}
static const char *const metric_label[COFI_METRIC_COUNT] = {"Recall", "Precision", "NDCG",
                                                             "HitRate", "MAP", "Coverage"};

typedef struct metrics_ctx {
  const char *cmd;
  bool show[COFI_METRIC_COUNT];
  bool ok;
} metrics_ctx;

static bool add_metric(const char *s, size_t len, void *ctx) {
  metrics_ctx *c = ctx;
  for (int m = 0; m < COFI_METRIC_COUNT; m++) {
    const char *name = cofi_metric_name(m);
    if (strlen(name) == len && !memcmp(name, s, len)) {
      c->show[m] = true;
      return true;
    }
  }
  if (len == 2 && !memcmp(s, "hr", 2)) {
    c->show[COFI_METRIC_HIT_RATE] = true;
    return true;
  }
  cli_usage_error(c->cmd, "--metrics: unknown metric '%.*s' (known: recall, precision, ndcg, "
                  "hit_rate, map, coverage)", (int)len, s);
  return c->ok = false;
}

/* Everything the report needs. */
typedef struct report {
  const ev_setup *setup;
  const cofi_eval_options *eo;
  const bool *show;
  uint32_t runs;       /* seeds run */
  bool with_sd;        /* --seeds given */
  cofi_eval_result *res[N_MODELS]; /* [runs] each */
  const cofi_params *p;
  const char *params_file;
  const char *trained_on;
  const char *reported_on;
  size_t train_rows, train_users, train_items;
  double train_seconds, eval_seconds;
} report;

/* Which number of a result: a metric over all users, over one segment,
 * or the long-tail share. */
enum { V_ALL = -1, V_LONG_TAIL = COFI_SEGMENT_COUNT };

static double pick_value(const cofi_eval_result *e, uint32_t c, int metric, int seg) {
  if (seg == V_ALL) return e->metrics[c][metric];
  if (seg == V_LONG_TAIL) return e->long_tail[c];
  return e->segment_metrics[c][seg][metric];
}

static void value_at(const report *r, int model, uint32_t c, int metric, int seg, double *mean,
                     double *sd) {
  double x[1024];
  uint32_t n = r->runs < 1024 ? r->runs : 1024;
  for (uint32_t i = 0; i < n; i++) x[i] = pick_value(&r->res[model][i], c, metric, seg);
  ev_mean_sd(x, n, mean, sd);
}

static void value_of(const report *r, int model, uint32_t c, int metric, double *mean, double *sd) {
  value_at(r, model, c, metric, V_ALL, mean, sd);
}

static void json_value(const report *r, int model, uint32_t c, int metric, int seg);

static void json_number(double v) {
  if (isfinite(v)) printf("%.6g", v);
  else printf("null");
}

static void print_json(const report *r) {
  const cofi_eval_result *first = &r->res[M_ALS][0];
  printf("{");
  for (int model = 0; model < N_MODELS; model++) {
    printf("\"%s\": {", model_key[model]);
    bool comma = false;
    for (uint32_t c = 0; c < r->eo->n_ks; c++)
      for (int m = 0; m < COFI_METRIC_COUNT; m++) {
        if (!r->show[m]) continue;
        double mean, sd;
        value_of(r, model, c, m, &mean, &sd);
        printf("%s\"%s@%u\": ", comma ? ", " : "", cofi_metric_name(m), r->eo->ks[c]);
        comma = true;
        json_value(r, model, c, m, V_ALL);
      }
    for (uint32_t c = 0; c < r->eo->n_ks; c++) {
      printf("%s\"long_tail@%u\": ", comma ? ", " : "", r->eo->ks[c]);
      comma = true;
      json_value(r, model, c, 0, V_LONG_TAIL);
    }
    /* By metric, then segment: {"n_users": {"cold": 19, "warm": 554},
     * "recall@10": {"cold": .., "warm": ..}}, so a search for the key
     * "recall@10" holding a number finds the all-users values only. */
    printf(", \"segments\": {\"n_users\": {");
    for (int g = 0; g < COFI_SEGMENT_COUNT; g++)
      printf("%s\"%s\": %llu", g ? ", " : "", cofi_segment_name(g),
             (unsigned long long)r->res[model][0].segment_users[g]);
    printf("}");
    for (uint32_t c = 0; c < r->eo->n_ks; c++)
      for (int m = 0; m < COFI_METRIC_COUNT; m++) {
        if (!r->show[m]) continue;
        printf(", \"%s@%u\": {", cofi_metric_name(m), r->eo->ks[c]);
        for (int g = 0; g < COFI_SEGMENT_COUNT; g++) {
          printf("%s\"%s\": ", g ? ", " : "", cofi_segment_name(g));
          json_value(r, model, c, m, g);
        }
        printf("}");
      }
    printf("}}, ");
  }
  printf("\"cold_max\": %u, \"head_items\": %llu, \"n_items\": %llu, ", r->eo->cold_max,
         (unsigned long long)first->head_items, (unsigned long long)first->n_items);
  printf("\"n_users\": %llu, \"skipped\": {", (unsigned long long)first->n_users);
  for (int k = 0; k < COFI_SKIP_COUNT; k++)
    printf("\"%s\": %llu, ", cofi_skip_name(k), (unsigned long long)first->skipped[k]);
  printf("\"test_items_not_in_training\": %llu}}\n", (unsigned long long)first->unknown_items);
}

static void json_value(const report *r, int model, uint32_t c, int metric, int seg) {
  double mean, sd;
  value_at(r, model, c, metric, seg, &mean, &sd);
  if (r->with_sd) {
    printf("{\"mean\": ");
    json_number(mean);
    printf(", \"sd\": ");
    json_number(model == M_POP && r->runs >= 2 && isfinite(mean) ? 0.0 : sd);
    printf("}");
  } else {
    json_number(mean);
  }
}

static void table_cell(const report *r, int model, uint32_t c, int metric, int seg) {
  double mean, sd;
  value_at(r, model, c, metric, seg, &mean, &sd);
  if (!isfinite(mean)) printf(" - |");
  else if (r->with_sd && model != M_POP && isfinite(sd)) printf(" %.4f ± %.4f |", mean, sd);
  else printf(" %.4f |", mean);
}

/* The second table: each model per user segment, with the long-tail
 * share of what it recommends. */
static void print_segments(const report *r) {
  const cofi_eval_result *first = &r->res[M_ALS][0];
  printf("\nSegments: cold users have <= %u training items (%llu users), warm more (%llu "
         "users); long tail: items outside the %llu most popular that hold 80%% of training "
         "interactions (of %llu items)\n\n| Model | Users |",
         r->eo->cold_max, (unsigned long long)first->segment_users[COFI_SEGMENT_COLD],
         (unsigned long long)first->segment_users[COFI_SEGMENT_WARM],
         (unsigned long long)first->head_items, (unsigned long long)first->n_items);
  for (uint32_t c = 0; c < r->eo->n_ks; c++)
    for (int m = 0; m < COFI_METRIC_COUNT; m++)
      if (r->show[m]) printf(" %s@%u |", metric_label[m], r->eo->ks[c]);
  for (uint32_t c = 0; c < r->eo->n_ks; c++) printf(" LongTail@%u |", r->eo->ks[c]);
  printf("\n|-------|-------|");
  for (uint32_t c = 0; c < r->eo->n_ks; c++) {
    for (int m = 0; m < COFI_METRIC_COUNT; m++)
      if (r->show[m]) printf("--------|");
    printf("--------|");
  }
  printf("\n");
  for (int model = 0; model < N_MODELS; model++)
    for (int g = 0; g < COFI_SEGMENT_COUNT; g++) {
      printf("| %s | %s (%llu) |", model_label[model], cofi_segment_name(g),
             (unsigned long long)first->segment_users[g]);
      for (uint32_t c = 0; c < r->eo->n_ks; c++)
        for (int m = 0; m < COFI_METRIC_COUNT; m++)
          if (r->show[m]) table_cell(r, model, c, m, g);
      /* The long tail is for all users: on the first row of a model. */
      for (uint32_t c = 0; c < r->eo->n_ks; c++) {
        if (g == 0) table_cell(r, model, c, 0, V_LONG_TAIL);
        else printf(" |");
      }
      printf("\n");
    }
}

static void print_table(const report *r) {
  const cofi_eval_result *first = &r->res[M_ALS][0];
  const cofi_params *p = r->p;
  char pb[4200];
  printf("Protocol: %s on %s, reported on %s\n", ev_protocol_name(r->setup),
         cli_printable(r->setup->split_dir ? r->setup->split_dir
                                           : cli_display_name(r->setup->data_path),
                       pb, sizeof pb),
         r->reported_on);
  printf("Training: %s (%zu interactions, %zu users, %zu items)\n", r->trained_on, r->train_rows,
         r->train_users, r->train_items);
  if (p->model == COFI_MODEL_EASE)
    printf("EASE: lambda %g", (double)p->lambda);
  else if (p->model == COFI_MODEL_ITEMKNN)
    printf("item-kNN: %s, %u neighbors", cofi_knn_weighting_name((int)p->knn_weighting),
           p->neighbors);
  else
    printf("ALS: factors %u, regularization %g, alpha %g, iterations %u", p->factors,
           (double)p->regularization, (double)p->alpha, p->iterations);
  if (p->recency > 0) printf(", recency half-life %g", (double)p->recency);
  if (p->model == COFI_MODEL_ALS && (p->reg_exponent != 0 || p->unobserved_weight != 1))
    printf(", reg_exponent %g, unobserved_weight %g", (double)p->reg_exponent,
           (double)p->unobserved_weight);
  if (r->params_file)
    printf(" (from %s)", cli_printable(cli_display_name(r->params_file), pb, sizeof pb));
  printf("\n");
  if (r->with_sd)
    printf("Seeds: 0..%u, mean ± sample sd over %u runs\n", r->runs - 1, r->runs);
  else
    printf("Seed: %llu\n", (unsigned long long)p->seed);
  printf("Users evaluated: %llu (held-out items: %llu); skipped: %llu (%s), %llu (%s)",
         (unsigned long long)first->n_users, (unsigned long long)first->n_test_items,
         (unsigned long long)first->skipped[COFI_SKIP_USER_UNKNOWN],
         cofi_skip_name(COFI_SKIP_USER_UNKNOWN),
         (unsigned long long)first->skipped[COFI_SKIP_ITEMS_UNKNOWN],
         cofi_skip_name(COFI_SKIP_ITEMS_UNKNOWN));
  if (first->unknown_items)
    printf("; held-out items not in training: %llu", (unsigned long long)first->unknown_items);
  printf("\n\n| Model |");
  for (uint32_t c = 0; c < r->eo->n_ks; c++)
    for (int m = 0; m < COFI_METRIC_COUNT; m++)
      if (r->show[m]) printf(" %s@%u |", metric_label[m], r->eo->ks[c]);
  printf("\n|-------|");
  for (uint32_t c = 0; c < r->eo->n_ks; c++)
    for (int m = 0; m < COFI_METRIC_COUNT; m++)
      if (r->show[m]) printf("%s|", r->with_sd ? "-----------------" : "--------");
  printf("\n");
  for (int model = 0; model < N_MODELS; model++) {
    printf("| %s |", model_label[model]);
    for (uint32_t c = 0; c < r->eo->n_ks; c++)
      for (int m = 0; m < COFI_METRIC_COUNT; m++) {
        if (!r->show[m]) continue;
        double mean, sd;
        value_of(r, model, c, m, &mean, &sd);
        if (r->with_sd && model != M_POP && isfinite(sd)) printf(" %.4f ± %.4f |", mean, sd);
        else printf(" %.4f |", mean);
      }
    printf("\n");
  }
  print_segments(r);
  printf("\nTime: training %.2fs, scoring %.2fs (all runs)\n", r->train_seconds, r->eval_seconds);
}

int cmd_eval(int argc, char **argv) {
  /* the new-items protocol is its own command (eval_new_items.c) */
  for (int i = 1; i < argc; i++)
    if ((!strcmp(argv[i], "--protocol") && i + 1 < argc && !strcmp(argv[i + 1], "new-items")) ||
        !strcmp(argv[i], "--protocol=new-items"))
      return eval_new_items_main(argc, argv);
  const char *cmd = "eval";
  ev_setup s;
  ev_setup_init(&s);
  cofi_params p = cofi_params_default();
  cofi_eval_options eo = cofi_eval_options_default();
  uint32_t n_seeds = 0;
  bool json = false, quiet = false, on_validation = false;
  int train_on_val = -1; /* -1: decided by --params */
  const char *params_file = NULL, *v;
  metrics_ctx mc = {cmd, {false}, true};
  bool metrics_given = false;

  cli_args a;
  cli_args_init(&a, cmd, argc, argv);
  while (!cli_args_done(&a)) {
    const char *arg = argv[a.i];
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      fputs(usage_text, stdout);
      return CLI_EXIT_OK;
    }
    if (!strcmp(arg, "--params") && a.i + 1 < argc) params_file = argv[a.i + 1];
    else if (!strncmp(arg, "--params=", 9)) params_file = arg + 9;
    if (ev_setup_option(&a, &s)) continue;
    if (cli_train_option(&a, &p)) continue;
    if (cli_opt(&a, "--seeds", &v)) {
      if (!a.failed && !cli_parse_u32(cmd, "--seeds", v, 1, 1000, &n_seeds)) a.failed = true;
    } else if (cli_opt(&a, "--k", &v)) {
      if (!a.failed && !ev_parse_ks(cmd, v, &eo)) a.failed = true;
    } else if (cli_opt(&a, "--metrics", &v)) {
      metrics_given = true;
      if (!a.failed) {
        cli_split_list(v, add_metric, &mc);
        if (!mc.ok) a.failed = true;
      }
    } else if (cli_opt(&a, "--on", &v)) {
      if (!strcmp(v, "test")) on_validation = false;
      else if (!strcmp(v, "validation")) on_validation = true;
      else if (!a.failed) {
        cli_usage_error(cmd, "--on: expected test or validation, got '%s'", v);
        a.failed = true;
      }
    } else if (cli_opt(&a, "--train-on", &v)) {
      if (!strcmp(v, "train")) train_on_val = 0;
      else if (!strcmp(v, "train+validation")) train_on_val = 1;
      else if (!a.failed) {
        cli_usage_error(cmd, "--train-on: expected train or train+validation, got '%s'", v);
        a.failed = true;
      }
    } else if (cli_opt(&a, "--cold-max", &v)) {
      if (!a.failed && !cli_parse_u32(cmd, "--cold-max", v, 0, UINT32_MAX - 1, &eo.cold_max))
        a.failed = true;
    } else if (cli_flag(&a, "--json")) {
      json = true;
    } else if (cli_flag(&a, "--quiet")) {
      quiet = true;
    } else if (!s.data_path && cli_positional(&a, &v)) {
      s.data_path = v;
    } else {
      return cli_unknown(&a);
    }
  }
  if (a.failed) return CLI_EXIT_USAGE;
  int rc = ev_setup_check(cmd, &s);
  if (rc) return rc;
  const char *inputs[] = {s.data_path, s.data.items_path, params_file};
  if ((rc = cli_check_inputs(cmd, inputs, 3))) return rc;
  if (!metrics_given)
    for (int m = 0; m < COFI_METRIC_COUNT; m++) mc.show[m] = true;
  if (s.sampled && !metrics_given) {
    for (int m = 0; m < COFI_METRIC_COUNT; m++) mc.show[m] = false;
    mc.show[COFI_METRIC_HIT_RATE] = mc.show[COFI_METRIC_NDCG] = true;
  }
  if (on_validation && train_on_val == 1)
    return cli_usage_error(cmd, "--on validation cannot train on the validation part");
  bool use_val = train_on_val == 1 || (train_on_val < 0 && params_file && !on_validation);
  eo.threads = p.threads;

  cofi_dataset *ds = NULL, *train = NULL, *test = NULL, *foldin = NULL;
  uint8_t *parts = NULL;
  cofi_model *model = NULL;
  uint64_t counts[COFI_PART_COUNT];
  uint32_t runs = n_seeds ? n_seeds : 1;
  report r = {0};
  for (int m = 0; m < N_MODELS; m++) {
    r.res[m] = calloc(runs, sizeof *r.res[m]);
    if (!r.res[m]) {
      fprintf(stderr, "cofi eval: out of memory\n");
      rc = CLI_EXIT_NOMEM;
      goto done;
    }
  }
  s.data.quiet = quiet;
  rc = ev_prepare(cmd, &s, &ds, &parts, counts);
  if (rc) goto done;

  bool users = counts[COFI_PART_TEST_FOLDIN] > 0 || counts[COFI_PART_VALIDATION_FOLDIN] > 0;
  unsigned train_mask = COFI_PART_BIT(COFI_PART_TRAIN);
  if (use_val)
    train_mask |= COFI_PART_BIT(COFI_PART_VALIDATION) | COFI_PART_BIT(COFI_PART_VALIDATION_FOLDIN);
  cofi_part target = on_validation ? COFI_PART_VALIDATION : COFI_PART_TEST;
  cofi_part target_foldin = on_validation ? COFI_PART_VALIDATION_FOLDIN : COFI_PART_TEST_FOLDIN;
  if ((rc = ev_select(cmd, ds, parts, train_mask, "training", &train))) goto done;
  if (!s.sampled) {
    if (counts[target] == 0) {
      fprintf(stderr, "cofi eval: the %s part is empty: no user has enough items to hold one out\n",
              on_validation ? "validation" : "test");
      rc = CLI_EXIT_DATA;
      goto done;
    }
    if ((rc = ev_select(cmd, ds, parts, COFI_PART_BIT(target), "held-out", &test))) goto done;
    if (users && (rc = ev_select(cmd, ds, parts, COFI_PART_BIT(target_foldin), "fold-in", &foldin)))
      goto done;
  }
  cofi_dataset_free(ds);
  ds = NULL;
  free(parts);
  parts = NULL;

  name_model_row(p.model);
  r.setup = &s;
  r.eo = &eo;
  r.show = mc.show;
  r.runs = runs;
  r.with_sd = n_seeds > 0;
  r.p = &p;
  r.params_file = params_file;
  r.trained_on = s.sampled ? "all of DATA"
                 : use_val ? "train + validation (the final model after tuning)"
                           : "train";
  r.reported_on = s.sampled ? "the sampled negatives" : on_validation ? "validation" : "test";
  r.train_rows = cofi_dataset_n_interactions(train);
  r.train_users = cofi_dataset_n_users(train);
  r.train_items = cofi_dataset_n_items(train);
  if (!quiet)
    fprintf(stderr, "cofi eval: %s%s; training on %s: %zu interactions, %zu users, %zu items\n",
            ev_protocol_name(&s), s.split_dir ? "" : " split", r.trained_on, r.train_rows, r.train_users, r.train_items);

  for (uint32_t run = 0; run < runs; run++) {
    cofi_params pr = p;
    if (n_seeds) pr.seed = run;
    cofi_diag d = {0};
    double t0 = ev_now();
    int lrc = cofi_train(train, &pr, &model, &d);
    if (lrc) {
      rc = cli_diag_error(cmd, "training", lrc, &d);
      goto done;
    }
    double t1 = ev_now();
    r.train_seconds += t1 - t0;
    cofi_eval_options eor = eo;
    eor.seed = pr.seed;
    for (int m = 0; m < N_MODELS; m++) {
      if (m == M_POP && run > 0) {
        r.res[m][run] = r.res[m][0]; /* deterministic: computed once */
        continue;
      }
      cofi_scorer sc = m == M_ALS ? COFI_SCORER_MODEL
                       : m == M_POP ? COFI_SCORER_POPULARITY
                                    : COFI_SCORER_RANDOM;
      lrc = s.sampled
                ? cofi_evaluate_sampled(model, sc, s.ncf_test, s.ncf_negatives, &eor,
                                        &r.res[m][run], &d)
                : cofi_evaluate(model, sc, test, foldin, &eor, &r.res[m][run], &d);
      if (lrc) {
        char what[64];
        snprintf(what, sizeof what, "evaluating %s", model_key[m]);
        rc = cli_diag_error(cmd, what, lrc, &d);
        goto done;
      }
    }
    r.eval_seconds += ev_now() - t1;
    if (!quiet)
      fprintf(stderr, "seed %llu: trained in %.2fs, evaluated in %.2fs: %s %s@%u %.4f\n",
              (unsigned long long)pr.seed, t1 - t0, ev_now() - t1, model_label[M_ALS],
              s.sampled ? "hit_rate" : "recall", eo.ks[0],
              r.res[M_ALS][run].metrics[0][s.sampled ? COFI_METRIC_HIT_RATE : COFI_METRIC_RECALL]);
    cofi_model_close(model);
    model = NULL;
  }
  if (json) print_json(&r);
  else print_table(&r);
  rc = CLI_EXIT_OK;

done:
  cofi_model_close(model);
  cofi_dataset_free(ds);
  cofi_dataset_free(train);
  cofi_dataset_free(test);
  cofi_dataset_free(foldin);
  free(parts);
  for (int m = 0; m < N_MODELS; m++) free(r.res[m]);
  return rc;
}

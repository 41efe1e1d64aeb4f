/*
 * cmd_tune.c — `cofi tune`: search ALS parameters on the validation part
 * of a split and write the best to a parameter file for `cofi train
 * --params` and `cofi eval --params`.
 *
 * Each trial trains on the train part and is scored on the validation
 * part (the test part is never looked at). Search is seeded random (each
 * dimension drawn from its range; log-uniform for scales) or a grid
 * visited in a seeded random order; it stops after --budget trials or
 * --budget-seconds, whichever comes first. Flags given explicitly (e.g.
 * --factors 64) hold that dimension fixed.
 *
 * Noise: with one held-out item per user, a validation metric on a few
 * hundred users moves by about 0.01 between training seeds alone, which is
 * the size of the differences being searched. So by default each trial
 * averages --trial-seeds 2 trainings, and selection uses NDCG@20, which
 * counts more hits than Recall@10 and varies less; both are options.
 */
#include "eval_common.h"
#include "tune_refine.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: cofi tune DATA [options] (--budget N | --budget-seconds S) [-o FILE]\n"
    "\n"
    "Searches factors, regularization, alpha and iterations (and, with --ials, the\n"
    "iALS reg_exponent and unobserved_weight) on the validation part of a split,\n"
    "prints every trial and the best, and writes the best to FILE for\n"
    "`cofi eval --params FILE` (which then trains on train + validation and reports\n"
    "on test) and `cofi train --params FILE`.\n"
    "\n"
    "  --budget N            number of trials (default 20 when no --budget-seconds)\n"
    "  --budget-seconds S    stop starting trials after S seconds\n"
    "  --search random|refine|grid\n"
    "                        random (default; also random-only): seeded random draws;\n"
    "                        refine: random draws for the first half of the budget, then\n"
    "                        local refinement around the best trial (from 8 trials on);\n"
    "                        grid: a grid in random order\n"
    "  --search-seed S       seed of the search (0)\n"
    "  --metric NAME@K       selection metric on validation (default ndcg@20)\n"
    "  --trial-seeds N       trainings averaged per trial (default 2)\n"
    "  --early-stopping P    score validation after every iteration, stop a training\n"
    "                        P iterations after its best; the trial keeps the best\n"
    "                        iteration count (iterations drawn are the maximum);\n"
    "                        the recency half-life is then not searched (it is 0)\n"
    "  --recency H           fix the recency half-life (items; 0 = off); otherwise every\n"
    "                        trained model is scored with 0, 1, 2, 4, 8, 16 and 32 (its\n"
    "                        users re-fitted, far cheaper than training) and the trial\n"
    "                        keeps the best (docs/evaluation.md, Recency)\n"
    "  --protocol sampled    tune for the NCF sampled protocol: each user's last\n"
    "                        interaction of DATA is ranked among --sampled-negatives N\n"
    "                        (99) seeded items the user never had (--split-seed);\n"
    "                        training on the rest. The NCF test files are not used\n"
    "  --ials                also search reg_exponent (0, 0.5, 1) and unobserved_weight\n"
    "  --search-confidence   also search the confidence transform (linear, log, bm25;\n"
    "                        their parameters as given, default epsilon 1, K1 100, B 0.8)\n"
    "  --model KIND          the models searched: als (default), ease, itemknn, or all.\n"
    "                        With all, --budget counts ALS trials and one EASE trial\n"
    "                        (4, 12, ...: lambda 500, 200, 1000, 100, 2000, ...) and\n"
    "                        one item-kNN trial (7, 15, ...) come on top of every 7.\n"
    "                        Alone, --budget counts that model's trials. EASE and\n"
    "                        item-kNN are deterministic: one training per trial\n"
    "  -o, --output FILE     where to write the best parameters (- : standard output;\n"
    "                        the trial table then goes to standard error)\n"
    "  --json                a JSON summary on stdout (the best trial's parameters and\n"
    "                        metric, trials, output path); the table goes to stderr\n"
    "  --quiet               no progress on stderr\n"
    "protocol and data options: as cofi eval (--protocol, --split-dir, --format, ...)\n"
    "training options: as cofi train; a dimension given explicitly is not searched\n";

/* The dimensions searched. */
enum { D_FACTORS, D_REG, D_ALPHA, D_ITERS, D_NU, D_ALPHA0, D_CONF, N_DIMS };
static const char *const dim_flag[N_DIMS] = {"--factors", "--regularization", "--alpha",
                                             "--iterations", "--reg-exponent",
                                             "--unobserved-weight", "--confidence"};

/* Random ranges and grid values. */
static const uint32_t factor_choices[] = {32, 64, 96, 128, 192};
static const uint32_t iter_choices[] = {10, 15, 20, 30};
static const float nu_choices[] = {0.0f, 0.5f, 1.0f};
static const cofi_confidence conf_choices[] = {COFI_CONFIDENCE_LINEAR, COFI_CONFIDENCE_LOG,
                                               COFI_CONFIDENCE_BM25};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
static const double reg_lo = 0.01, reg_hi = 300.0;   /* log-uniform */
static const double alpha_lo = 1.0, alpha_hi = 100.0; /* log-uniform */
static const double alpha0_lo = 0.01, alpha0_hi = 1.0;

static const float grid_reg[] = {0.02f, 0.2f, 2.0f, 20.0f, 100.0f};
static const float grid_alpha[] = {2.0f, 5.0f, 10.0f, 20.0f, 40.0f};
static const float grid_alpha0[] = {0.05f, 0.2f, 1.0f};

static double log_unif(uint64_t *s, double lo, double hi) {
  return exp(log(lo) + tune_unif(s) * (log(hi) - log(lo)));
}
static uint32_t pick(uint64_t *s, uint32_t n) { return (uint32_t)(tune_unif(s) * n) % n; }

/* Recency half-lives (items, cofi_params.recency) tried on every trained
 * model of a trial (cofi_model_set_recency re-fits only the users, so
 * the sweep costs far less than the training); 0 is the plain model, so a
 * trial never scores below it (docs/evaluation.md, Recency). */
static const float recency_sweep[] = {0, 1, 2, 4, 8, 16, 32};
#define N_RECENCY (sizeof recency_sweep / sizeof recency_sweep[0])

typedef struct space {
  bool fixed[N_DIMS];
  bool ials;
  bool conf; /* --search-confidence */
  bool grid;
  uint64_t grid_size;
  uint64_t *grid_order; /* [grid_size] shuffled point numbers */
} space;

static void draw_random(const space *sp, uint64_t *rng, uint64_t *conf_rng, cofi_params *p) {
  /* Draw every dimension, always in the same order, so that fixing one
   * does not change the others' sequence. */
  uint32_t f = factor_choices[pick(rng, N_OF(factor_choices))];
  float reg = tune_sig3(log_unif(rng, reg_lo, reg_hi));
  float alpha = tune_sig3(log_unif(rng, alpha_lo, alpha_hi));
  uint32_t it = iter_choices[pick(rng, N_OF(iter_choices))];
  float nu = nu_choices[pick(rng, N_OF(nu_choices))];
  float a0 = tune_sig3(log_unif(rng, alpha0_lo, alpha0_hi));
  /* From its own stream, and only when searched: the other dimensions'
   * draws are the same with or without --search-confidence. */
  if (sp->conf) {
    cofi_confidence c = conf_choices[pick(conf_rng, N_OF(conf_choices))];
    if (!sp->fixed[D_CONF]) p->confidence = c;
  }
  if (!sp->fixed[D_FACTORS]) p->factors = f;
  if (!sp->fixed[D_REG]) p->regularization = reg;
  if (!sp->fixed[D_ALPHA]) p->alpha = alpha;
  if (!sp->fixed[D_ITERS]) p->iterations = it;
  if (sp->ials) {
    if (!sp->fixed[D_NU]) p->reg_exponent = nu;
    if (!sp->fixed[D_ALPHA0]) p->unobserved_weight = a0;
    /* With nu > 0 the penalty is lambda * (n + alpha0 * n_items)^nu: the
     * same draw, rescaled so that a typical row keeps a comparable weight. */
    if (!sp->fixed[D_REG] && p->reg_exponent > 0)
      p->regularization = tune_sig3(p->regularization * pow(1000.0, -p->reg_exponent));
  }
}

/* Number of values of each grid dimension (1 when fixed or not searched). */
static uint32_t grid_dim(const space *sp, int d) {
  if (sp->fixed[d]) return 1;
  switch (d) {
    case D_FACTORS: return N_OF(factor_choices);
    case D_REG: return N_OF(grid_reg);
    case D_ALPHA: return N_OF(grid_alpha);
    case D_ITERS: return N_OF(iter_choices);
    case D_NU: return sp->ials ? N_OF(nu_choices) : 1;
    case D_CONF: return sp->conf ? N_OF(conf_choices) : 1;
    default: return sp->ials ? N_OF(grid_alpha0) : 1;
  }
}

static void grid_point(const space *sp, uint64_t point, cofi_params *p) {
  uint32_t idx[N_DIMS];
  for (int d = 0; d < N_DIMS; d++) {
    uint32_t n = grid_dim(sp, d);
    idx[d] = (uint32_t)(point % n);
    point /= n;
  }
  if (!sp->fixed[D_FACTORS]) p->factors = factor_choices[idx[D_FACTORS]];
  if (!sp->fixed[D_ALPHA]) p->alpha = grid_alpha[idx[D_ALPHA]];
  if (!sp->fixed[D_ITERS]) p->iterations = iter_choices[idx[D_ITERS]];
  if (sp->ials && !sp->fixed[D_NU]) p->reg_exponent = nu_choices[idx[D_NU]];
  if (sp->ials && !sp->fixed[D_ALPHA0]) p->unobserved_weight = grid_alpha0[idx[D_ALPHA0]];
  if (sp->conf && !sp->fixed[D_CONF]) p->confidence = conf_choices[idx[D_CONF]];
  if (!sp->fixed[D_REG])
    p->regularization = tune_sig3(grid_reg[idx[D_REG]] * pow(1000.0, -p->reg_exponent));
}

/* EASE and item-kNN trials: fixed ladders, most promising first (EASE's
 * lambda scales with the counts in X^T X; Steck's best were 200-1000). */
static const float ease_ladder[] = {500, 200, 1000, 100, 2000, 50, 300, 700, 1500, 3000,
                                    5000, 20, 10000};
static const struct { cofi_knn_weighting w; uint32_t k; } knn_ladder[] = {
    {COFI_KNN_COSINE, 100}, {COFI_KNN_TFIDF, 100}, {COFI_KNN_BM25, 100},
    {COFI_KNN_COSINE, 50},  {COFI_KNN_COSINE, 200}, {COFI_KNN_TFIDF, 200},
    {COFI_KNN_COSINE, 20},  {COFI_KNN_TFIDF, 50},   {COFI_KNN_BM25, 50},
    {COFI_KNN_COSINE, 400}, {COFI_KNN_TFIDF, 400},  {COFI_KNN_BM25, 200}};

/* Which kind trial n (0-based) is, given the kinds searched (bits of
 * cofi_model_kind), and its rung on that kind's ladder (rungs[kind] of
 * them); false when that ladder is used up (the trial then is ALS, or the
 * search ends). */
static bool trial_kind(unsigned kinds, const uint32_t *rungs, uint32_t n, cofi_model_kind *kind,
                       uint32_t *rung) {
  bool als = kinds & (1u << COFI_MODEL_ALS), ease = kinds & (1u << COFI_MODEL_EASE),
       knn = kinds & (1u << COFI_MODEL_ITEMKNN);
  if (!als) {
    /* one kind or both item models: their ladders in turn */
    uint32_t per = ease && knn ? 2 : 1;
    *kind = ease && (!knn || n % 2 == 0) ? COFI_MODEL_EASE : COFI_MODEL_ITEMKNN;
    *rung = n / per;
    return *rung < rungs[*kind];
  }
  *kind = COFI_MODEL_ALS;
  *rung = n / 8;
  if (ease && n % 8 == 3 && *rung < rungs[COFI_MODEL_EASE]) *kind = COFI_MODEL_EASE;
  if (knn && n % 8 == 6 && *rung < rungs[COFI_MODEL_ITEMKNN]) *kind = COFI_MODEL_ITEMKNN;
  return true;
}

typedef struct trial {
  cofi_params p;
  double score;    /* selection metric, mean over trial seeds */
  double recall10, ndcg10;
  double seconds;
} trial;

/* Early stopping: the validation metrics after every iteration of one
 * training; cancels P iterations after the best. */
typedef struct es_ctx {
  const cofi_dataset *train, *val;
  const cofi_eval_options *eo;
  int metric;
  uint32_t mslot, patience;
  double *score, *recall10, *ndcg10; /* [iterations] */
  uint32_t done;                     /* iterations scored */
  uint32_t best;                     /* 0-based */
  int error;
  cofi_diag diag;
} es_ctx;

static int es_progress(const cofi_progress *p, void *ctx) {
  es_ctx *c = ctx;
  cofi_eval_result res;
  int rc = cofi_evaluate_factors(c->train, p->user_factors, p->item_factors, p->factors, c->val,
                                 c->eo, &res, &c->diag);
  if (rc) {
    c->error = rc;
    return 1;
  }
  uint32_t i = p->iteration - 1;
  c->score[i] = res.metrics[c->mslot][c->metric];
  c->recall10[i] = res.metrics[0][COFI_METRIC_RECALL];
  c->ndcg10[i] = res.metrics[0][COFI_METRIC_NDCG];
  c->done = p->iteration;
  if (i == 0 || c->score[i] > c->score[c->best]) c->best = i;
  return i - c->best >= c->patience;
}

static bool parse_metric(const char *cmd, const char *v, int *metric, uint32_t *k) {
  const char *at = strchr(v, '@');
  if (at && at - v == 2 && !memcmp(v, "hr", 2)) { /* hr@10: the NCF papers' name */
    *metric = COFI_METRIC_HIT_RATE;
    return cli_parse_u32(cmd, "--metric", at + 1, 1, COFI_EVAL_MAX_K, k);
  }
  if (at) {
    for (int m = 0; m < COFI_METRIC_COUNT; m++) {
      const char *name = cofi_metric_name(m);
      if (strlen(name) == (size_t)(at - v) && !memcmp(name, v, (size_t)(at - v))) {
        *metric = m;
        return cli_parse_u32(cmd, "--metric", at + 1, 1, COFI_EVAL_MAX_K, k);
      }
    }
  }
  cli_usage_error(cmd, "--metric: expected NAME@K such as ndcg@20 (names: recall, precision, "
                  "ndcg, hit_rate, map, coverage), got '%s'", v);
  return false;
}

/* The human report (the trial table and the best trial): stdout, or
 * stderr when stdout carries JSON or the parameter file, or nowhere with
 * --quiet in those cases. */
static FILE *rep;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  if (!rep) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(rep, fmt, ap);
  va_end(ap);
}

static void print_params_row(const trial *t, uint32_t n, int metric, uint32_t k, bool ials,
                             bool conf, bool models) {
  say("| %3u |", n);
  if (models) {
    char what[64];
    if (t->p.model == COFI_MODEL_EASE) snprintf(what, sizeof what, "ease lambda %g", (double)t->p.lambda);
    else if (t->p.model == COFI_MODEL_ITEMKNN)
      snprintf(what, sizeof what, "itemknn %s %u", cofi_knn_weighting_name((int)t->p.knn_weighting),
               t->p.neighbors);
    else snprintf(what, sizeof what, "als");
    say(" %-22s |", what);
  }
  if (t->p.model == COFI_MODEL_ALS)
    say(" %4u | %10.4g | %7.4g | %3u |", t->p.factors, (double)t->p.regularization,
        (double)t->p.alpha, t->p.iterations);
  else
    say(" - | - | - | - |");
  say(" %5g |", (double)t->p.recency);
  if (ials) say(" %4.2g | %7.4g |", (double)t->p.reg_exponent, (double)t->p.unobserved_weight);
  if (conf) say(" %-6s |", cofi_confidence_name((int)t->p.confidence));
  say(" %.4f | %.4f | %.4f | %6.1f |\n", t->score, t->recall10, t->ndcg10, t->seconds);
  (void)metric;
  (void)k;
}

int cmd_tune(int argc, char **argv) {
  const char *cmd = "tune";
  ev_setup s;
  ev_setup_init(&s);
  cofi_params base = cofi_params_default();
  space sp = {0};
  uint32_t budget = 0, trial_seeds = 2, patience = 0, n_negatives = 99;
  char vdir[64] = "", vtest[128] = "", vneg[128] = "";
  double *curves = NULL;
  double budget_seconds = 0;
  uint64_t search_seed = 0;
  int metric = COFI_METRIC_NDCG;
  uint32_t metric_k = 20;
  const char *out_path = NULL, *v;
  /* Random draws by default: on the seeds' split, where validation has one
   * item per user, refinement chases validation noise (test Recall@10
   * 0.0740 against 0.0813 for random draws, docs/evaluation.md, Tuning) */
  bool quiet = false, json = false, refine = false;
  /* models searched (bits of cofi_model_kind): ALS alone by default; with
   * its recency half-life searched it is level with EASE on the seeds'
   * split (docs/evaluation.md, Recency) */
  unsigned kinds = 1u << COFI_MODEL_ALS;
  bool lambda_fixed = false, knn_fixed = false, recency_fixed = false;

  cli_args a;
  cli_args_init(&a, cmd, argc, argv);
  while (!cli_args_done(&a)) {
    const char *arg = argv[a.i];
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      fputs(usage_text, stdout);
      return CLI_EXIT_OK;
    }
    for (int d = 0; d < N_DIMS; d++) {
      size_t n = strlen(dim_flag[d]);
      if (!strncmp(arg, dim_flag[d], n) && (arg[n] == 0 || arg[n] == '=')) sp.fixed[d] = true;
    }
    if (!strncmp(arg, "--lambda", 8) && (arg[8] == 0 || arg[8] == '=')) lambda_fixed = true;
    if (!strncmp(arg, "--recency", 9) && (arg[9] == 0 || arg[9] == '=')) recency_fixed = true;
    if ((!strncmp(arg, "--neighbors", 11) && (arg[11] == 0 || arg[11] == '=')) ||
        (!strncmp(arg, "--knn-weighting", 15) && (arg[15] == 0 || arg[15] == '=')))
      knn_fixed = true;
    if (cli_opt(&a, "--model", &v)) {
      if (!strcmp(v, "all")) {
        kinds = (1u << COFI_MODEL_ALS) | (1u << COFI_MODEL_EASE) | (1u << COFI_MODEL_ITEMKNN);
      } else {
        kinds = 0;
        for (int c = 0; cofi_model_kind_name(c); c++)
          if (!strcmp(v, cofi_model_kind_name(c))) kinds = 1u << c;
        if (!kinds && !a.failed) {
          cli_usage_error(cmd, "--model: expected als, ease, itemknn or all, got '%s'", v);
          a.failed = true;
        }
      }
      continue;
    }
    if (ev_setup_option(&a, &s)) continue;
    if (cli_train_option(&a, &base)) continue;
    if (cli_opt(&a, "--budget", &v)) {
      if (!a.failed && !cli_parse_u32(cmd, "--budget", v, 1, 100000, &budget)) a.failed = true;
    } else if (cli_opt(&a, "--budget-seconds", &v)) {
      if (!a.failed && !cli_parse_double(cmd, "--budget-seconds", v, 0.001, 1e9, &budget_seconds))
        a.failed = true;
    } else if (cli_opt(&a, "--search", &v)) {
      if (!strcmp(v, "random") || !strcmp(v, "random-only") || !strcmp(v, "refine")) {
        sp.grid = false;
        refine = !strcmp(v, "refine");
      } else if (!strcmp(v, "grid")) {
        sp.grid = true;
      } else if (!a.failed) {
        cli_usage_error(cmd, "--search: expected random, refine or grid, got '%s'", v);
        a.failed = true;
      }
    } else if (cli_opt(&a, "--search-seed", &v)) {
      if (!a.failed && !cli_parse_u64(cmd, "--search-seed", v, &search_seed)) a.failed = true;
    } else if (cli_opt(&a, "--metric", &v)) {
      if (!a.failed && !parse_metric(cmd, v, &metric, &metric_k)) a.failed = true;
    } else if (cli_opt(&a, "--trial-seeds", &v)) {
      if (!a.failed && !cli_parse_u32(cmd, "--trial-seeds", v, 1, 100, &trial_seeds))
        a.failed = true;
    } else if (cli_opt(&a, "--early-stopping", &v)) {
      if (!a.failed && !cli_parse_u32(cmd, "--early-stopping", v, 1, 1000, &patience))
        a.failed = true;
    } else if (cli_flag(&a, "--ials")) {
      sp.ials = true;
    } else if (cli_opt(&a, "--sampled-negatives", &v)) {
      if (!a.failed && !cli_parse_u32(cmd, "--sampled-negatives", v, 1, 100000, &n_negatives))
        a.failed = true;
    } else if (cli_flag(&a, "--search-confidence")) {
      sp.conf = true;
    } else if (cli_opt(&a, "-o", &v) || cli_opt(&a, "--output", &v)) {
      out_path = v;
    } else if (cli_flag(&a, "--quiet")) {
      quiet = true;
    } else if (cli_flag(&a, "--json")) {
      json = true;
    } else if (!s.data_path && cli_positional(&a, &v)) {
      s.data_path = v;
    } else {
      return cli_unknown(&a);
    }
  }
  if (a.failed) return CLI_EXIT_USAGE;
  /* The sampled protocol: validation built from DATA as the protocol
   * builds its test (each user's last interaction among sampled
   * negatives); the NCF test files are for cofi eval, never for tuning. */
  bool sampled = s.sampled;
  if (sampled) {
    if (s.ncf_test || s.ncf_negatives)
      return cli_usage_error(cmd, "--protocol sampled: tuning never looks at the test files; "
                             "it holds out each user's last interaction of DATA with %u sampled "
                             "negatives as validation. Drop --test/--negatives here and give "
                             "them to cofi eval --params", n_negatives);
    if (s.split_dir)
      return cli_usage_error(cmd, "--split-dir and --protocol sampled do not go together");
    if (patience)
      return cli_usage_error(cmd, "--early-stopping is not available with --protocol sampled");
    s.sampled = false;
    s.split.protocol = COFI_PROTOCOL_LEAVE_LAST_OUT;
  }
  if (patience) {
    /* early stopping scores each iteration's factors, before the recency
     * re-fit of the users (train/recency.c): the half-life is not searched */
    if (base.recency > 0)
      return cli_usage_error(cmd, "--early-stopping scores the factors of every iteration, "
                             "before users are re-fitted with --recency: use one or the other");
    recency_fixed = true;
  }
  int rc = ev_setup_check(cmd, &s);
  if (rc) return rc;
  if (json && out_path && cli_is_stdio(out_path))
    return cli_usage_error(cmd, "--json and -o - both want standard output: write the "
                           "parameters to a file");
  {
    const char *inputs[8] = {s.data_path, s.data.items_path, a.params_path};
    size_t n_in = 3;
    char split_files[5][4096];
    static const char *const split_names[] = {"train.csv", "validation.csv", "test.csv",
                                              "validation_foldin.csv", "test_foldin.csv"};
    for (size_t f = 0; s.split_dir && f < 5; f++) {
      snprintf(split_files[f], sizeof split_files[f], "%s/%s", s.split_dir, split_names[f]);
      inputs[n_in++] = split_files[f];
    }
    rc = cli_check_inputs(cmd, inputs, n_in);
    if (!rc && out_path && !cli_is_stdio(out_path))
      rc = cli_check_output(cmd, "-o", out_path, inputs, n_in);
    if (rc) return rc;
  }
  rep = stdout;
  if (json || (out_path && cli_is_stdio(out_path))) rep = quiet ? NULL : stderr;
  if (budget == 0 && budget_seconds == 0) budget = 20;
  if (budget == 0) budget = 100000;

  cofi_dataset *ds = NULL, *train = NULL, *val = NULL, *foldin = NULL;
  uint8_t *parts = NULL;
  trial *trials = NULL;
  uint64_t counts[COFI_PART_COUNT];
  s.data.quiet = quiet;
  rc = ev_prepare(cmd, &s, &ds, &parts, counts);
  if (rc) goto done;
  if (sampled) {
    /* Leave-last-out's test part (each user's last item) is the
     * validation; its validation part goes back into training. */
    counts[COFI_PART_VALIDATION] = counts[COFI_PART_TEST];
    if (counts[COFI_PART_TEST] == 0) {
      fprintf(stderr, "cofi tune: no user has 2 or more items: nothing to validate on\n");
      rc = CLI_EXIT_DATA;
      goto done;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(vdir, sizeof vdir, "%s/cofi-tune.XXXXXX",
             tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(vdir)) {
      fprintf(stderr, "cofi tune: cannot create a temporary directory %s: %s\n", vdir,
              strerror(errno));
      vdir[0] = 0;
      rc = CLI_EXIT_IO;
      goto done;
    }
    snprintf(vtest, sizeof vtest, "%s/validation.test", vdir);
    snprintf(vneg, sizeof vneg, "%s/validation.negative", vdir);
    cofi_diag d = {0};
    int wrc = cofi_sampled_write(ds, parts, COFI_PART_BIT(COFI_PART_TEST), n_negatives,
                                 s.split.seed, vtest, vneg, &d);
    if (wrc) {
      rc = cli_diag_error(cmd, "building the sampled validation", wrc, &d);
      goto done;
    }
    if ((rc = ev_select(cmd, ds, parts,
                        COFI_PART_BIT(COFI_PART_TRAIN) | COFI_PART_BIT(COFI_PART_VALIDATION),
                        "training", &train)))
      goto done;
    cofi_dataset_free(ds);
    ds = NULL;
  } else if (counts[COFI_PART_VALIDATION] == 0) {
    fprintf(stderr, "cofi tune: the validation part is empty: no user has enough items\n");
    rc = CLI_EXIT_DATA;
    goto done;
  }
  if (!sampled) {
    if ((rc = ev_select(cmd, ds, parts, COFI_PART_BIT(COFI_PART_TRAIN), "training", &train)))
      goto done;
    if ((rc = ev_select(cmd, ds, parts, COFI_PART_BIT(COFI_PART_VALIDATION), "validation", &val)))
      goto done;
    if (counts[COFI_PART_VALIDATION_FOLDIN] &&
        (rc = ev_select(cmd, ds, parts, COFI_PART_BIT(COFI_PART_VALIDATION_FOLDIN), "fold-in",
                        &foldin)))
      goto done;
    cofi_dataset_free(ds);
    ds = NULL;
  }

  if (sp.grid) {
    sp.grid_size = 1;
    for (int d = 0; d < N_DIMS; d++) sp.grid_size *= grid_dim(&sp, d);
    if (budget > sp.grid_size) budget = (uint32_t)sp.grid_size;
  }
  /* With ALS searched, --budget counts ALS trials and the other models'
   * trials come on top (one per 7 ALS trials at most): the ALS search is
   * the same with or without them. */
  bool with_als = kinds & (1u << COFI_MODEL_ALS);
  uint32_t cap = with_als && kinds != (1u << COFI_MODEL_ALS) ? budget + budget / 7 + 2 : budget;
  trials = calloc(cap, sizeof *trials);
  if (sp.grid) sp.grid_order = malloc(sp.grid_size * sizeof *sp.grid_order);
  if (!trials || (sp.grid && !sp.grid_order)) {
    fprintf(stderr, "cofi tune: out of memory\n");
    rc = CLI_EXIT_NOMEM;
    goto done;
  }
  uint64_t rng = search_seed * 0x9E3779B97F4A7C15ull + 12345;
  uint64_t conf_rng = search_seed * 0x9E3779B97F4A7C15ull + 0xC0F1DE4CEull;
  if (sp.grid) {
    for (uint64_t i = 0; i < sp.grid_size; i++) sp.grid_order[i] = i;
    for (uint64_t i = sp.grid_size; i > 1; i--) {
      uint64_t j = tune_splitmix(&rng) % i, t = sp.grid_order[i - 1];
      sp.grid_order[i - 1] = sp.grid_order[j];
      sp.grid_order[j] = t;
    }
  }

  cofi_eval_options eo = cofi_eval_options_default();
  eo.n_ks = 0;
  eo.ks[eo.n_ks++] = 10;
  if (metric_k != 10) eo.ks[eo.n_ks++] = metric_k;
  eo.threads = base.threads;
  uint32_t mslot = metric_k == 10 ? 0 : 1;
  if (patience) {
    if (foldin) {
      fprintf(stderr, "cofi tune: --early-stopping is not available with the users protocol "
                      "(held-out users need fold-in)\n");
      rc = CLI_EXIT_USAGE;
      goto done;
    }
    uint32_t it_cap = base.iterations;
    for (size_t i = 0; i < N_OF(iter_choices); i++)
      if (iter_choices[i] > it_cap) it_cap = iter_choices[i];
    curves = malloc(6 * (size_t)it_cap * sizeof *curves);
    if (!curves) {
      fprintf(stderr, "cofi tune: out of memory\n");
      rc = CLI_EXIT_NOMEM;
      goto done;
    }
  }

  uint32_t explore = refine && !sp.grid ? tune_refine_explore(budget) : budget;
  tune_refine_space rsp = {!sp.fixed[D_FACTORS], !sp.fixed[D_REG], !sp.fixed[D_ALPHA],
                           !sp.fixed[D_ITERS], factor_choices, N_OF(factor_choices),
                           iter_choices, N_OF(iter_choices), reg_lo, reg_hi,
                           alpha_lo, alpha_hi};
  char pb[4200];
  say("Tuning on %s (%s%s): train %zu interactions, validation %llu; %s search, "
         "budget %u %strials%s; selecting by validation %s@%u, mean of %u training seeds\n\n",
         cli_printable(s.split_dir ? s.split_dir : cli_display_name(s.data_path), pb, sizeof pb),
         sampled ? "sampled negatives" : ev_protocol_name(&s),
         s.split_dir || sampled ? "" : " split",
         cofi_dataset_n_interactions(train), (unsigned long long)counts[COFI_PART_VALIDATION],
         sp.grid ? "grid" : explore < budget ? "random then local" : "random", budget,
         with_als && kinds != (1u << COFI_MODEL_ALS) ? "ALS " : "",
         budget_seconds > 0 ? " or the time limit" : "",
         cofi_metric_name(metric), metric_k, trial_seeds);
  if (sampled)
    say("Sampled protocol: each user's last interaction of DATA is the validation item, "
        "ranked among %u sampled items the user never had (--split-seed %llu); training on "
        "the rest\n\n", n_negatives, (unsigned long long)s.split.seed);
  if (patience)
    say("Early stopping: patience %u iterations; the iterations column is the best one\n\n",
           patience);
  bool models = kinds != (1u << COFI_MODEL_ALS);
  say("| trial |%s factors | regularization | alpha | iterations | recency |%s%s %s@%u | recall@10 | "
         "ndcg@10 | seconds |\n", models ? " model |" : "",
         sp.ials ? " reg_exponent | unobserved_weight |" : "", sp.conf ? " confidence |" : "",
         cofi_metric_name(metric), metric_k);
  say("|---|%s---|---|---|---|---|%s%s---|---|---|---|\n", models ? "---|" : "",
      sp.ials ? "---|---|" : "", sp.conf ? "---|" : "");
  if (rep) fflush(rep);

  /* the item models' ladders: a dimension given on the command line is
   * not searched (one rung) */
  uint32_t rungs[3] = {[COFI_MODEL_ALS] = 0,
                       [COFI_MODEL_EASE] = lambda_fixed ? 1 : (uint32_t)N_OF(ease_ladder),
                       [COFI_MODEL_ITEMKNN] = knn_fixed ? 1 : (uint32_t)N_OF(knn_ladder)};
  /* the half-lives each trial tries: all of the sweep, or the one given;
   * none beyond 0 for held-out users, whose fold-in sets have no order */
  uint32_t n_recency = recency_fixed || foldin ? 1 : (uint32_t)N_RECENCY;
  double t_start = ev_now();
  uint32_t n = 0, best = 0, n_als = 0;
  int64_t best_als = -1; /* the best ALS trial: what refinement starts from */
  for (; n < cap; n++) {
    if (budget_seconds > 0 && n > 0 && ev_now() - t_start >= budget_seconds) break;
    trial *t = &trials[n];
    t->p = base;
    cofi_model_kind kind;
    uint32_t rung;
    if (!trial_kind(kinds, rungs, n, &kind, &rung) || (kind == COFI_MODEL_ALS && n_als >= budget))
      break;
    /* EASE and item-kNN are deterministic: one training is the trial */
    uint32_t seeds = kind == COFI_MODEL_ALS ? trial_seeds : 1;
    if (kind == COFI_MODEL_EASE) {
      t->p.model = kind;
      if (!lambda_fixed) t->p.lambda = ease_ladder[rung];
    } else if (kind == COFI_MODEL_ITEMKNN) {
      t->p.model = kind;
      if (!knn_fixed) {
        t->p.knn_weighting = knn_ladder[rung].w;
        t->p.neighbors = knn_ladder[rung].k;
      }
    } else if (sp.grid) {
      grid_point(&sp, sp.grid_order[n_als++], &t->p);
    } else if (n_als >= explore && best_als >= 0) {
      /* local refinement around the best ALS trial so far */
      tune_refine(&trials[best_als].p, &rsp, (double)(n_als - explore) / (budget - explore), &rng,
                  &t->p);
      n_als++;
    } else {
      n_als++;
      draw_random(&sp, &rng, &conf_rng, &t->p);
    }
    t->p.model = kind;
    double t0 = ev_now();
    if (patience && kind == COFI_MODEL_ALS) {
      /* Mean curves over the trial's seeds, up to the shortest run. */
      uint32_t it_max = t->p.iterations, common = it_max;
      double *sum = curves, *one = curves + 3 * (size_t)it_max;
      memset(sum, 0, 3 * (size_t)it_max * sizeof *sum);
      for (uint32_t r = 0; r < trial_seeds; r++) {
        es_ctx c = {.train = train, .val = val, .eo = &eo, .metric = metric, .mslot = mslot,
                    .patience = patience, .score = one, .recall10 = one + it_max,
                    .ndcg10 = one + 2 * (size_t)it_max};
        cofi_params pr = t->p;
        pr.seed = base.seed + r;
        pr.progress = es_progress;
        pr.progress_ctx = &c;
        cofi_model *m = NULL;
        cofi_diag d = {0};
        int lrc = cofi_train(train, &pr, &m, &d);
        cofi_model_close(m);
        if (c.error) {
          rc = cli_diag_error(cmd, "scoring a trial", c.error, &c.diag);
          goto done;
        }
        if (lrc == COFI_ERR_NUMERIC) {
          common = 0;
          break;
        }
        if (lrc && lrc != COFI_ERR_CANCELLED) {
          rc = cli_diag_error(cmd, "trial", lrc, &d);
          goto done;
        }
        if (c.done < common) common = c.done;
        for (uint32_t i = 0; i < c.done; i++)
          for (int j = 0; j < 3; j++)
            sum[j * (size_t)it_max + i] += one[j * (size_t)it_max + i] / trial_seeds;
      }
      if (common == 0) {
        t->score = -1;
      } else {
        uint32_t bi = 0;
        for (uint32_t i = 1; i < common; i++)
          if (sum[i] > sum[bi]) bi = i;
        t->p.iterations = bi + 1;
        t->score = sum[bi];
        t->recall10 = sum[it_max + bi];
        t->ndcg10 = sum[2 * (size_t)it_max + bi];
      }
    } else {
      /* per half-life of the sweep: the metric, recall@10, ndcg@10 */
      double hs[N_RECENCY][3];
      memset(hs, 0, sizeof hs);
      for (uint32_t r = 0; r < seeds && t->score >= 0; r++) {
        cofi_params pr = t->p;
        pr.seed = base.seed + r;
        cofi_model *m = NULL;
        cofi_diag d = {0};
        int lrc = cofi_train(train, &pr, &m, &d);
        for (uint32_t h = 0; h < n_recency && !lrc; h++) {
          if (h > 0) lrc = cofi_model_set_recency(m, train, recency_sweep[h], &d);
          cofi_eval_result res;
          if (!lrc)
            lrc = sampled ? cofi_evaluate_sampled(m, COFI_SCORER_MODEL, vtest, vneg, &eo, &res, &d)
                          : cofi_evaluate(m, COFI_SCORER_MODEL, val, foldin, &eo, &res, &d);
          if (lrc) break;
          hs[h][0] += res.metrics[mslot][metric] / seeds;
          hs[h][1] += res.metrics[0][COFI_METRIC_RECALL] / seeds;
          hs[h][2] += res.metrics[0][COFI_METRIC_NDCG] / seeds;
        }
        cofi_model_close(m);
        if (lrc == COFI_ERR_NUMERIC || (lrc == COFI_ERR_INVALID && kind == COFI_MODEL_EASE)) {
          /* A diverging setting (or an EASE over --max-memory) is a bad
           * trial, not a failed search. */
          t->score = -1;
          break;
        }
        if (lrc) {
          rc = cli_diag_error(cmd, "trial", lrc, &d);
          goto done;
        }
      }
      if (t->score >= 0) {
        uint32_t bh = 0;
        for (uint32_t h = 1; h < n_recency; h++)
          if (hs[h][0] > hs[bh][0]) bh = h;
        if (n_recency > 1) t->p.recency = recency_sweep[bh];
        t->score = hs[bh][0];
        t->recall10 = hs[bh][1];
        t->ndcg10 = hs[bh][2];
      }
    }
    t->seconds = ev_now() - t0;
    print_params_row(t, n + 1, metric, metric_k, sp.ials, sp.conf, models);
    if (rep) fflush(rep);
    if (t->score > trials[best].score) best = n;
    if (kind == COFI_MODEL_ALS && t->score >= 0 &&
        (best_als < 0 || t->score > trials[best_als].score))
      best_als = (int64_t)n;
  }
  if (n == 0) {
    fprintf(stderr, "cofi tune: no trial ran\n");
    rc = CLI_EXIT_FAIL;
    goto done;
  }
  const trial *b = &trials[best];
  if (b->p.model == COFI_MODEL_EASE)
    say("\nBest: trial %u of %u (%.1fs): EASE, lambda %g", best + 1, n, ev_now() - t_start,
        (double)b->p.lambda);
  else if (b->p.model == COFI_MODEL_ITEMKNN)
    say("\nBest: trial %u of %u (%.1fs): item-kNN, %s, %u neighbors", best + 1, n,
        ev_now() - t_start, cofi_knn_weighting_name((int)b->p.knn_weighting), b->p.neighbors);
  else
    say("\nBest: trial %u of %u (%.1fs): factors %u, regularization %g, alpha %g, iterations %u",
        best + 1, n, ev_now() - t_start, b->p.factors, (double)b->p.regularization,
        (double)b->p.alpha, b->p.iterations);
  if (sp.ials && b->p.model == COFI_MODEL_ALS)
    say(", reg_exponent %g, unobserved_weight %g", (double)b->p.reg_exponent,
           (double)b->p.unobserved_weight);
  if (b->p.recency > 0)
    say(", recency half-life %g", (double)b->p.recency);
  if (b->p.confidence != COFI_CONFIDENCE_LINEAR)
    say(", confidence %s", cofi_confidence_name((int)b->p.confidence));
  say("; validation %s@%u %.4f, recall@10 %.4f, ndcg@10 %.4f\n", cofi_metric_name(metric),
         metric_k, b->score, b->recall10, b->ndcg10);
  if (out_path) {
    rc = cli_params_write(cmd, out_path, &b->p);
    if (rc) goto done;
    if (!cli_is_stdio(out_path) && sampled)
      say("Wrote %s. Final numbers: cofi eval DATA --protocol sampled --test FILE --negatives "
          "FILE --params %s (trains on all of DATA)\n",
          cli_printable(out_path, pb, sizeof pb), pb);
    else if (!cli_is_stdio(out_path))
      say("Wrote %s. Final numbers: cofi eval ... --params %s (trains on train + validation, "
          "reports on test)\n",
          cli_printable(out_path, pb, sizeof pb), pb);
  }
  if (json) {
    printf("{\"trials\": %u, \"seconds\": ", n);
    cli_json_number(stdout, ev_now() - t_start);
    printf(", \"metric\": \"%s@%u\", \"best\": {\"trial\": %u, \"score\": ",
           cofi_metric_name(metric), metric_k, best + 1);
    cli_json_number(stdout, b->score);
    printf(", \"recall@10\": ");
    cli_json_number(stdout, b->recall10);
    printf(", \"ndcg@10\": ");
    cli_json_number(stdout, b->ndcg10);
    printf(", \"params\": ");
    cofi_params bp = b->p;
    cli_json_params(stdout, &bp);
    printf("}, \"output\": ");
    cli_json_cstring(stdout, out_path);
    printf("}\n");
  }
  if (!quiet) fprintf(stderr, "cofi tune: %u trials in %.1fs\n", n, ev_now() - t_start);
  rc = CLI_EXIT_OK;

done:
  if (vdir[0]) {
    if (vtest[0]) unlink(vtest);
    if (vneg[0]) unlink(vneg);
    rmdir(vdir);
  }
  cofi_dataset_free(ds);
  cofi_dataset_free(train);
  cofi_dataset_free(val);
  cofi_dataset_free(foldin);
  free(parts);
  free(trials);
  free(sp.grid_order);
  free(curves);
  return rc;
}

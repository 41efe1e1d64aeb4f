/*
 * eval_common.c — the protocol flags and data preparation shared by
 * `cofi split`, `cofi eval` and `cofi tune` (see eval_common.h).
 *
 * Two ways to get labelled rows, one pipeline after them: an in-process
 * split of DATA (cofi_split), or the files written by `cofi split -o DIR`
 * read back and joined into one dataset whose rows carry the part of the
 * file they came from. Either way the commands then select parts into
 * datasets with cofi_dataset_select.
 */
#include "eval_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void ev_setup_init(ev_setup *s) {
  memset(s, 0, sizeof *s);
  cli_data_opts_init(&s->data);
  s->split = cofi_split_options_default();
}

const char *ev_protocol_name(const ev_setup *s) {
  if (s->sampled) return "sampled";
  /* The split was made by whoever wrote the files, with any protocol. */
  if (s->split_dir) return "split from files";
  switch (s->split.protocol) {
    case COFI_PROTOCOL_RANDOM: return "random";
    case COFI_PROTOCOL_USERS: return "heldout-users";
    case COFI_PROTOCOL_TIME_CUTOFF: return "time-cutoff";
    default: return "leave-last-out";
  }
}

bool ev_setup_option(cli_args *a, ev_setup *s) {
  const char *v;
  if (cli_data_option(a, &s->data)) return true;
  if (cli_opt(a, "--protocol", &v)) {
    s->sampled = false;
    if (!strcmp(v, "leave-last-out")) s->split.protocol = COFI_PROTOCOL_LEAVE_LAST_OUT;
    else if (!strcmp(v, "random")) s->split.protocol = COFI_PROTOCOL_RANDOM;
    else if (!strcmp(v, "users") || !strcmp(v, "heldout-users"))
      s->split.protocol = COFI_PROTOCOL_USERS;
    else if (!strcmp(v, "time-cutoff")) s->split.protocol = COFI_PROTOCOL_TIME_CUTOFF;
    else if (!strcmp(v, "sampled")) s->sampled = true;
    else if (!a->failed) {
      cli_usage_error(a->cmd, "--protocol: expected leave-last-out, random, heldout-users (users), "
                      "time-cutoff or sampled, got '%s'", v);
      a->failed = true;
    }
  } else if (cli_opt(a, "--cutoff", &v)) {
    s->split.cutoff = v; /* parsed by cofi_split, which knows the data's range */
  } else if (cli_opt(a, "--holdout", &v)) {
    if (!a->failed && !cli_parse_double(a->cmd, "--holdout", v, 1e-9, 0.499999, &s->split.holdout))
      a->failed = true;
  } else if (cli_opt(a, "--heldout-users", &v)) {
    /* N users, or a share of all users when written as a decimal. */
    s->split.heldout_users_fraction = 0;
    if (a->failed) {
    } else if (strchr(v, '.')) {
      if (!cli_parse_double(a->cmd, "--heldout-users", v, 1e-9, 0.499999,
                            &s->split.heldout_users_fraction))
        a->failed = true;
    } else if (!cli_parse_u32(a->cmd, "--heldout-users", v, 1, UINT32_MAX / 2,
                              &s->split.heldout_users)) {
      a->failed = true;
    }
  } else if (cli_opt(a, "--foldin-fraction", &v) || cli_opt(a, "--fold-in-fraction", &v)) {
    if (!a->failed &&
        !cli_parse_double(a->cmd, "--foldin-fraction", v, 1e-9, 0.999999, &s->split.foldin_fraction))
      a->failed = true;
  } else if (cli_opt(a, "--split-seed", &v)) {
    if (!a->failed && !cli_parse_u64(a->cmd, "--split-seed", v, &s->split.seed)) a->failed = true;
  } else if (cli_opt(a, "--split-dir", &v)) {
    s->split_dir = v;
  } else if (cli_opt(a, "--test", &v)) {
    s->ncf_test = v;
  } else if (cli_opt(a, "--negatives", &v)) {
    s->ncf_negatives = v;
  } else {
    return false;
  }
  return true;
}

int ev_setup_check(const char *cmd, const ev_setup *s) {
  if (s->split_dir && s->sampled)
    return cli_usage_error(cmd, "--split-dir and --protocol sampled do not go together");
  if (s->split_dir && s->data_path)
    return cli_usage_error(cmd, "give either DATA or --split-dir DIR, not both");
  if (!s->split_dir && !s->data_path)
    return cli_usage_error(cmd, "missing DATA (an interaction log) or --split-dir DIR (see cofi %s --help)", cmd);
  if (s->sampled && (!s->ncf_test || !s->ncf_negatives))
    return cli_usage_error(cmd, "--protocol sampled needs --test FILE and --negatives FILE (the NCF files)");
  if (cli_is_stdio(s->ncf_test) || cli_is_stdio(s->ncf_negatives))
    return cli_usage_error(cmd, "--test and --negatives cannot be - : they are read once per "
                           "model evaluated; give files");
  if (s->split_dir && cli_is_stdio(s->split_dir))
    return cli_usage_error(cmd, "--split-dir -: give the directory cofi split wrote");
  if (!s->sampled && (s->ncf_test || s->ncf_negatives))
    return cli_usage_error(cmd, "--test and --negatives belong to --protocol sampled");
  bool time_cutoff = !s->sampled && s->split.protocol == COFI_PROTOCOL_TIME_CUTOFF;
  if (time_cutoff && !s->split.cutoff && !s->split_dir)
    return cli_usage_error(cmd, "--protocol time-cutoff needs --cutoff DATE|SECONDS|FRACTION "
                           "(e.g. 2015-06-01 or 0.8, the time quantile of the events)");
  if (s->split.cutoff && !time_cutoff)
    return cli_usage_error(cmd, "--cutoff belongs to --protocol time-cutoff");
  return CLI_EXIT_OK;
}

/* Reads DIR/name with the default CSV options (the files of cofi split);
 * *out stays NULL when the file does not exist and optional is set. */
static int read_split_file(const char *cmd, const char *dir, const char *name, bool optional,
                           cofi_dataset **out) {
  *out = NULL;
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
    return cli_usage_error(cmd, "--split-dir: path too long");
  if (optional && access(path, F_OK) != 0) return CLI_EXIT_OK;
  cli_data_opts o;
  cli_data_opts_init(&o);
  o.quiet = true; /* files of cofi split: their columns are known */
  return cli_load_dataset(cmd, path, &o, out);
}

static int prepare_from_dir(const char *cmd, const ev_setup *s, cofi_dataset **ds,
                            uint8_t **parts, uint64_t counts[COFI_PART_COUNT]) {
  static const struct {
    const char *name;
    cofi_part part;
    bool optional;
  } files[] = {{"train.csv", COFI_PART_TRAIN, false},
               {"validation.csv", COFI_PART_VALIDATION, true},
               {"test.csv", COFI_PART_TEST, false},
               {"validation_foldin.csv", COFI_PART_VALIDATION_FOLDIN, true},
               {"test_foldin.csv", COFI_PART_TEST_FOLDIN, true}};
  cofi_dataset *all = NULL;
  uint8_t *p = NULL;
  size_t n_files = sizeof files / sizeof files[0];
  size_t bounds[8] = {0};
  memset(counts, 0, COFI_PART_COUNT * sizeof *counts);
  for (size_t f = 0; f < n_files; f++) {
    cofi_dataset *one = NULL;
    int rc = read_split_file(cmd, s->split_dir, files[f].name, files[f].optional, &one);
    if (rc) {
      cofi_dataset_free(all);
      return rc;
    }
    if (one && !all) {
      all = one;
    } else if (one) {
      cofi_diag d = {0};
      int arc = cofi_dataset_append(all, one, &d);
      cofi_dataset_free(one);
      if (arc) {
        cofi_dataset_free(all);
        return cli_diag_error(cmd, "joining the split files", arc, &d);
      }
    }
    bounds[f] = all ? cofi_dataset_n_interactions(all) : 0;
  }
  size_t n = cofi_dataset_n_interactions(all);
  p = malloc(n ? n : 1);
  if (!p) {
    cofi_dataset_free(all);
    fprintf(stderr, "cofi %s: out of memory\n", cmd);
    return CLI_EXIT_NOMEM;
  }
  size_t from = 0;
  for (size_t f = 0; f < n_files; f++) {
    for (size_t i = from; i < bounds[f]; i++) p[i] = (uint8_t)files[f].part;
    counts[files[f].part] += bounds[f] - from;
    from = bounds[f];
  }
  *ds = all;
  *parts = p;
  return CLI_EXIT_OK;
}

int ev_prepare(const char *cmd, const ev_setup *s, cofi_dataset **ds, uint8_t **parts,
               uint64_t counts[COFI_PART_COUNT]) {
  *ds = NULL;
  *parts = NULL;
  if (s->split_dir) return prepare_from_dir(cmd, s, ds, parts, counts);
  int rc = cli_load_dataset(cmd, s->data_path, &s->data, ds);
  if (rc) return rc;
  size_t n = cofi_dataset_n_interactions(*ds);
  uint8_t *p = malloc(n ? n : 1);
  if (!p) {
    cofi_dataset_free(*ds);
    *ds = NULL;
    fprintf(stderr, "cofi %s: out of memory\n", cmd);
    return CLI_EXIT_NOMEM;
  }
  if (s->sampled) {
    /* Sampled negatives: DATA is all training data. */
    memset(p, COFI_PART_TRAIN, n);
    memset(counts, 0, COFI_PART_COUNT * sizeof *counts);
    counts[COFI_PART_TRAIN] = n;
  } else {
    cofi_diag d = {0};
    rc = cofi_split(*ds, &s->split, p, counts, &d);
    if (rc) {
      free(p);
      cofi_dataset_free(*ds);
      *ds = NULL;
      return cli_diag_error(cmd, "splitting", rc, &d);
    }
    if (s->split.protocol == COFI_PROTOCOL_TIME_CUTOFF && !s->data.quiet)
      ev_report_time_cutoff(cmd, s, *ds, p);
  }
  *parts = p;
  return CLI_EXIT_OK;
}

/* What a global time cutoff did: the instants, and who cannot be evaluated. */
void ev_report_time_cutoff(const char *cmd, const ev_setup *s, const cofi_dataset *ds,
                           const uint8_t *parts) {
  int64_t v, c;
  cofi_diag d = {0};
  if (cofi_split_cutoffs(ds, &s->split, &v, &c, &d)) return;
  char cb[40], vb[40];
  time_t ct = (time_t)c, vt = (time_t)v;
  struct tm tm;
  strftime(cb, sizeof cb, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&ct, &tm));
  strftime(vb, sizeof vb, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&vt, &tm));
  fprintf(stderr, "cofi %s: time cutoff %s (%lld): test is what was first seen from then on", cmd,
          cb, (long long)c);
  if (v < c) fprintf(stderr, "; validation from %s (%lld)", vb, (long long)v);
  fputc('\n', stderr);
  static const cofi_part held[] = {COFI_PART_VALIDATION, COFI_PART_TEST};
  for (int h = 0; h < 2; h++) {
    uint64_t n_users, dropped;
    /* Test users may train on validation events (the final model). */
    unsigned before = COFI_PART_BIT(COFI_PART_TRAIN);
    if (held[h] == COFI_PART_TEST) before |= COFI_PART_BIT(COFI_PART_VALIDATION);
    if (cofi_split_part_users(ds, parts, held[h], before, &n_users, &dropped) || n_users == 0)
      continue;
    fprintf(stderr, "cofi %s: %s: %llu users, of whom %llu have no event before the %scutoff "
            "and cannot be evaluated (user_not_in_training)\n", cmd,
            held[h] == COFI_PART_TEST ? "test" : "validation", (unsigned long long)n_users,
            (unsigned long long)dropped, held[h] == COFI_PART_TEST ? "" : "validation ");
  }
}

int ev_select(const char *cmd, const cofi_dataset *ds, const uint8_t *parts, unsigned mask,
              const char *what, cofi_dataset **out) {
  cofi_diag d = {0};
  int rc = cofi_dataset_select(ds, parts, mask, out, &d);
  if (rc == COFI_ERR_EMPTY) {
    /* Say where the rows went: on a tiny log every row can be held out. */
    static const char *const part_name[COFI_PART_COUNT] = {
        "train", "validation", "test", "validation fold-in", "test fold-in"};
    uint64_t per[COFI_PART_COUNT] = {0};
    size_t n = cofi_dataset_n_interactions(ds);
    for (size_t i = 0; i < n; i++)
      if (parts[i] < COFI_PART_COUNT) per[parts[i]]++;
    fprintf(stderr, "cofi %s: no %s interaction: none of the %zu rows is in the selected part%s;"
            " the split put", cmd, what, n, (mask & (mask - 1)) ? "s" : "");
    bool first = true;
    for (int p = 0; p < COFI_PART_COUNT; p++)
      if (per[p]) {
        fprintf(stderr, "%s %llu in %s", first ? "" : ",", (unsigned long long)per[p],
                part_name[p]);
        first = false;
      }
    fprintf(stderr, "%s\n", mask & COFI_PART_BIT(COFI_PART_TRAIN)
                                ? " (every row went to validation or test: users need more "
                                  "items than the protocol holds out; use a larger log)"
                                : "");
    return CLI_EXIT_DATA;
  }
  if (rc) {
    char msg[128];
    snprintf(msg, sizeof msg, "selecting the %s interactions", what);
    return cli_diag_error(cmd, msg, rc, &d);
  }
  return CLI_EXIT_OK;
}

typedef struct ks_ctx {
  const char *cmd;
  cofi_eval_options *o;
  bool ok;
} ks_ctx;

static bool add_k(const char *s, size_t len, void *ctx) {
  ks_ctx *c = ctx;
  char buf[32];
  if (len == 0 || len >= sizeof buf) {
    cli_usage_error(c->cmd, "--k: expected a comma-separated list of cutoffs such as 5,10,20");
    return c->ok = false;
  }
  memcpy(buf, s, len);
  buf[len] = 0;
  if (c->o->n_ks >= COFI_EVAL_MAX_KS) {
    cli_usage_error(c->cmd, "--k: at most %d cutoffs", COFI_EVAL_MAX_KS);
    return c->ok = false;
  }
  uint32_t k;
  if (!cli_parse_u32(c->cmd, "--k", buf, 1, COFI_EVAL_MAX_K, &k)) return c->ok = false;
  for (uint32_t i = 0; i < c->o->n_ks; i++)
    if (c->o->ks[i] == k) {
      cli_usage_error(c->cmd, "--k: cutoff %u given twice", k);
      return c->ok = false;
    }
  c->o->ks[c->o->n_ks++] = k;
  return true;
}

bool ev_parse_ks(const char *cmd, const char *text, cofi_eval_options *o) {
  ks_ctx c = {cmd, o, true};
  o->n_ks = 0;
  cli_split_list(text, add_k, &c);
  return c.ok && o->n_ks > 0;
}

void ev_mean_sd(const double *x, size_t n, double *mean, double *sd) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  double m = n ? s / (double)n : NAN;
  double v = 0;
  for (size_t i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
  *mean = m;
  *sd = n >= 2 ? sqrt(v / (double)(n - 1)) : NAN;
}

double ev_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

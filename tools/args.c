/*
 * args.c — option parsing shared by the subcommands:
 * strict number parsing (no atoi: the whole token must be a number in
 * range), the data-reading and training flags several commands accept, and
 * the parameter-file format written by `cofi tune`.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- argument walking -------------------------------------------------- */

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv) {
  a->cmd = cmd;
  a->argc = argc;
  a->argv = argv;
  a->i = 1;
  a->failed = false;
  a->params_path = NULL;
}

bool cli_args_done(const cli_args *a) { return a->i >= a->argc || a->failed; }

bool cli_flag(cli_args *a, const char *name) {
  if (a->i < a->argc && !strcmp(a->argv[a->i], name)) {
    a->i++;
    return true;
  }
  return false;
}

bool cli_opt(cli_args *a, const char *name, const char **value) {
  if (a->i >= a->argc) return false;
  const char *arg = a->argv[a->i];
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0) return false;
  if (arg[n] == '=') {
    *value = arg + n + 1;
    a->i++;
    return true;
  }
  if (arg[n] != 0) return false;
  if (a->i + 1 >= a->argc) {
    cli_usage_error(a->cmd, "%s needs a value", name);
    a->failed = true;
    a->i++;
    *value = "";
    return true;
  }
  *value = a->argv[a->i + 1];
  a->i += 2;
  return true;
}

bool cli_positional(cli_args *a, const char **value) {
  if (a->i >= a->argc) return false;
  const char *arg = a->argv[a->i];
  if (arg[0] == '-' && arg[1] != 0) return false;
  *value = arg;
  a->i++;
  return true;
}

int cli_unknown(cli_args *a) {
  if (a->failed) return CLI_EXIT_USAGE;
  return cli_usage_error(a->cmd, "unknown option or extra argument '%s' (see cofi %s --help)",
                         a->argv[a->i], a->cmd);
}

/* ---- numbers ----------------------------------------------------------- */

bool cli_parse_u64(const char *cmd, const char *flag, const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (!*s || *s == '-' || *s == '+' || *s == ' ') goto bad;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) goto bad;
  *out = v;
  return true;
bad:
  cli_usage_error(cmd, "%s: expected a non-negative integer, got '%s'", flag, s);
  return false;
}

bool cli_parse_u32(const char *cmd, const char *flag, const char *s,
                   uint32_t min, uint32_t max, uint32_t *out) {
  char *end;
  errno = 0;
  if (!*s || *s == '-' || *s == '+' || *s == ' ') goto bad;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < min || v > max) goto bad;
  *out = (uint32_t)v;
  return true;
bad:
  cli_usage_error(cmd, "%s: expected an integer in %u..%u, got '%s'", flag, min, max, s);
  return false;
}

bool cli_parse_double(const char *cmd, const char *flag, const char *s,
                      double min, double max, double *out) {
  char *end;
  errno = 0;
  double v = *s ? strtod(s, &end) : NAN;
  if (!*s || errno || *end || !isfinite(v) || v < min || v > max) {
    cli_usage_error(cmd, "%s: expected a number in [%g, %g], got '%s'", flag, min, max, s);
    return false;
  }
  *out = v;
  return true;
}

bool cli_parse_float(const char *cmd, const char *flag, const char *s,
                     double min, double max, float *out) {
  double v;
  if (!cli_parse_double(cmd, flag, s, min, max, &v)) return false;
  *out = (float)v;
  return true;
}

/* ---- lists ------------------------------------------------------------- */

bool cli_split_list(const char *text, bool (*fn)(const char *s, size_t len, void *ctx),
                    void *ctx) {
  size_t n = strlen(text);
  char *buf = malloc(n + 1);
  if (!buf) { fprintf(stderr, "cofi: out of memory\n"); exit(CLI_EXIT_NOMEM); }
  size_t o = 0;
  bool ok = true;
  for (size_t i = 0; i <= n && ok; i++) {
    if (i < n && text[i] == '\\' && i + 1 < n) {
      buf[o++] = text[++i];
    } else if (i == n || text[i] == ',') {
      ok = fn(buf, o, ctx);
      o = 0;
    } else {
      buf[o++] = text[i];
    }
  }
  free(buf);
  return ok;
}

/* ---- data options ------------------------------------------------------ */

void cli_data_opts_init(cli_data_opts *o) {
  memset(o, 0, sizeof *o);
  o->read = cofi_read_options_default();
}

bool cli_parse_event_weights(const char *cmd, const char *text, cli_data_opts *o) {
  size_t len = strlen(text);
  if (len >= sizeof o->weights_text) {
    cli_usage_error(cmd, "--event-weights: list too long (%zu bytes)", len);
    return false;
  }
  memcpy(o->weights_text, text, len + 1);
  size_t n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(o->weights_text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq || eq == tok) {
      cli_usage_error(cmd, "--event-weights: expected name=weight, got '%s'", tok);
      return false;
    }
    *eq = 0;
    if (n >= sizeof o->weights / sizeof o->weights[0]) {
      cli_usage_error(cmd, "--event-weights: more than %zu events", n);
      return false;
    }
    for (size_t j = 0; j < n; j++)
      if (!strcmp(o->weights[j].event, tok)) {
        cli_usage_error(cmd, "--event-weights: event '%s' given twice", tok);
        return false;
      }
    if (!cli_parse_float(cmd, "--event-weights", eq + 1, 0, 1e30, &o->weights[n].weight))
      return false;
    o->weights[n++].event = tok;
  }
  if (n == 0) {
    cli_usage_error(cmd, "--event-weights: empty list");
    return false;
  }
  o->read.event_weights = o->weights;
  o->read.n_event_weights = n;
  return true;
}

bool cli_data_option(cli_args *a, cli_data_opts *o) {
  const char *v;
  cofi_read_options *r = &o->read;
  if (cli_opt(a, "--format", &v)) {
    if (!strcmp(v, "csv")) r->format = COFI_FORMAT_CSV;
    else if (!strcmp(v, "movielens")) r->format = COFI_FORMAT_MOVIELENS;
    else {
      cli_usage_error(a->cmd, "--format: expected csv or movielens, got '%s'", v);
      a->failed = true;
    }
  } else if (cli_opt(a, "--user-col", &v)) r->user_col = v;
  else if (cli_opt(a, "--item-col", &v)) r->item_col = v;
  else if (cli_opt(a, "--value-col", &v)) r->value_col = v;
  else if (cli_opt(a, "--event-col", &v)) r->event_col = v;
  else if (cli_opt(a, "--time-col", &v)) r->time_col = v;
  else if (cli_opt(a, "--delimiter", &v)) {
    if (!strcmp(v, "\\t") || !strcmp(v, "tab")) r->delimiter = '\t';
    else if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r') r->delimiter = v[0];
    else {
      cli_usage_error(a->cmd, "--delimiter: expected one character or 'tab', got '%s'", v);
      a->failed = true;
    }
  } else if (cli_opt(a, "--event-weights", &v)) {
    if (!a->failed && !cli_parse_event_weights(a->cmd, v, o)) a->failed = true;
  } else if (cli_opt(a, "--min-value", &v)) {
    if (!a->failed && !cli_parse_double(a->cmd, "--min-value", v, -1e30, 1e30, &r->min_value))
      a->failed = true;
    r->has_min_value = 1;
  } else if (cli_flag(a, "--no-header")) {
    r->no_header = 1;
  } else if (cli_opt(a, "--items", &v)) o->items_path = v;
  else if (cli_opt(a, "--items-id-col", &v)) o->items_id_col = v;
  else return false;
  return true;
}

int cli_load_dataset(const char *cmd, const char *path, const cli_data_opts *o,
                     cofi_dataset **out) {
  cofi_diag d = {0};
  char what[600];
  snprintf(what, sizeof what, "reading %s", cli_display_name(path));
  int rc = cli_is_stdio(path) ? cofi_dataset_read_fd(0, "<stdin>", &o->read, out, &d)
                              : cofi_dataset_read(path, &o->read, out, &d);
  if (rc) return cli_diag_error(cmd, what, rc, &d);
  if (!o->quiet) {
    fprintf(stderr, "cofi %s: ", cmd);
    cli_text_cstring(stderr, cli_display_name(path));
    fputs(": ", stderr);
    cli_text_cstring(stderr, cofi_dataset_columns(*out));
    fputc('\n', stderr);
  }
  if (o->items_path) {
    snprintf(what, sizeof what, "reading item metadata %s", cli_display_name(o->items_path));
    rc = cli_is_stdio(o->items_path)
             ? cofi_dataset_read_items_fd(*out, 0, "<stdin>", o->items_id_col, &d)
             : cofi_dataset_read_items(*out, o->items_path, o->items_id_col, &d);
    if (rc) {
      cofi_dataset_free(*out);
      *out = NULL;
      return cli_diag_error(cmd, what, rc, &d);
    }
  }
  return CLI_EXIT_OK;
}

static void params_print(FILE *f, const cofi_params *p);

/* ---- training options -------------------------------------------------- */

static bool parse_solver(const char *cmd, const char *v, cofi_solver *out) {
  if (!strcmp(v, "cg")) *out = COFI_SOLVER_CG;
  else if (!strcmp(v, "cholesky")) *out = COFI_SOLVER_CHOLESKY;
  else {
    cli_usage_error(cmd, "--solver: expected cg or cholesky, got '%s'", v);
    return false;
  }
  return true;
}

/* A byte count: digits with an optional K, M, G or T (powers of 1024);
 * 0 means no limit. */
static bool parse_bytes(const char *cmd, const char *flag, const char *v, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  unsigned shift = 0;
  if (end != v && *end && !end[1]) {
    const char *units = "KMGT", *u = strchr(units, *end);
    if (u) {
      shift = 10u * (unsigned)(u - units + 1);
      end++;
    }
  }
  if (end == v || *end || errno || v[0] == '-' || (shift && n > (UINT64_MAX >> shift))) {
    cli_usage_error(cmd, "%s: expected a byte count such as 4G, 512M or 1000000, got '%s'", flag, v);
    return false;
  }
  *out = (uint64_t)n << shift;
  return true;
}

/* One "name value" setting, shared by flags and parameter files. */
static bool set_param(const char *cmd, const char *name, const char *v, cofi_params *p) {
  char flag[64];
  snprintf(flag, sizeof flag, "--%s", name);
  for (char *c = flag; *c; c++) if (*c == '_') *c = '-';
  if (!strcmp(name, "factors"))
    return cli_parse_u32(cmd, flag, v, 1, COFI_MAX_FACTORS, &p->factors);
  if (!strcmp(name, "regularization"))
    return cli_parse_float(cmd, flag, v, 0, 1e6, &p->regularization);
  if (!strcmp(name, "alpha")) return cli_parse_float(cmd, flag, v, 0, 1e6, &p->alpha);
  if (!strcmp(name, "iterations"))
    return cli_parse_u32(cmd, flag, v, 1, 100000, &p->iterations);
  if (!strcmp(name, "seed")) return cli_parse_u64(cmd, flag, v, &p->seed);
  if (!strcmp(name, "solver")) return parse_solver(cmd, v, &p->solver);
  if (!strcmp(name, "cg_steps") || !strcmp(name, "cg-steps"))
    return cli_parse_u32(cmd, flag, v, 1, 1000, &p->cg_steps);
  if (!strcmp(name, "threads")) return cli_parse_u32(cmd, flag, v, 0, 4096, &p->threads);
  if (!strcmp(name, "reg_exponent") || !strcmp(name, "reg-exponent"))
    return cli_parse_float(cmd, flag, v, 0, 10, &p->reg_exponent);
  if (!strcmp(name, "unobserved_weight") || !strcmp(name, "unobserved-weight"))
    return cli_parse_float(cmd, flag, v, 1e-9, 1e6, &p->unobserved_weight);
  if (!strcmp(name, "confidence")) {
    for (int c = 0; cofi_confidence_name(c); c++)
      if (!strcmp(v, cofi_confidence_name(c))) {
        p->confidence = (cofi_confidence)c;
        return true;
      }
    cli_usage_error(cmd, "%s: expected linear, log or bm25, got '%s'", flag, v);
    return false;
  }
  if (!strcmp(name, "epsilon")) return cli_parse_float(cmd, flag, v, 1e-9, 1e9, &p->epsilon);
  if (!strcmp(name, "bm25_k1") || !strcmp(name, "bm25-k1"))
    return cli_parse_float(cmd, flag, v, 0, 1e6, &p->bm25_k1);
  if (!strcmp(name, "bm25_b") || !strcmp(name, "bm25-b"))
    return cli_parse_float(cmd, flag, v, 0, 1, &p->bm25_b);
  if (!strcmp(name, "model")) {
    for (int c = 0; cofi_model_kind_name(c); c++)
      if (!strcmp(v, cofi_model_kind_name(c))) {
        p->model = (cofi_model_kind)c;
        return true;
      }
    cli_usage_error(cmd, "%s: expected als, ease or itemknn, got '%s'", flag, v);
    return false;
  }
  if (!strcmp(name, "lambda")) return cli_parse_float(cmd, flag, v, 1e-6f, 1e9f, &p->lambda);
  if (!strcmp(name, "neighbors"))
    return cli_parse_u32(cmd, flag, v, 1, 100000, &p->neighbors);
  if (!strcmp(name, "recency")) return cli_parse_float(cmd, flag, v, 0, 1e6f, &p->recency);
  if (!strcmp(name, "knn_weighting") || !strcmp(name, "knn-weighting")) {
    for (int c = 0; cofi_knn_weighting_name(c); c++)
      if (!strcmp(v, cofi_knn_weighting_name(c))) {
        p->knn_weighting = (cofi_knn_weighting)c;
        return true;
      }
    cli_usage_error(cmd, "%s: expected cosine, tfidf or bm25, got '%s'", flag, v);
    return false;
  }
  if (!strcmp(name, "max_memory") || !strcmp(name, "max-memory"))
    return parse_bytes(cmd, flag, v, &p->max_memory);
  cli_usage_error(cmd, "unknown parameter '%s'", name);
  return false;
}

bool cli_train_option(cli_args *a, cofi_params *p) {
  static const char *const names[] = {"factors", "regularization", "alpha", "iterations",
                                      "seed", "solver", "cg-steps", "threads",
                                      "reg-exponent", "unobserved-weight", "confidence",
                                      "epsilon", "bm25-k1", "bm25-b", "model", "lambda",
                                      "neighbors", "knn-weighting", "max-memory", "recency"};
  const char *v;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", names[i]);
    if (cli_opt(a, flag, &v)) {
      if (!a->failed && !set_param(a->cmd, names[i], v, p)) a->failed = true;
      return true;
    }
  }
  if (cli_opt(a, "--params", &v)) {
    a->params_path = v;
    if (!a->failed && cli_params_read(a->cmd, v, p) != CLI_EXIT_OK) a->failed = true;
    return true;
  }
  return false;
}

int cli_params_read(const char *cmd, const char *path, cofi_params *p) {
  bool from_stdin = cli_is_stdio(path);
  FILE *f = from_stdin ? stdin : fopen(path, "r");
  if (!f) {
    fprintf(stderr, "cofi %s: reading parameters %s: %s\n", cmd, path, strerror(errno));
    return CLI_EXIT_IO;
  }
  char line[1024];
  unsigned lineno = 0;
  int rc = CLI_EXIT_OK;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) *--end = 0;
    if (!*s) continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      fprintf(stderr, "cofi %s: reading parameters %s:%u: expected key = value\n", cmd,
              cli_display_name(path), lineno);
      rc = CLI_EXIT_USAGE;
      break;
    }
    char *k_end = eq;
    while (k_end > s && (k_end[-1] == ' ' || k_end[-1] == '\t')) k_end--;
    *k_end = 0;
    char *v = eq + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!set_param(cmd, s, v, p)) {
      fprintf(stderr, "cofi %s: (in parameter file %s:%u)\n", cmd, cli_display_name(path),
              lineno);
      rc = CLI_EXIT_USAGE;
      break;
    }
  }
  if (!from_stdin) fclose(f);
  return rc;
}

/* Written to a temporary file beside path, then renamed over it: a failed
 * or interrupted write leaves the old file. "-" writes to standard output. */
int cli_params_write(const char *cmd, const char *path, const cofi_params *p) {
  if (cli_is_stdio(path)) {
    params_print(stdout, p);
    if (fflush(stdout) != 0 || ferror(stdout)) {
      fprintf(stderr, "cofi %s: writing parameters to standard output: %s\n", cmd,
              strerror(errno));
      return CLI_EXIT_IO;
    }
    return CLI_EXIT_OK;
  }
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    fprintf(stderr, "cofi %s: writing parameters %s: cannot create %s: %s\n", cmd, path, tmp,
            strerror(errno));
    if (fd >= 0) {
      close(fd);
      unlink(tmp);
    }
    free(tmp);
    return CLI_EXIT_IO;
  }
  (void)fchmod(fd, 0644);
  params_print(f, p);
  bool ok = fflush(f) == 0 && !ferror(f) && fsync(fd) == 0;
  int e = errno;
  if (fclose(f) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    unlink(tmp);
    free(tmp);
    fprintf(stderr, "cofi %s: writing parameters %s: %s\n", cmd, path, strerror(e));
    return CLI_EXIT_IO;
  }
  free(tmp);
  return CLI_EXIT_OK;
}

/* Floats with 6 significant digits: a float holds about 7, so %.9g shows
 * the binary noise of a decimal (0.0199999996); %.6g gives back the
 * decimal that was meant (0.02), and reading it gives the same float for
 * any value tune writes (its grid values have at most 3 digits). */
static void params_print(FILE *f, const cofi_params *p) {
  fprintf(f, "# cofi training parameters\n");
  if (p->model != COFI_MODEL_ALS) {
    /* EASE and item-kNN: the model, its parameters and the transform */
    fprintf(f, "model = %s\n", cofi_model_kind_name((int)p->model));
    if (p->model == COFI_MODEL_EASE) fprintf(f, "lambda = %.6g\n", p->lambda);
    if (p->model == COFI_MODEL_ITEMKNN)
      fprintf(f, "knn_weighting = %s\nneighbors = %u\n",
              cofi_knn_weighting_name((int)p->knn_weighting), p->neighbors);
    if (p->recency > 0) fprintf(f, "recency = %.6g\n", p->recency);
    fprintf(f, "confidence = %s\n", cofi_confidence_name((int)p->confidence));
    if (p->confidence == COFI_CONFIDENCE_LOG) fprintf(f, "epsilon = %.6g\n", p->epsilon);
    if (p->confidence == COFI_CONFIDENCE_BM25 ||
        (p->model == COFI_MODEL_ITEMKNN && p->knn_weighting == COFI_KNN_BM25))
      fprintf(f, "bm25_k1 = %.6g\nbm25_b = %.6g\n", p->bm25_k1, p->bm25_b);
    return;
  }
  fprintf(f, "factors = %u\nregularization = %.6g\nalpha = %.6g\niterations = %u\n",
          p->factors, p->regularization, p->alpha, p->iterations);
  if (p->recency > 0) fprintf(f, "recency = %.6g\n", p->recency);
  fprintf(f, "solver = %s\ncg_steps = %u\n",
          p->solver == COFI_SOLVER_CHOLESKY ? "cholesky" : "cg", p->cg_steps);
  fprintf(f, "reg_exponent = %.6g\nunobserved_weight = %.6g\n", p->reg_exponent,
          p->unobserved_weight);
  fprintf(f, "confidence = %s\n", cofi_confidence_name((int)p->confidence));
  if (p->confidence == COFI_CONFIDENCE_LOG) fprintf(f, "epsilon = %.6g\n", p->epsilon);
  if (p->confidence == COFI_CONFIDENCE_BM25)
    fprintf(f, "bm25_k1 = %.6g\nbm25_b = %.6g\n", p->bm25_k1, p->bm25_b);
}

/* ---- progress ---------------------------------------------------------- */

int cli_progress_print(const cofi_progress *p, void *ctx) {
  cli_progress *c = ctx;
  if (c->quiet) return 0;
  double eta = p->elapsed / p->iteration * (p->iterations - p->iteration);
  char loss[48] = "";
  if (!isnan(p->loss)) snprintf(loss, sizeof loss, "  loss %.6g", p->loss);
  if (c->tty) {
    int width = 30, done = (int)((double)width * p->iteration / p->iterations);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < done ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %u/%u  %.2fs/it  ETA %.1fs%s\033[K", bar, p->iteration,
            p->iterations, p->seconds, eta, loss);
    if (p->iteration == p->iterations) fputc('\n', stderr);
  } else {
    fprintf(stderr, "iteration %u/%u  %.3fs  elapsed %.2fs  ETA %.1fs%s\n", p->iteration,
            p->iterations, p->seconds, p->elapsed, eta, loss);
  }
  return 0;
}

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool cli_k_option(cli_args *a, uint32_t *k) {
  const char *v;
  if (!cli_opt(a, "-k", &v) && !cli_opt(a, "--k", &v)) return false;
  if (!a->failed && !cli_parse_u32(a->cmd, "-k", v, 1, 1000000, k)) a->failed = true;
  return true;
}

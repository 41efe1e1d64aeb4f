/*
 * cmd_recommend.c — `cofi recommend MODEL --user ID | --liked A,B,C`: top-k
 * items for a known user (training items filtered unless --no-filter), or
 * for a cold-start user folded in from the items they liked.
 * IDs in lists are comma-separated; write "\," for a comma inside an ID.
 */
#include "cli.h"

#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t model_n_users(const cofi_model *m) {
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  return info.n_users;
}

typedef struct id_list {
  const cofi_model *m;
  uint32_t *known;   /* [n_known] item indices, duplicates dropped */
  size_t n_known, cap;
  char **unknown;    /* IDs not in the model */
  size_t n_unknown;
} id_list;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
  return q;
}

static bool add_id(const char *s, size_t len, void *ctx) {
  id_list *l = ctx;
  if (len == 0) return true;
  int64_t idx = cofi_model_find_item(l->m, s, len);
  if (idx < 0) {
    l->unknown = xrealloc(l->unknown, (l->n_unknown + 1) * sizeof *l->unknown);
    char *c = xrealloc(NULL, len + 1);
    memcpy(c, s, len);
    c[len] = 0;
    l->unknown[l->n_unknown++] = c;
    return true;
  }
  for (size_t i = 0; i < l->n_known; i++)
    if (l->known[i] == (uint32_t)idx) return true;
  if (l->n_known == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 16;
    l->known = xrealloc(l->known, l->cap * sizeof *l->known);
  }
  l->known[l->n_known++] = (uint32_t)idx;
  return true;
}

static void free_list(id_list *l) {
  for (size_t i = 0; i < l->n_unknown; i++) free(l->unknown[i]);
  free(l->unknown);
  free(l->known);
}

/* ---- --all-users / --users FILE: batch export ------------------------- */

/* A CSV field: quoted (with "" for ") when it holds a delimiter, a quote,
 * a line end or surrounding spaces, as cofi's reader expects. */
static void csv_field(FILE *f, const char *s, size_t len) {
  bool quote = len > 0 && (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t');
  for (size_t i = 0; i < len && !quote; i++)
    quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
  if (!quote) {
    fwrite(s, 1, len, f);
    return;
  }
  fputc('"', f);
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '"') fputc('"', f);
    fputc(s[i], f);
  }
  fputc('"', f);
}

typedef struct batch_opts {
  uint32_t k, threads;
  bool filter_seen, jsonl, header;
} batch_opts;

/* Reads user IDs, one per line (CR LF accepted, blank lines skipped), into
 * indices; unknown IDs are counted and named (the first few) on stderr. */
static int read_users(const cofi_model *m, const char *path, uint32_t **out, size_t *n_out) {
  FILE *f = cli_is_stdio(path) ? stdin : fopen(path, "r");
  if (!f) {
    fprintf(stderr, "cofi recommend: --users ");
    cli_text_cstring(stderr, path);
    fprintf(stderr, ": %s\n", strerror(errno));
    return CLI_EXIT_IO;
  }
  char *line = NULL;
  size_t cap = 0, n = 0, ucap = 0, unknown = 0;
  uint32_t *users = NULL;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if (len == 0) continue;
    int64_t u = cofi_model_find_user(m, line, (size_t)len);
    if (u < 0) {
      if (unknown++ < 5) {
        fputs("cofi recommend: --users: unknown user '", stderr);
        cli_text(stderr, line, (size_t)len);
        fputs("' skipped\n", stderr);
      }
      continue;
    }
    if (n == ucap) {
      ucap = ucap ? 2 * ucap : 1024;
      users = xrealloc(users, ucap * sizeof *users);
    }
    users[n++] = (uint32_t)u;
  }
  bool err = ferror(f);
  free(line);
  if (f != stdin) fclose(f);
  if (err) {
    free(users);
    fprintf(stderr, "cofi recommend: reading --users: %s\n", strerror(errno));
    return CLI_EXIT_IO;
  }
  if (unknown > 5) fprintf(stderr, "cofi recommend: --users: %zu unknown users skipped\n", unknown);
  *out = users;
  *n_out = n;
  return CLI_EXIT_OK;
}

/* One user's recommendations: CSV lines or one JSON Lines object. */
static void write_user(FILE *f, const cofi_model *m, uint32_t user, const cofi_scored *r,
                       uint32_t n, bool jsonl) {
  size_t ulen;
  const char *uid = cofi_model_user_id(m, user, &ulen);
  if (jsonl) {
    fputs("{\"user_id\": ", f);
    cli_json_string(f, uid, ulen);
    fputs(", \"recommendations\": [", f);
  }
  for (uint32_t j = 0; j < n; j++) {
    size_t ilen;
    const char *iid = cofi_model_item_id(m, r[j].index, &ilen);
    if (jsonl) {
      fputs(j ? ", {\"item_id\": " : "{\"item_id\": ", f);
      cli_json_string(f, iid, ilen);
      fputs(", \"score\": ", f);
      cli_json_number(f, r[j].score);
      fputc('}', f);
    } else {
      csv_field(f, uid, ulen);
      fputc(',', f);
      csv_field(f, iid, ilen);
      fprintf(f, ",%.9g,%u\n", (double)r[j].score, j + 1);
    }
  }
  if (jsonl) fputs("]}\n", f);
}

/* Formats users [0, cn) of a chunk on all threads, each thread a
 * contiguous slice into a memory stream of its own, then writes the slices
 * in order: the text is the same as one thread's, and formatting (about a
 * fifth of the CPU time of an export at k = 10) no longer runs on one core
 * while the others wait. */
static void write_chunk(FILE *f, const cofi_model *m, const uint32_t *idx, size_t cn,
                        const cofi_scored *out, const uint32_t *n_out, uint32_t keep,
                        const batch_opts *o) {
  enum { MAX_SLICES = 256 };
  char *text[MAX_SLICES] = {0};
  size_t len[MAX_SLICES] = {0};
  int slices = o->threads ? (int)o->threads : omp_get_max_threads();
  if (slices > MAX_SLICES) slices = MAX_SLICES;
  if ((size_t)slices > cn) slices = cn ? (int)cn : 1;
#pragma omp parallel for num_threads(slices) schedule(static, 1)
  for (int t = 0; t < slices; t++) {
    FILE *mf = open_memstream(&text[t], &len[t]);
    if (!mf) continue; /* written below from this thread's slice directly */
    for (size_t i = cn * t / slices; i < cn * (t + 1) / slices; i++)
      write_user(mf, m, idx[i], out + i * keep, n_out[i], o->jsonl);
    if (fclose(mf) != 0) {
      free(text[t]);
      text[t] = NULL;
    }
  }
  for (int t = 0; t < slices; t++) {
    if (text[t]) fwrite(text[t], 1, len[t], f);
    else
      for (size_t i = cn * t / slices; i < cn * (t + 1) / slices; i++)
        write_user(f, m, idx[i], out + i * keep, n_out[i], o->jsonl);
    free(text[t]);
  }
}

/* Writes every chosen user's top k: CSV user_id,item_id,score,rank (one
 * line per recommendation; rank 1 is the best) or JSON Lines (one object
 * per user). Users go through cofi_recommend_users in chunks, so memory
 * stays bounded and output streams. */
static int write_batch(const cofi_model *m, const uint32_t *users, size_t n_users,
                       const batch_opts *o, FILE *f) {
  enum { CHUNK = 16384 };
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  uint32_t keep = o->k < info.n_items ? o->k : info.n_items;
  cofi_scored *out = malloc((size_t)CHUNK * keep * sizeof *out);
  uint32_t *n_out = malloc(CHUNK * sizeof *n_out);
  uint32_t *idx = malloc(CHUNK * sizeof *idx);
  if (!out || !n_out || !idx) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
  if (o->header && !o->jsonl) fputs("user_id,item_id,score,rank\n", f);
  int rc = COFI_OK;
  for (size_t c0 = 0; c0 < n_users && rc == COFI_OK; c0 += CHUNK) {
    size_t cn = n_users - c0 < CHUNK ? n_users - c0 : CHUNK;
    for (size_t i = 0; i < cn; i++) idx[i] = users ? users[c0 + i] : (uint32_t)(c0 + i);
    rc = cofi_recommend_users(m, idx, cn, keep, o->filter_seen, o->threads, out, n_out);
    if (rc == COFI_OK) write_chunk(f, m, idx, cn, out, n_out, keep, o);
  }
  free(out);
  free(n_out);
  free(idx);
  if (rc) {
    fprintf(stderr, "cofi recommend: %s\n", cofi_error_message(rc));
    return cli_exit_for(rc);
  }
  return CLI_EXIT_OK;
}

/* -o FILE is written to a temporary file beside it and renamed: a failed
 * run leaves no half-written export under the final name. */
static int batch_export(const cofi_model *m, const uint32_t *users, size_t n_users,
                        const batch_opts *o, const char *out_path) {
  if (!out_path || cli_is_stdio(out_path)) {
    int rc = write_batch(m, users, n_users, o, stdout);
    if (!rc && (fflush(stdout) != 0 || ferror(stdout))) {
      fprintf(stderr, "cofi recommend: writing to standard output: %s\n", strerror(errno));
      rc = CLI_EXIT_IO;
    }
    return rc;
  }
  size_t plen = strlen(out_path);
  char *tmp = xrealloc(NULL, plen + 16);
  memcpy(tmp, out_path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    fprintf(stderr, "cofi recommend: -o %s: cannot create %s: %s\n", out_path, tmp, strerror(errno));
    if (fd >= 0) { close(fd); unlink(tmp); }
    free(tmp);
    return CLI_EXIT_IO;
  }
  (void)fchmod(fd, 0644);
  int rc = write_batch(m, users, n_users, o, f);
  bool ok = fflush(f) == 0 && !ferror(f);
  int e = errno;
  if (fclose(f) != 0 && ok) { ok = false; e = errno; }
  if (!rc && ok && rename(tmp, out_path) != 0) { ok = false; e = errno; }
  if (rc || !ok) {
    unlink(tmp);
    if (!rc) {
      fprintf(stderr, "cofi recommend: writing %s: %s\n", out_path, strerror(e));
      rc = CLI_EXIT_IO;
    }
  }
  free(tmp);
  return rc;
}

static void usage(void) {
  puts("usage: cofi recommend MODEL --user ID [-k 10] [--no-filter] [--exclude ID,...] [--explain] [--json]\n"
       "       cofi recommend MODEL --liked ID,ID,... [-k 10] [--exclude ID,...] [--explain] [--json]\n"
       "       cofi recommend MODEL --all-users | --users FILE [-k 10] [-o FILE] [--jsonl]\n"
       "                      [--no-csv-header] [--no-filter] [--threads N]\n"
       "\n"
       "--all-users: every user of the model; --users FILE: the users listed, one ID per\n"
       "        line (unknown IDs are reported and skipped). Written to -o FILE (atomically;\n"
       "        default standard output) as CSV user_id,item_id,score,rank (a header line,\n"
       "        then one line per recommendation, rank 1 the best), or --jsonl: one JSON\n"
       "        object per user {\"user_id\", \"recommendations\": [{\"item_id\", \"score\"}]}.\n"
       "        Users are scored in blocks by matrix products on all cores (--threads).\n"
       "--user: a user seen in training; their training items are not recommended\n"
       "        (--no-filter keeps them). --liked: cold start, a user vector folded in\n"
       "        from these items; they are never recommended back; unknown IDs are\n"
       "        reported and skipped; oldest first (a model with --recency weighs the\n"
       "        last ones most). -k larger than the catalog returns what exists.\n"
       "        In ID lists, write \\, for a comma that belongs to an ID.\n"
       "--explain: with each recommendation, the 3 history items that contribute\n"
       "        most to its score (\"because you liked ...\"), from the exact split of\n"
       "        the score over the user's history (JSON: \"because\").");
}

int cmd_recommend(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "recommend", argc, argv);
  const char *path = NULL, *user = NULL, *liked = NULL, *exclude = NULL, *v;
  const char *users_path = NULL, *out_path = NULL;
  uint32_t k = 10, threads = 0;
  bool json = false, no_filter = false, explain = false, all_users = false, jsonl = false;
  bool no_csv_header = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) { usage(); return CLI_EXIT_OK; }
    if (cli_opt(&a, "--user", &v)) user = v;
    else if (cli_flag(&a, "--all-users")) all_users = true;
    else if (cli_opt(&a, "--users", &v)) users_path = v;
    else if (cli_opt(&a, "-o", &v) || cli_opt(&a, "--output", &v)) out_path = v;
    else if (cli_flag(&a, "--jsonl")) jsonl = true;
    else if (cli_flag(&a, "--no-csv-header")) no_csv_header = true;
    else if (cli_opt(&a, "--threads", &v)) {
      if (!a.failed && !cli_parse_u32("recommend", "--threads", v, 0, 4096, &threads)) a.failed = true;
    }
    else if (cli_opt(&a, "--liked", &v)) liked = v;
    else if (cli_opt(&a, "--exclude", &v)) exclude = v;
    else if (cli_k_option(&a, &k)) continue;
    else if (cli_flag(&a, "--json")) json = true;
    else if (cli_flag(&a, "--no-filter")) no_filter = true;
    else if (cli_flag(&a, "--explain")) explain = true;
    else if (!path && cli_positional(&a, &v)) path = v;
    else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (!path) return cli_usage_error("recommend", "missing the MODEL file");
  if ((user != NULL) + (liked != NULL) + all_users + (users_path != NULL) != 1)
    return cli_usage_error("recommend", "give exactly one of --user ID, --liked ID,ID,..., "
                           "--all-users or --users FILE");
  bool batch = all_users || users_path;
  if (batch && (exclude || explain || json))
    return cli_usage_error("recommend", "--exclude, --explain and --json are for one user; "
                           "--all-users and --users write CSV or --jsonl");
  if (!batch && (out_path || jsonl || no_csv_header || threads))
    return cli_usage_error("recommend", "-o, --jsonl, --no-csv-header and --threads go with "
                           "--all-users or --users FILE");
  if (batch) {
    const char *inputs[] = {path, users_path};
    int crc = cli_check_inputs("recommend", inputs, 2);
    if (!crc && out_path && !cli_is_stdio(out_path))
      crc = cli_check_output("recommend", "-o", out_path, inputs, 2);
    if (crc) return crc;
    cofi_model *bm;
    crc = cli_open_model("recommend", path, &bm);
    if (crc) return crc;
    uint32_t *users = NULL;
    size_t n_users = 0;
    if (users_path) crc = read_users(bm, users_path, &users, &n_users);
    else n_users = model_n_users(bm);
    if (!crc) {
      batch_opts bo = {.k = k, .threads = threads, .filter_seen = !no_filter, .jsonl = jsonl,
                       .header = !no_csv_header};
      crc = batch_export(bm, users, n_users, &bo, out_path);
    }
    free(users);
    cofi_model_close(bm);
    return crc;
  }
  if (!user == !liked) return cli_usage_error("recommend", "give exactly one of --user ID or --liked ID,ID,...");
  if (liked && no_filter) return cli_usage_error("recommend", "--no-filter applies to --user only");

  cofi_model *m;
  int rc = cli_open_model("recommend", path, &m);
  if (rc) return rc;
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  id_list ex = {.m = m}, lk = {.m = m};
  if (exclude) cli_split_list(exclude, add_id, &ex);
  cofi_workspace *ws = cofi_workspace_new();
  cofi_scored *out = malloc(sizeof *out * (k < info.n_items ? k : info.n_items));
  if (!ws || !out) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
  cofi_recommend_options opt = cofi_recommend_options_default();
  opt.k = k;
  opt.filter_seen = !no_filter;
  opt.exclude = ex.known;
  opt.n_exclude = ex.n_known;
  size_t n = 0;
  int status = CLI_EXIT_OK;
  cli_because *why = NULL;
  if (user) {
    int64_t u = cofi_model_find_user(m, user, strlen(user));
    if (u < 0) {
      fputs("cofi recommend: unknown user '", stderr);
      cli_text_cstring(stderr, user);
      fputs("': not in the training data; for a user without history, use --liked ID,ID,... "
            "(cold start)\n", stderr);
      status = CLI_EXIT_FAIL;
      goto done;
    }
    rc = cofi_recommend_user(m, ws, (uint32_t)u, &opt, out, &n);
  } else {
    cli_split_list(liked, add_id, &lk);
    if (lk.n_known == 0) {
      fprintf(stderr, "cofi recommend: none of the --liked items is in the model (%zu unknown); "
              "give at least one item ID seen in training\n", lk.n_unknown);
      status = CLI_EXIT_FAIL;
      goto done;
    }
    rc = cofi_recommend_history(m, ws, lk.known, NULL, lk.n_known, k, &opt, out, &n);
  }
  if (rc) {
    fprintf(stderr, "cofi recommend: %s\n", cofi_error_message(rc));
    status = cli_exit_for(rc);
    goto done;
  }
  if (explain && cofi_model_kind_of(m) != COFI_MODEL_ALS) {
    fprintf(stderr, "cofi recommend: --explain: %s\n", cofi_model_kind_error(m, "explaining"));
    status = CLI_EXIT_USAGE;
    goto done;
  }
  if (explain && n) {
    why = calloc(n, sizeof *why);
    if (!why) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
    cofi_explainer *e = NULL;
    rc = user ? cofi_explainer_new_user(m, (uint32_t)cofi_model_find_user(m, user, strlen(user)), &e)
              : cofi_explainer_new_history(m, lk.known, NULL, lk.n_known, &e);
    for (size_t i = 0; i < n && rc == COFI_OK; i++)
      rc = cofi_explain(e, out[i].index, CLI_BECAUSE, why[i].top, &why[i].n, NULL);
    cofi_explainer_free(e);
    if (rc) {
      fprintf(stderr, "cofi recommend: cannot explain: %s\n", cofi_error_message(rc));
      status = cli_exit_for(rc);
      goto done;
    }
  }
  if (json) {
    printf("{");
    if (user) {
      printf("\"user_id\": ");
      cli_json_string(stdout, user, strlen(user));
    } else {
      printf("\"liked\": [");
      for (size_t i = 0; i < lk.n_known; i++) {
        size_t len;
        const char *id = cofi_model_item_id(m, lk.known[i], &len);
        if (i) printf(", ");
        cli_json_string(stdout, id, len);
      }
      printf("], \"unknown\": [");
      for (size_t i = 0; i < lk.n_unknown; i++) {
        if (i) printf(", ");
        cli_json_string(stdout, lk.unknown[i], strlen(lk.unknown[i]));
      }
      printf("]");
    }
    printf(", \"recommendations\": ");
    cli_print_scored_json(m, out, n, true, why);
    printf("}\n");
  } else {
    if (user) {
      printf("recommendations for user ");
      cli_text_cstring(stdout, user);
      putchar('\n');
    } else {
      printf("recommendations for a user who liked %zu item%s\n", lk.n_known, lk.n_known == 1 ? "" : "s");
    }
    for (size_t i = 0; i < lk.n_unknown; i++) {
      printf("(unknown item skipped: ");
      cli_text_cstring(stdout, lk.unknown[i]);
      printf(")\n");
    }
    for (size_t i = 0; i < ex.n_unknown; i++) {
      printf("(unknown --exclude item ignored: ");
      cli_text_cstring(stdout, ex.unknown[i]);
      printf(")\n");
    }
    cli_print_scored_table(m, out, n, true, why);
  }
done:
  free(why);
  free_list(&ex);
  free_list(&lk);
  free(out);
  cofi_workspace_free(ws);
  cofi_model_close(m);
  return status;
}

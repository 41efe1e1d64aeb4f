/*
 * cmd_recommend.c — `cofi recommend MODEL --user ID | --liked A,B,C`: top-k
 * items for a known user (training items filtered unless --no-filter), or
 * for a cold-start user folded in from the items they liked.
 * IDs in lists are comma-separated; write "\," for a comma inside an ID.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

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

static void usage(void) {
  puts("usage: cofi recommend MODEL --user ID [-k 10] [--no-filter] [--exclude ID,...] [--explain] [--json]\n"
       "       cofi recommend MODEL --liked ID,ID,... [-k 10] [--exclude ID,...] [--explain] [--json]\n"
       "\n"
       "--user: a user seen in training; their training items are not recommended\n"
       "        (--no-filter keeps them). --liked: cold start, a user vector folded in\n"
       "        from these items; they are never recommended back; unknown IDs are\n"
       "        reported and skipped. -k larger than the catalog returns what exists.\n"
       "        In ID lists, write \\, for a comma that belongs to an ID.\n"
       "--explain: with each recommendation, the 3 history items that contribute\n"
       "        most to its score (\"because you liked ...\"), from the exact split of\n"
       "        the score over the user's history (JSON: \"because\").");
}

int cmd_recommend(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "recommend", argc, argv);
  const char *path = NULL, *user = NULL, *liked = NULL, *exclude = NULL, *v;
  uint32_t k = 10;
  bool json = false, no_filter = false, explain = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) { usage(); return CLI_EXIT_OK; }
    if (cli_opt(&a, "--user", &v)) user = v;
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
  float *vec = malloc(sizeof *vec * info.factors);
  if (!ws || !out || !vec) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
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
    rc = cofi_fold_in(m, ws, lk.known, NULL, lk.n_known, vec);
    if (!rc) rc = cofi_recommend_vector(m, ws, vec, lk.known, lk.n_known, &opt, out, &n);
  }
  if (rc) {
    fprintf(stderr, "cofi recommend: %s\n", cofi_error_message(rc));
    status = cli_exit_for(rc);
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
  free(vec);
  cofi_workspace_free(ws);
  cofi_model_close(m);
  return status;
}

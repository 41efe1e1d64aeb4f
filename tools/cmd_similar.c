/*
 * cmd_similar.c — `cofi similar MODEL --item ID | --user ID`: nearest
 * neighbours by cosine similarity of the factor vectors.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

int cmd_similar(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "similar", argc, argv);
  const char *path = NULL, *item = NULL, *user = NULL, *v;
  uint32_t k = 10;
  bool json = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      puts("usage: cofi similar MODEL --item ID | --user ID [-k 10] [--json]\n"
           "cosine similarity of factor vectors; the query itself is excluded");
      return CLI_EXIT_OK;
    }
    if (cli_opt(&a, "--item", &v)) item = v;
    else if (cli_opt(&a, "--user", &v)) user = v;
    else if (cli_k_option(&a, &k)) continue;
    else if (cli_flag(&a, "--json")) json = true;
    else if (!path && cli_positional(&a, &v)) path = v;
    else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (!path) return cli_usage_error("similar", "missing the MODEL file");
  if (!item == !user) return cli_usage_error("similar", "give exactly one of --item ID or --user ID");
  cofi_model *m;
  int rc = cli_open_model("similar", path, &m);
  if (rc) return rc;
  const char *id = item ? item : user;
  int64_t q = item ? cofi_model_find_item(m, id, strlen(id)) : cofi_model_find_user(m, id, strlen(id));
  int status = CLI_EXIT_OK;
  cofi_workspace *ws = cofi_workspace_new();
  cofi_scored *out = malloc(sizeof *out * k);
  if (!ws || !out) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
  if (q < 0) {
    fprintf(stderr, "cofi similar: unknown %s '", item ? "item" : "user");
    cli_text_cstring(stderr, id);
    fprintf(stderr, "': not in the training data%s\n",
            item ? "" : "; for a new user, use cofi recommend --liked");
    status = CLI_EXIT_FAIL;
    goto done;
  }
  size_t n = 0;
  if (!item && cofi_model_kind_of(m) != COFI_MODEL_ALS) {
    fprintf(stderr, "cofi similar: --user: %s\n", cofi_model_kind_error(m, "finding similar users"));
    status = CLI_EXIT_USAGE;
    goto done;
  }
  rc = item ? cofi_similar_items(m, ws, (uint32_t)q, k, out, &n)
            : cofi_similar_users(m, ws, (uint32_t)q, k, out, &n);
  if (rc) {
    fprintf(stderr, "cofi similar: %s\n", cofi_error_message(rc));
    status = cli_exit_for(rc);
    goto done;
  }
  if (json) {
    printf("{\"%s\": ", item ? "item_id" : "user_id");
    cli_json_string(stdout, id, strlen(id));
    printf(", \"similar\": ");
    cli_print_scored_json(m, out, n, item != NULL, NULL);
    printf("}\n");
  } else {
    printf("%s similar to %s ", item ? "items" : "users", item ? "item" : "user");
    cli_text_cstring(stdout, id);
    putchar('\n');
    cli_print_scored_table(m, out, n, item != NULL, NULL);
  }
done:
  free(out);
  cofi_workspace_free(ws);
  cofi_model_close(m);
  return status;
}

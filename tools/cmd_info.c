/*
 * cmd_info.c — `cofi info MODEL [--json]`: what a model file holds.
 */
#include "cli.h"

#include <string.h>
#include <time.h>

static void print_json(const cofi_model_info *i, const char *path) {
  char created[32];
  time_t t = (time_t)i->created_unix;
  struct tm tm;
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
  printf("{\"path\": ");
  cli_json_string(stdout, path, strlen(path));
  printf(", \"n_users\": %u, \"n_items\": %u, \"factors\": %u, \"nnz\": %llu,\n", i->n_users,
         i->n_items, i->factors, (unsigned long long)i->nnz);
  printf(" \"params\": {\"factors\": %u, \"regularization\": %.9g, \"alpha\": %.9g, "
         "\"iterations\": %u, \"seed\": %llu, \"solver\": \"%s\", \"cg_steps\": %u, "
         "\"reg_exponent\": %.9g, \"unobserved_weight\": %.9g},\n",
         i->params.factors, i->params.regularization, i->params.alpha, i->params.iterations,
         (unsigned long long)i->params.seed,
         i->params.solver == COFI_SOLVER_CHOLESKY ? "cholesky" : "cg", i->params.cg_steps,
         i->params.reg_exponent, i->params.unobserved_weight);
  printf(" \"file_bytes\": %llu, \"created\": \"%s\", \"created_unix\": %llu, "
         "\"checksum\": \"%016llx\", \"data_fingerprint\": \"%016llx\",\n",
         (unsigned long long)i->file_bytes, created, (unsigned long long)i->created_unix,
         (unsigned long long)i->checksum, (unsigned long long)i->data_fingerprint);
  printf(" \"train_seconds\": %.3f, \"train_loss\": %.9g, \"item_fields\": %u, "
         "\"cofi_version\": ",
         i->train_seconds, i->train_loss, i->n_item_fields);
  cli_json_string(stdout, i->cofi_version, strlen(i->cofi_version));
  printf(", \"kernels\": \"%s\"}\n", cofi_kernel_set());
}

static void print_text(const cofi_model_info *i, const char *path) {
  char created[32];
  time_t t = (time_t)i->created_unix;
  struct tm tm;
  strftime(created, sizeof created, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
  printf("model          %s\n", path);
  printf("users          %u\nitems          %u\nfactors        %u\n", i->n_users, i->n_items,
         i->factors);
  printf("training pairs %llu\n", (unsigned long long)i->nnz);
  printf("parameters     regularization %g, alpha %g, iterations %u, seed %llu, solver %s",
         i->params.regularization, i->params.alpha, i->params.iterations,
         (unsigned long long)i->params.seed,
         i->params.solver == COFI_SOLVER_CHOLESKY ? "cholesky" : "cg");
  if (i->params.solver == COFI_SOLVER_CG) printf(" (%u steps)", i->params.cg_steps);
  if (i->params.reg_exponent != 0 || i->params.unobserved_weight != 1)
    printf(", reg_exponent %g, unobserved_weight %g", i->params.reg_exponent,
           i->params.unobserved_weight);
  printf("\ntraining       %.2fs, final loss %.6g\n", i->train_seconds, i->train_loss);
  printf("item metadata  %u field%s\n", i->n_item_fields, i->n_item_fields == 1 ? "" : "s");
  printf("file size      %llu bytes (%.1f MiB)\n", (unsigned long long)i->file_bytes,
         (double)i->file_bytes / (1 << 20));
  printf("created        %s by cofi %s\n", created, i->cofi_version);
  printf("checksum       %016llx\n", (unsigned long long)i->checksum);
  printf("kernels        %s (this process: the set this CPU runs, or COFI_KERNELS)\n",
         cofi_kernel_set());
}

int cmd_info(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "info", argc, argv);
  const char *path = NULL, *v;
  bool json = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      puts("usage: cofi info MODEL [--json]");
      return CLI_EXIT_OK;
    }
    if (cli_flag(&a, "--json")) json = true;
    else if (!path && cli_positional(&a, &v)) path = v;
    else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (!path) return cli_usage_error("info", "missing the MODEL file");
  cofi_model *m;
  cofi_diag d = {0};
  int rc = cofi_model_open(path, &m, &d);
  if (rc) return cli_diag_error("info", "opening model", rc, &d);
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  cofi_model_close(m);
  if (json) print_json(&info, path);
  else print_text(&info, path);
  return CLI_EXIT_OK;
}

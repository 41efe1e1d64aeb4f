/*
 * cmd_train.c — `cofi train DATA -o MODEL`: read a log, train ALS, save the
 * model file. Parameters are checked before any data is read.
 */
#include "cli.h"

#include <string.h>
#include <unistd.h>

static void usage(void) {
  puts("usage: cofi train DATA -o MODEL [options]\n"
       "       cofi train --store URL -o MODEL [options]   (from a store: sqlite:PATH, postgresql://...)\n"
       "\n"
       "data:     --format csv|movielens  --user-col C  --item-col C  --value-col C\n"
       "          --event-col C  --time-col C  --delimiter X|tab\n"
       "          --event-weights watch=1,like=2,complete=3  --min-value V\n"
       "          --items FILE (item metadata, e.g. titles)  --items-id-col C\n"
       "          (--event-weights replaces the default table watch=1,like=2,complete=3:\n"
       "          list every event of the log)\n"
       "training: --factors 64  --regularization 0.01  --alpha 1  --iterations 15\n"
       "          --seed 42  --solver cg|cholesky  --cg-steps 3  --threads 0 (all cores)\n"
       "          --reg-exponent 0  --unobserved-weight 1 (iALS, Rendle et al. 2022)\n"
       "          --confidence linear|log|bm25: confidence 1 + alpha * w of the summed\n"
       "          value r: linear w = r; log w = log(1 + r/epsilon) (--epsilon 1);\n"
       "          bm25 as implicit's bm25_weight (--bm25-k1 100 --bm25-b 0.8)\n"
       "          --params FILE (as written by cofi tune)\n"
       "output:   --quiet (no progress)  --loss (report the objective each iteration)\n"
       "          --json (a summary of the trained model on stdout)\n"
       "\n"
       "DATA, --items and --params can be - (standard input; one of them). MODEL must be\n"
       "a file path: it is written atomically (temporary file, fsync, rename), never\n"
       "over an input and never over something that is not a regular file.");
}

int cmd_train(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "train", argc, argv);
  cli_data_opts data;
  cli_data_opts_init(&data);
  cofi_params p = cofi_params_default();
  const char *in = NULL, *out = NULL, *store = NULL, *v;
  bool quiet = false, json = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) { usage(); return CLI_EXIT_OK; }
    if (cli_opt(&a, "-o", &v) || cli_opt(&a, "--output", &v)) out = v;
    else if (cli_opt(&a, "--store", &v)) store = v;
    else if (cli_flag(&a, "--quiet") || cli_flag(&a, "-q")) quiet = true;
    else if (cli_flag(&a, "--loss")) p.compute_loss = 1;
    else if (cli_flag(&a, "--json")) json = true;
    else if (cli_data_option(&a, &data) || cli_train_option(&a, &p)) continue;
    else if (!in && cli_positional(&a, &v)) in = v;
    else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (in && store) return cli_usage_error("train", "give either DATA or --store URL, not both");
  if (!in && !store) return cli_usage_error("train", "missing the DATA file (see cofi train --help)");
  if (!out) return cli_usage_error("train", "missing -o MODEL (where to write the model)");
  cofi_diag d = {0};
  if (cofi_params_check(&p, &d)) return cli_usage_error("train", "%s", d.message);
  if (cli_is_stdio(out))
    return cli_usage_error("train", "-o -: the model is a binary file written atomically "
                           "(temporary file, fsync, rename); give a file path");
  const char *inputs[] = {in, data.items_path, a.params_path};
  int rc = cli_check_inputs("train", inputs, 3);
  if (!rc) rc = cli_check_output("train", "-o", out, inputs, 3);
  if (rc) return rc;

  double t0 = cli_now();
  cofi_dataset *ds = NULL;
  data.quiet = quiet;
  rc = store ? cli_load_store_dataset("train", store, &data, &ds)
             : cli_load_dataset("train", in, &data, &ds);
  if (rc) return rc;
  double t_read = cli_now() - t0;
  if (!quiet)
    fprintf(stderr, "read %zu interactions: %zu users, %zu items (%.2fs)\n",
            cofi_dataset_n_interactions(ds), cofi_dataset_n_users(ds), cofi_dataset_n_items(ds),
            t_read);
  size_t n_rows = cofi_dataset_n_interactions(ds);
  cli_progress prog = {.tty = isatty(2), .quiet = quiet};
  p.progress = cli_progress_print;
  p.progress_ctx = &prog;
  cofi_model *m = NULL;
  rc = cofi_train_release(ds, &p, &m, &d);
  cofi_dataset_free(ds);
  if (rc) return cli_diag_error("train", "training", rc, &d);
  char what[600];
  snprintf(what, sizeof what, "saving %s", out);
  rc = cofi_model_save(m, out, &d);
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  cofi_model_close(m);
  if (rc) return cli_diag_error("train", what, rc, &d);
  if (!quiet) {
    fprintf(stderr, "trained %u users x %u items, %u factors, %u iterations in %.2fs "
            "(loss %.6g); wrote ",
            info.n_users, info.n_items, info.factors, info.params.iterations,
            info.train_seconds, info.train_loss);
    cli_text_cstring(stderr, out);
    fputc('\n', stderr);
  }
  if (json) {
    /* The file's own checksums come from reading it back: what was
     * written, not what was meant to be. */
    cofi_model *back = NULL;
    rc = cli_open_model("train", out, &back);
    if (rc) return rc;
    cofi_model_info fi;
    cofi_model_get_info(back, &fi);
    cofi_model_close(back);
    printf("{\"model\": ");
    cli_json_cstring(stdout, out);
    printf(", \"data\": ");
    cli_json_cstring(stdout, store ? store : cli_display_name(in));
    printf(", \"users\": %u, \"items\": %u, \"interactions\": %zu, \"pairs\": %llu, "
           "\"params\": ", info.n_users, info.n_items, n_rows, (unsigned long long)info.nnz);
    cli_json_params(stdout, &info.params);
    printf(", \"loss\": ");
    cli_json_number(stdout, info.train_loss);
    printf(", \"seconds\": ");
    cli_json_number(stdout, info.train_seconds);
    printf(", \"read_seconds\": ");
    cli_json_number(stdout, t_read);
    printf(", \"file_bytes\": %llu, \"checksum\": \"%016llx\", \"content_checksum\": "
           "\"%016llx\"}\n", (unsigned long long)fi.file_bytes, (unsigned long long)fi.checksum,
           (unsigned long long)fi.content_checksum);
  }
  return CLI_EXIT_OK;
}

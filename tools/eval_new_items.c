/*
 * eval_new_items.c — `cofi eval DATA --protocol new-items`: how well items
 * with no interactions are ranked from their metadata (the ridge and mean
 * maps) against category popularity, the user's category shares and random,
 * mean and sample sd over seeds (src/eval/new_items.c has the protocol;
 * docs/evaluation.md, "New items from their metadata", the numbers).
 */
#include "eval_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: cofi eval DATA --protocol new-items --items FILE [options]\n"
    "\n"
    "Holds a share of the items out of training entirely (their metadata kept), trains ALS\n"
    "on the rest, gives the held-out items vectors from their metadata, and ranks only the\n"
    "held-out items for every trained user who has some: ridge map, mean map, category\n"
    "popularity, the user's category shares and random; Recall@K and NDCG@K, mean and sd\n"
    "over seeds.\n"
    "\n"
    "  --holdout-items F     share of the items held out, in (0, 1) (default 0.1)\n"
    "  --metadata-field NAME metadata column of categories split on '|' (default genres,\n"
    "                        else categories)\n"
    "  --ridge-lambda X      the ridge map's lambda (default 1)\n"
    "  --k K                 cutoff (default 10)\n"
    "  --seeds N             seeds 0..N-1, each its own split and training (default 5)\n"
    "  --json                JSON on stdout instead of the table\n"
    "  --quiet               no progress on stderr\n"
    "data options: --format csv|movielens, --min-value X, --items FILE, ... (as cofi train)\n"
    "training options: --factors, --regularization, --alpha, --iterations, ... (as cofi train)\n";

int eval_new_items_main(int argc, char **argv) {
  const char *cmd = "eval";
  cli_data_opts data;
  cli_data_opts_init(&data);
  cofi_params p = cofi_params_default();
  cofi_new_items_eval_options o = cofi_new_items_eval_options_default();
  uint32_t seeds = 5;
  bool json = false, quiet = false;
  const char *path = NULL, *v;
  cli_args a;
  cli_args_init(&a, cmd, argc, argv);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      fputs(usage_text, stdout);
      return CLI_EXIT_OK;
    }
    if (cli_data_option(&a, &data) || cli_train_option(&a, &p)) continue;
    if (cli_opt(&a, "--protocol", &v)) {
      if (!a.failed && strcmp(v, "new-items")) {
        cli_usage_error(cmd, "--protocol: this command runs new-items, got '%s'", v);
        a.failed = true;
      }
    } else if (cli_opt(&a, "--holdout-items", &v)) {
      if (!a.failed && !cli_parse_double(cmd, "--holdout-items", v, 0, 1, &o.holdout_items))
        a.failed = true;
      else if (!a.failed && !(o.holdout_items > 0 && o.holdout_items < 1)) {
        cli_usage_error(cmd, "--holdout-items: expected a share strictly between 0 and 1, got '%s'", v);
        a.failed = true;
      }
    } else if (cli_opt(&a, "--metadata-field", &v)) {
      o.field = v;
    } else if (cli_opt(&a, "--ridge-lambda", &v)) {
      if (!a.failed && !cli_parse_float(cmd, "--ridge-lambda", v, 1e-9f, 1e9f, &o.lambda)) a.failed = true;
    } else if (cli_opt(&a, "--k", &v)) {
      if (!a.failed && !cli_parse_u32(cmd, "--k", v, 1, COFI_EVAL_MAX_K, &o.k)) a.failed = true;
    } else if (cli_opt(&a, "--seeds", &v)) {
      if (!a.failed && !cli_parse_u32(cmd, "--seeds", v, 1, 1000, &seeds)) a.failed = true;
    } else if (cli_flag(&a, "--json")) {
      json = true;
    } else if (cli_flag(&a, "--quiet")) {
      quiet = true;
    } else if (!path && cli_positional(&a, &v)) {
      path = v;
    } else {
      return cli_unknown(&a);
    }
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (!path) return cli_usage_error(cmd, "no DATA file given (cofi eval DATA --protocol new-items --items FILE)");
  if (!data.items_path)
    return cli_usage_error(cmd, "--protocol new-items needs the items' metadata: --items FILE");
  data.quiet = quiet;
  cofi_dataset *ds = NULL;
  int rc = cli_load_dataset(cmd, path, &data, &ds);
  if (rc) return rc;
  cofi_new_items_eval_result *res = calloc(seeds, sizeof *res);
  if (!res) {
    cofi_dataset_free(ds);
    fprintf(stderr, "cofi eval: out of memory\n");
    return CLI_EXIT_NOMEM;
  }
  for (uint32_t s = 0; s < seeds; s++) {
    cofi_diag d = {0};
    o.seed = s;
    double t0 = cli_now();
    int lrc = cofi_evaluate_new_items(ds, &p, &o, &res[s], &d);
    if (lrc) {
      rc = cli_diag_error(cmd, "the new-items protocol", lrc, &d);
      goto done;
    }
    if (!quiet)
      fprintf(stderr, "seed %u: %llu held-out items, %llu test users, %.2fs: ridge recall@%u %.4f\n", s,
              (unsigned long long)res[s].n_heldout_items, (unsigned long long)res[s].n_users,
              cli_now() - t0, o.k, res[s].recall[COFI_NEW_ITEMS_RIDGE]);
  }
  double mean[COFI_NEW_ITEMS_METHODS][2], sd[COFI_NEW_ITEMS_METHODS][2], x[1000];
  for (int m = 0; m < COFI_NEW_ITEMS_METHODS; m++)
    for (int w = 0; w < 2; w++) {
      for (uint32_t s = 0; s < seeds; s++) x[s] = w ? res[s].ndcg[m] : res[s].recall[m];
      ev_mean_sd(x, seeds, &mean[m][w], &sd[m][w]);
    }
  if (json) {
    printf("{\"protocol\":\"new-items\",\"holdout_items\":%g,\"k\":%u,\"seeds\":%u,\"field\":", o.holdout_items,
           o.k, seeds);
    cli_json_cstring(stdout, o.field ? o.field : "genres");
    printf(",\"ridge_lambda\":%g,\"heldout_items\":%llu,\"test_users\":%llu,\"params\":", (double)o.lambda,
           (unsigned long long)res[0].n_heldout_items, (unsigned long long)res[0].n_users);
    cli_json_params(stdout, &p);
    printf(",\"methods\":{");
    for (int m = 0; m < COFI_NEW_ITEMS_METHODS; m++) {
      printf("%s\"%s\":{\"recall\":", m ? "," : "", cofi_new_items_method_name(m));
      cli_json_number(stdout, mean[m][0]);
      printf(",\"recall_sd\":");
      cli_json_number(stdout, sd[m][0]);
      printf(",\"ndcg\":");
      cli_json_number(stdout, mean[m][1]);
      printf(",\"ndcg_sd\":");
      cli_json_number(stdout, sd[m][1]);
      printf("}");
    }
    printf("}}\n");
  } else {
    printf("Protocol: new-items, %g of the items held out of training (seed 0: %llu items, %llu test "
           "users); candidates: the held-out items only\n",
           o.holdout_items, (unsigned long long)res[0].n_heldout_items, (unsigned long long)res[0].n_users);
    printf("%-22s %-22s %-22s\n", "Method", "Recall@K", "NDCG@K");
    for (int m = 0; m < COFI_NEW_ITEMS_METHODS; m++) {
      char r[64], n[64];
      snprintf(r, sizeof r, "%.4f +- %.4f", mean[m][0], isnan(sd[m][0]) ? 0 : sd[m][0]);
      snprintf(n, sizeof n, "%.4f +- %.4f", mean[m][1], isnan(sd[m][1]) ? 0 : sd[m][1]);
      printf("%-22s %-22s %-22s\n", cofi_new_items_method_name(m), r, n);
    }
    printf("K = %u, mean +- sample sd over %u seed%s (each its own split and training)\n", o.k, seeds,
           seeds == 1 ? "" : "s");
  }
  rc = CLI_EXIT_OK;
done:
  free(res);
  cofi_dataset_free(ds);
  return rc;
}

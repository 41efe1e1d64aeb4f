/*
 * cmd_export.c — `cofi export --store URL -o FILE`: the store's events as
 * a log that `cofi train FILE` reads with default options
 * (user_id,item_id,value[,timestamp], in insertion order), each value
 * weighted by its event type as training from the store would weigh it.
 * Importing the file again gives a store that trains the same model.
 */
#include "cli.h"

#include <string.h>

static void usage(void) {
  puts("usage: cofi export --store URL -o FILE [options]\n"
       "\n"
       "store:    --store sqlite:PATH | postgresql://USER@HOST:PORT/DB (libpq URI)\n"
       "values:   --event-weights watch=1,like=2,complete=3 (for typed events)\n"
       "          --min-value V  --format csv|movielens (movielens: kept values become 1)\n"
       "output:   -o, --output FILE (written atomically)  --quiet (no summary)");
}

int cmd_export(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "export", argc, argv);
  cli_data_opts data;
  cli_data_opts_init(&data);
  const char *out = NULL, *url = NULL, *v;
  bool quiet = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) { usage(); return CLI_EXIT_OK; }
    if (cli_opt(&a, "--store", &v)) url = v;
    else if (cli_opt(&a, "-o", &v) || cli_opt(&a, "--output", &v)) out = v;
    else if (cli_flag(&a, "--quiet") || cli_flag(&a, "-q")) quiet = true;
    else if (cli_data_option(&a, &data)) {
      if (data.items_path)
        return cli_usage_error("export", "--items is for import and train, not export");
      continue;
    } else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (!url) return cli_usage_error("export", "missing --store URL (sqlite:PATH or postgresql://...)");
  if (!out) return cli_usage_error("export", "missing -o FILE (where to write the events)");
  double t0 = cli_now();
  cofi_dataset *ds = NULL;
  int rc = cli_load_store_dataset("export", url, &data, &ds);
  if (rc) return rc;
  cofi_diag d = {0};
  char what[600];
  snprintf(what, sizeof what, "writing %s", out);
  rc = cofi_dataset_write_csv(ds, NULL, 0, out, &d);
  if (rc) rc = cli_diag_error("export", what, rc, &d);
  else if (!quiet)
    fprintf(stderr, "exported %zu events (%zu users, %zu items) to %s in %.2fs\n",
            cofi_dataset_n_interactions(ds), cofi_dataset_n_users(ds), cofi_dataset_n_items(ds),
            out, cli_now() - t0);
  cofi_dataset_free(ds);
  return rc;
}

/*
 * cmd_import.c — `cofi import DATA --store URL`: bulk load an interaction
 * log (and with --items its metadata) into a store. The log is read with
 * the same flags as `cofi train`, so the store then holds exactly the
 * interactions training would use: `cofi train --store URL` gives the same
 * model as `cofi train DATA` with those flags. One transaction: a failed
 * import leaves the store as it was.
 */
#include "cli.h"

#include <string.h>

static void usage(void) {
  puts("usage: cofi import DATA --store URL [options]\n"
       "\n"
       "store:    --store sqlite:PATH | postgresql://USER@HOST:PORT/DB (libpq URI)\n"
       "data:     --format csv|movielens  --user-col C  --item-col C  --value-col C\n"
       "          --event-col C  --time-col C  --delimiter X|tab\n"
       "          --event-weights watch=1,like=2,complete=3  --min-value V\n"
       "          --items FILE (item metadata, e.g. titles)  --items-id-col C\n"
       "output:   --quiet (no summary)\n"
       "\n"
       "Each kept row becomes an event whose value is the one training would use\n"
       "(weighted by its event type, filtered by --min-value, MovieLens ratings made\n"
       "binary); item metadata becomes items (title, categories from a 'genres' or\n"
       "'categories' column split on '|', every other column in fields).");
}

int cmd_import(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "import", argc, argv);
  cli_data_opts data;
  cli_data_opts_init(&data);
  const char *in = NULL, *url = NULL, *v;
  bool quiet = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) { usage(); return CLI_EXIT_OK; }
    if (cli_opt(&a, "--store", &v)) url = v;
    else if (cli_flag(&a, "--quiet") || cli_flag(&a, "-q")) quiet = true;
    else if (cli_data_option(&a, &data)) continue;
    else if (!in && cli_positional(&a, &v)) in = v;
    else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (!in) return cli_usage_error("import", "missing the DATA file (see cofi import --help)");
  if (!url) return cli_usage_error("import", "missing --store URL (sqlite:PATH or postgresql://...)");

  double t0 = cli_now();
  cofi_store *s = NULL;
  int rc = cli_store_open("import", url, &s);
  if (rc) return rc;
  cofi_dataset *ds = NULL;
  if ((rc = cli_load_dataset("import", in, &data, &ds))) goto done;
  double t_read = cli_now() - t0;
  cofi_diag d = {0};
  uint64_t n = 0;
  if ((rc = cofi_store_import_dataset(s, ds, &n, &d))) {
    rc = cli_diag_error("import", "writing to the store", rc, &d);
    goto done;
  }
  if (!quiet)
    fprintf(stderr, "imported %llu events (%zu users, %zu items) into %s %s: read %.2fs, "
            "total %.2fs\n",
            (unsigned long long)n, cofi_dataset_n_users(ds), cofi_dataset_n_items(ds),
            cofi_store_backend(s), url, t_read, cli_now() - t0);
  rc = CLI_EXIT_OK;
done:
  cofi_dataset_free(ds);
  cofi_store_close(s);
  return rc;
}

/*
 * cmd_synth.c — `cofi synth -o DIR [--users N] [--items N] [--interactions N]
 * [--seed S]`: writes the built-in demo data (a video-platform log and its
 * item titles) with cofi_synth.
 */
#include "cli.h"

#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

static const char usage[] =
    "usage: cofi synth -o DIR [--users N] [--items N] [--interactions N] "
    "[--seed S]\n"
    "\n"
    "Writes DIR/interactions.csv (user_id,item_id,event,timestamp) and\n"
    "DIR/items.csv (item_id,title): a deterministic video-platform log with\n"
    "taste clusters and long-tail popularity. Every row is a distinct\n"
    "user-item pair, so the training matrix has exactly N interactions.\n"
    "\n"
    "  -o, --output DIR     directory to write (created if needed)\n"
    "  --users N            users (default 2000)\n"
    "  --items N            items (default 1000)\n"
    "  --interactions N     rows (default 60000; at least the users, at most\n"
    "                       users x items)\n"
    "  --seed S             random seed (default 42); the same options give\n"
    "                       the same bytes\n"
    "\n"
    "MovieLens-20M shape: --users 138493 --items 26744 --interactions 20000263\n";

int cmd_synth(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "synth", argc, argv);
  cofi_synth_options opt = cofi_synth_options_default();
  const char *dir = NULL, *v;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      fputs(usage, stdout);
      return CLI_EXIT_OK;
    }
    if (cli_opt(&a, "-o", &v) || cli_opt(&a, "--output", &v)) {
      dir = v;
    } else if (cli_opt(&a, "--users", &v)) {
      if (!cli_parse_u32("synth", "--users", v, 1, UINT32_MAX - 1, &opt.users))
        return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--items", &v)) {
      if (!cli_parse_u32("synth", "--items", v, 1, UINT32_MAX - 1, &opt.items))
        return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--interactions", &v)) {
      if (!cli_parse_u64("synth", "--interactions", v, &opt.interactions))
        return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--seed", &v)) {
      if (!cli_parse_u64("synth", "--seed", v, &opt.seed)) return CLI_EXIT_USAGE;
    } else {
      return cli_unknown(&a);
    }
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (!dir) return cli_usage_error("synth", "missing -o DIR (see cofi synth --help)");
  if (opt.interactions < opt.users)
    return cli_usage_error("synth", "--interactions %llu is less than --users %u: "
                           "every user needs at least one row",
                           (unsigned long long)opt.interactions, opt.users);
  if (opt.interactions > (uint64_t)opt.users * opt.items)
    return cli_usage_error("synth", "--interactions %llu is more than the %llu "
                           "distinct pairs of --users %u and --items %u",
                           (unsigned long long)opt.interactions,
                           (unsigned long long)opt.users * opt.items, opt.users,
                           opt.items);
  if (cli_is_stdio(dir))
    return cli_usage_error("synth", "-o -: synth writes two files; give a directory");
  struct stat st;
  if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "cofi synth: -o %s: exists and is not a directory\n", dir);
    return CLI_EXIT_IO;
  }
  static const char *const outputs[] = {"interactions.csv", "items.csv"};
  for (size_t f = 0; f < 2; f++) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, outputs[f]) >= sizeof path)
      return cli_usage_error("synth", "-o: path too long");
    int rc = cli_check_output("synth", "-o", path, NULL, 0);
    if (rc) return rc;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  cofi_diag d = {0};
  int rc = cofi_synth(&opt, dir, &d);
  if (rc) return cli_diag_error("synth", "writing demo data", rc, &d);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("wrote %s/interactions.csv (%llu interactions, %u users, %u items) and "
         "%s/items.csv in %.2f s\n",
         dir, (unsigned long long)opt.interactions, opt.users, opt.items, dir, secs);
  return CLI_EXIT_OK;
}

/*
 * cmd_split.c — `cofi split`: label a log by an evaluation protocol and
 * write each part as a CSV (user_id,item_id,value[,timestamp]) that cofi
 * reads back with default options: train.csv, validation.csv, test.csv,
 * and for the users protocol validation_foldin.csv and test_foldin.csv.
 * `cofi eval --split-dir DIR` evaluates on them; other tools can too.
 */
#include "eval_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "usage: cofi split DATA --protocol P -o DIR [options]\n"
    "\n"
    "Writes DIR/train.csv, DIR/validation.csv, DIR/test.csv (and, for --protocol heldout-users,\n"
    "DIR/validation_foldin.csv and DIR/test_foldin.csv), with the header\n"
    "user_id,item_id,value[,timestamp].\n"
    "\n"
    "  --protocol P          leave-last-out (default), random, heldout-users (users), time-cutoff\n"
    "  --holdout F           random: share of each user's items in test (and validation), 0.2\n"
    "  --heldout-users N|F   heldout-users: test users (N, or a share F < 0.5 of all users),\n"
    "                        and as many validation users (100)\n"
    "  --fold-in-fraction F  heldout-users: share of a held-out user's items folded in (0.8)\n"
    "  --cutoff DATE|S|F     time-cutoff: pairs first seen from then on are test, earlier ones\n"
    "                        train (their later rows are dropped); an ISO 8601 date, unix\n"
    "                        seconds, or a fraction F in (0,1): the time quantile of the events\n"
    "  --split-seed S        seed of the random and users splits (0)\n"
    "  -o, --output DIR      output directory (created if needed); never over an input\n"
    "  --quiet               do not report which columns of DATA were used (stderr)\n"
    "data options: --format csv|movielens, --min-value X, --user-col ... (as cofi train)\n"
    "DATA or --items can be - (standard input).\n";

static const struct {
  const char *name;
  cofi_part part;
} files[] = {{"train.csv", COFI_PART_TRAIN},
             {"validation.csv", COFI_PART_VALIDATION},
             {"test.csv", COFI_PART_TEST},
             {"validation_foldin.csv", COFI_PART_VALIDATION_FOLDIN},
             {"test_foldin.csv", COFI_PART_TEST_FOLDIN}};

int cmd_split(int argc, char **argv) {
  const char *cmd = "split";
  ev_setup s;
  ev_setup_init(&s);
  const char *out_dir = NULL, *v;
  cli_args a;
  cli_args_init(&a, cmd, argc, argv);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      fputs(usage_text, stdout);
      return CLI_EXIT_OK;
    }
    if (ev_setup_option(&a, &s)) continue;
    if (cli_opt(&a, "-o", &v) || cli_opt(&a, "--output", &v)) out_dir = v;
    else if (cli_flag(&a, "--quiet")) s.data.quiet = true;
    else if (!s.data_path && cli_positional(&a, &v)) s.data_path = v;
    else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (s.sampled) return cli_usage_error(cmd, "the sampled protocol comes with its own files; nothing to split");
  if (s.split_dir) return cli_usage_error(cmd, "--split-dir is for cofi eval and cofi tune");
  if (!s.data_path) return cli_usage_error(cmd, "missing DATA (see cofi split --help)");
  if (!out_dir) return cli_usage_error(cmd, "missing -o DIR (where to write the parts)");
  if (cli_is_stdio(out_dir))
    return cli_usage_error(cmd, "-o -: split writes several files; give a directory");
  struct stat st;
  if (stat(out_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "cofi split: -o %s: exists and is not a directory\n", out_dir);
    return CLI_EXIT_IO;
  }
  /* Every file this split will write, checked against the inputs before
   * anything is read: `cofi split train.csv -o .` would replace its input. */
  const char *inputs[] = {s.data_path, s.data.items_path};
  int rc = cli_check_inputs(cmd, inputs, 2);
  if (rc) return rc;
  bool users = s.split.protocol == COFI_PROTOCOL_USERS;
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    if (!users && (files[f].part == COFI_PART_VALIDATION_FOLDIN || files[f].part == COFI_PART_TEST_FOLDIN))
      continue;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", out_dir, files[f].name) >= sizeof path)
      return cli_usage_error(cmd, "-o: path too long");
    if ((rc = cli_check_output(cmd, "-o", path, inputs, 2))) return rc;
  }
  if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "cofi split: creating %s: %s\n", out_dir, strerror(errno));
    return CLI_EXIT_IO;
  }
  cofi_dataset *ds = NULL;
  uint8_t *parts = NULL;
  uint64_t counts[COFI_PART_COUNT];
  rc = ev_prepare(cmd, &s, &ds, &parts, counts);
  if (rc) return rc;
  for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
    if (!users && (files[f].part == COFI_PART_VALIDATION_FOLDIN || files[f].part == COFI_PART_TEST_FOLDIN))
      continue;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", out_dir, files[f].name) >= sizeof path) {
      rc = cli_usage_error(cmd, "-o: path too long");
      break;
    }
    cofi_diag d = {0};
    int lrc = cofi_dataset_write_csv(ds, parts, COFI_PART_BIT(files[f].part), path, &d);
    if (lrc) {
      rc = cli_diag_error(cmd, "writing", lrc, &d);
      break;
    }
    cli_text_cstring(stdout, path);
    printf(": %llu interactions\n", (unsigned long long)counts[files[f].part]);
  }
  if (!rc) {
    size_t n = cofi_dataset_n_interactions(ds), none = 0;
    for (size_t i = 0; i < n; i++) none += parts[i] == COFI_PART_NONE;
    if (none)
      printf("%zu rows in no file: later events of pairs first seen before the cutoff\n", none);
  }
  cofi_dataset_free(ds);
  free(parts);
  return rc;
}

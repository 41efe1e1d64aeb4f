/*
 * cofi.c — the `cofi` command-line tool: dispatches to one subcommand.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"synth", cmd_synth, "generate the demo data set (a video-platform log)"},
    {"train", cmd_train, "train an ALS model from an interaction log"},
    {"info", cmd_info, "describe a model file"},
    {"recommend", cmd_recommend, "recommend items to a user or a cold-start user"},
    {"similar", cmd_similar, "find similar items or users"},
    {"split", cmd_split, "split a log into train/validation/test files"},
    {"eval", cmd_eval, "evaluate ALS against baselines on a protocol"},
    {"tune", cmd_tune, "search training parameters on the validation split"},
    {"serve", cmd_serve, "serve a model over HTTP (SageMaker-compatible)"},
    {"import", cmd_import, "load an interaction log into a store (SQLite, PostgreSQL)"},
    {"export", cmd_export, "write a store's events as a log"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: cofi <command> [arguments]   (cofi <command> --help)\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return CLI_EXIT_OK;
  }
  const char *refused = cofi_kernel_set_refused();
  if (refused) { /* a benchmark must not print figures under the wrong name */
    fprintf(stderr, "cofi: %s; unset it, or name a set this CPU runs (cofi --version shows "
                    "the best)\n", refused);
    return CLI_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--version")) {
    /* the second line: which kernel set this CPU runs (COFI_KERNELS forces one) */
    printf("cofi %s\nkernels %s\n", COFI_VERSION, cofi_kernel_set());
    return CLI_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "cofi: unknown command '%s' (cofi --help lists the commands)\n", argv[1]);
  return CLI_EXIT_USAGE;
}

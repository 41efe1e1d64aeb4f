/*
 * zz_unbuilt.c — TEMPORARY during parallel development: weak fallbacks for
 * subcommands whose files are still being written. Deleted before landing.
 */
#include "cli.h"

#define UNBUILT(name)                                                          \
  __attribute__((weak)) int cmd_##name(int argc, char **argv) {               \
    (void)argc; (void)argv;                                                   \
    fprintf(stderr, "cofi " #name ": not available in this build\n");         \
    return CLI_EXIT_FAIL;                                                     \
  }
UNBUILT(synth)
UNBUILT(eval)
UNBUILT(split)
UNBUILT(tune)
UNBUILT(serve)

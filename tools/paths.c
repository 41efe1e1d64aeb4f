/*
 * paths.c — what a command may read and where it may write.
 *
 * "-" is standard input for every input (the log, --items, --params, a
 * model) and standard output for an -o where the output is text (cofi tune
 * -o -). At most one input of a command can be "-".
 *
 * Before a command reads anything, its outputs are checked against its
 * inputs: an output that is the same file as an input (same st_dev and
 * st_ino, so symbolic and hard links are seen through; an input given as
 * "-" is compared through the descriptor, which catches `< log.csv`) is
 * refused, and so is an output that exists and is not a regular file (a
 * FIFO, a device such as /dev/full, a directory, a socket): the atomic
 * writers rename a temporary file over the target, which would replace
 * the device node or FIFO itself. Both leave the path untouched.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool cli_is_stdio(const char *path) { return path && !strcmp(path, "-"); }

const char *cli_display_name(const char *path) {
  if (!path) return "";
  return cli_is_stdio(path) ? "<stdin>" : path;
}

static const char *kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

int cli_check_inputs(const char *cmd, const char *const *inputs, size_t n) {
  const char *first = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!cli_is_stdio(inputs[i])) continue;
    if (first)
      return cli_usage_error(cmd, "only one input can be '-' (standard input)");
    first = inputs[i];
  }
  return CLI_EXIT_OK;
}

int cli_check_output(const char *cmd, const char *flag, const char *out,
                     const char *const *inputs, size_t n) {
  struct stat so;
  if (stat(out, &so) != 0) return CLI_EXIT_OK; /* new file (or the writer will say why not) */
  if (!S_ISREG(so.st_mode)) {
    fprintf(stderr, "cofi %s: %s ", cmd, flag);
    cli_text_cstring(stderr, out);
    fprintf(stderr, ": exists and is %s; refusing to replace it (give a regular file path)\n",
            kind_of(so.st_mode));
    return CLI_EXIT_USAGE;
  }
  for (size_t i = 0; i < n; i++) {
    if (!inputs[i]) continue;
    struct stat si;
    int r = cli_is_stdio(inputs[i]) ? fstat(0, &si) : stat(inputs[i], &si);
    if (r != 0 || si.st_dev != so.st_dev || si.st_ino != so.st_ino) continue;
    fprintf(stderr, "cofi %s: %s ", cmd, flag);
    cli_text_cstring(stderr, out);
    fputs(": is the input ", stderr);
    cli_text_cstring(stderr, cli_display_name(inputs[i]));
    fputs(" (the same file); refusing to overwrite an input: write elsewhere\n", stderr);
    return CLI_EXIT_USAGE;
  }
  return CLI_EXIT_OK;
}

int cli_open_model(const char *cmd, const char *path, cofi_model **out) {
  cofi_diag d = {0};
  int rc;
  if (!cli_is_stdio(path)) {
    rc = cofi_model_open(path, out, &d);
  } else {
    /* A pipe cannot be mapped: read it into memory. */
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    if (!buf) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
    for (;;) {
      if (len == cap) {
        char *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap *= 2) : NULL;
        if (!nb) { fputs("cofi: out of memory\n", stderr); exit(CLI_EXIT_NOMEM); }
        buf = nb;
      }
      ssize_t got = read(0, buf + len, cap - len);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        fprintf(stderr, "cofi %s: reading the model from standard input: %s\n", cmd,
                strerror(errno));
        free(buf);
        return CLI_EXIT_IO;
      }
      if (got == 0) break;
      len += (size_t)got;
    }
    rc = cofi_model_open_memory(buf, len, out, &d);
    free(buf);
    if (rc) snprintf(d.file, sizeof d.file, "<stdin>");
  }
  if (rc) return cli_diag_error(cmd, "opening model", rc, &d);
  return CLI_EXIT_OK;
}

/*
 * errors.c — how the tool reports a failure: exit codes for library error
 * codes, and the "cofi <command>: ..." messages on stderr. The bottom of
 * tools/: every other file may call it, it calls only text.c's escaping.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>

int cli_exit_for(int code) {
  switch (code) {
    case COFI_OK: return CLI_EXIT_OK;
    case COFI_ERR_NOMEM: return CLI_EXIT_NOMEM;
    case COFI_ERR_IO: return CLI_EXIT_IO;
    case COFI_ERR_INVALID: return CLI_EXIT_USAGE;
    case COFI_ERR_PARSE: case COFI_ERR_EMPTY: return CLI_EXIT_DATA;
    case COFI_ERR_NOT_MODEL: case COFI_ERR_VERSION: case COFI_ERR_CORRUPT:
      return CLI_EXIT_MODEL;
    case COFI_ERR_NUMERIC: return CLI_EXIT_NUMERIC;
    default: return CLI_EXIT_FAIL;
  }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  fprintf(stderr, "cofi %s: ", cmd);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return CLI_EXIT_USAGE;
}

int cli_diag_error(const char *cmd, const char *what, int code,
                   const cofi_diag *d) {
  fprintf(stderr, "cofi %s: ", cmd);
  cli_text_cstring(stderr, what);
  fputs(": ", stderr);
  if (d && d->file[0]) {
    cli_text_cstring(stderr, d->file);
    fputc(':', stderr);
    if (d->line) fprintf(stderr, "%llu:", (unsigned long long)d->line);
    fputc(' ', stderr);
  }
  fprintf(stderr, "%s\n", d && d->message[0] ? d->message : cofi_error_message(code));
  return cli_exit_for(code);
}

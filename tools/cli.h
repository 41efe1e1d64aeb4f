/*
 * cli.h — shared pieces of the `cofi` command-line tool: the subcommands,
 * exit codes, error printing, and option parsing used by several commands.
 * The tool uses only the public API (cofi.h) except where noted.
 *
 * Output rules: results on stdout, progress and errors on stderr; errors
 * read `cofi <command>: <what failed>: <reason>` (with file:line for data).
 */
#ifndef COFI_CLI_H
#define COFI_CLI_H

#include "cofi.h"

#include <stdbool.h>
#include <stdio.h>

/* Named exit codes. */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAIL = 1,    /* the request could not be answered (unknown ID...) */
  CLI_EXIT_USAGE = 2,   /* bad flags or arguments */
  CLI_EXIT_DATA = 3,    /* malformed or unusable input data */
  CLI_EXIT_MODEL = 4,   /* model file missing, damaged or foreign */
  CLI_EXIT_NOMEM = 5,   /* out of memory */
  CLI_EXIT_IO = 6,      /* cannot read or write a file */
  CLI_EXIT_NUMERIC = 7, /* training diverged (NaN/inf) */
};

/* Subcommands: each in tools/cmd_<name>.c; argv[0] is the subcommand. */
int cmd_synth(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_similar(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_split(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Exit code for a library error code. */
int cli_exit_for(int code);
/* "cofi CMD: message\n" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "cofi CMD: WHAT: file:line: message" on stderr; returns cli_exit_for(code). */
int cli_diag_error(const char *cmd, const char *what, int code,
                   const cofi_diag *d);

/* ---- argument parsing -------------------------------------------------- */
typedef struct cli_args {
  const char *cmd; /* for messages */
  int argc;
  char **argv;
  int i;       /* next argument */
  bool failed; /* an option was malformed; a message was printed */
  const char *params_path; /* the last --params FILE, an input */
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
bool cli_args_done(const cli_args *a);
/* Matches a boolean flag (e.g. "--json") at the current position. */
bool cli_flag(cli_args *a, const char *name);
/* Matches "--name VALUE" or "--name=VALUE"; a missing value sets failed. */
bool cli_opt(cli_args *a, const char *name, const char **value);
/* A positional argument (does not start with "--", or is "-"). */
bool cli_positional(cli_args *a, const char **value);
/* Prints "unknown option" for the current argument; returns CLI_EXIT_USAGE. */
int cli_unknown(cli_args *a);

/* Strict number parsing with range checks; print a usage error naming the
 * flag and return false on failure. */
bool cli_parse_u32(const char *cmd, const char *flag, const char *s,
                   uint32_t min, uint32_t max, uint32_t *out);
bool cli_parse_u64(const char *cmd, const char *flag, const char *s,
                   uint64_t *out);
bool cli_parse_float(const char *cmd, const char *flag, const char *s,
                     double min, double max, float *out);
bool cli_parse_double(const char *cmd, const char *flag, const char *s,
                      double min, double max, double *out);

/* ---- data-reading options (train, eval, split, tune) ------------------- */
typedef struct cli_data_opts {
  cofi_read_options read;
  const char *items_path;    /* --items */
  const char *items_id_col;  /* --items-id-col */
  cofi_event_weight weights[64]; /* --event-weights storage */
  char weights_text[1024];
  bool quiet; /* do not print which columns were used (stderr) */
} cli_data_opts;

void cli_data_opts_init(cli_data_opts *o);
/* Consumes one data option if the current argument is one: --format,
 * --user-col, --item-col, --value-col, --event-col, --time-col,
 * --delimiter, --event-weights, --min-value, --no-header, --items, --items-id-col.
 * Returns true when consumed (check a->failed). */
bool cli_data_option(cli_args *a, cli_data_opts *o);
/* Reads the dataset ("-": standard input) and, with --items, its metadata;
 * prints errors, and unless o->quiet which columns were used and ignored. */
int cli_load_dataset(const char *cmd, const char *path, const cli_data_opts *o,
                     cofi_dataset **out);
/* Parses "name=weight,name=weight" into o->weights. */
bool cli_parse_event_weights(const char *cmd, const char *text,
                             cli_data_opts *o);

/* ---- inputs and outputs (paths.c) -------------------------------------- */
/* True for "-" (standard input, or standard output for -o). */
bool cli_is_stdio(const char *path);
/* "<stdin>" for "-", else path: for messages. */
const char *cli_display_name(const char *path);
/* At most one of inputs[0..n) (NULL entries skipped) may be "-". */
int cli_check_inputs(const char *cmd, const char *const *inputs, size_t n);
/* Refuses (usage error, message printed) an output path that exists and is
 * not a regular file, or that is the same file as one of inputs[0..n)
 * (NULL entries skipped; "-" compared through descriptor 0). Call before
 * reading anything. */
int cli_check_output(const char *cmd, const char *flag, const char *out,
                     const char *const *inputs, size_t n);
/* Opens a model file, or reads one from standard input for "-"; prints
 * errors and returns an exit code. */
int cli_open_model(const char *cmd, const char *path, cofi_model **out);
/* ---- the store (store_common.c) ---------------------------------------- */
/* Opens a store; prints the error. */
int cli_store_open(const char *cmd, const char *url, cofi_store **out);
/* The store's events as a dataset, read with o's options (event weights,
 * --min-value, --format) and, with --items, that file's metadata. */
int cli_load_store_dataset(const char *cmd, const char *url, const cli_data_opts *o,
                           cofi_dataset **out);

/* ---- training options (train, eval, tune) ------------------------------ */
/* Consumes one of --factors, --regularization, --alpha, --iterations,
 * --seed, --solver, --cg-steps, --threads, --reg-exponent,
 * --unobserved-weight, --confidence linear|log|bm25, --epsilon, --bm25-k1,
 * --bm25-b, --model als (ease and itemknn are refused: not implemented),
 * --params FILE. */
bool cli_train_option(cli_args *a, cofi_params *p);

/* Parameter files: "key = value" lines, '#' comments; keys as the flags
 * without dashes (factors, regularization, alpha, iterations, seed, solver,
 * cg_steps, reg_exponent, unobserved_weight, confidence, epsilon, bm25_k1,
 * bm25_b); floats written with %.6g (no binary noise). */
int cli_params_read(const char *cmd, const char *path, cofi_params *p);
int cli_params_write(const char *cmd, const char *path, const cofi_params *p);

/* Progress printer for cofi_params.progress: a live bar on a TTY, plain
 * lines otherwise. ctx: a cli_progress. */
typedef struct cli_progress {
  bool tty;
  bool quiet;
} cli_progress;
int cli_progress_print(const cofi_progress *p, void *ctx);

/* Comma-separated list splitting with "\," escapes; calls fn per element.
 * Returns false when fn does. */
bool cli_split_list(const char *text, bool (*fn)(const char *s, size_t len,
                                                 void *ctx),
                    void *ctx);

/* ---- writing untrusted text (text.c) ---------------------------------- */
/* A JSON string (quoted): control characters escaped, invalid UTF-8 bytes
 * replaced by U+FFFD; always valid JSON. */
void cli_json_string(FILE *f, const char *s, size_t len);
/* The same for a NUL-terminated string; NULL prints null. */
void cli_json_cstring(FILE *f, const char *s);
/* A JSON number (%.9g), or null for NaN and infinities. */
void cli_json_number(FILE *f, double v);
/* Text for people: control characters (C0, DEL, C1) as visible escapes
 * (\n, \x1b, \u009b), invalid UTF-8 bytes as \xNN, the rest as is.
 * Returns the characters written (code points), for padding columns. */
size_t cli_text(FILE *f, const char *s, size_t len);
void cli_text_cstring(FILE *f, const char *s);
/* cli_text into buf (cut to size - 1 bytes), for printf's %s; returns buf. */
const char *cli_printable(const char *s, char *buf, size_t size);
/* cli_text, then spaces up to width characters. */
void cli_text_padded(FILE *f, const char *s, size_t len, size_t width);
/* The training parameters as a JSON object (no trailing newline). */
void cli_json_params(FILE *f, const cofi_params *p);

/* Monotonic seconds. */
double cli_now(void);
/* -k / --k: an integer >= 1 (larger than the catalog is clamped later). */
bool cli_k_option(cli_args *a, uint32_t *k);

/* Result lists (recommend, similar): JSON array of
 * {"<key>": id, "score": s[, "title": t]} or a readable table. */
/* why (NULL = none): for recommended items, the history items that explain
 * each one (cofi_explain), CLI_BECAUSE per item, n_why[i] of them; JSON
 * gets "because": [{"item_id", "title", "contribution"}], the table a
 * "because you liked" line. */
enum { CLI_BECAUSE = 3 };
typedef struct cli_because {
  cofi_contribution top[CLI_BECAUSE];
  size_t n;
} cli_because;
void cli_print_scored_json(const cofi_model *m, const cofi_scored *r, size_t n, bool items,
                           const cli_because *why);
void cli_print_scored_table(const cofi_model *m, const cofi_scored *r, size_t n, bool items,
                            const cli_because *why);

#endif

/*
 * eval_common.h — what `cofi split`, `cofi eval` and `cofi tune` share: the
 * protocol flags, loading a dataset and labelling its rows with parts (by
 * an in-process split or from the files of `cofi split`), cutoff lists, and
 * mean / sample standard deviation over seeds.
 */
#ifndef COFI_EVAL_COMMON_H
#define COFI_EVAL_COMMON_H

#include "cli.h"

typedef struct ev_setup {
  cli_data_opts data;
  cofi_split_options split;
  bool sampled;              /* --protocol sampled (NCF) */
  const char *data_path;     /* positional DATA */
  const char *split_dir;     /* --split-dir */
  const char *ncf_test;      /* --test (sampled) */
  const char *ncf_negatives; /* --negatives (sampled) */
} ev_setup;

void ev_setup_init(ev_setup *s);
/* Consumes a data option or one of --protocol, --holdout, --heldout-users,
 * --foldin-fraction (--fold-in-fraction), --cutoff, --split-seed,
 * --split-dir, --test, --negatives.
 * Returns true when consumed (check a->failed). */
bool ev_setup_option(cli_args *a, ev_setup *s);
/* Checks the combination of flags; prints a usage error. */
int ev_setup_check(const char *cmd, const ev_setup *s);
const char *ev_protocol_name(const ev_setup *s);

/* Loads the data and labels every row: *parts [n interactions], freed with
 * free(). counts: [COFI_PART_COUNT] rows per part. Prints errors and
 * returns an exit code. */
int ev_prepare(const char *cmd, const ev_setup *s, cofi_dataset **ds, uint8_t **parts,
               uint64_t counts[COFI_PART_COUNT]);

/* Prints the resolved cutoffs of a time-cutoff split and, for validation
 * and test, how many users have no training event (stderr). */
void ev_report_time_cutoff(const char *cmd, const ev_setup *s, const cofi_dataset *ds,
                           const uint8_t *parts);

/* Selects rows by part mask into a new dataset; prints errors. */
int ev_select(const char *cmd, const cofi_dataset *ds, const uint8_t *parts, unsigned mask,
              const char *what, cofi_dataset **out);

/* "5,10,20" into o->ks / o->n_ks. */
bool ev_parse_ks(const char *cmd, const char *text, cofi_eval_options *o);

/* `cofi eval --protocol new-items` (eval_new_items.c). */
int eval_new_items_main(int argc, char **argv);

/* Monotonic wall-clock seconds. */
double ev_now(void);

/* Mean and sample standard deviation (n - 1) of x[0..n); sd NAN when n < 2. */
void ev_mean_sd(const double *x, size_t n, double *mean, double *sd);

#endif

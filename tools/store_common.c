/*
 * store_common.c — what the store commands share: opening a store with a
 * clear message, and reading a training dataset from it (`cofi train
 * --store`, `cofi export`) with the same reading flags as a file, after
 * packing the events appended since the last import.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cli_store_open(const char *cmd, const char *url, cofi_store **out) {
  cofi_diag d = {0};
  int rc = cofi_store_open(url, out, &d);
  if (rc) return cli_diag_error(cmd, "opening the store", rc, &d);
  if (cofi_store_migration(*out)) fprintf(stderr, "cofi %s: %s\n", cmd, cofi_store_migration(*out));
  return CLI_EXIT_OK;
}

int cli_load_store_dataset(const char *cmd, const char *url, const cli_data_opts *o,
                           cofi_dataset **out) {
  *out = NULL;
  cofi_store *s = NULL;
  int rc = cli_store_open(cmd, url, &s);
  if (rc) return rc;
  cofi_diag d = {0};
  /* Events appended since the last import or compaction are packed first
   * (one short write transaction per pack, docs/store.md, "Event packs"):
   * this read and the next ones are then fast. Best effort: a store this
   * process cannot write to is read as it is. */
  uint64_t packed = 0;
  if (cofi_store_compact(s, &packed, &d))
    fprintf(stderr, "cofi %s: events not packed (%s); reading them row by row\n", cmd, d.message);
  else if (packed && !o->quiet)
    fprintf(stderr, "cofi %s: packed %llu events of the store for faster reads\n", cmd,
            (unsigned long long)packed);
  memset(&d, 0, sizeof d);
  rc = cofi_store_read_dataset(s, &o->read, out, &d);
  cofi_store_close(s);
  if (rc) return cli_diag_error(cmd, "reading the store", rc, &d);
  if (o->items_path) {
    char what[600];
    snprintf(what, sizeof what, "reading item metadata %s", o->items_path);
    rc = cofi_dataset_read_items(*out, o->items_path, o->items_id_col, &d);
    if (rc) {
      cofi_dataset_free(*out);
      *out = NULL;
      return cli_diag_error(cmd, what, rc, &d);
    }
  }
  return CLI_EXIT_OK;
}

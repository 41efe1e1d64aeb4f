/*
 * fuzz_items.c — the item metadata reader (cofi_dataset_read_items, the
 * --items file: CSV/TSV with a header, RFC 4180 quoting) on hostile bytes.
 *
 * Each input is joined to a fresh small dataset whose item IDs ("1", "2",
 * "10", "a", "b,c", "x\"y") are ones a mutated file is likely to mention.
 * The first byte chooses the ID column: the first column, "item_id" or
 * "movieId". A successful read must leave metadata whose tables agree with
 * each other (names = fields, cells = items x fields, title in range).
 */
#include "fuzz_util.h"
#include "internal.h"

#include <string.h>

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t sel = fuzz_take(&data, &size);
  static const char *const id_cols[] = {NULL, "item_id", "movieId", NULL};
  static const char *const items[] = {"1", "2", "10", "a", "b,c", "x\"y"};
  cofi_dataset *ds;
  if (cofi__dataset_new(&ds) != COFI_OK) return 0;
  for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
    if (cofi__dataset_add(ds, "u", 1, items[i], strlen(items[i]), 1.0f, 0) != COFI_OK) {
      cofi_dataset_free(ds);
      return 0;
    }
  const char *path = fuzz_file(0, data, size);
  cofi_diag d;
  int rc = cofi_dataset_read_items(ds, path, id_cols[sel & 3], &d);
  if (rc == COFI_OK) {
    const cofi__itemmeta *m = &ds->meta;
    check(m->n_fields >= 1);
    check(m->names.n == m->n_fields);
    check(m->cells.n == (size_t)m->n_fields * ds->items.n);
    check(m->title_field >= -1 && m->title_field < (int32_t)m->n_fields);
    for (size_t c = 0; c < m->cells.n; c++) {
      size_t len;
      cofi__strtab_get(&m->cells, c, &len);
    }
  } else {
    check(rc < 0 && d.message[0] != 0);
  }
  cofi_dataset_free(ds);
  return 0;
}

/*
 * fuzz_dataset.c — the interaction reader (cofi_dataset_read: CSV/TSV with
 * a header, MovieLens ratings.csv / ratings.dat / u.data) on hostile bytes.
 *
 * The first input byte chooses the read options, so one corpus covers the
 * format, delimiter, rating threshold, event-weight and column-name paths:
 *   bit 0     MovieLens format (else generic CSV)
 *   bits 1-2  delimiter: auto, ',', '\t', ';'
 *   bit 3     --min-value 3.5
 *   bit 4     event weights view=1,buy=5 (else the defaults)
 *   bit 5     columns named u, i, v, e, t (else user_id, item_id, ...)
 * Event columns under other names (action, type, ...) are recognised by
 * the first row's value; seeds csv_event_alias* cover that path.
 * The rest is the file. The reader opens files by name, so the bytes go to
 * an in-memory file (fuzz_util.c).
 *
 * Beyond "no crash, no leak", a successful read must give a consistent
 * dataset: indices in range, every value finite (a value that overflows to
 * infinity would poison training silently), IDs that round-trip through
 * the maps; and the user x item matrix must build from it.
 */
#include "fuzz_util.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t sel = fuzz_take(&data, &size);
  static const cofi_event_weight weights[] = {{"view", 1.0f}, {"buy", 5.0f}};
  static const char delims[] = {0, ',', '\t', ';'};
  cofi_read_options o = cofi_read_options_default();
  o.format = (sel & 1) ? COFI_FORMAT_MOVIELENS : COFI_FORMAT_CSV;
  o.delimiter = delims[(sel >> 1) & 3];
  if (sel & 8) {
    o.has_min_value = 1;
    o.min_value = 3.5;
  }
  if (sel & 16) {
    o.event_weights = weights;
    o.n_event_weights = 2;
  }
  if (sel & 32) {
    o.user_col = "u";
    o.item_col = "i";
    o.value_col = "v";
    o.event_col = "e";
    o.time_col = "t";
  }
  const char *path = fuzz_file(0, data, size);
  cofi_dataset *ds = NULL;
  cofi_diag d;
  int rc = cofi_dataset_read(path, &o, &ds, &d);
  if (rc != COFI_OK) {
    check(ds == NULL && rc < 0 && d.message[0] != 0);
    return 0;
  }
  check(cofi_dataset_columns(ds)[0] != 0); /* the columns report is never empty */
  size_t nu = cofi_dataset_n_users(ds), ni = cofi_dataset_n_items(ds);
  size_t n = cofi_dataset_n_interactions(ds);
  check(n > 0 && nu > 0 && ni > 0 && nu <= n && ni <= n);
  for (size_t r = 0; r < n; r++) {
    check(ds->user[r] < nu && ds->item[r] < ni);
    check(isfinite(ds->value[r]));
  }
  for (uint32_t u = 0; u < nu; u++) {
    size_t len;
    const char *id = cofi__idmap_get(&ds->users, u, &len);
    check(len > 0 && cofi__idmap_find(&ds->users, id, len) == (int64_t)u);
  }
  for (uint32_t i = 0; i < ni; i++) {
    size_t len;
    const char *id = cofi__idmap_get(&ds->items, i, &len);
    check(len > 0 && cofi__idmap_find(&ds->items, id, len) == (int64_t)i);
  }
  cofi__csr csr;
  if (cofi__csr_from_dataset(ds, &csr) == COFI_OK) {
    check(csr.n_rows == nu && csr.n_cols == ni && csr.nnz <= n);
    for (uint64_t t = 0; t < csr.nnz; t++) {
      check(csr.indices[t] < ni);
      check(isfinite(csr.data[t]));
    }
    cofi__csr_free(&csr);
  }
  cofi_dataset_free(ds);
  return 0;
}

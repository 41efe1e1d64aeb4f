/*
 * items.c — item metadata (titles and any other columns) joined to a
 * dataset by item ID.
 *
 * The file is CSV/TSV with a header (RFC 4180 quoting, so MovieLens
 * movies.csv with its commas and quotes in titles reads as it comes). One
 * column holds the item ID; every other column becomes a metadata field.
 * The result is ds->meta: field names, and cells [n_items x n_fields]
 * row-major in the dataset's item order, "" for items the file does not
 * mention. Rows of the file for items without interactions are checked and
 * then dropped. An item ID that appears twice in the file is an error
 * naming both lines: which row was meant cannot be guessed.
 */
#include "csv.h"

#include <string.h>

/* fd >= 0: read from it (path names it in messages); else open path. */
static int read_items(cofi_dataset *ds, int fd, const char *path, const char *id_col,
                      cofi_diag *diag) {
  if (!ds || !path)
    return cofi__fail(diag, COFI_ERR_INVALID, path ? path : "", 0,
                      "no dataset or no file name given");
  cofi__csv csv;
  cofi__idmap names, seen;
  cofi__itemmeta meta;
  cofi__strtab rows; /* cells of the matched rows, in file order */
  uint64_t *seen_line = NULL;     /* [seen.n] line of each file ID */
  size_t seen_cap = 0;
  uint32_t *row_of_item = NULL;   /* [n_items], UINT32_MAX: no row */
  uint32_t n_rows = 0, matched = 0;
  cofi__idmap_init(&names);
  cofi__idmap_init(&seen);
  memset(&meta, 0, sizeof meta);
  cofi__strtab_init(&meta.names);
  cofi__strtab_init(&meta.cells);
  cofi__strtab_init(&rows);
  meta.title_field = -1;

  int rc = fd >= 0 ? cofi__csv_open_fd(&csv, fd, path, diag)
                   : cofi__csv_open(&csv, path, diag);
  if (rc) goto done;
  if ((rc = cofi__csv_header(&csv, 0, &names, diag))) goto done;
  int64_t id = 0;
  if (id_col) {
    id = cofi__idmap_find(&names, id_col, strlen(id_col));
    if (id < 0) {
      char list[300], q[200];
      cofi__csv_column_list(&names, list, sizeof list);
      rc = cofi__fail(diag, COFI_ERR_PARSE, path, csv.line,
                      "no column '%s' in the header (it has %s)",
                      cofi__quote(q, sizeof q, id_col, strlen(id_col)), list);
      goto done;
    }
  }
  if (names.n < 2) {
    rc = cofi__fail(diag, COFI_ERR_PARSE, path, csv.line,
                    "the header has no column besides the item ID");
    goto done;
  }
  const size_t n_cols = names.n;
  meta.n_fields = (uint32_t)(n_cols - 1);
  for (uint32_t c = 0; c < n_cols; c++) {
    if (c == id) continue;
    size_t len;
    const char *s = cofi__idmap_get(&names, c, &len);
    if (meta.title_field < 0 && len == 5 && memcmp(s, "title", 5) == 0)
      meta.title_field = (int32_t)meta.names.n;
    if ((rc = cofi__strtab_push(&meta.names, s, len))) goto oom;
  }
  if (meta.title_field < 0) meta.title_field = 0;

  const uint32_t n_items = ds->items.n;
  row_of_item = cofi__malloc((n_items ? n_items : 1) * sizeof *row_of_item);
  if (!row_of_item) { rc = COFI_ERR_NOMEM; goto oom; }
  memset(row_of_item, 0xff, n_items * sizeof *row_of_item);

  while ((rc = cofi__csv_next(&csv, diag)) == 1) {
    if (csv.n_fields != n_cols) {
      rc = cofi__fail(diag, COFI_ERR_PARSE, path, csv.line,
                      csv.n_fields < n_cols
                          ? "short row: %zu field%s, expected %zu"
                          : "%zu field%s, expected %zu (an unquoted "
                            "delimiter inside a field?)",
                      csv.n_fields, csv.n_fields == 1 ? "" : "s", n_cols);
      goto done;
    }
    n_rows++;
    const cofi__csv_field *idf = &csv.fields[id];
    if (cofi__csv_blank(idf->ptr, idf->len)) {
      rc = cofi__fail(diag, COFI_ERR_PARSE, path, csv.line,
                      "column %lld: blank item ID", (long long)id + 1);
      goto done;
    }
    uint32_t k;
    bool added;
    if ((rc = cofi__idmap_intern(&seen, idf->ptr, idf->len, &k, &added)))
      goto oom;
    if (!added) {
      char q[200];
      rc = cofi__fail(diag, COFI_ERR_PARSE, path, csv.line,
                      "item '%s' appears twice (first on line %llu)",
                      cofi__quote(q, sizeof q, idf->ptr, idf->len),
                      (unsigned long long)seen_line[k]);
      goto done;
    }
    if (k >= seen_cap) {
      size_t cap = seen_cap ? seen_cap * 2 : 1024;
      uint64_t *sl = cofi__realloc(seen_line, cap * sizeof *sl);
      if (!sl) { rc = COFI_ERR_NOMEM; goto oom; }
      seen_line = sl;
      seen_cap = cap;
    }
    seen_line[k] = csv.line;
    int64_t item = cofi__idmap_find(&ds->items, idf->ptr, idf->len);
    if (item < 0) continue;
    row_of_item[item] = matched++;
    for (size_t c = 0; c < n_cols; c++) {
      if ((int64_t)c == id) continue;
      if ((rc = cofi__strtab_push(&rows, csv.fields[c].ptr, csv.fields[c].len)))
        goto oom;
    }
  }
  if (rc < 0) goto done;
  if (n_rows == 0) {
    rc = cofi__fail(diag, COFI_ERR_EMPTY, path, 0,
                    "no item rows (the file has only a header)");
    goto done;
  }
  if (matched == 0) {
    char q[200];
    size_t len;
    const char *name = cofi__idmap_get(&names, (uint32_t)id, &len);
    rc = cofi__fail(diag, COFI_ERR_EMPTY, path, 0,
                    "none of the %u items in the file has interactions (is "
                    "'%s' the item ID column?)",
                    n_rows, cofi__quote(q, sizeof q, name, len));
    goto done;
  }
  for (uint32_t i = 0; i < n_items; i++) {
    for (uint32_t f = 0; f < meta.n_fields; f++) {
      size_t len = 0;
      const char *s = "";
      if (row_of_item[i] != UINT32_MAX)
        s = cofi__strtab_get(&rows, (size_t)row_of_item[i] * meta.n_fields + f,
                             &len);
      if ((rc = cofi__strtab_push(&meta.cells, s, len))) goto oom;
    }
  }
  cofi__strtab_free(&ds->meta.names);
  cofi__strtab_free(&ds->meta.cells);
  ds->meta = meta;
  memset(&meta, 0, sizeof meta); /* now owned by ds */
  rc = COFI_OK;
  goto done;
oom:
  rc = cofi__fail(diag, rc, path, csv.line, "out of memory");
done:
  cofi__strtab_free(&meta.names);
  cofi__strtab_free(&meta.cells);
  cofi__strtab_free(&rows);
  cofi__free(row_of_item);
  cofi__free(seen_line);
  cofi__idmap_free(&seen);
  cofi__idmap_free(&names);
  cofi__csv_close(&csv);
  return rc;
}

int cofi_dataset_read_items(cofi_dataset *ds, const char *path, const char *id_col,
                            cofi_diag *diag) {
  return read_items(ds, -1, path, id_col, diag);
}

int cofi_dataset_read_items_fd(cofi_dataset *ds, int fd, const char *name,
                               const char *id_col, cofi_diag *diag) {
  if (fd < 0)
    return cofi__fail(diag, COFI_ERR_IO, name ? name : "", 0, "bad file descriptor");
  return read_items(ds, fd, name ? name : "<descriptor>", id_col, diag);
}

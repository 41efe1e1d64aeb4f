/*
 * scan_items.c — cofi_store_scan_items: every item of the store, with its
 * attributes, in one read transaction (one consistent snapshot). The
 * server's table of new items (server/new_items.c) reads the catalogue
 * this way when a model is loaded.
 */
#include "store.h"

typedef struct scan_ctx {
  cofi_store_item_fn fn;
  void *ctx;
  bool stopped;
} scan_ctx;

static int one_item(void *ctx, int64_t key, const cofi_store_item *it) {
  (void)key;
  scan_ctx *c = ctx;
  cofi_store_item copy = *it;
  /* Absent JSON columns read back as NULL: hand over the documented defaults. */
  if (!copy.categories) { copy.categories = "[]"; copy.categories_len = 2; }
  if (!copy.fields) { copy.fields = "{}"; copy.fields_len = 2; }
  if (c->fn(&copy, c->ctx)) {
    c->stopped = true;
    return COFI_ERR_CANCELLED;
  }
  return COFI_OK;
}

int cofi_store_scan_items(cofi_store *s, cofi_store_item_fn fn, void *ctx, cofi_diag *diag) {
  if (!s) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no store given");
  if (!fn) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no callback given");
  int rc = s->ops->begin(s, false, diag);
  if (rc) return rc;
  scan_ctx c = {fn, ctx, false};
  rc = s->ops->scan_items(s, one_item, &c, diag);
  if (c.stopped) rc = COFI_ERR_CANCELLED;
  return cofi__store_end_read(s, rc, diag);
}

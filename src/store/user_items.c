/*
 * user_items.c — cofi_store_user_items: the distinct items a user has
 * events with, for the server's fold-in of a user the model has not seen
 * (server/online.c). cofi_store_history serves /users/{id}/history and
 * returns every event with its type, time and the item's title in
 * newest-first order; the fold-in needs none of that, and for a user with
 * 10,000 events copying and sorting those rows was most of a cache miss
 * (docs/performance.md, "Online updates"). Here the back end returns each
 * item's key and ID once, in no order.
 */
#include "store.h"

typedef struct items_ctx {
  cofi_store *s;
  cofi_store_item_id_fn fn;
  void *ctx;
  cofi_diag *d;
  bool stopped;
} items_ctx;

static int one_item(void *ctx, int64_t key, const char *id, size_t len) {
  items_ctx *c = ctx;
  /* A row written behind the library's back may break the ID rules. */
  int rc = cofi__store_check_row(c->s, "cofi_items", (uint64_t)key, "id", id, len, c->d);
  if (rc) return rc;
  if (c->fn(id, len, c->ctx)) {
    c->stopped = true;
    return COFI_ERR_CANCELLED;
  }
  return COFI_OK;
}

int cofi_store_user_items(cofi_store *s, const char *user_id, size_t len,
                          cofi_store_item_id_fn fn, void *ctx, cofi_diag *diag) {
  if (!s) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no store given");
  if (!fn) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no callback given");
  int rc = cofi__store_check_id("user_id", user_id, len, diag);
  if (rc) return rc;
  /* One snapshot: the user's key and their events. */
  if ((rc = s->ops->begin(s, false, diag))) return rc;
  int64_t key;
  rc = s->ops->keys(s, COFI__USERS, 1, &user_id, &len, false, &key, diag);
  if (!rc && key < 0) {
    char q[200];
    rc = cofi__fail(diag, COFI_ERR_NOT_FOUND, "", 0, "no user '%s' in the store",
                    cofi__quote(q, sizeof q, user_id, len));
  }
  items_ctx c = {s, fn, ctx, diag, false};
  if (!rc) rc = s->ops->user_items(s, key, one_item, &c, diag);
  if (c.stopped) rc = COFI_ERR_CANCELLED;
  return cofi__store_end_read(s, rc, diag);
}

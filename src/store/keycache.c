/*
 * keycache.c — a connection's memory of ID -> key (users or items), so
 * that feedback from known users and items costs no index lookup.
 *
 * Only a back end that can tell whether another connection wrote since its
 * last transaction may keep one (SQLite: PRAGMA data_version), and it must
 * clear it then, on a rollback (keys created by the transaction are gone)
 * and when it deletes a user itself: a stale key would give an event a
 * user or item that no longer exists.
 */
#include "store.h"

#include <string.h>

/* More distinct IDs than this and the cache starts again (about 40 bytes
 * an entry: a few tens of MB at most). */
#define KEYCACHE_MAX (1u << 20)

void cofi__keycache_clear(cofi__keycache *c) {
  cofi__idmap_free(&c->ids);
  cofi__free(c->keys);
  c->keys = NULL;
  c->cap = 0;
}

int64_t cofi__keycache_find(const cofi__keycache *c, const char *id, size_t len) {
  int64_t k = cofi__idmap_find(&c->ids, id, len);
  return k < 0 ? -1 : c->keys[k];
}

int cofi__keycache_put(cofi__keycache *c, const char *id, size_t len, int64_t key) {
  if (c->ids.n >= KEYCACHE_MAX) cofi__keycache_clear(c);
  if (c->ids.n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 1024;
    int64_t *k = cofi__realloc(c->keys, cap * sizeof *k);
    if (!k) return COFI_ERR_NOMEM;
    c->keys = k;
    c->cap = cap;
  }
  uint32_t idx;
  int rc = cofi__idmap_intern(&c->ids, id, len, &idx, NULL);
  if (rc) return rc;
  c->keys[idx] = key;
  return COFI_OK;
}

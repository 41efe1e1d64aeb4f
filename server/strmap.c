/*
 * strmap.c — a string-keyed hash map for the server's in-memory tables
 * (users with new events, cached vectors, item attributes, categories):
 * open addressing with linear probing, grown at 1/2 load, removal by
 * backward shift (no tombstones, so lookups stay short under churn).
 */
#include "online.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_key(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

void srv_strmap_free(srv_strmap *m, void (*free_val)(void *val)) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key) {
      free(m->slots[i].key);
      if (free_val) free_val(m->slots[i].val);
    }
  free(m->slots);
  memset(m, 0, sizeof *m);
}

static size_t find_slot(const srv_strmap *m, const char *key, size_t len, uint64_t h) {
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const srv_strmap_slot *s = &m->slots[i];
    if (!s->key || (s->hash == h && s->len == len && !memcmp(s->key, key, len))) return i;
  }
}

void *srv_strmap_get(const srv_strmap *m, const char *key, size_t len) {
  if (!m->n) return NULL;
  const srv_strmap_slot *s = &m->slots[find_slot(m, key, len, hash_key(key, len))];
  return s->key ? s->val : NULL;
}

static bool grow(srv_strmap *m) {
  size_t cap = m->cap ? 2 * m->cap : 16;
  srv_strmap_slot *slots = calloc(cap, sizeof *slots);
  if (!slots) return false;
  srv_strmap old = *m;
  m->slots = slots;
  m->cap = cap;
  for (size_t i = 0; i < old.cap; i++)
    if (old.slots[i].key) m->slots[find_slot(m, old.slots[i].key, old.slots[i].len, old.slots[i].hash)] = old.slots[i];
  free(old.slots);
  return true;
}

bool srv_strmap_put(srv_strmap *m, const char *key, size_t len, void *val, void **old) {
  if (old) *old = NULL;
  if (2 * (m->n + 1) > m->cap && !grow(m)) return false;
  uint64_t h = hash_key(key, len);
  srv_strmap_slot *s = &m->slots[find_slot(m, key, len, h)];
  if (s->key) {
    if (old) *old = s->val;
    s->val = val;
    return true;
  }
  char *k = malloc(len ? len : 1);
  if (!k) return false;
  memcpy(k, key, len);
  *s = (srv_strmap_slot){k, len, h, val};
  m->n++;
  return true;
}

void *srv_strmap_remove(srv_strmap *m, const char *key, size_t len) {
  if (!m->n) return NULL;
  size_t mask = m->cap - 1;
  size_t i = find_slot(m, key, len, hash_key(key, len));
  if (!m->slots[i].key) return NULL;
  void *val = m->slots[i].val;
  free(m->slots[i].key);
  m->slots[i].key = NULL;
  m->n--;
  /* Backward shift: move later entries of the run into the hole when their
   * home slot is at or before it (cyclically). */
  for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
    size_t home = m->slots[j].hash & mask;
    bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      m->slots[i] = m->slots[j];
      m->slots[j].key = NULL;
      i = j;
    }
  }
  return val;
}

/*
 * idmap.c — string IDs <-> dense indices. Strings live back to back in one
 * blob with an offsets array (the same layout the model file stores, so an
 * opened model borrows both from the mapping); lookups go through an
 * open-addressing table of indices with linear probing.
 */
#include "internal.h"

#include <string.h>

#define EMPTY UINT32_MAX

void cofi__idmap_init(cofi__idmap *m) { memset(m, 0, sizeof *m); }

void cofi__idmap_free(cofi__idmap *m) {
  if (!m) return;
  if (!m->borrowed) {
    cofi__free(m->offsets);
    cofi__free(m->blob);
  }
  cofi__free(m->slots);
  memset(m, 0, sizeof *m);
}

static uint64_t hash_id(const char *s, size_t len) {
  return cofi__hash_bytes(s, len, 0x636f6669ull);
}

const char *cofi__idmap_get(const cofi__idmap *m, uint32_t i, size_t *len) {
  *len = (size_t)(m->offsets[i + 1] - m->offsets[i]);
  /* blob is still NULL while every string so far is empty: NULL + 0 is
   * undefined behaviour (UBSan, found by fuzz_dataset on a header ","). */
  return m->blob ? m->blob + m->offsets[i] : "";
}

int64_t cofi__idmap_find(const cofi__idmap *m, const char *s, size_t len) {
  if (m->n_slots == 0) return -1;
  uint32_t mask = m->n_slots - 1;
  for (uint32_t h = (uint32_t)hash_id(s, len) & mask;; h = (h + 1) & mask) {
    uint32_t idx = m->slots[h];
    if (idx == EMPTY) return -1;
    size_t l;
    const char *t = cofi__idmap_get(m, idx, &l);
    if (l == len && memcmp(t, s, len) == 0) return idx;
  }
}

static void place(uint32_t *slots, uint32_t mask, uint64_t h, uint32_t idx) {
  uint32_t i = (uint32_t)h & mask;
  while (slots[i] != EMPTY) i = (i + 1) & mask;
  slots[i] = idx;
}

/* Rebuilds the table with room for `want` entries at load <= 1/2. */
static int rehash(cofi__idmap *m, uint64_t want) {
  uint64_t n_slots = 16;
  while (n_slots < 2 * want) n_slots *= 2;
  if (n_slots > (1ull << 32)) return COFI_ERR_NOMEM;
  uint32_t *slots = cofi__malloc(n_slots * sizeof *slots);
  if (!slots) return COFI_ERR_NOMEM;
  memset(slots, 0xff, n_slots * sizeof *slots);
  for (uint32_t i = 0; i < m->n; i++) {
    size_t l;
    const char *s = cofi__idmap_get(m, i, &l);
    place(slots, (uint32_t)(n_slots - 1), hash_id(s, l), i);
  }
  cofi__free(m->slots);
  m->slots = slots;
  m->n_slots = (uint32_t)(n_slots > UINT32_MAX ? 0 : n_slots);
  if (n_slots > UINT32_MAX) return COFI_ERR_NOMEM;
  return COFI_OK;
}

int cofi__idmap_intern(cofi__idmap *m, const char *s, size_t len,
                       uint32_t *idx, bool *added) {
  int64_t found = cofi__idmap_find(m, s, len);
  if (found >= 0) {
    *idx = (uint32_t)found;
    if (added) *added = false;
    return COFI_OK;
  }
  if (m->n >= UINT32_MAX - 1) return COFI_ERR_INVALID;
  if (m->n + 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *o = cofi__realloc(m->offsets, cap * sizeof *o);
    if (!o) return COFI_ERR_NOMEM;
    if (!m->offsets) o[0] = 0;
    m->offsets = o;
    m->cap = cap;
  }
  size_t used = m->offsets[m->n];
  if (used + len > m->blob_cap) {
    size_t cap = m->blob_cap ? m->blob_cap : 256;
    while (cap < used + len) cap *= 2;
    char *b = cofi__realloc(m->blob, cap);
    if (!b) return COFI_ERR_NOMEM;
    m->blob = b;
    m->blob_cap = cap;
  }
  if (2 * ((uint64_t)m->n + 1) > m->n_slots) {
    int rc = rehash(m, 2 * ((uint64_t)m->n + 1));
    if (rc) return rc;
  }
  if (len) memcpy(m->blob + used, s, len);
  m->offsets[m->n + 1] = used + len;
  place(m->slots, m->n_slots - 1, hash_id(s, len), m->n);
  *idx = m->n++;
  if (added) *added = true;
  return COFI_OK;
}

int cofi__idmap_borrow(cofi__idmap *m, uint32_t n, const uint64_t *offsets,
                       const char *blob) {
  cofi__idmap_init(m);
  m->borrowed = true;
  m->n = n;
  m->offsets = (uint64_t *)offsets;
  m->blob = (char *)blob;
  int rc = rehash(m, n);
  if (rc) return rc;
  for (uint32_t i = 0; i < n; i++) {
    size_t l;
    const char *s = cofi__idmap_get(m, i, &l);
    if (cofi__idmap_find(m, s, l) != (int64_t)i) return COFI_ERR_CORRUPT;
  }
  return COFI_OK;
}

/* Copies an ID map (strings and index) (e.g. for a model to own). */
int cofi__idmap_copy(const cofi__idmap *src, cofi__idmap *dst) {
  cofi__idmap_init(dst);
  for (uint32_t i = 0; i < src->n; i++) {
    size_t len;
    const char *s = cofi__idmap_get(src, i, &len);
    uint32_t idx;
    int rc = cofi__idmap_intern(dst, s, len, &idx, NULL);
    if (rc) { cofi__idmap_free(dst); return rc; }
  }
  return COFI_OK;
}

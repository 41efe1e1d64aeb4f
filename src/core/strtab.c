/*
 * strtab.c — a growable list of strings in one blob (offsets + bytes), the
 * in-memory twin of the model file's string sections.
 */
#include "internal.h"

#include <string.h>

void cofi__strtab_init(cofi__strtab *t) { memset(t, 0, sizeof *t); }

void cofi__strtab_free(cofi__strtab *t) {
  if (!t) return;
  if (!t->borrowed) {
    cofi__free(t->offsets);
    cofi__free(t->blob);
  }
  memset(t, 0, sizeof *t);
}

int cofi__strtab_push(cofi__strtab *t, const char *s, size_t len) {
  if (t->n + 2 > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint64_t *o = cofi__realloc(t->offsets, cap * sizeof *o);
    if (!o) return COFI_ERR_NOMEM;
    if (!t->offsets) o[0] = 0;
    t->offsets = o;
    t->cap = cap;
  }
  size_t used = t->offsets[t->n];
  if (used + len > t->blob_cap) {
    size_t cap = t->blob_cap ? t->blob_cap : 256;
    while (cap < used + len) cap *= 2;
    char *b = cofi__realloc(t->blob, cap);
    if (!b) return COFI_ERR_NOMEM;
    t->blob = b;
    t->blob_cap = cap;
  }
  if (len) memcpy(t->blob + used, s, len);
  t->offsets[++t->n] = used + len;
  return COFI_OK;
}

const char *cofi__strtab_get(const cofi__strtab *t, size_t i, size_t *len) {
  if (i >= t->n) { *len = 0; return ""; }
  *len = (size_t)(t->offsets[i + 1] - t->offsets[i]);
  /* blob is NULL while every string so far is empty (NULL + 0 is UB). */
  return t->blob ? t->blob + t->offsets[i] : "";
}

/* Copies a string table. */
int cofi__strtab_copy(const cofi__strtab *src, cofi__strtab *dst) {
  cofi__strtab_init(dst);
  for (size_t i = 0; i < src->n; i++) {
    size_t len;
    const char *s = cofi__strtab_get(src, i, &len);
    int rc = cofi__strtab_push(dst, s, len);
    if (rc) { cofi__strtab_free(dst); return rc; }
  }
  return COFI_OK;
}

/*
 * fuzz_model.c — the model file loader (cofi_model_open_memory) on hostile
 * bytes.
 *
 * Every byte of a model file is covered by a checksum, so random mutations
 * would almost never get past the header check and the fuzzer would only
 * ever test that check. Each input is therefore opened twice: as given,
 * and after "fixing it up" the way a forger would: signature, version and
 * byte-order mark set, the recorded size set to the real size, and every
 * checksum (sections, table, header) recomputed over the mutated bytes.
 * The fixed-up copy reaches the structural validation (section bounds,
 * counts against lengths, offsets, CSR ranges, duplicate IDs, factors) that
 * is the real defence against a lying file.
 *
 * A model that opens must then be usable without fault: every accessor and
 * query is run on it, and the ID maps must round-trip (find(id(i)) == i),
 * since validation promises unique IDs.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define HEADER 64u
#define ENTRY 32u

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Makes every checksum and the size field agree with the bytes. */
static void fixup(uint8_t *b, size_t size) {
  memcpy(b, "COFIMODL", 8);
  wr32(b + 8, 1);
  wr32(b + 12, 0x01020304u);
  wr64(b + 16, size);
  uint32_t n = rd32(b + 24);
  uint64_t table = rd64(b + 32);
  if (n >= 1 && n <= 64 && table <= size && (uint64_t)n * ENTRY <= size - table) {
    for (uint32_t i = 0; i < n; i++) {
      uint8_t *e = b + table + (size_t)i * ENTRY;
      uint64_t off = rd64(e + 8), len = rd64(e + 16);
      if (off <= size && len <= size - off)
        wr64(e + 24, cofi__hash_bytes(b + off, (size_t)len, 0));
    }
    wr64(b + 40, cofi__hash_bytes(b + table, (size_t)n * ENTRY, 0));
  }
  wr64(b + 48, cofi__hash_bytes(b, 48, 0));
}

static void check(int ok) {
  if (!ok) __builtin_trap();
}

/* Uses everything an opened model offers; any fault here is a finding. */
static void exercise(const cofi_model *m) {
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  check(info.n_users > 0 && info.n_items > 0 && info.factors > 0);
  cofi_workspace *ws = cofi_workspace_new();
  if (!ws) return;
  enum { K = 16 };
  cofi_scored out[K];
  size_t n_out;
  uint32_t k = info.n_items < K ? info.n_items : K;
  for (uint32_t u = 0; u < info.n_users && u < 4; u++) {
    size_t len;
    const char *id = cofi_model_user_id(m, u, &len);
    check(cofi_model_find_user(m, id, len) == (int64_t)u);
    const uint32_t *items;
    const float *vals;
    size_t n = cofi_model_user_items(m, u, &items, &vals);
    for (size_t t = 0; t < n; t++) check(items[t] < info.n_items);
    cofi_recommend_options opt = cofi_recommend_options_default();
    opt.k = k;
    opt.exclude = n ? items : NULL;
    opt.n_exclude = n;
    if (cofi_recommend_user(m, ws, u, &opt, out, &n_out) == COFI_OK) {
      check(n_out <= k);
      for (size_t t = 0; t < n_out; t++) check(out[t].index < info.n_items);
    }
    if (cofi_similar_users(m, ws, u, k, out, &n_out) == COFI_OK)
      for (size_t t = 0; t < n_out; t++) check(out[t].index < info.n_users);
  }
  for (uint32_t i = 0; i < info.n_items && i < 4; i++) {
    size_t len;
    const char *id = cofi_model_item_id(m, i, &len);
    check(cofi_model_find_item(m, id, len) == (int64_t)i);
    const char *t = cofi_model_item_title(m, i, &len);
    if (t) check(len < info.file_bytes);
    for (uint32_t f = 0; f < info.n_item_fields && f < 4; f++) {
      cofi_model_item_field_name(m, f, &len);
      cofi_model_item_field(m, i, f, &len);
    }
    if (cofi_similar_items(m, ws, i, k, out, &n_out) == COFI_OK)
      for (size_t t2 = 0; t2 < n_out; t2++) check(out[t2].index < info.n_items);
  }
  /* Out-of-range indices are refused, not read. */
  check(cofi_recommend_user(m, ws, info.n_users, &(cofi_recommend_options){.k = 1}, out,
                            &n_out) != COFI_OK);
  check(cofi_similar_items(m, ws, info.n_items, 1, out, &n_out) != COFI_OK);
  /* Cold start from the first and last item. */
  float *vec = malloc(sizeof(float) * info.factors);
  if (vec) {
    uint32_t liked[2] = {0, info.n_items - 1};
    size_t n_liked = info.n_items > 1 ? 2 : 1;
    if (cofi_fold_in(m, ws, liked, NULL, n_liked, vec) == COFI_OK) {
      cofi_recommend_options opt = cofi_recommend_options_default();
      opt.k = k;
      cofi_recommend_vector(m, ws, vec, liked, n_liked, &opt, out, &n_out);
    }
    free(vec);
  }
  cofi_workspace_free(ws);
}

static void try_open(const uint8_t *b, size_t size) {
  cofi_model *m = NULL;
  cofi_diag d;
  int rc = cofi_model_open_memory(b, size, &m, &d);
  if (rc == COFI_OK) {
    check(m != NULL);
    exercise(m);
  } else {
    check(m == NULL && rc < 0 && d.message[0] != 0);
  }
  cofi_model_close(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try_open(data, size);
  if (size < HEADER || size > ((size_t)1 << 22)) return 0;
  uint8_t *copy = malloc(size);
  if (!copy) return 0;
  memcpy(copy, data, size);
  fixup(copy, size);
  try_open(copy, size);
  free(copy);
  return 0;
}

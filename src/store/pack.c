/*
 * pack.c — the byte layout of an event pack (docs/store.md, "Event
 * packs"): up to COFI__PACK_EVENTS consecutive events of cofi_events in
 * one blob, column by column, each integer column stored as offsets from
 * its smallest value in as few bytes as its largest offset needs. A
 * training scan decodes a pack with a few loads per event instead of
 * SQLite's per-row record decoding (about 180 ns per event for six
 * columns). The packs are a cache: cofi_events stays the truth.
 *
 * Layout (little-endian):
 *   u8  version (1)
 *   u32 n                      events, >= 1
 *   5 x {u8 width, i64 base}   seq, ukey, ikey, event code, ts
 *   u8  ts presence            0 all present, 1 none, 2 a bitmap follows
 *   u8  value width            0 all equal (one f64 follows), 4 f32, 8 f64
 *   [f64 the common value]
 *   arrays: seq, ukey, ikey, code, ts (n x width bytes each; seq's
 *           width 0 means base + k), the ts bitmap ((n + 7) / 8 bytes),
 *           the values (n x value width)
 *   8 zero bytes (so that any element can be read with one 8-byte load)
 */
#include "store.h"

#include <float.h>
#include <math.h>
#include <string.h>

enum { COLS = 5, C_SEQ = 0, C_USER, C_ITEM, C_CODE, C_TS };

static void put_u64(unsigned char *p, uint64_t x, int bytes) {
  for (int b = 0; b < bytes; b++) p[b] = (unsigned char)(x >> (8 * b));
}

static uint64_t get_u64(const unsigned char *p, int bytes) {
  uint64_t x = 0;
  for (int b = 0; b < bytes; b++) x |= (uint64_t)p[b] << (8 * b);
  return x;
}

/* An element of width w (1..8) at p: one unaligned load and a mask on a
 * little-endian machine (the blob has 8 bytes of padding). */
static inline uint64_t load(const unsigned char *p, int w, uint64_t mask) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t x;
  memcpy(&x, p, 8);
  return x & mask;
#else
  (void)mask;
  return get_u64(p, w);
#endif
}

static int width_of(uint64_t max) {
  int w = 0;
  while (w < 8 && (max >> (8 * w))) w++;
  return w;
}

static int64_t col(const cofi__store_row *r, int c) {
  switch (c) {
  case C_SEQ: return (int64_t)r->seq;
  case C_USER: return r->user;
  case C_ITEM: return r->item;
  case C_CODE: return r->code;
  default: return r->has_ts ? r->ts : 0;
  }
}

int cofi__pack_encode(const cofi__store_row *rows, size_t n, unsigned char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (n == 0 || n > COFI__PACK_EVENTS) return COFI_ERR_INVALID;
  int64_t base[COLS];
  int w[COLS];
  for (int c = 0; c < COLS; c++) {
    int64_t lo = col(&rows[0], c), hi = lo;
    for (size_t k = 1; k < n; k++) {
      int64_t x = col(&rows[k], c);
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    base[c] = lo;
    w[c] = width_of((uint64_t)hi - (uint64_t)lo);
  }
  /* seq: width 0 when consecutive (the usual case after an import) */
  bool consecutive = true;
  for (size_t k = 1; k < n && consecutive; k++)
    consecutive = rows[k].seq == rows[0].seq + k;
  if (consecutive) w[C_SEQ] = 0;
  size_t with_ts = 0;
  for (size_t k = 0; k < n; k++) with_ts += rows[k].has_ts;
  int ts_mode = with_ts == n ? 0 : with_ts == 0 ? 1 : 2;
  if (ts_mode == 1) w[C_TS] = 0, base[C_TS] = 0;
  bool all_same = true, all_float = true;
  for (size_t k = 0; k < n; k++) {
    double v = rows[k].value;
    if (memcmp(&v, &rows[0].value, sizeof v)) all_same = false;
    /* (float)v is undefined beyond the float range: test that first */
    if (!(fabs(v) <= FLT_MAX) || (double)(float)v != v) all_float = false;
  }
  int vw = all_same ? 0 : all_float ? 4 : 8;
  size_t bytes = 1 + 4 + COLS * 9 + 2 + (vw == 0 ? 8 : 0);
  for (int c = 0; c < COLS; c++) bytes += n * (size_t)w[c];
  if (ts_mode == 2) bytes += (n + 7) / 8;
  bytes += n * (size_t)vw + 8;
  unsigned char *p = cofi__calloc(1, bytes);
  if (!p) return COFI_ERR_NOMEM;
  unsigned char *o = p;
  *o++ = 1;
  put_u64(o, n, 4);
  o += 4;
  for (int c = 0; c < COLS; c++) {
    *o++ = (unsigned char)w[c];
    put_u64(o, (uint64_t)base[c], 8);
    o += 8;
  }
  *o++ = (unsigned char)ts_mode;
  *o++ = (unsigned char)vw;
  if (vw == 0) {
    uint64_t bits;
    memcpy(&bits, &rows[0].value, 8);
    put_u64(o, bits, 8);
    o += 8;
  }
  for (int c = 0; c < COLS; c++) {
    if (!w[c]) continue;
    for (size_t k = 0; k < n; k++, o += w[c])
      put_u64(o, (uint64_t)col(&rows[k], c) - (uint64_t)base[c], w[c]);
  }
  if (ts_mode == 2) {
    for (size_t k = 0; k < n; k++)
      if (rows[k].has_ts) o[k / 8] |= (unsigned char)(1u << (k % 8));
    o += (n + 7) / 8;
  }
  for (size_t k = 0; k < n && vw; k++, o += vw) {
    if (vw == 4) {
      float f = (float)rows[k].value;
      uint32_t bits;
      memcpy(&bits, &f, 4);
      put_u64(o, bits, 4);
    } else {
      uint64_t bits;
      memcpy(&bits, &rows[k].value, 8);
      put_u64(o, bits, 8);
    }
  }
  *out = p;
  *len = bytes;
  return COFI_OK;
}

int cofi__pack_decode(const unsigned char *p, size_t len, int64_t lo, int64_t hi,
                      cofi__row_fn fn, void *ctx, const char **problem) {
  *problem = NULL;
  const size_t head = 1 + 4 + COLS * 9 + 2;
  if (len < head + 8 || p[0] != 1) {
    *problem = "unknown pack version or truncated header";
    return COFI_ERR_CORRUPT;
  }
  size_t n = (size_t)get_u64(p + 1, 4);
  int w[COLS];
  int64_t base[COLS];
  uint64_t mask[COLS];
  const unsigned char *arr[COLS];
  for (int c = 0; c < COLS; c++) {
    w[c] = p[5 + 9 * c];
    base[c] = (int64_t)get_u64(p + 6 + 9 * c, 8);
  }
  int ts_mode = p[head - 2], vw = p[head - 1];
  if (n == 0 || n > COFI__PACK_EVENTS || ts_mode > 2 || (vw != 0 && vw != 4 && vw != 8)) {
    *problem = "bad pack header";
    return COFI_ERR_CORRUPT;
  }
  for (int c = 0; c < COLS; c++) {
    if (w[c] > 8) {
      *problem = "bad column width";
      return COFI_ERR_CORRUPT;
    }
    mask[c] = w[c] == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * w[c])) - 1;
  }
  size_t need = head + (vw == 0 ? 8 : 0);
  for (int c = 0; c < COLS; c++) need += n * (size_t)w[c];
  if (ts_mode == 2) need += (n + 7) / 8;
  need += n * (size_t)vw + 8;
  if (need != len) {
    *problem = "pack length does not match its header";
    return COFI_ERR_CORRUPT;
  }
  const unsigned char *o = p + head;
  double common = 0;
  if (vw == 0) {
    uint64_t bits = get_u64(o, 8);
    memcpy(&common, &bits, 8);
    o += 8;
  }
  for (int c = 0; c < COLS; c++) {
    arr[c] = o;
    o += n * (size_t)w[c];
  }
  const unsigned char *bitmap = ts_mode == 2 ? o : NULL;
  if (bitmap) o += (n + 7) / 8;
  const unsigned char *vals = o;
  cofi__store_row r;
  memset(&r, 0, sizeof r);
  uint64_t last = 0;
#define COL(c, k)                                                                          \
  ((int64_t)((uint64_t)base[c] +                                                           \
             (w[c] ? load(arr[c] + (k) * (size_t)w[c], w[c], mask[c]) : 0)))
  for (size_t k = 0; k < n; k++) {
    uint64_t seq = w[C_SEQ] ? (uint64_t)COL(C_SEQ, k) : (uint64_t)base[C_SEQ] + k;
    if (k && seq <= last) {
      *problem = "seq not increasing";
      return COFI_ERR_CORRUPT;
    }
    last = seq;
    if ((int64_t)seq <= lo) continue;
    if ((int64_t)seq > hi) break;
    r.seq = seq;
    r.user = COL(C_USER, k);
    r.item = COL(C_ITEM, k);
    r.code = COL(C_CODE, k);
    r.has_ts = ts_mode == 0 || (bitmap && (bitmap[k / 8] >> (k % 8) & 1));
    r.ts = r.has_ts ? COL(C_TS, k) : 0;
    if (vw == 0) r.value = common;
    else if (vw == 4) {
      uint32_t bits = (uint32_t)load(vals + 4 * k, 4, 0xffffffffu);
      float f;
      memcpy(&f, &bits, 4);
      r.value = f;
    } else {
      uint64_t bits = load(vals + 8 * k, 8, UINT64_MAX);
      memcpy(&r.value, &bits, 8);
    }
    int rc = fn(ctx, &r);
    if (rc) return rc;
  }
#undef COL
  return COFI_OK;
}

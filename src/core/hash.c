/*
 * hash.c — one 64-bit hash for ID lookup, section checksums and data
 * fingerprints. Four independent multiply-rotate lanes over 8-byte words
 * (so it runs at several GB/s), then a finalizer; little-endian reads, so
 * the value is the same on every machine this format supports.
 */
#include "internal.h"

#include <string.h>

static const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full,
                      P3 = 0x165667B19E3779F9ull, P4 = 0x85EBCA77C2B2AE63ull;

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint64_t round64(uint64_t acc, uint64_t in) {
  acc += in * P2;
  return rotl(acc, 31) * P1;
}
static inline uint64_t mix(uint64_t h) {
  h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;
  return h;
}

uint64_t cofi__hash_bytes(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data;
  size_t n = len;
  uint64_t h;
  if (n >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    while (n >= 32) {
      v1 = round64(v1, rd64(p)); v2 = round64(v2, rd64(p + 8));
      v3 = round64(v3, rd64(p + 16)); v4 = round64(v4, rd64(p + 24));
      p += 32; n -= 32;
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = (h ^ round64(0, v1)) * P1 + P4;
    h = (h ^ round64(0, v2)) * P1 + P4;
    h = (h ^ round64(0, v3)) * P1 + P4;
    h = (h ^ round64(0, v4)) * P1 + P4;
  } else {
    h = seed + P3;
  }
  h += (uint64_t)len;
  while (n >= 8) { h ^= round64(0, rd64(p)); h = rotl(h, 27) * P1 + P4; p += 8; n -= 8; }
  while (n > 0) { h ^= (*p++) * P3; h = rotl(h, 11) * P1; n--; }
  return mix(h);
}

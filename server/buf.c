/*
 * buf.c — the server's output buffer and JSON writer.
 *
 * Responses are written by hand into a buffer that belongs to the
 * connection and is reused for every request on it, so a response costs no
 * allocation once the buffer has grown to its working size. Strings are
 * escaped here, and only here: quotes, backslashes and control characters
 * get JSON escapes, and bytes that are not valid UTF-8 (client input can be
 * anything) become U+FFFD, so every document the server sends is valid
 * JSON whatever it echoes.
 */
#include "srv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_buf_init(srv_buf *b) { memset(b, 0, sizeof *b); }

void srv_buf_free(srv_buf *b) {
  free(b->p);
  srv_buf_init(b);
}

bool srv_buf_reserve(srv_buf *b, size_t extra) {
  if (b->oom) return false;
  if (extra <= b->cap - b->len) return true;
  size_t want = b->len + extra;
  if (want < b->len) goto fail; /* overflow */
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < want) {
    if (cap > SIZE_MAX / 2) goto fail;
    cap *= 2;
  }
  char *p = realloc(b->p, cap);
  if (!p) goto fail;
  b->p = p;
  b->cap = cap;
  return true;
fail:
  b->oom = true;
  return false;
}

void srv_buf_put(srv_buf *b, const void *s, size_t n) {
  if (!srv_buf_reserve(b, n)) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

void srv_buf_putc(srv_buf *b, char c) {
  if (!srv_buf_reserve(b, 1)) return;
  b->p[b->len++] = c;
}

/* Length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80),
 * or 0 when it is not one (overlong forms, surrogates and code points
 * above U+10FFFF are invalid, as RFC 3629 says). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c == 0xE0) { len = 3; lo = 0xA0; }
  else if (c >= 0xE1 && c <= 0xEC) len = 3;
  else if (c == 0xED) { len = 3; hi = 0x9F; }
  else if (c >= 0xEE && c <= 0xEF) len = 3;
  else if (c == 0xF0) { len = 4; lo = 0x90; }
  else if (c >= 0xF1 && c <= 0xF3) len = 4;
  else if (c == 0xF4) { len = 4; hi = 0x8F; }
  else return 0;
  if (n < len) return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return len;
}

void srv_buf_json_str(srv_buf *b, const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  /* Worst case: every byte becomes \ufffd (6 bytes). Reserving it up front
   * keeps the loop free of capacity checks. */
  if (n > (SIZE_MAX - 2) / 6 || !srv_buf_reserve(b, n * 6 + 2)) {
    b->oom = true;
    return;
  }
  char *o = b->p + b->len;
  *o++ = '"';
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' &&
           s[run] != '\\')
      run++;
    if (run > i) {
      memcpy(o, s + i, run - i);
      o += run - i;
      i = run;
      if (i == n) break;
    }
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
      i++;
    } else if (c < 0x20) {
      *o++ = '\\';
      switch (c) {
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
          *o++ = 'u'; *o++ = '0'; *o++ = '0';
          *o++ = hex[c >> 4]; *o++ = hex[c & 15];
      }
      i++;
    } else {
      size_t len = utf8_seq(s + i, n - i);
      if (len) {
        memcpy(o, s + i, len);
        o += len;
        i += len;
      } else {
        memcpy(o, "\\ufffd", 6);
        o += 6;
        i++;
      }
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->p);
}

void srv_buf_u64(srv_buf *b, uint64_t v) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  srv_buf_put(b, tmp + i, sizeof tmp - i);
}

/* 10^0 .. 10^12, all exact in a double. */
static const double pow10_tab[13] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6,
                                     1e7, 1e8, 1e9, 1e10, 1e11, 1e12};

/* Exactly what snprintf "%.9g" writes, without snprintf for the values a
 * recommender prints (scores and similarities, 1e-4 <= |v| < 1e9), which
 * is a few percent of a /recommend answer's CPU otherwise. The value is
 * scaled to a 9-digit integer: with 10^(8-e) exact, the product is off by
 * at most 2^-53 relative, i.e. 1.2e-7 absolute below 1e9, so rounding to
 * the nearest integer is printf's correctly rounded result unless the
 * scaled value is within that of a tie; those (and other ranges) go to
 * snprintf. test_server_core.c checks this against snprintf on random
 * floats. */
int srv_format_g9(char *out, double v) {
  double a = fabs(v);
  if (!(a >= 1e-4 && a < 1e9)) return snprintf(out, 32, "%.9g", v);
  int e = 0; /* decimal exponent: 10^e <= a < 10^(e+1), fixed below */
  while (e < 8 && a >= pow10_tab[e + 1]) e++;
  if (a < 1.0) {
    e = -1;
    while (e > -4 && a * pow10_tab[-e] < 1.0) e--;
  }
  uint64_t m = 0;
  for (int tries = 0; tries < 3; tries++) {
    double scaled = 8 - e >= 0 ? a * pow10_tab[8 - e] : a / pow10_tab[e - 8];
    double fl = floor(scaled), frac = scaled - fl;
    if (fabs(frac - 0.5) < 1e-6) return snprintf(out, 32, "%.9g", v);
    m = (uint64_t)fl + (frac > 0.5);
    if (m < 100000000u) e--;
    else if (m >= 1000000000u) e++;
    else break;
  }
  if (m < 100000000u || m >= 1000000000u || e < -4 || e > 8) return snprintf(out, 32, "%.9g", v);
  char digits[9];
  for (int i = 8; i >= 0; i--) {
    digits[i] = (char)('0' + m % 10);
    m /= 10;
  }
  int nd = 9; /* significant digits kept: trailing zeros go */
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  int o = 0;
  if (v < 0) out[o++] = '-';
  if (e >= 0) {
    for (int i = 0; i <= e; i++) out[o++] = i < nd ? digits[i] : '0';
    if (nd > e + 1) {
      out[o++] = '.';
      for (int i = e + 1; i < nd; i++) out[o++] = digits[i];
    }
  } else {
    out[o++] = '0';
    out[o++] = '.';
    for (int i = 0; i < -e - 1; i++) out[o++] = '0';
    for (int i = 0; i < nd; i++) out[o++] = digits[i];
  }
  out[o] = 0;
  return o;
}

void srv_buf_float(srv_buf *b, double v) {
  if (!isfinite(v)) {
    srv_buf_lit(b, "null");
    return;
  }
  char tmp[32];
  int n = srv_format_g9(tmp, v);
  if (n > 0) srv_buf_put(b, tmp, (size_t)n);
}

void srv_buf_printf(srv_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[256];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  if (n < 0) {
    va_end(ap2);
    va_end(ap);
    return;
  }
  if ((size_t)n < sizeof tmp) {
    srv_buf_put(b, tmp, (size_t)n);
  } else if (srv_buf_reserve(b, (size_t)n + 1)) {
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
  }
  va_end(ap2);
  va_end(ap);
}

void srv_buf_error_member(srv_buf *b, const srv_error *e) {
  srv_buf_lit(b, "\"error\":{\"code\":");
  srv_buf_json_str(b, e->code, strlen(e->code));
  srv_buf_lit(b, ",\"message\":");
  srv_buf_json_str(b, e->message, strlen(e->message));
  srv_buf_putc(b, '}');
}

void srv_buf_error(srv_buf *b, const srv_error *e) {
  srv_buf_putc(b, '{');
  srv_buf_error_member(b, e);
  srv_buf_putc(b, '}');
}

bool srv_fail(srv_error *e, int status, const char *code, const char *fmt, ...) {
  e->status = status;
  e->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return false;
}

int srv_diag_fail(cofi_diag *diag, int code, const char *file, const char *fmt, ...) {
  if (diag) {
    snprintf(diag->file, sizeof diag->file, "%s", file ? file : "");
    diag->line = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(diag->message, sizeof diag->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

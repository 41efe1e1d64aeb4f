/*
 * json.c — the little JSON the store needs without a JSON library: a
 * checker for the text columns (labels and categories are arrays of
 * strings, fields an object), a walk over an object's members (item
 * fields become model metadata), and a string writer. Also the UTF-8
 * check every stored string goes through.
 *
 * The checker follows RFC 8259 strictly (no comments, no trailing commas,
 * no NaN), limits nesting to 64 levels, and requires valid UTF-8.
 */
#include "store.h"

#include <stdio.h>
#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the valid sequence at s[i] (1..4) or 0 (Unicode 15, table 3-7:
 * no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t i) {
  unsigned char c = s[i];
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + len > n) return 0;
  if (s[i + 1] < lo || s[i + 1] > hi) return 0;
  for (size_t k = 2; k < len; k++)
    if (s[i + k] < 0x80 || s[i + k] > 0xbf) return 0;
  return len;
}

const char *cofi__utf8_problem(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  for (size_t i = 0; i < n;) {
    if (s[i] == 0) return "contains a NUL byte";
    if (s[i] < 0x80) { i++; continue; }
    size_t len = utf8_seq(s, n, i);
    if (!len) return "is not valid UTF-8";
    i += len;
  }
  return NULL;
}

/* ---- checking ---------------------------------------------------------- */

typedef struct jp {
  const unsigned char *s;
  size_t n, i;
  const char *err;
} jp;

static void ws(jp *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
                         p->s[p->i] == '\n' || p->s[p->i] == '\r'))
    p->i++;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A string at p->i (the opening quote); unescaped into out when not NULL. */
static bool str(jp *p, cofi__buf *out, bool *oom) {
  p->i++;
  while (p->i < p->n) {
    unsigned char c = p->s[p->i];
    if (c == '"') { p->i++; return true; }
    if (c < 0x20) { p->err = "a control character inside a string"; return false; }
    if (c == '\\') {
      if (p->i + 1 >= p->n) break;
      unsigned char e = p->s[p->i + 1];
      const char *rep = NULL;
      switch (e) {
        case '"': rep = "\""; break;
        case '\\': rep = "\\"; break;
        case '/': rep = "/"; break;
        case 'b': rep = "\b"; break;
        case 'f': rep = "\f"; break;
        case 'n': rep = "\n"; break;
        case 'r': rep = "\r"; break;
        case 't': rep = "\t"; break;
        case 'u': break;
        default: p->err = "a bad escape in a string"; return false;
      }
      if (rep) {
        if (out && cofi__buf_put(out, rep, 1)) { *oom = true; return false; }
        p->i += 2;
        continue;
      }
      uint32_t cp = 0;
      for (int k = 0; k < 4; k++) {
        int h = p->i + 2 + (size_t)k < p->n ? hexval(p->s[p->i + 2 + k]) : -1;
        if (h < 0) { p->err = "a bad \\u escape in a string"; return false; }
        cp = cp * 16 + (uint32_t)h;
      }
      p->i += 6;
      if (cp >= 0xd800 && cp <= 0xdbff) { /* a high surrogate needs its pair */
        uint32_t lo = 0;
        bool ok = p->i + 6 <= p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u';
        for (int k = 0; ok && k < 4; k++) {
          int h = hexval(p->s[p->i + 2 + k]);
          if (h < 0) ok = false;
          else lo = lo * 16 + (uint32_t)h;
        }
        if (!ok || lo < 0xdc00 || lo > 0xdfff) {
          p->err = "an unpaired surrogate in a string";
          return false;
        }
        p->i += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        p->err = "an unpaired surrogate in a string";
        return false;
      }
      if (cp == 0) { p->err = "a NUL character in a string"; return false; }
      if (out) {
        char u[4];
        size_t len;
        if (cp < 0x80) { u[0] = (char)cp; len = 1; }
        else if (cp < 0x800) {
          u[0] = (char)(0xc0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3f)); len = 2;
        } else if (cp < 0x10000) {
          u[0] = (char)(0xe0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
          u[2] = (char)(0x80 | (cp & 0x3f)); len = 3;
        } else {
          u[0] = (char)(0xf0 | cp >> 18); u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
          u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); u[3] = (char)(0x80 | (cp & 0x3f));
          len = 4;
        }
        if (cofi__buf_put(out, u, len)) { *oom = true; return false; }
      }
      continue;
    }
    size_t len = c < 0x80 ? 1 : utf8_seq(p->s, p->n, p->i);
    if (!len) { p->err = "invalid UTF-8 inside a string"; return false; }
    if (out && cofi__buf_put(out, (const char *)p->s + p->i, len)) {
      *oom = true;
      return false;
    }
    p->i += len;
  }
  p->err = "an unterminated string";
  return false;
}

static bool number(jp *p) {
  size_t i = p->i;
  if (i < p->n && p->s[i] == '-') i++;
  if (i < p->n && p->s[i] == '0') i++;
  else if (i < p->n && p->s[i] >= '1' && p->s[i] <= '9')
    while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
  else goto bad;
  if (i < p->n && p->s[i] == '.') {
    size_t f = ++i;
    while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
    if (i == f) goto bad;
  }
  if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
    i++;
    if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
    size_t e = i;
    while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
    if (i == e) goto bad;
  }
  p->i = i;
  return true;
bad:
  p->err = "a malformed number";
  return false;
}

static bool lit(jp *p, const char *w) {
  size_t n = strlen(w);
  if (p->i + n <= p->n && memcmp(p->s + p->i, w, n) == 0) {
    p->i += n;
    return true;
  }
  p->err = "an unexpected character";
  return false;
}

static bool value(jp *p, int depth) {
  bool oom = false;
  if (depth > 64) { p->err = "nesting deeper than 64 levels"; return false; }
  ws(p);
  if (p->i >= p->n) { p->err = "a value is missing"; return false; }
  unsigned char c = p->s[p->i];
  if (c == '"') return str(p, NULL, &oom);
  if (c == '{' || c == '[') {
    unsigned char close = c == '{' ? '}' : ']';
    p->i++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; return true; }
    for (;;) {
      if (c == '{') {
        ws(p);
        if (p->i >= p->n || p->s[p->i] != '"') { p->err = "an object key must be a string"; return false; }
        if (!str(p, NULL, &oom)) return false;
        ws(p);
        if (p->i >= p->n || p->s[p->i] != ':') { p->err = "a ':' is missing"; return false; }
        p->i++;
      }
      if (!value(p, depth + 1)) return false;
      ws(p);
      if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
      if (p->i < p->n && p->s[p->i] == close) { p->i++; return true; }
      p->err = c == '{' ? "a ',' or '}' is missing" : "a ',' or ']' is missing";
      return false;
    }
  }
  if (c == 't') return lit(p, "true");
  if (c == 'f') return lit(p, "false");
  if (c == 'n') return lit(p, "null");
  return number(p);
}

const char *cofi__json_problem(const char *s, size_t n, int kind) {
  jp p = {(const unsigned char *)s, n, 0, NULL};
  ws(&p);
  char want = kind == COFI__JSON_OBJECT ? '{' : '[';
  if (p.i >= n || s[p.i] != want)
    return kind == COFI__JSON_OBJECT ? "is not a JSON object" : "is not a JSON array";
  if (!value(&p, 0)) return p.err;
  ws(&p);
  if (p.i != n) return "has text after the JSON value";
  if (kind == COFI__JSON_STRINGS) { /* every element a string */
    p.i = 0;
    ws(&p);
    p.i++;
    ws(&p);
    if (p.s[p.i] == ']') return NULL;
    for (;;) {
      ws(&p);
      bool oom = false;
      if (p.s[p.i] != '"' || !str(&p, NULL, &oom)) return "is not an array of strings";
      ws(&p);
      if (p.s[p.i++] == ']') return NULL;
    }
  }
  return NULL;
}

int cofi__json_members(const char *s, size_t n, cofi__json_member_fn fn, void *ctx) {
  jp p = {(const unsigned char *)s, n, 0, NULL};
  cofi__buf key = {0}, val = {0};
  int rc = COFI_OK;
  bool oom = false;
  ws(&p);
  if (p.i >= n || s[p.i] != '{') { rc = COFI_ERR_INVALID; goto done; }
  p.i++;
  ws(&p);
  if (p.i < n && s[p.i] == '}') goto done;
  for (;;) {
    ws(&p);
    key.n = val.n = 0;
    if (p.i >= n || s[p.i] != '"' || !str(&p, &key, &oom)) {
      rc = oom ? COFI_ERR_NOMEM : COFI_ERR_INVALID;
      goto done;
    }
    ws(&p);
    if (p.i >= n || s[p.i] != ':') { rc = COFI_ERR_INVALID; goto done; }
    p.i++;
    ws(&p);
    if (p.i < n && s[p.i] == '"') {
      if (!str(&p, &val, &oom)) { rc = oom ? COFI_ERR_NOMEM : COFI_ERR_INVALID; goto done; }
    } else {
      size_t start = p.i;
      if (!value(&p, 1)) { rc = COFI_ERR_INVALID; goto done; }
      if (cofi__buf_put(&val, s + start, p.i - start)) { rc = COFI_ERR_NOMEM; goto done; }
    }
    if (cofi__buf_put(&key, "", 1) || cofi__buf_put(&val, "", 1)) {
      rc = COFI_ERR_NOMEM;
      goto done;
    }
    if ((rc = fn(ctx, key.p, key.n - 1, val.p, val.n - 1))) goto done;
    ws(&p);
    if (p.i < n && s[p.i] == ',') { p.i++; continue; }
    break;
  }
done:
  cofi__buf_free(&key);
  cofi__buf_free(&val);
  return rc;
}

/* ---- writing ----------------------------------------------------------- */

int cofi__buf_put(cofi__buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) {
      if (cap > SIZE_MAX / 2) return COFI_ERR_NOMEM;
      cap *= 2;
    }
    char *p = cofi__realloc(b->p, cap);
    if (!p) return COFI_ERR_NOMEM;
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
  return COFI_OK;
}

int cofi__buf_json_string(cofi__buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (cofi__buf_put(b, "\"", 1)) return COFI_ERR_NOMEM;
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    if (cofi__buf_put(b, s + run, i - run)) return COFI_ERR_NOMEM;
    char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    if (c == '"' || c == '\\') {
      e[1] = (char)c;
      if (cofi__buf_put(b, e, 2)) return COFI_ERR_NOMEM;
    } else if (cofi__buf_put(b, e, 6)) {
      return COFI_ERR_NOMEM;
    }
    run = i + 1;
  }
  if (cofi__buf_put(b, s + run, n - run) || cofi__buf_put(b, "\"", 1)) return COFI_ERR_NOMEM;
  return COFI_OK;
}

void cofi__buf_free(cofi__buf *b) {
  cofi__free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

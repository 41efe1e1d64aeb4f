/*
 * feedback_fast.c — POST /feedback bodies read without building a JSON
 * tree: the common shape only, and nothing it is unsure of.
 *
 * jansson (tree built, then freed) was a quarter of the server's CPU for
 * batches of 100 events (docs/performance.md). This reader walks the body
 * once and points the events' strings into a copy of it. It takes only
 * what it reads exactly as the jansson path would: strings without escapes
 * or control characters, integer IDs and timestamps in canonical form (at
 * most 18 digits, which "%lld" prints back identically), values without a
 * sign or exponent and with at most 15 digits (strtod then gives the
 * double jansson gives), each field at most once, nothing after the
 * document. Anything else — a malformed body, an escape, an unknown field,
 * a nested value — makes it decline, and the caller runs the jansson path,
 * which accepts or refuses with its own, precise message. So the answers
 * to bad requests do not change, and test_feedback_fast checks that every
 * body it takes, jansson reads into the same events.
 */
#include "srv.h"

#include <stdlib.h>
#include <string.h>

typedef struct cursor {
  const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static bool take(cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return true;
  }
  return false;
}

/* A string without escapes or control characters: its bytes. */
static bool plain_string(cursor *c, const char **s, size_t *n) {
  skip_ws(c);
  if (c->p >= c->end || *c->p != '"') return false;
  const char *b = ++c->p;
  for (; c->p < c->end; c->p++) {
    unsigned char ch = (unsigned char)*c->p;
    if (ch == '"') {
      *s = b;
      *n = (size_t)(c->p - b);
      c->p++;
      return true;
    }
    if (ch == '\\' || ch < 0x20) return false;
  }
  return false;
}

/* -?(0|[1-9][0-9]{0,17}), not "-0", not followed by a fraction or an
 * exponent: the token (as "%lld" would print it) and its value. */
static bool canonical_integer(cursor *c, const char **s, size_t *n, int64_t *v) {
  skip_ws(c);
  const char *b = c->p, *q = b;
  bool neg = q < c->end && *q == '-';
  if (neg) q++;
  const char *d = q;
  int64_t x = 0;
  while (q < c->end && *q >= '0' && *q <= '9') x = x * 10 + (*q++ - '0');
  size_t nd = (size_t)(q - d);
  if (nd == 0 || nd > 18 || (nd > 1 && *d == '0') || (neg && x == 0)) return false;
  if (q < c->end && (*q == '.' || *q == 'e' || *q == 'E')) return false;
  *s = b;
  *n = (size_t)(q - b);
  *v = neg ? -x : x;
  c->p = q;
  return true;
}

/* (0|[1-9][0-9]*)(.[0-9]+)? with at most 15 digits in all. */
static bool plain_number(cursor *c, double *v) {
  skip_ws(c);
  const char *b = c->p, *q = b;
  size_t digits = 0;
  const char *d = q;
  while (q < c->end && *q >= '0' && *q <= '9') q++, digits++;
  if (digits == 0 || (digits > 1 && *d == '0')) return false;
  if (q < c->end && *q == '.') {
    q++;
    size_t frac = 0;
    while (q < c->end && *q >= '0' && *q <= '9') q++, frac++;
    if (frac == 0) return false;
    digits += frac;
  }
  if (digits > 15 || (q < c->end && (*q == 'e' || *q == 'E'))) return false;
  char buf[24];
  memcpy(buf, b, (size_t)(q - b));
  buf[q - b] = 0;
  *v = strtod(buf, NULL);
  c->p = q;
  return true;
}

static bool null_token(cursor *c) {
  skip_ws(c);
  if (c->end - c->p >= 4 && !memcmp(c->p, "null", 4)) {
    c->p += 4;
    return true;
  }
  return false;
}

enum { F_USER, F_ITEM, F_EVENT, F_VALUE, F_TS, N_FIELDS };
static const char *const field_names[N_FIELDS] = {"user_id", "item_id", "event", "value",
                                                  "timestamp"};

static int field_of(const char *k, size_t n) {
  for (int f = 0; f < N_FIELDS; f++)
    if (strlen(field_names[f]) == n && !memcmp(field_names[f], k, n)) return f;
  return -1;
}

/* One event object, as parse_event (store_routes.c) fills it. */
static bool event_object(cursor *c, int64_t now, cofi_store_event *ev) {
  memset(ev, 0, sizeof *ev);
  ev->value = 1.0;
  ev->timestamp = now;
  ev->has_timestamp = 1;
  bool seen[N_FIELDS] = {false};
  if (!take(c, '{')) return false;
  do {
    const char *k, *s;
    size_t kn, n;
    int64_t x;
    if (!plain_string(c, &k, &kn) || !take(c, ':')) return false;
    int f = field_of(k, kn);
    if (f < 0 || seen[f]) return false;
    seen[f] = true;
    switch (f) {
    case F_USER:
    case F_ITEM:
      if (!plain_string(c, &s, &n) && !canonical_integer(c, &s, &n, &x)) return false;
      if (f == F_USER) ev->user_id = s, ev->user_len = n;
      else ev->item_id = s, ev->item_len = n;
      break;
    case F_EVENT:
      if (!plain_string(c, &ev->event, &ev->event_len)) return false;
      break;
    case F_VALUE:
      if (!null_token(c) && !plain_number(c, &ev->value)) return false;
      break;
    default: /* F_TS */
      if (!null_token(c)) {
        if (!canonical_integer(c, &s, &n, &x)) return false;
        ev->timestamp = x;
      }
    }
  } while (take(c, ','));
  return take(c, '}') && seen[F_USER] && seen[F_ITEM] && seen[F_EVENT];
}

bool srv_feedback_fast(const char *body, size_t len, int64_t now, size_t max_events,
                       cofi_store_event **evs_out, size_t *n_out, char **text_out) {
  *evs_out = NULL;
  *n_out = 0;
  *text_out = NULL;
  char *text = malloc(len ? len : 1);
  if (!text) return false;
  if (len) memcpy(text, body, len);
  cursor c = {text, text + len};
  cofi_store_event *evs = NULL;
  size_t n = 0, cap = 0;
  bool ok = false;
  if (!take(&c, '{')) goto done;
  const char *open = c.p - 1, *k;
  size_t kn;
  if (plain_string(&c, &k, &kn) && kn == 6 && !memcmp(k, "events", 6) && take(&c, ':')) {
    if (!take(&c, '[')) goto done;
    do {
      if (n == max_events) goto done;
      if (n == cap) {
        size_t nc = cap ? cap * 2 : 128;
        cofi_store_event *e = realloc(evs, nc * sizeof *e);
        if (!e) goto done;
        evs = e;
        cap = nc;
      }
      if (!event_object(&c, now, &evs[n++])) goto done;
    } while (take(&c, ','));
    if (!take(&c, ']') || !take(&c, '}')) goto done;
  } else {
    c.p = open;
    if (!(evs = malloc(sizeof *evs)) || !event_object(&c, now, &evs[0])) goto done;
    n = 1;
  }
  skip_ws(&c);
  ok = c.p == c.end;
done:
  if (!ok) {
    free(evs);
    free(text);
    return false;
  }
  *evs_out = evs;
  *n_out = n;
  *text_out = text;
  return true;
}

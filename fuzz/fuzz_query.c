/*
 * fuzz_query.c — the server's URL parsers (server/parse.c) on hostile
 * bytes: percent-decoding, query strings, the parameters of /recommend,
 * /recommend_cold and /similar_*, comma lists with backslash escapes, k,
 * booleans, and the admin token comparison. The first input byte chooses:
 *   0  srv_url_decode (path mode, then query mode)
 *   1  query string -> srv_rec_query_from_params (GET /recommend)
 *   2  query string -> srv_rec_query_from_params (GET /recommend_cold)
 *   3  query string -> srv_similar_query_from_params
 *   4  srv_list_split
 *   5  srv_parse_k, srv_parse_bool, srv_check_id
 *   6  srv_secret_eq: the input split at its first NUL into given/expected
 *   7  srv_route_find on a decoded path (the route table, routes.c)
 * As in the server, the query is copied into a writable buffer of exactly
 * its length (so ASan catches any write past it) and decoded in place.
 *
 * Properties: decoding never lengthens; every accepted value respects the
 * limits (k in 1..max_k, lists within max_list, IDs 1..max_id_len bytes
 * without NUL) and every span points inside the request's buffer; every
 * rejection is a 4xx with a code and a message; srv_secret_eq is equality;
 * a route found is the path itself, or its prefix for "/items/ID".
 */
#include "fuzz_util.h"
#include "srv.h"

#include <stdlib.h>
#include <string.h>

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static const srv_limits lim = {.max_k = 100, .max_list = 8, .max_id_len = 16};

static void inside(srv_span s, const char *buf, size_t len) {
  check(s.p >= buf && s.len <= len && s.p + s.len <= buf + len);
}

static void id_ok(srv_span s, const char *buf, size_t len) {
  inside(s, buf, len);
  check(s.len >= 1 && s.len <= lim.max_id_len && !memchr(s.p, 0, s.len));
}

static void rejected(const srv_error *e) {
  check(e->status >= 400 && e->status < 500 && e->code && e->message[0]);
}

static void query(char *q, size_t len, int mode) {
  srv_param ps[SRV_MAX_PARAMS];
  size_t n = 0;
  srv_error e;
  if (!srv_query_parse(q, len, q, ps, SRV_MAX_PARAMS, &n, &e)) {
    rejected(&e);
    return;
  }
  check(n <= SRV_MAX_PARAMS);
  for (size_t i = 0; i < n; i++) {
    inside(ps[i].key, q, len);
    inside(ps[i].val, q, len);
  }
  if (mode == 3) {
    srv_span id;
    uint32_t k;
    if (srv_similar_query_from_params(ps, n, "item_id", &lim, 10, &id, &k, &e)) {
      id_ok(id, q, len);
      check(k >= 1 && k <= lim.max_k);
    } else {
      rejected(&e);
    }
    return;
  }
  srv_span liked[8], exclude[8];
  srv_rec_query rq = {.liked = liked, .exclude = exclude};
  if (srv_rec_query_from_params(ps, n, &lim, 10, mode == 2, &rq, &e)) {
    check(rq.has_user != rq.has_liked);
    check(rq.k >= 1 && rq.k <= lim.max_k);
    check(rq.n_liked <= lim.max_list && rq.n_exclude <= lim.max_list);
    if (rq.has_user) id_ok(rq.user, q, len);
    if (rq.has_liked) check(rq.n_liked >= 1);
    for (size_t i = 0; i < rq.n_liked; i++) id_ok(liked[i], q, len);
    for (size_t i = 0; i < rq.n_exclude; i++) id_ok(exclude[i], q, len);
  } else {
    rejected(&e);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t mode = fuzz_take(&data, &size) % 8;
  /* Exactly size bytes (at least 1 for malloc), not NUL-terminated. */
  char *buf = malloc(size ? size : 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  srv_error e;
  switch (mode) {
    case 0: {
      size_t out_len;
      for (int plus = 0; plus < 2; plus++) {
        char *out = malloc(size ? size : 1);
        if (!out) break;
        if (srv_url_decode(buf, size, plus, out, &out_len, &e)) check(out_len <= size);
        else rejected(&e);
        free(out);
      }
      break;
    }
    case 1: case 2: case 3:
      query(buf, size, mode);
      break;
    case 4: {
      srv_span items[8];
      size_t n = 0;
      if (srv_list_split(buf, size, buf, items, 8, &n, lim.max_id_len, "liked", &e)) {
        check(n >= 1 && n <= 8);
        for (size_t i = 0; i < n; i++) id_ok(items[i], buf, size);
      } else {
        rejected(&e);
      }
      break;
    }
    case 5: {
      uint32_t k;
      bool b;
      if (srv_parse_k(buf, size, lim.max_k, &k, &e)) check(k >= 1 && k <= lim.max_k);
      else rejected(&e);
      if (!srv_parse_bool(buf, size, "filter_seen", &b, &e)) rejected(&e);
      if (!srv_check_id(buf, size, lim.max_id_len, "user_id", &e)) rejected(&e);
      break;
    }
    case 6: {
      const char *nul = memchr(buf, 0, size);
      size_t glen = nul ? (size_t)(nul - buf) : size;
      const char *exp = nul ? nul + 1 : buf + size;
      size_t elen = size - glen - (nul ? 1 : 0);
      bool eq = elen > 0 && glen == elen && memcmp(buf, exp, glen) == 0;
      check(srv_secret_eq(buf, glen, exp, elen) == eq);
      break;
    }
    case 7: {
      const srv_route *rt = srv_route_find(buf, size);
      if (rt) {
        size_t n = strlen(rt->path);
        check(rt->prefix ? size >= n && memcmp(buf, rt->path, n) == 0
                         : size == n && memcmp(buf, rt->path, n) == 0);
      }
      break;
    }
  }
  free(buf);
  return 0;
}

/*
 * dashboard.c — what the dashboard at /ui/ needs besides the recommendation
 * endpoints (queries.c): why an item is recommended (GET /explain), title
 * search (GET /items?search=), a user's history (GET /users/{id}/history),
 * and the dashboard's own files, compiled into the binary
 * (cmake/embed.cmake writes srv_ui_assets[] from the files in ui/).
 *
 * Answers:
 *   /explain        {"user_id": ID | "liked": [ID...], "item_id", "title",
 *                    "score", "history", "because": [{"item_id", "title",
 *                    "contribution"}...], "others"}: the score of item_id
 *                   split into one contribution per history item, largest
 *                   first (all of them, or the top n with the rest summed
 *                   in "others"), so that because + others = score.
 *   /items?search=  {"search", "matches", "items": [{"item_id", "title",
 *                    "interactions"}...]}
 *   /users/{id}/history
 *                   {"user_id", "source": "model", "total", "events":
 *                    [{"item_id", "title", "value"}...]}
 */
#include "srv.h"
#include "ui_assets.h"

#include <stdlib.h>
#include <string.h>

static bool parse_query(srv_req *r, srv_param *ps, size_t *n, srv_error *err) {
  return srv_query_parse(r->query, r->query_len, r->query, ps, SRV_MAX_PARAMS, n, err);
}

static bool library_error(srv_error *err, int rc) {
  if (rc == COFI_ERR_NOMEM)
    return srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
  if (rc == COFI_ERR_INVALID)
    return srv_fail(err, 400, "no_history", "there is no history to explain with");
  return srv_fail(err, 500, "internal_error", "explaining failed: %s", cofi_error_message(rc));
}

static void put_item_id(srv_buf *b, const srv_model *sm, uint32_t it) {
  const size_t *off = sm->item_json_off;
  srv_buf_put(b, sm->item_json + off[2 * (size_t)it], off[2 * (size_t)it + 1] - off[2 * (size_t)it]);
}

/* `,"title":"..."`, or nothing when the model has no titles. */
static void put_title(srv_buf *b, const srv_model *sm, uint32_t it) {
  const size_t *off = sm->item_json_off;
  srv_buf_put(b, sm->item_json + off[2 * (size_t)it + 1],
              off[2 * (size_t)it + 2] - off[2 * (size_t)it + 1]);
}

void srv_write_because(srv_buf *b, const srv_model *sm, const cofi_contribution *c, size_t n) {
  srv_buf_putc(b, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) srv_buf_putc(b, ',');
    srv_buf_putc(b, '{');
    put_item_id(b, sm, c[i].item);
    put_title(b, sm, c[i].item);
    srv_buf_lit(b, ",\"contribution\":");
    srv_buf_float(b, c[i].contribution);
    srv_buf_putc(b, '}');
  }
  srv_buf_putc(b, ']');
}

static bool duplicate(srv_error *err, srv_span key) {
  return srv_fail(err, 400, "duplicate_parameter", "query parameter " SRV_ECHO_FMT " is given twice",
                  SRV_ECHO(key.p, key.len));
}

static bool unknown_param(srv_error *err, srv_span key, const char *takes) {
  return srv_fail(err, 400, "unknown_parameter",
                  "unknown query parameter " SRV_ECHO_FMT " (this endpoint takes %s)",
                  SRV_ECHO(key.p, key.len), takes);
}

/* A count parameter: 1..max. */
static bool parse_count(srv_span v, const char *what, uint32_t max, uint32_t *out, srv_error *err) {
  uint64_t x = 0;
  bool ok = v.len > 0;
  for (size_t i = 0; i < v.len && ok; i++) {
    ok = v.p[i] >= '0' && v.p[i] <= '9';
    x = x * 10 + (uint64_t)(v.p[i] - '0');
    ok = ok && x <= max;
  }
  if (!ok || x < 1)
    return srv_fail(err, 400, "invalid_parameter", "%s must be an integer from 1 to %u, got " SRV_ECHO_FMT,
                    what, max, SRV_ECHO(v.p, v.len));
  *out = (uint32_t)x;
  return true;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* ---- GET /explain ----------------------------------------------------------- */

void srv_h_explain(srv_req *r) {
  static const char takes[] = "user_id or liked, item_id, n";
  srv_param ps[SRV_MAX_PARAMS];
  size_t np, n_liked = 0, n_order = 0;
  srv_error err;
  srv_span user = {0}, item = {0};
  bool has_user = false, has_item = false, has_liked = false, has_n = false;
  uint32_t top = 0; /* 0: every contribution */
  srv_span *liked = r->th->spans_a;
  if (!parse_query(r, ps, &np, &err)) goto fail;
  for (size_t i = 0; i < np; i++) {
    srv_span key = ps[i].key, val = ps[i].val;
    if (srv_span_eq(key, "user_id")) {
      if (has_user) return (void)duplicate(&err, key), srv_req_error(r, &err);
      if (!srv_check_id(val.p, val.len, r->lim.max_id_len, "user_id", &err)) goto fail;
      has_user = true;
      user = val;
    } else if (srv_span_eq(key, "item_id")) {
      if (has_item) return (void)duplicate(&err, key), srv_req_error(r, &err);
      if (!srv_check_id(val.p, val.len, r->lim.max_id_len, "item_id", &err)) goto fail;
      has_item = true;
      item = val;
    } else if (srv_span_eq(key, "liked")) {
      has_liked = true;
      if (!srv_list_split(val.p, val.len, (char *)val.p, liked, r->lim.max_list, &n_liked,
                          r->lim.max_id_len, "liked", &err))
        goto fail;
    } else if (srv_span_eq(key, "n")) {
      if (has_n) return (void)duplicate(&err, key), srv_req_error(r, &err);
      has_n = true;
      if (!parse_count(val, "n", 1000000, &top, &err)) goto fail;
    } else {
      unknown_param(&err, key, takes);
      goto fail;
    }
  }
  if (!has_item) {
    srv_fail(&err, 400, "missing_parameter", "item_id is required: the item to explain");
    goto fail;
  }
  if (has_user == has_liked) {
    srv_fail(&err, 400, has_user ? "invalid_parameter" : "missing_parameter",
             "give either user_id (a known user) or liked (a new user's items), %s",
             has_user ? "not both" : "e.g. /explain?user_id=1&item_id=296");
    goto fail;
  }
  srv_model *sm = srv_req_model(r);
  if (cofi_model_kind_of(sm->m) != COFI_MODEL_ALS) {
    srv_fail(&err, 400, "needs_als_model", "%s", cofi_model_kind_error(sm->m, "/explain"));
    goto fail;
  }
  int64_t it = cofi_model_find_item(sm->m, item.p, item.len);
  if (it < 0) {
    srv_fail(&err, 404, "unknown_item", "item " SRV_ECHO_FMT " is not in the model",
             SRV_ECHO(item.p, item.len));
    goto fail;
  }
  cofi_explainer *e = NULL;
  size_t hist = 0;
  int rc;
  int64_t u = -1;
  if (has_user) {
    u = cofi_model_find_user(sm->m, user.p, user.len);
    if (u < 0) {
      srv_fail(&err, 404, "unknown_user",
               "user " SRV_ECHO_FMT " is not in the model; for a new user, send liked=ID1,ID2",
               SRV_ECHO(user.p, user.len));
      goto fail;
    }
    const uint32_t *its;
    const float *vals;
    hist = cofi_model_user_items(sm->m, (uint32_t)u, &its, &vals);
    rc = cofi_explainer_new_user(sm->m, (uint32_t)u, &e);
  } else {
    uint32_t *ids = r->th->items;
    for (size_t i = 0; i < n_liked; i++) {
      int64_t x = cofi_model_find_item(sm->m, liked[i].p, liked[i].len);
      if (x >= 0) r->th->order[n_order++] = ids[hist++] = (uint32_t)x;
    }
    if (!hist) {
      srv_fail(&err, 404, "unknown_items",
               "none of the %zu liked items is in the model (the first is " SRV_ECHO_FMT ")",
               n_liked, SRV_ECHO(liked[0].p, liked[0].len));
      goto fail;
    }
    /* As the cold-start recommendation does: each item once. */
    qsort(ids, hist, sizeof *ids, cmp_u32);
    size_t uniq = 0;
    for (size_t i = 0; i < hist; i++)
      if (i == 0 || ids[i] != ids[i - 1]) ids[uniq++] = ids[i];
    hist = uniq;
    rc = cofi_explainer_new_history(sm->m, ids, NULL, hist, &e);
  }
  if (rc != COFI_OK) {
    library_error(&err, rc);
    goto fail;
  }
  size_t want = top && top < hist ? top : hist, got = 0;
  cofi_contribution *all = malloc((hist ? hist : 1) * sizeof *all);
  double score = 0;
  rc = all ? cofi_explain(e, (uint32_t)it, hist, all, &got, &score) : COFI_ERR_NOMEM;
  cofi_explainer_free(e);
  if (rc != COFI_OK) {
    free(all);
    library_error(&err, rc);
    goto fail;
  }
  /* The contributions not shown, summed, so that the answer adds up. */
  double others = 0;
  for (size_t i = want; i < got; i++) others += all[i].contribution;
  if (want > got) want = got;
  srv_buf *b = r->out;
  if (has_user) {
    size_t len;
    const char *id = cofi_model_user_id(sm->m, (uint32_t)u, &len);
    srv_buf_lit(b, "{\"user_id\":");
    srv_buf_json_str(b, id, len);
  } else {
    /* The known liked items in request order, each once. */
    srv_buf_lit(b, "{\"liked\":[");
    memset(r->th->printed, 0, hist * sizeof *r->th->printed);
    for (size_t i = 0, w = 0; i < n_order; i++) {
      const uint32_t *at = bsearch(&r->th->order[i], r->th->items, hist, sizeof *r->th->items, cmp_u32);
      size_t slot = (size_t)(at - r->th->items);
      if (r->th->printed[slot]) continue;
      r->th->printed[slot] = true;
      if (w++) srv_buf_putc(b, ',');
      size_t len;
      const char *id = cofi_model_item_id(sm->m, r->th->order[i], &len);
      srv_buf_json_str(b, id, len);
    }
    srv_buf_putc(b, ']');
  }
  srv_buf_putc(b, ',');
  put_item_id(b, sm, (uint32_t)it);
  put_title(b, sm, (uint32_t)it);
  srv_buf_lit(b, ",\"score\":");
  srv_buf_float(b, score);
  srv_buf_printf(b, ",\"history\":%zu,\"because\":", hist);
  srv_write_because(b, sm, all, want);
  srv_buf_lit(b, ",\"others\":");
  srv_buf_float(b, others);
  srv_buf_putc(b, '}');
  free(all);
  return;
fail:
  srv_req_error(r, &err);
}

/* ---- GET /items?search=Q ---------------------------------------------------- */

/* Most bytes of a search. */
#define SEARCH_MAX 200

typedef struct hit {
  uint32_t item;
  uint32_t rank; /* 0 the item ID itself, 1 title prefix, 2 word start, 3 inside a word */
  uint32_t users;
} hit;

static bool better(const hit *a, const hit *b) {
  if (a->rank != b->rank) return a->rank < b->rank;
  if (a->users != b->users) return a->users > b->users;
  return a->item < b->item;
}

/* Keeps the k best in best[0..*n), sorted. */
static void keep(hit *best, size_t *n, size_t k, hit h) {
  if (*n == k && !better(&h, &best[k - 1])) return;
  size_t i = *n < k ? (*n)++ : k - 1;
  while (i > 0 && better(&h, &best[i - 1])) {
    best[i] = best[i - 1];
    i--;
  }
  best[i] = h;
}

static bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (unsigned char)c >= 0x80;
}

void srv_h_item_search(srv_req *r) {
  srv_param ps[SRV_MAX_PARAMS];
  size_t np;
  srv_error err;
  srv_span q = {0};
  bool has_q = false, has_k = false;
  uint32_t k = r->cfg->default_k;
  if (!parse_query(r, ps, &np, &err)) goto fail;
  for (size_t i = 0; i < np; i++) {
    srv_span key = ps[i].key, val = ps[i].val;
    if (srv_span_eq(key, "search")) {
      if (has_q) return (void)duplicate(&err, key), srv_req_error(r, &err);
      has_q = true;
      q = val;
    } else if (srv_span_eq(key, "k")) {
      if (has_k) return (void)duplicate(&err, key), srv_req_error(r, &err);
      has_k = true;
      if (!srv_parse_k(val.p, val.len, r->lim.max_k, &k, &err)) goto fail;
    } else {
      unknown_param(&err, key, "search, k");
      goto fail;
    }
  }
  /* Leading and trailing spaces are no part of what people look for. */
  while (q.len && q.p[0] == ' ') q.p++, q.len--;
  while (q.len && q.p[q.len - 1] == ' ') q.len--;
  if (!q.len) {
    srv_fail(&err, 400, "missing_parameter",
             "search is required: a part of a title, e.g. /items?search=matrix");
    goto fail;
  }
  if (q.len > SEARCH_MAX || memchr(q.p, 0, q.len)) {
    srv_fail(&err, 400, "invalid_parameter", "search must be 1 to %d bytes with no NUL byte",
             SEARCH_MAX);
    goto fail;
  }
  char lc[SEARCH_MAX];
  for (size_t i = 0; i < q.len; i++)
    lc[i] = q.p[i] >= 'A' && q.p[i] <= 'Z' ? (char)(q.p[i] + 32) : q.p[i];
  srv_model *sm = srv_req_model(r);
  hit *best = malloc(k * sizeof *best);
  if (!best) {
    library_error(&err, COFI_ERR_NOMEM);
    goto fail;
  }
  size_t nb = 0;
  uint64_t matches = 0;
  int64_t exact = cofi_model_find_item(sm->m, q.p, q.len);
  if (exact >= 0) {
    keep(best, &nb, k, (hit){(uint32_t)exact, 0, sm->item_users[exact]});
    matches++;
  }
  const char *buf = sm->title_lc, *p = buf, *end = buf + sm->title_off[sm->info.n_items];
  const size_t *off = sm->title_off;
  const char *at;
  while (p < end && (at = memmem(p, (size_t)(end - p), lc, q.len))) {
    size_t pos = (size_t)(at - buf);
    /* The item whose text holds pos: the last start <= pos. */
    size_t lo = 0, hi = sm->info.n_items;
    while (hi - lo > 1) {
      size_t mid = lo + (hi - lo) / 2;
      if (off[mid] <= pos) lo = mid;
      else hi = mid;
    }
    const char *title = buf + off[lo], *stop = buf + off[lo + 1] - 1;
    uint32_t rank = at == title ? 1 : word_char(at[-1]) ? 3 : 2;
    /* A later word-start match in the same title ranks it higher. */
    for (const char *x = at + 1; rank == 3 && x < stop;) {
      const char *y = memmem(x, (size_t)(stop - x), lc, q.len);
      if (!y) break;
      if (!word_char(y[-1])) rank = 2;
      x = y + 1;
    }
    if ((int64_t)lo != exact) {
      matches++;
      keep(best, &nb, k, (hit){(uint32_t)lo, rank, sm->item_users[lo]});
    }
    p = buf + off[lo + 1];
  }
  srv_buf *b = r->out;
  srv_buf_lit(b, "{\"search\":");
  srv_buf_json_str(b, q.p, q.len);
  srv_buf_lit(b, ",\"matches\":");
  srv_buf_u64(b, matches);
  srv_buf_lit(b, ",\"items\":[");
  for (size_t i = 0; i < nb; i++) {
    if (i) srv_buf_putc(b, ',');
    srv_buf_putc(b, '{');
    put_item_id(b, sm, best[i].item);
    put_title(b, sm, best[i].item);
    srv_buf_lit(b, ",\"interactions\":");
    srv_buf_u64(b, best[i].users);
    srv_buf_putc(b, '}');
  }
  srv_buf_lit(b, "]}");
  free(best);
  return;
fail:
  srv_req_error(r, &err);
}

/* ---- GET /users/{id}/history ---------------------------------------------- */

typedef struct event {
  uint32_t item;
  float value;
} event;

static int by_value(const void *a, const void *b) {
  const event *x = a, *y = b;
  if (x->value != y->value) return x->value < y->value ? 1 : -1;
  return (x->item > y->item) - (x->item < y->item);
}

void srv_user_history_model(srv_req *r, srv_span user, uint32_t limit) {
  srv_model *sm = srv_req_model(r);
  int64_t u = cofi_model_find_user(sm->m, user.p, user.len);
  if (u < 0) {
    srv_req_fail(r, 404, "unknown_user", "user " SRV_ECHO_FMT " is not in the model",
                 SRV_ECHO(user.p, user.len));
    return;
  }
  const uint32_t *its;
  const float *vals;
  size_t n = cofi_model_user_items(sm->m, (uint32_t)u, &its, &vals);
  event *ev = malloc((n ? n : 1) * sizeof *ev);
  if (!ev) {
    srv_req_fail(r, 503, "out_of_memory", "the server is out of memory; retry later");
    return;
  }
  for (size_t i = 0; i < n; i++) ev[i] = (event){its[i], vals ? vals[i] : 1.0f};
  qsort(ev, n, sizeof *ev, by_value);
  size_t shown = n < limit ? n : limit;
  srv_buf *b = r->out;
  size_t len;
  const char *id = cofi_model_user_id(sm->m, (uint32_t)u, &len);
  srv_buf_lit(b, "{\"user_id\":");
  srv_buf_json_str(b, id, len);
  srv_buf_lit(b, ",\"source\":\"model\",\"total\":");
  srv_buf_u64(b, n);
  srv_buf_lit(b, ",\"events\":[");
  for (size_t i = 0; i < shown; i++) {
    if (i) srv_buf_putc(b, ',');
    srv_buf_putc(b, '{');
    put_item_id(b, sm, ev[i].item);
    put_title(b, sm, ev[i].item);
    srv_buf_lit(b, ",\"value\":");
    srv_buf_float(b, ev[i].value);
    srv_buf_putc(b, '}');
  }
  srv_buf_lit(b, "]}");
  free(ev);
}

/* /users/{id}/history: the ID is what comes before the last
 * "/history" (so it may itself hold a '/', sent as %2F). */
void srv_h_users_model(srv_req *r) {
  static const char suffix[] = "/history";
  const size_t sl = sizeof suffix - 1;
  srv_span arg = r->route_arg;
  srv_error err;
  if (arg.len <= sl || memcmp(arg.p + arg.len - sl, suffix, sl) != 0) {
    srv_req_fail(r, 404, "not_found",
                 "no endpoint at /users/" SRV_ECHO_FMT " (GET /users/{id}/history is)",
                 SRV_ECHO(arg.p, arg.len));
    return;
  }
  srv_span user = {arg.p, arg.len - sl};
  if (!srv_check_id(user.p, user.len, r->lim.max_id_len, "the user ID in /users/{id}/history",
                    &err))
    goto fail;
  srv_param ps[SRV_MAX_PARAMS];
  size_t np;
  uint32_t limit = 50;
  bool has_limit = false;
  if (!parse_query(r, ps, &np, &err)) goto fail;
  for (size_t i = 0; i < np; i++) {
    if (srv_span_eq(ps[i].key, "limit")) {
      if (has_limit) {
        duplicate(&err, ps[i].key);
        goto fail;
      }
      has_limit = true;
      if (!parse_count(ps[i].val, "limit", 100000, &limit, &err)) goto fail;
    } else {
      unknown_param(&err, ps[i].key, "limit");
      goto fail;
    }
  }
  srv_user_history_model(r, user, limit);
  return;
fail:
  srv_req_error(r, &err);
}

/* ---- the dashboard's files ------------------------------------------------------ */

void srv_h_ui(srv_req *r) {
  srv_span f = r->route_arg;
  if (!f.len) f = (srv_span){"index.html", 10};
  for (const srv_ui_asset *a = srv_ui_assets; a->path; a++) {
    if (!srv_span_eq(f, a->path)) continue;
    r->content_type = a->type;
    r->ui_headers = true;
    srv_buf_put(r->out, a->data, a->len);
    return;
  }
  srv_req_fail(r, 404, "not_found", "the dashboard has no file " SRV_ECHO_FMT " (it is at /ui/)",
               SRV_ECHO(f.p, f.len));
}

/* /ui to /ui/, relative so that it works behind a proxy's path prefix. */
void srv_h_ui_redirect(srv_req *r) {
  r->status = 301;
  r->location = "ui/";
  r->content_type = "text/html; charset=utf-8";
  r->ui_headers = true;
  srv_buf_lit(r->out, "<!doctype html><title>cofi</title><a href=\"ui/\">The dashboard is at /ui/</a>\n");
}

/*
 * lists_routes.c — the non-personalized lists (docs/serving.md):
 *
 *   GET /popular?k=&category=&window=   the items with the most events
 *                                       (counted, not decayed) since now -
 *                                       window (default: all time)
 *   GET /latest?k=&category=            the newest items by their timestamp
 *
 * Both from the store (cofi_store_popular, cofi_store_latest: hidden
 * items never listed), each list kept SRV_LIST_TTL_S seconds (online.h). Without a store, /popular ranks by the model's
 * training counts (users per item; no window) and /latest answers 503.
 * Answer: {"source": "popular"|"latest", "recommendations": [{"item_id",
 * "title", "score", "timestamp"}]} (score: events counted, or the item's
 * unix time; title and timestamp when known).
 *
 * A user with no events at all gets the popular list as their
 * /recommend answer, with "source": "popular" (srv_answer_popular).
 */
#include "online.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct list_params {
  uint32_t k;
  bool has_category;
  srv_span category;
  bool has_window;
  int64_t window_s;
  srv_span window;
} list_params;

/* "90s", "15m", "24h", "7d", "2w" or "all"; at most 100 years. */
static bool parse_window(srv_span v, int64_t *secs, bool *has, srv_error *err) {
  if (srv_span_eq(v, "all")) {
    *has = false;
    return true;
  }
  int64_t n = 0;
  size_t i = 0;
  for (; i < v.len && v.p[i] >= '0' && v.p[i] <= '9' && n < 100000000; i++) n = n * 10 + (v.p[i] - '0');
  int64_t unit = 0;
  if (i + 1 == v.len) switch (v.p[i]) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: break;
    }
  if (i == 0 || n == 0 || !unit || n * unit > 100 * 366 * 86400LL)
    return srv_fail(err, 400, "invalid_window",
                    "window " SRV_ECHO_FMT " is not a duration: a positive number and a unit "
                    "s, m, h, d or w (e.g. 24h, 7d; at most 100 years), or all",
                    SRV_ECHO(v.p, v.len));
  *secs = n * unit;
  *has = true;
  return true;
}

static bool check_category(srv_span v, srv_error *err) {
  if (v.len == 0 || v.len > SRV_MAX_CATEGORY || memchr(v.p, 0, v.len))
    return srv_fail(err, 400, "invalid_category",
                    "category " SRV_ECHO_FMT " must be 1..%u bytes without NUL (it is %zu)",
                    SRV_ECHO(v.p, v.len), SRV_MAX_CATEGORY, v.len);
  return true;
}

static bool parse_list_params(srv_req *r, bool popular, list_params *lp, srv_error *err) {
  srv_param ps[SRV_MAX_PARAMS];
  size_t n;
  memset(lp, 0, sizeof *lp);
  lp->k = r->cfg->default_k;
  if (!srv_query_parse(r->query, r->query_len, r->query, ps, SRV_MAX_PARAMS, &n, err))
    return false;
  bool has_k = false;
  for (size_t i = 0; i < n; i++) {
    srv_span key = ps[i].key, val = ps[i].val;
    bool dup = false;
    if (srv_span_eq(key, "k")) {
      dup = has_k;
      has_k = true;
      if (!dup && !srv_parse_k(val.p, val.len, r->lim.max_k, &lp->k, err)) return false;
    } else if (srv_span_eq(key, "category")) {
      dup = lp->has_category;
      lp->has_category = true;
      lp->category = val;
      if (!dup && !check_category(val, err)) return false;
    } else if (popular && srv_span_eq(key, "window")) {
      dup = lp->window.p != NULL;
      lp->window = val;
      if (!dup && !parse_window(val, &lp->window_s, &lp->has_window, err)) return false;
    } else {
      return srv_fail(err, 400, "unknown_parameter",
                      "unknown query parameter " SRV_ECHO_FMT " (this endpoint takes %s)",
                      SRV_ECHO(key.p, key.len), popular ? "k, category, window" : "k, category");
    }
    if (dup)
      return srv_fail(err, 400, "duplicate_parameter", "query parameter " SRV_ECHO_FMT " is given twice",
                      SRV_ECHO(key.p, key.len));
  }
  return true;
}

typedef struct list_op {
  bool popular;
  const list_params *lp;
  int64_t since;
  cofi_store_ranked *rows;
  size_t n;
} list_op;

static int op_list(cofi_store *s, void *arg, cofi_diag *d) {
  list_op *o = arg;
  const list_params *lp = o->lp;
  const char *cat = lp->has_category ? lp->category.p : NULL;
  if (o->popular)
    return cofi_store_popular(s, cat, lp->category.len, lp->has_window, o->since, lp->k, &o->rows,
                              &o->n, d);
  return cofi_store_latest(s, cat, lp->category.len, lp->k, &o->rows, &o->n, d);
}

static void write_rows(srv_buf *b, const cofi_store_ranked *rows, size_t n) {
  srv_buf_putc(b, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) srv_buf_putc(b, ',');
    srv_buf_lit(b, "{\"item_id\":");
    srv_buf_json_str(b, rows[i].item_id, rows[i].item_len);
    /* Counts and unix times: whole numbers, printed exactly (%.9g would
     * round a timestamp). */
    srv_buf_printf(b, ",\"score\":%.17g", rows[i].score);
    if (rows[i].title) {
      srv_buf_lit(b, ",\"title\":");
      srv_buf_json_str(b, rows[i].title, rows[i].title_len);
    }
    if (rows[i].has_timestamp) {
      srv_buf_lit(b, ",\"timestamp\":");
      srv_buf_printf(b, "%lld", (long long)rows[i].timestamp);
    }
    srv_buf_putc(b, '}');
  }
  srv_buf_putc(b, ']');
}

static bool store_list(srv_req *r, bool popular, const list_params *lp, list_op *o, srv_error *err) {
  memset(o, 0, sizeof *o);
  o->popular = popular;
  o->lp = lp;
  o->since = (int64_t)time(NULL) - lp->window_s;
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_read(r->srv->store, op_list, o, &d);
  if (rc == COFI_OK) return true;
  const char *msg = d.message[0] ? d.message : cofi_error_message(rc);
  if (rc == COFI_ERR_INVALID) return srv_fail(err, 400, "invalid_request", "%s", msg);
  if (rc == COFI_ERR_NOMEM) return srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
  return srv_fail(err, 503, "store_unavailable", "the store is unavailable: %s", msg);
}

/* The list's JSON array into b: from the server's short-lived cache, or
 * from the store (then cached). */
static bool list_json(srv_req *r, bool popular, const list_params *lp, srv_buf *b,
                      srv_error *err) {
  char key[SRV_MAX_CATEGORY + 64];
  int kl = snprintf(key, sizeof key, "%c %u %d %lld ", popular ? 'p' : 'l', lp->k,
                    lp->has_window, (long long)lp->window_s);
  size_t key_len = (size_t)kl;
  if (lp->has_category) {
    memcpy(key + key_len, lp->category.p, lp->category.len);
    key_len += lp->category.len;
  }
  srv_online *on = r->srv->online;
  if (on && srv_online_list_get(on, key, key_len, b)) return true;
  list_op o;
  if (!store_list(r, popular, lp, &o, err)) return false;
  size_t mark = b->len;
  write_rows(b, o.rows, o.n);
  cofi_store_ranked_free(o.rows);
  if (on && !b->oom) srv_online_list_put(on, key, key_len, b->p + mark, b->len - mark);
  return true;
}

/* Without a store: users per item in training, most first. */
static void model_popular(srv_req *r, const list_params *lp) {
  srv_model *sm = srv_req_model(r);
  if (!sm) {
    srv_req_model_unavailable(r);
    return;
  }
  const srv_attr_view *v = r->srv->item_attrs ? srv_attrs_acquire(r->srv->item_attrs, sm) : NULL;
  int64_t cat = -1;
  bool none = false;
  if (lp->has_category) {
    cat = v ? srv_attrs_category(v, lp->category.p, lp->category.len) : -1;
    none = cat < 0;
  }
  cofi_scored *top = r->th->top;
  size_t n = 0;
  for (uint32_t it = 0; it < sm->info.n_items && !none; it++) {
    if (v && (srv_attrs_is_hidden(v, it) || !srv_attrs_in_category(v, it, cat))) continue;
    float s = (float)sm->item_users[it];
    if (n == lp->k && !(s > top[n - 1].score)) continue;
    size_t pos = n < lp->k ? n++ : n - 1;
    while (pos > 0 && s > top[pos - 1].score) {
      top[pos] = top[pos - 1];
      pos--;
    }
    top[pos] = (cofi_scored){it, s};
  }
  if (v) srv_attrs_release(r->srv->item_attrs);
  srv_buf *b = r->out;
  srv_buf_lit(b, "{\"source\":\"popular\",\"counted\":\"training users\",\"recommendations\":[");
  const size_t *off = sm->item_json_off;
  for (size_t i = 0; i < n; i++) {
    size_t it = top[i].index;
    if (i) srv_buf_putc(b, ',');
    srv_buf_putc(b, '{');
    srv_buf_put(b, sm->item_json + off[2 * it], off[2 * it + 1] - off[2 * it]);
    srv_buf_lit(b, ",\"score\":");
    srv_buf_float(b, top[i].score);
    srv_buf_put(b, sm->item_json + off[2 * it + 1], off[2 * it + 2] - off[2 * it + 1]);
    srv_buf_putc(b, '}');
  }
  srv_buf_lit(b, "]}");
}

static void list_route(srv_req *r, bool popular) {
  srv_error err;
  list_params lp;
  if (!parse_list_params(r, popular, &lp, &err)) {
    srv_req_error(r, &err);
    return;
  }
  if (!r->srv->store) {
    if (!popular) {
      srv_req_fail(r, 503, "store_disabled",
                   "/latest needs a store (item timestamps): start cofi serve with --store URL");
      return;
    }
    if (lp.has_window) {
      srv_req_fail(r, 400, "invalid_window",
                   "window needs a store (event times); without one /popular counts the "
                   "model's training users per item");
      return;
    }
    model_popular(r, &lp);
    return;
  }
  srv_buf *b = r->out;
  if (popular) {
    srv_buf_lit(b, "{\"source\":\"popular\",\"counted\":\"events\",\"window\":");
    if (lp.has_window) srv_buf_json_str(b, lp.window.p, lp.window.len);
    else srv_buf_lit(b, "\"all\"");
  } else {
    srv_buf_lit(b, "{\"source\":\"latest\"");
  }
  srv_buf_lit(b, ",\"recommendations\":");
  if (!list_json(r, popular, &lp, b, &err)) {
    if (!b->oom) b->len = 0; /* the error's body instead */
    srv_req_error(r, &err);
    return;
  }
  srv_buf_putc(b, '}');
}

void srv_h_popular(srv_req *r) { list_route(r, true); }
void srv_h_latest(srv_req *r) { list_route(r, false); }

bool srv_answer_popular(srv_req *r, const srv_model *sm, srv_span user, const char *category,
                        size_t category_len, uint32_t k, srv_error *err) {
  (void)sm;
  list_params lp;
  memset(&lp, 0, sizeof lp);
  lp.k = k;
  lp.has_category = category != NULL;
  lp.category = (srv_span){category, category_len};
  srv_buf *b = r->out;
  size_t mark = b->len;
  srv_buf_lit(b, "{\"user_id\":");
  srv_buf_json_str(b, user.p, user.len);
  srv_buf_lit(b, ",\"source\":\"popular\",\"recommendations\":");
  if (!list_json(r, true, &lp, b, err)) {
    if (!b->oom) b->len = mark;
    return false;
  }
  srv_buf_putc(b, '}');
  return true;
}

/*
 * queries.c — the endpoints that ask the model: recommendations (known
 * user, cold start, batch, SageMaker's /invocations), similar items and
 * users, an item's metadata.
 *
 * routes.c points at these handlers; http.c has done the generic work
 * before any of them runs (framing, unknown path, wrong method, body size,
 * no model served). A handler parses its parameters (parse.c), acquires
 * the current model (srv_req_model, released by http.c after the answer is
 * written), asks the library, and writes JSON into r->out.
 *
 * Answers, all JSON:
 *   /recommend, /invocations   {"user_id": ID, "recommendations": [ITEM...]},
 *                              with a store also "source": "online" (folded
 *                              in from new events) or "popular" (no events
 *                              at all): online.h
 *   cold start (liked)         {"liked": [ID...], "unknown": [ID...],
 *                                "recommendations": [ITEM...]}
 *   ITEM                       {"item_id": ID, "score": S, "title": T}
 *                              (title when the model has titles; with
 *                              explain=1 also "because": [{"item_id",
 *                              "title", "contribution"}], the 3 history
 *                              items contributing most to the score)
 *   /similar_items             {"item_id": ID, "similar": [ITEM...]}
 *   /similar_users             {"user_id": ID, "similar": [{"user_id", "score"}]}
 *   /items/{id}                {"item_id": ID, <field>: <value>...,
 *                                "interactions": users who had it in training}
 *   /recommend/batch           {"results": [answer or {"user_id", "error"}...]}
 */
#include "online.h"

#include <stdlib.h>
#include <string.h>

/* ---- writing answers ----------------------------------------------------- */

/* With an explainer (explain=1), each item also gets its "because"; the
 * plain path does no explaining work. Fails only in cofi_explain. nt (may
 * be NULL): new items (new_items.c) merged in by score, k in all. */
static int write_items(srv_buf *b, const srv_model *sm, const cofi_scored *top, size_t n,
                       cofi_explainer *e, const srv_new_top *nt, size_t k) {
  const size_t *off = sm->item_json_off;
  srv_buf_putc(b, '[');
  for (size_t i = 0, j = 0, w = 0; (i < n || (nt && j < nt->n)) && w < k; w++) {
    if (w) srv_buf_putc(b, ',');
    if (nt && j < nt->n && (i >= n || nt->score[j] > top[i].score)) {
      srv_new_top_write(b, nt, j++);
      continue;
    }
    size_t it = top[i].index;
    srv_buf_putc(b, '{');
    srv_buf_put(b, sm->item_json + off[2 * it], off[2 * it + 1] - off[2 * it]);
    srv_buf_lit(b, ",\"score\":");
    srv_buf_float(b, top[i].score);
    srv_buf_put(b, sm->item_json + off[2 * it + 1], off[2 * it + 2] - off[2 * it + 1]);
    if (e) {
      cofi_contribution why[SRV_BECAUSE];
      size_t nw = 0;
      int rc = cofi_explain(e, top[i].index, SRV_BECAUSE, why, &nw, NULL);
      if (rc != COFI_OK) return rc;
      srv_buf_lit(b, ",\"because\":");
      srv_write_because(b, sm, why, nw);
    }
    srv_buf_putc(b, '}');
    i++;
  }
  srv_buf_putc(b, ']');
  return COFI_OK;
}

static void write_user_id(srv_buf *b, const srv_model *sm, uint32_t u) {
  const size_t *off = sm->user_json_off;
  srv_buf_put(b, sm->user_json + off[u], off[u + 1] - off[u]);
}

static void write_item_id(srv_buf *b, const srv_model *sm, uint32_t it) {
  size_t len;
  const char *id = cofi_model_item_id(sm->m, it, &len);
  srv_buf_json_str(b, id, len);
}

/* A library failure while answering: the request was fine, the server
 * could not finish it. */
static bool library_error(srv_error *err, int rc) {
  if (rc == COFI_ERR_NOMEM)
    return srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
  return srv_fail(err, 500, "internal_error", "recommendation failed: %s", cofi_error_message(rc));
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Item IDs to indices; unknown IDs are dropped (they cannot be
 * recommended anyway). */
static size_t resolve_exclude(const srv_model *sm, const srv_rec_query *q, uint32_t *out) {
  size_t n = 0;
  for (size_t i = 0; i < q->n_exclude; i++) {
    int64_t it = cofi_model_find_item(sm->m, q->exclude[i].p, q->exclude[i].len);
    if (it >= 0) out[n++] = (uint32_t)it;
  }
  return n;
}

/* exclude (request's) + hidden, in one malloc'd array when there are
 * hidden items, else th->exclude itself. */
static uint32_t *exclusions(srv_thread *th, const srv_model *sm, const srv_rec_query *q,
                            const srv_attr_view *v, size_t *n, bool *owned) {
  size_t n_ex = resolve_exclude(sm, q, th->exclude), n_hidden = 0;
  const uint32_t *hidden = v ? srv_attrs_hidden(v, &n_hidden) : NULL;
  *owned = false;
  *n = n_ex;
  if (!n_hidden) return th->exclude;
  uint32_t *ex = malloc((n_ex + n_hidden) * sizeof *ex);
  if (!ex) return NULL;
  memcpy(ex, th->exclude, n_ex * sizeof *ex);
  memcpy(ex + n_ex, hidden, n_hidden * sizeof *ex);
  *owned = true;
  *n = n_ex + n_hidden;
  return ex;
}

/* The top k among q's candidates (category=, items=): *n_out written. */
static bool filtered_top(srv_req *r, const srv_model *sm, const srv_attr_view *v,
                         const srv_rec_query *q, const float *vec, const uint32_t *seen,
                         size_t n_seen, const uint32_t *ex, size_t n_ex, size_t *n_out,
                         srv_error *err) {
  *n_out = 0;
  int64_t cat = -1;
  if (q->has_category) {
    cat = v ? srv_attrs_category(v, q->category.p, q->category.len) : -1;
    if (cat < 0) return true; /* no item has it */
  }
  uint32_t *cands = NULL, *skip = NULL;
  size_t n_cands = 0, n_skip = 0;
  if (q->has_items) {
    cands = malloc((q->n_cands ? q->n_cands : 1) * sizeof *cands);
    if (!cands) return srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
    for (size_t i = 0; i < q->n_cands; i++) {
      int64_t it = cofi_model_find_item(sm->m, q->cands[i].p, q->cands[i].len);
      if (it >= 0) cands[n_cands++] = (uint32_t)it; /* unknown IDs are ignored */
    }
  }
  size_t n_s = (q->filter_seen ? n_seen : 0) + n_ex;
  skip = malloc((n_s ? n_s : 1) * sizeof *skip);
  if (!skip) {
    free(cands);
    return srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
  }
  if (q->filter_seen) memcpy(skip, seen, n_seen * sizeof *skip), n_skip = n_seen;
  memcpy(skip + n_skip, ex, n_ex * sizeof *skip);
  n_skip += n_ex;
  qsort(skip, n_skip, sizeof *skip, cmp_u32);
  if (!q->has_items || n_cands)
    *n_out = srv_top_candidates(sm, v, vec, q->has_items ? cands : NULL, n_cands, cat, skip, n_skip,
                                q->k, r->th->top);
  free(cands);
  free(skip);
  return true;
}

/* A user's answer: from the model, folded in from their whole history
 * (store events newer than the model), or the popular list when they
 * have no events at all (online.c). */
static bool answer_user(srv_req *r, const srv_model *sm, const srv_rec_query *q, srv_buf *b,
                        srv_error *err) {
  srv_thread *th = r->th;
  srv_online_user ou;
  if (!srv_online_resolve(r, (srv_model *)sm, q->user, &ou, err)) return false;
  if (ou.kind == SRV_USER_NONE) {
    if (!r->srv->store)
      return srv_fail(err, 404, "unknown_user",
                      "user " SRV_ECHO_FMT " is not in the model; for a user it has not seen, "
                      "send the items they liked instead: /recommend?liked=ID1,ID2 "
                      "or {\"liked\": [\"ID1\", \"ID2\"]}",
                      SRV_ECHO(q->user.p, q->user.len));
    return srv_answer_popular(r, sm, q->user, q->has_category ? q->category.p : NULL,
                              q->category.len, q->k, err);
  }
  bool online = ou.kind == SRV_USER_ONLINE;
  uint32_t u = online ? 0 : (uint32_t)ou.model_user;
  const srv_attr_view *v = r->srv->item_attrs ? srv_attrs_acquire(r->srv->item_attrs, sm) : NULL;
  bool ok = false, owned = false;
  size_t n_ex = 0, n = 0, n_hist = 0;
  uint32_t *hist = NULL;
  uint32_t *ex = exclusions(th, sm, q, v, &n_ex, &owned);
  cofi_explainer *e = NULL;
  srv_new_top nt = {0};
  int rc = COFI_OK;
  if (!ex) {
    srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
    goto done;
  }
  const uint32_t *seen = ou.seen;
  size_t n_seen = ou.n_seen;
  const float *vec = ou.vec;
  /* an online user's history oldest first, where it is scored (EASE,
   * item-kNN) or explained: as the vector was folded in, a recency
   * half-life weighs it by position */
  if (online && (!vec || q->explain)) hist = srv_online_history_by_time(sm, &ou, &n_hist);
  if (!online) {
    const float *vals;
    n_seen = cofi_model_user_items(sm->m, u, &seen, &vals);
    const float *uf = cofi_model_user_factors(sm->m); /* NULL: not ALS */
    vec = uf ? uf + (size_t)u * sm->info.factors : NULL;
  }
  if ((q->has_category || q->has_items) && !vec) {
    srv_fail(err, 400, "needs_als_model", "category= and items=: %s",
             cofi_model_kind_error(sm->m, "filtering by category or candidates"));
    goto done;
  }
  if (q->has_category || q->has_items) {
    if (!filtered_top(r, sm, v, q, vec, seen, n_seen, ex, n_ex, &n, err)) goto done;
  } else {
    cofi_recommend_options opt = cofi_recommend_options_default();
    opt.k = q->k;
    opt.filter_seen = q->filter_seen;
    opt.exclude = ex;
    opt.n_exclude = n_ex;
    if (online && !vec) /* not ALS: score the history itself, oldest first */
      rc = hist ? cofi_recommend_history(sm->m, th->ws, hist, NULL, n_hist, q->k, &opt, th->top, &n)
                : COFI_ERR_NOMEM;
    else
      rc = online ? cofi_recommend_vector(sm->m, th->ws, vec, q->filter_seen ? seen : NULL,
                                          q->filter_seen ? n_seen : 0, &opt, th->top, &n)
                  : cofi_recommend_user(sm->m, th->ws, u, &opt, th->top, &n);
  }
  if (rc == COFI_OK && q->explain && n)
    rc = online ? (hist ? cofi_explainer_new_history(sm->m, hist, NULL, n_hist, &e) : COFI_ERR_NOMEM)
                : cofi_explainer_new_user(sm->m, u, &e);
  if (rc != COFI_OK) {
    library_error(err, rc);
    goto done;
  }
  /* New items (vectors from their metadata, new_items.c) compete by score
   * in a plain answer; a filtered one (category=, items=) ranks model
   * items only. */
  if (vec && !q->has_category && !q->has_items &&
      !srv_new_items_top(r->srv, sm, vec, false, NULL, q->k, q->exclude, q->n_exclude, &nt)) {
    library_error(err, COFI_ERR_NOMEM);
    goto done;
  }
  size_t mark = b->len;
  srv_buf_lit(b, "{\"user_id\":");
  if (online) srv_buf_json_str(b, q->user.p, q->user.len);
  else write_user_id(b, sm, u);
  if (online) srv_buf_lit(b, ",\"source\":\"online\"");
  srv_buf_lit(b, ",\"recommendations\":");
  rc = write_items(b, sm, th->top, n, e, &nt, q->k);
  if (rc != COFI_OK) {
    if (!b->oom) b->len = mark;
    library_error(err, rc);
    goto done;
  }
  srv_buf_putc(b, '}');
  ok = true;
done:
  srv_new_top_free(&nt);
  cofi_explainer_free(e);
  if (owned) free(ex);
  if (v) srv_attrs_release(r->srv->item_attrs);
  free(hist);
  srv_online_user_free(&ou);
  return ok;
}

static bool answer_cold(cofi_server *srv, srv_thread *th, const srv_model *sm,
                        const srv_rec_query *q, const cofi_recommend_options *opt_in, srv_buf *b,
                        srv_error *err);

/* Writes the answer for one recommendation query into b, or returns false
 * with err (b is then unchanged). */
static bool answer_recommend(srv_req *r, const srv_model *sm, const srv_rec_query *q,
                             srv_buf *b, srv_error *err) {
  srv_thread *th = r->th;
  if (q->explain && cofi_model_kind_of(sm->m) != COFI_MODEL_ALS)
    return srv_fail(err, 400, "needs_als_model", "explain=1: %s",
                    cofi_model_kind_error(sm->m, "explaining a recommendation"));
  if (q->has_user) return answer_user(r, sm, q, b, err);
  cofi_recommend_options opt = cofi_recommend_options_default();
  opt.k = q->k;
  opt.filter_seen = q->filter_seen;
  const srv_attr_view *v = r->srv->item_attrs ? srv_attrs_acquire(r->srv->item_attrs, sm) : NULL;
  bool owned = false;
  uint32_t *ex = exclusions(th, sm, q, v, &opt.n_exclude, &owned);
  if (v) srv_attrs_release(r->srv->item_attrs);
  if (!ex) return srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
  opt.exclude = ex;
  bool ok = answer_cold(r->srv, th, sm, q, &opt, b, err);
  if (owned) free(ex);
  return ok;
}
/* Cold start (liked=): ALS folds the liked items into a user vector (which
 * also ranks new items); EASE and item-kNN score the history directly. */
static bool answer_cold(cofi_server *srv, srv_thread *th, const srv_model *sm,
                        const srv_rec_query *q, const cofi_recommend_options *opt_in, srv_buf *b,
                        srv_error *err) {
  cofi_recommend_options opt = *opt_in;
  size_t n = 0;
  int rc;
  size_t n_known = 0, n_unknown = 0;
  for (size_t i = 0; i < q->n_liked; i++) {
    int64_t it = cofi_model_find_item(sm->m, q->liked[i].p, q->liked[i].len);
    if (it >= 0) {
      th->order[n_known] = (uint32_t)it;
      th->items[n_known++] = (uint32_t)it;
    } else {
      n_unknown++;
    }
  }
  if (n_known == 0) {
    const srv_span *first = &q->liked[0];
    return srv_fail(err, 404, "unknown_items",
                    "none of the %zu liked items is in the model (the first is " SRV_ECHO_FMT
                    "); send item IDs as they appear in the training data",
                    q->n_liked, SRV_ECHO(first->p, first->len));
  }
  /* A repeated item would weigh twice in the fold-in. */
  qsort(th->items, n_known, sizeof *th->items, cmp_u32);
  size_t uniq = 0;
  for (size_t i = 0; i < n_known; i++)
    if (i == 0 || th->items[i] != th->items[i - 1]) th->items[uniq++] = th->items[i];
  size_t n_order = n_known;
  n_known = uniq;
  bool als = cofi_model_kind_of(sm->m) == COFI_MODEL_ALS;
  if (als) {
    rc = cofi_fold_in(sm->m, th->ws, th->items, NULL, n_known, th->vec);
    if (rc == COFI_OK)
      rc = cofi_recommend_vector(sm->m, th->ws, th->vec, th->items, n_known, &opt, th->top, &n);
  } else {
    rc = cofi_recommend_history(sm->m, th->ws, th->items, NULL, n_known, q->k, &opt, th->top, &n);
  }
  cofi_explainer *e = NULL;
  if (rc == COFI_OK && q->explain && n)
    rc = cofi_explainer_new_history(sm->m, th->items, NULL, n_known, &e);
  if (rc != COFI_OK) return library_error(err, rc);
  srv_new_top nt = {0};
  if (als && !srv_new_items_top(srv, sm, th->vec, false, NULL, q->k, q->exclude, q->n_exclude, &nt)) {
    cofi_explainer_free(e);
    return library_error(err, COFI_ERR_NOMEM);
  }
  size_t mark = b->len;
  /* The known liked items in request order, each once. */
  srv_buf_lit(b, "{\"liked\":[");
  memset(th->printed, 0, n_known * sizeof *th->printed);
  for (size_t i = 0, w = 0; i < n_order; i++) {
    const uint32_t *at = bsearch(&th->order[i], th->items, n_known, sizeof *th->items, cmp_u32);
    size_t slot = (size_t)(at - th->items);
    if (th->printed[slot]) continue;
    th->printed[slot] = true;
    if (w++) srv_buf_putc(b, ',');
    write_item_id(b, sm, th->order[i]);
  }
  srv_buf_lit(b, "],\"unknown\":[");
  bool first = true;
  for (size_t i = 0; i < q->n_liked && n_unknown; i++) {
    if (cofi_model_find_item(sm->m, q->liked[i].p, q->liked[i].len) >= 0) continue;
    if (!first) srv_buf_putc(b, ',');
    first = false;
    srv_buf_json_str(b, q->liked[i].p, q->liked[i].len);
  }
  srv_buf_lit(b, "],\"recommendations\":");
  rc = write_items(b, sm, th->top, n, e, &nt, q->k);
  cofi_explainer_free(e);
  srv_new_top_free(&nt);
  if (rc != COFI_OK) {
    if (!b->oom) b->len = mark;
    return library_error(err, rc);
  }
  srv_buf_putc(b, '}');
  return true;
}

/* ---- endpoints ------------------------------------------------------------- */

static bool parse_query(srv_req *r, srv_param *ps, size_t *n, srv_error *err) {
  return srv_query_parse(r->query, r->query_len, r->query, ps, SRV_MAX_PARAMS, n, err);
}

static void recommend_get(srv_req *r, bool cold_only) {
  srv_param ps[SRV_MAX_PARAMS];
  size_t n;
  srv_error err;
  srv_rec_query q;
  q.liked = r->th->spans_a;
  q.exclude = r->th->spans_b;
  /* items= needs its own list; allocated only when the query has one. */
  q.cands = NULL;
  if (!cold_only && r->query_len >= 5 && memmem(r->query, r->query_len, "items", 5)) {
    q.cands = malloc(r->lim.max_list * sizeof *q.cands);
    if (!q.cands) {
      srv_req_fail(r, 503, "out_of_memory", "the server is out of memory; retry later");
      return;
    }
  }
  if (!parse_query(r, ps, &n, &err) ||
      !srv_rec_query_from_params(ps, n, &r->lim, r->cfg->default_k, cold_only, &q, &err)) {
    srv_req_error(r, &err);
  } else {
    srv_model *sm = srv_req_model(r);
    if (!answer_recommend(r, sm, &q, r->out, &err)) srv_req_error(r, &err);
  }
  free(q.cands);
}

void srv_h_recommend(srv_req *r) { recommend_get(r, false); }
void srv_h_recommend_cold(srv_req *r) { recommend_get(r, true); }

void srv_h_invocations(srv_req *r) {
  srv_error err;
  srv_rec_query q;
  q.liked = r->th->spans_a;
  q.exclude = r->th->spans_b;
  json_t *root = srv_json_parse(r->body, r->body_len, &err);
  if (!root || !srv_rec_query_from_json(root, &r->lim, r->cfg->invocations_k, &q, &err)) {
    srv_req_error(r, &err);
  } else {
    srv_model *sm = srv_req_model(r);
    if (!answer_recommend(r, sm, &q, r->out, &err)) srv_req_error(r, &err);
  }
  json_decref(root);
}

void srv_h_recommend_batch(srv_req *r) {
  srv_error err;
  size_t n_users;
  uint32_t k;
  bool filter_seen;
  json_t *root = srv_json_parse(r->body, r->body_len, &err);
  if (!root || !srv_batch_from_json(root, &r->lim, r->cfg->default_k, r->th->spans_a, &n_users,
                                    &k, &filter_seen, &err)) {
    srv_req_error(r, &err);
    json_decref(root);
    return;
  }
  /* users x k bounds the answer's size (about 100 bytes per result). */
  if ((uint64_t)n_users * k > SRV_MAX_BATCH_RESULTS) {
    srv_req_fail(r, 400, "batch_too_large",
                 "users x k is %zu x %u = %llu results, the limit is %u: split the batch",
                 n_users, k, (unsigned long long)n_users * k, SRV_MAX_BATCH_RESULTS);
    json_decref(root);
    return;
  }
  srv_model *sm = srv_req_model(r);
  srv_buf *b = r->out;
  srv_rec_query q = {0};
  q.has_user = true;
  q.k = k;
  q.filter_seen = filter_seen;
  srv_buf_lit(b, "{\"results\":[");
  for (size_t i = 0; i < n_users; i++) {
    if (i) srv_buf_putc(b, ',');
    q.user = r->th->spans_a[i];
    size_t mark = b->len;
    if (!answer_recommend(r, sm, &q, b, &err)) {
      if (!b->oom) b->len = mark;
      srv_buf_lit(b, "{\"user_id\":");
      srv_buf_json_str(b, q.user.p, q.user.len);
      srv_buf_putc(b, ',');
      srv_buf_error_member(b, &err);
      srv_buf_putc(b, '}');
    }
  }
  srv_buf_lit(b, "]}");
  json_decref(root);
}

/* /similar_items for a new item (new_items.c): the model's items by cosine
 * with its vector from metadata, and the other new items. */
static void similar_new_item(srv_req *r, const srv_model *sm, srv_span id, uint32_t k) {
  srv_error err;
  float center[COFI_MAX_FACTORS];
  if (!srv_new_items_vector(r->srv, sm, id, r->th->vec, center, &err)) {
    srv_req_error(r, &err);
    return;
  }
  size_t got = 0;
  srv_new_top nt;
  /* around the mean item: what its categories add (similar_vector.c) */
  int rc = cofi_similar_items_vector(sm->m, r->th->ws, r->th->vec, center, k, r->th->top, &got);
  if (rc == COFI_OK && !srv_new_items_top(r->srv, sm, r->th->vec, true, center, k, &id, 1, &nt))
    rc = COFI_ERR_NOMEM;
  if (rc != COFI_OK) {
    library_error(&err, rc);
    srv_req_error(r, &err);
    return;
  }
  srv_buf *b = r->out;
  srv_buf_lit(b, "{\"item_id\":");
  srv_buf_json_str(b, id.p, id.len);
  srv_buf_lit(b, ",\"source\":\"metadata\",\"similar\":");
  write_items(b, sm, r->th->top, got, NULL, &nt, k);
  srv_new_top_free(&nt);
  srv_buf_putc(b, '}');
}

static void similar(srv_req *r, bool items) {
  const char *id_name = items ? "item_id" : "user_id";
  srv_param ps[SRV_MAX_PARAMS];
  size_t n, got = 0;
  srv_error err;
  srv_span id;
  uint32_t k;
  if (!parse_query(r, ps, &n, &err) ||
      !srv_similar_query_from_params(ps, n, id_name, &r->lim, r->cfg->default_k, &id, &k, &err)) {
    srv_req_error(r, &err);
    return;
  }
  srv_model *sm = srv_req_model(r);
  srv_buf *b = r->out;
  int64_t idx = items ? cofi_model_find_item(sm->m, id.p, id.len)
                      : cofi_model_find_user(sm->m, id.p, id.len);
  if (idx < 0 && items) {
    similar_new_item(r, sm, id, k);
    return;
  }
  if (idx < 0) {
    srv_req_fail(r, 404, "unknown_user", "user " SRV_ECHO_FMT " is not in the model",
                 SRV_ECHO(id.p, id.len));
    return;
  }
  if (!items && cofi_model_kind_of(sm->m) != COFI_MODEL_ALS) {
    srv_req_fail(r, 400, "needs_als_model", "%s",
                 cofi_model_kind_error(sm->m, "/similar_users"));
    return;
  }
  /* Hidden items are never listed: ask for as many more as are hidden,
   * then drop them. */
  const srv_attr_view *v = items && r->srv->item_attrs ? srv_attrs_acquire(r->srv->item_attrs, sm) : NULL;
  size_t n_hidden = 0;
  if (v) srv_attrs_hidden(v, &n_hidden);
  cofi_scored *top = r->th->top;
  size_t want = k;
  if (n_hidden) {
    want = k + n_hidden < sm->info.n_items ? k + n_hidden : sm->info.n_items;
    top = malloc((want ? want : 1) * sizeof *top);
  }
  int rc = !top ? COFI_ERR_NOMEM
           : items ? cofi_similar_items(sm->m, r->th->ws, (uint32_t)idx, want, top, &got)
                   : cofi_similar_users(sm->m, r->th->ws, (uint32_t)idx, k, top, &got);
  if (rc == COFI_OK && n_hidden) {
    size_t w = 0;
    for (size_t i = 0; i < got && w < k; i++)
      if (!srv_attrs_is_hidden(v, top[i].index)) r->th->top[w++] = top[i];
    got = w;
  }
  if (v) srv_attrs_release(r->srv->item_attrs);
  if (top != r->th->top) free(top);
  if (rc != COFI_OK) {
    library_error(&err, rc);
    srv_req_error(r, &err);
    return;
  }
  if (items) {
    /* new items (with a vector from their metadata) are candidates too */
    srv_new_top nt = {0};
    const float *yf = cofi_model_item_factors(sm->m); /* NULL: not ALS, no new items */
    if (yf && !srv_new_items_top(r->srv, sm, yf + (size_t)idx * sm->info.factors, true, NULL, k,
                                 NULL, 0, &nt)) {
      library_error(&err, COFI_ERR_NOMEM);
      srv_req_error(r, &err);
      return;
    }
    srv_buf_lit(b, "{\"item_id\":");
    write_item_id(b, sm, (uint32_t)idx);
    srv_buf_lit(b, ",\"similar\":");
    write_items(b, sm, r->th->top, got, NULL, &nt, k);
    srv_new_top_free(&nt);
  } else {
    srv_buf_lit(b, "{\"user_id\":");
    write_user_id(b, sm, (uint32_t)idx);
    srv_buf_lit(b, ",\"similar\":[");
    for (size_t i = 0; i < got; i++) {
      if (i) srv_buf_putc(b, ',');
      srv_buf_lit(b, "{\"user_id\":");
      write_user_id(b, sm, r->th->top[i].index);
      srv_buf_lit(b, ",\"score\":");
      srv_buf_float(b, r->th->top[i].score);
      srv_buf_putc(b, '}');
    }
    srv_buf_putc(b, ']');
  }
  srv_buf_putc(b, '}');
}

void srv_h_similar_items(srv_req *r) { similar(r, true); }
void srv_h_similar_users(srv_req *r) { similar(r, false); }

void srv_h_items(srv_req *r) {
  srv_error err;
  srv_span id = r->route_arg;
  if (!srv_check_id(id.p, id.len, r->lim.max_id_len, "the item ID in /items/{id}", &err)) {
    srv_req_error(r, &err);
    return;
  }
  srv_model *sm = srv_req_model(r);
  int64_t it = cofi_model_find_item(sm->m, id.p, id.len);
  if (it < 0) {
    srv_req_fail(r, 404, "unknown_item", "item " SRV_ECHO_FMT " is not in the model",
                 SRV_ECHO(id.p, id.len));
    return;
  }
  srv_buf *b = r->out;
  srv_buf_lit(b, "{\"item_id\":");
  write_item_id(b, sm, (uint32_t)it);
  for (uint32_t f = 0; f < sm->info.n_item_fields; f++) {
    size_t nlen, vlen;
    const char *name = cofi_model_item_field_name(sm->m, f, &nlen);
    const char *val = cofi_model_item_field(sm->m, (uint32_t)it, f, &vlen);
    /* The ID is already there under its fixed name. */
    if (nlen == 7 && !memcmp(name, "item_id", 7)) continue;
    srv_buf_putc(b, ',');
    srv_buf_json_str(b, name, nlen);
    srv_buf_putc(b, ':');
    srv_buf_json_str(b, val, vlen);
  }
  srv_buf_lit(b, ",\"interactions\":");
  srv_buf_u64(b, sm->item_users[it]);
  srv_buf_putc(b, '}');
}

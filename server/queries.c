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
 *   /recommend, /invocations   {"user_id": ID, "recommendations": [ITEM...]}
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
#include "srv.h"

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

/* Writes the answer for one recommendation query into b, or returns false
 * with err (b is then unchanged). */
static bool answer_recommend(cofi_server *srv, srv_thread *th, const srv_model *sm,
                             const srv_rec_query *q, srv_buf *b, srv_error *err) {
  cofi_recommend_options opt = cofi_recommend_options_default();
  opt.k = q->k;
  opt.filter_seen = q->filter_seen;
  opt.exclude = th->exclude;
  opt.n_exclude = resolve_exclude(sm, q, th->exclude);
  size_t n = 0;
  int rc;
  if (q->has_user) {
    int64_t u = cofi_model_find_user(sm->m, q->user.p, q->user.len);
    if (u < 0)
      return srv_fail(err, 404, "unknown_user",
                      "user " SRV_ECHO_FMT " is not in the model; for a user it has not seen, "
                      "send the items they liked instead: /recommend?liked=ID1,ID2 "
                      "or {\"liked\": [\"ID1\", \"ID2\"]}",
                      SRV_ECHO(q->user.p, q->user.len));
    rc = cofi_recommend_user(sm->m, th->ws, (uint32_t)u, &opt, th->top, &n);
    cofi_explainer *e = NULL;
    if (rc == COFI_OK && q->explain && n) rc = cofi_explainer_new_user(sm->m, (uint32_t)u, &e);
    if (rc != COFI_OK) return library_error(err, rc);
    srv_new_top nt;
    const float *uvec = cofi_model_user_factors(sm->m) + (size_t)u * sm->info.factors;
    if (!srv_new_items_top(srv, sm, uvec, false, NULL, q->k, q->exclude, q->n_exclude, &nt)) {
      cofi_explainer_free(e);
      return library_error(err, COFI_ERR_NOMEM);
    }
    size_t mark = b->len;
    srv_buf_lit(b, "{\"user_id\":");
    write_user_id(b, sm, (uint32_t)u);
    srv_buf_lit(b, ",\"recommendations\":");
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

  /* Cold start: fold the liked items into a user vector. */
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
  rc = cofi_fold_in(sm->m, th->ws, th->items, NULL, n_known, th->vec);
  if (rc == COFI_OK)
    rc = cofi_recommend_vector(sm->m, th->ws, th->vec, th->items, n_known, &opt, th->top, &n);
  cofi_explainer *e = NULL;
  if (rc == COFI_OK && q->explain && n)
    rc = cofi_explainer_new_history(sm->m, th->items, NULL, n_known, &e);
  if (rc != COFI_OK) return library_error(err, rc);
  srv_new_top nt;
  if (!srv_new_items_top(srv, sm, th->vec, false, NULL, q->k, q->exclude, q->n_exclude, &nt)) {
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
  if (!parse_query(r, ps, &n, &err) ||
      !srv_rec_query_from_params(ps, n, &r->lim, r->cfg->default_k, cold_only, &q, &err)) {
    srv_req_error(r, &err);
    return;
  }
  srv_model *sm = srv_req_model(r);
  if (!answer_recommend(r->srv, r->th, sm, &q, r->out, &err)) srv_req_error(r, &err);
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
    if (!answer_recommend(r->srv, r->th, sm, &q, r->out, &err)) srv_req_error(r, &err);
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
    if (!answer_recommend(r->srv, r->th, sm, &q, b, &err)) {
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
  int rc = items ? cofi_similar_items(sm->m, r->th->ws, (uint32_t)idx, k, r->th->top, &got)
                 : cofi_similar_users(sm->m, r->th->ws, (uint32_t)idx, k, r->th->top, &got);
  if (rc != COFI_OK) {
    library_error(&err, rc);
    srv_req_error(r, &err);
    return;
  }
  if (items) {
    /* new items (with a vector from their metadata) are candidates too */
    srv_new_top nt;
    const float *y = cofi_model_item_factors(sm->m) + (size_t)idx * sm->info.factors;
    if (!srv_new_items_top(r->srv, sm, y, true, NULL, k, NULL, 0, &nt)) {
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

/*
 * store_routes.c — the routes of `cofi serve --store URL` (docs/serving.md):
 *
 *   POST   /feedback                one event or {"events": [...]}; answers
 *                                   {"accepted": n} after the commit
 *   GET    /items/{id}              from the store (else the model)
 *   PUT    /items/{id}              title, categories, hidden, timestamp, fields
 *   DELETE /items/{id}              hides the item (its events are kept)
 *   GET    /users/{id}              the user's labels
 *   PUT    /users/{id}              labels
 *   DELETE /users/{id}              the user and every event of theirs
 *   GET    /users/{id}/history      events, newest first, with item titles
 *
 * Requests are checked completely here (JSON shape, event types against the
 * event-weight table, cofi_store_check_event for each event) before
 * anything reaches the writer (writer.c), so a bad request writes nothing
 * and names the event's index and field. Writes need the API token when one
 * is configured (lifecycle.c refuses to start a store server on a
 * non-loopback address without one).
 */
#include "online.h"

#include <ctype.h>
#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Most events in one POST /feedback. */
#define SRV_MAX_FEEDBACK 10000u
/* Most events GET /users/{id}/history returns (and its default). */
#define SRV_MAX_HISTORY 10000u
#define SRV_DEFAULT_HISTORY 100u

static const char *const default_events[] = {"watch", "like", "complete"};

/* ---- shared ------------------------------------------------------------- */

static bool need_store(srv_req *r) {
  if (r->srv->store) return true;
  srv_req_fail(r, 404, "store_disabled",
               "%.*s needs a store: start cofi serve with --store URL (docs/store.md)",
               (int)r->path.len, r->path.p);
  return false;
}

/* Writes need the API token when one is configured. */
static bool authorized(srv_req *r) {
  const char *token = r->cfg->api_token;
  if (!token || !*token) return true;
  const char *auth =
      MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  static const char bearer[] = "Bearer ";
  if (auth && strncasecmp(auth, bearer, sizeof bearer - 1) == 0 &&
      srv_secret_eq(auth + sizeof bearer - 1, strlen(auth + sizeof bearer - 1), token,
                    strlen(token)))
    return true;
  r->www_authenticate = "Bearer realm=\"cofi-api\"";
  srv_req_fail(r, 401, "unauthorized",
               "writes need the API token: Authorization: Bearer <token of --api-token-file "
               "or COFI_API_TOKEN>");
  return false;
}

/* A store call's failure as an answer. */
static void store_error(srv_req *r, int rc, const cofi_diag *d, const char *what) {
  const char *msg = d->message[0] ? d->message : cofi_error_message(rc);
  switch (rc) {
  case COFI_ERR_INVALID:
    srv_req_fail(r, 400, "invalid_request", "%s", msg);
    break;
  case COFI_ERR_NOT_FOUND:
    srv_req_fail(r, 404, "not_found", "%s: %s", what, msg);
    break;
  case COFI_ERR_STORE:
    srv_req_fail(r, 503, "store_unavailable",
                 "the store is unavailable (%s): nothing was written; recommendations are still "
                 "served from the model; retry later",
                 msg);
    break;
  case COFI_ERR_NOMEM:
    srv_req_fail(r, 503, "out_of_memory", "the server is out of memory; retry later");
    break;
  case COFI_ERR_CORRUPT:
    srv_req_fail(r, 500, "store_corrupt", "%s: the store holds a bad row: %s", what, msg);
    break;
  default:
    srv_req_fail(r, 500, "store_error", "%s: %s", what, msg);
    break;
  }
}

/* ISO 8601 in UTC: YYYY-MM-DD, optionally [T ]HH:MM[:SS[.fff]] and a zone
 * (Z, +HH:MM, +HHMM, +HH; none: UTC). */
static bool parse_iso8601(const char *s, size_t n, int64_t *out) {
  char buf[64];
  if (n == 0 || n >= sizeof buf) return false;
  memcpy(buf, s, n);
  buf[n] = 0;
  const char *p = buf;
  int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
  if (sscanf(p, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10) return false;
  p += used;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (sscanf(p, "%2d:%2d%n", &h, &mi, &used) != 2 || used != 5) return false;
    p += used;
    if (*p == ':') {
      if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2])) return false;
      sec = (p[1] - '0') * 10 + (p[2] - '0');
      p += 3;
      if (*p == '.' || *p == ',') {
        p++;
        if (!isdigit((unsigned char)*p)) return false;
        while (isdigit((unsigned char)*p)) p++; /* fractions are dropped */
      }
    }
  }
  int64_t off = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1, oh, om = 0;
    p++;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) return false;
    oh = (p[0] - '0') * 10 + (p[1] - '0');
    p += 2;
    if (*p == ':') p++;
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1])) {
      om = (p[0] - '0') * 10 + (p[1] - '0');
      p += 2;
    }
    if (oh > 23 || om > 59) return false;
    off = sign * (int64_t)(oh * 3600 + om * 60);
  }
  if (*p) return false;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  struct tm back;
  if (!gmtime_r(&t, &back) || back.tm_mday != d) return false; /* 2026-02-30 */
  *out = (int64_t)t - off;
  return true;
}

static void put_iso8601(srv_buf *b, int64_t t) {
  time_t tt = (time_t)t;
  struct tm tm;
  char s[40];
  if (!gmtime_r(&tt, &tm) || !strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
    srv_buf_lit(b, "null");
    return;
  }
  srv_buf_putc(b, '"');
  srv_buf_put(b, s, strlen(s));
  srv_buf_putc(b, '"');
}

/* A timestamp member: an ISO 8601 string or unix seconds (an integer). */
static bool json_timestamp(json_t *v, int64_t *out) {
  if (json_is_integer(v)) {
    *out = (int64_t)json_integer_value(v);
    return true;
  }
  return json_is_string(v) && parse_iso8601(json_string_value(v), json_string_length(v), out);
}

/* An ID member: a string, or an integer written as decimal (the key's value
 * is replaced by that string, owned by obj). */
static bool json_id(json_t *obj, const char *key, const char **p, size_t *n) {
  json_t *v = json_object_get(obj, key);
  if (json_is_integer(v)) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    if (json_object_set_new(obj, key, json_string(buf))) return false;
    v = json_object_get(obj, key);
  }
  if (!json_is_string(v)) return false;
  *p = json_string_value(v);
  *n = json_string_length(v);
  return true;
}

/* ---- POST /feedback ---------------------------------------------------- */

static bool known_event(const cofi_server_config *cfg, const char *e, size_t n) {
  if (cfg->event_weights && cfg->n_event_weights) {
    for (size_t i = 0; i < cfg->n_event_weights; i++)
      if (strlen(cfg->event_weights[i].event) == n && !memcmp(cfg->event_weights[i].event, e, n))
        return true;
    return false;
  }
  for (size_t i = 0; i < sizeof default_events / sizeof *default_events; i++)
    if (strlen(default_events[i]) == n && !memcmp(default_events[i], e, n)) return true;
  return false;
}

static void known_events_text(const cofi_server_config *cfg, char *buf, size_t size) {
  size_t o = 0;
  buf[0] = 0;
  size_t n = cfg->event_weights && cfg->n_event_weights ? cfg->n_event_weights
                                                         : sizeof default_events / sizeof *default_events;
  for (size_t i = 0; i < n && o + 2 < size; i++) {
    const char *e = cfg->event_weights && cfg->n_event_weights ? cfg->event_weights[i].event
                                                               : default_events[i];
    int w = snprintf(buf + o, size - o, "%s%s", i ? ", " : "", e);
    if (w < 0) break;
    o += (size_t)w;
  }
}

/* One event object into ev (strings borrowed from obj). pre: "event 3: "
 * in a batch, "" for a lone event. */
static bool parse_event(srv_req *r, json_t *obj, const char *pre, int64_t now,
                        cofi_store_event *ev) {
  memset(ev, 0, sizeof *ev);
  if (!json_is_object(obj)) {
    srv_req_fail(r, 400, "invalid_event", "%sexpected a JSON object with user_id, item_id, event",
                 pre);
    return false;
  }
  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    if (strcmp(key, "user_id") && strcmp(key, "item_id") && strcmp(key, "event") &&
        strcmp(key, "value") && strcmp(key, "timestamp")) {
      srv_req_fail(r, 400, "invalid_event",
                   "%s%s: unknown field (an event has user_id, item_id, event, value, timestamp)",
                   pre, key);
      return false;
    }
  }
  static const char *const ids[2] = {"user_id", "item_id"};
  for (int k = 0; k < 2; k++) {
    json_t *v = json_object_get(obj, ids[k]);
    const char *p = NULL;
    size_t n = 0;
    if (!v) {
      srv_req_fail(r, 400, "invalid_event", "%s%s: missing", pre, ids[k]);
      return false;
    }
    if (!json_id(obj, ids[k], &p, &n)) {
      srv_req_fail(r, 400, "invalid_event", "%s%s: expected a string (or an integer)", pre, ids[k]);
      return false;
    }
    if (k == 0) ev->user_id = p, ev->user_len = n;
    else ev->item_id = p, ev->item_len = n;
  }
  json_t *e = json_object_get(obj, "event");
  if (!e) {
    srv_req_fail(r, 400, "invalid_event", "%sevent: missing (the event type, e.g. \"watch\")", pre);
    return false;
  }
  if (!json_is_string(e)) {
    srv_req_fail(r, 400, "invalid_event", "%sevent: expected a string", pre);
    return false;
  }
  ev->event = json_string_value(e);
  ev->event_len = json_string_length(e);
  ev->value = 1.0;
  json_t *v = json_object_get(obj, "value");
  if (v && !json_is_null(v)) {
    if (!json_is_number(v)) {
      srv_req_fail(r, 400, "invalid_event", "%svalue: expected a number", pre);
      return false;
    }
    ev->value = json_number_value(v);
  }
  json_t *t = json_object_get(obj, "timestamp");
  if (t && !json_is_null(t)) {
    if (!json_timestamp(t, &ev->timestamp)) {
      srv_req_fail(r, 400, "invalid_event",
                   "%stimestamp: expected ISO 8601 (e.g. \"2026-01-02T03:04:05Z\") or unix "
                   "seconds",
                   pre);
      return false;
    }
  } else {
    ev->timestamp = now;
  }
  ev->has_timestamp = 1;
  cofi_diag d;
  memset(&d, 0, sizeof d);
  if (cofi_store_check_event(ev, &d) != COFI_OK) {
    srv_req_fail(r, 400, "invalid_event", "%s%s", pre, d.message);
    return false;
  }
  if (!known_event(r->cfg, ev->event, ev->event_len)) {
    char known[256];
    known_events_text(r->cfg, known, sizeof known);
    srv_req_fail(r, 400, "invalid_event", "%sevent: unknown event type " SRV_ECHO_FMT " (known: %s)",
                 pre, SRV_ECHO(ev->event, ev->event_len), known);
    return false;
  }
  return true;
}

/* A POST /feedback waiting for its commit (the connection is suspended
 * meanwhile, so the worker thread serves other connections). */
typedef struct feedback_job {
  srv_store *store;
  struct MHD_Connection *conn;
  json_t *root; /* the jansson path's tree, or */
  char *text;   /* the fast path's copy of the body: the events' strings */
  cofi_store_event *evs;
  size_t n;
  int rc;
  cofi_diag diag;
} feedback_job;

static void feedback_done(void *ctx, int rc, const cofi_diag *d) {
  feedback_job *j = ctx;
  j->rc = rc;
  j->diag = *d;
  srv_req_resume(j->conn); /* j is the connection's from here on */
}

static void feedback_start(void *pending) {
  feedback_job *j = pending;
  srv_store_append_async(j->store, j->evs, j->n, feedback_done, j);
}

static void feedback_finish(srv_req *r, void *pending) {
  feedback_job *j = pending;
  if (j->rc != COFI_OK) {
    store_error(r, j->rc, &j->diag, "POST /feedback");
    if (j->rc == COFI_ERR_INVALID) srv_store_count_rejected(j->store, j->n);
  } else {
    /* Before the answer: the users' next /recommend folds these in. */
    for (size_t i = 0; i < j->n; i++)
      if (r->srv->online)
        srv_online_event(r->srv->online, j->evs[i].user_id, j->evs[i].user_len,
                         j->evs[i].item_id, j->evs[i].item_len);
    srv_buf_lit(r->out, "{\"accepted\":");
    srv_buf_u64(r->out, j->n);
    srv_buf_putc(r->out, '}');
  }
  free(j->evs);
  json_decref(j->root);
  free(j->text);
  free(j);
}

/* The events of the fast path pass every check parse_event makes. */
static bool fast_events_ok(const srv_req *r, const cofi_store_event *evs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    cofi_diag d;
    memset(&d, 0, sizeof d);
    if (cofi_store_check_event(&evs[i], &d) != COFI_OK ||
        !known_event(r->cfg, evs[i].event, evs[i].event_len))
      return false;
  }
  return true;
}

static void feedback_queue(srv_req *r, json_t *root, char *text, cofi_store_event *evs,
                           size_t n);

void srv_h_feedback(srv_req *r) {
  if (!need_store(r) || !authorized(r)) return;
  int64_t now = (int64_t)time(NULL);
  {
    cofi_store_event *evs;
    size_t n;
    char *text;
    if (srv_feedback_fast(r->body, r->body_len, now, SRV_MAX_FEEDBACK, &evs, &n, &text)) {
      if (fast_events_ok(r, evs, n)) {
        feedback_queue(r, NULL, text, evs, n);
        return;
      }
      free(evs);
      free(text); /* the jansson path below says what is wrong */
    }
  }
  srv_error err;
  json_t *root = srv_json_parse(r->body, r->body_len, &err);
  if (!root) {
    srv_req_error(r, &err);
    return;
  }
  cofi_store_event *evs = NULL;
  size_t n = 0;
  json_t *list = json_is_object(root) ? json_object_get(root, "events") : NULL;
  if (list) {
    if (json_object_size(root) != 1) {
      srv_req_fail(r, 400, "invalid_request",
                   "a batch is {\"events\": [...]} with no other field");
      goto rejected;
    }
    if (!json_is_array(list) || json_array_size(list) == 0) {
      srv_req_fail(r, 400, "invalid_request", "events: expected a non-empty array of events");
      goto rejected;
    }
    n = json_array_size(list);
    if (n > SRV_MAX_FEEDBACK) {
      srv_req_fail(r, 400, "invalid_request", "events: %zu events, at most %u per request", n,
                   SRV_MAX_FEEDBACK);
      goto rejected;
    }
    evs = malloc(n * sizeof *evs);
    if (!evs) {
      srv_req_fail(r, 503, "out_of_memory", "the server is out of memory; retry later");
      goto done;
    }
    for (size_t i = 0; i < n; i++) {
      char pre[32];
      snprintf(pre, sizeof pre, "event %zu: ", i);
      if (!parse_event(r, json_array_get(list, i), pre, now, &evs[i])) goto rejected;
    }
  } else {
    n = 1;
    evs = malloc(sizeof *evs);
    if (!evs) {
      srv_req_fail(r, 503, "out_of_memory", "the server is out of memory; retry later");
      goto done;
    }
    if (!parse_event(r, root, "", now, evs)) goto rejected;
  }
  feedback_queue(r, root, NULL, evs, n);
  return;
rejected:
  srv_store_count_rejected(r->srv->store, n ? n : 1);
done:
  free(evs);
  json_decref(root);
}

/* Hands checked events (and what holds their strings) to the writer. */
static void feedback_queue(srv_req *r, json_t *root, char *text, cofi_store_event *evs,
                           size_t n) {
  feedback_job *j = calloc(1, sizeof *j);
  if (!j) {
    srv_req_fail(r, 503, "out_of_memory", "the server is out of memory; retry later");
    free(evs);
    free(text);
    json_decref(root);
    return;
  }
  j->store = r->srv->store;
  j->conn = r->conn;
  j->root = root;
  j->text = text;
  j->evs = evs;
  j->n = n;
  /* http.c suspends the connection, then feedback_start queues the events;
   * the writer's feedback_done resumes it, and feedback_finish answers. */
  r->pending = j;
  r->pending_start = feedback_start;
  r->pending_finish = feedback_finish;
}

/* ---- /items/{id} --------------------------------------------------------- */

typedef struct item_get {
  const char *id;
  size_t len;
  cofi_store_item *item;
} item_get;

static int op_get_item(cofi_store *s, void *arg, cofi_diag *d) {
  item_get *g = arg;
  return cofi_store_get_item(s, g->id, g->len, &g->item, d);
}

static int op_put_item(cofi_store *s, void *arg, cofi_diag *d) {
  return cofi_store_put_item(s, arg, d);
}

typedef struct id_op {
  const char *id;
  size_t len;
  uint64_t n;
  cofi_store_user *user;
} id_op;

static int op_hide_item(cofi_store *s, void *arg, cofi_diag *d) {
  id_op *o = arg;
  return cofi_store_hide_item(s, o->id, o->len, 1, d);
}

static void write_item(srv_buf *b, const cofi_store_item *it) {
  srv_buf_lit(b, "{\"item_id\":");
  srv_buf_json_str(b, it->id, it->id_len);
  srv_buf_lit(b, ",\"title\":");
  if (it->title) srv_buf_json_str(b, it->title, it->title_len);
  else srv_buf_lit(b, "null");
  /* categories and fields are JSON the store checked on the way in and
   * again on the way out. */
  srv_buf_lit(b, ",\"categories\":");
  if (it->categories && it->categories_len) srv_buf_put(b, it->categories, it->categories_len);
  else srv_buf_lit(b, "[]");
  srv_buf_lit(b, ",\"hidden\":");
  if (it->hidden) srv_buf_lit(b, "true");
  else srv_buf_lit(b, "false");
  srv_buf_lit(b, ",\"timestamp\":");
  if (it->has_timestamp) put_iso8601(b, it->timestamp);
  else srv_buf_lit(b, "null");
  srv_buf_lit(b, ",\"fields\":");
  if (it->fields && it->fields_len) srv_buf_put(b, it->fields, it->fields_len);
  else srv_buf_lit(b, "{}");
  srv_buf_lit(b, ",\"source\":\"store\"}");
}

/* GET from the model, as without a store. */
static void item_from_model(srv_req *r) {
  if (!srv_req_model(r)) srv_req_model_unavailable(r);
  else srv_h_items(r);
}

static void get_item(srv_req *r, srv_span id) {
  item_get g = {id.p, id.len, NULL};
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_read(r->srv->store, op_get_item, &g, &d);
  if (rc == COFI_OK) {
    write_item(r->out, g.item);
    cofi_store_item_free(g.item);
    return;
  }
  /* Not in the store (or the store is down): the model may know it. */
  srv_model *sm = srv_req_model(r);
  if ((rc == COFI_ERR_NOT_FOUND || rc == COFI_ERR_STORE) && sm &&
      cofi_model_find_item(sm->m, id.p, id.len) >= 0) {
    srv_h_items(r);
    return;
  }
  if (rc == COFI_ERR_NOT_FOUND)
    srv_req_fail(r, 404, "unknown_item", "item " SRV_ECHO_FMT " is neither in the store nor in the model",
                 SRV_ECHO(id.p, id.len));
  else
    store_error(r, rc, &d, "GET /items/{id}");
}

static bool put_item_body(srv_req *r, json_t *root, cofi_store_item *it, char **cats,
                          char **fields) {
  if (!json_is_object(root)) {
    srv_req_fail(r, 400, "invalid_request", "expected a JSON object (title, categories, hidden, timestamp, fields)");
    return false;
  }
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (!strcmp(key, "title")) {
      if (json_is_null(v)) continue;
      if (!json_is_string(v)) {
        srv_req_fail(r, 400, "invalid_request", "title: expected a string or null");
        return false;
      }
      it->title = json_string_value(v);
      it->title_len = json_string_length(v);
    } else if (!strcmp(key, "categories")) {
      if (json_is_null(v)) continue;
      size_t i;
      json_t *c;
      if (!json_is_array(v)) goto bad_cats;
      json_array_foreach(v, i, c) if (!json_is_string(c)) goto bad_cats;
      *cats = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      if (!*cats) goto nomem;
      it->categories = *cats;
      it->categories_len = strlen(*cats);
      continue;
    bad_cats:
      srv_req_fail(r, 400, "invalid_request", "categories: expected an array of strings");
      return false;
    } else if (!strcmp(key, "hidden")) {
      if (!json_is_boolean(v)) {
        srv_req_fail(r, 400, "invalid_request", "hidden: expected true or false");
        return false;
      }
      it->hidden = json_is_true(v);
    } else if (!strcmp(key, "timestamp")) {
      if (json_is_null(v)) continue;
      if (!json_timestamp(v, &it->timestamp)) {
        srv_req_fail(r, 400, "invalid_request",
                     "timestamp: expected ISO 8601 (e.g. \"2026-01-02T03:04:05Z\") or unix seconds");
        return false;
      }
      it->has_timestamp = 1;
    } else if (!strcmp(key, "fields")) {
      if (json_is_null(v)) continue;
      if (!json_is_object(v)) {
        srv_req_fail(r, 400, "invalid_request", "fields: expected a JSON object");
        return false;
      }
      *fields = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
      if (!*fields) goto nomem;
      it->fields = *fields;
      it->fields_len = strlen(*fields);
    } else {
      srv_req_fail(r, 400, "invalid_request",
                   "%s: unknown field (an item has title, categories, hidden, timestamp, fields)", key);
      return false;
    }
  }
  return true;
nomem:
  srv_req_fail(r, 503, "out_of_memory", "the server is out of memory; retry later");
  return false;
}

static void put_item(srv_req *r, srv_span id) {
  cofi_store_item it;
  memset(&it, 0, sizeof it);
  it.id = id.p;
  it.id_len = id.len;
  char *cats = NULL, *fields = NULL;
  json_t *root = NULL;
  if (r->body_len) {
    srv_error err;
    root = srv_json_parse(r->body, r->body_len, &err);
    if (!root) {
      srv_req_error(r, &err);
      return;
    }
    if (!put_item_body(r, root, &it, &cats, &fields)) goto done;
  }
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_write(r->srv->store, op_put_item, &it, &d);
  if (rc != COFI_OK) {
    store_error(r, rc, &d, "PUT /items/{id}");
    goto done;
  }
  if (r->srv->item_attrs &&
      !srv_item_attrs_put(r->srv->item_attrs, id.p, id.len, it.hidden != 0, it.categories,
                          it.categories_len)) {
    srv_req_fail(r, 503, "out_of_memory",
                 "the item is stored, but the server ran out of memory updating its filters");
    goto done;
  }
  srv_online_lists_clear(r->srv->online);
  srv_new_items_put(r->srv, srv_req_model(r), &it); /* a vector from its categories */
  srv_buf_lit(r->out, "{\"item_id\":");
  srv_buf_json_str(r->out, id.p, id.len);
  srv_buf_lit(r->out, ",\"stored\":true}");
done:
  free(cats);
  free(fields);
  json_decref(root);
}

static void delete_item(srv_req *r, srv_span id) {
  id_op o = {id.p, id.len, 0, NULL};
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_write(r->srv->store, op_hide_item, &o, &d);
  if (rc == COFI_ERR_NOT_FOUND) {
    srv_req_fail(r, 404, "unknown_item", "item " SRV_ECHO_FMT " is not in the store",
                 SRV_ECHO(id.p, id.len));
    return;
  }
  if (rc != COFI_OK) {
    store_error(r, rc, &d, "DELETE /items/{id}");
    return;
  }
  if (r->srv->item_attrs && !srv_item_attrs_hide(r->srv->item_attrs, id.p, id.len)) {
    srv_req_fail(r, 503, "out_of_memory",
                 "the item is hidden in the store, but the server ran out of memory updating its filters");
    return;
  }
  srv_online_lists_clear(r->srv->online);
  srv_new_items_hide(r->srv, id.p, id.len);
  srv_buf_lit(r->out, "{\"item_id\":");
  srv_buf_json_str(r->out, id.p, id.len);
  srv_buf_lit(r->out, ",\"hidden\":true}");
}

void srv_h_items_route(srv_req *r) {
  srv_error err;
  srv_span id = r->route_arg;
  if (!srv_check_id(id.p, id.len, r->lim.max_id_len, "the item ID in /items/{id}", &err)) {
    srv_req_error(r, &err);
    return;
  }
  if (r->method & (SRV_GET | SRV_HEAD)) {
    if (r->srv->store) get_item(r, id);
    else item_from_model(r);
    return;
  }
  if (!need_store(r) || !authorized(r)) return;
  if (r->method == SRV_PUT) put_item(r, id);
  else delete_item(r, id);
}

/* ---- /users/{id}, /users/{id}/history ------------------------------------ */

typedef struct hist_op {
  const char *id;
  size_t len;
  uint32_t limit;
  cofi_store_event *ev;
  size_t n;
} hist_op;

static int op_history(cofi_store *s, void *arg, cofi_diag *d) {
  hist_op *h = arg;
  return cofi_store_history(s, h->id, h->len, h->limit, &h->ev, &h->n, d);
}

static int op_get_user(cofi_store *s, void *arg, cofi_diag *d) {
  id_op *o = arg;
  return cofi_store_get_user(s, o->id, o->len, &o->user, d);
}

static int op_put_user(cofi_store *s, void *arg, cofi_diag *d) {
  return cofi_store_put_user(s, arg, d);
}

static int op_delete_user(cofi_store *s, void *arg, cofi_diag *d) {
  id_op *o = arg;
  return cofi_store_delete_user(s, o->id, o->len, &o->n, d);
}

static void unknown_user(srv_req *r, srv_span id) {
  srv_req_fail(r, 404, "unknown_user", "user " SRV_ECHO_FMT " is not in the store",
               SRV_ECHO(id.p, id.len));
}

static void history(srv_req *r, srv_span id) {
  uint32_t limit = SRV_DEFAULT_HISTORY;
  srv_error err;
  if (r->query_len) {
    srv_param ps[SRV_MAX_PARAMS];
    size_t np;
    if (!srv_query_parse(r->query, r->query_len, r->query, ps, SRV_MAX_PARAMS, &np, &err)) {
      srv_req_error(r, &err);
      return;
    }
    for (size_t i = 0; i < np; i++) {
      if (srv_span_eq(ps[i].key, "limit")) {
        if (!srv_parse_k(ps[i].val.p, ps[i].val.len, SRV_MAX_HISTORY, &limit, &err)) {
          srv_req_fail(r, 400, "invalid_limit", "limit: expected an integer in 1..%u, got " SRV_ECHO_FMT,
                       SRV_MAX_HISTORY, SRV_ECHO(ps[i].val.p, ps[i].val.len));
          return;
        }
      } else {
        srv_req_fail(r, 400, "unknown_parameter",
                     "unknown parameter " SRV_ECHO_FMT " (history takes limit)",
                     SRV_ECHO(ps[i].key.p, ps[i].key.len));
        return;
      }
    }
  }
  hist_op h = {id.p, id.len, limit, NULL, 0};
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_read(r->srv->store, op_history, &h, &d);
  if (rc == COFI_ERR_NOT_FOUND) {
    unknown_user(r, id);
    return;
  }
  if (rc != COFI_OK) {
    store_error(r, rc, &d, "GET /users/{id}/history");
    return;
  }
  srv_buf *b = r->out;
  srv_buf_lit(b, "{\"user_id\":");
  srv_buf_json_str(b, id.p, id.len);
  srv_buf_lit(b, ",\"events\":[");
  for (size_t i = 0; i < h.n; i++) {
    const cofi_store_event *e = &h.ev[i];
    if (i) srv_buf_putc(b, ',');
    srv_buf_lit(b, "{\"item_id\":");
    srv_buf_json_str(b, e->item_id, e->item_len);
    srv_buf_lit(b, ",\"title\":");
    if (e->title) srv_buf_json_str(b, e->title, e->title_len);
    else srv_buf_lit(b, "null");
    srv_buf_lit(b, ",\"event\":");
    if (e->event) srv_buf_json_str(b, e->event, e->event_len);
    else srv_buf_lit(b, "null");
    srv_buf_lit(b, ",\"value\":");
    srv_buf_float(b, e->value);
    srv_buf_lit(b, ",\"timestamp\":");
    if (e->has_timestamp) put_iso8601(b, e->timestamp);
    else srv_buf_lit(b, "null");
    srv_buf_lit(b, ",\"seq\":");
    srv_buf_u64(b, e->seq);
    srv_buf_putc(b, '}');
  }
  srv_buf_lit(b, "]}");
  cofi_store_events_free(h.ev);
}

static void get_user(srv_req *r, srv_span id) {
  id_op o = {id.p, id.len, 0, NULL};
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_read(r->srv->store, op_get_user, &o, &d);
  if (rc == COFI_ERR_NOT_FOUND) {
    unknown_user(r, id);
    return;
  }
  if (rc != COFI_OK) {
    store_error(r, rc, &d, "GET /users/{id}");
    return;
  }
  srv_buf_lit(r->out, "{\"user_id\":");
  srv_buf_json_str(r->out, o.user->id, o.user->id_len);
  srv_buf_lit(r->out, ",\"labels\":");
  if (o.user->labels && o.user->labels_len) srv_buf_put(r->out, o.user->labels, o.user->labels_len);
  else srv_buf_lit(r->out, "[]");
  srv_buf_putc(r->out, '}');
  cofi_store_user_free(o.user);
}

static void put_user(srv_req *r, srv_span id) {
  cofi_store_user u;
  memset(&u, 0, sizeof u);
  u.id = id.p;
  u.id_len = id.len;
  char *labels = NULL;
  json_t *root = NULL;
  if (r->body_len) {
    srv_error err;
    root = srv_json_parse(r->body, r->body_len, &err);
    if (!root) {
      srv_req_error(r, &err);
      return;
    }
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
      srv_req_fail(r, 400, "invalid_request", "expected a JSON object ({\"labels\": [...]})");
      goto done;
    }
    json_object_foreach(root, key, v) {
      if (strcmp(key, "labels")) {
        srv_req_fail(r, 400, "invalid_request", "%s: unknown field (a user has labels)", key);
        goto done;
      }
      size_t i;
      json_t *c;
      bool ok = json_is_array(v);
      if (ok) json_array_foreach(v, i, c) ok = ok && json_is_string(c);
      if (!ok) {
        srv_req_fail(r, 400, "invalid_request", "labels: expected an array of strings");
        goto done;
      }
      labels = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      if (!labels) {
        srv_req_fail(r, 503, "out_of_memory", "the server is out of memory; retry later");
        goto done;
      }
      u.labels = labels;
      u.labels_len = strlen(labels);
    }
  }
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_write(r->srv->store, op_put_user, &u, &d);
  if (rc != COFI_OK) {
    store_error(r, rc, &d, "PUT /users/{id}");
    goto done;
  }
  srv_buf_lit(r->out, "{\"user_id\":");
  srv_buf_json_str(r->out, id.p, id.len);
  srv_buf_lit(r->out, ",\"stored\":true}");
done:
  free(labels);
  json_decref(root);
}

static void delete_user(srv_req *r, srv_span id) {
  id_op o = {id.p, id.len, 0, NULL};
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_write(r->srv->store, op_delete_user, &o, &d);
  if (rc == COFI_ERR_NOT_FOUND) {
    unknown_user(r, id);
    return;
  }
  if (rc != COFI_OK) {
    store_error(r, rc, &d, "DELETE /users/{id}");
    return;
  }
  if (r->srv->online) srv_online_touch(r->srv->online, id.p, id.len);
  srv_buf_lit(r->out, "{\"user_id\":");
  srv_buf_json_str(r->out, id.p, id.len);
  srv_buf_lit(r->out, ",\"deleted\":true,\"events_deleted\":");
  srv_buf_u64(r->out, o.n);
  srv_buf_putc(r->out, '}');
}

void srv_h_users(srv_req *r) {
  if (!r->srv->store && (r->method & (SRV_GET | SRV_HEAD))) {
    srv_h_users_model(r); /* the history in the model's training matrix */
    return;
  }
  if (!need_store(r)) return;
  srv_span id = r->route_arg;
  static const char suffix[] = "/history";
  size_t sl = sizeof suffix - 1;
  bool hist = id.len > sl && !memcmp(id.p + id.len - sl, suffix, sl);
  if (hist) id.len -= sl;
  srv_error err;
  if (!srv_check_id(id.p, id.len, r->lim.max_id_len, "the user ID in /users/{id}", &err)) {
    srv_req_error(r, &err);
    return;
  }
  if (hist) {
    if (!(r->method & (SRV_GET | SRV_HEAD))) {
      r->allow = "GET, HEAD";
      srv_req_fail(r, 405, "method_not_allowed", "/users/{id}/history accepts GET, HEAD");
      return;
    }
    history(r, id);
    return;
  }
  if (r->method & (SRV_GET | SRV_HEAD)) {
    get_user(r, id);
    return;
  }
  if (!authorized(r)) return;
  if (r->method == SRV_PUT) put_user(r, id);
  else delete_user(r, id);
}

/*
 * fuzz_json.c — the server's JSON request bodies (server/parse.c) on
 * hostile bytes: srv_json_parse, then the body of POST /invocations
 * (srv_rec_query_from_json) and of POST /recommend/batch
 * (srv_batch_from_json). The body is copied into a buffer of exactly its
 * length, not NUL-terminated, as the server receives it.
 *
 * Properties: an accepted query respects the limits (k in 1..max_k, lists
 * within max_list, IDs 1..max_id_len bytes without NUL); every rejection is
 * a 4xx with a code and a message, and its JSON error document (which
 * quotes the input) parses back as JSON. The server's JSON string writer
 * (srv_buf_json_str, server/buf.c) is also given the raw bytes: whatever
 * they are (control bytes, invalid UTF-8, NULs), the output must parse
 * back as one JSON string.
 */
#include "srv.h"

#include <stdlib.h>
#include <string.h>

static void check(int ok) {
  if (!ok) __builtin_trap();
}

static const srv_limits lim = {.max_k = 100, .max_list = 8, .max_id_len = 16};

static void id_ok(srv_span s) {
  check(s.p != NULL && s.len >= 1 && s.len <= lim.max_id_len && !memchr(s.p, 0, s.len));
}

/* The buffer holds exactly one JSON value of the given type. */
static void valid_json(const srv_buf *b, json_type type) {
  if (b->oom) return;
  json_error_t je;
  json_t *v = json_loadb(b->p, b->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  check(v != NULL && json_typeof(v) == type);
  json_decref(v);
}

static void rejected(const srv_error *e) {
  check(e->status >= 400 && e->status < 600 && e->code && e->message[0]);
  srv_buf b;
  srv_buf_init(&b);
  srv_buf_error(&b, e);
  valid_json(&b, JSON_OBJECT);
  srv_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *body = malloc(size ? size : 1);
  if (!body) return 0;
  memcpy(body, data, size);
  srv_buf out;
  srv_buf_init(&out);
  srv_buf_json_str(&out, body, size);
  valid_json(&out, JSON_STRING);
  srv_buf_free(&out);
  srv_error e;
  json_t *root = srv_json_parse(body, size, &e);
  if (!root) {
    rejected(&e);
    free(body);
    return 0;
  }
  srv_span liked[8], exclude[8];
  srv_rec_query q = {.liked = liked, .exclude = exclude};
  if (srv_rec_query_from_json(root, &lim, 10, &q, &e)) {
    check(q.has_user != q.has_liked);
    check(q.k >= 1 && q.k <= lim.max_k);
    check(q.n_liked <= lim.max_list && q.n_exclude <= lim.max_list);
    if (q.has_user) id_ok(q.user);
    if (q.has_liked) check(q.n_liked >= 1);
    for (size_t i = 0; i < q.n_liked; i++) id_ok(liked[i]);
    for (size_t i = 0; i < q.n_exclude; i++) id_ok(exclude[i]);
  } else {
    rejected(&e);
  }
  json_decref(root);

  root = srv_json_parse(body, size, &e);
  if (root) {
    srv_span users[8];
    size_t n = 0;
    uint32_t k;
    bool fs;
    if (srv_batch_from_json(root, &lim, 10, users, &n, &k, &fs, &e)) {
      check(n >= 1 && n <= lim.max_list && k >= 1 && k <= lim.max_k);
      for (size_t i = 0; i < n; i++) id_ok(users[i]);
    } else {
      rejected(&e);
    }
    json_decref(root);
  }
  free(body);
  return 0;
}

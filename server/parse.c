/*
 * parse.c — turning request bytes into typed values: URL decoding, query
 * strings, comma-separated ID lists with backslash escapes, k and boolean
 * parameters, and the JSON bodies of POST /invocations and
 * POST /recommend/batch.
 *
 * Every function here is pure (no server state, no allocation except the
 * JSON tree jansson builds), so the unit tests drive them directly. Every
 * rejection is a 400 with a stable code and a message that says what was
 * wrong and where, quoting at most SRV_ECHO_MAX bytes of the input.
 *
 * Query strings are decoded in place: decoding never makes text longer, so
 * the decoded bytes are written over the raw ones and the spans handed out
 * point into that same buffer. No copy, no allocation.
 */
#include "srv.h"

#include <stdio.h>
#include <string.h>

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool srv_url_decode(const char *s, size_t len, bool plus_space, char *out,
                    size_t *out_len, srv_error *err) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (len - i < 3)
        return srv_fail(err, 400, "invalid_encoding",
                        "truncated percent-escape at byte %zu of " SRV_ECHO_FMT
                        " (write %%25 for a literal %%)",
                        i + 1, SRV_ECHO(s, len));
      int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
      if (h < 0 || l < 0)
        return srv_fail(err, 400, "invalid_encoding",
                        "bad percent-escape '%%%c%c' at byte %zu of " SRV_ECHO_FMT
                        " (write %%25 for a literal %%)",
                        s[i + 1] >= 0x20 && s[i + 1] < 0x7f ? s[i + 1] : '?',
                        s[i + 2] >= 0x20 && s[i + 2] < 0x7f ? s[i + 2] : '?', i + 1,
                        SRV_ECHO(s, len));
      out[o++] = (char)(h << 4 | l);
      i += 2;
    } else if (c == '+' && plus_space) {
      out[o++] = ' ';
    } else {
      out[o++] = (char)c;
    }
  }
  *out_len = o;
  return true;
}

bool srv_query_parse(const char *q, size_t len, char *out, srv_param *params,
                     size_t max, size_t *n, srv_error *err) {
  size_t o = 0, count = 0, i = 0;
  while (i < len) {
    size_t end = i;
    while (end < len && q[end] != '&') end++;
    if (end > i) {
      if (count == max)
        return srv_fail(err, 400, "too_many_parameters",
                        "more than %zu query parameters", max);
      size_t eq = i;
      while (eq < end && q[eq] != '=') eq++;
      size_t klen, vlen = 0;
      /* In place: o <= i, and each decode writes no more than it reads. */
      if (!srv_url_decode(q + i, eq - i, true, out + o, &klen, err)) return false;
      params[count].key.p = out + o;
      params[count].key.len = klen;
      o += klen;
      if (eq < end && !srv_url_decode(q + eq + 1, end - eq - 1, true, out + o, &vlen, err))
        return false;
      params[count].val.p = out + o;
      params[count].val.len = vlen;
      o += vlen;
      count++;
    }
    i = end + 1;
  }
  *n = count;
  return true;
}

bool srv_check_id(const char *s, size_t len, uint32_t max_id_len,
                  const char *what, srv_error *err) {
  if (len == 0) return srv_fail(err, 400, "invalid_id", "%s is empty", what);
  if (len > max_id_len)
    return srv_fail(err, 400, "invalid_id",
                    "%s is %zu bytes long, the limit is %u: " SRV_ECHO_FMT, what,
                    len, max_id_len, SRV_ECHO(s, len));
  if (memchr(s, 0, len))
    return srv_fail(err, 400, "invalid_id", "%s contains a NUL byte", what);
  return true;
}

bool srv_list_split(const char *s, size_t len, char *out, srv_span *items,
                    size_t max, size_t *n, uint32_t max_id_len,
                    const char *what, srv_error *err) {
  size_t o = 0, start = 0, count = *n, pos = 1;
  char label[64];
  for (size_t i = 0; i <= len; i++) {
    if (i < len && s[i] == '\\' && i + 1 < len) {
      out[o++] = s[++i];
      continue;
    }
    if (i < len && s[i] != ',') {
      out[o++] = s[i];
      continue;
    }
    /* End of one ID (a comma or the end of the text). */
    if (count == max)
      return srv_fail(err, 400, "too_many_ids", "%s: more than %zu IDs", what, max);
    snprintf(label, sizeof label, "%s: ID %zu", what, pos);
    if (!srv_check_id(out + start, o - start, max_id_len, label, err)) return false;
    items[count].p = out + start;
    items[count].len = o - start;
    count++;
    pos++;
    start = o;
  }
  *n = count;
  return true;
}

bool srv_parse_k(const char *s, size_t len, uint32_t max_k, uint32_t *k,
                 srv_error *err) {
  uint64_t v = 0;
  if (len == 0) goto bad;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') goto bad;
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > max_k) goto bad;
  }
  if (v < 1) goto bad;
  *k = (uint32_t)v;
  return true;
bad:
  return srv_fail(err, 400, "invalid_k", "k must be an integer from 1 to %u, got " SRV_ECHO_FMT,
                  max_k, SRV_ECHO(s, len));
}

bool srv_parse_bool(const char *s, size_t len, const char *what, bool *v,
                    srv_error *err) {
  srv_span x = {s, len};
  if (srv_span_eq(x, "true") || srv_span_eq(x, "1")) {
    *v = true;
    return true;
  }
  if (srv_span_eq(x, "false") || srv_span_eq(x, "0")) {
    *v = false;
    return true;
  }
  return srv_fail(err, 400, "invalid_parameter", "%s must be true or false, got " SRV_ECHO_FMT,
                  what, SRV_ECHO(s, len));
}

static bool duplicate(srv_error *err, srv_span key) {
  return srv_fail(err, 400, "duplicate_parameter",
                  "query parameter " SRV_ECHO_FMT " is given twice", SRV_ECHO(key.p, key.len));
}

static bool unknown_param(srv_error *err, srv_span key, const char *takes) {
  return srv_fail(err, 400, "unknown_parameter",
                  "unknown query parameter " SRV_ECHO_FMT " (this endpoint takes %s)",
                  SRV_ECHO(key.p, key.len), takes);
}

bool srv_rec_query_from_params(srv_param *ps, size_t n, const srv_limits *lim,
                               uint32_t default_k, bool cold_only,
                               srv_rec_query *q, srv_error *err) {
  const char *takes = cold_only ? "liked, k, exclude, explain"
                                : "user_id, liked, k, filter_seen, exclude, explain, category, items";
  bool has_k = false, has_fs = false, has_ex = false;
  q->has_user = q->has_liked = false;
  q->n_liked = q->n_exclude = 0;
  q->k = default_k;
  q->filter_seen = true;
  q->explain = false;
  q->has_category = q->has_items = false;
  q->n_cands = 0;
  for (size_t i = 0; i < n; i++) {
    srv_span key = ps[i].key, val = ps[i].val;
    /* The values live in the request's writable copy of its query string,
     * so lists are unescaped in place. */
    if (!cold_only && srv_span_eq(key, "category")) {
      if (q->has_category) return duplicate(err, key);
      if (val.len == 0 || val.len > 256 || memchr(val.p, 0, val.len))
        return srv_fail(err, 400, "invalid_category",
                        "category " SRV_ECHO_FMT " must be 1..256 bytes without NUL (it is %zu)",
                        SRV_ECHO(val.p, val.len), val.len);
      q->has_category = true;
      q->category = val;
      continue;
    }
    if (!cold_only && srv_span_eq(key, "items")) {
      if (!q->cands) return unknown_param(err, key, takes);
      q->has_items = true;
      if (!srv_list_split(val.p, val.len, (char *)val.p, q->cands, lim->max_list, &q->n_cands,
                          lim->max_id_len, "items", err))
        return false;
      continue;
    }
    char *wval = (char *)val.p;
    if (!cold_only && srv_span_eq(key, "user_id")) {
      if (q->has_user) return duplicate(err, key);
      if (!srv_check_id(val.p, val.len, lim->max_id_len, "user_id", err)) return false;
      q->has_user = true;
      q->user = val;
    } else if (srv_span_eq(key, "liked")) {
      q->has_liked = true;
      if (!srv_list_split(val.p, val.len, wval, q->liked, lim->max_list, &q->n_liked,
                          lim->max_id_len, "liked", err))
        return false;
    } else if (srv_span_eq(key, "exclude")) {
      if (!srv_list_split(val.p, val.len, wval, q->exclude, lim->max_list, &q->n_exclude,
                          lim->max_id_len, "exclude", err))
        return false;
    } else if (srv_span_eq(key, "k")) {
      if (has_k) return duplicate(err, key);
      has_k = true;
      if (!srv_parse_k(val.p, val.len, lim->max_k, &q->k, err)) return false;
    } else if (!cold_only && srv_span_eq(key, "filter_seen")) {
      if (has_fs) return duplicate(err, key);
      has_fs = true;
      if (!srv_parse_bool(val.p, val.len, "filter_seen", &q->filter_seen, err)) return false;
    } else if (srv_span_eq(key, "explain")) {
      if (has_ex) return duplicate(err, key);
      has_ex = true;
      if (!srv_parse_bool(val.p, val.len, "explain", &q->explain, err)) return false;
    } else {
      return unknown_param(err, key, takes);
    }
  }
  if (cold_only && !q->has_liked)
    return srv_fail(err, 400, "missing_parameter",
                    "liked is required: the items the new user liked, e.g. ?liked=ID1,ID2,ID3");
  if (q->has_user && q->has_liked)
    return srv_fail(err, 400, "invalid_parameter",
                    "give either user_id (a known user) or liked (a new user's items), not both");
  if (!q->has_user && !q->has_liked)
    return srv_fail(err, 400, "missing_parameter",
                    "user_id is required (or liked=ID1,ID2 for a user the model does not know)");
  if (!q->has_user && (q->has_category || q->has_items))
    return srv_fail(err, 400, "invalid_parameter",
                    "category and items filter a user's recommendations: give user_id");
  return true;
}

bool srv_similar_query_from_params(const srv_param *ps, size_t n,
                                   const char *id_name, const srv_limits *lim,
                                   uint32_t default_k, srv_span *id,
                                   uint32_t *k, srv_error *err) {
  bool has_id = false, has_k = false;
  char takes[64];
  snprintf(takes, sizeof takes, "%s, k", id_name);
  *k = default_k;
  for (size_t i = 0; i < n; i++) {
    srv_span key = ps[i].key, val = ps[i].val;
    if (srv_span_eq(key, id_name)) {
      if (has_id) return duplicate(err, key);
      if (!srv_check_id(val.p, val.len, lim->max_id_len, id_name, err)) return false;
      has_id = true;
      *id = val;
    } else if (srv_span_eq(key, "k")) {
      if (has_k) return duplicate(err, key);
      has_k = true;
      if (!srv_parse_k(val.p, val.len, lim->max_k, k, err)) return false;
    } else {
      return unknown_param(err, key, takes);
    }
  }
  if (!has_id) return srv_fail(err, 400, "missing_parameter", "%s is required", id_name);
  return true;
}

/* ---- JSON bodies --------------------------------------------------------- */

json_t *srv_json_parse(const char *body, size_t len, srv_error *err) {
  if (len == 0) {
    srv_fail(err, 400, "invalid_json",
             "the request body is empty: send a JSON object, e.g. {\"user_id\": \"u001\", \"k\": 5}");
    return NULL;
  }
  json_error_t je;
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    srv_fail(err, 400, "invalid_json", "malformed JSON at line %d, column %d: %s", je.line,
             je.column, je.text);
  return root;
}

static const char *json_type_name(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
  }
  return "something else";
}

/* An ID from a JSON value. Integers (MovieLens IDs are numbers, and people
 * send them as such) are written in decimal into a new string that
 * replaces the integer in its parent, so the span stays valid as long as
 * the document. parent is an object (key) or an array (index). */
static bool json_id(json_t *parent, const char *key, size_t index, json_t *v,
                    const char *what, const srv_limits *lim, srv_span *out,
                    srv_error *err) {
  if (json_is_integer(v)) {
    char num[24];
    int len = snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
    json_t *s = json_stringn(num, (size_t)len);
    if (!s) return srv_fail(err, 503, "out_of_memory", "out of memory");
    if ((key ? json_object_set_new(parent, key, s) : json_array_set_new(parent, index, s)) != 0)
      return srv_fail(err, 503, "out_of_memory", "out of memory");
    v = s;
  } else if (!json_is_string(v)) {
    return srv_fail(err, 400, "invalid_type", "%s must be a string (or an integer), got %s",
                    what, json_type_name(v));
  }
  out->p = json_string_value(v);
  out->len = json_string_length(v);
  return srv_check_id(out->p, out->len, lim->max_id_len, what, err);
}

static bool json_id_list(json_t *arr, const char *what, const srv_limits *lim,
                         srv_span *items, size_t *n, bool allow_empty,
                         srv_error *err) {
  if (!json_is_array(arr))
    return srv_fail(err, 400, "invalid_type", "%s must be an array of IDs, got %s", what,
                    json_type_name(arr));
  size_t len = json_array_size(arr);
  if (len == 0 && !allow_empty)
    return srv_fail(err, 400, "invalid_parameter", "%s is an empty array", what);
  if (len > lim->max_list)
    return srv_fail(err, 400, "too_many_ids", "%s has %zu IDs, the limit is %u", what, len,
                    lim->max_list);
  char label[64];
  for (size_t i = 0; i < len; i++) {
    snprintf(label, sizeof label, "%s[%zu]", what, i);
    if (!json_id(arr, NULL, i, json_array_get(arr, i), label, lim, &items[i], err)) return false;
  }
  *n = len;
  return true;
}

static bool json_k(const json_t *v, const srv_limits *lim, uint32_t *k, srv_error *err) {
  if (!json_is_integer(v) || json_integer_value(v) < 1 ||
      json_integer_value(v) > (json_int_t)lim->max_k) {
    char shown[64] = "";
    if (json_is_integer(v))
      snprintf(shown, sizeof shown, "%lld", (long long)json_integer_value(v));
    else
      snprintf(shown, sizeof shown, "%s", json_type_name(v));
    return srv_fail(err, 400, "invalid_k", "k must be an integer from 1 to %u, got %s",
                    lim->max_k, shown);
  }
  *k = (uint32_t)json_integer_value(v);
  return true;
}

/* Rejects members other than those in `known` (NULL-terminated). */
static bool json_known_fields(json_t *root, const char *const *known, const char *takes,
                              srv_error *err) {
  if (!json_is_object(root))
    return srv_fail(err, 400, "invalid_type", "the body must be a JSON object, got %s",
                    json_type_name(root));
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    bool ok = false;
    for (size_t i = 0; known[i] && !ok; i++) ok = !strcmp(key, known[i]);
    if (!ok) {
      size_t len = strlen(key);
      return srv_fail(err, 400, "unknown_field", "unknown field " SRV_ECHO_FMT " (this endpoint takes %s)",
                      SRV_ECHO(key, len), takes);
    }
  }
  return true;
}

bool srv_rec_query_from_json(json_t *root, const srv_limits *lim,
                             uint32_t default_k, srv_rec_query *q,
                             srv_error *err) {
  static const char *const known[] = {"user_id", "liked", "k", "filter_seen", "exclude",
                                      "explain", NULL};
  q->has_user = q->has_liked = false;
  q->n_liked = q->n_exclude = 0;
  q->k = default_k;
  q->filter_seen = true;
  q->explain = false;
  q->has_category = q->has_items = false;
  q->n_cands = 0;
  if (!json_known_fields(root, known, "user_id or liked, and k, filter_seen, exclude, explain",
                         err))
    return false;
  json_t *v;
  if ((v = json_object_get(root, "user_id"))) {
    if (!json_id(root, "user_id", 0, v, "user_id", lim, &q->user, err)) return false;
    q->has_user = true;
  }
  if ((v = json_object_get(root, "liked"))) {
    if (!json_id_list(v, "liked", lim, q->liked, &q->n_liked, false, err)) return false;
    q->has_liked = true;
  }
  if ((v = json_object_get(root, "exclude")) &&
      !json_id_list(v, "exclude", lim, q->exclude, &q->n_exclude, true, err))
    return false;
  if ((v = json_object_get(root, "k")) && !json_k(v, lim, &q->k, err)) return false;
  if ((v = json_object_get(root, "filter_seen"))) {
    if (!json_is_boolean(v))
      return srv_fail(err, 400, "invalid_type", "filter_seen must be true or false, got %s",
                      json_type_name(v));
    q->filter_seen = json_is_true(v);
  }
  if ((v = json_object_get(root, "explain"))) {
    if (!json_is_boolean(v))
      return srv_fail(err, 400, "invalid_type", "explain must be true or false, got %s",
                      json_type_name(v));
    q->explain = json_is_true(v);
  }
  if (q->has_user && q->has_liked)
    return srv_fail(err, 400, "invalid_parameter",
                    "give either user_id (a known user) or liked (a new user's items), not both");
  if (!q->has_user && !q->has_liked)
    return srv_fail(err, 400, "missing_parameter",
                    "user_id is required (or \"liked\": [...] for a user the model does not know), "
                    "e.g. {\"user_id\": \"u001\", \"k\": 5}");
  return true;
}

bool srv_batch_from_json(json_t *root, const srv_limits *lim,
                         uint32_t default_k, srv_span *users, size_t *n_users,
                         uint32_t *k, bool *filter_seen, srv_error *err) {
  static const char *const known[] = {"users", "k", "filter_seen", NULL};
  *k = default_k;
  *filter_seen = true;
  if (!json_known_fields(root, known, "users, k, filter_seen", err)) return false;
  json_t *v = json_object_get(root, "users");
  if (!v)
    return srv_fail(err, 400, "missing_parameter",
                    "users is required, e.g. {\"users\": [\"u001\", \"u002\"], \"k\": 10}");
  if (!json_id_list(v, "users", lim, users, n_users, false, err)) return false;
  if ((v = json_object_get(root, "k")) && !json_k(v, lim, k, err)) return false;
  if ((v = json_object_get(root, "filter_seen"))) {
    if (!json_is_boolean(v))
      return srv_fail(err, 400, "invalid_type", "filter_seen must be true or false, got %s",
                      json_type_name(v));
    *filter_seen = json_is_true(v);
  }
  return true;
}

bool srv_secret_eq(const char *given, size_t given_len, const char *expected,
                   size_t expected_len) {
  if (expected_len == 0) return false;
  /* Every byte of the presented secret is compared whatever happens, and
   * the differences are OR-ed, so the time taken says nothing about where
   * the first mismatch is. */
  volatile unsigned char diff = given_len != expected_len;
  for (size_t i = 0; i < given_len; i++)
    diff |= (unsigned char)(given[i] ^ expected[i % expected_len]);
  return diff == 0;
}

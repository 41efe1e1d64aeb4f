/*
 * test_server_parse.c — the server's request parsers (server/parse.c):
 * percent-decoding and ID-list splitting against slow obvious references
 * on random input, query strings, k and boolean validation, the GET and
 * JSON forms of a recommendation request, batch bodies, and the
 * constant-time token comparison, and request framing (server/framing.c:
 * Content-Length and Transfer-Encoding, RFC 9112 6.3). Each rejection is
 * checked for its HTTP status and stable code word.
 */
#include "testutil.h"

#include "srv.h"

#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)rng; }

static const srv_limits lim = {.max_k = 1000, .max_list = 8, .max_id_len = 16};

#define assert_error(ok, e, want_status, want_code)  \
  do {                                               \
    assert_false(ok);                                \
    assert_int_equal((e).status, (want_status));     \
    assert_string_equal((e).code, (want_code));      \
    assert_true(strlen((e).message) > 0);            \
  } while (0)

/* ---- percent-decoding ------------------------------------------------------ */

/* The reference: -1 on a bad escape, else the decoded length. */
static long ref_decode(const char *s, size_t n, bool plus, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      if (n - i < 3) return -1;
      char hex[3] = {s[i + 1], s[i + 2], 0};
      if (!hex[0] || !hex[1] || !strchr("0123456789abcdefABCDEF", hex[0]) ||
          !strchr("0123456789abcdefABCDEF", hex[1]))
        return -1;
      out[o++] = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      out[o++] = (plus && s[i] == '+') ? ' ' : s[i];
    }
  }
  return (long)o;
}

static void url_decode_examples(void **state) {
  (void)state;
  char out[64];
  size_t n;
  srv_error e;
  assert_true(srv_url_decode("a%20b+c%2C%5c%C3%BC", 19, true, out, &n, &e));
  assert_int_equal(n, 9);
  assert_memory_equal(out, "a b c,\\\xc3\xbc", 9);
  assert_true(srv_url_decode("a+b", 3, false, out, &n, &e)); /* paths keep '+' */
  assert_memory_equal(out, "a+b", 3);
  assert_true(srv_url_decode("%00", 3, true, out, &n, &e));
  assert_int_equal(n, 1);
  assert_int_equal(out[0], 0);
  assert_error(srv_url_decode("ab%", 3, true, out, &n, &e), e, 400, "invalid_encoding");
  assert_error(srv_url_decode("ab%4", 4, true, out, &n, &e), e, 400, "invalid_encoding");
  assert_error(srv_url_decode("%zz", 3, true, out, &n, &e), e, 400, "invalid_encoding");
  assert_error(srv_url_decode("%4g", 3, true, out, &n, &e), e, 400, "invalid_encoding");
  assert_non_null(strstr(e.message, "byte 1"));
  /* in place */
  char buf[] = "x%41%42+y";
  assert_true(srv_url_decode(buf, strlen(buf), true, buf, &n, &e));
  assert_memory_equal(buf, "xAB y", 5);
}

static void url_decode_matches_reference(void **state) {
  (void)state;
  static const char alphabet[] = "ab%+2F0g9Ac ";
  for (int t = 0; t < 20000; t++) {
    char in[24], want[24], got[24];
    size_t n = next() % 12;
    for (size_t i = 0; i < n; i++) in[i] = alphabet[next() % (sizeof alphabet - 1)];
    bool plus = next() & 1;
    long r = ref_decode(in, n, plus, want);
    size_t len;
    srv_error e;
    bool ok = srv_url_decode(in, n, plus, got, &len, &e);
    assert_int_equal(ok, r >= 0);
    if (ok) {
      assert_int_equal(len, (size_t)r);
      assert_memory_equal(got, want, len);
    }
  }
}

/* ---- query strings ------------------------------------------------------------ */

static void query_parse_pairs(void **state) {
  (void)state;
  char q[] = "user_id=a%20b&&k=5&flag&liked=x,y&=v&e=";
  srv_param ps[SRV_MAX_PARAMS];
  size_t n;
  srv_error e;
  assert_true(srv_query_parse(q, strlen(q), q, ps, SRV_MAX_PARAMS, &n, &e));
  assert_int_equal(n, 6);
  assert_true(srv_span_eq(ps[0].key, "user_id") && srv_span_eq(ps[0].val, "a b"));
  assert_true(srv_span_eq(ps[1].key, "k") && srv_span_eq(ps[1].val, "5"));
  assert_true(srv_span_eq(ps[2].key, "flag") && ps[2].val.len == 0);
  assert_true(srv_span_eq(ps[3].key, "liked") && srv_span_eq(ps[3].val, "x,y"));
  assert_true(ps[4].key.len == 0 && srv_span_eq(ps[4].val, "v"));
  assert_true(srv_span_eq(ps[5].key, "e") && ps[5].val.len == 0);
  /* a value may hold '=' */
  char q2[] = "a=b=c";
  assert_true(srv_query_parse(q2, strlen(q2), q2, ps, SRV_MAX_PARAMS, &n, &e));
  assert_true(n == 1 && srv_span_eq(ps[0].val, "b=c"));
  /* empty query */
  assert_true(srv_query_parse("", 0, q2, ps, SRV_MAX_PARAMS, &n, &e));
  assert_int_equal(n, 0);
  char q3[] = "a=1&b=2&c=3";
  assert_error(srv_query_parse(q3, strlen(q3), q3, ps, 2, &n, &e), e, 400, "too_many_parameters");
  char q4[] = "a=%G1";
  assert_error(srv_query_parse(q4, strlen(q4), q4, ps, 4, &n, &e), e, 400, "invalid_encoding");
}

/* ---- ID lists ------------------------------------------------------------------- */

/* The reference splitter: backslash makes the next byte literal. Returns
 * the number of IDs or -1 when one is empty. */
static int ref_split(const char *s, size_t n, char ids[][32], size_t *lens) {
  int count = 0;
  size_t len = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && s[i] == '\\' && i + 1 < n) {
      ids[count][len++] = s[++i];
    } else if (i == n || s[i] == ',') {
      if (len == 0) return -1;
      lens[count++] = len;
      len = 0;
    } else {
      ids[count][len++] = s[i];
    }
  }
  return count;
}

static void list_split_examples(void **state) {
  (void)state;
  srv_span items[8];
  size_t n = 0;
  srv_error e;
  char a[] = "a\\,b,c\\\\d,e f";
  assert_true(srv_list_split(a, strlen(a), a, items, 8, &n, 16, "liked", &e));
  assert_int_equal(n, 3);
  assert_true(srv_span_eq(items[0], "a,b"));
  assert_true(srv_span_eq(items[1], "c\\d"));
  assert_true(srv_span_eq(items[2], "e f"));
  /* a second list appends (repeated parameters) */
  char b[] = "g";
  assert_true(srv_list_split(b, 1, b, items, 8, &n, 16, "liked", &e));
  assert_int_equal(n, 4);
  assert_true(srv_span_eq(items[3], "g"));
  /* a trailing lone backslash is kept, as the CLI does */
  char c[] = "x\\";
  n = 0;
  assert_true(srv_list_split(c, 2, c, items, 8, &n, 16, "liked", &e));
  assert_true(n == 1 && srv_span_eq(items[0], "x\\"));
  char d[] = "a,,b";
  n = 0;
  assert_error(srv_list_split(d, 4, d, items, 8, &n, 16, "liked", &e), e, 400, "invalid_id");
  assert_non_null(strstr(e.message, "liked: ID 2"));
  n = 0;
  assert_error(srv_list_split("", 0, d, items, 8, &n, 16, "liked", &e), e, 400, "invalid_id");
  char f[] = "a,b,c";
  n = 0;
  assert_error(srv_list_split(f, 5, f, items, 2, &n, 16, "exclude", &e), e, 400, "too_many_ids");
  char g[] = "short,waytoolongforthelimit";
  n = 0;
  assert_error(srv_list_split(g, strlen(g), g, items, 8, &n, 16, "liked", &e), e, 400, "invalid_id");
  char h[] = {'a', 0, 'b'};
  n = 0;
  assert_error(srv_list_split(h, 3, h, items, 8, &n, 16, "liked", &e), e, 400, "invalid_id");
}

static void list_split_matches_reference(void **state) {
  (void)state;
  static const char alphabet[] = "ab,\\ ";
  for (int t = 0; t < 20000; t++) {
    char in[20], copy[20];
    size_t n = next() % 16;
    for (size_t i = 0; i < n; i++) in[i] = alphabet[next() % (sizeof alphabet - 1)];
    memcpy(copy, in, n);
    char ids[20][32];
    size_t lens[20];
    int want = ref_split(in, n, ids, lens);
    srv_span items[20];
    size_t got = 0;
    srv_error e;
    bool ok = srv_list_split(copy, n, copy, items, 20, &got, 32, "liked", &e);
    assert_int_equal(ok, want >= 0);
    if (!ok) continue;
    assert_int_equal(got, (size_t)want);
    for (int i = 0; i < want; i++) {
      assert_int_equal(items[i].len, lens[i]);
      assert_memory_equal(items[i].p, ids[i], lens[i]);
    }
  }
}

/* ---- k, booleans, IDs ----------------------------------------------------------- */

static void k_validation(void **state) {
  (void)state;
  uint32_t k;
  srv_error e;
  assert_true(srv_parse_k("1", 1, 1000, &k, &e) && k == 1);
  assert_true(srv_parse_k("1000", 4, 1000, &k, &e) && k == 1000);
  assert_true(srv_parse_k("007", 3, 1000, &k, &e) && k == 7);
  const char *bad[] = {"", "0", "1001", "-1", "+5", " 5", "5 ", "1.5", "abc", "1e3", "0x10",
                       "99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_error(srv_parse_k(bad[i], strlen(bad[i]), 1000, &k, &e), e, 400, "invalid_k");
  assert_non_null(strstr(e.message, "1 to 1000"));
  /* echoed input is cut */
  char longk[200];
  memset(longk, '9', sizeof longk);
  assert_false(srv_parse_k(longk, sizeof longk, 1000, &k, &e));
  assert_non_null(strstr(e.message, "..."));
  assert_true(strlen(e.message) < 150);
}

static void bool_and_id_validation(void **state) {
  (void)state;
  bool v;
  srv_error e;
  assert_true(srv_parse_bool("true", 4, "filter_seen", &v, &e) && v);
  assert_true(srv_parse_bool("0", 1, "filter_seen", &v, &e) && !v);
  assert_true(srv_parse_bool("false", 5, "filter_seen", &v, &e) && !v);
  assert_error(srv_parse_bool("yes", 3, "filter_seen", &v, &e), e, 400, "invalid_parameter");
  assert_error(srv_parse_bool("TRUE", 4, "filter_seen", &v, &e), e, 400, "invalid_parameter");
  assert_true(srv_check_id("u001", 4, 16, "user_id", &e));
  assert_error(srv_check_id("", 0, 16, "user_id", &e), e, 400, "invalid_id");
  assert_error(srv_check_id("12345678901234567", 17, 16, "user_id", &e), e, 400, "invalid_id");
  assert_error(srv_check_id("a\0b", 3, 16, "user_id", &e), e, 400, "invalid_id");
}

/* ---- GET /recommend parameters --------------------------------------------------- */

static bool rec_from_query(const char *text, bool cold, srv_rec_query *q, srv_error *e,
                           char *buf, srv_span *liked, srv_span *exclude) {
  size_t len = strlen(text);
  memcpy(buf, text, len + 1);
  srv_param ps[SRV_MAX_PARAMS];
  size_t n;
  q->liked = liked;
  q->exclude = exclude;
  return srv_query_parse(buf, len, buf, ps, SRV_MAX_PARAMS, &n, e) &&
         srv_rec_query_from_params(ps, n, &lim, 10, cold, q, e);
}

static void recommend_params(void **state) {
  (void)state;
  char buf[256];
  srv_span liked[8], exclude[8];
  srv_rec_query q;
  srv_error e;
  assert_true(rec_from_query("user_id=u%201&k=3&filter_seen=false&exclude=a,b%5C%2Cc", false, &q, &e,
                             buf, liked, exclude));
  assert_true(q.has_user && srv_span_eq(q.user, "u 1") && !q.has_liked);
  assert_int_equal(q.k, 3);
  assert_false(q.filter_seen);
  assert_int_equal(q.n_exclude, 2);
  assert_true(srv_span_eq(q.exclude[1], "b,c"));
  assert_true(rec_from_query("liked=a,b&liked=c&k=2", false, &q, &e, buf, liked, exclude));
  assert_true(q.has_liked && !q.has_user && q.n_liked == 3 && srv_span_eq(q.liked[2], "c"));
  assert_true(rec_from_query("user_id=1", false, &q, &e, buf, liked, exclude));
  assert_true(q.k == 10 && q.filter_seen && q.n_exclude == 0);
  assert_true(rec_from_query("liked=x", true, &q, &e, buf, liked, exclude));
  struct {
    const char *query;
    bool cold;
    const char *code;
  } bad[] = {
      {"", false, "missing_parameter"},
      {"k=5", false, "missing_parameter"},
      {"user_id=1&liked=a", false, "invalid_parameter"},
      {"user_id=1&user_id=2", false, "duplicate_parameter"},
      {"user_id=1&k=1&k=2", false, "duplicate_parameter"},
      {"user_id=1&filter_seen=1&filter_seen=0", false, "duplicate_parameter"},
      {"user_id=1&k=0", false, "invalid_k"},
      {"user_id=1&filter_seen=x", false, "invalid_parameter"},
      {"user_id=1&userid=2", false, "unknown_parameter"},
      {"user_id=", false, "invalid_id"},
      {"liked=a,,b", false, "invalid_id"},
      {"liked=1,2,3,4,5,6,7,8,9", false, "too_many_ids"},
      {"user_id=1", true, "unknown_parameter"},
      {"k=3", true, "missing_parameter"},
      {"liked=a&filter_seen=false", true, "unknown_parameter"},
      {"user_id=%zz", false, "invalid_encoding"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    bool ok = rec_from_query(bad[i].query, bad[i].cold, &q, &e, buf, liked, exclude);
    assert_error(ok, e, 400, bad[i].code);
  }
}

static void similar_params(void **state) {
  (void)state;
  char q1[] = "item_id=x%2Fy&k=4";
  srv_param ps[SRV_MAX_PARAMS];
  size_t n;
  srv_error e;
  srv_span id;
  uint32_t k;
  assert_true(srv_query_parse(q1, strlen(q1), q1, ps, SRV_MAX_PARAMS, &n, &e));
  assert_true(srv_similar_query_from_params(ps, n, "item_id", &lim, 10, &id, &k, &e));
  assert_true(srv_span_eq(id, "x/y") && k == 4);
  char q2[] = "user_id=1";
  assert_true(srv_query_parse(q2, strlen(q2), q2, ps, SRV_MAX_PARAMS, &n, &e));
  assert_error(srv_similar_query_from_params(ps, n, "item_id", &lim, 10, &id, &k, &e), e, 400,
               "unknown_parameter");
  assert_true(srv_similar_query_from_params(ps, n, "user_id", &lim, 10, &id, &k, &e));
  assert_int_equal(k, 10);
  char q3[] = "k=3";
  assert_true(srv_query_parse(q3, strlen(q3), q3, ps, SRV_MAX_PARAMS, &n, &e));
  assert_error(srv_similar_query_from_params(ps, n, "item_id", &lim, 10, &id, &k, &e), e, 400,
               "missing_parameter");
}

/* ---- JSON bodies ------------------------------------------------------------------ */

static bool rec_from_json(const char *body, srv_rec_query *q, json_t **root, srv_error *e,
                          srv_span *liked, srv_span *exclude) {
  q->liked = liked;
  q->exclude = exclude;
  *root = srv_json_parse(body, strlen(body), e);
  return *root && srv_rec_query_from_json(*root, &lim, 5, q, e);
}

static void invocations_body(void **state) {
  (void)state;
  srv_span liked[8], exclude[8];
  srv_rec_query q;
  srv_error e;
  json_t *root;
  assert_true(rec_from_json("{\"user_id\": \"u001\", \"k\": 3}", &q, &root, &e, liked, exclude));
  assert_true(q.has_user && srv_span_eq(q.user, "u001") && q.k == 3 && q.filter_seen);
  json_decref(root);
  assert_true(rec_from_json("{\"user_id\": 42}", &q, &root, &e, liked, exclude));
  assert_true(srv_span_eq(q.user, "42") && q.k == 5);
  json_decref(root);
  assert_true(rec_from_json("{\"liked\": [\"a\", 7, \"c,d\"], \"exclude\": [], \"filter_seen\": false}",
                            &q, &root, &e, liked, exclude));
  assert_true(q.has_liked && q.n_liked == 3 && srv_span_eq(q.liked[1], "7") &&
              srv_span_eq(q.liked[2], "c,d") && q.n_exclude == 0 && !q.filter_seen);
  json_decref(root);
  struct {
    const char *body;
    const char *code;
  } bad[] = {
      {"", "invalid_json"},
      {"{\"user_id\":", "invalid_json"},
      {"{\"user_id\": \"a\"} x", "invalid_json"},
      {"{\"user_id\": \"a\", \"user_id\": \"b\"}", "invalid_json"},
      {"[\"a\"]", "invalid_type"},
      {"{\"user_id\": null}", "invalid_type"},
      {"{\"user_id\": 1.5}", "invalid_type"},
      {"{\"user_id\": [\"a\"]}", "invalid_type"},
      {"{\"liked\": \"a,b\"}", "invalid_type"},
      {"{\"liked\": [true]}", "invalid_type"},
      {"{\"liked\": []}", "invalid_parameter"},
      {"{\"liked\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}", "too_many_ids"},
      {"{\"liked\": [\"\"]}", "invalid_id"},
      {"{\"user_id\": \"\\u0000\"}", "invalid_json"},
      {"{\"user_id\": \"12345678901234567\"}", "invalid_id"},
      {"{\"user_id\": \"a\", \"k\": \"5\"}", "invalid_k"},
      {"{\"user_id\": \"a\", \"k\": 0}", "invalid_k"},
      {"{\"user_id\": \"a\", \"k\": 1001}", "invalid_k"},
      {"{\"user_id\": \"a\", \"k\": 5.0}", "invalid_k"},
      {"{\"user_id\": \"a\", \"filter_seen\": 1}", "invalid_type"},
      {"{\"user_id\": \"a\", \"liked\": [\"b\"]}", "invalid_parameter"},
      {"{\"k\": 5}", "missing_parameter"},
      {"{\"userId\": \"a\"}", "unknown_field"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    bool ok = rec_from_json(bad[i].body, &q, &root, &e, liked, exclude);
    json_decref(root);
    if (ok || strcmp(e.code, bad[i].code)) print_error("body %s\n", bad[i].body);
    assert_error(ok, e, 400, bad[i].code);
  }
}

static void batch_body(void **state) {
  (void)state;
  srv_span users[8];
  size_t n;
  uint32_t k;
  bool fs;
  srv_error e;
  const char *good = "{\"users\": [\"1\", 2, \"x y\"], \"k\": 7, \"filter_seen\": false}";
  json_t *root = srv_json_parse(good, strlen(good), &e);
  assert_non_null(root);
  assert_true(srv_batch_from_json(root, &lim, 10, users, &n, &k, &fs, &e));
  assert_true(n == 3 && srv_span_eq(users[1], "2") && srv_span_eq(users[2], "x y") && k == 7 && !fs);
  json_decref(root);
  const char *bad[][2] = {
      {"{\"k\": 3}", "missing_parameter"},
      {"{\"users\": []}", "invalid_parameter"},
      {"{\"users\": \"1\"}", "invalid_type"},
      {"{\"users\": [\"1\"], \"user_id\": \"1\"}", "unknown_field"},
      {"{\"users\": [\"1\"], \"k\": -1}", "invalid_k"},
      {"{\"users\": [1,2,3,4,5,6,7,8,9]}", "too_many_ids"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    root = srv_json_parse(bad[i][0], strlen(bad[i][0]), &e);
    assert_non_null(root);
    assert_error(srv_batch_from_json(root, &lim, 10, users, &n, &k, &fs, &e), e, 400, bad[i][1]);
    json_decref(root);
  }
}

static void secret_comparison(void **state) {
  (void)state;
  assert_true(srv_secret_eq("s3cret", 6, "s3cret", 6));
  assert_false(srv_secret_eq("s3cres", 6, "s3cret", 6));
  assert_false(srv_secret_eq("s3cre", 5, "s3cret", 6));
  assert_false(srv_secret_eq("s3cretX", 7, "s3cret", 6));
  assert_false(srv_secret_eq("", 0, "s3cret", 6));
  assert_false(srv_secret_eq("", 0, "", 0)); /* no token configured: never equal */
}

/* ---- request framing ------------------------------------------------------- */

/* The verdict on a request with these headers ("Name: value" each). */
static bool framing(const char *const *headers, size_t n, bool http10, uint64_t *cl,
                    srv_error *err) {
  srv_framing f;
  memset(&f, 0, sizeof f);
  for (size_t i = 0; i < n; i++) {
    char name[64];
    const char *colon = strchr(headers[i], ':');
    assert_non_null(colon);
    snprintf(name, sizeof name, "%.*s", (int)(colon - headers[i]), headers[i]);
    srv_framing_add(&f, name, colon + 2);
  }
  return srv_framing_check(&f, http10, cl, err);
}

static void request_framing(void **state) {
  (void)state;
  static const struct {
    const char *h[3];
    bool http10;
    int status; /* 0: accepted */
    uint64_t cl;
  } cases[] = {
      {{NULL}, false, 0, 0},
      {{"Host: x", "Content-Length: 16"}, false, 0, 16},
      {{"content-length: 0"}, false, 0, 0},
      {{"Content-Length: 18446744073709551615"}, false, 0, UINT64_MAX},
      {{"Transfer-Encoding: chunked"}, false, 0, 0},
      {{"transfer-encoding: CHUNKED"}, false, 0, 0},
      {{"Content-Length: 18446744073709551616"}, false, 400, 0},
      {{"Content-Length: 16", "Content-Length: 16"}, false, 400, 0},
      {{"Content-Length: 16", "Content-Length: 0"}, false, 400, 0},
      {{"Content-Length: 16, 16"}, false, 400, 0},
      {{"Content-Length: +16"}, false, 400, 0},
      {{"Content-Length: "}, false, 400, 0},
      {{"Content-Length: 5", "Transfer-Encoding: chunked"}, false, 400, 0},
      {{"Transfer-Encoding: chunked", "Content-Length: 5"}, false, 400, 0},
      {{"Transfer-Encoding: chunked"}, true, 400, 0},
      {{"Transfer-Encoding: identity"}, false, 400, 0},
      {{"Transfer-Encoding: gzip"}, false, 400, 0},
      {{"Transfer-Encoding: chunked, gzip"}, false, 400, 0},
      {{"Transfer-Encoding: chunked, chunked"}, false, 400, 0},
      {{"Transfer-Encoding: chunked", "Transfer-Encoding: chunked"}, false, 400, 0},
      {{"Transfer-Encoding: ,"}, false, 400, 0},
      {{"Transfer-Encoding: "}, false, 400, 0},
      {{"Transfer-Encoding: chunked "}, false, 400, 0},
      {{"Transfer-Encoding: chunked,"}, false, 400, 0},
      {{"Transfer-Encoding: gzip, chunked"}, false, 501, 0},
      {{"Transfer-Encoding: gzip", "Transfer-Encoding: chunked"}, false, 501, 0},
      {{"Transfer-Encoding: br, deflate, chunked"}, false, 501, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = 0;
    while (n < 3 && cases[i].h[n]) n++;
    uint64_t cl = 99;
    srv_error err;
    bool ok = framing(cases[i].h, n, cases[i].http10, &cl, &err);
    if (ok != (cases[i].status == 0) || (!ok && err.status != cases[i].status) ||
        (ok && cl != cases[i].cl))
      fail_msg("case %zu (%s | %s): ok %d status %d cl %llu", i, n ? cases[i].h[0] : "",
               n > 1 ? cases[i].h[1] : "", ok, ok ? 0 : err.status, (unsigned long long)cl);
    if (!ok)
      assert_string_equal(err.code,
                          err.status == 501 ? "unsupported_transfer_coding" : "bad_framing");
  }
  /* A Transfer-Encoding too long to keep is refused, not cut. */
  char big[400];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  srv_framing f;
  memset(&f, 0, sizeof f);
  srv_framing_add(&f, "Transfer-Encoding", big);
  srv_framing_add(&f, "Transfer-Encoding", "chunked");
  uint64_t cl;
  srv_error err;
  assert_false(srv_framing_check(&f, false, &cl, &err));
  assert_int_equal(err.status, 400);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(url_decode_examples),
      cmocka_unit_test(url_decode_matches_reference),
      cmocka_unit_test(query_parse_pairs),
      cmocka_unit_test(list_split_examples),
      cmocka_unit_test(list_split_matches_reference),
      cmocka_unit_test(k_validation),
      cmocka_unit_test(bool_and_id_validation),
      cmocka_unit_test(recommend_params),
      cmocka_unit_test(similar_params),
      cmocka_unit_test(invocations_body),
      cmocka_unit_test(batch_body),
      cmocka_unit_test(secret_comparison),
      cmocka_unit_test(request_framing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

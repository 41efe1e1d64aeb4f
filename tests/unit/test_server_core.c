/*
 * test_server_core.c — the server's building blocks apart from parsing:
 * the JSON writer (any bytes in, valid JSON out, checked by jansson; valid
 * UTF-8 round-trips exactly), the reference-counted slot under concurrent
 * readers and a swapping writer (no object is destroyed while held, each
 * exactly once), the metrics text, the route table, and the OpenAPI
 * document (valid JSON, every route documented, limits filled in).
 */
#include "testutil.h"

#include "srv.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)rng; }

/* ---- JSON writer ------------------------------------------------------------- */

static void json_string_examples(void **state) {
  (void)state;
  srv_buf b;
  srv_buf_init(&b);
  srv_buf_json_str(&b, "a\"b\\c\n\x01\x7f", 8);
  assert_int_equal(b.len, strlen("\"a\\\"b\\\\c\\n\\u0001\x7f\""));
  assert_memory_equal(b.p, "\"a\\\"b\\\\c\\n\\u0001\x7f\"", b.len);
  b.len = 0;
  srv_buf_json_str(&b, "\xc3\xbc\xff\xe2\x82", 5); /* ü, a stray byte, a cut sequence */
  assert_memory_equal(b.p, "\"\xc3\xbc\\ufffd\\ufffd\\ufffd\"", b.len);
  b.len = 0;
  srv_buf_json_str(&b, "\xed\xa0\x80", 3); /* a UTF-16 surrogate is not UTF-8 */
  assert_memory_equal(b.p, "\"\\ufffd\\ufffd\\ufffd\"", b.len);
  b.len = 0;
  srv_buf_json_str(&b, "\xc0\xaf", 2); /* overlong '/' */
  assert_memory_equal(b.p, "\"\\ufffd\\ufffd\"", b.len);
  b.len = 0;
  srv_buf_float(&b, 0.5);
  srv_buf_putc(&b, ' ');
  srv_buf_float(&b, 1.0 / 0.0);
  srv_buf_putc(&b, ' ');
  srv_buf_u64(&b, 18446744073709551615ull);
  assert_memory_equal(b.p, "0.5 null 18446744073709551615", b.len);
  srv_buf_free(&b);
}

static void float_format_matches_printf(void **state) {
  (void)state;
  char want[64], got[64];
  /* special values, powers of ten and their neighbours, the range edges */
  double fixed[] = {0.0, -0.0, 1.0, -1.0, 0.5, 1e-4, 9.9999e-5, 1e9, 999999999.0, 999999999.5,
                    123456789.0, 0.1, 0.2, 0.3, 1.65229249, 0.000123456789, 12345.6789,
                    1e-5, 3.4e38, 1.17549435e-38, 100.0, 10.0, 0.001, 99999999.95};
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
    snprintf(want, sizeof want, "%.9g", fixed[i]);
    srv_format_g9(got, fixed[i]);
    assert_string_equal(got, want);
    for (int d = -3; d <= 3; d++) { /* the floats next to it */
      float f = (float)fixed[i];
      uint32_t bits;
      memcpy(&bits, &f, 4);
      bits += (uint32_t)d;
      memcpy(&f, &bits, 4);
      if (!isfinite(f)) continue;
      snprintf(want, sizeof want, "%.9g", (double)f);
      srv_format_g9(got, (double)f);
      assert_string_equal(got, want);
    }
  }
  /* random floats over the whole range, and many in the scores' range */
  for (int t = 0; t < 400000; t++) {
    uint32_t bits = next();
    if (t & 1) bits = (bits & 0x807fffffu) | ((uint32_t)(110 + next() % 40) << 23);
    float f;
    memcpy(&f, &bits, 4);
    if (!isfinite(f)) continue;
    snprintf(want, sizeof want, "%.9g", (double)f);
    srv_format_g9(got, (double)f);
    if (strcmp(got, want)) print_error("%.9g: got %s\n", (double)f, got);
    assert_string_equal(got, want);
  }
  /* doubles too (train_seconds, parameters) */
  for (int t = 0; t < 100000; t++) {
    double v = ((double)next() / 4294967296.0 + (double)(next() % 1000)) * pow(10.0, (int)(next() % 12) - 5);
    snprintf(want, sizeof want, "%.9g", v);
    srv_format_g9(got, v);
    assert_string_equal(got, want);
  }
}

static bool valid_utf8(const unsigned char *s, size_t n) {
  /* The slow reference: decode code points and check their ranges. */
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + len > n) return false;
    unsigned cp = len == 1 ? c : c & (0xff >> (len + 1));
    for (size_t j = 1; j < len; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + j] & 0x3f);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

static void json_string_any_bytes(void **state) {
  (void)state;
  srv_buf b;
  srv_buf_init(&b);
  static const unsigned char pool[] = {'a', '"', '\\', 0, 1, 0x1f, 0x7f, 0x80, 0xbf, 0xc2, 0xc3,
                                       0xe0, 0xed, 0xa0, 0xf0, 0x90, 0xf4, 0x8f, 0xf5, 0xff, 'z'};
  for (int t = 0; t < 20000; t++) {
    unsigned char in[12];
    size_t n = next() % sizeof in;
    for (size_t i = 0; i < n; i++) in[i] = pool[next() % sizeof pool];
    b.len = 0;
    srv_buf_lit(&b, "[");
    srv_buf_json_str(&b, (const char *)in, n);
    srv_buf_lit(&b, "]");
    json_error_t je;
    json_t *doc = json_loadb(b.p, b.len, JSON_ALLOW_NUL, &je);
    if (!doc) print_error("not JSON: %.*s (%s)\n", (int)b.len, b.p, je.text);
    assert_non_null(doc);
    json_t *s = json_array_get(doc, 0);
    if (valid_utf8(in, n)) {
      assert_int_equal(json_string_length(s), n);
      assert_memory_equal(json_string_value(s), in, n);
    }
    json_decref(doc);
  }
  srv_buf_free(&b);
}

static void error_body_shape(void **state) {
  (void)state;
  srv_error e;
  assert_false(srv_fail(&e, 404, "unknown_user", "user " SRV_ECHO_FMT " is unknown",
                        SRV_ECHO("x\"y", (size_t)3)));
  srv_buf b;
  srv_buf_init(&b);
  srv_buf_error(&b, &e);
  json_t *doc = json_loadb(b.p, b.len, 0, NULL);
  assert_non_null(doc);
  assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "error"), "code")),
                      "unknown_user");
  assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "error"), "message")),
                      "user 'x\"y' is unknown");
  json_decref(doc);
  srv_buf_free(&b);
}

/* ---- the reference-counted slot ------------------------------------------------ */

typedef struct test_obj {
  srv_ref ref;
  atomic_int holders;   /* readers inside acquire..release */
  atomic_int destroyed; /* times destroy ran */
} test_obj;

static atomic_int destroy_while_held;

static void test_destroy(srv_ref *r) {
  test_obj *o = (test_obj *)r;
  if (atomic_load(&o->holders) != 0) atomic_fetch_add(&destroy_while_held, 1);
  atomic_fetch_add(&o->destroyed, 1);
}

#define N_OBJS 2000
static test_obj objs[N_OBJS];
static srv_slot slot;
static atomic_bool stop_readers;
static atomic_int readers_started;

static void *reader(void *arg) {
  (void)arg;
  unsigned long n = 0;
  atomic_fetch_add(&readers_started, 1);
  while (!atomic_load(&stop_readers)) {
    test_obj *o = (test_obj *)srv_slot_acquire(&slot);
    atomic_fetch_add(&o->holders, 1);
    if (atomic_load(&o->destroyed)) atomic_fetch_add(&destroy_while_held, 1);
    atomic_fetch_sub(&o->holders, 1);
    srv_ref_release(&o->ref);
    n++;
  }
  return (void *)n;
}

static void slot_swaps_under_readers(void **state) {
  (void)state;
  for (int i = 0; i < N_OBJS; i++) {
    atomic_init(&objs[i].ref.refs, 1);
    objs[i].ref.destroy = test_destroy;
    atomic_init(&objs[i].holders, 0);
    atomic_init(&objs[i].destroyed, 0);
  }
  srv_slot_init(&slot, &objs[0].ref);
  atomic_store(&stop_readers, false);
  atomic_store(&readers_started, 0);
  pthread_t th[3];
  for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&th[i], NULL, reader, NULL), 0);
  /* Swap only once the readers run, and let them in between swaps, so
   * that swaps and reads really overlap even on a loaded machine. */
  while (atomic_load(&readers_started) < 3) sched_yield();
  for (int i = 1; i < N_OBJS; i++) {
    srv_slot_swap(&slot, &objs[i].ref);
    if (i % 8 == 0) sched_yield();
  }
  atomic_store(&stop_readers, true);
  unsigned long reads = 0;
  for (int i = 0; i < 3; i++) {
    void *r;
    pthread_join(th[i], &r);
    reads += (unsigned long)r;
  }
  assert_true(reads > 0);
  assert_int_equal(atomic_load(&destroy_while_held), 0);
  /* every replaced object destroyed exactly once, the current one alive */
  for (int i = 0; i < N_OBJS - 1; i++) assert_int_equal(atomic_load(&objs[i].destroyed), 1);
  assert_int_equal(atomic_load(&objs[N_OBJS - 1].destroyed), 0);
  assert_int_equal(atomic_load(&objs[N_OBJS - 1].ref.refs), 1);
  srv_slot_clear(&slot);
  assert_int_equal(atomic_load(&objs[N_OBJS - 1].destroyed), 1);
  assert_null(srv_slot_acquire(&slot));
}

static void slot_holder_keeps_old_object(void **state) {
  (void)state;
  test_obj a, b;
  atomic_init(&a.ref.refs, 1);
  atomic_init(&b.ref.refs, 1);
  a.ref.destroy = b.ref.destroy = test_destroy;
  atomic_init(&a.holders, 0);
  atomic_init(&b.holders, 0);
  atomic_init(&a.destroyed, 0);
  atomic_init(&b.destroyed, 0);
  srv_slot s;
  srv_slot_init(&s, &a.ref);
  srv_ref *held = srv_slot_acquire(&s); /* an in-flight request */
  srv_slot_swap(&s, &b.ref);
  assert_int_equal(atomic_load(&a.destroyed), 0); /* still in use */
  assert_ptr_equal(srv_slot_acquire(&s), &b.ref);
  srv_ref_release(&b.ref);
  srv_ref_release(held); /* the request finishes: the old model goes */
  assert_int_equal(atomic_load(&a.destroyed), 1);
  srv_slot_clear(&s);
  assert_int_equal(atomic_load(&b.destroyed), 1);
}

/* ---- metrics ------------------------------------------------------------------- */

static void metrics_text(void **state) {
  (void)state;
  srv_metrics m;
  srv_metrics_init(&m);
  srv_metrics_shard *a = srv_metrics_shard_new(&m), *b = srv_metrics_shard_new(&m);
  srv_metrics_observe(a, SRV_R_RECOMMEND, 200, 40);     /* bucket 50us */
  srv_metrics_observe(b, SRV_R_RECOMMEND, 200, 300);    /* bucket 500us */
  srv_metrics_observe(b, SRV_R_RECOMMEND, 404, 10000000); /* +Inf */
  srv_metrics_observe(a, SRV_R_OTHER, 418, 1);
  srv_buf out;
  srv_buf_init(&out);
  srv_metrics_write(&m, &out);
  srv_buf_putc(&out, 0);
  const char *t = out.p;
  assert_non_null(strstr(t, "# TYPE cofi_requests_total counter\n"));
  assert_non_null(strstr(t, "cofi_requests_total{route=\"/recommend\",status=\"200\"} 2\n"));
  assert_non_null(strstr(t, "cofi_requests_total{route=\"/recommend\",status=\"404\"} 1\n"));
  assert_non_null(strstr(t, "cofi_requests_total{route=\"other\",status=\"other\"} 1\n"));
  assert_null(strstr(t, "route=\"/ping\""));
  assert_non_null(strstr(t, "cofi_request_duration_seconds_bucket{route=\"/recommend\",le=\"0.000050\"} 1\n"));
  assert_non_null(strstr(t, "cofi_request_duration_seconds_bucket{route=\"/recommend\",le=\"0.000250\"} 1\n"));
  assert_non_null(strstr(t, "cofi_request_duration_seconds_bucket{route=\"/recommend\",le=\"0.000500\"} 2\n"));
  assert_non_null(strstr(t, "cofi_request_duration_seconds_bucket{route=\"/recommend\",le=\"5.000000\"} 2\n"));
  assert_non_null(strstr(t, "cofi_request_duration_seconds_bucket{route=\"/recommend\",le=\"+Inf\"} 3\n"));
  assert_non_null(strstr(t, "cofi_request_duration_seconds_sum{route=\"/recommend\"} 10.000340\n"));
  assert_non_null(strstr(t, "cofi_request_duration_seconds_count{route=\"/recommend\"} 3\n"));
  srv_buf_free(&out);
  srv_metrics_free(&m);
}

/* ---- routes and the OpenAPI document -------------------------------------------- */

static void route_lookup(void **state) {
  (void)state;
  const srv_route *r = srv_route_find("/recommend", 10);
  assert_non_null(r);
  assert_int_equal(r->id, SRV_R_RECOMMEND);
  assert_int_equal(srv_route_find("/recommend/batch", 16)->id, SRV_R_RECOMMEND_BATCH);
  assert_int_equal(srv_route_find("/items/a/b", 10)->id, SRV_R_ITEMS);
  assert_null(srv_route_find("/recommendx", 11));
  assert_null(srv_route_find("/recommend/", 11));
  assert_int_equal(srv_route_find("/items", 6)->id, SRV_R_ITEM_SEARCH);
  assert_int_equal(srv_route_find("/users/1/history", 16)->id, SRV_R_USERS);
  assert_int_equal(srv_route_find("/ui/", 4)->id, SRV_R_UI);
  assert_int_equal(srv_route_find("/ui", 3)->id, SRV_R_UI_REDIRECT);
  assert_null(srv_route_find("/itemsx", 7));
  assert_null(srv_route_find("/", 1));
  for (size_t i = 0; i < srv_n_routes; i++) {
    assert_non_null(srv_route_names[srv_routes[i].id]);
    assert_true(srv_routes[i].methods != 0);
    assert_non_null(srv_routes[i].allow);
  }
}

static void openapi_covers_every_route(void **state) {
  (void)state;
  cofi_server_config cfg = cofi_server_config_default();
  cfg.max_k = 77;
  cofi_diag d;
  char *text = srv_openapi_json(&cfg, &d);
  assert_non_null(text);
  json_t *doc = json_loads(text, 0, NULL);
  assert_non_null(doc);
  assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
  json_t *paths = json_object_get(doc, "paths");
  for (size_t i = 0; i < srv_n_routes; i++) {
    const srv_route *r = &srv_routes[i];
    char path[64];
    snprintf(path, sizeof path, "%s%s", r->path, r->prefix ? "{id}" : "");
    json_t *p = json_object_get(paths, path);
    /* A prefix route may be documented under a longer template
     * ("/users/{id}/history", "/ui/{file}"). */
    const char *key;
    json_t *v;
    if (!p && r->prefix)
      json_object_foreach(paths, key, v) if (!strncmp(key, r->path, strlen(r->path))) p = v;
    if (!p) print_error("%s is not in the OpenAPI document\n", path);
    assert_non_null(p);
    if (r->methods & SRV_GET) assert_non_null(json_object_get(p, "get"));
    if (r->methods & SRV_POST) assert_non_null(json_object_get(p, "post"));
    if (r->methods & SRV_PUT) assert_non_null(json_object_get(p, "put"));
    if (r->methods & SRV_DELETE) assert_non_null(json_object_get(p, "delete"));
  }
  /* One route may serve several documented paths: /users/{id} and
   * /users/{id}/history are both the /users/ prefix route. */
  assert_non_null(json_object_get(json_object_get(paths, "/users/{id}/history"), "get"));
  assert_int_equal(json_object_size(paths), srv_n_routes + 1);
  json_t *k = json_object_get(json_object_get(json_object_get(json_object_get(doc, "components"),
                                                               "parameters"), "k"), "schema");
  assert_int_equal(json_integer_value(json_object_get(k, "maximum")), 77);
  assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "info"), "version")),
                      COFI_VERSION);
  json_decref(doc);
  free(text);
  /* the docs page is self-contained */
  assert_non_null(strstr(srv_docs_html, "fetch('/openapi.json')"));
  assert_null(strstr(srv_docs_html, "http://"));
  assert_null(strstr(srv_docs_html, "https://"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_string_examples),
      cmocka_unit_test(json_string_any_bytes),
      cmocka_unit_test(float_format_matches_printf),
      cmocka_unit_test(error_body_shape),
      cmocka_unit_test(slot_swaps_under_readers),
      cmocka_unit_test(slot_holder_keeps_old_object),
      cmocka_unit_test(metrics_text),
      cmocka_unit_test(route_lookup),
      cmocka_unit_test(openapi_covers_every_route),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_feedback_fast.c — the jansson-free reader of POST /feedback bodies
 * (server/feedback_fast.c) against a slow obvious reference built on
 * jansson with the rules of store_routes.c's parse_event: every body the
 * fast reader takes, the reference reads into the same events (the same
 * bytes, the same double, the same time); common bodies are taken (the
 * fast path is used at all); and every shape it must leave to the jansson
 * path (escapes, "-0", exponents, leading zeros, duplicate or unknown
 * fields, nesting, trailing bytes, too many events) is declined. Random
 * mutations of valid bodies check the first property on odd input.
 */
#include "testutil.h"

#include "srv.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

enum { NOW = 1700000000, MAX = 50 };

/* An event as the reference reads it (owned strings). */
typedef struct ref_event {
  char user[64], item[64], event[64];
  size_t user_len, item_len, event_len;
  double value;
  int64_t ts;
} ref_event;

static bool ref_id(json_t *v, char *out, size_t *len) {
  if (json_is_integer(v)) {
    *len = (size_t)snprintf(out, 64, "%lld", (long long)json_integer_value(v));
    return true;
  }
  if (!json_is_string(v) || json_string_length(v) >= 64) return false;
  *len = json_string_length(v);
  memcpy(out, json_string_value(v), *len);
  return true;
}

/* parse_event's rules (timestamps as integers only: the fast reader
 * never takes an ISO string). */
static bool ref_event_of(json_t *o, ref_event *e) {
  memset(e, 0, sizeof *e);
  if (!json_is_object(o)) return false;
  const char *key;
  json_t *val;
  json_object_foreach(o, key, val) {
    if (strcmp(key, "user_id") && strcmp(key, "item_id") && strcmp(key, "event") &&
        strcmp(key, "value") && strcmp(key, "timestamp"))
      return false;
  }
  json_t *ev = json_object_get(o, "event"), *v = json_object_get(o, "value"),
         *t = json_object_get(o, "timestamp");
  if (!ref_id(json_object_get(o, "user_id"), e->user, &e->user_len) ||
      !ref_id(json_object_get(o, "item_id"), e->item, &e->item_len) || !json_is_string(ev) ||
      json_string_length(ev) >= 64)
    return false;
  e->event_len = json_string_length(ev);
  memcpy(e->event, json_string_value(ev), e->event_len);
  e->value = 1.0;
  if (v && !json_is_null(v)) {
    if (!json_is_number(v)) return false;
    e->value = json_number_value(v);
  }
  e->ts = NOW;
  if (t && !json_is_null(t)) {
    if (!json_is_integer(t)) return false;
    e->ts = (int64_t)json_integer_value(t);
  }
  return true;
}

static size_t ref_read(const char *body, size_t len, ref_event *out) {
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
  if (!root) return 0;
  size_t n = 0;
  json_t *list = json_is_object(root) ? json_object_get(root, "events") : NULL;
  if (list) {
    if (json_object_size(root) == 1 && json_is_array(list) && json_array_size(list) <= MAX) {
      n = json_array_size(list);
      for (size_t i = 0; i < n; i++)
        if (!ref_event_of(json_array_get(list, i), &out[i])) n = 0;
    }
  } else if (ref_event_of(root, &out[0])) {
    n = 1;
  }
  json_decref(root);
  return n;
}

/* When the fast reader takes body: the reference reads the same events.
 * Returns whether it took it. */
static bool check_body(const char *body, size_t len) {
  cofi_store_event *evs;
  size_t n;
  char *text;
  if (!srv_feedback_fast(body, len, NOW, MAX, &evs, &n, &text)) return false;
  /* the server checks the events next (IDs valid UTF-8...) and leaves a
   * body with a bad one to jansson too */
  for (size_t i = 0; i < n; i++) {
    cofi_diag d = {0};
    if (cofi_store_check_event(&evs[i], &d) != COFI_OK) {
      free(evs);
      free(text);
      return false;
    }
  }
  static ref_event ref[MAX];
  size_t rn = ref_read(body, len, ref);
  if (rn != n) fail_msg("fast read %zu events, jansson %zu, of: %.*s", n, rn, (int)len, body);
  for (size_t i = 0; i < n; i++) {
    const cofi_store_event *f = &evs[i];
    const ref_event *r = &ref[i];
    if (f->user_len != r->user_len || memcmp(f->user_id, r->user, r->user_len) ||
        f->item_len != r->item_len || memcmp(f->item_id, r->item, r->item_len) ||
        f->event_len != r->event_len || memcmp(f->event, r->event, r->event_len) ||
        memcmp(&f->value, &r->value, sizeof f->value) || f->timestamp != r->ts ||
        !f->has_timestamp)
      fail_msg("event %zu differs from jansson's in: %.*s", i, (int)len, body);
  }
  free(evs);
  free(text);
  return true;
}

static const char *const valid[] = {
    "{\"user_id\":\"u1\",\"item_id\":\"i1\",\"event\":\"like\"}",
    " { \"user_id\" : \"u1\" , \"item_id\" : 42 , \"event\" : \"watch\" , \"value\" : 2.5 } \n",
    "{\"event\":\"like\",\"item_id\":\"x y\",\"user_id\":-7,\"timestamp\":1600000000}",
    "{\"user_id\":\"\xc3\xa9t\xc3\xa9\",\"item_id\":\"i\",\"event\":\"like\",\"value\":null,"
    "\"timestamp\":null}",
    "{\"events\":[{\"user_id\":\"a\",\"item_id\":\"b\",\"event\":\"like\"}]}",
    "{\"events\":[{\"user_id\":\"a\",\"item_id\":\"b\",\"event\":\"like\",\"value\":0},\r\n"
    "\t{\"user_id\":\"c\",\"item_id\":0,\"event\":\"complete\",\"value\":123456789012345,"
    "\"timestamp\":-5}]}",
    "{\"events\":[{\"user_id\":\"a\",\"item_id\":\"b\",\"event\":\"like\",\"value\":0.1},"
    "{\"user_id\":\"a\",\"item_id\":\"b\",\"event\":\"like\",\"value\":3.0000000000001}]}",
};

static void test_common_bodies_taken_and_equal(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof valid / sizeof *valid; k++)
    if (!check_body(valid[k], strlen(valid[k]))) fail_msg("declined: %s", valid[k]);
}

static void test_declines_what_jansson_must_read(void **state) {
  (void)state;
  static const char *const declined[] = {
      "",
      "[]",
      "{}",
      "{\"events\":[]}",
      "{\"user_id\":\"u\\u0031\",\"item_id\":\"i\",\"event\":\"like\"}",  /* escape */
      "{\"user_id\":\"u\",\"item_id\":-0,\"event\":\"like\"}",             /* -0 */
      "{\"user_id\":\"u\",\"item_id\":007,\"event\":\"like\"}",            /* leading zeros */
      "{\"user_id\":\"u\",\"item_id\":1e3,\"event\":\"like\"}",            /* exponent */
      "{\"user_id\":\"u\",\"item_id\":1234567890123456789,\"event\":\"like\"}", /* 19 digits */
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\",\"value\":-1}",
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\",\"value\":1e2}",
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\",\"value\":1234567890123456}",
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\",\"value\":1.}",
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\",\"timestamp\":1.5}",
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\",\"timestamp\":\"2026-01-01T00:00:00Z\"}",
      "{\"user_id\":\"u\",\"user_id\":\"v\",\"item_id\":\"i\",\"event\":\"like\"}", /* duplicate */
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\",\"extra\":1}",
      "{\"user_id\":\"u\",\"item_id\":\"i\"}",                                 /* no event */
      "{\"user_id\":[\"u\"],\"item_id\":\"i\",\"event\":\"like\"}",
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\"} x",
      "{\"user_id\":\"u\",\"item_id\":\"i\",\"event\":\"like\"",
      "{\"user_id\":\"u\t\",\"item_id\":\"i\",\"event\":\"like\"}",          /* raw tab */
      "{\"events\":[{\"user_id\":\"a\",\"item_id\":\"b\",\"event\":\"like\"}],\"x\":1}",
      "{\"events\":{\"user_id\":\"a\",\"item_id\":\"b\",\"event\":\"like\"}}",
      "{\"events\":[{\"user_id\":\"a\",\"item_id\":\"b\",\"event\":\"like\"},]}",
  };
  for (size_t k = 0; k < sizeof declined / sizeof *declined; k++) {
    cofi_store_event *evs = (cofi_store_event *)1;
    size_t n = 7;
    char *text = (char *)1;
    if (srv_feedback_fast(declined[k], strlen(declined[k]), NOW, MAX, &evs, &n, &text))
      fail_msg("took: %s", declined[k]);
    assert_null(evs);
    assert_null(text);
    assert_int_equal(n, 0);
  }
  /* more events than the limit */
  char big[8192];
  size_t o = (size_t)snprintf(big, sizeof big, "{\"events\":[");
  for (int i = 0; i <= MAX; i++)
    o += (size_t)snprintf(big + o, sizeof big - o, "%s{\"user_id\":\"u\",\"item_id\":%d,\"event\":\"like\"}",
                          i ? "," : "", i);
  o += (size_t)snprintf(big + o, sizeof big - o, "]}");
  cofi_store_event *evs;
  size_t n;
  char *text;
  assert_false(srv_feedback_fast(big, o, NOW, MAX, &evs, &n, &text));
  assert_true(srv_feedback_fast(big, o, NOW, MAX + 1, &evs, &n, &text));
  assert_int_equal(n, MAX + 1);
  free(evs);
  free(text);
}

/* Random edits of valid bodies: whatever the fast reader still takes,
 * jansson reads the same. */
static void test_mutations_agree_with_jansson(void **state) {
  (void)state;
  static const char alphabet[] = "{}[]\",:0123456789.-+eE \\nutlr\"x\xc3\xa9";
  size_t taken = 0, tried = 0;
  for (int round = 0; round < 60000; round++) {
    const char *src = valid[next() % (sizeof valid / sizeof *valid)];
    char buf[512];
    size_t len = strlen(src);
    memcpy(buf, src, len);
    int edits = 1 + (int)(next() % 3);
    for (int e = 0; e < edits && len > 1; e++) {
      size_t at = next() % len;
      char ch = alphabet[next() % (sizeof alphabet - 1)];
      switch (next() % 3) {
      case 0: buf[at] = ch; break;
      case 1: memmove(buf + at, buf + at + 1, len - at - 1), len--; break;
      default:
        if (len + 1 < sizeof buf) {
          memmove(buf + at + 1, buf + at, len - at);
          buf[at] = ch;
          len++;
        }
      }
    }
    tried++;
    taken += check_body(buf, len);
  }
  /* some mutants stay valid (a digit for a digit...): the property was
   * exercised, not only the declines */
  if (taken == 0) fail_msg("none of %zu mutants taken", tried);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_common_bodies_taken_and_equal),
      cmocka_unit_test(test_declines_what_jansson_must_read),
      cmocka_unit_test(test_mutations_agree_with_jansson),
  };
  return cmocka_run_group_tests_name("feedback_fast", tests, NULL, NULL);
}

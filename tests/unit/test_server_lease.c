/*
 * test_server_lease.c — the served model under a read lease, driven by
 * hand instead of by cofi_server_run's signal loop: this test installs
 * the same signal handlers (signals.c), waits for the lease signal with
 * srv_signals_wait, and calls srv_lease_broken itself, so it can also make
 * the private copy fail (allocation failure injected), which no end-to-end
 * test can reach. Run in a loop (ctest label "stress"): the signal must
 * never kill the process, whichever thread (OpenBLAS's, libmicrohttpd's)
 * the kernel picks to take it.
 *
 * Checked: a load without writers is mapped and holds the lease; with a
 * writer it is private (EAGAIN, said why); a writer (`cp other served`)
 * is held by the kernel until the lease break is answered; after it the server serves a private copy of the same
 * generation with the same answers, and a reload maps the new file. When
 * the copy fails the writer is still let go, every model endpoint answers
 * 503 model_unavailable (/ping too), /health says why, /metrics still
 * answers, and a reload brings the server back. cofi_server_start (no
 * signal loop) never takes a lease. And /health on a model whose header
 * holds any creation time (2^64-1, 2^63-1, 1e17: no date) says null
 * instead of converting it (undefined behaviour, caught by UBSan's
 * float-cast-overflow in the sanitizer build) or printing garbage; and
 * a header's version string of control bytes is escaped in both.
 */
#include "testutil.h"

#include "internal.h"
#include "srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- fixtures ------------------------------------------------------------ */

static cofi_model *train(uint32_t factors, uint64_t seed) {
  cofi_dataset *ds;
  assert_int_equal(cofi__dataset_new(&ds), COFI_OK);
  const char *users[] = {"alice", "bob", "carol", "dave", "eve", "frank"};
  const char *items[] = {"i1", "i2", "i3", "i4", "i5", "i6", "i7"};
  for (int u = 0; u < 6; u++)
    for (int i = 0; i < 7; i++)
      if ((u + 2 * i) % 3 != 0)
        assert_int_equal(cofi__dataset_add(ds, users[u], strlen(users[u]), items[i],
                                           strlen(items[i]), (float)(1 + (u * i) % 3), 0),
                         COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = factors;
  p.iterations = 3;
  p.seed = seed;
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_dataset_free(ds);
  return m;
}

typedef struct fixture {
  char *dir;
  char served[512], a_path[512], b_path[512];
  unsigned char *a, *b; /* two models' bytes (different factors) */
  size_t a_len, b_len;
  int sig;
} fixture;

static fixture fx;

static void write_served(const unsigned char *bytes, size_t len) {
  FILE *f = fopen(fx.served, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static int group_setup(void **state) {
  (void)state;
  fx.dir = tu_mkdtemp();
  cofi_diag d = {0};
  cofi_model *m = train(4, 1);
  snprintf(fx.a_path, sizeof fx.a_path, "%s/a.cofi", fx.dir);
  assert_int_equal(cofi_model_save(m, fx.a_path, &d), COFI_OK);
  cofi_model_close(m);
  fx.a = tu_read_file(fx.a_path, &fx.a_len);
  m = train(3, 9);
  snprintf(fx.b_path, sizeof fx.b_path, "%s/b.cofi", fx.dir);
  assert_int_equal(cofi_model_save(m, fx.b_path, &d), COFI_OK);
  cofi_model_close(m);
  fx.b = tu_read_file(fx.b_path, &fx.b_len);
  snprintf(fx.served, sizeof fx.served, "%s/served.cofi", fx.dir);
  /* Handlers, as cofi_server_run installs them: whichever thread takes
   * the signal only wakes srv_signals_wait. */
  fx.sig = srv_lease_signal();
  assert_int_equal(srv_signals_install(fx.sig), 0);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  tu_rmdir(fx.dir);
  free(fx.dir);
  free(fx.a);
  free(fx.b);
  return 0;
}

/* ---- a minimal HTTP/1.0 client --------------------------------------------- */

/* GET target; returns the status, the body in body (NUL-terminated). */
static int http_get(uint16_t port, const char *target, char *body, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", target);
  assert_int_equal(write(fd, req, (size_t)n), n);
  static char resp[1 << 17];
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, resp + len, sizeof resp - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    assert_true(r >= 0); /* a timeout fails the test */
    if (r == 0) break;
    len += (size_t)r;
  }
  close(fd);
  resp[len] = 0;
  int status = 0;
  assert_int_equal(sscanf(resp, "HTTP/1.%*d %d", &status), 1);
  const char *b = strstr(resp, "\r\n\r\n");
  assert_non_null(b);
  snprintf(body, cap, "%s", b + 4);
  return status;
}

static void expect(uint16_t port, const char *target, int status, const char *text) {
  static char body[1 << 17];
  int got = http_get(port, target, body, sizeof body);
  if (got != status || (text && !strstr(body, text)))
    fail_msg("GET %s: %d, expected %d with '%s': %.400s", target, got, status,
             text ? text : "", body);
}

/* ---- the writer ------------------------------------------------------------ */

/* Rewrites the served file in place the way people do: `cp SRC served`
 * (open with O_WRONLY | O_TRUNC, which a lease holds up, then the bytes),
 * in a process of its own. Not a plain fork of this one: the child would
 * inherit the server's mapping of the file, whose reference keeps the
 * lease alive after the server lets go (a lease belongs to the open file,
 * not to the descriptor), and it would wait on itself until the kernel's
 * lease-break-time. exec drops the mapping, and the leased descriptor is
 * O_CLOEXEC. */
static pid_t spawn_writer(const char *src) {
  char *argv[] = {"cp", (char *)src, fx.served, NULL};
  pid_t pid;
  assert_int_equal(posix_spawnp(&pid, "cp", NULL, NULL, argv, environ), 0);
  return pid;
}

/* The child's exit status, or -1 if it is still running after ms. */
static int wait_child(pid_t pid, int ms) {
  for (int t = 0;; t += 10) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    assert_int_equal(r, 0);
    if (t >= ms) return -1;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
}

/* The lease signal must come within 5 s. */
static void await_lease_break(void) {
  srv_signal_events ev;
  for (int i = 0; i < 50; i++)
    if (srv_signals_wait(100, &ev) && ev.lease) return;
  fail_msg("no lease-break signal within 5 s");
}

/* No signal is pending. */
static void no_signal_pending(void) {
  srv_signal_events ev;
  if (srv_signals_wait(0, &ev)) fail_msg("unexpected signals: %u lease, %u hup, %u term",
                                         ev.lease, ev.hup, ev.term);
}

/* `"checksum":"..."` as /health writes it for a model's bytes. */
static void checksum_member(const unsigned char *bytes, size_t len, char *out, size_t cap) {
  cofi_model *m;
  cofi_diag d = {0};
  assert_int_equal(cofi_model_open_memory(bytes, len, &m, &d), COFI_OK);
  cofi_model_info in;
  cofi_model_get_info(m, &in);
  snprintf(out, cap, "\"checksum\":\"%016llx\"", (unsigned long long)in.checksum);
  cofi_model_close(m);
}

/* ---- tests ----------------------------------------------------------------- */

static void load_takes_lease_or_falls_back(void **state) {
  (void)state;
  write_served(fx.a, fx.a_len);
  srv_model *sm, *copy;
  cofi_diag d = {0};
  assert_int_equal(srv_model_load(fx.served, 7, fx.sig, &sm, &d), COFI_OK);
  assert_int_equal(sm->storage, SRV_STORAGE_MAPPED);
  assert_true(sm->lease_fd >= 0);
  assert_int_equal(fcntl(sm->lease_fd, F_GETLEASE), F_RDLCK);
  assert_int_equal(srv_model_copy_private(sm, fx.served, &copy, &d), COFI_OK);
  assert_int_equal(copy->storage, SRV_STORAGE_PRIVATE);
  assert_int_equal(copy->lease_fd, -1);
  assert_int_equal(copy->generation, 7);
  assert_int_equal(copy->info.checksum, sm->info.checksum);
  /* A private model has nothing to copy through. */
  srv_model *none = (srv_model *)0x1;
  assert_int_equal(srv_model_copy_private(copy, fx.served, &none, &d), COFI_ERR_INVALID);
  assert_null(none);
  srv_ref_release(&copy->ref);
  srv_ref_release(&sm->ref);

  /* A writer has the file open: no lease, read into memory. */
  int w = open(fx.served, O_WRONLY | O_APPEND);
  assert_true(w >= 0);
  assert_int_equal(srv_model_load(fx.served, 1, fx.sig, &sm, &d), COFI_OK);
  assert_int_equal(sm->storage, SRV_STORAGE_PRIVATE);
  assert_int_equal(sm->lease_errno, EAGAIN);
  assert_int_equal(sm->lease_fd, -1);
  assert_non_null(strstr(srv_lease_reason(sm->lease_errno), "open for writing"));
  srv_ref_release(&sm->ref);
  close(w);
  /* Leases off. */
  assert_int_equal(srv_model_load(fx.served, 1, 0, &sm, &d), COFI_OK);
  assert_int_equal(sm->storage, SRV_STORAGE_PRIVATE);
  assert_int_equal(sm->lease_errno, -1);
  srv_ref_release(&sm->ref);
  /* A bad file fails the same with or without a lease, and lets go of it. */
  FILE *f = fopen(fx.served, "wb");
  fputs("not a model", f);
  fclose(f);
  assert_int_equal(srv_model_load(fx.served, 1, fx.sig, &sm, &d), COFI_ERR_NOT_MODEL);
  assert_null(sm);
  pid_t pid = spawn_writer(fx.a_path); /* no lease left: not held */
  assert_int_equal(wait_child(pid, 5000), 0);
  no_signal_pending();
}

static void lease_break_swaps_in_private_copy(void **state) {
  (void)state;
  write_served(fx.a, fx.a_len);
  cofi_server_config cfg = cofi_server_config_default();
  cfg.model_path = fx.served;
  cfg.port = 0;
  cfg.threads = 2;
  cfg.quiet = true;
  cofi_server *s;
  cofi_diag d = {0};
  assert_int_equal(srv_server_start(&cfg, fx.sig, &s, &d), COFI_OK);
  uint16_t port = cofi_server_port(s);
  char want_a[4096], body[4096], sum_a[40], sum_b[40];
  expect(port, "/health", 200, "\"storage\":\"mapped\"");
  assert_int_equal(http_get(port, "/recommend?user_id=alice&k=3", want_a, sizeof want_a), 200);
  checksum_member(fx.a, fx.a_len, sum_a, sizeof sum_a);
  checksum_member(fx.b, fx.b_len, sum_b, sizeof sum_b);
  expect(port, "/health", 200, sum_a);

  /* 1. A writer comes; the kernel holds it until the break is answered. */
  pid_t pid = spawn_writer(fx.b_path);
  await_lease_break();
  assert_int_equal(wait_child(pid, 200), -1);
  assert_int_equal(srv_lease_broken(s), COFI_OK);
  assert_int_equal(wait_child(pid, 5000), 0);
  expect(port, "/health", 200, "\"storage\":\"private\"");
  expect(port, "/health", 200, sum_a);
  expect(port, "/health", 200, "\"generation\":1,");
  assert_int_equal(http_get(port, "/recommend?user_id=alice&k=3", body, sizeof body), 200);
  assert_string_equal(body, want_a);
  /* A second (stale) signal changes nothing. */
  assert_int_equal(srv_lease_broken(s), COFI_OK);
  expect(port, "/health", 200, sum_a);
  /* The operator's reload maps the new file. */
  assert_int_equal(cofi_server_reload(s, &d), COFI_OK);
  expect(port, "/health", 200, "\"storage\":\"mapped\"");
  expect(port, "/health", 200, sum_b);
  expect(port, "/health", 200, "\"generation\":2,");

  /* 2. The private copy fails (its first allocation): the writer is still
   * let go, and the server answers 503 instead of keeping the mapping. */
  pid = spawn_writer(fx.a_path);
  await_lease_break();
  cofi__alloc_fail_after(1);
  int rc = srv_lease_broken(s);
  cofi__alloc_fail_after(0);
  assert_int_equal(rc, COFI_ERR_NOMEM);
  assert_int_equal(wait_child(pid, 5000), 0);
  expect(port, "/recommend?user_id=alice&k=3", 503, "\"code\":\"model_unavailable\"");
  expect(port, "/recommend?user_id=nobody", 503, "model_unavailable");
  expect(port, "/similar_items?item_id=i1", 503, "model_unavailable");
  expect(port, "/items/i1", 503, "model_unavailable");
  expect(port, "/ping", 503, "model_unavailable");
  expect(port, "/health", 503, "\"model\":null");
  expect(port, "/health", 503, "could not be copied into memory: out of memory");
  expect(port, "/metrics", 200, "cofi_model_reloads_total{result=\"ok\"} 1");
  assert_int_equal(http_get(port, "/metrics", body, sizeof body), 200);
  assert_null(strstr(body, "cofi_model_info"));
  expect(port, "/openapi.json", 200, "openapi");
  /* A failed reload says nothing is served; a good one restores all. */
  write_served((const unsigned char *)"junk", 4);
  assert_int_equal(cofi_server_reload(s, &d), COFI_ERR_NOT_MODEL);
  expect(port, "/ping", 503, "model_unavailable");
  write_served(fx.a, fx.a_len);
  assert_int_equal(cofi_server_reload(s, &d), COFI_OK);
  expect(port, "/ping", 200, "ok");
  expect(port, "/health", 200, "\"storage\":\"mapped\"");
  expect(port, "/health", 200, sum_a);
  expect(port, "/health", 200, "\"generation\":3,");
  assert_int_equal(http_get(port, "/recommend?user_id=alice&k=3", body, sizeof body), 200);
  assert_string_equal(body, want_a);
  cofi_server_stop(s);
  /* Every break was answered; the files written while the slot was empty
   * or after a failed load broke no lease: none was held. */
  no_signal_pending();
}

static void plain_start_takes_no_lease(void **state) {
  (void)state;
  write_served(fx.a, fx.a_len);
  cofi_server_config cfg = cofi_server_config_default();
  cfg.model_path = fx.served;
  cfg.port = 0;
  cfg.threads = 1;
  cfg.quiet = true;
  cofi_server *s;
  cofi_diag d = {0};
  assert_int_equal(cofi_server_start(&cfg, &s, &d), COFI_OK);
  expect(cofi_server_port(s), "/health", 200, "\"storage\":\"private\"");
  /* Nobody holds the writer. */
  pid_t pid = spawn_writer(fx.b_path);
  assert_int_equal(wait_child(pid, 5000), 0);
  expect(cofi_server_port(s), "/recommend?user_id=alice&k=3", 200, "recommendations");
  cofi_server_stop(s);
}

static void health_survives_any_creation_time(void **state) {
  (void)state;
  static const struct {
    uint64_t t;
    const char *want;
  } cases[] = {
      {UINT64_MAX, "\"trained_at\":null"},
      {INT64_MAX, "\"trained_at\":null"},
      {100000000000000000ull, "\"trained_at\":null"},
      {253402300800ull, "\"trained_at\":null"}, /* the year 10000 */
      {253402300799ull, "\"trained_at\":\"9999-12-31T23:59:59Z\""},
      {0, "\"trained_at\":\"1970-01-01T00:00:00Z\""},
      {1700000000, "\"trained_at\":\"2023-11-14T22:13:20Z\""},
  };
  cofi_model *m = train(3, 5);
  cofi_server *s = NULL;
  cofi_diag d = {0};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    m->created_unix = cases[i].t;
    assert_int_equal(cofi_model_save(m, fx.served, &d), COFI_OK);
    if (!s) {
      cofi_server_config cfg = cofi_server_config_default();
      cfg.model_path = fx.served;
      cfg.port = 0;
      cfg.threads = 1;
      cfg.quiet = true;
      assert_int_equal(cofi_server_start(&cfg, &s, &d), COFI_OK);
    } else {
      assert_int_equal(cofi_server_reload(s, &d), COFI_OK);
    }
    expect(cofi_server_port(s), "/health", 200, cases[i].want);
  }
  /* The version string of the header is any bytes too: escaped in JSON,
   * printable ASCII only in the Prometheus label. */
  memcpy(m->cofi_version, "\x1b[2J\"\n\xff\\x", 9);
  assert_int_equal(cofi_model_save(m, fx.served, &d), COFI_OK);
  assert_int_equal(cofi_server_reload(s, &d), COFI_OK);
  expect(cofi_server_port(s), "/health", 200, "\"cofi_version\":\"\\u001b[2J\\\"\\n\\ufffd\\\\x\"");
  expect(cofi_server_port(s), "/metrics", 200, "cofi_version=\"?[2J\\\"??\\\\x\"");
  cofi_server_stop(s);
  cofi_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(load_takes_lease_or_falls_back),
      cmocka_unit_test(lease_break_swaps_in_private_copy),
      cmocka_unit_test(plain_start_takes_no_lease),
      cmocka_unit_test(health_survives_any_creation_time),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

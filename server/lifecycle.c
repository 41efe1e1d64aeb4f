/*
 * lifecycle.c — the life of a server: configuration defaults and checks,
 * start (model, socket, HTTP threads), graceful stop, and cofi_server_run,
 * the whole life of `cofi serve` with its signal loop.
 *
 * The signal loop runs in the thread that called cofi_server_run. Signals
 * only wake it (signals.c says why handlers, not masks); it then does the
 * work: SIGHUP reloads (reload.c), the lease signal swaps in a private
 * copy (reload.c), SIGTERM/SIGINT drain and stop. A SIGTERM that arrives
 * with a SIGHUP, or during a reload, still stops gracefully: the reload
 * finishes (or is skipped when both are pending), then the drain.
 */
#include "srv.h"
#include "versions.h"
#include "online.h"
#include "feed.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static atomic_uint_fast64_t server_ids = 1;

/* The back end of a store URL, for the start message (never the URL: it
 * may hold a password). */
static const char *store_kind(const char *url) {
  return strncmp(url, "sqlite:", 7) == 0 ? "sqlite" : "postgresql";
}


cofi_server_config cofi_server_config_default(void) {
  cofi_server_config c;
  memset(&c, 0, sizeof c);
  c.host = "127.0.0.1";
  c.port = 8080;
  c.threads = 0;
  c.max_k = 1000;
  c.default_k = 10;
  c.invocations_k = 5;
  c.max_list = 1000;
  c.max_id_len = 512;
  c.max_body = 1u << 20;
  c.max_connections = 1024;
  c.timeout_s = 30;
  c.conn_memory = 32u << 10;
  c.drain_s = 25.0;
  c.keep_versions = 5;
  c.retrain_threads = 1;
  c.retrain_margin = 0.02;
  c.online_cache_users = 100000;
  c.online_cache_ttl_s = 60.0;
  c.feed_interval_s = 1.0;
  return c;
}

/* ---- start and stop ---------------------------------------------------------- */

static int bind_socket(cofi_server *s, cofi_diag *diag) {
  char port[8];
  snprintf(port, sizeof port, "%u", (unsigned)s->cfg.port);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  int gai = getaddrinfo(s->cfg.host, port, &hints, &res);
  if (gai != 0)
    return srv_diag_fail(diag, COFI_ERR_IO, NULL, "cannot resolve --host '%s': %s", s->cfg.host,
                     gai_strerror(gai));
  int fd = -1, err = 0;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    return srv_diag_fail(diag, COFI_ERR_IO, NULL, "cannot listen on %s:%u: %s", s->cfg.host,
                     (unsigned)s->cfg.port, strerror(err));
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  s->listen_fd = fd;
  return COFI_OK;
}

static int check_config(const cofi_server_config *c, cofi_diag *diag) {
  if ((!c->model_path || !*c->model_path) && !c->store_url)
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "no model file given");
  if (!c->host || !*c->host) return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "no host to bind");
  if (c->max_k < 1 || c->max_k > 1000000)
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "max_k must be in 1..1000000");
  if (c->default_k < 1 || c->default_k > c->max_k || c->invocations_k < 1 ||
      c->invocations_k > c->max_k)
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "the default k must be in 1..max_k (%u)", c->max_k);
  if (c->max_list < 1 || c->max_list > 1000000)
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "max_list must be in 1..1000000");
  if (c->max_id_len < 1) return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "max_id_len must be >= 1");
  if (c->max_body < 1) return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "max_body must be >= 1");
  if (c->threads > 1024) return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "threads must be <= 1024");
  if (c->max_connections < 1)
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "max_connections must be >= 1");
  if (c->models_dir && !c->store_url)
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "--models-dir needs --store: retraining reads the store");
  if (c->models_dir && (c->keep_versions < 2 || c->retrain_threads < 1 ||
                        !(c->retrain_margin >= -1 && c->retrain_margin <= 1)))
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL,
                     "keep_versions must be >= 2, retrain_threads >= 1, retrain_margin in [-1, 1]");
  if (!(c->feed_interval_s >= 0 && c->feed_interval_s <= 3600))
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "the feed interval must be in 0..3600 seconds");
  if (c->conn_memory < 4096)
    return srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "the connection memory limit must be >= 4096");
  return COFI_OK;
}

/* Is the bound socket reachable only from this machine? */
static bool listens_on_loopback(int fd) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return false;
  if (ss.ss_family == AF_INET)
    return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
  if (ss.ss_family == AF_INET6) {
    const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a)) return true;
    return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
  }
  return false;
}

static void server_free(cofi_server *s) {
  /* The writer first: it commits what is queued and resumes the requests
   * suspended on it (answered while the HTTP threads still run); later
   * writes are refused (503). */
  srv_feed_stop(s); /* it marks users in s->online */
  srv_retrain_stop(s);
  srv_store_drain(s->store);
  srv_http_free(s);
  srv_feed_free(s);
  srv_store_stop(s->store);
  s->store = NULL;
  srv_new_items_free(s->new_items);
  s->new_items = NULL;
  if (s->listen_fd >= 0) close(s->listen_fd);
  srv_online_free(s->online);
  srv_item_attrs_free(s->item_attrs);
  srv_slot_clear(&s->model);
  srv_ops_free(s);
  srv_metrics_free(&s->metrics);
  pthread_mutex_destroy(&s->reload_lock);
  pthread_mutex_destroy(&s->status_lock);
  pthread_mutex_destroy(&s->threads_lock);
  free(s);
}

/* Without the signal loop of cofi_server_run nobody would answer a lease
 * break, so a plain start reads models into private memory. */
int cofi_server_start(const cofi_server_config *cfg, cofi_server **out, cofi_diag *diag) {
  return srv_server_start(cfg, 0, out, diag);
}

int srv_server_start(const cofi_server_config *cfg, int lease_sig, cofi_server **out,
                     cofi_diag *diag) {
  *out = NULL;
  int rc = check_config(cfg, diag);
  if (rc != COFI_OK) return rc;
  cofi_server *s = calloc(1, sizeof *s);
  if (!s) return srv_diag_fail(diag, COFI_ERR_NOMEM, NULL, "out of memory");
  s->cfg = *cfg;
  s->lease_sig = lease_sig;
  s->id = atomic_fetch_add(&server_ids, 1);
  s->listen_fd = -1;
  s->started_unix = (double)time(NULL);
  pthread_mutex_init(&s->reload_lock, NULL);
  pthread_mutex_init(&s->status_lock, NULL);
  pthread_mutex_init(&s->threads_lock, NULL);
  srv_metrics_init(&s->metrics);
  atomic_init(&s->in_flight, 0);
  atomic_init(&s->connections, 0);
  atomic_init(&s->draining, false);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  s->threads = cfg->threads ? cfg->threads : (cores > 0 ? (uint32_t)cores : 1);

  /* A store server without a model file (yet) serves the store routes and
   * answers 503 model_unavailable elsewhere until a reload finds one. */
  if (!s->cfg.model_path) s->cfg.model_path = "";
  srv_model *sm = NULL;
  snprintf(s->reload_path, sizeof s->reload_path, "%s", s->cfg.model_path);
  if (cfg->models_dir) {
    /* Serves a version of the models directory (versions.h). */
    rc = srv_retrain_open(s, lease_sig, &sm, diag);
    if (rc == COFI_OK && !sm)
      rc = srv_diag_fail(diag, COFI_ERR_INVALID, NULL, "the models directory %s holds no version yet and "
                     "no MODEL was given: the first retrain makes version 1", cfg->models_dir);
    else if (rc != COFI_OK) {
      srv_slot_init(&s->model, NULL);
      goto fail;
    }
  } else if (*s->cfg.model_path) {
    rc = srv_model_load(cfg->model_path, 1, lease_sig, &sm, diag);
  } else {
    rc = srv_diag_fail(diag, COFI_ERR_INVALID, NULL,
                   "no model file was given (cofi serve MODEL --store URL; then SIGHUP)");
  }
  srv_slot_init(&s->model, sm ? &sm->ref : NULL);
  if (rc != COFI_OK) {
    if (!cfg->store_url) goto fail;
    snprintf(s->last_reload_error, sizeof s->last_reload_error, "%s",
             diag && diag->message[0] ? diag->message : cofi_error_message(rc));
    fprintf(stderr, "cofi serve: no model yet (%s): the store routes are served, the others "
                    "answer 503 until a reload (SIGHUP) loads one\n",
            s->last_reload_error);
    if (diag) memset(diag, 0, sizeof *diag);
  } else {
    s->generation = 1;
    srv_say_storage(s, sm);
  }

  rc = srv_ops_init(s, diag);
  if (rc != COFI_OK) goto fail;
  rc = bind_socket(s, diag);
  if (rc != COFI_OK) goto fail;
  if (cfg->store_url) {
    if ((!cfg->api_token || !*cfg->api_token) && !listens_on_loopback(s->listen_fd)) {
      rc = srv_diag_fail(diag, COFI_ERR_INVALID, NULL,
                     "--store on a non-loopback address (%s) needs an API token for the write "
                     "routes: give --api-token-file FILE (or set COFI_API_TOKEN), or listen on "
                     "127.0.0.1",
                     cfg->host);
      goto fail;
    }
    rc = srv_store_start(cfg->store_url, &s->store, diag);
    if (rc != COFI_OK) goto fail;
    rc = srv_new_items_start(s, diag);
    if (rc != COFI_OK) goto fail;
  }
  if (s->retrain) {
    rc = srv_retrain_start(s, diag);
    if (rc != COFI_OK) goto fail;
  }
  rc = srv_online_start(s, diag);
  if (rc != COFI_OK) goto fail;
  rc = srv_feed_start(s, diag);
  if (rc != COFI_OK) goto fail;
  rc = srv_http_start(s, diag);
  if (rc != COFI_OK) goto fail;
  *out = s;
  return COFI_OK;
fail:
  server_free(s);
  return rc;
}

uint16_t cofi_server_port(const cofi_server *s) { return s->port; }

void cofi_server_stop(cofi_server *s) {
  if (!s) return;
  srv_http_begin_drain(s);
  uint64_t deadline = srv_now_ns() + (uint64_t)(s->cfg.drain_s * 1e9);
  while (atomic_load(&s->in_flight) > 0 && srv_now_ns() < deadline) {
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  server_free(s);
}

/* ---- the signal loop ----------------------------------------------------------- */

int cofi_server_run(const cofi_server_config *cfg, cofi_diag *diag) {
  /* Models come and go (reloads, private copies after a lease break), each
   * a few large blocks. glibc raises its mmap threshold to the size of any
   * mapped block freed, after which such blocks come from the heap and stay
   * in it when freed: RSS then holds a model or two that no longer exist.
   * A fixed threshold keeps every block of 1 MiB or more mapped, so a
   * freed model goes back to the system at once. */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  signal(SIGPIPE, SIG_IGN);
  /* Before the first model is loaded, so before any lease exists. */
  int lease_sig = srv_lease_signal();
  int err = srv_signals_install(lease_sig);
  if (err)
    return srv_diag_fail(diag, COFI_ERR_IO, NULL, "cannot install signal handlers: %s", strerror(err));

  cofi_server *s;
  int rc = srv_server_start(cfg, lease_sig, &s, diag);
  if (rc != COFI_OK) return rc;
  {
    srv_model *sm = (srv_model *)srv_slot_acquire(&s->model);
    bool v6 = strchr(cfg->host, ':') != NULL;
    if (sm)
      fprintf(stderr, "cofi serve: %s: %u users, %u items, %u factors (checksum %016llx)\n",
              sm->path, sm->info.n_users, sm->info.n_items, sm->info.factors,
              (unsigned long long)sm->info.checksum);
    if (s->store)
      fprintf(stderr, "cofi serve: store %s attached (POST /feedback, /items, /users)%s\n",
              store_kind(cfg->store_url),
              cfg->api_token && *cfg->api_token ? ", writes need the API token" : "");
    fprintf(stderr, "cofi serve: listening on http://%s%s%s:%u with %u threads (docs at /docs)\n",
            v6 ? "[" : "", cfg->host, v6 ? "]" : "", (unsigned)s->port, s->threads);
    if (sm) srv_ref_release(&sm->ref);
  }
  srv_signal_events ev;
  for (;;) {
    srv_signals_wait(-1, &ev);
    /* A lease break first: a writer is held in open() until it is
     * answered. Then a stop, which makes a pending reload pointless. */
    if (ev.lease) srv_lease_broken(s);
    if (ev.term) break;
    if (ev.hup) cofi_server_reload(s, NULL);
  }
  fprintf(stderr, "cofi serve: %s: finishing %d in-flight requests, then stopping\n",
          ev.term_sig == SIGINT ? "SIGINT" : "SIGTERM", atomic_load(&s->in_flight));
  srv_http_begin_drain(s);
  /* Wait for in-flight requests; a second SIGTERM/SIGINT cuts it short.
   * Lease breaks are still answered (a held writer would wait for us). */
  uint64_t deadline = srv_now_ns() + (uint64_t)(cfg->drain_s * 1e9);
  while (atomic_load(&s->in_flight) > 0 && srv_now_ns() < deadline) {
    srv_signals_wait(5, &ev);
    if (ev.lease) srv_lease_broken(s);
    if (ev.term) {
      fprintf(stderr, "cofi serve: second signal: stopping now\n");
      break;
    }
    if (ev.hup) cofi_server_reload(s, NULL);
  }
  int left = atomic_load(&s->in_flight);
  if (left > 0) fprintf(stderr, "cofi serve: stopping with %d requests unfinished\n", left);
  server_free(s);
  fprintf(stderr, "cofi serve: stopped\n");
  return COFI_OK;
}

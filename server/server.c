/*
 * server.c — libmicrohttpd glue and the life of the server: connections,
 * request bodies, dispatch to handlers, the access log, /health, /metrics,
 * reload, graceful stop, and the signal loop of `cofi serve`.
 *
 * Threads: libmicrohttpd runs a pool of worker threads (epoll, one event
 * loop each); every callback for a connection runs on the thread that owns
 * it. Each worker has its own scratch (srv_thread: a cofi_workspace, result
 * arrays, a metrics shard) created on its first request, so requests do not
 * allocate. The main thread only waits for signals.
 *
 * One request, in order:
 *   1. on_uri (MHD's URI log callback): the raw request target is copied
 *      before MHD unescapes it in place, the clock starts, and the
 *      connection's context becomes the request's context.
 *   2. on_access, first call: route lookup (404), method check (405 +
 *      Allow), declared body size (413). GET routes answer right here.
 *   3. on_access, later calls: body bytes are appended to the connection's
 *      buffer (beyond --max-body they are dropped and the answer is 413);
 *      the last call dispatches to the handler.
 *   4. on_completed: metrics, the access log line, in-flight count.
 * Buffers belong to the connection and are reused by its next request;
 * the response is sent straight from the output buffer (MHD does not copy
 * it), which is safe because a connection handles one request at a time.
 *
 * Reload swaps the model through srv_slot (refslot.c). A served model
 * file is mapped under a read lease (served_model.c); when someone starts
 * rewriting it in place, the kernel signals the lease break and the signal
 * loop swaps in a private copy (srv_lease_broken). Stop: quiesce (no new
 * connections), answer with "Connection: close", wait for in-flight
 * requests, stop the daemon.
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct cofi_server {
  cofi_server_config cfg;
  uint64_t id; /* tells this server's thread state from a previous one's */
  struct MHD_Daemon *daemon;
  int listen_fd;
  uint16_t port;
  uint32_t threads;
  double started_unix;

  srv_slot model;              /* NULL after a failed private copy */
  pthread_mutex_t reload_lock; /* serializes reloads and lease breaks */
  uint64_t generation;
  int lease_sig;  /* signal of lease breaks, 0: no leases (private loads) */
  int lease_said; /* the lease_errno last reported on stderr, 0: none */

  pthread_mutex_t status_lock; /* the reload report below */
  uint64_t reloads_ok, reloads_failed;
  char last_reload_error[700];

  srv_metrics metrics;
  atomic_int in_flight;
  atomic_bool draining;

  pthread_mutex_t threads_lock;
  srv_thread *thread_list;

  char *openapi;
  struct MHD_Response *r_ping, *r_openapi, *r_docs, *r_nomem;
};

/* Per connection; also the context of its current request. */
typedef struct srv_conn {
  cofi_server *srv;
  char *uri;    /* raw request target as received, NUL-terminated */
  char *work;   /* same size: decoded path, then the writable query */
  size_t uri_len, uri_cap;
  char *body;
  size_t body_len, body_cap;
  srv_buf out;
  uint64_t t0_ns;
  bool open; /* a request is counted in in_flight and not yet finished */
  srv_route_id route;
  int status; /* 0 until we queue an answer */
  bool started, responded, too_large;
  bool nomem; /* out of memory for this request: answer 503 */
  const srv_route *rt; /* NULL when no route matched */
  size_t path_len;     /* the decoded path, at the start of work */
  bool has_err;        /* err is the answer (bad path, 404, 405) */
  srv_error err;
  char method[16];
} srv_conn;

static atomic_uint_fast64_t server_ids = 1;
static _Thread_local srv_thread *tls_thread;

static const char ping_body[] = "{\"status\":\"ok\"}";
static const char nomem_body[] =
    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"the server is out of memory; retry later\"}}";
static const char mime_json[] = "application/json";

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail_diag(cofi_diag *diag, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_diag(cofi_diag *diag, int code, const char *fmt, ...) {
  if (diag) {
    diag->file[0] = 0;
    diag->line = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(diag->message, sizeof diag->message, fmt, ap);
    va_end(ap);
  }
  return code;
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
  return c;
}

/* ---- per-thread state ---------------------------------------------------- */

static void thread_free(srv_thread *t) {
  if (!t) return;
  cofi_workspace_free(t->ws);
  free(t->top);
  free(t->items);
  free(t->order);
  free(t->printed);
  free(t->exclude);
  free(t->spans_a);
  free(t->spans_b);
  free(t->vec);
  free(t);
}

/* The calling worker's scratch, made on its first request. NULL when out
 * of memory (the request then gets a 503). */
static srv_thread *thread_state(cofi_server *s) {
  srv_thread *t = tls_thread;
  if (t && t->server_id == s->id) return t;
  t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->server_id = s->id;
  t->ws = cofi_workspace_new();
  t->top = malloc((size_t)s->cfg.max_k * sizeof *t->top);
  t->items = malloc((size_t)s->cfg.max_list * sizeof *t->items);
  t->order = malloc((size_t)s->cfg.max_list * sizeof *t->order);
  t->printed = malloc((size_t)s->cfg.max_list * sizeof *t->printed);
  t->exclude = malloc((size_t)s->cfg.max_list * sizeof *t->exclude);
  t->spans_a = malloc((size_t)s->cfg.max_list * sizeof *t->spans_a);
  t->spans_b = malloc((size_t)s->cfg.max_list * sizeof *t->spans_b);
  t->vec = aligned_alloc(64, COFI_MAX_FACTORS * sizeof *t->vec);
  if (!t->ws || !t->top || !t->items || !t->order || !t->printed || !t->exclude ||
      !t->spans_a || !t->spans_b || !t->vec) {
    thread_free(t);
    return NULL;
  }
  t->metrics = srv_metrics_shard_new(&s->metrics);
  pthread_mutex_lock(&s->threads_lock);
  t->next = s->thread_list;
  s->thread_list = t;
  pthread_mutex_unlock(&s->threads_lock);
  tls_thread = t;
  return t;
}

/* ---- connections ----------------------------------------------------------- */

static void conn_free(srv_conn *cn) {
  if (!cn) return;
  free(cn->uri);
  free(cn->work);
  free(cn->body);
  srv_buf_free(&cn->out);
  free(cn);
}

static void finish_request(cofi_server *s, struct MHD_Connection *c, srv_conn *cn);

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    srv_conn *cn = calloc(1, sizeof *cn);
    if (cn) {
      cn->srv = cls;
      srv_buf_init(&cn->out);
    }
    *socket_context = cn; /* NULL: its requests are refused (on_access) */
  } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
    /* A request MHD dropped without a completion notice (a request line
     * cut by the memory limit, a reset) still ends here. */
    if (*socket_context) finish_request(cls, c, *socket_context);
    conn_free(*socket_context);
    *socket_context = NULL;
  }
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
  cofi_server *s = cls;
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  srv_conn *cn = ci ? ci->socket_context : NULL;
  if (!cn) return NULL;
  if (cn->open) finish_request(s, c, cn); /* never completed: not counted twice */
  cn->open = true;
  atomic_fetch_add(&s->in_flight, 1);
  cn->t0_ns = now_ns();
  cn->route = SRV_R_OTHER;
  cn->status = 0;
  cn->started = cn->responded = cn->too_large = cn->nomem = false;
  cn->method[0] = 0;
  cn->body_len = 0;
  cn->path_len = 0;
  size_t len = strlen(uri);
  if (len + 1 > cn->uri_cap) {
    /* The request line is bounded by the connection memory limit, so
     * this grows a few times at most over a connection's life. */
    char *u = realloc(cn->uri, len + 1), *w = u ? realloc(cn->work, len + 1) : NULL;
    if (u) cn->uri = u;
    if (w) cn->work = w;
    if (!u || !w) {
      cn->uri_len = 0;
      cn->nomem = true; /* on_access answers 503 */
      return cn;
    }
    cn->uri_cap = len + 1;
  }
  memcpy(cn->uri, uri, len + 1);
  cn->uri_len = len;
  return cn;
}

/* ---- the access log ---------------------------------------------------------- */

static void access_log(const srv_conn *cn, int status, uint64_t us) {
  static const char hex[] = "0123456789ABCDEF";
  char line[1200];
  size_t o = 0;
  const char *m = cn->method[0] ? cn->method : "-";
  size_t ml = strlen(m);
  memcpy(line, m, ml);
  o = ml;
  line[o++] = ' ';
  /* The raw target, with bytes that could break the line (spaces, control
   * characters, non-ASCII) percent-encoded, cut at 1000 bytes. */
  size_t n = cn->uri_len;
  for (size_t i = 0; i < n && o < 1100; i++) {
    unsigned char ch = (unsigned char)cn->uri[i];
    if (ch > 0x20 && ch < 0x7f && ch != '"') {
      line[o++] = (char)ch;
    } else {
      line[o++] = '%';
      line[o++] = hex[ch >> 4];
      line[o++] = hex[ch & 15];
    }
    if (o >= 1000 && i + 1 < n) {
      memcpy(line + o, "...", 3);
      o += 3;
      break;
    }
  }
  if (n == 0) line[o++] = '-';
  int w = snprintf(line + o, sizeof line - o, " %d %lluus\n", status, (unsigned long long)us);
  if (w > 0) o += (size_t)w < sizeof line - o ? (size_t)w : sizeof line - o - 1;
  /* One write per line: lines from different threads never interleave. */
  ssize_t rc = write(STDERR_FILENO, line, o);
  (void)rc;
}

/* The end of a request, however it ended: metrics, the access log line,
 * the in-flight count. Runs once per request (cn->open). */
static void finish_request(cofi_server *s, struct MHD_Connection *c, srv_conn *cn) {
  if (!cn->open) return;
  cn->open = false;
  uint64_t us = (now_ns() - cn->t0_ns) / 1000;
  int status = cn->status;
  if (!status) {
    /* Answered by MHD itself (414, 431, ...) or abandoned (0). */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (ci) status = (int)ci->http_status;
  }
  /* The worker's own shard when it has one; never a new one here (this
   * may run while the daemon stops). */
  srv_thread *t = tls_thread;
  srv_metrics_observe(t && t->server_id == s->id ? t->metrics : &s->metrics.shared, cn->route,
                      status, us);
  if (!s->cfg.quiet) access_log(cn, status, us);
  /* Do not let one huge request pin memory on an idle connection. */
  if (cn->body_cap > (256u << 10)) {
    free(cn->body);
    cn->body = NULL;
    cn->body_cap = 0;
  }
  if (cn->out.cap > (1u << 20)) srv_buf_free(&cn->out);
  atomic_fetch_sub(&s->in_flight, 1);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)toe;
  if (*con_cls) finish_request(cls, c, *con_cls);
}

/* ---- answering ------------------------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *c, srv_conn *cn, int status,
                             struct MHD_Response *r) {
  cn->status = status;
  cn->responded = true;
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
  return ok;
}

static enum MHD_Result send_out(cofi_server *s, struct MHD_Connection *c, srv_conn *cn,
                                srv_req *r) {
  if (r->static_response && !atomic_load(&s->draining))
    return queue(c, cn, r->status, r->static_response);
  if (cn->out.oom) return queue(c, cn, 503, s->r_nomem);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(cn->out.len, cn->out.p, MHD_RESPMEM_PERSISTENT);
  if (!resp) return queue(c, cn, 503, s->r_nomem);
  bool ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    r->content_type ? r->content_type : mime_json) == MHD_YES;
  if (r->allow) ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow) == MHD_YES;
  if (r->www_authenticate)
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                       r->www_authenticate) == MHD_YES;
  /* While draining, keep-alive connections are told to go away. */
  if (atomic_load(&s->draining))
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
  enum MHD_Result ret = ok ? queue(c, cn, r->status, resp) : queue(c, cn, 503, s->r_nomem);
  MHD_destroy_response(resp);
  return ret;
}

srv_model *srv_req_model(srv_req *r) {
  if (!r->model) r->model = (srv_model *)srv_slot_acquire(&r->srv->model);
  return r->model;
}

void srv_req_error(srv_req *r, const srv_error *e) {
  r->out->len = 0;
  r->out->oom = false;
  r->status = e->status;
  r->content_type = mime_json;
  srv_buf_error(r->out, e);
}

void srv_req_fail(srv_req *r, int status, const char *code, const char *fmt, ...) {
  srv_error e;
  e.status = status;
  e.code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.message, sizeof e.message, fmt, ap);
  va_end(ap);
  srv_req_error(r, &e);
}

static unsigned method_bit(const char *m) {
  if (!strcmp(m, MHD_HTTP_METHOD_GET)) return SRV_GET;
  if (!strcmp(m, MHD_HTTP_METHOD_HEAD)) return SRV_HEAD;
  if (!strcmp(m, MHD_HTTP_METHOD_POST)) return SRV_POST;
  return 0;
}

/* Routes that answer from the model. With no model in the slot (only after
 * a lease break whose private copy failed: see srv_lease_broken) they get
 * 503 model_unavailable; /health, /metrics and /admin/reload cope with
 * the empty slot themselves, /openapi.json and /docs do not need it. */
static bool needs_model(srv_route_id id) {
  switch (id) {
  case SRV_R_HEALTH:
  case SRV_R_METRICS:
  case SRV_R_ADMIN_RELOAD:
  case SRV_R_OPENAPI:
  case SRV_R_DOCS:
    return false;
  default:
    return true; /* /ping too: "not ready" to a load balancer */
  }
}

/* The last reload (or private copy) error, for people: why there is no
 * model, or why a reload failed. */
static void no_model_reason(cofi_server *s, char *buf, size_t size) {
  pthread_mutex_lock(&s->status_lock);
  snprintf(buf, size, "%s", s->last_reload_error[0] ? s->last_reload_error : "no model loaded");
  pthread_mutex_unlock(&s->status_lock);
}

static void model_unavailable(srv_req *r) {
  char why[700];
  no_model_reason(r->srv, why, sizeof why);
  srv_req_fail(r, 503, "model_unavailable",
               "no model is being served (%s); it comes back with a successful reload "
               "(SIGHUP or POST /admin/reload)", why);
}

/* Builds the request context, runs the route's handler (or the generic
 * error), and queues the answer. */
static enum MHD_Result dispatch(cofi_server *s, struct MHD_Connection *c, srv_conn *cn,
                                const srv_route *rt, unsigned method, srv_span path,
                                const srv_error *early) {
  srv_req r;
  memset(&r, 0, sizeof r);
  r.srv = s;
  r.cfg = &s->cfg;
  r.lim.max_k = s->cfg.max_k;
  r.lim.max_list = s->cfg.max_list;
  r.lim.max_id_len = s->cfg.max_id_len;
  r.conn = c;
  r.method = method;
  r.path = path;
  r.out = &cn->out;
  r.status = 200;
  r.content_type = mime_json;
  cn->out.len = 0;
  cn->out.oom = false;
  if (early) {
    srv_req_error(&r, early);
    if (early->status == 405 && rt) r.allow = rt->allow;
    return send_out(s, c, cn, &r);
  }
  r.th = thread_state(s);
  if (!r.th) return queue(c, cn, 503, s->r_nomem);
  /* The query is the raw text after '?', decoded by the handler in place
   * in the work buffer (after the decoded path). */
  char *q = memchr(cn->uri, '?', cn->uri_len);
  if (q) {
    size_t qlen = cn->uri_len - (size_t)(q + 1 - cn->uri);
    char *dst = cn->work + path.len;
    memcpy(dst, q + 1, qlen);
    r.query = dst;
    r.query_len = qlen;
  }
  if (rt->prefix) {
    size_t n = strlen(rt->path);
    r.route_arg.p = path.p + n;
    r.route_arg.len = path.len - n;
  }
  r.body = cn->body;
  r.body_len = cn->body_len;
  if (needs_model(rt->id) && !srv_req_model(&r))
    model_unavailable(&r);
  else
    rt->handle(&r);
  /* The answer is in cn->out: the model can go (a reload may free it). */
  if (r.model) srv_ref_release(&r.model->ref);
  return send_out(s, c, cn, &r);
}

/* The path of the raw target, decoded into cn->work. */
static bool decode_path(srv_conn *cn, srv_span *path, srv_error *err) {
  const char *p = cn->uri, *end = cn->uri + cn->uri_len;
  /* Absolute form ("http://host/path"), allowed by HTTP/1.1. */
  if (!strncmp(p, "http://", 7) || !strncmp(p, "https://", 8)) {
    p = strstr(p, "//") + 2;
    while (p < end && *p != '/' && *p != '?') p++;
  }
  const char *qm = memchr(p, '?', (size_t)(end - p));
  size_t raw = (size_t)((qm ? qm : end) - p), n;
  if (!srv_url_decode(p, raw, false, cn->work, &n, err)) return false;
  path->p = cn->work;
  path->len = n;
  return true;
}

static uint64_t content_length(struct MHD_Connection *c, bool *present) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  *present = v != NULL;
  if (!v) return 0;
  uint64_t n = 0;
  for (; *v >= '0' && *v <= '9'; v++) {
    if (n > UINT64_MAX / 10 - 10) return UINT64_MAX;
    n = n * 10 + (uint64_t)(*v - '0');
  }
  return n;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload, size_t *upload_size, void **con_cls) {
  cofi_server *s = cls;
  srv_conn *cn = *con_cls;
  (void)url;
  (void)version;
  if (!cn) return MHD_NO; /* no memory for this connection: close it */
  if (cn->responded) {
    *upload_size = 0; /* after an early answer (413): drop the rest */
    return MHD_YES;
  }
  if (cn->nomem) {
    *upload_size = 0;
    return queue(c, cn, 503, s->r_nomem);
  }
  srv_span path = {cn->work, cn->path_len};
  if (!cn->started) {
    /* First call, headers only. Answers wait for the last call even when
     * the verdict is already known (404, 405): answering before MHD has
     * seen the end of the request makes it close the connection, and
     * keep-alive is most of the throughput. Only a body declared too
     * large is answered now, so that it is never uploaded. */
    cn->started = true;
    cn->has_err = false;
    cn->rt = NULL;
    size_t mlen = strnlen(method, sizeof cn->method - 1); /* for the access log, cut */
    memcpy(cn->method, method, mlen);
    cn->method[mlen] = 0;
    unsigned mb = method_bit(method);
    bool path_ok = decode_path(cn, &path, &cn->err);
    cn->path_len = path.len;
    if (!path_ok) {
      cn->has_err = true;
    } else if (!(cn->rt = srv_route_find(path.p, path.len))) {
      cn->has_err = true;
      srv_fail(&cn->err, 404, "not_found",
               "no endpoint at " SRV_ECHO_FMT " (the API is listed at /docs and /openapi.json)",
               SRV_ECHO(path.p, path.len));
    } else {
      cn->route = cn->rt->id;
      if (!(cn->rt->methods & mb)) {
        cn->has_err = true;
        srv_fail(&cn->err, 405, "method_not_allowed", "%s does not accept %s (allowed: %s)",
                 cn->rt->path, cn->method, cn->rt->allow);
      }
    }
    bool present;
    uint64_t cl = content_length(c, &present);
    if (present && cl > s->cfg.max_body) {
      if (!cn->has_err)
        srv_fail(&cn->err, 413, "body_too_large",
                 "the request body is %llu bytes, the limit is %zu (see --max-body)",
                 (unsigned long long)cl, s->cfg.max_body);
      return dispatch(s, c, cn, cn->rt, mb, path, &cn->err);
    }
    size_t want = present ? (size_t)cl : 0;
    if (!cn->has_err && cn->rt->body && want > cn->body_cap) {
      char *b = realloc(cn->body, want);
      if (!b) {
        cn->nomem = true;
        return MHD_YES;
      }
      cn->body = b;
      cn->body_cap = want;
    }
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    /* Bodies of requests that take none, or that already failed, are
     * read and dropped. */
    if (cn->too_large || cn->has_err || !cn->rt->body) return MHD_YES;
    if (n > s->cfg.max_body - cn->body_len) {
      cn->too_large = true; /* chunked, or longer than it said */
      return MHD_YES;
    }
    if (cn->body_len + n > cn->body_cap) {
      size_t cap = cn->body_cap ? cn->body_cap : 4096;
      while (cap < cn->body_len + n) cap *= 2;
      if (cap > s->cfg.max_body) cap = s->cfg.max_body;
      char *b = realloc(cn->body, cap);
      if (!b) {
        cn->nomem = true;
        return MHD_YES;
      }
      cn->body = b;
      cn->body_cap = cap;
    }
    memcpy(cn->body + cn->body_len, upload, n);
    cn->body_len += n;
    return MHD_YES;
  }
  /* The last call: the whole request is here. */
  unsigned mb = method_bit(method);
  if (cn->has_err) return dispatch(s, c, cn, cn->rt, mb, path, &cn->err);
  if (cn->too_large) {
    srv_fail(&cn->err, 413, "body_too_large",
             "the request body is over the limit of %zu bytes (see --max-body)", s->cfg.max_body);
    return dispatch(s, c, cn, cn->rt, mb, path, &cn->err);
  }
  return dispatch(s, c, cn, cn->rt, mb, path, NULL);
}

/* ---- endpoints implemented here ------------------------------------------- */

void srv_static_ping(srv_req *r) {
  r->static_response = r->srv->r_ping;
  srv_buf_lit(r->out, ping_body);
}

void srv_static_openapi(srv_req *r) {
  r->static_response = r->srv->r_openapi;
  srv_buf_put(r->out, r->srv->openapi, strlen(r->srv->openapi));
}

void srv_static_docs(srv_req *r) {
  r->static_response = r->srv->r_docs;
  r->content_type = "text/html; charset=utf-8";
  srv_buf_put(r->out, srv_docs_html, strlen(srv_docs_html));
}

static void iso_time(char *buf, size_t size, double unix_s) {
  time_t t = (time_t)unix_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The members describing a model (no braces). */
static void write_model_members(srv_buf *b, const cofi_server *s, const srv_model *sm) {
  const cofi_model_info *in = &sm->info;
  char when[32], loaded[32];
  iso_time(when, sizeof when, (double)in->created_unix);
  iso_time(loaded, sizeof loaded, sm->loaded_unix);
  srv_buf_lit(b, "\"path\":");
  srv_buf_json_str(b, s->cfg.model_path, strlen(s->cfg.model_path));
  srv_buf_printf(b,
                 ",\"generation\":%llu,\"users\":%u,\"items\":%u,\"factors\":%u,"
                 "\"interactions\":%llu,\"trained_at\":\"%s\",\"loaded_at\":\"%s\","
                 "\"train_seconds\":",
                 (unsigned long long)sm->generation, in->n_users, in->n_items, in->factors,
                 (unsigned long long)in->nnz, when, loaded);
  srv_buf_float(b, in->train_seconds);
  srv_buf_lit(b, ",\"train_loss\":");
  srv_buf_float(b, in->train_loss);
  srv_buf_printf(b, ",\"file_bytes\":%llu,\"checksum\":\"%016llx\",\"storage\":\"%s\","
                    "\"cofi_version\":",
                 (unsigned long long)in->file_bytes, (unsigned long long)in->checksum,
                 srv_storage_name(sm->storage));
  srv_buf_json_str(b, in->cofi_version, strnlen(in->cofi_version, sizeof in->cofi_version));
  srv_buf_lit(b, ",\"item_fields\":[");
  for (uint32_t f = 0; f < in->n_item_fields; f++) {
    size_t len;
    const char *name = cofi_model_item_field_name(sm->m, f, &len);
    if (f) srv_buf_putc(b, ',');
    srv_buf_json_str(b, name, len);
  }
  const cofi_params *p = &in->params;
  srv_buf_printf(b, "],\"params\":{\"factors\":%u,\"regularization\":", p->factors);
  srv_buf_float(b, p->regularization);
  srv_buf_lit(b, ",\"alpha\":");
  srv_buf_float(b, p->alpha);
  srv_buf_printf(b, ",\"iterations\":%u,\"seed\":%llu,\"solver\":\"%s\",\"cg_steps\":%u,"
                    "\"reg_exponent\":",
                 p->iterations, (unsigned long long)p->seed,
                 p->solver == COFI_SOLVER_CHOLESKY ? "cholesky" : "cg", p->cg_steps);
  srv_buf_float(b, p->reg_exponent);
  srv_buf_lit(b, ",\"unobserved_weight\":");
  srv_buf_float(b, p->unobserved_weight);
  srv_buf_putc(b, '}');
}

void srv_write_health(srv_req *r) {
  cofi_server *s = r->srv;
  srv_model *sm = srv_req_model(r);
  srv_buf *b = r->out;
  if (sm) {
    srv_buf_lit(b, "{\"status\":\"ok\",\"model\":{");
    write_model_members(b, s, sm);
    srv_buf_putc(b, '}');
  } else {
    /* 503 with the usual members (model null), so that a monitor sees both
     * that nothing is served and why. */
    char why[700];
    no_model_reason(s, why, sizeof why);
    r->status = 503;
    srv_buf_lit(b, "{\"status\":\"model_unavailable\",\"error\":{\"code\":\"model_unavailable\","
                   "\"message\":");
    srv_buf_json_str(b, why, strlen(why));
    srv_buf_lit(b, "},\"model\":null");
  }
  pthread_mutex_lock(&s->status_lock);
  srv_buf_printf(b, ",\"reloads\":{\"succeeded\":%llu,\"failed\":%llu,\"last_error\":",
                 (unsigned long long)s->reloads_ok, (unsigned long long)s->reloads_failed);
  if (s->last_reload_error[0])
    srv_buf_json_str(b, s->last_reload_error, strlen(s->last_reload_error));
  else
    srv_buf_lit(b, "null");
  pthread_mutex_unlock(&s->status_lock);
  srv_buf_printf(b, "},\"server\":{\"version\":\"%s\",\"threads\":%u,\"uptime_seconds\":%.0f,"
                    "\"in_flight\":%d,\"max_k\":%u,\"max_body\":%zu}}",
                 COFI_VERSION, s->threads, (double)time(NULL) - s->started_unix,
                 atomic_load(&s->in_flight), s->cfg.max_k, s->cfg.max_body);
}

/* A Prometheus label value: \, " and newlines escaped. */
static void prom_label(srv_buf *b, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"') {
      srv_buf_putc(b, '\\');
      srv_buf_putc(b, *v);
    } else if (*v == '\n') {
      srv_buf_lit(b, "\\n");
    } else {
      srv_buf_putc(b, *v);
    }
  }
}

/* The gauges describing the served model (none while there is none). */
static void write_model_metrics(srv_buf *b, const cofi_server *s, const srv_model *sm) {
  const cofi_model_info *in = &sm->info;
  srv_buf_lit(b, "# HELP cofi_model_info The model being served (value 1).\n"
                 "# TYPE cofi_model_info gauge\ncofi_model_info{path=\"");
  prom_label(b, s->cfg.model_path);
  srv_buf_printf(b, "\",checksum=\"%016llx\",storage=\"%s\",cofi_version=\"",
                 (unsigned long long)in->checksum, srv_storage_name(sm->storage));
  char ver[sizeof in->cofi_version + 1];
  memcpy(ver, in->cofi_version, sizeof in->cofi_version);
  ver[sizeof in->cofi_version] = 0;
  prom_label(b, ver);
  srv_buf_printf(b,
                 "\",generation=\"%llu\",factors=\"%u\"} 1\n"
                 "# HELP cofi_model_users Users in the served model.\n"
                 "# TYPE cofi_model_users gauge\ncofi_model_users %u\n"
                 "# HELP cofi_model_items Items in the served model.\n"
                 "# TYPE cofi_model_items gauge\ncofi_model_items %u\n"
                 "# HELP cofi_model_loaded_timestamp_seconds When the served model was loaded.\n"
                 "# TYPE cofi_model_loaded_timestamp_seconds gauge\n"
                 "cofi_model_loaded_timestamp_seconds %.0f\n",
                 (unsigned long long)sm->generation, in->factors, in->n_users, in->n_items,
                 sm->loaded_unix);
}

void srv_write_metrics(srv_req *r) {
  cofi_server *s = r->srv;
  srv_model *sm = srv_req_model(r);
  srv_buf *b = r->out;
  r->content_type = "text/plain; version=0.0.4; charset=utf-8";
  srv_metrics_write(&s->metrics, b);
  if (sm) write_model_metrics(b, s, sm);
  pthread_mutex_lock(&s->status_lock);
  uint64_t ok = s->reloads_ok, bad = s->reloads_failed;
  pthread_mutex_unlock(&s->status_lock);
  srv_buf_printf(b,
                 "# HELP cofi_model_reloads_total Model reloads (SIGHUP or POST /admin/reload).\n"
                 "# TYPE cofi_model_reloads_total counter\n"
                 "cofi_model_reloads_total{result=\"ok\"} %llu\n"
                 "cofi_model_reloads_total{result=\"error\"} %llu\n"
                 "# HELP cofi_requests_in_flight Requests being handled.\n"
                 "# TYPE cofi_requests_in_flight gauge\ncofi_requests_in_flight %d\n"
                 "# HELP process_start_time_seconds Start time of the process.\n"
                 "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.0f\n",
                 (unsigned long long)ok, (unsigned long long)bad, atomic_load(&s->in_flight),
                 s->started_unix);
}

void srv_admin_reload(srv_req *r) {
  cofi_server *s = r->srv;
  const char *token = s->cfg.admin_token;
  if (!token || !*token) {
    srv_req_fail(r, 403, "admin_disabled",
                 "POST /admin/reload is disabled: start cofi serve with --admin-token "
                 "(or send SIGHUP to the process)");
    return;
  }
  const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_AUTHORIZATION);
  static const char bearer[] = "Bearer ";
  if (!auth || strncasecmp(auth, bearer, sizeof bearer - 1) != 0 ||
      !srv_secret_eq(auth + sizeof bearer - 1, strlen(auth + sizeof bearer - 1), token,
                     strlen(token))) {
    r->www_authenticate = "Bearer realm=\"cofi-admin\"";
    srv_req_fail(r, 401, "unauthorized",
                 "send the admin token: Authorization: Bearer <token given to --admin-token>");
    return;
  }
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = cofi_server_reload(s, &d);
  srv_model *sm = srv_req_model(r);
  if (rc != COFI_OK) {
    char why[700];
    no_model_reason(s, why, sizeof why); /* the reload's error, kept for /health */
    if (sm)
      srv_req_fail(r, 500, "reload_failed", "%s; still serving generation %llu (checksum %016llx)",
                   why, (unsigned long long)sm->generation, (unsigned long long)sm->info.checksum);
    else
      srv_req_fail(r, 500, "reload_failed", "%s; no model is being served", why);
    return;
  }
  if (!sm) { /* a lease break emptied the slot right after this reload */
    model_unavailable(r);
    return;
  }
  srv_buf_lit(r->out, "{\"status\":\"reloaded\",\"model\":{");
  write_model_members(r->out, s, sm);
  srv_buf_lit(r->out, "}}");
}

/* ---- reload ------------------------------------------------------------------ */

/* One line on stderr when a model is loaded into private memory because no
 * lease could be taken, with the reason; said again only when the reason
 * changes (a file that is not ours stays so at every reload). Called under
 * reload_lock or before any thread runs. */
static void say_storage(cofi_server *s, const srv_model *sm) {
  if (sm->storage == SRV_STORAGE_MAPPED) {
    s->lease_said = 0;
    return;
  }
  if (sm->lease_errno == s->lease_said) return;
  s->lease_said = sm->lease_errno;
  fprintf(stderr,
          "cofi serve: %s: no read lease (%s): the model is read into private memory "
          "instead of mapped, so rewriting the file in place cannot affect it\n",
          s->cfg.model_path, srv_lease_reason(sm->lease_errno));
}

/* "still serving generation N" or "no model is being served" (the slot is
 * only changed under reload_lock, which the caller holds). */
static void describe_serving(cofi_server *s, char *buf, size_t size) {
  srv_model *cur = (srv_model *)srv_slot_acquire(&s->model);
  if (cur)
    snprintf(buf, size, "still serving generation %llu", (unsigned long long)cur->generation);
  else
    snprintf(buf, size, "no model is being served");
  if (cur) srv_ref_release(&cur->ref);
}

int cofi_server_reload(cofi_server *s, cofi_diag *diag) {
  cofi_diag d;
  memset(&d, 0, sizeof d);
  pthread_mutex_lock(&s->reload_lock);
  srv_model *sm;
  uint64_t gen = s->generation + 1;
  int rc = srv_model_load(s->cfg.model_path, gen, s->lease_sig, &sm, &d);
  if (rc == COFI_OK) {
    s->generation = gen;
    srv_slot_swap(&s->model, &sm->ref);
    pthread_mutex_lock(&s->status_lock);
    s->reloads_ok++;
    s->last_reload_error[0] = 0;
    pthread_mutex_unlock(&s->status_lock);
    fprintf(stderr, "cofi serve: reloaded %s (generation %llu, %u users, %u items, checksum %016llx)\n",
            s->cfg.model_path, (unsigned long long)gen, sm->info.n_users, sm->info.n_items,
            (unsigned long long)sm->info.checksum);
    say_storage(s, sm);
  } else {
    pthread_mutex_lock(&s->status_lock);
    s->reloads_failed++;
    snprintf(s->last_reload_error, sizeof s->last_reload_error, "cannot load %s: %s",
             s->cfg.model_path, d.message[0] ? d.message : cofi_error_message(rc));
    pthread_mutex_unlock(&s->status_lock);
    char serving[64];
    describe_serving(s, serving, sizeof serving);
    fprintf(stderr, "cofi serve: reload failed, %s: %s\n", serving, s->last_reload_error);
  }
  pthread_mutex_unlock(&s->reload_lock);
  if (diag) *diag = d;
  return rc;
}

/* ---- lease breaks ----------------------------------------------------------- */

int srv_lease_signal(void) { return SIGRTMIN + 1; }

/*
 * Someone is opening the served file for writing, or truncating it: the
 * kernel holds them until we release our lease, then they may change every
 * byte under the mapping. So, while they wait, read the same (still
 * unchanged) bytes through the leased descriptor into private memory and
 * swap that copy in, under the same generation: to clients nothing changes,
 * and the new file is picked up by the next reload, when the operator says
 * it is complete (the server cannot know when a `cp` has finished). The
 * mapped model is released when its last in-flight request ends; its
 * destroy unmaps, then closes the descriptor, which drops the lease and
 * lets the writer proceed. No request touches the mapping after that.
 *
 * If the copy fails (out of memory, a read error), keeping the mapped model
 * is not an option: the writer goes ahead anyway once the kernel's
 * lease-break-time (45 s by default) has passed, and the mapping would then
 * be truncated under requests (SIGBUS, the whole server gone). So the slot
 * is emptied instead: the lease is released as soon as in-flight requests
 * end, requests get 503 model_unavailable and /ping 503 (a load balancer
 * takes the instance out), and the process keeps running so that a reload
 * (SIGHUP, POST /admin/reload) brings it back once the new file is in
 * place. A server that answers 503 for a while is better than one that
 * dies, or one that keeps a mapping it knows is about to be pulled away.
 */
int srv_lease_broken(cofi_server *s) {
  pthread_mutex_lock(&s->reload_lock);
  srv_model *sm = (srv_model *)srv_slot_acquire(&s->model);
  int rc = COFI_OK;
  /* A signal for another descriptor (an older generation still finishing
   * its requests: it lets go by itself), or one already handled. During a
   * break F_GETLEASE reports the lease type the breaker needs (F_UNLCK),
   * no longer F_RDLCK. */
  if (!sm || sm->storage != SRV_STORAGE_MAPPED || fcntl(sm->lease_fd, F_GETLEASE) == F_RDLCK)
    goto done;
  srv_model *copy;
  cofi_diag d;
  memset(&d, 0, sizeof d);
  rc = srv_model_copy_private(sm, s->cfg.model_path, &copy, &d);
  if (rc == COFI_OK) {
    srv_slot_swap(&s->model, &copy->ref);
    fprintf(stderr,
            "cofi serve: %s is being rewritten in place: now serving a private copy of "
            "generation %llu (checksum %016llx); send SIGHUP or POST /admin/reload once the new "
            "file is complete\n",
            s->cfg.model_path, (unsigned long long)sm->generation,
            (unsigned long long)sm->info.checksum);
  } else {
    srv_slot_clear(&s->model);
    pthread_mutex_lock(&s->status_lock);
    snprintf(s->last_reload_error, sizeof s->last_reload_error,
             "%s was rewritten in place and could not be copied into memory: %s",
             s->cfg.model_path, d.message[0] ? d.message : cofi_error_message(rc));
    pthread_mutex_unlock(&s->status_lock);
    fprintf(stderr,
            "cofi serve: %s; generation %llu released, no model is served (503) until a "
            "reload succeeds (SIGHUP or POST /admin/reload)\n",
            s->last_reload_error, (unsigned long long)sm->generation);
  }
done:
  /* Our own reference last: if no request holds the mapped model, it is
   * destroyed right here and the writer goes on at once. */
  if (sm) srv_ref_release(&sm->ref);
  pthread_mutex_unlock(&s->reload_lock);
  return rc;
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
    return fail_diag(diag, COFI_ERR_IO, "cannot resolve --host '%s': %s", s->cfg.host,
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
    return fail_diag(diag, COFI_ERR_IO, "cannot listen on %s:%u: %s", s->cfg.host,
                     (unsigned)s->cfg.port, strerror(err));
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  s->listen_fd = fd;
  return COFI_OK;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  cofi_server *s = cls;
  if (s->cfg.quiet) return;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  /* MHD quotes the HTML body of its error answers: not useful in a log. */
  char *html = strstr(msg, " ('<");
  if (html) snprintf(html, sizeof msg - (size_t)(html - msg), ")");
  size_t n = strlen(msg);
  while (n && msg[n - 1] == '\n') msg[--n] = 0;
  fprintf(stderr, "cofi serve: libmicrohttpd: %s\n", msg);
}

static struct MHD_Response *static_response(const char *body, const char *type) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
    MHD_destroy_response(r);
    r = NULL;
  }
  return r;
}

static int check_config(const cofi_server_config *c, cofi_diag *diag) {
  if (!c->model_path || !*c->model_path)
    return fail_diag(diag, COFI_ERR_INVALID, "no model file given");
  if (!c->host || !*c->host) return fail_diag(diag, COFI_ERR_INVALID, "no host to bind");
  if (c->max_k < 1 || c->max_k > 1000000)
    return fail_diag(diag, COFI_ERR_INVALID, "max_k must be in 1..1000000");
  if (c->default_k < 1 || c->default_k > c->max_k || c->invocations_k < 1 ||
      c->invocations_k > c->max_k)
    return fail_diag(diag, COFI_ERR_INVALID, "the default k must be in 1..max_k (%u)", c->max_k);
  if (c->max_list < 1 || c->max_list > 1000000)
    return fail_diag(diag, COFI_ERR_INVALID, "max_list must be in 1..1000000");
  if (c->max_id_len < 1) return fail_diag(diag, COFI_ERR_INVALID, "max_id_len must be >= 1");
  if (c->max_body < 1) return fail_diag(diag, COFI_ERR_INVALID, "max_body must be >= 1");
  if (c->threads > 1024) return fail_diag(diag, COFI_ERR_INVALID, "threads must be <= 1024");
  if (c->max_connections < 1)
    return fail_diag(diag, COFI_ERR_INVALID, "max_connections must be >= 1");
  if (c->conn_memory < 4096)
    return fail_diag(diag, COFI_ERR_INVALID, "the connection memory limit must be >= 4096");
  return COFI_OK;
}

static void server_free(cofi_server *s) {
  if (s->daemon) {
    /* Quiesced first (again, harmlessly, after a drain) so that the
     * listening socket is ours to close whatever happened before. */
    MHD_quiesce_daemon(s->daemon);
    MHD_stop_daemon(s->daemon);
  }
  if (s->listen_fd >= 0) close(s->listen_fd);
  srv_slot_clear(&s->model);
  while (s->thread_list) {
    srv_thread *t = s->thread_list;
    s->thread_list = t->next;
    thread_free(t);
  }
  if (s->r_ping) MHD_destroy_response(s->r_ping);
  if (s->r_openapi) MHD_destroy_response(s->r_openapi);
  if (s->r_docs) MHD_destroy_response(s->r_docs);
  if (s->r_nomem) MHD_destroy_response(s->r_nomem);
  free(s->openapi);
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
  if (!s) return fail_diag(diag, COFI_ERR_NOMEM, "out of memory");
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
  atomic_init(&s->draining, false);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  s->threads = cfg->threads ? cfg->threads : (cores > 0 ? (uint32_t)cores : 1);

  srv_model *sm = NULL;
  rc = srv_model_load(cfg->model_path, 1, lease_sig, &sm, diag);
  srv_slot_init(&s->model, sm ? &sm->ref : NULL);
  if (rc != COFI_OK) goto fail;
  s->generation = 1;
  say_storage(s, sm);

  rc = COFI_ERR_NOMEM;
  s->openapi = srv_openapi_json(cfg, diag);
  if (!s->openapi) goto fail;
  s->r_ping = static_response(ping_body, mime_json);
  s->r_openapi = static_response(s->openapi, mime_json);
  s->r_docs = static_response(srv_docs_html, "text/html; charset=utf-8");
  s->r_nomem = static_response(nomem_body, mime_json);
  if (!s->r_ping || !s->r_openapi || !s->r_docs || !s->r_nomem) {
    fail_diag(diag, rc, "out of memory");
    goto fail;
  }

  rc = bind_socket(s, diag);
  if (rc != COFI_OK) goto fail;

  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                   MHD_USE_TURBO | MHD_USE_ERROR_LOG;
  s->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_access, s,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, as MHD wants */
      MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(s->threads > 1 ? s->threads : 0),
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->conn_memory,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_END);
  if (!s->daemon) {
    rc = fail_diag(diag, COFI_ERR_IO, "cannot start the HTTP daemon on %s:%u", cfg->host,
                   (unsigned)s->port);
    goto fail;
  }
  *out = s;
  return COFI_OK;
fail:
  server_free(s);
  return rc;
}

uint16_t cofi_server_port(const cofi_server *s) { return s->port; }

/* Stops accepting; the listening socket stays open until the daemon is
 * stopped (MHD's threads may still hold it), but shut down so that new
 * connections are refused at once instead of waiting in the backlog. */
static void begin_drain(cofi_server *s) {
  atomic_store(&s->draining, true);
  MHD_socket fd = MHD_quiesce_daemon(s->daemon);
  if (fd != MHD_INVALID_SOCKET) shutdown(fd, SHUT_RDWR);
}

void cofi_server_stop(cofi_server *s) {
  if (!s) return;
  begin_drain(s);
  uint64_t deadline = now_ns() + (uint64_t)(s->cfg.drain_s * 1e9);
  while (atomic_load(&s->in_flight) > 0 && now_ns() < deadline) {
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
  int lease_sig = srv_lease_signal();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, lease_sig);
  sigaddset(&set, SIGIO);
  /* Blocked before any thread exists, so MHD's workers inherit the mask
   * and the signals are taken only here, by sigwait: no handler runs, so
   * nothing async-signal-unsafe can happen in one. The lease signal too:
   * its default action would end the process, and answering it means
   * reading a file and swapping models, which only a thread can do. It
   * is blocked before the first model is loaded, so before any lease.
   * SIGIO is what the kernel sends instead when the queue of real-time
   * signals is full; srv_lease_broken checks the lease itself, so taking
   * SIGIO as a lease signal is always right. */
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  cofi_server *s;
  int rc = srv_server_start(cfg, lease_sig, &s, diag);
  if (rc != COFI_OK) return rc;
  {
    srv_model *sm = (srv_model *)srv_slot_acquire(&s->model);
    bool v6 = strchr(cfg->host, ':') != NULL;
    fprintf(stderr,
            "cofi serve: %s: %u users, %u items, %u factors (checksum %016llx)\n"
            "cofi serve: listening on http://%s%s%s:%u with %u threads (docs at /docs)\n",
            cfg->model_path, sm->info.n_users, sm->info.n_items, sm->info.factors,
            (unsigned long long)sm->info.checksum, v6 ? "[" : "", cfg->host, v6 ? "]" : "",
            (unsigned)s->port, s->threads);
    srv_ref_release(&sm->ref);
  }
  for (;;) {
    int sig;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      cofi_server_reload(s, NULL);
      continue;
    }
    if (sig == lease_sig || sig == SIGIO) {
      srv_lease_broken(s);
      continue;
    }
    fprintf(stderr, "cofi serve: %s: finishing %d in-flight requests, then stopping\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", atomic_load(&s->in_flight));
    break;
  }
  begin_drain(s);
  /* Wait for in-flight requests; a second SIGTERM/SIGINT cuts it short. */
  uint64_t deadline = now_ns() + (uint64_t)(cfg->drain_s * 1e9);
  while (atomic_load(&s->in_flight) > 0 && now_ns() < deadline) {
    struct timespec ts = {0, 5000000};
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      fprintf(stderr, "cofi serve: second signal: stopping now\n");
      break;
    }
    if (sig == SIGHUP) cofi_server_reload(s, NULL);
    if (sig == lease_sig || sig == SIGIO) srv_lease_broken(s);
  }
  int left = atomic_load(&s->in_flight);
  if (left > 0) fprintf(stderr, "cofi serve: stopping with %d requests unfinished\n", left);
  server_free(s);
  fprintf(stderr, "cofi serve: stopped\n");
  return COFI_OK;
}

/*
 * http.c — libmicrohttpd glue: connections, request framing, bodies,
 * dispatch through the route table (routes.c), answers, the access log,
 * and the daemon's start and stop.
 *
 * Threads: libmicrohttpd runs a pool of worker threads (epoll, one event
 * loop each); every callback for a connection runs on the thread that owns
 * it. Each worker has its own scratch (srv_thread: a cofi_workspace, result
 * arrays, a metrics shard) created on its first request, so requests do not
 * allocate.
 *
 * One request, in order:
 *   1. on_uri (MHD's URI log callback): the raw request target is copied
 *      before MHD unescapes it in place, the clock starts, and the
 *      connection's context becomes the request's context.
 *   2. on_access, first call: route lookup (404), method check (405 +
 *      Allow); then, answered at once and the connection closed: over
 *      --max-connections (503), ambiguous framing (400/501, see
 *      check_framing), a declared body over --max-body (413).
 *   3. on_access, later calls: body bytes are appended to the connection's
 *      buffer; a chunked body passing --max-body is answered 413 at once
 *      (answer_midway); the last call dispatches to the handler, which
 *      for GET routes is the call right after the first.
 *   4. on_completed: metrics, the access log line, in-flight count.
 * Buffers belong to the connection and are reused by its next request;
 * the response is sent straight from the output buffer (MHD does not copy
 * it), which is safe because a connection handles one request at a time.
 */
#include "srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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
  bool busy;  /* over --max-connections: answered 503, then closed */
  bool close; /* the answer says "Connection: close" (framing errors) */
  const srv_route *rt; /* NULL when no route matched */
  void *pending;       /* a suspended request's work (srv_req.pending) */
  void (*pending_finish)(srv_req *r, void *pending);
  size_t path_len;     /* the decoded path, at the start of work */
  bool has_err;        /* err is the answer (bad path, 404, 405) */
  srv_error err;
  char method[16];
} srv_conn;

static _Thread_local srv_thread *tls_thread;
/* This thread's callback just returned MHD_NO to close a connection that
 * was answered (answer_midway): libmicrohttpd's message about it is noise. */
static _Thread_local bool tls_closing;

static const char nomem_body[] =
    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"the server is out of memory; retry later\"}}";
static const char mime_json[] = "application/json";
static const char ui_csp[] =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

void srv_req_resume(struct MHD_Connection *conn) { MHD_resume_connection(conn); }

uint64_t srv_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
  cofi_server *s = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    int n = atomic_fetch_add(&s->connections, 1) + 1;
    srv_conn *cn = calloc(1, sizeof *cn);
    if (cn) {
      cn->srv = s;
      cn->busy = n > (int)s->cfg.max_connections;
      srv_buf_init(&cn->out);
    }
    *socket_context = cn; /* NULL: its requests are refused (on_access) */
  } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
    atomic_fetch_sub(&s->connections, 1);
    /* A request MHD dropped without a completion notice (a request line
     * cut by the memory limit, a reset) still ends here. */
    if (*socket_context) finish_request(s, c, *socket_context);
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
  cn->t0_ns = srv_now_ns();
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

/* Appends src to line[*o..cap) with every byte that could break a JSON
 * string or a log line (controls, space, '"', '\\', non-ASCII)
 * percent-encoded, cut at max bytes of output with "...". No JSON escaping
 * is then needed. */
static void put_encoded(char *line, size_t *o, size_t cap, const char *src, size_t n,
                        size_t max) {
  static const char hex[] = "0123456789ABCDEF";
  size_t start = *o;
  for (size_t i = 0; i < n; i++) {
    if (*o - start >= max || *o + 6 > cap) {
      memcpy(line + *o, "...", 3);
      *o += 3;
      return;
    }
    unsigned char ch = (unsigned char)src[i];
    if (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
      line[(*o)++] = (char)ch;
    } else {
      line[(*o)++] = '%';
      line[(*o)++] = hex[ch >> 4];
      line[(*o)++] = hex[ch & 15];
    }
  }
}

/* One JSON object per line (JSON Lines) on stderr:
 *   {"time":"2026-12-07T16:23:17.123Z","client":"127.0.0.1:41234",
 *    "method":"GET","target":"/recommend?user_id=1","status":200,"latency_us":1322}
 * time: when the answer was done, UTC, milliseconds; target: the raw
 * request target as received, percent-encoded where needed, cut at 1000
 * bytes. Written with one write(), so lines of different threads never
 * interleave. */
static void access_log(struct MHD_Connection *c, const srv_conn *cn, int status, uint64_t us) {
  char line[1400];
  size_t o = 0;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct tm tm;
  time_t secs = now.tv_sec;
  if (!gmtime_r(&secs, &tm)) memset(&tm, 0, sizeof tm);
  o += strftime(line, 64, "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
  o += (size_t)snprintf(line + o, 32, ".%03ldZ\",\"client\":\"", now.tv_nsec / 1000000);
  char addr[INET6_ADDRSTRLEN + 8] = "-";
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  char host[INET6_ADDRSTRLEN];
  if (sa && sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof host))
      snprintf(addr, sizeof addr, "%s:%u", host, (unsigned)ntohs(in->sin_port));
  } else if (sa && sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host))
      snprintf(addr, sizeof addr, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
  }
  put_encoded(line, &o, sizeof line, addr, strlen(addr), 64);
  memcpy(line + o, "\",\"method\":\"", 12);
  o += 12;
  put_encoded(line, &o, sizeof line, cn->method, strlen(cn->method), 32);
  memcpy(line + o, "\",\"target\":\"", 12);
  o += 12;
  put_encoded(line, &o, sizeof line, cn->uri, cn->uri_len, 1000);
  int w = snprintf(line + o, sizeof line - o, "\",\"status\":%d,\"latency_us\":%llu}\n", status,
                   (unsigned long long)us);
  if (w > 0) o += (size_t)w < sizeof line - o ? (size_t)w : sizeof line - o - 1;
  ssize_t rc = write(STDERR_FILENO, line, o);
  (void)rc;
}

/* The end of a request, however it ended: metrics, the access log line,
 * the in-flight count. Runs once per request (cn->open). */
static void finish_request(cofi_server *s, struct MHD_Connection *c, srv_conn *cn) {
  if (!cn->open) return;
  cn->open = false;
  uint64_t us = (srv_now_ns() - cn->t0_ns) / 1000;
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
  if (s->cfg.access_log) access_log(c, cn, status, us);
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
  if (r->static_response && !atomic_load(&s->draining) && !cn->close)
    return queue(c, cn, r->status, r->static_response);
  if (cn->out.oom) return queue(c, cn, 503, s->r_nomem);
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(cn->out.len, cn->out.p, MHD_RESPMEM_PERSISTENT);
  if (!resp) return queue(c, cn, 503, s->r_nomem);
  bool ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                    r->content_type ? r->content_type : mime_json) == MHD_YES;
  if (r->allow) ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow) == MHD_YES;
  if (r->location)
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location) == MHD_YES;
  if (r->ui_headers) {
    /* The dashboard loads nothing but its own files and this API. */
    ok = ok && MHD_add_response_header(resp, "Content-Security-Policy", ui_csp) == MHD_YES &&
         MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") == MHD_YES &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") == MHD_YES &&
         MHD_add_response_header(resp, "Referrer-Policy", "no-referrer") == MHD_YES;
  }
  if (r->www_authenticate)
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                       r->www_authenticate) == MHD_YES;
  /* While draining, keep-alive connections are told to go away; after a
   * framing error or when busy, this one is closed (MHD closes after an
   * answer that says so, and reads nothing more from it). */
  if (atomic_load(&s->draining) || cn->close)
    ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
  if (cn->busy) ok = ok && MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1") == MHD_YES;
  enum MHD_Result ret = ok ? queue(c, cn, r->status, resp) : queue(c, cn, 503, s->r_nomem);
  MHD_destroy_response(resp);
  return ret;
}

static unsigned method_bit(const char *m) {
  if (!strcmp(m, MHD_HTTP_METHOD_GET)) return SRV_GET;
  if (!strcmp(m, MHD_HTTP_METHOD_HEAD)) return SRV_HEAD;
  if (!strcmp(m, MHD_HTTP_METHOD_POST)) return SRV_POST;
  if (!strcmp(m, MHD_HTTP_METHOD_PUT)) return SRV_PUT;
  if (!strcmp(m, MHD_HTTP_METHOD_DELETE)) return SRV_DELETE;
  return 0;
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
  if (cn->pending) {
    /* Resumed: the work is done, write its answer. */
    void *p = cn->pending;
    cn->pending = NULL;
    cn->pending_finish(&r, p);
  } else if (rt->needs_model && !srv_req_model(&r)) {
    srv_req_model_unavailable(&r);
  } else {
    rt->handle(&r);
  }
  if (r.pending) {
    /* Suspended before the work starts, so that its end (which resumes)
     * can never come first. */
    if (r.model) srv_ref_release(&r.model->ref);
    cn->pending = r.pending;
    cn->pending_finish = r.pending_finish;
    MHD_suspend_connection(c);
    r.pending_start(r.pending);
    return MHD_YES;
  }
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

/* An error answered while the body is being read (a chunked body passing
 * --max-body). libmicrohttpd 0.9.75 queues responses only before the body
 * or after all of it, and reading all of it is what the limit is there to
 * avoid; so the answer is written to the socket here, with "Connection:
 * close", and MHD_NO makes libmicrohttpd close the connection. Nothing
 * else writes to the socket at this point: no response is queued, and
 * this callback runs on the connection's own thread. The answer is a few
 * hundred bytes into an idle socket's send buffer, so one non-blocking
 * send takes it; if it did not, the connection is closed all the same. */
static enum MHD_Result answer_midway(struct MHD_Connection *c, srv_conn *cn, const srv_error *e) {
  cn->status = e->status;
  cn->responded = true;
  cn->out.len = 0;
  cn->out.oom = false;
  srv_buf_error(&cn->out, e);
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci || cn->out.oom) return MHD_NO;
  char head[256];
  int hn = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    e->status, e->status == 413 ? "Content Too Large" : "Error", mime_json,
                    cn->out.len);
  struct iovec iov[2] = {{head, (size_t)hn}, {cn->out.p, cn->out.len}};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t rc;
  do {
    rc = sendmsg(ci->connect_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (rc < 0 && errno == EINTR);
  /* The end of our side: the client sees the answer, then end of file. */
  shutdown(ci->connect_fd, SHUT_WR);
  tls_closing = true; /* libmicrohttpd's "internal error" message is ours */
  return MHD_NO;
}

/* ---- request framing --------------------------------------------------------- */

static enum MHD_Result see_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value) {
  (void)kind;
  srv_framing_add(cls, key, value);
  return MHD_YES;
}

/* framing.c's verdict on every instance of the request's headers (so
 * duplicates are seen). */
static bool check_framing(struct MHD_Connection *c, const char *version, uint64_t *cl,
                          srv_error *err) {
  srv_framing f;
  memset(&f, 0, sizeof f);
  MHD_get_connection_values(c, MHD_HEADER_KIND, see_header, &f);
  return srv_framing_check(&f, version && !strcmp(version, MHD_HTTP_VERSION_1_0), cl, err);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload, size_t *upload_size, void **con_cls) {
  cofi_server *s = cls;
  srv_conn *cn = *con_cls;
  (void)url;
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
     * keep-alive is most of the throughput. Answered now, with the
     * connection closed after the answer: a connection over the limit
     * (503), faulty framing (400/501: nothing after it can be trusted to
     * be a request), and a body declared too large (413, so that it is
     * never uploaded). */
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
    uint64_t cl;
    if (cn->busy) {
      cn->close = true;
      srv_fail(&cn->err, 503, "server_busy",
               "the server has %u connections open (--max-connections); retry shortly",
               s->cfg.max_connections);
      return dispatch(s, c, cn, cn->rt, mb, path, &cn->err);
    }
    if (!check_framing(c, version, &cl, &cn->err)) {
      cn->close = true;
      return dispatch(s, c, cn, cn->rt, mb, path, &cn->err);
    }
    if (cl > s->cfg.max_body) {
      cn->close = true;
      if (!cn->has_err)
        srv_fail(&cn->err, 413, "body_too_large",
                 "the request body is %llu bytes, the limit is %zu (see --max-body)",
                 (unsigned long long)cl, s->cfg.max_body);
      return dispatch(s, c, cn, cn->rt, mb, path, &cn->err);
    }
    size_t want = (size_t)cl;
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
      /* Chunked (a declared length was checked at the first call): answer
       * at once rather than read the rest. */
      cn->too_large = true;
      srv_fail(&cn->err, 413, "body_too_large",
               "the request body is over the limit of %zu bytes (see --max-body)",
               s->cfg.max_body);
      return answer_midway(c, cn, &cn->err);
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

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  cofi_server *s = cls;
  bool expected = tls_closing;
  tls_closing = false;
  if (s->cfg.quiet || expected) return;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  /* MHD quotes the HTML body of its error answers: not useful in a log. */
  char *html = strstr(msg, " ('<");
  if (html) snprintf(html, sizeof msg - (size_t)(html - msg), ")");
  size_t n = strlen(msg);
  while (n && msg[n - 1] == '\n') msg[--n] = 0;
  fprintf(stderr, "cofi serve: libmicrohttpd: %s\n", msg);
}


/* ---- start and stop ---------------------------------------------------------- */

static struct MHD_Response *json_response(const char *body) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, mime_json) != MHD_YES) {
    MHD_destroy_response(r);
    r = NULL;
  }
  return r;
}

int srv_http_start(cofi_server *s, cofi_diag *diag) {
  const cofi_server_config *cfg = &s->cfg;
  s->r_nomem = json_response(nomem_body);
  if (!s->r_nomem) {
    if (diag) snprintf(diag->message, sizeof diag->message, "out of memory");
    return COFI_ERR_NOMEM;
  }
  unsigned busy = cfg->max_connections < SRV_BUSY_SLOTS ? cfg->max_connections : SRV_BUSY_SLOTS;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                   MHD_USE_TURBO | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  s->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_access, s,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, as MHD wants */
      MHD_OPTION_LISTEN_SOCKET, (MHD_socket)s->listen_fd,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(s->threads > 1 ? s->threads : 0),
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections + busy,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->conn_memory,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
      MHD_OPTION_END);
  if (!s->daemon) {
    if (diag)
      snprintf(diag->message, sizeof diag->message, "cannot start the HTTP daemon on %s:%u",
               cfg->host, (unsigned)s->port);
    return COFI_ERR_IO;
  }
  return COFI_OK;
}

/* The listening socket stays open until the daemon is stopped (MHD's
 * threads may still hold it), but is shut down so that new connections are
 * refused at once instead of waiting in the backlog. */
void srv_http_begin_drain(cofi_server *s) {
  atomic_store(&s->draining, true);
  MHD_socket fd = MHD_quiesce_daemon(s->daemon);
  if (fd != MHD_INVALID_SOCKET) shutdown(fd, SHUT_RDWR);
}

void srv_http_free(cofi_server *s) {
  if (s->daemon) {
    /* Quiesced first (again, harmlessly, after a drain) so that the
     * listening socket is ours to close whatever happened before. */
    MHD_quiesce_daemon(s->daemon);
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
  }
  while (s->thread_list) {
    srv_thread *t = s->thread_list;
    s->thread_list = t->next;
    thread_free(t);
  }
  if (s->r_nomem) MHD_destroy_response(s->r_nomem);
  s->r_nomem = NULL;
}

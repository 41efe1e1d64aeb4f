/*
 * srv.h — pieces shared by the files of the HTTP server (prefix srv_):
 * the response buffer and JSON writer, the request parsers (query strings,
 * ID lists, k, JSON bodies), the reference-counted model slot, metrics,
 * the route table and the per-request context handlers work on.
 *
 * Who does what, top to bottom (calls run one way, down this list):
 *   lifecycle.c start, stop and the signal loop of `cofi serve` (run)
 *   signals.c   signal handlers that only wake the signal loop (self-pipe)
 *   http.c      libmicrohttpd glue: connections, framing checks, bodies,
 *               dispatch through the route table, the access log
 *   routes.c    the route table: path, methods, body, handler
 *   queries.c   the endpoints that ask the model (recommend, similar, items)
 *   dashboard.c what the dashboard (/ui/) needs: /explain, title search
 *               (/items?search=), a user's history, the static files
 *   ops.c       the operations endpoints: ping, health, metrics, openapi,
 *               docs, admin/reload
 *   request.c   what handlers use to read the model and answer errors
 *   framing.c   is a request's body length unambiguous (RFC 9112 6.3)
 *   reload.c    model reload and lease breaks, and their status
 *   retrain.c, retrain_routes.c, versions.c (versions.h)
 *               --models-dir: the versions of the model, background
 *               retraining and its check, /admin/models, rollback, retrain
 *   served_model.c
 *               a served model: the cofi_model plus precomputed JSON, and
 *               how it is stored (mapped under a read lease, or private)
 *   refslot.c   the atomically swapped, reference-counted pointer
 *   parse.c     everything that turns request bytes into typed values
 *   metrics.c   per-thread counters and the Prometheus text
 *   openapi.c   the OpenAPI document and the /docs page
 *   buf.c       the growable output buffer and JSON string escaping
 *   online.h    online updates with a store: folded-in users and their
 *               cache, item attributes (hidden, categories), filters,
 *               /popular and /latest (online.c, item_attrs.c,
 *               candidates.c, lists_routes.c, strmap.c, openapi_online.c)
 */
#ifndef COFI_SRV_H
#define COFI_SRV_H

#include "cofi.h"
#include "server.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;
struct MHD_Daemon;
struct MHD_Response;

/* ---- errors answered to clients ---------------------------------------- */

/* An HTTP error answer: status, stable code word, message for people.
 * The message may quote client input (raw bytes, truncated): the JSON
 * writer escapes it. */
typedef struct srv_error {
  int status;
  const char *code;  /* static string, e.g. "unknown_user" */
  char message[384];
} srv_error;

/* Fills e and returns false (so parsers can `return srv_fail(...)`). */
bool srv_fail(srv_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Fills a library-style diagnostic (file may be NULL; line 0) and returns
 * code: the server's start-up and model-directory errors. */
int srv_diag_fail(cofi_diag *diag, int code, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Client input is echoed at most this many bytes, then "...". */
#define SRV_ECHO_MAX 48
#define SRV_ECHO_FMT "'%.*s%s'"
#define SRV_ECHO(s, len)                                                  \
  (int)((len) > SRV_ECHO_MAX ? SRV_ECHO_MAX : (len)), (s),                \
      ((len) > SRV_ECHO_MAX ? "..." : "")

/* ---- output buffer ------------------------------------------------------ */

/* A growable byte buffer. Allocation failure sets oom and turns further
 * writes into no-ops; the caller checks oom once at the end. */
typedef struct srv_buf {
  char *p;
  size_t len, cap;
  bool oom;
} srv_buf;

void srv_buf_init(srv_buf *b);
void srv_buf_free(srv_buf *b);
bool srv_buf_reserve(srv_buf *b, size_t extra);
void srv_buf_put(srv_buf *b, const void *s, size_t n);
#define srv_buf_lit(b, lit) srv_buf_put((b), (lit), sizeof(lit) - 1)
void srv_buf_putc(srv_buf *b, char c);
/* A JSON string, quoted: ", \ and control characters escaped, invalid
 * UTF-8 replaced by U+FFFD so the document is always valid. */
void srv_buf_json_str(srv_buf *b, const char *s, size_t n);
void srv_buf_u64(srv_buf *b, uint64_t v);
/* A float for JSON with 9 significant digits (%.9g: a float32 reads back
 * exactly, and the CLI's --json prints the same), null when not finite
 * (JSON has no NaN). */
void srv_buf_float(srv_buf *b, double v);
/* The text of snprintf(out, 32, "%.9g", v), faster; out holds 32 bytes.
 * Returns the length. */
int srv_format_g9(char *out, double v);
void srv_buf_printf(srv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes {"error": {"code": ..., "message": ...}} (no newline). */
void srv_buf_error(srv_buf *b, const srv_error *e);
/* The same without the outer braces: a member of an enclosing object. */
void srv_buf_error_member(srv_buf *b, const srv_error *e);

/* ---- request parsing ----------------------------------------------------- */

typedef struct srv_span {
  const char *p;
  size_t len;
} srv_span;

static inline bool srv_span_eq(srv_span s, const char *lit) {
  size_t n = __builtin_strlen(lit);
  return s.len == n && __builtin_memcmp(s.p, lit, n) == 0;
}

typedef struct srv_limits {
  uint32_t max_k;      /* k in 1..max_k */
  uint32_t max_list;   /* IDs per list */
  uint32_t max_id_len; /* bytes per ID */
} srv_limits;

/* Percent-decoding of one URL component: %XX is a byte (hex either case),
 * and with plus_space '+' is a space (query strings; not paths). out may
 * equal s (decoding never lengthens). False, with a 400 naming the
 * position, on a malformed escape. */
bool srv_url_decode(const char *s, size_t len, bool plus_space, char *out,
                    size_t *out_len, srv_error *err);

#define SRV_MAX_PARAMS 32
typedef struct srv_param {
  srv_span key, val; /* decoded */
} srv_param;

/* Splits a raw query string (no leading '?') at '&', each pair at its
 * first '=', and decodes keys and values into out (len bytes suffice; out
 * may equal q). Empty pairs are skipped; a key without '=' has an empty
 * value. More than max pairs is a 400. */
bool srv_query_parse(const char *q, size_t len, char *out, srv_param *params,
                     size_t max, size_t *n, srv_error *err);

/* Splits a comma-separated ID list, appending to items[*n..max): a
 * backslash makes the next byte literal ("a\,b" is the one ID "a,b",
 * "a\\b" is "a\b"), as cofi's CLI does. Decoded bytes go to out (len
 * bytes suffice; out may equal s). Empty IDs, too-long IDs, IDs with a
 * NUL byte and more than max IDs are 400s naming `what`. */
bool srv_list_split(const char *s, size_t len, char *out, srv_span *items,
                    size_t max, size_t *n, uint32_t max_id_len,
                    const char *what, srv_error *err);

/* k: decimal digits only, 1..max_k; else a 400 (code invalid_k). */
bool srv_parse_k(const char *s, size_t len, uint32_t max_k, uint32_t *k,
                 srv_error *err);
/* true/false/1/0; else a 400 naming `what`. */
bool srv_parse_bool(const char *s, size_t len, const char *what, bool *v,
                    srv_error *err);
/* An ID: 1..max_id_len bytes, no NUL; else a 400 naming `what`. */
bool srv_check_id(const char *s, size_t len, uint32_t max_id_len,
                  const char *what, srv_error *err);

/* What to recommend, from a query string or a JSON body. Spans point into
 * the decoded query or the JSON document. */
typedef struct srv_rec_query {
  bool has_user;
  srv_span user;
  bool has_liked;
  srv_span *liked;   /* [n_liked], caller's array of max_list */
  size_t n_liked;
  srv_span *exclude; /* [n_exclude], caller's array of max_list */
  size_t n_exclude;
  uint32_t k;
  bool filter_seen;
  bool explain; /* each recommendation gets "because" (explain=1) */
  /* Filters of GET /recommend (online.h): category=C, items=A,B,C (the
   * candidates; q->cands is the caller's array of max_list spans, NULL:
   * items= is refused). */
  bool has_category;
  srv_span category;
  bool has_items;
  srv_span *cands;
  size_t n_cands;
} srv_rec_query;

/* GET /recommend (cold_only false) and /recommend_cold (true): parameters
 * user_id | liked (repeatable), k, filter_seen, exclude (repeatable).
 * Decodes lists in place in the params' value bytes. q->liked and
 * q->exclude must point to arrays of lim->max_list spans. */
bool srv_rec_query_from_params(srv_param *ps, size_t n, const srv_limits *lim,
                               uint32_t default_k, bool cold_only,
                               srv_rec_query *q, srv_error *err);

/* GET /similar_items (id_name "item_id") and /similar_users ("user_id"). */
bool srv_similar_query_from_params(const srv_param *ps, size_t n,
                                   const char *id_name, const srv_limits *lim,
                                   uint32_t default_k, srv_span *id,
                                   uint32_t *k, srv_error *err);

/* Parses a request body as one JSON value (400 invalid_json with the
 * parser's reason, line and column). The caller json_decref()s it. */
json_t *srv_json_parse(const char *body, size_t len, srv_error *err);

/* POST /invocations: {"user_id": ID} or {"liked": [ID...]}, with optional
 * "k", "filter_seen", "exclude". An ID is a string or an integer (written
 * as decimal). Unknown fields, wrong types and both/neither of user_id and
 * liked are 400s. root is modified (integer IDs become strings) and must
 * outlive q. */
bool srv_rec_query_from_json(json_t *root, const srv_limits *lim,
                             uint32_t default_k, srv_rec_query *q,
                             srv_error *err);

/* Most results (users x k) one batch may ask for: about 10 MB of JSON. */
#define SRV_MAX_BATCH_RESULTS 100000u

/* POST /recommend/batch: {"users": [ID...], "k": K, "filter_seen": B}.
 * users: array of lim->max_list spans. Same ownership as above. */
bool srv_batch_from_json(json_t *root, const srv_limits *lim,
                         uint32_t default_k, srv_span *users, size_t *n_users,
                         uint32_t *k, bool *filter_seen, srv_error *err);

/* Constant-time comparison of a presented secret with the expected one
 * (time depends only on the presented length). */
bool srv_secret_eq(const char *given, size_t given_len, const char *expected,
                   size_t expected_len);

/* ---- request framing (framing.c) ---------------------------------------- */

/* What a request's headers say about its body, gathered header by header
 * (every instance: duplicates count). Zero it before the first add. */
typedef struct srv_framing {
  unsigned n_cl, n_te;
  bool cl_bad;      /* not one decimal number ("5, 5", "+5", "", ...) */
  uint64_t cl;      /* the value, when n_cl == 1 and !cl_bad */
  char te[256];     /* the Transfer-Encoding values, joined by ',' */
  size_t te_len;
  bool te_long;     /* more than fits in te: refused */
} srv_framing;

/* Records one request header; only Content-Length and Transfer-Encoding
 * (any case) matter. */
void srv_framing_add(srv_framing *f, const char *name, const char *value);

/* True when the body's length is unambiguous, with *cl the declared length
 * (0 when none, or chunked). Else false with err: 400 bad_framing, or 501
 * unsupported_transfer_coding. http10: the request is HTTP/1.0 (where any
 * Transfer-Encoding is a fault). */
bool srv_framing_check(const srv_framing *f, bool http10, uint64_t *cl, srv_error *err);

/* ---- reference-counted, atomically swapped pointer ---------------------- */

/* An object shared by requests. refs counts holders: the slot's own
 * reference plus one per request using it; destroy runs when it drops to
 * zero, on whichever thread released last. */
typedef struct srv_ref {
  atomic_uint refs;
  void (*destroy)(struct srv_ref *r);
} srv_ref;

/* Readers: acquire (take a reference to the current object), use it,
 * release. Writers: swap in a new object. See refslot.c for why an
 * acquirer never touches a freed object. */
typedef struct srv_slot {
  _Atomic(srv_ref *) cur;
  atomic_uint acquiring; /* readers between loading cur and counting it */
} srv_slot;

/* r->refs must be 1 (the reference the slot takes over). */
void srv_slot_init(srv_slot *s, srv_ref *r);
srv_ref *srv_slot_acquire(srv_slot *s);
void srv_ref_release(srv_ref *r);
/* Installs next (whose reference the slot takes over) and drops the
 * slot's reference to the previous object. */
void srv_slot_swap(srv_slot *s, srv_ref *next);
/* Drops the slot's reference (at shutdown); the slot is empty after. */
void srv_slot_clear(srv_slot *s);

/* ---- a served model ----------------------------------------------------- */

/* Where a served model's bytes live.
 *
 * MAPPED: the file is mapped (cofi_model_open_fd, zero copy) and the
 * server holds a read lease on it (fcntl F_SETLEASE, through lease_fd).
 * A mapping is only safe while nobody rewrites the file in place: the
 * lease makes the kernel tell us (signal srv_lease_signal()) before any
 * process may open the file for writing or truncate it, and holds that
 * process in open() until we let go. The signal loop then switches to a
 * PRIVATE copy (srv_lease_broken) and closing lease_fd lets the writer on.
 *
 * PRIVATE: the file was read into memory (cofi_model_read_fd): used when
 * no lease could be taken (lease_errno says why) and after a lease break.
 * Nothing done to the file can affect it. */
typedef enum srv_storage {
  SRV_STORAGE_MAPPED = 0,
  SRV_STORAGE_PRIVATE = 1,
} srv_storage;

typedef struct srv_model {
  srv_ref ref;
  cofi_model *m;
  cofi_model_info info;
  uint64_t generation;   /* 1 for the first model, +1 per reload */
  char path[4096];       /* the file it was loaded from */
  double loaded_unix;    /* when it was opened */
  srv_storage storage;
  int lease_fd;          /* MAPPED: the leased descriptor, closed (lease
                            released) by destroy, after the unmap; else -1 */
  int lease_errno;       /* PRIVATE at load: why no lease (an errno, or -1
                            when leases were off); 0 otherwise */
  /* Per item, the JSON members `"item_id":"..."` and `,"title":"..."`
   * (empty when the model has no titles), escaped once at load so the hot
   * path copies bytes instead of escaping them. Item i's ID member is
   * item_json[off[2i] .. off[2i+1]), its title member [off[2i+1] ..
   * off[2i+2]). */
  char *item_json;
  size_t *item_json_off; /* [2 * n_items + 1] */
  char *user_json;       /* `"..."`, the quoted user IDs */
  size_t *user_json_off; /* [n_users + 1] */
  /* The title index (GET /items?search=): every item's title (its ID when
   * the model has no titles), ASCII-lowercased, each followed by a NUL, in
   * one buffer scanned with memmem; item i's text starts at
   * title_lc[title_off[i]] (title_off[n_items] is the end). */
  char *title_lc;
  size_t *title_off;     /* [n_items + 1] */
  uint32_t *item_users;  /* [n_items] users who interacted in training */
} srv_model;

/* Opens path, validates it and precomputes the JSON fragments. With
 * lease_sig > 0 it first tries to take a read lease whose breaks are
 * signalled with lease_sig (which must be blocked in every thread and
 * taken by the caller's signal loop): on success the model is MAPPED,
 * else PRIVATE with lease_errno set. lease_sig 0: PRIVATE, no lease tried.
 * The lease is taken before the file is mapped or read, so validation
 * itself reads bytes nobody can change. Errors as cofi_model_open. The
 * result has refs == 1. */
int srv_model_load(const char *path, uint64_t generation, int lease_sig,
                   srv_model **out, cofi_diag *diag);

/* A PRIVATE copy of a MAPPED model (same generation and load time), read
 * through its leased descriptor: while the lease is being broken, the
 * writer waits in open(), so the bytes are still the ones mapped. Refuses
 * (COFI_ERR_CORRUPT) a copy whose checksum differs from the original's.
 * name: for messages. Errors as cofi_model_read_fd; COFI_ERR_INVALID when
 * sm holds no lease. */
int srv_model_copy_private(const srv_model *sm, const char *name,
                           srv_model **out, cofi_diag *diag);

/* Why no lease could be taken, for people (lease_errno of a PRIVATE
 * model). */
const char *srv_lease_reason(int lease_errno);

/* "mapped" or "private". */
const char *srv_storage_name(srv_storage s);

/* ---- reload and leases (reload.c; srv_server_start: lifecycle.c) ------- */

/* The signal that announces a lease break: SIGRTMIN + 1 (computed at run
 * time: the C library reserves the first real-time signals). */
int srv_lease_signal(void);

/* cofi_server_start with leases signalled by lease_sig (0: no leases,
 * every model is read into private memory, which is what
 * cofi_server_start does, since it runs no signal loop). The caller must
 * have blocked lease_sig in every thread, and must call srv_lease_broken
 * whenever it arrives. */
int srv_server_start(const cofi_server_config *cfg, int lease_sig,
                     cofi_server **out, cofi_diag *diag);

/* Loads path and swaps it in (as cofi_server_reload), and makes it what
 * later reloads (SIGHUP, POST /admin/reload) open. A retrain's swap and a
 * rollback go through here. */
int srv_reload_from(cofi_server *s, const char *path, cofi_diag *diag);

/* Why no model is served, or why the last reload failed, for people
 * ("no model loaded" when nothing failed). */
void srv_reload_error(cofi_server *s, char *buf, size_t size);

/* One line on stderr when a model had to be read into private memory
 * because no lease could be taken (once per distinct reason). Called under
 * the reload lock or before any thread runs. */
void srv_say_storage(cofi_server *s, const srv_model *sm);

/* What the signal loop does with the lease signal: if the model being
 * served is MAPPED and its lease is being broken (someone opens the file
 * for writing or truncates it), swap in a PRIVATE copy of the same
 * generation. If the copy fails, the slot is emptied (requests answer 503
 * model_unavailable until a reload succeeds). Either way the mapped model
 * is released once its in-flight requests end, which closes the leased
 * descriptor and lets the writer proceed. COFI_OK when nothing had to be
 * done or the copy is in place; the copy's error otherwise. */
int srv_lease_broken(cofi_server *s);

/* ---- routes and metrics ------------------------------------------------ */

enum {
  SRV_GET = 1,
  SRV_HEAD = 2,
  SRV_POST = 4,
  SRV_PUT = 8,
  SRV_DELETE = 16,
};

typedef enum srv_route_id {
  SRV_R_PING,
  SRV_R_INVOCATIONS,
  SRV_R_HEALTH,
  SRV_R_RECOMMEND,
  SRV_R_RECOMMEND_COLD,
  SRV_R_RECOMMEND_BATCH,
  SRV_R_SIMILAR_ITEMS,
  SRV_R_SIMILAR_USERS,
  SRV_R_ITEMS,
  SRV_R_METRICS,
  SRV_R_OPENAPI,
  SRV_R_DOCS,
  SRV_R_ADMIN_RELOAD,
  SRV_R_EXPLAIN,
  SRV_R_ITEM_SEARCH,
  SRV_R_UI,
  SRV_R_UI_REDIRECT,
  SRV_R_FEEDBACK, /* store_routes.c */
  SRV_R_USERS,
  SRV_R_ADMIN_MODELS, /* retrain_routes.c */
  SRV_R_ADMIN_ROLLBACK,
  SRV_R_ADMIN_RETRAIN,
  SRV_R_POPULAR, /* lists_routes.c */
  SRV_R_LATEST,
  SRV_R_OTHER, /* no route matched */
  SRV_N_ROUTES
} srv_route_id;

struct srv_req;

typedef struct srv_route {
  srv_route_id id;
  const char *path;    /* exact path, or a prefix when prefix is true */
  bool prefix;         /* "/items/" + ID */
  unsigned methods;    /* SRV_GET | SRV_HEAD | SRV_POST | SRV_PUT | SRV_DELETE */
  const char *allow;   /* the Allow header for a 405 */
  bool body;           /* reads a request body */
  bool needs_model;    /* 503 model_unavailable while no model is served */
  void (*handle)(struct srv_req *r);
} srv_route;

extern const srv_route srv_routes[];
extern const size_t srv_n_routes;
/* The route label for metrics ("/recommend", "other"); metrics.c. */
extern const char *const srv_route_names[SRV_N_ROUTES];

/* The route for a decoded path, or NULL. */
const srv_route *srv_route_find(const char *path, size_t len);

/* Status codes tracked one by one; others count as "other". */
#define SRV_STATUS_LIST(X)                                                    \
  X(200) X(301) X(400) X(401) X(403) X(404) X(405) X(413) X(414) X(415) X(431)       \
  X(500) X(501) X(503)
enum {
#define SRV_STATUS_ENUM(c) SRV_S_##c,
  SRV_STATUS_LIST(SRV_STATUS_ENUM)
#undef SRV_STATUS_ENUM
  SRV_S_OTHER,
  SRV_N_STATUS
};

/* Latency histogram bucket bounds, in microseconds (then +Inf). */
#define SRV_N_BUCKETS 14
extern const uint64_t srv_bucket_us[SRV_N_BUCKETS];

/* One shard of counters, written by one thread (relaxed atomics, so a
 * reader summing shards never sees torn values). */
typedef struct srv_metrics_shard {
  atomic_uint_fast64_t requests[SRV_N_ROUTES][SRV_N_STATUS];
  atomic_uint_fast64_t buckets[SRV_N_ROUTES][SRV_N_BUCKETS + 1];
  atomic_uint_fast64_t sum_us[SRV_N_ROUTES];
} srv_metrics_shard;

#define SRV_MAX_SHARDS 128
typedef struct srv_metrics {
  _Atomic(srv_metrics_shard *) shards[SRV_MAX_SHARDS]; /* NULL until set */
  atomic_uint n_shards;
  srv_metrics_shard shared; /* for threads beyond SRV_MAX_SHARDS */
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
/* A new shard for the calling thread (or the shared one). */
srv_metrics_shard *srv_metrics_shard_new(srv_metrics *m);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_observe(srv_metrics_shard *s, srv_route_id route, int status,
                         uint64_t micros);
/* Writes the request counters and latency histograms (Prometheus text). */
void srv_metrics_write(srv_metrics *m, srv_buf *b);

/* ---- per-thread scratch ------------------------------------------------- */

/* One per worker thread: everything a request needs that can be reused,
 * so the hot path allocates nothing. */
typedef struct srv_thread {
  cofi_workspace *ws;
  cofi_scored *top;       /* [max_k] */
  uint32_t *items;        /* [max_list] item indices (liked), sorted */
  uint32_t *order;        /* [max_list] the same in request order */
  bool *printed;          /* [max_list] marks for writing items once */
  uint32_t *exclude;      /* [max_list] item indices */
  srv_span *spans_a;      /* [max_list] */
  srv_span *spans_b;      /* [max_list] */
  float *vec;             /* [COFI_MAX_FACTORS] a folded-in user */
  srv_metrics_shard *metrics;
  uint64_t server_id;     /* which server instance made it */
  struct srv_thread *next;
} srv_thread;

/* ---- the request as handlers see it ------------------------------------- */

typedef struct srv_req {
  cofi_server *srv;
  const cofi_server_config *cfg;
  srv_limits lim;
  srv_thread *th;
  struct MHD_Connection *conn;
  unsigned method;      /* one of SRV_GET ... SRV_DELETE */
  srv_span path;        /* decoded */
  srv_span route_arg;   /* decoded rest of a prefix route ("/items/ID") */
  char *query;          /* raw query string (after '?'), writable */
  size_t query_len;
  const char *body;
  size_t body_len;
  srv_model *model;     /* acquired by srv_req_model, released by http.c */
  srv_buf *out;
  /* The answer: status and headers (static strings). */
  int status;
  const char *content_type;
  const char *allow;
  const char *www_authenticate;
  const char *location;      /* a redirect's target */
  bool ui_headers;           /* the dashboard's: CSP, nosniff, no-cache */
  /* A response prepared once at start (ping, docs, openapi): sent as is. */
  void *static_response;
  /* Set by a handler that answers later (POST /feedback waits for its
   * commit without holding the worker thread): http.c suspends the
   * connection, then calls pending_start(pending), which must arrange for
   * srv_req_resume(conn) once the work is done; the request is then
   * dispatched again and pending_finish(r, pending) writes the answer (and
   * frees pending). */
  void *pending;
  void (*pending_start)(void *pending);
  void (*pending_finish)(struct srv_req *r, void *pending);
} srv_req;

/* Resumes a connection suspended for a pending request (any thread). */
void srv_req_resume(struct MHD_Connection *conn);

/* The current model, acquired once per request. */
srv_model *srv_req_model(srv_req *r);
/* Sets the status and writes the error body. */
void srv_req_error(srv_req *r, const srv_error *e);
/* Convenience: format and answer an error. */
void srv_req_fail(srv_req *r, int status, const char *code, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

/* No model is served: 503 model_unavailable, saying why. */
void srv_req_model_unavailable(srv_req *r);

/* ---- handlers (the route table points at these) ------------------------- */

/* queries.c: answers from the model. */
void srv_h_recommend(srv_req *r);
void srv_h_recommend_cold(srv_req *r);
void srv_h_invocations(srv_req *r);
void srv_h_recommend_batch(srv_req *r);
void srv_h_similar_items(srv_req *r);
void srv_h_similar_users(srv_req *r);
void srv_h_items(srv_req *r);

/* dashboard.c: what the dashboard needs besides the above. */
void srv_h_explain(srv_req *r);
void srv_h_item_search(srv_req *r);
/* GET /users/{id}/history from the model (srv_user_history_model); what
 * srv_h_users calls when no store is attached. */
void srv_h_users_model(srv_req *r);
void srv_h_ui(srv_req *r);
void srv_h_ui_redirect(srv_req *r);
/* GET /users/{id}/history from the model's training matrix: {"user_id",
 * "source": "model", "total", "events": [{"item_id", "title", "value"}]},
 * the largest values first, at most limit. srv_h_users parses the path
 * and the limit and calls this; a store-backed history takes over there
 * when a store is attached (same shape, "source": "store"). */
void srv_user_history_model(srv_req *r, srv_span user, uint32_t limit);
/* Writes [{"item_id", "title", "contribution"}...] for c[0..n) (title
 * when the model has titles): the "because" of explained answers. */
void srv_write_because(srv_buf *b, const srv_model *sm, const cofi_contribution *c, size_t n);
/* Contributions shown per recommendation with explain=1. */
#define SRV_BECAUSE 3
/* store_routes.c: the store routes (docs/serving.md). /items/{id} takes
 * GET (from the store when there is one, else the model: srv_h_items),
 * PUT and DELETE; /users/{id} PUT and DELETE, /users/{id}/history GET. */
void srv_h_feedback(srv_req *r);
/* feedback_fast.c: a POST /feedback body of the common shape read without
 * jansson: true with the events (strings pointing into *text, a copy of
 * the body; free both) when it read every byte exactly as the jansson path
 * would; false (nothing to free) for anything else, which the caller then
 * reads with jansson. The events are not checked yet (IDs, event type). */
bool srv_feedback_fast(const char *body, size_t len, int64_t now, size_t max_events,
                       cofi_store_event **evs, size_t *n, char **text);
void srv_h_items_route(srv_req *r);
void srv_h_users(srv_req *r);

/* ops.c: operations. */
void srv_h_ping(srv_req *r);
void srv_h_health(srv_req *r);
void srv_h_metrics(srv_req *r);
void srv_h_openapi(srv_req *r);
void srv_h_docs(srv_req *r);
void srv_h_admin_reload(srv_req *r);
/* True when the request carries the admin token; else answers 403 (no
 * token configured; `what` names the route) or 401 and returns false. */
bool srv_admin_authorized(srv_req *r, const char *what);

/* retrain_routes.c: the models directory (server/versions.h). */
void srv_h_admin_models(srv_req *r);
void srv_h_admin_rollback(srv_req *r);
void srv_h_admin_retrain(srv_req *r);

/* The prepared answers of ops.c (ping, openapi, docs), made once at start
 * (COFI_ERR_NOMEM with a message) and freed at stop. */
int srv_ops_init(cofi_server *s, cofi_diag *diag);
void srv_ops_free(cofi_server *s);

/* ---- OpenAPI and docs --------------------------------------------------- */

/* The OpenAPI 3 document with the configured limits filled in, as compact
 * JSON text (malloc'd; NULL on failure with a reason in diag). */
char *srv_openapi_json(const cofi_server_config *cfg, cofi_diag *diag);
/* The /docs page (static, self-contained HTML). */
extern const char srv_docs_html[];

/* ---- the store behind the server (writer.c) ----------------------------- */

/* The attached store: one writer thread that owns a connection for writes
 * and commits everything queued in one transaction (group commit), and one
 * mutex-protected connection for reads. A connection that failed with
 * COFI_ERR_STORE is reopened on its next use. */
typedef struct srv_store srv_store;

/* Opens both connections and starts the writer. */
int srv_store_start(const char *url, srv_store **out, cofi_diag *diag);
/* Commits what is queued and stops the writer; later writes fail with
 * COFI_ERR_STORE ("the server is stopping"). Accepts NULL. */
void srv_store_drain(srv_store *st);
/* Drains, closes, frees. Accepts NULL. */
void srv_store_stop(srv_store *st);

/* Appends n checked events: queued, committed with whatever else is
 * queued, then returns the transaction's result. Blocks the caller. */
int srv_store_append(srv_store *st, const cofi_store_event *ev, size_t n, cofi_diag *diag);
/* The same without waiting: done(ctx, rc, diag) runs on the writer thread
 * once the events' transaction ended (or at once when the writer is
 * stopping). ev must stay valid until then. */
typedef void (*srv_store_done_fn)(void *ctx, int rc, const cofi_diag *diag);
void srv_store_append_async(srv_store *st, const cofi_store_event *ev, size_t n,
                            srv_store_done_fn done, void *ctx);
/* Any other write, run by the writer thread on its connection. */
typedef int (*srv_store_op)(cofi_store *s, void *arg, cofi_diag *diag);
int srv_store_write(srv_store *st, srv_store_op op, void *arg, cofi_diag *diag);
/* A read on the read connection (under its mutex). */
int srv_store_read(srv_store *st, srv_store_op op, void *arg, cofi_diag *diag);

/* Prometheus text for the store (events accepted, rejected, commit
 * latency, batch sizes). */
void srv_store_metrics_write(srv_store *st, srv_buf *b);
/* Events committed so far (what --retrain-after counts). */
uint64_t srv_store_events_accepted(srv_store *st);
/* Events refused before reaching the writer (bad input). */
void srv_store_count_rejected(srv_store *st, uint64_t n);

/* ---- new items from their metadata (new_items.c) ------------------------- */

/* Store items the served model has not seen, with vectors from the
 * metadata map (docs/serving.md, "New items"). NULL without a store. */
typedef struct srv_new_items srv_new_items;
/* Creates s->new_items and builds it for the served model (says on stderr
 * how many new items got a vector, or why none can). */
int srv_new_items_start(cofi_server *s, cofi_diag *diag);
void srv_new_items_free(srv_new_items *t);
/* PUT /items/{id} (after the store committed it) and DELETE /items/{id}. */
void srv_new_items_put(cofi_server *s, const srv_model *sm, const cofi_store_item *it);
void srv_new_items_hide(cofi_server *s, const char *id, size_t len);
/* A new item's vector into vec [factors] and the map's mean item vector
 * into center [factors]; false with a 404 in err. */
bool srv_new_items_vector(cofi_server *s, const srv_model *sm, srv_span id, float *vec,
                          float *center, srv_error *err);
/* The k best new items for vec: dot product (recommend) or cosine
 * (similar; with a center, the projection of cofi_similar_items_vector),
 * IDs in skip left out; each with its JSON members copied, so the answer
 * can be written after the table changed. False: out of memory. */
typedef struct srv_new_top {
  size_t n;
  float *score; /* [n], best first */
  char *json;   /* item i: id member [off[2i], off[2i+1]), the rest [.., off[2i+2]) */
  size_t *off;  /* [2n + 1] */
} srv_new_top;
bool srv_new_items_top(cofi_server *s, const srv_model *sm, const float *vec, bool cosine,
                       const float *center, uint32_t k, const srv_span *skip, size_t n_skip,
                       srv_new_top *out);
void srv_new_top_free(srv_new_top *t);
/* {"item_id": ..., "score": ..., "title": ..., "source": "metadata"} */
void srv_new_top_write(srv_buf *b, const srv_new_top *t, size_t i);

/* ---- the server object ------------------------------------------------- */

/* One running server. lifecycle.c makes and frees it; the other files read
 * the fields their comments name. */
struct cofi_server {
  cofi_server_config cfg;
  uint64_t id; /* tells this server's thread state from a previous one's */
  struct MHD_Daemon *daemon; /* http.c */
  int listen_fd;
  uint16_t port;
  uint32_t threads;
  double started_unix;

  srv_slot model;              /* NULL after a failed private copy */
  pthread_mutex_t reload_lock; /* serializes reloads and lease breaks */
  char reload_path[4096];      /* what a reload opens (under reload_lock):
                                  the model file, or the live version's */
  uint64_t generation;
  int lease_sig;  /* signal of lease breaks, 0: no leases (private loads) */
  int lease_said; /* the lease_errno last reported on stderr, 0: none */

  pthread_mutex_t status_lock; /* the reload report below */
  uint64_t reloads_ok, reloads_failed;
  char last_reload_error[700];

  srv_metrics metrics;
  atomic_int in_flight;
  atomic_int connections; /* open connections (http.c) */
  atomic_bool draining;

  pthread_mutex_t threads_lock;
  srv_thread *thread_list; /* every worker's scratch (http.c) */

  char *openapi; /* ops.c */
  struct MHD_Response *r_ping, *r_openapi, *r_docs; /* ops.c */
  struct MHD_Response *r_nomem;                     /* http.c */

  srv_store *store; /* NULL: no --store (writer.c) */
  struct srv_retrain *retrain; /* NULL: no --models-dir (retrain.c) */
  struct srv_online *online;         /* online.h: new events, cached vectors */
  struct srv_item_attrs *item_attrs; /* online.h: hidden, categories */
  srv_new_items *new_items; /* NULL: no --store (new_items.c) */
  struct srv_feed *feed;             /* feed.h: other servers' events */
};

/* ---- signals (signals.c) ----------------------------------------------- */

/* Signals taken since the last srv_signals_wait (several of one kind are
 * counted, and the loop may treat them as one). */
typedef struct srv_signal_events {
  unsigned hup;   /* SIGHUP */
  unsigned term;  /* SIGTERM or SIGINT */
  int term_sig;   /* the last of those two, when term > 0 */
  unsigned lease; /* the lease signal or SIGIO */
} srv_signal_events;

/* Installs handlers for SIGHUP, SIGTERM, SIGINT, SIGIO and lease_sig (if
 * > 0) for the rest of the process: from then on no thread takes them with
 * their default action; each only wakes srv_signals_wait. Unblocks them in
 * the calling thread. 0 or an errno. Call again to add a lease signal. */
int srv_signals_install(int lease_sig);

/* Waits up to timeout_ms (-1: no limit, 0: just look) for signals and
 * returns what arrived since the last call (true if anything did). Meant
 * for one thread, the signal loop. */
bool srv_signals_wait(int timeout_ms, srv_signal_events *ev);

/* ---- the HTTP layer (http.c) --------------------------------------------- */

/* Connections accepted beyond --max-connections only to be answered 503
 * server_busy at once (then closed): at most this many, or max_connections
 * if smaller. Beyond those, libmicrohttpd stops accepting and new
 * connections wait in the kernel's listen backlog. */
#define SRV_BUSY_SLOTS 64u

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t srv_now_ns(void);

/* Starts libmicrohttpd's threads on s->listen_fd. COFI_ERR_IO or
 * COFI_ERR_NOMEM with a message in diag. */
int srv_http_start(cofi_server *s, cofi_diag *diag);
/* Stops accepting (new connections are refused at once) and makes every
 * later answer carry "Connection: close". */
void srv_http_begin_drain(cofi_server *s);
/* Stops the daemon (after quiescing it) and frees the threads' scratch and
 * the HTTP layer's responses. Safe on a server whose start failed. */
void srv_http_free(cofi_server *s);

#endif

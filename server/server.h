/*
 * server.h — the HTTP server behind `cofi serve`, as the CLI sees it: a
 * configuration struct with defaults, and start / reload / stop / run.
 *
 * The server is built on libmicrohttpd (its own thread pool, epoll) and
 * jansson (request bodies). One model is served at a time; it sits behind
 * an atomically swapped, reference-counted pointer so that a reload never
 * drops a request: in-flight requests finish on the model they started
 * with, and a model is closed when its last request releases it.
 *
 * Ownership: the config (and the strings it points to) must stay valid
 * until cofi_server_stop returns. Errors follow cofi.h: COFI_OK or a
 * negative cofi_error code, with a message in the cofi_diag.
 */
#ifndef COFI_SERVER_H
#define COFI_SERVER_H

#include "cofi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cofi_server_config {
  const char *model_path;   /* model file, reopened on reload */
  const char *host;         /* address to bind, numeric or a name */
  uint16_t port;            /* 0: an ephemeral port (see cofi_server_port) */
  uint32_t threads;         /* worker threads, 0 = one per core */
  uint32_t max_k;           /* largest k a request may ask for */
  uint32_t default_k;       /* k of GET requests without one */
  uint32_t invocations_k;   /* k of /invocations without one (seed: 5) */
  uint32_t max_list;        /* most IDs in liked, exclude or a batch */
  uint32_t max_id_len;      /* longest ID in bytes */
  size_t max_body;          /* largest request body in bytes (else 413) */
  uint32_t max_connections; /* concurrent connections; more get a fast 503
                             * (up to SRV_BUSY_SLOTS more; beyond that
                             * they wait in the kernel's backlog) */
  uint32_t timeout_s;       /* idle seconds before a connection is closed */
  size_t conn_memory;       /* per-connection memory for the request line
                             * and headers; larger requests get 414/431 */
  double drain_s;           /* longest wait for in-flight requests on stop */
  const char *admin_token;  /* NULL: POST /admin/reload answers 403 */
  bool access_log;          /* one JSON line per request on stderr */
  bool quiet;               /* no libmicrohttpd messages on stderr */
  /* The store (docs/store.md): NULL, none. With a store, model_path may be
   * NULL (no model yet: the personalized routes answer 503
   * model_unavailable) and the write routes (POST /feedback, PUT/DELETE
   * /items/{id} and /users/{id}) are on. */
  const char *store_url;
  /* Bearer token for the write routes; NULL: writes are open, which is
   * refused at start unless the server listens on loopback only. */
  const char *api_token;
  /* Event types POST /feedback accepts (the training table); NULL: watch,
   * like, complete. Only the names matter here. */
  const cofi_event_weight *event_weights;
  size_t n_event_weights;
  /* Versions and background retraining (docs/serving.md, "Retraining and
   * versions"); models_dir NULL: off. Needs store_url. */
  const char *models_dir;   /* DIR/v000001.cofi ... and DIR/manifest.json */
  double retrain_every_s;   /* retrain this often; 0: no schedule */
  uint64_t retrain_after;   /* retrain after this many accepted events; 0: off */
  uint32_t keep_versions;   /* versions kept in DIR (default 5, >= 2) */
  uint32_t retrain_threads; /* training threads (default 1) */
  double retrain_margin;    /* a new model is swapped in when its Recall@10
                             * on the newest events is >= the live model's
                             * minus this (default 0.02; negative: it must
                             * beat the live one by that much) */
  /* Online updates with a store (docs/serving.md): most users whose
   * folded-in vectors are cached (0: none), and how long a cached vector
   * is used before it is folded in again (0: until evicted). */
  uint32_t online_cache_users;
  double online_cache_ttl_s;
  /* With a store: the map giving store items the model has not seen a
   * vector from their categories (a cofi_metadata_map_kind; default
   * 0, ridge). docs/serving.md, "New items". */
  int metadata_map;
  /* With a store: poll it this often (seconds) for events committed by
   * other servers sharing it (docs/serving.md, "Replicas and the event
   * feed"); 0: off. Default 1. */
  double feed_interval_s;
} cofi_server_config;

cofi_server_config cofi_server_config_default(void);

typedef struct cofi_server cofi_server;

/* Opens the model, binds the socket and starts the worker threads.
 * Models loaded this way (and by cofi_server_reload on such a server) are
 * read into private memory, not mapped: mapping is safe only under a read
 * lease whose break someone answers, and only cofi_server_run's signal
 * loop does (see served_model.c). So a rewrite of the file in place never
 * affects an embedding program either.
 * Errors: the model-opening codes of cofi_model_open, COFI_ERR_IO (cannot
 * bind or listen), COFI_ERR_INVALID (bad config), COFI_ERR_NOMEM. */
int cofi_server_start(const cofi_server_config *cfg, cofi_server **out,
                      cofi_diag *diag);

/* The bound port (useful after asking for port 0). */
uint16_t cofi_server_port(const cofi_server *s);

/* Reopens cfg->model_path, validates it and swaps it in. On failure the
 * old model keeps serving and the error is returned (and shown by
 * /health). Thread-safe; reloads are serialized. */
int cofi_server_reload(cofi_server *s, cofi_diag *diag);

/* Graceful stop: stops accepting, lets in-flight requests finish (at most
 * cfg->drain_s seconds), stops the threads and frees everything. Accepts
 * NULL. */
void cofi_server_stop(cofi_server *s);

/* The whole life of `cofi serve`: start, print where it listens, then wait
 * in the calling thread for signals (SIGHUP: reload; SIGTERM or SIGINT:
 * graceful stop; a second one during the drain stops at once). Installs
 * handlers for those signals (and the lease-break signal) for the rest of
 * the process, so that no thread, whoever created it, ever takes them with
 * their default action (server/signals.c). Returns COFI_OK after a clean
 * stop. */
int cofi_server_run(const cofi_server_config *cfg, cofi_diag *diag);

#endif

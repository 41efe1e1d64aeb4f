/*
 * cmd_serve.c — `cofi serve`: serve a model over HTTP (server/server.h).
 *
 * Two ways to start:
 *   cofi serve MODEL [options]   binds 127.0.0.1:8080 unless told otherwise
 *   cofi serve [options]         SageMaker mode: the model is
 *                                $SM_MODEL_DIR/model.cofi (default directory
 *                                /opt/ml/model; when model.cofi is absent,
 *                                the directory's only *.cofi file), bound to
 *                                0.0.0.0 on $SAGEMAKER_BIND_TO_PORT or 8080.
 * SageMaker starts a container as `docker run IMAGE serve`; the image's
 * entry point is `cofi`, so that is `cofi serve` with no model. A lone
 * "serve" argument (an entry point of `cofi serve`) means the same.
 */
#include "cli.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage_text[] =
    "usage: cofi serve [MODEL] [options]\n"
    "\n"
    "Serves MODEL over HTTP/1.1 + JSON. Without MODEL (SageMaker mode) it loads\n"
    "$SM_MODEL_DIR/model.cofi (directory default /opt/ml/model; if model.cofi is\n"
    "absent, the directory's only *.cofi file) and listens on 0.0.0.0, port\n"
    "$SAGEMAKER_BIND_TO_PORT or 8080.\n"
    "\n"
    "options:\n"
    "  --host ADDR             address to bind (default 127.0.0.1; SageMaker mode 0.0.0.0)\n"
    "  --port N                port (default 8080; 0 picks a free one, printed at start)\n"
    "  --threads N             worker threads (default: one per core)\n"
    "  --max-k N               largest k a request may ask for (default 1000)\n"
    "  --default-k N           k when a GET request gives none (default 10)\n"
    "  --max-list N            most IDs in liked, exclude or a batch (default 1000)\n"
    "  --max-id-len BYTES      longest ID (default 512)\n"
    "  --max-body BYTES        largest request body, K/M suffixes allowed (default 1M; 413 beyond)\n"
    "  --max-header-bytes BYTES  memory per connection for the request line and headers\n"
    "                          (default 32K; 414/431 beyond)\n"
    "  --max-connections N     concurrent connections (default 1024); more get 503\n"
    "  --timeout SECONDS       idle connection timeout (default 30)\n"
    "  --drain-timeout SECONDS on SIGTERM, longest wait for in-flight requests (default 25)\n"
    "  --admin-token TOKEN     enable POST /admin/reload with Authorization: Bearer TOKEN\n"
    "  --admin-token-file FILE the same, the token read from FILE (or set $COFI_ADMIN_TOKEN)\n"
    "  --online-cache-users N  with --store: cache the folded-in vectors of at most N users\n"
    "                          with new events (default 100000, 0: none; docs/serving.md)\n"
    "  --online-cache-ttl S    seconds a cached vector is used before it is folded in again\n"
    "                          (default 60, 0: until evicted)\n"
    "  --feed-interval S       with --store: poll the store every S seconds for events other\n"
    "                          servers committed (default 1, 0: off; docs/serving.md)\n"
    "  --store URL             attach a store (sqlite:PATH or postgresql://...; docs/store.md):\n"
    "                          POST /feedback, PUT/GET/DELETE /items/{id}, PUT/GET/DELETE\n"
    "                          /users/{id}, GET /users/{id}/history. MODEL is then optional:\n"
    "                          without one the other routes answer 503 until a reload loads it.\n"
    "  --metadata-map ridge|mean  with --store: how store items the model has not seen get a\n"
    "                          vector from their categories (default ridge; docs/serving.md)\n"
    "  --api-token-file FILE   token for the store's write routes (Authorization: Bearer TOKEN),\n"
    "                          read from FILE (or set $COFI_API_TOKEN); required when --host is\n"
    "                          not a loopback address\n"
    "  --event-weights watch=1,like=2,complete=3\n"
    "                          the event types POST /feedback accepts (the training table)\n"
    "  --models-dir DIR        versions of the model in DIR (v000001.cofi, ..., manifest.json),\n"
    "                          background retraining from the store, GET /admin/models,\n"
    "                          POST /admin/rollback and /admin/retrain (needs --store; MODEL,\n"
    "                          when given, becomes a version; without it the live one is served)\n"
    "  --retrain-every DURATION  retrain this often (90s, 30m, 1h, 2d; default: never)\n"
    "  --retrain-after N       retrain after N events accepted by POST /feedback (default: off)\n"
    "  --keep K                versions kept in DIR (default 5, at least 2)\n"
    "  --retrain-threads N     threads of a retrain, which runs at nice +10 (default 1)\n"
    "  --retrain-margin X      swap a new model in only if its Recall@10 on the newest events\n"
    "                          the live model has not seen is >= the live model's minus X\n"
    "                          (default 0.02; negative: it must beat the live one by -X)\n"
    "  --access-log            one JSON line per request on stderr (time, client, method,\n"
    "                          target, status, latency); off by default\n"
    "  --quiet                 no libmicrohttpd messages on stderr\n"
    "\n"
    "Signals: SIGHUP reloads MODEL (a bad file leaves the old model serving);\n"
    "SIGTERM/SIGINT stop accepting, finish in-flight requests and exit 0.\n"
    "API reference: GET /docs or /openapi.json on the running server, docs/serving.md.\n"
    "Dashboard: /ui/ on the running server (model, users, items, try it, live).\n";

/* BYTES with an optional K, M or G suffix (powers of 1024, "KiB"/"KB"
 * spellings too). */
static bool parse_bytes(const char *flag, const char *s, size_t min, size_t *out) {
  char *end;
  errno = 0;
  if (!*s || *s < '0' || *s > '9') goto bad;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) goto bad;
  unsigned long long mul = 1;
  if (*end == 'k' || *end == 'K') mul = 1ull << 10;
  else if (*end == 'm' || *end == 'M') mul = 1ull << 20;
  else if (*end == 'g' || *end == 'G') mul = 1ull << 30;
  if (mul > 1) {
    end++;
    if (*end == 'i') end++;
    if (*end == 'B' || *end == 'b') end++;
  }
  if (*end || v > (unsigned long long)SIZE_MAX / mul || v * mul < min) goto bad;
  *out = (size_t)(v * mul);
  return true;
bad:
  cli_usage_error("serve", "%s: expected a size in bytes of at least %zu (K, M, G suffixes allowed), got '%s'",
                  flag, min, s);
  return false;
}

/* DURATION: a number of seconds with an optional unit s, m, h or d
 * ("90s", "30m", "1h", "1.5h"); at least 1 second, at most 365 days. */
static bool parse_duration(const char *flag, const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  double mul = 1;
  if (end != s) {
    if (*end == 's') end++;
    else if (*end == 'm') mul = 60, end++;
    else if (*end == 'h') mul = 3600, end++;
    else if (*end == 'd') mul = 86400, end++;
  }
  if (end == s || *end || errno || !(v * mul >= 1 && v * mul <= 365 * 86400.0)) {
    cli_usage_error("serve", "%s: expected a duration from 1s to 365d such as 90s, 30m, 1h or 2d, got '%s'",
                    flag, s);
    return false;
  }
  *out = v * mul;
  return true;
}

static bool read_token_file_as(const char *flag, const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f) {
    cli_usage_error("serve", "%s: cannot open %s: %s", flag, path, strerror(errno));
    return false;
  }
  bool ok = fgets(buf, (int)size, f) != NULL;
  fclose(f);
  size_t n = ok ? strcspn(buf, "\r\n") : 0;
  if (ok) buf[n] = 0;
  if (!ok || n == 0) {
    cli_usage_error("serve", "%s: %s has no token on its first line", flag, path);
    return false;
  }
  return true;
}

static bool read_token_file(const char *path, char *buf, size_t size) {
  return read_token_file_as("--admin-token-file", path, buf, size);
}

/* SageMaker mode: the model file inside the model directory. */
static bool sagemaker_model(char *path, size_t size) {
  const char *dir = getenv("SM_MODEL_DIR");
  if (!dir || !*dir) dir = "/opt/ml/model";
  struct stat st;
  snprintf(path, size, "%s/model.cofi", dir);
  if (stat(path, &st) == 0) return true;
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr,
            "cofi serve: no MODEL given and the SageMaker model directory %s cannot be read: %s "
            "(give a model file, or set SM_MODEL_DIR)\n",
            dir, strerror(errno));
    return false;
  }
  size_t found = 0;
  char first[512] = "", second[512] = "";
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n > 5 && !strcmp(e->d_name + n - 5, ".cofi")) {
      if (found == 0) snprintf(first, sizeof first, "%s", e->d_name);
      else if (found == 1) snprintf(second, sizeof second, "%s", e->d_name);
      found++;
    }
  }
  closedir(d);
  if (found == 1) {
    snprintf(path, size, "%s/%s", dir, first);
    return true;
  }
  if (found == 0)
    fprintf(stderr, "cofi serve: no MODEL given and %s has no model.cofi (nor any *.cofi file)\n", dir);
  else
    fprintf(stderr,
            "cofi serve: no MODEL given and %s has no model.cofi but %zu *.cofi files (%s, %s, ...): "
            "name the one to serve model.cofi\n",
            dir, found, first, second);
  return false;
}

int cmd_serve(int argc, char **argv) {
  cofi_server_config cfg = cofi_server_config_default();
  cli_args a;
  cli_args_init(&a, "serve", argc, argv);
  const char *model = NULL, *v, *host = NULL;
  bool has_port = false;
  static char token_buf[1024];
  static char model_buf[4096];
  const char *env_token = getenv("COFI_ADMIN_TOKEN");
  if (env_token && *env_token) cfg.admin_token = env_token;
  static char api_token_buf[1024];
  static cli_data_opts weights;
  cli_data_opts_init(&weights);
  const char *retrain_flag = NULL; /* a retraining flag given, for the check below */
  const char *env_api = getenv("COFI_API_TOKEN");
  if (env_api && *env_api) cfg.api_token = env_api;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      fputs(usage_text, stdout);
      return CLI_EXIT_OK;
    } else if (cli_opt(&a, "--host", &v)) {
      host = v;
    } else if (cli_opt(&a, "--port", &v)) {
      uint32_t p;
      if (!cli_parse_u32("serve", "--port", v, 0, 65535, &p)) return CLI_EXIT_USAGE;
      cfg.port = (uint16_t)p;
      has_port = true;
    } else if (cli_opt(&a, "--threads", &v)) {
      if (!cli_parse_u32("serve", "--threads", v, 1, 1024, &cfg.threads)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--max-k", &v)) {
      if (!cli_parse_u32("serve", "--max-k", v, 1, 1000000, &cfg.max_k)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--default-k", &v)) {
      if (!cli_parse_u32("serve", "--default-k", v, 1, 1000000, &cfg.default_k)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--max-list", &v)) {
      if (!cli_parse_u32("serve", "--max-list", v, 1, 1000000, &cfg.max_list)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--max-id-len", &v)) {
      if (!cli_parse_u32("serve", "--max-id-len", v, 1, 1u << 20, &cfg.max_id_len)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--max-body", &v)) {
      if (!parse_bytes("--max-body", v, 1, &cfg.max_body)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--max-header-bytes", &v)) {
      if (!parse_bytes("--max-header-bytes", v, 4096, &cfg.conn_memory)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--max-connections", &v)) {
      if (!cli_parse_u32("serve", "--max-connections", v, 1, 1000000, &cfg.max_connections))
        return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--timeout", &v)) {
      if (!cli_parse_u32("serve", "--timeout", v, 0, 86400, &cfg.timeout_s)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--drain-timeout", &v)) {
      if (!cli_parse_double("serve", "--drain-timeout", v, 0, 3600, &cfg.drain_s)) return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--admin-token", &v)) {
      if (!*v) return cli_usage_error("serve", "--admin-token: the token is empty");
      cfg.admin_token = v;
    } else if (cli_opt(&a, "--admin-token-file", &v)) {
      if (!read_token_file(v, token_buf, sizeof token_buf)) return CLI_EXIT_USAGE;
      cfg.admin_token = token_buf;
    } else if (cli_opt(&a, "--store", &v)) {
      if (!*v) return cli_usage_error("serve", "--store: the URL is empty");
      cfg.store_url = v;
    } else if (cli_opt(&a, "--online-cache-users", &v)) {
      if (!cli_parse_u32("serve", "--online-cache-users", v, 0, 100000000, &cfg.online_cache_users))
        return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--online-cache-ttl", &v)) {
      if (!cli_parse_double("serve", "--online-cache-ttl", v, 0, 86400 * 365.0, &cfg.online_cache_ttl_s))
        return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--metadata-map", &v)) {
      int kind = cofi_metadata_map_kind_parse(v, strlen(v));
      if (kind < 0) return cli_usage_error("serve", "--metadata-map: expected ridge or mean, got '%s'", v);
      cfg.metadata_map = kind;
    } else if (cli_opt(&a, "--feed-interval", &v)) {
      if (!cli_parse_double("serve", "--feed-interval", v, 0, 3600, &cfg.feed_interval_s))
        return CLI_EXIT_USAGE;
    } else if (cli_opt(&a, "--api-token-file", &v)) {
      if (!read_token_file_as("--api-token-file", v, api_token_buf, sizeof api_token_buf))
        return CLI_EXIT_USAGE;
      cfg.api_token = api_token_buf;
    } else if (cli_opt(&a, "--event-weights", &v)) {
      if (!cli_parse_event_weights("serve", v, &weights)) return CLI_EXIT_USAGE;
      cfg.event_weights = weights.read.event_weights;
      cfg.n_event_weights = weights.read.n_event_weights;
    } else if (cli_opt(&a, "--models-dir", &v)) {
      if (!*v) return cli_usage_error("serve", "--models-dir: the path is empty");
      cfg.models_dir = v;
    } else if (cli_opt(&a, "--retrain-every", &v)) {
      if (!parse_duration("--retrain-every", v, &cfg.retrain_every_s)) return CLI_EXIT_USAGE;
      retrain_flag = "--retrain-every";
    } else if (cli_opt(&a, "--retrain-after", &v)) {
      if (!cli_parse_u64("serve", "--retrain-after", v, &cfg.retrain_after)) return CLI_EXIT_USAGE;
      if (cfg.retrain_after == 0) return cli_usage_error("serve", "--retrain-after: N must be >= 1");
      retrain_flag = "--retrain-after";
    } else if (cli_opt(&a, "--keep", &v)) {
      if (!cli_parse_u32("serve", "--keep", v, 2, 100000, &cfg.keep_versions)) return CLI_EXIT_USAGE;
      retrain_flag = "--keep";
    } else if (cli_opt(&a, "--retrain-threads", &v)) {
      if (!cli_parse_u32("serve", "--retrain-threads", v, 1, 1024, &cfg.retrain_threads))
        return CLI_EXIT_USAGE;
      retrain_flag = "--retrain-threads";
    } else if (cli_opt(&a, "--retrain-margin", &v)) {
      if (!cli_parse_double("serve", "--retrain-margin", v, -1, 1, &cfg.retrain_margin))
        return CLI_EXIT_USAGE;
      retrain_flag = "--retrain-margin";
    } else if (cli_flag(&a, "--access-log")) {
      cfg.access_log = true;
    } else if (cli_flag(&a, "--quiet")) {
      cfg.quiet = true;
    } else if (!model && cli_positional(&a, &v)) {
      model = v;
    } else {
      return cli_unknown(&a);
    }
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (retrain_flag && !cfg.models_dir)
    return cli_usage_error("serve", "%s needs --models-dir DIR (and --store URL)", retrain_flag);
  if (cfg.models_dir && !cfg.store_url)
    return cli_usage_error("serve", "--models-dir needs --store URL: retraining reads the store's events");
  if (cfg.default_k > cfg.max_k)
    return cli_usage_error("serve", "--default-k (%u) is larger than --max-k (%u)", cfg.default_k, cfg.max_k);
  if (cfg.invocations_k > cfg.max_k) cfg.invocations_k = cfg.max_k;

  /* `serve` as the model argument is SageMaker's container argument (an
   * entry point of `cofi serve`), unless a file has that name. */
  struct stat st;
  if (model && !strcmp(model, "serve") && stat(model, &st) != 0) model = NULL;
  if (!model && !cfg.store_url) {
    if (!sagemaker_model(model_buf, sizeof model_buf)) return CLI_EXIT_MODEL;
    model = model_buf;
    cfg.host = "0.0.0.0";
    const char *p = getenv("SAGEMAKER_BIND_TO_PORT");
    if (p && *p && !has_port) {
      uint32_t port;
      if (!cli_parse_u32("serve", "SAGEMAKER_BIND_TO_PORT", p, 1, 65535, &port)) return CLI_EXIT_USAGE;
      cfg.port = (uint16_t)port;
    }
  }
  if (host) cfg.host = host;
  cfg.model_path = model;

  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = cofi_server_run(&cfg, &d);
  if (rc != COFI_OK) {
    bool model_error = rc == COFI_ERR_NOT_MODEL || rc == COFI_ERR_VERSION || rc == COFI_ERR_CORRUPT ||
                       (rc == COFI_ERR_IO && d.file[0]);
    if (cfg.store_url && rc == COFI_ERR_STORE) model_error = false;
    return cli_diag_error("serve", model_error ? "cannot load the model" : "cannot start", rc, &d);
  }
  return CLI_EXIT_OK;
}

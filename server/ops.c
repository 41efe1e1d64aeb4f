/*
 * ops.c — the endpoints for operators and machines rather than for
 * recommendations: /ping (SageMaker's health check), /health (model
 * metadata and reload status), /metrics (Prometheus), /openapi.json and
 * /docs (prepared once at start and sent as is), POST /admin/reload.
 */
#include "srv.h"
#include "versions.h"
#include "online.h"
#include "feed.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char ping_body[] = "{\"status\":\"ok\"}";

static struct MHD_Response *static_response(const char *body, const char *type) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES) {
    MHD_destroy_response(r);
    r = NULL;
  }
  return r;
}

int srv_ops_init(cofi_server *s, cofi_diag *diag) {
  s->openapi = srv_openapi_json(&s->cfg, diag);
  if (!s->openapi) return COFI_ERR_NOMEM;
  s->r_ping = static_response(ping_body, "application/json");
  s->r_openapi = static_response(s->openapi, "application/json");
  s->r_docs = static_response(srv_docs_html, "text/html; charset=utf-8");
  if (!s->r_ping || !s->r_openapi || !s->r_docs) {
    if (diag) snprintf(diag->message, sizeof diag->message, "out of memory");
    return COFI_ERR_NOMEM;
  }
  return COFI_OK;
}

void srv_ops_free(cofi_server *s) {
  if (s->r_ping) MHD_destroy_response(s->r_ping);
  if (s->r_openapi) MHD_destroy_response(s->r_openapi);
  if (s->r_docs) MHD_destroy_response(s->r_docs);
  free(s->openapi);
  s->r_ping = s->r_openapi = s->r_docs = NULL;
  s->openapi = NULL;
}

void srv_h_ping(srv_req *r) {
  r->static_response = r->srv->r_ping;
  srv_buf_lit(r->out, ping_body);
}

void srv_h_openapi(srv_req *r) {
  r->static_response = r->srv->r_openapi;
  srv_buf_put(r->out, r->srv->openapi, strlen(r->srv->openapi));
}

void srv_h_docs(srv_req *r) {
  r->static_response = r->srv->r_docs;
  r->content_type = "text/html; charset=utf-8";
  srv_buf_put(r->out, srv_docs_html, strlen(srv_docs_html));
}

/* The ISO 8601 UTC form of a Unix time, false when it is not a date of
 * the years 1970..9999: a model file's header can hold any 64-bit value,
 * and neither a cast to time_t nor gmtime_r may be trusted with it. */
static bool iso_time(char *buf, size_t size, uint64_t unix_s) {
  if (unix_s > 253402300799u) return false; /* 9999-12-31T23:59:59Z */
  time_t t = (time_t)unix_s;
  struct tm tm;
  return gmtime_r(&t, &tm) && strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

/* A time as a JSON string, or null when it is no date (see iso_time). */
static void put_time(srv_buf *b, uint64_t unix_s) {
  char when[32];
  if (iso_time(when, sizeof when, unix_s))
    srv_buf_printf(b, "\"%s\"", when);
  else
    srv_buf_lit(b, "null");
}

/* The members describing a model (no braces). */
static void write_model_members(srv_buf *b, const cofi_server *s, const srv_model *sm) {
  const cofi_model_info *in = &sm->info;
  srv_buf_lit(b, "\"path\":");
  srv_buf_json_str(b, sm->path, strlen(sm->path));
  srv_buf_printf(b,
                 ",\"generation\":%llu,\"users\":%u,\"items\":%u,\"factors\":%u,"
                 "\"interactions\":%llu,\"trained_at\":",
                 (unsigned long long)sm->generation, in->n_users, in->n_items, in->factors,
                 (unsigned long long)in->nnz);
  put_time(b, in->created_unix);
  srv_buf_lit(b, ",\"loaded_at\":");
  put_time(b, (uint64_t)sm->loaded_unix);
  srv_buf_lit(b, ",\"train_seconds\":");
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
  srv_buf_printf(b, "],\"params\":{\"model\":\"%s\",", cofi_model_kind_name((int)p->model));
  if (p->model == COFI_MODEL_EASE) {
    srv_buf_lit(b, "\"lambda\":");
    srv_buf_float(b, p->lambda);
    srv_buf_putc(b, ',');
  } else if (p->model == COFI_MODEL_ITEMKNN) {
    srv_buf_printf(b, "\"knn_weighting\":\"%s\",\"neighbors\":%u,",
                   cofi_knn_weighting_name((int)p->knn_weighting), p->neighbors);
  }
  srv_buf_printf(b, "\"factors\":%u,\"regularization\":", p->factors);
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

void srv_h_health(srv_req *r) {
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
    srv_reload_error(s, why, sizeof why);
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
  srv_buf_putc(b, '}');
  srv_retrain_health(s, b);
  srv_buf_printf(b, ",\"server\":{\"version\":\"%s\",\"kernel_set\":\"%s\",\"threads\":%u,"
                    "\"uptime_seconds\":%.0f,\"in_flight\":%d,\"max_k\":%u,\"max_body\":%zu}}",
                 COFI_VERSION, cofi_kernel_set(), s->threads, (double)time(NULL) - s->started_unix,
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
  prom_label(b, sm->path);
  srv_buf_printf(b, "\",checksum=\"%016llx\",storage=\"%s\",cofi_version=\"",
                 (unsigned long long)in->checksum, srv_storage_name(sm->storage));
  /* The version string comes from the file's header: any 16 bytes. Only
   * printable ASCII goes into the label ('?' for the rest), so a hostile
   * file cannot make the exposition unparsable. */
  char ver[sizeof in->cofi_version + 1];
  size_t vn = strnlen(in->cofi_version, sizeof in->cofi_version);
  for (size_t i = 0; i < vn; i++) {
    unsigned char ch = (unsigned char)in->cofi_version[i];
    ver[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
  }
  ver[vn] = 0;
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

void srv_h_metrics(srv_req *r) {
  cofi_server *s = r->srv;
  srv_model *sm = srv_req_model(r);
  srv_buf *b = r->out;
  r->content_type = "text/plain; version=0.0.4; charset=utf-8";
  srv_metrics_write(&s->metrics, b);
  if (s->store) srv_store_metrics_write(s->store, b);
  srv_online_metrics_write(s->online, b);
  srv_feed_metrics_write(s, b);
  if (sm) write_model_metrics(b, s, sm);
  srv_retrain_metrics(s, b);
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

bool srv_admin_authorized(srv_req *r, const char *what) {
  const char *token = r->srv->cfg.admin_token;
  if (!token || !*token) {
    srv_req_fail(r, 403, "admin_disabled",
                 "%s is disabled: start cofi serve with --admin-token%s", what,
                 !strcmp(what, "POST /admin/reload") ? " (or send SIGHUP to the process)" : "");
    return false;
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
    return false;
  }
  return true;
}

void srv_h_admin_reload(srv_req *r) {
  cofi_server *s = r->srv;
  if (!srv_admin_authorized(r, "POST /admin/reload")) return;
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = cofi_server_reload(s, &d);
  srv_model *sm = srv_req_model(r);
  if (rc != COFI_OK) {
    char why[700];
    srv_reload_error(s, why, sizeof why); /* the reload's error, kept for /health */
    if (sm)
      srv_req_fail(r, 500, "reload_failed", "%s; still serving generation %llu (checksum %016llx)",
                   why, (unsigned long long)sm->generation, (unsigned long long)sm->info.checksum);
    else
      srv_req_fail(r, 500, "reload_failed", "%s; no model is being served", why);
    return;
  }
  if (!sm) { /* a lease break emptied the slot right after this reload */
    srv_req_model_unavailable(r);
    return;
  }
  srv_buf_lit(r->out, "{\"status\":\"reloaded\",\"model\":{");
  write_model_members(r->out, s, sm);
  srv_buf_lit(r->out, "}}");
}


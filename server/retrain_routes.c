/*
 * retrain_routes.c — the admin routes of the models directory (admin
 * token as POST /admin/reload):
 *   GET  /admin/models    {"live": N, "retrain": {...}, "models": [...]}
 *   POST /admin/rollback  optional {"version": N}; default: the newest
 *                         kept version older than the live one
 *   POST /admin/retrain   202 at once: "started", or "queued" behind the
 *                         running retrain (one more, never several)
 * Without --models-dir they answer 404 versions_disabled.
 */
#include "retrain_state.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static srv_retrain *retrain_or_404(srv_req *r, const char *what) {
  if (!srv_admin_authorized(r, what)) return NULL;
  if (!r->srv->retrain)
    srv_req_fail(r, 404, "versions_disabled",
                 "%s needs a models directory: start cofi serve with --store URL --models-dir DIR",
                 what);
  return r->srv->retrain;
}

void srv_h_admin_models(srv_req *r) {
  srv_retrain *rt = retrain_or_404(r, "GET /admin/models");
  if (!rt) return;
  srv_buf *b = r->out;
  pthread_mutex_lock(&rt->vlock);
  pthread_mutex_lock(&rt->lock);
  srv_buf_lit(b, "{\"live\":");
  if (rt->vs.live) srv_buf_printf(b, "%u", rt->vs.live);
  else srv_buf_lit(b, "null");
  srv_buf_printf(b, ",\"keep\":%u,\"margin\":", rt->vs.keep);
  srv_buf_float(b, r->srv->cfg.retrain_margin);
  srv_buf_lit(b, ",\"retrain\":");
  srv_retrain_state_json(rt, b);
  srv_buf_lit(b, ",\"models\":[");
  for (size_t i = 0; i < rt->vs.n; i++) {
    if (i) srv_buf_putc(b, ',');
    srv_version_json(b, &rt->vs.v[i]);
  }
  srv_buf_lit(b, "]}");
  pthread_mutex_unlock(&rt->lock);
  pthread_mutex_unlock(&rt->vlock);
}

/* The body of POST /admin/rollback: empty, {} or {"version": N}. *version
 * 0: none given. */
static bool parse_rollback(srv_req *r, uint32_t *version) {
  *version = 0;
  if (r->body_len == 0) return true;
  srv_error e;
  json_t *root = srv_json_parse(r->body, r->body_len, &e);
  if (!root) {
    srv_req_error(r, &e);
    return false;
  }
  bool ok = false;
  if (!json_is_object(root)) {
    srv_req_fail(r, 400, "invalid_body", "the body must be a JSON object: {\"version\": N} or {}");
    goto done;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "version")) {
      srv_req_fail(r, 400, "invalid_body", "unknown field '%.64s' (only \"version\" is taken)", key);
      goto done;
    }
    if (!json_is_integer(val) || json_integer_value(val) < 1 || json_integer_value(val) > 999999) {
      srv_req_fail(r, 400, "invalid_version", "\"version\" must be an integer in 1..999999");
      goto done;
    }
    *version = (uint32_t)json_integer_value(val);
  }
  ok = true;
done:
  json_decref(root);
  return ok;
}

void srv_h_admin_rollback(srv_req *r) {
  srv_retrain *rt = retrain_or_404(r, "POST /admin/rollback");
  if (!rt) return;
  uint32_t want;
  if (!parse_rollback(r, &want)) return;
  pthread_mutex_lock(&rt->vlock);
  uint32_t from = rt->vs.live;
  if (!want) {
    want = srv_versions_rollback_target(&rt->vs);
    if (!want) {
      srv_req_fail(r, 409, "no_previous_version",
                   "there is no kept version to roll back to (live: %u)", from);
      goto done;
    }
  }
  srv_version *v = srv_versions_find(&rt->vs, want);
  if (!v) {
    srv_req_fail(r, 404, "unknown_version", "version %u is not in the models directory "
                 "(GET /admin/models lists them)", want);
    goto done;
  }
  if (v->status == SRV_V_REJECTED) {
    srv_req_fail(r, 409, "version_rejected", "version %u was rejected and is never served: %.300s",
                 want, v->reason);
    goto done;
  }
  if (want != from) {
    char path[4000];
    srv_versions_path(&rt->vs, want, path, sizeof path);
    cofi_diag d = {0};
    int rc = srv_reload_from(r->srv, path, &d);
    if (rc) {
      srv_req_fail(r, 500, "rollback_failed", "cannot load version %u: %.300s; version %u stays live",
                   want, d.message[0] ? d.message : cofi_error_message(rc), from);
      goto done;
    }
    char why[96];
    time_t now = time(NULL);
    struct tm tm;
    char when[32];
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(why, sizeof why, "rolled back to version %u at %s", want, when);
    srv_versions_set_live(&rt->vs, want, why);
    srv_retrain_publish(rt);
    cofi_diag d2 = {0};
    if (srv_versions_save(&rt->vs, &d2) != COFI_OK)
      fprintf(stderr, "cofi serve: rollback to version %u: %s (%s)\n", want, d2.message, d2.file);
    fprintf(stderr, "cofi serve: rolled back from version %u to version %u\n", from, want);
  }
  srv_buf_printf(r->out, "{\"status\":\"%s\",\"live\":%u,\"previous\":",
                 want == from ? "already_live" : "rolled_back", want);
  if (from) srv_buf_printf(r->out, "%u}", from);
  else srv_buf_lit(r->out, "null}");
done:
  pthread_mutex_unlock(&rt->vlock);
}

void srv_h_admin_retrain(srv_req *r) {
  srv_retrain *rt = retrain_or_404(r, "POST /admin/retrain");
  if (!rt) return;
  if (r->body_len) {
    srv_error e;
    json_t *root = srv_json_parse(r->body, r->body_len, &e);
    if (!root) {
      srv_req_error(r, &e);
      return;
    }
    bool empty = json_is_object(root) && json_object_size(root) == 0;
    json_decref(root);
    if (!empty) {
      srv_req_fail(r, 400, "invalid_body", "POST /admin/retrain takes no parameters: send no body or {}");
      return;
    }
  }
  pthread_mutex_lock(&rt->lock);
  bool was_running;
  srv_retrain_request(rt, &was_running);
  r->status = 202;
  srv_buf_printf(r->out, "{\"status\":\"%s\",\"live\":%u,\"message\":\"%s\"}",
                 was_running ? "queued" : "started", atomic_load(&rt->live),
                 was_running ? "a retrain is running; another starts when it ends"
                             : "retraining in the background; GET /admin/models shows progress");
  pthread_mutex_unlock(&rt->lock);
}

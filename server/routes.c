/*
 * routes.c — the route table: every endpoint as data (as in redis's command
 * table): its path (exact, or a prefix for /items/{id}), the methods it
 * takes and the Allow header for the others, whether it reads a body,
 * whether it needs a model, and the handler. http.c does the generic work
 * once, from these fields, before any handler runs.
 *
 * needs_model: with no model in the slot (only after a lease break whose
 * private copy failed: see reload.c) these answer 503 model_unavailable;
 * /ping too, which tells a load balancer "not ready". /health, /metrics
 * and /admin/reload cope with the empty slot themselves, /openapi.json and
 * /docs do not need it.
 */
#include "online.h"

#include <string.h>

#define GET_HEAD (SRV_GET | SRV_HEAD)
#define GH "GET, HEAD"

/* id, path, prefix, methods, allow, body, needs_model, handler */
const srv_route srv_routes[] = {
    {SRV_R_PING, "/ping", false, GET_HEAD, GH, false, true, srv_h_ping},
    {SRV_R_INVOCATIONS, "/invocations", false, SRV_POST, "POST", true, true, srv_h_invocations},
    {SRV_R_HEALTH, "/health", false, GET_HEAD, GH, false, false, srv_h_health},
    {SRV_R_RECOMMEND, "/recommend", false, GET_HEAD, GH, false, true, srv_h_recommend},
    {SRV_R_RECOMMEND_COLD, "/recommend_cold", false, GET_HEAD, GH, false, true,
     srv_h_recommend_cold},
    {SRV_R_RECOMMEND_BATCH, "/recommend/batch", false, SRV_POST, "POST", true, true,
     srv_h_recommend_batch},
    {SRV_R_SIMILAR_ITEMS, "/similar_items", false, GET_HEAD, GH, false, true, srv_h_similar_items},
    {SRV_R_SIMILAR_USERS, "/similar_users", false, GET_HEAD, GH, false, true, srv_h_similar_users},
    {SRV_R_ITEMS, "/items/", true, GET_HEAD | SRV_PUT | SRV_DELETE, "GET, HEAD, PUT, DELETE", true,
     false, srv_h_items_route},
    {SRV_R_METRICS, "/metrics", false, GET_HEAD, GH, false, false, srv_h_metrics},
    {SRV_R_OPENAPI, "/openapi.json", false, GET_HEAD, GH, false, false, srv_h_openapi},
    {SRV_R_DOCS, "/docs", false, GET_HEAD, GH, false, false, srv_h_docs},
    {SRV_R_ADMIN_RELOAD, "/admin/reload", false, SRV_POST, "POST", true, false,
     srv_h_admin_reload},
    {SRV_R_EXPLAIN, "/explain", false, GET_HEAD, GH, false, true, srv_h_explain},
    {SRV_R_ITEM_SEARCH, "/items", false, GET_HEAD, GH, false, true, srv_h_item_search},
    {SRV_R_UI, "/ui/", true, GET_HEAD, GH, false, false, srv_h_ui},
    {SRV_R_UI_REDIRECT, "/ui", false, GET_HEAD, GH, false, false, srv_h_ui_redirect},
    /* The store routes (store_routes.c): 404 store_disabled without --store,
     * except GET /users/{id}/history, answered from the model's matrix. */
    {SRV_R_FEEDBACK, "/feedback", false, SRV_POST, "POST", true, false, srv_h_feedback},
    {SRV_R_USERS, "/users/", true, GET_HEAD | SRV_PUT | SRV_DELETE, "GET, HEAD, PUT, DELETE", true,
     false, srv_h_users},
    /* The models directory (retrain_routes.c): 404 versions_disabled
     * without --models-dir. */
    {SRV_R_ADMIN_MODELS, "/admin/models", false, GET_HEAD, GH, false, false, srv_h_admin_models},
    {SRV_R_ADMIN_ROLLBACK, "/admin/rollback", false, SRV_POST, "POST", true, false,
     srv_h_admin_rollback},
    {SRV_R_ADMIN_RETRAIN, "/admin/retrain", false, SRV_POST, "POST", true, false,
     srv_h_admin_retrain},
    /* Non-personalized lists (lists_routes.c): from the store. */
    {SRV_R_POPULAR, "/popular", false, GET_HEAD, GH, false, false, srv_h_popular},
    {SRV_R_LATEST, "/latest", false, GET_HEAD, GH, false, false, srv_h_latest},
};
const size_t srv_n_routes = sizeof srv_routes / sizeof srv_routes[0];

const srv_route *srv_route_find(const char *path, size_t len) {
  for (size_t i = 0; i < srv_n_routes; i++) {
    const srv_route *rt = &srv_routes[i];
    size_t n = strlen(rt->path);
    if (rt->prefix ? (len >= n && !memcmp(path, rt->path, n))
                   : (len == n && !memcmp(path, rt->path, n)))
      return rt;
  }
  return NULL;
}

/*
 * served_model.c — a model as the server holds it: the opened cofi_model,
 * its metadata, and the JSON text of every item and user ID, escaped once
 * when the model is loaded.
 *
 * A recommendation answer is mostly IDs and titles; escaping them per
 * request would be the largest cost after scoring, so each item's members
 * (`"item_id":"296"` and `,"title":"Pulp Fiction (1994)"`) and each user's quoted
 * ID are prepared here and the handlers copy bytes. The cost is memory of
 * the same order as the ID and title tables in the model file.
 */
#include "srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int fail(cofi_diag *diag, int code, const char *path, const char *msg) {
  if (diag) {
    snprintf(diag->file, sizeof diag->file, "%s", path);
    diag->line = 0;
    snprintf(diag->message, sizeof diag->message, "%s", msg);
  }
  return code;
}

static void destroy(srv_ref *r) {
  srv_model *sm = (srv_model *)r;
  cofi_model_close(sm->m);
  free(sm->item_json);
  free(sm->item_json_off);
  free(sm->user_json);
  free(sm->user_json_off);
  free(sm);
}

/* Takes the bytes of b (the caller's buffer is left empty). */
static char *take(srv_buf *b) {
  char *p = b->p;
  srv_buf_init(b);
  return p;
}

int srv_model_load(const char *path, uint64_t generation, srv_model **out,
                   cofi_diag *diag) {
  *out = NULL;
  srv_buf items, users;
  srv_buf_init(&items);
  srv_buf_init(&users);
  srv_model *sm = calloc(1, sizeof *sm);
  if (!sm) return fail(diag, COFI_ERR_NOMEM, path, "out of memory");
  int rc = cofi_model_open(path, &sm->m, diag);
  if (rc != COFI_OK) goto cleanup;
  cofi_model_get_info(sm->m, &sm->info);
  sm->generation = generation;
  sm->loaded_unix = (double)time(NULL);

  rc = COFI_ERR_NOMEM;
  sm->item_json_off = malloc((2 * (size_t)sm->info.n_items + 1) * sizeof(size_t));
  sm->user_json_off = malloc(((size_t)sm->info.n_users + 1) * sizeof(size_t));
  if (!sm->item_json_off || !sm->user_json_off) goto cleanup;
  for (uint32_t i = 0; i < sm->info.n_items; i++) {
    sm->item_json_off[2 * (size_t)i] = items.len;
    size_t len, tlen;
    const char *id = cofi_model_item_id(sm->m, i, &len);
    srv_buf_lit(&items, "\"item_id\":");
    srv_buf_json_str(&items, id, len);
    sm->item_json_off[2 * (size_t)i + 1] = items.len;
    const char *title = cofi_model_item_title(sm->m, i, &tlen);
    if (title) {
      srv_buf_lit(&items, ",\"title\":");
      srv_buf_json_str(&items, title, tlen);
    }
  }
  sm->item_json_off[2 * (size_t)sm->info.n_items] = items.len;
  for (uint32_t u = 0; u < sm->info.n_users; u++) {
    sm->user_json_off[u] = users.len;
    size_t len;
    const char *id = cofi_model_user_id(sm->m, u, &len);
    srv_buf_json_str(&users, id, len);
  }
  sm->user_json_off[sm->info.n_users] = users.len;
  if (items.oom || users.oom) goto cleanup;
  sm->item_json = take(&items);
  sm->user_json = take(&users);
  atomic_init(&sm->ref.refs, 1);
  sm->ref.destroy = destroy;
  *out = sm;
  return COFI_OK;

cleanup:
  if (rc == COFI_ERR_NOMEM) fail(diag, rc, path, "out of memory preparing the model for serving");
  srv_buf_free(&users);
  srv_buf_free(&items);
  if (sm) destroy(&sm->ref);
  return rc;
}

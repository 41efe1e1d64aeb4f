/*
 * request.c — what a handler uses besides the parsers: the current model,
 * acquired once per request (http.c releases it after the answer is
 * written), and error answers.
 */
#include "srv.h"

#include <stdio.h>

srv_model *srv_req_model(srv_req *r) {
  if (!r->model) r->model = (srv_model *)srv_slot_acquire(&r->srv->model);
  return r->model;
}

void srv_req_error(srv_req *r, const srv_error *e) {
  r->out->len = 0;
  r->out->oom = false;
  r->status = e->status;
  r->content_type = "application/json";
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

void srv_req_model_unavailable(srv_req *r) {
  char why[700];
  srv_reload_error(r->srv, why, sizeof why);
  srv_req_fail(r, 503, "model_unavailable",
               "no model is being served (%s); it comes back with a successful reload "
               "(SIGHUP or POST /admin/reload)", why);
}

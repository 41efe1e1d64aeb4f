/*
 * retrain_state.h — the state of background retraining, shared by
 * retrain.c (the thread) and retrain_routes.c (the admin routes).
 */
#ifndef COFI_SRV_RETRAIN_STATE_H
#define COFI_SRV_RETRAIN_STATE_H

#include "versions.h"

struct srv_retrain {
  cofi_server *s;
  pthread_mutex_t lock; /* everything below but cancel */
  pthread_cond_t wake;  /* a request, or stop */
  srv_versions vs;
  pthread_t thread;
  bool thread_started;
  bool stop;
  bool requested; /* POST /admin/retrain (another one after the running one) */
  bool running;
  atomic_bool cancel; /* read by training's progress callback */
  const char *trigger; /* "request", "schedule", "events": the running or last one */
  int64_t started_unix, finished_unix;
  double last_duration;
  char last_result[16];
  char last_error[700];
  uint64_t n_started, n_succeeded, n_rejected, n_failed, n_cancelled;
  uint64_t events_base; /* accepted events when the last retrain started */
  double next_due;      /* monotonic time of the next scheduled retrain */
};

/* Asks for a retrain (under rt->lock): now when idle, else right after the
 * running one. *was_running says which. */
void srv_retrain_request(srv_retrain *rt, bool *was_running);
/* {"state": "idle"|"running", ...} (under rt->lock). */
void srv_retrain_state_json(srv_retrain *rt, srv_buf *b);

#endif

/*
 * retrain_state.h — the state of background retraining, shared by
 * retrain.c (the thread) and retrain_routes.c (the admin routes).
 */
#ifndef COFI_SRV_RETRAIN_STATE_H
#define COFI_SRV_RETRAIN_STATE_H

#include "versions.h"

struct srv_retrain {
  cofi_server *s;
  /* vlock: vs, and every change of the served version (a retrain's swap,
   * a rollback), held for a whole swap. lock: the state below, only ever
   * held briefly (so /health never waits for a swap). Order: vlock, then
   * lock, then (inside srv_reload_from) the server's reload_lock. */
  pthread_mutex_t vlock;
  srv_versions vs;
  atomic_uint live;    /* vs.live, readable without vlock */
  atomic_uint count;   /* vs.n, the same */
  pthread_mutex_t lock;
  pthread_cond_t wake; /* a request, or stop */
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

/* Publishes vs.live and vs.n to the atomics (under vlock). */
void srv_retrain_publish(srv_retrain *rt);
/* Deletes the versions beyond --keep: entries first, then the manifest is
 * saved, then their files (a crash in between leaves an unlisted file,
 * never a listed one that is missing). Under vlock. */
int srv_retrain_prune_save(srv_retrain *rt, cofi_diag *diag);
/* Asks for a retrain (under rt->lock): now when idle, else right after the
 * running one. *was_running says which. */
void srv_retrain_request(srv_retrain *rt, bool *was_running);
/* {"state": "idle"|"running", ...} (under rt->lock). */
void srv_retrain_state_json(srv_retrain *rt, srv_buf *b);

#endif

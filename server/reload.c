/*
 * reload.c — the served model changes here and only here: a reload (SIGHUP
 * or POST /admin/reload) opens the model path again and swaps it in; a
 * lease break (someone rewrites the mapped file in place) swaps in a
 * private copy of the same model. Both hold reload_lock, so they never
 * interleave; both keep the status that /health reports.
 *
 * Requests are never blocked by any of it: they acquire whatever the slot
 * holds (refslot.c) and finish on it.
 */
#include "srv.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

void srv_reload_error(cofi_server *s, char *buf, size_t size) {
  pthread_mutex_lock(&s->status_lock);
  snprintf(buf, size, "%s", s->last_reload_error[0] ? s->last_reload_error : "no model loaded");
  pthread_mutex_unlock(&s->status_lock);
}


/* One line on stderr when a model is loaded into private memory because no
 * lease could be taken, with the reason; said again only when the reason
 * changes (a file that is not ours stays so at every reload). Called under
 * reload_lock or before any thread runs. */
void srv_say_storage(cofi_server *s, const srv_model *sm) {
  if (sm->storage == SRV_STORAGE_MAPPED) {
    s->lease_said = 0;
    return;
  }
  if (sm->lease_errno == s->lease_said) return;
  s->lease_said = sm->lease_errno;
  fprintf(stderr,
          "cofi serve: %s: no read lease (%s): the model is read into private memory "
          "instead of mapped, so rewriting the file in place cannot affect it\n",
          sm->path, srv_lease_reason(sm->lease_errno));
}

/* "still serving generation N" or "no model is being served" (the slot is
 * only changed under reload_lock, which the caller holds). */
static void describe_serving(cofi_server *s, char *buf, size_t size) {
  srv_model *cur = (srv_model *)srv_slot_acquire(&s->model);
  if (cur)
    snprintf(buf, size, "still serving generation %llu", (unsigned long long)cur->generation);
  else
    snprintf(buf, size, "no model is being served");
  if (cur) srv_ref_release(&cur->ref);
}

/* Opens path and swaps it in; the caller holds reload_lock. */
static int reload_locked(cofi_server *s, const char *path, cofi_diag *d) {
  srv_model *sm;
  uint64_t gen = s->generation + 1;
  int rc = srv_model_load(path, gen, s->lease_sig, &sm, d);
  if (rc == COFI_OK) {
    s->generation = gen;
    srv_slot_swap(&s->model, &sm->ref);
    pthread_mutex_lock(&s->status_lock);
    s->reloads_ok++;
    s->last_reload_error[0] = 0;
    pthread_mutex_unlock(&s->status_lock);
    fprintf(stderr, "cofi serve: reloaded %s (generation %llu, %u users, %u items, checksum %016llx)\n",
            path, (unsigned long long)gen, sm->info.n_users, sm->info.n_items,
            (unsigned long long)sm->info.checksum);
    srv_say_storage(s, sm);
  } else {
    pthread_mutex_lock(&s->status_lock);
    s->reloads_failed++;
    snprintf(s->last_reload_error, sizeof s->last_reload_error, "cannot load %.300s: %.380s",
             path, d->message[0] ? d->message : cofi_error_message(rc));
    pthread_mutex_unlock(&s->status_lock);
    char serving[64];
    describe_serving(s, serving, sizeof serving);
    fprintf(stderr, "cofi serve: reload failed, %s: %s\n", serving, s->last_reload_error);
  }
  return rc;
}

int cofi_server_reload(cofi_server *s, cofi_diag *diag) {
  cofi_diag d;
  memset(&d, 0, sizeof d);
  pthread_mutex_lock(&s->reload_lock);
  int rc = reload_locked(s, s->reload_path, &d);
  pthread_mutex_unlock(&s->reload_lock);
  if (diag) *diag = d;
  return rc;
}

int srv_reload_from(cofi_server *s, const char *path, cofi_diag *diag) {
  cofi_diag d;
  memset(&d, 0, sizeof d);
  pthread_mutex_lock(&s->reload_lock);
  int rc = reload_locked(s, path, &d);
  if (rc == COFI_OK) snprintf(s->reload_path, sizeof s->reload_path, "%s", path);
  pthread_mutex_unlock(&s->reload_lock);
  if (diag) *diag = d;
  return rc;
}

/* ---- lease breaks ----------------------------------------------------------- */

int srv_lease_signal(void) { return SIGRTMIN + 1; }

/*
 * Someone is opening the served file for writing, or truncating it: the
 * kernel holds them until we release our lease, then they may change every
 * byte under the mapping. So, while they wait, read the same (still
 * unchanged) bytes through the leased descriptor into private memory and
 * swap that copy in, under the same generation: to clients nothing changes,
 * and the new file is picked up by the next reload, when the operator says
 * it is complete (the server cannot know when a `cp` has finished). The
 * mapped model is released when its last in-flight request ends; its
 * destroy unmaps, then closes the descriptor, which drops the lease and
 * lets the writer proceed. No request touches the mapping after that.
 *
 * If the copy fails (out of memory, a read error), keeping the mapped model
 * is not an option: the writer goes ahead anyway once the kernel's
 * lease-break-time (45 s by default) has passed, and the mapping would then
 * be truncated under requests (SIGBUS, the whole server gone). So the slot
 * is emptied instead: the lease is released as soon as in-flight requests
 * end, requests get 503 model_unavailable and /ping 503 (a load balancer
 * takes the instance out), and the process keeps running so that a reload
 * (SIGHUP, POST /admin/reload) brings it back once the new file is in
 * place. A server that answers 503 for a while is better than one that
 * dies, or one that keeps a mapping it knows is about to be pulled away.
 */
int srv_lease_broken(cofi_server *s) {
  pthread_mutex_lock(&s->reload_lock);
  srv_model *sm = (srv_model *)srv_slot_acquire(&s->model);
  int rc = COFI_OK;
  /* A signal for another descriptor (an older generation still finishing
   * its requests: it lets go by itself), or one already handled. During a
   * break F_GETLEASE reports the lease type the breaker needs (F_UNLCK),
   * no longer F_RDLCK. */
  if (!sm || sm->storage != SRV_STORAGE_MAPPED || fcntl(sm->lease_fd, F_GETLEASE) == F_RDLCK)
    goto done;
  srv_model *copy;
  cofi_diag d;
  memset(&d, 0, sizeof d);
  rc = srv_model_copy_private(sm, sm->path, &copy, &d);
  if (rc == COFI_OK) {
    srv_slot_swap(&s->model, &copy->ref);
    fprintf(stderr,
            "cofi serve: %s is being rewritten in place: now serving a private copy of "
            "generation %llu (checksum %016llx); send SIGHUP or POST /admin/reload once the new "
            "file is complete\n",
            sm->path, (unsigned long long)sm->generation,
            (unsigned long long)sm->info.checksum);
  } else {
    srv_slot_clear(&s->model);
    pthread_mutex_lock(&s->status_lock);
    snprintf(s->last_reload_error, sizeof s->last_reload_error,
             "%.300s was rewritten in place and could not be copied into memory: %.300s",
             sm->path, d.message[0] ? d.message : cofi_error_message(rc));
    pthread_mutex_unlock(&s->status_lock);
    fprintf(stderr,
            "cofi serve: %s; generation %llu released, no model is served (503) until a "
            "reload succeeds (SIGHUP or POST /admin/reload)\n",
            s->last_reload_error, (unsigned long long)sm->generation);
  }
done:
  /* Our own reference last: if no request holds the mapped model, it is
   * destroyed right here and the writer goes on at once. */
  if (sm) srv_ref_release(&sm->ref);
  pthread_mutex_unlock(&s->reload_lock);
  return rc;
}


/*
 * retrain.c — background retraining of a store server with a models
 * directory (versions.h): one trainer thread, woken by the schedule
 * (--retrain-every), by accepted events (--retrain-after) or by
 * POST /admin/retrain; one retrain at a time.
 *
 * A retrain, start to end:
 *   1. read the store's events (its own connection: the server's read
 *      connection stays free for requests) with the server's event weights;
 *   2. hold out the newest 2% of events among those the live model has
 *      not seen (cofi_split_recent) and train a check model on the rest,
 *      with the live model's parameters;
 *   3. Recall@10 of the check model and of the live model on the held-out
 *      events, each user's earlier events folded in for both (same input,
 *      only the item factors differ); the check passes when the new recall
 *      is >= the live one minus --retrain-margin (skipped with fewer than
 *      MIN_CHECK_USERS evaluated users: too noisy to tell);
 *   4. failed: the check model is written as a new version flagged
 *      "rejected" with the reason, and the live model stays;
 *      passed: the final model is trained on every event (the newest ones
 *      are what matters most), written as the next version, opened (the
 *      library validates every factor) and swapped in through the reload
 *      path (srv_reload_from): requests in flight finish on the old model,
 *      new ones get the new one, none fails.
 * The thread runs at a lower priority (nice +10, which the training
 * threads it creates inherit) with --retrain-threads threads. A stop
 * cancels training through the progress callback (after the current
 * iteration) and leaves no file behind.
 *
 * Locks (retrain_state.h): vlock for the versions and swaps, lock for the
 * thread's state; vlock before lock before the server's reload_lock.
 */
#include "retrain_state.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The share of newest events held out for the check. */
#define HOLDOUT_SHARE 0.02
/* Fewer held-out users than this make Recall@10 too noisy to compare (its
 * standard error is about 0.1 at 20 users): the check is then skipped. */
#define MIN_CHECK_USERS 20
/* How often the idle thread looks at the accepted-events counter. */
#define POLL_MS 500

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- opening the directory ------------------------------------------------ */

/* Fills an entry from a model's info. */
static void describe(srv_version *v, const cofi_model_info *in) {
  v->users = in->n_users;
  v->items = in->n_items;
  v->interactions = in->nnz;
  v->content_checksum = in->content_checksum;
  v->loss = in->train_loss;
  v->train_seconds = in->train_seconds;
}

/* MODEL into the directory: the version with the same content when there
 * is one, else a new version (copied in). *version: which. */
static int import_model(srv_retrain *rt, const char *model, uint32_t *version, cofi_diag *diag) {
  cofi_model *m;
  int rc = cofi_model_open(model, &m, diag);
  if (rc) return rc;
  cofi_model_info in;
  cofi_model_get_info(m, &in);
  cofi_model_close(m);
  for (size_t i = rt->vs.n; i-- > 0;)
    if (rt->vs.v[i].content_checksum == in.content_checksum && rt->vs.v[i].status != SRV_V_REJECTED) {
      *version = rt->vs.v[i].version;
      return COFI_OK;
    }
  srv_version *v = srv_versions_add(&rt->vs);
  if (!v) return COFI_ERR_NOMEM;
  describe(v, &in);
  if (in.created_unix) v->created = (int64_t)in.created_unix;
  snprintf(v->reason, sizeof v->reason, "copied from %s", model);
  rc = srv_versions_copy_in(&rt->vs, model, v->version, diag);
  if (rc) {
    rt->vs.n--;
    rt->vs.next--;
    return rc;
  }
  *version = v->version;
  fprintf(stderr, "cofi serve: %s copied into %s as version %u\n", model, rt->vs.dir, v->version);
  return COFI_OK;
}

int srv_retrain_open(cofi_server *s, int lease_sig, srv_model **out, cofi_diag *diag) {
  *out = NULL;
  srv_retrain *rt = calloc(1, sizeof *rt);
  if (!rt) return COFI_ERR_NOMEM;
  rt->s = s;
  pthread_mutex_init(&rt->lock, NULL);
  pthread_mutex_init(&rt->vlock, NULL);
  pthread_cond_init(&rt->wake, NULL);
  atomic_init(&rt->cancel, false);
  atomic_init(&rt->live, 0);
  atomic_init(&rt->count, 0);
  s->retrain = rt;
  const cofi_server_config *cfg = &s->cfg;
  int rc = srv_versions_open(cfg->models_dir, cfg->keep_versions, &rt->vs, diag);
  if (rc) return rc;
  uint32_t want = rt->vs.live;
  if (cfg->model_path && *cfg->model_path) {
    rc = import_model(rt, cfg->model_path, &want, diag);
    if (rc) return rc;
  }
  /* The version to serve first (the manifest's live one, or MODEL's),
   * then, when it cannot be loaded, the newest good one that can. */
  for (;;) {
    uint32_t v = want;
    for (size_t i = rt->vs.n; !v && i-- > 0;)
      if (rt->vs.v[i].status != SRV_V_REJECTED) v = rt->vs.v[i].version;
    if (!v) break;
    char path[4000];
    srv_versions_path(&rt->vs, v, path, sizeof path);
    cofi_diag d = {0};
    rc = srv_model_load(path, 1, lease_sig, out, &d);
    if (rc == COFI_OK) {
      srv_versions_set_live(&rt->vs, v, "not live when the server started");
      snprintf(s->reload_path, sizeof s->reload_path, "%s", path);
      break;
    }
    /* Unusable: flagged so it is neither served nor a rollback target. */
    fprintf(stderr, "cofi serve: version %u (%s) cannot be served: %s\n", v, path, d.message);
    srv_version *e = srv_versions_find(&rt->vs, v);
    e->status = SRV_V_REJECTED;
    snprintf(e->reason, sizeof e->reason, "cannot be loaded: %.300s", d.message);
    if (rt->vs.live == v) rt->vs.live = 0;
    want = 0;
  }
  rc = srv_retrain_prune_save(rt, diag);
  srv_retrain_publish(rt);
  if (rc && *out) { /* the start fails: nobody else will release it */
    srv_ref_release(&(*out)->ref);
    *out = NULL;
  }
  return rc;
}

void srv_retrain_publish(srv_retrain *rt) {
  atomic_store(&rt->live, rt->vs.live);
  atomic_store(&rt->count, (unsigned)rt->vs.n);
}

int srv_retrain_prune_save(srv_retrain *rt, cofi_diag *diag) {
  uint32_t gone[64];
  size_t n = srv_versions_prune(&rt->vs, gone, sizeof gone / sizeof *gone);
  int rc = srv_versions_save(&rt->vs, diag);
  if (rc == COFI_OK) srv_versions_unlink(&rt->vs, gone, n);
  return rc;
}

/* ---- one retrain ------------------------------------------------------------- */

static int cancel_check(const cofi_progress *p, void *ctx) {
  (void)p;
  return atomic_load(&((srv_retrain *)ctx)->cancel) ? 1 : 0;
}

/* What a retrain found, before it is recorded. */
typedef struct outcome {
  const char *result; /* "succeeded", "rejected", "failed", "cancelled" */
  char error[600];
} outcome;

static void set_error(outcome *o, const char *result, const char *what, int rc, const cofi_diag *d) {
  o->result = rc == COFI_ERR_CANCELLED ? "cancelled" : result;
  snprintf(o->error, sizeof o->error, "%s: %s", what,
           d && d->message[0] ? d->message : cofi_error_message(rc));
}

/* Recall@10 of m on test (fold-in from foldin); users 0 and recall 0 when
 * nobody could be evaluated. */
static int recall_of(const cofi_model *m, const cofi_dataset *test, const cofi_dataset *foldin,
                     uint32_t threads, double *recall, uint64_t *users, cofi_diag *d) {
  *recall = 0;
  *users = 0;
  if (!test || !foldin) return COFI_OK;
  cofi_eval_options eo = cofi_eval_options_default();
  eo.ks[0] = SRV_CHECK_K;
  eo.n_ks = 1;
  eo.threads = threads;
  cofi_eval_result er;
  int rc = cofi_evaluate(m, COFI_SCORER_MODEL, test, foldin, &eo, &er, d);
  if (rc == COFI_ERR_EMPTY) return COFI_OK;
  if (rc) return rc;
  *recall = er.metrics[0][COFI_METRIC_RECALL];
  *users = er.n_users;
  return COFI_OK;
}

/* Saves m as a new version, fills its entry; under vlock. */
static int save_version(srv_retrain *rt, const cofi_model *m, const srv_version *tmpl,
                        uint32_t *version, char *path, size_t path_size, cofi_diag *d) {
  srv_version *v = srv_versions_add(&rt->vs);
  if (!v) return COFI_ERR_NOMEM;
  uint32_t number = v->version;
  srv_versions_path(&rt->vs, number, path, path_size);
  int rc = cofi_model_save(m, path, d);
  if (rc == COFI_OK) {
    cofi_model *back;
    rc = cofi_model_open(path, &back, d); /* what is on disk, validated */
    if (rc == COFI_OK) {
      cofi_model_info in;
      cofi_model_get_info(back, &in);
      cofi_model_close(back);
      *v = *tmpl;
      v->version = number;
      v->created = (int64_t)time(NULL);
      describe(v, &in);
    } else {
      unlink(path);
    }
  }
  if (rc) {
    rt->vs.n--; /* the number stays used: a version number is never reused */
    return rc;
  }
  *version = number;
  return COFI_OK;
}

static void run_retrain(srv_retrain *rt, outcome *o) {
  cofi_server *s = rt->s;
  const cofi_server_config *cfg = &s->cfg;
  cofi_diag d = {0};
  cofi_store *st = NULL;
  cofi_dataset *ds = NULL, *train = NULL, *test = NULL, *foldin = NULL;
  cofi_model *check = NULL, *final = NULL;
  uint8_t *parts = NULL;
  srv_model *live = (srv_model *)srv_slot_acquire(&s->model);
  uint32_t live_version = atomic_load(&rt->live);
  o->result = "failed";
  o->error[0] = 0;

  int rc = cofi_store_open(cfg->store_url, &st, &d);
  if (rc) { set_error(o, "failed", "cannot open the store", rc, &d); goto done; }
  cofi_read_options ro = cofi_read_options_default();
  ro.event_weights = cfg->event_weights;
  ro.n_event_weights = cfg->n_event_weights;
  /* the events POSTed since the last pass packed first, one short write
   * transaction per pack (the writer waits tens of milliseconds at most):
   * this read and the next are fast. Best effort: logged, not fatal. */
  uint64_t packed = 0;
  if (cofi_store_compact(st, &packed, &d))
    fprintf(stderr, "cofi serve: retrain: events not packed (%s); reading them row by row\n",
            d.message);
  memset(&d, 0, sizeof d);
  rc = cofi_store_read_dataset(st, &ro, &ds, &d);
  cofi_store_close(st);
  if (rc) { set_error(o, "failed", "cannot read the store's events", rc, &d); goto done; }
  if (atomic_load(&rt->cancel)) { o->result = "cancelled"; goto done; }

  size_t n = cofi_dataset_n_interactions(ds);
  uint64_t counts[COFI_PART_COUNT];
  parts = malloc(n ? n : 1);
  if (!parts) { set_error(o, "failed", "holding out the newest events", COFI_ERR_NOMEM, NULL); goto done; }
  rc = cofi_split_recent(ds, HOLDOUT_SHARE, live ? live->m : NULL, parts, counts, &d);
  if (!rc) rc = cofi_dataset_select(ds, parts, COFI_PART_BIT(COFI_PART_TRAIN) | COFI_PART_BIT(COFI_PART_TEST_FOLDIN), &train, &d);
  if (!rc && counts[COFI_PART_TEST] && counts[COFI_PART_TEST_FOLDIN]) {
    rc = cofi_dataset_select(ds, parts, COFI_PART_BIT(COFI_PART_TEST), &test, &d);
    if (!rc) rc = cofi_dataset_select(ds, parts, COFI_PART_BIT(COFI_PART_TEST_FOLDIN), &foldin, &d);
  }
  if (rc) { set_error(o, "failed", "holding out the newest events", rc, &d); goto done; }

  cofi_params p = live ? live->info.params : cofi_params_default();
  p.threads = cfg->retrain_threads;
  p.compute_loss = 1;
  p.progress = cancel_check;
  p.progress_ctx = rt;
  double t0 = now_mono();
  rc = cofi_train(train, &p, &check, &d);
  if (rc) { set_error(o, "failed", "training the check model", rc, &d); goto done; }

  srv_version tmpl;
  memset(&tmpl, 0, sizeof tmpl);
  tmpl.loss = tmpl.train_seconds = NAN;
  tmpl.held_out_events = counts[COFI_PART_TEST];
  tmpl.live_version_at_check = live ? live_version : 0;
  uint64_t new_users = 0, live_users = 0;
  rc = recall_of(check, test, foldin, cfg->retrain_threads, &tmpl.recall, &new_users, &d);
  if (!rc && live) rc = recall_of(live->m, test, foldin, cfg->retrain_threads, &tmpl.live_recall, &live_users, &d);
  if (rc) { set_error(o, "failed", "evaluating on the newest events", rc, &d); goto done; }
  tmpl.held_out_users = new_users;
  if (!live) tmpl.live_recall = NAN;
  bool checked = live && new_users >= MIN_CHECK_USERS;
  bool pass = !checked || tmpl.recall >= tmpl.live_recall - cfg->retrain_margin;
  if (atomic_load(&rt->cancel)) { o->result = "cancelled"; goto done; }

  char path[4000];
  uint32_t version;
  if (!pass) {
    snprintf(tmpl.reason, sizeof tmpl.reason,
             "Recall@%u on the %llu newest events (%llu users) is %.4f, the live version %u's is "
             "%.4f: worse by more than the margin %g",
             SRV_CHECK_K, (unsigned long long)tmpl.held_out_events,
             (unsigned long long)new_users, tmpl.recall, live_version, tmpl.live_recall,
             cfg->retrain_margin);
    tmpl.status = SRV_V_REJECTED;
    pthread_mutex_lock(&rt->vlock);
    rc = save_version(rt, check, &tmpl, &version, path, sizeof path, &d);
    if (!rc) rc = srv_retrain_prune_save(rt, &d);
    srv_retrain_publish(rt);
    pthread_mutex_unlock(&rt->vlock);
    if (rc) { set_error(o, "failed", "writing the rejected version", rc, &d); goto done; }
    o->result = "rejected";
    snprintf(o->error, sizeof o->error, "version %u rejected: %s", version, tmpl.reason);
    fprintf(stderr, "cofi serve: retrain: %s\n", o->error);
    goto done;
  }

  if (live && !checked)
    snprintf(tmpl.reason, sizeof tmpl.reason,
             "not checked: %llu held-out users with events version %u had not seen (at least %d "
             "needed for a meaningful Recall@%u)",
             (unsigned long long)new_users, live_version, MIN_CHECK_USERS, SRV_CHECK_K);
  rc = cofi_train(ds, &p, &final, &d);
  if (rc) { set_error(o, "failed", "training the final model", rc, &d); goto done; }
  if (atomic_load(&rt->cancel)) { o->result = "cancelled"; goto done; }
  tmpl.status = SRV_V_KEPT;
  pthread_mutex_lock(&rt->vlock);
  rc = save_version(rt, final, &tmpl, &version, path, sizeof path, &d);
  if (rc) {
    pthread_mutex_unlock(&rt->vlock);
    set_error(o, "failed", "writing the new version", rc, &d);
    goto done;
  }
  if (rt->vs.live != live_version) {
    /* An operator rolled back while this ran: their choice stands. */
    srv_version *v = srv_versions_find(&rt->vs, version);
    snprintf(v->reason, sizeof v->reason,
             "not swapped in: the live version changed from %u to %u during the retrain",
             live_version, rt->vs.live);
    fprintf(stderr, "cofi serve: retrain: version %u kept, %s\n", version, v->reason);
    cofi_diag d2 = {0};
    int rc2 = srv_retrain_prune_save(rt, &d2); /* may move entries: v is stale after */
    srv_retrain_publish(rt);
    pthread_mutex_unlock(&rt->vlock);
    o->result = "succeeded";
    if (rc2) set_error(o, "failed", "writing the manifest", rc2, &d2);
    goto done;
  }
  rc = srv_reload_from(s, path, &d);
  if (rc == COFI_OK) {
    char why[64];
    snprintf(why, sizeof why, "replaced by version %u", version);
    srv_versions_set_live(&rt->vs, version, why);
  } else {
    srv_version *v = srv_versions_find(&rt->vs, version);
    v->status = SRV_V_REJECTED;
    snprintf(v->reason, sizeof v->reason, "cannot be loaded: %.300s", d.message);
  }
  cofi_diag d2 = {0};
  int rc2 = srv_retrain_prune_save(rt, &d2);
  srv_retrain_publish(rt);
  pthread_mutex_unlock(&rt->vlock);
  if (rc) { set_error(o, "failed", "loading the new version", rc, &d); goto done; }
  if (rc2) { set_error(o, "failed", "writing the manifest", rc2, &d2); goto done; }
  o->result = "succeeded";
  fprintf(stderr, "cofi serve: retrain: version %u is live (Recall@%u %.4f, version %u's %.4f; "
                  "%.1f s)\n",
          version, SRV_CHECK_K, tmpl.recall, live_version, tmpl.live_recall, now_mono() - t0);
done:
  if (live) srv_ref_release(&live->ref);
  free(parts);
  cofi_model_close(check);
  cofi_model_close(final);
  cofi_dataset_free(ds);
  cofi_dataset_free(train);
  cofi_dataset_free(test);
  cofi_dataset_free(foldin);
  if (o->result && strcmp(o->result, "succeeded") && strcmp(o->result, "rejected") && o->error[0])
    fprintf(stderr, "cofi serve: retrain %s: %s\n", o->result, o->error);
}

/* ---- the thread ---------------------------------------------------------------- */

static const char *due(srv_retrain *rt, double now) {
  const cofi_server_config *cfg = &rt->s->cfg;
  if (rt->requested) return "request";
  if (cfg->retrain_every_s > 0 && now >= rt->next_due) return "schedule";
  if (cfg->retrain_after &&
      srv_store_events_accepted(rt->s->store) - rt->events_base >= cfg->retrain_after)
    return "events";
  return NULL;
}

static void *trainer_main(void *arg) {
  srv_retrain *rt = arg;
  /* Lower priority than serving; the threads training creates from here
   * inherit it (nice is per thread on Linux). */
  pid_t tid = (pid_t)syscall(SYS_gettid);
  errno = 0;
  int cur = getpriority(PRIO_PROCESS, (id_t)tid);
  if (errno == 0) setpriority(PRIO_PROCESS, (id_t)tid, cur + 10 > 19 ? 19 : cur + 10);
  pthread_mutex_lock(&rt->lock);
  for (;;) {
    const char *trigger = NULL;
    while (!rt->stop && !(trigger = due(rt, now_mono()))) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += POLL_MS * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&rt->wake, &rt->lock, &ts);
    }
    if (rt->stop) break;
    rt->requested = false;
    rt->running = true;
    rt->trigger = trigger;
    rt->started_unix = (int64_t)time(NULL);
    rt->n_started++;
    rt->events_base = srv_store_events_accepted(rt->s->store);
    rt->next_due = now_mono() + rt->s->cfg.retrain_every_s;
    pthread_mutex_unlock(&rt->lock);
    fprintf(stderr, "cofi serve: retrain started (%s)\n", trigger);
    double t0 = now_mono();
    outcome o;
    run_retrain(rt, &o);
    pthread_mutex_lock(&rt->lock);
    rt->running = false;
    rt->finished_unix = (int64_t)time(NULL);
    rt->last_duration = now_mono() - t0;
    snprintf(rt->last_result, sizeof rt->last_result, "%s", o.result);
    snprintf(rt->last_error, sizeof rt->last_error, "%s",
             strcmp(o.result, "succeeded") ? o.error : "");
    if (!strcmp(o.result, "succeeded")) rt->n_succeeded++;
    else if (!strcmp(o.result, "rejected")) rt->n_rejected++;
    else if (!strcmp(o.result, "cancelled")) rt->n_cancelled++;
    else rt->n_failed++;
  }
  pthread_mutex_unlock(&rt->lock);
  return NULL;
}

int srv_retrain_start(cofi_server *s, cofi_diag *diag) {
  srv_retrain *rt = s->retrain;
  rt->next_due = now_mono() + s->cfg.retrain_every_s;
  rt->events_base = srv_store_events_accepted(s->store);
  int err = pthread_create(&rt->thread, NULL, trainer_main, rt);
  if (err) {
    if (diag) snprintf(diag->message, sizeof diag->message, "cannot start the retrain thread: %s", strerror(err));
    return COFI_ERR_NOMEM;
  }
  rt->thread_started = true;
  return COFI_OK;
}

void srv_retrain_stop(cofi_server *s) {
  srv_retrain *rt = s->retrain;
  if (!rt) return;
  if (rt->thread_started) {
    pthread_mutex_lock(&rt->lock);
    rt->stop = true;
    bool running = rt->running;
    atomic_store(&rt->cancel, true);
    pthread_cond_signal(&rt->wake);
    pthread_mutex_unlock(&rt->lock);
    if (running) fprintf(stderr, "cofi serve: cancelling the running retrain\n");
    pthread_join(rt->thread, NULL);
  }
  srv_versions_free(&rt->vs);
  pthread_cond_destroy(&rt->wake);
  pthread_mutex_destroy(&rt->lock);
  pthread_mutex_destroy(&rt->vlock);
  free(rt);
  s->retrain = NULL;
}

void srv_retrain_request(srv_retrain *rt, bool *was_running) {
  *was_running = rt->running;
  rt->requested = true;
  pthread_cond_signal(&rt->wake);
}

/* ---- reports ---------------------------------------------------------------- */

static void put_time_or_null(srv_buf *b, int64_t t) {
  if (!t) {
    srv_buf_lit(b, "null");
    return;
  }
  time_t tt = (time_t)t;
  struct tm tm;
  char when[32];
  gmtime_r(&tt, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  srv_buf_printf(b, "\"%s\"", when);
}

void srv_retrain_state_json(srv_retrain *rt, srv_buf *b) {
  srv_buf_printf(b, "{\"state\":\"%s\",\"trigger\":", rt->running ? "running" : "idle");
  if (rt->trigger) srv_buf_printf(b, "\"%s\"", rt->trigger);
  else srv_buf_lit(b, "null");
  srv_buf_printf(b, ",\"queued\":%s,\"started\":", rt->requested && rt->running ? "true" : "false");
  put_time_or_null(b, rt->started_unix);
  srv_buf_lit(b, ",\"finished\":");
  put_time_or_null(b, rt->running ? 0 : rt->finished_unix);
  srv_buf_lit(b, ",\"last_result\":");
  if (rt->last_result[0]) srv_buf_printf(b, "\"%s\"", rt->last_result);
  else srv_buf_lit(b, "null");
  srv_buf_lit(b, ",\"last_error\":");
  if (rt->last_error[0]) srv_buf_json_str(b, rt->last_error, strlen(rt->last_error));
  else srv_buf_lit(b, "null");
  srv_buf_lit(b, ",\"last_duration_seconds\":");
  if (rt->finished_unix) srv_buf_float(b, rt->last_duration);
  else srv_buf_lit(b, "null");
  srv_buf_printf(b, ",\"started_total\":%llu,\"succeeded\":%llu,\"rejected\":%llu,\"failed\":%llu,"
                    "\"cancelled\":%llu}",
                 (unsigned long long)rt->n_started, (unsigned long long)rt->n_succeeded,
                 (unsigned long long)rt->n_rejected, (unsigned long long)rt->n_failed,
                 (unsigned long long)rt->n_cancelled);
}

void srv_retrain_health(cofi_server *s, srv_buf *b) {
  srv_retrain *rt = s->retrain;
  if (!rt) return;
  unsigned live = atomic_load(&rt->live);
  pthread_mutex_lock(&rt->lock);
  srv_buf_lit(b, ",\"versions\":{\"live\":");
  if (live) srv_buf_printf(b, "%u", live);
  else srv_buf_lit(b, "null");
  srv_buf_printf(b, ",\"count\":%u,\"retrain\":", atomic_load(&rt->count));
  srv_retrain_state_json(rt, b);
  srv_buf_putc(b, '}');
  pthread_mutex_unlock(&rt->lock);
}

void srv_retrain_metrics(cofi_server *s, srv_buf *b) {
  srv_retrain *rt = s->retrain;
  if (!rt) return;
  pthread_mutex_lock(&rt->lock);
  srv_buf_printf(b,
                 "# HELP cofi_retrains_total Background retrains by how they ended (started: "
                 "begun).\n# TYPE cofi_retrains_total counter\n"
                 "cofi_retrains_total{result=\"started\"} %llu\n"
                 "cofi_retrains_total{result=\"succeeded\"} %llu\n"
                 "cofi_retrains_total{result=\"rejected\"} %llu\n"
                 "cofi_retrains_total{result=\"failed\"} %llu\n"
                 "cofi_retrains_total{result=\"cancelled\"} %llu\n"
                 "# HELP cofi_retrain_running 1 while a retrain runs.\n"
                 "# TYPE cofi_retrain_running gauge\ncofi_retrain_running %d\n"
                 "# HELP cofi_model_version The live version of the models directory.\n"
                 "# TYPE cofi_model_version gauge\ncofi_model_version %u\n",
                 (unsigned long long)rt->n_started, (unsigned long long)rt->n_succeeded,
                 (unsigned long long)rt->n_rejected, (unsigned long long)rt->n_failed,
                 (unsigned long long)rt->n_cancelled, rt->running ? 1 : 0, atomic_load(&rt->live));
  if (rt->finished_unix)
    srv_buf_printf(b, "# HELP cofi_retrain_last_duration_seconds How long the last retrain took.\n"
                      "# TYPE cofi_retrain_last_duration_seconds gauge\n"
                      "cofi_retrain_last_duration_seconds %.3f\n",
                   rt->last_duration);
  pthread_mutex_unlock(&rt->lock);
}

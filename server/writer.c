/*
 * writer.c — the store behind `cofi serve --store`: group commit of writes
 * and a connection for reads.
 *
 * Writes: one writer thread owns the write connection. A request thread
 * (already holding checked input) queues a job and waits on a condition
 * variable; the writer takes everything queued at once and commits every
 * event job of it in ONE transaction (cofi_store_append_events), so
 * concurrent requests share one commit (one fsync with SQLite's
 * synchronous=FULL). Then it marks the jobs done and wakes the waiters,
 * who answer only now: an acknowledged event is committed. When the shared
 * transaction fails and held more than one job, each job is run again on
 * its own, so one job's failure is never another's (and the error a client
 * sees is its own). Other writes (items, users) are run by the writer one
 * by one, in queue order, on the same connection.
 *
 * The wait, bounded: with many connections each sending one event at a
 * time, the clients split into two halves that take turns (one half's
 * events are being committed while the other's queue up), so a commit
 * held half of them. Before taking a queue shorter (in jobs) than the
 * last group, the writer waits for the rest, at most half the last
 * group's commit time and never more than GATHER_MAX_NS: with a slow
 * fsync (3.5 ms a commit) that doubles the events per commit; with a fast
 * one the wait is short, and a lone client's answer comes at most 50%
 * of a commit time later (docs/performance.md, "group commit").
 *
 * Reads (history, GET /items) use a second connection under a mutex.
 * Either connection, after COFI_ERR_STORE (database gone, disk full), is
 * closed and reopened on its next use, so a PostgreSQL server that comes
 * back is used again without a restart.
 */
#include "srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The longest the writer waits for more jobs before a commit. */
#define GATHER_MAX_NS 1000000u

typedef struct wjob {
  const cofi_store_event *ev; /* events job when op == NULL */
  size_t n;
  srv_store_op op;
  void *arg;
  int rc;
  cofi_diag diag;
  bool done;
  pthread_cond_t cv; /* its waiter sleeps here: woken alone, not with every waiter */
  srv_store_done_fn done_fn; /* async: called instead, then the job freed */
  void *done_ctx;
  struct wjob *next;
} wjob;

/* Batch size buckets (events per transaction), then +Inf. */
#define N_BATCH_BUCKETS 10
static const uint64_t batch_bounds[N_BATCH_BUCKETS] = {1, 2, 5, 10, 20, 50, 100, 200, 1000, 10000};

struct srv_store {
  char *url;
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t work;
  wjob *head, *tail;
  size_t queued;           /* jobs in the queue */
  size_t last_jobs;        /* jobs of the last group taken */
  uint64_t last_ns;        /* and the time it took */
  bool stop;
  cofi_store *w; /* the writer's; NULL: reopen before use */

  pthread_mutex_t rmu;
  cofi_store *r; /* reads; NULL: reopen before use */

  /* metrics (written by the writer, except rejected) */
  atomic_uint_fast64_t accepted, rejected, failed, commits;
  atomic_uint_fast64_t commit_buckets[SRV_N_BUCKETS + 1], commit_sum_us;
  atomic_uint_fast64_t batch_buckets[N_BATCH_BUCKETS + 1], batch_sum;
};

static int ensure_open(srv_store *st, cofi_store **c, cofi_diag *diag) {
  if (*c) return COFI_OK;
  return cofi_store_open(st->url, c, diag);
}

/* After a database failure the connection may be dead: drop it. */
static void after(cofi_store **c, int rc) {
  if (rc == COFI_ERR_STORE && *c) {
    cofi_store_close(*c);
    *c = NULL;
  }
}

static void observe_commit(srv_store *st, uint64_t us, size_t n) {
  size_t k = 0;
  while (k < SRV_N_BUCKETS && us > srv_bucket_us[k]) k++;
  atomic_fetch_add_explicit(&st->commit_buckets[k], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->commit_sum_us, us, memory_order_relaxed);
  k = 0;
  while (k < N_BATCH_BUCKETS && n > batch_bounds[k]) k++;
  atomic_fetch_add_explicit(&st->batch_buckets[k], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->batch_sum, n, memory_order_relaxed);
  atomic_fetch_add_explicit(&st->commits, 1, memory_order_relaxed);
}

static int append(srv_store *st, const cofi_store_event *ev, size_t n, cofi_diag *diag) {
  int rc = ensure_open(st, &st->w, diag);
  if (rc != COFI_OK) return rc;
  uint64_t t0 = srv_now_ns();
  rc = cofi_store_append_events(st->w, ev, n, diag);
  if (rc == COFI_OK) observe_commit(st, (srv_now_ns() - t0) / 1000, n);
  after(&st->w, rc);
  return rc;
}

/* Runs jobs [first, end) of the list, all events jobs, as one transaction;
 * on failure of a shared one, each alone. scratch grows as needed. */
static void run_group(srv_store *st, wjob *first, wjob *end, cofi_store_event **scratch,
                      size_t *cap) {
  size_t total = 0, jobs = 0;
  for (wjob *j = first; j != end; j = j->next) total += j->n, jobs++;
  int rc;
  cofi_diag d;
  memset(&d, 0, sizeof d);
  if (jobs == 1) {
    first->rc = append(st, first->ev, first->n, &first->diag);
  } else {
    if (total > *cap) {
      size_t c = *cap ? *cap : 256;
      while (c < total) c *= 2;
      cofi_store_event *p = realloc(*scratch, c * sizeof *p);
      if (p) {
        *scratch = p;
        *cap = c;
      }
    }
    rc = COFI_ERR_NOMEM;
    if (total <= *cap) {
      size_t o = 0;
      for (wjob *j = first; j != end; j = j->next) {
        memcpy(*scratch + o, j->ev, j->n * sizeof **scratch);
        o += j->n;
      }
      rc = append(st, *scratch, total, &d);
    }
    if (rc == COFI_OK) {
      for (wjob *j = first; j != end; j = j->next) j->rc = COFI_OK;
    } else {
      for (wjob *j = first; j != end; j = j->next) j->rc = append(st, j->ev, j->n, &j->diag);
    }
  }
  for (wjob *j = first; j != end; j = j->next) {
    if (j->rc == COFI_OK) atomic_fetch_add_explicit(&st->accepted, j->n, memory_order_relaxed);
    else atomic_fetch_add_explicit(&st->failed, j->n, memory_order_relaxed);
  }
}

/* Under st->mu, with jobs queued: waits (bounded, see the top) while the
 * queue holds fewer jobs than the last group did. */
static void gather(srv_store *st) {
  uint64_t wait = st->last_ns / 2;
  if (wait > GATHER_MAX_NS) wait = GATHER_MAX_NS;
  if (st->last_jobs <= 1 || wait == 0) return;
  struct timespec now, until;
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t ns = (uint64_t)now.tv_nsec + wait;
  until.tv_sec = now.tv_sec + (time_t)(ns / 1000000000u);
  until.tv_nsec = (long)(ns % 1000000000u);
  while (!st->stop && st->queued < st->last_jobs)
    if (pthread_cond_timedwait(&st->work, &st->mu, &until)) break; /* timed out */
}

static void *writer_main(void *arg) {
  srv_store *st = arg;
  cofi_store_event *scratch = NULL;
  size_t cap = 0;
  pthread_mutex_lock(&st->mu);
  for (;;) {
    while (!st->head && !st->stop) pthread_cond_wait(&st->work, &st->mu);
    if (!st->head) break; /* stopping, nothing left */
    gather(st);
    wjob *list = st->head;
    st->head = st->tail = NULL;
    st->last_jobs = st->queued;
    st->queued = 0;
    uint64_t t0 = srv_now_ns();
    pthread_mutex_unlock(&st->mu);
    wjob *j = list;
    while (j) {
      if (j->op) {
        int rc = ensure_open(st, &st->w, &j->diag);
        if (rc == COFI_OK) {
          rc = j->op(st->w, j->arg, &j->diag);
          after(&st->w, rc);
        }
        j->rc = rc;
        j = j->next;
      } else {
        wjob *end = j;
        while (end && !end->op) end = end->next;
        run_group(st, j, end, &scratch, &cap);
        j = end;
      }
    }
    pthread_mutex_lock(&st->mu);
    st->last_ns = srv_now_ns() - t0;
    for (j = list; j;) {
      wjob *next = j->next; /* j belongs to its waiter once done */
      if (j->done_fn) {
        j->done_fn(j->done_ctx, j->rc, &j->diag);
        free(j);
      } else {
        j->done = true;
        pthread_cond_signal(&j->cv);
      }
      j = next;
    }
  }
  pthread_mutex_unlock(&st->mu);
  free(scratch);
  return NULL;
}

static int submit(srv_store *st, wjob *j, cofi_diag *diag) {
  j->done = false;
  j->next = NULL;
  j->rc = COFI_OK;
  memset(&j->diag, 0, sizeof j->diag);
  pthread_cond_init(&j->cv, NULL);
  pthread_mutex_lock(&st->mu);
  if (st->stop) {
    pthread_mutex_unlock(&st->mu);
    pthread_cond_destroy(&j->cv);
    if (diag) snprintf(diag->message, sizeof diag->message, "the server is stopping");
    return COFI_ERR_STORE;
  }
  if (st->tail) st->tail->next = j;
  else st->head = j;
  st->tail = j;
  st->queued++;
  pthread_cond_signal(&st->work);
  while (!j->done) pthread_cond_wait(&j->cv, &st->mu);
  pthread_mutex_unlock(&st->mu);
  pthread_cond_destroy(&j->cv);
  if (diag) *diag = j->diag;
  return j->rc;
}

int srv_store_append(srv_store *st, const cofi_store_event *ev, size_t n, cofi_diag *diag) {
  wjob j = {.ev = ev, .n = n};
  return submit(st, &j, diag);
}

void srv_store_append_async(srv_store *st, const cofi_store_event *ev, size_t n,
                            srv_store_done_fn done, void *ctx) {
  wjob *j = calloc(1, sizeof *j);
  if (!j) {
    cofi_diag d;
    memset(&d, 0, sizeof d);
    snprintf(d.message, sizeof d.message, "out of memory");
    done(ctx, COFI_ERR_NOMEM, &d);
    return;
  }
  j->ev = ev;
  j->n = n;
  j->done_fn = done;
  j->done_ctx = ctx;
  pthread_mutex_lock(&st->mu);
  if (st->stop) {
    pthread_mutex_unlock(&st->mu);
    cofi_diag d;
    memset(&d, 0, sizeof d);
    snprintf(d.message, sizeof d.message, "the server is stopping");
    free(j);
    done(ctx, COFI_ERR_STORE, &d);
    return;
  }
  if (st->tail) st->tail->next = j;
  else st->head = j;
  st->tail = j;
  st->queued++;
  pthread_cond_signal(&st->work);
  pthread_mutex_unlock(&st->mu);
}

int srv_store_write(srv_store *st, srv_store_op op, void *arg, cofi_diag *diag) {
  wjob j = {.op = op, .arg = arg};
  return submit(st, &j, diag);
}

int srv_store_read(srv_store *st, srv_store_op op, void *arg, cofi_diag *diag) {
  pthread_mutex_lock(&st->rmu);
  int rc = COFI_ERR_STORE;
  /* A read is retried once on a fresh connection: an idle connection to a
   * PostgreSQL server that restarted is found dead only when used. (Writes
   * are not retried: a commit whose answer was lost may have happened.) */
  for (int attempt = 0; attempt < 2 && rc == COFI_ERR_STORE; attempt++) {
    rc = ensure_open(st, &st->r, diag);
    if (rc == COFI_OK) {
      rc = op(st->r, arg, diag);
      after(&st->r, rc);
    }
  }
  pthread_mutex_unlock(&st->rmu);
  return rc;
}

void srv_store_count_rejected(srv_store *st, uint64_t n) {
  atomic_fetch_add_explicit(&st->rejected, n, memory_order_relaxed);
}

int srv_store_start(const char *url, srv_store **out, cofi_diag *diag) {
  *out = NULL;
  srv_store *st = calloc(1, sizeof *st);
  if (!st || !(st->url = strdup(url))) {
    free(st);
    if (diag) snprintf(diag->message, sizeof diag->message, "out of memory");
    return COFI_ERR_NOMEM;
  }
  pthread_mutex_init(&st->mu, NULL);
  pthread_mutex_init(&st->rmu, NULL);
  /* gather's deadline is on the monotonic clock */
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&st->work, &ca);
  pthread_condattr_destroy(&ca);
  int rc = cofi_store_open(url, &st->w, diag);
  if (rc == COFI_OK && cofi_store_migration(st->w)) /* said once, by the first opener */
    fprintf(stderr, "cofi serve: %s\n", cofi_store_migration(st->w));
  if (rc == COFI_OK) rc = cofi_store_open(url, &st->r, diag);
  if (rc == COFI_OK) {
    int e = pthread_create(&st->thread, NULL, writer_main, st);
    if (e) {
      if (diag) snprintf(diag->message, sizeof diag->message, "cannot start the store writer thread");
      rc = COFI_ERR_NOMEM;
    } else {
      st->thread_started = true;
    }
  }
  if (rc != COFI_OK) {
    srv_store_stop(st);
    return rc;
  }
  *out = st;
  return COFI_OK;
}

void srv_store_drain(srv_store *st) {
  if (!st) return;
  pthread_mutex_lock(&st->mu);
  st->stop = true;
  pthread_cond_broadcast(&st->work);
  pthread_mutex_unlock(&st->mu);
  if (st->thread_started) {
    pthread_join(st->thread, NULL);
    st->thread_started = false;
  }
}

void srv_store_stop(srv_store *st) {
  if (!st) return;
  srv_store_drain(st);
  cofi_store_close(st->w);
  cofi_store_close(st->r);
  pthread_mutex_destroy(&st->mu);
  pthread_mutex_destroy(&st->rmu);
  pthread_cond_destroy(&st->work);
  free(st->url);
  free(st);
}

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

static void write_le_us(srv_buf *b, uint64_t us) {
  srv_buf_printf(b, "%llu.%06llu", (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000));
}

void srv_store_metrics_write(srv_store *st, srv_buf *b) {
  srv_buf_printf(b,
                 "# HELP cofi_store_events_accepted_total Events committed to the store "
                 "(POST /feedback).\n# TYPE cofi_store_events_accepted_total counter\n"
                 "cofi_store_events_accepted_total %llu\n"
                 "# HELP cofi_store_events_rejected_total Events refused: bad input (the whole "
                 "request, reason=\"invalid\") or the database failed (reason=\"store\").\n"
                 "# TYPE cofi_store_events_rejected_total counter\n"
                 "cofi_store_events_rejected_total{reason=\"invalid\"} %llu\n"
                 "cofi_store_events_rejected_total{reason=\"store\"} %llu\n",
                 (unsigned long long)LOAD(st->accepted), (unsigned long long)LOAD(st->rejected),
                 (unsigned long long)LOAD(st->failed));
  srv_buf_lit(b, "# HELP cofi_store_commit_duration_seconds Time of one event transaction "
                 "(group commit), from its start to its commit.\n"
                 "# TYPE cofi_store_commit_duration_seconds histogram\n");
  uint64_t cum = 0;
  for (int k = 0; k <= SRV_N_BUCKETS; k++) {
    cum += LOAD(st->commit_buckets[k]);
    srv_buf_lit(b, "cofi_store_commit_duration_seconds_bucket{le=\"");
    if (k < SRV_N_BUCKETS) write_le_us(b, srv_bucket_us[k]);
    else srv_buf_lit(b, "+Inf");
    srv_buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
  }
  srv_buf_lit(b, "cofi_store_commit_duration_seconds_sum ");
  write_le_us(b, LOAD(st->commit_sum_us));
  srv_buf_printf(b, "\ncofi_store_commit_duration_seconds_count %llu\n",
                 (unsigned long long)LOAD(st->commits));
  srv_buf_lit(b, "# HELP cofi_store_commit_batch_events Events per committed transaction "
                 "(how many requests' events shared one commit).\n"
                 "# TYPE cofi_store_commit_batch_events histogram\n");
  cum = 0;
  for (int k = 0; k <= N_BATCH_BUCKETS; k++) {
    cum += LOAD(st->batch_buckets[k]);
    srv_buf_lit(b, "cofi_store_commit_batch_events_bucket{le=\"");
    if (k < N_BATCH_BUCKETS) srv_buf_u64(b, batch_bounds[k]);
    else srv_buf_lit(b, "+Inf");
    srv_buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
  }
  srv_buf_printf(b, "cofi_store_commit_batch_events_sum %llu\ncofi_store_commit_batch_events_count %llu\n",
                 (unsigned long long)LOAD(st->batch_sum), (unsigned long long)LOAD(st->commits));
}

uint64_t srv_store_events_accepted(srv_store *st) {
  return st ? (uint64_t)atomic_load_explicit(&st->accepted, memory_order_relaxed) : 0;
}

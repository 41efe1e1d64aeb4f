/*
 * feed.c — replicas see each other's new events.
 *
 * A server marks the users it commits events for (online.c), but several
 * servers may share one store (docs/scale-out.md): this thread polls the
 * store every --feed-interval for the events after a watermark (the
 * store's newest seq when the server started), marks their users through
 * srv_online_touch (cached vector dropped, the next /recommend folds in
 * model row + store history), and advances the watermark. It has its own
 * connection, so a slow or failing store never holds a request's read.
 *
 * Gaps (PostgreSQL only): a seq is taken at insertion, not at commit, so
 * a transaction open during a poll may later commit seqs below the
 * watermark. Every seq missing between two seqs read is kept as a gap and
 * read again on each poll until it shows (its user is then marked) or
 * SRV_FEED_GAP_HOLD_S passes (rolled back, or the events of a deleted
 * user). SQLite commits in seq order (one writer at a time), so it has no
 * such gaps and none are kept.
 *
 * The server's own events come back through the feed too: their users'
 * cached vectors are dropped once more (one extra history read per
 * active user per interval; docs/serving.md).
 *
 * Failures: a store error is logged once when the feed starts failing and
 * once when it works again; the connection is reopened on the next poll.
 */
#include "feed.h"
#include "online.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct gap {
  int64_t lo, hi; /* missing seqs lo..hi */
  double since;   /* first seen missing (monotonic seconds) */
} gap;

struct srv_feed {
  cofi_server *srv;
  double interval_s;
  bool track_gaps;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;

  /* The poll thread's alone (start fills them before it runs). */
  cofi_store *conn; /* NULL: reopen on the next poll */
  int64_t watermark;
  gap *gaps;
  size_t n_gaps;
  bool failing;

  atomic_uint_fast64_t polls, errors, events, users, gaps_dropped;
  _Atomic int64_t watermark_seen;
  _Atomic size_t n_gaps_seen;
  _Atomic uint64_t caught_up_ns; /* the last poll that read to the store's end */
};

static double now_s(void) { return (double)srv_now_ns() / 1e9; }

/* ---- gaps ------------------------------------------------------------------ */

/* Appends lo..hi (above every gap held: gaps stay sorted); when full the
 * oldest (lowest) is dropped. */
static void gap_add(srv_feed *f, gap **list, size_t *n, int64_t lo, int64_t hi, double since) {
  if (*n == SRV_FEED_MAX_GAPS) {
    memmove(*list, *list + 1, (*n - 1) * sizeof **list);
    (*n)--;
    atomic_fetch_add_explicit(&f->gaps_dropped, 1, memory_order_relaxed);
  }
  (*list)[(*n)++] = (gap){lo, hi, since};
}

/* ---- one poll -------------------------------------------------------------- */

typedef struct poll_ctx {
  srv_feed *f;
  srv_strmap marked; /* users marked by this poll (each once) */
  bool mark;         /* false at start: only gaps are looked for */
  int64_t prev;      /* the last seq read */
  gap *out;          /* gaps found */
  size_t n_out;
  double since;      /* the time to give new gaps */
  uint64_t rows;
} poll_ctx;

static void mark_user(poll_ctx *c, const char *user, size_t len) {
  if (srv_strmap_get(&c->marked, user, len)) return;
  /* Out of memory in the map only means the user may be marked twice. */
  srv_strmap_put(&c->marked, user, len, (void *)1, NULL);
  srv_online_touch(c->f->srv->online, user, len);
  atomic_fetch_add_explicit(&c->f->users, 1, memory_order_relaxed);
}

static int on_event(int64_t seq, const char *user, size_t len, void *ctx) {
  poll_ctx *c = ctx;
  if (c->f->track_gaps && seq > c->prev + 1)
    gap_add(c->f, &c->out, &c->n_out, c->prev + 1, seq - 1, c->since);
  c->prev = seq;
  c->rows++;
  if (c->mark) mark_user(c, user, len);
  return 0;
}

/* c->rows counts the rows read (by the poll, across calls). */
static int read_range(srv_feed *f, poll_ctx *c, int64_t after, int64_t upto, uint32_t max,
                      int64_t *last, cofi_diag *d) {
  c->prev = after;
  uint64_t before = c->rows;
  int rc = cofi_store_users_since(f->conn, after, upto, max, on_event, c, last, d);
  atomic_fetch_add_explicit(&f->events, c->rows - before, memory_order_relaxed);
  return rc;
}

/* Reads the gaps held, then the events after the watermark, at most
 * SRV_FEED_MAX_EVENTS rows in all (what is left waits for the next poll);
 * the gaps still missing (and new ones) replace f->gaps. */
static int poll_once(srv_feed *f, poll_ctx *c, cofi_diag *d) {
  double now = now_s();
  c->n_out = 0;
  uint64_t budget = SRV_FEED_MAX_EVENTS;
  for (size_t i = 0; i < f->n_gaps; i++) {
    gap g = f->gaps[i];
    if (now - g.since > SRV_FEED_GAP_HOLD_S) continue; /* rolled back or deleted */
    if (budget == 0) { /* kept for the next poll */
      gap_add(f, &c->out, &c->n_out, g.lo, g.hi, g.since);
      continue;
    }
    c->since = g.since;
    int64_t last = 0;
    uint64_t width = (uint64_t)(g.hi - g.lo) + 1, before = c->rows;
    int rc = read_range(f, c, g.lo - 1, g.hi, (uint32_t)(width < budget ? width : budget), &last, d);
    if (rc != COFI_OK) return rc; /* the gaps held stay as they were */
    budget -= c->rows - before;
    if (last < g.hi) gap_add(f, &c->out, &c->n_out, last + 1, g.hi, g.since);
  }
  if (budget > 0) {
    c->since = now;
    int64_t last = f->watermark;
    uint64_t before = c->rows;
    int rc = read_range(f, c, f->watermark, -1, (uint32_t)budget, &last, d);
    if (rc != COFI_OK) return rc;
    f->watermark = last;
    if (c->rows - before < budget) atomic_store(&f->caught_up_ns, srv_now_ns());
  }
  gap *tmp = f->gaps;
  f->gaps = c->out;
  f->n_gaps = c->n_out;
  c->out = tmp;
  atomic_store(&f->watermark_seen, f->watermark);
  atomic_store(&f->n_gaps_seen, f->n_gaps);
  return COFI_OK;
}

static void poll_logged(srv_feed *f, poll_ctx *c) {
  cofi_diag d;
  memset(&d, 0, sizeof d);
  c->rows = 0;
  int rc = f->conn ? COFI_OK : cofi_store_open(f->srv->cfg.store_url, &f->conn, &d);
  if (rc == COFI_OK) rc = poll_once(f, c, &d);
  srv_strmap_free(&c->marked, NULL);
  atomic_fetch_add_explicit(&f->polls, 1, memory_order_relaxed);
  if (rc == COFI_OK) {
    if (f->failing) fprintf(stderr, "cofi serve: event feed: reading the store again\n");
    f->failing = false;
    return;
  }
  atomic_fetch_add_explicit(&f->errors, 1, memory_order_relaxed);
  if (!f->failing)
    fprintf(stderr, "cofi serve: event feed: reading the store's new events failed: %s "
                    "(retrying every %g s; other servers' events are not seen meanwhile)\n",
            d.message[0] ? d.message : cofi_error_message(rc), f->interval_s);
  f->failing = true;
  if (rc == COFI_ERR_STORE) { /* the connection may be dead */
    cofi_store_close(f->conn);
    f->conn = NULL;
  }
}

static void *feed_main(void *arg) {
  srv_feed *f = arg;
  poll_ctx c;
  memset(&c, 0, sizeof c);
  c.f = f;
  c.mark = true;
  c.out = malloc(SRV_FEED_MAX_GAPS * sizeof *c.out);
  pthread_mutex_lock(&f->mu);
  while (!f->stop) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)(f->interval_s * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000u);
    until.tv_nsec = (long)(ns % 1000000000u);
    while (!f->stop && pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0) {
    }
    if (f->stop) break;
    pthread_mutex_unlock(&f->mu);
    if (c.out) poll_logged(f, &c);
    else if ((c.out = malloc(SRV_FEED_MAX_GAPS * sizeof *c.out)) == NULL && !f->failing) {
      fprintf(stderr, "cofi serve: event feed: out of memory; retrying\n");
      f->failing = true;
    }
    pthread_mutex_lock(&f->mu);
  }
  pthread_mutex_unlock(&f->mu);
  free(c.out);
  return NULL;
}

/* ---- start and stop -------------------------------------------------------- */

static void feed_free(srv_feed *f) {
  cofi_store_close(f->conn);
  free(f->gaps);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  free(f);
}

/* The watermark, and the gaps among the last seqs below it. */
static int feed_init(srv_feed *f, cofi_diag *d) {
  int rc = cofi_store_open(f->srv->cfg.store_url, &f->conn, d);
  if (rc == COFI_OK) rc = cofi_store_last_seq(f->conn, &f->watermark, d);
  if (rc != COFI_OK || !f->track_gaps) return rc;
  poll_ctx c;
  memset(&c, 0, sizeof c);
  c.f = f;
  c.out = f->gaps;
  c.since = now_s();
  int64_t from = f->watermark > SRV_FEED_START_LOOKBACK ? f->watermark - SRV_FEED_START_LOOKBACK : 0;
  rc = read_range(f, &c, from, f->watermark, SRV_FEED_START_LOOKBACK, NULL, d);
  f->n_gaps = c.n_out;
  atomic_store(&f->n_gaps_seen, f->n_gaps);
  return rc;
}

int srv_feed_start(cofi_server *s, cofi_diag *diag) {
  if (!s->store || !s->online || !(s->cfg.feed_interval_s > 0)) return COFI_OK;
  srv_feed *f = calloc(1, sizeof *f);
  if (!f || !(f->gaps = malloc(SRV_FEED_MAX_GAPS * sizeof *f->gaps))) {
    free(f);
    snprintf(diag->message, sizeof diag->message, "out of memory starting the event feed");
    return COFI_ERR_NOMEM;
  }
  f->srv = s;
  f->interval_s = s->cfg.feed_interval_s;
  f->track_gaps = strncmp(s->cfg.store_url, "sqlite:", 7) != 0;
  pthread_mutex_init(&f->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&f->cv, &ca);
  pthread_condattr_destroy(&ca);
  atomic_store(&f->caught_up_ns, srv_now_ns());
  int rc = feed_init(f, diag);
  if (rc != COFI_OK) {
    char why[sizeof diag->message];
    snprintf(why, sizeof why, "%s", diag->message[0] ? diag->message : cofi_error_message(rc));
    snprintf(diag->message, sizeof diag->message, "starting the event feed: %.440s", why);
    feed_free(f);
    return rc;
  }
  atomic_store(&f->watermark_seen, f->watermark);
  if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
    feed_free(f);
    snprintf(diag->message, sizeof diag->message, "cannot start the event feed thread");
    return COFI_ERR_NOMEM;
  }
  f->started = true;
  s->feed = f;
  return COFI_OK;
}

void srv_feed_stop(cofi_server *s) {
  srv_feed *f = s->feed;
  if (!f || !f->started) return;
  pthread_mutex_lock(&f->mu);
  f->stop = true;
  pthread_cond_signal(&f->cv);
  pthread_mutex_unlock(&f->mu);
  pthread_join(f->thread, NULL);
  f->started = false;
  cofi_store_close(f->conn);
  f->conn = NULL;
}

void srv_feed_free(cofi_server *s) {
  if (!s->feed) return;
  srv_feed_stop(s);
  feed_free(s->feed);
  s->feed = NULL;
}

void srv_feed_metrics_write(cofi_server *s, srv_buf *b) {
  srv_feed *f = s->feed;
  if (!f) return;
  uint64_t now = srv_now_ns(), at = atomic_load(&f->caught_up_ns);
  srv_buf_printf(
      b,
      "# HELP cofi_feed_polls_total Polls of the store for events committed by any server.\n"
      "# TYPE cofi_feed_polls_total counter\ncofi_feed_polls_total %llu\n"
      "# HELP cofi_feed_errors_total Polls that failed (retried the next interval).\n"
      "# TYPE cofi_feed_errors_total counter\ncofi_feed_errors_total %llu\n"
      "# HELP cofi_feed_events_total Events read by the polls.\n"
      "# TYPE cofi_feed_events_total counter\ncofi_feed_events_total %llu\n"
      "# HELP cofi_feed_users_marked_total Users marked as having new events by the polls.\n"
      "# TYPE cofi_feed_users_marked_total counter\ncofi_feed_users_marked_total %llu\n"
      "# HELP cofi_feed_watermark_seq The newest event seq read.\n"
      "# TYPE cofi_feed_watermark_seq gauge\ncofi_feed_watermark_seq %lld\n"
      "# HELP cofi_feed_gaps Seq ranges not yet committed below the watermark, read again each poll.\n"
      "# TYPE cofi_feed_gaps gauge\ncofi_feed_gaps %zu\n"
      "# HELP cofi_feed_gaps_dropped_total Gaps dropped because too many were held.\n"
      "# TYPE cofi_feed_gaps_dropped_total counter\ncofi_feed_gaps_dropped_total %llu\n"
      "# HELP cofi_feed_lag_seconds Seconds since a poll last read every event committed.\n"
      "# TYPE cofi_feed_lag_seconds gauge\ncofi_feed_lag_seconds %.3f\n",
      (unsigned long long)atomic_load(&f->polls), (unsigned long long)atomic_load(&f->errors),
      (unsigned long long)atomic_load(&f->events), (unsigned long long)atomic_load(&f->users),
      (long long)atomic_load(&f->watermark_seen), atomic_load(&f->n_gaps_seen),
      (unsigned long long)atomic_load(&f->gaps_dropped),
      now > at ? (double)(now - at) / 1e9 : 0.0);
}

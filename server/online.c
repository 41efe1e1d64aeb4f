/*
 * online.c — a user's recommendations follow their new events.
 *
 * Which events the model has not seen: the server cannot tell from a
 * model file which store events went into it, so it keeps an in-memory
 * set of the users for whom it committed events (POST /feedback) or whom
 * it deleted since it started. A user in the model and not in that set is
 * answered from the model exactly as without a store (no store read, no
 * lock: an atomic counter says whether the set is empty, a read lock
 * guards it otherwise). Any other user is folded in from their whole
 * history: the model's training row united with the items of their store
 * events (read in one query), each item once with value 1, solved by
 * cofi_fold_in against the current item factors, so the answer is the
 * one `cofi recommend MODEL --liked <those items>` gives. A union (and
 * not "events newer than the model") is right whatever the model saw:
 * an event already in the training row only repeats an item of the set.
 *
 * The cache: the folded-in vectors and their item sets of the most
 * recently answered such users, at most max_users (LRU), keyed by user ID
 * and stamped with the model (pointer and generation) and the time: an
 * entry of another model (after a reload or a swap) or older than the TTL
 * is a miss. This server's own commits drop the user's entry; events
 * written by other servers to a shared PostgreSQL store are seen when the
 * entry expires (TTL) or the user is first answered here.
 */
#include "online.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct centry {
  char *id;
  size_t len;
  const srv_model *model;
  uint64_t generation;
  double at; /* CLOCK_MONOTONIC seconds */
  float *vec;
  uint32_t factors;
  uint32_t *seen;
  size_t n_seen;
  /* Items of events this server committed since the entry was made, not
   * yet folded in: (uint32 length, bytes) back to back. */
  char *pend;
  size_t pend_len, pend_cap;
  struct centry *prev, *next; /* LRU list, most recent first */
} centry;

struct srv_online {
  uint32_t max_users;
  double ttl_s;
  pthread_rwlock_t dirty_lock;
  srv_strmap dirty;      /* user ID -> how many times touched */
  atomic_size_t n_dirty; /* dirty.n, read without the lock */
  pthread_mutex_t cache_lock;
  srv_strmap cache; /* user ID -> centry */
  centry *head, *tail;
  atomic_uint_fast64_t hits, misses, evictions, folds;
  /* Rendered /popular and /latest answers (lists_routes.c). */
  pthread_mutex_t lists_lock;
  struct list_entry {
    char *key, *json;
    size_t key_len, json_len;
    double at;
  } lists[SRV_LIST_CACHE];
};

static double now_s(void) { return (double)srv_now_ns() / 1e9; }

srv_online *srv_online_new(uint32_t max_users, double ttl_s) {
  srv_online *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  o->max_users = max_users;
  o->ttl_s = ttl_s;
  pthread_rwlock_init(&o->dirty_lock, NULL);
  pthread_mutex_init(&o->cache_lock, NULL);
  pthread_mutex_init(&o->lists_lock, NULL);
  return o;
}

static void centry_free(void *p) {
  centry *e = p;
  if (!e) return;
  free(e->id);
  free(e->vec);
  free(e->seen);
  free(e->pend);
  free(e);
}

void srv_online_free(srv_online *o) {
  if (!o) return;
  srv_strmap_free(&o->dirty, NULL);
  srv_strmap_free(&o->cache, centry_free);
  pthread_rwlock_destroy(&o->dirty_lock);
  pthread_mutex_destroy(&o->cache_lock);
  srv_online_lists_clear(o);
  pthread_mutex_destroy(&o->lists_lock);
  free(o);
}

static void unlink_entry(srv_online *o, centry *e) {
  if (e->prev) e->prev->next = e->next;
  else o->head = e->next;
  if (e->next) e->next->prev = e->prev;
  else o->tail = e->prev;
  e->prev = e->next = NULL;
}

static void push_front(srv_online *o, centry *e) {
  e->prev = NULL;
  e->next = o->head;
  if (o->head) o->head->prev = e;
  o->head = e;
  if (!o->tail) o->tail = e;
}

static void drop_cached(srv_online *o, const char *user, size_t len) {
  pthread_mutex_lock(&o->cache_lock);
  centry *e = srv_strmap_remove(&o->cache, user, len);
  if (e) unlink_entry(o, e);
  pthread_mutex_unlock(&o->cache_lock);
  centry_free(e);
}

/* Counts a change of the user (so a vector computed before it is not
 * cached after it: see cache_put). Out of memory here only loses the
 * mark: the user is then answered from the model until their next event
 * (or the next training). */
static void mark(srv_online *o, const char *user, size_t len) {
  pthread_rwlock_wrlock(&o->dirty_lock);
  uintptr_t n = (uintptr_t)srv_strmap_get(&o->dirty, user, len);
  if (srv_strmap_put(&o->dirty, user, len, (void *)(n + 1), NULL))
    atomic_store(&o->n_dirty, o->dirty.n);
  pthread_rwlock_unlock(&o->dirty_lock);
}

void srv_online_touch(srv_online *o, const char *user, size_t len) {
  mark(o, user, len);
  drop_cached(o, user, len);
}

void srv_online_event(srv_online *o, const char *user, size_t len, const char *item,
                      size_t item_len) {
  mark(o, user, len);
  pthread_mutex_lock(&o->cache_lock);
  centry *e = srv_strmap_get(&o->cache, user, len);
  bool drop = false;
  if (e) {
    size_t need = e->pend_len + sizeof(uint32_t) + item_len;
    if (need > e->pend_cap) {
      size_t cap = need > 2 * e->pend_cap ? need : 2 * e->pend_cap;
      char *p = realloc(e->pend, cap);
      if (p) {
        e->pend = p;
        e->pend_cap = cap;
      }
    }
    if (need <= e->pend_cap) {
      uint32_t l = (uint32_t)item_len;
      memcpy(e->pend + e->pend_len, &l, sizeof l);
      memcpy(e->pend + e->pend_len + sizeof l, item, item_len);
      e->pend_len = need;
    } else {
      drop = true; /* out of memory: the next answer reads the store */
    }
  }
  pthread_mutex_unlock(&o->cache_lock);
  if (drop) drop_cached(o, user, len);
}

/* How many times the user was changed here (0: never). */
static uintptr_t touches_of(srv_online *o, srv_span user) {
  if (atomic_load_explicit(&o->n_dirty, memory_order_acquire) == 0) return 0;
  pthread_rwlock_rdlock(&o->dirty_lock);
  uintptr_t n = (uintptr_t)srv_strmap_get(&o->dirty, user.p, user.len);
  pthread_rwlock_unlock(&o->dirty_lock);
  return n;
}

/* A copy of a fresh entry for this model (with its pending items in
 * *pend, malloc'd, when there are any), or false. */
static bool cache_get(srv_online *o, const srv_model *sm, srv_span user, srv_online_user *out,
                      char **pend, size_t *pend_len) {
  *pend = NULL;
  *pend_len = 0;
  if (!o->max_users) return false;
  bool hit = false;
  pthread_mutex_lock(&o->cache_lock);
  centry *e = srv_strmap_get(&o->cache, user.p, user.len);
  if (e && (e->model != sm || e->generation != sm->generation ||
            (o->ttl_s > 0 && now_s() - e->at > o->ttl_s))) {
    srv_strmap_remove(&o->cache, user.p, user.len);
    unlink_entry(o, e);
    centry_free(e);
    e = NULL;
  }
  if (e) {
    out->vec = malloc(e->factors * sizeof *out->vec);
    out->seen = malloc((e->n_seen ? e->n_seen : 1) * sizeof *out->seen);
    if (e->pend_len && (*pend = malloc(e->pend_len))) {
      memcpy(*pend, e->pend, e->pend_len);
      *pend_len = e->pend_len;
    }
    if (out->vec && out->seen && (!e->pend_len || *pend)) {
      memcpy(out->vec, e->vec, e->factors * sizeof *out->vec);
      memcpy(out->seen, e->seen, e->n_seen * sizeof *out->seen);
      out->n_seen = e->n_seen;
      unlink_entry(o, e);
      push_front(o, e);
      hit = true;
    } else {
      free(out->vec);
      free(out->seen);
      free(*pend);
      *pend = NULL;
      *pend_len = 0;
      out->vec = NULL;
      out->seen = NULL;
    }
  }
  pthread_mutex_unlock(&o->cache_lock);
  atomic_fetch_add_explicit(hit ? &o->hits : &o->misses, 1, memory_order_relaxed);
  return hit;
}

/* Stores a copy (best effort: out of memory only skips caching), unless
 * the user was changed since the vector's history was read (touches is
 * the count then): the vector may lack that change. */
static void cache_put(srv_online *o, const srv_model *sm, srv_span user, const srv_online_user *u,
                      uintptr_t touches) {
  if (!o->max_users) return;
  centry *e = calloc(1, sizeof *e);
  if (!e) return;
  e->id = malloc(user.len);
  e->vec = malloc(sm->info.factors * sizeof *e->vec);
  e->seen = malloc((u->n_seen ? u->n_seen : 1) * sizeof *e->seen);
  if (!e->id || !e->vec || !e->seen) {
    centry_free(e);
    return;
  }
  memcpy(e->id, user.p, user.len);
  e->len = user.len;
  e->model = sm;
  e->generation = sm->generation;
  e->at = now_s();
  e->factors = sm->info.factors;
  memcpy(e->vec, u->vec, e->factors * sizeof *e->vec);
  memcpy(e->seen, u->seen, u->n_seen * sizeof *e->seen);
  e->n_seen = u->n_seen;
  centry *evicted = NULL, *old = NULL;
  pthread_mutex_lock(&o->cache_lock);
  /* Checked under the cache lock: srv_online_event marks before it takes
   * this lock, so a change either shows here or finds our entry. */
  if (touches_of(o, user) != touches ||
      !srv_strmap_put(&o->cache, user.p, user.len, e, (void **)&old)) {
    pthread_mutex_unlock(&o->cache_lock);
    centry_free(e);
    return;
  }
  if (old) unlink_entry(o, old);
  push_front(o, e);
  if (o->cache.n > o->max_users) {
    evicted = o->tail;
    unlink_entry(o, evicted);
    srv_strmap_remove(&o->cache, evicted->id, evicted->len);
    atomic_fetch_add_explicit(&o->evictions, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&o->cache_lock);
  centry_free(old);
  centry_free(evicted);
}

/* The user's items from the store (cofi_store_user_items: IDs only, each
 * once), mapped to the model's item indices as they arrive, appended to
 * seen after the model row's n_row items. */
typedef struct hist_read {
  srv_span user;
  const cofi_model *m;
  uint32_t *seen;
  size_t n, cap, n_row;
  bool nomem;
} hist_read;

static int add_store_item(const char *item_id, size_t len, void *ctx) {
  hist_read *h = ctx;
  /* Items the model does not know have no factors: left out here (items
   * given vectors from their metadata, server/new_items.c, would join
   * the history at this point). */
  int64_t it = cofi_model_find_item(h->m, item_id, len);
  if (it < 0) return 0;
  if (h->n == h->cap) {
    size_t cap = h->cap * 2 + 64;
    uint32_t *seen = realloc(h->seen, cap * sizeof *seen);
    if (!seen) {
      h->nomem = true;
      return 1;
    }
    h->seen = seen;
    h->cap = cap;
  }
  h->seen[h->n++] = (uint32_t)it;
  return 0;
}

static int op_user_items(cofi_store *s, void *arg, cofi_diag *d) {
  hist_read *h = arg;
  h->n = h->n_row; /* a read retried on a fresh connection starts over */
  return cofi_store_user_items(s, h->user.p, h->user.len, add_store_item, h, d);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static bool store_failed(srv_error *err, int rc, const cofi_diag *d) {
  if (rc == COFI_ERR_NOMEM) return srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
  return srv_fail(err, 503, "store_unavailable",
                  "reading the user's events from the store failed: %s",
                  d->message[0] ? d->message : cofi_error_message(rc));
}

/* Sorts and dedups seen[0..n); the count left. */
static size_t sort_unique(uint32_t *seen, size_t n) {
  qsort(seen, n, sizeof *seen, cmp_u32);
  size_t uniq = 0;
  for (size_t i = 0; i < n; i++)
    if (i == 0 || seen[i] != seen[uniq - 1]) seen[uniq++] = seen[i];
  return uniq;
}

static bool nomem(srv_error *err) {
  return srv_fail(err, 503, "out_of_memory", "the server is out of memory; retry later");
}

/* The user's history from the store, united with the model row: into
 * out->seen (sorted, unique). */
static bool read_history(srv_req *r, srv_model *sm, srv_span user, srv_online_user *out,
                         srv_error *err) {
  const uint32_t *row = NULL;
  const float *vals = NULL;
  size_t n_row = out->model_user >= 0
                     ? cofi_model_user_items(sm->m, (uint32_t)out->model_user, &row, &vals)
                     : 0;
  hist_read h = {user, sm->m, NULL, n_row, n_row + 64, n_row, false};
  if (!(h.seen = malloc(h.cap * sizeof *h.seen))) return nomem(err);
  if (n_row) memcpy(h.seen, row, n_row * sizeof *row);
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = srv_store_read(r->srv->store, op_user_items, &h, &d);
  if (rc == COFI_ERR_NOT_FOUND) rc = COFI_OK; /* no events: the model row alone */
  if (rc != COFI_OK) {
    free(h.seen);
    return h.nomem ? nomem(err) : store_failed(err, rc, &d);
  }
  out->seen = h.seen;
  out->n_seen = sort_unique(h.seen, h.n);
  return true;
}

/* A cached entry's pending items (events committed here since) added to
 * its seen set; false when out of memory. */
static bool add_pending(const srv_model *sm, srv_online_user *out, const char *pend, size_t len) {
  size_t n_new = 0;
  for (size_t at = 0; at < len; n_new++) {
    uint32_t l;
    memcpy(&l, pend + at, sizeof l);
    at += sizeof l + l;
  }
  uint32_t *seen = realloc(out->seen, (out->n_seen + n_new + 1) * sizeof *seen);
  if (!seen) return false;
  out->seen = seen;
  size_t n = out->n_seen;
  for (size_t at = 0; at < len;) {
    uint32_t l;
    memcpy(&l, pend + at, sizeof l);
    int64_t it = cofi_model_find_item(sm->m, pend + at + sizeof l, l);
    if (it >= 0) seen[n++] = (uint32_t)it;
    at += sizeof l + l;
  }
  out->n_seen = sort_unique(seen, n);
  return true;
}

bool srv_online_resolve(srv_req *r, srv_model *sm, srv_span user, srv_online_user *out,
                        srv_error *err) {
  memset(out, 0, sizeof *out);
  out->model_user = cofi_model_find_user(sm->m, user.p, user.len);
  srv_online *o = r->srv->online;
  if (!r->srv->store || !o) {
    out->kind = out->model_user >= 0 ? SRV_USER_MODEL : SRV_USER_NONE;
    return true;
  }
  uintptr_t touches = touches_of(o, user);
  if (out->model_user >= 0 && touches == 0) {
    out->kind = SRV_USER_MODEL;
    return true;
  }
  char *pend = NULL;
  size_t pend_len = 0;
  if (cache_get(o, sm, user, out, &pend, &pend_len)) {
    out->kind = SRV_USER_ONLINE;
    if (!pend) {
      out->cached = true;
      return true;
    }
    /* New events since: their items join the cached set, no store read. */
    bool ok = add_pending(sm, out, pend, pend_len);
    free(pend);
    if (!ok) {
      srv_online_user_free(out);
      return nomem(err);
    }
  } else if (!read_history(r, sm, user, out, err)) {
    srv_online_user_free(out);
    return false;
  }
  if (out->n_seen == 0) {
    srv_online_user_free(out);
    out->kind = SRV_USER_NONE;
    return true;
  }
  if (cofi_model_kind_of(sm->m) != COFI_MODEL_ALS) {
    /* EASE, item-kNN: no user vector; the caller scores the history itself
     * (cofi_recommend_history). Not cached: reading the set is the cost. */
    out->kind = SRV_USER_ONLINE;
    return true;
  }
  if (!out->vec && !(out->vec = malloc(sm->info.factors * sizeof *out->vec))) {
    srv_online_user_free(out);
    return nomem(err);
  }
  /* oldest first: a model with a recency half-life weighs the newest most */
  size_t n_hist = 0;
  uint32_t *hist = srv_online_history_by_time(sm, out, &n_hist);
  int rc = hist ? cofi_fold_in(sm->m, r->th->ws, hist, NULL, n_hist, out->vec) : COFI_ERR_NOMEM;
  free(hist);
  if (rc != COFI_OK) {
    srv_online_user_free(out);
    if (rc == COFI_ERR_NOMEM) return nomem(err);
    return srv_fail(err, 500, "internal_error", "folding in the user's history failed: %s",
                    cofi_error_message(rc));
  }
  atomic_fetch_add_explicit(&o->folds, 1, memory_order_relaxed);
  out->kind = SRV_USER_ONLINE;
  cache_put(o, sm, user, out, touches);
  return true;
}

uint32_t *srv_online_history_by_time(const srv_model *sm, const srv_online_user *u, size_t *n) {
  const uint32_t *row = NULL;
  size_t n_row = u->model_user >= 0
                     ? cofi_model_user_items(sm->m, (uint32_t)u->model_user, &row, NULL)
                     : 0;
  uint32_t *h = malloc((n_row + u->n_seen + 1) * sizeof *h);
  if (!h) return NULL;
  size_t at = n_row ? cofi_model_user_items_by_time(sm->m, (uint32_t)u->model_user, h) : 0;
  for (size_t i = 0; i < u->n_seen; i++) /* row and seen are both ascending */
    if (!n_row || !bsearch(&u->seen[i], row, n_row, sizeof *row, cmp_u32)) h[at++] = u->seen[i];
  *n = at;
  return h;
}

void srv_online_user_free(srv_online_user *u) {
  free(u->vec);
  free(u->seen);
  u->vec = NULL;
  u->seen = NULL;
}

void srv_online_metrics_write(srv_online *o, srv_buf *b) {
  if (!o) return;
  pthread_mutex_lock(&o->cache_lock);
  size_t entries = o->cache.n;
  pthread_mutex_unlock(&o->cache_lock);
  srv_buf_printf(b,
                 "# HELP cofi_online_cache_hits_total Folded-in user vectors served from the cache.\n"
                 "# TYPE cofi_online_cache_hits_total counter\ncofi_online_cache_hits_total %llu\n"
                 "# HELP cofi_online_cache_misses_total Lookups of the online cache that missed.\n"
                 "# TYPE cofi_online_cache_misses_total counter\ncofi_online_cache_misses_total %llu\n"
                 "# HELP cofi_online_folds_total User vectors folded in from model row and store events.\n"
                 "# TYPE cofi_online_folds_total counter\ncofi_online_folds_total %llu\n"
                 "# HELP cofi_online_cache_evictions_total Cached vectors evicted (LRU).\n"
                 "# TYPE cofi_online_cache_evictions_total counter\ncofi_online_cache_evictions_total %llu\n"
                 "# HELP cofi_online_cache_users Cached folded-in vectors.\n"
                 "# TYPE cofi_online_cache_users gauge\ncofi_online_cache_users %zu\n"
                 "# HELP cofi_online_users_with_new_events Users with events committed here since start.\n"
                 "# TYPE cofi_online_users_with_new_events gauge\ncofi_online_users_with_new_events %zu\n",
                 (unsigned long long)atomic_load(&o->hits), (unsigned long long)atomic_load(&o->misses),
                 (unsigned long long)atomic_load(&o->folds), (unsigned long long)atomic_load(&o->evictions),
                 entries, atomic_load(&o->n_dirty));
}

int srv_online_start(cofi_server *s, cofi_diag *diag) {
  s->item_attrs = srv_item_attrs_new();
  if (!s->item_attrs) goto nomem;
  if (!s->store) return COFI_OK;
  s->online = srv_online_new(s->cfg.online_cache_users, s->cfg.online_cache_ttl_s);
  if (!s->online) goto nomem;
  return srv_item_attrs_load(s->item_attrs, s->store, diag);
nomem:
  snprintf(diag->message, sizeof diag->message, "out of memory starting the online state");
  return COFI_ERR_NOMEM;
}

/* ---- rendered lists ------------------------------------------------------ */

bool srv_online_list_get(srv_online *o, const char *key, size_t key_len, srv_buf *b) {
  bool hit = false;
  double now = now_s();
  pthread_mutex_lock(&o->lists_lock);
  for (size_t i = 0; i < SRV_LIST_CACHE && !hit; i++) {
    struct list_entry *e = &o->lists[i];
    if (e->key && e->key_len == key_len && !memcmp(e->key, key, key_len) &&
        now - e->at <= SRV_LIST_TTL_S) {
      srv_buf_put(b, e->json, e->json_len);
      hit = true;
    }
  }
  pthread_mutex_unlock(&o->lists_lock);
  return hit;
}

void srv_online_list_put(srv_online *o, const char *key, size_t key_len, const char *json,
                         size_t json_len) {
  char *k = malloc(key_len ? key_len : 1), *j = malloc(json_len ? json_len : 1);
  if (!k || !j) {
    free(k);
    free(j);
    return; /* not cached: the next request asks the store again */
  }
  memcpy(k, key, key_len);
  memcpy(j, json, json_len);
  pthread_mutex_lock(&o->lists_lock);
  /* The same key, else an empty slot, else the oldest. */
  size_t slot = 0;
  for (size_t i = 0; i < SRV_LIST_CACHE; i++) {
    struct list_entry *e = &o->lists[i];
    if (e->key && e->key_len == key_len && !memcmp(e->key, key, key_len)) {
      slot = i;
      break;
    }
    if (!e->key || (o->lists[slot].key && e->at < o->lists[slot].at)) slot = i;
  }
  struct list_entry *e = &o->lists[slot];
  free(e->key);
  free(e->json);
  *e = (struct list_entry){k, j, key_len, json_len, now_s()};
  pthread_mutex_unlock(&o->lists_lock);
}

void srv_online_lists_clear(srv_online *o) {
  if (!o) return;
  pthread_mutex_lock(&o->lists_lock);
  for (size_t i = 0; i < SRV_LIST_CACHE; i++) {
    free(o->lists[i].key);
    free(o->lists[i].json);
    o->lists[i] = (struct list_entry){0};
  }
  pthread_mutex_unlock(&o->lists_lock);
}

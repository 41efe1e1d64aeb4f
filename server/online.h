/*
 * online.h — recommendations that follow each new event (docs/serving.md,
 * "Online updates"): the pieces besides srv.h's, prefix srv_.
 *
 *   strmap.c      a string-keyed hash map (IDs -> anything)
 *   online.c      which users have events newer than the model, and the
 *                 LRU cache of their folded-in vectors
 *   item_attrs.c  the items' hidden flags and categories, in memory
 *   lists_routes.c  GET /popular, GET /latest, and the popular answer for
 *                 a user with no events at all
 *   candidates.c  scoring a restricted candidate set (category=, items=)
 */
#ifndef COFI_SRV_ONLINE_H
#define COFI_SRV_ONLINE_H

#include "srv.h"

/* ---- strmap.c ------------------------------------------------------------ */

/* Linear probing, keys copied, removal by backward shift. Not locked. */
typedef struct srv_strmap_slot {
  char *key; /* NULL: empty */
  size_t len;
  uint64_t hash;
  void *val;
} srv_strmap_slot;

typedef struct srv_strmap {
  srv_strmap_slot *slots;
  size_t cap, n; /* cap a power of two (0 until the first put) */
} srv_strmap;

void srv_strmap_free(srv_strmap *m, void (*free_val)(void *val));
/* The value stored under key, or NULL. */
void *srv_strmap_get(const srv_strmap *m, const char *key, size_t len);
/* Stores val under key (replacing; *old gets the previous value or NULL).
 * False when out of memory (nothing changed). */
bool srv_strmap_put(srv_strmap *m, const char *key, size_t len, void *val, void **old);
/* Removes key; its value, or NULL when absent. */
void *srv_strmap_remove(srv_strmap *m, const char *key, size_t len);

/* ---- online.c ------------------------------------------------------------ */

typedef struct srv_online srv_online;

/* max_users: most cached vectors (0: no cache); ttl_s: a cached vector is
 * recomputed after this many seconds (0: no limit). NULL when out of
 * memory. */
srv_online *srv_online_new(uint32_t max_users, double ttl_s);
void srv_online_free(srv_online *o);

/* This server committed new events (or deleted the user): the user is
 * marked as having events the model has not seen, and their cached vector
 * is dropped. */
void srv_online_touch(srv_online *o, const char *user, size_t len);
/* This server committed an event of user on item: the user is marked, and
 * a cached vector of theirs is kept with the item pending, folded in at
 * their next answer without reading the store again. */
void srv_online_event(srv_online *o, const char *user, size_t len, const char *item,
                      size_t item_len);

/* How a user is answered. */
typedef enum srv_online_kind {
  SRV_USER_MODEL,   /* the model's own vector and training row */
  SRV_USER_ONLINE,  /* a vector folded in from model row + store events */
  SRV_USER_NONE,    /* no events anywhere */
} srv_online_kind;

typedef struct srv_online_user {
  srv_online_kind kind;
  int64_t model_user; /* MODEL: the index */
  float *vec;         /* ONLINE: [factors], malloc'd */
  uint32_t *seen;     /* ONLINE: the history's item indices, sorted, malloc'd */
  size_t n_seen;
  bool cached;        /* ONLINE: from the cache */
} srv_online_user;

/* Decides how r's user is answered and, for ONLINE, fetches or computes
 * the vector: the model's training row of the user (if any) united with
 * the items of their store events, each item once with value 1, folded in
 * with cofi_fold_in (what `cofi recommend --liked <those items>` does).
 * Users the model knows with no event committed through this server since
 * it started are MODEL at no cost. False with err on a store or library
 * failure. Free with srv_online_user_free. */
bool srv_online_resolve(srv_req *r, srv_model *sm, srv_span user, srv_online_user *out,
                        srv_error *err);
void srv_online_user_free(srv_online_user *u);
/* An ONLINE user's history oldest first, as cofi_fold_in and
 * cofi_recommend_history weigh a recency half-life by position: the
 * model's row by time, then the items of store events the model does not
 * have, which are newer than the model. malloc'd, *n its length; NULL when
 * out of memory. */
uint32_t *srv_online_history_by_time(const srv_model *sm, const srv_online_user *u, size_t *n);

/* Rendered /popular and /latest lists (the JSON array of items), kept
 * SRV_LIST_TTL_S seconds: both are aggregates over the whole store, and a
 * user with no events gets /popular on every /recommend. At most
 * SRV_LIST_CACHE lists (the oldest replaced). This server's item changes
 * (PUT, DELETE /items) clear them; new events show after the TTL. */
#define SRV_LIST_TTL_S 5.0
#define SRV_LIST_CACHE 32
/* Appends the cached list for key to b; false when none is fresh. */
bool srv_online_list_get(srv_online *o, const char *key, size_t key_len, srv_buf *b);
void srv_online_list_put(srv_online *o, const char *key, size_t key_len, const char *json,
                         size_t json_len);
/* Accepts NULL. */
void srv_online_lists_clear(srv_online *o);

/* At start (lifecycle.c): the item attribute table (always) and, with a
 * store, the online state, the attributes loaded from the store. */
int srv_online_start(cofi_server *s, cofi_diag *diag);

/* Prometheus text: cache hits, misses, entries, users with new events. */
void srv_online_metrics_write(srv_online *o, srv_buf *b);

/* ---- item_attrs.c -------------------------------------------------------- */

typedef struct srv_item_attrs srv_item_attrs;

/* Empty table; srv_item_attrs_load fills it from the store. */
srv_item_attrs *srv_item_attrs_new(void);
void srv_item_attrs_free(srv_item_attrs *a);
/* Every item of the store (at start). COFI_OK or the store's error. */
int srv_item_attrs_load(srv_item_attrs *a, srv_store *st, cofi_diag *diag);
/* After this server wrote an item: its hidden flag and categories (a JSON
 * array of strings, NULL or empty: none). False when out of memory. */
bool srv_item_attrs_put(srv_item_attrs *a, const char *id, size_t len, bool hidden,
                        const char *categories, size_t categories_len);
/* After DELETE /items/{id}: hidden. */
bool srv_item_attrs_hide(srv_item_attrs *a, const char *id, size_t len);

/* A read view for one model: hold it for the request, then release it. */
typedef struct srv_attr_view srv_attr_view;
const srv_attr_view *srv_attrs_acquire(srv_item_attrs *a, const srv_model *sm);
void srv_attrs_release(srv_item_attrs *a);
/* The hidden items of the model (sorted indices) and their count. */
const uint32_t *srv_attrs_hidden(const srv_attr_view *v, size_t *n);
bool srv_attrs_is_hidden(const srv_attr_view *v, uint32_t item);
/* The category's number, -1 when no item has it. */
int64_t srv_attrs_category(const srv_attr_view *v, const char *cat, size_t len);
bool srv_attrs_in_category(const srv_attr_view *v, uint32_t item, int64_t cat);

/* ---- candidates.c -------------------------------------------------------- */

/* Most bytes of a category= value, most IDs in items=. */
#define SRV_MAX_CATEGORY 256u
#define SRV_MAX_CANDIDATES 5000u

/* Top k of the candidates (item indices; NULL: every item) that pass the
 * category (-1: any), are not hidden and not in skip (sorted), scored by
 * vec . item factors. out holds k. */
size_t srv_top_candidates(const srv_model *sm, const srv_attr_view *v, const float *vec,
                          const uint32_t *cands, size_t n_cands, int64_t category,
                          const uint32_t *skip, size_t n_skip, uint32_t k, cofi_scored *out);

/* openapi_online.c: merged into the OpenAPI document by openapi.c. */
extern const char srv_openapi_online[];

/* ---- lists_routes.c ------------------------------------------------------ */

void srv_h_popular(srv_req *r);
void srv_h_latest(srv_req *r);
/* The popular list as a user's answer: {"user_id", "source": "popular",
 * "recommendations"}; category may be NULL. False with err. */
bool srv_answer_popular(srv_req *r, const srv_model *sm, srv_span user, const char *category,
                        size_t category_len, uint32_t k, srv_error *err);

#endif

/*
 * item_attrs.c — what the recommendation routes need to know about items
 * besides their factors: hidden (DELETE /items/{id}, never recommended)
 * and categories (the category= filter), in memory.
 *
 * Filled from the store at start (every item row), then kept up to date
 * by this server's own PUT and DELETE /items/{id}. Items the store does
 * not describe take their categories from the model's item metadata (a
 * field "genres" or "categories", split on '|', as cofi import does).
 * With several servers on one store, another server's PUT or DELETE is
 * seen here only after a restart (docs/serving.md says so).
 *
 * Requests read through a view for their model: per item index, its
 * attributes, and the sorted list of hidden indices. The view is rebuilt
 * (O(items)) when a request comes with another model than the view's.
 * PUT and DELETE record the changed item IDs as pending; the next request
 * applies them to the view, looking the IDs up in its own model (alive:
 * the request holds it). The view never holds a model itself: a reference
 * would keep a replaced model, and its file lease, alive until the next
 * request (docs/serving.md, "Reload").
 */
#include "online.h"

#include <stdlib.h>
#include <string.h>

typedef struct attr {
  bool hidden;
  bool from_store;
  uint32_t n_cats;
  uint32_t *cats; /* category numbers */
} attr;

struct srv_attr_view {
  srv_item_attrs *owner;
  const srv_model *model; /* identity only (with generation), never read */
  uint64_t generation;
  uint32_t n_items;
  attr **by_index;  /* [n_items], NULL: nothing known */
  uint32_t *hidden; /* sorted */
  size_t n_hidden, cap_hidden;
};

struct srv_item_attrs {
  pthread_rwlock_t lock;
  srv_strmap items; /* ID -> attr */
  srv_strmap cats;  /* name -> number + 1 */
  uint32_t n_cats;
  srv_strmap pending;     /* IDs changed since the view last saw them */
  atomic_size_t n_pending; /* pending.n, read under the read lock */
  srv_attr_view view;
};

static void attr_free(void *p) {
  attr *a = p;
  if (a) free(a->cats);
  free(a);
}

srv_item_attrs *srv_item_attrs_new(void) {
  srv_item_attrs *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  pthread_rwlock_init(&a->lock, NULL);
  a->view.owner = a;
  return a;
}

static void view_clear(srv_attr_view *v) {
  free(v->by_index);
  free(v->hidden);
  srv_item_attrs *owner = v->owner;
  memset(v, 0, sizeof *v);
  v->owner = owner;
}

void srv_item_attrs_free(srv_item_attrs *a) {
  if (!a) return;
  view_clear(&a->view);
  srv_strmap_free(&a->items, attr_free);
  srv_strmap_free(&a->cats, NULL);
  srv_strmap_free(&a->pending, NULL);
  pthread_rwlock_destroy(&a->lock);
  free(a);
}

static int64_t intern_cat(srv_item_attrs *a, const char *name, size_t len) {
  void *v = srv_strmap_get(&a->cats, name, len);
  if (v) return (int64_t)(uintptr_t)v - 1;
  if (!srv_strmap_put(&a->cats, name, len, (void *)(uintptr_t)(a->n_cats + 1), NULL)) return -1;
  return a->n_cats++;
}

static bool add_cat(srv_item_attrs *a, attr *t, const char *name, size_t len) {
  if (!len) return true;
  int64_t c = intern_cat(a, name, len);
  if (c < 0) return false;
  for (uint32_t i = 0; i < t->n_cats; i++)
    if (t->cats[i] == (uint32_t)c) return true;
  uint32_t *p = realloc(t->cats, (t->n_cats + 1) * sizeof *p);
  if (!p) return false;
  t->cats = p;
  t->cats[t->n_cats++] = (uint32_t)c;
  return true;
}

/* The attr of id, created when missing; NULL when out of memory. */
static attr *get_or_add(srv_item_attrs *a, const char *id, size_t len) {
  attr *t = srv_strmap_get(&a->items, id, len);
  if (t) return t;
  t = calloc(1, sizeof *t);
  if (!t || !srv_strmap_put(&a->items, id, len, t, NULL)) {
    free(t);
    return NULL;
  }
  return t;
}

static int cmp_u32(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  return (a > b) - (a < b);
}

/* Keeps the view's hidden list in step with item i's flag. */
static bool view_set_hidden(srv_attr_view *v, uint32_t i, bool hidden) {
  uint32_t *at = v->n_hidden ? bsearch(&i, v->hidden, v->n_hidden, sizeof i, cmp_u32) : NULL;
  if (hidden && !at) {
    if (v->n_hidden == v->cap_hidden) {
      size_t cap = v->cap_hidden ? 2 * v->cap_hidden : 16;
      uint32_t *p = realloc(v->hidden, cap * sizeof *p);
      if (!p) return false;
      v->hidden = p;
      v->cap_hidden = cap;
    }
    size_t pos = 0;
    while (pos < v->n_hidden && v->hidden[pos] < i) pos++;
    memmove(v->hidden + pos + 1, v->hidden + pos, (v->n_hidden - pos) * sizeof *v->hidden);
    v->hidden[pos] = i;
    v->n_hidden++;
  } else if (!hidden && at) {
    size_t pos = (size_t)(at - v->hidden);
    memmove(at, at + 1, (v->n_hidden - pos - 1) * sizeof *at);
    v->n_hidden--;
  }
  return true;
}

/* After attr t of id changed: the view applies it at its next use. */
static bool mark_pending(srv_item_attrs *a, const char *id, size_t len, attr *t) {
  bool ok = srv_strmap_put(&a->pending, id, len, t, NULL);
  atomic_store(&a->n_pending, a->pending.n);
  return ok;
}

/* Under the write lock, with sm the view's model (alive: the caller's
 * request holds it). */
static bool apply_pending(srv_item_attrs *a, const srv_model *sm) {
  srv_attr_view *v = &a->view;
  bool ok = true;
  for (size_t i = 0; i < a->pending.cap; i++) {
    srv_strmap_slot *sl = &a->pending.slots[i];
    if (!sl->key || v->n_items == 0) continue;
    int64_t it = cofi_model_find_item(sm->m, sl->key, sl->len);
    if (it < 0) continue; /* not in the model: cannot be recommended anyway */
    attr *t = sl->val;
    v->by_index[it] = t;
    ok = view_set_hidden(v, (uint32_t)it, t->hidden) && ok;
  }
  srv_strmap_free(&a->pending, NULL);
  atomic_store(&a->n_pending, 0);
  return ok;
}

/* Sets t's categories from a JSON array of strings (checked by the store). */
static bool set_categories(srv_item_attrs *a, attr *t, const char *json, size_t len) {
  t->n_cats = 0;
  if (!json || !len) return true;
  json_t *arr = json_loadb(json, len, 0, NULL);
  if (!arr) return true; /* not JSON: no categories (the store checks what it keeps) */
  bool ok = true;
  size_t i;
  json_t *c;
  json_array_foreach(arr, i, c) {
    if (json_is_string(c) && !add_cat(a, t, json_string_value(c), json_string_length(c))) ok = false;
  }
  json_decref(arr);
  return ok;
}

bool srv_item_attrs_put(srv_item_attrs *a, const char *id, size_t len, bool hidden,
                        const char *categories, size_t categories_len) {
  pthread_rwlock_wrlock(&a->lock);
  attr *t = get_or_add(a, id, len);
  bool ok = t != NULL;
  if (t) {
    t->hidden = hidden;
    t->from_store = true;
    ok = set_categories(a, t, categories, categories_len) && mark_pending(a, id, len, t);
  }
  pthread_rwlock_unlock(&a->lock);
  return ok;
}

bool srv_item_attrs_hide(srv_item_attrs *a, const char *id, size_t len) {
  pthread_rwlock_wrlock(&a->lock);
  attr *t = get_or_add(a, id, len);
  bool ok = t != NULL;
  if (t) {
    t->hidden = true;
    t->from_store = true;
    ok = mark_pending(a, id, len, t);
  }
  pthread_rwlock_unlock(&a->lock);
  return ok;
}

typedef struct load_ctx {
  srv_item_attrs *a;
  bool nomem;
} load_ctx;

static int load_one(const cofi_store_item *it, void *ctx) {
  load_ctx *c = ctx;
  attr *t = get_or_add(c->a, it->id, it->id_len);
  if (!t || !set_categories(c->a, t, it->categories, it->categories_len)) {
    c->nomem = true;
    return 1;
  }
  t->hidden = it->hidden != 0;
  t->from_store = true;
  return 0;
}

static int op_scan_items(cofi_store *s, void *arg, cofi_diag *d) {
  return cofi_store_scan_items(s, load_one, arg, d);
}

int srv_item_attrs_load(srv_item_attrs *a, srv_store *st, cofi_diag *diag) {
  load_ctx c = {a, false};
  pthread_rwlock_wrlock(&a->lock);
  int rc = srv_store_read(st, op_scan_items, &c, diag);
  pthread_rwlock_unlock(&a->lock);
  if (c.nomem) {
    snprintf(diag->message, sizeof diag->message, "out of memory loading the items' attributes");
    return COFI_ERR_NOMEM;
  }
  return rc;
}

/* The model's metadata field holding categories, or -1. */
static int64_t model_category_field(const srv_model *sm) {
  for (uint32_t f = 0; f < sm->info.n_item_fields; f++) {
    size_t n;
    const char *name = cofi_model_item_field_name(sm->m, f, &n);
    if ((n == 6 && !memcmp(name, "genres", 6)) || (n == 10 && !memcmp(name, "categories", 10)))
      return f;
  }
  return -1;
}

/* Under the write lock. False when out of memory (the view is then empty
 * and filters see no categories; hidden items of the store still count as
 * far as built). */
static bool view_build(srv_item_attrs *a, const srv_model *sm) {
  srv_attr_view *v = &a->view;
  view_clear(v);
  /* Everything pending is in the map the build reads. */
  srv_strmap_free(&a->pending, NULL);
  atomic_store(&a->n_pending, 0);
  uint32_t n = sm->info.n_items;
  v->model = sm;
  v->generation = sm->generation;
  v->by_index = calloc(n ? n : 1, sizeof *v->by_index);
  if (!v->by_index) return false; /* an empty view (n_items 0) */
  v->n_items = n;
  int64_t field = model_category_field(sm);
  for (uint32_t i = 0; i < n; i++) {
    size_t len;
    const char *id = cofi_model_item_id(sm->m, i, &len);
    attr *t = srv_strmap_get(&a->items, id, len);
    if (!t && field >= 0) {
      size_t vlen;
      const char *val = cofi_model_item_field(sm->m, i, (uint32_t)field, &vlen);
      if (vlen) {
        if (!(t = get_or_add(a, id, len))) return false;
        for (size_t s = 0, e; s <= vlen; s = e + 1) {
          for (e = s; e < vlen && val[e] != '|'; e++) {}
          if (!add_cat(a, t, val + s, e - s)) return false;
        }
      }
    }
    v->by_index[i] = t;
    if (t && t->hidden && !view_set_hidden(v, i, true)) return false;
  }
  return true;
}

const srv_attr_view *srv_attrs_acquire(srv_item_attrs *a, const srv_model *sm) {
  for (;;) {
    pthread_rwlock_rdlock(&a->lock);
    if (a->view.model == sm && a->view.generation == sm->generation &&
        atomic_load(&a->n_pending) == 0)
      return &a->view;
    pthread_rwlock_unlock(&a->lock);
    pthread_rwlock_wrlock(&a->lock);
    /* Out of memory in either leaves a partial view; answers then filter
     * what it has, and the next change retries. */
    if (a->view.model != sm || a->view.generation != sm->generation) view_build(a, sm);
    else if (a->pending.n) apply_pending(a, sm);
    pthread_rwlock_unlock(&a->lock);
  }
}

void srv_attrs_release(srv_item_attrs *a) { pthread_rwlock_unlock(&a->lock); }

const uint32_t *srv_attrs_hidden(const srv_attr_view *v, size_t *n) {
  *n = v->n_hidden;
  return v->hidden;
}

bool srv_attrs_is_hidden(const srv_attr_view *v, uint32_t item) {
  return item < v->n_items && v->by_index[item] && v->by_index[item]->hidden;
}

int64_t srv_attrs_category(const srv_attr_view *v, const char *cat, size_t len) {
  void *p = srv_strmap_get(&v->owner->cats, cat, len);
  return p ? (int64_t)(uintptr_t)p - 1 : -1;
}

bool srv_attrs_in_category(const srv_attr_view *v, uint32_t item, int64_t cat) {
  if (cat < 0) return true;
  const attr *t = item < v->n_items ? v->by_index[item] : NULL;
  if (!t) return false;
  for (uint32_t i = 0; i < t->n_cats; i++)
    if (t->cats[i] == (uint64_t)cat) return true;
  return false;
}

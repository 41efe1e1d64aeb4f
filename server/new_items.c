/*
 * new_items.c — items of the store that the served model has not seen
 * (PUT /items/{id} with categories, after the last training), with a
 * vector from their metadata (docs/serving.md, "New items").
 *
 * The table belongs to one served model: it holds the metadata map fitted
 * on that model's item factors and, per new item, its vector and its JSON
 * members. It is (re)built when the server starts and whenever a request
 * finds that the served model changed (reload, swap: the key is the
 * model's generation and checksum), by one scan of the store's items:
 *
 *   model items:  categories = the store's (when it has some), else the
 *                 model's own "genres"/"categories" field  -> the map's fit
 *   store items not in the model, not hidden, with at least one category
 *   the map knows                                           -> new items
 *
 * PUT /items/{id} of an item the model does not have adds or replaces its
 * entry (or drops it: hidden, or no known category); DELETE drops it. A
 * PUT of a model item's categories changes the map only at the next
 * rebuild. Readers take the read lock; rebuilds and PUT/DELETE the write
 * lock. The table is meant for the items published since the last
 * training (thousands): lookups scan it.
 *
 * Answers mark a new item with "source": "metadata"; the model's items
 * carry no "source".
 */
#include "srv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ni_entry {
  char *id;
  size_t id_len;
  char *json;         /* `"item_id":"..."` then `,"title":"...","source":"metadata"` */
  size_t json_split;  /* where the second member starts */
  size_t json_len;
  float *vec;         /* [factors] */
  float norm;         /* |vec| */
} ni_entry;

struct srv_new_items {
  pthread_rwlock_t lock;
  bool built;
  uint64_t generation, checksum; /* the model the table belongs to */
  cofi_metadata_map *map;        /* NULL: no map (why says why) */
  char why[700];
  uint32_t factors;
  ni_entry *e;
  size_t n, cap;
};

/* ---- entries ------------------------------------------------------------ */

static void entry_free(ni_entry *e) {
  free(e->id);
  free(e->json);
  free(e->vec);
}

static void clear_entries(srv_new_items *t) {
  for (size_t i = 0; i < t->n; i++) entry_free(&t->e[i]);
  t->n = 0;
}

static ssize_t find(const srv_new_items *t, const char *id, size_t len) {
  for (size_t i = 0; i < t->n; i++)
    if (t->e[i].id_len == len && !memcmp(t->e[i].id, id, len)) return (ssize_t)i;
  return -1;
}

static void drop(srv_new_items *t, const char *id, size_t len) {
  ssize_t i = find(t, id, len);
  if (i < 0) return;
  entry_free(&t->e[i]);
  t->e[i] = t->e[--t->n];
}

/* The categories of a JSON array of strings (checked by the store) into
 * cats/lens, borrowing root's strings; the count, or -1 when out of memory. */
static ssize_t json_cats(json_t *root, const char ***cats, size_t **lens) {
  size_t n = json_is_array(root) ? json_array_size(root) : 0;
  *cats = malloc((n ? n : 1) * sizeof **cats);
  *lens = malloc((n ? n : 1) * sizeof **lens);
  if (!*cats || !*lens) {
    free(*cats);
    free(*lens);
    return -1;
  }
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *s = json_array_get(root, i);
    if (!json_is_string(s) || json_string_length(s) == 0) continue;
    (*cats)[w] = json_string_value(s);
    (*lens)[w++] = json_string_length(s);
  }
  return (ssize_t)w;
}

static bool grow(srv_new_items *t) {
  if (t->n < t->cap) return true;
  size_t cap = t->cap ? 2 * t->cap : 64;
  ni_entry *e = realloc(t->e, cap * sizeof *e);
  if (!e) return false;
  t->e = e;
  t->cap = cap;
  return true;
}

/* Adds or replaces the entry of a store item not in the model. Items that
 * are hidden or whose categories the map does not know get none. */
static int put_entry(srv_new_items *t, const cofi_store_item *it) {
  drop(t, it->id, it->id_len);
  if (!t->map || it->hidden) return COFI_OK;
  json_t *root = json_loadb(it->categories ? it->categories : "[]",
                            it->categories ? it->categories_len : 2, 0, NULL);
  const char **cats = NULL;
  size_t *lens = NULL, known = 0;
  ssize_t nc = json_cats(root, &cats, &lens);
  int rc = COFI_ERR_NOMEM;
  ni_entry e = {0};
  if (nc < 0) goto done;
  e.vec = malloc(t->factors * sizeof *e.vec);
  if (!e.vec) goto done;
  rc = cofi_metadata_map_vector(t->map, cats, lens, (size_t)nc, e.vec, &known);
  if (rc != COFI_OK || known == 0) goto done; /* nothing known: no vector worth serving */
  double n2 = 0;
  for (uint32_t f = 0; f < t->factors; f++) n2 += (double)e.vec[f] * e.vec[f];
  e.norm = (float)sqrt(n2);
  srv_buf b;
  srv_buf_init(&b);
  srv_buf_lit(&b, "\"item_id\":");
  srv_buf_json_str(&b, it->id, it->id_len);
  e.json_split = b.len;
  if (it->title) {
    srv_buf_lit(&b, ",\"title\":");
    srv_buf_json_str(&b, it->title, it->title_len);
  }
  srv_buf_lit(&b, ",\"source\":\"metadata\"");
  e.id = malloc(it->id_len ? it->id_len : 1);
  rc = COFI_ERR_NOMEM;
  if (b.oom || !e.id || !grow(t)) {
    srv_buf_free(&b);
    goto done;
  }
  memcpy(e.id, it->id, it->id_len);
  e.id_len = it->id_len;
  e.json = b.p;
  e.json_len = b.len;
  t->e[t->n++] = e;
  e = (ni_entry){0};
  rc = COFI_OK;
done:
  entry_free(&e);
  free(cats);
  free(lens);
  json_decref(root);
  return rc;
}

/* ---- building the table for a model --------------------------------------- */

/* A store item not in the model, copied out of the scan. */
typedef struct ni_pending {
  cofi_store_item it;
  char *buf; /* owns the strings of it */
} ni_pending;

typedef struct scan_ctx {
  const cofi_model *m;
  json_t **model_cats; /* [n_items] the store's categories of model items, or NULL */
  ni_pending *pend;
  size_t n_pend, cap_pend;
  bool oom;
} scan_ctx;

static int scan_one(const cofi_store_item *it, void *ctx) {
  scan_ctx *c = ctx;
  int64_t idx = cofi_model_find_item(c->m, it->id, it->id_len);
  if (idx >= 0) {
    json_t *root = json_loadb(it->categories, it->categories_len, 0, NULL);
    if (json_is_array(root) && json_array_size(root) > 0) c->model_cats[idx] = root;
    else json_decref(root);
    return 0;
  }
  if (it->hidden) return 0;
  if (c->n_pend == c->cap_pend) {
    size_t cap = c->cap_pend ? 2 * c->cap_pend : 64;
    ni_pending *p = realloc(c->pend, cap * sizeof *p);
    if (!p) goto oom;
    c->pend = p;
    c->cap_pend = cap;
  }
  size_t tl = it->title ? it->title_len : 0;
  char *buf = malloc(it->id_len + tl + it->categories_len + 3);
  if (!buf) goto oom;
  ni_pending *p = &c->pend[c->n_pend++];
  memset(p, 0, sizeof *p);
  p->buf = buf;
  memcpy(buf, it->id, it->id_len);
  p->it.id = buf;
  p->it.id_len = it->id_len;
  buf += it->id_len + 1;
  if (it->title) {
    memcpy(buf, it->title, tl);
    p->it.title = buf;
    p->it.title_len = tl;
    buf += tl + 1;
  }
  memcpy(buf, it->categories, it->categories_len);
  p->it.categories = buf;
  p->it.categories_len = it->categories_len;
  return 0;
oom:
  c->oom = true;
  return 1;
}

static int op_scan(cofi_store *st, void *arg, cofi_diag *d) {
  return cofi_store_scan_items(st, scan_one, arg, d);
}

/* MovieLens's marker for "no genre", which is no category. */
static bool no_category(const char *s, size_t len) {
  static const char none[] = "(no genres listed)";
  return len == 0 || (len == sizeof none - 1 && !memcmp(s, none, len));
}

/* The model's own categories field: "genres", else "categories"; -1 if none. */
static int64_t model_field(const cofi_model *m) {
  cofi_model_info in;
  cofi_model_get_info(m, &in);
  static const char *const names[] = {"genres", "categories"};
  for (int w = 0; w < 2; w++)
    for (uint32_t f = 0; f < in.n_item_fields; f++) {
      size_t len;
      const char *name = cofi_model_item_field_name(m, f, &len);
      if (len == strlen(names[w]) && !memcmp(name, names[w], len)) return f;
    }
  return -1;
}

/* Fits the map from every model item's categories (the store's, else the
 * model's field). COFI_OK, or an error with t->why set. */
static int fit_map(srv_new_items *t, const cofi_model *m, json_t **store_cats, int kind) {
  cofi_model_info in;
  cofi_model_get_info(m, &in);
  int64_t field = model_field(m);
  size_t total = 0;
  for (uint32_t i = 0; i < in.n_items; i++) {
    if (store_cats[i]) {
      total += json_array_size(store_cats[i]);
    } else if (field >= 0) {
      size_t len;
      const char *v = cofi_model_item_field(m, i, (uint32_t)field, &len);
      total += 1;
      for (size_t j = 0; j < len; j++) total += v[j] == '|';
    }
  }
  const char **cats = malloc((total ? total : 1) * sizeof *cats);
  size_t *lens = malloc((total ? total : 1) * sizeof *lens);
  size_t *off = malloc(((size_t)in.n_items + 1) * sizeof *off);
  int rc = COFI_ERR_NOMEM;
  if (!cats || !lens || !off) {
    snprintf(t->why, sizeof t->why, "out of memory");
    goto done;
  }
  size_t w = 0;
  off[0] = 0;
  for (uint32_t i = 0; i < in.n_items; i++) {
    if (store_cats[i]) {
      for (size_t j = 0; j < json_array_size(store_cats[i]); j++) {
        json_t *sv = json_array_get(store_cats[i], j);
        if (!json_is_string(sv) || json_string_length(sv) == 0) continue;
        cats[w] = json_string_value(sv);
        lens[w++] = json_string_length(sv);
      }
    } else if (field >= 0) {
      size_t len, start = 0;
      const char *v = cofi_model_item_field(m, i, (uint32_t)field, &len);
      for (size_t j = 0; j <= len; j++) {
        if (j < len && v[j] != '|') continue;
        if (!no_category(v + start, j - start)) {
          cats[w] = v + start;
          lens[w++] = j - start;
        }
        start = j + 1;
      }
    }
    off[i + 1] = w;
  }
  cofi_metadata_map_options o = cofi_metadata_map_options_default();
  o.kind = (cofi_metadata_map_kind)kind;
  cofi_diag d;
  memset(&d, 0, sizeof d);
  rc = cofi_metadata_map_fit(m, cats, lens, off, &o, &t->map, &d);
  if (rc != COFI_OK)
    snprintf(t->why, sizeof t->why, "no metadata map: %.500s%s",
             d.message[0] ? d.message : cofi_error_message(rc),
             rc == COFI_ERR_EMPTY ? " (train with --items, or PUT /items/{id} with categories)"
                                  : "");
done:
  free(cats);
  free(lens);
  free(off);
  return rc;
}

/* Under the write lock: the table for sm. A store that cannot be read
 * leaves the table unbuilt (the next request tries again). */
static void rebuild(cofi_server *s, srv_new_items *t, const srv_model *sm) {
  clear_entries(t);
  cofi_metadata_map_free(t->map);
  t->map = NULL;
  t->built = false;
  t->why[0] = 0;
  const cofi_model *m = sm->m;
  scan_ctx c = {0};
  c.m = m;
  c.model_cats = calloc(sm->info.n_items ? sm->info.n_items : 1, sizeof *c.model_cats);
  cofi_diag d;
  memset(&d, 0, sizeof d);
  int rc = c.model_cats ? srv_store_read(s->store, op_scan, &c, &d) : COFI_ERR_NOMEM;
  if (c.oom) rc = COFI_ERR_NOMEM;
  if (rc != COFI_OK) {
    snprintf(t->why, sizeof t->why, "the store's items could not be read: %.500s",
             rc == COFI_ERR_NOMEM ? "out of memory"
             : d.message[0]       ? d.message
                                  : cofi_error_message(rc));
    goto done;
  }
  t->factors = sm->info.factors;
  t->generation = sm->generation;
  t->checksum = sm->info.checksum;
  t->built = true;
  if (fit_map(t, m, c.model_cats, s->cfg.metadata_map) != COFI_OK) goto done;
  for (size_t i = 0; i < c.n_pend; i++)
    if (put_entry(t, &c.pend[i].it) == COFI_ERR_NOMEM) {
      snprintf(t->why, sizeof t->why, "out of memory: some new items have no vector");
      break;
    }
done:
  if (c.model_cats)
    for (uint32_t i = 0; i < sm->info.n_items; i++) json_decref(c.model_cats[i]);
  free(c.model_cats);
  for (size_t i = 0; i < c.n_pend; i++) free(c.pend[i].buf);
  free(c.pend);
}

static bool current(const srv_new_items *t, const srv_model *sm) {
  return t->built && t->generation == sm->generation && t->checksum == sm->info.checksum;
}

/* The table for sm, read-locked (release with pthread_rwlock_unlock), or
 * NULL when the server has no store or no model. */
static srv_new_items *acquire(cofi_server *s, const srv_model *sm) {
  srv_new_items *t = s->new_items;
  if (!t || !sm) return NULL;
  pthread_rwlock_rdlock(&t->lock);
  if (current(t, sm)) return t;
  pthread_rwlock_unlock(&t->lock);
  pthread_rwlock_wrlock(&t->lock);
  if (!current(t, sm)) rebuild(s, t, sm);
  pthread_rwlock_unlock(&t->lock);
  pthread_rwlock_rdlock(&t->lock);
  return t; /* possibly a newer model's table by now: callers check the factors */
}

/* ---- the server's hooks ------------------------------------------------- */

int srv_new_items_start(cofi_server *s, cofi_diag *diag) {
  srv_new_items *t = calloc(1, sizeof *t);
  if (!t || pthread_rwlock_init(&t->lock, NULL)) {
    free(t);
    snprintf(diag->message, sizeof diag->message, "out of memory");
    return COFI_ERR_NOMEM;
  }
  s->new_items = t;
  srv_model *sm = (srv_model *)srv_slot_acquire(&s->model);
  if (sm) {
    srv_new_items *got = acquire(s, sm);
    if (!s->cfg.quiet) {
      if (got->map)
        fprintf(stderr, "cofi serve: new items: %s map over %zu categories; %zu store items "
                        "not in the model have a vector from their metadata\n",
                cofi_metadata_map_kind_name(cofi_metadata_map_get_kind(got->map)),
                cofi_metadata_map_n_categories(got->map), got->n);
      else
        fprintf(stderr, "cofi serve: new items get no vector: %s\n", got->why);
    }
    pthread_rwlock_unlock(&got->lock);
    srv_ref_release(&sm->ref);
  }
  return COFI_OK;
}

void srv_new_items_free(srv_new_items *t) {
  if (!t) return;
  clear_entries(t);
  free(t->e);
  cofi_metadata_map_free(t->map);
  pthread_rwlock_destroy(&t->lock);
  free(t);
}

void srv_new_items_put(cofi_server *s, const srv_model *sm, const cofi_store_item *it) {
  srv_new_items *t = s->new_items;
  if (!t || !sm || cofi_model_find_item(sm->m, it->id, it->id_len) >= 0) return;
  pthread_rwlock_unlock(&acquire(s, sm)->lock); /* now built for sm */
  pthread_rwlock_wrlock(&t->lock);
  if (current(t, sm)) put_entry(t, it); /* out of memory: the item just has no vector */
  pthread_rwlock_unlock(&t->lock);
}

void srv_new_items_hide(cofi_server *s, const char *id, size_t len) {
  srv_new_items *t = s->new_items;
  if (!t) return;
  pthread_rwlock_wrlock(&t->lock);
  drop(t, id, len);
  pthread_rwlock_unlock(&t->lock);
}

bool srv_new_items_vector(cofi_server *s, const srv_model *sm, srv_span id, float *vec,
                          float *center, srv_error *err) {
  srv_new_items *t = acquire(s, sm);
  if (!t) return srv_fail(err, 404, "unknown_item", "item " SRV_ECHO_FMT " is not in the model",
                          SRV_ECHO(id.p, id.len));
  ssize_t i = current(t, sm) ? find(t, id.p, id.len) : -1;
  if (i >= 0) {
    memcpy(vec, t->e[i].vec, t->factors * sizeof *vec);
    memcpy(center, cofi_metadata_map_mean(t->map), t->factors * sizeof *center);
  }
  else if (!t->map)
    srv_fail(err, 404, "unknown_item",
             "item " SRV_ECHO_FMT " is not in the model, and new items get no vector (%s)",
             SRV_ECHO(id.p, id.len), t->why);
  else
    srv_fail(err, 404, "unknown_item",
             "item " SRV_ECHO_FMT " is neither in the model nor a visible store item with a "
             "category the model knows (PUT /items/{id} with \"categories\" gives it a vector)",
             SRV_ECHO(id.p, id.len));
  pthread_rwlock_unlock(&t->lock);
  return i >= 0;
}

typedef struct ni_cand {
  float score;
  uint32_t at;
} ni_cand;

static int cand_cmp(const void *a, const void *b) {
  const ni_cand *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return (x->at > y->at) - (x->at < y->at);
}

static bool skipped(const ni_entry *e, const srv_span *skip, size_t n_skip) {
  for (size_t j = 0; j < n_skip; j++)
    if (skip[j].len == e->id_len && !memcmp(skip[j].p, e->id, e->id_len)) return true;
  return false;
}

bool srv_new_items_top(cofi_server *s, const srv_model *sm, const float *vec, bool cosine,
                       const float *center, uint32_t k, const srv_span *skip, size_t n_skip,
                       srv_new_top *out) {
  memset(out, 0, sizeof *out);
  srv_new_items *t = acquire(s, sm);
  if (!t) return true;
  bool ok = true;
  ni_cand *c = NULL;
  if (!current(t, sm) || t->n == 0 || k == 0) goto done;
  uint32_t dim = t->factors;
  double qn = 0;
  if (cosine) {
    for (uint32_t f = 0; f < dim; f++) {
      double q = (double)vec[f] - (center ? center[f] : 0.0);
      qn += q * q;
    }
    qn = sqrt(qn);
  }
  c = malloc(t->n * sizeof *c);
  ok = c != NULL;
  if (!ok) goto done;
  size_t nc = 0;
  for (size_t i = 0; i < t->n; i++) {
    const ni_entry *e = &t->e[i];
    if (skipped(e, skip, n_skip)) continue;
    double dot = 0;
    if (cosine && center) { /* projection, as cofi_similar_items_vector */
      for (uint32_t f = 0; f < dim; f++)
        dot += ((double)e->vec[f] - center[f]) * ((double)vec[f] - center[f]);
      dot = qn > 0 ? dot / qn : 0;
    } else {
      for (uint32_t f = 0; f < dim; f++) dot += (double)vec[f] * e->vec[f];
      if (cosine) dot = qn * e->norm > 0 ? dot / (qn * e->norm) : 0;
    }
    c[nc].score = (float)dot;
    c[nc++].at = (uint32_t)i;
  }
  qsort(c, nc, sizeof *c, cand_cmp);
  size_t n = nc < k ? nc : k, bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += t->e[c[i].at].json_len;
  out->score = malloc((n ? n : 1) * sizeof *out->score);
  out->off = malloc((2 * n + 1) * sizeof *out->off);
  out->json = malloc(bytes ? bytes : 1);
  ok = out->score && out->off && out->json;
  if (!ok) goto done;
  size_t w = 0;
  out->off[0] = 0;
  for (size_t i = 0; i < n; i++) {
    const ni_entry *e = &t->e[c[i].at];
    out->score[i] = c[i].score;
    memcpy(out->json + w, e->json, e->json_len);
    out->off[2 * i + 1] = w + e->json_split;
    w += e->json_len;
    out->off[2 * i + 2] = w;
  }
  out->n = n;
done:
  pthread_rwlock_unlock(&t->lock);
  free(c);
  if (!ok) srv_new_top_free(out);
  return ok;
}

void srv_new_top_free(srv_new_top *t) {
  free(t->score);
  free(t->off);
  free(t->json);
  memset(t, 0, sizeof *t);
}

void srv_new_top_write(srv_buf *b, const srv_new_top *t, size_t i) {
  srv_buf_putc(b, '{');
  srv_buf_put(b, t->json + t->off[2 * i], t->off[2 * i + 1] - t->off[2 * i]);
  srv_buf_lit(b, ",\"score\":");
  srv_buf_float(b, t->score[i]);
  srv_buf_put(b, t->json + t->off[2 * i + 1], t->off[2 * i + 2] - t->off[2 * i + 1]);
  srv_buf_putc(b, '}');
}

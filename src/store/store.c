/*
 * store.c — the store's public API over the back-end interface (store.h):
 * URL dispatch, schema versioning, every input check, transactions, and
 * the conversions between the store and a cofi_dataset (bulk import, and
 * reading the events back as cofi_dataset_read would read the same log).
 *
 * Checks happen here, before a back end sees anything, so both back ends
 * refuse exactly the same inputs with the same messages; a write is one
 * transaction, rolled back on any failure, so nothing is half-written.
 * Rows read back are checked too (a store written by another program, or
 * damaged, is refused with the table and row named, never trusted).
 */
#include "store.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- input checks ------------------------------------------------------ */

static bool all_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t') return false;
  return true;
}

/* NULL when s is a usable ID (noun "ID") or event type (noun "event
 * type", max COFI_STORE_MAX_EVENT), else the problem as a phrase. */
static const char *id_problem(const char *s, size_t n, size_t max, const char *noun, char *buf,
                              size_t bufsize) {
  if (!s || n == 0) {
    snprintf(buf, bufsize, "empty %s", noun);
    return buf;
  }
  if (n > max) {
    snprintf(buf, bufsize, "%s of %zu bytes, longer than %zu", noun, n, max);
    return buf;
  }
  if (all_blank(s, n)) {
    snprintf(buf, bufsize, "blank %s (only spaces)", noun);
    return buf;
  }
  const char *u = cofi__utf8_problem(s, n);
  if (u) {
    char q[200];
    snprintf(buf, bufsize, "%s '%s' %s", noun, cofi__quote(q, sizeof q, s, n), u);
    return buf;
  }
  return NULL;
}

static int check_text(const char *field, const char *s, size_t n, int json_kind,
                      const char *prefix, cofi_diag *d) {
  if (!s) return COFI_OK;
  if (n > COFI_STORE_MAX_TEXT)
    return cofi__fail(d, COFI_ERR_INVALID, "", 0, "%s%s: %zu bytes long (at most %d)", prefix,
                      field, n, COFI_STORE_MAX_TEXT);
  const char *u = cofi__utf8_problem(s, n);
  if (u) return cofi__fail(d, COFI_ERR_INVALID, "", 0, "%s%s: %s", prefix, field, u);
  if (json_kind >= 0) {
    const char *j = cofi__json_problem(s, n, json_kind);
    if (j) return cofi__fail(d, COFI_ERR_INVALID, "", 0, "%s%s: %s", prefix, field, j);
  }
  return COFI_OK;
}

static int check_id(const char *field, const char *s, size_t n, const char *prefix,
                    cofi_diag *d) {
  char buf[300];
  const char *p = id_problem(s, n, COFI_STORE_MAX_ID, "ID", buf, sizeof buf);
  if (p) return cofi__fail(d, COFI_ERR_INVALID, "", 0, "%s%s: %s", prefix, field, p);
  return COFI_OK;
}

static int check_event_at(const cofi_store_event *ev, const char *prefix, cofi_diag *d) {
  int rc;
  if ((rc = check_id("user_id", ev->user_id, ev->user_len, prefix, d))) return rc;
  if ((rc = check_id("item_id", ev->item_id, ev->item_len, prefix, d))) return rc;
  if (ev->event) {
    char buf[300];
    const char *p =
        id_problem(ev->event, ev->event_len, COFI_STORE_MAX_EVENT, "event type", buf, sizeof buf);
    if (p) return cofi__fail(d, COFI_ERR_INVALID, "", 0, "%sevent: %s", prefix, p);
  }
  if (!isfinite(ev->value))
    return cofi__fail(d, COFI_ERR_INVALID, "", 0, "%svalue: %g is not a finite number", prefix,
                      ev->value);
  if (ev->value < 0)
    return cofi__fail(d, COFI_ERR_INVALID, "", 0, "%svalue: %g is negative (values must be >= 0)",
                      prefix, ev->value);
  return COFI_OK;
}

int cofi_store_check_event(const cofi_store_event *ev, cofi_diag *diag) {
  if (!ev) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no event given");
  return check_event_at(ev, "", diag);
}

int cofi__store_check_row(cofi_store *s, const char *table, uint64_t row, const char *what,
                          const char *str, size_t len, cofi_diag *d) {
  char buf[300];
  const char *p = id_problem(str, len, COFI_STORE_MAX_ID, "ID", buf, sizeof buf);
  if (!p) return COFI_OK;
  return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0, "table %s, row %llu: %s: %s", table,
                    (unsigned long long)row, what, p);
}

/* ---- open / close ------------------------------------------------------ */

/* The URL for messages: a password in the user part is replaced by ***,
 * and a query (which may hold password=) is dropped. */
static void redact(const char *url, char *out, size_t size) {
  snprintf(out, size, "%s", url);
  char *q = strchr(out, '?');
  if (q) *q = 0;
  char *scheme = strstr(out, "://");
  if (!scheme) return;
  char *host = scheme + 3;
  char *at = strchr(host, '@');
  char *slash = strchr(host, '/');
  if (!at || (slash && slash < at)) return;
  char *colon = memchr(host, ':', (size_t)(at - host));
  if (!colon) return;
  char rest[256];
  snprintf(rest, sizeof rest, "%s", at);
  snprintf(colon, size - (size_t)(colon - out), ":***%s", rest);
}

static int migrate(cofi_store *s, cofi_diag *d) {
  int rc = s->ops->begin(s, true, d);
  if (rc) return rc;
  uint32_t v = 0;
  if ((rc = s->ops->schema_version(s, &v, d))) goto fail;
  if (v > COFI_STORE_SCHEMA_VERSION) {
    rc = cofi__fail(d, COFI_ERR_VERSION, s->where, 0,
                    "the store's schema is version %u, newer than this cofi reads (%u): "
                    "upgrade cofi",
                    v, COFI_STORE_SCHEMA_VERSION);
    goto fail;
  }
  for (uint32_t k = v + 1; k <= COFI_STORE_SCHEMA_VERSION; k++)
    if ((rc = s->ops->migrate(s, k, d))) goto fail;
  if ((rc = s->ops->commit(s, d))) return rc;
  if (v == 0 || v == COFI_STORE_SCHEMA_VERSION) return COFI_OK;
  /* An existing store was changed: its events packed for the training
   * scan (version 2 brought the packs; the migration has just read every
   * row anyway), and a sentence to say so, once. */
  /* Packing is a cache: a failure here (a full disk, say) leaves the
   * migrated store usable, read row by row, and is said in the sentence. */
  uint64_t packed = 0;
  cofi_diag pd = {0};
  char why[256] = "";
  if (v < 2 && cofi_store_compact(s, &packed, &pd))
    snprintf(why, sizeof why, "; packing failed, the events are read row by row: %.150s",
             pd.message);
  cofi_store_counts n;
  if ((rc = s->ops->count(s, &n, d))) return rc;
  snprintf(s->migration, sizeof s->migration,
           "%.100s: the store's schema was migrated from version %u to version %u (%llu "
           "events kept, %llu packed%s)",
           s->where, v, COFI_STORE_SCHEMA_VERSION, (unsigned long long)n.events,
           (unsigned long long)packed, why);
  return COFI_OK;
fail:
  s->ops->rollback(s);
  return rc;
}

cofi_store *cofi__store_new(const char *url) {
  cofi_store *s = cofi__calloc(1, sizeof *s);
  if (s) redact(url, s->where, sizeof s->where);
  return s;
}

int cofi__store_migrate(cofi_store *s, cofi_diag *diag) { return migrate(s, diag); }

void cofi_store_close(cofi_store *s) {
  if (!s) return;
  if (s->ops) s->ops->close(s);
  cofi__free(s);
}

const char *cofi_store_backend(const cofi_store *s) { return s && s->ops ? s->ops->name : ""; }

const char *cofi_store_migration(const cofi_store *s) {
  return s && s->migration[0] ? s->migration : NULL;
}

int cofi__store_check_id(const char *field, const char *id, size_t len, cofi_diag *d) {
  return check_id(field, id, len, "", d);
}

static int no_store(cofi_diag *d) {
  return cofi__fail(d, COFI_ERR_INVALID, "", 0, "no store given");
}

/* ---- events ------------------------------------------------------------ */

/* The keys of the users (or items) of events: each distinct ID is resolved
 * (or created) once, whatever the number of its events, then keys[i] is
 * given to event i. A transaction of 3,000 feedback events from a few
 * hundred users asks the back end a few hundred times, not 3,000. */
static int event_keys(cofi_store *s, int table, const cofi_store_event *ev, size_t n,
                      int64_t *keys, cofi_diag *d) {
  cofi__idmap ids;
  cofi__idmap_init(&ids);
  uint32_t *which = cofi__malloc(n * sizeof *which); /* event -> distinct index */
  const char **p = NULL;
  size_t *lens = NULL;
  int64_t *dkeys = NULL;
  int rc = which ? COFI_OK : COFI_ERR_NOMEM;
  for (size_t i = 0; i < n && !rc; i++) {
    if (table == COFI__USERS) rc = cofi__idmap_intern(&ids, ev[i].user_id, ev[i].user_len, &which[i], NULL);
    else rc = cofi__idmap_intern(&ids, ev[i].item_id, ev[i].item_len, &which[i], NULL);
  }
  if (!rc) {
    p = cofi__malloc(ids.n * sizeof *p);
    lens = cofi__malloc(ids.n * sizeof *lens);
    dkeys = cofi__malloc(ids.n * sizeof *dkeys);
    if (!p || !lens || !dkeys) rc = COFI_ERR_NOMEM;
  }
  if (rc) {
    rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
    goto done;
  }
  for (uint32_t k = 0; k < ids.n; k++) p[k] = cofi__idmap_get(&ids, k, &lens[k]);
  if ((rc = s->ops->keys(s, table, ids.n, p, lens, true, dkeys, d))) goto done;
  for (size_t i = 0; i < n; i++) keys[i] = dkeys[which[i]];
done:
  cofi__idmap_free(&ids);
  cofi__free(which);
  cofi__free(p);
  cofi__free(lens);
  cofi__free(dkeys);
  return rc;
}

/* Resolves the users and items of events to keys (creating them) and
 * inserts the rows; inside a write transaction. */
static int insert_events(cofi_store *s, const cofi_store_event *ev, size_t n, cofi_diag *d) {
  int rc;
  int64_t *ukeys = cofi__malloc(n * sizeof *ukeys);
  int64_t *ikeys = cofi__malloc(n * sizeof *ikeys);
  cofi__store_row *rows = cofi__malloc(n * sizeof *rows);
  if (!ukeys || !ikeys || !rows) {
    rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
    goto done;
  }
  if ((rc = event_keys(s, COFI__USERS, ev, n, ukeys, d))) goto done;
  if ((rc = event_keys(s, COFI__ITEMS, ev, n, ikeys, d))) goto done;
  for (size_t i = 0; i < n; i++) {
    rows[i] = (cofi__store_row){0, ukeys[i], ikeys[i], ev[i].event,
                                ev[i].event ? ev[i].event_len : 0, ev[i].value,
                                ev[i].timestamp, ev[i].has_timestamp != 0, 0};
  }
  rc = s->ops->insert_rows(s, rows, n, d);
done:
  cofi__free(ukeys);
  cofi__free(ikeys);
  cofi__free(rows);
  return rc;
}

int cofi_store_append_events(cofi_store *s, const cofi_store_event *events, size_t n,
                             cofi_diag *diag) {
  if (!s) return no_store(diag);
  if (!events || n == 0) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no events given");
  for (size_t i = 0; i < n; i++) {
    char prefix[48];
    snprintf(prefix, sizeof prefix, "event %zu: ", i);
    int rc = check_event_at(&events[i], prefix, diag);
    if (rc) return rc;
  }
  int rc = s->ops->begin(s, true, diag);
  if (rc) return rc;
  if ((rc = insert_events(s, events, n, diag)) || (rc = s->ops->commit(s, diag))) {
    s->ops->rollback(s);
    return rc;
  }
  return COFI_OK;
}

/* ---- history ----------------------------------------------------------- */

typedef struct hist_entry {
  size_t item, item_len, event, event_len, title, title_len; /* offsets into text */
  bool has_event, has_title, has_ts;
  double value;
  int64_t ts;
  uint64_t seq;
} hist_entry;

typedef struct hist_acc {
  hist_entry *e;
  size_t n, cap;
  cofi__buf text;
  cofi_store *s;
  cofi_diag *d;
} hist_acc;

static int check_row_values(cofi_store *s, const cofi__store_row *r, cofi_diag *d);

static int hist_add(void *ctx, const cofi_store_event *ev) {
  hist_acc *h = ctx;
  cofi__store_row r = {ev->seq, 0, 0, ev->event, ev->event_len, ev->value, 0, false, 0};
  int rc = cofi__store_check_row(h->s, "cofi_items", ev->seq, "id", ev->item_id, ev->item_len,
                                 h->d);
  if (!rc) rc = check_row_values(h->s, &r, h->d);
  if (!rc && ev->title && cofi__utf8_problem(ev->title, ev->title_len))
    rc = cofi__fail(h->d, COFI_ERR_CORRUPT, h->s->where, 0,
                    "table cofi_items: the title of item of event %llu is not valid UTF-8",
                    (unsigned long long)ev->seq);
  if (rc) return rc;
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    hist_entry *e = cofi__realloc(h->e, cap * sizeof *e);
    if (!e) return COFI_ERR_NOMEM;
    h->e = e;
    h->cap = cap;
  }
  hist_entry *x = &h->e[h->n];
  memset(x, 0, sizeof *x);
  x->item = h->text.n;
  x->item_len = ev->item_len;
  if (cofi__buf_put(&h->text, ev->item_id, ev->item_len) || cofi__buf_put(&h->text, "", 1))
    return COFI_ERR_NOMEM;
  if (ev->event) {
    x->has_event = true;
    x->event = h->text.n;
    x->event_len = ev->event_len;
    if (cofi__buf_put(&h->text, ev->event, ev->event_len) || cofi__buf_put(&h->text, "", 1))
      return COFI_ERR_NOMEM;
  }
  if (ev->title) {
    x->has_title = true;
    x->title = h->text.n;
    x->title_len = ev->title_len;
    if (cofi__buf_put(&h->text, ev->title, ev->title_len) || cofi__buf_put(&h->text, "", 1))
      return COFI_ERR_NOMEM;
  }
  x->value = ev->value;
  x->ts = ev->timestamp;
  x->has_ts = ev->has_timestamp != 0;
  x->seq = ev->seq;
  h->n++;
  return COFI_OK;
}

int cofi_store_history(cofi_store *s, const char *user_id, size_t len, uint32_t limit,
                       cofi_store_event **out, size_t *n_out, cofi_diag *diag) {
  if (!out || !n_out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output given");
  *out = NULL;
  *n_out = 0;
  if (!s) return no_store(diag);
  int rc = check_id("user_id", user_id, len, "", diag);
  if (rc) return rc;
  int64_t key;
  if ((rc = s->ops->keys(s, COFI__USERS, 1, &user_id, &len, false, &key, diag))) return rc;
  if (key < 0) {
    char q[200];
    return cofi__fail(diag, COFI_ERR_NOT_FOUND, "", 0, "no user '%s' in the store",
                      cofi__quote(q, sizeof q, user_id, len));
  }
  hist_acc h = {0};
  h.s = s;
  h.d = diag;
  rc = s->ops->history(s, key, limit, hist_add, &h, diag);
  if (rc == COFI_ERR_NOMEM) rc = cofi__fail(diag, rc, "", 0, "out of memory");
  if (rc) goto done;
  size_t bytes = (h.n ? h.n : 1) * sizeof(cofi_store_event) + h.text.n + len + 1;
  cofi_store_event *ev = cofi__malloc(bytes);
  if (!ev) {
    rc = cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory");
    goto done;
  }
  char *text = (char *)(ev + (h.n ? h.n : 1));
  if (h.text.n) memcpy(text, h.text.p, h.text.n);
  char *uid = text + h.text.n;
  memcpy(uid, user_id, len);
  uid[len] = 0;
  for (size_t i = 0; i < h.n; i++) {
    hist_entry *x = &h.e[i];
    ev[i] = (cofi_store_event){uid, len, text + x->item, x->item_len,
                               x->has_event ? text + x->event : NULL, x->event_len, x->value,
                               x->ts, x->has_ts, x->seq,
                               x->has_title ? text + x->title : NULL, x->title_len};
  }
  *out = ev;
  *n_out = h.n;
done:
  cofi__free(h.e);
  cofi__buf_free(&h.text);
  return rc;
}

void cofi_store_events_free(cofi_store_event *events) { cofi__free(events); }

/* ---- key tables: key -> ID, for the scans ------------------------------ */

typedef struct keytab {
  size_t n, cap;
  int64_t *keys;    /* [n], ascending */
  cofi__strtab ids; /* [n] */
  uint32_t *dense;  /* [max_key + 1] position + 1, or NULL (binary search) */
  int64_t max_key;
  uint32_t *ds_index; /* [n] index in the dataset being built, UINT32_MAX: none */
  const char *table;
  cofi_store *s;
  cofi_diag *d;
} keytab;

static int keytab_add(void *ctx, int64_t key, const char *id, size_t len) {
  keytab *t = ctx;
  int rc = cofi__store_check_row(t->s, t->table, (uint64_t)key, "id", id, len, t->d);
  if (rc) return rc;
  if (t->n && key <= t->keys[t->n - 1])
    return cofi__fail(t->d, COFI_ERR_CORRUPT, t->s->where, 0,
                      "table %s: keys not in ascending order at %lld", t->table, (long long)key);
  if (t->n == UINT32_MAX - 1)
    return cofi__fail(t->d, COFI_ERR_INVALID, t->s->where, 0, "table %s: too many rows",
                      t->table);
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    int64_t *k = cofi__realloc(t->keys, cap * sizeof *k);
    if (!k) return COFI_ERR_NOMEM;
    t->keys = k;
    t->cap = cap;
  }
  if (cofi__strtab_push(&t->ids, id, len)) return COFI_ERR_NOMEM;
  t->keys[t->n++] = key;
  return COFI_OK;
}

static int keytab_index(keytab *t) {
  t->ds_index = cofi__malloc((t->n ? t->n : 1) * sizeof *t->ds_index);
  if (!t->ds_index) return COFI_ERR_NOMEM;
  memset(t->ds_index, 0xff, t->n * sizeof *t->ds_index);
  t->max_key = t->n ? t->keys[t->n - 1] : 0;
  if (t->n && t->keys[0] >= 0 && (uint64_t)t->max_key <= 4 * (uint64_t)t->n + (1u << 20)) {
    t->dense = cofi__calloc((size_t)t->max_key + 1, sizeof *t->dense);
    if (!t->dense) return COFI_ERR_NOMEM;
    for (size_t i = 0; i < t->n; i++) t->dense[t->keys[i]] = (uint32_t)i + 1;
  }
  return COFI_OK;
}

/* Position of key, or -1. */
static int64_t keytab_find(const keytab *t, int64_t key) {
  if (t->dense) {
    if (key < 0 || key > t->max_key) return -1;
    return (int64_t)t->dense[key] - 1;
  }
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo < t->n && t->keys[lo] == key ? (int64_t)lo : -1;
}

static void keytab_free(keytab *t) {
  cofi__free(t->keys);
  cofi__strtab_free(&t->ids);
  cofi__free(t->dense);
  cofi__free(t->ds_index);
}

static int load_keys(cofi_store *s, int table, keytab *t, cofi_diag *d) {
  memset(t, 0, sizeof *t);
  cofi__strtab_init(&t->ids);
  t->table = table == COFI__USERS ? "cofi_users" : "cofi_items";
  t->s = s;
  t->d = d;
  int rc = s->ops->scan_keys(s, table, keytab_add, t, d);
  if (!rc) rc = keytab_index(t);
  if (rc == COFI_ERR_NOMEM) rc = cofi__fail(d, rc, "", 0, "out of memory");
  return rc;
}

/* A row's key that is not in the key table. */
static int dangling(cofi_store *s, const cofi__store_row *r, bool user, cofi_diag *d) {
  return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                    "table cofi_events, row %llu: %s key %lld has no row in %s",
                    (unsigned long long)r->seq, user ? "user" : "item",
                    (long long)(user ? r->user : r->item), user ? "cofi_users" : "cofi_items");
}

static int check_row_values(cofi_store *s, const cofi__store_row *r, cofi_diag *d) {
  if (!isfinite(r->value) || r->value < 0)
    return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                      "table cofi_events, row %llu: value %g is not a finite number >= 0",
                      (unsigned long long)r->seq, r->value);
  if (r->event) {
    char buf[300];
    const char *p =
        id_problem(r->event, r->event_len, COFI_STORE_MAX_EVENT, "event type", buf, sizeof buf);
    if (p)
      return cofi__fail(d, COFI_ERR_CORRUPT, s->where, 0,
                        "table cofi_events, row %llu: event: %s",
                        (unsigned long long)r->seq, p);
  }
  return COFI_OK;
}

/* ---- scanning ---------------------------------------------------------- */

typedef struct scan_ctx {
  cofi_store *s;
  keytab users, items;
  cofi_store_event_fn fn;
  void *ctx;
  bool stopped;
  cofi_diag *d;
} scan_ctx;

static int scan_row(void *ctx, const cofi__store_row *r) {
  scan_ctx *c = ctx;
  int64_t u = keytab_find(&c->users, r->user), i = keytab_find(&c->items, r->item);
  if (u < 0) return dangling(c->s, r, true, c->d);
  if (i < 0) return dangling(c->s, r, false, c->d);
  int rc = check_row_values(c->s, r, c->d);
  if (rc) return rc;
  cofi_store_event ev = {0};
  ev.user_id = cofi__strtab_get(&c->users.ids, (size_t)u, &ev.user_len);
  ev.item_id = cofi__strtab_get(&c->items.ids, (size_t)i, &ev.item_len);
  ev.event = r->event;
  ev.event_len = r->event ? r->event_len : 0;
  ev.value = r->value;
  ev.timestamp = r->has_ts ? r->ts : 0;
  ev.has_timestamp = r->has_ts;
  ev.seq = r->seq;
  if (c->fn(&ev, c->ctx)) {
    c->stopped = true;
    return COFI_ERR_CANCELLED;
  }
  return COFI_OK;
}

int cofi_store_scan_events(cofi_store *s, cofi_store_event_fn fn, void *ctx,
                           cofi_diag *diag) {
  if (!s) return no_store(diag);
  if (!fn) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no callback given");
  scan_ctx c = {0};
  c.s = s;
  c.fn = fn;
  c.ctx = ctx;
  c.d = diag;
  int rc = s->ops->begin(s, false, diag);
  if (rc) return rc;
  if ((rc = load_keys(s, COFI__USERS, &c.users, diag))) goto done;
  if ((rc = load_keys(s, COFI__ITEMS, &c.items, diag))) goto done;
  rc = s->ops->scan_rows(s, scan_row, &c, diag);
  if (rc == COFI_ERR_CANCELLED && c.stopped)
    rc = cofi__fail(diag, rc, "", 0, "the scan was stopped by its callback");
done:
  if (rc) s->ops->rollback(s);
  else rc = s->ops->commit(s, diag);
  keytab_free(&c.users);
  keytab_free(&c.items);
  return rc;
}

/* ---- users ------------------------------------------------------------- */

int cofi_store_put_user(cofi_store *s, const cofi_store_user *u, cofi_diag *diag) {
  if (!s) return no_store(diag);
  if (!u) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no user given");
  int rc = check_id("id", u->id, u->id_len, "", diag);
  if (!rc) rc = check_text("labels", u->labels, u->labels_len, COFI__JSON_STRINGS, "", diag);
  if (rc) return rc;
  if ((rc = s->ops->begin(s, true, diag))) return rc;
  if ((rc = s->ops->put_user(s, u, diag)) || (rc = s->ops->commit(s, diag))) s->ops->rollback(s);
  return rc;
}

static int unknown(cofi_diag *d, const char *what, const char *id, size_t len) {
  char q[200];
  return cofi__fail(d, COFI_ERR_NOT_FOUND, "", 0, "no %s '%s' in the store", what,
                    cofi__quote(q, sizeof q, id, len));
}

int cofi_store_get_user(cofi_store *s, const char *id, size_t len, cofi_store_user **out,
                        cofi_diag *diag) {
  if (!out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output given");
  *out = NULL;
  if (!s) return no_store(diag);
  int rc = check_id("id", id, len, "", diag);
  if (rc) return rc;
  char *labels = NULL;
  size_t llen = 0;
  if ((rc = s->ops->get_user(s, id, len, &labels, &llen, diag))) {
    if (rc == COFI_ERR_NOT_FOUND) rc = unknown(diag, "user", id, len);
    return rc;
  }
  cofi_store_user *u = cofi__malloc(sizeof *u + len + 1 + llen + 1);
  if (!u) {
    cofi__free(labels);
    return cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory");
  }
  char *p = (char *)(u + 1);
  memcpy(p, id, len);
  p[len] = 0;
  memcpy(p + len + 1, labels, llen);
  p[len + 1 + llen] = 0;
  cofi__free(labels);
  *u = (cofi_store_user){p, len, p + len + 1, llen};
  *out = u;
  return COFI_OK;
}

void cofi_store_user_free(cofi_store_user *user) { cofi__free(user); }

int cofi_store_delete_user(cofi_store *s, const char *id, size_t len, uint64_t *n_events,
                           cofi_diag *diag) {
  if (n_events) *n_events = 0;
  if (!s) return no_store(diag);
  int rc = check_id("id", id, len, "", diag);
  if (rc) return rc;
  if ((rc = s->ops->begin(s, true, diag))) return rc;
  int64_t key;
  if ((rc = s->ops->keys(s, COFI__USERS, 1, &id, &len, false, &key, diag))) goto fail;
  if (key < 0) {
    rc = unknown(diag, "user", id, len);
    goto fail;
  }
  uint64_t n = 0;
  if ((rc = s->ops->delete_user(s, key, &n, diag)) || (rc = s->ops->commit(s, diag))) goto fail;
  if (n_events) *n_events = n;
  return COFI_OK;
fail:
  s->ops->rollback(s);
  return rc;
}

/* ---- items ------------------------------------------------------------- */

static int check_item(const cofi_store_item *it, cofi_diag *d) {
  int rc = check_id("id", it->id, it->id_len, "", d);
  if (!rc && it->title) rc = check_text("title", it->title, it->title_len, -1, "", d);
  if (!rc) rc = check_text("categories", it->categories, it->categories_len,
                           COFI__JSON_STRINGS, "", d);
  if (!rc) rc = check_text("fields", it->fields, it->fields_len, COFI__JSON_OBJECT, "", d);
  return rc;
}

int cofi_store_put_item(cofi_store *s, const cofi_store_item *item, cofi_diag *diag) {
  if (!s) return no_store(diag);
  if (!item) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no item given");
  int rc = check_item(item, diag);
  if (rc) return rc;
  if ((rc = s->ops->begin(s, true, diag))) return rc;
  if ((rc = s->ops->put_item(s, item, diag)) || (rc = s->ops->commit(s, diag)))
    s->ops->rollback(s);
  return rc;
}

/* One allocation holding the item and its strings. */
static int copy_item(const cofi_store_item *it, cofi_store_item **out) {
  const char *cat = it->categories ? it->categories : "[]";
  size_t cat_len = it->categories ? it->categories_len : 2;
  const char *fields = it->fields ? it->fields : "{}";
  size_t fields_len = it->fields ? it->fields_len : 2;
  size_t title_len = it->title ? it->title_len : 0;
  cofi_store_item *c = cofi__malloc(sizeof *c + it->id_len + title_len + cat_len + fields_len + 4);
  if (!c) return COFI_ERR_NOMEM;
  *c = *it;
  char *p = (char *)(c + 1);
#define COPY(field, src, n)                                                                   \
  do {                                                                                        \
    memcpy(p, src, n);                                                                        \
    p[n] = 0;                                                                                 \
    c->field = p;                                                                             \
    p += (n) + 1;                                                                             \
  } while (0)
  COPY(id, it->id, it->id_len);
  if (it->title) COPY(title, it->title, title_len);
  COPY(categories, cat, cat_len);
  COPY(fields, fields, fields_len);
#undef COPY
  c->categories_len = cat_len;
  c->fields_len = fields_len;
  *out = c;
  return COFI_OK;
}

static int got_item(void *ctx, int64_t key, const cofi_store_item *it) {
  return copy_item(it, ctx);
}

int cofi_store_get_item(cofi_store *s, const char *id, size_t len, cofi_store_item **out,
                        cofi_diag *diag) {
  if (!out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output given");
  *out = NULL;
  if (!s) return no_store(diag);
  int rc = check_id("id", id, len, "", diag);
  if (rc) return rc;
  rc = s->ops->get_item(s, id, len, got_item, out, diag);
  if (rc == COFI_ERR_NOT_FOUND) return unknown(diag, "item", id, len);
  if (rc == COFI_ERR_NOMEM) return cofi__fail(diag, rc, "", 0, "out of memory");
  return rc;
}

void cofi_store_item_free(cofi_store_item *item) { cofi__free(item); }

int cofi_store_hide_item(cofi_store *s, const char *id, size_t len, int hidden,
                         cofi_diag *diag) {
  if (!s) return no_store(diag);
  int rc = check_id("id", id, len, "", diag);
  if (rc) return rc;
  if ((rc = s->ops->begin(s, true, diag))) return rc;
  rc = s->ops->hide_item(s, id, len, hidden != 0, diag);
  if (rc == COFI_ERR_NOT_FOUND) rc = unknown(diag, "item", id, len);
  if (rc || (rc = s->ops->commit(s, diag))) s->ops->rollback(s);
  return rc;
}

int cofi_store_count(cofi_store *s, cofi_store_counts *out, cofi_diag *diag) {
  if (!s) return no_store(diag);
  if (!out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output given");
  memset(out, 0, sizeof *out);
  return s->ops->count(s, out, diag);
}

/* ---- bulk import ------------------------------------------------------- */

/* Keys of every ID of an ID map, created when missing, in chunks. */
static int map_keys(cofi_store *s, int table, const cofi__idmap *m, int64_t *keys,
                    cofi_diag *d) {
  enum { CHUNK = 65536 };
  const char **ids = cofi__malloc(CHUNK * sizeof *ids);
  size_t *lens = cofi__malloc(CHUNK * sizeof *lens);
  int rc = COFI_OK;
  if (!ids || !lens) {
    rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
    goto done;
  }
  for (uint32_t at = 0; at < m->n && !rc; at += CHUNK) {
    uint32_t n = m->n - at < CHUNK ? m->n - at : CHUNK;
    for (uint32_t k = 0; k < n; k++) ids[k] = cofi__idmap_get(m, at + k, &lens[k]);
    rc = s->ops->keys(s, table, n, ids, lens, true, keys + at, d);
  }
done:
  cofi__free(ids);
  cofi__free(lens);
  return rc;
}

/* The JSON of item i's metadata: categories from a field named
 * "categories" or "genres" ('|'-separated, MovieLens style), fields = every
 * field but the title. */
static int item_json(const cofi_dataset *ds, uint32_t i, cofi__buf *cat, cofi__buf *fields) {
  const cofi__itemmeta *m = &ds->meta;
  cat->n = fields->n = 0;
  int rc = cofi__buf_put(cat, "[", 1);
  if (!rc) rc = cofi__buf_put(fields, "{", 1);
  bool first_field = true, have_cat = false;
  for (uint32_t f = 0; f < m->n_fields && !rc; f++) {
    size_t nl, vl;
    const char *name = cofi__strtab_get(&m->names, f, &nl);
    const char *v = cofi__strtab_get(&m->cells, (size_t)i * m->n_fields + f, &vl);
    if ((int32_t)f == m->title_field) continue;
    if (!first_field) rc = cofi__buf_put(fields, ",", 1);
    first_field = false;
    if (!rc) rc = cofi__buf_json_string(fields, name, nl);
    if (!rc) rc = cofi__buf_put(fields, ":", 1);
    if (!rc) rc = cofi__buf_json_string(fields, v, vl);
    bool is_cat = (nl == 10 && !memcmp(name, "categories", 10)) || (nl == 6 && !memcmp(name, "genres", 6));
    if (is_cat && !have_cat && vl) {
      have_cat = true;
      size_t start = 0;
      bool first = true;
      for (size_t k = 0; k <= vl && !rc; k++) {
        if (k < vl && v[k] != '|') continue;
        if (k > start) {
          if (!first) rc = cofi__buf_put(cat, ",", 1);
          first = false;
          if (!rc) rc = cofi__buf_json_string(cat, v + start, k - start);
        }
        start = k + 1;
      }
    }
  }
  if (!rc) rc = cofi__buf_put(cat, "]", 1);
  if (!rc) rc = cofi__buf_put(fields, "}", 1);
  return rc;
}

static int import_items(cofi_store *s, const cofi_dataset *ds, cofi_diag *d) {
  const cofi__itemmeta *m = &ds->meta;
  cofi__buf cat = {0}, fields = {0};
  int rc = COFI_OK;
  for (uint32_t i = 0; i < ds->items.n && !rc; i++) {
    if ((rc = item_json(ds, i, &cat, &fields))) {
      rc = cofi__fail(d, rc, "", 0, "out of memory");
      break;
    }
    cofi_store_item it = {0};
    it.id = cofi__idmap_get(&ds->items, i, &it.id_len);
    if (m->title_field >= 0)
      it.title = cofi__strtab_get(&m->cells, (size_t)i * m->n_fields + (uint32_t)m->title_field,
                                  &it.title_len);
    it.categories = cat.p;
    it.categories_len = cat.n;
    it.fields = fields.p;
    it.fields_len = fields.n;
    char prefix[300], q[200];
    snprintf(prefix, sizeof prefix, "item '%s': ", cofi__quote(q, sizeof q, it.id, it.id_len));
    if (it.title) rc = check_text("title", it.title, it.title_len, -1, prefix, d);
    if (!rc) rc = check_text("fields", it.fields, it.fields_len, COFI__JSON_OBJECT, prefix, d);
    if (!rc) rc = s->ops->put_item(s, &it, d);
  }
  cofi__buf_free(&cat);
  cofi__buf_free(&fields);
  return rc;
}

static int check_map(const cofi__idmap *m, const char *what, cofi_diag *d) {
  for (uint32_t k = 0; k < m->n; k++) {
    size_t len;
    const char *id = cofi__idmap_get(m, k, &len);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s %u: ", what, k);
    int rc = check_id("id", id, len, prefix, d);
    if (rc) return rc;
  }
  return COFI_OK;
}

int cofi_store_import_dataset(cofi_store *s, const cofi_dataset *ds, uint64_t *n_events,
                              cofi_diag *diag) {
  if (n_events) *n_events = 0;
  if (!s) return no_store(diag);
  if (!ds) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no dataset given");
  int rc;
  if ((rc = check_map(&ds->users, "user", diag)) || (rc = check_map(&ds->items, "item", diag)))
    return rc;
  for (size_t k = 0; k < ds->n; k++)
    if (!isfinite(ds->value[k]) || ds->value[k] < 0)
      return cofi__fail(diag, COFI_ERR_INVALID, ds->source, 0,
                        "interaction %zu: value %g is not a finite number >= 0", k,
                        (double)ds->value[k]);
  enum { CHUNK = 65536 };
  int64_t *ukeys = cofi__malloc((ds->users.n ? ds->users.n : 1) * sizeof *ukeys);
  int64_t *ikeys = cofi__malloc((ds->items.n ? ds->items.n : 1) * sizeof *ikeys);
  cofi__store_row *rows = cofi__malloc(CHUNK * sizeof *rows);
  if (!ukeys || !ikeys || !rows) {
    rc = cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory");
    goto done;
  }
  if ((rc = s->ops->begin(s, true, diag))) goto done;
  if ((rc = map_keys(s, COFI__USERS, &ds->users, ukeys, diag))) goto fail;
  if ((rc = map_keys(s, COFI__ITEMS, &ds->items, ikeys, diag))) goto fail;
  if (ds->meta.n_fields && (rc = import_items(s, ds, diag))) goto fail;
  const bool bulk = ds->n >= cofi__store_bulk_min;
  if (bulk && (rc = s->ops->bulk_begin(s, diag))) goto fail;
  for (size_t at = 0; at < ds->n; at += CHUNK) {
    size_t n = ds->n - at < CHUNK ? ds->n - at : CHUNK;
    for (size_t k = 0; k < n; k++) {
      size_t r = at + k;
      rows[k] = (cofi__store_row){0, ukeys[ds->user[r]], ikeys[ds->item[r]], NULL, 0,
                                  (double)ds->value[r], ds->time[r], ds->has_time, 0};
    }
    if ((rc = s->ops->insert_rows(s, rows, n, diag))) goto fail;
  }
  if (bulk && (rc = s->ops->bulk_end(s, diag))) goto fail;
  /* the training scan's packs of the new events, in the same transaction */
  uint64_t packed = 0;
  if (s->ops->compact && (rc = s->ops->compact(s, 0, &packed, diag))) goto fail;
  if ((rc = s->ops->commit(s, diag))) goto fail;
  if (n_events) *n_events = ds->n;
  goto done;
fail:
  s->ops->rollback(s);
done:
  cofi__free(ukeys);
  cofi__free(ikeys);
  cofi__free(rows);
  return rc;
}

/* ---- packing ----------------------------------------------------------- */

/* One write transaction per pack: a server appending to the same store
 * waits for one pack (tens of milliseconds), never for the whole backlog. */
int cofi_store_compact(cofi_store *s, uint64_t *n_packed, cofi_diag *diag) {
  if (n_packed) *n_packed = 0;
  if (!s) return no_store(diag);
  if (!s->ops->compact) return COFI_OK;
  uint64_t total = 0, n;
  do {
    int rc = s->ops->begin(s, true, diag);
    if (rc) return rc;
    n = 0;
    if ((rc = s->ops->compact(s, 1, &n, diag)) || (rc = s->ops->commit(s, diag))) {
      s->ops->rollback(s);
      return rc;
    }
    total += n;
    if (n_packed) *n_packed = total;
  } while (n > 0);
  return COFI_OK;
}

/* ---- reading a dataset ------------------------------------------------- */

static const cofi_event_weight default_weights[] = {
    {"watch", 1.0f}, {"like", 2.0f}, {"complete", 3.0f}};

typedef struct item_meta {
  char *title;   /* NULL: none */
  size_t title_len;
  char *fields;  /* JSON object, NULL when "{}" */
  size_t fields_len;
} item_meta;

typedef struct read_ctx {
  cofi_store *s;
  cofi_diag *d;
  cofi_dataset *ds;
  keytab users, items;
  const cofi_event_weight *w;
  size_t n_w;
  size_t last_w;
  bool has_min, binarize, all_time;
  float min_value;
  uint64_t rows;
  item_meta *meta; /* [items.n], by position in the key table */
  bool any_meta;
} read_ctx;

static int intern_pos(keytab *t, cofi__idmap *m, int64_t pos, uint32_t *out) {
  uint32_t idx = t->ds_index[pos];
  if (idx == UINT32_MAX) {
    size_t len;
    const char *id = cofi__strtab_get(&t->ids, (size_t)pos, &len);
    int rc = cofi__idmap_intern(m, id, len, &idx, NULL);
    if (rc) return rc;
    t->ds_index[pos] = idx;
  }
  *out = idx;
  return COFI_OK;
}

/* The weighted, filtered value of an event row and its key-table
 * positions; *keep false when --min-value drops it. Reads c but writes
 * only *last_w, so the two halves of a parallel scan can share c. */
static int weigh(const read_ctx *c, size_t *last_w, const cofi__store_row *r, cofi_diag *d,
                 int64_t *up, int64_t *ip, float *value, bool *keep) {
  *up = keytab_find(&c->users, r->user);
  *ip = keytab_find(&c->items, r->item);
  if (*up < 0) return dangling(c->s, r, true, d);
  if (*ip < 0) return dangling(c->s, r, false, d);
  int rc = check_row_values(c->s, r, d);
  if (rc) return rc;
  float v = (float)r->value;
  if (r->event) {
    const cofi_event_weight *w = &c->w[*last_w];
    if (strlen(w->event) != r->event_len || memcmp(w->event, r->event, r->event_len)) {
      size_t e = 0;
      while (e < c->n_w && (strlen(c->w[e].event) != r->event_len ||
                            memcmp(c->w[e].event, r->event, r->event_len)))
        e++;
      if (e == c->n_w) {
        char q[200];
        return cofi__fail(d, COFI_ERR_INVALID, c->s->where, 0,
                          "table cofi_events, row %llu: event type '%s' has no weight (give "
                          "one with --event-weights)",
                          (unsigned long long)r->seq, cofi__quote(q, sizeof q, r->event, r->event_len));
      }
      *last_w = e;
      w = &c->w[e];
    }
    v *= w->weight;
    if (!isfinite(v))
      return cofi__fail(d, COFI_ERR_INVALID, c->s->where, 0,
                        "table cofi_events, row %llu: value %g times the weight %g is out of "
                        "range for a float",
                        (unsigned long long)r->seq, r->value, (double)w->weight);
  }
  *keep = true;
  if (c->has_min) {
    if (!(v >= c->min_value)) *keep = false;
    else if (c->binarize) v = 1.0f;
  }
  *value = v;
  return COFI_OK;
}

/* Appends a kept row to the dataset, interning its IDs on first sight. */
static int append_row(read_ctx *c, int64_t up, int64_t ip, float v, bool has_ts, int64_t ts) {
  cofi_dataset *ds = c->ds;
  uint32_t u, i;
  int rc;
  if ((rc = cofi__dataset_reserve_one(ds)) || (rc = intern_pos(&c->users, &ds->users, up, &u)) ||
      (rc = intern_pos(&c->items, &ds->items, ip, &i))) {
    if (rc == COFI_ERR_INVALID)
      return cofi__fail(c->d, rc, c->s->where, 0, "more than 4294967294 distinct IDs");
    return cofi__fail(c->d, rc, "", 0, "out of memory");
  }
  ds->user[ds->n] = u;
  ds->item[ds->n] = i;
  ds->value[ds->n] = v;
  ds->time[ds->n] = has_ts ? ts : 0;
  if (!has_ts) c->all_time = false;
  ds->n++;
  return COFI_OK;
}

static int read_row(void *ctx, const cofi__store_row *r) {
  read_ctx *c = ctx;
  int64_t up, ip;
  float v;
  bool keep;
  int rc = weigh(c, &c->last_w, r, c->d, &up, &ip, &v, &keep);
  if (rc) return rc;
  c->rows++;
  return keep ? append_row(c, up, ip, v, r->has_ts, r->ts) : COFI_OK;
}

/* ---- the parallel scan ------------------------------------------------- */
/*
 * With a back end that can open a second connection (SQLite), a large
 * store is read in two halves at once: this thread reads seq in (lo, mid]
 * into the dataset, a second thread reads (mid, hi] on its own connection
 * into compact arrays of key-table positions, which are then appended in
 * order (so IDs are numbered exactly as a single scan would number them).
 *
 * The second connection has its own snapshot, which may be later than
 * this one's. Its half is still this snapshot's half when it holds as many
 * rows: events are never updated in place and a new event's seq is above
 * every seq ever used (AUTOINCREMENT), so a later snapshot's rows in
 * (mid, hi] are this snapshot's rows minus those deleted since; the same
 * count means none was. Otherwise the half is read again here.
 */
uint64_t cofi__store_parallel_min = 2000000;
uint64_t cofi__store_bulk_min = 100000;
uint64_t cofi__store_parallel_scans;
bool cofi__store_parallel_always;

typedef struct half {
  read_ctx c; /* a copy: the other thread writes its own (rows, last_w) on every row */
  cofi_store *reader;
  int64_t lo, hi;
  size_t last_w;
  uint64_t rows; /* read, kept or not */
  size_t n, cap;
  uint32_t *up, *ip; /* [n] key-table positions */
  float *v;
  int64_t *ts;       /* 0 when unknown (all_time then false) */
  bool all_time;
  int rc;
  cofi_diag d;
} half;

static int half_row(void *ctx, const cofi__store_row *r) {
  half *h = ctx;
  int64_t up, ip;
  float v;
  bool keep;
  int rc = weigh(&h->c, &h->last_w, r, &h->d, &up, &ip, &v, &keep);
  if (rc) return rc;
  h->rows++;
  if (!keep) return COFI_OK;
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 65536;
    uint32_t *a = cofi__realloc(h->up, cap * sizeof *a);
    if (!a) return COFI_ERR_NOMEM;
    h->up = a;
    if (!(a = cofi__realloc(h->ip, cap * sizeof *a))) return COFI_ERR_NOMEM;
    h->ip = a;
    float *f = cofi__realloc(h->v, cap * sizeof *f);
    if (!f) return COFI_ERR_NOMEM;
    h->v = f;
    int64_t *t = cofi__realloc(h->ts, cap * sizeof *t);
    if (!t) return COFI_ERR_NOMEM;
    h->ts = t;
    h->cap = cap;
  }
  h->up[h->n] = (uint32_t)up;
  h->ip[h->n] = (uint32_t)ip;
  h->v[h->n] = v;
  h->ts[h->n] = r->has_ts ? r->ts : 0;
  if (!r->has_ts) h->all_time = false;
  h->n++;
  return COFI_OK;
}

static void *half_main(void *arg) {
  half *h = arg;
  cofi_store *r = h->reader;
  h->rc = r->ops->begin(r, false, &h->d);
  if (h->rc) return NULL;
  h->rc = r->ops->scan_range(r, h->lo, h->hi, half_row, h, &h->d);
  if (h->rc == COFI_ERR_NOMEM) h->rc = cofi__fail(&h->d, h->rc, "", 0, "out of memory");
  if (h->rc) r->ops->rollback(r);
  else h->rc = r->ops->commit(r, &h->d);
  return NULL;
}

static void half_free(half *h) {
  cofi__free(h->up);
  cofi__free(h->ip);
  cofi__free(h->v);
  cofi__free(h->ts);
  cofi_store_close(h->reader);
}

/* All events into c->ds: in two halves at once when the back end and the
 * size allow, else in one scan. */
static int scan_all(cofi_store *s, read_ctx *c, cofi_diag *d) {
  const cofi__store_ops *ops = s->ops;
  int64_t lo = 0, hi = 0;
  int rc;
  if (!ops->open_reader || (rc = ops->seq_bounds(s, &lo, &hi, d)) ||
      (uint64_t)(hi - lo) < cofi__store_parallel_min)
    return ops->scan_rows(s, read_row, c, d);
  /* Mostly packed: one scan is cheaper than two halves, whose check (the
   * second half's row count) alone reads as many index entries as the
   * half has events. */
  uint64_t packed = 0;
  if (ops->packed && (rc = ops->packed(s, &packed, d))) return rc;
  if (packed >= (uint64_t)(hi - lo) / 2 && !cofi__store_parallel_always)
    return ops->scan_rows(s, read_row, c, d);
  half h;
  memset(&h, 0, sizeof h);
  h.c = *c;
  h.lo = lo + (hi - lo) / 2;
  h.hi = hi;
  h.all_time = true;
  pthread_t th;
  if (ops->open_reader(s, &h.reader, &h.d) || pthread_create(&th, NULL, half_main, &h)) {
    half_free(&h); /* cannot run in parallel: one scan */
    return ops->scan_rows(s, read_row, c, d);
  }
  rc = ops->scan_range(s, lo - 1, h.lo, read_row, c, d);
  pthread_join(th, NULL);
  uint64_t mine = 0;
  if (!rc && !h.rc) rc = ops->count_range(s, h.lo, h.hi, &mine, d);
  if (!rc && h.rc) { /* its error, unless a later snapshot explains it */
    if ((rc = ops->count_range(s, h.lo, h.hi, &mine, d))) goto done;
    h.rows = UINT64_MAX;
  }
  if (rc) goto done;
  if (h.rows != mine) { /* rows deleted since this snapshot: read that half here */
    rc = ops->scan_range(s, h.lo, h.hi, read_row, c, d);
    goto done;
  }
  c->rows += h.rows;
  if (!h.all_time) c->all_time = false;
  __atomic_add_fetch(&cofi__store_parallel_scans, 1, __ATOMIC_RELAXED);
  for (size_t k = 0; k < h.n && !rc; k++)
    rc = append_row(c, h.up[k], h.ip[k], h.v[k], true, h.ts[k]);
done:
  half_free(&h);
  return rc;
}

static int read_item(void *ctx, int64_t key, const cofi_store_item *it) {
  read_ctx *c = ctx;
  int64_t p = keytab_find(&c->items, key);
  if (p < 0) return COFI_OK; /* added after the key scan: no events in this snapshot */
  item_meta *m = &c->meta[p];
  if (it->title) {
    if (cofi__utf8_problem(it->title, it->title_len))
      return cofi__fail(c->d, COFI_ERR_CORRUPT, c->s->where, 0,
                        "table cofi_items, row %lld: title is not valid UTF-8", (long long)key);
    m->title = cofi__malloc(it->title_len + 1);
    if (!m->title) return COFI_ERR_NOMEM;
    memcpy(m->title, it->title, it->title_len);
    m->title[it->title_len] = 0;
    m->title_len = it->title_len;
    c->any_meta = true;
  }
  if (it->fields && cofi__json_problem(it->fields, it->fields_len, COFI__JSON_OBJECT))
    return cofi__fail(c->d, COFI_ERR_CORRUPT, c->s->where, 0,
                      "table cofi_items, row %lld: fields is not a JSON object", (long long)key);
  if (it->fields && it->fields_len > 2) {
    m->fields = cofi__malloc(it->fields_len + 1);
    if (!m->fields) return COFI_ERR_NOMEM;
    memcpy(m->fields, it->fields, it->fields_len);
    m->fields[it->fields_len] = 0;
    m->fields_len = it->fields_len;
    c->any_meta = true;
  }
  return COFI_OK;
}

/* Field names: "title", then object keys in order of first appearance. */
typedef struct names_ctx {
  cofi__idmap *names;
} names_ctx;

static int add_name(void *ctx, const char *key, size_t klen, const char *val, size_t vlen) {
  cofi__idmap *names = ctx;
  if (klen == 5 && !memcmp(key, "title", 5)) return COFI_OK;
  uint32_t idx;
  return cofi__idmap_intern(names, key, klen, &idx, NULL);
}

typedef struct cells_ctx {
  const cofi__idmap *names;
  cofi__strtab *vals; /* this item's values, scratch */
  bool *set;          /* [n names] */
  size_t *pos;        /* [n names] position in vals */
} cells_ctx;

static int set_cell(void *ctx, const char *key, size_t klen, const char *val, size_t vlen) {
  cells_ctx *c = ctx;
  int64_t f = cofi__idmap_find(c->names, key, klen);
  if (f <= 0 || c->set[f]) return COFI_OK; /* "title" (0) or a repeated key */
  c->set[f] = true;
  c->pos[f] = c->vals->n;
  return cofi__strtab_push(c->vals, val, vlen);
}

static int build_meta(read_ctx *c) {
  cofi_dataset *ds = c->ds;
  cofi__idmap names;
  cofi__idmap_init(&names);
  cofi__strtab vals;
  cofi__strtab_init(&vals);
  int64_t *pos_of = NULL; /* dataset item -> key-table position */
  bool *set = NULL;
  size_t *pos = NULL;
  int rc;
  uint32_t idx;
  if ((rc = cofi__idmap_intern(&names, "title", 5, &idx, NULL))) goto done;
  pos_of = cofi__malloc((ds->items.n ? ds->items.n : 1) * sizeof *pos_of);
  if (!pos_of) { rc = COFI_ERR_NOMEM; goto done; }
  for (size_t p = 0; p < c->items.n; p++)
    if (c->items.ds_index[p] != UINT32_MAX) pos_of[c->items.ds_index[p]] = (int64_t)p;
  for (uint32_t i = 0; i < ds->items.n; i++) {
    item_meta *m = &c->meta[pos_of[i]];
    if (m->fields && (rc = cofi__json_members(m->fields, m->fields_len, add_name, &names)))
      goto done;
  }
  const uint32_t nf = names.n;
  set = cofi__malloc(nf * sizeof *set);
  pos = cofi__malloc(nf * sizeof *pos);
  if (!set || !pos) { rc = COFI_ERR_NOMEM; goto done; }
  for (uint32_t f = 0; f < nf; f++) {
    size_t len;
    const char *s = cofi__idmap_get(&names, f, &len);
    if ((rc = cofi__strtab_push(&ds->meta.names, s, len))) goto done;
  }
  ds->meta.n_fields = nf;
  ds->meta.title_field = 0;
  for (uint32_t i = 0; i < ds->items.n; i++) {
    item_meta *m = &c->meta[pos_of[i]];
    memset(set, 0, nf * sizeof *set);
    vals.n = 0;
    if (m->fields) {
      cells_ctx cc = {&names, &vals, set, pos};
      if ((rc = cofi__json_members(m->fields, m->fields_len, set_cell, &cc))) goto done;
    }
    if ((rc = cofi__strtab_push(&ds->meta.cells, m->title ? m->title : "", m->title_len)))
      goto done;
    for (uint32_t f = 1; f < nf; f++) {
      size_t len = 0;
      const char *v = "";
      if (set[f]) v = cofi__strtab_get(&vals, pos[f], &len);
      if ((rc = cofi__strtab_push(&ds->meta.cells, v, len))) goto done;
    }
  }
done:
  cofi__idmap_free(&names);
  cofi__strtab_free(&vals);
  cofi__free(pos_of);
  cofi__free(set);
  cofi__free(pos);
  return rc;
}

static int check_weights(const cofi_event_weight *w, size_t n, cofi_diag *d) {
  if (n == 0) return cofi__fail(d, COFI_ERR_INVALID, "", 0, "the event weight table is empty");
  for (size_t e = 0; e < n; e++) {
    if (!w[e].event || !w[e].event[0])
      return cofi__fail(d, COFI_ERR_INVALID, "", 0, "event weight %zu has no event name", e + 1);
    if (!isfinite(w[e].weight) || w[e].weight < 0)
      return cofi__fail(d, COFI_ERR_INVALID, "", 0,
                        "the weight of event '%.100s' must be a finite number >= 0", w[e].event);
    for (size_t f = 0; f < e; f++)
      if (!strcmp(w[f].event, w[e].event))
        return cofi__fail(d, COFI_ERR_INVALID, "", 0, "event '%.100s' has two weights",
                          w[e].event);
  }
  return COFI_OK;
}

/* A read's context from the reading options: event weights (checked),
 * the minimum value, and the empty dataset the rows go into. */
static int read_ctx_init(read_ctx *c, cofi_store *s, const cofi_read_options *opt,
                         cofi_diag *diag) {
  memset(c, 0, sizeof *c);
  c->s = s;
  c->d = diag;
  c->w = opt->event_weights ? opt->event_weights : default_weights;
  c->n_w = opt->event_weights ? opt->n_event_weights
                              : sizeof default_weights / sizeof default_weights[0];
  int rc = check_weights(c->w, c->n_w, diag);
  if (rc) return rc;
  c->has_min = opt->has_min_value != 0;
  c->min_value = (float)opt->min_value;
  c->binarize = c->has_min && opt->format == COFI_FORMAT_MOVIELENS;
  c->all_time = true;
  if ((rc = cofi__dataset_new(&c->ds))) return cofi__fail(diag, rc, "", 0, "out of memory");
  snprintf(c->ds->source, sizeof c->ds->source, "%s", s->where);
  return COFI_OK;
}

int cofi_store_read_dataset(cofi_store *s, const cofi_read_options *opt, cofi_dataset **out,
                            cofi_diag *diag) {
  if (!out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output dataset");
  *out = NULL;
  if (!s) return no_store(diag);
  cofi_read_options defaults = cofi_read_options_default();
  if (!opt) opt = &defaults;
  if (opt->format != COFI_FORMAT_CSV && opt->format != COFI_FORMAT_MOVIELENS)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "unknown format %d", (int)opt->format);
  if (opt->has_min_value && !isfinite(opt->min_value))
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "the minimum value must be a finite number");
  read_ctx c;
  int rc = read_ctx_init(&c, s, opt, diag);
  if (rc) return rc;
  bool in_tx = false;
  if ((rc = s->ops->begin(s, false, diag))) goto done;
  in_tx = true;
  if ((rc = load_keys(s, COFI__USERS, &c.users, diag))) goto done;
  if ((rc = load_keys(s, COFI__ITEMS, &c.items, diag))) goto done;
  c.meta = cofi__calloc(c.items.n ? c.items.n : 1, sizeof *c.meta);
  if (!c.meta) { rc = cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory"); goto done; }
  if ((rc = scan_all(s, &c, diag))) goto done;
  if ((rc = s->ops->scan_items(s, read_item, &c, diag))) {
    if (rc == COFI_ERR_NOMEM) rc = cofi__fail(diag, rc, "", 0, "out of memory");
    goto done;
  }
  in_tx = false;
  if ((rc = s->ops->commit(s, diag))) goto done;
  if (c.ds->n == 0) {
    if (c.rows == 0) rc = cofi__fail(diag, COFI_ERR_EMPTY, s->where, 0, "the store has no events");
    else
      rc = cofi__fail(diag, COFI_ERR_EMPTY, s->where, 0,
                      "none of the %llu events has a value >= %g", (unsigned long long)c.rows,
                      opt->min_value);
    goto done;
  }
  c.ds->has_time = c.all_time;
  if (c.any_meta && (rc = build_meta(&c))) {
    rc = cofi__fail(diag, rc, "", 0, "out of memory");
    goto done;
  }
  *out = c.ds;
  c.ds = NULL;
done:
  if (in_tx) s->ops->rollback(s);
  cofi_dataset_free(c.ds);
  if (c.meta)
    for (size_t p = 0; p < c.items.n; p++) {
      cofi__free(c.meta[p].title);
      cofi__free(c.meta[p].fields);
    }
  cofi__free(c.meta);
  keytab_free(&c.users);
  keytab_free(&c.items);
  return rc;
}

/* ---- a share of the events, for `mpirun cofi train --store` ------------ */

int cofi__store_seq_bounds(cofi_store *s, int64_t *lo, int64_t *hi, cofi_diag *diag) {
  if (!s) return no_store(diag);
  if (!s->ops->seq_bounds || !s->ops->scan_range)
    return cofi__fail(diag, COFI_ERR_INVALID, s->where, 0,
                      "the %s back end cannot read a share of the events", s->ops->name);
  return s->ops->seq_bounds(s, lo, hi, diag);
}

int cofi__store_read_share(cofi_store *s, const cofi_read_options *opt, int64_t lo, int64_t hi,
                           cofi_dataset **out, uint64_t *rows, cofi_diag *diag) {
  *out = NULL;
  *rows = 0;
  if (!s) return no_store(diag);
  cofi_read_options defaults = cofi_read_options_default();
  if (!opt) opt = &defaults;
  if (!s->ops->scan_range)
    return cofi__fail(diag, COFI_ERR_INVALID, s->where, 0,
                      "the %s back end cannot read a share of the events", s->ops->name);
  if (opt->has_min_value && !isfinite(opt->min_value))
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "the minimum value must be a finite number");
  read_ctx c;
  int rc = read_ctx_init(&c, s, opt, diag);
  if (rc) return rc;
  bool in_tx = false;
  if ((rc = s->ops->begin(s, false, diag))) goto done;
  in_tx = true;
  if ((rc = load_keys(s, COFI__USERS, &c.users, diag))) goto done;
  if ((rc = load_keys(s, COFI__ITEMS, &c.items, diag))) goto done;
  if ((rc = s->ops->scan_range(s, lo, hi, read_row, &c, diag))) goto done;
  in_tx = false;
  if ((rc = s->ops->commit(s, diag))) goto done;
  c.ds->has_time = c.all_time;
  *rows = c.rows;
  *out = c.ds;
  c.ds = NULL;
done:
  if (in_tx) s->ops->rollback(s);
  cofi_dataset_free(c.ds);
  keytab_free(&c.users);
  keytab_free(&c.items);
  return rc;
}

int cofi__store_read_item_meta(cofi_store *s, cofi_dataset *ds, cofi_diag *diag) {
  if (!s) return no_store(diag);
  read_ctx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.d = diag;
  c.ds = ds;
  bool in_tx = false;
  int rc = s->ops->begin(s, false, diag);
  if (rc) goto done;
  in_tx = true;
  if ((rc = load_keys(s, COFI__ITEMS, &c.items, diag))) goto done;
  /* the key table's items that are in ds, at their dataset index */
  c.meta = cofi__calloc(c.items.n ? c.items.n : 1, sizeof *c.meta);
  if (!c.meta) { rc = cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory"); goto done; }
  uint32_t found = 0;
  for (size_t p = 0; p < c.items.n; p++) {
    size_t len;
    const char *id = cofi__strtab_get(&c.items.ids, p, &len);
    int64_t idx = cofi__idmap_find(&ds->items, id, len);
    c.items.ds_index[p] = idx < 0 ? UINT32_MAX : (uint32_t)idx;
    found += idx >= 0;
  }
  if (found != ds->items.n) {
    rc = cofi__fail(diag, COFI_ERR_INVALID, s->where, 0,
                    "%u of the items trained on were deleted from cofi_items while training read "
                    "the store; train again", ds->items.n - found);
    goto done;
  }
  if ((rc = s->ops->scan_items(s, read_item, &c, diag))) {
    if (rc == COFI_ERR_NOMEM) rc = cofi__fail(diag, rc, "", 0, "out of memory");
    goto done;
  }
  in_tx = false;
  if ((rc = s->ops->commit(s, diag))) goto done;
  if (c.any_meta && (rc = build_meta(&c))) rc = cofi__fail(diag, rc, "", 0, "out of memory");
done:
  if (in_tx) s->ops->rollback(s);
  if (c.meta)
    for (size_t p = 0; p < c.items.n; p++) {
      cofi__free(c.meta[p].title);
      cofi__free(c.meta[p].fields);
    }
  cofi__free(c.meta);
  keytab_free(&c.items);
  return rc;
}

int cofi__store_end_read(cofi_store *s, int rc, cofi_diag *diag) {
  if (!rc) return s->ops->commit(s, diag);
  s->ops->rollback(s);
  return rc == COFI_ERR_NOMEM ? cofi__fail(diag, rc, "", 0, "out of memory") : rc;
}

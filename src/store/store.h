/*
 * store.h — the store's inside: the back-end interface (a small table of
 * functions, one per operation, as SQLite's VFS is), the handle, and the
 * helpers the back ends share. Only src/store/ includes it.
 *
 * The generic layer (store.c) checks every input, opens and closes the
 * transactions and turns keys back into IDs; a back end (sqlite.c,
 * postgres.c) only runs SQL. Inside the database users and items have
 * integer keys (ukey, ikey) and events refer to them, so an event row is
 * a few integers and the training scan never compares strings.
 */
#ifndef COFI_STORE_H
#define COFI_STORE_H

#include "internal.h"

/* An event with its user and item resolved to keys. */
typedef struct cofi__store_row {
  uint64_t seq;      /* read back only */
  int64_t user, item; /* ukey, ikey */
  const char *event; /* NULL: untyped */
  size_t event_len;
  double value;
  int64_t ts;
  bool has_ts;
  int64_t code; /* SQLite inside: the event type's code in cofi_event_types, 0: untyped */
} cofi__store_row;

enum { COFI__USERS = 0, COFI__ITEMS = 1 };

/* Callbacks of the scans: 0 continues, anything else stops the scan and is
 * returned by it. */
typedef int (*cofi__key_fn)(void *ctx, int64_t key, const char *id, size_t len);
typedef int (*cofi__row_fn)(void *ctx, const cofi__store_row *row);
typedef int (*cofi__item_fn)(void *ctx, int64_t key, const cofi_store_item *item);
/* A history row: the event (user_id empty), its item's ID and title. */
typedef int (*cofi__hist_fn)(void *ctx, const cofi_store_event *ev);

/* Every function fills diag and returns a cofi_error on failure. Writes
 * run between begin(write = true) and commit; reads that must see one
 * snapshot (the scans) between begin(write = false) and commit. */
typedef struct cofi__store_ops {
  const char *name;
  void (*close)(cofi_store *s);
  int (*begin)(cofi_store *s, bool write, cofi_diag *d);
  int (*commit)(cofi_store *s, cofi_diag *d);
  void (*rollback)(cofi_store *s);
  /* Schema (inside a write transaction): the highest version applied (0
   * for an empty database; creates cofi_schema_version), and applying
   * version v (its DDL plus the version row). */
  int (*schema_version)(cofi_store *s, uint32_t *v, cofi_diag *d);
  int (*migrate)(cofi_store *s, uint32_t v, cofi_diag *d);
  /* keys[i] of ids[i] in table; create: insert those missing, else -1.
   * With create the ids must be distinct (store.c dedupes them first: a
   * back end may insert the missing ones in one multi-row statement). */
  int (*keys)(cofi_store *s, int table, size_t n, const char *const *ids,
              const size_t *lens, bool create, int64_t *keys, cofi_diag *d);
  int (*insert_rows)(cofi_store *s, const cofi__store_row *rows, size_t n,
                     cofi_diag *d);
  /* Bulk loading: before and after many insert_rows (at least
   * cofi__store_bulk_min) in one transaction; PostgreSQL sets its foreign
   * keys aside and checks them once at the end. */
  int (*bulk_begin)(cofi_store *s, cofi_diag *d);
  int (*bulk_end)(cofi_store *s, cofi_diag *d);
  int (*put_user)(cofi_store *s, const cofi_store_user *u, cofi_diag *d);
  /* labels into *labels (malloc'd by cofi__malloc, NUL-terminated). */
  int (*get_user)(cofi_store *s, const char *id, size_t len, char **labels,
                  size_t *labels_len, cofi_diag *d);
  int (*delete_user)(cofi_store *s, int64_t key, uint64_t *n_events,
                     cofi_diag *d);
  int (*put_item)(cofi_store *s, const cofi_store_item *it, cofi_diag *d);
  /* fn called once with the item (strings borrowed), or NOT_FOUND. */
  int (*get_item)(cofi_store *s, const char *id, size_t len, cofi__item_fn fn,
                  void *ctx, cofi_diag *d);
  int (*hide_item)(cofi_store *s, const char *id, size_t len, int hidden,
                   cofi_diag *d);
  int (*history)(cofi_store *s, int64_t user, uint32_t limit, cofi__hist_fn fn,
                 void *ctx, cofi_diag *d);
  /* The distinct items the user has events with: fn(key, id) once each,
   * in no particular order (user_items.c). */
  int (*user_items)(cofi_store *s, int64_t user, cofi__key_fn fn, void *ctx, cofi_diag *d);
  int (*scan_keys)(cofi_store *s, int table, cofi__key_fn fn, void *ctx,
                   cofi_diag *d);
  int (*scan_items)(cofi_store *s, cofi__item_fn fn, void *ctx, cofi_diag *d);
  int (*scan_rows)(cofi_store *s, cofi__row_fn fn, void *ctx, cofi_diag *d);
  int (*count)(cofi_store *s, cofi_store_counts *out, cofi_diag *d);
  /* Parallel training scans (optional: NULL when the back end has none).
   * A second read-only connection to the same database (its own
   * cofi_store, closed with cofi_store_close); the smallest and largest
   * seq (0 and 0 when empty); and scanning or counting the events with
   * lo < seq <= hi, in seq order. */
  int (*open_reader)(cofi_store *s, cofi_store **out, cofi_diag *d);
  int (*seq_bounds)(cofi_store *s, int64_t *lo, int64_t *hi, cofi_diag *d);
  int (*scan_range)(cofi_store *s, int64_t lo, int64_t hi, cofi__row_fn fn, void *ctx,
                    cofi_diag *d);
  int (*count_range)(cofi_store *s, int64_t lo, int64_t hi, uint64_t *n, cofi_diag *d);
  /* Event packs (pack.c; optional: NULL when the back end keeps none).
   * Inside a write transaction: packs every run of at least
   * cofi__pack_min events that no pack covers yet, at most max_packs
   * packs (0: no limit), *packed the number of events packed. scan_rows
   * and scan_range read the packs where there are some and cofi_events
   * elsewhere. */
  int (*compact)(cofi_store *s, uint32_t max_packs, uint64_t *packed, cofi_diag *d);
  /* How many events the packs hold (for choosing the scan). */
  int (*packed)(cofi_store *s, uint64_t *n, cofi_diag *d);
} cofi__store_ops;

struct cofi_store {
  const cofi__store_ops *ops;
  void *impl;       /* the back end's connection state */
  char where[256];  /* the URL without a password, for messages */
  char migration[512]; /* what the open did to an existing schema, "" if nothing */
};

/* cofi_store_open (open.c) in three steps: an empty store named after the
 * URL (any password masked; NULL when out of memory), a back end's open,
 * which fills s->ops and s->impl (target: the path for SQLite, the whole
 * URL for PostgreSQL), then the schema created or migrated. The split
 * keeps calls one way: open.c -> back ends -> store.c. */
cofi_store *cofi__store_new(const char *url);
int cofi__store_migrate(cofi_store *s, cofi_diag *diag);
int cofi__sqlite_open(cofi_store *s, const char *target, cofi_diag *d);
int cofi__pg_open(cofi_store *s, const char *target, cofi_diag *d);

/* Stores with at least this many events (by seq range) are read for
 * training in two halves at once when the back end can (store.c); tests
 * lower it to cover that path on small stores. */
extern uint64_t cofi__store_parallel_min;
/* Imports of at least this many events take the bulk path (bulk_begin,
 * bulk_end); tests lower it. */
extern uint64_t cofi__store_bulk_min;
/* How many reads used the two halves (for the tests). */
extern uint64_t cofi__store_parallel_scans;
/* Tests: the two halves even when the events are mostly packed (a single
 * scan is then taken otherwise). */
extern bool cofi__store_parallel_always;

/* ---- event packs (pack.c) ---------------------------------------------- */
/* Events per pack, at most; runs shorter than COFI__PACK_MIN stay rows. */
#define COFI__PACK_EVENTS 65536
extern uint64_t cofi__pack_min; /* default 4096; tests lower it */
/* rows[0..n) (seq ascending, code set, event ignored) as one pack, in a
 * cofi__malloc'd blob; COFI_ERR_NOMEM, COFI_ERR_INVALID (n out of range). */
int cofi__pack_encode(const cofi__store_row *rows, size_t n, unsigned char **out, size_t *len);
/* Calls fn for each event of a pack with lo < seq <= hi, in seq order
 * (event NULL, code set); fn's non-zero stops and is returned. A blob that
 * breaks the layout is COFI_ERR_CORRUPT with *problem saying how. */
int cofi__pack_decode(const unsigned char *p, size_t len, int64_t lo, int64_t hi,
                      cofi__row_fn fn, void *ctx, const char **problem);

/* ---- a connection's cache of keys (keycache.c) ------------------------- */
/* ID -> key of users or items already seen by this connection. The owner
 * clears it whenever a key it holds may have changed (keycache.c says
 * when); past about a million entries it starts again. */
typedef struct cofi__keycache {
  cofi__idmap ids;
  int64_t *keys; /* [ids.n] */
  size_t cap;
} cofi__keycache;
/* The key of id, or -1 when not cached. */
int64_t cofi__keycache_find(const cofi__keycache *c, const char *id, size_t len);
/* Remembers id -> key (id not cached yet); COFI_ERR_NOMEM. */
int cofi__keycache_put(cofi__keycache *c, const char *id, size_t len, int64_t key);
/* Forgets everything and frees the memory (the cache stays usable). */
void cofi__keycache_clear(cofi__keycache *c);

/* ---- checks shared by the layers (store.c) ----------------------------- */
/* NULL when s[0..n) is valid UTF-8 without NUL bytes, else what is wrong. */
const char *cofi__utf8_problem(const char *s, size_t n);
/* NULL when text is a JSON value of the kind (0: array of strings, 1:
 * object), else what is wrong. */
enum { COFI__JSON_STRINGS = 0, COFI__JSON_OBJECT = 1 };
const char *cofi__json_problem(const char *s, size_t n, int kind);
/* Calls fn for each member of a JSON object already checked: the key and
 * the value (unescaped when a string, else its JSON text), NUL-terminated
 * (in a scratch buffer valid during the call). fn's non-zero stops and is
 * returned; COFI_ERR_NOMEM. */
typedef int (*cofi__json_member_fn)(void *ctx, const char *key, size_t klen,
                                    const char *val, size_t vlen);
int cofi__json_members(const char *s, size_t n, cofi__json_member_fn fn,
                       void *ctx);
/* Appends s as a quoted JSON string to a growing buffer. */
typedef struct cofi__buf {
  char *p;
  size_t n, cap;
} cofi__buf;
int cofi__buf_put(cofi__buf *b, const char *s, size_t n);
int cofi__buf_json_string(cofi__buf *b, const char *s, size_t n);
void cofi__buf_free(cofi__buf *b);

/* Ends a read transaction begun with ops->begin(s, false, ...): rolled
 * back after a failure rc (which is returned, out of memory with its
 * message), committed otherwise. */
int cofi__store_end_read(cofi_store *s, int rc, cofi_diag *diag);
/* An ID given by the caller (user_id, item_id): COFI_ERR_INVALID naming
 * field and the problem when it breaks the ID rules. */
int cofi__store_check_id(const char *field, const char *id, size_t len, cofi_diag *d);

/* A row read back that breaks the schema's rules: COFI_ERR_CORRUPT with
 * the table and row in diag. */
int cofi__store_check_row(cofi_store *s, const char *table, uint64_t row,
                          const char *what, const char *str, size_t len,
                          cofi_diag *d);

#endif

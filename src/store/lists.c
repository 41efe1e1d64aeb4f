/*
 * lists.c — the store's non-personalized lists (cofi_store_popular,
 * cofi_store_latest) (the scan of every item is scan_items.c):
 * the checks of the arguments, and the answer gathered into one
 * allocation. The SQL is in lists_sql.c.
 */
#include "lists.h"

#include <string.h>

/* The rows as they come, then laid out in one block. */
typedef struct gather {
  cofi__buf text; /* ids and titles, back to back */
  cofi_store_ranked *rows;
  size_t n, cap;
} gather;

static int gather_row(void *ctx, const cofi_store_ranked *row) {
  gather *g = ctx;
  if (g->n == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 16;
    cofi_store_ranked *p = cofi__realloc(g->rows, cap * sizeof *p);
    if (!p) return COFI_ERR_NOMEM;
    g->rows = p;
    g->cap = cap;
  }
  cofi_store_ranked *r = &g->rows[g->n++];
  *r = *row;
  /* Offsets into text until the layout (the buffer moves as it grows). */
  r->item_id = (const char *)(uintptr_t)g->text.n;
  if (cofi__buf_put(&g->text, row->item_id, row->item_len) || cofi__buf_put(&g->text, "", 1))
    return COFI_ERR_NOMEM;
  if (row->title) {
    r->title = (const char *)(uintptr_t)g->text.n;
    if (cofi__buf_put(&g->text, row->title, row->title_len) || cofi__buf_put(&g->text, "", 1))
      return COFI_ERR_NOMEM;
  }
  return COFI_OK;
}

static int check_category(const char *category, size_t len, cofi_diag *d) {
  if (!category) return COFI_OK;
  if (len == 0 || len > COFI_STORE_MAX_ID)
    return cofi__fail(d, COFI_ERR_INVALID, "", 0, "category: %zu bytes, expected 1..%d", len,
                      COFI_STORE_MAX_ID);
  const char *u = cofi__utf8_problem(category, len);
  if (u) return cofi__fail(d, COFI_ERR_INVALID, "", 0, "category: %s", u);
  return COFI_OK;
}

static int run_list(cofi_store *s, const cofi__list_query *q, cofi_store_ranked **out,
                    size_t *n_out, cofi_diag *d) {
  *out = NULL;
  *n_out = 0;
  if (q->k == 0) return cofi__fail(d, COFI_ERR_INVALID, "", 0, "k: 0, expected at least 1");
  int rc = check_category(q->category, q->category_len, d);
  if (rc) return rc;
  gather g;
  memset(&g, 0, sizeof g);
  rc = cofi__list_run(s, q, gather_row, &g, d);
  if (rc == COFI_ERR_NOMEM) rc = cofi__fail(d, rc, "", 0, "out of memory");
  if (!rc) {
    size_t head = (g.n ? g.n : 1) * sizeof(cofi_store_ranked);
    char *block = cofi__malloc(head + g.text.n + 1);
    if (!block) {
      rc = cofi__fail(d, COFI_ERR_NOMEM, "", 0, "out of memory");
    } else {
      cofi_store_ranked *rows = (cofi_store_ranked *)block;
      char *text = block + head;
      if (g.text.n) memcpy(text, g.text.p, g.text.n);
      for (size_t i = 0; i < g.n; i++) {
        rows[i] = g.rows[i];
        rows[i].item_id = text + (uintptr_t)g.rows[i].item_id;
        if (g.rows[i].title) rows[i].title = text + (uintptr_t)g.rows[i].title;
      }
      *out = rows;
      *n_out = g.n;
    }
  }
  cofi__free(g.rows);
  cofi__buf_free(&g.text);
  return rc;
}

int cofi_store_popular(cofi_store *s, const char *category, size_t category_len, int has_since,
                       int64_t since, uint32_t k, cofi_store_ranked **out, size_t *n_out,
                       cofi_diag *diag) {
  cofi__list_query q = {COFI__LIST_POPULAR, category, category_len, has_since != 0, since, k};
  return run_list(s, &q, out, n_out, diag);
}

int cofi_store_latest(cofi_store *s, const char *category, size_t category_len, uint32_t k,
                      cofi_store_ranked **out, size_t *n_out, cofi_diag *diag) {
  cofi__list_query q = {COFI__LIST_LATEST, category, category_len, false, 0, k};
  return run_list(s, &q, out, n_out, diag);
}

void cofi_store_ranked_free(cofi_store_ranked *rows) { cofi__free(rows); }

/*
 * recent.c — the "newest events" split of a retraining server
 * (cofi_split_recent in cofi.h): hold out the newest share of a log, so a
 * freshly trained model and the one being served can be compared on what
 * users did last, with the same history folded in for both.
 *
 * With a model given, only pairs that model was not trained on can be held
 * out: comparing it with a new model on events it has already fitted would
 * favour it (on ml-latest-small, Recall@10 0.29 against 0.07 for a model
 * that never saw them).
 *
 * Two sorts of row indices: by (time, input order) to find the newest
 * rows, then by (user, item) to keep every pair whole: a pair with any row
 * before the cut is a repeat of something already known and stays in
 * training, so a held-out item is never also a training item of that user.
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct by_time {
  int64_t time;
  uint64_t row;
} by_time;

static int cmp_time(const void *a, const void *b) {
  const by_time *x = a, *y = b;
  if (x->time != y->time) return x->time < y->time ? -1 : 1;
  return x->row < y->row ? -1 : x->row > y->row;
}

typedef struct by_pair {
  uint32_t user, item;
  uint64_t row;
} by_pair;

static int cmp_pair(const void *a, const void *b) {
  const by_pair *x = a, *y = b;
  if (x->user != y->user) return x->user < y->user ? -1 : 1;
  if (x->item != y->item) return x->item < y->item ? -1 : 1;
  return x->row < y->row ? -1 : x->row > y->row;
}

/* Does m's training matrix hold the pair (user u, item i of ds)? */
static bool pair_known(const cofi_model *m, const cofi_dataset *ds, uint32_t u, uint32_t i) {
  size_t len;
  const char *s = cofi__idmap_get(&ds->users, u, &len);
  int64_t mu = cofi__idmap_find(&m->users, s, len);
  if (mu < 0 || (uint64_t)mu >= m->user_items.n_rows) return false;
  s = cofi__idmap_get(&ds->items, i, &len);
  int64_t mi = cofi__idmap_find(&m->items, s, len);
  if (mi < 0) return false;
  const uint32_t *row = m->user_items.indices + m->user_items.indptr[mu];
  size_t lo = 0, hi = (size_t)(m->user_items.indptr[mu + 1] - m->user_items.indptr[mu]);
  while (lo < hi) { /* columns are sorted ascending */
    size_t mid = lo + (hi - lo) / 2;
    if (row[mid] < (uint32_t)mi) lo = mid + 1;
    else hi = mid;
  }
  return lo < (size_t)(m->user_items.indptr[mu + 1] - m->user_items.indptr[mu]) &&
         row[lo] == (uint32_t)mi;
}

int cofi_split_recent(const cofi_dataset *ds, double fraction, const cofi_model *unseen_by,
                      uint8_t *parts, uint64_t counts[COFI_PART_COUNT], cofi_diag *diag) {
  if (!ds || !parts)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "cofi_split_recent: ds and parts are required");
  if (!(fraction > 0 && fraction < 1))
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "the held-out share of newest events must be in (0, 1), got %g", fraction);
  size_t n = ds->n;
  if (counts) memset(counts, 0, COFI_PART_COUNT * sizeof *counts);
  if (n == 0) return COFI_OK;
  by_time *t = cofi__malloc(n * sizeof *t);
  by_pair *p = cofi__malloc(n * sizeof *p);
  bool *newest = cofi__calloc(n, sizeof *newest);
  bool *tested = cofi__calloc(ds->users.n ? ds->users.n : 1, sizeof *tested);
  if (!t || !p || !newest || !tested) {
    cofi__free(t);
    cofi__free(p);
    cofi__free(newest);
    cofi__free(tested);
    return cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory splitting off the newest events");
  }
  for (size_t i = 0; i < n; i++) {
    t[i].time = ds->has_time ? ds->time[i] : 0;
    t[i].row = i;
    p[i].user = ds->user[i];
    p[i].item = ds->item[i];
    p[i].row = i;
  }
  qsort(t, n, sizeof *t, cmp_time);
  size_t held = (size_t)llround(fraction * (double)n);
  if (held < 1) held = 1;
  if (held > n) held = n;
  /* The newest `held` rows among those eligible (all, or the pairs that
   * unseen_by was not trained on). */
  for (size_t i = n, taken = 0; i-- > 0 && taken < held;) {
    uint64_t r = t[i].row;
    if (unseen_by && pair_known(unseen_by, ds, ds->user[r], ds->item[r])) continue;
    newest[r] = true;
    taken++;
  }
  qsort(p, n, sizeof *p, cmp_pair);
  for (size_t b = 0; b < n;) {
    size_t e = b;
    bool all_new = true;
    while (e < n && p[e].user == p[b].user && p[e].item == p[b].item) {
      all_new = all_new && newest[p[e].row];
      e++;
    }
    for (size_t i = b; i < e; i++) parts[p[i].row] = all_new ? COFI_PART_TEST : COFI_PART_TRAIN;
    if (all_new) tested[p[b].user] = true;
    b = e;
  }
  for (size_t i = 0; i < n; i++) {
    if (parts[i] == COFI_PART_TRAIN && tested[ds->user[i]]) parts[i] = COFI_PART_TEST_FOLDIN;
    if (counts) counts[parts[i]]++;
  }
  cofi__free(t);
  cofi__free(p);
  cofi__free(newest);
  cofi__free(tested);
  return COFI_OK;
}

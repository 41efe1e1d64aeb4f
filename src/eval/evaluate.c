/*
 * evaluate.c — evaluation of a trained model (or a baseline built from its
 * training matrix) on held-out interactions: matching held-out users and
 * items to the training index space by ID, folding in held-out users, then
 * ranking and scoring (rank.c, metrics.c).
 *
 * Matching is by ID string, so a model opened from a file evaluates on any
 * held-out file, and the split files of `cofi split` work as well as an
 * in-process split. A held-out user is evaluated only when the user (or
 * their fold-in history) and at least one held-out item are known to the
 * training data; every other user is counted under a reason, never silently
 * dropped.
 */
#include "eval.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

void cofi__evalset_free(cofi__evalset *s) {
  if (!s) return;
  cofi__free(s->row);
  cofi__free(s->seen_ptr);
  cofi__free(s->seen);
  cofi__free(s->seen_val);
  cofi__free(s->test_ptr);
  cofi__free(s->test);
  cofi__aligned_free(s->vecs);
  cofi__free(s->is_head);
  memset(s, 0, sizeof *s);
}

/* Index in `to` of every item of `from` (by ID), -1 when absent.
 * out: [from->n]. */
static void map_ids(const cofi__idmap *from, const cofi__idmap *to, int64_t *out) {
  for (uint32_t i = 0; i < from->n; i++) {
    size_t len;
    const char *s = cofi__idmap_get(from, i, &len);
    out[i] = cofi__idmap_find(to, s, len);
  }
}

typedef struct pair {
  uint32_t item;
  float val;
} pair;

static int cmp_pair(const void *a, const void *b) {
  uint32_t x = ((const pair *)a)->item, y = ((const pair *)b)->item;
  return (x > y) - (x < y);
}

/* Maps the columns of CSR row r through imap into buf, dropping unknown
 * items; sorts them. Returns how many were kept; *unknown counts the rest. */
static size_t map_row(const cofi__csr *a, uint32_t r, const int64_t *imap, pair *buf,
                      uint64_t *unknown) {
  size_t n = 0;
  for (uint64_t t = a->indptr[r]; t < a->indptr[r + 1]; t++) {
    int64_t j = imap[a->indices[t]];
    if (j < 0) {
      (*unknown)++;
      continue;
    }
    buf[n].item = (uint32_t)j;
    buf[n].val = a->data[t];
    n++;
  }
  qsort(buf, n, sizeof *buf, cmp_pair);
  return n;
}

int cofi__evalset_build(const cofi__idmap *users, const cofi__idmap *items,
                        const cofi__csr *train, const cofi_dataset *test,
                        const cofi_dataset *foldin, cofi__evalset *out) {
  memset(out, 0, sizeof *out);
  int rc = COFI_OK;
  cofi__csr tc = {0}, fc = {0};
  int64_t *umap = NULL, *imap = NULL, *fimap = NULL;
  pair *buf = NULL, *fbuf = NULL;
  size_t buf_cap = 0, fbuf_cap = 0;
  uint64_t seen_cap = 0, test_cap = 0;

  out->n_items = train->n_cols;
  out->is_head = cofi__malloc(train->n_cols ? train->n_cols : 1);
  if (!out->is_head) goto nomem;
  if ((rc = cofi__head_items(train, out->is_head, &out->n_head))) goto done;
  rc = cofi__csr_from_dataset(test, &tc);
  if (rc) goto done;
  if (foldin) {
    rc = cofi__csr_from_dataset(foldin, &fc);
    if (rc) goto done;
  }
  uint32_t n_test_users = test->users.n;
  umap = cofi__malloc(((size_t)n_test_users + 1) * sizeof *umap);
  imap = cofi__malloc(((size_t)test->items.n + 1) * sizeof *imap);
  out->row = cofi__malloc(((size_t)n_test_users + 1) * sizeof *out->row);
  out->seen_ptr = cofi__calloc((size_t)n_test_users + 1, sizeof *out->seen_ptr);
  out->test_ptr = cofi__calloc((size_t)n_test_users + 1, sizeof *out->test_ptr);
  if (!umap || !imap || !out->row || !out->seen_ptr || !out->test_ptr) goto nomem;
  map_ids(&test->users, foldin ? &foldin->users : users, umap);
  map_ids(&test->items, items, imap);
  if (foldin) {
    fimap = cofi__malloc(((size_t)foldin->items.n + 1) * sizeof *fimap);
    if (!fimap) goto nomem;
    map_ids(&foldin->items, items, fimap);
  }

  uint32_t n = 0;
  uint64_t n_seen = 0, n_test = 0;
  for (uint32_t tu = 0; tu < n_test_users; tu++) {
    size_t row_len = (size_t)(tc.indptr[tu + 1] - tc.indptr[tu]);
    if (row_len > buf_cap) {
      pair *nb = cofi__realloc(buf, row_len * sizeof *nb);
      if (!nb) goto nomem;
      buf = nb;
      buf_cap = row_len;
    }
    uint64_t unknown = 0;
    size_t nt = map_row(&tc, tu, imap, buf, &unknown);
    out->unknown_items += unknown;
    /* The user's row and the items removed from their ranking. */
    int64_t row = umap[tu];
    const uint32_t *seen = NULL;
    size_t ns = 0;
    if (row >= 0 && !foldin) {
      seen = train->indices + train->indptr[row];
      ns = (size_t)(train->indptr[row + 1] - train->indptr[row]);
      if (ns == 0) row = -1; /* an ID without training rows */
    } else if (row >= 0) {
      size_t flen = (size_t)(fc.indptr[row + 1] - fc.indptr[row]);
      if (flen > fbuf_cap) {
        pair *nb = cofi__realloc(fbuf, flen * sizeof *nb);
        if (!nb) goto nomem;
        fbuf = nb;
        fbuf_cap = flen;
      }
      uint64_t funknown = 0;
      ns = map_row(&fc, (uint32_t)row, fimap, fbuf, &funknown);
      if (ns == 0) row = -1;
    }
    if (row < 0) {
      out->skipped[COFI_SKIP_USER_UNKNOWN]++;
      continue;
    }
    if (nt == 0) {
      out->skipped[COFI_SKIP_ITEMS_UNKNOWN]++;
      continue;
    }
    if (n_seen + ns > seen_cap) {
      uint64_t cap = (n_seen + ns) * 2 + 64;
      uint32_t *s2 = cofi__realloc(out->seen, cap * sizeof *s2);
      if (!s2) goto nomem;
      out->seen = s2;
      if (foldin) {
        float *v2 = cofi__realloc(out->seen_val, cap * sizeof *v2);
        if (!v2) goto nomem;
        out->seen_val = v2;
      }
      seen_cap = cap;
    }
    if (n_test + nt > test_cap) {
      uint64_t cap = (n_test + nt) * 2 + 64;
      uint32_t *t2 = cofi__realloc(out->test, cap * sizeof *t2);
      if (!t2) goto nomem;
      out->test = t2;
      test_cap = cap;
    }
    if (foldin) {
      for (size_t i = 0; i < ns; i++) {
        out->seen[n_seen + i] = fbuf[i].item;
        out->seen_val[n_seen + i] = fbuf[i].val;
      }
    } else {
      memcpy(out->seen + n_seen, seen, ns * sizeof *seen);
    }
    for (size_t i = 0; i < nt; i++) out->test[n_test + i] = buf[i].item;
    n_seen += ns;
    n_test += nt;
    out->row[n] = (uint32_t)row;
    n++;
    out->seen_ptr[n] = n_seen;
    out->test_ptr[n] = n_test;
  }
  out->n_users = n;
  goto done;

nomem:
  rc = COFI_ERR_NOMEM;
done:
  cofi__csr_free(&tc);
  cofi__csr_free(&fc);
  cofi__free(umap);
  cofi__free(imap);
  cofi__free(fimap);
  cofi__free(buf);
  cofi__free(fbuf);
  if (rc) cofi__evalset_free(out);
  return rc;
}

int cofi__eval_run(const cofi__evalset *set, const cofi__scoring *sc,
                   const cofi_eval_options *opt, cofi_eval_result *out, cofi_diag *diag) {
  uint32_t K;
  int rc = cofi__eval_options_check(opt, &K, diag);
  if (rc) return rc;
  double t0 = cofi__now();
  size_t cells;
  if (!cofi__mul_ok((size_t)set->n_users, K, &cells))
    return cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory for the rankings");
  uint32_t *top = cofi__malloc((cells ? cells : 1) * sizeof *top);
  uint32_t *n_top = cofi__malloc(((size_t)set->n_users + 1) * sizeof *n_top);
  if (!top || !n_top) {
    rc = COFI_ERR_NOMEM;
    goto done;
  }
  rc = cofi__eval_rank(set, sc, K, top, n_top);
  if (rc) goto done;
  memset(out, 0, sizeof *out);
  rc = cofi__eval_score(set, top, n_top, K, opt, out);
  if (rc) goto done;
  out->seconds = cofi__now() - t0;
done:
  if (rc == COFI_ERR_NOMEM) cofi__fail(diag, rc, NULL, 0, "out of memory while ranking");
  cofi__free(top);
  cofi__free(n_top);
  return rc;
}

/* Folds in every evaluated user's history (set->seen, seen_val) against the
 * model's item factors; one workspace per thread. */
static int fold_in_all(const cofi_model *m, cofi__evalset *set, uint32_t threads) {
  uint32_t k = m->factors;
  size_t bytes;
  if (!cofi__mul_ok((size_t)set->n_users * k, sizeof(float), &bytes)) return COFI_ERR_NOMEM;
  set->vecs = cofi__aligned_alloc(bytes ? bytes : 64);
  cofi_workspace **ws = cofi__calloc(threads, sizeof *ws);
  int rc = COFI_OK;
  if (!set->vecs || !ws) {
    rc = COFI_ERR_NOMEM;
    goto done;
  }
  for (uint32_t t = 0; t < threads; t++)
    if (!(ws[t] = cofi_workspace_new())) {
      rc = COFI_ERR_NOMEM;
      goto done;
    }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
  for (int64_t u = 0; u < (int64_t)set->n_users; u++) {
    uint64_t b = set->seen_ptr[u], e = set->seen_ptr[u + 1];
    /* the fold-in rows come as a matrix (by item): no time order */
    int r = cofi__fold_in_given(m, ws[omp_get_thread_num()], set->seen + b, set->seen_val + b,
                                (size_t)(e - b), false, set->vecs + (size_t)u * k);
    if (r) {
#pragma omp critical
      if (!rc) rc = r;
    }
  }
done:
  if (ws)
    for (uint32_t t = 0; t < threads; t++) cofi_workspace_free(ws[t]);
  cofi__free(ws);
  return rc;
}

int cofi_evaluate(const cofi_model *m, cofi_scorer scorer, const cofi_dataset *test,
                  const cofi_dataset *foldin, const cofi_eval_options *opt,
                  cofi_eval_result *out, cofi_diag *diag) {
  if (!m || !test || !out)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "cofi_evaluate: model, test and out are required");
  if (scorer != COFI_SCORER_MODEL && scorer != COFI_SCORER_POPULARITY &&
      scorer != COFI_SCORER_RANDOM)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "unknown scorer %d", (int)scorer);
  uint32_t K;
  int rc = cofi__eval_options_check(opt, &K, diag);
  if (rc) return rc;
  if (m->user_items.n_cols != m->n_items || m->user_items.n_rows != m->n_users)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "the model holds no training matrix to evaluate against");
  cofi__evalset set;
  float *pop = NULL;
  rc = cofi__evalset_build(&m->users, &m->items, &m->user_items, test, foldin, &set);
  if (rc) return cofi__fail(diag, rc, NULL, 0, "out of memory while matching held-out data");
  uint32_t threads = cofi__threads(opt->threads);
  if (set.n_users == 0) {
    rc = cofi__fail(diag, COFI_ERR_EMPTY, NULL, 0,
                    "no held-out user can be evaluated: %llu not in training, %llu with no "
                    "held-out item in training",
                    (unsigned long long)set.skipped[COFI_SKIP_USER_UNKNOWN],
                    (unsigned long long)set.skipped[COFI_SKIP_ITEMS_UNKNOWN]);
    goto done;
  }
  cofi__scoring sc = {.kind = scorer, .U = m->user_factors, .V = m->item_factors,
                      .k = m->factors, .seed = opt->seed, .threads = threads,
                      .items_model = cofi__is_als(m) ? NULL : m};
  if (scorer == COFI_SCORER_MODEL && foldin && cofi__is_als(m)) {
    rc = fold_in_all(m, &set, threads);
    if (rc) {
      cofi__fail(diag, rc, NULL, 0, "folding in the held-out users failed: %s",
                 cofi_error_message(rc));
      goto done;
    }
  }
  if (scorer == COFI_SCORER_POPULARITY) {
    pop = cofi__malloc(((size_t)m->n_items + 1) * sizeof *pop);
    if (!pop) {
      rc = cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory");
      goto done;
    }
    cofi__popularity(&m->user_items, pop);
    sc.pop = pop;
  }
  rc = cofi__eval_run(&set, &sc, opt, out, diag);
done:
  cofi__free(pop);
  cofi__evalset_free(&set);
  return rc;
}

int cofi_evaluate_factors(const cofi_dataset *train, const float *user_factors,
                          const float *item_factors, uint32_t factors,
                          const cofi_dataset *test, const cofi_eval_options *opt,
                          cofi_eval_result *out, cofi_diag *diag) {
  if (!train || !user_factors || !item_factors || !test || !out || factors == 0)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "cofi_evaluate_factors: train, both factor matrices, test and out are required");
  uint32_t K;
  int rc = cofi__eval_options_check(opt, &K, diag);
  if (rc) return rc;
  cofi__csr csr = {0};
  cofi__evalset set;
  memset(&set, 0, sizeof set);
  rc = cofi__csr_from_dataset(train, &csr);
  if (!rc) rc = cofi__evalset_build(&train->users, &train->items, &csr, test, NULL, &set);
  if (rc) {
    cofi__fail(diag, rc, NULL, 0, "out of memory while matching held-out data");
    goto done;
  }
  if (set.n_users == 0) {
    rc = cofi__fail(diag, COFI_ERR_EMPTY, NULL, 0,
                    "no held-out user can be evaluated: %llu not in training, %llu with no "
                    "held-out item in training",
                    (unsigned long long)set.skipped[COFI_SKIP_USER_UNKNOWN],
                    (unsigned long long)set.skipped[COFI_SKIP_ITEMS_UNKNOWN]);
    goto done;
  }
  cofi__scoring sc = {.kind = COFI_SCORER_MODEL, .U = user_factors, .V = item_factors,
                      .k = factors, .threads = cofi__threads(opt->threads)};
  rc = cofi__eval_run(&set, &sc, opt, out, diag);
done:
  cofi__evalset_free(&set);
  cofi__csr_free(&csr);
  return rc;
}

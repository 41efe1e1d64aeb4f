/*
 * new_items.c — the new-items protocol (docs/evaluation.md, "New items
 * from their metadata"): how well vectors from metadata rank items that
 * have no interactions at all.
 *
 *   1. a seeded share of the items is held out ENTIRELY (every row of
 *      theirs leaves training; their metadata stays);
 *   2. ALS trains on the rest, in the full item index space (held-out
 *      items are columns without entries);
 *   3. the metadata maps are fitted on the trained items only, and give
 *      each held-out item a vector;
 *   4. every user with training rows and at least one held-out item is a
 *      test user; the candidates are the held-out items only (a new item
 *      competes with the other new items, not with the trained catalogue,
 *      whose scores carry popularity a new item cannot have), ranked by
 *      each method, scored against the user's held-out items with the
 *      formulas of cofi.h (Recall@K, NDCG@K).
 *
 * Methods: RIDGE and MEAN (user vector . mapped item vector), CATEGORY
 * popularity (an item scores the mean, over its categories, of the
 * category's training interactions: the same for every user), USER
 * categories (the mean, over the item's categories, of the share of the
 * user's training items having the category: a content-based baseline
 * that knows the user's taste without any factors), RANDOM (seeded
 * uniform scores per user and item).
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

typedef struct cand {
  float score;
  uint32_t item;
} cand;

static int cand_cmp(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  return (x->item > y->item) - (x->item < y->item);
}

static int u32_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

const char *cofi_new_items_method_name(int method) {
  static const char *const names[COFI_NEW_ITEMS_METHODS] = {
      "ridge", "mean", "category_popularity", "user_categories", "random"};
  return method >= 0 && method < COFI_NEW_ITEMS_METHODS ? names[method] : NULL;
}

cofi_new_items_eval_options cofi_new_items_eval_options_default(void) {
  cofi_new_items_eval_options o = {0.1, NULL, 1.0f, 10, 0};
  return o;
}

int cofi_evaluate_new_items(const cofi_dataset *ds, const cofi_params *p,
                            const cofi_new_items_eval_options *opt, cofi_new_items_eval_result *out,
                            cofi_diag *diag) {
  if (!ds || !p || !opt || !out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "missing argument");
  memset(out, 0, sizeof *out);
  if (!(opt->holdout_items > 0 && opt->holdout_items < 1))
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "the share of held-out items must be in (0, 1), got %g", opt->holdout_items);
  if (opt->k == 0 || opt->k > COFI_EVAL_MAX_K)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "K must be in 1..%d", COFI_EVAL_MAX_K);
  if (ds->meta.n_fields == 0)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "the new-items protocol needs item metadata: give --items FILE");
  uint32_t n_items = ds->items.n;
  size_t n_held = (size_t)llround(opt->holdout_items * n_items);
  if (n_held < 1 || n_held >= n_items)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "holding out %g of %u items leaves %zu held out: need at least 1 and fewer "
                      "than all", opt->holdout_items, n_items, n_held);
  int rc = COFI_OK;
  bool *held = cofi__calloc(n_items, sizeof *held), *keep = cofi__malloc((ds->n ? ds->n : 1) * sizeof *keep);
  bool *use = cofi__malloc(n_items * sizeof *use);
  uint32_t *perm = cofi__malloc(n_items * sizeof *perm), *test = NULL, *top = NULL;
  cofi_dataset *train = NULL;
  cofi_model *m = NULL;
  cofi_metadata_map *maps[2] = {NULL, NULL};
  const char **cats = NULL;
  size_t *lens = NULL, *off = NULL;
  float *vecs = NULL, *catpop = NULL, *itempop = NULL;
  uint64_t *tptr = NULL;
  size_t *item_cat_ptr = NULL;
  uint32_t *item_cat = NULL;
  float *user_cat = NULL;
  cand *cs = NULL;
  if (!held || !keep || !use || !perm) goto nomem;
  /* 1. the held-out items: a seeded Fisher-Yates prefix */
  for (uint32_t i = 0; i < n_items; i++) perm[i] = i;
  uint64_t st = mix(opt->seed ^ 0x6e65772d6974656dull);
  for (uint32_t i = 0; i < n_held; i++) {
    st = mix(st);
    uint32_t j = i + (uint32_t)(st % (n_items - i)), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
    held[perm[i]] = true;
  }
  for (size_t r = 0; r < ds->n; r++) keep[r] = !held[ds->item[r]];
  /* 2. train on the rest */
  if ((rc = cofi__dataset_subset(ds, keep, &train))) goto nomem;
  cofi_params tp = *p;
  tp.seed = opt->seed;
  if ((rc = cofi_train(train, &tp, &m, diag))) goto done;
  /* 3. maps from the trained items' categories */
  uint32_t field;
  if ((rc = cofi__metadata_field_index(m, opt->field, &field, diag))) goto done;
  if ((rc = cofi__metadata_split_field(m, field, &cats, &lens, &off))) goto nomem;
  for (uint32_t i = 0; i < n_items; i++) use[i] = !held[i];
  uint32_t k = m->factors;
  vecs = cofi__malloc(2 * n_held * (size_t)k * sizeof *vecs);
  if (!vecs) goto nomem;
  for (int mk = 0; mk < 2; mk++) {
    cofi_metadata_map_options mo = {(cofi_metadata_map_kind)mk, opt->lambda};
    if ((rc = cofi__metadata_map_fit_rows(m->item_factors, n_items, k, use, cats, lens, off, &mo,
                                          &maps[mk], diag)))
      goto done;
    for (size_t h = 0; h < n_held; h++) {
      uint32_t i = perm[h];
      rc = cofi_metadata_map_vector(maps[mk], cats + off[i], lens + off[i], off[i + 1] - off[i],
                                    vecs + ((size_t)mk * n_held + h) * k, NULL);
      if (rc) goto done;
    }
  }
  /* category popularity: training interactions per category (distinct
   * user-item pairs, from the model's matrix), then per held-out item the
   * mean over its categories */
  size_t n_cats = cofi_metadata_map_n_categories(maps[1]);
  catpop = cofi__calloc(n_cats ? n_cats : 1, sizeof *catpop);
  itempop = cofi__calloc(n_held, sizeof *itempop);
  if (!catpop || !itempop) goto nomem;
  {
    uint64_t *per_item = cofi__calloc(n_items, sizeof *per_item);
    if (!per_item) goto nomem;
    for (uint64_t e = 0; e < m->user_items.indptr[m->n_users]; e++) per_item[m->user_items.indices[e]]++;
    for (uint32_t i = 0; i < n_items; i++)
      for (size_t j = off[i]; j < off[i + 1] && !held[i]; j++) {
        int64_t c = cofi__metadata_map_category(maps[1], cats[j], lens[j]);
        if (c >= 0) catpop[c] += (float)per_item[i];
      }
    cofi__free(per_item);
  }
  for (size_t h = 0; h < n_held; h++) {
    uint32_t i = perm[h];
    size_t nk = 0;
    double s = 0;
    for (size_t j = off[i]; j < off[i + 1]; j++) {
      int64_t c = cofi__metadata_map_category(maps[1], cats[j], lens[j]);
      if (c >= 0) { s += catpop[c]; nk++; }
    }
    itempop[h] = nk ? (float)(s / nk) : 0.0f;
  }
  /* each item's known categories, as map indices */
  item_cat_ptr = cofi__malloc(((size_t)n_items + 1) * sizeof *item_cat_ptr);
  item_cat = cofi__malloc((off[n_items] ? off[n_items] : 1) * sizeof *item_cat);
  user_cat = cofi__calloc(n_cats ? n_cats : 1, sizeof *user_cat);
  if (!item_cat_ptr || !item_cat || !user_cat) goto nomem;
  item_cat_ptr[0] = 0;
  for (uint32_t i = 0; i < n_items; i++) {
    size_t w = item_cat_ptr[i];
    for (size_t j = off[i]; j < off[i + 1]; j++) {
      int64_t c = cofi__metadata_map_category(maps[1], cats[j], lens[j]);
      if (c >= 0) item_cat[w++] = (uint32_t)c;
    }
    item_cat_ptr[i + 1] = w;
  }
  /* 4. test users: their held-out items, as positions h in perm */
  uint32_t *pos = cofi__malloc(n_items * sizeof *pos);
  if (!pos) goto nomem;
  for (uint32_t i = 0; i < n_items; i++) pos[i] = UINT32_MAX;
  for (size_t h = 0; h < n_held; h++) pos[perm[h]] = (uint32_t)h;
  uint32_t n_users = ds->users.n;
  tptr = cofi__calloc((size_t)n_users + 1, sizeof *tptr);
  test = cofi__malloc((ds->n ? ds->n : 1) * sizeof *test);
  if (!tptr || !test) { cofi__free(pos); goto nomem; }
  for (size_t r = 0; r < ds->n; r++)
    if (held[ds->item[r]]) tptr[ds->user[r] + 1]++;
  for (uint32_t u = 0; u < n_users; u++) tptr[u + 1] += tptr[u];
  {
    uint64_t *fill = cofi__malloc(((size_t)n_users + 1) * sizeof *fill);
    if (!fill) { cofi__free(pos); goto nomem; }
    memcpy(fill, tptr, ((size_t)n_users + 1) * sizeof *fill);
    for (size_t r = 0; r < ds->n; r++)
      if (held[ds->item[r]]) test[fill[ds->user[r]]++] = pos[ds->item[r]];
    cofi__free(fill);
  }
  cofi__free(pos);
  cs = cofi__malloc(n_held * sizeof *cs);
  top = cofi__malloc(n_held * sizeof *top);
  if (!cs || !top) goto nomem;
  double sum[COFI_NEW_ITEMS_METHODS][2] = {{0}};
  uint64_t users = 0;
  for (uint32_t u = 0; u < n_users; u++) {
    uint32_t *t = test + tptr[u];
    size_t nt = (size_t)(tptr[u + 1] - tptr[u]);
    if (nt == 0 || m->user_items.indptr[u + 1] == m->user_items.indptr[u]) continue;
    qsort(t, nt, sizeof *t, u32_cmp);
    size_t w = 1;
    for (size_t j = 1; j < nt; j++)
      if (t[j] != t[w - 1]) t[w++] = t[j];
    nt = w;
    users++;
    const float *x = m->user_factors + (size_t)u * k;
    /* the user's category shares (user_cat is all zero between users) */
    uint64_t ub = m->user_items.indptr[u], ue = m->user_items.indptr[u + 1];
    for (uint64_t e = ub; e < ue; e++) {
      uint32_t i = m->user_items.indices[e];
      for (size_t j = item_cat_ptr[i]; j < item_cat_ptr[i + 1]; j++) user_cat[item_cat[j]] += 1.0f;
    }
    for (int meth = 0; meth < COFI_NEW_ITEMS_METHODS; meth++) {
      for (size_t h = 0; h < n_held; h++) {
        float s;
        if (meth <= COFI_NEW_ITEMS_MEAN) {
          const float *v = vecs + ((size_t)meth * n_held + h) * k;
          double d = 0;
          for (uint32_t f = 0; f < k; f++) d += (double)x[f] * v[f];
          s = (float)d;
        } else if (meth == COFI_NEW_ITEMS_CATEGORY_POPULARITY) {
          s = itempop[h];
        } else if (meth == COFI_NEW_ITEMS_USER_CATEGORIES) {
          uint32_t i = perm[h];
          size_t nk = item_cat_ptr[i + 1] - item_cat_ptr[i];
          double a = 0;
          for (size_t j = item_cat_ptr[i]; j < item_cat_ptr[i + 1]; j++) a += user_cat[item_cat[j]];
          s = nk ? (float)(a / ((double)nk * (double)(ue - ub))) : 0.0f;
        } else {
          s = (float)(mix(opt->seed * 0x100000001b3ull ^ ((uint64_t)u << 32) ^ h) >> 40);
        }
        cs[h].score = s;
        cs[h].item = (uint32_t)h;
      }
      qsort(cs, n_held, sizeof *cs, cand_cmp);
      size_t nr = n_held < opt->k ? n_held : opt->k;
      for (size_t j = 0; j < nr; j++) top[j] = cs[j].item;
      double mt[COFI_METRIC_COUNT];
      cofi__metrics_user(top, nr, t, nt, opt->k, mt);
      sum[meth][0] += mt[COFI_METRIC_RECALL];
      sum[meth][1] += mt[COFI_METRIC_NDCG];
    }
    for (uint64_t e = ub; e < ue; e++) {
      uint32_t i = m->user_items.indices[e];
      for (size_t j = item_cat_ptr[i]; j < item_cat_ptr[i + 1]; j++) user_cat[item_cat[j]] = 0.0f;
    }
  }
  if (users == 0) {
    rc = cofi__fail(diag, COFI_ERR_EMPTY, "", 0, "no trained user has a held-out item");
    goto done;
  }
  for (int meth = 0; meth < COFI_NEW_ITEMS_METHODS; meth++) {
    out->recall[meth] = sum[meth][0] / (double)users;
    out->ndcg[meth] = sum[meth][1] / (double)users;
  }
  out->n_users = users;
  out->n_heldout_items = n_held;
  out->n_train_items = n_items - n_held;
  out->n_categories = n_cats;
  goto done;
nomem:
  rc = cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory");
done:
  cofi__free(item_cat_ptr);
  cofi__free(item_cat);
  cofi__free(user_cat);
  cofi__free(cs);
  cofi__free(top);
  cofi__free(test);
  cofi__free(tptr);
  cofi__free(catpop);
  cofi__free(itempop);
  cofi__free(vecs);
  cofi__free((void *)cats);
  cofi__free(lens);
  cofi__free(off);
  cofi_metadata_map_free(maps[0]);
  cofi_metadata_map_free(maps[1]);
  cofi_model_close(m);
  cofi_dataset_free(train);
  cofi__free(perm);
  cofi__free(use);
  cofi__free(keep);
  cofi__free(held);
  return rc;
}

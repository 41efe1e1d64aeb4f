/*
 * item_models.c — training the item-item models (EASE, item-kNN): the
 * steps they share with ALS (the summed user x item matrix, the confidence
 * transform, IDs, item metadata, creation time) around the fit of each
 * (ease.c, itemknn.c). The model then has no factors (factors 0): its
 * scores come from the item x item weights (recommend/history.c).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

int cofi__train_item_model(const cofi_dataset *ds, cofi_dataset *consume,
                           const cofi_params *params, cofi_model **out, cofi_diag *d) {
  (void)consume; /* the rows are released by cofi_train_release afterwards */
  *out = NULL;
  int rc = cofi_params_check(params, d);
  if (rc) return rc;
  if (!ds || ds->n == 0 || ds->users.n == 0 || ds->items.n == 0)
    return cofi__fail(d, COFI_ERR_EMPTY, NULL, 0, "no interactions to train on");
  cofi_params p = *params;
  p.progress = NULL;
  p.progress_ctx = NULL;
  double t0 = cofi__now();
  cofi_model *m = NULL;
  rc = cofi__model_new(&m);
  if (rc) goto fail;
  rc = cofi__csr_from_dataset(ds, &m->user_items);
  if (rc) goto fail;
  rc = cofi__confidence_apply(&p, &m->user_items, &m->conf_mean_rowsum);
  if (rc) goto fail;
  for (uint64_t i = 0; i < m->user_items.nnz; i++) {
    float v = m->user_items.data[i];
    if (!isfinite(v) || v < 0) {
      rc = cofi__fail(d, COFI_ERR_NUMERIC, NULL, 0,
                      "a user-item value of %g after the confidence transform is not a finite "
                      "number >= 0", (double)v);
      goto fail;
    }
  }
  m->n_users = ds->users.n;
  m->n_items = ds->items.n;
  m->factors = 0;
  if (p.model == COFI_MODEL_EASE)
    rc = cofi__ease_fit(&m->user_items, &p, &m->ease_weights, d);
  else
    rc = cofi__itemknn_fit(&m->user_items, &p, &m->neighbors, d);
  if (rc) goto fail;
  if (p.recency > 0 && (rc = cofi__recency_ranks(ds, &m->user_items, &m->seen_ranks)))
    goto fail;
  m->train_seconds = cofi__now() - t0;
  m->train_loss = 0;
  p.threads = 0;
  rc = cofi__model_finish(m, ds, &p);
  if (rc) goto fail;
  *out = m;
  return COFI_OK;
fail:
  if (rc == COFI_ERR_NOMEM) cofi__fail(d, rc, NULL, 0, "out of memory while training");
  cofi_model_close(m);
  return rc;
}

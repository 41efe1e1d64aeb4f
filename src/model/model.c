/*
 * model.c — the model object: creation, release and read-only accessors.
 * A model's arrays either are its own allocations (after training) or
 * point into one read-only mapping of a model file (after open); callers
 * cannot tell the difference.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

int cofi__model_new(cofi_model **out) {
  cofi_model *m = cofi__calloc(1, sizeof *m);
  if (!m) return COFI_ERR_NOMEM;
  cofi__idmap_init(&m->users);
  cofi__idmap_init(&m->items);
  cofi__strtab_init(&m->meta.names);
  cofi__strtab_init(&m->meta.cells);
  m->meta.title_field = -1;
  m->train_ranks = 1;
  memcpy(m->cofi_version, COFI_VERSION, sizeof COFI_VERSION);
  *out = m;
  return COFI_OK;
}

void cofi_model_close(cofi_model *m) {
  if (!m) return;
  cofi__idmap_free(&m->users);
  cofi__idmap_free(&m->items);
  cofi__strtab_free(&m->meta.names);
  cofi__strtab_free(&m->meta.cells);
  cofi__csr_free(&m->user_items);
  cofi__csr_free(&m->neighbors);
  cofi__aligned_free(m->item_gram);
  cofi__aligned_free(m->item_norms);
  cofi__aligned_free(m->item_idf);
  cofi__aligned_free(m->user_norms);
  cofi__model_free_panel(m);
  if (m->map) {
    if (m->map_is_malloc) cofi__aligned_free(m->map);
    else munmap(m->map, m->map_len);
  } else {
    cofi__aligned_free(m->user_factors);
    cofi__aligned_free(m->item_factors);
    cofi__aligned_free(m->ease_weights);
    cofi__free(m->seen_ranks);
  }
  cofi__free(m);
}

void cofi_model_get_info(const cofi_model *m, cofi_model_info *out) {
  memset(out, 0, sizeof *out);
  out->n_users = m->n_users;
  out->n_items = m->n_items;
  out->factors = m->factors;
  out->nnz = m->user_items.nnz;
  out->params = m->params;
  out->params.progress = NULL;
  out->params.progress_ctx = NULL;
  out->created_unix = m->created_unix;
  out->data_fingerprint = m->data_fingerprint;
  out->file_bytes = m->file_bytes;
  out->checksum = m->checksum;
  out->content_checksum = m->content_checksum;
  out->train_seconds = m->train_seconds;
  out->train_loss = m->train_loss;
  memcpy(out->cofi_version, m->cofi_version, sizeof out->cofi_version);
  out->cofi_version[sizeof out->cofi_version - 1] = 0;
  out->n_item_fields = m->meta.n_fields;
}

uint32_t cofi_model_train_ranks(const cofi_model *m) { return m->train_ranks; }

int64_t cofi_model_find_user(const cofi_model *m, const char *id, size_t len) {
  return cofi__idmap_find(&m->users, id, len);
}

int64_t cofi_model_find_item(const cofi_model *m, const char *id, size_t len) {
  return cofi__idmap_find(&m->items, id, len);
}

const char *cofi_model_user_id(const cofi_model *m, uint32_t user, size_t *len) {
  if (user >= m->n_users) { *len = 0; return ""; }
  return cofi__idmap_get(&m->users, user, len);
}

const char *cofi_model_item_id(const cofi_model *m, uint32_t item, size_t *len) {
  if (item >= m->n_items) { *len = 0; return ""; }
  return cofi__idmap_get(&m->items, item, len);
}

const char *cofi_model_item_field_name(const cofi_model *m, uint32_t field, size_t *len) {
  return cofi__strtab_get(&m->meta.names, field, len);
}

const char *cofi_model_item_field(const cofi_model *m, uint32_t item, uint32_t field,
                                  size_t *len) {
  if (field >= m->meta.n_fields || item >= m->n_items) { *len = 0; return ""; }
  return cofi__strtab_get(&m->meta.cells, (size_t)item * m->meta.n_fields + field, len);
}

const char *cofi_model_item_title(const cofi_model *m, uint32_t item, size_t *len) {
  if (m->meta.title_field < 0) { *len = 0; return NULL; }
  return cofi_model_item_field(m, item, (uint32_t)m->meta.title_field, len);
}

const float *cofi_model_user_factors(const cofi_model *m) { return m->user_factors; }
const float *cofi_model_item_factors(const cofi_model *m) { return m->item_factors; }

size_t cofi_model_user_items(const cofi_model *m, uint32_t user, const uint32_t **items,
                             const float **values) {
  if (user >= m->n_users) { *items = NULL; if (values) *values = NULL; return 0; }
  uint64_t b = m->user_items.indptr[user], e = m->user_items.indptr[user + 1];
  *items = m->user_items.indices + b;
  if (values) *values = m->user_items.data + b;
  return (size_t)(e - b);
}

size_t cofi_model_user_items_by_time(const cofi_model *m, uint32_t user, uint32_t *out) {
  const uint32_t *items;
  size_t n = cofi_model_user_items(m, user, &items, NULL);
  if (!m->seen_ranks) {
    memcpy(out, items, n * sizeof *out);
    return n;
  }
  const uint32_t *ranks = m->seen_ranks + m->user_items.indptr[user];
  for (size_t t = 0; t < n; t++) out[n - 1 - ranks[t]] = items[t]; /* rank 0: newest, last */
  return n;
}

cofi_model_kind cofi_model_kind_of(const cofi_model *m) { return m->params.model; }

const char *cofi_model_kind_error(const cofi_model *m, const char *what) {
  /* initial-exec: 160 bytes of static TLS, so no __tls_get_addr (and no
   * direct need of the dynamic loader) in executables that link this */
  static _Thread_local char buf[160] __attribute__((tls_model("initial-exec")));
  snprintf(buf, sizeof buf, "%s needs an ALS model; this model is %s", what,
           cofi_model_kind_name((int)m->params.model));
  return buf;
}

int cofi__model_prepare(cofi_model *m) {
  /* EASE and item-kNN score from their item x item weights: no Gram, no
   * norms, no int8 panel; only the confidence statistics of histories. */
  if (!cofi__is_als(m)) return cofi__confidence_prepare(m);
  uint32_t k = m->factors;
  m->item_gram = cofi__aligned_alloc((size_t)k * k * sizeof(float));
  m->item_norms = cofi__aligned_alloc(((size_t)m->n_items + 1) * sizeof(float));
  m->user_norms = cofi__aligned_alloc(((size_t)m->n_users + 1) * sizeof(float));
  if (!m->item_gram || !m->item_norms || !m->user_norms) return COFI_ERR_NOMEM;
  int crc = cofi__confidence_prepare(m);
  if (crc) return crc;
  cofi__gram(m->item_factors, m->n_items, k, m->params.unobserved_weight, m->item_gram);
  for (uint32_t i = 0; i < m->n_items; i++) {
    const float *y = m->item_factors + (size_t)i * k;
    m->item_norms[i] = sqrtf(cofi__dot(y, y, k));
    if (!(m->item_norms[i] <= m->item_norm_max)) m->item_norm_max = m->item_norms[i];
  }
  for (uint32_t u = 0; u < m->n_users; u++) {
    const float *x = m->user_factors + (size_t)u * k;
    m->user_norms[u] = sqrtf(cofi__dot(x, x, k));
  }
  /* Only where the active kernel set has a fast int8 scan: elsewhere
   * pruning would be slower than the exact pass, and the copy would cost
   * memory for nothing. */
  if (cofi__kernels_active()->fast_i8) return cofi__model_build_panel(m);
  return COFI_OK;
}

/* The end of every training: the dataset's ID maps and item metadata
 * copied for the model to own, the parameters, the creation time and the
 * data fingerprint, then cofi__model_prepare. Reproducible files
 * (reproducible-builds.org convention): with SOURCE_DATE_EPOCH set, the
 * creation time is that value and the stored training duration 0, so
 * equal inputs give byte-identical model files. */
int cofi__model_finish(cofi_model *m, const cofi_dataset *ds, const cofi_params *p) {
  int rc = cofi__idmap_copy(&ds->users, &m->users);
  if (!rc) rc = cofi__idmap_copy(&ds->items, &m->items);
  if (!rc && ds->meta.n_fields) {
    m->meta.n_fields = ds->meta.n_fields;
    m->meta.title_field = ds->meta.title_field;
    rc = cofi__strtab_copy(&ds->meta.names, &m->meta.names);
    if (!rc) rc = cofi__strtab_copy(&ds->meta.cells, &m->meta.cells);
  }
  if (rc) return rc;
  m->params = *p;
  m->created_unix = (uint64_t)time(NULL);
  const char *epoch = getenv("SOURCE_DATE_EPOCH");
  if (epoch && *epoch) {
    char *end;
    unsigned long long e = strtoull(epoch, &end, 10);
    if (!*end) {
      m->created_unix = e;
      m->train_seconds = 0;
    }
  }
  m->data_fingerprint = cofi__csr_fingerprint(&m->user_items);
  return cofi__model_prepare(m);
}

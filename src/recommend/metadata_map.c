/*
 * metadata_map.c — vectors for items without interactions, from their
 * categories (include/cofi.h, "new items from their metadata").
 *
 * Fitting, for the items that take part (n of them, factors Y [n x k]):
 *
 *   1. intern every item's categories into a vocabulary (C categories),
 *      each counted once per item: item i -> sorted distinct ids S_i;
 *   2. mean y = (1/n) sum_i y_i;
 *   3. RIDGE: A = M^T M + lambda I (A_cd = items having both c and d),
 *      B = M^T (Y - mean y) (B_c = sum over items having c of y_i - mean y),
 *      W = A^-1 B by Cholesky, in double precision: the diagonal holds
 *      category sizes (thousands) next to lambda ~ 1, and float would lose
 *      the small categories' digits;
 *      MEAN: W_c = (1/|items with c|) sum over them of y_i.
 *
 * Centering makes the intercept explicit: an item with no known category
 * gets mean y under both kinds, and ridge only models how each category
 * moves an item away from the average item. Cost: O(sum |S_i|^2 + n k) to
 * build, O(C^3 / 3 + C^2 k) to solve.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cofi_metadata_map {
  cofi_metadata_map_kind kind;
  uint32_t factors;
  cofi__idmap cats; /* category name -> row of weights */
  float *weights;   /* [n_cats x factors]: ridge coefficients, or category means */
  float *mean;      /* [factors] mean vector of the fitted items */
};

static const char *const kind_names[] = {"ridge", "mean"};

const char *cofi_metadata_map_kind_name(int kind) {
  return kind >= 0 && kind < 2 ? kind_names[kind] : NULL;
}

int cofi_metadata_map_kind_parse(const char *s, size_t len) {
  for (int k = 0; k < 2; k++)
    if (s && strlen(kind_names[k]) == len && !memcmp(s, kind_names[k], len)) return k;
  return -1;
}

cofi_metadata_map_options cofi_metadata_map_options_default(void) {
  cofi_metadata_map_options o = {COFI_METADATA_MAP_RIDGE, 1.0f};
  return o;
}

uint32_t cofi_metadata_map_factors(const cofi_metadata_map *map) { return map ? map->factors : 0; }
int64_t cofi__metadata_map_category(const cofi_metadata_map *map, const char *s, size_t len) {
  return cofi__idmap_find(&map->cats, s, len);
}
const float *cofi_metadata_map_mean(const cofi_metadata_map *map) { return map ? map->mean : NULL; }
size_t cofi_metadata_map_n_categories(const cofi_metadata_map *map) { return map ? map->cats.n : 0; }
cofi_metadata_map_kind cofi_metadata_map_get_kind(const cofi_metadata_map *map) {
  return map ? map->kind : COFI_METADATA_MAP_RIDGE;
}

void cofi_metadata_map_free(cofi_metadata_map *map) {
  if (!map) return;
  cofi__idmap_free(&map->cats);
  cofi__free(map->weights);
  cofi__free(map->mean);
  cofi__free(map);
}

static size_t cat_len(const char *const *cats, const size_t *lens, size_t j) {
  return lens ? lens[j] : strlen(cats[j]);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Sorts ids[0..n) and drops repeats; returns the new length. */
static size_t sort_unique(uint32_t *ids, size_t n) {
  if (n < 2) return n;
  qsort(ids, n, sizeof *ids, cmp_u32);
  size_t u = 1;
  for (size_t i = 1; i < n; i++)
    if (ids[i] != ids[u - 1]) ids[u++] = ids[i];
  return u;
}

/* In-place Cholesky A = L L^T of the lower triangle of A [n x n]; false
 * when A is not positive definite (cannot happen with lambda > 0 unless
 * the numbers overflow). */
static bool cholesky(double *A, size_t n) {
  for (size_t j = 0; j < n; j++) {
    double d = A[j * n + j];
    for (size_t p = 0; p < j; p++) d -= A[j * n + p] * A[j * n + p];
    if (!(d > 0) || !isfinite(d)) return false;
    d = sqrt(d);
    A[j * n + j] = d;
    for (size_t i = j + 1; i < n; i++) {
      double s = A[i * n + j];
      for (size_t p = 0; p < j; p++) s -= A[i * n + p] * A[j * n + p];
      A[i * n + j] = s / d;
    }
  }
  return true;
}

/* Solves L L^T X = B for the k columns of B [n x k] in place. */
static void chol_solve(const double *L, size_t n, double *B, uint32_t k) {
  for (size_t i = 0; i < n; i++)
    for (uint32_t c = 0; c < k; c++) {
      double s = B[i * k + c];
      for (size_t p = 0; p < i; p++) s -= L[i * n + p] * B[p * k + c];
      B[i * k + c] = s / L[i * n + i];
    }
  for (size_t i = n; i-- > 0;)
    for (uint32_t c = 0; c < k; c++) {
      double s = B[i * k + c];
      for (size_t p = i + 1; p < n; p++) s -= L[p * n + i] * B[p * k + c];
      B[i * k + c] = s / L[i * n + i];
    }
}

int cofi__metadata_map_fit_rows(const float *Y, size_t n_items, uint32_t k, const bool *use,
                                const char *const *cats, const size_t *lens,
                                const size_t *offsets, const cofi_metadata_map_options *opt,
                                cofi_metadata_map **out, cofi_diag *diag) {
  if (!out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output map");
  *out = NULL;
  cofi_metadata_map_options defaults = cofi_metadata_map_options_default();
  if (!opt) opt = &defaults;
  if (opt->kind != COFI_METADATA_MAP_RIDGE && opt->kind != COFI_METADATA_MAP_MEAN)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "unknown metadata map kind %d (ridge or mean)",
                      (int)opt->kind);
  if (opt->kind == COFI_METADATA_MAP_RIDGE && !(isfinite(opt->lambda) && opt->lambda > 0))
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                      "the ridge map's lambda must be a finite number > 0, got %g",
                      (double)opt->lambda);
  if (!offsets || offsets[0] != 0)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "category offsets must start at 0");
  for (size_t i = 0; i < n_items; i++)
    if (offsets[i + 1] < offsets[i])
      return cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                        "category offsets decrease at item %zu (%zu after %zu)", i,
                        offsets[i + 1], offsets[i]);
  if (offsets[n_items] > 0 && !cats)
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "categories are NULL");

  int rc = COFI_OK;
  size_t total = offsets[n_items];
  cofi_metadata_map *map = cofi__calloc(1, sizeof *map);
  uint32_t *ids = cofi__malloc((total ? total : 1) * sizeof *ids);
  size_t *ptr = cofi__malloc((n_items + 1) * sizeof *ptr); /* ids of item i: [ptr[i], ptr[i+1]) */
  double *mean = cofi__calloc(k ? k : 1, sizeof *mean);
  double *A = NULL, *B = NULL;
  size_t *count = NULL;
  if (!map || !ids || !ptr || !mean) goto nomem;
  cofi__idmap_init(&map->cats);
  map->kind = opt->kind;
  map->factors = k;

  /* 1. vocabulary and each item's distinct categories */
  size_t n_fit = 0, w = 0;
  ptr[0] = 0;
  for (size_t i = 0; i < n_items; i++) {
    size_t start = w;
    if (!use || use[i]) {
      for (size_t j = offsets[i]; j < offsets[i + 1]; j++) {
        size_t len = cat_len(cats, lens, j);
        if (len == 0) {
          rc = cofi__fail(diag, COFI_ERR_INVALID, "", 0, "item %zu has an empty category", i);
          goto fail;
        }
        if ((rc = cofi__idmap_intern(&map->cats, cats[j], len, &ids[w], NULL))) goto nomem;
        w++;
      }
      w = start + sort_unique(ids + start, w - start);
      n_fit++;
      const float *y = Y + i * (size_t)k;
      for (uint32_t f = 0; f < k; f++) mean[f] += y[f];
    }
    ptr[i + 1] = w;
  }
  size_t C = map->cats.n;
  if (n_fit == 0 || C == 0) {
    rc = cofi__fail(diag, COFI_ERR_EMPTY, "", 0,
                    "no item has a category: nothing to learn a metadata map from");
    goto fail;
  }
  if (opt->kind == COFI_METADATA_MAP_RIDGE && C > COFI_METADATA_MAP_MAX_RIDGE_CATEGORIES) {
    rc = cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                    "%zu distinct categories: the ridge map takes at most %d (use the mean map)",
                    C, COFI_METADATA_MAP_MAX_RIDGE_CATEGORIES);
    goto fail;
  }
  for (uint32_t f = 0; f < k; f++) mean[f] /= (double)n_fit;

  /* 2. the normal equations (ridge) or the sums per category (mean) */
  size_t ck;
  if (!cofi__mul_ok(C, k ? k : 1, &ck)) goto nomem;
  B = cofi__calloc(ck, sizeof *B);
  count = cofi__calloc(C, sizeof *count);
  map->weights = cofi__malloc(ck * sizeof *map->weights);
  map->mean = cofi__malloc((k ? k : 1) * sizeof *map->mean);
  if (!B || !count || !map->weights || !map->mean) goto nomem;
  bool ridge = opt->kind == COFI_METADATA_MAP_RIDGE;
  if (ridge) {
    A = cofi__calloc(C * C, sizeof *A);
    if (!A) goto nomem;
  }
  for (size_t i = 0; i < n_items; i++) {
    const float *y = Y + i * (size_t)k;
    for (size_t a = ptr[i]; a < ptr[i + 1]; a++) {
      uint32_t c = ids[a];
      count[c]++;
      double *b = B + (size_t)c * k;
      for (uint32_t f = 0; f < k; f++) b[f] += ridge ? (double)y[f] - mean[f] : (double)y[f];
      if (ridge)
        for (size_t e = ptr[i]; e <= a; e++) A[(size_t)c * C + ids[e]] += 1.0; /* ids ascending: lower triangle */
    }
  }
  if (ridge) {
    for (size_t c = 0; c < C; c++) A[c * C + c] += opt->lambda;
    if (!cholesky(A, C)) {
      rc = cofi__fail(diag, COFI_ERR_NUMERIC, "", 0,
                      "the ridge map's system is not positive definite (lambda %g)",
                      (double)opt->lambda);
      goto fail;
    }
    chol_solve(A, C, B, k);
  } else {
    for (size_t c = 0; c < C; c++)
      for (uint32_t f = 0; f < k; f++) B[c * k + f] /= (double)count[c];
  }
  for (size_t j = 0; j < ck && k; j++) {
    if (!isfinite(B[j])) {
      rc = cofi__fail(diag, COFI_ERR_NUMERIC, "", 0, "the metadata map has a non-finite weight");
      goto fail;
    }
    map->weights[j] = (float)B[j];
  }
  for (uint32_t f = 0; f < k; f++) map->mean[f] = (float)mean[f];
  *out = map;
  map = NULL;
  goto fail; /* frees the scratch */

nomem:
  rc = cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory");
fail:
  cofi__free(A);
  cofi__free(B);
  cofi__free(count);
  cofi__free(mean);
  cofi__free(ptr);
  cofi__free(ids);
  cofi_metadata_map_free(map);
  return rc;
}

int cofi_metadata_map_fit(const cofi_model *m, const char *const *cats, const size_t *lens,
                          const size_t *offsets, const cofi_metadata_map_options *opt,
                          cofi_metadata_map **out, cofi_diag *diag) {
  if (out) *out = NULL;
  if (!m) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no model");
  if (!cofi__is_als(m)) /* the map targets item factors: EASE and item-kNN have none */
    return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "%s",
                      cofi_model_kind_error(m, "a metadata map"));
  return cofi__metadata_map_fit_rows(m->item_factors, m->n_items, m->factors, NULL, cats, lens,
                                     offsets, opt, out, diag);
}

int cofi__metadata_field_index(const cofi_model *m, const char *field, uint32_t *out,
                               cofi_diag *diag) {
  const char *want[2] = {field ? field : "genres", field ? NULL : "categories"};
  for (int w = 0; w < 2 && want[w]; w++)
    for (uint32_t f = 0; f < m->meta.n_fields; f++) {
      size_t len;
      const char *name = cofi__strtab_get(&m->meta.names, f, &len);
      if (len == strlen(want[w]) && !memcmp(name, want[w], len)) {
        *out = f;
        return COFI_OK;
      }
    }
  char have[256] = "";
  size_t used = 0;
  for (uint32_t f = 0; f < m->meta.n_fields && used + 4 < sizeof have; f++) {
    size_t len;
    const char *name = cofi__strtab_get(&m->meta.names, f, &len);
    int n = snprintf(have + used, sizeof have - used, "%s'%.*s'", f ? ", " : "",
                     (int)(len > 60 ? 60 : len), name);
    if (n < 0) break;
    used += (size_t)n < sizeof have - used ? (size_t)n : sizeof have - used - 1;
  }
  char want_text[128];
  if (field) snprintf(want_text, sizeof want_text, "'%.100s'", field);
  else snprintf(want_text, sizeof want_text, "'genres' or 'categories'");
  return cofi__fail(diag, COFI_ERR_NOT_FOUND, "", 0, "the item metadata has no field %s (%s%s)",
                    want_text,
                    m->meta.n_fields ? "its fields: " : "no item metadata: train with --items",
                    have);
}

/* MovieLens's marker for "no genre", which is no category. */
static bool no_category(const char *s, size_t len) {
  static const char none[] = "(no genres listed)";
  return len == 0 || (len == sizeof none - 1 && !memcmp(s, none, len));
}

int cofi__metadata_split_field(const cofi_model *m, uint32_t field, const char ***cats,
                               size_t **lens, size_t **offsets) {
  size_t n = 0;
  for (uint32_t i = 0; i < m->n_items; i++) {
    size_t len;
    const char *v = cofi_model_item_field(m, i, field, &len);
    n += 1;
    for (size_t j = 0; j < len; j++) n += v[j] == '|';
  }
  *cats = cofi__malloc((n ? n : 1) * sizeof **cats);
  *lens = cofi__malloc((n ? n : 1) * sizeof **lens);
  *offsets = cofi__malloc(((size_t)m->n_items + 1) * sizeof **offsets);
  if (!*cats || !*lens || !*offsets) {
    cofi__free((void *)*cats);
    cofi__free(*lens);
    cofi__free(*offsets);
    *cats = NULL;
    *lens = *offsets = NULL;
    return COFI_ERR_NOMEM;
  }
  size_t w = 0;
  (*offsets)[0] = 0;
  for (uint32_t i = 0; i < m->n_items; i++) {
    size_t len;
    const char *v = cofi_model_item_field(m, i, field, &len);
    size_t start = 0;
    for (size_t j = 0; j <= len; j++) {
      if (j < len && v[j] != '|') continue;
      if (!no_category(v + start, j - start)) {
        (*cats)[w] = v + start;
        (*lens)[w++] = j - start;
      }
      start = j + 1;
    }
    (*offsets)[i + 1] = w;
  }
  return COFI_OK;
}

int cofi_metadata_map_fit_field(const cofi_model *m, const char *field,
                                const cofi_metadata_map_options *opt, cofi_metadata_map **out,
                                cofi_diag *diag) {
  if (out) *out = NULL;
  if (!m) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no model");
  if (!out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output map");
  uint32_t f;
  int rc = cofi__metadata_field_index(m, field, &f, diag);
  if (rc) return rc;
  const char **cats;
  size_t *lens, *offsets;
  if ((rc = cofi__metadata_split_field(m, f, &cats, &lens, &offsets)))
    return cofi__fail(diag, rc, "", 0, "out of memory");
  rc = cofi_metadata_map_fit(m, cats, lens, offsets, opt, out, diag);
  cofi__free((void *)cats);
  cofi__free(lens);
  cofi__free(offsets);
  return rc;
}

int cofi_metadata_map_vector(const cofi_metadata_map *map, const char *const *cats,
                             const size_t *lens, size_t n, float *out, size_t *n_known) {
  if (n_known) *n_known = 0;
  if (!map || !out || (n > 0 && !cats)) return COFI_ERR_INVALID;
  uint32_t k = map->factors;
  /* Distinct known categories: a repeat must not count twice (the ridge
   * map was fitted on one-hot rows). n is small (an item's tags), so the
   * repeats are found by a scan of the earlier ones. */
  size_t known = 0;
  memset(out, 0, k * sizeof *out);
  for (size_t j = 0; j < n; j++) {
    size_t len = cat_len(cats, lens, j);
    int64_t c = cofi__idmap_find(&map->cats, cats[j], len);
    if (c < 0) continue;
    bool repeat = false;
    for (size_t p = 0; p < j && !repeat; p++) {
      size_t plen = cat_len(cats, lens, p);
      repeat = plen == len && !memcmp(cats[p], cats[j], len);
    }
    if (repeat) continue;
    const float *wc = map->weights + (size_t)c * k;
    for (uint32_t f = 0; f < k; f++) out[f] += wc[f];
    known++;
  }
  if (known == 0) {
    memcpy(out, map->mean, k * sizeof *out);
  } else if (map->kind == COFI_METADATA_MAP_MEAN) {
    for (uint32_t f = 0; f < k; f++) out[f] /= (float)known;
  } else {
    for (uint32_t f = 0; f < k; f++) out[f] += map->mean[f];
  }
  if (n_known) *n_known = known;
  return COFI_OK;
}

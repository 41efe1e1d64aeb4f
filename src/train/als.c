/*
 * als.c — the ALS driver: parameters, initialization, the alternating
 * sweeps over users and items, the objective, and packaging the result as
 * a model.
 *
 * Determinism: every row is solved independently from the previous sweep's
 * factors, by one thread, in a fixed order of operations; the shared gram
 * matrix is computed single-threaded. So the factors are bit-identical for
 * any thread count. Initial factors come from a per-row seeded generator.
 */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cofi_params cofi_params_default(void) {
  cofi_params p;
  memset(&p, 0, sizeof p);
  p.factors = 64;
  p.regularization = 0.01f;
  p.alpha = 1.0f;
  p.iterations = 15;
  p.seed = 42;
  p.solver = COFI_SOLVER_CG;
  p.cg_steps = 3;
  p.threads = 0;
  p.reg_exponent = 0.0f;
  p.unobserved_weight = 1.0f;
  return p;
}

int cofi_params_check(const cofi_params *p, cofi_diag *d) {
#define BAD(...) return cofi__fail(d, COFI_ERR_INVALID, NULL, 0, __VA_ARGS__)
  if (p->factors < 1 || p->factors > COFI_MAX_FACTORS)
    BAD("factors must be in 1..%d, got %u", COFI_MAX_FACTORS, p->factors);
  if (!isfinite(p->regularization) || p->regularization < 0)
    BAD("regularization must be a finite number >= 0, got %g", (double)p->regularization);
  if (!isfinite(p->alpha) || p->alpha < 0)
    BAD("alpha must be a finite number >= 0, got %g", (double)p->alpha);
  if (p->iterations < 1 || p->iterations > 100000)
    BAD("iterations must be in 1..100000, got %u", p->iterations);
  if (p->solver != COFI_SOLVER_CG && p->solver != COFI_SOLVER_CHOLESKY)
    BAD("solver must be cg or cholesky");
  if (p->cg_steps < 1 || p->cg_steps > 1000) BAD("cg_steps must be in 1..1000, got %u", p->cg_steps);
  if (p->threads > 4096) BAD("threads must be in 0..4096, got %u", p->threads);
  if (!isfinite(p->reg_exponent) || p->reg_exponent < 0 || p->reg_exponent > 10)
    BAD("reg_exponent must be in [0, 10], got %g", (double)p->reg_exponent);
  if (!isfinite(p->unobserved_weight) || !(p->unobserved_weight > 0))
    BAD("unobserved_weight must be > 0, got %g", (double)p->unobserved_weight);
  return COFI_OK;
#undef BAD
}

/* splitmix64: a tiny, well-mixed generator; one stream per row. */
static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform [0, 0.01) like implicit's initialization. */
static void init_factors(float *F, uint32_t n, uint32_t k, uint64_t seed, uint64_t side) {
  for (uint32_t r = 0; r < n; r++) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + side * 0x9E3779B97F4A7C15ull + r;
    float *row = F + (size_t)r * k;
    for (uint32_t j = 0; j < k; j++)
      row[j] = (float)(splitmix(&s) >> 40) * (0.01f / 16777216.0f);
  }
}

void cofi__gram(const float *Y, uint32_t n, uint32_t k, float scale, float *gram) {
  /* Single-threaded BLAS: the summation order is fixed, hence reproducible. */
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)n, scale, Y, (int)k, 0.0f,
              gram, (int)k);
  for (uint32_t r = 0; r < k; r++)
    for (uint32_t c = 0; c < r; c++) gram[(size_t)r * k + c] = gram[(size_t)c * k + r];
}

static bool all_finite(const float *a, size_t n) {
  float acc = 0;
  for (size_t i = 0; i < n; i++) acc += a[i] * 0.0f; /* NaN/inf poison the sum */
  return acc == 0.0f;
}

/* One half-sweep: every row of X solved against Y. Returns the first error. */
static int sweep(const cofi__csr *R, float *X, const float *Y, uint32_t n_other,
                 const cofi_params *p, float *gram, float *scratch_all, size_t scratch_per,
                 uint32_t threads, int64_t *bad_row) {
  uint32_t k = p->factors;
  cofi__gram(Y, n_other, k, p->unobserved_weight, gram);
  cofi__row_problem pr = {
      .gram = gram, .Y = Y, .k = k, .alpha = p->alpha, .alpha0 = p->unobserved_weight,
      .lambda = p->regularization, .nu = p->reg_exponent, .n_other = n_other,
      .solver = p->solver, .cg_steps = p->cg_steps};
  int err = COFI_OK;
  int64_t first_bad = -1;
#pragma omp parallel num_threads(threads)
  {
    float *scratch = scratch_all + (size_t)omp_get_thread_num() * scratch_per;
#pragma omp for schedule(dynamic, 32)
    for (int64_t r = 0; r < (int64_t)R->n_rows; r++) {
      uint64_t b = R->indptr[r], e = R->indptr[r + 1];
      int rc = cofi__solve_row(&pr, R->indices + b, R->data + b, (size_t)(e - b),
                               X + (size_t)r * k, scratch);
      if (rc) {
#pragma omp critical
        {
          if (first_bad < 0 || r < first_bad) { first_bad = r; err = rc; }
        }
      }
    }
  }
  *bad_row = first_bad;
  return err;
}

double cofi__als_loss(const cofi__csr *R, const float *X, const float *Y, uint32_t k,
                      const cofi_params *p) {
  uint32_t n_items = R->n_cols;
  float *gram = cofi__aligned_alloc((size_t)k * k * sizeof *gram);
  float *tmp = cofi__aligned_alloc((size_t)k * sizeof *tmp);
  if (!gram || !tmp) {
    cofi__aligned_free(gram);
    cofi__aligned_free(tmp);
    return NAN;
  }
  cofi__gram(Y, n_items, k, p->unobserved_weight, gram);
  double loss = 0, total_conf = 0, reg = 0;
  cofi__row_problem pr = {.lambda = p->regularization, .nu = p->reg_exponent,
                          .alpha0 = p->unobserved_weight};
  for (uint32_t u = 0; u < R->n_rows; u++) {
    const float *x = X + (size_t)u * k;
    for (uint32_t r = 0; r < k; r++) {
      float s = 0;
      for (uint32_t c = 0; c < k; c++) s += gram[(size_t)r * k + c] * x[c];
      tmp[r] = s;
    }
    double xGx = 0, xx = 0;
    for (uint32_t j = 0; j < k; j++) { xGx += (double)tmp[j] * x[j]; xx += (double)x[j] * x[j]; }
    loss += xGx;
    for (uint64_t t = R->indptr[u]; t < R->indptr[u + 1]; t++) {
      const float *y = Y + (size_t)R->indices[t] * k;
      double s = 0;
      for (uint32_t j = 0; j < k; j++) s += (double)x[j] * y[j];
      double c = 1.0 + (double)p->alpha * R->data[t];
      loss += c * (1 - s) * (1 - s) - p->unobserved_weight * s * s;
      total_conf += c;
    }
    pr.n_other = n_items;
    reg += cofi__row_lambda(&pr, (size_t)(R->indptr[u + 1] - R->indptr[u])) * xx;
  }
  /* item-side regularization: count of users per item from the CSR */
  uint64_t *cnt = cofi__calloc(n_items ? n_items : 1, sizeof *cnt);
  if (cnt) {
    for (uint64_t t = 0; t < R->nnz; t++) cnt[R->indices[t]]++;
    pr.n_other = R->n_rows;
    for (uint32_t i = 0; i < n_items; i++) {
      const float *y = Y + (size_t)i * k;
      double yy = 0;
      for (uint32_t j = 0; j < k; j++) yy += (double)y[j] * y[j];
      reg += cofi__row_lambda(&pr, cnt[i]) * yy;
    }
    cofi__free(cnt);
  } else {
    reg = NAN;
  }
  cofi__aligned_free(gram);
  cofi__aligned_free(tmp);
  double denom = total_conf + (double)R->n_rows * n_items - (double)R->nnz;
  return (loss + reg) / (denom > 0 ? denom : 1);
}

/* Copies an ID map (strings and index) for the model to own. */
static int copy_idmap(const cofi__idmap *src, cofi__idmap *dst) {
  cofi__idmap_init(dst);
  for (uint32_t i = 0; i < src->n; i++) {
    size_t len;
    const char *s = cofi__idmap_get(src, i, &len);
    uint32_t idx;
    int rc = cofi__idmap_intern(dst, s, len, &idx, NULL);
    if (rc) { cofi__idmap_free(dst); return rc; }
  }
  return COFI_OK;
}

static int copy_strtab(const cofi__strtab *src, cofi__strtab *dst) {
  cofi__strtab_init(dst);
  for (size_t i = 0; i < src->n; i++) {
    size_t len;
    const char *s = cofi__strtab_get(src, i, &len);
    int rc = cofi__strtab_push(dst, s, len);
    if (rc) { cofi__strtab_free(dst); return rc; }
  }
  return COFI_OK;
}

int cofi_train(const cofi_dataset *ds, const cofi_params *params, cofi_model **out,
               cofi_diag *d) {
  *out = NULL;
  int rc = cofi_params_check(params, d);
  if (rc) return rc;
  if (!ds || ds->n == 0 || ds->users.n == 0 || ds->items.n == 0)
    return cofi__fail(d, COFI_ERR_EMPTY, NULL, 0, "no interactions to train on");

  cofi_params p = *params;
  p.progress = NULL;
  p.progress_ctx = NULL;
  uint32_t k = p.factors, threads = cofi__threads(p.threads);
  double t0 = cofi__now();
  cofi_model *m = NULL;
  cofi__csr Rt = {0};
  float *gram = NULL, *scratch = NULL;

  rc = cofi__model_new(&m);
  if (rc) goto fail;
  rc = cofi__csr_from_dataset(ds, &m->user_items);
  if (rc) goto fail;
  /* Confidences must be finite floats, or every solve turns to NaN. */
  for (uint64_t i = 0; i < m->user_items.nnz; i++) {
    float v = m->user_items.data[i], c = 1.0f + p.alpha * v;
    if (!isfinite(c) || !isfinite(v) || v < 0) {
      rc = cofi__fail(d, COFI_ERR_NUMERIC, NULL, 0,
                      "a user-item value of %g gives confidence 1 + alpha * value = %g, not a "
                      "finite float: scale the values down or lower alpha",
                      (double)v, (double)c);
      goto fail;
    }
  }
  rc = cofi__csr_transpose(&m->user_items, &Rt);
  if (rc) goto fail;
  m->n_users = ds->users.n;
  m->n_items = ds->items.n;
  m->factors = k;
  size_t nu_bytes, ni_bytes;
  if (!cofi__mul_ok((size_t)m->n_users * k, sizeof(float), &nu_bytes) ||
      !cofi__mul_ok((size_t)m->n_items * k, sizeof(float), &ni_bytes)) {
    rc = COFI_ERR_NOMEM;
    goto fail;
  }
  m->user_factors = cofi__aligned_alloc(nu_bytes);
  m->item_factors = cofi__aligned_alloc(ni_bytes);
  size_t scratch_per = (cofi__solve_row_scratch(k) + 15) & ~(size_t)15;
  gram = cofi__aligned_alloc((size_t)k * k * sizeof *gram);
  scratch = cofi__aligned_alloc(scratch_per * threads * sizeof *scratch);
  if (!m->user_factors || !m->item_factors || !gram || !scratch) {
    rc = COFI_ERR_NOMEM;
    goto fail;
  }
  init_factors(m->user_factors, m->n_users, k, p.seed, 1);
  init_factors(m->item_factors, m->n_items, k, p.seed, 2);

  /* BLAS stays single-threaded: our parallelism is over rows (OpenMP), and
   * nested BLAS threads oversubscribe the cores (implicit #440, #594). */
  openblas_set_num_threads(1);

  for (uint32_t it = 1; it <= p.iterations; it++) {
    double ti = cofi__now();
    int64_t bad = -1;
    rc = sweep(&m->user_items, m->user_factors, m->item_factors, m->n_items, &p, gram,
               scratch, scratch_per, threads, &bad);
    if (rc == COFI_OK)
      rc = sweep(&Rt, m->item_factors, m->user_factors, m->n_users, &p, gram, scratch,
                 scratch_per, threads, &bad);
    if (rc == COFI_ERR_NUMERIC) {
      cofi__fail(d, rc, NULL, 0,
                 "iteration %u: the least-squares system of row %lld is singular; "
                 "use a regularization > 0",
                 it, (long long)bad);
      goto fail;
    }
    if (rc) goto fail;
    if (!all_finite(m->user_factors, (size_t)m->n_users * k) ||
        !all_finite(m->item_factors, (size_t)m->n_items * k)) {
      rc = cofi__fail(d, COFI_ERR_NUMERIC, NULL, 0,
                      "iteration %u produced NaN or infinite factors (values or alpha too "
                      "large, or regularization too small for %u factors)",
                      it, k);
      goto fail;
    }
    if (params->progress) {
      cofi_progress pg = {.iteration = it, .iterations = p.iterations,
                          .seconds = cofi__now() - ti, .elapsed = cofi__now() - t0,
                          .loss = NAN, .n_users = m->n_users, .n_items = m->n_items,
                          .factors = k, .user_factors = m->user_factors,
                          .item_factors = m->item_factors};
      if (p.compute_loss) {
        pg.loss = cofi__als_loss(&m->user_items, m->user_factors, m->item_factors, k, &p);
        pg.elapsed = cofi__now() - t0;
      }
      if (params->progress(&pg, params->progress_ctx)) {
        rc = cofi__fail(d, COFI_ERR_CANCELLED, NULL, 0, "training cancelled at iteration %u", it);
        goto fail;
      }
    }
  }
  m->train_seconds = cofi__now() - t0;
  m->train_loss = cofi__als_loss(&m->user_items, m->user_factors, m->item_factors, k, &p);
  if (isnan(m->train_loss)) { rc = COFI_ERR_NOMEM; goto fail; }

  rc = copy_idmap(&ds->users, &m->users);
  if (!rc) rc = copy_idmap(&ds->items, &m->items);
  if (!rc && ds->meta.n_fields) {
    m->meta.n_fields = ds->meta.n_fields;
    m->meta.title_field = ds->meta.title_field;
    rc = copy_strtab(&ds->meta.names, &m->meta.names);
    if (!rc) rc = copy_strtab(&ds->meta.cells, &m->meta.cells);
  }
  if (rc) goto fail;
  m->params = p;
  m->created_unix = (uint64_t)time(NULL);
  /* Reproducible files (reproducible-builds.org convention): with
   * SOURCE_DATE_EPOCH set, the creation time is that value and the stored
   * training duration 0, so equal inputs give byte-identical model files. */
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
  rc = cofi__model_prepare(m);
  if (rc) goto fail;
  cofi__csr_free(&Rt);
  cofi__aligned_free(gram);
  cofi__aligned_free(scratch);
  *out = m;
  return COFI_OK;

fail:
  if (rc == COFI_ERR_NOMEM)
    cofi__fail(d, rc, NULL, 0, "out of memory while training");
  cofi__csr_free(&Rt);
  cofi__aligned_free(gram);
  cofi__aligned_free(scratch);
  cofi_model_close(m);
  return rc;
}

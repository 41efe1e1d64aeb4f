/*
 * als.c — the ALS driver: initialization, the alternating
 * sweeps over users and items, the objective, and packaging the result as
 * a model.
 *
 * The parameters' defaults and checks are the model's (model/params.c):
 * a model records the parameters that trained it.
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

/* Rows of Y per step of the training gram: the chunk stays in L1/L2 while
 * every tile of the gram takes its contribution. */
#define GRAM_CHUNK 128

/* Largest block of gathered factor vectors per thread (CG). */
#define GATHER_BYTES ((size_t)8 << 20)

/* The training gram: scale * Y^T Y into gram [kp x kp] (full symmetric,
 * zero padded), with the threads splitting the gram's tile rows. Each
 * entry is summed over Y's rows in the same order whichever thread owns
 * it, so the result does not depend on the thread count. bufs: per thread
 * GRAM_CHUNK x kp floats (used when k is not a multiple of 16). */
static void gram_parallel(const float *Y, uint32_t n, uint32_t k, float scale, float *gram,
                          float *bufs, size_t buf_per, uint32_t threads) {
  uint32_t kp = cofi__kpad(k), tiles = kp / 8;
  memset(gram, 0, (size_t)kp * kp * sizeof *gram);
  /* split the tile rows into `threads` ranges of about equal area */
  uint64_t total = 0;
  for (uint32_t t = 0; t < tiles; t++) total += kp - (t * 8 & ~15u);
#pragma omp parallel num_threads(threads)
  {
    uint32_t me = (uint32_t)omp_get_thread_num(), nt = (uint32_t)omp_get_num_threads();
    uint32_t ra = tiles, rb = tiles;
    uint64_t acc = 0;
    for (uint32_t t = 0; t < tiles; t++) {
      uint64_t part = acc * nt / (total ? total : 1);
      if (part == me && ra == tiles) ra = t;
      if (part > me) { rb = t; break; }
      acc += kp - (t * 8 & ~15u);
    }
    if (ra < rb) {
      float *G = bufs + (size_t)me * buf_per;
      for (size_t t0 = 0; t0 < n; t0 += GRAM_CHUNK) {
        size_t nb = n - t0 < GRAM_CHUNK ? n - t0 : GRAM_CHUNK;
        const float *src = Y + t0 * k;
        if (k != kp) {
          cofi__rows rows = {.base = src, .ld = k, .idx = NULL};
          cofi__k_gather(&rows, nb, k, G, kp);
          src = G;
        }
        cofi__k_syrk_acc(src, src, nb, kp, ra * 8, rb * 8, gram, kp);
      }
    }
  }
  for (uint32_t r = 0; r < kp; r++)
    for (uint32_t c = r; c < kp; c++) gram[(size_t)r * kp + c] *= scale;
  for (uint32_t r = 0; r < kp; r++)
    for (uint32_t c = 0; c < r; c++) gram[(size_t)r * kp + c] = gram[(size_t)c * kp + r];
}

/* Rows grouped into chunks of about equal work (a row costs its nonzeros
 * plus a per-row term for the k x k part), handed out dynamically: popular
 * items have rows hundreds of times longer than the median, so fixed row
 * counts per chunk would leave one thread finishing alone. The grouping
 * only schedules; each row's arithmetic is the same whoever solves it. */
typedef struct sched {
  uint32_t n;      /* chunks */
  uint32_t *start; /* [n+1] first row of each chunk */
} sched;

/* The work of a row for scheduling: its nonzeros plus the k x k part. */
static uint64_t row_work(const cofi__csr *R, uint32_t r, uint64_t per_row) {
  return R->indptr[r + 1] - R->indptr[r] + per_row;
}

/* Chunks over rows [r0, r1) (this rank's share; all rows in one process). */
static int sched_build(const cofi__csr *R, uint32_t r0, uint32_t r1, uint32_t k,
                       uint32_t threads, sched *s) {
  uint64_t per_row = cofi__kpad(k) / 2 + 8;
  uint64_t total = (R->indptr[r1] - R->indptr[r0]) + per_row * (r1 - r0);
  uint64_t target = total / ((uint64_t)threads * 32) + 1;
  s->start = cofi__malloc(((size_t)(r1 - r0) + 2) * sizeof *s->start);
  if (!s->start) return COFI_ERR_NOMEM;
  uint32_t n = 0;
  uint64_t acc = 0;
  s->start[0] = r0;
  for (uint32_t r = r0; r < r1; r++) {
    acc += row_work(R, r, per_row);
    if (acc >= target) { s->start[++n] = r + 1; acc = 0; }
  }
  if (s->start[n] != r1) s->start[++n] = r1;
  s->n = n;
  return COFI_OK;
}

/* Splits R's rows into `parts` contiguous ranges of about equal work:
 * first[p] .. first[p+1] is part p's. Every rank computes the same split
 * from the same matrix. */
static void partition(const cofi__csr *R, uint32_t k, uint32_t parts, uint32_t *first) {
  uint64_t per_row = cofi__kpad(k) / 2 + 8;
  uint64_t total = R->nnz + per_row * R->n_rows, acc = 0;
  uint32_t p = 1;
  first[0] = 0;
  for (uint32_t r = 0; r < R->n_rows && p < parts; r++) {
    acc += row_work(R, r, per_row);
    while (p < parts && (unsigned __int128)acc * parts >= (unsigned __int128)total * p)
      first[p++] = r + 1;
  }
  while (p < parts) first[p++] = R->n_rows;
  first[parts] = R->n_rows;
}

/* Agrees an outcome across the ranks (a no-op in one process): *rc
 * becomes some rank's error, *bad the lowest failing row, *flag whether
 * any rank set it. Returns the highest failing rank, or -1. */
static int64_t agree(const cofi__comm *c, int *rc, int64_t *bad, bool *flag, cofi_diag *d) {
  if (!c || c->size < 2) return *rc ? (int64_t)(c ? c->rank : 0) : -1;
  int64_t v[4] = {*rc ? -(int64_t)*rc : 0, *flag, *bad >= 0 ? INT64_MAX - *bad : -1,
                  *rc ? (int64_t)c->rank : -1};
  if (c->allreduce_max(c->ctx, v, 4)) {
    *rc = cofi__fail(d, COFI_ERR_IO, NULL, 0, "rank %u: an MPI reduction failed", c->rank);
    return c->rank;
  }
  if (!*rc && v[0]) {
    *rc = (int)-v[0];
    cofi__fail(d, *rc, NULL, 0, "rank %lld failed (its own message says why)",
               (long long)v[3]);
  }
  *flag = v[1] != 0;
  *bad = v[2] >= 0 ? INT64_MAX - v[2] : -1;
  return v[3];
}

/* Every float finite (x - x is 0 exactly then; NaN or inf otherwise). */
static bool row_finite(const float *x, uint32_t k) {
  int ok = 1;
  for (uint32_t j = 0; j < k; j++) ok &= (x[j] - x[j]) == 0.0f;
  return ok;
}

/* One half-sweep: every row of X solved against Y. Returns the first
 * solver error with *bad_row the lowest failing row; *nonfinite tells
 * whether some row came out NaN or infinite. */
static int sweep(const cofi__csr *R, const sched *sc, float *X, const float *Y,
                 uint32_t n_other, const cofi_params *p, float *gram, float *scratch_all,
                 size_t scratch_per, size_t gather_rows, uint32_t threads, int64_t *bad_row,
                 bool *nonfinite) {
  uint32_t k = p->factors;
  gram_parallel(Y, n_other, k, p->unobserved_weight, gram, scratch_all, scratch_per, threads);
  cofi__row_problem pr = {
      .gram = gram, .gram_ld = cofi__kpad(k), .Y = Y, .k = k, .alpha = p->alpha,
      .alpha0 = p->unobserved_weight, .lambda = p->regularization, .nu = p->reg_exponent,
      .n_other = n_other, .solver = p->solver, .cg_steps = p->cg_steps,
      .gather_rows = gather_rows};
  int err = COFI_OK;
  int64_t first_bad = -1;
  bool any_nonfinite = false;
#pragma omp parallel num_threads(threads)
  {
    float *scratch = scratch_all + (size_t)omp_get_thread_num() * scratch_per;
    bool my_nonfinite = false;
#pragma omp for schedule(dynamic, 1)
    for (uint32_t c = 0; c < sc->n; c++) {
      for (uint32_t r = sc->start[c]; r < sc->start[c + 1]; r++) {
        uint64_t b = R->indptr[r], e = R->indptr[r + 1];
        float *x = X + (size_t)r * k;
        int rc = cofi__solve_row(&pr, R->indices + b, R->data + b, (size_t)(e - b), x, scratch);
        if (rc) {
#pragma omp critical
          {
            if (first_bad < 0 || r < first_bad) { first_bad = r; err = rc; }
          }
        } else if (!row_finite(x, k)) {
          my_nonfinite = true;
        }
      }
    }
    if (my_nonfinite) {
#pragma omp atomic write
      any_nonfinite = true;
    }
  }
  *bad_row = first_bad;
  *nonfinite = any_nonfinite;
  return err;
}

/* Users per block of the loss: partial sums per block, added in block
 * order, make the result independent of the thread count. */
#define LOSS_BLOCK 512

double cofi__als_loss(const cofi__csr *R, const float *X, const float *Y, uint32_t k,
                      const cofi_params *p) {
  uint32_t n_items = R->n_cols, threads = cofi__threads(p->threads);
  size_t kp = cofi__kpad(k), nblk = ((size_t)R->n_rows + LOSS_BLOCK - 1) / LOSS_BLOCK;
  size_t max_row = 0;
  for (uint32_t u = 0; u < R->n_rows; u++)
    if (R->indptr[u + 1] - R->indptr[u] > max_row)
      max_row = (size_t)(R->indptr[u + 1] - R->indptr[u]);
  /* per thread: G x [kp] and the row's predictions [max_row] */
  size_t per = kp + ((max_row + 15) & ~(size_t)15);
  double result = NAN;
  float *gram = cofi__aligned_alloc((size_t)k * k * sizeof *gram);
  float *tmp = cofi__aligned_alloc(per * threads * sizeof *tmp);
  double *part = cofi__calloc(3 * (nblk ? nblk : 1), sizeof *part);
  uint64_t *cnt = cofi__calloc(n_items ? n_items : 1, sizeof *cnt);
  if (!gram || !tmp || !part || !cnt) goto done;
  cofi__gram(Y, n_items, k, p->unobserved_weight, gram);
  cofi__row_problem pr_u = {.lambda = p->regularization, .nu = p->reg_exponent,
                            .alpha0 = p->unobserved_weight, .n_other = n_items};
#pragma omp parallel num_threads(threads)
  {
    float *gx = tmp + (size_t)omp_get_thread_num() * per, *pred = gx + kp;
#pragma omp for schedule(dynamic, 1)
    for (size_t blk = 0; blk < nblk; blk++) {
      double loss = 0, conf = 0, reg = 0;
      size_t u1 = (blk + 1) * LOSS_BLOCK < R->n_rows ? (blk + 1) * LOSS_BLOCK : R->n_rows;
      for (size_t u = blk * LOSS_BLOCK; u < u1; u++) {
        const float *x = X + u * k;
        cofi__k_symv(gram, k, k, 0.0f, x, gx);
        double xGx = 0, xx = 0;
        for (uint32_t j = 0; j < k; j++) {
          xGx += (double)gx[j] * x[j];
          xx += (double)x[j] * x[j];
        }
        loss += xGx;
        uint64_t b = R->indptr[u];
        size_t n = (size_t)(R->indptr[u + 1] - b);
        cofi__rows rows = {.base = Y, .ld = k, .idx = R->indices + b};
        cofi__k_gemv(&rows, n, k, x, pred);
        for (size_t t = 0; t < n; t++) {
          double s = pred[t];
          double c = 1.0 + (double)p->alpha * R->data[b + t];
          loss += c * (1 - s) * (1 - s) - p->unobserved_weight * s * s;
          conf += c;
        }
        reg += cofi__row_lambda(&pr_u, (size_t)(R->indptr[u + 1] - R->indptr[u])) * xx;
      }
      part[3 * blk] = loss;
      part[3 * blk + 1] = conf;
      part[3 * blk + 2] = reg;
    }
  }
  double loss = 0, total_conf = 0, reg = 0;
  for (size_t blk = 0; blk < nblk; blk++) {
    loss += part[3 * blk];
    total_conf += part[3 * blk + 1];
    reg += part[3 * blk + 2];
  }
  /* item-side regularization: count of users per item from the CSR */
  for (uint64_t t = 0; t < R->nnz; t++) cnt[R->indices[t]]++;
  cofi__row_problem pr_i = {.lambda = p->regularization, .nu = p->reg_exponent,
                            .alpha0 = p->unobserved_weight, .n_other = R->n_rows};
  for (uint32_t i = 0; i < n_items; i++) {
    const float *y = Y + (size_t)i * k;
    double yy = 0;
    for (uint32_t j = 0; j < k; j++) yy += (double)y[j] * y[j];
    reg += cofi__row_lambda(&pr_i, cnt[i]) * yy;
  }
  double denom = total_conf + (double)R->n_rows * n_items - (double)R->nnz;
  result = (loss + reg) / (denom > 0 ? denom : 1);
done:
  cofi__aligned_free(gram);
  cofi__aligned_free(tmp);
  cofi__free(part);
  cofi__free(cnt);
  return result;
}

/* Frees a dataset's interaction rows (IDs and metadata stay). */
static void release_rows(cofi_dataset *ds, bool all) {
  cofi__free(ds->time);
  ds->time = NULL;
  ds->has_time = false;
  if (!all) return;
  cofi__free(ds->user);
  cofi__free(ds->item);
  cofi__free(ds->value);
  ds->user = ds->item = NULL;
  ds->value = NULL;
  ds->n = ds->cap = 0;
}

/* Distributed input: rank 0 replaces its rows of R with the whole matrix
 * (every rank's rows); the others keep theirs. Agreed. */
static int gather_whole(const cofi__comm *comm, cofi__csr *R, const uint32_t *first,
                        cofi_diag *d) {
  cofi__csr full;
  int rc = cofi__dist_gather_rows(comm, R, first, &full);
  if (rc == COFI_ERR_IO)
    cofi__fail(d, rc, NULL, 0, "rank %u: an MPI exchange failed", comm->rank);
  else if (rc)
    cofi__fail(d, rc, NULL, 0, "out of memory while gathering the matrix");
  /* agreed through the input exchanges' sum (its bytes are the input's,
   * not the training's cost model) */
  uint64_t failed[1] = {rc != 0};
  if (comm->allreduce_sum(comm->ctx, failed, 1) && !rc)
    rc = cofi__fail(d, COFI_ERR_IO, NULL, 0, "rank %u: an MPI exchange failed", comm->rank);
  if (!rc && failed[0])
    rc = cofi__fail(d, COFI_ERR_IO, NULL, 0, "another rank failed while gathering the matrix");
  if (rc) { cofi__csr_free(&full); return rc; }
  if (comm->rank == 0) {
    cofi__csr_free(R);
    *R = full;
  }
  return COFI_OK;
}

/* consume: a dataset whose rows may be released once the matrix is built
 * (cofi_train_release), NULL otherwise. comm: the ranks of a distributed
 * run, NULL in one process. With comm, every failure is agreed at one of
 * three points, which every rank passes in the same order: after the
 * setup (stage 0), after each half-sweep and each iteration (stage 1,
 * agreed where it happens), and at the end (stage 2). */
static int train(const cofi_dataset *ds, cofi_dataset *consume, cofi__dist_matrix *dm,
                 const cofi_params *params, const cofi__comm *comm, cofi_model **out,
                 cofi_diag *d) {
  *out = NULL;
  int stage = 0;
  int64_t no_row = -1;
  bool no_flag = false;
  bool root = !comm || comm->rank == 0;
  uint32_t nranks = comm ? comm->size : 1;
  uint32_t *first_u = NULL, *first_i = NULL;
  int rc = cofi_params_check(params, d);
  if (dm) ds = dm->ds;
  if (!rc && (!ds || (dm ? dm->interactions : ds->n) == 0 || ds->users.n == 0 ||
              ds->items.n == 0))
    rc = cofi__fail(d, COFI_ERR_EMPTY, NULL, 0, "no interactions to train on");
  if (rc) {
    if (comm) agree(comm, &rc, &no_row, &no_flag, d);
    return rc;
  }

  cofi_params p = *params;
  p.progress = NULL;
  p.progress_ctx = NULL;
  uint32_t k = p.factors, threads = cofi__threads(p.threads);
  double t0 = cofi__now();
  cofi_model *m = NULL;
  cofi__csr Rt = {0};
  float *gram = NULL, *scratch = NULL;
  sched sched_u = {0}, sched_i = {0};

  rc = cofi__model_new(&m);
  if (rc) goto fail;
  /* Peak memory: drop the timestamps before the matrix is built, and the
   * rows right after, when the caller lets us (the 20M log's rows are
   * 400 MB, more than training itself needs). */
  if ((dm || comm) && p.recency > 0) {
    rc = cofi__fail(d, COFI_ERR_INVALID, NULL, 0,
                    "recency needs every user's whole history in one process; distributed "
                    "training (MPI) does not take it");
    goto fail;
  }
  if (dm) {
    /* distributed input: this rank's rows, confidence applied */
    m->user_items = dm->R;
    m->conf_mean_rowsum = dm->conf_mean_rowsum;
    Rt = dm->Rt;
    memset(&dm->R, 0, sizeof dm->R);
    memset(&dm->Rt, 0, sizeof dm->Rt);
  } else {
    /* the recency ranks need the times: kept until they are taken */
    if (consume && !(p.recency > 0)) release_rows(consume, false);
    rc = cofi__csr_from_dataset(ds, &m->user_items);
    if (!rc && p.recency > 0) rc = cofi__recency_ranks(ds, &m->user_items, &m->seen_ranks);
    if (consume) release_rows(consume, true);
    if (rc) goto fail;
    rc = cofi__confidence_apply(&p, &m->user_items, &m->conf_mean_rowsum);
    if (rc) goto fail;
  }
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
  if (!dm) rc = cofi__csr_transpose(&m->user_items, &Rt);
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
  /* CG gathers a row's factor vectors into the thread's scratch when the
   * block fits GATHER_BYTES; longer rows are read in place. */
  size_t kp = cofi__kpad(k), max_row = 0;
  for (uint32_t u = 0; u < m->user_items.n_rows; u++)
    if (m->user_items.indptr[u + 1] - m->user_items.indptr[u] > max_row)
      max_row = (size_t)(m->user_items.indptr[u + 1] - m->user_items.indptr[u]);
  for (uint32_t i = 0; i < Rt.n_rows; i++)
    if (Rt.indptr[i + 1] - Rt.indptr[i] > max_row)
      max_row = (size_t)(Rt.indptr[i + 1] - Rt.indptr[i]);
  if (dm) max_row = (size_t)dm->max_row; /* over every rank's rows */
  size_t gather_rows = 0;
  if (p.solver == COFI_SOLVER_CG) {
    gather_rows = GATHER_BYTES / (kp * sizeof(float));
    if (gather_rows > max_row) gather_rows = max_row;
  }
  size_t scratch_per = cofi__solve_row_scratch_gather(k, gather_rows);
  if (scratch_per < (size_t)GRAM_CHUNK * kp) scratch_per = (size_t)GRAM_CHUNK * kp;
  scratch_per = (scratch_per + 15) & ~(size_t)15;
  gram = cofi__aligned_alloc(kp * kp * sizeof *gram);
  scratch = cofi__aligned_alloc(scratch_per * threads * sizeof *scratch);
  if (!m->user_factors || !m->item_factors || !gram || !scratch) {
    rc = COFI_ERR_NOMEM;
    goto fail;
  }
  first_u = cofi__malloc(((size_t)nranks + 1) * sizeof *first_u);
  first_i = cofi__malloc(((size_t)nranks + 1) * sizeof *first_i);
  if (!first_u || !first_i) { rc = COFI_ERR_NOMEM; goto fail; }
  if (dm) {
    memcpy(first_u, dm->first_u, ((size_t)nranks + 1) * sizeof *first_u);
    memcpy(first_i, dm->first_i, ((size_t)nranks + 1) * sizeof *first_i);
  } else {
    partition(&m->user_items, k, nranks, first_u);
    partition(&Rt, k, nranks, first_i);
  }
  uint32_t me = comm ? comm->rank : 0;
  rc = sched_build(&m->user_items, first_u[me], first_u[me + 1], k, threads, &sched_u);
  if (!rc) rc = sched_build(&Rt, first_i[me], first_i[me + 1], k, threads, &sched_i);
  if (rc) goto fail;
  stage = 1; /* from here every failure is agreed where it happens */
  if (comm) {
    agree(comm, &rc, &no_row, &no_flag, d);
    if (rc) goto fail;
  }
  /* distributed input: the root needs the whole user x item matrix for
   * the loss (each iteration with --loss, else at the end) and the file */
  bool whole_at_end = dm && !p.compute_loss;
  if (dm && p.compute_loss) {
    rc = gather_whole(comm, &m->user_items, first_u, d);
    if (rc) goto fail;
  }
  init_factors(m->user_factors, m->n_users, k, p.seed, 1);
  init_factors(m->item_factors, m->n_items, k, p.seed, 2);

  /* BLAS stays single-threaded: our parallelism is over rows (OpenMP), and
   * nested BLAS threads oversubscribe the cores (implicit #440, #594). */
  openblas_set_num_threads(1);

  for (uint32_t it = 1; it <= p.iterations; it++) {
    double ti = cofi__now();
    int64_t bad = -1;
    bool nonfinite = false;
    rc = sweep(&m->user_items, &sched_u, m->user_factors, m->item_factors, m->n_items, &p,
               gram, scratch, scratch_per, gather_rows, threads, &bad, &nonfinite);
    if (comm) {
      agree(comm, &rc, &bad, &nonfinite, d);
      if (rc == COFI_OK && !nonfinite &&
          comm->allgather_rows(comm->ctx, m->user_factors, first_u, k))
        rc = cofi__fail(d, COFI_ERR_IO, NULL, 0, "rank %u: an MPI allgather failed", comm->rank);
    }
    if (rc == COFI_OK && !nonfinite) {
      rc = sweep(&Rt, &sched_i, m->item_factors, m->user_factors, m->n_users, &p, gram,
                 scratch, scratch_per, gather_rows, threads, &bad, &nonfinite);
      if (comm) {
        agree(comm, &rc, &bad, &nonfinite, d);
        if (rc == COFI_OK && !nonfinite &&
            comm->allgather_rows(comm->ctx, m->item_factors, first_i, k))
          rc = cofi__fail(d, COFI_ERR_IO, NULL, 0, "rank %u: an MPI allgather failed",
                          comm->rank);
      }
    }
    if (rc == COFI_ERR_NUMERIC) {
      /* With lambda > 0 the system is positive definite in exact
       * arithmetic: the solve broke down because numbers overflowed, or
       * because float rounding (about k eps |A|) outweighed lambda, as
       * with 1024 factors and lambda 0.01 on ml-latest-small. */
      if (p.regularization > 0)
        cofi__fail(d, rc, NULL, 0,
                   "iteration %u: the least-squares system of row %lld could not be "
                   "solved in single precision: the values, alpha or the "
                   "regularization exponent are too large, or the regularization "
                   "(%g) too small for %u factors; change them%s",
                   it, (long long)bad, (double)p.regularization, k,
                   p.solver == COFI_SOLVER_CHOLESKY ? " or use the CG solver" : "");
      else
        cofi__fail(d, rc, NULL, 0,
                   "iteration %u: the least-squares system of row %lld is singular; "
                   "use a regularization > 0",
                   it, (long long)bad);
      goto fail;
    }
    if (rc) goto fail;
    if (nonfinite) {
      rc = cofi__fail(d, COFI_ERR_NUMERIC, NULL, 0,
                      "iteration %u produced NaN or infinite factors (values or alpha too "
                      "large, or regularization too small for %u factors)",
                      it, k);
      goto fail;
    }
    bool cancel = false;
    if (params->progress && root) {
      cofi_progress pg = {.iteration = it, .iterations = p.iterations,
                          .seconds = cofi__now() - ti, .elapsed = cofi__now() - t0,
                          .loss = NAN, .n_users = m->n_users, .n_items = m->n_items,
                          .factors = k, .user_factors = m->user_factors,
                          .item_factors = m->item_factors};
      if (p.compute_loss) {
        pg.loss = cofi__als_loss(&m->user_items, m->user_factors, m->item_factors, k, &p);
        pg.elapsed = cofi__now() - t0;
      }
      cancel = params->progress(&pg, params->progress_ctx) != 0;
    }
    /* every rank stops when the root's callback cancels */
    if (comm) {
      int crc = COFI_OK;
      agree(comm, &crc, &no_row, &cancel, d);
      if (crc) { rc = crc; goto fail; }
    }
    if (cancel) {
      rc = cofi__fail(d, COFI_ERR_CANCELLED, NULL, 0, "training cancelled at iteration %u", it);
      goto fail;
    }
  }
  if (whole_at_end) {
    rc = gather_whole(comm, &m->user_items, first_u, d);
    if (rc) goto fail;
  }
  stage = 2;
  m->train_seconds = cofi__now() - t0;
  m->train_ranks = nranks;
  /* the loss needs the whole matrix and both factor matrices, which every
   * rank holds: the root alone computes it, in the one-process order */
  m->train_loss = root ? cofi__als_loss(&m->user_items, m->user_factors, m->item_factors, k, &p)
                       : 0.0;
  if (isnan(m->train_loss)) { rc = COFI_ERR_NOMEM; goto fail; }

  rc = cofi__model_finish(m, ds, &p);
  if (!rc && p.recency > 0) rc = cofi__recency_refit_users(m, threads);
  if (rc) goto fail;
  if (comm) {
    stage = 3;
    agree(comm, &rc, &no_row, &no_flag, d);
    if (rc) goto fail;
  }
  cofi__free(first_u);
  cofi__free(first_i);
  cofi__csr_free(&Rt);
  cofi__aligned_free(gram);
  cofi__aligned_free(scratch);
  cofi__free(sched_u.start);
  cofi__free(sched_i.start);
  *out = m;
  return COFI_OK;

fail:
  if (rc == COFI_ERR_NOMEM)
    cofi__fail(d, rc, NULL, 0, "out of memory while training");
  /* a local failure the other ranks have not heard of yet */
  if (comm && (stage == 0 || stage == 2)) agree(comm, &rc, &no_row, &no_flag, d);
  cofi__free(first_u);
  cofi__free(first_i);
  cofi__csr_free(&Rt);
  cofi__aligned_free(gram);
  cofi__aligned_free(scratch);
  cofi__free(sched_u.start);
  cofi__free(sched_i.start);
  cofi_model_close(m);
  return rc;
}

int cofi_train(const cofi_dataset *ds, const cofi_params *params, cofi_model **out,
               cofi_diag *d) {
  if (params && params->model != COFI_MODEL_ALS)
    return cofi__train_item_model(ds, NULL, params, out, d);
  return train(ds, NULL, NULL, params, NULL, out, d);
}

int cofi_train_release(cofi_dataset *ds, const cofi_params *params, cofi_model **out,
                       cofi_diag *d) {
  int rc = params && params->model != COFI_MODEL_ALS
               ? cofi__train_item_model(ds, ds, params, out, d)
               : train(ds, ds, NULL, params, NULL, out, d);
  release_rows(ds, true); /* also when training stopped before the build */
  return rc;
}

int cofi__train_dist_matrix(cofi__dist_matrix *dm, const cofi_params *params,
                            const cofi__comm *comm, cofi_model **out, cofi_diag *d) {
  if (params && params->model != COFI_MODEL_ALS)
    return cofi__fail(d, COFI_ERR_INVALID, NULL, 0,
                      "distributed training (mpirun) needs an ALS model; this model is %s",
                      cofi_model_kind_name((int)params->model));
  return train(NULL, NULL, dm, params, comm, out, d);
}

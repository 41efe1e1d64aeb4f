/*
 * dist_input.c — from each rank's share of the input to a matrix
 * distributed by the rows each rank solves (docs/mpi.md, Input per rank).
 *
 * 1. Global ID maps: the ranks allgather their share's IDs in first-
 *    appearance order; walking rank 0's list, then rank 1's (skipping IDs
 *    already known) gives exactly the one-process order, because the
 *    shares are consecutive pieces of the file. Every rank builds the
 *    same maps and renumbers its rows.
 * 2. Partition: per-user and per-item row counts (an allreduce sum) split
 *    users and items into contiguous ranges of about equal work. Which
 *    rank solves a row does not change its bits, so the split needs no
 *    exactness.
 * 3. Each interaction goes to the rank that solves its user (alltoallv).
 *    A rank receives its users' rows from the ranks in rank order, so each
 *    row lists its interactions in file order, as the one-process reader
 *    does: duplicates are summed in the same order, to the same bits.
 * 4. Confidence applies per value (bm25 from the whole matrix's item
 *    counts and total, bm25_dist); then every merged pair goes to the rank
 *    that solves its item (alltoallv), arriving in user order: the item
 *    rows are the one-process transpose's.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

void cofi__dist_matrix_free(cofi__dist_matrix *dm) {
  if (!dm) return;
  cofi_dataset_free(dm->ds);
  cofi__csr_free(&dm->R);
  cofi__csr_free(&dm->Rt);
  cofi__free(dm->first_u);
  cofi__free(dm->first_i);
  memset(dm, 0, sizeof *dm);
}

/* An ID list as bytes: per ID a 4-byte length and the bytes. */
static int pack_ids(const cofi__idmap *m, char **out, size_t *n) {
  size_t total = 0;
  for (uint32_t i = 0; i < m->n; i++) {
    size_t len;
    cofi__idmap_get(m, i, &len);
    total += 4 + len;
  }
  char *b = cofi__malloc(total), *p = b;
  if (!b) return COFI_ERR_NOMEM;
  for (uint32_t i = 0; i < m->n; i++) {
    size_t len;
    const char *s = cofi__idmap_get(m, i, &len);
    uint32_t l = (uint32_t)len;
    memcpy(p, &l, 4);
    memcpy(p + 4, s, len);
    p += 4 + len;
  }
  *out = b;
  *n = total;
  return COFI_OK;
}

/* The global map from every rank's list in rank order; mine[j] = the
 * global index of this rank's local ID j. */
static int merge_ids(const cofi__comm *c, const cofi__idmap *local, cofi__idmap *global,
                     uint32_t **mine) {
  char *packed = NULL;
  size_t n = 0;
  void *all = NULL;
  size_t *counts = cofi__calloc(c->size, sizeof *counts);
  int rc = counts ? pack_ids(local, &packed, &n) : COFI_ERR_NOMEM;
  if (rc) {
    /* still take part, with nothing */
    if (counts && !c->allgatherv(c->ctx, "", 0, &all, counts)) cofi__free(all);
    cofi__free(counts);
    return rc;
  }
  if (c->allgatherv(c->ctx, packed, n, &all, counts)) {
    cofi__free(packed);
    cofi__free(counts);
    return COFI_ERR_IO;
  }
  cofi__free(packed);
  *mine = cofi__malloc(((size_t)local->n + 1) * sizeof **mine);
  if (!*mine) rc = COFI_ERR_NOMEM;
  const char *p = all;
  for (uint32_t r = 0; r < c->size && !rc; r++) {
    const char *e = p + counts[r];
    uint32_t j = 0;
    while (p < e && !rc) {
      uint32_t l;
      memcpy(&l, p, 4);
      uint32_t idx;
      rc = cofi__idmap_intern(global, p + 4, l, &idx, NULL);
      if (!rc && r == c->rank) (*mine)[j++] = idx;
      p += 4 + (size_t)l;
    }
  }
  cofi__free(all);
  cofi__free(counts);
  if (rc) {
    cofi__free(*mine);
    *mine = NULL;
  }
  return rc;
}

/* The same split as the one-process trainer's partition(), from row
 * lengths: contiguous ranges of about equal work (nonzeros plus a k x k
 * term per row). */
static void partition_counts(const uint64_t *len, uint32_t n, uint32_t k, uint32_t parts,
                             uint32_t *first) {
  uint64_t per_row = cofi__kpad(k) / 2 + 8, total = 0, acc = 0;
  for (uint32_t r = 0; r < n; r++) total += len[r] + per_row;
  uint32_t p = 1;
  first[0] = 0;
  for (uint32_t r = 0; r < n && p < parts; r++) {
    acc += len[r] + per_row;
    while (p < parts && (unsigned __int128)acc * parts >= (unsigned __int128)total * p)
      first[p++] = r + 1;
  }
  while (p < parts) first[p++] = n;
  first[parts] = n;
}

/* The owner of row r: the p with first[p] <= r < first[p+1]. */
static uint32_t owner(const uint32_t *first, uint32_t parts, uint32_t r) {
  uint32_t lo = 0, hi = parts;
  while (hi - lo > 1) {
    uint32_t mid = (lo + hi) / 2;
    if (first[mid] <= r) lo = mid; else hi = mid;
  }
  return lo;
}

/* Sends the n triples (row[j], col[j], val[j]) each to rank dest[j],
 * keeping their order per destination, one component at a time (peak
 * memory: one 4-byte send buffer over the inputs); receives the ones this
 * rank owns, in rank order, and builds the rows x cols CSR of them. The
 * components whose bit is set in owned (1 row, 2 col, 4 val) are freed as
 * soon as they are sent, and dest (always owned) before the build. A rank
 * that failed before (rc != 0) takes part with nothing to send. */
static int exchange_build(const cofi__comm *c, int rc, uint32_t *dest, size_t n,
                          uint32_t *row, uint32_t *col, float *val, unsigned owned,
                          uint32_t rows, uint32_t cols, cofi__csr *out) {
  uint32_t N = c->size;
  size_t *counts = cofi__calloc(2 * (size_t)N, sizeof *counts), *fill = cofi__calloc(N, sizeof *fill);
  uint32_t *send = cofi__malloc((n ? n : 1) * sizeof *send);
  void *recv[3] = {NULL, NULL, NULL};
  void *src[3] = {row, col, val};
  if (!counts || !fill || !send) {
    if (!counts) { /* cannot take part: the job aborts at the next agreement */
      cofi__free(fill);
      cofi__free(send);
      cofi__free(dest);
      return COFI_ERR_NOMEM;
    }
    rc = rc ? rc : COFI_ERR_NOMEM;
  }
  if (rc) n = 0;
  for (size_t j = 0; j < n; j++) counts[dest[j]]++;
  size_t got = 0;
  for (int k = 0; k < 3; k++) {
    size_t at = 0;
    for (uint32_t r = 0; r < N; r++) { fill[r] = at; at += counts[r]; }
    const uint32_t *s32 = src[k];
    for (size_t j = 0; j < n; j++) send[fill[dest[j]]++] = s32[j];
    size_t bytes[64], *sc = N <= 64 ? bytes : cofi__malloc(N * sizeof *sc);
    if (!sc) return COFI_ERR_NOMEM;
    for (uint32_t r = 0; r < N; r++) sc[r] = counts[r] * 4;
    if (c->alltoallv(c->ctx, send, sc, 4, &recv[k], counts + N) && !rc) rc = COFI_ERR_IO;
    if (sc != bytes) cofi__free(sc);
    if (owned & (1u << k)) cofi__free(src[k]);
  }
  cofi__free(dest);
  cofi__free(send);
  cofi__free(fill);
  if (!rc)
    for (uint32_t r = 0; r < N; r++) got += counts[N + r] / 4;
  cofi__free(counts);
  if (!rc) rc = cofi__csr_from_triplets(rows, cols, got, recv[0], recv[1], recv[2], out);
  for (int k = 0; k < 3; k++) cofi__free(recv[k]);
  return rc;
}

/* The outcome on every rank: 0 when all succeeded, else some rank's
 * error (the lowest failing rank's), *who that rank. */
static int agree(const cofi__comm *c, int rc, uint32_t *who) {
  int64_t mine = rc;
  void *all = NULL;
  size_t *counts = cofi__calloc(c->size, sizeof *counts);
  if (!counts || c->allgatherv(c->ctx, &mine, sizeof mine, &all, counts)) {
    cofi__free(counts);
    *who = c->rank;
    return rc ? rc : COFI_ERR_IO;
  }
  const int64_t *v = all;
  int out = 0;
  for (uint32_t r = 0; r < c->size; r++)
    if (v[r] && !out) { out = (int)v[r]; *who = r; }
  cofi__free(all);
  cofi__free(counts);
  return out;
}

static int agreed(const cofi__comm *c, int rc, const char *what, cofi_diag *d) {
  uint32_t who = 0;
  int all = agree(c, rc, &who);
  if (all && !rc)
    cofi__fail(d, all, NULL, 0, "rank %u failed while %s (its own message says why)", who, what);
  else if (rc == COFI_ERR_NOMEM)
    cofi__fail(d, rc, NULL, 0, "out of memory while %s", what);
  else if (rc == COFI_ERR_IO)
    cofi__fail(d, rc, NULL, 0, "an MPI exchange failed while %s", what);
  return all;
}

/* The distinct columns of rows [r0, r1) outside [c0, c1): the other
 * side's rows these rows need from other ranks. false: out of memory. */
static bool count_halo(const cofi__csr *R, uint32_t r0, uint32_t r1, uint32_t c0, uint32_t c1,
                       uint64_t *out) {
  uint8_t *seen = cofi__calloc((size_t)R->n_cols / 8 + 1, 1);
  if (!seen) return false;
  uint64_t n = 0;
  for (uint64_t x = R->indptr[r0]; x < R->indptr[r1]; x++) {
    uint32_t col = R->indices[x];
    if (col >= c0 && col < c1) continue;
    if (!(seen[col / 8] & (1u << (col % 8)))) { seen[col / 8] |= (uint8_t)(1u << (col % 8)); n++; }
  }
  cofi__free(seen);
  *out = n;
  return true;
}

/* BM25 over a distributed matrix, to the one-process bits: the item
 * counts are integers (an allreduce sum is exact), and the total of the
 * values is summed in the one-process order, user after user, by passing
 * the running sum from rank to rank (N tiny allgathers: rank r adds its
 * rows to the total the ranks before it reached). */
static int bm25_dist(const cofi__comm *c, const cofi_params *p, cofi__dist_matrix *out,
                     cofi_diag *d) {
  uint32_t N = c->size, me = c->rank, ni = out->R.n_cols;
  cofi__csr *R = &out->R;
  uint64_t *df = cofi__calloc((size_t)ni + 1, sizeof *df);
  size_t *counts = cofi__calloc(N, sizeof *counts);
  int rc = df && counts ? COFI_OK : COFI_ERR_NOMEM;
  uint32_t r0 = out->first_u[me], r1 = out->first_u[me + 1];
  if (!rc)
    for (uint64_t x = R->indptr[r0]; x < R->indptr[r1]; x++) df[R->indices[x]]++;
  if (c->allreduce_sum(c->ctx, df ? df : (uint64_t[1]){0}, df ? ni : 1) && !rc) rc = COFI_ERR_IO;
  double total = 0;
  for (uint32_t r = 0; r < N; r++) {
    double mine = total;
    if (r == me)
      for (uint64_t x = R->indptr[r0]; x < R->indptr[r1]; x++) mine += R->data[x];
    void *all = NULL;
    size_t dummy[1];
    if (c->allgatherv(c->ctx, &mine, r == me ? sizeof mine : 0, &all, counts ? counts : dummy)) {
      if (!rc) rc = COFI_ERR_IO;
    } else {
      memcpy(&total, all, sizeof total);
    }
    cofi__free(all);
  }
  if (!rc) {
    out->conf_mean_rowsum = R->n_rows ? total / R->n_rows : 0;
    cofi__confidence_bm25_rows(p, R, r0, r1, df, out->conf_mean_rowsum);
  }
  (void)d;
  cofi__free(df);
  cofi__free(counts);
  return rc;
}

int cofi__dist_build(cofi_dataset *local, uint64_t rows, const cofi_read_options *opt,
                     const cofi_params *p, const cofi__comm *c, cofi__dist_matrix *out,
                     cofi_diag *d) {
  memset(out, 0, sizeof *out);
  cofi__free(local->time); /* training has no use for them */
  local->time = NULL;
  uint32_t N = c->size, me = c->rank, k = p->factors;
  uint32_t *map_u = NULL, *map_i = NULL, *dest = NULL;
  uint64_t *len_u = NULL, *len_i = NULL;
  int rc = COFI_OK;
  /* 1. the global ID maps */
  if (!rc) rc = cofi__dataset_new(&out->ds);
  if (!rc) {
    snprintf(out->ds->source, sizeof out->ds->source, "%s", local->source);
    snprintf(out->ds->columns, sizeof out->ds->columns, "%s", local->columns);
    out->ds->has_time = false;
  }
  int mrc = merge_ids(c, &local->users, rc ? &local->users : &out->ds->users, &map_u);
  if (!rc) rc = mrc;
  mrc = merge_ids(c, &local->items, rc ? &local->items : &out->ds->items, &map_i);
  if (!rc) rc = mrc;
  if ((rc = agreed(c, rc, "merging the ID maps", d))) goto done;
  cofi__idmap_free(&local->users);
  cofi__idmap_free(&local->items);
  uint32_t nu = out->ds->users.n, ni = out->ds->items.n;

  /* totals; the one-process reader's messages for an empty result */
  uint64_t tot[2] = {local->n, rows};
  if (c->allreduce_sum(c->ctx, tot, 2)) rc = COFI_ERR_IO;
  if ((rc = agreed(c, rc, "counting the rows", d))) goto done;
  out->interactions = tot[0];
  if (tot[0] == 0) {
    if (tot[1] == 0)
      rc = cofi__fail(d, COFI_ERR_EMPTY, local->source, 0,
                      "no data rows (the file has only a header)");
    else
      rc = cofi__fail(d, COFI_ERR_EMPTY, local->source, 0, "none of the %llu rows has a value >= %g",
                      (unsigned long long)tot[1], opt ? opt->min_value : 0.0);
    goto done;
  }

  /* 2. partition by work: row lengths over all ranks */
  len_u = cofi__calloc((size_t)nu + ni, sizeof *len_u);
  out->first_u = cofi__malloc(((size_t)N + 1) * sizeof *out->first_u);
  out->first_i = cofi__malloc(((size_t)N + 1) * sizeof *out->first_i);
  size_t n = local->n;
  dest = cofi__malloc((n ? n : 1) * sizeof *dest);
  if (!len_u || !out->first_u || !out->first_i || !dest) rc = COFI_ERR_NOMEM;
  if (!rc) {
    len_i = len_u + nu;
    for (size_t j = 0; j < n; j++) {
      /* global indices, in place */
      uint32_t u = local->user[j] = map_u[local->user[j]], i = local->item[j] = map_i[local->item[j]];
      len_u[u]++;
      len_i[i]++;
    }
    if (c->allreduce_sum(c->ctx, len_u, (size_t)nu + ni)) rc = COFI_ERR_IO;
  } else {
    /* take part with zeros */
    uint64_t *z = cofi__calloc((size_t)nu + ni, sizeof *z);
    if (z) c->allreduce_sum(c->ctx, z, (size_t)nu + ni);
    cofi__free(z);
  }
  if ((rc = agreed(c, rc, "partitioning the rows", d))) goto done;
  partition_counts(len_u, nu, k, N, out->first_u);
  partition_counts(len_i, ni, k, N, out->first_i);
  cofi__free(len_u);
  len_u = NULL;
  cofi__free(map_u);
  cofi__free(map_i);
  map_u = map_i = NULL;

  /* 3. interactions to the owners of their users (the dataset's arrays
   * are freed as they are sent) */
  for (size_t j = 0; j < n; j++) dest[j] = owner(out->first_u, N, local->user[j]);
  rc = exchange_build(c, 0, dest, n, local->user, local->item, local->value, 7, nu, ni,
                      &out->R);
  local->user = local->item = NULL;
  local->value = NULL;
  local->n = local->cap = 0;
  dest = NULL;
  if ((rc = agreed(c, rc, "sending the rows to their users' ranks", d))) goto done;

  /* 4. confidence per value, then the merged pairs to their items' ranks */
  if (p->confidence == COFI_CONFIDENCE_BM25) {
    rc = bm25_dist(c, p, out, d);
  } else {
    double mean_unused;
    rc = cofi__confidence_apply(p, &out->R, &mean_unused);
  }
  n = (size_t)out->R.nnz;
  uint32_t *users_of = NULL;
  if (!rc) {
    users_of = cofi__malloc((n ? n : 1) * sizeof *users_of);
    dest = cofi__malloc((n ? n : 1) * sizeof *dest);
    if (!users_of || !dest) rc = COFI_ERR_NOMEM;
  }
  if (!rc) {
    for (uint32_t u = out->first_u[me]; u < out->first_u[me + 1]; u++)
      for (uint64_t x = out->R.indptr[u]; x < out->R.indptr[u + 1]; x++) {
        users_of[x] = u;
        dest[x] = owner(out->first_i, N, out->R.indices[x]);
      }
  }
  int xrc = exchange_build(c, rc, dest, n, out->R.indices, users_of, out->R.data, 2, ni, nu,
                           &out->Rt);
  dest = users_of = NULL;
  if (!rc) rc = xrc;
  if ((rc = agreed(c, rc, "sending the pairs to their items' ranks", d))) goto done;

  /* the global pair count and the longest row (CG's gather block) */
  uint64_t max_row = 0;
  for (uint32_t u = out->first_u[me]; u < out->first_u[me + 1]; u++)
    if (out->R.indptr[u + 1] - out->R.indptr[u] > max_row)
      max_row = out->R.indptr[u + 1] - out->R.indptr[u];
  for (uint32_t i = out->first_i[me]; i < out->first_i[me + 1]; i++)
    if (out->Rt.indptr[i + 1] - out->Rt.indptr[i] > max_row)
      max_row = out->Rt.indptr[i + 1] - out->Rt.indptr[i];
  int64_t mx[1] = {(int64_t)max_row};
  if (!count_halo(&out->R, out->first_u[me], out->first_u[me + 1], out->first_i[me],
                  out->first_i[me + 1], &out->halo[0]) ||
      !count_halo(&out->Rt, out->first_i[me], out->first_i[me + 1], out->first_u[me],
                  out->first_u[me + 1], &out->halo[1]))
    rc = COFI_ERR_NOMEM;
  uint64_t nnz[3] = {out->R.nnz, out->halo[0], out->halo[1]};
  if (c->allreduce_sum(c->ctx, nnz, 3)) rc = COFI_ERR_IO;
  out->halo_all[0] = nnz[1];
  out->halo_all[1] = nnz[2];
  {
    void *all = NULL;
    size_t *counts = cofi__calloc(N, sizeof *counts);
    if (!counts || c->allgatherv(c->ctx, mx, sizeof mx, &all, counts)) {
      rc = COFI_ERR_IO;
    } else {
      const int64_t *v = all;
      for (uint32_t r = 0; r < N; r++)
        if ((uint64_t)v[r] > max_row) max_row = (uint64_t)v[r];
    }
    cofi__free(all);
    cofi__free(counts);
  }
  if ((rc = agreed(c, rc, "counting the pairs", d))) goto done;
  out->nnz = nnz[0];
  out->max_row = max_row;

done:
  cofi__free(map_u);
  cofi__free(map_i);
  cofi__free(len_u);
  cofi__free(dest);
  cofi_dataset_free(local);
  if (rc) cofi__dist_matrix_free(out);
  return rc;
}

int cofi__dist_gather_rows(const cofi__comm *c, const cofi__csr *R, const uint32_t *first,
                           cofi__csr *full) {
  uint32_t N = c->size, me = c->rank;
  memset(full, 0, sizeof *full);
  /* every rank's pair count, so that rank 0 allocates the whole once */
  uint32_t r0 = first[me], r1 = first[me + 1];
  uint64_t mine = R->indptr[r1] - R->indptr[r0];
  void *all = NULL;
  size_t *counts = cofi__calloc(2 * (size_t)N, sizeof *counts);
  if (!counts) return COFI_ERR_NOMEM; /* cannot take part: the job aborts at the agreement */
  int rc = c->allgatherv(c->ctx, &mine, sizeof mine, &all, counts) ? COFI_ERR_IO : COFI_OK;
  uint64_t total = 0;
  if (!rc)
    for (uint32_t r = 0; r < N; r++) total += ((const uint64_t *)all)[r];
  cofi__free(all);
  if (!rc && me == 0) {
    full->n_rows = R->n_rows;
    full->n_cols = R->n_cols;
    full->nnz = total;
    full->indptr = cofi__calloc((size_t)R->n_rows + 1, sizeof *full->indptr);
    full->indices = cofi__malloc((total ? total : 1) * sizeof *full->indices);
    full->data = cofi__malloc((total ? total : 1) * sizeof *full->data);
    if (!full->indptr || !full->indices || !full->data) rc = COFI_ERR_NOMEM;
  }
  /* one rank at a time, so rank 0 holds one rank's rows in transit: per
   * row its length (uint64), then per pair the column and the value bits */
  uint64_t at = 0;
  for (uint32_t src = 0; src < N; src++) {
    uint32_t a = first[src], b = first[src + 1];
    uint64_t *send = NULL;
    size_t bytes = 0;
    memset(counts, 0, 2 * (size_t)N * sizeof *counts);
    if (me == src && src != 0 && !rc) {
      bytes = ((size_t)(b - a) + 2 * (size_t)mine) * 8;
      send = cofi__malloc(bytes ? bytes : 8);
      if (!send) { rc = COFI_ERR_NOMEM; bytes = 0; }
      else {
        uint64_t *q = send;
        for (uint32_t r = a; r < b; r++) *q++ = R->indptr[r + 1] - R->indptr[r];
        uint32_t *pairs = (uint32_t *)q;
        for (uint64_t x = R->indptr[a]; x < R->indptr[b]; x++) {
          *pairs++ = R->indices[x];
          memcpy(pairs++, &R->data[x], 4);
        }
      }
      counts[0] = bytes;
    }
    void *recv = NULL;
    if (src != 0 && c->alltoallv(c->ctx, send ? (void *)send : (void *)"", counts, 8, &recv,
                                 counts + N) && !rc)
      rc = COFI_ERR_IO;
    cofi__free(send);
    if (me == 0 && !rc) {
      if (src == 0) { /* rank 0's own rows */
        for (uint32_t r = a; r < b; r++) {
          full->indptr[r] = at;
          for (uint64_t x = R->indptr[r]; x < R->indptr[r + 1]; x++, at++) {
            full->indices[at] = R->indices[x];
            full->data[at] = R->data[x];
          }
        }
      } else {
        const uint64_t *lens = recv;
        const uint32_t *pairs = (const uint32_t *)(const void *)(lens + (b - a));
        uint64_t q = 0;
        for (uint32_t j = 0; j < b - a; j++) {
          full->indptr[a + j] = at;
          for (uint64_t x = 0; x < lens[j] && at < total; x++, q++, at++) {
            full->indices[at] = pairs[2 * q];
            memcpy(&full->data[at], &pairs[2 * q + 1], 4);
          }
        }
      }
    }
    cofi__free(recv);
  }
  if (me == 0 && !rc) full->indptr[R->n_rows] = at; /* first[N] == n_rows */
  if (rc) cofi__csr_free(full);
  cofi__free(counts);
  return rc;
}

/*
 * internal.h — declarations shared between library files (the cofi__
 * prefix). Not installed, not part of the API.
 */
#ifndef COFI_INTERNAL_H
#define COFI_INTERNAL_H

#include "cofi.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- allocation -------------------------------------------------------- */
/* Every library allocation goes through these, so tests can inject
 * failures (cofi__alloc_fail_after). Aligned memory is 64-byte aligned. */
void *cofi__malloc(size_t n);
void *cofi__calloc(size_t count, size_t size);
void *cofi__realloc(void *p, size_t n);
void *cofi__aligned_alloc(size_t n); /* free with cofi__aligned_free */
void cofi__free(void *p);
void cofi__aligned_free(void *p);
/* Test hook: the n-th allocation from now (1-based) and all after it fail;
 * n = 0 disables injection. Returns how many allocations were attempted
 * since the last call. */
uint64_t cofi__alloc_fail_after(uint64_t n);

/* Overflow-checked a*b; false when it overflows. */
static inline bool cofi__mul_ok(size_t a, size_t b, size_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

/* ---- diagnostics ------------------------------------------------------- */
/* Fills diag (may be NULL) and returns code. */
int cofi__fail(cofi_diag *diag, int code, const char *file, uint64_t line,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Copies at most 40 bytes of s into buf as printable text (for messages). */
const char *cofi__quote(char *buf, size_t bufsize, const char *s, size_t len);

/* ---- hashing ----------------------------------------------------------- */
uint64_t cofi__hash_bytes(const void *data, size_t len, uint64_t seed);

/* ---- ID maps ----------------------------------------------------------- */
/* Strings with dense indices: blob + offsets (offsets[i]..offsets[i+1]),
 * plus an open-addressing hash index. A map opened from a model file
 * borrows offsets and blob from the mapping and owns only the index. */
typedef struct cofi__idmap {
  uint32_t n;
  uint64_t *offsets; /* [n+1] */
  char *blob;        /* offsets[n] bytes */
  uint32_t *slots;   /* [n_slots], UINT32_MAX = empty */
  uint32_t n_slots;  /* power of two, >= 2n */
  size_t cap, blob_cap;
  bool borrowed;     /* offsets/blob not owned */
} cofi__idmap;

void cofi__idmap_init(cofi__idmap *m);
void cofi__idmap_free(cofi__idmap *m);
/* Index of s, inserting it when new. *added tells which (may be NULL). */
int cofi__idmap_intern(cofi__idmap *m, const char *s, size_t len,
                       uint32_t *idx, bool *added);
int64_t cofi__idmap_find(const cofi__idmap *m, const char *s, size_t len);
const char *cofi__idmap_get(const cofi__idmap *m, uint32_t i, size_t *len);
/* Builds the hash index over borrowed offsets/blob; COFI_ERR_CORRUPT on a
 * duplicate string. */
int cofi__idmap_borrow(cofi__idmap *m, uint32_t n, const uint64_t *offsets,
                       const char *blob);

/* ---- string table ------------------------------------------------------ */
/* n strings in one blob (item metadata cells, column names). */
typedef struct cofi__strtab {
  size_t n;
  uint64_t *offsets; /* [n+1] */
  char *blob;
  size_t cap, blob_cap;
  bool borrowed;
} cofi__strtab;

void cofi__strtab_init(cofi__strtab *t);
void cofi__strtab_free(cofi__strtab *t);
int cofi__strtab_push(cofi__strtab *t, const char *s, size_t len);
const char *cofi__strtab_get(const cofi__strtab *t, size_t i, size_t *len);

/* ---- item metadata ----------------------------------------------------- */
typedef struct cofi__itemmeta {
  uint32_t n_fields;       /* columns besides the ID */
  int32_t title_field;     /* index of the title column, -1 if none */
  cofi__strtab names;      /* [n_fields] */
  cofi__strtab cells;      /* [n_items x n_fields] row-major, or empty */
} cofi__itemmeta;

/* ---- datasets ---------------------------------------------------------- */
/* Interactions in input order (needed for time-ordered splits), with IDs
 * interned in order of first appearance. */
struct cofi_dataset {
  cofi__idmap users, items;
  size_t n, cap;     /* interactions */
  uint32_t *user;    /* [n] */
  uint32_t *item;    /* [n] */
  float *value;      /* [n] */
  int64_t *time;     /* [n], 0 when the data has no time column */
  bool has_time;
  cofi__itemmeta meta; /* n_fields 0 when no --items */
  char source[256];  /* path it was read from */
  char columns[512]; /* which column was used as what (cofi_dataset_columns) */
};

/* An empty dataset to fill with cofi__dataset_add. */
int cofi__dataset_new(cofi_dataset **out);
/* Room for one more row in ds's arrays (they grow together, doubling). */
int cofi__dataset_reserve_one(cofi_dataset *ds);
int cofi__dataset_add(cofi_dataset *ds, const char *user, size_t ulen,
                      const char *item, size_t ilen, float value, int64_t time);
/* A dataset with the same ID maps (copied) and metadata, holding only the
 * interactions whose keep[i] is true. */
int cofi__dataset_subset(const cofi_dataset *ds, const bool *keep,
                         cofi_dataset **out);

/* Reading one share of a file (a byte range per MPI rank, data/share.c).
 * After planning the columns from the header, the reader calls locate with
 * its planning outcome (plan_rc, so that every rank takes part in the same
 * collectives even when one failed), its open descriptor and the line of
 * the first data row; locate returns this rank's bytes [begin, end), which
 * start at the start of a line, and the line number of begin. *rows gets
 * the data rows of the share (kept by --min-value or not). A share may be
 * empty: the caller checks the whole. */
typedef struct cofi__share_locator {
  void *ctx;
  int (*locate)(void *ctx, int plan_rc, int fd, uint64_t data_line, uint64_t *begin,
                uint64_t *end, uint64_t *first_line, cofi_diag *diag);
  uint64_t *rows;
} cofi__share_locator;
int cofi__dataset_read_share(const char *path, const cofi_read_options *opt,
                             const cofi__share_locator *share, cofi_dataset **out,
                             cofi_diag *diag);
/* A time field as the reader parses it: integer unix seconds (a fraction
 * dropped) or ISO 8601 YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH[:]MM]. */
bool cofi__parse_time(const char *s, size_t n, int64_t *out);
/* ---- metadata maps (recommend/metadata_map.c) ------------------------- */
/* cofi_metadata_map_fit on raw item factors Y [n_items x k], fitting only
 * the items whose use[i] is true (use NULL: all). For evaluations whose
 * held-out items sit in the model's index space without interactions. */
int cofi__metadata_map_fit_rows(const float *Y, size_t n_items, uint32_t k, const bool *use,
                                const char *const *cats, const size_t *lens,
                                const size_t *offsets, const cofi_metadata_map_options *opt,
                                cofi_metadata_map **out, cofi_diag *diag);
/* A category's index in the map, or -1. */
int64_t cofi__metadata_map_category(const cofi_metadata_map *map, const char *s, size_t len);
/* The index of the metadata field `field` (NULL: "genres", else
 * "categories"); COFI_ERR_NOT_FOUND with diag listing the fields. */
int cofi__metadata_field_index(const cofi_model *m, const char *field, uint32_t *out,
                               cofi_diag *diag);
/* Every item's value of the field split on '|' (empty parts and "(no
 * genres listed)" dropped) as fit's arrays, borrowing the model's bytes;
 * free the three with cofi__free. COFI_OK or COFI_ERR_NOMEM. */
int cofi__metadata_split_field(const cofi_model *m, uint32_t field, const char ***cats,
                               size_t **lens, size_t **offsets);

/* ---- sparse matrices --------------------------------------------------- */
/* CSR: row r has columns indices[indptr[r] .. indptr[r+1]), sorted
 * ascending, unique, with data[] their summed values.
 *
 *   indptr  [0 | 2 | 2 | 5]        rows 0..2
 *   indices [3 7 | | 0 1 9]
 *   data    [1 2 | | 1 1 3]
 */
typedef struct cofi__csr {
  uint32_t n_rows, n_cols;
  uint64_t nnz;
  uint64_t *indptr;  /* [n_rows+1] */
  uint32_t *indices; /* [nnz] */
  float *data;       /* [nnz] */
  bool borrowed;
} cofi__csr;

/* Builds the user x item CSR from the dataset (sums duplicates). */
int cofi__csr_from_dataset(const cofi_dataset *ds, cofi__csr *out);
/* The CSR of n (row, col, value) triples (duplicates summed in the order
 * the shell sort of each row leaves them: rows with the same triples in the
 * same order give the same bits). */
int cofi__csr_from_triplets(uint32_t rows, uint32_t cols, size_t n, const uint32_t *r,
                            const uint32_t *c, const float *v, cofi__csr *out);
/* The transpose (item x user), rows sorted. */
int cofi__csr_transpose(const cofi__csr *a, cofi__csr *out);
void cofi__csr_free(cofi__csr *a);
uint64_t cofi__csr_fingerprint(const cofi__csr *a);

/* ---- models ------------------------------------------------------------ */
struct cofi_model {
  uint32_t n_users, n_items, factors;
  float *user_factors; /* [n_users x factors], 64-byte aligned */
  float *item_factors; /* [n_items x factors], 64-byte aligned */
  cofi__idmap users, items;
  cofi__csr user_items; /* training matrix, to filter seen items */
  cofi__itemmeta meta;
  cofi_params params;
  uint64_t created_unix, data_fingerprint, file_bytes, checksum;
  uint64_t content_checksum; /* blind to the run (model_file.c), 0 if not from a file */
  double train_seconds, train_loss;
  char cofi_version[16];
  uint32_t train_ranks; /* processes that trained it (MPI ranks); 1 otherwise */
  /* Derived at train/open time (owned): */
  float *item_gram;  /* [k x k] alpha0 * Y^T Y, for fold-in */
  float *item_norms; /* [n_items] |y_i|, for cosine similarity */
  float *user_norms; /* [n_users] |x_u| */
  float item_norm_max; /* max |y_i| */
  /* Confidence transform (train/confidence.c): BM25's mean user row sum
   * (stored in META) and idf per item (derived, NULL unless BM25). */
  double conf_mean_rowsum;
  float *item_idf;
  /* int8 copy of the item factors for bounded approximate scoring, or NULL
   * (model/panel.c; used by recommend/prune.c). */
  struct cofi__qpanel *item_q8;
  /* EASE and item-kNN (params.model; factors is 0 and the factor arrays
   * NULL for them). Owned when trained, borrowed from the mapping when
   * opened. */
  float *ease_weights;  /* EASE: [n_items x n_items] B, row-major, diag 0 */
  cofi__csr neighbors;  /* item-kNN: item x item, row i = i's neighbours
                           (ascending index), data = similarity */
  uint32_t *seen_ranks; /* [nnz] beside user_items when params.recency > 0:
                           each pair's rank in its user's row, newest 0
                           (train/recency.c); NULL otherwise */
  /* Storage: either owned allocations (trained) or a mapping (opened). */
  void *map;
  size_t map_len;
  bool map_is_malloc; /* map came from cofi__aligned_alloc (open_memory) */
};

/* The int8 copy of the item factors for the pruned search, in blocks of
 * 16 items by decreasing norm (model/panel.c describes the layout). */
struct cofi__qpanel {
  uint32_t groups; /* factors padded to 16, over 4 */
  size_t blocks;   /* ceil(n_items / 16) */
  int8_t *q;       /* [blocks x groups x 64], see above */
  int32_t *qsum;   /* [16 blocks] sum_j q_ij */
  float *scale;    /* [16 blocks] s_i */
  float *err;      /* [16 blocks] E_i, rounded up */
  float *l1;       /* [16 blocks] |y_i|_1, rounded up */
  float *norm;     /* [16 blocks] |y_i| (the model's item norms, padded) */
  uint32_t *item_at; /* [n_items] the item at each panel position */
  uint32_t *pos_of;  /* [n_items] the panel position of each item */
};
/* Norms at or beyond this could overflow a product of two of them: no
 * panel, no pruning. */
#define COFI__PRUNE_NORM_LIMIT 0x1p60f
/* Builds m->item_q8 (no-op when present, or when the factor norms are too
 * large for the bound). COFI_OK or COFI_ERR_NOMEM. */
int cofi__model_build_panel(cofi_model *m);
void cofi__model_free_panel(cofi_model *m);
/* The item at each panel position. */
const uint32_t *cofi__panel_order(const cofi_model *m);
/* Quantizes v[0..k) to q with one scale: returns the scale (0 for a zero
 * vector); *err >= max |v_j - scale q_j| and *l1 >= |v|_1. */
float cofi__quantize(const float *v, uint32_t k, int8_t *q, float *err, float *l1);
/* The float at or above x. */
float cofi__round_up(double x);

/* A model with everything empty; factors allocated by the trainer. */
int cofi__model_new(cofi_model **out);
/* Computes the derived arrays (gram, norms) once factors are in place. */
int cofi__model_prepare(cofi_model *m);
/* The end of every training (ID maps, metadata, parameters, creation time,
 * fingerprint, then cofi__model_prepare); model.c. */
int cofi__model_finish(cofi_model *m, const cofi_dataset *ds, const cofi_params *p);

/* ---- EASE and item-kNN (train/item_models.c, ease.c, itemknn.c) ------ */
/* cofi_train for p->model != ALS: the shared steps (matrix, confidence,
 * IDs, metadata, times) around cofi__ease_fit / cofi__itemknn_fit. consume
 * as for cofi_train_release. */
int cofi__train_item_model(const cofi_dataset *ds, cofi_dataset *consume,
                           const cofi_params *p, cofi_model **out, cofi_diag *d);
/* B from the user x item matrix R (binarized: every stored pair counts 1).
 * *B: [n_items x n_items], cofi__aligned_alloc. Errors: COFI_ERR_INVALID
 * (over p->max_memory; diag gives the sizes), COFI_ERR_NUMERIC,
 * COFI_ERR_NOMEM. */
int cofi__ease_fit(const cofi__csr *R, const cofi_params *p, float **B, cofi_diag *d);
/* The item x item neighbour matrix of R (values are the weights). */
int cofi__itemknn_fit(const cofi__csr *R, const cofi_params *p, cofi__csr *out,
                      cofi_diag *d);
/* Copies for a model to own. */
int cofi__idmap_copy(const cofi__idmap *src, cofi__idmap *dst);
int cofi__strtab_copy(const cofi__strtab *src, cofi__strtab *dst);

/* Scores of every item for a history under a non-ALS model: the sum of
 * w times the item rows (EASE: B's rows, item-kNN: the neighbour rows);
 * w = NULL: 1 each. The weights come from cofi__user_history or
 * cofi__given_history_weights. scores: [n_items], overwritten. */
void cofi__history_scores(const cofi_model *m, const uint32_t *items, const float *w,
                          size_t n, float *scores);
/* cofi_recommend_user and cofi_similar_items for EASE and item-kNN
 * (arguments checked by the callers). */
int cofi__recommend_user_items(const cofi_model *m, cofi_workspace *ws, uint32_t user,
                               const cofi_recommend_options *opt, cofi_scored *out,
                               size_t *n_out);
int cofi__similar_items_items(const cofi_model *m, cofi_workspace *ws, uint32_t item,
                              uint32_t k, cofi_scored *out, size_t *n_out);
/* Top-k of ws->scores over the whole catalog with seen and opt's
 * exclusions dropped (item_queries.c). */
int cofi__select_from(const cofi_model *m, cofi_workspace *ws, const uint32_t *seen,
                      size_t n_seen, const cofi_recommend_options *opt, uint32_t k,
                      cofi_scored *out, size_t *n_out);
/* Recency (train/recency.c, cofi_params.recency). The rank of every
 * training pair in its user's row by time, newest 0: *out [ui->nnz]. */
int cofi__recency_ranks(const cofi_dataset *ds, const cofi__csr *ui, uint32_t **out);
/* 2^(-rank / half_life); 1 when half_life is 0. */
float cofi__recency_weight(float half_life, uint32_t rank);
/* A known user's items and their weights: the training weight (EASE: 1,
 * it is fitted on binarized data) times the recency weight; w gets n
 * floats (n <= n_items). Returns n. */
size_t cofi__user_history(const cofi_model *m, uint32_t user, const uint32_t **items, float *w);
/* The weights of a given history of raw values (NULL: 1 each): the
 * model's confidence transform (EASE: 1), times the recency weight by
 * position when the history is in time order (oldest first). */
void cofi__given_history_weights(const cofi_model *m, const uint32_t *items, const float *raw,
                                 size_t n, bool in_time_order, float *w);
/* One user row against m's item factors (fold_in_row.c): the ALS user
 * half-step with m's parameters for weights w already through the
 * confidence transform. scratch: cofi__solve_row_scratch(k) floats. */
int cofi__fold_in_row(const cofi_model *m, const uint32_t *items, const float *w, size_t n,
                      float *vec, float *scratch);
/* cofi_fold_in for a history in time order (oldest first: recency
 * weights by position, when the model has a half-life) or not (a set, as
 * the held-out users' fold-in rows of an evaluation: no recency). */
int cofi__fold_in_given(const cofi_model *m, cofi_workspace *ws, const uint32_t *items,
                        const float *values, size_t n, bool in_time_order, float *vec);
/* ALS with a recency half-life: every user's vector re-fitted to their
 * training row, each weight times its recency weight (train/recency.c),
 * from m->seen_ranks; then the user norms again. */
int cofi__recency_refit_users(cofi_model *m, uint32_t threads);
/* True for ALS models (factors); the factor-only functions refuse others. */
static inline bool cofi__is_als(const cofi_model *m) { return m->params.model == COFI_MODEL_ALS; }

/* ---- kernels ----------------------------------------------------------- */
/* The dense kernels are their own layer (src/kernels/): cofi__dot,
 * cofi__rows, cofi__k_* and the run-time choice of instruction set. */
#include "kernels/kernels.h"

/* ---- ALS --------------------------------------------------------------- */
/* The least-squares problem of one row (a user given the item factors, or
 * an item given the user factors):
 *   (alpha0 Y^T Y + sum_i (c_i - alpha0) y_i y_i^T + lambda I) x = sum_i c_i y_i
 * with c_i = 1 + alpha * r_i over the row's observed columns i. */
typedef struct cofi__row_problem {
  const float *gram; /* [k x k] alpha0 * Y^T Y, full symmetric */
  const float *Y;    /* [n_other x k] fixed factors */
  uint32_t k;
  float alpha, alpha0;
  float lambda;      /* base lambda; scaled per row when nu > 0 */
  float nu;          /* iALS frequency exponent (0 = classic) */
  uint32_t n_other;  /* rows of Y (for lambda scaling) */
  cofi_solver solver;
  uint32_t cg_steps;
  size_t gram_ld;      /* row stride of gram in floats; 0 = k */
  size_t gather_rows;  /* CG first gathers the factor vectors of rows with
                          up to this many nonzeros into the scratch (0 =
                          never); see cofi__solve_row_scratch_gather */
} cofi__row_problem;

/* Solves one row in place: x holds the warm start (CG) and receives the
 * solution. scratch: cofi__solve_row_scratch(k) floats, 64-byte aligned.
 * COFI_ERR_NUMERIC when the system is singular (Cholesky, lambda = 0). */
int cofi__solve_row(const cofi__row_problem *pr, const uint32_t *cols,
                    const float *vals, size_t n, float *x, float *scratch);
size_t cofi__solve_row_scratch(uint32_t k);
/* Scratch floats for a problem with gather_rows set. */
size_t cofi__solve_row_scratch_gather(uint32_t k, size_t gather_rows);
/* The row's regularization: lambda * (n + alpha0 * n_other)^nu. */
float cofi__row_lambda(const cofi__row_problem *pr, size_t n);
/* The objective of X, Y on r (users x items), normalized like implicit's
 * calculate_loss: divided by (sum of confidences + unobserved pairs). */
double cofi__als_loss(const cofi__csr *r, const float *X, const float *Y,
                      uint32_t k, const cofi_params *p);

/* ---- distributed training ----------------------------------------------
 * The trainer knows nothing of MPI: a caller that runs it on several
 * processes (src/dist/mpi.c, for `mpirun cofi train`) passes these
 * collectives. Each rank reads its share of the input (cofi__share_read or
 * a store share), cofi__dist_build distributes the matrix by the rows each
 * rank solves, and cofi__train_dist_matrix trains; allgather_rows makes the
 * factor matrices whole again after each half-sweep. The result is
 * bit-identical to cofi_train's on the whole input (docs/mpi.md). */
typedef struct cofi__comm {
  uint32_t rank, size;
  void *ctx;
  /* Rows [first[r], first[r+1]) of X (width k floats) are rank r's; on
   * entry this rank's are current, on return every rank's are. */
  int (*allgather_rows)(void *ctx, float *X, const uint32_t *first, uint32_t k);
  /* v[0..n) becomes the element-wise maximum over the ranks. */
  int (*allreduce_max)(void *ctx, int64_t *v, size_t n);
  /* The input exchanges (distributing the data before training; counted
   * apart from the training's bytes). allgatherv: every rank's n bytes at
   * mine, concatenated in rank order into *all (cofi__malloc, the caller
   * frees), counts[r] the bytes of rank r. alltoallv: send holds
   * send_counts[r] bytes for each rank r in rank order; *recv (cofi__malloc)
   * gets recv_counts[r] bytes from each rank r in rank order; counts are
   * multiples of unit, the size of one element. allreduce_sum: v[0..n)
   * becomes the element-wise sum over the ranks. */
  int (*allgatherv)(void *ctx, const void *mine, size_t n, void **all, size_t *counts);
  int (*alltoallv)(void *ctx, const void *send, const size_t *send_counts, size_t unit,
                    void **recv, size_t *recv_counts);
  int (*allreduce_sum)(void *ctx, uint64_t *v, size_t n);
} cofi__comm;

/* A training set already distributed over the ranks (train/dist_input.c):
 * the global ID maps (ds, without rows), this rank's user rows of the
 * user x item matrix and its item rows of the transpose (full row counts,
 * the other ranks' rows empty), confidence applied, and the partitions
 * first_u / first_i [size + 1] (rank r solves users first_u[r] ..
 * first_u[r+1]). */
typedef struct cofi__dist_matrix {
  cofi_dataset *ds;
  cofi__csr R, Rt;
  uint32_t *first_u, *first_i;
  uint64_t interactions; /* rows kept, all ranks */
  uint64_t nnz;          /* distinct user-item pairs, all ranks */
  uint64_t max_row;      /* the longest row of R or Rt, all ranks */
  /* The halo, for the cost model of exchanging only what a rank needs
   * (docs/mpi.md): [0] items this rank's users touch that another rank
   * solves, [1] users this rank's items touch that another rank solves;
   * halo_all the sums over the ranks. */
  uint64_t halo[2], halo_all[2];
  double conf_mean_rowsum; /* bm25's mean row sum (the model keeps it) */
} cofi__dist_matrix;
void cofi__dist_matrix_free(cofi__dist_matrix *dm);

/* A share of a store's events for `mpirun cofi train --store`
 * (store/store.c; SQLite and PostgreSQL): the bounds of seq, and the
 * events with lo < seq <= hi read as cofi_store_read_dataset reads them
 * (without item metadata; a share may be empty; *rows: events read, kept
 * or not). cofi__store_read_item_meta adds the store's titles and fields
 * of ds's items (ds's own item map). */
int cofi__store_seq_bounds(cofi_store *s, int64_t *lo, int64_t *hi, cofi_diag *diag);
int cofi__store_read_share(cofi_store *s, const cofi_read_options *opt, int64_t lo, int64_t hi,
                           cofi_dataset **out, uint64_t *rows, cofi_diag *diag);
int cofi__store_read_item_meta(cofi_store *s, cofi_dataset *ds, cofi_diag *diag);

/* Reads this rank's byte range of the CSV at path (every rank calls it):
 * the ranks split the data bytes evenly at line starts, number lines as
 * the file does, and agree on the outcome (an error on any rank: every rank
 * returns one, the failing rank with the file and line). *out holds the
 * share's rows with IDs in first-appearance order within the share. */
int cofi__share_read(const char *path, const cofi_read_options *opt, const cofi__comm *comm,
                     cofi_dataset **out, uint64_t *rows, cofi_diag *d);
/* Makes the ID maps global (first appearance in file order: the one-process
 * maps), partitions users and items by work and sends every interaction
 * to the rank that solves its user, then every merged pair to the rank
 * that solves its item. Consumes local (freed). */
int cofi__dist_build(cofi_dataset *local, uint64_t rows, const cofi_read_options *opt,
                     const cofi_params *p, const cofi__comm *comm, cofi__dist_matrix *out,
                     cofi_diag *d);
/* Rank 0 gets every rank's rows of R (a whole user x item matrix in *full);
 * the other ranks send theirs and get an empty *full. */
int cofi__dist_gather_rows(const cofi__comm *comm, const cofi__csr *R, const uint32_t *first,
                           cofi__csr *full);
/* Training on a distributed matrix (cofi__dist_build): bit-identical to
 * cofi_train on the whole file. Consumes dm's matrices. */
int cofi__train_dist_matrix(cofi__dist_matrix *dm, const cofi_params *params,
                            const cofi__comm *comm, cofi_model **out, cofi_diag *d);

/* ---- top-K ------------------------------------------------------------- */
/* Keeps the k best (score desc, index asc) of a stream of candidates. */
typedef struct cofi__topk {
  cofi_scored *heap; /* [k] min-heap on (score, -index) */
  size_t k, n;
} cofi__topk;

static inline bool cofi__better(float sa, uint32_t ia, float sb, uint32_t ib) {
  return sa > sb || (sa == sb && ia < ib);
}
void cofi__topk_init(cofi__topk *t, cofi_scored *heap, size_t k);
void cofi__topk_push(cofi__topk *t, uint32_t index, float score);
/* Sorts the kept entries best first into t->heap; returns the count. */
size_t cofi__topk_finish(cofi__topk *t);
/* Top-k over scores[0..n) skipping entries equal to -INFINITY. */
size_t cofi__topk_scores(const float *scores, size_t n, size_t k,
                         cofi_scored *out);

/* ---- top-k for one vector ----------------------------------------------- */
/* Every item scored (cofi__k_gemv), excluded ones dropped, partial
 * selection: the reference the pruned search must equal, and the path
 * taken when it does not apply. k >= 1, at most n_items. */
int cofi__recommend_exact(const cofi_model *m, cofi_workspace *ws, const float *vec,
                          const uint32_t *seen, size_t n_seen, const uint32_t *exclude,
                          size_t n_exclude, uint32_t k, cofi_scored *out, size_t *n_out);

/* ---- pruned top-k (recommend/prune.c) ---------------------------------- */
/* Top-k of vec . y_i over the items not in seen/exclude, identical to the
 * exact path (scores and order), through int8 approximate scores and a
 * proven error bound. COFI__PRUNE_SKIP (nothing written) when the model
 * has no panel or the bound does not apply; COFI_ERR_NOMEM. k >= 1, at
 * most n_items. */
#define COFI__PRUNE_SKIP 1
/* Whether pruning pays for k of n items: while 16 k <= n. At k = n/16
 * both ways cost the same (ml-latest-small, k = 400: 98 against 102 us);
 * past it the heap work grows faster than the exact path's. The public
 * calls ask this; the pruned calls themselves work for any k. */
bool cofi__prune_pays(uint32_t k, uint32_t n);
int cofi__recommend_pruned(const cofi_model *m, cofi_workspace *ws, const float *vec,
                           const uint32_t *seen, size_t n_seen, const uint32_t *exclude,
                           size_t n_exclude, uint32_t k, cofi_scored *out, size_t *n_out);
/* The step inside, over panel positions (items by norm descending;
 * cofi__panel_order gives the item at each): bounds lo[p] <= the exact
 * score of vec . y_item(p) <= hi[p] (-inf both for excluded items) for the
 * first *n_scanned positions, and *T, the k-th largest lo (k = 0: scan
 * all, T = -inf). No item past *n_scanned can score T or more. lo may be
 * NULL; hi: [n_items rounded up to 16]. COFI_OK, COFI__PRUNE_SKIP or
 * COFI_ERR_NOMEM. */
int cofi__prune_bounds(const cofi_model *m, cofi_workspace *ws, const float *vec,
                       const uint32_t *seen, size_t n_seen, const uint32_t *exclude,
                       size_t n_exclude, uint32_t k, float *lo, float *hi, float *T,
                       size_t *n_scanned);
/* The want most similar items to item query by cosine, the query left
 * out: identical to the exact path of cofi_similar_items (every cosine
 * computed), through the same bounds divided by the same denominators.
 * COFI__PRUNE_SKIP when there is no panel or the bound does not apply;
 * COFI_ERR_NOMEM. want <= n_items - 1. */
int cofi__similar_items_pruned(const cofi_model *m, cofi_workspace *ws, uint32_t query,
                               uint32_t want, cofi_scored *out, size_t *n_out);

/* ---- batch recommend --------------------------------------------------- */
/* Top-k items for each of n users (users[i], or users 0..n-1 when users is
 * NULL) by blocked matrix products with the top-k selection fused in (see
 * recommend/batch.c). filter_seen drops each user's training items.
 * out: [n x k], user i's results at out + i k, best first (score
 * descending, index ascending); n_out: [n] how many each (fewer than k
 * when the catalog is smaller). threads: 0 = all cores; the results do not
 * depend on it. Scores are summed in another order than
 * cofi_recommend_user's, so they may differ in the last bits.
 * COFI_ERR_INVALID (k = 0), COFI_ERR_NOT_FOUND (a user out of range),
 * COFI_ERR_NOMEM. */
int cofi__recommend_batch(const cofi_model *m, const uint32_t *users, size_t n, uint32_t k,
                          int filter_seen, uint32_t threads, cofi_scored *out,
                          uint32_t *n_out);

/* ---- workspace --------------------------------------------------------- */
struct cofi_workspace {
  float *scores;  size_t scores_cap;  /* aligned */
  float *scratch; size_t scratch_cap; /* aligned */
  float *vec;     /* [COFI_MAX_FACTORS] aligned: the folded-in vector of
                     cofi_recommend_history, allocated at its first use */
  cofi_scored *heap; size_t heap_cap;
  uint32_t *cand;  size_t cand_cap;   /* candidates of the pruned search */
  uint16_t *skip;  size_t skip_cap;   /* its excluded items, a bit each */
};
int cofi__ws_reserve(cofi_workspace *ws, size_t n_scores, size_t n_scratch,
                     size_t n_heap);

/* ---- confidence transforms (train/confidence.c) ------------------------- */
/* Replaces R's summed values by the weights of p->confidence; for BM25
 * *mean_rowsum gets the mean row sum of the raw values (else 0). */
int cofi__confidence_apply(const cofi_params *p, cofi__csr *R, double *mean_rowsum);
/* BM25 on rows [r0, r1) of R from the whole matrix's statistics: df[i]
 * the pairs of item i, mean_rowsum the mean row sum (a distributed matrix,
 * train/dist_input.c); the same arithmetic per value as
 * cofi__confidence_apply. */
void cofi__confidence_bm25_rows(const cofi_params *p, cofi__csr *R, uint32_t r0, uint32_t r1,
                                const uint64_t *df, double mean_rowsum);
/* BM25's length normalization of a row. */
double cofi__bm25_len_norm(const cofi_params *p, double mean_rowsum, double rowsum);
/* Derives m->item_idf for a BM25 model (no-op otherwise). */
int cofi__confidence_prepare(cofi_model *m);
/* Weights w[0..n) of a cold-start history of raw values (NULL: 1 each),
 * transformed as training did. */
void cofi__confidence_history(const cofi_model *m, const uint32_t *items, const float *raw,
                              size_t n, float *w);

/* ---- misc --------------------------------------------------------------- */
double cofi__now(void); /* monotonic seconds */
uint32_t cofi__threads(uint32_t requested); /* 0 -> all cores */

#endif

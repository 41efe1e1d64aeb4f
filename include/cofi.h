/*
 * cofi.h — the public C API of cofi, an implicit-feedback recommender.
 *
 * The nouns: a dataset (interactions read from a file), parameters (plain
 * struct, start from cofi_params_default()), a model (trained or opened from
 * a model file), a workspace (per-thread scratch for recommending).
 * The verbs: read, train, save, open, recommend, fold in, similar, evaluate.
 *
 * Conventions (stated once, valid for every function below):
 * - Errors: functions return COFI_OK (0) or a negative cofi_error code.
 *   Functions that take a `cofi_diag *` fill it (when non-NULL) with a
 *   human-readable message and, for input files, the file and line.
 *   The library never prints and never exits.
 * - Ownership: the caller owns what it passes in. Objects returned through an
 *   out parameter are freed with the matching _free/_close function, which
 *   accepts NULL. Accessors return borrowed pointers valid until the owning
 *   object is freed/closed. Strings are NOT NUL-terminated unless stated: a
 *   length comes with each.
 * - Threads: a cofi_model is immutable after train/open and safe for any
 *   number of concurrent readers. A cofi_workspace belongs to one thread.
 * - Out of memory: every allocating call returns COFI_ERR_NOMEM and leaks
 *   nothing; no call aborts.
 * - Indices: users and items have dense indices 0..n-1 inside a model or
 *   dataset; IDs are opaque byte strings kept exactly as given.
 */
#ifndef COFI_H
#define COFI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* COFI_VERSION ("MAJOR.MINOR.PATCH") and COFI_VERSION_MAJOR/_MINOR/_PATCH:
 * the version this header belongs to, generated from the build's
 * project(VERSION). Semantic versioning; the model file format has its own
 * version (docs/model-file.md). */
#include "cofi_version.h"

/* The library's version at run time ("MAJOR.MINOR.PATCH"), which may differ
 * from COFI_VERSION when a program runs against a newer shared library. */
const char *cofi_version(void);

/* ---- errors ------------------------------------------------------------ */

/* X(name, code, message): one table generates enum, names and messages. */
#define COFI_ERROR_TABLE(X)                                                   \
  X(OK, 0, "success")                                                         \
  X(ERR_NOMEM, -1, "out of memory")                                           \
  X(ERR_IO, -2, "input/output error")                                         \
  X(ERR_INVALID, -3, "invalid argument")                                      \
  X(ERR_PARSE, -4, "malformed input data")                                    \
  X(ERR_EMPTY, -5, "no usable data")                                          \
  X(ERR_NOT_MODEL, -6, "not a cofi model file")                               \
  X(ERR_VERSION, -7, "model format version not supported")                    \
  X(ERR_CORRUPT, -8, "model file is corrupted")                               \
  X(ERR_NOT_FOUND, -9, "not found")                                           \
  X(ERR_NUMERIC, -10, "numerical failure (NaN or infinity)")                  \
  X(ERR_CANCELLED, -11, "cancelled")                                          \
  X(ERR_STORE, -12, "the store (database) failed or is unreachable")

typedef enum cofi_error {
#define COFI__ENUM(name, code, msg) COFI_##name = code,
  COFI_ERROR_TABLE(COFI__ENUM)
#undef COFI__ENUM
} cofi_error;

/* Stable code word ("ERR_CORRUPT" -> "corrupt") and message for an error. */
const char *cofi_error_name(int code);
const char *cofi_error_message(int code);

/* ---- kernels ----------------------------------------------------------- */

/* The kernel set this process runs: "avx512", "avx2", "generic" (portable
 * vector code: NEON on aarch64) or "reference". The best one the CPU
 * supports is chosen at first use; the environment variable COFI_KERNELS
 * forces a lower one. Models trained under different sets may differ in
 * the last bits; under one set training is deterministic for any thread
 * count. */
const char *cofi_kernel_set(void);
/* NULL, or why COFI_KERNELS was not followed (an unknown name, or a set
 * this CPU cannot run): the best set runs then. The library never prints
 * it; the CLI refuses to start. */
const char *cofi_kernel_set_refused(void);

/* Detail for people; the return code is the contract. */
typedef struct cofi_diag {
  char file[256];    /* input file concerned, "" if none */
  uint64_t line;     /* 1-based line in that file, 0 if not about a line */
  char message[512]; /* one line, no trailing newline */
} cofi_diag;

/* ---- reading data ------------------------------------------------------ */

typedef enum cofi_format {
  COFI_FORMAT_CSV = 0,       /* CSV/TSV with a header, columns by name */
  COFI_FORMAT_MOVIELENS = 1, /* ratings.csv, ratings.dat (::), u.data (tab) */
} cofi_format;

typedef struct cofi_event_weight {
  const char *event; /* NUL-terminated event name, e.g. "like" */
  float weight;
} cofi_event_weight;

typedef struct cofi_read_options {
  cofi_format format;
  /* Column names. NULL means "the default name, optional where the column
   * is optional"; a non-NULL name must exist in the header. Defaults:
   * user_id, item_id, value, event, timestamp. user and item are required. */
  const char *user_col;
  const char *item_col;
  const char *value_col;
  const char *event_col;
  const char *time_col;
  char delimiter; /* 0: auto (tab if the header has a tab, else comma) */
  /* Weight per event type; NULL: watch=1, like=2, complete=3. An event
   * missing from the table is an error naming it. */
  const cofi_event_weight *event_weights;
  size_t n_event_weights;
  /* Keep rows whose value is >= min_value; has_min_value=0 keeps all.
   * With COFI_FORMAT_MOVIELENS and has_min_value, kept ratings become
   * binary positives (value 1), as the seeds do. */
  int has_min_value;
  double min_value;
  /* COFI_FORMAT_CSV only: the file has no header; the first line is data.
   * The column options are then 1-based column numbers ("1", "2", ...);
   * defaults: user "1", item "2", no value, event or time column. Every
   * row must have as many fields as the first. */
  int no_header;
} cofi_read_options;

cofi_read_options cofi_read_options_default(void);

typedef struct cofi_dataset cofi_dataset;

/* Reads interactions. The value of a row is (value column, or 1) times (the
 * event's weight, or 1). Rows for the same user-item pair are summed when
 * the training matrix is built. Errors: COFI_ERR_IO, COFI_ERR_PARSE (diag
 * names file, line and problem), COFI_ERR_EMPTY, COFI_ERR_INVALID. */
int cofi_dataset_read(const char *path, const cofi_read_options *opt,
                      cofi_dataset **out, cofi_diag *diag);

/* The same from a descriptor open for reading: a pipe or a terminal is
 * fine (the file is read once, front to back). The caller keeps fd; name
 * (NULL: "<descriptor>") is used in messages. `cofi train -` reads
 * standard input this way. */
int cofi_dataset_read_fd(int fd, const char *name, const cofi_read_options *opt,
                         cofi_dataset **out, cofi_diag *diag);

/* Joins item metadata (CSV/TSV with a header, RFC 4180 quoting) by item ID.
 * id_col: NULL = first column. Every other column is kept; a column named
 * "title" (or else the second column) is the title. Items of the file
 * without interactions are ignored. */
int cofi_dataset_read_items(cofi_dataset *ds, const char *path,
                            const char *id_col, cofi_diag *diag);
/* The same from a descriptor (as cofi_dataset_read_fd). */
int cofi_dataset_read_items_fd(cofi_dataset *ds, int fd, const char *name,
                               const char *id_col, cofi_diag *diag);

/* One line for people saying which column of the file was used as what
 * and which were ignored, e.g. "used 'user_id' (user), 'item_id' (item),
 * 'action' (event, recognised by its values; default weights watch=1,
 * like=2, complete=3); ignored 'device'". NUL-terminated, borrowed; ""
 * for a dataset not read from a file.
 *
 * The event column: --event-col names it; else a column named "event";
 * else a column named action, event_type, type, interaction or event (in
 * any case; tried in that order) whose value on the first data row is an
 * event of the table (then every row must be one). Without an event column every row
 * weighs its value (or 1). */
const char *cofi_dataset_columns(const cofi_dataset *ds);

size_t cofi_dataset_n_users(const cofi_dataset *ds);
size_t cofi_dataset_n_items(const cofi_dataset *ds);
size_t cofi_dataset_n_interactions(const cofi_dataset *ds);
void cofi_dataset_free(cofi_dataset *ds);

/* ---- training ---------------------------------------------------------- */

typedef enum cofi_solver {
  COFI_SOLVER_CG = 0,       /* conjugate gradient, cg_steps per row */
  COFI_SOLVER_CHOLESKY = 1, /* exact solve */
} cofi_solver;

typedef struct cofi_progress {
  uint32_t iteration;  /* 1-based, just finished */
  uint32_t iterations; /* total planned */
  double seconds;      /* wall time of this iteration */
  double elapsed;      /* wall time since training started */
  double loss;         /* objective after it, NAN unless compute_loss */
  /* The current factors, borrowed for the duration of the callback (for
   * early stopping on a validation metric). */
  uint32_t n_users, n_items, factors;
  const float *user_factors; /* [n_users x factors] */
  const float *item_factors; /* [n_items x factors] */
} cofi_progress;

/* Called after each iteration; a non-zero return cancels training
 * (cofi_train then returns COFI_ERR_CANCELLED). */
typedef int (*cofi_progress_fn)(const cofi_progress *p, void *ctx);

/* How a user-item value r (the summed values of the pair) becomes the
 * weight w in the confidence c = 1 + alpha * w (docs/evaluation.md,
 * "Confidence transforms"). Applied when training, to the summed matrix;
 * the model stores the weights w as its training matrix, and cold-start
 * values (cofi_fold_in, cofi_explainer_new_history) are raw values r,
 * transformed the same way. */
typedef enum cofi_confidence {
  COFI_CONFIDENCE_LINEAR = 0, /* w = r (classic Hu et al.) */
  COFI_CONFIDENCE_LOG = 1,    /* w = log(1 + r / epsilon) (Hu et al. 2008, sec. 4) */
  COFI_CONFIDENCE_BM25 = 2,   /* implicit's bm25_weight on the user x item
                                 matrix (users are the documents):
                                 w = r (K1 + 1) / (K1 L_u + r) * idf_i,
                                 L_u = (1 - B) + B * rowsum_u / mean rowsum,
                                 idf_i = max(0, log(n_users) - log1p(users of i)) */
} cofi_confidence;

/* "linear", "log", "bm25"; NULL if out of range. */
const char *cofi_confidence_name(int confidence);

/* Which model cofi_train builds (docs/evaluation.md, "EASE and item-kNN"). */
typedef enum cofi_model_kind {
  COFI_MODEL_ALS = 0,     /* implicit ALS: user and item factors */
  COFI_MODEL_EASE = 1,    /* EASE (Steck 2019): dense item x item weights B,
                             closed form B = I - P diagMat(1/diag(P)),
                             P = (X^T X + lambda I)^-1, diag(B) = 0, on the
                             binarized user x item matrix X; a user's
                             scores are x_u B */
  COFI_MODEL_ITEMKNN = 2, /* item-kNN: the top `neighbors` item-item
                             similarities per item (sparse); a user's
                             scores are the sum, over the user's items, of
                             their weight times the item's neighbour row */
} cofi_model_kind;

/* "als", "ease", "itemknn"; NULL if out of range. */
const char *cofi_model_kind_name(int kind);

/* item-kNN similarity, as implicit's CosineRecommender, TFIDFRecommender
 * and BM25Recommender compute it, on the item x user matrix (items are the
 * documents, users the terms): */
typedef enum cofi_knn_weighting {
  COFI_KNN_COSINE = 0, /* cosine of the items' user columns */
  COFI_KNN_TFIDF = 1,  /* rows sqrt(r) * idf_u, L2-normalized, then dot;
                          idf_u = log(n_items) - log1p(items of u) */
  COFI_KNN_BM25 = 2,   /* r (K1 + 1) / (K1 L_i + r) * idf_u, then dot;
                          L_i = (1 - B) + B * rowsum_i / mean rowsum;
                          K1 = bm25_k1, B = bm25_b */
} cofi_knn_weighting;

/* "cosine", "tfidf", "bm25"; NULL if out of range. */
const char *cofi_knn_weighting_name(int weighting);

typedef struct cofi_params {
  uint32_t factors;     /* latent dimension, 1..COFI_MAX_FACTORS */
  float regularization; /* L2 weight lambda >= 0 */
  float alpha;          /* confidence c = 1 + alpha * w, alpha >= 0 */
  uint32_t iterations;  /* >= 1 */
  uint64_t seed;        /* initialisation seed */
  cofi_solver solver;
  uint32_t cg_steps;    /* CG steps per row per iteration, >= 1 */
  uint32_t threads;     /* 0 = all cores */
  /* iALS (Rendle et al. 2022): row regularization is
   * lambda * (n_row + alpha0 * n_other)^nu, and unobserved pairs weigh
   * alpha0. nu = 0, alpha0 = 1 is classic ALS. */
  float reg_exponent;     /* nu >= 0 */
  float unobserved_weight; /* alpha0 > 0 */
  int compute_loss;        /* report the objective every iteration */
  cofi_progress_fn progress;
  void *progress_ctx;
  /* The confidence transform (above) and its parameters. */
  cofi_confidence confidence; /* default LINEAR */
  float epsilon;              /* LOG: > 0, default 1 */
  float bm25_k1;              /* BM25: K1 >= 0, default 100 */
  float bm25_b;               /* BM25: B in [0, 1], default 0.8 */
  /* The model kind (above) and the parameters of EASE and item-kNN; ALS
   * ignores them. */
  cofi_model_kind model;      /* default ALS */
  float lambda;               /* EASE: L2 weight > 0, default 500 */
  uint64_t max_memory;        /* EASE: refuse when the item x item matrix
                                 (n_items^2 x 4 bytes) is larger; bytes,
                                 default 4 GiB, 0 = no limit. Not stored. */
  cofi_knn_weighting knn_weighting; /* item-kNN: default COSINE */
  uint32_t neighbors;         /* item-kNN: kept per item, 1..100000, default 100 */
  /* The history's half-life in items. A user's items are ordered by the
   * time of their latest event (ties, and data without time, in input
   * order); the r-th most recent (r = 0 for the newest) has its weight
   * scaled by 2^(-r / recency): in the sum of item rows of EASE and
   * item-kNN, and in the confidence 1 + alpha * w of ALS, whose user
   * vectors are re-fitted that way after training (and histories folded
   * in that way). 0 (default) = every item counts the same. In [0, 1e6]. */
  float recency;
} cofi_params;

#define COFI_MAX_FACTORS 1024

cofi_params cofi_params_default(void);

/* COFI_OK, or COFI_ERR_INVALID with a message naming the bad field. */
int cofi_params_check(const cofi_params *p, cofi_diag *diag);

typedef struct cofi_model cofi_model;

/* Trains implicit ALS on ds. Deterministic: the same data, params and seed
 * give bit-identical factors for any thread count. With the environment
 * variable SOURCE_DATE_EPOCH set, the stored creation time is that value and
 * the stored duration 0, so equal inputs give byte-identical model files. Errors: COFI_ERR_INVALID,
 * COFI_ERR_EMPTY, COFI_ERR_NOMEM, COFI_ERR_NUMERIC, COFI_ERR_CANCELLED. */
int cofi_train(const cofi_dataset *ds, const cofi_params *p, cofi_model **out,
               cofi_diag *diag);

/* The same, but releases ds's interaction rows (not its IDs or metadata)
 * as soon as the training matrix is built, which lowers peak memory by the
 * size of the rows (400 MB for a 20M-row log). Whatever it returns, ds then
 * holds no interactions: only free it (or read its user/item counts). */
int cofi_train_release(cofi_dataset *ds, const cofi_params *p, cofi_model **out,
                       cofi_diag *diag);

/* ---- the model file ---------------------------------------------------- */

/* Atomic save: temp file in the same directory, fsync, rename, fsync dir. */
int cofi_model_save(const cofi_model *m, const char *path, cofi_diag *diag);

/* Opens and fully validates a model file (size, magic, version, byte order,
 * section bounds, counts, checksums, index ranges), then maps it read-only.
 * Errors: COFI_ERR_IO, COFI_ERR_NOT_MODEL, COFI_ERR_VERSION, COFI_ERR_CORRUPT,
 * COFI_ERR_NOMEM. */
int cofi_model_open(const char *path, cofi_model **out, cofi_diag *diag);

/* The same from a descriptor open for reading (a regular file): maps it
 * read-only. name is used only in messages (NULL: "<descriptor>"). The
 * caller keeps fd and may close it at once; the mapping keeps the file.
 * cofi_model_open is open() + this + close().
 *
 * A mapped model reads the file's pages on demand: if the file is later
 * rewritten in place (same inode: `cp new old`, `cat > old`, truncation),
 * the model sees the new bytes, and touching a page past a new, shorter
 * end kills the process with SIGBUS. Replacing the file by rename is safe.
 * Use this when that cannot happen (the caller holds a read lease, as
 * `cofi serve` does), else cofi_model_read_fd.
 * Errors: those of cofi_model_open; a bad descriptor is COFI_ERR_IO. */
int cofi_model_open_fd(int fd, const char *name, cofi_model **out,
                       cofi_diag *diag);

/* The same, but reads the whole file (pread, from offset 0; the
 * descriptor's position is not used or moved) into memory owned by the
 * model, then validates it: later changes to the file cannot affect the
 * model, at the cost of the file's size in memory. A file that shrinks or
 * grows while it is read is COFI_ERR_CORRUPT ("truncated while being
 * read" / "grew while being read"), never a crash; a read error is
 * COFI_ERR_IO. Other errors as cofi_model_open. The caller keeps fd. */
int cofi_model_read_fd(int fd, const char *name, cofi_model **out,
                       cofi_diag *diag);

/* The same from a memory buffer (copied; the caller keeps buf). */
int cofi_model_open_memory(const void *buf, size_t len, cofi_model **out,
                           cofi_diag *diag);

void cofi_model_close(cofi_model *m);

typedef struct cofi_model_info {
  uint32_t n_users, n_items, factors;
  uint64_t nnz;            /* stored user-item pairs */
  cofi_params params;      /* as trained (callbacks NULL) */
  uint64_t created_unix;   /* seconds since the epoch */
  uint64_t data_fingerprint;
  uint64_t file_bytes;     /* 0 for a model not yet saved */
  uint64_t checksum;       /* of the file contents, 0 if not from a file */
  double train_seconds;
  double train_loss;       /* objective after the last iteration */
  char cofi_version[16];
  uint32_t n_item_fields;  /* metadata columns besides the ID */
  /* A checksum of what the model is, blind to how the run went: the file's
   * contents without the creation time, the training duration and the
   * cofi version (docs/model-file.md). Two trainings on the same data with
   * the same parameters and seed have the same one. 0 if not from a file. */
  uint64_t content_checksum;
} cofi_model_info;

void cofi_model_get_info(const cofi_model *m, cofi_model_info *out);
/* How many processes trained the model: the MPI ranks of `mpirun cofi
 * train` (docs/mpi.md), 1 for a one-process training and for files
 * written before cofi recorded it. A function, not a field of
 * cofi_model_info, so that the struct's size (the ABI) stays the same. */
uint32_t cofi_model_train_ranks(const cofi_model *m);

/* ID <-> index. Lookups return the index or -1 when unknown. */
int64_t cofi_model_find_user(const cofi_model *m, const char *id, size_t len);
int64_t cofi_model_find_item(const cofi_model *m, const char *id, size_t len);
const char *cofi_model_user_id(const cofi_model *m, uint32_t user, size_t *len);
const char *cofi_model_item_id(const cofi_model *m, uint32_t item, size_t *len);

/* Item metadata: field names and values (borrowed; "" when absent). */
const char *cofi_model_item_field_name(const cofi_model *m, uint32_t field,
                                       size_t *len);
const char *cofi_model_item_field(const cofi_model *m, uint32_t item,
                                  uint32_t field, size_t *len);
/* The title, or NULL when the model has no title field. */
const char *cofi_model_item_title(const cofi_model *m, uint32_t item,
                                  size_t *len);

/* Factor matrices: [n_users x factors] and [n_items x factors], row-major,
 * 64-byte aligned. Borrowed. */
const float *cofi_model_user_factors(const cofi_model *m);
const float *cofi_model_item_factors(const cofi_model *m);

/* Items a user interacted with in training (CSR row): indices sorted
 * ascending, with their summed values after the confidence transform
 * (the weights w trained on; the raw sums for a linear model). Borrowed. */
size_t cofi_model_user_items(const cofi_model *m, uint32_t user,
                             const uint32_t **items, const float **values);
/* The same items oldest first, by the time of their latest training event
 * (the order a recency half-life weighs, cofi_params.recency), into out
 * (room for the count cofi_model_user_items gives); a model without that
 * order (ALS, or EASE/item-kNN trained without a half-life) gives index
 * order. Returns the count (0 for a user out of range). */
size_t cofi_model_user_items_by_time(const cofi_model *m, uint32_t user, uint32_t *out);

/* Gives a model trained in this process (not one opened from a file) the
 * recency half-life `half_life` > 0 (cofi_params.recency) as training with
 * it would have: the ranks of its training pairs from ds, the dataset it
 * was trained on, then for ALS every user re-fitted (each re-fit starts
 * from the item factors, so calls with other half-lives can follow one
 * another). It costs one user half-step, far less than training: cofi tune
 * tries several half-lives on each trained model. Errors: COFI_ERR_INVALID
 * (an opened model, half_life not in (0, 1e6], ds not the training data),
 * COFI_ERR_NOMEM, COFI_ERR_NUMERIC. */
int cofi_model_set_recency(cofi_model *m, const cofi_dataset *ds, float half_life,
                           cofi_diag *diag);

/* ---- recommending ------------------------------------------------------ */

/* Per-thread scratch (score buffer, heap, fold-in system). Grows on demand;
 * reusing one across calls avoids allocation on the hot path. */
typedef struct cofi_workspace cofi_workspace;
cofi_workspace *cofi_workspace_new(void);
void cofi_workspace_free(cofi_workspace *ws);

typedef struct cofi_scored {
  uint32_t index; /* user or item index */
  float score;
} cofi_scored;

typedef struct cofi_recommend_options {
  uint32_t k;               /* wanted; clamped to the candidates there are */
  int filter_seen;          /* drop the user's training items (default 1) */
  const uint32_t *exclude;  /* extra item indices to drop, may be NULL */
  size_t n_exclude;
} cofi_recommend_options;

cofi_recommend_options cofi_recommend_options_default(void);

/* Top-k items for a known user, best first; ties broken by lower index.
 * out must hold opt->k entries; *n_out receives how many were written
 * (fewer than k when the catalog is smaller). The scores are the float32
 * dot products of the user's and the items' factors, exactly; most items
 * are ruled out from an int8 copy of the factors with a proven error
 * bound, so a call reads a fraction of the item factors (see
 * src/recommend/prune.c). Thread-safe on a shared model, one workspace
 * per thread. */
int cofi_recommend_user(const cofi_model *m, cofi_workspace *ws, uint32_t user,
                        const cofi_recommend_options *opt, cofi_scored *out,
                        size_t *n_out);

/* Top-k items for many known users at once: users[i] (or users 0..n-1
 * when users is NULL), by blocked matrix products with the top-k selection
 * fused in, on `threads` threads (0 = all cores); for exports and batch
 * jobs (`cofi recommend --all-users`). filter_seen drops each user's
 * training items. out: [n x k], user i's items at out + i k, best first
 * (ties by lower index); n_out: [n] how many each has (fewer than k when
 * the catalog is smaller). The result does not depend on the thread count.
 * Scores are summed in another order than cofi_recommend_user's, so they
 * may differ in the last bits. Errors: COFI_ERR_INVALID (k = 0),
 * COFI_ERR_NOT_FOUND (a user out of range), COFI_ERR_NOMEM. */
int cofi_recommend_users(const cofi_model *m, const uint32_t *users, size_t n, uint32_t k,
                         int filter_seen, uint32_t threads, cofi_scored *out,
                         uint32_t *n_out);

/* Top-k items for a history (cold start from liked items), for every kind
 * of model: items are item indices in time order (oldest first: with a
 * recency half-life, params.recency, the last ones weigh the most), values
 * their raw values (NULL = 1 each). ALS folds the history in (cofi_fold_in) and ranks by the vector
 * (cofi_recommend_vector); EASE sums the weight rows of the items (it
 * is trained on binarized data, so each listed item counts 1); item-kNN sums the items' neighbour rows weighted by their values after
 * the model's confidence transform. The history's items are not
 * recommended; opt->exclude is dropped too (opt->filter_seen is not used:
 * there is no known user). Errors: COFI_ERR_INVALID (n = 0, k = 0, a
 * non-finite or negative value), COFI_ERR_NOT_FOUND (an item out of
 * range), COFI_ERR_NUMERIC, COFI_ERR_NOMEM. */
int cofi_recommend_history(const cofi_model *m, cofi_workspace *ws, const uint32_t *items,
                           const float *values, size_t n, uint32_t k,
                           const cofi_recommend_options *opt, cofi_scored *out,
                           size_t *n_out);

/* The model's kind (cofi_model_kind). Functions that need factors
 * (cofi_fold_in, cofi_recommend_vector, cofi_similar_users, explainers,
 * the factor getters) answer COFI_ERR_INVALID, or NULL, for other kinds;
 * cofi_model_kind_error says why in words. */
cofi_model_kind cofi_model_kind_of(const cofi_model *m);
/* "<what> needs an ALS model; this model is ease" (static buffer per
 * thread). */
const char *cofi_model_kind_error(const cofi_model *m, const char *what);

/* Cold start: solves the user vector for the given items (values NULL = 1
 * each) by least squares against the fixed item factors, exactly as an ALS
 * user update does (implicit's recalculate_user). The values are raw: they
 * go through the model's confidence transform first, as training values
 * did. Items in time order, oldest first: a model with a recency half-life
 * (cofi_params.recency) scales the r-th from the end by 2^(-r/H), as its
 * users were fitted. vec holds `factors` floats. */
int cofi_fold_in(const cofi_model *m, cofi_workspace *ws, const uint32_t *items,
                 const float *values, size_t n, float *vec);

/* Top-k items for a user vector; `seen` items (may be NULL) are dropped. */
int cofi_recommend_vector(const cofi_model *m, cofi_workspace *ws,
                          const float *vec, const uint32_t *seen, size_t n_seen,
                          const cofi_recommend_options *opt, cofi_scored *out,
                          size_t *n_out);

/* ---- explaining ------------------------------------------------------- */

/* Why an item is recommended: its score split exactly into one
 * contribution per history item (Hu, Koren, Volinsky 2008, section 5; as
 * implicit's explain). An explainer holds the user's history and the
 * factored fold-in system, so explaining several items costs one
 * factorization: build it once per user, then call cofi_explain per item.
 * The explained score is that of the user's vector recalculated from the
 * history (equal to cofi_fold_in's); the contributions sum to it. An
 * explainer borrows the model and belongs to one thread. */
typedef struct cofi_explainer cofi_explainer;

typedef struct cofi_contribution {
  uint32_t item;       /* history item index */
  double contribution; /* its share of the score (may be negative) */
} cofi_contribution;

/* For a user of the model, from their training history.
 * Errors: COFI_ERR_NOT_FOUND (no such user), COFI_ERR_INVALID (no history),
 * COFI_ERR_NUMERIC (singular system: no regularization), COFI_ERR_NOMEM. */
int cofi_explainer_new_user(const cofi_model *m, uint32_t user, cofi_explainer **out);
/* For a history given as item indices with values (NULL = 1 each), as for
 * cofi_fold_in. Errors as above; COFI_ERR_NOT_FOUND for an item index out
 * of range, COFI_ERR_INVALID for a non-finite value. */
int cofi_explainer_new_history(const cofi_model *m, const uint32_t *items, const float *values,
                               size_t n, cofi_explainer **out);
void cofi_explainer_free(cofi_explainer *e);
/* Explains `item`: *score (may be NULL) gets the explained score; out gets
 * the `top` largest contributions (largest first, ties by item index) and
 * *n_out how many (at most the history length).
 * Errors: COFI_ERR_NOT_FOUND (item out of range), COFI_ERR_INVALID. */
int cofi_explain(cofi_explainer *e, uint32_t item, size_t top, cofi_contribution *out,
                 size_t *n_out, double *score);

/* Most similar items / users, the query itself excluded. ALS: cosine of
 * the factors. EASE (items only): the item's row of B, the items that
 * liking it raises most (what a one-item history recommends). item-kNN
 * (items only): the item's stored neighbours. cofi_similar_users needs an
 * ALS model (COFI_ERR_INVALID otherwise). */
int cofi_similar_items(const cofi_model *m, cofi_workspace *ws, uint32_t item,
                       uint32_t k, cofi_scored *out, size_t *n_out);
int cofi_similar_users(const cofi_model *m, cofi_workspace *ws, uint32_t user,
                       uint32_t k, cofi_scored *out, size_t *n_out);
/* The model's items most similar to a vector of `factors` floats that is
 * not one of them (a new item's, cofi_metadata_map_vector), best first,
 * ties by lower index: by cosine (center NULL), or, around center
 * (`factors` floats, e.g. cofi_metadata_map_mean), by projection:
 * (y_i - center) . (vec - center) / |vec - center|, how far an item departs
 * from the average item in the new item's direction (why:
 * src/recommend/similar_vector.c). Errors: COFI_ERR_INVALID (k = 0 or a
 * NULL argument), COFI_ERR_NOMEM. */
int cofi_similar_items_vector(const cofi_model *m, cofi_workspace *ws, const float *vec,
                              const float *center, uint32_t k, cofi_scored *out, size_t *n_out);

/* ---- new items from their metadata (src/recommend/metadata_map.c) ------ */
/* COFI-METADATA-MAP-API-BEGIN */
/*
 * An item without interactions has no factors. A metadata map learns, from
 * a trained ALS model's item factors and the items' categories (genres,
 * tags: any list of strings per item), a function from a list of
 * categories to a vector in the factor space, so that a new item can be
 * scored against user vectors and compared with the model's items before
 * any retraining (docs/evaluation.md, "New items from their metadata").
 *
 * Kinds (Y: the fitted items' factors, mean y: their mean, M: the items x
 * categories one-hot matrix, each category counted once per item):
 * - RIDGE: W = (M^T M + lambda I)^-1 M^T (Y - mean y), solved in double
 *   precision by Cholesky; a new item with categories S gets
 *   mean y + sum_{c in S} W_c.
 * - MEAN: per category c the mean y_c of the factors of the items having
 *   it; a new item gets the average of y_c over its categories.
 * Categories unknown to the map are ignored; an item with none known gets
 * mean y (and n_known = 0 says so).
 *
 * A map is computed, not stored: fitting costs one pass over the items'
 * categories plus a categories x categories solve (milliseconds for
 * ml-latest-small's 20 genres), so it is done at load time from the
 * freshest metadata. After fitting a map is immutable and safe for any
 * number of concurrent readers.
 */
typedef enum cofi_metadata_map_kind {
  COFI_METADATA_MAP_RIDGE = 0,
  COFI_METADATA_MAP_MEAN = 1,
} cofi_metadata_map_kind;

/* "ridge", "mean"; NULL if out of range. */
const char *cofi_metadata_map_kind_name(int kind);
/* The kind named s (len bytes), or -1. */
int cofi_metadata_map_kind_parse(const char *s, size_t len);

typedef struct cofi_metadata_map_options {
  cofi_metadata_map_kind kind; /* default RIDGE (the better one measured) */
  float lambda;                /* RIDGE: L2 weight, finite and > 0; default 1 */
} cofi_metadata_map_options;

cofi_metadata_map_options cofi_metadata_map_options_default(void);

/* RIDGE solves a system of one row per distinct category: at most this
 * many categories (a 4096 x 4096 double matrix is 128 MiB). */
#define COFI_METADATA_MAP_MAX_RIDGE_CATEGORIES 4096

typedef struct cofi_metadata_map cofi_metadata_map;

/* Fits a map from the model's item factors. Item i of the model has the
 * categories cats[offsets[i] .. offsets[i+1]) (lens: their byte lengths,
 * or NULL when every string is NUL-terminated); offsets: [n_items + 1],
 * offsets[0] = 0, non-decreasing. Items with no category take part in
 * the mean vector only. Errors: COFI_ERR_INVALID (bad options or offsets,
 * an empty category; RIDGE with more than
 * COFI_METADATA_MAP_MAX_RIDGE_CATEGORIES categories), COFI_ERR_EMPTY (no
 * item has a category), COFI_ERR_NUMERIC, COFI_ERR_NOMEM. */
int cofi_metadata_map_fit(const cofi_model *m, const char *const *cats, const size_t *lens,
                          const size_t *offsets, const cofi_metadata_map_options *opt,
                          cofi_metadata_map **out, cofi_diag *diag);

/* The same with the model's own item metadata: the field named `field`
 * (NULL: "genres", else "categories"), each value split on '|' (empty
 * parts and MovieLens's "(no genres listed)" ignored). COFI_ERR_NOT_FOUND
 * when the model has no such field (diag lists the fields it has). */
int cofi_metadata_map_fit_field(const cofi_model *m, const char *field,
                                const cofi_metadata_map_options *opt,
                                cofi_metadata_map **out, cofi_diag *diag);

/* The vector of an item with categories cats[0..n) (lens NULL: NUL-
 * terminated), written to out[0..factors). *n_known (may be NULL): how
 * many distinct categories the map knew (0: out is the mean item vector).
 * Thread-safe. Errors: COFI_ERR_INVALID (NULL out, or cats NULL with n > 0). */
int cofi_metadata_map_vector(const cofi_metadata_map *map, const char *const *cats,
                             const size_t *lens, size_t n, float *out, size_t *n_known);

uint32_t cofi_metadata_map_factors(const cofi_metadata_map *map);
/* The mean vector of the fitted items ([factors], borrowed). */
const float *cofi_metadata_map_mean(const cofi_metadata_map *map);
/* Distinct categories the map knows. */
size_t cofi_metadata_map_n_categories(const cofi_metadata_map *map);
cofi_metadata_map_kind cofi_metadata_map_get_kind(const cofi_metadata_map *map);
void cofi_metadata_map_free(cofi_metadata_map *map);
/* COFI-METADATA-MAP-API-END */
/* The new-items protocol (src/eval/new_items.c, docs/evaluation.md): a
 * seeded share of the items is held out of training entirely (metadata
 * kept), ALS (params p, seed opt->seed) trains on the rest, and each test
 * user (trained, with held-out items) ranks the held-out items only, by
 * each method; Recall@K and NDCG@K as cofi.h defines them, averaged. */
enum {
  COFI_NEW_ITEMS_RIDGE = 0,               /* user . ridge map vector */
  COFI_NEW_ITEMS_MEAN = 1,                /* user . mean map vector */
  COFI_NEW_ITEMS_CATEGORY_POPULARITY = 2, /* mean training popularity of its categories */
  COFI_NEW_ITEMS_USER_CATEGORIES = 3,     /* mean share of the user's training items
                                             having each of its categories */
  COFI_NEW_ITEMS_RANDOM = 4,
  COFI_NEW_ITEMS_METHODS = 5
};
/* "ridge", "mean", "category_popularity", "user_categories", "random";
 * NULL if out of range. */
const char *cofi_new_items_method_name(int method);

typedef struct cofi_new_items_eval_options {
  double holdout_items; /* share of items held out, (0, 1); default 0.1 */
  const char *field;    /* metadata field (NULL: "genres", else "categories") */
  float lambda;         /* the ridge map's lambda, default 1 */
  uint32_t k;           /* cutoff, default 10 */
  uint64_t seed;        /* the split's and the training's seed */
} cofi_new_items_eval_options;

cofi_new_items_eval_options cofi_new_items_eval_options_default(void);

typedef struct cofi_new_items_eval_result {
  double recall[COFI_NEW_ITEMS_METHODS];
  double ndcg[COFI_NEW_ITEMS_METHODS];
  uint64_t n_users;          /* test users averaged over */
  uint64_t n_heldout_items;
  uint64_t n_train_items;
  uint64_t n_categories;     /* distinct categories of the trained items */
} cofi_new_items_eval_result;

/* ds must have item metadata (cofi_dataset_read_items). Errors:
 * COFI_ERR_INVALID (bad options, no metadata), COFI_ERR_NOT_FOUND (no
 * such field; diag lists the fields), COFI_ERR_EMPTY, training's errors. */
int cofi_evaluate_new_items(const cofi_dataset *ds, const cofi_params *p,
                            const cofi_new_items_eval_options *opt, cofi_new_items_eval_result *out,
                            cofi_diag *diag);


/* ---- synthetic data ---------------------------------------------------- */

typedef struct cofi_synth_options {
  uint32_t users, items;
  uint64_t interactions; /* rows written (events, before aggregation) */
  uint64_t seed;
} cofi_synth_options;

cofi_synth_options cofi_synth_options_default(void);

/* Writes DIR/interactions.csv (user_id,item_id,event,timestamp) and
 * DIR/items.csv (item_id,title): a deterministic video-platform log with
 * latent taste clusters and long-tail popularity. Creates DIR if needed. */
int cofi_synth(const cofi_synth_options *opt, const char *dir, cofi_diag *diag);

/* ---- evaluation (src/eval/) -------------------------------------------- */
/* COFI-EVAL-API-BEGIN */
/*
 * Offline evaluation: split a dataset by a protocol, train on one part,
 * rank the catalog for every held-out user and score the ranking.
 *
 * Splitting labels every interaction with a part (cofi_part). All rows of
 * one user-item pair always get the same part, so a held-out item is never
 * also a training item of the same user. Protocols:
 * - LEAVE_LAST_OUT (the seeds'): per user with >= 2 distinct items, the
 *   items ordered by the time of their first interaction (ties and data
 *   without time: input order); the last is test, the second-last
 *   validation, the rest train. Users with one item stay in train.
 * - RANDOM: per user, a seeded shuffle of the distinct items; round(f * n)
 *   items go to test and as many to validation (at least one train item
 *   is kept; users with fewer than 3 items stay in train).
 * - USERS (strong generalization): `heldout_users` random users become
 *   test users and as many validation users; they are never trained on.
 *   Of each, a share `foldin_fraction` of the items (at least one) is the
 *   fold-in history (*_FOLDIN parts), the rest (at least one) is predicted.
 *   Only users with >= 2 distinct items are drawn. With
 *   `heldout_users_fraction` > 0 the number is that share of all users.
 * - TIME_CUTOFF (global time split): `cutoff` is an ISO 8601 date or date
 *   and time, unix seconds, or a fraction in (0, 1) meaning that quantile of
 *   the events' times. A pair whose first event is at or after the cutoff
 *   is test; earlier pairs are training, and their rows at or after the
 *   cutoff are in no part (COFI_PART_NONE: training sees only what was
 *   known at the cutoff). Validation is cut the same way inside training:
 *   its cutoff leaves the same share of the training side's events after
 *   it as the test cutoff leaves of all events. Test users without a
 *   training pair are counted, not evaluated (COFI_SKIP_USER_UNKNOWN).
 *   Needs timestamps; a cutoff outside (first event, last event] or one that
 *   leaves a side empty is refused.
 */
typedef enum cofi_protocol {
  COFI_PROTOCOL_LEAVE_LAST_OUT = 0,
  COFI_PROTOCOL_RANDOM = 1,
  COFI_PROTOCOL_USERS = 2,
  COFI_PROTOCOL_TIME_CUTOFF = 3,
} cofi_protocol;

typedef enum cofi_part {
  COFI_PART_TRAIN = 0,
  COFI_PART_VALIDATION = 1,        /* held out, for tuning */
  COFI_PART_TEST = 2,              /* held out, for the final report */
  COFI_PART_VALIDATION_FOLDIN = 3, /* USERS: history of a validation user */
  COFI_PART_TEST_FOLDIN = 4,       /* USERS: history of a test user */
  COFI_PART_COUNT = 5,
  COFI_PART_NONE = 255             /* in no part (TIME_CUTOFF: a training
                                      pair's rows after the cutoff) */
} cofi_part;

/* Bit of a part in a part mask. */
#define COFI_PART_BIT(part) (1u << (part))

typedef struct cofi_split_options {
  cofi_protocol protocol;
  double holdout;           /* RANDOM: fraction in test (and in validation), (0, 0.5) */
  uint32_t heldout_users;   /* USERS: test users (and validation users), >= 1 */
  double foldin_fraction;   /* USERS: share of a held-out user's items folded in, (0, 1) */
  uint64_t seed;            /* RANDOM, USERS */
  double heldout_users_fraction; /* USERS: when > 0, the share of all users
                                    held out for test (and as many for
                                    validation), (0, 0.5); overrides
                                    heldout_users */
  const char *cutoff;       /* TIME_CUTOFF: "2015-06-01", "2015-06-01T12:00:00Z",
                               unix seconds "1433116800", or a fraction
                               "0.8" (the time quantile of the events) */
} cofi_split_options;

/* LEAVE_LAST_OUT, holdout 0.2, heldout_users 100, foldin_fraction 0.8, seed 0,
 * heldout_users_fraction 0, cutoff NULL. */
cofi_split_options cofi_split_options_default(void);

/* TIME_CUTOFF's two cutoffs in unix seconds, resolved on ds: test holds the
 * pairs first seen at or after *test_from, validation those first seen in
 * [*validation_from, *test_from) (*validation_from == *test_from when the
 * validation part is empty). Errors: COFI_ERR_INVALID with the reason in
 * diag (no timestamps, unparsable cutoff, cutoff outside the data's range,
 * an empty training or test side). */
int cofi_split_cutoffs(const cofi_dataset *ds, const cofi_split_options *opt,
                       int64_t *validation_from, int64_t *test_from, cofi_diag *diag);

/* Users with a row in `part` (*n_users) and how many of them have no row
 * in the training parts train_mask (COFI_PART_BIT()s): *n_without_training
 * cannot be evaluated, except by fold-in. parts as written by cofi_split.
 * Errors: COFI_ERR_INVALID, COFI_ERR_NOMEM. */
int cofi_split_part_users(const cofi_dataset *ds, const uint8_t *parts, cofi_part part,
                          unsigned train_mask, uint64_t *n_users, uint64_t *n_without_training);

/* Labels each interaction of ds (input order) with a cofi_part.
 * parts: [cofi_dataset_n_interactions(ds)], written. counts (may be NULL):
 * [COFI_PART_COUNT] interactions per part. Errors: COFI_ERR_INVALID (bad
 * option, or USERS with too few eligible users), COFI_ERR_NOMEM. */
int cofi_split(const cofi_dataset *ds, const cofi_split_options *opt,
               uint8_t *parts, uint64_t counts[COFI_PART_COUNT],
               cofi_diag *diag);

/* The newest events held out (what a retraining `cofi serve` checks a new
 * model on, docs/serving.md): rows ordered by time (ties, and data
 * without time: input order), the newest round(fraction * n) rows (at
 * least one) are candidates; a candidate whose user-item pair has no
 * earlier row is TEST (all rows of a pair share a part); every other row
 * of a user with a TEST row is TEST_FOLDIN (that user's history: trained
 * on, and folded in when evaluating); the rest TRAIN. Train on
 * TRAIN|TEST_FOLDIN, evaluate TEST with TEST_FOLDIN as fold-in.
 * unseen_by (may be NULL): only rows whose user-item pair is not in this
 * model's training matrix are candidates (the newest round(fraction * n)
 * of those), so that model can be compared fairly with one trained on
 * TRAIN|TEST_FOLDIN: neither has seen the TEST pairs.
 * parts: [cofi_dataset_n_interactions(ds)], written; counts as cofi_split.
 * Errors: COFI_ERR_INVALID (fraction not in (0, 1)), COFI_ERR_NOMEM. */
int cofi_split_recent(const cofi_dataset *ds, double fraction, const cofi_model *unseen_by,
                      uint8_t *parts, uint64_t counts[COFI_PART_COUNT], cofi_diag *diag);

/* A new dataset of the rows whose part is in mask (COFI_PART_BIT()s), in
 * input order, with IDs interned anew in order of first appearance among
 * them: its users and items are exactly those present (item metadata is
 * not carried over). COFI_ERR_EMPTY when no row is selected. */
int cofi_dataset_select(const cofi_dataset *ds, const uint8_t *parts,
                        unsigned mask, cofi_dataset **out, cofi_diag *diag);

/* Appends every row of src to dst (IDs interned into dst's maps), for
 * joining split files read separately. dst's time flag becomes the AND of
 * both. Errors: COFI_ERR_NOMEM (dst then holds a prefix of src's rows). */
int cofi_dataset_append(cofi_dataset *dst, const cofi_dataset *src,
                        cofi_diag *diag);

/* Writes the rows whose part is in mask (parts NULL: all rows) as CSV with
 * the header user_id,item_id,value[,timestamp] (timestamp when the data has
 * time), readable back with the default cofi_read_options. IDs are quoted
 * when needed. Written atomically (temp file, rename). */
int cofi_dataset_write_csv(const cofi_dataset *ds, const uint8_t *parts,
                           unsigned mask, const char *path, cofi_diag *diag);

/* Metrics of a ranking. For one user with held-out items T (n = |T|) and
 * the top-K list r_1..r_K of items not in the user's training items:
 *   hit_i      = 1 if r_i in T, else 0
 *   RECALL     = sum hit_i / min(K, n)
 *   PRECISION  = sum hit_i / K
 *   NDCG       = sum hit_i / log2(i + 1)  /  sum_{i=1..min(K,n)} 1 / log2(i + 1)
 *   HIT_RATE   = 1 if any hit_i, else 0
 *   MAP        = sum_i hit_i * (hits among r_1..r_i) / i  /  min(K, n)
 * each averaged over the evaluated users; and for the whole run
 *   COVERAGE   = |union of all users' top-K lists| / number of catalog items
 * (the catalog: items with at least one training interaction). */
typedef enum cofi_metric {
  COFI_METRIC_RECALL = 0,
  COFI_METRIC_PRECISION = 1,
  COFI_METRIC_NDCG = 2,
  COFI_METRIC_HIT_RATE = 3,
  COFI_METRIC_MAP = 4,
  COFI_METRIC_COVERAGE = 5,
  COFI_METRIC_COUNT = 6
} cofi_metric;

/* "recall", "precision", "ndcg", "hit_rate", "map", "coverage"; NULL if
 * out of range. */
const char *cofi_metric_name(int metric);

/* What ranks the items. */
typedef enum cofi_scorer {
  COFI_SCORER_MODEL = 0,      /* dot products of the model's factors */
  COFI_SCORER_POPULARITY = 1, /* training users per item, same for all */
  COFI_SCORER_RANDOM = 2,     /* seeded uniform scores per user and item */
} cofi_scorer;

/* Why a held-out user was not evaluated. */
typedef enum cofi_skip {
  COFI_SKIP_USER_UNKNOWN = 0,  /* no training interaction (or, when folding
                                  in, no fold-in item known to the model) */
  COFI_SKIP_ITEMS_UNKNOWN = 1, /* none of the held-out items is in training */
  COFI_SKIP_COUNT = 2
} cofi_skip;

/* "user_not_in_training", "no_test_item_in_training". */
const char *cofi_skip_name(int reason);

/* Segments of the evaluated users by training history length h (distinct
 * items removed from their ranking: training items, or fold-in items):
 * COLD when h <= cold_max, WARM otherwise. Each segment gets every metric
 * (COVERAGE over that segment's lists). */
typedef enum cofi_segment {
  COFI_SEGMENT_COLD = 0,
  COFI_SEGMENT_WARM = 1,
  COFI_SEGMENT_COUNT = 2
} cofi_segment;

/* "cold", "warm"; NULL if out of range. */
const char *cofi_segment_name(int segment);

#define COFI_EVAL_MAX_KS 8
#define COFI_EVAL_MAX_K 10000

typedef struct cofi_eval_options {
  uint32_t ks[COFI_EVAL_MAX_KS]; /* cutoffs, each 1..COFI_EVAL_MAX_K */
  uint32_t n_ks;                 /* 1..COFI_EVAL_MAX_KS (default: {10}) */
  uint64_t seed;                 /* COFI_SCORER_RANDOM's scores */
  uint32_t threads;              /* 0 = all cores */
  uint32_t cold_max;             /* cold users: <= cold_max training items (5) */
} cofi_eval_options;

cofi_eval_options cofi_eval_options_default(void);

typedef struct cofi_eval_result {
  uint32_t n_ks;
  uint32_t ks[COFI_EVAL_MAX_KS];
  double metrics[COFI_EVAL_MAX_KS][COFI_METRIC_COUNT]; /* [cutoff][metric] */
  uint64_t n_users;         /* users averaged over */
  uint64_t n_items;         /* catalog size */
  uint64_t skipped[COFI_SKIP_COUNT]; /* users, by reason */
  uint64_t n_test_items;    /* held-out user-item pairs scored */
  uint64_t unknown_items;   /* held-out pairs dropped: item not in training
                               (including those of skipped users) */
  double seconds;           /* wall time of scoring */
  uint32_t cold_max;        /* as in the options */
  uint64_t segment_users[COFI_SEGMENT_COUNT];
  double segment_metrics[COFI_EVAL_MAX_KS][COFI_SEGMENT_COUNT][COFI_METRIC_COUNT];
                            /* NAN for an empty segment */
  /* Long tail: the head is the smallest set of most popular items (by
   * training users; ties by index) holding >= 80% of the training
   * user-item pairs; long_tail[c] is the share of all recommended slots
   * (first ks[c] of every list) whose item is outside it (NAN when no list
   * has an entry). */
  uint64_t head_items;
  double long_tail[COFI_EVAL_MAX_KS];
} cofi_eval_result;

/* Evaluates a scorer on held-out interactions. The model's own training
 * matrix is the training data: its items are the catalog, its user rows are
 * removed from each ranking, and popularity counts come from it. Users and
 * items of `test` are matched to the model's by ID.
 * foldin: NULL for users the model was trained on; otherwise the histories
 * of held-out users (USERS protocol): each test user's vector is solved
 * from their fold-in items with cofi_fold_in, and those items are removed
 * from their ranking instead. Ranking: blocks of users scored with one
 * matrix product (BLAS), then a top-K heap per user on all threads.
 * Thread-safe on a shared model. Errors: COFI_ERR_INVALID, COFI_ERR_EMPTY
 * (no user could be evaluated), COFI_ERR_NOMEM. */
int cofi_evaluate(const cofi_model *m, cofi_scorer scorer,
                  const cofi_dataset *test, const cofi_dataset *foldin,
                  const cofi_eval_options *opt, cofi_eval_result *out,
                  cofi_diag *diag);

/* Evaluates raw factors in the index space of the dataset they were
 * trained on: user_factors [n_users(train) x factors] and item_factors
 * [n_items(train) x factors], as a cofi_progress callback receives them,
 * for early stopping on a validation metric. test is matched to train by
 * ID; train's rows are removed from each ranking. MODEL scorer only.
 * Errors: as cofi_evaluate. */
int cofi_evaluate_factors(const cofi_dataset *train, const float *user_factors,
                          const float *item_factors, uint32_t factors,
                          const cofi_dataset *test, const cofi_eval_options *opt,
                          cofi_eval_result *out, cofi_diag *diag);

/* The sampled-negatives protocol of the NCF paper (He et al. 2017): each
 * line of negatives_path is "(user,item)\tneg1\tneg2..." (the test pair and
 * its sampled negatives); test_path has "user\titem..." lines in the same
 * order (checked). The test item is ranked among its negatives only (no
 * training-item filter) and the metrics above are computed over those
 * candidates (HIT_RATE and NDCG are the paper's HR and NDCG). Pairs whose
 * user or item is unknown to the model are skipped by reason; unknown
 * negatives are dropped and counted in unknown_items. Errors: COFI_ERR_IO,
 * COFI_ERR_PARSE (file and line in diag), COFI_ERR_EMPTY, COFI_ERR_NOMEM. */
int cofi_evaluate_sampled(const cofi_model *m, cofi_scorer scorer,
                          const char *test_path, const char *negatives_path,
                          const cofi_eval_options *opt, cofi_eval_result *out,
                          cofi_diag *diag);
/* Writes the two files of the sampled protocol (formats as read by
 * cofi_evaluate_sampled) from a labelled dataset: one test case per
 * distinct user-item pair of the rows whose part is in held_mask (in order
 * of first appearance), each with n_negatives items drawn uniformly
 * without replacement, seeded, among the items of the other rows (the
 * training items) that the user has no row with in any part (fewer when
 * fewer exist). `cofi tune --protocol sampled` builds its validation this
 * way from a leave-last-out split. Errors: COFI_ERR_INVALID (an ID the
 * format cannot hold: a tab or line end, or a comma in a user ID),
 * COFI_ERR_EMPTY (no held-out pair), COFI_ERR_IO, COFI_ERR_NOMEM. */
int cofi_sampled_write(const cofi_dataset *ds, const uint8_t *parts, unsigned held_mask,
                       uint32_t n_negatives, uint64_t seed, const char *test_path,
                       const char *negatives_path, cofi_diag *diag);
/* COFI-EVAL-API-END */

/* ---- datasets from arrays (src/data/from_arrays.c) --------------------- */
/* COFI-ARRAYS-API-BEGIN */
/* A dataset from a CSR matrix in memory (rows = users, columns = items), as
 * language bindings hold their data (scipy.sparse.csr_matrix). Row r is the
 * user with ID "r" and column c the item with ID "c" (decimal): dataset and
 * model indices equal the matrix's, and rows or columns without entries
 * still exist (trained to vectors near zero). Every stored entry is one
 * interaction with its value (values NULL: 1 each), zeros included;
 * duplicate columns in a row are summed by training.
 * indptr: [n_rows + 1], indptr[0] = 0, non-decreasing; indices:
 * [indptr[n_rows]] column indices < n_cols, any order; values: the same
 * length, finite and >= 0. The arrays are copied; the caller keeps them.
 * Errors: COFI_ERR_INVALID (diag names the bad entry), COFI_ERR_NOMEM. */
int cofi_dataset_from_csr(uint32_t n_rows, uint32_t n_cols, const uint64_t *indptr,
                          const uint32_t *indices, const float *values,
                          cofi_dataset **out, cofi_diag *diag);
/* COFI-ARRAYS-API-END */

/* ---- the store (src/store/) -------------------------------------------- */
/* COFI-STORE-API-BEGIN */
/*
 * Users, items and events in a database: SQLite (embedded, a file) or
 * PostgreSQL (shared by several servers), behind one interface. A URL picks
 * the back end:
 *   sqlite:PATH                 a file, created on first use (WAL mode)
 *   postgresql://... postgres://...   a libpq connection URI
 * The schema (docs/store.md) is created and migrated on open; its version is
 * recorded in the table cofi_schema_version. Events are never updated in
 * place: an event is appended, and removed only with its user.
 *
 * Durability: a call that returns COFI_OK has committed. SQLite runs with
 * synchronous=FULL (the commit survives kill -9 and power loss); PostgreSQL
 * commits with the server's settings (default synchronous_commit=on: the
 * same). See docs/store.md.
 *
 * Threads: a cofi_store is one connection; use it from one thread at a
 * time (open one per thread). Several processes may open the same store.
 *
 * Errors: COFI_ERR_INVALID (a bad argument, named in diag: "event 3:
 * user_id: ..."), COFI_ERR_NOT_FOUND, COFI_ERR_STORE (the database failed,
 * is unreachable, or is full; nothing was written), COFI_ERR_CORRUPT (a row
 * read back breaks the schema's rules; diag names table and row),
 * COFI_ERR_VERSION (the store's schema is newer than this library),
 * COFI_ERR_NOMEM. A failed write leaves the store as it was.
 *
 * Strings: IDs are 1..COFI_STORE_MAX_ID bytes of valid UTF-8 without NUL
 * bytes; event types 1..COFI_STORE_MAX_EVENT bytes, the same rules. Every
 * string passed in has an explicit length; strings handed back are also
 * NUL-terminated.
 */
typedef struct cofi_store cofi_store;

#define COFI_STORE_MAX_ID 256
#define COFI_STORE_MAX_EVENT 64
/* Largest title, JSON text (labels, categories, fields): 64 KiB. */
#define COFI_STORE_MAX_TEXT 65536
/* The schema version this library creates and reads. */
#define COFI_STORE_SCHEMA_VERSION 2

/* Opens (creating or migrating the schema when needed). Errors:
 * COFI_ERR_INVALID (unknown URL scheme, empty path), COFI_ERR_STORE (cannot
 * open or connect; a PostgreSQL URL without connect_timeout waits at most
 * 10 s), COFI_ERR_CORRUPT (an SQLite file that is not a database),
 * COFI_ERR_VERSION, COFI_ERR_NOMEM. */
int cofi_store_open(const char *url, cofi_store **out, cofi_diag *diag);
void cofi_store_close(cofi_store *s);
/* "sqlite" or "postgresql". */
const char *cofi_store_backend(const cofi_store *s);
/* NULL, or a sentence saying that cofi_store_open migrated this existing
 * store's schema to COFI_STORE_SCHEMA_VERSION (from which version, how
 * many events it holds), for the caller to log once. */
const char *cofi_store_migration(const cofi_store *s);
/* SQLite: packs every run of at least 4,096 events that no pack holds yet
 * into cofi_event_packs (docs/store.md, "Event packs"), the compact copy
 * the training scan reads instead of the rows; one write transaction per
 * pack (65,536 events at most), so that a server appending to the store
 * waits for one pack at a time. `cofi import` packs what it imports;
 * `cofi train --store`, `cofi export` and a server's retrain call
 * this before reading; events appended since are read row by row.
 * *n_packed (may be NULL): events packed (so far, on an error). Other back
 * ends: COFI_OK, nothing to do. */
int cofi_store_compact(cofi_store *s, uint64_t *n_packed, cofi_diag *diag);

/* One event. On append: user, item, optional event type (NULL: untyped,
 * weight 1 when training), value (finite, >= 0), optional timestamp (unix
 * seconds; has_timestamp 0: unknown). seq and title are ignored. Read back
 * (history, scan): every field set; seq is the insertion sequence (a later
 * append gets a larger seq, and a seq is never reused; with concurrent
 * writers on PostgreSQL it follows insertion, not commit, order); title is
 * the item's title (history only; NULL when the item has none). */
typedef struct cofi_store_event {
  const char *user_id;
  size_t user_len;
  const char *item_id;
  size_t item_len;
  const char *event; /* NULL: untyped */
  size_t event_len;
  double value;
  int64_t timestamp;
  int has_timestamp;
  uint64_t seq;
  const char *title;
  size_t title_len;
} cofi_store_event;

/* Checks one event as append would, without a store: COFI_OK or
 * COFI_ERR_INVALID with diag naming the field ("user_id: empty ID").
 * For servers that validate requests before batching them. */
int cofi_store_check_event(const cofi_store_event *ev, cofi_diag *diag);

/* Appends n events (1 <= n) in one transaction: all or nothing. Every
 * event is checked first; the first bad one fails the call with
 * COFI_ERR_INVALID and "event <index>: <field>: <problem>" (0-based index).
 * Users and items not yet known are created (items without a title). */
int cofi_store_append_events(cofi_store *s, const cofi_store_event *events,
                             size_t n, cofi_diag *diag);

/* A user's events, newest first (timestamp descending, unknown times
 * last, then seq descending), at most limit (0: all). *out is one
 * allocation (free with cofi_store_events_free) holding the array and its
 * strings; *n_out may be 0. COFI_ERR_NOT_FOUND when the user is unknown. */
int cofi_store_history(cofi_store *s, const char *user_id, size_t len,
                       uint32_t limit, cofi_store_event **out, size_t *n_out,
                       cofi_diag *diag);
void cofi_store_events_free(cofi_store_event *events);

/* The distinct items a user has events with (hidden ones too), for a
 * fold-in: fn is called once per item with its ID (borrowed for the
 * call), in no particular order; no titles, types, times or values, so a
 * user with thousands of events costs one narrow read (the server's
 * online users, server/online.c). One read transaction. fn returns 0 to
 * continue; anything else stops the read, which then returns
 * COFI_ERR_CANCELLED. COFI_ERR_NOT_FOUND when the user is unknown; a
 * known user without events never calls fn. */
typedef int (*cofi_store_item_id_fn)(const char *item_id, size_t len, void *ctx);
int cofi_store_user_items(cofi_store *s, const char *user_id, size_t len,
                          cofi_store_item_id_fn fn, void *ctx, cofi_diag *diag);

/* Every event in insertion order (seq ascending), from one consistent
 * snapshot; title is NULL. fn returns 0 to continue; anything else stops
 * the scan, which then returns COFI_ERR_CANCELLED. The event's strings are
 * borrowed for the duration of the call. */
typedef int (*cofi_store_event_fn)(const cofi_store_event *ev, void *ctx);
int cofi_store_scan_events(cofi_store *s, cofi_store_event_fn fn, void *ctx,
                           cofi_diag *diag);

/* Users: an ID and labels (a JSON array of strings; NULL: []). put
 * inserts or replaces the labels. */
typedef struct cofi_store_user {
  const char *id;
  size_t id_len;
  const char *labels; /* JSON array of strings */
  size_t labels_len;
} cofi_store_user;

int cofi_store_put_user(cofi_store *s, const cofi_store_user *user,
                        cofi_diag *diag);
/* *out: one allocation, free with cofi_store_user_free. NOT_FOUND. */
int cofi_store_get_user(cofi_store *s, const char *id, size_t len,
                        cofi_store_user **out, cofi_diag *diag);
void cofi_store_user_free(cofi_store_user *user);
/* Deletes the user and every event of theirs in one transaction (the
 * right to be forgotten; a model trained before still holds them until
 * the next training). n_events (may be NULL): events removed. NOT_FOUND. */
int cofi_store_delete_user(cofi_store *s, const char *id, size_t len,
                           uint64_t *n_events, cofi_diag *diag);

/* Items: title (NULL: none), categories (JSON array of strings; NULL: []),
 * hidden (not to be recommended; its events are kept), timestamp (e.g.
 * publication time; has_timestamp 0: none), fields (a JSON object of any
 * further attributes; NULL: {}). put inserts or replaces all of them. */
typedef struct cofi_store_item {
  const char *id;
  size_t id_len;
  const char *title;
  size_t title_len;
  const char *categories;
  size_t categories_len;
  int hidden;
  int64_t timestamp;
  int has_timestamp;
  const char *fields;
  size_t fields_len;
} cofi_store_item;

int cofi_store_put_item(cofi_store *s, const cofi_store_item *item,
                        cofi_diag *diag);
/* *out: one allocation, free with cofi_store_item_free. NOT_FOUND. */
int cofi_store_get_item(cofi_store *s, const char *id, size_t len,
                        cofi_store_item **out, cofi_diag *diag);
void cofi_store_item_free(cofi_store_item *item);
/* Sets the hidden flag (1: hide, 0: show again). NOT_FOUND. */
int cofi_store_hide_item(cofi_store *s, const char *id, size_t len, int hidden,
                         cofi_diag *diag);

/* Every item (hidden ones included: check item->hidden) from one
 * consistent snapshot, in no particular order; categories and fields are
 * never NULL ("[]", "{}"). fn returns 0 to continue; anything else stops
 * the scan, which then returns COFI_ERR_CANCELLED. The item's strings are
 * borrowed for the duration of the call. */
typedef int (*cofi_store_item_fn)(const cofi_store_item *item, void *ctx);
int cofi_store_scan_items(cofi_store *s, cofi_store_item_fn fn, void *ctx, cofi_diag *diag);

typedef struct cofi_store_counts {
  uint64_t users, items, events;
  uint64_t hidden_items;
} cofi_store_counts;
int cofi_store_count(cofi_store *s, cofi_store_counts *out, cofi_diag *diag);

/* Bulk load: every interaction of ds (input order) becomes an untyped
 * event whose value is the dataset's value (already weighted, filtered and
 * binarized as the reading options said), with its timestamp when ds has
 * time; with item metadata, each item with interactions is stored with
 * its title (the title field), categories (a field named "categories" or
 * "genres", split on '|') and every field but the title in `fields`. One
 * transaction: all or nothing. On PostgreSQL an import of 100,000 events
 * or more holds the events table exclusively until it commits (its foreign
 * keys are checked once at the end; docs/store.md). n_events (may be
 * NULL): events written. */
int cofi_store_import_dataset(cofi_store *s, const cofi_dataset *ds,
                              uint64_t *n_events, cofi_diag *diag);

/* The store's events as a dataset, as cofi_dataset_read builds one from
 * the same log: events in insertion order; value = stored value times the
 * weight of its event type (opt->event_weights, NULL: watch=1, like=2,
 * complete=3; untyped: 1; a type missing from the table is
 * COFI_ERR_INVALID naming it); rows below opt->min_value dropped (when
 * has_min_value) and, with COFI_FORMAT_MOVIELENS, the kept ones set to 1;
 * IDs interned in order of first appearance; time kept when every event
 * has one. Item metadata: when any item has a title or fields, the fields
 * "title" then the fields' keys in order of first appearance. opt may be
 * NULL (defaults). Column options of opt are ignored. COFI_ERR_EMPTY when
 * no event is left. */
int cofi_store_read_dataset(cofi_store *s, const cofi_read_options *opt,
                            cofi_dataset **out, cofi_diag *diag);

/* Non-personalized lists (docs/store.md, "Lists"). One row: the item, its
 * title (NULL: none), its timestamp (has_timestamp 0: none) and a score:
 * for popular the number of events counted, for latest the timestamp. */
typedef struct cofi_store_ranked {
  const char *item_id;
  size_t item_len;
  const char *title;
  size_t title_len;
  int64_t timestamp;
  int has_timestamp;
  double score;
} cofi_store_ranked;

/* The k items with the most events (counted, each event once, not
 * time-decayed), with has_since only the events whose timestamp is >=
 * since (events without one do not count then); most first, ties by item
 * ID in byte order. Hidden items are left out; with category (not NULL)
 * only items whose categories include it. *out is one allocation (free
 * with cofi_store_ranked_free); *n_out may be 0. Errors: COFI_ERR_INVALID
 * (k = 0; a category of 0 or more than COFI_STORE_MAX_ID bytes, or not
 * valid UTF-8), COFI_ERR_STORE, COFI_ERR_CORRUPT, COFI_ERR_NOMEM. */
int cofi_store_popular(cofi_store *s, const char *category, size_t category_len,
                       int has_since, int64_t since, uint32_t k,
                       cofi_store_ranked **out, size_t *n_out, cofi_diag *diag);
/* The k newest items by their timestamp (items without one are left
 * out), newest first, ties by item ID; hidden and category as above. */
int cofi_store_latest(cofi_store *s, const char *category, size_t category_len,
                      uint32_t k, cofi_store_ranked **out, size_t *n_out,
                      cofi_diag *diag);
void cofi_store_ranked_free(cofi_store_ranked *rows);

/* The event feed (src/store/feed.c): servers sharing one store poll it to
 * learn which users have events another server committed. */
/* The largest seq of any event (0: no events). COFI_ERR_STORE. */
int cofi_store_last_seq(cofi_store *s, int64_t *seq, cofi_diag *diag);
/* One event of the feed: its seq and its user's ID (borrowed for the
 * call). 0 continues; anything else stops the read. */
typedef int (*cofi_store_seq_user_fn)(int64_t seq, const char *user_id, size_t len,
                                      void *ctx);
/* Calls fn for each event with after_seq < seq <= upto_seq (upto_seq < 0:
 * no upper bound), in seq order, at most max_events of them (read through
 * the seq index: the cost is the rows returned). *last_seq (may be NULL):
 * the seq of the last event handed to fn, after_seq when none: the next
 * call's after_seq. On PostgreSQL a seq is taken at insertion, so a
 * transaction still open may commit a seq below one already returned
 * (docs/serving.md says how the server's poll handles those gaps).
 * Errors: COFI_ERR_INVALID (after_seq < 0, upto_seq below after_seq,
 * max_events 0, no fn), COFI_ERR_CANCELLED (fn stopped it), COFI_ERR_STORE,
 * COFI_ERR_CORRUPT, COFI_ERR_NOMEM. */
int cofi_store_users_since(cofi_store *s, int64_t after_seq, int64_t upto_seq,
                           uint32_t max_events, cofi_store_seq_user_fn fn, void *ctx,
                           int64_t *last_seq, cofi_diag *diag);
/* COFI-STORE-API-END */

#ifdef __cplusplus
}
#endif
#endif /* COFI_H */

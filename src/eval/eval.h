/*
 * eval.h — internals of offline evaluation shared by the files of src/eval:
 * the evaluation set (who is evaluated, what is removed from their ranking,
 * what they should find), the ranking kernel and the metric formulas.
 *
 * The pipeline is
 *
 *   held-out rows --(match IDs to the training index space)--> evalset
 *   evalset + scorer --(blocks of users: sgemm, mask, top-K)--> top lists
 *   top lists + held-out items --(formulas of cofi.h)--> cofi_eval_result
 *
 * Ranking and metrics are separate so the metrics are pure functions that
 * unit tests check against hand-computed cases.
 */
#ifndef COFI_EVAL_H
#define COFI_EVAL_H

#include "internal.h"

/* Who is evaluated and against what. Item indices are those of the
 * training index space (columns of the training matrix, rows of V). */
typedef struct cofi__evalset {
  uint32_t n_users;    /* evaluated users */
  uint32_t n_items;    /* catalog: items of the training index space */
  uint32_t *row;       /* [n_users] the user's row in U (MODEL scorer) */
  uint64_t *seen_ptr;  /* [n_users+1] */
  uint32_t *seen;      /* [seen_ptr[n_users]] items removed from each
                          ranking, ascending per user */
  float *seen_val;     /* [seen_ptr[n_users]] their values (fold-in only),
                          or NULL */
  uint64_t *test_ptr;  /* [n_users+1] */
  uint32_t *test;      /* [test_ptr[n_users]] held-out items, ascending,
                          unique per user */
  float *vecs;         /* [n_users x k] folded-in user vectors, or NULL:
                          then U rows set->row[] are used */
  uint64_t skipped[COFI_SKIP_COUNT];
  uint64_t unknown_items; /* held-out pairs whose item is not in training */
  uint8_t *is_head;    /* [n_items] 1 for the popular head (segments.c) */
  uint64_t n_head;
} cofi__evalset;

void cofi__evalset_free(cofi__evalset *s);

/* Builds the set for held-out `test` against the training side given by
 * its ID maps and user x item matrix. With foldin (may be NULL), test users
 * are matched to foldin's users instead, and their known fold-in items
 * become `seen`; set->row then indexes foldin's users (the caller folds
 * in the vectors). Users without a usable row are skipped by reason. */
int cofi__evalset_build(const cofi__idmap *users, const cofi__idmap *items,
                        const cofi__csr *train, const cofi_dataset *test,
                        const cofi_dataset *foldin, cofi__evalset *out);

/* How items are scored for one evaluated user. */
typedef struct cofi__scoring {
  cofi_scorer kind;
  const float *U;    /* MODEL without set->vecs: [rows x k] user factors */
  const float *V;    /* MODEL: [n_items x k] item factors */
  uint32_t k;
  const float *pop;  /* POPULARITY: [n_items] */
  uint64_t seed;     /* RANDOM */
  uint32_t threads;  /* resolved, >= 1 */
  /* MODEL with an EASE or item-kNN model (else NULL): each user's scores
   * are its history's item rows (cofi__history_scores): the model's
   * training row set->row[u], or with fold-in the user's seen items. */
  const cofi_model *items_model;
} cofi__scoring;

/* Top-K of every evaluated user, best first, seen items excluded.
 * top: [n_users x K]; n_top: [n_users] entries written per user (fewer than
 * K when the user has fewer candidates). Errors: COFI_ERR_NOMEM. */
int cofi__eval_rank(const cofi__evalset *set, const cofi__scoring *sc,
                    uint32_t K, uint32_t *top, uint32_t *n_top);

/* Per-user metrics at cutoff k of a ranked list against ascending unique
 * held-out items. Writes out[RECALL..MAP]; out[COVERAGE] is left alone.
 * n_test must be >= 1. */
void cofi__metrics_user(const uint32_t *ranked, size_t n_ranked,
                        const uint32_t *test, size_t n_test, uint32_t k,
                        double out[COFI_METRIC_COUNT]);

/* Catalog coverage at cutoff k: distinct items among the first k entries
 * of each list, over n_items. seen_buf: [n_items] scratch bytes. */
double cofi__coverage(const uint32_t *top, const uint32_t *n_top,
                      uint32_t n_users, uint32_t K, uint32_t k,
                      uint32_t n_items, uint8_t *seen_buf);

/* Fills every metric of out (ks, n_users, metrics) from the top lists.
 * Errors: COFI_ERR_NOMEM. */
int cofi__eval_score(const cofi__evalset *set, const uint32_t *top,
                     const uint32_t *n_top, uint32_t K,
                     const cofi_eval_options *opt, cofi_eval_result *out);

/* Checks opt (cutoffs in range, ascending order not required); returns the
 * largest cutoff in *max_k. */
int cofi__eval_options_check(const cofi_eval_options *opt, uint32_t *max_k,
                             cofi_diag *diag);

/* Runs rank + score on a prepared set. */
int cofi__eval_run(const cofi__evalset *set, const cofi__scoring *sc,
                   const cofi_eval_options *opt, cofi_eval_result *out,
                   cofi_diag *diag);

/* The RANDOM scorer's score of item for user: uniform [0, 1), a pure
 * function of (seed, user, item). */
float cofi__random_score(uint64_t seed, uint32_t user, uint32_t item);

/* The ranked lists of an evaluation, as the segment metrics need them. */
typedef struct cofi__seglists {
  uint32_t n_users, n_items, K;
  const uint32_t *top;      /* [n_users x K] */
  const uint32_t *n_top;    /* [n_users] */
  const uint64_t *hist_ptr; /* [n_users+1]: history length = difference */
  const uint64_t *test_ptr; /* [n_users+1] */
  const uint32_t *test;     /* ascending per user */
  const uint8_t *is_head;   /* [n_items], or NULL: long tail NAN */
  uint64_t n_head;
} cofi__seglists;

/* is_head [train->n_cols] (written): the most popular columns (by entries;
 * ties by index) that together hold >= 80% of the entries. */
int cofi__head_items(const cofi__csr *train, uint8_t *is_head, uint64_t *n_head);

/* Share of the first k entries of all lists whose item is not head. */
double cofi__long_tail_share(const uint32_t *top, const uint32_t *n_top, uint32_t n_users,
                             uint32_t K, uint32_t k, const uint8_t *is_head);

/* Fills out's cold_max, segment_users, segment_metrics, head_items and
 * long_tail. Errors: COFI_ERR_NOMEM. */
int cofi__eval_segments(const cofi__seglists *l, const cofi_eval_options *opt,
                        cofi_eval_result *out);

/* cofi_split's TIME_CUTOFF protocol (split_time.c). */
int cofi__split_time_cutoff(const cofi_dataset *ds, const cofi_split_options *opt,
                            uint8_t *parts, uint64_t counts[COFI_PART_COUNT], cofi_diag *diag);

/* Training users per item of a user x item matrix: pop [n_cols]. */
void cofi__popularity(const cofi__csr *train, float *pop);

#endif

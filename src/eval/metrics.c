/*
 * metrics.c — the ranking metrics, as pure functions of a ranked list and
 * the held-out items (formulas in cofi.h and docs/evaluation.md), and their
 * averaging over the evaluated users.
 *
 * Recall divides by min(K, n) (Liang et al. 2018), not by n: with one
 * held-out item it equals the hit rate, and a user with 50 held-out items is
 * not capped at 10/50. implicit calls this quantity "precision" (its issue
 * #412); cofi's PRECISION divides by K.
 */
#include "eval.h"

#include <math.h>
#include <string.h>

static const char *const metric_names[COFI_METRIC_COUNT] = {
    "recall", "precision", "ndcg", "hit_rate", "map", "coverage"};

const char *cofi_metric_name(int metric) {
  if (metric < 0 || metric >= COFI_METRIC_COUNT) return NULL;
  return metric_names[metric];
}

static const char *const skip_names[COFI_SKIP_COUNT] = {"user_not_in_training",
                                                        "no_test_item_in_training"};

const char *cofi_skip_name(int reason) {
  if (reason < 0 || reason >= COFI_SKIP_COUNT) return NULL;
  return skip_names[reason];
}

cofi_eval_options cofi_eval_options_default(void) {
  cofi_eval_options o;
  memset(&o, 0, sizeof o);
  o.ks[0] = 10;
  o.n_ks = 1;
  o.cold_max = 5;
  return o;
}

int cofi__eval_options_check(const cofi_eval_options *opt, uint32_t *max_k,
                             cofi_diag *diag) {
  if (!opt) return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "no evaluation options");
  if (opt->n_ks < 1 || opt->n_ks > COFI_EVAL_MAX_KS)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "the number of cutoffs must be in 1..%d, got %u", COFI_EVAL_MAX_KS,
                      opt->n_ks);
  uint32_t mk = 0;
  for (uint32_t i = 0; i < opt->n_ks; i++) {
    if (opt->ks[i] < 1 || opt->ks[i] > COFI_EVAL_MAX_K)
      return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "cutoff K must be in 1..%d, got %u",
                        COFI_EVAL_MAX_K, opt->ks[i]);
    if (opt->ks[i] > mk) mk = opt->ks[i];
  }
  if (opt->threads > 4096)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "threads must be in 0..4096, got %u",
                      opt->threads);
  *max_k = mk;
  return COFI_OK;
}

static bool contains(const uint32_t *sorted, size_t n, uint32_t x) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && sorted[lo] == x;
}

void cofi__metrics_user(const uint32_t *ranked, size_t n_ranked, const uint32_t *test,
                        size_t n_test, uint32_t k, double out[COFI_METRIC_COUNT]) {
  size_t depth = n_ranked < k ? n_ranked : k;
  size_t ideal = n_test < k ? n_test : k;
  double hits = 0, dcg = 0, idcg = 0, ap = 0;
  for (size_t i = 0; i < depth; i++) {
    if (contains(test, n_test, ranked[i])) {
      hits += 1;
      dcg += 1.0 / log2((double)i + 2.0);
      ap += hits / (double)(i + 1);
    }
  }
  for (size_t i = 0; i < ideal; i++) idcg += 1.0 / log2((double)i + 2.0);
  out[COFI_METRIC_RECALL] = ideal ? hits / (double)ideal : 0;
  out[COFI_METRIC_PRECISION] = hits / (double)k;
  out[COFI_METRIC_NDCG] = idcg > 0 ? dcg / idcg : 0;
  out[COFI_METRIC_HIT_RATE] = hits > 0 ? 1.0 : 0.0;
  out[COFI_METRIC_MAP] = ideal ? ap / (double)ideal : 0;
}

double cofi__coverage(const uint32_t *top, const uint32_t *n_top, uint32_t n_users,
                      uint32_t K, uint32_t k, uint32_t n_items, uint8_t *seen_buf) {
  if (n_items == 0) return 0;
  memset(seen_buf, 0, n_items);
  uint64_t distinct = 0;
  for (uint32_t u = 0; u < n_users; u++) {
    uint32_t depth = n_top[u] < k ? n_top[u] : k;
    const uint32_t *list = top + (size_t)u * K;
    for (uint32_t i = 0; i < depth; i++) {
      if (list[i] < n_items && !seen_buf[list[i]]) {
        seen_buf[list[i]] = 1;
        distinct++;
      }
    }
  }
  return (double)distinct / (double)n_items;
}

int cofi__eval_score(const cofi__evalset *set, const uint32_t *top, const uint32_t *n_top,
                     uint32_t K, const cofi_eval_options *opt, cofi_eval_result *out) {
  uint8_t *buf = cofi__malloc(set->n_items ? set->n_items : 1);
  if (!buf) return COFI_ERR_NOMEM;
  out->n_ks = opt->n_ks;
  out->n_users = set->n_users;
  out->n_items = set->n_items;
  memcpy(out->skipped, set->skipped, sizeof out->skipped);
  out->unknown_items = set->unknown_items;
  out->n_test_items = set->test_ptr ? set->test_ptr[set->n_users] : 0;
  for (uint32_t c = 0; c < opt->n_ks; c++) {
    uint32_t k = opt->ks[c];
    double sum[COFI_METRIC_COUNT] = {0};
    for (uint32_t u = 0; u < set->n_users; u++) {
      double m[COFI_METRIC_COUNT];
      const uint32_t *t = set->test + set->test_ptr[u];
      size_t nt = (size_t)(set->test_ptr[u + 1] - set->test_ptr[u]);
      cofi__metrics_user(top + (size_t)u * K, n_top[u], t, nt, k, m);
      for (int j = 0; j < COFI_METRIC_COVERAGE; j++) sum[j] += m[j];
    }
    out->ks[c] = k;
    for (int j = 0; j < COFI_METRIC_COVERAGE; j++)
      out->metrics[c][j] = set->n_users ? sum[j] / set->n_users : 0;
    out->metrics[c][COFI_METRIC_COVERAGE] =
        cofi__coverage(top, n_top, set->n_users, K, k, set->n_items, buf);
  }
  cofi__free(buf);
  cofi__seglists l = {.n_users = set->n_users, .n_items = set->n_items, .K = K, .top = top,
                      .n_top = n_top, .hist_ptr = set->seen_ptr, .test_ptr = set->test_ptr,
                      .test = set->test, .is_head = set->is_head, .n_head = set->n_head};
  return cofi__eval_segments(&l, opt, out);
}

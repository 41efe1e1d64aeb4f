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

/*
 * score.c — one evaluation's table from the ranked lists: every metric at
 * every cutoff averaged over the test users (metrics.c), catalog coverage,
 * then the per-segment figures (segments.c). Kept apart from metrics.c so
 * that the primitives sit below both their users.
 */
#include "eval.h"

#include <string.h>

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

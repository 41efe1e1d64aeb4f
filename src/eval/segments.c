/*
 * segments.c — metrics beyond the average user: the same metrics per
 * segment of users (cold: short training history, warm: the rest), and the
 * long-tail share of what is recommended. An average dominated by heavy
 * users hides a model that serves newcomers badly, and a model can score
 * well by recommending the same blockbusters to everybody; these two views
 * show both (definitions in cofi.h, docs/evaluation.md).
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const segment_names[COFI_SEGMENT_COUNT] = {"cold", "warm"};

const char *cofi_segment_name(int segment) {
  if (segment < 0 || segment >= COFI_SEGMENT_COUNT) return NULL;
  return segment_names[segment];
}

typedef struct item_count {
  uint64_t count;
  uint32_t item;
} item_count;

static int by_count_desc(const void *a, const void *b) {
  const item_count *x = a, *y = b;
  if (x->count != y->count) return x->count < y->count ? 1 : -1;
  return (x->item > y->item) - (x->item < y->item);
}

int cofi__head_items(const cofi__csr *train, uint8_t *is_head, uint64_t *n_head) {
  uint32_t n = train->n_cols;
  *n_head = 0;
  if (n == 0) return COFI_OK;
  item_count *c = cofi__calloc(n, sizeof *c);
  if (!c) return COFI_ERR_NOMEM;
  for (uint32_t i = 0; i < n; i++) c[i].item = i;
  for (uint64_t t = 0; t < train->nnz; t++) c[train->indices[t]].count++;
  qsort(c, n, sizeof *c, by_count_desc);
  memset(is_head, 0, n);
  /* Integer arithmetic: head pairs * 5 >= total * 4 is exactly 80%. */
  uint64_t total = train->nnz, sum = 0;
  for (uint32_t i = 0; i < n && sum * 5 < total * 4; i++) {
    is_head[c[i].item] = 1;
    sum += c[i].count;
    (*n_head)++;
  }
  cofi__free(c);
  return COFI_OK;
}

double cofi__long_tail_share(const uint32_t *top, const uint32_t *n_top, uint32_t n_users,
                             uint32_t K, uint32_t k, const uint8_t *is_head) {
  uint64_t slots = 0, tail = 0;
  for (uint32_t u = 0; u < n_users; u++) {
    uint32_t depth = n_top[u] < k ? n_top[u] : k;
    const uint32_t *list = top + (size_t)u * K;
    for (uint32_t i = 0; i < depth; i++) tail += !is_head[list[i]];
    slots += depth;
  }
  return slots ? (double)tail / (double)slots : NAN;
}

int cofi__eval_segments(const cofi__seglists *l, const cofi_eval_options *opt,
                        cofi_eval_result *out) {
  uint32_t *members = cofi__malloc(((size_t)l->n_users + 1) * sizeof *members);
  uint32_t *mtop_n = cofi__malloc(((size_t)l->n_users + 1) * sizeof *mtop_n);
  uint8_t *buf = cofi__malloc(l->n_items ? l->n_items : 1);
  uint32_t *mtop = NULL;
  size_t cells;
  int rc = COFI_OK;
  if (!cofi__mul_ok((size_t)l->n_users + 1, l->K, &cells) || !members || !mtop_n || !buf ||
      !(mtop = cofi__malloc(cells * sizeof *mtop))) {
    rc = COFI_ERR_NOMEM;
    goto done;
  }
  out->cold_max = opt->cold_max;
  for (int g = 0; g < COFI_SEGMENT_COUNT; g++) {
    uint32_t m = 0;
    for (uint32_t u = 0; u < l->n_users; u++) {
      int seg = l->hist_ptr[u + 1] - l->hist_ptr[u] <= opt->cold_max ? COFI_SEGMENT_COLD : COFI_SEGMENT_WARM;
      if (seg != g) continue;
      members[m] = u;
      memcpy(mtop + (size_t)m * l->K, l->top + (size_t)u * l->K, l->n_top[u] * sizeof *mtop);
      mtop_n[m] = l->n_top[u];
      m++;
    }
    out->segment_users[g] = m;
    for (uint32_t c = 0; c < opt->n_ks; c++) {
      uint32_t k = opt->ks[c];
      double sum[COFI_METRIC_COUNT] = {0};
      for (uint32_t j = 0; j < m; j++) {
        uint32_t u = members[j];
        double one[COFI_METRIC_COUNT];
        cofi__metrics_user(l->top + (size_t)u * l->K, l->n_top[u], l->test + l->test_ptr[u],
                           (size_t)(l->test_ptr[u + 1] - l->test_ptr[u]), k, one);
        for (int x = 0; x < COFI_METRIC_COVERAGE; x++) sum[x] += one[x];
      }
      for (int x = 0; x < COFI_METRIC_COVERAGE; x++)
        out->segment_metrics[c][g][x] = m ? sum[x] / m : NAN;
      out->segment_metrics[c][g][COFI_METRIC_COVERAGE] =
          m ? cofi__coverage(mtop, mtop_n, m, l->K, k, l->n_items, buf) : NAN;
    }
  }
  out->head_items = l->n_head;
  for (uint32_t c = 0; c < opt->n_ks; c++)
    out->long_tail[c] = l->is_head ? cofi__long_tail_share(l->top, l->n_top, l->n_users, l->K,
                                                            opt->ks[c], l->is_head)
                                   : NAN;
done:
  cofi__free(members);
  cofi__free(mtop_n);
  cofi__free(mtop);
  cofi__free(buf);
  return rc;
}

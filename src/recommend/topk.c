/*
 * topk.c — partial selection of the k best candidates without sorting the
 * catalog: a size-k min-heap whose root is the worst kept entry, so each
 * candidate costs one comparison unless it enters. Order: score
 * descending, then index ascending (deterministic ties).
 */
#include "internal.h"

#include <math.h>

void cofi__topk_init(cofi__topk *t, cofi_scored *heap, size_t k) {
  t->heap = heap;
  t->k = k;
  t->n = 0;
}

/* a is "worse" than b: the heap keeps the worst at the root. */
static inline bool worse(const cofi_scored *a, const cofi_scored *b) {
  return cofi__better(b->score, b->index, a->score, a->index);
}

static void sift_down(cofi_scored *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && worse(&h[l], &h[m])) m = l;
    if (r < n && worse(&h[r], &h[m])) m = r;
    if (m == i) return;
    cofi_scored tmp = h[i];
    h[i] = h[m];
    h[m] = tmp;
    i = m;
  }
}

void cofi__topk_push(cofi__topk *t, uint32_t index, float score) {
  if (t->k == 0) return;
  cofi_scored *h = t->heap;
  if (t->n < t->k) {
    size_t i = t->n++;
    h[i].index = index;
    h[i].score = score;
    while (i > 0) {
      size_t parent = (i - 1) / 2;
      if (!worse(&h[i], &h[parent])) break;
      cofi_scored tmp = h[i];
      h[i] = h[parent];
      h[parent] = tmp;
      i = parent;
    }
    return;
  }
  if (!cofi__better(score, index, h[0].score, h[0].index)) return;
  h[0].index = index;
  h[0].score = score;
  sift_down(h, t->n, 0);
}

size_t cofi__topk_finish(cofi__topk *t) {
  /* Heap sort: repeatedly move the worst to the end -> best first. */
  size_t n = t->n;
  cofi_scored *h = t->heap;
  for (size_t end = n; end > 1; end--) {
    cofi_scored tmp = h[0];
    h[0] = h[end - 1];
    h[end - 1] = tmp;
    sift_down(h, end - 1, 0);
  }
  return n;
}

size_t cofi__topk_scores(const float *scores, size_t n, size_t k, cofi_scored *out) {
  cofi__topk t;
  cofi__topk_init(&t, out, k);
  if (k == 0) return 0;
  /* Once the heap is full only scores above its root can enter (an equal
   * score comes later, so its index is larger): the vector scan skips the
   * rest 16 at a time. Before that, anything above -inf (not NaN) enters. */
  for (size_t i = cofi__k_first_above(scores, n, -INFINITY); i < n;) {
    cofi__topk_push(&t, (uint32_t)i, scores[i]);
    float thr = t.n == t.k ? t.heap[0].score : -INFINITY;
    i++;
    i += cofi__k_first_above(scores + i, n - i, thr);
  }
  return cofi__topk_finish(&t);
}

/*
 * sampled.c — the sampled-negatives protocol of the NCF paper (He et al.
 * 2017, files ml-1m.test.rating / ml-1m.test.negative): each test pair is
 * ranked among its own sampled negatives (usually 99) instead of the whole
 * catalog, and HR@K / NDCG@K are read off that short list.
 *
 * File formats (tab-separated, one test case per line, same order):
 *   test:      user \t item [\t rating \t timestamp ...]
 *   negatives: (user,item) \t neg1 \t neg2 ...
 * IDs are kept as strings and matched to the model's. The files are read
 * whole into memory (ml-1m's negatives file is about 3 MB).
 */
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct text {
  char *buf;
  size_t len;
} text;

static int read_all(const char *path, text *t, cofi_diag *diag) {
  t->buf = NULL;
  t->len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return cofi__fail(diag, COFI_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
  size_t cap = 0;
  int rc = COFI_OK;
  for (;;) {
    if (t->len + 65536 + 1 > cap) {
      size_t ncap = cap ? cap * 2 : 131072;
      char *nb = cofi__realloc(t->buf, ncap);
      if (!nb) {
        rc = cofi__fail(diag, COFI_ERR_NOMEM, path, 0, "out of memory reading the file");
        goto done;
      }
      t->buf = nb;
      cap = ncap;
    }
    size_t got = fread(t->buf + t->len, 1, cap - t->len - 1, f);
    t->len += got;
    if (got == 0) break;
  }
  if (ferror(f)) rc = cofi__fail(diag, COFI_ERR_IO, path, 0, "read error: %s", strerror(errno));
  else t->buf[t->len] = 0;
done:
  fclose(f);
  if (rc) {
    cofi__free(t->buf);
    t->buf = NULL;
  }
  return rc;
}

/* Next line of t from *pos: [*line, *line + *len), without "\r\n". Returns
 * false at the end. */
static bool next_line(const text *t, size_t *pos, const char **line, size_t *len) {
  if (*pos >= t->len) return false;
  const char *s = t->buf + *pos;
  const char *nl = memchr(s, '\n', t->len - *pos);
  size_t n = nl ? (size_t)(nl - s) : t->len - *pos;
  *pos += n + (nl ? 1 : 0);
  if (n && s[n - 1] == '\r') n--;
  *line = s;
  *len = n;
  return true;
}

/* Field [b, e) of a tab-separated line, starting at *at. */
static bool next_field(const char *line, size_t len, size_t *at, size_t *b, size_t *e) {
  if (*at > len) return false;
  *b = *at;
  const char *tab = memchr(line + *at, '\t', len - *at);
  *e = tab ? (size_t)(tab - line) : len;
  *at = *e + 1;
  return true;
}

static int cmp_scored(const void *a, const void *b) {
  const cofi_scored *x = a, *y = b;
  if (cofi__better(x->score, x->index, y->score, y->index)) return -1;
  if (cofi__better(y->score, y->index, x->score, x->index)) return 1;
  return 0;
}

/* urow: the user's scores over all items under an EASE or item-kNN model
 * (NULL for ALS). */
static float score_of(const cofi_model *m, cofi_scorer scorer, const float *pop, uint64_t seed,
                      const float *urow, uint32_t u, uint32_t item) {
  if (scorer == COFI_SCORER_POPULARITY) return pop[item];
  if (scorer == COFI_SCORER_RANDOM) return cofi__random_score(seed, u, item);
  if (urow) return urow[item];
  const float *x = m->user_factors + (size_t)u * m->factors;
  const float *y = m->item_factors + (size_t)item * m->factors;
  float s = 0;
  for (uint32_t j = 0; j < m->factors; j++) s += x[j] * y[j];
  return s;
}

int cofi_evaluate_sampled(const cofi_model *m, cofi_scorer scorer, const char *test_path,
                          const char *negatives_path, const cofi_eval_options *opt,
                          cofi_eval_result *out, cofi_diag *diag) {
  if (!m || !test_path || !negatives_path || !out)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "cofi_evaluate_sampled: model, both paths and out are required");
  if (scorer != COFI_SCORER_MODEL && scorer != COFI_SCORER_POPULARITY &&
      scorer != COFI_SCORER_RANDOM)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "unknown scorer %d", (int)scorer);
  uint32_t K;
  int rc = cofi__eval_options_check(opt, &K, diag);
  if (rc) return rc;
  double t0 = cofi__now();
  text tt = {0}, nt = {0};
  float *pop = NULL, *urow = NULL, *uw = NULL;
  cofi_scored *cand = NULL;
  uint32_t *ranked = NULL;
  uint8_t *cov = NULL;
  uint32_t *top = NULL, *n_top = NULL, *tests = NULL;
  uint64_t *hist_ptr = NULL, *test_ptr = NULL;
  uint8_t *is_head = NULL;
  size_t cand_cap = 0, users_cap = 0;
  uint32_t n_users = 0;
  uint64_t n_test_items = 0;
  double sum[COFI_EVAL_MAX_KS][COFI_METRIC_COUNT];
  memset(sum, 0, sizeof sum);
  memset(out, 0, sizeof *out);

  if ((rc = read_all(test_path, &tt, diag))) goto done;
  if ((rc = read_all(negatives_path, &nt, diag))) goto done;
  pop = cofi__malloc(((size_t)m->n_items + 1) * sizeof *pop);
  ranked = cofi__malloc((size_t)K * sizeof *ranked);
  if (!pop || !ranked) goto nomem;
  cofi__popularity(&m->user_items, pop);
  if (scorer == COFI_SCORER_MODEL && !cofi__is_als(m) &&
      (!(urow = cofi__malloc(((size_t)m->n_items + 1) * sizeof *urow)) ||
       !(uw = cofi__malloc(((size_t)m->n_items + 1) * sizeof *uw))))
    goto nomem;

  size_t tpos = 0, npos = 0;
  uint64_t line = 0;
  const char *tl = NULL, *nl = NULL;
  size_t tlen = 0, nlen = 0;
  for (;;) {
    bool has_t = next_line(&tt, &tpos, &tl, &tlen);
    bool has_n = next_line(&nt, &npos, &nl, &nlen);
    line++;
    /* A final empty line is not a test case. */
    if (has_t && tlen == 0 && tpos >= tt.len) has_t = false;
    if (has_n && nlen == 0 && npos >= nt.len) has_n = false;
    if (!has_t && !has_n) break;
    if (has_t != has_n) {
      rc = cofi__fail(diag, COFI_ERR_PARSE, has_t ? negatives_path : test_path, line,
                      "file ends at line %llu while %s has more test cases",
                      (unsigned long long)line, has_t ? test_path : negatives_path);
      goto done;
    }
    /* test: user \t item ... */
    size_t at = 0, ub, ue, ib, ie;
    if (!next_field(tl, tlen, &at, &ub, &ue) || !next_field(tl, tlen, &at, &ib, &ie) ||
        ue == ub || ie == ib) {
      rc = cofi__fail(diag, COFI_ERR_PARSE, test_path, line,
                      "expected 'user<TAB>item...', the NCF test format");
      goto done;
    }
    /* negatives: (user,item) \t neg ... */
    size_t nat = 0, pb, pe;
    next_field(nl, nlen, &nat, &pb, &pe);
    const char *comma = pe > pb ? memchr(nl + pb, ',', pe - pb) : NULL;
    if (pe - pb < 5 || nl[pb] != '(' || nl[pe - 1] != ')' || !comma) {
      rc = cofi__fail(diag, COFI_ERR_PARSE, negatives_path, line,
                      "expected '(user,item)<TAB>neg1<TAB>neg2...', the NCF negatives format");
      goto done;
    }
    size_t cpos = (size_t)(comma - nl);
    if (cpos - (pb + 1) != ue - ub || memcmp(nl + pb + 1, tl + ub, ue - ub) != 0 ||
        (pe - 1) - (cpos + 1) != ie - ib || memcmp(nl + cpos + 1, tl + ib, ie - ib) != 0) {
      char a[48], b[48];
      rc = cofi__fail(diag, COFI_ERR_PARSE, negatives_path, line,
                      "pair %s does not match line %llu of %s (user %s)",
                      cofi__quote(a, sizeof a, nl + pb, pe - pb), (unsigned long long)line,
                      test_path, cofi__quote(b, sizeof b, tl + ub, ue - ub));
      goto done;
    }
    int64_t u = cofi__idmap_find(&m->users, tl + ub, ue - ub);
    int64_t it = cofi__idmap_find(&m->items, tl + ib, ie - ib);
    /* Candidates: the test item, then every known negative. */
    size_t n_cand = 0;
    size_t fb, fe;
    size_t need = 2 + (nat <= nlen ? (nlen - nat + 1) / 2 : 0);
    if (need > cand_cap) {
      cofi_scored *c2 = cofi__realloc(cand, need * sizeof *c2);
      if (!c2) goto nomem;
      cand = c2;
      cand_cap = need;
    }
    if (u < 0) {
      out->skipped[COFI_SKIP_USER_UNKNOWN]++;
      if (it < 0) out->unknown_items++;
      continue;
    }
    if (urow) {
      const uint32_t *hist;
      size_t nh = cofi__user_history(m, (uint32_t)u, &hist, uw);
      cofi__history_scores(m, hist, uw, nh, urow);
    }
    if (it < 0) {
      out->skipped[COFI_SKIP_ITEMS_UNKNOWN]++;
      out->unknown_items++;
      continue;
    }
    cand[n_cand].index = (uint32_t)it;
    cand[n_cand].score = score_of(m, scorer, pop, opt->seed, urow, (uint32_t)u, (uint32_t)it);
    n_cand++;
    while (next_field(nl, nlen, &nat, &fb, &fe)) {
      if (fe == fb) {
        if (fb == nlen) break; /* trailing tab */
        rc = cofi__fail(diag, COFI_ERR_PARSE, negatives_path, line, "empty negative item");
        goto done;
      }
      int64_t ng = cofi__idmap_find(&m->items, nl + fb, fe - fb);
      if (ng < 0) {
        out->unknown_items++;
        continue;
      }
      /* The test item listed among its own negatives would be a second
       * hit (recall 2): it is ranked once, as the positive. */
      if (ng == it) continue;
      cand[n_cand].index = (uint32_t)ng;
      cand[n_cand].score = score_of(m, scorer, pop, opt->seed, urow, (uint32_t)u, (uint32_t)ng);
      n_cand++;
    }
    qsort(cand, n_cand, sizeof *cand, cmp_scored);
    size_t depth = n_cand < K ? n_cand : K;
    for (size_t i = 0; i < depth; i++) ranked[i] = cand[i].index;
    uint32_t test_item = (uint32_t)it;
    for (uint32_t c = 0; c < opt->n_ks; c++) {
      double mm[COFI_METRIC_COUNT];
      cofi__metrics_user(ranked, depth, &test_item, 1, opt->ks[c], mm);
      for (int j = 0; j < COFI_METRIC_COVERAGE; j++) sum[c][j] += mm[j];
    }
    /* Keep the top list for coverage. */
    if (n_users + 1 > users_cap) {
      size_t ncap = users_cap ? users_cap * 2 : 1024;
      uint32_t *t2 = cofi__realloc(top, ncap * K * sizeof *t2);
      if (!t2) goto nomem;
      top = t2;
      uint32_t *n2 = cofi__realloc(n_top, ncap * sizeof *n2);
      if (!n2) goto nomem;
      n_top = n2;
      uint32_t *s2 = cofi__realloc(tests, ncap * sizeof *s2);
      if (!s2) goto nomem;
      tests = s2;
      uint64_t *h2 = cofi__realloc(hist_ptr, (ncap + 1) * sizeof *h2);
      if (!h2) goto nomem;
      hist_ptr = h2;
      users_cap = ncap;
    }
    /* For the segments: the user's training history and test item. */
    if (n_users == 0) hist_ptr[0] = 0;
    hist_ptr[n_users + 1] =
        hist_ptr[n_users] + (m->user_items.indptr[u + 1] - m->user_items.indptr[u]);
    tests[n_users] = test_item;
    memcpy(top + (size_t)n_users * K, ranked, depth * sizeof *ranked);
    n_top[n_users] = (uint32_t)depth;
    n_users++;
    n_test_items++;
  }
  if (n_users == 0) {
    rc = cofi__fail(diag, COFI_ERR_EMPTY, negatives_path, 0,
                    "no test case can be evaluated: %llu users and %llu test items unknown to "
                    "the model",
                    (unsigned long long)out->skipped[COFI_SKIP_USER_UNKNOWN],
                    (unsigned long long)out->skipped[COFI_SKIP_ITEMS_UNKNOWN]);
    goto done;
  }
  cov = cofi__malloc(m->n_items ? m->n_items : 1);
  if (!cov) goto nomem;
  out->n_ks = opt->n_ks;
  out->n_users = n_users;
  out->n_items = m->n_items;
  out->n_test_items = n_test_items;
  for (uint32_t c = 0; c < opt->n_ks; c++) {
    out->ks[c] = opt->ks[c];
    for (int j = 0; j < COFI_METRIC_COVERAGE; j++) out->metrics[c][j] = sum[c][j] / n_users;
    out->metrics[c][COFI_METRIC_COVERAGE] =
        cofi__coverage(top, n_top, n_users, K, opt->ks[c], m->n_items, cov);
  }
  test_ptr = cofi__malloc(((size_t)n_users + 1) * sizeof *test_ptr);
  is_head = cofi__malloc(m->n_items ? m->n_items : 1);
  if (!test_ptr || !is_head) goto nomem;
  for (uint32_t i = 0; i <= n_users; i++) test_ptr[i] = i;
  uint64_t n_head = 0;
  if (cofi__head_items(&m->user_items, is_head, &n_head)) goto nomem;
  cofi__seglists sl = {.n_users = n_users, .n_items = m->n_items, .K = K, .top = top,
                       .n_top = n_top, .hist_ptr = hist_ptr, .test_ptr = test_ptr,
                       .test = tests, .is_head = is_head, .n_head = n_head};
  if (cofi__eval_segments(&sl, opt, out)) goto nomem;
  out->seconds = cofi__now() - t0;
  goto done;

nomem:
  rc = cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory in sampled evaluation");
done:
  cofi__free(tt.buf);
  cofi__free(nt.buf);
  cofi__free(pop);
  cofi__free(urow);
  cofi__free(uw);
  cofi__free(cand);
  cofi__free(ranked);
  cofi__free(cov);
  cofi__free(top);
  cofi__free(n_top);
  cofi__free(tests);
  cofi__free(hist_ptr);
  cofi__free(test_ptr);
  cofi__free(is_head);
  return rc;
}

/* ---- writing the files from a split ------------------------------------ */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static bool sorted_has(const uint32_t *a, size_t n, uint32_t v) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && a[lo] == v;
}

typedef struct pair_row {
  uint64_t key, row;
} pair_row;

static int cmp_pair_row(const void *a, const void *b) {
  const pair_row *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->row < y->row ? -1 : x->row > y->row;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static bool id_ok(const char *s, size_t len, bool user) {
  for (size_t i = 0; i < len; i++)
    if (s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || (user && s[i] == ',')) return false;
  return true;
}

int cofi_sampled_write(const cofi_dataset *ds, const uint8_t *parts, unsigned held_mask,
                       uint32_t n_negatives, uint64_t seed, const char *test_path,
                       const char *negatives_path, cofi_diag *diag) {
  if (!ds || !parts || !test_path || !negatives_path)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "missing argument");
  size_t n = ds->n, nu = ds->users.n, ni = ds->items.n;
  int rc = COFI_OK;
  FILE *ft = NULL, *fn = NULL;
  pair_row *keyed = NULL;
  /* Every user's items (all parts), sorted and unique: the exclusion lists. */
  uint64_t *ptr = cofi__calloc(nu + 1, sizeof *ptr);
  uint32_t *seen = cofi__malloc((n ? n : 1) * sizeof *seen);
  uint64_t *fill = cofi__calloc(nu + 1, sizeof *fill);
  uint32_t *pool = cofi__malloc((ni ? ni : 1) * sizeof *pool); /* training items */
  bool *is_train = cofi__calloc(ni + 1, sizeof *is_train);
  uint64_t *cases = cofi__malloc((n ? n : 1) * sizeof *cases); /* held rows, first of each pair */
  uint32_t *chosen = cofi__malloc(((size_t)n_negatives + 1) * sizeof *chosen);
  if (!ptr || !seen || !fill || !pool || !is_train || !cases || !chosen) goto nomem;
  for (size_t r = 0; r < n; r++) ptr[ds->user[r] + 1]++;
  for (size_t u = 0; u < nu; u++) ptr[u + 1] += ptr[u];
  for (size_t r = 0; r < n; r++) seen[ptr[ds->user[r]] + fill[ds->user[r]]++] = ds->item[r];
  for (size_t u = 0; u < nu; u++) {
    uint32_t *row = seen + ptr[u];
    size_t len = (size_t)(ptr[u + 1] - ptr[u]), w = 0;
    qsort(row, len, sizeof *row, cmp_u32);
    for (size_t j = 0; j < len; j++)
      if (w == 0 || row[j] != row[w - 1]) row[w++] = row[j];
    fill[u] = w; /* the unique count */
  }
  for (size_t r = 0; r < n; r++)
    if (!(held_mask & (1u << parts[r]))) is_train[ds->item[r]] = true;
  size_t n_pool = 0;
  for (size_t i = 0; i < ni; i++)
    if (is_train[i]) pool[n_pool++] = (uint32_t)i;
  /* Held-out pairs, each once, in order of first appearance: the held
   * rows sorted by (pair, row), the first of each pair kept, then sorted
   * back by row. */
  size_t n_held = 0;
  for (size_t r = 0; r < n; r++)
    if (held_mask & (1u << parts[r])) n_held++;
  keyed = cofi__malloc((n_held ? n_held : 1) * sizeof *keyed);
  if (!keyed) goto nomem;
  n_held = 0;
  for (size_t r = 0; r < n; r++)
    if (held_mask & (1u << parts[r]))
      keyed[n_held++] = (pair_row){((uint64_t)ds->user[r] << 32) | ds->item[r], r};
  qsort(keyed, n_held, sizeof *keyed, cmp_pair_row);
  size_t n_cases = 0;
  for (size_t j = 0; j < n_held; j++)
    if (j == 0 || keyed[j].key != keyed[j - 1].key) cases[n_cases++] = keyed[j].row;
  qsort(cases, n_cases, sizeof *cases, cmp_u64);
  if (n_cases == 0) {
    rc = cofi__fail(diag, COFI_ERR_EMPTY, NULL, 0, "no held-out pair to write");
    goto done;
  }
  ft = fopen(test_path, "w");
  fn = ft ? fopen(negatives_path, "w") : NULL;
  if (!ft || !fn) {
    rc = cofi__fail(diag, COFI_ERR_IO, ft ? negatives_path : test_path, 0, "cannot create: %s",
                    strerror(errno));
    goto done;
  }
  for (size_t c = 0; c < n_cases; c++) {
    size_t r = (size_t)cases[c];
    uint32_t u = ds->user[r], it = ds->item[r];
    size_t ul, il;
    const char *us = cofi__idmap_get(&ds->users, u, &ul);
    const char *is = cofi__idmap_get(&ds->items, it, &il);
    if (!id_ok(us, ul, true) || !id_ok(is, il, false)) {
      char q[64];
      rc = cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "%s ID '%s' cannot be written in the sampled format (tab, line end%s)",
                      id_ok(us, ul, true) ? "item" : "user",
                      id_ok(us, ul, true) ? cofi__quote(q, sizeof q, is, il)
                                          : cofi__quote(q, sizeof q, us, ul),
                      id_ok(us, ul, true) ? "" : " or comma");
      goto done;
    }
    const uint32_t *mine = seen + ptr[u];
    size_t n_mine = (size_t)fill[u];
    /* Candidates: pool items the user has no row with. */
    size_t n_seen_pool = 0;
    for (size_t j = 0; j < n_mine; j++) n_seen_pool += is_train[mine[j]];
    size_t avail = n_pool - n_seen_pool, want = n_negatives < avail ? n_negatives : avail;
    uint64_t st = seed * 0x9E3779B97F4A7C15ull + c + 1;
    size_t got = 0;
    if (want * 2 <= avail) {
      /* Rejection sampling: at least half the draws succeed. */
      while (got < want) {
        st += 0x9E3779B97F4A7C15ull;
        uint32_t cand = pool[mix64(st) % n_pool];
        if (sorted_has(mine, n_mine, cand)) continue;
        bool dup = false;
        for (size_t j = 0; j < got && !dup; j++) dup = chosen[j] == cand;
        if (!dup) chosen[got++] = cand;
      }
    } else {
      /* Selection sampling (Knuth's algorithm S) over the candidates in
       * pool order: each kept with probability (want - got) / (left). */
      size_t left = avail;
      for (size_t j = 0; j < n_pool && got < want; j++) {
        if (sorted_has(mine, n_mine, pool[j])) continue;
        st += 0x9E3779B97F4A7C15ull;
        if ((double)(mix64(st) >> 11) * (1.0 / 9007199254740992.0) * (double)left <
            (double)(want - got))
          chosen[got++] = pool[j];
        left--;
      }
    }
    fwrite(us, 1, ul, ft);
    fputc('\t', ft);
    fwrite(is, 1, il, ft);
    fputc('\n', ft);
    fputc('(', fn);
    fwrite(us, 1, ul, fn);
    fputc(',', fn);
    fwrite(is, 1, il, fn);
    fputc(')', fn);
    for (size_t j = 0; j < got; j++) {
      size_t nl;
      const char *ns = cofi__idmap_get(&ds->items, chosen[j], &nl);
      if (!id_ok(ns, nl, false)) {
        char q[64];
        rc = cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                        "item ID '%s' cannot be written in the sampled format (tab, line end)",
                        cofi__quote(q, sizeof q, ns, nl));
        goto done;
      }
      fputc('\t', fn);
      fwrite(ns, 1, nl, fn);
    }
    fputc('\n', fn);
  }
  if (fflush(ft) != 0 || ferror(ft) || fflush(fn) != 0 || ferror(fn))
    rc = cofi__fail(diag, COFI_ERR_IO, test_path, 0, "write error: %s", strerror(errno));
  goto done;
nomem:
  rc = cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory");
done:
  if (ft && fclose(ft) != 0 && !rc) rc = cofi__fail(diag, COFI_ERR_IO, test_path, 0, "%s", strerror(errno));
  if (fn && fclose(fn) != 0 && !rc)
    rc = cofi__fail(diag, COFI_ERR_IO, negatives_path, 0, "%s", strerror(errno));
  cofi__free(ptr);
  cofi__free(seen);
  cofi__free(fill);
  cofi__free(pool);
  cofi__free(is_train);
  cofi__free(cases);
  cofi__free(chosen);
  cofi__free(keyed);
  return rc;
}

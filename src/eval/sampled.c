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

static float score_of(const cofi_model *m, cofi_scorer scorer, const float *pop, uint64_t seed,
                      uint32_t u, uint32_t item) {
  if (scorer == COFI_SCORER_POPULARITY) return pop[item];
  if (scorer == COFI_SCORER_RANDOM) return cofi__random_score(seed, u, item);
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
  float *pop = NULL;
  cofi_scored *cand = NULL;
  uint32_t *ranked = NULL;
  uint8_t *cov = NULL;
  uint32_t *top = NULL, *n_top = NULL;
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
    if (it < 0) {
      out->skipped[COFI_SKIP_ITEMS_UNKNOWN]++;
      out->unknown_items++;
      continue;
    }
    cand[n_cand].index = (uint32_t)it;
    cand[n_cand].score = score_of(m, scorer, pop, opt->seed, (uint32_t)u, (uint32_t)it);
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
      cand[n_cand].score = score_of(m, scorer, pop, opt->seed, (uint32_t)u, (uint32_t)ng);
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
      users_cap = ncap;
    }
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
  out->seconds = cofi__now() - t0;
  goto done;

nomem:
  rc = cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory in sampled evaluation");
done:
  cofi__free(tt.buf);
  cofi__free(nt.buf);
  cofi__free(pop);
  cofi__free(cand);
  cofi__free(ranked);
  cofi__free(cov);
  cofi__free(top);
  cofi__free(n_top);
  return rc;
}

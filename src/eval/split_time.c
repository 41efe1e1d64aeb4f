/*
 * split_time.c — the global time-cutoff protocol (TIME_CUTOFF in cofi.h):
 * one instant for everybody; what was first seen before it trains, what
 * was first seen after it is predicted. This is how a model meets the
 * future in production, unlike leave-last-out, whose test items of
 * different users lie years apart and whose training often holds events
 * later than some user's test item.
 *
 * Pairs, not rows, are split (as in split.c): a user-item pair belongs to
 * the side of its first event. Rows of a training pair at or after the
 * cutoff (a re-watch, a second purchase) are left out of every part, so
 * training holds only what was known at the cutoff.
 */
#include "eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static const char *iso(int64_t t, char *buf, size_t size) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(buf, size, "%lld", (long long)t);
  return buf;
}

/* first[r]: the time of the first event of row r's user-item pair. */
static int pair_first_times(const cofi_dataset *ds, int64_t *first) {
  size_t n = ds->n;
  uint32_t n_users = ds->users.n, n_items = ds->items.n;
  uint64_t *uptr = cofi__calloc((size_t)n_users + 2, sizeof *uptr);
  uint64_t *rows = cofi__malloc((n ? n : 1) * sizeof *rows);
  uint32_t *stamp = cofi__malloc(((size_t)n_items + 1) * sizeof *stamp);
  int64_t *earliest = cofi__malloc(((size_t)n_items + 1) * sizeof *earliest);
  int rc = COFI_OK;
  if (!uptr || !rows || !stamp || !earliest) {
    rc = COFI_ERR_NOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) uptr[ds->user[i] + 2]++;
  for (uint32_t u = 0; u < n_users; u++) uptr[u + 2] += uptr[u + 1];
  for (size_t i = 0; i < n; i++) rows[uptr[ds->user[i] + 1]++] = i;
  for (uint32_t i = 0; i < n_items; i++) stamp[i] = UINT32_MAX;
  for (uint32_t u = 0; u < n_users; u++) {
    for (uint64_t t = uptr[u]; t < uptr[u + 1]; t++) {
      uint64_t r = rows[t];
      uint32_t it = ds->item[r];
      if (stamp[it] != u) {
        stamp[it] = u;
        earliest[it] = ds->time[r];
      } else if (ds->time[r] < earliest[it]) {
        earliest[it] = ds->time[r];
      }
    }
    for (uint64_t t = uptr[u]; t < uptr[u + 1]; t++) first[rows[t]] = earliest[ds->item[rows[t]]];
  }
done:
  cofi__free(uptr);
  cofi__free(rows);
  cofi__free(stamp);
  cofi__free(earliest);
  return rc;
}

/* The value at quantile f of x[0..n) (sorted in place): x[floor(f * n)]. */
static int64_t quantile(int64_t *x, size_t n, double f) {
  qsort(x, n, sizeof *x, cmp_i64);
  size_t i = (size_t)(f * (double)n);
  return x[i < n ? i : n - 1];
}

/* The cutoff text as a fraction (a decimal below 1) or a time. */
static int parse_cutoff(const char *text, bool *is_fraction, double *fraction, int64_t *t,
                        cofi_diag *diag) {
  if (!text || !*text)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "the time-cutoff protocol needs a cutoff: a date (2015-06-01), unix "
                      "seconds, or a fraction in (0, 1)");
  char q[64];
  size_t len = strlen(text);
  if (strchr(text, '.') && !strchr(text, '-') && !strchr(text, ':')) {
    char *end;
    double f = strtod(text, &end);
    if (*end == 0 && f < 1) {
      if (!(f > 0))
        return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                          "cutoff %s: a fraction must be in (0, 1)",
                          cofi__quote(q, sizeof q, text, len));
      *is_fraction = true;
      *fraction = f;
      return COFI_OK;
    }
  }
  *is_fraction = false;
  if (!cofi__parse_time(text, len, t))
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "cutoff %s: expected an ISO 8601 date or date and time "
                      "(2015-06-01, 2015-06-01T12:00:00Z), unix seconds, or a fraction in (0, 1)",
                      cofi__quote(q, sizeof q, text, len));
  return COFI_OK;
}

/* Resolves both cutoffs; first: [ds->n] pair first times (filled). */
static int resolve(const cofi_dataset *ds, const cofi_split_options *opt, int64_t *first,
                   int64_t *val_from, int64_t *test_from, cofi_diag *diag) {
  if (!ds->has_time)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "the time-cutoff protocol needs timestamps, and %s has no timestamp "
                      "column (name it timestamp/time, or give --time-col)",
                      ds->source[0] ? ds->source : "the data");
  size_t n = ds->n;
  if (n == 0) return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "no interaction to split");
  bool is_fraction = false;
  double f = 0;
  int64_t c = 0;
  int rc = parse_cutoff(opt->cutoff, &is_fraction, &f, &c, diag);
  if (rc) return rc;
  int64_t lo = ds->time[0], hi = ds->time[0];
  for (size_t i = 1; i < n; i++) {
    if (ds->time[i] < lo) lo = ds->time[i];
    if (ds->time[i] > hi) hi = ds->time[i];
  }
  char a[40], b[40], d[40], q[64];
  int64_t *tmp = cofi__malloc(n * sizeof *tmp);
  if (!tmp) return cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory while splitting");
  if (is_fraction) {
    memcpy(tmp, ds->time, n * sizeof *tmp);
    c = quantile(tmp, n, f);
    if (c <= lo) {
      rc = cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "cutoff %g falls on the first timestamp (%s): no event is before it, "
                      "so training would be empty; give a larger fraction",
                      f, iso(lo, a, sizeof a));
      goto done;
    }
  } else if (c <= lo || c > hi) {
    rc = cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                    "cutoff %s (%s) is outside the data's time range: events run from %s to "
                    "%s; the cutoff must be after the first event and at or before the last",
                    cofi__quote(q, sizeof q, opt->cutoff, strlen(opt->cutoff)),
                    iso(c, d, sizeof d), iso(lo, a, sizeof a), iso(hi, b, sizeof b));
    goto done;
  }
  if ((rc = pair_first_times(ds, first))) {
    rc = cofi__fail(diag, rc, NULL, 0, "out of memory while splitting");
    goto done;
  }
  /* The training side: rows of pairs first seen before the cutoff, up to it. */
  size_t m = 0, n_test = 0;
  for (size_t i = 0; i < n; i++) {
    if (first[i] >= c) n_test++;
    else if (ds->time[i] < c) tmp[m++] = ds->time[i];
  }
  if (n_test == 0) {
    rc = cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                    "cutoff %s leaves the test side empty: every user-item pair was first seen "
                    "before it (later events only repeat earlier pairs); give an earlier cutoff",
                    iso(c, d, sizeof d));
    goto done;
  }
  /* Validation: the same share of the training side as test is of all. */
  double share = (double)n_test / (double)(n_test + m);
  int64_t v = quantile(tmp, m, 1.0 - share);
  if (v <= tmp[0]) v = c; /* ties at the start: no validation part */
  *val_from = v;
  *test_from = c;
done:
  cofi__free(tmp);
  return rc;
}

int cofi_split_cutoffs(const cofi_dataset *ds, const cofi_split_options *opt,
                       int64_t *validation_from, int64_t *test_from, cofi_diag *diag) {
  if (!ds || !opt || !validation_from || !test_from)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "cofi_split_cutoffs: dataset, options and outputs are required");
  int64_t *first = cofi__malloc((ds->n ? ds->n : 1) * sizeof *first);
  if (!first) return cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory while splitting");
  int rc = resolve(ds, opt, first, validation_from, test_from, diag);
  cofi__free(first);
  return rc;
}

int cofi__split_time_cutoff(const cofi_dataset *ds, const cofi_split_options *opt,
                            uint8_t *parts, uint64_t counts[COFI_PART_COUNT], cofi_diag *diag) {
  int64_t *first = cofi__malloc((ds->n ? ds->n : 1) * sizeof *first);
  if (!first) return cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory while splitting");
  int64_t v, c;
  int rc = resolve(ds, opt, first, &v, &c, diag);
  if (!rc) {
    if (counts) memset(counts, 0, COFI_PART_COUNT * sizeof *counts);
    for (size_t i = 0; i < ds->n; i++) {
      uint8_t p;
      if (first[i] >= c) p = COFI_PART_TEST;
      else if (ds->time[i] >= c) p = COFI_PART_NONE;
      else if (first[i] >= v) p = COFI_PART_VALIDATION;
      else p = COFI_PART_TRAIN;
      parts[i] = p;
      if (counts && p < COFI_PART_COUNT) counts[p]++;
    }
  }
  cofi__free(first);
  return rc;
}

int cofi_split_part_users(const cofi_dataset *ds, const uint8_t *parts, cofi_part part,
                          unsigned train_mask, uint64_t *n_users, uint64_t *n_without_training) {
  *n_users = *n_without_training = 0;
  if (!ds || !parts) return COFI_ERR_INVALID;
  uint8_t *flag = cofi__calloc((size_t)ds->users.n + 1, 1); /* bit 1: in part, 2: trains */
  if (!flag) return COFI_ERR_NOMEM;
  for (size_t i = 0; i < ds->n; i++) {
    if (parts[i] == (uint8_t)part) flag[ds->user[i]] |= 1;
    if (parts[i] < COFI_PART_COUNT && (train_mask & COFI_PART_BIT(parts[i])))
      flag[ds->user[i]] |= 2;
  }
  for (uint32_t u = 0; u < ds->users.n; u++) {
    if (!(flag[u] & 1)) continue;
    (*n_users)++;
    if (!(flag[u] & 2)) (*n_without_training)++;
  }
  cofi__free(flag);
  return COFI_OK;
}

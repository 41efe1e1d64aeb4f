/*
 * split.c — evaluation protocols: labelling every interaction with a part
 * (train, validation, test, and the fold-in histories of held-out users),
 * selecting parts into datasets of their own, and writing them as CSV.
 *
 * Splits work on user-item pairs, not rows: a log with several events for
 * one pair (watch, then like) keeps them all in one part, so a held-out item
 * is never also a training item of that user. Rows are bucketed by user
 * with a stable counting sort, so "input order" survives everywhere it is
 * the tie-break. Randomness comes from a per-user generator seeded by
 * (seed, user index): a user's split does not depend on other users.
 */
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cofi_split_options cofi_split_options_default(void) {
  cofi_split_options o;
  memset(&o, 0, sizeof o);
  o.protocol = COFI_PROTOCOL_LEAVE_LAST_OUT;
  o.holdout = 0.2;
  o.heldout_users = 100;
  o.foldin_fraction = 0.8;
  o.seed = 0;
  o.heldout_users_fraction = 0;
  o.cutoff = NULL;
  return o;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias worth worrying about (n < 2^32). */
static uint32_t below(uint64_t *s, uint32_t n) {
  return (uint32_t)(((splitmix(s) >> 32) * (uint64_t)n) >> 32);
}

static void shuffle(uint32_t *a, uint32_t n, uint64_t *s) {
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = below(s, i);
    uint32_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

/* One user-item pair: its earliest time and first row (input order). */
typedef struct upair {
  int64_t time;
  uint64_t first_row;
} upair;

static int cmp_upair(const void *a, const void *b) {
  const upair *x = a, *y = b;
  if (x->time != y->time) return x->time < y->time ? -1 : 1;
  return (x->first_row > y->first_row) - (x->first_row < y->first_row);
}

static uint32_t round_share(double f, uint32_t n) { return (uint32_t)floor(f * n + 0.5); }

int cofi_split(const cofi_dataset *ds, const cofi_split_options *opt, uint8_t *parts,
               uint64_t counts[COFI_PART_COUNT], cofi_diag *diag) {
  if (!ds || !opt || !parts)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "cofi_split: dataset, options and parts are required");
  switch (opt->protocol) {
    case COFI_PROTOCOL_LEAVE_LAST_OUT: break;
    case COFI_PROTOCOL_RANDOM:
      if (!(opt->holdout > 0 && opt->holdout < 0.5))
        return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                          "holdout must be in (0, 0.5) (the share of each user's items in test, "
                          "and again in validation), got %g",
                          opt->holdout);
      break;
    case COFI_PROTOCOL_TIME_CUTOFF: return cofi__split_time_cutoff(ds, opt, parts, counts, diag);
    case COFI_PROTOCOL_USERS:
      if (opt->heldout_users_fraction != 0 &&
          !(opt->heldout_users_fraction > 0 && opt->heldout_users_fraction < 0.5))
        return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                          "heldout_users_fraction must be in (0, 0.5) (test users, and as many "
                          "validation users), got %g", opt->heldout_users_fraction);
      if (opt->heldout_users < 1 && opt->heldout_users_fraction == 0)
        return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "heldout_users must be >= 1");
      if (!(opt->foldin_fraction > 0 && opt->foldin_fraction < 1))
        return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                          "foldin_fraction must be in (0, 1), got %g", opt->foldin_fraction);
      break;
    default:
      return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "unknown protocol %d", (int)opt->protocol);
  }
  size_t n = ds->n;
  uint32_t n_users = ds->users.n, n_items = ds->items.n;
  int rc = COFI_OK;
  uint64_t *uptr = cofi__calloc((size_t)n_users + 2, sizeof *uptr);
  uint64_t *rows = cofi__malloc((n ? n : 1) * sizeof *rows);
  uint32_t *stamp = cofi__malloc(((size_t)n_items + 1) * sizeof *stamp);
  uint32_t *slot = cofi__malloc(((size_t)n_items + 1) * sizeof *slot);
  upair *pairs = cofi__malloc((n ? n : 1) * sizeof *pairs);
  uint32_t *order = cofi__malloc((n ? n : 1) * sizeof *order);
  uint8_t *pair_part = cofi__malloc(n ? n : 1);
  uint32_t *npairs = cofi__calloc((size_t)n_users + 1, sizeof *npairs);
  uint8_t *user_role = cofi__calloc((size_t)n_users + 1, 1); /* USERS: 0 train, 1 val, 2 test */
  uint32_t *eligible = cofi__malloc(((size_t)n_users + 1) * sizeof *eligible);
  if (!uptr || !rows || !stamp || !slot || !pairs || !order || !pair_part || !npairs ||
      !user_role || !eligible) {
    rc = cofi__fail(diag, COFI_ERR_NOMEM, NULL, 0, "out of memory while splitting");
    goto done;
  }
  /* Stable bucketing of rows by user. */
  for (size_t i = 0; i < n; i++) uptr[ds->user[i] + 2]++;
  for (uint32_t u = 0; u < n_users; u++) uptr[u + 2] += uptr[u + 1];
  for (size_t i = 0; i < n; i++) rows[uptr[ds->user[i] + 1]++] = i;
  /* now uptr[u]..uptr[u+1] are user u's rows */
  for (uint32_t i = 0; i < n_items; i++) stamp[i] = UINT32_MAX;

  /* Pass 1 (USERS): who can be held out. */
  if (opt->protocol == COFI_PROTOCOL_USERS) {
    uint32_t n_eligible = 0;
    for (uint32_t u = 0; u < n_users; u++) {
      uint32_t np = 0;
      for (uint64_t t = uptr[u]; t < uptr[u + 1]; t++) {
        uint32_t it = ds->item[rows[t]];
        if (stamp[it] != u) {
          stamp[it] = u;
          np++;
        }
      }
      npairs[u] = np;
      if (np >= 2) eligible[n_eligible++] = u;
    }
    for (uint32_t i = 0; i < n_items; i++) stamp[i] = UINT32_MAX;
    uint32_t held = opt->heldout_users;
    if (opt->heldout_users_fraction > 0) {
      held = round_share(opt->heldout_users_fraction, n_users);
      if (held < 1) held = 1;
    }
    uint64_t want = 2 * (uint64_t)held;
    if (want > n_eligible || (uint64_t)n_users - want < 1) {
      rc = cofi__fail(diag, COFI_ERR_INVALID, NULL, 0,
                      "cannot hold out %u test and %u validation users: %u users have >= 2 "
                      "items (of %u users; at least one must stay for training)",
                      held, held, n_eligible, n_users);
      goto done;
    }
    uint64_t s = opt->seed ^ 0x5DEECE66Dull;
    /* Partial Fisher-Yates: the first 2N of a seeded shuffle. */
    for (uint32_t i = 0; i < want; i++) {
      uint32_t j = i + below(&s, n_eligible - i);
      uint32_t t = eligible[i];
      eligible[i] = eligible[j];
      eligible[j] = t;
      user_role[eligible[i]] = i < held ? 2 : 1;
    }
  }

  if (counts) memset(counts, 0, COFI_PART_COUNT * sizeof *counts);
  for (uint32_t u = 0; u < n_users; u++) {
    /* The user's distinct items, each with its earliest time and first row. */
    uint32_t np = 0;
    for (uint64_t t = uptr[u]; t < uptr[u + 1]; t++) {
      uint64_t r = rows[t];
      uint32_t it = ds->item[r];
      int64_t tm = ds->has_time ? ds->time[r] : 0;
      if (stamp[it] != u) {
        stamp[it] = u;
        slot[it] = np;
        pairs[np].time = tm;
        pairs[np].first_row = r;
        np++;
      } else if (tm < pairs[slot[it]].time) {
        pairs[slot[it]].time = tm;
      }
    }
    for (uint32_t p = 0; p < np; p++) {
      order[p] = p;
      pair_part[p] = COFI_PART_TRAIN;
    }
    uint64_t s = opt->seed * 0x9E3779B97F4A7C15ull ^ ((uint64_t)u * 0xD1B54A32D192ED03ull);
    switch (opt->protocol) {
      case COFI_PROTOCOL_LEAVE_LAST_OUT: {
        if (np < 2) break;
        /* The two latest pairs by (time, first row): one linear pass. */
        uint32_t last = 0, second = UINT32_MAX;
        for (uint32_t p = 1; p < np; p++) {
          if (cmp_upair(&pairs[p], &pairs[last]) > 0) {
            second = last;
            last = p;
          } else if (second == UINT32_MAX || cmp_upair(&pairs[p], &pairs[second]) > 0) {
            second = p;
          }
        }
        pair_part[last] = COFI_PART_TEST;
        pair_part[second] = COFI_PART_VALIDATION;
        break;
      }
      case COFI_PROTOCOL_RANDOM: {
        if (np < 3) break;
        uint32_t h = round_share(opt->holdout, np);
        if (h > (np - 1) / 2) h = (np - 1) / 2;
        shuffle(order, np, &s);
        for (uint32_t i = 0; i < h; i++) {
          pair_part[order[i]] = COFI_PART_TEST;
          pair_part[order[h + i]] = COFI_PART_VALIDATION;
        }
        break;
      }
      case COFI_PROTOCOL_USERS: {
        if (!user_role[u]) break;
        uint32_t f = round_share(opt->foldin_fraction, np);
        if (f < 1) f = 1;
        if (f > np - 1) f = np - 1;
        shuffle(order, np, &s);
        uint8_t held = user_role[u] == 2 ? COFI_PART_TEST : COFI_PART_VALIDATION;
        uint8_t hist = user_role[u] == 2 ? COFI_PART_TEST_FOLDIN : COFI_PART_VALIDATION_FOLDIN;
        for (uint32_t i = 0; i < np; i++) pair_part[order[i]] = i < f ? hist : held;
        break;
      }
      case COFI_PROTOCOL_TIME_CUTOFF: break; /* split_time.c; returned above */
    }
    for (uint64_t t = uptr[u]; t < uptr[u + 1]; t++) {
      uint64_t r = rows[t];
      parts[r] = pair_part[slot[ds->item[r]]];
      if (counts) counts[parts[r]]++;
    }
  }

done:
  cofi__free(uptr);
  cofi__free(rows);
  cofi__free(stamp);
  cofi__free(slot);
  cofi__free(pairs);
  cofi__free(order);
  cofi__free(pair_part);
  cofi__free(npairs);
  cofi__free(user_role);
  cofi__free(eligible);
  return rc;
}

int cofi_dataset_select(const cofi_dataset *ds, const uint8_t *parts, unsigned mask,
                        cofi_dataset **out, cofi_diag *diag) {
  *out = NULL;
  if (!ds || !parts)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "cofi_dataset_select: dataset and parts are required");
  cofi_dataset *d = NULL;
  int rc = cofi__dataset_new(&d);
  if (rc) goto fail;
  d->has_time = ds->has_time;
  snprintf(d->source, sizeof d->source, "%s", ds->source);
  for (size_t i = 0; i < ds->n; i++) {
    if (parts[i] >= COFI_PART_COUNT || !(mask & COFI_PART_BIT(parts[i]))) continue;
    size_t ul, il;
    const char *us = cofi__idmap_get(&ds->users, ds->user[i], &ul);
    const char *is = cofi__idmap_get(&ds->items, ds->item[i], &il);
    rc = cofi__dataset_add(d, us, ul, is, il, ds->value[i], ds->has_time ? ds->time[i] : 0);
    if (rc) goto fail;
  }
  if (d->n == 0) {
    rc = cofi__fail(diag, COFI_ERR_EMPTY, NULL, 0, "the selected parts hold no interaction");
    goto fail_quiet;
  }
  *out = d;
  return COFI_OK;
fail:
  cofi__fail(diag, rc, NULL, 0, "selecting interactions: %s", cofi_error_message(rc));
fail_quiet:
  cofi_dataset_free(d);
  return rc;
}

int cofi_dataset_append(cofi_dataset *dst, const cofi_dataset *src, cofi_diag *diag) {
  if (!dst || !src)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "cofi_dataset_append: both datasets are required");
  for (size_t i = 0; i < src->n; i++) {
    size_t ul, il;
    const char *us = cofi__idmap_get(&src->users, src->user[i], &ul);
    const char *is = cofi__idmap_get(&src->items, src->item[i], &il);
    int rc = cofi__dataset_add(dst, us, ul, is, il, src->value[i], src->has_time ? src->time[i] : 0);
    if (rc) return cofi__fail(diag, rc, NULL, 0, "appending interactions: %s", cofi_error_message(rc));
  }
  dst->has_time = dst->has_time && src->has_time;
  return COFI_OK;
}

/* Writes one CSV field, quoted (RFC 4180) when it holds a delimiter,
 * quote or line break, or starts/ends with a space. */
static void put_field(FILE *f, const char *s, size_t len) {
  bool quote = len == 0 || s[0] == ' ' || s[len - 1] == ' ';
  for (size_t i = 0; i < len && !quote; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t') quote = true;
  if (!quote) {
    fwrite(s, 1, len, f);
    return;
  }
  fputc('"', f);
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '"') fputc('"', f);
    fputc(s[i], f);
  }
  fputc('"', f);
}

int cofi_dataset_write_csv(const cofi_dataset *ds, const uint8_t *parts, unsigned mask,
                           const char *path, cofi_diag *diag) {
  if (!ds || !path)
    return cofi__fail(diag, COFI_ERR_INVALID, NULL, 0, "cofi_dataset_write_csv: dataset and path are required");
  size_t plen = strlen(path);
  char *tmp = cofi__malloc(plen + 32);
  if (!tmp) return cofi__fail(diag, COFI_ERR_NOMEM, path, 0, "out of memory");
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  int rc = COFI_OK;
  FILE *f = fopen(tmp, "w");
  if (!f) {
    rc = cofi__fail(diag, COFI_ERR_IO, path, 0, "cannot create %s: %s", tmp, strerror(errno));
    goto done;
  }
  fputs(ds->has_time ? "user_id,item_id,value,timestamp\n" : "user_id,item_id,value\n", f);
  for (size_t i = 0; i < ds->n; i++) {
    if (parts && (parts[i] >= COFI_PART_COUNT || !(mask & COFI_PART_BIT(parts[i])))) continue;
    size_t ul, il;
    const char *us = cofi__idmap_get(&ds->users, ds->user[i], &ul);
    const char *is = cofi__idmap_get(&ds->items, ds->item[i], &il);
    put_field(f, us, ul);
    fputc(',', f);
    put_field(f, is, il);
    fprintf(f, ",%.9g", (double)ds->value[i]);
    if (ds->has_time) fprintf(f, ",%lld", (long long)ds->time[i]);
    fputc('\n', f);
  }
  int werr = ferror(f) ? errno : 0;
  if (fflush(f) != 0 && !werr) werr = errno;
  if (!werr && fsync(fileno(f)) != 0) werr = errno;
  if (fclose(f) != 0 && !werr) werr = errno;
  if (werr) {
    rc = cofi__fail(diag, COFI_ERR_IO, path, 0, "writing %s: %s", path, strerror(werr));
    unlink(tmp);
    goto done;
  }
  if (rename(tmp, path) != 0) {
    rc = cofi__fail(diag, COFI_ERR_IO, path, 0, "renaming %s to %s: %s", tmp, path,
                    strerror(errno));
    unlink(tmp);
  }
done:
  cofi__free(tmp);
  return rc;
}

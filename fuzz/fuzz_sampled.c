/*
 * fuzz_sampled.c — the readers of the NCF sampled-negatives protocol
 * (cofi_evaluate_sampled: a test file "user\titem..." and a negatives file
 * "(user,item)\tneg1\tneg2...") on hostile bytes.
 *
 * The input is split at its first NUL byte: before it the test file, after
 * it the negatives file (no NUL: the same bytes serve as both). The first
 * byte chooses the scorer (model, popularity, random) and the cutoffs.
 * The model is trained once, at start-up, on users "0".."19" and items
 * "0".."29" (numeric, as in the NCF files).
 *
 * Properties: on success every metric is a number in [0, 1] and the counts
 * add up (n_users evaluated <= the test lines); on failure a message.
 */
#include "fuzz_util.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cofi_model *model;

static void check(int ok) {
  if (!ok) __builtin_trap();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  cofi_dataset *ds;
  if (cofi__dataset_new(&ds)) abort();
  char u[16], it[16];
  for (int a = 0; a < 20; a++)
    for (int j = 0; j < 6; j++) {
      int ul = snprintf(u, sizeof u, "%d", a), il = snprintf(it, sizeof it, "%d", (a * 7 + j * 5) % 30);
      if (cofi__dataset_add(ds, u, (size_t)ul, it, (size_t)il, 1, 0)) abort();
    }
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 2;
  p.threads = 1;
  cofi_diag d;
  if (cofi_train(ds, &p, &model, &d)) abort();
  cofi_dataset_free(ds);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t sel = fuzz_take(&data, &size);
  const uint8_t *nul = memchr(data, 0, size);
  size_t tlen = nul ? (size_t)(nul - data) : size;
  const char *test = fuzz_file(0, data, tlen);
  const char *neg = nul ? fuzz_file(1, nul + 1, size - tlen - 1) : test;
  cofi_eval_options o = cofi_eval_options_default();
  o.threads = 1;
  o.n_ks = 1 + (sel >> 2) % 3;
  for (uint32_t i = 0; i < o.n_ks; i++) o.ks[i] = 1 + i * 4 + (sel >> 4);
  cofi_eval_result r;
  cofi_diag d;
  int rc = cofi_evaluate_sampled(model, (cofi_scorer)(sel % 3), test, neg, &o, &r, &d);
  if (rc == COFI_OK) {
    check(r.n_users > 0);
    for (uint32_t i = 0; i < r.n_ks; i++)
      for (int mt = 0; mt < COFI_METRIC_COUNT; mt++)
        check(r.metrics[i][mt] >= 0 && r.metrics[i][mt] <= 1 + 1e-9);
  } else {
    check(rc < 0 && d.message[0] != 0);
  }
  return 0;
}

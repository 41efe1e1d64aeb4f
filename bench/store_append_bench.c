/*
 * store_append_bench.c — the group-commit writer's cost per event without
 * HTTP: cofi_store_append_events on transactions shaped like the ones
 * `cofi serve --store` commits under bench/store/feedback_batch.lua
 * (users "b<t>-<n % 5000>" of two wrk threads, items "<n % 1000>", event
 * "like", timestamp now as the server gives an event without one), so
 * the server's serial part can be measured and profiled alone.
 *
 * Build: bench/build.sh build (binaries in build/bench/). Run:
 *   build/bench/store_append_bench URL [--events-per-commit N] [--commits N]
 *       [--users N] [--items N]
 * e.g. build/bench/store_append_bench sqlite:/tmp/a.db --events-per-commit 3000
 * Prints wall and CPU microseconds per event over all commits, and over
 * the second half alone (users and items then mostly exist already).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: store_append_bench URL [--events-per-commit N] [--commits N] "
                    "[--users N] [--items N]\n");
    return 2;
  }
  const char *url = argv[1];
  long per = 3000, commits = 200, users = 5000, items = 1000;
  for (int i = 2; i + 1 < argc; i += 2) {
    long v = strtol(argv[i + 1], NULL, 10);
    if (v <= 0) {
      fprintf(stderr, "store_append_bench: %s: '%s' is not a positive number\n", argv[i],
              argv[i + 1]);
      return 2;
    }
    if (!strcmp(argv[i], "--events-per-commit")) per = v;
    else if (!strcmp(argv[i], "--commits")) commits = v;
    else if (!strcmp(argv[i], "--users")) users = v;
    else if (!strcmp(argv[i], "--items")) items = v;
    else {
      fprintf(stderr, "store_append_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  cofi_store *s = NULL;
  cofi_diag d = {0};
  if (cofi_store_open(url, &s, &d)) {
    fprintf(stderr, "store_append_bench: %s\n", d.message);
    return 1;
  }
  cofi_store_event *ev = calloc((size_t)per, sizeof *ev);
  char *text = malloc((size_t)per * 32);
  if (!ev || !text) return 1;
  long n[2] = {0, 0};
  double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID), wh = 0, ch = 0;
  for (long c = 0; c < commits; c++) {
    if (c == commits / 2) {
      wh = now_s(CLOCK_MONOTONIC);
      ch = now_s(CLOCK_PROCESS_CPUTIME_ID);
    }
    char *t = text;
    for (long i = 0; i < per; i++) {
      int th = (int)(i / 100) % 2; /* requests of 100 events from two threads */
      long k = n[th]++;
      int ul = sprintf(t, "b%d-%ld", th, k % users);
      ev[i].user_id = t;
      ev[i].user_len = (size_t)ul;
      t += ul + 1;
      int il = sprintf(t, "%ld", k % items);
      ev[i].item_id = t;
      ev[i].item_len = (size_t)il;
      t += il + 1;
      ev[i].event = "like";
      ev[i].event_len = 4;
      ev[i].value = 1;
      ev[i].timestamp = (int64_t)time(NULL); /* the server's default: now */
      ev[i].has_timestamp = 1;
    }
    if (cofi_store_append_events(s, ev, (size_t)per, &d)) {
      fprintf(stderr, "store_append_bench: %s\n", d.message);
      return 1;
    }
  }
  double w1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
  double all = (double)per * (double)commits, half = (double)per * (double)(commits - commits / 2);
  printf("%s: %ld commits of %ld events: %.2f us wall, %.2f us CPU per event; second half "
         "%.2f us wall, %.2f us CPU per event\n",
         cofi_store_backend(s), commits, per, (w1 - w0) * 1e6 / all, (c1 - c0) * 1e6 / all,
         (w1 - wh) * 1e6 / half, (c1 - ch) * 1e6 / half);
  cofi_store_close(s);
  free(ev);
  free(text);
  return 0;
}

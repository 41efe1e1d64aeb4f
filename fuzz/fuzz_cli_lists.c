/*
 * fuzz_cli_lists.c — the command line's text parsers (tools/args.c) on
 * hostile bytes. The first input byte chooses the parser:
 *   0  --event-weights "name=weight,..."   (cli_parse_event_weights)
 *   1  comma lists with "\," escapes       (cli_split_list: --liked,
 *                                            --exclude, --metrics ...)
 *   2  parameter files "key = value"       (cli_params_read, --params)
 * Error messages go to stderr (run with -close_fd_mask=2 to silence them).
 *
 * Properties beyond "no crash": accepted event weights are what the
 * library accepts (1..64 named, unique, finite, >= 0 weights); a split
 * list re-joined with escapes splits back into the same elements.
 */
#include "cli.h"
#include "fuzz_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok) {
  if (!ok) __builtin_trap();
}

typedef struct list {
  char **items;
  size_t *lens;
  size_t n, cap;
} list;

static bool collect(const char *s, size_t len, void *ctx) {
  list *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 8;
    char **it = realloc(l->items, cap * sizeof *it);
    if (!it) return false;
    l->items = it;
    size_t *ln = realloc(l->lens, cap * sizeof *ln);
    if (!ln) return false;
    l->lens = ln;
    l->cap = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy) return false;
  memcpy(copy, s, len);
  copy[len] = 0;
  l->items[l->n] = copy;
  l->lens[l->n++] = len;
  return true;
}

static void list_free(list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  free(l->lens);
}

static void split_roundtrip(const char *text) {
  list a = {0}, b = {0};
  if (!cli_split_list(text, collect, &a)) goto done;
  /* Re-escape and join: every element must come back unchanged. */
  size_t cap = 1;
  for (size_t i = 0; i < a.n; i++) cap += 2 * a.lens[i] + 1;
  char *joined = malloc(cap);
  if (!joined) goto done;
  size_t o = 0;
  for (size_t i = 0; i < a.n; i++) {
    if (i) joined[o++] = ',';
    for (size_t j = 0; j < a.lens[i]; j++) {
      char c = a.items[i][j];
      /* A lone trailing backslash is literal; escaping it keeps it so. */
      if (c == ',' || c == '\\') joined[o++] = '\\';
      joined[o++] = c;
    }
  }
  joined[o] = 0;
  if (cli_split_list(joined, collect, &b)) {
    check(a.n == b.n);
    for (size_t i = 0; i < a.n; i++)
      check(a.lens[i] == b.lens[i] && memcmp(a.items[i], b.items[i], a.lens[i]) == 0);
  }
  free(joined);
done:
  list_free(&a);
  list_free(&b);
}

static void event_weights(const char *text) {
  cli_data_opts o;
  cli_data_opts_init(&o);
  if (!cli_parse_event_weights("fuzz", text, &o)) return;
  size_t n = o.read.n_event_weights;
  check(n >= 1 && n <= sizeof o.weights / sizeof o.weights[0]);
  check(o.read.event_weights == o.weights);
  for (size_t i = 0; i < n; i++) {
    check(o.weights[i].event && o.weights[i].event[0]);
    check(isfinite(o.weights[i].weight) && o.weights[i].weight >= 0);
    for (size_t j = 0; j < i; j++) check(strcmp(o.weights[i].event, o.weights[j].event) != 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t mode = fuzz_take(&data, &size) % 3;
  if (mode == 2) {
    cofi_params p = cofi_params_default();
    if (cli_params_read("fuzz", fuzz_file(0, data, size), &p) == CLI_EXIT_OK)
      cofi_params_check(&p, NULL);
    return 0;
  }
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  if (mode == 0) event_weights(text);
  else split_roundtrip(text);
  free(text);
  return 0;
}

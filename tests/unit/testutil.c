/*
 * testutil.c — temporary files and shared-data lookup for the unit tests.
 */
#include "testutil.h"

#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_mkdtemp(void) {
  char tmpl[] = "/tmp/cofi-test.XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

void tu_rmdir(const char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

char *tu_write_file(const char *dir, const char *name, const void *data, size_t len) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *path = malloc(n);
  assert_non_null(path);
  snprintf(path, n, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  return path;
}

unsigned char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*len ? *len : 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

char *tu_shared_data(const char *rel) {
  const char *root = getenv("COFI_SHARED");
  if (!root) root = "../shared";
  size_t n = strlen(root) + strlen(rel) + 8;
  char *path = malloc(n);
  assert_non_null(path);
  snprintf(path, n, "%s/data/%s", root, rel);
  if (access(path, R_OK) != 0) { free(path); return NULL; }
  return path;
}

int tu_run_per_kernel_set(const char *group, const struct CMUnitTest *tests, size_t n) {
  int failed = 0;
  for (size_t i = 0; cofi__kernel_names[i]; i++) {
    const char *set = cofi__kernel_names[i];
    char name[128];
    snprintf(name, sizeof name, "%s [kernels %s]", group, set);
    if (cofi__kernels_use(set) != COFI_OK) {
      printf("[ SKIPPED  ] %s: this CPU does not run it\n", name);
      continue;
    }
    failed += _cmocka_run_group_tests(name, tests, n, NULL, NULL);
  }
  return failed;
}

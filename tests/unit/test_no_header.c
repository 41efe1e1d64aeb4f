/*
 * test_no_header.c — cofi_read_options.no_header: a generic CSV/TSV without
 * a header is read with column numbers; the first line is data; defaults
 * user 1, item 2 and no value; bad column numbers are refused with a
 * message naming the range; every row must have as many fields as the
 * first; a first line that looks like a header is data too.
 */
#include "testutil.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int read_text(const char *text, const cofi_read_options *o, cofi_dataset **ds,
                     cofi_diag *d) {
  char *dir = tu_mkdtemp();
  char *path = tu_write_file(dir, "log.csv", text, strlen(text));
  int rc = cofi_dataset_read(path, o, ds, d);
  free(path);
  tu_rmdir(dir);
  free(dir);
  return rc;
}

static void id_is(const cofi__idmap *m, uint32_t i, const char *want) {
  size_t len;
  const char *s = cofi__idmap_get(m, i, &len);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(s, want, len);
}

static void defaults_and_first_row(void **state) {
  (void)state;
  cofi_read_options o = cofi_read_options_default();
  o.no_header = 1;
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  assert_int_equal(read_text("u1,i1,3\nu2,i2,5\nu1,i2,7\n", &o, &ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_n_interactions(ds), 3); /* the first line is data */
  id_is(&ds->users, 0, "u1");
  id_is(&ds->items, 1, "i2");
  for (size_t k = 0; k < 3; k++) assert_float_equal(ds->value[k], 1.0f, 0); /* no value column */
  assert_non_null(strstr(cofi_dataset_columns(ds), "no header: column 1 (user), column 2 (item)"));
  assert_non_null(strstr(cofi_dataset_columns(ds), "1 other column ignored"));
  cofi_dataset_free(ds);

  /* numbers in any order, with a value and a time column, tab-separated */
  o.user_col = "3";
  o.item_col = "1";
  o.value_col = "2";
  o.time_col = "4";
  assert_int_equal(read_text("user_id\t2.5\tbob\t100\nx\t4\tann\t200\n", &o, &ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_n_interactions(ds), 2);
  id_is(&ds->users, 0, "bob");
  id_is(&ds->items, 0, "user_id"); /* a header-like first line is data */
  assert_float_equal(ds->value[0], 2.5f, 0);
  assert_float_equal(ds->value[1], 4.0f, 0);
  assert_true(ds->has_time);
  assert_int_equal(ds->time[1], 200);
  cofi_dataset_free(ds);
}

static void bad_columns_are_refused(void **state) {
  (void)state;
  cofi_read_options o = cofi_read_options_default();
  o.no_header = 1;
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  o.item_col = "4";
  assert_int_equal(read_text("a,b,1\n", &o, &ds, &d), COFI_ERR_INVALID);
  assert_null(ds);
  assert_non_null(strstr(d.message, "item column must be a column number in 1..3"));
  o.item_col = "item_id"; /* a name means nothing without a header */
  assert_int_equal(read_text("a,b,1\n", &o, &ds, &d), COFI_ERR_INVALID);
  o.item_col = "0";
  assert_int_equal(read_text("a,b,1\n", &o, &ds, &d), COFI_ERR_INVALID);
  o.item_col = NULL;
  o.value_col = "3";
  assert_int_equal(read_text("a,b,1\nc,d\n", &o, &ds, &d), COFI_ERR_PARSE);
  assert_int_equal(d.line, 2);
  assert_int_equal(read_text("a,b,x\n", &o, &ds, &d), COFI_ERR_PARSE);
  assert_int_equal(d.line, 1);
  assert_int_equal(read_text("", &o, &ds, &d), COFI_ERR_EMPTY);
  /* without no_header, the same file's first line is the header */
  o = cofi_read_options_default();
  assert_int_equal(read_text("a,b,1\nc,d,2\n", &o, &ds, &d), COFI_ERR_PARSE);
  assert_non_null(strstr(d.message, "no column 'user_id'"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_and_first_row),
      cmocka_unit_test(bad_columns_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

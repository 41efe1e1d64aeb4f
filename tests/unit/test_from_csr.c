/*
 * test_from_csr.c — cofi_dataset_from_csr (src/data/from_arrays.c): IDs
 * equal to the matrix's indices (empty rows and columns included), values
 * and zeros kept, every refusal with its message, a model trained from a
 * CSR equal to one trained from the same data read from a file whose first
 * appearances give the same order, and out-of-memory at every allocation.
 */
#include "testutil.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*   3 users x 4 items; user 1 has no items, item 3 no users.
 *   row 0: items 2 (value 2), 0 (value 1)
 *   row 2: items 1 (value 0), 2 (value 5)                      */
static const uint64_t indptr[] = {0, 2, 2, 4};
static const uint32_t indices[] = {2, 0, 1, 2};
static const float values[] = {2, 1, 0, 5};

static void test_ids_and_rows(void **state) {
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_from_csr(3, 4, indptr, indices, values, &ds, &d), COFI_OK);
  assert_int_equal(cofi_dataset_n_users(ds), 3);
  assert_int_equal(cofi_dataset_n_items(ds), 4);
  assert_int_equal(cofi_dataset_n_interactions(ds), 4);
  for (uint32_t i = 0; i < 4; i++) {
    char buf[8];
    int len = snprintf(buf, sizeof buf, "%u", i);
    assert_int_equal(cofi__idmap_find(&ds->items, buf, (size_t)len), i);
    if (i < 3) assert_int_equal(cofi__idmap_find(&ds->users, buf, (size_t)len), i);
  }
  const uint32_t want_user[] = {0, 0, 2, 2};
  for (size_t j = 0; j < 4; j++) {
    assert_int_equal(ds->user[j], want_user[j]);
    assert_int_equal(ds->item[j], indices[j]);
    assert_true(ds->value[j] == values[j]);
  }
  assert_false(ds->has_time);
  cofi_dataset_free(ds);
  /* values NULL: 1 each */
  assert_int_equal(cofi_dataset_from_csr(3, 4, indptr, indices, NULL, &ds, &d), COFI_OK);
  for (size_t j = 0; j < 4; j++) assert_true(ds->value[j] == 1.0f);
  cofi_dataset_free(ds);
}

static void expect_invalid(uint32_t rows, uint32_t cols, const uint64_t *ip, const uint32_t *ix,
                           const float *v, const char *what) {
  cofi_dataset *ds = (cofi_dataset *)1;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_from_csr(rows, cols, ip, ix, v, &ds, &d), COFI_ERR_INVALID);
  assert_null(ds);
  if (!strstr(d.message, what)) fail_msg("message '%s' lacks '%s'", d.message, what);
}

static void test_refusals(void **state) {
  expect_invalid(0, 4, indptr, indices, values, "at least one row");
  expect_invalid(3, 0, indptr, indices, values, "at least one row");
  expect_invalid(3, 4, NULL, indices, values, "indptr is NULL");
  const uint64_t start1[] = {1, 2, 2, 4};
  expect_invalid(3, 4, start1, indices, values, "indptr[0] is 1");
  const uint64_t down[] = {0, 3, 2, 4};
  expect_invalid(3, 4, down, indices, values, "decreases at row 1");
  expect_invalid(3, 2, indptr, indices, values, "column index 2 of entry 0 is out of range");
  const float neg[] = {2, 1, -1, 5};
  expect_invalid(3, 4, indptr, indices, neg, "value -1 of entry 2");
  const float nan_v[] = {2, NAN, 0, 5};
  expect_invalid(3, 4, indptr, indices, nan_v, "entry 1 is not a finite");
  expect_invalid(3, 4, indptr, NULL, values, "indices is NULL");
}

/* The CSR in the order a file would give it (first appearances 0, 1, 2...)
 * trains the same factors as that file: the same IDs and indices. */
static void test_same_model_as_file(void **state) {
  char *dir = tu_mkdtemp();
  const char csv[] = "user_id,item_id,value\n0,0,3\n0,1,1\n1,1,2\n1,2,1\n2,0,1\n2,3,4\n3,2,2\n3,4,1\n";
  char *path = tu_write_file(dir, "log.csv", csv, sizeof csv - 1);
  cofi_read_options o = cofi_read_options_default();
  cofi_dataset *a = NULL, *b = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(path, &o, &a, &d), COFI_OK);
  const uint64_t ip[] = {0, 2, 4, 6, 8};
  const uint32_t ix[] = {0, 1, 1, 2, 0, 3, 2, 4};
  const float v[] = {3, 1, 2, 1, 1, 4, 2, 1};
  assert_int_equal(cofi_dataset_from_csr(4, 5, ip, ix, v, &b, &d), COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 4;
  p.iterations = 3;
  p.threads = 1;
  cofi_model *ma = NULL, *mb = NULL;
  assert_int_equal(cofi_train(a, &p, &ma, &d), COFI_OK);
  assert_int_equal(cofi_train(b, &p, &mb, &d), COFI_OK);
  assert_memory_equal(cofi_model_user_factors(ma), cofi_model_user_factors(mb), 4 * 4 * sizeof(float));
  assert_memory_equal(cofi_model_item_factors(ma), cofi_model_item_factors(mb), 5 * 4 * sizeof(float));
  cofi_model_close(ma);
  cofi_model_close(mb);
  cofi_dataset_free(a);
  cofi_dataset_free(b);
  free(path);
  tu_rmdir(dir);
  free(dir);
}

/* An empty row trains (to a vector near zero) and is recommendable. */
static void test_empty_row_trains(void **state) {
  cofi_dataset *ds = NULL;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_from_csr(3, 4, indptr, indices, values, &ds, &d), COFI_OK);
  cofi_params p = cofi_params_default();
  p.factors = 3;
  p.iterations = 2;
  cofi_model *m = NULL;
  assert_int_equal(cofi_train(ds, &p, &m, &d), COFI_OK);
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  assert_int_equal(info.n_users, 3);
  assert_int_equal(info.n_items, 4);
  const float *uf = cofi_model_user_factors(m);
  for (int j = 0; j < 3; j++) assert_true(fabsf(uf[3 + j]) < 1e-2f);
  cofi_model_close(m);
  cofi_dataset_free(ds);
}

static void test_out_of_memory(void **state) {
  for (uint64_t n = 1;; n++) {
    cofi__alloc_fail_after(n);
    cofi_dataset *ds = NULL;
    cofi_diag d = {0};
    int rc = cofi_dataset_from_csr(3, 4, indptr, indices, values, &ds, &d);
    cofi__alloc_fail_after(0);
    if (rc == COFI_OK) {
      cofi_dataset_free(ds);
      break;
    }
    assert_int_equal(rc, COFI_ERR_NOMEM);
    assert_null(ds);
    assert_true(n < 1000);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ids_and_rows),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_same_model_as_file),
      cmocka_unit_test(test_empty_row_trains),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

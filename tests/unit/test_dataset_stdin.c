/*
 * test_dataset_stdin.c — reading from a descriptor (what `cofi train -`
 * does with standard input) and the columns report.
 *   - cofi_dataset_read_fd on a pipe gives exactly the dataset that
 *     cofi_dataset_read gives on the same bytes in a file, and leaves the
 *     caller's descriptor open; cofi_dataset_read_items_fd likewise;
 *   - an event column named otherwise (action, Type, ...) is used when its
 *     first value is an event of the table, and then weighs every row; a
 *     later value outside the table is an error naming the line; a column
 *     with such a name but other values is ignored and reported;
 *   - cofi_dataset_columns names what was used and what ignored;
 *   - with every allocation failing in turn, reading from a descriptor with
 *     an event column recognised by its values returns COFI_ERR_NOMEM and
 *     leaks nothing (the ASan pass checks the leaks).
 */
#include "testutil.h"

#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A pipe whose read end yields text (small enough for the pipe buffer). */
static int pipe_of(const char *text) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  size_t n = strlen(text);
  assert_true(n < 60000);
  assert_int_equal(write(p[1], text, n), (ssize_t)n);
  close(p[1]);
  return p[0];
}

static const char log_text[] =
    "user_id,item_id,action,device\n"
    "u1,a,watch,tv\n"
    "u1,b,like,tv\n"
    "u2,a,complete,pc\n"
    "u2,c,watch,pc\n"
    "u3,\"b,quoted\",like,tv\n";

static void same_dataset(const cofi_dataset *x, const cofi_dataset *y) {
  assert_int_equal(x->n, y->n);
  assert_int_equal(x->users.n, y->users.n);
  assert_int_equal(x->items.n, y->items.n);
  for (size_t i = 0; i < x->n; i++) {
    assert_int_equal(x->user[i], y->user[i]);
    assert_int_equal(x->item[i], y->item[i]);
    assert_true(x->value[i] == y->value[i]);
  }
  for (uint32_t i = 0; i < x->items.n; i++) {
    size_t a, b;
    const char *s = cofi__idmap_get(&x->items, i, &a), *t = cofi__idmap_get(&y->items, i, &b);
    assert_int_equal(a, b);
    assert_memory_equal(s, t, a);
  }
}

static void pipe_reads_like_a_file(void **state) {
  (void)state;
  char *dir = tu_mkdtemp();
  char *path = tu_write_file(dir, "log.csv", log_text, strlen(log_text));
  cofi_dataset *from_file, *from_pipe;
  cofi_diag d = {0};
  assert_int_equal(cofi_dataset_read(path, NULL, &from_file, &d), COFI_OK);
  int fd = pipe_of(log_text);
  assert_int_equal(cofi_dataset_read_fd(fd, "<stdin>", NULL, &from_pipe, &d), COFI_OK);
  same_dataset(from_file, from_pipe);
  /* the caller's descriptor is still open (at its end) */
  char c;
  assert_int_equal(read(fd, &c, 1), 0);
  close(fd);
  /* item metadata from a pipe */
  static const char items[] = "item_id,title\na,Alpha\n\"b,quoted\",Beta\nc,Gamma\n";
  fd = pipe_of(items);
  assert_int_equal(cofi_dataset_read_items_fd(from_pipe, fd, "<stdin>", NULL, &d), COFI_OK);
  close(fd);
  assert_int_equal(from_pipe->meta.n_fields, 1);
  /* errors name the given name and the line */
  fd = pipe_of("user_id,item_id\nu1,a\nu2\n");
  cofi_dataset *bad = NULL;
  assert_int_equal(cofi_dataset_read_fd(fd, "<stdin>", NULL, &bad, &d), COFI_ERR_PARSE);
  close(fd);
  assert_null(bad);
  assert_string_equal(d.file, "<stdin>");
  assert_int_equal(d.line, 3);
  assert_int_equal(cofi_dataset_read_fd(-1, "x", NULL, &bad, &d), COFI_ERR_IO);
  cofi_dataset_free(from_file);
  cofi_dataset_free(from_pipe);
  free(path);
  tu_rmdir(dir);
  free(dir);
}

/* Reads text with options; returns the code, *out the dataset (or NULL). */
static int read_text(const char *text, const cofi_read_options *o, cofi_dataset **out,
                     cofi_diag *d) {
  int fd = pipe_of(text);
  int rc = cofi_dataset_read_fd(fd, "log", o, out, d);
  close(fd);
  return rc;
}

static void event_column_by_other_names(void **state) {
  (void)state;
  cofi_dataset *ds;
  cofi_diag d = {0};
  /* "action" holding events: used, weighted 1, 2, 3, 1, 2 */
  assert_int_equal(read_text(log_text, NULL, &ds, &d), COFI_OK);
  static const float want[] = {1, 2, 3, 1, 2};
  for (size_t i = 0; i < 5; i++) assert_true(ds->value[i] == want[i]);
  const char *note = cofi_dataset_columns(ds);
  assert_non_null(strstr(note, "'action' (event, recognised by its values; default weights "
                               "watch=1, like=2, complete=3)"));
  assert_non_null(strstr(note, "ignored 'device'"));
  cofi_dataset_free(ds);

  /* any case, and the given table */
  static const cofi_event_weight w[] = {{"play", 4.0f}, {"skip", 0.5f}};
  cofi_read_options o = cofi_read_options_default();
  o.event_weights = w;
  o.n_event_weights = 2;
  assert_int_equal(read_text("user_id,item_id,Type\nu1,a,play\nu2,a,skip\n", &o, &ds, &d),
                   COFI_OK);
  assert_true(ds->value[0] == 4.0f && ds->value[1] == 0.5f);
  assert_non_null(strstr(cofi_dataset_columns(ds), "'Type' (event, recognised by its values; "
                                                   "the given weights play=4, skip=0.5)"));
  cofi_dataset_free(ds);

  /* recognised on row 1, then an unknown event on line 3 */
  assert_int_equal(read_text("user_id,item_id,action\nu1,a,watch\nu2,a,share\n", NULL, &ds, &d),
                   COFI_ERR_PARSE);
  assert_int_equal(d.line, 3);
  assert_non_null(strstr(d.message, "unknown event 'share'"));
  assert_non_null(strstr(d.message, "replaces this table"));

  /* a "type" column of other values: ignored, said why, rows weigh 1 */
  assert_int_equal(read_text("user_id,item_id,type\nu1,a,movie\nu2,a,watch\n", NULL, &ds, &d),
                   COFI_OK);
  assert_true(ds->value[0] == 1.0f && ds->value[1] == 1.0f);
  note = cofi_dataset_columns(ds);
  assert_non_null(strstr(note, "ignored 'type' (not an event column: 'type' holds 'movie'"));
  cofi_dataset_free(ds);

  /* weights given, no column fits them: the error says what was seen */
  assert_int_equal(read_text("user_id,item_id,type\nu1,a,movie\n", &o, &ds, &d), COFI_ERR_PARSE);
  assert_non_null(strstr(d.message, "'type' holds 'movie'"));

  /* "event" wins over the aliases; --event-col wins over both */
  assert_int_equal(read_text("user_id,item_id,action,event\nu1,a,junk,like\n", NULL, &ds, &d),
                   COFI_OK);
  assert_true(ds->value[0] == 2.0f);
  assert_non_null(strstr(cofi_dataset_columns(ds), "'event' (event; default weights"));
  assert_non_null(strstr(cofi_dataset_columns(ds), "ignored 'action'"));
  cofi_dataset_free(ds);
  o = cofi_read_options_default();
  o.event_col = "action";
  assert_int_equal(read_text("user_id,item_id,action,event\nu1,a,complete,junk\n", &o, &ds, &d),
                   COFI_OK);
  assert_true(ds->value[0] == 3.0f);
  cofi_dataset_free(ds);

  /* no event column at all */
  assert_int_equal(read_text("user_id,item_id,value\nu1,a,2.5\n", NULL, &ds, &d), COFI_OK);
  assert_non_null(strstr(cofi_dataset_columns(ds), "'value' (value)"));
  assert_non_null(strstr(cofi_dataset_columns(ds), "no event column"));
  cofi_dataset_free(ds);

  /* MovieLens */
  o = cofi_read_options_default();
  o.format = COFI_FORMAT_MOVIELENS;
  assert_int_equal(read_text("1::10::5::978300760\n", &o, &ds, &d), COFI_OK);
  assert_non_null(strstr(cofi_dataset_columns(ds), "MovieLens layout"));
  cofi_dataset_free(ds);
  assert_string_equal(cofi_dataset_columns(NULL), "");
}

static void allocation_failures(void **state) {
  (void)state;
  for (uint64_t n = 1;; n++) {
    if (n > 5000) fail_msg("still failing after %llu allocations", (unsigned long long)n);
    int fd = pipe_of(log_text);
    cofi_dataset *ds = (cofi_dataset *)0x1;
    cofi_diag d = {0};
    cofi__alloc_fail_after(n);
    int rc = cofi_dataset_read_fd(fd, "log", NULL, &ds, &d);
    uint64_t attempts = cofi__alloc_fail_after(0);
    close(fd);
    if (rc == COFI_OK) {
      assert_true(attempts < n); /* success: nothing it asked for failed */
      assert_non_null(strstr(cofi_dataset_columns(ds), "'action' (event"));
      cofi_dataset_free(ds);
      break;
    }
    if (rc != COFI_ERR_NOMEM) fail_msg("allocation %llu: %d (%s)", (unsigned long long)n, rc, d.message);
    assert_null(ds);
    assert_true(d.message[0] != 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pipe_reads_like_a_file),
      cmocka_unit_test(event_column_by_other_names),
      cmocka_unit_test(allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

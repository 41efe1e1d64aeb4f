/*
 * cmd_train.c — `cofi train DATA -o MODEL`: read a log, train ALS, save the
 * model file. Parameters are checked before any data is read.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef COFI_MPI
#include "dist/mpi.h"
#endif

/* The number of processes an MPI launcher started (mpirun sets
 * OMPI_COMM_WORLD_SIZE; Slurm's PMI and PMIx others), 0 when none did:
 * then cofi never touches MPI, so the plain binary, the tests and the
 * sanitizer builds run as one process exactly as before. */
static unsigned long launched_ranks(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) {
      char *end;
      unsigned long n = strtoul(v, &end, 10);
      if (!*end && n > 0) return n;
    }
  }
  return 0;
}

#ifdef COFI_MPI
/* One process's part in `mpirun cofi train`: the ranks agree on every
 * failure (the data, the training, the save) and stop together; rank 0
 * alone prints progress and the summary and writes the model. */
typedef struct dist {
  bool on;
  cofi__comm comm;
  int saved_stderr; /* a non-root rank's stderr while it reads, or -1 */
  FILE *captured;
} dist;

/* The largest exit code of all ranks and whether rank 0 failed; every
 * rank gets the same answer. */
static int dist_agree(dist *t, int code, bool *root_failed) {
  int64_t v[2] = {code, t->comm.rank == 0 && code != 0};
  t->comm.allreduce_max(t->comm.ctx, v, 2);
  if (root_failed) *root_failed = v[1] != 0;
  return (int)v[0];
}

/* A rank's messages while it reads are held back and shown only when they
 * say something rank 0 does not (dist_load_share). */
static void dist_capture_stderr(dist *t) {
  t->saved_stderr = -1;
  if (!t->on || t->comm.rank == 0) return;
  t->captured = tmpfile();
  if (!t->captured) return;
  fflush(stderr);
  t->saved_stderr = dup(2);
  if (t->saved_stderr < 0 || dup2(fileno(t->captured), 2) < 0) {
    if (t->saved_stderr >= 0) close(t->saved_stderr);
    t->saved_stderr = -1;
    fclose(t->captured);
    t->captured = NULL;
  }
}

static void dist_release_stderr(dist *t, bool show) {
  if (t->saved_stderr < 0) return;
  fflush(stderr);
  dup2(t->saved_stderr, 2);
  close(t->saved_stderr);
  t->saved_stderr = -1;
  if (show) {
    char buf[4096];
    size_t n;
    rewind(t->captured);
    while ((n = fread(buf, 1, sizeof buf, t->captured)) > 0) fwrite(buf, 1, n, stderr);
    fflush(stderr);
  }
  fclose(t->captured);
  t->captured = NULL;
}
/* Whether a failure is this rank's own (not "rank R failed ... (its own
 * message says why)", the word an agreement leaves on the others). */
static bool own_failure(int rc, const cofi_diag *d) {
  return rc && !strstr(d->message, "(its own message says why)");
}

/* After an agreed failure of the input exchanges: whether rank 0 failed on
 * its own (then it alone reports), through the input exchanges' sum, so
 * the training's byte counts stay the cost model's. */
static bool dist_root_own(dist *t, bool own) {
  uint64_t v[1] = {t->comm.rank == 0 && own};
  if (t->comm.allreduce_sum(t->comm.ctx, v, 1)) return true;
  return v[0] != 0;
}

/* `mpirun cofi train FILE`: each rank reads its byte range of the file
 * (data/share.c), then the ranks make the ID maps global and send every
 * row to the rank that solves it (train/dist_input.c). Every rank returns
 * the same exit code; one message says what failed. */
/* A store's share: rank 0's bounds of seq, cut into N consecutive
 * ranges (so the shares in rank order are the events in seq order). */
static int dist_read_store(dist *t, cofi_store *s, const cli_data_opts *data,
                           cofi_dataset **local, uint64_t *rows, cofi_diag *d) {
  int64_t v[3] = {0, 0, 0};
  int rc = COFI_OK;
  if (!s) rc = COFI_ERR_IO;
  else if (t->comm.rank == 0) rc = cofi__store_seq_bounds(s, &v[1], &v[2], d);
  v[0] = rc;
  void *all = NULL;
  size_t *counts = calloc(t->comm.size, sizeof *counts);
  if (!counts || t->comm.allgatherv(t->comm.ctx, v, sizeof v, &all, counts)) {
    free(counts);
    cofi__free(all);
    return rc ? rc : cofi__fail(d, COFI_ERR_IO, NULL, 0, "an MPI exchange failed");
  }
  const int64_t *root = all;
  int64_t root_rc = root[0], lo = root[1] - 1, hi = root[2];
  if (hi == 0) lo = 0; /* no events */
  cofi__free(all);
  free(counts);
  if (rc) return rc;
  if (root_rc)
    return cofi__fail(d, (int)root_rc, NULL, 0, "rank 0 could not read the store (its own "
                      "message says why)");
  uint64_t span = (uint64_t)(hi - lo), N = t->comm.size, r = t->comm.rank;
  int64_t a = lo + (int64_t)((unsigned __int128)span * r / N);
  int64_t b = lo + (int64_t)((unsigned __int128)span * (r + 1) / N);
  return cofi__store_read_share(s, &data->read, a, b, local, rows, d);
}

static int dist_load_share(dist *t, const char *in, const char *store, const cli_data_opts *data,
                           const cofi_params *p, cofi__dist_matrix *dm) {
  cofi_diag d = {0};
  cofi_dataset *local = NULL;
  cofi_store *st = NULL;
  uint64_t rows = 0;
  char what[600];
  snprintf(what, sizeof what, "reading %s", store ? "the store" : cli_display_name(in));
  dist_capture_stderr(t);
  int rc;
  bool opened = true;
  if (store) {
    /* every rank opens its own connection */
    opened = cli_store_open("train", store, &st) == CLI_EXIT_OK;
    rc = dist_read_store(t, opened ? st : NULL, data, &local, &rows, &d);
  } else {
    rc = cofi__share_read(in, &data->read, &t->comm, &local, &rows, &d);
  }
  bool own = opened && own_failure(rc, &d);
  int code = rc ? cli_exit_for(rc) : 0;
  if (own) cli_diag_error("train", what, rc, &d);
  if (!opened) own = true; /* cli_store_open said why */
  bool root_failed;
  int all = dist_agree(t, code, &root_failed);
  /* a rank's own failure is shown unless rank 0 had one of its own */
  root_failed = dist_root_own(t, t->comm.rank == 0 && own);
  dist_release_stderr(t, own && !root_failed);
  if (all) {
    cofi_store_close(st);
    if (t->comm.rank == 0 && !own) {
      if (rc) cli_diag_error("train", what, rc, &d);
      else fprintf(stderr, "cofi train: another rank could not read its input (its message "
                           "above); every rank stops\n");
    }
    cofi_dataset_free(local);
    return rc ? code : all;
  }
  if (t->comm.rank == 0 && !data->quiet) {
    fprintf(stderr, "cofi train: ");
    cli_text_cstring(stderr, cli_display_name(in));
    fputs(": ", stderr);
    cli_text_cstring(stderr, cofi_dataset_columns(local));
    fputc('\n', stderr);
  }
  snprintf(what, sizeof what, "distributing %s", cli_display_name(in));
  rc = cofi__dist_build(local, rows, &data->read, p, &t->comm, dm, &d);
  if (rc) {
    cofi_store_close(st);
    own = own_failure(rc, &d);
    bool root_own = dist_root_own(t, own);
    if (t->comm.rank == 0 || (own && !root_own)) cli_diag_error("train", what, rc, &d);
    return cli_exit_for(rc);
  }
  if (st) {
    /* the store's titles and fields, for the model file rank 0 writes */
    rc = t->comm.rank == 0 ? cofi__store_read_item_meta(st, dm->ds, &d) : COFI_OK;
    cofi_store_close(st);
    if (rc) cli_diag_error("train", "reading the store's items", rc, &d);
    uint64_t failed[1] = {rc != 0};
    if (t->comm.allreduce_sum(t->comm.ctx, failed, 1) || failed[0])
      return rc ? cli_exit_for(rc) : CLI_EXIT_IO;
  }
  if (data->items_path) {
    snprintf(what, sizeof what, "reading item metadata %s", cli_display_name(data->items_path));
    rc = cofi_dataset_read_items(dm->ds, data->items_path, data->items_id_col, &d);
    if (rc && t->comm.rank == 0) cli_diag_error("train", what, rc, &d);
    /* every rank reads the same file: the same outcome */
    if (rc) return cli_exit_for(rc);
  }
  return CLI_EXIT_OK;
}

#endif

static void usage(void) {
  puts("usage: cofi train DATA -o MODEL [options]\n"
       "       cofi train --store URL -o MODEL [options]   (from a store: sqlite:PATH, postgresql://...)\n"
       "\n"
       "data:     --format csv|movielens  --user-col C  --item-col C  --value-col C\n"
       "          --event-col C  --time-col C  --delimiter X|tab\n"
       "          --event-weights watch=1,like=2,complete=3  --min-value V\n"
       "          --items FILE (item metadata, e.g. titles)  --items-id-col C\n"
       "          (--event-weights replaces the default table watch=1,like=2,complete=3:\n"
       "          list every event of the log)\n"
       "training: --factors 64  --regularization 0.01  --alpha 1  --iterations 15\n"
       "          --seed 42  --solver cg|cholesky  --cg-steps 3  --threads 0 (all cores)\n"
       "          --reg-exponent 0  --unobserved-weight 1 (iALS, Rendle et al. 2022)\n"
       "          --confidence linear|log|bm25: confidence 1 + alpha * w of the summed\n"
       "          value r: linear w = r; log w = log(1 + r/epsilon) (--epsilon 1);\n"
       "          bm25 as implicit's bm25_weight (--bm25-k1 100 --bm25-b 0.8)\n"
       "          --params FILE (as written by cofi tune)\n"
       "model:    --model als|ease|itemknn (default als)\n"
       "          ease: --lambda 500 (L2 weight)  --max-memory 4G (refuse when the\n"
       "          items x items float matrix is larger; 0 = no limit)\n"
       "          itemknn: --knn-weighting cosine|tfidf|bm25 (bm25: --bm25-k1, --bm25-b)\n"
       "          --neighbors 100 (kept per item)\n"
       "          every model: --recency H (a user's r-th newest item weighs 2^(-r/H):\n"
       "          in EASE/kNN sums, in ALS's confidence, users re-fitted after training;\n"
       "          default 0: all the same)\n"
       "output:   --quiet (no progress)  --loss (report the objective each iteration)\n"
       "          --json (a summary of the trained model on stdout)\n"
       "\n"
       "DATA, --items and --params can be - (standard input; one of them). MODEL must be\n"
       "a file path: it is written atomically (temporary file, fsync, rename), never\n"
       "over an input and never over something that is not a regular file.");
}

int cmd_train(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "train", argc, argv);
  cli_data_opts data;
  cli_data_opts_init(&data);
  cofi_params p = cofi_params_default();
  const char *in = NULL, *out = NULL, *store = NULL, *v;
  bool quiet = false, json = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) { usage(); return CLI_EXIT_OK; }
    if (cli_opt(&a, "-o", &v) || cli_opt(&a, "--output", &v)) out = v;
    else if (cli_opt(&a, "--store", &v)) store = v;
    else if (cli_flag(&a, "--quiet") || cli_flag(&a, "-q")) quiet = true;
    else if (cli_flag(&a, "--loss")) p.compute_loss = 1;
    else if (cli_flag(&a, "--json")) json = true;
    else if (cli_data_option(&a, &data) || cli_train_option(&a, &p)) continue;
    else if (!in && cli_positional(&a, &v)) in = v;
    else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (in && store) return cli_usage_error("train", "give either DATA or --store URL, not both");
  if (!in && !store) return cli_usage_error("train", "missing the DATA file (see cofi train --help)");
  if (!out) return cli_usage_error("train", "missing -o MODEL (where to write the model)");
  cofi_diag d = {0};
  if (cofi_params_check(&p, &d)) return cli_usage_error("train", "%s", d.message);
  if (cli_is_stdio(out))
    return cli_usage_error("train", "-o -: the model is a binary file written atomically "
                           "(temporary file, fsync, rename); give a file path");
  const char *inputs[] = {in, data.items_path, a.params_path};
  int rc = cli_check_inputs("train", inputs, 3);
  if (!rc) rc = cli_check_output("train", "-o", out, inputs, 3);
  if (rc) return rc;
  unsigned long nranks = launched_ranks();
#ifdef COFI_MPI
  dist t = {.on = nranks > 0, .saved_stderr = -1};
  if (t.on) {
    char err[256];
    if (cofi__mpi_init(&t.comm, err, sizeof err)) {
      fprintf(stderr, "cofi train: %s\n", err);
      return CLI_EXIT_IO;
    }
    nranks = t.comm.size;
    if (t.comm.rank != 0) quiet = true, json = false;
    if (cli_is_stdio(in ? in : "") || cli_is_stdio(data.items_path ? data.items_path : "") ||
        cli_is_stdio(a.params_path ? a.params_path : "")) {
      if (t.comm.rank == 0)
        fprintf(stderr, "cofi train: under mpirun every rank reads the input itself: "
                        "give files, not - (standard input)\n");
      cofi__mpi_finalize();
      return CLI_EXIT_USAGE;
    }
  }
#define DIST_RETURN(code) do { int code_ = (code); if (t.on) cofi__mpi_finalize(); return code_; } while (0)
#else
  if (nranks > 1)
    return cli_usage_error("train", "started by an MPI launcher with %lu processes, but this "
                           "cofi was built without MPI (COFI_MPI): each would train alone; "
                           "rebuild with MPI (docs/mpi.md) or run one process", nranks);
  nranks = 1;
#define DIST_RETURN(code) return (code)
#endif

  if (nranks == 0) nranks = 1; /* not under a launcher: one process */
  double t0 = cli_now();
  cofi_dataset *ds = NULL;
  data.quiet = quiet;
  size_t n_rows = 0, n_users = 0, n_items = 0;
#ifdef COFI_MPI
  /* under mpirun each rank reads its byte range of the file or its share
   * of the store's events */
  cofi__dist_matrix dm = {0};
  uint64_t halo_seen[4] = {0, 0, 0, 0};
  if (t.on) {
    rc = dist_load_share(&t, in, store, &data, &p, &dm);
    if (rc) DIST_RETURN(rc);
    n_rows = (size_t)dm.interactions;
    n_users = dm.ds->users.n;
    n_items = dm.ds->items.n;
  } else
#endif
  rc = store ? cli_load_store_dataset("train", store, &data, &ds)
             : cli_load_dataset("train", in, &data, &ds);
  if (rc) return rc;
  double t_read = cli_now() - t0;
  if (ds) {
    n_rows = cofi_dataset_n_interactions(ds);
    n_users = cofi_dataset_n_users(ds);
    n_items = cofi_dataset_n_items(ds);
  }
  if (!quiet)
    fprintf(stderr, "read %zu interactions: %zu users, %zu items (%.2fs)\n", n_rows, n_users,
            n_items, t_read);
  cli_progress prog = {.tty = isatty(2), .quiet = quiet};
  p.progress = cli_progress_print;
  p.progress_ctx = &prog;
  cofi_model *m = NULL;
#ifdef COFI_MPI
  if (t.on) {
    memcpy(halo_seen, dm.halo, sizeof dm.halo);
    memcpy(halo_seen + 2, dm.halo_all, sizeof dm.halo_all);
    rc = cofi__train_dist_matrix(&dm, &p, &t.comm, &m, &d);
    cofi__dist_matrix_free(&dm);
  } else
#endif
    rc = cofi_train_release(ds, &p, &m, &d);
  cofi_dataset_free(ds);
  if (rc) {
    int code = cli_exit_for(rc);
#ifdef COFI_MPI
    /* under mpirun the ranks agreed on the failure: rank 0 reports it;
     * when rank 0 only knows that another rank failed, that rank reports
     * its reason too (an agreed error, a NaN say, is said once) */
    if (t.on) {
      bool forward = strncmp(d.message, "rank ", 5) == 0 && strstr(d.message, " failed (its own");
      int64_t fw[1] = {t.comm.rank == 0 && forward};
      t.comm.allreduce_max(t.comm.ctx, fw, 1);
      bool root_forwarded = fw[0] != 0;
      if (t.comm.rank == 0 || (root_forwarded && !forward))
        cli_diag_error("train", "training", rc, &d);
      DIST_RETURN(code);
    }
#endif
    cli_diag_error("train", "training", rc, &d);
    return code;
  }
  char what[600];
  snprintf(what, sizeof what, "saving %s", out);
  /* rank 0 writes the one file (atomically); the others wait for it */
  bool writer = true;
#ifdef COFI_MPI
  writer = !t.on || t.comm.rank == 0;
#endif
  rc = writer ? cofi_model_save(m, out, &d) : COFI_OK;
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  cofi_model_close(m);
  if (rc) rc = cli_diag_error("train", what, rc, &d);
  uint64_t mpi_sent = 0, mpi_received = 0, mpi_data_sent = 0, mpi_data_received = 0;
  uint64_t halo[4] = {0, 0, 0, 0}; /* rank 0's halo items, users; all ranks' */
#ifdef COFI_MPI
  if (t.on) memcpy(halo, halo_seen, sizeof halo);
#endif
#ifdef COFI_MPI
  if (t.on) {
    int all = dist_agree(&t, rc, NULL);
    cofi__mpi_stats st = cofi__mpi_get_stats();
    mpi_sent = st.bytes_sent;
    mpi_received = st.bytes_received;
    mpi_data_sent = st.data_bytes_sent;
    mpi_data_received = st.data_bytes_received;
    if (all) DIST_RETURN(rc ? rc : all);
  }
#endif
  if (rc) return rc;
  if (!quiet && info.params.model != COFI_MODEL_ALS) {
    fprintf(stderr, "trained %s on %u users x %u items in %.2fs; wrote ",
            cofi_model_kind_name((int)info.params.model), info.n_users, info.n_items,
            info.train_seconds);
  } else if (!quiet) {
    fprintf(stderr, "trained %u users x %u items, %u factors, %u iterations in %.2fs "
            "(loss %.6g); wrote ",
            info.n_users, info.n_items, info.factors, info.params.iterations,
            info.train_seconds, info.train_loss);
  }
  if (!quiet) {
    cli_text_cstring(stderr, out);
    fputc('\n', stderr);
  }
  if (json) {
    /* The file's own checksums come from reading it back: what was
     * written, not what was meant to be. */
    cofi_model *back = NULL;
    rc = cli_open_model("train", out, &back);
    if (rc) DIST_RETURN(rc);
    cofi_model_info fi;
    cofi_model_get_info(back, &fi);
    cofi_model_close(back);
    printf("{\"model\": ");
    cli_json_cstring(stdout, out);
    printf(", \"data\": ");
    cli_json_cstring(stdout, store ? store : cli_display_name(in));
    printf(", \"users\": %u, \"items\": %u, \"interactions\": %zu, \"pairs\": %llu, "
           "\"params\": ", info.n_users, info.n_items, n_rows, (unsigned long long)info.nnz);
    cli_json_params(stdout, &info.params);
    printf(", \"loss\": ");
    cli_json_number(stdout, info.train_loss);
    printf(", \"seconds\": ");
    cli_json_number(stdout, info.train_seconds);
    printf(", \"read_seconds\": ");
    cli_json_number(stdout, t_read);
    printf(", \"file_bytes\": %llu, \"checksum\": \"%016llx\", \"content_checksum\": "
           "\"%016llx\", \"ranks\": %lu, \"mpi_bytes_sent\": %llu, "
           "\"mpi_bytes_received\": %llu, \"mpi_input_bytes_sent\": %llu, "
           "\"mpi_input_bytes_received\": %llu, \"mpi_halo\": {\"items\": %llu, "
           "\"users\": %llu, \"items_all_ranks\": %llu, \"users_all_ranks\": %llu}}\n",
           (unsigned long long)fi.file_bytes, (unsigned long long)fi.checksum,
           (unsigned long long)fi.content_checksum, nranks, (unsigned long long)mpi_sent,
           (unsigned long long)mpi_received, (unsigned long long)mpi_data_sent,
           (unsigned long long)mpi_data_received, (unsigned long long)halo[0],
           (unsigned long long)halo[1], (unsigned long long)halo[2],
           (unsigned long long)halo[3]);
  }
  DIST_RETURN(CLI_EXIT_OK);
}

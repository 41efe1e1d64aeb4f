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

/* Every rank reads the whole input and meets the same bad line: rank 0
 * reports it, the others keep their messages unless rank 0 had none. */
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
#ifdef COFI_MPI
  dist_capture_stderr(&t);
#endif
  rc = store ? cli_load_store_dataset("train", store, &data, &ds)
             : cli_load_dataset("train", in, &data, &ds);
#ifdef COFI_MPI
  if (t.on) {
    bool root_failed;
    int all = dist_agree(&t, rc, &root_failed);
    dist_release_stderr(&t, rc && !root_failed);
    if (all) {
      if (!rc && t.comm.rank == 0)
        fprintf(stderr, "cofi train: another rank could not read its input (its message "
                        "above); every rank stops\n");
      cofi_dataset_free(ds);
      DIST_RETURN(rc ? rc : all);
    }
  }
#endif
  if (rc) return rc;
  double t_read = cli_now() - t0;
  if (!quiet)
    fprintf(stderr, "read %zu interactions: %zu users, %zu items (%.2fs)\n",
            cofi_dataset_n_interactions(ds), cofi_dataset_n_users(ds), cofi_dataset_n_items(ds),
            t_read);
  size_t n_rows = cofi_dataset_n_interactions(ds);
  cli_progress prog = {.tty = isatty(2), .quiet = quiet};
  p.progress = cli_progress_print;
  p.progress_ctx = &prog;
  cofi_model *m = NULL;
#ifdef COFI_MPI
  if (t.on)
    rc = cofi__train_dist(ds, &p, &t.comm, &m, &d);
  else
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
  uint64_t mpi_sent = 0, mpi_received = 0;
#ifdef COFI_MPI
  if (t.on) {
    int all = dist_agree(&t, rc, NULL);
    cofi__mpi_stats st = cofi__mpi_get_stats();
    mpi_sent = st.bytes_sent;
    mpi_received = st.bytes_received;
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
           "\"mpi_bytes_received\": %llu}\n",
           (unsigned long long)fi.file_bytes, (unsigned long long)fi.checksum,
           (unsigned long long)fi.content_checksum, nranks, (unsigned long long)mpi_sent,
           (unsigned long long)mpi_received);
  }
  DIST_RETURN(CLI_EXIT_OK);
}

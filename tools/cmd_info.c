/*
 * cmd_info.c — `cofi info MODEL [--json]`: what a model file holds.
 *
 * Every field comes from the file, and a file can say anything its
 * checksums allow (they protect against damage, not against a forger). So
 * nothing is formatted on trust: a creation time outside years 1970..9999
 * is shown as its number with "(not a valid date)" (null in JSON), a NaN or infinite
 * duration or loss as "n/a" (null in JSON), the version string is escaped
 * like any other text from a file.
 */
#include "cli.h"

#include <math.h>
#include <string.h>
#include <time.h>

/* 9999-12-31T23:59:59Z: the last time with a four-digit year. */
#define MAX_DATE 253402300799ull

/* The creation time as text, or false when it is no real date. */
static bool format_created(uint64_t t, const char *fmt, char *out, size_t size) {
  if (t > MAX_DATE) return false;
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm)) return false;
  return strftime(out, size, fmt, &tm) > 0;
}

static void print_json(const cofi_model_info *i, uint32_t ranks, const char *path) {
  char created[32];
  bool have_date = format_created(i->created_unix, "%Y-%m-%dT%H:%M:%SZ", created, sizeof created);
  printf("{\"path\": ");
  cli_json_cstring(stdout, path);
  printf(", \"model\": \"%s\", \"n_users\": %u, \"n_items\": %u, \"factors\": %u, \"nnz\": %llu,\n",
         cofi_model_kind_name((int)i->params.model), i->n_users, i->n_items, i->factors,
         (unsigned long long)i->nnz);
  printf(" \"params\": ");
  cli_json_params(stdout, &i->params);
  printf(",\n \"file_bytes\": %llu, \"created\": ", (unsigned long long)i->file_bytes);
  cli_json_cstring(stdout, have_date ? created : NULL);
  /* Not a date: null, also because numbers above 2^63 break many parsers. */
  if (have_date) printf(", \"created_unix\": %llu", (unsigned long long)i->created_unix);
  else printf(", \"created_unix\": null");
  printf(", \"checksum\": \"%016llx\", \"content_checksum\": \"%016llx\", "
         "\"data_fingerprint\": \"%016llx\",\n",
         (unsigned long long)i->checksum,
         (unsigned long long)i->content_checksum, (unsigned long long)i->data_fingerprint);
  printf(" \"train_seconds\": ");
  cli_json_number(stdout, i->train_seconds);
  printf(", \"train_loss\": ");
  cli_json_number(stdout, i->train_loss);
  printf(", \"ranks\": %u, \"item_fields\": %u, \"cofi_version\": ", ranks, i->n_item_fields);
  cli_json_cstring(stdout, i->cofi_version);
  printf(", \"kernels\": \"%s\"}\n", cofi_kernel_set());
}

/* %.*g of a number, or "n/a" when it is not finite. */
static const char *num(char *buf, size_t size, int prec, double v) {
  if (!isfinite(v)) return "n/a";
  snprintf(buf, size, "%.*g", prec, v);
  return buf;
}

static void print_text(const cofi_model_info *i, uint32_t ranks, const char *path) {
  char created[48], b1[32], b2[32];
  if (!format_created(i->created_unix, "%Y-%m-%d %H:%M:%S UTC", created, sizeof created))
    snprintf(created, sizeof created, "%llu (not a valid date)",
             (unsigned long long)i->created_unix);
  printf("model          ");
  cli_text_cstring(stdout, path);
  printf("\nusers          %u\nitems          %u\nfactors        %u\n", i->n_users, i->n_items,
         i->factors);
  printf("training pairs %llu\n", (unsigned long long)i->nnz);
  if (i->params.model == COFI_MODEL_EASE)
    printf("model          EASE, lambda %g\n", i->params.lambda);
  else if (i->params.model == COFI_MODEL_ITEMKNN)
    printf("model          item-kNN, %s weighting, %u neighbors per item\n",
           cofi_knn_weighting_name((int)i->params.knn_weighting), i->params.neighbors);
  else
    printf("model          ALS\n");
  if (i->params.recency > 0)
    printf("recency        half-life %g items (the newest of a history counts most)\n",
           (double)i->params.recency);
  if (i->params.model != COFI_MODEL_ALS) {
    if (i->params.confidence == COFI_CONFIDENCE_LOG)
      printf("confidence     log (epsilon %g)\n", i->params.epsilon);
    else if (i->params.confidence == COFI_CONFIDENCE_BM25)
      printf("confidence     bm25 (K1 %g, B %g)\n", i->params.bm25_k1, i->params.bm25_b);
  } else {
    printf("parameters     regularization %g, alpha %g, iterations %u, seed %llu, solver %s",
           i->params.regularization, i->params.alpha, i->params.iterations,
           (unsigned long long)i->params.seed,
           i->params.solver == COFI_SOLVER_CHOLESKY ? "cholesky" : "cg");
    if (i->params.solver == COFI_SOLVER_CG) printf(" (%u steps)", i->params.cg_steps);
    if (i->params.confidence == COFI_CONFIDENCE_LOG)
      printf(", confidence log (epsilon %g)", i->params.epsilon);
    else if (i->params.confidence == COFI_CONFIDENCE_BM25)
      printf(", confidence bm25 (K1 %g, B %g)", i->params.bm25_k1, i->params.bm25_b);
    if (i->params.reg_exponent != 0 || i->params.unobserved_weight != 1)
      printf(", reg_exponent %g, unobserved_weight %g", i->params.reg_exponent,
             i->params.unobserved_weight);
    putchar('\n');
  }
  printf("training       %ss, final loss %s", num(b1, sizeof b1, 3, i->train_seconds),
         num(b2, sizeof b2, 6, i->train_loss));
  if (ranks > 1) printf(", %u MPI ranks", ranks);
  putchar('\n');
  printf("item metadata  %u field%s\n", i->n_item_fields, i->n_item_fields == 1 ? "" : "s");
  printf("file size      %llu bytes (%.1f MiB)\n", (unsigned long long)i->file_bytes,
         (double)i->file_bytes / (1 << 20));
  printf("created        %s by cofi ", created);
  cli_text_cstring(stdout, i->cofi_version);
  printf("\nchecksum       %016llx (content %016llx)\n", (unsigned long long)i->checksum,
         (unsigned long long)i->content_checksum);
  printf("kernels        %s (this process: the set this CPU runs, or COFI_KERNELS)\n",
         cofi_kernel_set());
}

int cmd_info(int argc, char **argv) {
  cli_args a;
  cli_args_init(&a, "info", argc, argv);
  const char *path = NULL, *v;
  bool json = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
      puts("usage: cofi info MODEL [--json]   (MODEL - reads it from standard input)\n"
           "\n"
           "checksum: of the file's bytes. content_checksum: of the model without the\n"
           "creation time, training duration, cofi version and number of MPI ranks, so two\n"
           "trainings with the same data, parameters and seed show the same one.\n"
           "ranks: how many processes trained it (mpirun -np N cofi train; 1 otherwise).");
      return CLI_EXIT_OK;
    }
    if (cli_flag(&a, "--json")) json = true;
    else if (!path && cli_positional(&a, &v)) path = v;
    else return cli_unknown(&a);
  }
  if (a.failed) return CLI_EXIT_USAGE;
  if (!path) return cli_usage_error("info", "missing the MODEL file");
  cofi_model *m;
  int rc = cli_open_model("info", path, &m);
  if (rc) return rc;
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  uint32_t ranks = cofi_model_train_ranks(m);
  cofi_model_close(m);
  if (json) print_json(&info, ranks, path);
  else print_text(&info, ranks, path);
  return CLI_EXIT_OK;
}

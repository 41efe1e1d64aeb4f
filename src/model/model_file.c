/*
 * model_file.c — the cofi model file: one binary file, written atomically,
 * validated completely before anything in it is trusted, and laid out so
 * that an opened model uses the mapping in place (no copy, no parse).
 *
 * This comment is the format specification (version 3; version 1 files,
 * which lack the confidence fields of META, are still read as linear, and
 * version 2 files are ALS models). ALS models without a recency half-life
 * are still written as version 2, byte for byte as before (their META
 * bytes 148.. are zero, their sections those of version 2); version 3 is
 * written for the other kinds and for ALS with a half-life.
 * All integers and floats are little-endian; cofi refuses to build on
 * big-endian hosts.
 *
 *   offset  size  field
 *   ------  ----  ------------------------------------------------------
 *        0     8  magic "COFIMODL"
 *        8     4  format version (3 for EASE and item-kNN, 2 for ALS; 1 is still read)
 *       12     4  byte-order mark 0x01020304 (reads 0x04030201 if swapped)
 *       16     8  file size in bytes (the whole file)
 *       24     4  number of sections n (1..64)
 *       28     4  reserved, 0
 *       32     8  offset of the section table (64)
 *       40     8  checksum of the section table (n x 32 bytes)
 *       48     8  checksum of bytes 0..47 of this header
 *       56     8  reserved, 0
 *       64  n*32  section table, one entry per section:
 *                   u32 id, u32 element size, u64 offset, u64 length,
 *                   u64 checksum of the section's bytes
 *        ...      sections, each starting at a multiple of 64, in table
 *                 order; the gaps between them are zero bytes (checked, so
 *                 every byte of the file is covered by a check)
 *
 * Checksums are cofi__hash_bytes (hash.c) with seed 0. The content
 * checksum (cofi_model_info.content_checksum) is not stored: it is derived
 * at open time from META with its run fields zeroed and the other sections'
 * lengths and checksums (content_checksum() below).
 *
 *   id  section            element  count
 *   --  -----------------  -------  ---------------------------------
 *    1  META               1        256 bytes, layout in meta_encode()
 *    2  USER_FACTORS       f32      n_users x factors, row-major
 *    3  ITEM_FACTORS       f32      n_items x factors, row-major
 *    4  USER_ID_OFFSETS    u64      n_users + 1 (into USER_ID_BLOB)
 *    5  USER_ID_BLOB       u8       user IDs back to back
 *    6  ITEM_ID_OFFSETS    u64      n_items + 1
 *    7  ITEM_ID_BLOB       u8       item IDs back to back
 *    8  SEEN_INDPTR        u64      n_users + 1 (CSR of training pairs)
 *    9  SEEN_INDICES       u32      nnz, item indices, ascending per row
 *   10  SEEN_VALUES        f32      nnz, summed values
 *   11  FIELD_OFFSETS      u64      n_fields + 1 (metadata column names)
 *   12  FIELD_BLOB         u8
 *   13  CELL_OFFSETS       u64      n_items x n_fields + 1 (metadata cells,
 *   14  CELL_BLOB          u8         row-major by item)
 *   15  EASE_WEIGHTS       f32      n_items x n_items, B row-major, diag 0
 *   16  KNN_INDPTR         u64      n_items + 1 (CSR of item neighbours)
 *   17  KNN_INDICES        u32      knn_nnz, ascending per row, never the row
 *   18  KNN_WEIGHTS        f32      knn_nnz similarities
 *   19  SEEN_RANKS         u32      nnz, each training pair's rank in its
 *                                   user's row by time, newest 0 (a
 *                                   permutation of 0..len-1 per row)
 *
 * Which sections a file has depends on the model kind (META byte 148):
 * ALS has 1-14; EASE has 1, 4-14 and 15; item-kNN has 1, 4-14 and 16-18;
 * any of them with a recency half-life (META 164, version 3) also has 19.
 * A missing section of the kind, or a section of another kind, is refused.
 *
 * META bytes 148..175 (version 3): u32 model kind (0 ALS, 1 EASE,
 * 2 item-kNN), f32 EASE lambda, u32 kNN weighting, u32 neighbours per item,
 * f32 recency half-life (0: none; files before it have 0 there), u64
 * knn_nnz; all zero for ALS but the half-life. factors is 0 for EASE and
 * item-kNN.
 *
 * Opening checks, in order: size >= 64, magic, byte order, version, header
 * checksum, recorded size = actual size, table inside the file, table
 * checksum, each section aligned, inside the file (overflow-safe), known,
 * unique, zero gaps, checksum; then META's counts times element sizes
 * equal section lengths, offsets start at 0, never decrease and end at the
 * blob length, CSR indices in range and ascending, IDs unique, factors
 * finite, parameters valid. Only then is anything used.
 *
 * Three ways in, one validation: cofi_model_open_fd maps the file (zero
 * copy; the pages are the file's, so the caller must make sure nobody
 * rewrites that inode in place while the model lives), cofi_model_read_fd
 * reads it with pread into aligned memory the model owns (immune to later
 * changes of the file), cofi_model_open_memory copies a caller's buffer.
 * All three hand their bytes to adopt(), which validates them in place.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the cofi model format is little-endian; big-endian hosts are not supported"
#endif

#define MAGIC "COFIMODL"
#define FORMAT_VERSION 3u
#define ALS_VERSION 2u /* ALS models are written as version 2, unchanged */
#define OLDEST_VERSION 1u /* still read: version 1 has no confidence fields (linear) */
#define BOM 0x01020304u
#define HEADER_SIZE 64u
#define ENTRY_SIZE 32u
#define META_SIZE 256u
#define MAX_SECTIONS 64u
#define ALIGN 64u

enum {
  S_META = 1, S_USER_FACTORS, S_ITEM_FACTORS, S_USER_ID_OFFSETS, S_USER_ID_BLOB,
  S_ITEM_ID_OFFSETS, S_ITEM_ID_BLOB, S_SEEN_INDPTR, S_SEEN_INDICES, S_SEEN_VALUES,
  S_FIELD_OFFSETS, S_FIELD_BLOB, S_CELL_OFFSETS, S_CELL_BLOB, S_EASE_WEIGHTS, S_KNN_INDPTR,
  S_KNN_INDICES, S_KNN_WEIGHTS, S_SEEN_RANKS, S_COUNT = S_SEEN_RANKS, S_V2_COUNT = S_CELL_BLOB
};

static const char *const section_names[] = {
    "", "META", "USER_FACTORS", "ITEM_FACTORS", "USER_ID_OFFSETS", "USER_ID_BLOB",
    "ITEM_ID_OFFSETS", "ITEM_ID_BLOB", "SEEN_INDPTR", "SEEN_INDICES", "SEEN_VALUES",
    "FIELD_OFFSETS", "FIELD_BLOB", "CELL_OFFSETS", "CELL_BLOB", "EASE_WEIGHTS", "KNN_INDPTR",
    "KNN_INDICES", "KNN_WEIGHTS", "SEEN_RANKS"};
static const uint32_t elem_sizes[] = {0, 1, 4, 4, 8, 1, 8, 1, 8, 4, 4, 8, 1, 8, 1, 4, 8, 4, 4, 4};

/* Whether a model with these parameters has section id. */
static bool section_of_kind(int id, const cofi_params *p) {
  cofi_model_kind kind = p->model;
  switch (id) {
    case S_SEEN_RANKS: return p->recency > 0;
    case S_USER_FACTORS: case S_ITEM_FACTORS: return kind == COFI_MODEL_ALS;
    case S_EASE_WEIGHTS: return kind == COFI_MODEL_EASE;
    case S_KNN_INDPTR: case S_KNN_INDICES: case S_KNN_WEIGHTS: return kind == COFI_MODEL_ITEMKNN;
    default: return true;
  }
}

typedef struct section {
  uint32_t id, elem;
  uint64_t offset, length, checksum;
  const void *data; /* when writing */
} section;

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static void putf(unsigned char *p, float v) { memcpy(p, &v, 4); }
static void putd(unsigned char *p, double v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static float getf(const unsigned char *p) { float v; memcpy(&v, p, 4); return v; }
static double getd(const unsigned char *p) { double v; memcpy(&v, p, 8); return v; }

/* META layout (offsets in bytes; the rest of the 256 bytes is zero). */
static void meta_encode(const cofi_model *m, unsigned char *b) {
  memset(b, 0, META_SIZE);
  put32(b + 0, m->n_users);
  put32(b + 4, m->n_items);
  put32(b + 8, m->factors);
  put32(b + 12, m->meta.n_fields);
  put64(b + 16, m->user_items.nnz);
  put32(b + 24, (uint32_t)m->meta.title_field);
  put32(b + 28, (uint32_t)m->params.solver);
  putf(b + 32, m->params.regularization);
  putf(b + 36, m->params.alpha);
  put32(b + 40, m->params.iterations);
  put32(b + 44, m->params.cg_steps);
  put64(b + 48, m->params.seed);
  putf(b + 56, m->params.reg_exponent);
  putf(b + 60, m->params.unobserved_weight);
  put32(b + 64, 0); /* threads: a runtime choice, not part of the model */
  put64(b + 72, m->created_unix);
  put64(b + 80, m->data_fingerprint);
  putd(b + 88, m->train_seconds);
  putd(b + 96, m->train_loss);
  memcpy(b + 104, m->cofi_version, 16);
  /* Version 2: the confidence transform (all zero in version 1 = linear). */
  put32(b + 120, (uint32_t)m->params.confidence);
  putf(b + 124, m->params.epsilon);
  putf(b + 128, m->params.bm25_k1);
  putf(b + 132, m->params.bm25_b);
  putd(b + 136, m->conf_mean_rowsum);
  put32(b + 144, m->train_ranks); /* MPI ranks that trained it; 0 before: one */
  /* Version 3: the model kind and its parameters (zero for ALS, so that
   * ALS files stay as version 2 wrote them), and the recency half-life. */
  if (m->params.model != COFI_MODEL_ALS) {
    put32(b + 148, (uint32_t)m->params.model);
    putf(b + 152, m->params.lambda);
    put32(b + 156, (uint32_t)m->params.knn_weighting);
    put32(b + 160, m->params.neighbors);
    put64(b + 168, m->neighbors.nnz);
  }
  putf(b + 164, m->params.recency);
}

static void meta_decode(const unsigned char *b, uint32_t version, cofi_model *m) {
  m->n_users = get32(b + 0);
  m->n_items = get32(b + 4);
  m->factors = get32(b + 8);
  m->meta.n_fields = get32(b + 12);
  m->user_items.nnz = get64(b + 16);
  m->meta.title_field = (int32_t)get32(b + 24);
  m->params = cofi_params_default();
  m->params.solver = (cofi_solver)get32(b + 28);
  m->params.regularization = getf(b + 32);
  m->params.alpha = getf(b + 36);
  m->params.iterations = get32(b + 40);
  m->params.cg_steps = get32(b + 44);
  m->params.seed = get64(b + 48);
  m->params.factors = m->factors;
  m->params.reg_exponent = getf(b + 56);
  m->params.unobserved_weight = getf(b + 60);
  m->params.threads = get32(b + 64);
  m->created_unix = get64(b + 72);
  m->data_fingerprint = get64(b + 80);
  m->train_seconds = getd(b + 88);
  m->train_loss = getd(b + 96);
  memcpy(m->cofi_version, b + 104, 16);
  m->cofi_version[15] = 0;
  if (version >= 2) {
    m->params.confidence = (cofi_confidence)get32(b + 120);
    m->params.epsilon = getf(b + 124);
    m->params.bm25_k1 = getf(b + 128);
    m->params.bm25_b = getf(b + 132);
    m->conf_mean_rowsum = getd(b + 136);
  }
  /* files from before cofi recorded it have 0 here: one process */
  m->train_ranks = get32(b + 144);
  if (m->train_ranks == 0) m->train_ranks = 1;
  if (version >= 3) {
    m->params.model = (cofi_model_kind)get32(b + 148);
    if (m->params.model != COFI_MODEL_ALS) {
      m->params.factors = cofi_params_default().factors; /* unused; keeps the check */
      m->params.lambda = getf(b + 152);
      m->params.knn_weighting = (cofi_knn_weighting)get32(b + 156);
      m->params.neighbors = get32(b + 160);
      m->neighbors.nnz = get64(b + 168);
    }
    m->params.recency = getf(b + 164);
  }
}

/* ---- saving ------------------------------------------------------------ */

static uint64_t align_up(uint64_t x) { return (x + ALIGN - 1) & ~(uint64_t)(ALIGN - 1); }

static const uint64_t zero_offset = 0;

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    size_t chunk = len > (1u << 30) ? (1u << 30) : len;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int cofi_model_save(const cofi_model *m, const char *path, cofi_diag *d) {
  unsigned char meta[META_SIZE];
  meta_encode(m, meta);
  size_t n_cells = (size_t)m->n_items * m->meta.n_fields;
  const cofi__strtab *names = &m->meta.names, *cells = &m->meta.cells;
  section all[S_COUNT], s[S_COUNT];
#define SEC(i, ptr, len) all[(i) - 1] = (section){.id = (i), .elem = elem_sizes[i], .length = (len), .data = (ptr)}
  SEC(S_META, meta, META_SIZE);
  SEC(S_USER_FACTORS, m->user_factors, (uint64_t)m->n_users * m->factors * 4);
  SEC(S_ITEM_FACTORS, m->item_factors, (uint64_t)m->n_items * m->factors * 4);
  SEC(S_USER_ID_OFFSETS, m->users.offsets, ((uint64_t)m->n_users + 1) * 8);
  SEC(S_USER_ID_BLOB, m->users.blob, m->users.offsets[m->n_users]);
  SEC(S_ITEM_ID_OFFSETS, m->items.offsets, ((uint64_t)m->n_items + 1) * 8);
  SEC(S_ITEM_ID_BLOB, m->items.blob, m->items.offsets[m->n_items]);
  SEC(S_SEEN_INDPTR, m->user_items.indptr, ((uint64_t)m->n_users + 1) * 8);
  SEC(S_SEEN_INDICES, m->user_items.indices, m->user_items.nnz * 4);
  SEC(S_SEEN_VALUES, m->user_items.data, m->user_items.nnz * 4);
  /* Empty string tables have no offsets array yet: store the single 0. */
  SEC(S_FIELD_OFFSETS, names->n ? (const void *)names->offsets : &zero_offset,
      ((uint64_t)m->meta.n_fields + 1) * 8);
  SEC(S_FIELD_BLOB, names->blob, names->n ? names->offsets[names->n] : 0);
  SEC(S_CELL_OFFSETS, cells->n ? (const void *)cells->offsets : &zero_offset,
      ((uint64_t)n_cells + 1) * 8);
  SEC(S_CELL_BLOB, cells->blob, cells->n ? cells->offsets[cells->n] : 0);
  SEC(S_EASE_WEIGHTS, m->ease_weights, (uint64_t)m->n_items * m->n_items * 4);
  SEC(S_KNN_INDPTR, m->neighbors.indptr, ((uint64_t)m->n_items + 1) * 8);
  SEC(S_KNN_INDICES, m->neighbors.indices, m->neighbors.nnz * 4);
  SEC(S_KNN_WEIGHTS, m->neighbors.data, m->neighbors.nnz * 4);
  SEC(S_SEEN_RANKS, m->seen_ranks, m->user_items.nnz * 4);
#undef SEC
  /* Only the kind's sections, in id order. */
  int n_sec = 0;
  for (int i = 0; i < S_COUNT; i++)
    if (section_of_kind(i + 1, &m->params)) s[n_sec++] = all[i];
  uint32_t version =
      m->params.model == COFI_MODEL_ALS && !(m->params.recency > 0) ? ALS_VERSION : FORMAT_VERSION;
  if (names->n != m->meta.n_fields || cells->n != n_cells)
    return cofi__fail(d, COFI_ERR_INVALID, path, 0, "item metadata is inconsistent");

  unsigned char head[HEADER_SIZE + S_COUNT * ENTRY_SIZE];
  size_t head_len = HEADER_SIZE + (size_t)n_sec * ENTRY_SIZE;
  memset(head, 0, sizeof head);
  uint64_t at = align_up(head_len);
  for (int i = 0; i < n_sec; i++) {
    s[i].offset = at;
    s[i].checksum = cofi__hash_bytes(s[i].length ? s[i].data : "", (size_t)s[i].length, 0);
    unsigned char *e = head + HEADER_SIZE + (size_t)i * ENTRY_SIZE;
    put32(e, s[i].id);
    put32(e + 4, s[i].elem);
    put64(e + 8, s[i].offset);
    put64(e + 16, s[i].length);
    put64(e + 24, s[i].checksum);
    at = align_up(at + s[i].length);
  }
  uint64_t file_size = at;
  memcpy(head, MAGIC, 8);
  put32(head + 8, version);
  put32(head + 12, BOM);
  put64(head + 16, file_size);
  put32(head + 24, (uint32_t)n_sec);
  put64(head + 32, HEADER_SIZE);
  put64(head + 40, cofi__hash_bytes(head + HEADER_SIZE, (size_t)n_sec * ENTRY_SIZE, 0));
  put64(head + 48, cofi__hash_bytes(head, 48, 0));

  /* Temp file beside the target, so the rename is atomic. */
  size_t plen = strlen(path);
  char *tmp = cofi__malloc(plen + 16), *dircopy = cofi__malloc(plen + 1);
  if (!tmp || !dircopy) {
    cofi__free(tmp);
    cofi__free(dircopy);
    return cofi__fail(d, COFI_ERR_NOMEM, path, 0, "out of memory");
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", 12);
  memcpy(dircopy, path, plen + 1);
  const char *failed_op = NULL;
  int fd = mkstemp(tmp), dfd = -1, rc = COFI_OK;
  if (fd < 0) { failed_op = "create the temporary file"; goto done; }
  if (fchmod(fd, 0644) != 0) { failed_op = "set the permissions of"; goto done; }
  static const unsigned char zeros[ALIGN];
  uint64_t pos = 0;
  if (write_all(fd, head, head_len)) { failed_op = "write the temporary file"; goto done; }
  pos = head_len;
  for (int i = 0; i < n_sec; i++) {
    if (write_all(fd, zeros, (size_t)(s[i].offset - pos))) { failed_op = "write the temporary file"; goto done; }
    if (s[i].length && write_all(fd, s[i].data, (size_t)s[i].length)) { failed_op = "write the temporary file"; goto done; }
    pos = s[i].offset + s[i].length;
  }
  if (write_all(fd, zeros, (size_t)(file_size - pos))) { failed_op = "write the temporary file"; goto done; }
  if (fsync(fd) != 0) { failed_op = "fsync the temporary file"; goto done; }
  if (close(fd) != 0) { fd = -1; failed_op = "close the temporary file"; goto done; }
  fd = -1;
  if (rename(tmp, path) != 0) { failed_op = "rename"; goto done; }
  dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY);
  if (dfd < 0 || fsync(dfd) != 0) failed_op = "fsync the directory of";
done:
  if (failed_op) {
    /* "cannot create the temporary file m.cofi.tmp.XXXXXX: Permission
     * denied": the step, the file it was done to, the reason. */
    int e = errno;
    bool on_target = !strcmp(failed_op, "fsync the directory of");
    rc = cofi__fail(d, COFI_ERR_IO, path, 0, "cannot %s %s%s: %s", failed_op,
                    on_target ? path : tmp,
                    !strcmp(failed_op, "rename") ? " onto the model file" : "", strerror(e));
  }
  if (fd >= 0) close(fd);
  if (dfd >= 0) close(dfd);
  if (rc && strcmp(failed_op, "fsync the directory of") != 0) unlink(tmp);
  cofi__free(tmp);
  cofi__free(dircopy);
  return rc;
}

/* ---- opening ----------------------------------------------------------- */

#define CORRUPT(...) cofi__fail(d, COFI_ERR_CORRUPT, name, 0, __VA_ARGS__)

/* offsets [n+1]: start at 0, never decrease, end at blob_len. */
static bool offsets_ok(const uint64_t *o, uint64_t n, uint64_t blob_len) {
  if (o[0] != 0 || o[n] != blob_len) return false;
  for (uint64_t i = 0; i < n; i++)
    if (o[i + 1] < o[i]) return false;
  return true;
}

/* Each row's ranks [ip[u], ip[u+1]) a permutation of 0..len-1; stamp
 * marks the ranks seen in the current row (a row is at most n_items). */
static bool ranks_ok(const uint32_t *ranks, const uint64_t *ip, uint64_t nu, uint64_t *bad_user) {
  uint64_t longest = 0;
  for (uint64_t u = 0; u < nu; u++)
    if (ip[u + 1] - ip[u] > longest) longest = ip[u + 1] - ip[u];
  uint64_t *stamp = cofi__calloc(longest ? longest : 1, sizeof *stamp);
  if (!stamp) {
    *bad_user = nu; /* reported as damaged; only under memory exhaustion */
    return false;
  }
  bool ok = true;
  for (uint64_t u = 0; u < nu && ok; u++) {
    uint64_t len = ip[u + 1] - ip[u];
    for (uint64_t t = ip[u]; t < ip[u + 1] && ok; t++) {
      uint32_t r = ranks[t];
      if (r >= len || stamp[r] == u + 1) ok = false;
      else stamp[r] = u + 1;
    }
    if (!ok) *bad_user = u;
  }
  cofi__free(stamp);
  return ok;
}

static bool finite_all(const float *a, uint64_t n) {
  float acc = 0;
  for (uint64_t i = 0; i < n; i++) acc += a[i] * 0.0f;
  return acc == 0.0f;
}

/* Finite is not enough: factors so large that |x|^2 or the item Gram
 * overflows float make scores inf or NaN, and ranking drops NaN, so queries
 * would silently return nothing. By Cauchy-Schwarz every dot product (and
 * every partial sum of one) is at most |x||y|, so bounding the squared
 * norms and the Gram's scale (alpha0 * sum |y|^2) bounds them all. [n x k] */
static bool norms_bounded(const float *a, uint64_t n, uint64_t k, double scale) {
  const double limit = FLT_MAX / 4.0;
  double sum = 0;
  for (uint64_t i = 0; i < n; i++) {
    double q = 0;
    for (uint64_t j = 0; j < k; j++) q += (double)a[i * k + j] * a[i * k + j];
    if (q > limit) return false;
    sum += q;
  }
  return sum * scale <= limit;
}

/* The content checksum: what the model is, blind to how the run went.
 * META with the creation time (72), the training duration (88), the cofi
 * version (104) and the number of ranks that trained it (144) zeroed,
 * then every other section's length and
 * (already verified) checksum in id order. Each section's bytes are thus
 * covered without hashing them a second time. */
static uint64_t content_checksum(const unsigned char *meta, const uint64_t *len,
                                 const uint64_t *sums) {
  unsigned char b[META_SIZE];
  memcpy(b, meta, META_SIZE);
  memset(b + 72, 0, 8);
  memset(b + 88, 0, 8);
  memset(b + 104, 0, 16);
  memset(b + 144, 0, 4);
  uint64_t h = cofi__hash_bytes(b, META_SIZE, 1); /* seed 1 for every version: v1 files keep theirs */
  for (int id = S_META + 1; id <= S_COUNT; id++) {
    /* sections after version 2's count only when present: ALS models keep
     * the checksum version 2 gave them */
    if (id > S_V2_COUNT && len[id] == 0 && sums[id] == 0) continue;
    unsigned char e[20];
    put32(e, (uint32_t)id);
    put64(e + 4, len[id]);
    put64(e + 12, sums[id]);
    h = cofi__hash_bytes(e, sizeof e, h);
  }
  return h;
}

/* The weights of EASE (B: finite, zero diagonal) or item-kNN (CSR rows in
 * order, indices in range, ascending, never the row's own item, finite
 * weights), bounded so that no sum of them overflows float (every score is
 * a sum of weights times history weights); then points m at them. */
static int item_weights_check(cofi_model *m, const unsigned char *const *sec,
                              const uint64_t *len, const char *name, cofi_diag *d) {
  uint64_t ni = m->n_items;
  const double limit = FLT_MAX / 4.0;
  double total = 0;
  if (m->params.model == COFI_MODEL_EASE) {
    const float *B = (const float *)sec[S_EASE_WEIGHTS];
    if (!finite_all(B, ni * ni)) return CORRUPT("NaN or infinite numbers in the EASE weights");
    for (uint64_t i = 0; i < ni; i++)
      if (B[i * ni + i] != 0.0f) return CORRUPT("EASE weights: item %llu weighs itself", (unsigned long long)i);
    for (uint64_t t = 0; t < ni * ni; t++) total += fabs((double)B[t]);
    if (total > limit) return CORRUPT("EASE weights too large: scores would overflow single precision");
    m->ease_weights = (float *)B;
    return COFI_OK;
  }
  uint64_t nnz = m->neighbors.nnz;
  const uint64_t *ip = (const uint64_t *)sec[S_KNN_INDPTR];
  const uint32_t *ix = (const uint32_t *)sec[S_KNN_INDICES];
  const float *w = (const float *)sec[S_KNN_WEIGHTS];
  (void)len;
  if (!offsets_ok(ip, ni, nnz)) return CORRUPT("neighbour row pointers out of order");
  for (uint64_t i = 0; i < ni; i++)
    for (uint64_t t = ip[i]; t < ip[i + 1]; t++)
      if (ix[t] >= ni || ix[t] == i || (t > ip[i] && ix[t] <= ix[t - 1]))
        return CORRUPT("neighbours of item %llu out of range, out of order or the item itself",
                       (unsigned long long)i);
  if (!finite_all(w, nnz)) return CORRUPT("NaN or infinite numbers in the neighbour weights");
  for (uint64_t t = 0; t < nnz; t++) total += fabs((double)w[t]);
  if (total > limit) return CORRUPT("neighbour weights too large: scores would overflow single precision");
  m->neighbors = (cofi__csr){.n_rows = (uint32_t)ni, .n_cols = (uint32_t)ni, .nnz = nnz,
                             .indptr = (uint64_t *)ip, .indices = (uint32_t *)ix,
                             .data = (float *)w, .borrowed = true};
  return COFI_OK;
}

/* Validates the mapped bytes and fills m (whose map fields are set). */
static int validate(cofi_model *m, const unsigned char *b, uint64_t size, const char *name,
                    cofi_diag *d) {
  if (size == 0) return cofi__fail(d, COFI_ERR_NOT_MODEL, name, 0, "empty file, not a cofi model");
  if (size < HEADER_SIZE || memcmp(b, MAGIC, 8) != 0)
    return cofi__fail(d, COFI_ERR_NOT_MODEL, name, 0,
                      "not a cofi model file (no COFIMODL signature at the start)");
  uint32_t bom = get32(b + 12);
  if (bom != BOM)
    return cofi__fail(d, COFI_ERR_NOT_MODEL, name, 0,
                      bom == 0x04030201u ? "model written with the other byte order"
                                         : "bad byte-order mark 0x%08x", bom);
  uint32_t version = get32(b + 8);
  if (version < OLDEST_VERSION || version > FORMAT_VERSION)
    return cofi__fail(d, version > FORMAT_VERSION ? COFI_ERR_VERSION : COFI_ERR_CORRUPT, name, 0,
                      "model format version %u; this cofi reads versions %u to %u", version,
                      OLDEST_VERSION, FORMAT_VERSION);
  if (get64(b + 48) != cofi__hash_bytes(b, 48, 0))
    return CORRUPT("header checksum mismatch");
  if (get32(b + 28) != 0 || get64(b + 56) != 0) return CORRUPT("reserved header fields not zero");
  uint64_t recorded = get64(b + 16);
  if (recorded != size)
    return CORRUPT("file is %llu bytes but its header says %llu (%s)", (unsigned long long)size,
                   (unsigned long long)recorded, size < recorded ? "truncated" : "extra bytes");
  uint32_t n = get32(b + 24);
  uint64_t table = get64(b + 32);
  if (n < 1 || n > MAX_SECTIONS) return CORRUPT("section count %u out of range", n);
  if (table != HEADER_SIZE || table + (uint64_t)n * ENTRY_SIZE > size)
    return CORRUPT("section table outside the file");
  if (get64(b + 40) != cofi__hash_bytes(b + table, (size_t)n * ENTRY_SIZE, 0))
    return CORRUPT("section table checksum mismatch");

  const unsigned char *sec[S_COUNT + 1] = {0};
  uint64_t len[S_COUNT + 1] = {0};
  uint64_t sums[S_COUNT + 1] = {0};
  uint64_t end_prev = table + (uint64_t)n * ENTRY_SIZE;
  for (uint32_t i = 0; i < n; i++) {
    const unsigned char *e = b + table + (size_t)i * ENTRY_SIZE;
    uint32_t id = get32(e), elem = get32(e + 4);
    uint64_t off = get64(e + 8), l = get64(e + 16), sum = get64(e + 24);
    if (id < 1 || id > S_COUNT) return CORRUPT("unknown section id %u", id);
    const char *sn = section_names[id];
    if (sec[id]) return CORRUPT("section %s appears twice", sn);
    if (elem != elem_sizes[id]) return CORRUPT("section %s: element size %u", sn, elem);
    if (off % ALIGN != 0 || off < end_prev || off > size || l > size - off)
      return CORRUPT("section %s: offset %llu length %llu outside the file or overlapping", sn,
                     (unsigned long long)off, (unsigned long long)l);
    if (l % elem != 0) return CORRUPT("section %s: length not a multiple of %u", sn, elem);
    for (uint64_t g = end_prev; g < off; g++)
      if (b[g]) return CORRUPT("non-zero byte at %llu between sections", (unsigned long long)g);
    if (cofi__hash_bytes(b + off, (size_t)l, 0) != sum)
      return CORRUPT("section %s: checksum mismatch (the file is damaged)", sn);
    sec[id] = b + off;
    len[id] = l;
    sums[id] = sum;
    end_prev = off + l;
  }
  for (uint64_t g = end_prev; g < size; g++)
    if (b[g]) return CORRUPT("non-zero byte at %llu after the last section", (unsigned long long)g);
  if (!sec[S_META]) return CORRUPT("section META missing");
  if (len[S_META] != META_SIZE) return CORRUPT("META section has %llu bytes", (unsigned long long)len[S_META]);

  meta_decode(sec[S_META], version, m);
  cofi_diag pd = {0};
  if (cofi_params_check(&m->params, &pd)) return CORRUPT("META: %s", pd.message);
  cofi_model_kind kind = m->params.model;
  const char *kind_name = cofi_model_kind_name((int)kind);
  if (kind != COFI_MODEL_ALS && version < 3)
    return CORRUPT("META: model kind %s in a version %u file", kind_name, version);
  for (int id = 1; id <= S_COUNT; id++) {
    if (section_of_kind(id, &m->params) && !sec[id])
      return CORRUPT("section %s missing (a %s model%s needs it)", section_names[id], kind_name,
                     m->params.recency > 0 ? " with a recency half-life" : "");
    if (!section_of_kind(id, &m->params) && sec[id])
      return CORRUPT("section %s in a %s model%s, which has none", section_names[id], kind_name,
                     id == S_SEEN_RANKS && kind != COFI_MODEL_ALS ? " without a recency half-life" : "");
  }
  uint64_t bad_user = 0;
  uint64_t nu = m->n_users, ni = m->n_items, k = m->factors, nf = m->meta.n_fields,
           nnz = m->user_items.nnz, knn_nnz = m->neighbors.nnz;
  bool als = kind == COFI_MODEL_ALS;
  if (nu == 0 || ni == 0 || (als && (k == 0 || k > COFI_MAX_FACTORS)) || (!als && k != 0))
    return CORRUPT("META: %llu users, %llu items, %llu factors for a %s model",
                   (unsigned long long)nu, (unsigned long long)ni, (unsigned long long)k,
                   kind_name);
  if (!isfinite(m->conf_mean_rowsum) || m->conf_mean_rowsum < 0)
    return CORRUPT("META: mean row sum %g", m->conf_mean_rowsum);
  if (nf > 4096 || (m->meta.title_field != -1 && (m->meta.title_field < 0 ||
                                                  (uint64_t)m->meta.title_field >= nf)))
    return CORRUPT("META: %llu metadata fields, title field %d", (unsigned long long)nf,
                   m->meta.title_field);
  /* Counts times element sizes must equal section lengths; every product
   * is bounded by the file size first, so none can overflow. */
#define EXPECT(id, count)                                                       \
  do {                                                                          \
    uint64_t c_ = (count);                                                      \
    if (c_ > size || len[id] / elem_sizes[id] != c_)                            \
      return CORRUPT("section %s has %llu elements, META implies %llu",         \
                     section_names[id], (unsigned long long)(len[id] / elem_sizes[id]), \
                     (unsigned long long)c_);                                   \
  } while (0)
  if (nu > size || ni > size || nnz > size || knn_nnz > size)
    return CORRUPT("META counts larger than the file");
  if (als) {
    EXPECT(S_USER_FACTORS, nu * k);
    EXPECT(S_ITEM_FACTORS, ni * k);
  } else if (kind == COFI_MODEL_EASE) {
    EXPECT(S_EASE_WEIGHTS, ni * ni);
  } else {
    EXPECT(S_KNN_INDPTR, ni + 1);
    EXPECT(S_KNN_INDICES, knn_nnz);
    EXPECT(S_KNN_WEIGHTS, knn_nnz);
  }
  EXPECT(S_USER_ID_OFFSETS, nu + 1);
  EXPECT(S_ITEM_ID_OFFSETS, ni + 1);
  EXPECT(S_SEEN_INDPTR, nu + 1);
  EXPECT(S_SEEN_INDICES, nnz);
  EXPECT(S_SEEN_VALUES, nnz);
  if (sec[S_SEEN_RANKS]) EXPECT(S_SEEN_RANKS, nnz);
  EXPECT(S_FIELD_OFFSETS, nf + 1);
  if (nf && ni > size / nf) return CORRUPT("metadata cell count larger than the file");
  EXPECT(S_CELL_OFFSETS, ni * nf + 1);
#undef EXPECT

  const uint64_t *uo = (const uint64_t *)sec[S_USER_ID_OFFSETS];
  const uint64_t *io = (const uint64_t *)sec[S_ITEM_ID_OFFSETS];
  const uint64_t *fo = (const uint64_t *)sec[S_FIELD_OFFSETS];
  const uint64_t *co = (const uint64_t *)sec[S_CELL_OFFSETS];
  const uint64_t *ip = (const uint64_t *)sec[S_SEEN_INDPTR];
  const uint32_t *ix = (const uint32_t *)sec[S_SEEN_INDICES];
  if (!offsets_ok(uo, nu, len[S_USER_ID_BLOB])) return CORRUPT("user ID offsets out of order");
  if (!offsets_ok(io, ni, len[S_ITEM_ID_BLOB])) return CORRUPT("item ID offsets out of order");
  if (!offsets_ok(fo, nf, len[S_FIELD_BLOB])) return CORRUPT("field name offsets out of order");
  if (!offsets_ok(co, ni * nf, len[S_CELL_BLOB])) return CORRUPT("metadata offsets out of order");
  if (!offsets_ok(ip, nu, nnz)) return CORRUPT("seen-items row pointers out of order");
  for (uint64_t u = 0; u < nu; u++)
    for (uint64_t t = ip[u]; t < ip[u + 1]; t++)
      if (ix[t] >= ni || (t > ip[u] && ix[t] <= ix[t - 1]))
        return CORRUPT("seen items of user %llu out of range or order", (unsigned long long)u);
  if (!finite_all((const float *)sec[S_SEEN_VALUES], nnz))
    return CORRUPT("NaN or infinite numbers in the values");
  if (sec[S_SEEN_RANKS] && !ranks_ok((const uint32_t *)sec[S_SEEN_RANKS], ip, nu, &bad_user))
    return CORRUPT("recency ranks of user %llu are not a permutation of their items",
                   (unsigned long long)bad_user);
  m->seen_ranks = (uint32_t *)sec[S_SEEN_RANKS];
  if (als) {
    if (!finite_all((const float *)sec[S_USER_FACTORS], nu * k) ||
        !finite_all((const float *)sec[S_ITEM_FACTORS], ni * k))
      return CORRUPT("NaN or infinite numbers in the factors");
    if (!norms_bounded((const float *)sec[S_USER_FACTORS], nu, k, 0) ||
        !norms_bounded((const float *)sec[S_ITEM_FACTORS], ni, k, m->params.unobserved_weight))
      return CORRUPT("factors too large: scores would overflow single precision");
    m->user_factors = (float *)sec[S_USER_FACTORS];
    m->item_factors = (float *)sec[S_ITEM_FACTORS];
  } else {
    int wrc = item_weights_check(m, sec, len, name, d);
    if (wrc) return wrc;
  }
  m->user_items = (cofi__csr){.n_rows = (uint32_t)nu, .n_cols = (uint32_t)ni, .nnz = nnz,
                              .indptr = (uint64_t *)ip, .indices = (uint32_t *)ix,
                              .data = (float *)sec[S_SEEN_VALUES], .borrowed = true};
  m->meta.names = (cofi__strtab){.n = nf, .offsets = (uint64_t *)fo,
                                 .blob = (char *)sec[S_FIELD_BLOB], .borrowed = true};
  m->meta.cells = (cofi__strtab){.n = ni * nf, .offsets = (uint64_t *)co,
                                 .blob = (char *)sec[S_CELL_BLOB], .borrowed = true};
  int rc = cofi__idmap_borrow(&m->users, (uint32_t)nu, uo, (const char *)sec[S_USER_ID_BLOB]);
  if (rc == COFI_ERR_CORRUPT) return CORRUPT("duplicate user IDs");
  if (rc) return cofi__fail(d, rc, name, 0, "out of memory");
  rc = cofi__idmap_borrow(&m->items, (uint32_t)ni, io, (const char *)sec[S_ITEM_ID_BLOB]);
  if (rc == COFI_ERR_CORRUPT) return CORRUPT("duplicate item IDs");
  if (rc) return cofi__fail(d, rc, name, 0, "out of memory");
  m->file_bytes = size;
  m->checksum = cofi__hash_bytes(b, HEADER_SIZE + (size_t)n * ENTRY_SIZE, 0);
  m->content_checksum = content_checksum(sec[S_META], len, sums);
  rc = cofi__model_prepare(m);
  if (rc) return cofi__fail(d, rc, name, 0, "out of memory");
  return COFI_OK;
}
#undef CORRUPT

/* The size of the regular file behind fd, refusing anything else (a
 * directory, a pipe, a device) and empty files. */
static int regular_size(int fd, const char *name, size_t *size, cofi_diag *d) {
  struct stat st;
  if (fstat(fd, &st) != 0) return cofi__fail(d, COFI_ERR_IO, name, 0, "cannot stat: %s", strerror(errno));
  if (!S_ISREG(st.st_mode)) return cofi__fail(d, COFI_ERR_IO, name, 0, "not a regular file");
  if (st.st_size == 0)
    return cofi__fail(d, COFI_ERR_NOT_MODEL, name, 0, "empty file, not a cofi model");
  if ((uint64_t)st.st_size > SIZE_MAX)
    return cofi__fail(d, COFI_ERR_IO, name, 0, "file too large for this address space");
  *size = (size_t)st.st_size;
  return COFI_OK;
}

/* Takes over buf (len bytes, mapped or from cofi__aligned_alloc as
 * is_malloc says), validates it and returns the model; on failure buf is
 * released and *out stays NULL. */
static int adopt(void *buf, size_t len, bool is_malloc, const char *name, cofi_model **out,
                 cofi_diag *d) {
  cofi_model *m;
  int rc = cofi__model_new(&m);
  if (rc) {
    if (is_malloc) cofi__aligned_free(buf);
    else munmap(buf, len);
    return cofi__fail(d, rc, name, 0, "out of memory");
  }
  m->map = buf;
  m->map_len = len;
  m->map_is_malloc = is_malloc;
  rc = validate(m, buf, len, name, d);
  if (rc) {
    cofi_model_close(m); /* releases buf too */
    return rc;
  }
  *out = m;
  return COFI_OK;
}

int cofi_model_open_fd(int fd, const char *name, cofi_model **out, cofi_diag *d) {
  *out = NULL;
  if (!name) name = "<descriptor>";
  size_t size;
  int rc = regular_size(fd, name, &size, d);
  if (rc) return rc;
  void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return cofi__fail(d, COFI_ERR_IO, name, 0, "cannot map: %s", strerror(errno));
  return adopt(map, size, false, name, out, d);
}

int cofi_model_open(const char *path, cofi_model **out, cofi_diag *d) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cofi__fail(d, COFI_ERR_IO, path, 0, "cannot open: %s", strerror(errno));
  /* The mapping keeps the file; the descriptor is not needed after. */
  int rc = cofi_model_open_fd(fd, path, out, d);
  close(fd);
  return rc;
}

/* pread until len bytes are in or the file ends; EINTR retried. Returns
 * the bytes read, or -1 with errno set. Regular files never return short
 * reads except at their end, but a loop costs nothing and reads above
 * 2 GiB come in pieces anyway. */
static ssize_t pread_full(int fd, unsigned char *buf, size_t len, uint64_t at) {
  size_t got = 0;
  while (got < len) {
    size_t chunk = len - got > (1u << 30) ? (1u << 30) : len - got;
    ssize_t r = pread(fd, buf + got, chunk, (off_t)(at + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

int cofi_model_read_fd(int fd, const char *name, cofi_model **out, cofi_diag *d) {
  *out = NULL;
  if (!name) name = "<descriptor>";
  size_t size;
  int rc = regular_size(fd, name, &size, d);
  if (rc) return rc;
  /* Read straight into the model's own (aligned) storage: no second copy. */
  unsigned char *buf = cofi__aligned_alloc(size);
  if (!buf)
    return cofi__fail(d, COFI_ERR_NOMEM, name, 0, "out of memory (reading %zu bytes)", size);
  unsigned char extra;
  ssize_t got = pread_full(fd, buf, size, 0), more = 0;
  if (got == (ssize_t)size) more = pread_full(fd, &extra, 1, size);
  if (got < 0 || more < 0) {
    rc = cofi__fail(d, COFI_ERR_IO, name, 0, "cannot read: %s", strerror(errno));
    goto fail;
  }
  /* The size came from fstat before the read: a file that is shorter or
   * longer now was changed while being read, and what we hold may mix
   * two versions. Validation would most likely catch it too, but the
   * reason would be misleading. */
  if (got < (ssize_t)size) {
    rc = cofi__fail(d, COFI_ERR_CORRUPT, name, 0,
                    "truncated while being read: it had %zu bytes, reading ended at %zu "
                    "(is it being rewritten?)", size, (size_t)got);
    goto fail;
  }
  if (more > 0) {
    rc = cofi__fail(d, COFI_ERR_CORRUPT, name, 0,
                    "grew while being read: it had %zu bytes (is it being rewritten?)", size);
    goto fail;
  }
  return adopt(buf, size, true, name, out, d);
fail:
  cofi__aligned_free(buf);
  return rc;
}

int cofi_model_open_memory(const void *buf, size_t len, cofi_model **out, cofi_diag *d) {
  *out = NULL;
  if (len == 0) return cofi__fail(d, COFI_ERR_NOT_MODEL, "<memory>", 0, "empty buffer, not a cofi model");
  void *copy = cofi__aligned_alloc(len);
  if (!copy) return cofi__fail(d, COFI_ERR_NOMEM, "<memory>", 0, "out of memory");
  memcpy(copy, buf, len);
  return adopt(copy, len, true, "<memory>", out, d);
}

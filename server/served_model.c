/*
 * served_model.c — a model as the server holds it: the opened cofi_model,
 * its metadata, the JSON text of every item and user ID (escaped once when
 * the model is loaded), and how its bytes are stored.
 *
 * A recommendation answer is mostly IDs and titles; escaping them per
 * request would be the largest cost after scoring, so each item's members
 * (`"item_id":"296"` and `,"title":"Pulp Fiction (1994)"`) and each user's quoted
 * ID are prepared here and the handlers copy bytes. The cost is memory of
 * the same order as the ID and title tables in the model file.
 *
 * Storage. Mapping the file costs no memory and no copy, but a mapping
 * follows the file's inode: rewriting the served file in place (`cp new
 * served`, `rsync --inplace`, `: > served`) would change or truncate the
 * pages under running requests, and a read past the new end is SIGBUS.
 * So a file is mapped only under a read lease (fcntl F_SETLEASE F_RDLCK):
 * the kernel then signals us before anyone may open the file for writing
 * or truncate it, and holds that writer in open() until we close the
 * descriptor (or /proc/sys/fs/lease-break-time, 45 s by default, passes).
 * The signal loop (lifecycle.c; reload.c, srv_lease_broken) answers by reading a
 * private copy through the same descriptor (srv_model_copy_private) and
 * swapping it in; the mapped model goes when its last request does.
 * Without a lease (not the owner and no CAP_LEASE, a writer already has
 * the file open, NFS, or no signal loop) the file is read into private
 * memory at load: safe, at the cost of its size in memory.
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(cofi_diag *diag, int code, const char *path, const char *msg) {
  if (diag) {
    snprintf(diag->file, sizeof diag->file, "%s", path);
    diag->line = 0;
    snprintf(diag->message, sizeof diag->message, "%s", msg);
  }
  return code;
}

/* Unmaps first, then closes the leased descriptor: the lease protects the
 * mapping until the very end. */
static void destroy(srv_ref *r) {
  srv_model *sm = (srv_model *)r;
  cofi_model_close(sm->m);
  if (sm->lease_fd >= 0) close(sm->lease_fd);
  free(sm->item_json);
  free(sm->item_json_off);
  free(sm->user_json);
  free(sm->user_json_off);
  free(sm->title_lc);
  free(sm->title_off);
  free(sm->item_users);
  free(sm);
}

static srv_model *model_new(void) {
  srv_model *sm = calloc(1, sizeof *sm);
  if (sm) {
    sm->lease_fd = -1;
    atomic_init(&sm->ref.refs, 1);
    sm->ref.destroy = destroy;
  }
  return sm;
}

/* Takes the bytes of b (the caller's buffer is left empty). */
static char *take(srv_buf *b) {
  char *p = b->p;
  srv_buf_init(b);
  return p;
}

/* The title index of GET /items?search= (one buffer of lowercased titles,
 * scanned with memmem: about 1.5 MB and well under a millisecond per
 * search for 60k titles, with substring matches that a sorted array could
 * not give) and the interaction count of every item (one pass over the
 * training matrix). COFI_ERR_NOMEM or COFI_OK. */
static int prepare_search(srv_model *sm) {
  uint32_t n = sm->info.n_items;
  srv_buf t;
  srv_buf_init(&t);
  sm->title_off = malloc(((size_t)n + 1) * sizeof *sm->title_off);
  sm->item_users = calloc(n ? n : 1, sizeof *sm->item_users);
  if (!sm->title_off || !sm->item_users) return COFI_ERR_NOMEM;
  for (uint32_t i = 0; i < n; i++) {
    size_t len;
    const char *text = cofi_model_item_title(sm->m, i, &len);
    if (!text) text = cofi_model_item_id(sm->m, i, &len);
    sm->title_off[i] = t.len;
    if (!srv_buf_reserve(&t, len + 1)) break;
    for (size_t j = 0; j < len; j++) {
      char c = text[j];
      /* ASCII only: UTF-8 bytes pass unchanged; a NUL would end the text
       * early, so it becomes a space (queries never hold one). */
      t.p[t.len++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c ? c : ' ';
    }
    t.p[t.len++] = 0;
  }
  if (t.oom) {
    srv_buf_free(&t);
    return COFI_ERR_NOMEM;
  }
  sm->title_off[n] = t.len;
  sm->title_lc = take(&t);
  if (!sm->title_lc && !(sm->title_lc = calloc(1, 1))) return COFI_ERR_NOMEM;
  for (uint32_t u = 0; u < sm->info.n_users; u++) {
    const uint32_t *its;
    const float *vals;
    size_t k = cofi_model_user_items(sm->m, u, &its, &vals);
    for (size_t j = 0; j < k; j++)
      if (its[j] < n) sm->item_users[its[j]]++;
  }
  return COFI_OK;
}

/* The info and the JSON fragments of sm->m. COFI_ERR_NOMEM or COFI_OK. */
static int prepare(srv_model *sm) {
  int rc = COFI_ERR_NOMEM;
  srv_buf items, users;
  srv_buf_init(&items);
  srv_buf_init(&users);
  cofi_model_get_info(sm->m, &sm->info);
  sm->item_json_off = malloc((2 * (size_t)sm->info.n_items + 1) * sizeof(size_t));
  sm->user_json_off = malloc(((size_t)sm->info.n_users + 1) * sizeof(size_t));
  if (!sm->item_json_off || !sm->user_json_off) goto cleanup;
  for (uint32_t i = 0; i < sm->info.n_items; i++) {
    sm->item_json_off[2 * (size_t)i] = items.len;
    size_t len, tlen;
    const char *id = cofi_model_item_id(sm->m, i, &len);
    srv_buf_lit(&items, "\"item_id\":");
    srv_buf_json_str(&items, id, len);
    sm->item_json_off[2 * (size_t)i + 1] = items.len;
    const char *title = cofi_model_item_title(sm->m, i, &tlen);
    if (title) {
      srv_buf_lit(&items, ",\"title\":");
      srv_buf_json_str(&items, title, tlen);
    }
  }
  sm->item_json_off[2 * (size_t)sm->info.n_items] = items.len;
  for (uint32_t u = 0; u < sm->info.n_users; u++) {
    sm->user_json_off[u] = users.len;
    size_t len;
    const char *id = cofi_model_user_id(sm->m, u, &len);
    srv_buf_json_str(&users, id, len);
  }
  sm->user_json_off[sm->info.n_users] = users.len;
  if (items.oom || users.oom) goto cleanup;
  if (prepare_search(sm) != COFI_OK) goto cleanup;
  sm->item_json = take(&items);
  sm->user_json = take(&users);
  rc = COFI_OK;
cleanup:
  srv_buf_free(&users);
  srv_buf_free(&items);
  return rc;
}

/* F_SETSIG first, so that a break is signalled with lease_sig (carrying
 * the descriptor in si_fd) from the moment the lease exists; F_SETOWN to
 * the process, where every thread blocks the signal but the signal loop
 * waits for it. 0 or the errno of the step that failed. */
static int take_lease(int fd, int lease_sig) {
  if (fcntl(fd, F_SETSIG, lease_sig) != 0 || fcntl(fd, F_SETOWN, getpid()) != 0 ||
      fcntl(fd, F_SETLEASE, F_RDLCK) != 0)
    return errno ? errno : EINVAL;
  return 0;
}

int srv_model_load(const char *path, uint64_t generation, int lease_sig, srv_model **out,
                   cofi_diag *diag) {
  *out = NULL;
  srv_model *sm = model_new();
  if (!sm) return fail(diag, COFI_ERR_NOMEM, path, "out of memory");
  int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno));
    rc = fail(diag, COFI_ERR_IO, path, msg);
    goto cleanup;
  }
  sm->lease_errno = lease_sig > 0 ? take_lease(fd, lease_sig) : -1;
  if (sm->lease_errno == 0) {
    /* From here the descriptor belongs to sm: destroy closes it. */
    sm->lease_fd = fd;
    sm->storage = SRV_STORAGE_MAPPED;
    rc = cofi_model_open_fd(fd, path, &sm->m, diag);
  } else {
    sm->storage = SRV_STORAGE_PRIVATE;
    rc = cofi_model_read_fd(fd, path, &sm->m, diag);
    close(fd);
  }
  if (rc != COFI_OK) goto cleanup;
  sm->generation = generation;
  snprintf(sm->path, sizeof sm->path, "%s", path);
  sm->loaded_unix = (double)time(NULL);
  rc = prepare(sm);
  if (rc != COFI_OK) {
    fail(diag, rc, path, "out of memory preparing the model for serving");
    goto cleanup;
  }
  *out = sm;
  return COFI_OK;

cleanup:
  destroy(&sm->ref);
  return rc;
}

int srv_model_copy_private(const srv_model *sm, const char *name, srv_model **out,
                           cofi_diag *diag) {
  *out = NULL;
  if (sm->storage != SRV_STORAGE_MAPPED || sm->lease_fd < 0)
    return fail(diag, COFI_ERR_INVALID, name, "the model holds no lease to copy through");
  srv_model *copy = model_new();
  if (!copy) return fail(diag, COFI_ERR_NOMEM, name, "out of memory");
  int rc = cofi_model_read_fd(sm->lease_fd, name, &copy->m, diag);
  if (rc != COFI_OK) goto cleanup;
  copy->storage = SRV_STORAGE_PRIVATE;
  copy->generation = sm->generation;
  memcpy(copy->path, sm->path, sizeof copy->path);
  copy->loaded_unix = sm->loaded_unix;
  rc = prepare(copy);
  if (rc != COFI_OK) {
    fail(diag, rc, name, "out of memory preparing the model for serving");
    goto cleanup;
  }
  /* The writer is held in open() while we read, so this cannot differ;
   * if the kernel gave up waiting for us (lease-break-time) it could, and
   * serving other bytes under the same generation would be a lie. */
  if (copy->info.checksum != sm->info.checksum) {
    char msg[200];
    snprintf(msg, sizeof msg,
             "the file changed before it could be copied (checksum %016llx, was %016llx)",
             (unsigned long long)copy->info.checksum, (unsigned long long)sm->info.checksum);
    rc = fail(diag, COFI_ERR_CORRUPT, name, msg);
    goto cleanup;
  }
  *out = copy;
  return COFI_OK;

cleanup:
  destroy(&copy->ref);
  return rc;
}

const char *srv_lease_reason(int lease_errno) {
  switch (lease_errno) {
  case 0: return "a read lease is held";
  case -1: return "leases are off: no signal loop answers lease breaks";
  case EAGAIN: return "another process has the file open for writing";
  case EACCES: return "the server is neither the file's owner nor privileged (CAP_LEASE)";
  case EINVAL:
  case ENOLCK: return "the filesystem does not support leases (NFS, for one)";
  default: return strerror(lease_errno);
  }
}

const char *srv_storage_name(srv_storage s) {
  return s == SRV_STORAGE_MAPPED ? "mapped" : "private";
}

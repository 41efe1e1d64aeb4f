/*
 * versions.c — the models directory: version files, the manifest that
 * describes them, copying a model in, choosing a rollback target, pruning.
 * Callers serialize access (retrain.c's lock); nothing here takes a lock.
 */
#include "versions.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char manifest_name[] = "manifest.json";


const char *srv_vstatus_name(srv_vstatus s) {
  return s == SRV_V_LIVE ? "live" : s == SRV_V_KEPT ? "kept" : "rejected";
}

static bool vstatus_parse(const char *s, srv_vstatus *out) {
  for (int i = 0; i <= SRV_V_REJECTED; i++)
    if (!strcmp(s, srv_vstatus_name((srv_vstatus)i))) {
      *out = (srv_vstatus)i;
      return true;
    }
  return false;
}

void srv_versions_path(const srv_versions *vs, uint32_t version, char *buf, size_t size) {
  snprintf(buf, size, "%s/v%06u.cofi", vs->dir, version);
}

static void manifest_path(const srv_versions *vs, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s", vs->dir, manifest_name);
}

srv_version *srv_versions_find(srv_versions *vs, uint32_t version) {
  for (size_t i = 0; i < vs->n; i++)
    if (vs->v[i].version == version) return &vs->v[i];
  return NULL;
}

srv_version *srv_versions_add(srv_versions *vs) {
  if (vs->n == vs->cap) {
    size_t cap = vs->cap ? vs->cap * 2 : 8;
    srv_version *v = realloc(vs->v, cap * sizeof *v);
    if (!v) return NULL;
    vs->v = v;
    vs->cap = cap;
  }
  srv_version *v = &vs->v[vs->n++];
  memset(v, 0, sizeof *v);
  v->version = vs->next++;
  v->created = (int64_t)time(NULL);
  v->loss = v->train_seconds = v->recall = v->live_recall = NAN;
  v->status = SRV_V_KEPT;
  return v;
}

/* fsync of a directory, so a rename in it survives a crash. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return err;
}

/* Temp files of cofi_model_save ("*.tmp.XXXXXX") and of the manifest
 * (".manifest.json.tmp") that a crash left behind are removed. *max_file:
 * the largest N of the vNNNNNN.cofi files present (listed or not: a crash
 * between a version's rename and the manifest's leaves one unlisted, and
 * its number must not be given out again). */
static void scan_dir(const char *dir, uint32_t *max_file) {
  *max_file = 0;
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[4200];
  while ((e = readdir(d))) {
    if (strstr(e->d_name, ".tmp.") || !strcmp(e->d_name, ".manifest.json.tmp")) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      if (unlink(path) == 0)
        fprintf(stderr, "cofi serve: removed %s, left by an interrupted write\n", path);
      continue;
    }
    const char *nm = e->d_name;
    if (strlen(nm) == 12 && nm[0] == 'v' && strspn(nm + 1, "0123456789") == 6 &&
        !strcmp(nm + 7, ".cofi")) {
      uint32_t n = (uint32_t)strtoul(nm + 1, NULL, 10);
      if (n > *max_file) *max_file = n;
    }
  }
  closedir(d);
}

/* ---- reading the manifest ---------------------------------------------------- */

static double json_num_or_nan(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static bool get_u64(json_t *obj, const char *key, uint64_t max, uint64_t *out) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
    return false;
  *out = (uint64_t)json_integer_value(v);
  return true;
}

static int parse_entry(json_t *e, size_t i, const char *path, srv_version *v, cofi_diag *diag) {
  memset(v, 0, sizeof *v);
  uint64_t n;
  const char *bad = NULL;
  if (!json_is_object(e)) bad = "is not an object";
  else if (!get_u64(e, "version", 999999, &n) || n == 0) bad = "has no version in 1..999999";
  else if ((v->version = (uint32_t)n), !get_u64(e, "created_unix", INT64_MAX, &n))
    bad = "has no created_unix";
  else if ((v->created = (int64_t)n), !get_u64(e, "users", UINT32_MAX, &n)) bad = "has no users";
  else if ((v->users = (uint32_t)n), !get_u64(e, "items", UINT32_MAX, &n)) bad = "has no items";
  else if ((v->items = (uint32_t)n), !get_u64(e, "interactions", UINT64_MAX >> 1, &v->interactions))
    bad = "has no interactions";
  if (!bad) {
    json_t *st = json_object_get(e, "status");
    if (!json_is_string(st) || !vstatus_parse(json_string_value(st), &v->status))
      bad = "has no status live, kept or rejected";
  }
  if (!bad) {
    json_t *cs = json_object_get(e, "content_checksum");
    if (!json_is_string(cs) || sscanf(json_string_value(cs), "%16llx", (unsigned long long *)&v->content_checksum) != 1)
      bad = "has no content_checksum";
  }
  if (bad)
    return srv_diag_fail(diag, COFI_ERR_PARSE, path, "models[%zu] %s (fix or remove the entry)", i, bad);
  json_t *m = json_object_get(e, "metrics");
  v->loss = json_num_or_nan(json_object_get(m, "loss"));
  v->train_seconds = json_num_or_nan(json_object_get(m, "train_seconds"));
  v->recall = json_num_or_nan(json_object_get(m, "recall_at_10"));
  v->live_recall = json_num_or_nan(json_object_get(m, "live_recall_at_10"));
  get_u64(m, "held_out_users", UINT64_MAX >> 1, &v->held_out_users);
  get_u64(m, "held_out_events", UINT64_MAX >> 1, &v->held_out_events);
  if (get_u64(m, "compared_with_version", 999999, &n)) v->live_version_at_check = (uint32_t)n;
  json_t *r = json_object_get(e, "reason");
  if (json_is_string(r)) snprintf(v->reason, sizeof v->reason, "%s", json_string_value(r));
  return COFI_OK;
}

static int read_manifest(srv_versions *vs, cofi_diag *diag) {
  char path[4000];
  manifest_path(vs, path, sizeof path);
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  if (!root) {
    if (access(path, F_OK) != 0 && errno == ENOENT) return COFI_OK; /* a new directory */
    return srv_diag_fail(diag, COFI_ERR_PARSE, path, "cannot read the manifest: %s (line %d)", je.text,
                je.line);
  }
  int rc = COFI_OK;
  uint64_t next = 1;
  json_t *models = json_object_get(root, "models");
  if (!json_is_array(models)) {
    rc = srv_diag_fail(diag, COFI_ERR_PARSE, path, "the manifest has no \"models\" array");
    goto done;
  }
  size_t i;
  json_t *e;
  json_array_foreach(models, i, e) {
    srv_version v;
    rc = parse_entry(e, i, path, &v, diag);
    if (rc) goto done;
    if (srv_versions_find(vs, v.version)) {
      rc = srv_diag_fail(diag, COFI_ERR_PARSE, path, "models[%zu]: version %u is listed twice", i, v.version);
      goto done;
    }
    if (vs->n && vs->v[vs->n - 1].version > v.version) {
      rc = srv_diag_fail(diag, COFI_ERR_PARSE, path, "models[%zu]: versions are not in ascending order", i);
      goto done;
    }
    uint32_t saved_next = vs->next;
    vs->next = v.version;
    srv_version *slot = srv_versions_add(vs);
    vs->next = saved_next;
    if (!slot) {
      rc = srv_diag_fail(diag, COFI_ERR_NOMEM, path, "out of memory");
      goto done;
    }
    *slot = v;
    if (v.status == SRV_V_LIVE) {
      if (vs->live) slot->status = SRV_V_KEPT; /* one live version: the first wins */
      else vs->live = v.version;
    }
    if (v.version + 1u > next) next = v.version + 1u;
  }
  uint64_t stored_next;
  if (get_u64(root, "next_version", 1000000, &stored_next) && stored_next > next) next = stored_next;
  vs->next = (uint32_t)next;
done:
  json_decref(root);
  return rc;
}

int srv_versions_open(const char *dir, uint32_t keep, srv_versions *out, cofi_diag *diag) {
  memset(out, 0, sizeof *out);
  out->keep = keep < 2 ? 2 : keep;
  out->next = 1;
  if (strlen(dir) >= sizeof out->dir - 32)
    return srv_diag_fail(diag, COFI_ERR_INVALID, dir, "--models-dir: the path is too long");
  snprintf(out->dir, sizeof out->dir, "%s", dir);
  struct stat st;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return srv_diag_fail(diag, COFI_ERR_IO, dir, "--models-dir: cannot create the directory: %s", strerror(errno));
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return srv_diag_fail(diag, COFI_ERR_IO, dir, "--models-dir: not a directory");
  if (access(dir, W_OK | X_OK) != 0)
    return srv_diag_fail(diag, COFI_ERR_IO, dir, "--models-dir: cannot write in the directory: %s",
                strerror(errno));
  uint32_t max_file;
  scan_dir(dir, &max_file);
  int rc = read_manifest(out, diag);
  if (rc) srv_versions_free(out);
  else if (max_file >= out->next) out->next = max_file + 1;
  return rc;
}

void srv_versions_free(srv_versions *vs) {
  free(vs->v);
  vs->v = NULL;
  vs->n = vs->cap = 0;
}

/* ---- writing ---------------------------------------------------------------- */

static void put_num(srv_buf *b, const char *key, double v) {
  if (!isfinite(v)) return;
  srv_buf_printf(b, ",\"%s\":", key);
  srv_buf_float(b, v);
}

static void iso(char *buf, size_t size, int64_t t) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(buf, size, "1970-01-01T00:00:00Z");
}

void srv_version_json(srv_buf *b, const srv_version *v) {
  char when[32];
  iso(when, sizeof when, v->created);
  srv_buf_printf(b,
                 "{\"version\":%u,\"file\":\"v%06u.cofi\",\"created\":\"%s\",\"created_unix\":%lld,"
                 "\"users\":%u,\"items\":%u,\"interactions\":%llu,\"content_checksum\":\"%016llx\","
                 "\"metrics\":{\"k\":%u",
                 v->version, v->version, when, (long long)v->created, v->users, v->items,
                 (unsigned long long)v->interactions, (unsigned long long)v->content_checksum,
                 SRV_CHECK_K);
  put_num(b, "loss", v->loss);
  put_num(b, "train_seconds", v->train_seconds);
  put_num(b, "recall_at_10", v->recall);
  put_num(b, "live_recall_at_10", v->live_recall);
  if (v->live_version_at_check) srv_buf_printf(b, ",\"compared_with_version\":%u", v->live_version_at_check);
  if (v->held_out_events)
    srv_buf_printf(b, ",\"held_out_users\":%llu,\"held_out_events\":%llu",
                   (unsigned long long)v->held_out_users, (unsigned long long)v->held_out_events);
  srv_buf_printf(b, "},\"status\":\"%s\",\"reason\":", srv_vstatus_name(v->status));
  if (v->reason[0]) srv_buf_json_str(b, v->reason, strlen(v->reason));
  else srv_buf_lit(b, "null");
  srv_buf_putc(b, '}');
}

/* Writes all of buf to fd. */
static bool write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

int srv_versions_save(const srv_versions *vs, cofi_diag *diag) {
  srv_buf b;
  srv_buf_init(&b);
  srv_buf_printf(&b, "{\"format\":1,\"live\":%u,\"next_version\":%u,\"models\":[", vs->live, vs->next);
  for (size_t i = 0; i < vs->n; i++) {
    if (i) srv_buf_lit(&b, ",\n");
    srv_version_json(&b, &vs->v[i]);
  }
  srv_buf_lit(&b, "]}\n");
  if (b.oom) {
    srv_buf_free(&b);
    return srv_diag_fail(diag, COFI_ERR_NOMEM, vs->dir, "out of memory writing the manifest");
  }
  char tmp[4000], path[4000];
  snprintf(tmp, sizeof tmp, "%s/.manifest.json.tmp", vs->dir);
  manifest_path(vs, path, sizeof path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int rc = COFI_OK;
  if (fd < 0) {
    rc = srv_diag_fail(diag, COFI_ERR_IO, tmp, "cannot create the manifest: %s", strerror(errno));
  } else {
    bool ok = write_all(fd, b.p, b.len) && fsync(fd) == 0;
    int err = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
      rc = srv_diag_fail(diag, COFI_ERR_IO, path, "cannot write the manifest: %s", strerror(ok ? errno : err));
      unlink(tmp);
    } else {
      sync_dir(vs->dir);
    }
  }
  srv_buf_free(&b);
  return rc;
}

int srv_versions_copy_in(const srv_versions *vs, const char *src, uint32_t version, cofi_diag *diag) {
  char dst[4000], tmp[4100];
  srv_versions_path(vs, version, dst, sizeof dst);
  snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", dst);
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return srv_diag_fail(diag, COFI_ERR_IO, src, "cannot open: %s", strerror(errno));
  int out = mkstemp(tmp);
  if (out < 0) {
    int err = errno;
    close(in);
    return srv_diag_fail(diag, COFI_ERR_IO, tmp, "cannot create: %s", strerror(err));
  }
  char buf[1 << 16];
  bool ok = true;
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      ok = false;
      break;
    }
    if (r == 0) break;
    if (!write_all(out, buf, (size_t)r)) {
      ok = false;
      break;
    }
  }
  int err = errno;
  ok = ok && fchmod(out, 0644) == 0 && fsync(out) == 0;
  if (!ok) err = errno;
  close(in);
  if (close(out) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && rename(tmp, dst) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    unlink(tmp);
    return srv_diag_fail(diag, COFI_ERR_IO, dst, "cannot copy %s into the models directory: %s", src,
                strerror(err));
  }
  sync_dir(vs->dir);
  return COFI_OK;
}

uint32_t srv_versions_rollback_target(const srv_versions *vs) {
  uint32_t older = 0, newest = 0;
  for (size_t i = 0; i < vs->n; i++) {
    const srv_version *v = &vs->v[i];
    if (v->status != SRV_V_KEPT) continue;
    if (v->version < vs->live) older = v->version;
    newest = v->version;
  }
  return older ? older : newest;
}

void srv_versions_set_live(srv_versions *vs, uint32_t version, const char *old_reason) {
  for (size_t i = 0; i < vs->n; i++) {
    srv_version *v = &vs->v[i];
    if (v->version == version) {
      v->status = SRV_V_LIVE;
      v->reason[0] = 0;
    } else if (v->status == SRV_V_LIVE) {
      v->status = SRV_V_KEPT;
      snprintf(v->reason, sizeof v->reason, "%s", old_reason ? old_reason : "");
    }
  }
  vs->live = version;
}

size_t srv_versions_prune(srv_versions *vs, uint32_t *gone, size_t max) {
  size_t removed = 0;
  while (vs->n > vs->keep && removed < max) {
    uint32_t target = srv_versions_rollback_target(vs);
    size_t i = 0;
    while (i < vs->n && (vs->v[i].version == vs->live || vs->v[i].version == target)) i++;
    if (i == vs->n) break;
    gone[removed++] = vs->v[i].version;
    memmove(&vs->v[i], &vs->v[i + 1], (vs->n - i - 1) * sizeof *vs->v);
    vs->n--;
  }
  return removed;
}

void srv_versions_unlink(const srv_versions *vs, const uint32_t *gone, size_t n) {
  char path[4000];
  for (size_t i = 0; i < n; i++) {
    srv_versions_path(vs, gone[i], path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
      fprintf(stderr, "cofi serve: cannot delete old version %s: %s\n", path, strerror(errno));
  }
  if (n) sync_dir(vs->dir);
}

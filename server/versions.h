/*
 * versions.h — the models directory of a retraining server (versions.c)
 * and the background retraining that fills it (retrain.c, retrain_routes.c).
 *
 * DIR/v000001.cofi, DIR/v000002.cofi, ... are the versions, never rewritten
 * once renamed into place; DIR/manifest.json (rewritten atomically: temp
 * file, fsync, rename, fsync of DIR) says what each one is: when it was
 * made, from how much data, its training and check metrics, and whether it
 * is live, kept, or was rejected by the check (and why).
 */
#ifndef COFI_SRV_VERSIONS_H
#define COFI_SRV_VERSIONS_H

#include "srv.h"

typedef enum srv_vstatus {
  SRV_V_LIVE = 0,     /* being served */
  SRV_V_KEPT = 1,     /* good, not served: a rollback may go to it */
  SRV_V_REJECTED = 2, /* failed the check before a swap; never served */
} srv_vstatus;

typedef struct srv_version {
  uint32_t version;
  int64_t created; /* Unix seconds */
  uint32_t users, items;
  uint64_t interactions;
  uint64_t content_checksum; /* cofi_model_info's: tells equal models */
  /* Training and check metrics; NAN when unknown (an imported model). */
  double loss, train_seconds;
  double recall, live_recall; /* Recall@SRV_CHECK_K on the held-out slice */
  uint64_t held_out_users, held_out_events;
  uint32_t live_version_at_check; /* which version it was compared with */
  srv_vstatus status;
  char reason[400]; /* why rejected / not live; "" when none */
} srv_version;

typedef struct srv_versions {
  char dir[3800];
  uint32_t keep;  /* versions kept in DIR (>= 2) */
  uint32_t next;  /* the number of the next version; never reused */
  uint32_t live;  /* 0: none */
  srv_version *v; /* ascending version numbers */
  size_t n, cap;
} srv_versions;

/* The cutoff of the check's Recall@K. */
#define SRV_CHECK_K 10u

/* Creates DIR when missing (its parent must exist), removes temp files a
 * crash may have left, reads DIR/manifest.json when present (every entry
 * checked: a bad one is COFI_ERR_PARSE naming the file and the entry).
 * COFI_ERR_IO naming DIR when it cannot be made or read. */
int srv_versions_open(const char *dir, uint32_t keep, srv_versions *out, cofi_diag *diag);
void srv_versions_free(srv_versions *vs);
/* Writes DIR/manifest.json atomically. */
int srv_versions_save(const srv_versions *vs, cofi_diag *diag);
/* DIR/vNNNNNN.cofi. */
void srv_versions_path(const srv_versions *vs, uint32_t version, char *buf, size_t size);
srv_version *srv_versions_find(srv_versions *vs, uint32_t version);
/* Appends an entry for version vs->next (and bumps next); NULL when out of
 * memory. The caller fills it and saves. */
srv_version *srv_versions_add(srv_versions *vs);
/* Copies the file at src (byte for byte, fsync'd) to the path of version
 * `version`, atomically. COFI_ERR_IO naming the file that failed. */
int srv_versions_copy_in(const srv_versions *vs, const char *src, uint32_t version, cofi_diag *diag);
/* Where POST /admin/rollback goes without a version: the newest kept
 * version older than the live one, else the newest kept one; 0: none. */
uint32_t srv_versions_rollback_target(const srv_versions *vs);
/* Marks `version` live and the previous live one kept (reason given,
 * may be NULL). */
void srv_versions_set_live(srv_versions *vs, uint32_t version, const char *old_reason);
/* Drops the entries of the oldest versions beyond keep, never the live
 * one nor the rollback target; their numbers go to gone[0..max). Returns
 * how many went. The caller saves the manifest, then deletes the files
 * (srv_versions_unlink). */
size_t srv_versions_prune(srv_versions *vs, uint32_t *gone, size_t max);
void srv_versions_unlink(const srv_versions *vs, const uint32_t *gone, size_t n);
/* {"version": N, "created": ..., "status": ..., ...} of one entry. */
void srv_version_json(srv_buf *b, const srv_version *v);
const char *srv_vstatus_name(srv_vstatus s);

/* ---- background retraining (retrain.c) ----------------------------------- */

typedef struct srv_retrain srv_retrain;

/* Opens the models directory of cfg->models_dir, makes cfg->model_path
 * version 1 when the directory holds none (or a new version when it holds
 * others but none with the same content), and loads the version to serve
 * (the manifest's live one; when it cannot be loaded, the newest good one
 * that can). *sm: the loaded model, NULL when there is none yet (a store
 * server with an empty directory and no MODEL). */
int srv_retrain_open(cofi_server *s, int lease_sig, srv_model **sm, cofi_diag *diag);
/* Starts the trainer thread (after the store is attached). */
int srv_retrain_start(cofi_server *s, cofi_diag *diag);
/* Cancels a running retrain (it stops after its current iteration and
 * leaves no file), joins the thread, frees everything. Accepts s->retrain
 * NULL. */
void srv_retrain_stop(cofi_server *s);
/* The ,"retrain":{...} member of /health (nothing without versions). */
void srv_retrain_health(cofi_server *s, srv_buf *b);
/* The retrain counters for /metrics (nothing without versions). */
void srv_retrain_metrics(cofi_server *s, srv_buf *b);

/* retrain_routes.c: GET /admin/models, POST /admin/rollback and
 * POST /admin/retrain (declared in srv.h's handler list). */

#endif

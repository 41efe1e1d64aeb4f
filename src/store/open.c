/*
 * open.c — cofi_store_open: the URL picks the back end (sqlite:PATH,
 * postgresql://..., postgres://...), which opens its connection; then the
 * schema is created or migrated (store.c).
 */
#include "store.h"

#include <stdio.h>
#include <string.h>

int cofi_store_open(const char *url, cofi_store **out, cofi_diag *diag) {
  if (!out) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no output store");
  *out = NULL;
  if (!url || !*url) return cofi__fail(diag, COFI_ERR_INVALID, "", 0, "no store URL given");
  cofi_store *s = cofi__store_new(url);
  if (!s) return cofi__fail(diag, COFI_ERR_NOMEM, "", 0, "out of memory");
  int rc;
  if (!strncmp(url, "sqlite:", 7)) {
    const char *path = url + 7;
    if (!strncmp(path, "//", 2)) path += 2; /* sqlite:///abs/path */
    if (!*path) {
      rc = cofi__fail(diag, COFI_ERR_INVALID, url, 0,
                      "no file in the store URL (expected sqlite:PATH)");
      goto fail;
    }
    snprintf(s->where, sizeof s->where, "%s", path);
    rc = cofi__sqlite_open(s, path, diag);
  } else if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
    rc = cofi__pg_open(s, url, diag);
  } else {
    char q[200];
    rc = cofi__fail(diag, COFI_ERR_INVALID, "", 0,
                    "unknown store URL '%s': expected sqlite:PATH, postgresql://... or "
                    "postgres://...",
                    cofi__quote(q, sizeof q, url, strlen(url)));
    goto fail;
  }
  if (rc) goto fail;
  if ((rc = cofi__store_migrate(s, diag))) goto fail;
  *out = s;
  return COFI_OK;
fail:
  cofi_store_close(s);
  return rc;
}

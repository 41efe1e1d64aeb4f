/*
 * ui_assets.h — the dashboard's static files (the files in ui/), compiled into the
 * server: cmake/embed.cmake writes ui_assets.c (in the build directory)
 * with one entry per file, ended by an entry whose path is NULL.
 */
#ifndef COFI_UI_ASSETS_H
#define COFI_UI_ASSETS_H

#include <stddef.h>

typedef struct srv_ui_asset {
  const char *path;          /* the file name under ui/, e.g. "app.js" */
  const char *type;          /* its Content-Type */
  const unsigned char *data; /* its bytes (followed by a NUL) */
  size_t len;
} srv_ui_asset;

extern const srv_ui_asset srv_ui_assets[];

#endif

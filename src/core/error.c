/*
 * error.c — error names and messages (from the X-macro table in cofi.h) and
 * the diagnostic helpers.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *cofi_error_name(int code) {
  switch (code) {
#define NAME(name, c, msg) case c: return #name;
    COFI_ERROR_TABLE(NAME)
#undef NAME
  }
  return "ERR_UNKNOWN";
}

const char *cofi_error_message(int code) {
  switch (code) {
#define MSG(name, c, msg) case c: return msg;
    COFI_ERROR_TABLE(MSG)
#undef MSG
  }
  return "unknown error";
}

int cofi__fail(cofi_diag *diag, int code, const char *file, uint64_t line,
               const char *fmt, ...) {
  if (!diag) return code;
  snprintf(diag->file, sizeof diag->file, "%s", file ? file : "");
  diag->line = line;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(diag->message, sizeof diag->message, fmt, ap);
  va_end(ap);
  return code;
}

const char *cofi__quote(char *buf, size_t bufsize, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0, max = 40;
  if (bufsize < 8) { if (bufsize) buf[0] = 0; return buf; }
  for (size_t i = 0; i < len && i < max && o + 5 < bufsize; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      buf[o++] = (char)c;
    } else {
      buf[o++] = '\\'; buf[o++] = 'x';
      buf[o++] = hex[c >> 4]; buf[o++] = hex[c & 15];
    }
  }
  if (len > max && o + 4 < bufsize) { memcpy(buf + o, "...", 3); o += 3; }
  buf[o] = 0;
  return buf;
}

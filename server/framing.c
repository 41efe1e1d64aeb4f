/*
 * framing.c — is a request's body length unambiguous? (RFC 9112, section
 * 6.3.) A proxy in front of the server and the server must split the same
 * bytes into the same requests, or a request hidden in another's body gets
 * through unseen (request smuggling). libmicrohttpd 0.9.75 (Debian 12)
 * uses the first of several Content-Length headers, prefers chunked to a
 * Content-Length, and waits forever for a body in a coding it does not
 * know; so http.c feeds every header instance here (srv_framing_add) and
 * refuses the request on a fault, before any body byte is read.
 *
 * Accepted: no framing header (no body), exactly one Content-Length that
 * is a decimal number, or exactly one Transfer-Encoding whose value is
 * "chunked" (any case) in HTTP/1.1. Everything else is 400 bad_framing,
 * except a coding cofi does not implement before a final chunked ("gzip,
 * chunked"), which is 501 unsupported_transfer_coding (RFC 9112 6.1).
 */
#include "srv.h"

#include <string.h>
#include <strings.h>

void srv_framing_add(srv_framing *f, const char *name, const char *value) {
  if (!value) value = "";
  if (!strcasecmp(name, "Content-Length")) {
    f->n_cl++;
    const char *v = value;
    uint64_t n = 0;
    if (!*v) f->cl_bad = true;
    for (; *v; v++) {
      uint64_t d = (uint64_t)(*v - '0');
      if (*v < '0' || *v > '9' || n > (UINT64_MAX - d) / 10) { /* not a digit, or overflow */
        f->cl_bad = true;
        break;
      }
      n = n * 10 + d;
    }
    f->cl = n;
  } else if (!strcasecmp(name, "Transfer-Encoding")) {
    size_t n = strlen(value);
    if (f->te_len + n + 2 > sizeof f->te) {
      f->te_long = true;
    } else {
      if (f->n_te) f->te[f->te_len++] = ',';
      memcpy(f->te + f->te_len, value, n);
      f->te_len += n;
      f->te[f->te_len] = 0;
    }
    f->n_te++;
  }
}

/* The next element of a comma-separated list, with spaces and tabs
 * around it trimmed; false at the end. */
static bool next_element(const char **p, const char **start, size_t *len) {
  const char *q = *p;
  if (!*q) return false;
  const char *comma = strchr(q, ',');
  const char *end = comma ? comma : q + strlen(q);
  while (q < end && (*q == ' ' || *q == '\t')) q++;
  const char *e = end;
  while (e > q && (e[-1] == ' ' || e[-1] == '\t')) e--;
  *start = q;
  *len = (size_t)(e - q);
  *p = comma ? comma + 1 : end;
  return true;
}

bool srv_framing_check(const srv_framing *f, bool http10, uint64_t *cl, srv_error *err) {
  *cl = 0;
  if (f->n_cl > 1)
    return srv_fail(err, 400, "bad_framing",
                    "%u Content-Length headers: a request has at most one", f->n_cl);
  if (f->n_cl && f->cl_bad)
    return srv_fail(err, 400, "bad_framing", "Content-Length must be one decimal number");
  if (f->n_te && f->n_cl)
    return srv_fail(err, 400, "bad_framing",
                    "Content-Length and Transfer-Encoding together: send one of them");
  if (f->n_cl) {
    *cl = f->cl;
    return true;
  }
  if (!f->n_te) return true;
  if (http10)
    return srv_fail(err, 400, "bad_framing", "Transfer-Encoding in an HTTP/1.0 request");
  if (f->te_long) return srv_fail(err, 400, "bad_framing", "Transfer-Encoding is too long");
  /* Only a single, final "chunked" is understood. */
  const char *p = f->te, *el, *unknown = NULL, *last = NULL;
  size_t len, unknown_len = 0, last_len = 0, n = 0, n_chunked = 0;
  while (next_element(&p, &el, &len)) {
    if (!len) continue; /* empty list elements are allowed, and mean nothing */
    n++;
    if (len == 7 && !strncasecmp(el, "chunked", 7)) {
      n_chunked++;
    } else if (!unknown) {
      unknown = el;
      unknown_len = len;
    }
    last = el;
    last_len = len;
  }
  if (!n) return srv_fail(err, 400, "bad_framing", "Transfer-Encoding is empty");
  if (!(last_len == 7 && !strncasecmp(last, "chunked", 7)))
    return srv_fail(err, 400, "bad_framing",
                    "the last transfer coding must be chunked, got " SRV_ECHO_FMT,
                    SRV_ECHO(last, last_len));
  if (n_chunked > 1)
    return srv_fail(err, 400, "bad_framing", "chunked is applied more than once");
  if (unknown)
    return srv_fail(err, 501, "unsupported_transfer_coding",
                    "transfer coding " SRV_ECHO_FMT " is not supported: send the body as "
                    "is, with Content-Length or Transfer-Encoding: chunked",
                    SRV_ECHO(unknown, unknown_len));
  /* libmicrohttpd reads a chunked body only when the value is exactly
   * "chunked" (any case); with anything around it (spaces it keeps,
   * empty list elements) it would wait for a body it cannot frame. */
  if (f->n_te != 1 || strcasecmp(f->te, "chunked") != 0)
    return srv_fail(err, 400, "bad_framing",
                    "write the header as Transfer-Encoding: chunked, got " SRV_ECHO_FMT,
                    SRV_ECHO(f->te, f->te_len));
  return true;
}


/*
 * text.c — writing untrusted bytes (IDs, titles, paths, strings from a
 * model file) to people and to programs.
 *
 * Two escapers, one UTF-8 decoder:
 *   - cli_json_string: strict JSON (RFC 8259). Quotes, backslashes and
 *     every control character are escaped; a byte that does not start a
 *     valid UTF-8 sequence (overlong forms, surrogates and code points
 *     above U+10FFFF included) becomes U+FFFD, so the output always parses
 *     with a strict parser. U+2028 and U+2029 are escaped too: valid JSON,
 *     but not valid inside a JavaScript string literal.
 *   - cli_text: a terminal. C0 controls, DEL and the C1 controls U+0080..
 *     U+009F (some terminals read U+009B as CSI) are shown as visible
 *     escapes (\n, \t, \r, \x1b, \u009b); invalid bytes as \xNN. Nothing
 *     else is changed, backslashes included: an ID like "a\b" stays
 *     readable, at the price that the text "\x1b" and a real ESC print the
 *     same (the JSON output tells them apart).
 * The server has its own escaper (server/buf.c); the CLI does not link
 * against server code for this.
 */
#include "cli.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

/* The length (1..4) of the valid UTF-8 sequence at s[0..len), or 0 when
 * s[0] does not start one; *cp receives the code point. */
static size_t utf8_seq(const unsigned char *s, size_t len, uint32_t *cp) {
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  uint32_t v;
  if (c >= 0xc2 && c <= 0xdf) { n = 1; v = c & 0x1f; }
  else if (c >= 0xe0 && c <= 0xef) { n = 2; v = c & 0x0f; }
  else if (c >= 0xf0 && c <= 0xf4) { n = 3; v = c & 0x07; }
  else return 0;
  if (len < n + 1) return 0;
  for (size_t k = 1; k <= n; k++) {
    if ((s[k] & 0xc0) != 0x80) return 0;
    v = (v << 6) | (s[k] & 0x3f);
  }
  if ((n == 2 && v < 0x800) || (n == 3 && v < 0x10000) || (v >= 0xd800 && v <= 0xdfff) ||
      v > 0x10ffff)
    return 0;
  *cp = v;
  return n + 1;
}

void cli_json_string(FILE *f, const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  fputc('"', f);
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = utf8_seq(s + i, len - i, &cp);
    if (n == 0) {
      fputs("\\ufffd", f); /* an invalid byte: the replacement character */
      i++;
      continue;
    }
    switch (cp) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (cp < 0x20 || cp == 0x7f || cp == 0x2028 || cp == 0x2029)
          fprintf(f, "\\u%04x", (unsigned)cp);
        else
          fwrite(s + i, 1, n, f);
    }
    i += n;
  }
  fputc('"', f);
}

void cli_json_cstring(FILE *f, const char *s) {
  if (!s) fputs("null", f);
  else cli_json_string(f, s, strlen(s));
}

void cli_json_number(FILE *f, double v) {
  if (isfinite(v)) fprintf(f, "%.9g", v);
  else fputs("null", f);
}

size_t cli_text(FILE *f, const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t width = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = utf8_seq(s + i, len - i, &cp);
    if (n == 0) {
      width += (size_t)fprintf(f, "\\x%02x", s[i]);
      i++;
      continue;
    }
    if (cp == '\n') width += (size_t)fprintf(f, "\\n");
    else if (cp == '\r') width += (size_t)fprintf(f, "\\r");
    else if (cp == '\t') width += (size_t)fprintf(f, "\\t");
    else if (cp < 0x20 || cp == 0x7f) width += (size_t)fprintf(f, "\\x%02x", (unsigned)cp);
    else if (cp >= 0x80 && cp <= 0x9f) width += (size_t)fprintf(f, "\\u%04x", (unsigned)cp);
    else {
      fwrite(s + i, 1, n, f);
      width++;
    }
    i += n;
  }
  return width;
}

void cli_text_cstring(FILE *f, const char *s) { cli_text(f, s, strlen(s)); }

const char *cli_printable(const char *s, char *buf, size_t size) {
  if (size == 0) return "";
  buf[0] = 0;
  FILE *f = fmemopen(buf, size, "w");
  if (!f) return s ? "?" : "";
  if (s) cli_text_cstring(f, s);
  fclose(f);
  buf[size - 1] = 0; /* cut short when it did not fit */
  return buf;
}

void cli_text_padded(FILE *f, const char *s, size_t len, size_t width) {
  size_t w = cli_text(f, s, len);
  for (; w < width; w++) fputc(' ', f);
}

/* A float parameter as the shortest decimal that reads back as the same
 * float (0.01, not 0.00999999978). */
static void json_float(FILE *f, float v) {
  if (!isfinite(v)) { fputs("null", f); return; }
  char buf[48];
  for (int prec = 6; prec <= 9; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
    if (strtof(buf, NULL) == v) break;
  }
  fputs(buf, f);
}

void cli_json_params(FILE *f, const cofi_params *p) {
  fprintf(f, "{\"factors\": %u, \"regularization\": ", p->factors);
  json_float(f, p->regularization);
  fputs(", \"alpha\": ", f);
  json_float(f, p->alpha);
  fprintf(f, ", \"iterations\": %u, \"seed\": %llu, \"solver\": \"%s\", \"cg_steps\": %u, "
          "\"reg_exponent\": ", p->iterations, (unsigned long long)p->seed,
          p->solver == COFI_SOLVER_CHOLESKY ? "cholesky" : "cg", p->cg_steps);
  json_float(f, p->reg_exponent);
  fputs(", \"unobserved_weight\": ", f);
  json_float(f, p->unobserved_weight);
  fputs(", \"confidence\": ", f);
  cli_json_cstring(f, cofi_confidence_name((int)p->confidence));
  fputs(", \"epsilon\": ", f);
  json_float(f, p->epsilon);
  fputs(", \"bm25_k1\": ", f);
  json_float(f, p->bm25_k1);
  fputs(", \"bm25_b\": ", f);
  json_float(f, p->bm25_b);
  fputs(", \"model\": ", f);
  cli_json_cstring(f, cofi_model_kind_name((int)p->model));
  if (p->model == COFI_MODEL_EASE) {
    fputs(", \"lambda\": ", f);
    json_float(f, p->lambda);
  }
  if (p->model == COFI_MODEL_ITEMKNN) {
    fputs(", \"knn_weighting\": ", f);
    cli_json_cstring(f, cofi_knn_weighting_name((int)p->knn_weighting));
    fprintf(f, ", \"neighbors\": %u", p->neighbors);
  }
  fputs(", \"recency\": ", f);
  json_float(f, p->recency);
  fputc('}', f);
}

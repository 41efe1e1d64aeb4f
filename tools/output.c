/*
 * output.c — printing ranked results (recommend, similar) as JSON or as a
 * table for people. IDs and titles come from the model file: JSON escapes
 * them strictly, the table shows control characters as visible escapes
 * (text.c), so no byte of a model can move the terminal's cursor.
 */
#include "cli.h"

#include <string.h>

void cli_print_scored_json(const cofi_model *m, const cofi_scored *r, size_t n, bool items) {
  putchar('[');
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const char *id = items ? cofi_model_item_id(m, r[i].index, &len)
                           : cofi_model_user_id(m, r[i].index, &len);
    printf(i ? ", {\"%s\": " : "{\"%s\": ", items ? "item_id" : "user_id");
    cli_json_string(stdout, id, len);
    printf(", \"score\": ");
    cli_json_number(stdout, r[i].score);
    const char *title = items ? cofi_model_item_title(m, r[i].index, &len) : NULL;
    if (title) {
      printf(", \"title\": ");
      cli_json_string(stdout, title, len);
    }
    putchar('}');
  }
  putchar(']');
}

void cli_print_scored_table(const cofi_model *m, const cofi_scored *r, size_t n, bool items) {
  printf("%4s  %-20s %10s  %s\n", "rank", items ? "item" : "user", "score",
         items && n && cofi_model_item_title(m, r[0].index, &(size_t){0}) ? "title" : "");
  for (size_t i = 0; i < n; i++) {
    size_t len, tlen = 0;
    const char *id = items ? cofi_model_item_id(m, r[i].index, &len)
                           : cofi_model_user_id(m, r[i].index, &len);
    const char *title = items ? cofi_model_item_title(m, r[i].index, &tlen) : NULL;
    printf("%4zu  ", i + 1);
    cli_text_padded(stdout, id, len, 20);
    printf(" %10.4f  ", r[i].score);
    if (title) cli_text(stdout, title, tlen);
    putchar('\n');
  }
}

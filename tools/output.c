/*
 * output.c — printing ranked results (recommend, similar) as JSON or as a
 * table for people. IDs and titles come from the model file: JSON escapes
 * them strictly, the table shows control characters as visible escapes
 * (text.c), so no byte of a model can move the terminal's cursor.
 */
#include "cli.h"

#include <string.h>

void cli_print_scored_json(const cofi_model *m, const cofi_scored *r, size_t n, bool items,
                           const cli_because *why) {
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
    if (why) {
      printf(", \"because\": [");
      for (size_t j = 0; j < why[i].n; j++) {
        const cofi_contribution *c = &why[i].top[j];
        const char *bid = cofi_model_item_id(m, c->item, &len);
        printf(j ? ", {\"item_id\": " : "{\"item_id\": ");
        cli_json_string(stdout, bid, len);
        const char *bt = cofi_model_item_title(m, c->item, &len);
        if (bt) {
          printf(", \"title\": ");
          cli_json_string(stdout, bt, len);
        }
        printf(", \"contribution\": ");
        cli_json_number(stdout, c->contribution);
        putchar('}');
      }
      putchar(']');
    }
    putchar('}');
  }
  putchar(']');
}

void cli_print_scored_table(const cofi_model *m, const cofi_scored *r, size_t n, bool items,
                            const cli_because *why) {
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
    for (size_t j = 0; why && j < why[i].n; j++) {
      const cofi_contribution *c = &why[i].top[j];
      const char *bt = cofi_model_item_title(m, c->item, &tlen);
      if (!bt) bt = cofi_model_item_id(m, c->item, &tlen);
      fputs(j ? ", " : "      because you liked ", stdout);
      cli_text(stdout, bt, tlen);
      printf(" (%+.3f)", c->contribution);
    }
    if (why && why[i].n) putchar('\n');
  }
}

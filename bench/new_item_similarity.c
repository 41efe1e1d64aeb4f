/*
 * new_item_similarity.c — which similarity gives a new item (a vector from
 * its categories, ridge map) neighbours that share its categories: for each
 * genre of the model's "genres" field alone as a new item's categories, the
 * share of the top 10 items having that genre, under plain cosine, the
 * cosine of the vectors centered on the mean item, and the projection of
 * cofi_similar_items_vector (docs/serving.md, "New items").
 *
 *   bench/new_item_similarity MODEL    (a model trained with --items movies.csv)
 */
#include "cofi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP 10

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: new_item_similarity MODEL\n");
    return 2;
  }
  cofi_model *m;
  cofi_diag d = {0};
  cofi_metadata_map *map;
  if (cofi_model_open(argv[1], &m, &d) || cofi_metadata_map_fit_field(m, NULL, NULL, &map, &d)) {
    fprintf(stderr, "new_item_similarity: %s\n", d.message);
    return 1;
  }
  cofi_model_info in;
  cofi_model_get_info(m, &in);
  uint32_t k = in.factors, n = in.n_items, gf = 0;
  for (uint32_t f = 0; f < in.n_item_fields; f++) {
    size_t len;
    const char *name = cofi_model_item_field_name(m, f, &len);
    if (len == 6 && !memcmp(name, "genres", 6)) gf = f;
  }
  static const char *const genres[] = {"Action", "Adventure", "Animation", "Children", "Comedy",
                                       "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir",
                                       "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
                                       "Thriller", "War", "Western"};
  size_t n_genres = sizeof genres / sizeof genres[0];
  const float *Y = cofi_model_item_factors(m), *c = cofi_metadata_map_mean(map);
  static const char *const names[3] = {"plain cosine", "centered cosine", "projection (served)"};
  double *s = malloc(n * sizeof *s);
  float *v = malloc(k * sizeof *v);
  for (int how = 0; how < 3; how++) {
    double hits = 0;
    for (size_t g = 0; g < n_genres; g++) {
      const char *q[1] = {genres[g]};
      cofi_metadata_map_vector(map, q, NULL, 1, v, NULL);
      for (uint32_t i = 0; i < n; i++) {
        double pv = 0, nv = 0, ny = 0, cq = 0, nq = 0, ncy = 0;
        for (uint32_t f = 0; f < k; f++) {
          double y = Y[(size_t)i * k + f], a = v[f] - c[f], b = y - c[f];
          pv += v[f] * y; nv += (double)v[f] * v[f]; ny += y * y;
          cq += a * b; nq += a * a; ncy += b * b;
        }
        s[i] = how == 0 ? pv / sqrt(nv * ny + 1e-30) : how == 1 ? cq / sqrt(nq * ncy + 1e-30)
                                                             : cq / sqrt(nq + 1e-30);
      }
      for (int t = 0; t < TOP; t++) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++)
          if (s[i] > s[best]) best = i;
        size_t len;
        const char *gv = cofi_model_item_field(m, best, gf, &len);
        size_t gl = strlen(genres[g]);
        for (size_t p = 0; p + gl <= len; p++)
          if (!memcmp(gv + p, genres[g], gl)) { hits++; break; }
        s[best] = -INFINITY;
      }
    }
    printf("%-20s %.3f of the top %d share the genre\n", names[how], hits / (double)(n_genres * TOP), TOP);
  }
  free(s);
  free(v);
  cofi_metadata_map_free(map);
  cofi_model_close(m);
  return 0;
}

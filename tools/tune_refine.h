/*
 * tune_refine.h — `cofi tune --search refine`'s second phase, local
 * refinement around the best trial so far, and the random stream and
 * rounding both phases draw with (tune_refine.c).
 */
#ifndef COFI_TUNE_REFINE_H
#define COFI_TUNE_REFINE_H

#include "cofi.h"

#include <stdbool.h>
#include <stddef.h>

/* The search's random stream (splitmix64) and its uniform draw in [0, 1),
 * shared by the random phase (cmd_tune.c) and refinement. */
uint64_t tune_splitmix(uint64_t *s);
double tune_unif(uint64_t *s);
/* Rounds to 3 significant digits: parameter files people read. */
float tune_sig3(double v);

/* Which dimensions may move, and the discrete choices of the two that are
 * discrete. */
typedef struct tune_refine_space {
  bool factors, regularization, alpha, iterations; /* true: searched */
  const uint32_t *factor_choices;
  size_t n_factor_choices;
  const uint32_t *iter_choices;
  size_t n_iter_choices;
  double reg_lo, reg_hi, alpha_lo, alpha_hi; /* the random phase's ranges */
} tune_refine_space;

/* Trials [0, explore) of a budget are coarse random draws; the rest refine.
 * Refining needs a few draws to refine from: none below 8 trials. */
uint32_t tune_refine_explore(uint32_t budget);

/* A neighbour of best: factors and iterations one choice up or down (or
 * the same), regularization and alpha multiplied by a log-uniform factor
 * whose range narrows from [1/3, 3] at the first refinement to [1/1.5, 1.5]
 * at the last (progress in [0, 1]), kept inside the random phase's ranges;
 * values rounded to 3 significant digits.
 * Dimensions not searched keep best's value. *rng: the search's stream. */
void tune_refine(const cofi_params *best, const tune_refine_space *sp, double progress,
                 uint64_t *rng, cofi_params *out);

#endif

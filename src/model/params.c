/*
 * params.c — the training parameters: their defaults (the CLI starts from
 * them) and their check. They belong to the model, which records the
 * parameters that trained it and checks them again when a file is opened.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

cofi_params cofi_params_default(void) {
  cofi_params p;
  memset(&p, 0, sizeof p);
  p.factors = 64;
  p.regularization = 0.01f;
  p.alpha = 1.0f;
  p.iterations = 15;
  p.seed = 42;
  p.solver = COFI_SOLVER_CG;
  p.cg_steps = 3;
  p.threads = 0;
  p.reg_exponent = 0.0f;
  p.unobserved_weight = 1.0f;
  p.confidence = COFI_CONFIDENCE_LINEAR;
  p.epsilon = 1.0f;
  p.bm25_k1 = 100.0f;
  p.bm25_b = 0.8f;
  p.model = COFI_MODEL_ALS;
  /* EASE: Steck's best lambdas on ML-20M and Netflix are 500-1000; on
   * ml-latest-small leave-last-out 500 is near the best
   * (docs/evaluation.md). */
  p.lambda = 500.0f;
  p.max_memory = (uint64_t)4 << 30;
  p.knn_weighting = COFI_KNN_COSINE;
  p.neighbors = 100;
  p.recency = 0.0f;
  return p;
}

int cofi_params_check(const cofi_params *p, cofi_diag *d) {
#define BAD(...) return cofi__fail(d, COFI_ERR_INVALID, NULL, 0, __VA_ARGS__)
  if (!cofi_model_kind_name((int)p->model))
    BAD("model must be als, ease or itemknn, got %d", (int)p->model);
  if (!isfinite(p->lambda) || !(p->lambda > 0) || p->lambda > 1e9)
    BAD("lambda must be in (0, 1e9], got %g", (double)p->lambda);
  if (!cofi_knn_weighting_name((int)p->knn_weighting))
    BAD("knn_weighting must be cosine, tfidf or bm25, got %d", (int)p->knn_weighting);
  if (p->neighbors < 1 || p->neighbors > 100000)
    BAD("neighbors must be in 1..100000, got %u", p->neighbors);
  if (!isfinite(p->recency) || p->recency < 0 || p->recency > 1e6)
    BAD("recency must be a half-life in [0, 1e6] items, got %g", (double)p->recency);
  if (p->factors < 1 || p->factors > COFI_MAX_FACTORS)
    BAD("factors must be in 1..%d, got %u", COFI_MAX_FACTORS, p->factors);
  if (!isfinite(p->regularization) || p->regularization < 0)
    BAD("regularization must be a finite number >= 0, got %g", (double)p->regularization);
  if (!isfinite(p->alpha) || p->alpha < 0)
    BAD("alpha must be a finite number >= 0, got %g", (double)p->alpha);
  if (p->iterations < 1 || p->iterations > 100000)
    BAD("iterations must be in 1..100000, got %u", p->iterations);
  if (p->solver != COFI_SOLVER_CG && p->solver != COFI_SOLVER_CHOLESKY)
    BAD("solver must be cg or cholesky");
  if (p->cg_steps < 1 || p->cg_steps > 1000) BAD("cg_steps must be in 1..1000, got %u", p->cg_steps);
  if (p->threads > 4096) BAD("threads must be in 0..4096, got %u", p->threads);
  if (!isfinite(p->reg_exponent) || p->reg_exponent < 0 || p->reg_exponent > 10)
    BAD("reg_exponent must be in [0, 10], got %g", (double)p->reg_exponent);
  if (!isfinite(p->unobserved_weight) || !(p->unobserved_weight > 0))
    BAD("unobserved_weight must be > 0, got %g", (double)p->unobserved_weight);
  if (!cofi_confidence_name((int)p->confidence))
    BAD("confidence must be linear, log or bm25, got %d", (int)p->confidence);
  if (!isfinite(p->epsilon) || !(p->epsilon > 0))
    BAD("epsilon must be a finite number > 0, got %g", (double)p->epsilon);
  if (!isfinite(p->bm25_k1) || p->bm25_k1 < 0 || p->bm25_k1 > 1e6)
    BAD("bm25_k1 must be in [0, 1e6], got %g", (double)p->bm25_k1);
  if (!isfinite(p->bm25_b) || p->bm25_b < 0 || p->bm25_b > 1)
    BAD("bm25_b must be in [0, 1], got %g", (double)p->bm25_b);
  return COFI_OK;
#undef BAD
}

const char *cofi_confidence_name(int confidence) {
  switch (confidence) {
    case COFI_CONFIDENCE_LINEAR: return "linear";
    case COFI_CONFIDENCE_LOG: return "log";
    case COFI_CONFIDENCE_BM25: return "bm25";
    default: return NULL;
  }
}

const char *cofi_model_kind_name(int kind) {
  switch (kind) {
    case COFI_MODEL_ALS: return "als";
    case COFI_MODEL_EASE: return "ease";
    case COFI_MODEL_ITEMKNN: return "itemknn";
    default: return NULL;
  }
}

const char *cofi_knn_weighting_name(int weighting) {
  switch (weighting) {
    case COFI_KNN_COSINE: return "cosine";
    case COFI_KNN_TFIDF: return "tfidf";
    case COFI_KNN_BM25: return "bm25";
    default: return NULL;
  }
}

/*
 * metrics.c — request counters and latency histograms, and their
 * Prometheus text exposition.
 *
 * Each worker thread writes its own shard (requests by route and status,
 * latency buckets, latency sum), so the hot path touches no cache line
 * another thread writes. Counters are atomics with relaxed ordering: a
 * single writer per shard, and a reader (GET /metrics) that sums the shards
 * and only needs each value untorn. Histograms are cumulative at output
 * time, as Prometheus expects.
 */
#include "srv.h"

#include <stdlib.h>
#include <string.h>

const uint64_t srv_bucket_us[SRV_N_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000,
};

static const int status_codes[SRV_N_STATUS] = {
#define SRV_STATUS_CODE(c) c,
    SRV_STATUS_LIST(SRV_STATUS_CODE)
#undef SRV_STATUS_CODE
    0,
};

static int status_index(int status) {
  switch (status) {
#define SRV_STATUS_CASE(c) case c: return SRV_S_##c;
    SRV_STATUS_LIST(SRV_STATUS_CASE)
#undef SRV_STATUS_CASE
  }
  return SRV_S_OTHER;
}

static void shard_init(srv_metrics_shard *s) {
  for (int r = 0; r < SRV_N_ROUTES; r++) {
    for (int c = 0; c < SRV_N_STATUS; c++) atomic_init(&s->requests[r][c], 0);
    for (int b = 0; b <= SRV_N_BUCKETS; b++) atomic_init(&s->buckets[r][b], 0);
    atomic_init(&s->sum_us[r], 0);
  }
}

void srv_metrics_init(srv_metrics *m) {
  for (size_t i = 0; i < SRV_MAX_SHARDS; i++) atomic_init(&m->shards[i], NULL);
  atomic_init(&m->n_shards, 0);
  shard_init(&m->shared);
}

srv_metrics_shard *srv_metrics_shard_new(srv_metrics *m) {
  unsigned i = atomic_fetch_add(&m->n_shards, 1);
  if (i >= SRV_MAX_SHARDS) {
    atomic_fetch_sub(&m->n_shards, 1);
    return &m->shared;
  }
  srv_metrics_shard *s = malloc(sizeof *s);
  if (!s) {
    /* The slot stays NULL (skipped when summing); counting goes on in the
     * shared shard. */
    return &m->shared;
  }
  shard_init(s);
  /* Published after it is initialized: readers load it with acquire. */
  atomic_store_explicit(&m->shards[i], s, memory_order_release);
  return s;
}

void srv_metrics_free(srv_metrics *m) {
  for (size_t i = 0; i < SRV_MAX_SHARDS; i++) {
    free(atomic_load(&m->shards[i]));
    atomic_store(&m->shards[i], NULL);
  }
  atomic_store(&m->n_shards, 0);
}

void srv_metrics_observe(srv_metrics_shard *s, srv_route_id route, int status,
                         uint64_t micros) {
  int b = 0;
  while (b < SRV_N_BUCKETS && micros > srv_bucket_us[b]) b++;
  atomic_fetch_add_explicit(&s->requests[route][status_index(status)], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->buckets[route][b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->sum_us[route], micros, memory_order_relaxed);
}

/* Sums one counter over all shards. */
#define SUM_OVER_SHARDS(m, field, out)                                                 \
  do {                                                                                 \
    (out) = atomic_load_explicit(&(m)->shared.field, memory_order_relaxed);            \
    unsigned n_ = atomic_load(&(m)->n_shards);                                         \
    for (unsigned i_ = 0; i_ < n_ && i_ < SRV_MAX_SHARDS; i_++) {                      \
      srv_metrics_shard *s_ =                                                          \
          atomic_load_explicit(&(m)->shards[i_], memory_order_acquire);                \
      if (s_) (out) += atomic_load_explicit(&s_->field, memory_order_relaxed);          \
    }                                                                                  \
  } while (0)

static void write_seconds(srv_buf *b, uint64_t us) {
  srv_buf_printf(b, "%llu.%06llu", (unsigned long long)(us / 1000000),
                 (unsigned long long)(us % 1000000));
}

void srv_metrics_write(srv_metrics *m, srv_buf *b) {
  srv_buf_lit(b, "# HELP cofi_requests_total Requests answered, by route and HTTP status.\n"
                 "# TYPE cofi_requests_total counter\n");
  for (int r = 0; r < SRV_N_ROUTES; r++) {
    for (int c = 0; c < SRV_N_STATUS; c++) {
      uint64_t v;
      SUM_OVER_SHARDS(m, requests[r][c], v);
      if (!v) continue;
      srv_buf_printf(b, "cofi_requests_total{route=\"%s\",status=\"", srv_route_names[r]);
      if (status_codes[c]) srv_buf_u64(b, (uint64_t)status_codes[c]);
      else srv_buf_lit(b, "other");
      srv_buf_lit(b, "\"} ");
      srv_buf_u64(b, v);
      srv_buf_putc(b, '\n');
    }
  }
  srv_buf_lit(b, "# HELP cofi_request_duration_seconds Time from the request's headers to "
                 "its answer being sent, by route.\n"
                 "# TYPE cofi_request_duration_seconds histogram\n");
  for (int r = 0; r < SRV_N_ROUTES; r++) {
    uint64_t counts[SRV_N_BUCKETS + 1], total = 0, sum;
    for (int k = 0; k <= SRV_N_BUCKETS; k++) {
      SUM_OVER_SHARDS(m, buckets[r][k], counts[k]);
      total += counts[k];
    }
    if (!total) continue;
    SUM_OVER_SHARDS(m, sum_us[r], sum);
    uint64_t cum = 0;
    for (int k = 0; k <= SRV_N_BUCKETS; k++) {
      cum += counts[k];
      srv_buf_printf(b, "cofi_request_duration_seconds_bucket{route=\"%s\",le=\"",
                     srv_route_names[r]);
      if (k < SRV_N_BUCKETS) write_seconds(b, srv_bucket_us[k]);
      else srv_buf_lit(b, "+Inf");
      srv_buf_lit(b, "\"} ");
      srv_buf_u64(b, cum);
      srv_buf_putc(b, '\n');
    }
    srv_buf_printf(b, "cofi_request_duration_seconds_sum{route=\"%s\"} ", srv_route_names[r]);
    write_seconds(b, sum);
    srv_buf_printf(b, "\ncofi_request_duration_seconds_count{route=\"%s\"} ", srv_route_names[r]);
    srv_buf_u64(b, total);
    srv_buf_putc(b, '\n');
  }
}

/* The route label of each route id, as /metrics shows it. */
const char *const srv_route_names[SRV_N_ROUTES] = {
    [SRV_R_PING] = "/ping",
    [SRV_R_INVOCATIONS] = "/invocations",
    [SRV_R_HEALTH] = "/health",
    [SRV_R_RECOMMEND] = "/recommend",
    [SRV_R_RECOMMEND_COLD] = "/recommend_cold",
    [SRV_R_RECOMMEND_BATCH] = "/recommend/batch",
    [SRV_R_SIMILAR_ITEMS] = "/similar_items",
    [SRV_R_SIMILAR_USERS] = "/similar_users",
    [SRV_R_FEEDBACK] = "/feedback",
    [SRV_R_ITEMS] = "/items/{id}",
    [SRV_R_METRICS] = "/metrics",
    [SRV_R_OPENAPI] = "/openapi.json",
    [SRV_R_DOCS] = "/docs",
    [SRV_R_ADMIN_RELOAD] = "/admin/reload",
    [SRV_R_EXPLAIN] = "/explain",
    [SRV_R_ITEM_SEARCH] = "/items",
    [SRV_R_USERS] = "/users/{id}",
    [SRV_R_POPULAR] = "/popular",
    [SRV_R_LATEST] = "/latest",
    [SRV_R_UI] = "/ui/{file}",
    [SRV_R_UI_REDIRECT] = "/ui",
    [SRV_R_ADMIN_MODELS] = "/admin/models",
    [SRV_R_ADMIN_ROLLBACK] = "/admin/rollback",
    [SRV_R_ADMIN_RETRAIN] = "/admin/retrain",
    [SRV_R_OTHER] = "other",
};

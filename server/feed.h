/*
 * feed.h — the event feed poller of `cofi serve --store` (feed.c;
 * docs/serving.md, "Replicas and the event feed"): servers sharing one
 * store learn which users have events another server committed.
 */
#ifndef COFI_SRV_FEED_H
#define COFI_SRV_FEED_H

#include "srv.h"

/* Events read by one poll, at most (the rest waits for the next poll). */
#define SRV_FEED_MAX_EVENTS 100000u
/* PostgreSQL: a seq missing below the newest one read may belong to a
 * transaction still open; such gaps are read again on every poll for this
 * long, at most SRV_FEED_MAX_GAPS of them (the oldest dropped first). */
#define SRV_FEED_GAP_HOLD_S 60.0
#define SRV_FEED_MAX_GAPS 256
/* At start the last this many seqs are looked at for gaps too. */
#define SRV_FEED_START_LOOKBACK 1024

typedef struct srv_feed srv_feed;

/* With a store and cfg.feed_interval_s > 0 (else nothing): opens the
 * feed's own connection, reads the store's newest seq (the watermark:
 * events before it are the model's or already in the store when this
 * server started) and starts the poll thread, which marks the users of
 * newer events through srv_online_touch. After srv_online_start. */
int srv_feed_start(cofi_server *s, cofi_diag *diag);
/* Stops the thread (waits for a poll in progress) and closes the
 * connection; /metrics still reads the counters. Accepts a server without
 * a feed. Before srv_online_free. */
void srv_feed_stop(cofi_server *s);
/* Frees what is left (stopping first if needed), once no request runs. */
void srv_feed_free(cofi_server *s);
/* Prometheus text (nothing without a feed). */
void srv_feed_metrics_write(cofi_server *s, srv_buf *b);

#endif

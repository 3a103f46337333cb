/*
 * orders_gc.h — drops idempotency records older than their retention, in
 * the partitions this node leads (docs/orders.md, "Idempotency").
 */
#ifndef OKV_SERVER_ORDERS_GC_H
#define OKV_SERVER_ORDERS_GC_H

#include <stdint.h>

#include "node.h"

#define ORDERS_GC_EVERY_MS (10 * 60 * 1000)

typedef struct orders_gc orders_gc;

/* Starts the GC thread: every every_ms (0: ORDERS_GC_EVERY_MS) it deletes
 * the records of the groups this node leads whose created_at is more than
 * retention_ms ago. retention_ms <= 0: records are kept forever, *out is
 * NULL. Cluster mode; uses the 2PC driver's internal client, so it must be
 * freed before tpc_driver_stop. */
int orders_gc_new(orders_gc **out, node *n, int64_t retention_ms, int every_ms, okv_error *err);

/* Stops the thread (waiting for a deletion in flight). Accepts NULL. */
void orders_gc_free(orders_gc *g);

#endif

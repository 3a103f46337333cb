/*
 * node_metrics.h — what one orderkvd node exposes at /metrics
 * (docs/operations.md "Metrics"): the registry, the series the services
 * update on their hot paths, and the ones read at scrape time from the
 * modules that already count (raftstore, committer, RocksDB, /proc).
 *
 * Life: node_metrics_new before the rpc server takes methods (it records
 * per-method series); the HTTP endpoint (metrics_http.h) may serve from
 * then on; node_metrics_add_node once the store (and, in cluster mode,
 * the raft store) exist, which is when scrapes start reading them; the
 * endpoint stops first at shutdown, so no scrape reads a module being
 * torn down; node_metrics_free after everything else.
 */
#ifndef OKV_SERVER_NODE_METRICS_H
#define OKV_SERVER_NODE_METRICS_H

#include "metrics.h"

struct node;

enum node_txn_path { NODE_TXN_ONE_PARTITION = 0, NODE_TXN_TWO_PHASE = 1 };

typedef struct node_metrics node_metrics;

/* NULL on out of memory. */
node_metrics *node_metrics_new(void);
void node_metrics_free(node_metrics *m);

/* The registry (borrowed, as long as m); NULL for a NULL m. */
metrics_registry *node_metrics_registry(node_metrics *m);

/* Registers the series read at scrape time from n (borrowed: it must
 * outlive every scrape): node info, partitions led, Raft, storage,
 * RocksDB properties, process_*. 0 or -1 (out of memory). */
int node_metrics_add_node(node_metrics *m, struct node *n);

/* A transaction's answer (KV.Txn): code OKV_OK counts a commit;
 * OKV_ECONFLICT an abort that met another transaction (a conflict);
 * a refusal with a reason (a condition failed) an abort. Other codes
 * (not leader, unavailable, unknown) decided nothing and are not counted.
 * Accepts a NULL m. */
void node_metrics_txn(node_metrics *m, enum node_txn_path path, int code, int reason);

#endif

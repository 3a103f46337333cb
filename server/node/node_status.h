/*
 * node_status.h — what GET /status.json on the metrics port shows of one
 * orderkvd node (docs/operations.md "Status page"): it gathers a
 * status_view (status_json.h) from what the modules already publish for
 * any thread, and keeps the throughput / latency history.
 *
 * Nothing here is on a request's path. A sampler thread wakes every
 * STATUS_SAMPLE_MS, sums the request latency histograms of the registry
 * (metrics_histogram_family_sum: the registry mutex, briefly) and pushes
 * one sample into a ring of STATUS_HISTORY under the status' own mutex.
 * node_status_json runs on the HTTP thread and reads: the raft store's
 * status copies and leader history (its status mutex), the transport's
 * per-peer stats (each peer's mutex), the cluster map and catalog (fixed
 * once the node runs) and the ring (the status mutex).
 *
 * Life: node_status_new once the node's modules all exist (as
 * node_metrics_add_node); then metrics_http_set_status(h, node_status_json,
 * s). At shutdown the HTTP server stops first, then node_status_free,
 * before the modules it reads are torn down.
 */
#ifndef OKV_SERVER_NODE_STATUS_H
#define OKV_SERVER_NODE_STATUS_H

#include <stddef.h>

#include "errors.h"

struct node;
struct transport;
struct metrics_registry;

typedef struct node_status node_status;

/* Starts the sampler over reg's request histograms. n, tp (NULL for a
 * node alone) and reg are borrowed and must outlive s. OKV_ENOMEM or
 * OKV_EUNAVAILABLE (thread). */
int node_status_new(node_status **out, struct node *n, struct transport *tp,
                    struct metrics_registry *reg, okv_error *err);

/* Stops the sampler and frees. Accepts NULL. */
void node_status_free(node_status *s);

/* The node's view as JSON (malloc'd; length in *len), or NULL on out of
 * memory. Matches metrics_http_status_fn (ctx = s). Any thread. */
char *node_status_json(void *s, size_t *len);

#endif

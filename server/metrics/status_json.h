/*
 * status_json.h — the status page's data (GET /status.json on the metrics
 * port, docs/operations.md "Status page"): one node's view of the cluster
 * as plain values, its JSON text, and the small pure pieces the node's
 * sampler uses (a ring of throughput / latency samples, a quantile
 * estimated from histogram buckets). Pure: no sockets, no node, no clock;
 * node_status.c fills a status_view from the node and calls status_json.
 *
 * The JSON (every time in Unix milliseconds; null where unknown):
 *   { "node": {"id", "address", "version", "mode", "uptime_s", "now_ms"},
 *     "down_after_ms": STATUS_DOWN_AFTER_MS,
 *     "nodes": [ {"id", "address", "self", "up", "connected",
 *                 "heard_ms_ago"} ],
 *     "partitions": [ {"table", "table_id", "partition", "leader", "role",
 *                      "term", "commit", "applied", "last_index",
 *                      "replicas": [ {"node", "match", "lag"} ]} ],
 *     "leader_changes": [ {"at_ms", "table", "partition", "leader",
 *                          "term"} ],               newest first
 *     "samples": [ {"at_ms", "requests", "rps", "p50_ms", "p99_ms"} ]
 *                                                   oldest first }
 * "replicas" is empty unless this node leads the partition.
 */
#ifndef OKV_SERVER_STATUS_JSON_H
#define OKV_SERVER_STATUS_JSON_H

#include <stddef.h>
#include <stdint.h>

/* A peer not heard from for this long, with no stream to it, is down. */
#define STATUS_DOWN_AFTER_MS 3000
/* Samples kept: 5 minutes at one every STATUS_SAMPLE_MS. */
#define STATUS_SAMPLE_MS 2000
#define STATUS_HISTORY 150
#define STATUS_MAX_REPLICAS 16

typedef struct status_peer {
    uint64_t id;
    char address[128];
    int self;
    int connected;            /* this node's stream to it is established */
    int64_t heard_ms_ago;     /* since its last frame; -1: never */
} status_peer;

typedef struct status_replica {
    uint64_t node;
    uint64_t match;           /* highest index known replicated on it */
} status_replica;

typedef struct status_partition {
    char table[72];           /* the table's name ("meta" for the meta group) */
    uint32_t table_id, partition;
    uint64_t leader;          /* 0: none known */
    const char *role;         /* "leader", "follower", "candidate", ... */
    uint64_t term, commit, applied, last_index;
    size_t n_replicas;        /* 0 unless this node leads it */
    status_replica replicas[STATUS_MAX_REPLICAS];
} status_partition;

typedef struct status_leader_change {
    uint64_t at_ms;
    char table[72];
    uint32_t partition;
    uint64_t leader, term;
} status_leader_change;

typedef struct status_sample {
    uint64_t at_ms;
    uint64_t requests;        /* answered since the previous sample */
    double rps;
    double p50_ms, p99_ms;    /* < 0: no request in the interval */
} status_sample;

typedef struct status_view {
    uint64_t node_id;
    char address[128];
    const char *version;
    const char *mode;         /* "cluster" or "single" */
    double uptime_s;
    uint64_t now_ms;
    const status_peer *nodes;
    size_t n_nodes;
    const status_partition *parts;
    size_t n_parts;
    const status_leader_change *changes;
    size_t n_changes;
    const status_sample *samples;
    size_t n_samples;
} status_view;

/* 1 if a peer counts as up: itself, heard within STATUS_DOWN_AFTER_MS, or
 * with an established stream (a peer that leads nothing this node is in
 * may send it nothing for a long time). */
int status_peer_up(const status_peer *p);

/* The JSON of v (malloc'd, NUL-terminated, its length in *len when len is
 * not NULL), or NULL on out of memory. Strings are escaped. */
char *status_json(const status_view *v, size_t *len);

/* The q-quantile (0 < q < 1) of the observations counted in buckets
 * (not cumulative; n_bounds + 1 counts, the last one +Inf) under upper
 * bounds `bounds`, interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does (the first bucket starts at 0; one in +Inf is
 * the highest finite bound). -1 if there is no observation. */
double status_quantile(const double *bounds, size_t n_bounds, const uint64_t *buckets, double q);

/* A sample from two readings of the summed latency buckets (seconds),
 * prev and cur (n_bounds + 1 counts each) taken interval_ms apart. */
void status_sample_make(status_sample *out, uint64_t at_ms, uint64_t interval_ms,
                        const double *bounds, size_t n_bounds, const uint64_t *prev,
                        const uint64_t *cur);

/* The last STATUS_HISTORY samples. Not locked: its owner guards it. */
typedef struct status_ring {
    status_sample s[STATUS_HISTORY];
    size_t next, n;
} status_ring;

void status_ring_push(status_ring *r, const status_sample *s);
/* Copies the samples oldest first into out (room for STATUS_HISTORY);
 * returns how many. */
size_t status_ring_copy(const status_ring *r, status_sample *out);

#endif

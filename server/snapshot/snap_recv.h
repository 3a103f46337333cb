/*
 * snap_recv.h — receives streamed partition snapshots (snap_format.h) on
 * the node's gRPC server and hands each one, once it arrived whole and
 * checked, to the raft loop.
 *
 * Per incoming "/orderkv.v1.Raft/Snapshot" call:
 *   1. the header is checked like a transport frame: this cluster, to this
 *      node, from a known node; at most one stream per (group, sender) and
 *      max_streams in all, else the call is refused (UNAVAILABLE) and the
 *      leader tries again later;
 *   2. records go into SST files under <data dir>/snap/<group>-<index>-
 *      <from>-<n>/ (fsm_snapshot_writer): checked to belong to the group
 *      and to come in order; memory is one chunk;
 *   3. the trailer's counts and checksum must match what arrived, and the
 *      sender must half-close after it; then the files are synced and a
 *      RAFT_MSG_SNAPSHOT whose data is a RECEIVED descriptor naming the dir
 *      goes to `deliver` (the raft store); the call ends with status OK.
 * Anything else — a damaged, reordered, cut or foreign stream, a cancelled
 * call — ends the call with a status saying why and removes the dir; the
 * partition is never touched before step 3 completed.
 *
 * The stream's logic is a session (snap_rx) fed message by message, so
 * tests drive it without gRPC. Messages are processed on the receiver's own
 * thread, never on a completion-queue thread (file writes and fsyncs,
 * GRPC-CORE-NOTES pitfall 10); each stream has one RECV outstanding at a
 * time, so the queue of work holds at most one message per stream.
 *
 * Lifetime: snap_recv_new registers the method (before rpc_server_start);
 * shut the rpc_server down before snap_recv_free, as for the transport.
 */
#ifndef OKV_SERVER_SNAP_RECV_H
#define OKV_SERVER_SNAP_RECV_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "errors.h"
#include "raft.h"
#include "rpc_server.h"

typedef struct snap_recv snap_recv;
typedef struct snap_rx snap_rx;

struct snap_recv_options {
    uint64_t cluster_id;
    uint64_t node_id;                 /* this node */
    engine *e;                        /* the snap root and the SST table options */
    int (*known_peer)(void *ctx, uint64_t node);   /* 1 if node is a cluster member */
    /* Takes a complete snapshot (a RAFT_MSG_SNAPSHOT; the callee owns what
     * *m owns, its dir included) and returns 0, or non-zero when it cannot
     * (the raft store is not running): the receiver then removes the dir. */
    int (*deliver)(void *ctx, uint64_t group, struct raft_message *m);
    void *ctx;
    void (*log)(void *ctx, int level, const char *msg);   /* optional; log.h levels */
    void *log_ctx;
    int max_streams;                  /* at once; 0: 4 */
};

/* srv NULL: no gRPC method, sessions only (tests). */
int snap_recv_new(snap_recv **out, rpc_server *srv, const struct snap_recv_options *o,
                  okv_error *err);

struct snap_recv_stats {
    uint64_t streams;      /* calls that began */
    uint64_t delivered;    /* handed to the raft store */
    uint64_t refused;      /* ended with an error status or cancelled */
    uint64_t bytes;        /* chunk bytes of delivered snapshots */
    int active;
};

void snap_recv_stats_get(snap_recv *r, struct snap_recv_stats *st);

/* After rpc_server_shutdown_and_free. Accepts NULL. */
void snap_recv_free(snap_recv *r);

/* ---- one stream ----------------------------------------------------------- */

int snap_rx_new(snap_rx **out, snap_recv *r);

/* One received message. OKV_OK, or a code with a message in err: the
 * stream is refused (its dir removed) and every later call fails.
 * Codes: OKV_EINVAL (not this cluster / node, malformed, out of place),
 * OKV_ECORRUPT (damaged: order, ranges, counts, checksum), OKV_EUNAVAILABLE
 * (busy), OKV_EIO / OKV_ENOMEM. */
int snap_rx_feed(snap_rx *rx, const uint8_t *msg, size_t len, okv_error *err);

/* The sender half-closed: requires the trailer, finishes the files and
 * delivers. OKV_OK once delivered. */
int snap_rx_end(snap_rx *rx, okv_error *err);

/* Accepts NULL. A stream not delivered has its dir removed. */
void snap_rx_free(snap_rx *rx);

#endif

/*
 * snap_send.h — streams partition snapshots to followers behind a leader's
 * compacted log, on their own threads and connections, in bounded memory.
 *
 * The raft loop never sends a RAFT_MSG_SNAPSHOT through the transport. It
 * takes a RocksDB snapshot between apply batches (so it is exactly the
 * group's applied state), fixes the message's metadata to that applied
 * index, and hands both to snap_send_start. A worker thread then opens a
 * "/orderkv.v1.Raft/Snapshot" call to the follower, walks the group's keys
 * in the RocksDB snapshot (fsm_snapshot_reader) and sends the stream of
 * snap_format.h: header, chunks of about 1 MiB, trailer. The follower
 * answers with the call's status once it has the whole stream checked and
 * handed to its raft loop.
 *
 * Failure is only logged: the Raft core notices that the follower never
 * acknowledged (its progress stays in SNAPSHOT state for an election
 * timeout), probes again and asks for a new snapshot, which arrives here as
 * a new transfer. So a lost transfer costs one election timeout.
 *
 * Limits: at most one transfer per (group, follower) queued or running
 * (later ones are refused: the core asks again), at most `workers` streams
 * at once, at most `max_queued` waiting. Memory per running transfer: one
 * chunk being built plus its copy handed to gRPC, whatever the partition's
 * size. A queued or running transfer pins its RocksDB snapshot, which keeps
 * old versions of overwritten keys on disk until it is done.
 *
 * Threads: snap_send_start from the raft loop (any thread, in fact);
 * callbacks (peer_address, log) from the workers.
 */
#ifndef OKV_SERVER_SNAP_SEND_H
#define OKV_SERVER_SNAP_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "engine_sst.h"
#include "errors.h"
#include "raft.h"

typedef struct snap_send snap_send;

struct tls_pem;

struct snap_send_options {
    uint64_t cluster_id;
    uint64_t node_id;             /* this node (the leader) */
    engine *e;                    /* the snapshots handed in are of this engine */
    /* Writes node's "host:port" into buf; 0, or -1 if unknown. */
    int (*peer_address)(void *ctx, uint64_t node, char *buf, size_t cap);
    void *peer_ctx;
    void (*log)(void *ctx, int level, const char *msg);   /* optional; levels of log.h */
    void *log_ctx;
    size_t chunk_bytes;           /* 0: SNAP_CHUNK_BYTES (1 MiB) */
    int workers;                  /* streams at once; 0: 2 */
    int max_queued;               /* 0: 64 */
    int io_timeout_ms;            /* one send, or the final answer, taking longer
                                     ends the transfer; 0: 30000 */
    const struct tls_pem *tls;    /* TLS to the followers (client/tls_creds.h), as
                                     the transport's; NULL: plaintext. Borrowed:
                                     must outlive the sender */
    const char *auth_secret;      /* --auth on: the cluster's secret, sent with each
                                     transfer; NULL: none. Borrowed, as tls */
};

int snap_send_new(snap_send **out, const struct snap_send_options *o, okv_error *err);

/* Queues the transfer of m (a RAFT_MSG_SNAPSHOT whose metadata is the state
 * snap pinned; its data is not sent) to node `to`, Raft group `group`.
 * Takes ownership of snap in every case. OKV_OK if queued; OKV_EUNAVAILABLE
 * if a transfer of (group, to) is already queued or running, the queue is
 * full or the sender is stopping. */
int snap_send_start(snap_send *s, uint64_t to, uint64_t group, const struct raft_message *m,
                    engine_snapshot *snap);

struct snap_send_stats {
    uint64_t queued;          /* transfers accepted */
    uint64_t refused;         /* refused by snap_send_start (busy, full) */
    uint64_t sent;            /* acknowledged by the follower */
    uint64_t failed;
    uint64_t chunks, records, bytes;   /* of acknowledged transfers */
    int running, waiting;
};

void snap_send_stats_get(snap_send *s, struct snap_send_stats *st);

/* Cancels running transfers, drops queued ones, joins the workers and
 * releases every RocksDB snapshot. Call before the engine is closed and
 * after the raft loop stopped handing in transfers. Accepts NULL. */
void snap_send_free(snap_send *s);

#endif

/*
 * transport.h — node-to-node transport of Raft messages (multi-Raft).
 *
 * One gRPC bidirectional stream per ordered node pair direction: node A
 * opens a client stream "/orderkv.v1.Raft/Stream" to B and sends A->B
 * traffic on it; B's messages to A travel on B's own stream to A. The server
 * side of a stream only receives (it never sends a message), so each
 * direction is independent: a slow or dead peer stalls only its own stream.
 * The server side is registered on the node's rpc_server (one port for
 * clients and nodes); the client side uses the transport's own channels,
 * completion queue and thread. The frame format is in docs/transport.md.
 *
 * Threads:
 *   - transport_send / transport_flush: the raft loop thread (one caller at a
 *     time); they never block on the network, only on short internal locks.
 *   - transport_set_peer / transport_block / transport_stats: any thread.
 *   - on_message and log: called on rpc_server queue threads (received
 *     frames) and on the transport's own thread (log only). They must not
 *     block for long.
 *
 * Lifetime: transport_new registers the streaming method, so it runs after
 * rpc_server_new and before rpc_server_start. Shut the rpc_server down
 * (rpc_server_shutdown_and_free) BEFORE transport_free: the server's streams
 * point at the transport until the server has cancelled and released them.
 *
 * Loss: Raft tolerates lost messages, so the transport drops instead of
 * waiting — when a destination's queue is full, while its stream is down,
 * while it is blocked, and everything still queued when its stream breaks.
 * Every drop is counted in transport_stats.
 */
#ifndef OKV_SERVER_TRANSPORT_H
#define OKV_SERVER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "raft.h"
#include "rpc_server.h"

typedef struct transport transport;

/* The full path of the streaming method. */
#define TRANSPORT_METHOD "/orderkv.v1.Raft/Stream"

/* The rpc_server accepts messages up to this size (its
 * GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH); max_frame_bytes may not exceed it. */
#define TRANSPORT_MAX_FRAME_LIMIT (8u * 1024u * 1024u)

/* Log levels passed to the log callback (the values of common/log.h). */
enum transport_log_level {
    TRANSPORT_LOG_ERROR = 0,
    TRANSPORT_LOG_WARN = 1,
    TRANSPORT_LOG_INFO = 2,
    TRANSPORT_LOG_DEBUG = 3
};

/* A received message. Called once per decoded message, on an rpc_server
 * queue thread; messages of one sender arrive in the order it sent them,
 * except that coalesced heartbeats (transport_send) come after the other
 * messages of their frame.
 * The callback owns what *m owns (entries, snapshot data) and releases it
 * with raft_message_release; the struct itself is the transport's and is
 * valid only during the call (copy it by value). */
typedef void (*transport_on_message)(void *arg, uint64_t from_node, uint64_t group_id,
                                     struct raft_message *m);

typedef void (*transport_log_fn)(void *ctx, int level, const char *msg);

#define TRANSPORT_OPTIONS_VERSION 1

struct tls_pem;

struct transport_options {
    int version;                 /* TRANSPORT_OPTIONS_VERSION */
    uint64_t cluster_id;         /* frames of another cluster are refused */
    uint64_t node_id;            /* this node (non-zero) */
    size_t max_frame_bytes;      /* one gRPC message, <= TRANSPORT_MAX_FRAME_LIMIT;
                                    default 4 MiB */
    size_t max_queue_bytes;      /* per destination; default 64 MiB */
    size_t max_queue_msgs;       /* per destination; default 65536 */
    size_t max_reassembly_bytes; /* chunked messages being rebuilt, per
                                    sending peer; default 64 MiB */
    int backoff_min_ms;          /* reconnect backoff: default 50 ms ... */
    int backoff_max_ms;          /* ... doubling up to 2000 ms, with jitter */
    transport_on_message on_message;  /* required */
    void *on_message_arg;
    transport_log_fn log;        /* optional */
    void *log_ctx;
    int log_level;               /* messages above this level are skipped;
                                    default TRANSPORT_LOG_INFO */
    /* TLS for the channels to peers (client/tls_creds.h): the CA that
     * signs them and this node's certificate and key, shown to them. NULL:
     * plaintext. Borrowed: must outlive the transport. */
    const struct tls_pem *tls;
    /* --auth on: the cluster's secret, sent with every stream to a peer
     * (server/net/auth_md_out.h). NULL: none. Borrowed, as tls. */
    const char *auth_secret;
};

#define TRANSPORT_OPTIONS_INIT                                                          \
    { TRANSPORT_OPTIONS_VERSION, 0, 0, 4u * 1024u * 1024u, 64u * 1024u * 1024u, 65536, \
      64u * 1024u * 1024u, 50, 2000, NULL, NULL, NULL, NULL, TRANSPORT_LOG_INFO, NULL, NULL }

/* Creates a transport and registers TRANSPORT_METHOD on srv (which must not
 * be started yet). *out is owned by the caller (transport_free). Errors:
 * OKV_EINVAL (bad options, method cannot be registered), OKV_ENOMEM,
 * OKV_EINTERNAL (thread). */
int transport_new(transport **out, rpc_server *srv, const struct transport_options *opt,
                  okv_error *err);

/* Adds a peer or changes its address ("host:port", copied). A new peer is
 * connected at once; a changed address drops the current stream and
 * reconnects to the new one. node_id must differ from 0 and from this node.
 * Frames from node ids not in this table are refused. */
int transport_set_peer(transport *t, uint64_t node_id, const char *address);

/* Queues m (encoded into the destination's current frame; the caller keeps
 * m) for node to_node, Raft group group_id. Nothing goes out before the next
 * transport_flush. Returns 0 when queued, OKV_EUNAVAILABLE when dropped
 * (queue full, stream down, blocked; counted), OKV_ENOTFOUND for an unknown
 * peer, OKV_EINVAL for a message that cannot be encoded. Never blocks on the
 * network. A message bigger than one frame is split into chunks. Heartbeats
 * and their responses that carry only term, commit, ctx and reject (what
 * the raft core sets), from this node to to_node, are coalesced: all of
 * one frame travel in one compact HEARTBEATS record at the frame's end,
 * delivered as the same raft_message (docs/transport.md). */
int transport_send(transport *t, uint64_t to_node, uint64_t group_id,
                   const struct raft_message *m);

/* Makes everything queued so far sendable: each destination's queue becomes
 * (at least) one frame, and a stream with no SEND in flight starts one.
 * Call once per raft loop iteration. */
void transport_flush(transport *t);

/* Failpoint: while blocked, every message to node_id is dropped (counted
 * in drops_blocked). Incoming traffic is unaffected: block both sides for
 * a symmetric partition. */
void transport_block(transport *t, uint64_t node_id, int blocked);

/* Pass as node_id to transport_stats for totals over all peers plus the
 * frames refused before any peer could be named. */
#define TRANSPORT_ALL_PEERS 0

struct transport_stats {
    int known;                 /* node_id is in the peer table */
    int connected;             /* our stream to it is established */
    int blocked;
    uint64_t frames_sent, msgs_sent, bytes_sent;   /* bytes: whole frames */
    uint64_t frames_recv, msgs_recv, bytes_recv;
    uint64_t heartbeats_sent;  /* of msgs_sent / msgs_recv, those that */
    uint64_t heartbeats_recv;  /* traveled in a HEARTBEATS record */
    uint64_t drops;            /* sum of the three below */
    uint64_t drops_queue_full; /* queue bound hit (bytes or count) */
    uint64_t drops_down;       /* no stream, or queued when it broke */
    uint64_t drops_blocked;    /* transport_block */
    uint64_t reconnects;       /* streams started after the first one */
    uint64_t rejected_frames;  /* wrong cluster / unknown or wrong node / garbage */
    uint64_t decode_errors;    /* records whose raft message did not decode */
    uint64_t chunk_drops;      /* chunked messages abandoned (cap, order) */
    size_t queued_bytes, queued_msgs;
    uint64_t last_recv_ms;     /* CLOCK_MONOTONIC ms of the last frame received
                                  from it (0: none yet; totals: the latest) */
    char last_error[160];      /* last stream failure ("" if none) */
};

/* Fills *st for one peer (OKV_ENOTFOUND if unknown; *st is then zeroed
 * except known = 0), or totals for TRANSPORT_ALL_PEERS. */
int transport_stats(transport *t, uint64_t node_id, struct transport_stats *st);

/* Cancels the outgoing streams, drains the transport's completion queue,
 * joins its thread and frees everything. The rpc_server must have been shut
 * down first (see Lifetime above). Accepts NULL. */
void transport_free(transport *t);

#endif

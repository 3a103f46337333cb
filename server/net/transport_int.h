/*
 * transport_int.h — the transport's private structures, shared by
 * transport.c (peers, outgoing streams, frames, the transport thread, the
 * public API) and transport_recv.c (incoming streams: frames decoded,
 * chunked messages rebuilt, messages delivered). The design notes and
 * invariants are at the top of transport.c; the wire format is documented
 * in docs/transport.md.
 */
#ifndef OKV_SERVER_TRANSPORT_INT_H
#define OKV_SERVER_TRANSPORT_INT_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc_stream.h"
#include "auth_md_out.h"
#include "transport.h"

/* ---- wire format (docs/transport.md) ---------------------------------- */

#define TRANSPORT_MAGIC "OKVT"
#define TRANSPORT_VERSION 1
#define TRANSPORT_FRAME_HDR 36     /* magic 4, version 1, flags 1, reserved 2,
                                      cluster 8, from 8, to 8, count 4 */
#define TRANSPORT_REC_HDR 13       /* kind 1, group 8, length 4 */
#define TRANSPORT_CHUNK_HDR 16     /* total 8, offset 8 */
#define TRANSPORT_HBS_HDR 4        /* entry count */
#define TRANSPORT_HB_ENTRY 34      /* group 8, type 1, flags 1, term 8,
                                      commit 8, ctx 8 */
#define TRANSPORT_REC_MESSAGE 1
#define TRANSPORT_REC_CHUNK 2
#define TRANSPORT_REC_HEARTBEATS 3
/* Smallest max_frame_bytes accepted: a frame must carry a useful chunk. */
#define TRANSPORT_MIN_FRAME 1024u
#define TRANSPORT_MAX_PEERS 256
#define FRAME_INIT_CAP ((size_t)64 * 1024)

static inline void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- state ------------------------------------------------------------- */

/* One gRPC message being built or waiting to be sent. */
struct frame {
    struct frame *next;
    uint8_t *buf;
    size_t len, cap;
    uint32_t nrec;      /* records (written into the header when sent) */
    uint32_t nmsgs;     /* whole messages ending in this frame */
    uint32_t nhbs;      /* of them, in its HEARTBEATS record */
};

struct cstream;

struct peer {
    transport *t;
    uint64_t id;
    pthread_mutex_t mu;           /* everything below */
    char addr[256];
    grpc_channel *ch;
    void *method;                 /* grpc_channel_register_call handle */
    struct cstream *cs;           /* the outgoing stream, or NULL */
    int ever_started;
    int connected;
    int blocked;
    int reconnect_now;            /* address changed: no backoff */
    int64_t retry_at_ms;          /* next stream attempt (0: none) */
    int backoff_ms;
    uint64_t rng;
    struct frame *head, *tail;    /* invariant 3 */
    size_t nframes, nsendable;
    size_t q_bytes, q_msgs;
    uint8_t *hb;                  /* invariant 6: HEARTBEATS entries */
    size_t hb_len, hb_cap;
    uint32_t hb_n;
    size_t reasm_bytes;           /* chunked messages from this peer being rebuilt */
    struct transport_stats st;    /* counters only */
};

struct transport {
    struct transport_options opt;
    auth_md_out auth_md;          /* sent when opening a stream to a peer */
    rpc_server *srv;
    grpc_completion_queue *cq;
    pthread_t thread;
    pthread_mutex_t mu;           /* peer table appends, live_cstreams */
    pthread_cond_t cv;
    struct peer *peers[TRANSPORT_MAX_PEERS];   /* append-only */
    atomic_size_t npeers;
    int live_cstreams;
    atomic_int live_sstreams;
    atomic_int stopping;
    _Atomic int64_t next_timer_ms;   /* earliest retry_at_ms (0: none) */
    /* refusals that cannot be charged to a known peer */
    atomic_uint_least64_t rejected_frames, decode_errors, chunk_drops;
};

/* The transport's log line, prefixed with its node id. Any thread. */
void transport_logf(transport *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The peer with that node id, or NULL. Lock-free: the table is
 * append-only and published with release. */
struct peer *transport_find_peer(transport *t, uint64_t id);

/* The incoming-stream handler the transport registers with the node's
 * rpc_server (transport_recv.c). */
void transport_on_stream(void *arg, rpc_server *srv, grpc_call *call, const rpc_identity *id);

#endif

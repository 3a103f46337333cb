/*
 * rpc_server_int.h — rpc_server internals shared by rpc_server.c and
 * rpc_batch.c (the batched stream). Not for other modules.
 */
#ifndef OKV_SERVER_RPC_SERVER_INT_H
#define OKV_SERVER_RPC_SERVER_INT_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>

#include "metrics.h"
#include "rpc_server.h"
#include "rpc_stream.h"

#define MAX_METHODS 48   /* KV, admin, transport, snapshots and the 14 of Orders */
#define MAX_THREADS 8
/* Calls requested ahead per method: how many calls of one method can arrive
 * at once before gRPC queues them internally. */
#define SLOTS_PER_METHOD 64
/* Result codes counted apart: OKV_OK down to OKV_EAUTH, then "other". */
#define RPC_METRIC_CODES 24

typedef struct rpc_method {
    char path[128];
    void *handle;          /* from grpc_server_register_method */
    rpc_handler fn;        /* unary methods */
    rpc_stream_handler stream_fn;   /* streaming methods (fn == NULL) */
    void *arg;
    /* Metrics (rpc_server_set_metrics), created at the method's first
     * answer and then only loaded, so a method never called shows
     * nothing: the latency histogram and a counter per result code
     * (index -code; the last slot is any other code). */
    char label[64];
    _Atomic(metrics_histogram *) latency;
    _Atomic(metrics_counter *) by_code[RPC_METRIC_CODES];
} rpc_method;

enum call_state { CALL_REQUESTED, CALL_REPLYING };

struct rpc_call {
    rpc_tag tag;                   /* first: the queue hands back &tag */
    enum call_state state;
    rpc_server *srv;
    rpc_method *method;            /* NULL: the catch-all slot */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_byte_buffer *payload;
    grpc_call_details details;     /* catch-all slot only */
    grpc_byte_buffer *response;
    grpc_slice status_details;
    int cancelled;
    int active;                    /* counted in active_calls */
    /* An item of a batched stream (rpc_batch.c): answered on the stream,
     * not as a gRPC call of its own (call is NULL then). */
    struct rpc_batch_stream *batch;
    uint64_t item_id;
    uint64_t start_ns;             /* arrival (CLOCK_MONOTONIC), for the latency */
    rpc_identity id;               /* who sent it (authentication on) */
    char *peer;                    /* rpc_call_peer's, asked at its first use (gpr_free) */
};

struct rpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    char address[128];
    rpc_method methods[MAX_METHODS];
    size_t nmethods;
    pthread_t threads[MAX_THREADS];
    int nthreads;
    atomic_int live_calls;         /* every rpc_call allocated */
    atomic_int active_calls;       /* arrived and not yet answered */
    atomic_int shutting_down;
    atomic_int live_streams;       /* streams handed to their owners */
    rpc_tag shutdown_tag;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int shutdown_done;             /* guarded by mu */
    int drained;                   /* rpc_server_drain ran */
    metrics_registry *metrics;     /* NULL: none recorded */
    rpc_method unknown;            /* metrics of calls to methods nobody serves */
    const rpc_auth_ops *auth;      /* NULL: every call runs */
    void *auth_arg;
};

/* A call slot (or, with batch set by the caller, a stream item); counted
 * in live_calls until rpc_call_free. */
rpc_call *rpc_call_new(rpc_server *s, rpc_method *m);
void rpc_call_free(rpc_call *c);

/* Counts c as arrived and not yet answered (drain waits for it). */
void rpc_server_count_active(rpc_server *s, rpc_call *c);

/* 1 when the server checks calls (rpc_server_set_auth). */
int rpc_server_auth_on(const rpc_server *s);

/* The unary method registered at path, or NULL. */
rpc_method *rpc_server_find_method(rpc_server *s, const char *path);

/* The peer of a batched stream (rpc_batch.c), "" if unknown; lives as
 * long as the stream, which outlives its unanswered items. */
const char *rpc_batch_peer(struct rpc_batch_stream *bs);

/* rpc_call_reply for a stream item (rpc_batch.c); frees the item. */
void rpc_batch_reply(rpc_call *c, int code, const char *msg, const uint8_t *resp,
                     size_t resp_len);

#endif

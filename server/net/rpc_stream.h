/*
 * rpc_stream.h — streaming methods on the node's gRPC server, for modules
 * (the peer transport) that drive gRPC calls themselves.
 *
 * Every tag on the server's completion queue is an rpc_tag: the queue
 * threads call tag->fn(tag, ok) for each event. A streaming method's owner
 * embeds rpc_tags in its own structs, starts batches on the call with them,
 * and so gets its events on the server's threads (which must not block).
 *
 * Life of a stream: when a call of a streaming method arrives, the handler
 * gets the grpc_call (owned: the handler unrefs it when done) and the stream
 * counts as live until the owner calls rpc_server_stream_done. Graceful
 * shutdown does not wait for streams; it cancels them (their pending batches
 * complete with ok = 0) and then waits until every stream is done, before
 * the queue is shut down.
 */
#ifndef OKV_SERVER_RPC_STREAM_H
#define OKV_SERVER_RPC_STREAM_H

#include <grpc/grpc.h>

#include "rpc_server.h"

typedef struct rpc_tag {
    void (*fn)(struct rpc_tag *tag, int ok);
} rpc_tag;

/* Called on a queue thread when a call of the method arrives (and, with
 * authentication on, was allowed); id: who opened it (borrowed, only
 * during the call). */
typedef void (*rpc_stream_handler)(void *arg, rpc_server *s, grpc_call *call,
                                   const rpc_identity *id);

/* Registers a streaming method by full path. Before rpc_server_start only. */
int rpc_server_add_stream_method(rpc_server *s, const char *path, rpc_stream_handler fn,
                                 void *arg, okv_error *err);

/* The completion queue the server's threads poll (borrowed). */
grpc_completion_queue *rpc_server_cq(rpc_server *s);

/* 1 once shutdown has begun: owners should not start new work. */
int rpc_server_is_shutting_down(const rpc_server *s);

/* rpc_server_set_auth's check of one call of path by id: OKV_OK (also
 * when the server runs without authentication) or the code to answer with
 * and msg. For the items of a batched stream. */
int rpc_server_authorize(rpc_server *s, const rpc_identity *id, const char *path,
                         const uint8_t *req, size_t len, char *msg, size_t cap);

/* The owner of a stream has released its call and every tag. */
void rpc_server_stream_done(rpc_server *s);

#endif

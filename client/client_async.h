/*
 * client_async.h — liborderkv's asynchronous core (internal).
 *
 * A call is a client_op: its packed request, where it routes, and the
 * retry state of client_call.c's rules, kept in the op instead of on a
 * thread's stack. The op goes to a node's batched stream (client_stream.c);
 * answers, stream failures, timers and deadlines all arrive on the
 * client's one completion thread, which moves the op on (retry elsewhere,
 * back off, or finish) and finally calls op->done there.
 *
 * Who owns an op: the submitter until client_op_submit; then the core
 * (a stream, the timer list, or the thread handling its event) until
 * done(op) runs; then done's owner, who frees it with client_op_free.
 */
#ifndef OKV_CLIENT_ASYNC_H
#define OKV_CLIENT_ASYNC_H

#include "client_int.h"

struct client_stream;

typedef struct client_op client_op;
struct client_op {
    okv_client *c;
    enum client_method m;
    uint8_t *req;                    /* packed request (owned) */
    size_t req_len;
    const ProtobufCMessageDescriptor *resp_desc;
    int is_write;
    int may_resend;
    /* An Orders call (client_orders.c): any node serves it, so its answer
     * says nothing about who leads the partition it was routed by; and, a
     * write, it carries no request id the cluster could deduplicate by, so
     * after an attempt that may have arrived it is resent only if
     * resend_safe (its idempotency key turns a resend into a replay).
     * Created with is_write 0 (no request id taken), then is_write set. */
    int orders_call;
    int resend_safe;
    int routed;                      /* rk is set */
    char *rk_table;                  /* owned copies of the route key */
    uint8_t *rk_key;
    size_t rk_key_len;
    long rk_partition;
    int timeout_ms;
    int64_t deadline_ms;             /* monotonic ms */
    int64_t unsent_deadline_ms;      /* this attempt, until it is sent */
    int64_t sent_deadline_ms;        /* this attempt, once sent */

    /* retry state (client_call.c's loop) */
    size_t idx;
    int attempt_no;
    int reached, timed_out, unreachable_in_a_row, ambiguous;
    int rc;
    int tls_probed;                  /* client_tls_diagnose ran for this op */
    int tls_mismatch;                /* plaintext vs TLS: err says so, final */
    char tls_why[384];               /* a failed TLS handshake, for the final message */

    /* in a stream */
    struct client_stream *stream;
    uint64_t item_id;
    int sent;
    client_op *snext, *sprev;        /* the stream's pending or sent list */
    client_op *hnext;                /* the stream's sent ops by id */
    /* on the timer list */
    int64_t wake_ms;
    int timer_act;
    client_op *tnext;

    /* a write's request id, held until done */
    client_write w;
    uint64_t watermark;              /* to send with the write */
    int w_active;

    /* the outcome, set before done */
    ProtobufCMessage *resp;
    char err[512];

    void (*done)(client_op *op);
    void *done_arg;
};

/* Starts the client's completion thread; at okv_connect. */
int client_async_start(okv_client *c);
/* Waits for every op, then stops streams and the thread; at okv_close. */
void client_async_stop(okv_client *c);

/* A new op for method m (routed by rk, or NULL); a write also takes its
 * request id here (op->w: put it in the request before packing). NULL when
 * out of memory. Then client_op_pack the request. */
client_op *client_op_new(okv_client *c, enum client_method m,
                         const ProtobufCMessageDescriptor *resp_desc, int is_write,
                         int timeout_ms, const client_route_key *rk);
/* Keeps the packed form of req in op; OKV_ENOMEM or OKV_OK. */
int client_op_pack(client_op *op, const ProtobufCMessage *req);
void client_op_free(client_op *op);

/* Hands op to the core; done(op) runs later on the completion thread.
 * A write should already hold its request id (op->w, w_active). */
void client_op_submit(client_op *op);

/* Sends nothing until client_uncork: ops submitted in between to one node
 * leave in one message (okv_batch_submit). Per thread; not nested. */
void client_cork(void);
void client_uncork(void);
int client_corked(void);

/* 1 on the client's completion thread (callbacks must not block). */
int client_on_completion_thread(void);

int64_t client_now_ms(void);

/* --- between the core and the streams (client_stream.c) --------------- */

/* Queues op on the stream to addrs[idx]; it is sent once the stream is
 * open. 0, or -1 if no stream could be made (op untouched). */
int client_stream_enqueue(okv_client *c, size_t idx, client_op *op);
/* Sends op as one unary call to addrs[idx] (a node without KV.Batch);
 * its answer comes to client_op_answered. -1 if the node's connection is
 * not ready (nothing sent). */
int client_unary_start(okv_client *c, size_t idx, client_op *op);

/* Every op past its attempt's deadline is taken out of the streams and
 * handed to client_op_expired. Completion thread only. */
void client_streams_sweep(okv_client *c, int64_t now);
/* Kicks the streams corked sends left waiting. */
void client_streams_flush_corked(void);
/* Cancels every stream and waits until all are gone. */
void client_streams_shutdown(okv_client *c);

/* Events for an op that left a stream (completion thread only). */
void client_op_answered(client_op *op, const client_answer *ans);
/* The stream failed: sent says whether op may have reached the server. */
void client_op_stream_failed(client_op *op, int sent);
/* Tries the same node again at once (its stream turned out not to exist). */
void client_op_resend(client_op *op);
/* The attempt's deadline passed while op was in a stream. */
void client_op_expired(client_op *op, int sent);

#endif

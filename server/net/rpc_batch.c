/*
 * rpc_batch.c — the batched stream (proto/orderkv.proto, KV.Batch).
 *
 * One long-lived bidirectional stream carries many unary calls: each
 * BatchItem is dispatched to the unary method it names as an rpc_call of
 * its own (so handlers cannot tell the difference), and each answer is
 * appended, already encoded, to the stream's outgoing buffer. Whoever
 * answers (a queue thread for reads, the raft loop or the committer for
 * writes) starts the send itself when none is in flight, so a reply leaves
 * without a hop to another thread; replies that come while a send is in
 * flight go together in the next message.
 *
 * The stream lives until every gRPC batch it started has completed and
 * every item it dispatched has been answered (refs). Items keep counting
 * as active calls, so a graceful drain waits for their answers.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "orderkv.pb-c.h"
#include "rpc_server_int.h"

typedef struct batch_tag {
    rpc_tag tag;
    struct rpc_batch_stream *bs;
} batch_tag;

typedef struct rpc_batch_stream {
    rpc_server *srv;
    grpc_call *call;
    batch_tag md_tag, recv_tag, close_tag, send_tag, status_tag;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    int cancelled;                 /* RECV_CLOSE_ON_SERVER's out-param */
    grpc_slice status_details;
    grpc_metadata mark;            /* sent as initial metadata; lives with the stream */
    char *peer;                    /* grpc_call_get_peer, asked at the start (gpr_free) */
    pthread_mutex_t mu;
    int refs;                      /* gRPC batches in flight + items unanswered */
    int items;                     /* items unanswered */
    int receiving_done;            /* the client half-closed, or the call failed */
    int sending;                   /* a SEND_MESSAGE is in flight */
    int status_started;
    int malformed;                 /* ended for a BatchRequest that did not decode */
    rpc_identity id;               /* who opened the stream: each item is checked as theirs */
    uint8_t *out;                  /* encoded BatchReply fields, not yet sent */
    size_t out_len, out_cap;
} rpc_batch_stream;

static void bs_unref_locked_and_unlock(rpc_batch_stream *bs)
{
    int last = --bs->refs == 0;
    pthread_mutex_unlock(&bs->mu);
    if (!last)
        return;
    rpc_server *s = bs->srv;
    grpc_call_unref(bs->call);
    gpr_free(bs->peer);
    grpc_slice_unref(bs->status_details);
    free(bs->out);
    pthread_mutex_destroy(&bs->mu);
    free(bs);
    rpc_server_stream_done(s);
}

/* With mu held: sends what is buffered, or ends the stream once nothing
 * more can come. */
static void bs_kick_locked(rpc_batch_stream *bs)
{
    if (bs->sending || bs->status_started)
        return;
    if (bs->out_len) {
        grpc_slice sl = grpc_slice_new(bs->out, bs->out_len, free);
        bs->out = NULL;
        bs->out_len = bs->out_cap = 0;
        bs->send_buf = grpc_raw_byte_buffer_create(&sl, 1);
        grpc_slice_unref(sl);
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_SEND_MESSAGE;
        op.data.send_message.send_message = bs->send_buf;
        bs->sending = 1;
        bs->refs++;
        if (grpc_call_start_batch(bs->call, &op, 1, &bs->send_tag, NULL) != GRPC_CALL_OK) {
            OKV_ERROR("batch stream: cannot start a send");
            grpc_byte_buffer_destroy(bs->send_buf);
            bs->send_buf = NULL;
            bs->sending = 0;
            bs->refs--;
        }
        return;
    }
    if (bs->receiving_done && bs->items == 0) {
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        /* A stream ended for garbage says so; the items that did decode
         * were answered before. */
        if (bs->malformed) {
            grpc_slice_unref(bs->status_details);
            bs->status_details = grpc_slice_from_static_string(
                "malformed BatchRequest (see proto/orderkv.proto); the stream is closed");
        }
        op.data.send_status_from_server.status =
            bs->malformed ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_OK;
        op.data.send_status_from_server.status_details = &bs->status_details;
        bs->status_started = 1;
        bs->refs++;
        if (grpc_call_start_batch(bs->call, &op, 1, &bs->status_tag, NULL) != GRPC_CALL_OK)
            bs->refs--;
    }
}

static int out_reserve(rpc_batch_stream *bs, size_t more)
{
    if (bs->out_len + more <= bs->out_cap)
        return 1;
    size_t cap = bs->out_cap ? bs->out_cap * 2 : 4096;
    while (cap < bs->out_len + more)
        cap *= 2;
    uint8_t *p = realloc(bs->out, cap);
    if (!p)
        return 0;
    bs->out = p;
    bs->out_cap = cap;
    return 1;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Appends one reply as field 1 of a BatchResponse; with mu held. */
static void bs_append_locked(rpc_batch_stream *bs, uint64_t id, int code, const char *msg,
                             const uint8_t *resp, size_t resp_len)
{
    Orderkv__V1__BatchReply r = ORDERKV__V1__BATCH_REPLY__INIT;
    r.id = id;
    r.status = (uint32_t)rpc_status_for_code(code);
    r.message = (char *)(code == OKV_OK || !msg ? "" : msg);
    r.has_body = resp != NULL;
    r.body.data = (uint8_t *)resp;
    r.body.len = resp ? resp_len : 0;
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    if (!out_reserve(bs, len + 11)) {
        OKV_ERROR("batch stream: out of memory for a reply; the client's call times out");
        return;
    }
    bs->out[bs->out_len++] = 0x0a;   /* field 1, length-delimited */
    bs->out_len += put_varint(bs->out + bs->out_len, len);
    bs->out_len += protobuf_c_message_pack(&r.base, bs->out + bs->out_len);
}

void rpc_batch_reply(rpc_call *c, int code, const char *msg, const uint8_t *resp,
                     size_t resp_len)
{
    rpc_batch_stream *bs = c->batch;
    uint64_t id = c->item_id;
    rpc_call_free(c);
    pthread_mutex_lock(&bs->mu);
    bs_append_locked(bs, id, code, msg, resp, resp_len);
    bs->items--;
    bs_kick_locked(bs);
    bs_unref_locked_and_unlock(bs);
}

static void bs_post_recv(rpc_batch_stream *bs);

static void dispatch(rpc_batch_stream *bs, const Orderkv__V1__BatchRequest *req)
{
    rpc_server *s = bs->srv;
    for (size_t i = 0; i < req->n_items; i++) {
        const Orderkv__V1__BatchItem *it = req->items[i];
        rpc_method *m = it->method ? rpc_server_find_method(s, it->method) : NULL;
        if (!m || rpc_server_is_shutting_down(s)) {
            char msg[256];
            if (m)
                snprintf(msg, sizeof msg, "the node is shutting down");
            else
                snprintf(msg, sizeof msg, "unknown method %.128s in a batch (a batch carries "
                                          "orderkv.v1.KV calls)", it->method ? it->method : "");
            pthread_mutex_lock(&bs->mu);
            bs_append_locked(bs, it->id, m ? OKV_EUNAVAILABLE : OKV_EUNIMPLEMENTED, msg, NULL, 0);
            bs_kick_locked(bs);
            pthread_mutex_unlock(&bs->mu);
            continue;
        }
        rpc_call *c = rpc_call_new(s, m);
        if (!c) {
            pthread_mutex_lock(&bs->mu);
            bs_append_locked(bs, it->id, OKV_EUNAVAILABLE, "the node is out of memory", NULL, 0);
            bs_kick_locked(bs);
            pthread_mutex_unlock(&bs->mu);
            continue;
        }
        c->batch = bs;
        c->item_id = it->id;
        c->state = CALL_REPLYING;
        if (rpc_server_auth_on(s))
            c->id = bs->id;   /* who asks, for the handlers (WhoAmI) and the audit log */
        rpc_server_count_active(s, c);
        pthread_mutex_lock(&bs->mu);
        bs->items++;
        bs->refs++;
        pthread_mutex_unlock(&bs->mu);
        char why[512];
        int arc = rpc_server_authorize(s, &bs->id, m->path, it->body.data, it->body.len, why,
                                       sizeof why);
        if (arc != OKV_OK)
            rpc_call_reply(c, arc, why, NULL, 0);
        else
            m->fn(c, it->body.data, it->body.len, m->arg);
    }
}

static void on_recv(rpc_tag *tag, int ok)
{
    rpc_batch_stream *bs = ((batch_tag *)tag)->bs;
    grpc_byte_buffer *buf = bs->recv_buf;
    bs->recv_buf = NULL;
    if (ok && buf) {
        grpc_byte_buffer_reader r;
        Orderkv__V1__BatchRequest *req = NULL;
        if (grpc_byte_buffer_reader_init(&r, buf)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
            req = orderkv__v1__batch_request__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                     GRPC_SLICE_START_PTR(all));
            if (req)
                dispatch(bs, req);
            grpc_slice_unref(all);
        }
        grpc_byte_buffer_destroy(buf);
        if (req) {
            orderkv__v1__batch_request__free_unpacked(req, NULL);
            bs_post_recv(bs);
        } else {
            /* Garbage on the stream: no item id to answer. Stop reading and
             * end the stream with INVALID_ARGUMENT once the items already
             * dispatched are answered. */
            OKV_WARN("batch stream: a malformed BatchRequest; ending the stream");
            pthread_mutex_lock(&bs->mu);
            bs->malformed = 1;
            bs->receiving_done = 1;
            bs_kick_locked(bs);
            pthread_mutex_unlock(&bs->mu);
        }
    } else {
        if (buf)
            grpc_byte_buffer_destroy(buf);
        pthread_mutex_lock(&bs->mu);
        bs->receiving_done = 1;
        bs_kick_locked(bs);
        pthread_mutex_unlock(&bs->mu);
    }
    pthread_mutex_lock(&bs->mu);
    bs_unref_locked_and_unlock(bs);
}

static void bs_post_recv(rpc_batch_stream *bs)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &bs->recv_buf;
    pthread_mutex_lock(&bs->mu);
    bs->refs++;
    pthread_mutex_unlock(&bs->mu);
    if (grpc_call_start_batch(bs->call, &op, 1, &bs->recv_tag, NULL) != GRPC_CALL_OK) {
        pthread_mutex_lock(&bs->mu);
        bs->receiving_done = 1;
        bs->refs--;
        bs_kick_locked(bs);
        pthread_mutex_unlock(&bs->mu);
    }
}

static void on_sent(rpc_tag *tag, int ok)
{
    rpc_batch_stream *bs = ((batch_tag *)tag)->bs;
    pthread_mutex_lock(&bs->mu);
    grpc_byte_buffer_destroy(bs->send_buf);
    bs->send_buf = NULL;
    bs->sending = 0;
    if (!ok) {
        /* The call is gone: what is buffered has no one to go to. */
        bs->out_len = 0;
        bs->receiving_done = 1;
    }
    bs_kick_locked(bs);
    bs_unref_locked_and_unlock(bs);
}

static void on_done(rpc_tag *tag, int ok)
{
    (void)ok;
    rpc_batch_stream *bs = ((batch_tag *)tag)->bs;
    pthread_mutex_lock(&bs->mu);
    bs_unref_locked_and_unlock(bs);
}

static void batch_stream_start(void *arg, rpc_server *s, grpc_call *call,
                               const rpc_identity *id)
{
    (void)arg;
    rpc_batch_stream *bs = calloc(1, sizeof *bs);
    if (!bs) {
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        rpc_server_stream_done(s);
        return;
    }
    bs->srv = s;
    bs->call = call;
    bs->id = *id;
    /* Asked once, here: items on several threads read it at once. */
    bs->peer = grpc_call_get_peer(call);
    bs->status_details = grpc_empty_slice();
    pthread_mutex_init(&bs->mu, NULL);
    batch_tag *tags[] = { &bs->md_tag, &bs->recv_tag, &bs->close_tag, &bs->send_tag,
                          &bs->status_tag };
    void (*fns[])(rpc_tag *, int) = { on_done, on_recv, on_done, on_sent, on_done };
    for (size_t i = 0; i < 5; i++) {
        tags[i]->tag.fn = fns[i];
        tags[i]->bs = bs;
    }
    bs->refs = 1;   /* this function's, dropped at its end */
    /* Initial metadata at once, marked: the client sends nothing before it
     * has seen the mark, so what it sends certainly reached a server (an
     * error reply without a body also completes the client's wait for
     * initial metadata, but carries no mark). */
    bs->mark.key = grpc_slice_from_static_string(RPC_BATCH_MARK_KEY);
    bs->mark.value = grpc_slice_from_static_string("1");
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    op.data.send_initial_metadata.count = 1;
    op.data.send_initial_metadata.metadata = &bs->mark;
    /* refs under mu from the first batch on: its completion may run on
     * another completion-queue thread at once, and an unlocked refs++
     * racing that refs-- loses an update. */
    pthread_mutex_lock(&bs->mu);
    bs->refs++;
    if (grpc_call_start_batch(call, &op, 1, &bs->md_tag, NULL) != GRPC_CALL_OK)
        bs->refs--;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &bs->cancelled;
    bs->refs++;
    if (grpc_call_start_batch(call, &op, 1, &bs->close_tag, NULL) != GRPC_CALL_OK)
        bs->refs--;
    pthread_mutex_unlock(&bs->mu);
    bs_post_recv(bs);
    pthread_mutex_lock(&bs->mu);
    bs_unref_locked_and_unlock(bs);
}

const char *rpc_batch_peer(rpc_batch_stream *bs)
{
    return bs->peer ? bs->peer : "";
}

int rpc_server_add_batch_method(rpc_server *s, const char *path, okv_error *err)
{
    return rpc_server_add_stream_method(s, path, batch_stream_start, NULL, err);
}

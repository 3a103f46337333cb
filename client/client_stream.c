/*
 * client_stream.c — batched streams to the nodes (proto/orderkv.proto,
 * KV.Batch).
 *
 * Each node has CLIENT_STREAMS_PER_NODE long-lived streams, each on its
 * own connection. An op is queued on one; whoever queues it sends at once
 * if the stream is idle, else the op waits for the send in flight to
 * complete and leaves with every other op queued meanwhile, in one
 * message. So a busy client pays gRPC's per-call cost once per batch, and
 * an idle one pays no extra wait.
 *
 * Certainty about what was sent, which the money rules rest on: nothing is
 * sent before the server's initial metadata arrived (the server sends them
 * when the stream reaches it), so when a stream fails before that, none of
 * its ops reached a server; ops are marked sent when their message is
 * handed to gRPC, and from then on a failure leaves them ambiguous.
 *
 * A stream lives until its call has ended and every batch it started has
 * completed (refs); the slot holds one reference while the stream is the
 * node's current one.
 */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

#include "client_async.h"
#include "orderkv.pb-c.h"

#define BUCKETS 1024
/* A message carries at most this much (the server accepts 8 MiB). */
#define MAX_BATCH_BYTES (4u << 20)

typedef struct stag {
    client_tag t;
    struct client_stream *s;
} stag;

typedef struct client_stream {
    okv_client *c;
    size_t idx;
    unsigned slot;
    grpc_call *call;
    stag md_tag, send_tag, recv_tag, status_tag;
    grpc_metadata_array md_in, trailers;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *send_buf, *recv_buf;
    pthread_mutex_t mu;
    int refs;
    int open;        /* the server's initial metadata arrived */
    int dead;        /* the call ended: its ops were handed back */
    int sending;
    client_op *pend_head, *pend_tail;   /* not yet sent, in order */
    client_op *sent_head;               /* sent, unanswered */
    client_op *buckets[BUCKETS];        /* sent ops by item id */
} client_stream;

static _Atomic uint64_t next_item_id = 1;

/* Streams with ops a corked thread queued (client_cork). */
#define MAX_CORKED 64
static _Thread_local client_stream *corked_streams[MAX_CORKED];
static _Thread_local size_t ncorked;

static void stream_unref_locked_and_unlock(client_stream *s)
{
    int last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last)
        return;
    okv_client *c = s->c;
    grpc_call_unref(s->call);
    grpc_metadata_array_destroy(&s->md_in);
    grpc_metadata_array_destroy(&s->trailers);
    grpc_slice_unref(s->details);
    pthread_mutex_destroy(&s->mu);
    free(s);
    pthread_mutex_lock(&c->stream_mu);
    if (--c->streams_live == 0)
        pthread_cond_broadcast(&c->stream_cv);
    pthread_mutex_unlock(&c->stream_mu);
}

/* ---- the sent set ---------------------------------------------------------- */

static void sent_add(client_stream *s, client_op *op)
{
    op->sprev = NULL;
    op->snext = s->sent_head;
    if (s->sent_head)
        s->sent_head->sprev = op;
    s->sent_head = op;
    client_op **b = &s->buckets[op->item_id % BUCKETS];
    op->hnext = *b;
    *b = op;
    op->sent = 1;
}

static void sent_remove(client_stream *s, client_op *op)
{
    if (op->sprev)
        op->sprev->snext = op->snext;
    else
        s->sent_head = op->snext;
    if (op->snext)
        op->snext->sprev = op->sprev;
    client_op **b = &s->buckets[op->item_id % BUCKETS];
    while (*b != op)
        b = &(*b)->hnext;
    *b = op->hnext;
    op->snext = op->sprev = op->hnext = NULL;
}

static client_op *sent_take(client_stream *s, uint64_t id)
{
    for (client_op *op = s->buckets[id % BUCKETS]; op; op = op->hnext)
        if (op->item_id == id) {
            sent_remove(s, op);
            return op;
        }
    return NULL;
}

/* ---- sending --------------------------------------------------------------- */

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

static void item_of(const client_op *op, Orderkv__V1__BatchItem *it)
{
    orderkv__v1__batch_item__init(it);
    it->id = op->item_id;
    it->method = (char *)client_method_path(op->m);
    it->body.data = op->req;
    it->body.len = op->req_len;
}

/* With mu held: sends the queued ops (up to MAX_BATCH_BYTES) in one
 * BatchRequest. */
static void start_send_locked(client_stream *s)
{
    if (s->sending || !s->open || s->dead || !s->pend_head)
        return;
    size_t total = 0, n = 0;
    for (client_op *op = s->pend_head; op && (n == 0 || total < MAX_BATCH_BYTES); op = op->snext) {
        Orderkv__V1__BatchItem it;
        item_of(op, &it);
        total += 11 + protobuf_c_message_get_packed_size(&it.base);
        n++;
    }
    uint8_t *buf = malloc(total);
    if (!buf)
        return;   /* tried again at the next send or enqueue */
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        client_op *op = s->pend_head;
        s->pend_head = op->snext;
        if (s->pend_head)
            s->pend_head->sprev = NULL;
        else
            s->pend_tail = NULL;
        Orderkv__V1__BatchItem it;
        item_of(op, &it);
        buf[len++] = 0x0a;   /* BatchRequest.items, length-delimited */
        len += put_varint(buf + len, protobuf_c_message_get_packed_size(&it.base));
        len += protobuf_c_message_pack(&it.base, buf + len);
        sent_add(s, op);
    }
    grpc_slice sl = grpc_slice_new(buf, len, free);
    s->send_buf = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_op gop;
    memset(&gop, 0, sizeof gop);
    gop.op = GRPC_OP_SEND_MESSAGE;
    gop.data.send_message.send_message = s->send_buf;
    s->sending = 1;
    s->refs++;
    if (grpc_call_start_batch(s->call, &gop, 1, &s->send_tag, NULL) != GRPC_CALL_OK) {
        /* Only if the call is unusable: end it; its ops come back at the
         * status, as sent (ambiguous), which is the safe side. */
        s->sending = 0;
        s->refs--;
        grpc_byte_buffer_destroy(s->send_buf);
        s->send_buf = NULL;
        grpc_call_cancel(s->call, NULL);
    }
}

static void on_sent(client_tag *t, int ok)
{
    client_stream *s = ((stag *)t)->s;
    (void)ok;   /* a failed send ends the call: the status follows */
    pthread_mutex_lock(&s->mu);
    grpc_byte_buffer_destroy(s->send_buf);
    s->send_buf = NULL;
    s->sending = 0;
    start_send_locked(s);
    stream_unref_locked_and_unlock(s);
}

/* The mark orderkvd's batched stream opens with (server/net/rpc_server.h,
 * RPC_BATCH_MARK_KEY). An error reply without a body (UNIMPLEMENTED from a
 * node that predates the stream) also completes the wait for initial
 * metadata, but without it. */
static int has_mark(const grpc_metadata_array *md)
{
    static const char key[] = "okv-batch-stream";
    for (size_t i = 0; i < md->count; i++)
        if (GRPC_SLICE_LENGTH(md->metadata[i].key) == sizeof key - 1 &&
            memcmp(GRPC_SLICE_START_PTR(md->metadata[i].key), key, sizeof key - 1) == 0)
            return 1;
    return 0;
}

static void on_open(client_tag *t, int ok)
{
    client_stream *s = ((stag *)t)->s;
    pthread_mutex_lock(&s->mu);
    if (ok && has_mark(&s->md_in))
        s->open = 1;
    start_send_locked(s);
    stream_unref_locked_and_unlock(s);
}

/* ---- receiving ------------------------------------------------------------- */

static void post_recv(client_stream *s)
{
    grpc_op gop;
    memset(&gop, 0, sizeof gop);
    gop.op = GRPC_OP_RECV_MESSAGE;
    gop.data.recv_message.recv_message = &s->recv_buf;
    pthread_mutex_lock(&s->mu);
    s->refs++;
    pthread_mutex_unlock(&s->mu);
    if (grpc_call_start_batch(s->call, &gop, 1, &s->recv_tag, NULL) != GRPC_CALL_OK) {
        pthread_mutex_lock(&s->mu);
        s->refs--;
        pthread_mutex_unlock(&s->mu);
        grpc_call_cancel(s->call, NULL);
    }
}

static void on_recv(client_tag *t, int ok)
{
    client_stream *s = ((stag *)t)->s;
    grpc_byte_buffer *buf = s->recv_buf;
    s->recv_buf = NULL;
    Orderkv__V1__BatchResponse *resp = NULL;
    if (ok && buf) {
        grpc_byte_buffer_reader r;
        if (grpc_byte_buffer_reader_init(&r, buf)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
            resp = orderkv__v1__batch_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                       GRPC_SLICE_START_PTR(all));
            grpc_slice_unref(all);
        }
    }
    if (buf)
        grpc_byte_buffer_destroy(buf);
    if (resp) {
        for (size_t i = 0; i < resp->n_replies; i++) {
            const Orderkv__V1__BatchReply *r = resp->replies[i];
            pthread_mutex_lock(&s->mu);
            client_op *op = sent_take(s, r->id);
            pthread_mutex_unlock(&s->mu);
            if (!op)
                continue;   /* its attempt expired meanwhile */
            client_answer ans = { (grpc_status_code)r->status, r->message ? r->message : "",
                                  r->body.data, r->body.len, r->has_body };
            client_op_answered(op, &ans);
        }
        orderkv__v1__batch_response__free_unpacked(resp, NULL);
        post_recv(s);
    } else {
        /* The server ended the stream, or sent something unreadable: end
         * the call; its ops come back at the status. */
        grpc_call_cancel(s->call, NULL);
    }
    pthread_mutex_lock(&s->mu);
    stream_unref_locked_and_unlock(s);
}

/* The call ended: every op still in the stream goes back to the core. */
static void on_status(client_tag *t, int ok)
{
    (void)ok;
    client_stream *s = ((stag *)t)->s;
    okv_client *c = s->c;
    int slot_ref = 0;
    pthread_mutex_lock(&c->stream_mu);
    if (c->streams[s->idx][s->slot] == s) {
        c->streams[s->idx][s->slot] = NULL;
        slot_ref = 1;
    }
    pthread_mutex_unlock(&c->stream_mu);
    /* A node that predates the batched stream: its calls go unary from now
     * on (client_unary_async.c); nothing reached it. */
    int unimplemented = !s->open && s->status == GRPC_STATUS_UNIMPLEMENTED;
    if (unimplemented)
        atomic_store(&c->no_batch[s->idx], 1);
    pthread_mutex_lock(&s->mu);
    s->dead = 1;
    client_op *pend = s->pend_head, *sent = s->sent_head;
    s->pend_head = s->pend_tail = NULL;
    s->sent_head = NULL;
    memset(s->buckets, 0, sizeof s->buckets);
    if (slot_ref)
        s->refs--;
    pthread_mutex_unlock(&s->mu);
    while (pend) {
        client_op *next = pend->snext;
        pend->snext = pend->sprev = NULL;
        if (unimplemented)
            client_op_resend(pend);   /* now as a unary call */
        else
            client_op_stream_failed(pend, 0);
        pend = next;
    }
    while (sent) {
        client_op *next = sent->snext;
        sent->snext = sent->sprev = sent->hnext = NULL;
        client_op_stream_failed(sent, 1);
        sent = next;
    }
    pthread_mutex_lock(&s->mu);
    stream_unref_locked_and_unlock(s);
}

/* ---- streams --------------------------------------------------------------- */

/* A new stream to addrs[idx] on connection slot; stream_mu held. */
static client_stream *stream_new(okv_client *c, size_t idx, unsigned slot)
{
    client_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->c = c;
    s->idx = idx;
    s->slot = slot;
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->md_in);
    grpc_metadata_array_init(&s->trailers);
    pthread_mutex_init(&s->mu, NULL);
    stag *tags[] = { &s->md_tag, &s->send_tag, &s->recv_tag, &s->status_tag };
    void (*fns[])(client_tag *, int) = { on_open, on_sent, on_recv, on_status };
    for (size_t i = 0; i < 4; i++) {
        tags[i]->t.fn = fns[i];
        tags[i]->s = s;
    }
    s->call = grpc_channel_create_registered_call(
        c->channels[idx][slot], NULL, GRPC_PROPAGATE_DEFAULTS, c->async_cq,
        c->methods[idx][slot][M_BATCH], gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    /* The status batch goes first and alone: if it could not start, no
     * other batch refers to s and it can be freed here. Every later ref is
     * taken under mu, because a completion (on_open when the node is down)
     * can run on another completion-queue thread as soon as its batch has
     * started, and an unlocked refs++ racing its refs-- loses an update:
     * the stream was freed under an on_recv still to come (CI's
     * sequential x kill-leader run, SIGSEGV in on_recv). */
    s->refs = 2;   /* the slot's and the status batch's */
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &s->trailers;
    ops[0].data.recv_status_on_client.status = &s->status;
    ops[0].data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, ops, 1, &s->status_tag, NULL) != GRPC_CALL_OK) {
        /* Cannot happen with a fresh call; without a status event the
         * stream could never end, so refuse it. */
        grpc_call_cancel(s->call, NULL);
        grpc_call_unref(s->call);
        grpc_metadata_array_destroy(&s->md_in);
        grpc_metadata_array_destroy(&s->trailers);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    client_auth_md(c, &ops[0]);
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->md_in;
    pthread_mutex_lock(&s->mu);
    s->refs++;
    if (grpc_call_start_batch(s->call, ops, 2, &s->md_tag, NULL) != GRPC_CALL_OK)
        s->refs--;
    pthread_mutex_unlock(&s->mu);
    c->streams_live++;
    post_recv(s);
    return s;
}

int client_stream_enqueue(okv_client *c, size_t idx, client_op *op)
{
    if (atomic_load(&c->no_batch[idx]))
        return client_unary_start(c, idx, op);
    unsigned slot = atomic_fetch_add(&c->next_stream, 1) % CLIENT_STREAMS_PER_NODE;
    pthread_mutex_lock(&c->stream_mu);
    client_stream *s = c->closing ? NULL : c->streams[idx][slot];
    if (!s && !c->closing) {
        s = stream_new(c, idx, slot);
        c->streams[idx][slot] = s;
    }
    if (!s) {
        pthread_mutex_unlock(&c->stream_mu);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    pthread_mutex_unlock(&c->stream_mu);
    op->stream = s;
    op->sent = 0;
    op->item_id = atomic_fetch_add(&next_item_id, 1);
    op->snext = NULL;
    op->sprev = s->pend_tail;
    if (s->pend_tail)
        s->pend_tail->snext = op;
    else
        s->pend_head = op;
    s->pend_tail = op;
    if (!client_corked()) {
        start_send_locked(s);
    } else {
        size_t i = 0;
        while (i < ncorked && corked_streams[i] != s)
            i++;
        if (i == ncorked && ncorked < MAX_CORKED) {
            corked_streams[ncorked++] = s;
            s->refs++;
        } else if (i == ncorked) {
            start_send_locked(s);   /* too many nodes to remember: send now */
        }
    }
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void client_streams_flush_corked(void)
{
    for (size_t i = 0; i < ncorked; i++) {
        client_stream *s = corked_streams[i];
        pthread_mutex_lock(&s->mu);
        start_send_locked(s);
        stream_unref_locked_and_unlock(s);
    }
    ncorked = 0;
}

/* Takes the expired ops of one pending or sent list onto *out. */
static void take_expired(client_stream *s, int sent, int64_t now, client_op **out)
{
    client_op *op = sent ? s->sent_head : s->pend_head;
    while (op) {
        client_op *next = op->snext;
        int64_t dl = sent ? op->sent_deadline_ms : op->unsent_deadline_ms;
        if (now >= dl) {
            if (sent) {
                sent_remove(s, op);
            } else {
                if (op->sprev)
                    op->sprev->snext = op->snext;
                else
                    s->pend_head = op->snext;
                if (op->snext)
                    op->snext->sprev = op->sprev;
                else
                    s->pend_tail = op->sprev;
            }
            op->sent = sent;
            op->tnext = *out;
            *out = op;
        }
        op = next;
    }
}

void client_streams_sweep(okv_client *c, int64_t now)
{
    client_op *expired = NULL;
    pthread_mutex_lock(&c->stream_mu);
    size_t n = client_naddrs(c);
    for (size_t i = 0; i < n; i++)
        for (unsigned k = 0; k < CLIENT_STREAMS_PER_NODE; k++) {
            client_stream *s = c->streams[i][k];
            if (!s)
                continue;
            pthread_mutex_lock(&s->mu);
            client_op *before = expired;
            take_expired(s, 0, now, &expired);
            int stuck = !s->open && expired != before;
            take_expired(s, 1, now, &expired);
            /* A stream the server never answered (a hung node, a connect
             * that hangs): start afresh next time. */
            if (stuck)
                grpc_call_cancel(s->call, NULL);
            pthread_mutex_unlock(&s->mu);
        }
    pthread_mutex_unlock(&c->stream_mu);
    while (expired) {
        client_op *next = expired->tnext;
        expired->tnext = NULL;
        client_op_expired(expired, expired->sent);
        expired = next;
    }
}

void client_streams_shutdown(okv_client *c)
{
    pthread_mutex_lock(&c->stream_mu);
    c->closing = 1;
    for (size_t i = 0; i < CLIENT_MAX_ADDRS; i++)
        for (unsigned k = 0; k < CLIENT_STREAMS_PER_NODE; k++)
            if (c->streams[i][k])
                grpc_call_cancel(c->streams[i][k]->call, NULL);
    while (c->streams_live > 0)
        pthread_cond_wait(&c->stream_cv, &c->stream_mu);
    pthread_mutex_unlock(&c->stream_mu);
}

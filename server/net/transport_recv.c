/*
 * transport_recv.c — the transport's incoming streams (transport_int.h).
 */
#include "transport_int.h"


#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "raft_codec.h"

/* ---- incoming streams (server side) ------------------------------------ *
 *
 * A stream arrives on an rpc_server queue thread; its events run on those
 * threads. The server side only receives: SEND_INITIAL_METADATA (so the
 * sender sees the stream established), RECV_CLOSE_ON_SERVER and one
 * RECV_MESSAGE are outstanding from the start; each received frame is
 * decoded and delivered before the next RECV is posted, so one sender's
 * messages are delivered in order. A NULL message is the sender's
 * half-close: we answer with status OK. The server's shutdown cancels the
 * call; the last completing batch releases it and reports
 * rpc_server_stream_done.
 */
struct sstream {
    rpc_tag md_tag, recv_tag, close_tag, status_tag;
    transport *t;
    rpc_server *srv;
    grpc_call *call;
    grpc_byte_buffer *recv_buf;
    int cancelled;
    atomic_int pending;
    atomic_int closed;
    /* The chunked message being rebuilt (recv handler only). */
    struct peer *r_peer;
    uint64_t r_group;
    uint8_t *r_buf;
    size_t r_total, r_got;
};

#define SS_OF(tagp, member) ((struct sstream *)((char *)(tagp) - offsetof(struct sstream, member)))

static void reasm_reset(struct sstream *ss, int abandoned)
{
    struct peer *p = ss->r_peer;
    if (!p)
        return;
    free(ss->r_buf);
    pthread_mutex_lock(&p->mu);
    p->reasm_bytes -= ss->r_total;
    if (abandoned)
        p->st.chunk_drops++;
    pthread_mutex_unlock(&p->mu);
    ss->r_peer = NULL;
    ss->r_buf = NULL;
    ss->r_total = ss->r_got = 0;
}

static void ss_unref(struct sstream *ss)
{
    if (atomic_fetch_sub(&ss->pending, 1) != 1)
        return;
    transport *t = ss->t;
    rpc_server *srv = ss->srv;
    reasm_reset(ss, ss->r_peer != NULL);
    if (ss->recv_buf)
        grpc_byte_buffer_destroy(ss->recv_buf);
    grpc_call_unref(ss->call);
    free(ss);
    atomic_fetch_sub(&t->live_sstreams, 1);
    rpc_server_stream_done(srv);   /* last: srv may be freed right after */
}

/* Counts a refused frame and logs the 1st, 2nd, 4th, 8th, ... of them. */
__attribute__((format(printf, 3, 4)))
static void refuse(transport *t, struct peer *p, const char *fmt, ...)
{
    uint64_t n;
    if (p) {
        pthread_mutex_lock(&p->mu);
        n = ++p->st.rejected_frames;
        pthread_mutex_unlock(&p->mu);
    } else {
        n = atomic_fetch_add(&t->rejected_frames, 1) + 1;
    }
    if ((n & (n - 1)) != 0 || !t->opt.log || t->opt.log_level < TRANSPORT_LOG_WARN)
        return;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    transport_logf(t, TRANSPORT_LOG_WARN, "frame refused (%llu so far%s): %s", (unsigned long long)n,
         p ? " from this peer" : "", why);
}

/* Counts a record whose messages do not decode (the rest of the frame is
 * still delivered) and logs the 1st, 2nd, 4th, ... of them. */
static void decode_error(transport *t, struct peer *p, uint64_t group, const char *what)
{
    pthread_mutex_lock(&p->mu);
    uint64_t n = ++p->st.decode_errors;
    pthread_mutex_unlock(&p->mu);
    if ((n & (n - 1)) == 0)
        transport_logf(t, TRANSPORT_LOG_WARN, "node %llu group %llu: %s (%llu so far); dropped",
             (unsigned long long)p->id, (unsigned long long)group, what, (unsigned long long)n);
}

static void deliver(transport *t, struct peer *p, uint64_t group, const uint8_t *b, size_t len,
                    uint64_t *msgs)
{
    struct raft_message m;
    if (raft_message_decode(b, len, &m) != RAFT_OK) {
        decode_error(t, p, group, "raft message does not decode");
        return;
    }
    (*msgs)++;
    t->opt.on_message(t->opt.on_message_arg, p->id, group, &m);
}

/* One HEARTBEATS record: checked whole before any entry is delivered, then
 * each entry is handed over as the raft_message it was sent as (from and
 * to are the frame's nodes: the sender only compacts messages between
 * them). */
static void on_heartbeats(transport *t, struct peer *p, uint64_t group, const uint8_t *b,
                          size_t len, uint64_t *msgs, uint64_t *hbs)
{
    int ok = len >= TRANSPORT_HBS_HDR;
    uint32_t n = ok ? get_u32(b) : 0;
    size_t body = ok ? len - TRANSPORT_HBS_HDR : 0;
    ok = ok && body % TRANSPORT_HB_ENTRY == 0 && body / TRANSPORT_HB_ENTRY == n;
    const uint8_t *e = b + TRANSPORT_HBS_HDR;
    for (uint32_t i = 0; ok && i < n; i++, e += TRANSPORT_HB_ENTRY)
        ok = (e[8] == RAFT_MSG_HEARTBEAT || e[8] == RAFT_MSG_HEARTBEAT_RESP) && e[9] <= 1;
    if (!ok) {
        decode_error(t, p, group, "HEARTBEATS record is malformed");
        return;
    }
    e = b + TRANSPORT_HBS_HDR;
    for (uint32_t i = 0; i < n; i++, e += TRANSPORT_HB_ENTRY) {
        struct raft_message m;
        memset(&m, 0, sizeof m);
        m.type = e[8];
        m.reject = e[9];
        m.from = p->id;
        m.to = t->opt.node_id;
        m.term = get_u64(e + 10);
        m.commit = get_u64(e + 18);
        m.ctx = get_u64(e + 26);
        t->opt.on_message(t->opt.on_message_arg, p->id, get_u64(e), &m);
    }
    *msgs += n;
    *hbs += n;
}

/* One CHUNK record: rebuilds the message from consecutive pieces with
 * bounded memory (max_reassembly_bytes per sending peer). */
static void on_chunk(struct sstream *ss, struct peer *p, uint64_t group, const uint8_t *b,
                     size_t len, uint64_t *msgs)
{
    transport *t = ss->t;
    uint64_t total = get_u64(b), off = get_u64(b + 8);
    const uint8_t *data = b + TRANSPORT_CHUNK_HDR;
    size_t n = len - TRANSPORT_CHUNK_HDR;
    if (off == 0) {
        if (ss->r_peer)
            reasm_reset(ss, 1);   /* the previous one never completed */
        if (total == 0 || n > total || total > t->opt.max_reassembly_bytes) {
            pthread_mutex_lock(&p->mu);
            p->st.chunk_drops++;
            pthread_mutex_unlock(&p->mu);
            transport_logf(t, TRANSPORT_LOG_WARN, "node %llu group %llu: chunked message of %llu bytes "
                                        "refused (limit %zu)",
                 (unsigned long long)p->id, (unsigned long long)group, (unsigned long long)total,
                 t->opt.max_reassembly_bytes);
            return;
        }
        pthread_mutex_lock(&p->mu);
        int over = p->reasm_bytes + total > t->opt.max_reassembly_bytes;
        if (over)
            p->st.chunk_drops++;
        else
            p->reasm_bytes += total;
        pthread_mutex_unlock(&p->mu);
        if (over) {
            transport_logf(t, TRANSPORT_LOG_WARN, "node %llu: reassembly memory limit %zu reached; "
                                        "chunked message dropped",
                 (unsigned long long)p->id, t->opt.max_reassembly_bytes);
            return;
        }
        ss->r_peer = p;
        ss->r_group = group;
        ss->r_total = (size_t)total;
        ss->r_got = 0;
        ss->r_buf = malloc((size_t)total);
        if (!ss->r_buf) {
            reasm_reset(ss, 1);
            return;
        }
    }
    if (!ss->r_peer)
        return;   /* the rest of a message already counted as dropped */
    if (ss->r_peer != p || ss->r_group != group || ss->r_total != total || off != ss->r_got ||
        n > ss->r_total - ss->r_got) {
        reasm_reset(ss, 1);
        return;
    }
    memcpy(ss->r_buf + ss->r_got, data, n);
    ss->r_got += n;
    if (ss->r_got == ss->r_total) {
        deliver(t, p, group, ss->r_buf, ss->r_total, msgs);
        reasm_reset(ss, 0);
    }
}

/* Checks a frame completely before delivering anything from it. */
static void on_frame(struct sstream *ss, const uint8_t *b, size_t len)
{
    transport *t = ss->t;
    if (len < TRANSPORT_FRAME_HDR || memcmp(b, TRANSPORT_MAGIC, 4) != 0 ||
        b[4] != TRANSPORT_VERSION) {
        refuse(t, NULL, "bad magic or version, or shorter than a header (%zu bytes)", len);
        return;
    }
    uint64_t cluster = get_u64(b + 8), from = get_u64(b + 16), to = get_u64(b + 24);
    uint32_t count = get_u32(b + 32);
    if (cluster != t->opt.cluster_id) {
        refuse(t, NULL, "cluster id %llu from node %llu, ours is %llu",
               (unsigned long long)cluster, (unsigned long long)from,
               (unsigned long long)t->opt.cluster_id);
        return;
    }
    struct peer *p = transport_find_peer(t, from);
    if (!p) {
        refuse(t, NULL, "from node %llu, which is not in the peer table",
               (unsigned long long)from);
        return;
    }
    if (to != t->opt.node_id) {
        refuse(t, p, "addressed to node %llu", (unsigned long long)to);
        return;
    }
    size_t off = TRANSPORT_FRAME_HDR;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < TRANSPORT_REC_HDR) {
            refuse(t, p, "truncated record header (record %u of %u)", i, count);
            return;
        }
        uint8_t kind = b[off];
        size_t rlen = get_u32(b + off + 9);
        if (kind < TRANSPORT_REC_MESSAGE || kind > TRANSPORT_REC_HEARTBEATS ||
            len - off - TRANSPORT_REC_HDR < rlen ||
            (kind == TRANSPORT_REC_CHUNK && rlen <= TRANSPORT_CHUNK_HDR)) {
            refuse(t, p, "bad record %u of %u (kind %u, %zu bytes)", i, count, kind, rlen);
            return;
        }
        off += TRANSPORT_REC_HDR + rlen;
    }
    if (off != len) {
        refuse(t, p, "%zu bytes after the last record", len - off);
        return;
    }
    uint64_t msgs = 0, hbs = 0;
    off = TRANSPORT_FRAME_HDR;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t kind = b[off];
        uint64_t group = get_u64(b + off + 1);
        size_t rlen = get_u32(b + off + 9);
        const uint8_t *rec = b + off + TRANSPORT_REC_HDR;
        if (kind == TRANSPORT_REC_MESSAGE)
            deliver(t, p, group, rec, rlen, &msgs);
        else if (kind == TRANSPORT_REC_CHUNK)
            on_chunk(ss, p, group, rec, rlen, &msgs);
        else
            on_heartbeats(t, p, group, rec, rlen, &msgs, &hbs);
        off += TRANSPORT_REC_HDR + rlen;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pthread_mutex_lock(&p->mu);
    p->st.last_recv_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    p->st.frames_recv++;
    p->st.bytes_recv += len;
    p->st.msgs_recv += msgs;
    p->st.heartbeats_recv += hbs;
    pthread_mutex_unlock(&p->mu);
}

static void ss_start(struct sstream *ss, grpc_op *ops, size_t n, rpc_tag *tag)
{
    atomic_fetch_add(&ss->pending, 1);
    if (grpc_call_start_batch(ss->call, ops, n, tag, NULL) != GRPC_CALL_OK)
        ss_unref(ss);   /* never the last reference: the caller holds one */
}

static void ss_start_recv(struct sstream *ss)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &ss->recv_buf;
    ss_start(ss, &op, 1, &ss->recv_tag);
}

static void on_ss_recv(rpc_tag *tag, int ok)
{
    struct sstream *ss = SS_OF(tag, recv_tag);
    grpc_byte_buffer *bb = ss->recv_buf;
    ss->recv_buf = NULL;
    if (ok && bb) {
        grpc_byte_buffer_reader rd;
        if (grpc_byte_buffer_reader_init(&rd, bb)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
            on_frame(ss, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
            grpc_slice_unref(all);
        } else {
            refuse(ss->t, NULL, "message could not be decompressed");
        }
        grpc_byte_buffer_destroy(bb);
        if (!atomic_load(&ss->closed) && !rpc_server_is_shutting_down(ss->srv))
            ss_start_recv(ss);
    } else if (ok) {
        /* Half-close: the sender is done; finish the call with OK. */
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
        op.data.send_status_from_server.status = GRPC_STATUS_OK;
        ss_start(ss, &op, 1, &ss->status_tag);
    } else if (bb) {
        grpc_byte_buffer_destroy(bb);
    }
    ss_unref(ss);
}

static void on_ss_close(rpc_tag *tag, int ok)
{
    struct sstream *ss = SS_OF(tag, close_tag);
    atomic_store(&ss->closed, 1);
    ss_unref(ss);
}

static void on_ss_md(rpc_tag *tag, int ok) { ss_unref(SS_OF(tag, md_tag)); }

static void on_ss_status(rpc_tag *tag, int ok) { ss_unref(SS_OF(tag, status_tag)); }

void transport_on_stream(void *arg, rpc_server *srv, grpc_call *call, const rpc_identity *id)
{
    (void)id;   /* checked by the server: only nodes open this stream */
    transport *t = arg;
    struct sstream *ss = calloc(1, sizeof *ss);
    if (!ss) {
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        rpc_server_stream_done(srv);
        return;
    }
    ss->md_tag.fn = on_ss_md;
    ss->recv_tag.fn = on_ss_recv;
    ss->close_tag.fn = on_ss_close;
    ss->status_tag.fn = on_ss_status;
    ss->t = t;
    ss->srv = srv;
    ss->call = call;
    atomic_fetch_add(&t->live_sstreams, 1);
    atomic_store(&ss->pending, 1);   /* ours until the batches are started */
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &ss->cancelled;
    ss_start(ss, &op, 1, &ss->close_tag);
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    ss_start(ss, &op, 1, &ss->md_tag);
    ss_start_recv(ss);
    ss_unref(ss);
}

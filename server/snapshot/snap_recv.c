/*
 * snap_recv.c — see snap_recv.h.
 *
 * Design notes
 * ------------
 * Two halves. The session (snap_rx) is the stream's logic and knows no
 * gRPC. The call side (struct rstream) follows the transport's server
 * streams: RECV_CLOSE_ON_SERVER, SEND_INITIAL_METADATA and one RECV_MESSAGE
 * outstanding from the start (GRPC-CORE-NOTES pitfall 8). A completed RECV
 * hands its message to the receiver's worker thread, which feeds the
 * session and then either posts the next RECV or ends the call with
 * SEND_STATUS_FROM_SERVER. A NULL message is the sender's half-close.
 *
 * Invariants:
 *   1. Only the worker touches a stream's session, and only while the
 *      stream holds a reference for that job; a stream has at most one job
 *      queued (one RECV outstanding at a time).
 *   2. A stream is freed when its last reference (one per outstanding batch,
 *      one per queued job, one held by whoever is starting batches) is
 *      dropped; then its call is released and rpc_server_stream_done told.
 *   3. A session holds a slot (group, sender) from a valid header until it
 *      is delivered or fails; slots bound the streams at once and stop two
 *      streams of one snapshot racing.
 */
#define _POSIX_C_SOURCE 200809L
#include "thread_name.h"
#include "snap_recv.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_snapshot.h"
#include "rpc_stream.h"
#include "snap_format.h"

#define MAX_SLOTS 64

struct rstream;

struct snap_recv {
    struct snap_recv_options o;
    rpc_server *srv;
    char root[4096];
    pthread_mutex_t mu;             /* slots, seq, stats, the work queue */
    pthread_cond_t cv;
    struct { uint64_t group, from; int used; } slots[MAX_SLOTS];
    uint64_t seq;                   /* names dirs uniquely (fsm_snapshot_dir_name) */
    struct snap_recv_stats st;
    struct rstream *work_head, *work_tail;
    int stopping;
    pthread_t worker;
    int has_worker;
    atomic_int live_streams;
};

__attribute__((format(printf, 3, 4)))
static void rlog(snap_recv *r, int level, const char *fmt, ...)
{
    if (!r->o.log)
        return;
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->o.log(r->o.log_ctx, level, msg);
}

/* ---- the session ------------------------------------------------------------ */

enum rx_state { RX_HEADER, RX_CHUNKS, RX_TRAILER_SEEN, RX_DELIVERED, RX_FAILED };

struct snap_rx {
    snap_recv *r;
    enum rx_state state;
    struct snap_header h;
    int slot;                       /* -1: none held */
    char name[FSM_SNAPSHOT_NAME_MAX + 1];
    char dir[4300];
    fsm_snapshot_writer *w;
    uint32_t chunks;
    uint64_t records, bytes, sum;
};

int snap_rx_new(snap_rx **out, snap_recv *r)
{
    snap_rx *rx = calloc(1, sizeof *rx);
    *out = rx;
    if (!rx)
        return OKV_ENOMEM;
    rx->r = r;
    rx->slot = -1;
    rx->sum = SNAP_CHECKSUM_INIT;
    return OKV_OK;
}

static void release_slot(snap_rx *rx)
{
    if (rx->slot < 0)
        return;
    snap_recv *r = rx->r;
    pthread_mutex_lock(&r->mu);
    r->slots[rx->slot].used = 0;
    r->st.active--;
    pthread_mutex_unlock(&r->mu);
    rx->slot = -1;
}

/* Drops whatever the stream built: the partition was never touched. */
static void discard(snap_rx *rx)
{
    fsm_snapshot_writer_free(rx->w);
    rx->w = NULL;
    if (rx->dir[0] && rx->state != RX_DELIVERED) {
        okv_error e;
        if (fsm_snapshot_remove_dir(rx->dir, &e))
            rlog(rx->r, 1, "%s", e.msg);
        rx->dir[0] = '\0';
    }
    release_slot(rx);
}

static int refuse(snap_rx *rx, int code)
{
    discard(rx);
    rx->state = RX_FAILED;
    return code;
}

/* Takes the (group, sender) slot; OKV_EUNAVAILABLE if taken or all are. */
static int take_slot(snap_rx *rx, okv_error *err)
{
    snap_recv *r = rx->r;
    int free_slot = -1, dup = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (r->slots[i].used && r->slots[i].group == rx->h.group &&
            r->slots[i].from == rx->h.from)
            dup = 1;
        else if (!r->slots[i].used && free_slot < 0 && i < r->o.max_streams)
            free_slot = i;
    }
    if (!dup && free_slot >= 0) {
        r->slots[free_slot].used = 1;
        r->slots[free_slot].group = rx->h.group;
        r->slots[free_slot].from = rx->h.from;
        r->st.active++;
        rx->slot = free_slot;
        fsm_snapshot_dir_name(rx->name, sizeof rx->name, rx->h.group, rx->h.meta.index,
                              rx->h.from, ++r->seq);
    }
    pthread_mutex_unlock(&r->mu);
    if (dup)
        return okv_error_set(err, OKV_EUNAVAILABLE,
                             "a snapshot of group %llu from node %llu is already arriving",
                             (unsigned long long)rx->h.group, (unsigned long long)rx->h.from);
    if (free_slot < 0)
        return okv_error_set(err, OKV_EUNAVAILABLE,
                             "already receiving %d snapshots; try again later",
                             r->o.max_streams);
    return OKV_OK;
}

static int on_header(snap_rx *rx, const uint8_t *m, size_t len, okv_error *err)
{
    snap_recv *r = rx->r;
    if (snap_header_decode(m, len, &rx->h))
        return okv_error_set(err, OKV_EINVAL, "the stream does not begin with a snapshot header "
                                              "(kind %d, %zu bytes)", snap_kind_of(m, len), len);
    if (rx->h.cluster_id != r->o.cluster_id)
        return okv_error_set(err, OKV_EINVAL,
                             "snapshot from cluster %016llx refused: this node belongs to "
                             "cluster %016llx",
                             (unsigned long long)rx->h.cluster_id,
                             (unsigned long long)r->o.cluster_id);
    if (rx->h.to != r->o.node_id)
        return okv_error_set(err, OKV_EINVAL, "snapshot for node %llu refused: this is node %llu",
                             (unsigned long long)rx->h.to, (unsigned long long)r->o.node_id);
    if (!r->o.known_peer || !r->o.known_peer(r->o.ctx, rx->h.from))
        return okv_error_set(err, OKV_EINVAL, "snapshot from node %llu refused: not a member",
                             (unsigned long long)rx->h.from);
    if (rx->h.meta.index == 0 || rx->h.meta.term == 0 || rx->h.meta.conf.n_voters == 0)
        return okv_error_set(err, OKV_EINVAL, "snapshot header without an index, a term or "
                                              "voters");
    int rc = take_slot(rx, err);
    if (rc)
        return rc;
    snprintf(rx->dir, sizeof rx->dir, "%s/%s", r->root, rx->name);
    /* The name is new (a per-process counter; the root is emptied at
     * start), so whatever exists at rx->dir after a failure is ours. */
    rc = fsm_snapshot_writer_new(&rx->w, r->o.e, rx->h.group, rx->dir, err);
    if (rc)
        return rc;
    rx->state = RX_CHUNKS;
    return OKV_OK;
}

static int on_chunk(snap_rx *rx, const uint8_t *m, size_t len, okv_error *err)
{
    snap_chunk_reader cr;
    if (snap_chunk_open(&cr, m, len))
        return okv_error_set(err, OKV_ECORRUPT, "malformed chunk header");
    if (cr.seq != rx->chunks)
        return okv_error_set(err, OKV_ECORRUPT, "chunk %u arrived where chunk %u was due",
                             (unsigned)cr.seq, (unsigned)rx->chunks);
    struct snap_record rec;
    int k;
    while ((k = snap_chunk_next(&cr, &rec)) == 1) {
        int rc = fsm_snapshot_writer_add(rx->w, rec.cf, rec.key, rec.key_len, rec.val,
                                         rec.val_len, err);
        if (rc)
            return rc;
    }
    if (k < 0)
        return okv_error_set(err, OKV_ECORRUPT, "chunk %u is malformed (record %u of %u)",
                             (unsigned)cr.seq, (unsigned)cr.seen, (unsigned)cr.nrec);
    rx->chunks++;
    rx->records += cr.nrec;
    rx->bytes += len;
    rx->sum = snap_checksum(rx->sum, m, len);
    return OKV_OK;
}

static int on_trailer(snap_rx *rx, const uint8_t *m, size_t len, okv_error *err)
{
    struct snap_trailer t;
    if (snap_trailer_decode(m, len, &t))
        return okv_error_set(err, OKV_ECORRUPT, "malformed trailer");
    if (t.chunks != rx->chunks || t.records != rx->records || t.bytes != rx->bytes ||
        t.checksum != rx->sum)
        return okv_error_set(err, OKV_ECORRUPT,
                             "stream damaged: the trailer says %u chunks, %llu records, %llu "
                             "bytes, checksum %016llx; arrived %u, %llu, %llu, %016llx",
                             (unsigned)t.chunks, (unsigned long long)t.records,
                             (unsigned long long)t.bytes, (unsigned long long)t.checksum,
                             (unsigned)rx->chunks, (unsigned long long)rx->records,
                             (unsigned long long)rx->bytes, (unsigned long long)rx->sum);
    rx->state = RX_TRAILER_SEEN;
    return OKV_OK;
}

int snap_rx_feed(snap_rx *rx, const uint8_t *m, size_t len, okv_error *err)
{
    okv_error_clear(err);
    if (rx->state == RX_FAILED || rx->state == RX_DELIVERED)
        return okv_error_set(err, OKV_EINVAL, "the stream has already ended");
    if (len > SNAP_MAX_MESSAGE)
        return refuse(rx, okv_error_set(err, OKV_EINVAL, "a %zu-byte message is over the "
                                                         "limit of %zu", len,
                                        (size_t)SNAP_MAX_MESSAGE));
    int kind = snap_kind_of(m, len), rc;
    if (rx->state == RX_HEADER)
        rc = on_header(rx, m, len, err);
    else if (rx->state == RX_CHUNKS && kind == SNAP_CHUNK)
        rc = on_chunk(rx, m, len, err);
    else if (rx->state == RX_CHUNKS && kind == SNAP_TRAILER)
        rc = on_trailer(rx, m, len, err);
    else
        rc = okv_error_set(err, OKV_EINVAL, "unexpected message (kind %d) %s", kind,
                           rx->state == RX_TRAILER_SEEN ? "after the trailer" : "in the stream");
    return rc ? refuse(rx, rc) : OKV_OK;
}

int snap_rx_end(snap_rx *rx, okv_error *err)
{
    okv_error_clear(err);
    if (rx->state == RX_FAILED || rx->state == RX_DELIVERED)
        return okv_error_set(err, OKV_EINVAL, "the stream has already ended");
    if (rx->state != RX_TRAILER_SEEN)
        return refuse(rx, okv_error_set(err, OKV_ECORRUPT,
                                        "the stream ended before its trailer (%u chunks arrived)",
                                        (unsigned)rx->chunks));
    int rc = fsm_snapshot_writer_finish(rx->w, err);
    if (rc)
        return refuse(rx, rc);
    fsm_snapshot_writer_free(rx->w);
    rx->w = NULL;
    uint8_t *desc = malloc(FSM_SNAPSHOT_DESC_MAX);
    if (!desc)
        return refuse(rx, okv_error_set(err, OKV_ENOMEM, "out of memory"));
    struct raft_message msg;
    memset(&msg, 0, sizeof msg);
    msg.type = RAFT_MSG_SNAPSHOT;
    msg.from = rx->h.from;
    msg.to = rx->h.to;
    msg.term = rx->h.term;
    msg.snapshot.meta = rx->h.meta;
    msg.snapshot.data = desc;
    msg.snapshot.len = fsm_snapshot_desc_encode(desc, FSM_SNAPSHOT_RECEIVED, rx->name);
    snap_recv *r = rx->r;
    if (!r->o.deliver || r->o.deliver(r->o.ctx, rx->h.group, &msg) != 0) {
        free(desc);
        return refuse(rx, okv_error_set(err, OKV_EUNAVAILABLE,
                                        "this node's raft store is not running"));
    }
    rx->state = RX_DELIVERED;   /* the dir is the raft store's now */
    release_slot(rx);
    pthread_mutex_lock(&r->mu);
    r->st.delivered++;
    r->st.bytes += rx->bytes;
    pthread_mutex_unlock(&r->mu);
    rlog(r, 2, "group %u/%u: snapshot at index %llu from node %llu arrived: %llu records, "
               "%llu bytes in %u chunks (%s)",
         (unsigned)(rx->h.group >> 32), (unsigned)rx->h.group,
         (unsigned long long)rx->h.meta.index, (unsigned long long)rx->h.from,
         (unsigned long long)rx->records, (unsigned long long)rx->bytes, (unsigned)rx->chunks,
         rx->name);
    return OKV_OK;
}

void snap_rx_free(snap_rx *rx)
{
    if (!rx)
        return;
    discard(rx);
    free(rx);
}

/* ---- the call --------------------------------------------------------------- */

typedef struct rstream {
    rpc_tag md_tag, recv_tag, close_tag, status_tag;
    snap_recv *r;
    rpc_server *srv;
    grpc_call *call;
    grpc_byte_buffer *recv_buf;
    int cancelled;
    atomic_int refs;
    /* the job handed to the worker (invariant 1) */
    struct rstream *next;
    grpc_byte_buffer *job_buf;
    int job_ok;
    /* worker only */
    snap_rx *rx;
    int ended;                      /* status sent or call broken */
    grpc_slice status_details;
    int has_details;
} rstream;

#define RS_OF(tagp, member) ((rstream *)((char *)(tagp) - offsetof(rstream, member)))

static void rs_unref(rstream *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    snap_recv *r = s->r;
    rpc_server *srv = s->srv;
    snap_rx_free(s->rx);
    if (s->recv_buf)
        grpc_byte_buffer_destroy(s->recv_buf);
    if (s->has_details)
        grpc_slice_unref(s->status_details);
    grpc_call_unref(s->call);
    free(s);
    atomic_fetch_sub(&r->live_streams, 1);
    rpc_server_stream_done(srv);   /* last: srv may be freed right after */
}

static void rs_start(rstream *s, grpc_op *ops, size_t n, rpc_tag *tag)
{
    atomic_fetch_add(&s->refs, 1);
    if (grpc_call_start_batch(s->call, ops, n, tag, NULL) != GRPC_CALL_OK)
        rs_unref(s);   /* never the last reference: the caller holds one */
}

static void rs_start_recv(rstream *s)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv_buf;
    rs_start(s, &op, 1, &s->recv_tag);
}

static int grpc_status_of(int code)
{
    switch (code) {
    case OKV_OK: return GRPC_STATUS_OK;
    case OKV_EINVAL: return GRPC_STATUS_INVALID_ARGUMENT;
    case OKV_ECORRUPT: return GRPC_STATUS_DATA_LOSS;
    case OKV_EUNAVAILABLE: return GRPC_STATUS_UNAVAILABLE;
    case OKV_ENOMEM: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    default: return GRPC_STATUS_INTERNAL;
    }
}

/* Ends the call with a status (worker). */
static void rs_end(rstream *s, int code, const char *msg)
{
    s->ended = 1;
    s->status_details = grpc_slice_from_copied_string(code == OKV_OK ? "" : msg);
    s->has_details = 1;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = (grpc_status_code)grpc_status_of(code);
    op.data.send_status_from_server.status_details = &s->status_details;
    rs_start(s, &op, 1, &s->status_tag);
}

/* Worker: one completed RECV of s (invariant 1). */
static void rs_process(rstream *s)
{
    snap_recv *r = s->r;
    grpc_byte_buffer *bb = s->job_buf;
    s->job_buf = NULL;
    if (s->ended) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        return;
    }
    okv_error err;
    okv_error_clear(&err);
    int rc = OKV_OK, more = 0;
    if (!s->job_ok) {
        /* Cancelled or broken (the sender went away, the server stops). */
        s->ended = 1;
        if (bb)
            grpc_byte_buffer_destroy(bb);
        snap_rx_free(s->rx);
        s->rx = NULL;
        pthread_mutex_lock(&r->mu);
        r->st.refused++;
        pthread_mutex_unlock(&r->mu);
        return;
    }
    if (bb) {
        grpc_byte_buffer_reader rd;
        if (grpc_byte_buffer_reader_init(&rd, bb)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
            grpc_byte_buffer_reader_destroy(&rd);
            rc = snap_rx_feed(s->rx, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), &err);
            grpc_slice_unref(all);
        } else {
            rc = okv_error_set(&err, OKV_EINVAL, "a message could not be decompressed");
        }
        grpc_byte_buffer_destroy(bb);
        more = rc == OKV_OK;
    } else {
        rc = snap_rx_end(s->rx, &err);   /* half-close */
    }
    if (more) {
        rs_start_recv(s);
        return;
    }
    if (rc) {
        pthread_mutex_lock(&r->mu);
        r->st.refused++;
        pthread_mutex_unlock(&r->mu);
        rlog(r, 1, "snapshot stream refused: %s", err.msg);
    }
    rs_end(s, rc, err.msg);
}

static void *worker_main(void *arg)
{
    okv_thread_name("okv-snap-recv");
    snap_recv *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->work_head && !r->stopping)
            pthread_cond_wait(&r->cv, &r->mu);
        if (!r->work_head)
            break;
        rstream *s = r->work_head;
        r->work_head = s->next;
        if (!r->work_head)
            r->work_tail = NULL;
        pthread_mutex_unlock(&r->mu);
        rs_process(s);
        rs_unref(s);   /* the job's reference */
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Queue thread: a RECV completed; the worker takes it from here. */
static void on_recv(rpc_tag *tag, int ok)
{
    rstream *s = RS_OF(tag, recv_tag);
    snap_recv *r = s->r;
    s->job_buf = s->recv_buf;
    s->recv_buf = NULL;
    s->job_ok = ok;
    s->next = NULL;
    pthread_mutex_lock(&r->mu);   /* the batch's reference becomes the job's */
    if (r->work_tail)
        r->work_tail->next = s;
    else
        r->work_head = s;
    r->work_tail = s;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_close(rpc_tag *tag, int ok)
{
    (void)ok;
    rs_unref(RS_OF(tag, close_tag));
}

static void on_md(rpc_tag *tag, int ok)
{
    (void)ok;
    rs_unref(RS_OF(tag, md_tag));
}

static void on_status(rpc_tag *tag, int ok)
{
    (void)ok;
    rs_unref(RS_OF(tag, status_tag));
}

static void on_stream(void *arg, rpc_server *srv, grpc_call *call, const rpc_identity *id)
{
    (void)id;   /* checked by the server: only nodes open this stream */
    snap_recv *r = arg;
    rstream *s = calloc(1, sizeof *s);
    if (!s || snap_rx_new(&s->rx, r) != OKV_OK) {
        free(s);
        grpc_call_cancel(call, NULL);
        grpc_call_unref(call);
        rpc_server_stream_done(srv);
        return;
    }
    s->md_tag.fn = on_md;
    s->recv_tag.fn = on_recv;
    s->close_tag.fn = on_close;
    s->status_tag.fn = on_status;
    s->r = r;
    s->srv = srv;
    s->call = call;
    atomic_fetch_add(&r->live_streams, 1);
    pthread_mutex_lock(&r->mu);
    r->st.streams++;
    pthread_mutex_unlock(&r->mu);
    atomic_store(&s->refs, 1);   /* ours until the batches are started */
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &s->cancelled;
    rs_start(s, &op, 1, &s->close_tag);
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    rs_start(s, &op, 1, &s->md_tag);
    rs_start_recv(s);
    rs_unref(s);
}

/* ---- lifetime ------------------------------------------------------------- */

int snap_recv_new(snap_recv **out, rpc_server *srv, const struct snap_recv_options *o,
                  okv_error *err)
{
    *out = NULL;
    snap_recv *r = calloc(1, sizeof *r);
    if (!r)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    r->o = *o;
    if (r->o.max_streams <= 0)
        r->o.max_streams = 4;
    if (r->o.max_streams > MAX_SLOTS)
        r->o.max_streams = MAX_SLOTS;
    r->srv = srv;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (fsm_snapshot_root(o->e, r->root, sizeof r->root)) {
        snap_recv_free(r);
        return okv_error_set(err, OKV_EINVAL, "data dir path too long: %s", engine_dir(o->e));
    }
    if (srv) {
        if (pthread_create(&r->worker, NULL, worker_main, r) != 0) {
            snap_recv_free(r);
            return okv_error_set(err, OKV_EINTERNAL, "cannot start the snapshot receiver");
        }
        r->has_worker = 1;
        int rc = rpc_server_add_stream_method(srv, SNAP_METHOD, on_stream, r, err);
        if (rc) {
            snap_recv_free(r);
            return rc;
        }
    }
    *out = r;
    return OKV_OK;
}

void snap_recv_stats_get(snap_recv *r, struct snap_recv_stats *st)
{
    pthread_mutex_lock(&r->mu);
    *st = r->st;
    pthread_mutex_unlock(&r->mu);
}

void snap_recv_free(snap_recv *r)
{
    if (!r)
        return;
    if (atomic_load(&r->live_streams) > 0) {
        /* Its streams still point here: freeing would be a use after free. */
        rlog(r, 0, "snap_recv_free called while the rpc_server still has %d of its streams; "
                   "shut the server down first (receiver leaked)",
             atomic_load(&r->live_streams));
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->stopping = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->has_worker)
        pthread_join(r->worker, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

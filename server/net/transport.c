/*
 * transport.c — Raft messages between nodes over gRPC bidirectional streams.
 *
 * Design notes
 * ------------
 * Each peer has one outgoing stream (a client call on the peer's channel,
 * driven on the transport's own completion queue by one thread) and a queue
 * of frames. transport_send encodes a message straight into the queue's
 * last open frame (heartbeats into that frame's HEARTBEATS record, written
 * when the frame closes: invariant 6); transport_flush makes every queued
 * frame sendable; the stream sends the head frame, one SEND_MESSAGE at a
 * time, and the next one when that SEND completes. Incoming frames arrive
 * on server-side streams of the node's rpc_server ("incoming streams"
 * below) and are decoded there.
 *
 * Invariants (p = a peer; everything below is guarded by p->mu)
 *  1. At most one outgoing stream per peer (p->cs), and at most one SEND
 *     batch in flight on it (cs->send_busy) — GRPC-CORE-NOTES pitfall 5.
 *  2. Every stream keeps a RECV_MESSAGE and its RECV_STATUS_ON_CLIENT
 *     outstanding from the start until the status arrives (pitfall 8); the
 *     status is the one place a stream ends: it clears p->cs, drops the
 *     queue and schedules the reconnect.
 *  3. The queue is FIFO; frames [0, nsendable) are sealed and sendable, the
 *     tail is open for appends iff nsendable < nframes. q_bytes / q_msgs
 *     count what is queued and not yet handed to gRPC; appends that would
 *     exceed the bounds are dropped, so the queue never grows past them.
 *  4. Messages are only queued while p->cs exists, and the queue is emptied
 *     when it ends: a new stream starts at a message boundary, so a chunked
 *     message never continues on another stream than the one it began on.
 *  5. A cstream is freed when its last outstanding batch completed
 *     (cs->pending == 0); t->live_cstreams counts the unfreed ones so
 *     transport_free shuts the queue down only after every call is released
 *     (pitfall 7).
 *  6. Heartbeats the compact form can carry wait in p->hb for the open tail
 *     frame (p->hb_n > 0 only while it is open) and become that frame's
 *     last record, HEARTBEATS, when it closes (a new frame opens or
 *     transport_flush seals it). The tail's length limit and capacity
 *     always leave room for that record, and q_bytes counts it from the
 *     first entry, so closing a frame never allocates, fails or exceeds a
 *     bound.
 * Lock order: p->mu before t->mu; no gRPC callback runs inline (the queue
 * delivers every completion on the transport thread), so starting batches
 * under p->mu is safe.
 */
#include "thread_name.h"
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
#include "tls_creds.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void transport_logf(transport *t, int level, const char *fmt, ...)
{
    if (!t->opt.log || level > t->opt.log_level)
        return;
    char buf[512];
    int n = snprintf(buf, sizeof buf, "transport node %llu: ", (unsigned long long)t->opt.node_id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    t->opt.log(t->opt.log_ctx, level, buf);
}

/* Lock-free: the table is append-only and published with release. */
struct peer *transport_find_peer(transport *t, uint64_t id)
{
    size_t n = atomic_load_explicit(&t->npeers, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (t->peers[i]->id == id)
            return t->peers[i];
    return NULL;
}

/* ---- frames ----------------------------------------------------------- */

static void frame_free(struct frame *f)
{
    if (f) {
        free(f->buf);
        free(f);
    }
}

static struct frame *frame_new(transport *t, uint64_t to, size_t first_rec)
{
    struct frame *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    size_t cap = FRAME_INIT_CAP;
    if (cap < TRANSPORT_FRAME_HDR + first_rec)
        cap = TRANSPORT_FRAME_HDR + first_rec;
    if (cap > t->opt.max_frame_bytes)
        cap = t->opt.max_frame_bytes;
    f->buf = malloc(cap);
    if (!f->buf) {
        free(f);
        return NULL;
    }
    f->cap = cap;
    memcpy(f->buf, TRANSPORT_MAGIC, 4);
    f->buf[4] = TRANSPORT_VERSION;
    f->buf[5] = 0;
    f->buf[6] = 0;
    f->buf[7] = 0;
    put_u64(f->buf + 8, t->opt.cluster_id);
    put_u64(f->buf + 16, t->opt.node_id);
    put_u64(f->buf + 24, to);
    put_u32(f->buf + 32, 0);   /* record count: written when sent */
    f->len = TRANSPORT_FRAME_HDR;
    return f;
}

/* Length of the tail frame once closed, if rec_len more bytes go in
 * (hb: a heartbeat entry, which may start the HEARTBEATS record). */
static size_t closed_len(const struct peer *p, size_t rec_len, int hb)
{
    size_t n = p->tail->len + rec_len;
    if (p->hb_n || hb)
        n += TRANSPORT_REC_HDR + TRANSPORT_HBS_HDR + p->hb_len;
    return n;
}

/* Closes the open tail frame to appends by writing its HEARTBEATS record
 * (invariant 6: the room is there). p->mu held. */
static void close_tail(struct peer *p)
{
    struct frame *f = p->tail;
    if (!p->hb_n)
        return;
    uint8_t *at = f->buf + f->len;
    at[0] = TRANSPORT_REC_HEARTBEATS;
    put_u64(at + 1, 0);
    put_u32(at + 9, (uint32_t)(TRANSPORT_HBS_HDR + p->hb_len));
    put_u32(at + 13, p->hb_n);
    memcpy(at + TRANSPORT_REC_HDR + TRANSPORT_HBS_HDR, p->hb, p->hb_len);
    f->len = closed_len(p, 0, 0);
    f->nrec++;
    f->nhbs = p->hb_n;
    p->hb_n = 0;
    p->hb_len = 0;
}

/* The open tail frame with room for rec_len more bytes (see closed_len),
 * or a new frame if the tail is sealed or too full. NULL on allocation
 * failure. p->mu held. */
static struct frame *room(struct peer *p, size_t rec_len, int hb)
{
    transport *t = p->t;
    struct frame *f = p->tail;
    if (!f || p->nsendable == p->nframes || closed_len(p, rec_len, hb) > t->opt.max_frame_bytes) {
        f = frame_new(t, p->id, rec_len + (hb ? TRANSPORT_REC_HDR + TRANSPORT_HBS_HDR : 0));
        if (!f)
            return NULL;
        if (p->tail) {
            close_tail(p);   /* no-op if flush sealed it already */
            p->tail->next = f;
        } else {
            p->head = f;
        }
        p->tail = f;
        p->nframes++;
        p->q_bytes += TRANSPORT_FRAME_HDR;
    }
    size_t need = closed_len(p, rec_len, hb);
    if (need > f->cap) {
        size_t cap = f->cap * 2;
        while (cap < need)
            cap *= 2;
        if (cap > t->opt.max_frame_bytes)
            cap = t->opt.max_frame_bytes;
        uint8_t *nb = realloc(f->buf, cap);
        if (!nb)
            return NULL;
        f->buf = nb;
        f->cap = cap;
    }
    return f;
}

/* Room for rec_len bytes of record at the end of the queue: in the open
 * tail frame if it fits, else in a new frame. NULL on allocation failure. */
static uint8_t *reserve(struct peer *p, size_t rec_len)
{
    struct frame *f = room(p, rec_len, 0);
    if (!f)
        return NULL;
    uint8_t *at = f->buf + f->len;
    f->len += rec_len;
    f->nrec++;
    p->q_bytes += rec_len;
    return at;
}

/* Room for one entry of the tail frame's HEARTBEATS record. */
static uint8_t *reserve_hb(struct peer *p)
{
    if (!room(p, TRANSPORT_HB_ENTRY, 1))
        return NULL;
    if (p->hb_len + TRANSPORT_HB_ENTRY > p->hb_cap) {
        size_t cap = p->hb_cap ? p->hb_cap * 2 : 64 * TRANSPORT_HB_ENTRY;
        uint8_t *nb = realloc(p->hb, cap);
        if (!nb)
            return NULL;
        p->hb = nb;
        p->hb_cap = cap;
    }
    p->q_bytes += TRANSPORT_HB_ENTRY + (p->hb_n ? 0 : TRANSPORT_REC_HDR + TRANSPORT_HBS_HDR);
    uint8_t *at = p->hb + p->hb_len;
    p->hb_len += TRANSPORT_HB_ENTRY;
    p->hb_n++;
    return at;
}

/* Takes back the last reserve() (an encode failed). */
static void unreserve(struct peer *p, size_t rec_len)
{
    p->tail->len -= rec_len;
    p->tail->nrec--;
    p->q_bytes -= rec_len;
}

static void drop_queue(struct peer *p)
{
    p->st.drops_down += p->q_msgs;
    p->st.drops += p->q_msgs;
    struct frame *f = p->head;
    while (f) {
        struct frame *next = f->next;
        frame_free(f);
        f = next;
    }
    p->head = p->tail = NULL;
    p->nframes = p->nsendable = 0;
    p->q_bytes = p->q_msgs = 0;
    p->hb_n = 0;
    p->hb_len = 0;
}

/* ---- outgoing streams --------------------------------------------------- */

struct cstream {
    rpc_tag start_tag, send_tag, recv_tag, status_tag;
    struct peer *p;
    grpc_call *call;
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *recv_buf;
    grpc_byte_buffer *send_buf;
    uint32_t send_msgs, send_hbs;
    size_t send_bytes;
    int send_busy;
    int pending;        /* batches started and not completed */
    int done;           /* status received */
    int connected;
    int64_t started_ms;
};

#define CS_OF(tagp, member) ((struct cstream *)((char *)(tagp) - offsetof(struct cstream, member)))

static void start_stream(struct peer *p);

/* Frees cs once nothing of it is outstanding. p->mu held. */
static void cs_release(struct cstream *cs)
{
    if (--cs->pending > 0)
        return;
    transport *t = cs->p->t;
    grpc_call_unref(cs->call);
    grpc_metadata_array_destroy(&cs->init_md);
    grpc_metadata_array_destroy(&cs->trail_md);
    grpc_slice_unref(cs->details);
    if (cs->recv_buf)
        grpc_byte_buffer_destroy(cs->recv_buf);
    if (cs->send_buf)
        grpc_byte_buffer_destroy(cs->send_buf);
    free(cs);
    pthread_mutex_lock(&t->mu);
    if (--t->live_cstreams == 0)
        pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void timer_at(transport *t, int64_t at)
{
    int64_t cur = atomic_load(&t->next_timer_ms);
    while ((cur == 0 || at < cur) && !atomic_compare_exchange_weak(&t->next_timer_ms, &cur, at)) {
    }
}

/* Next attempt after a jittered delay in [backoff/2, backoff]; then the
 * backoff doubles up to the maximum. p->mu held. */
static void schedule_retry(struct peer *p)
{
    transport *t = p->t;
    if (atomic_load(&t->stopping))
        return;
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    int b = p->backoff_ms;
    int delay = b / 2 + (int)(p->rng % (uint64_t)(b / 2 + 1));
    p->retry_at_ms = now_ms() + delay;
    p->backoff_ms = b * 2 > t->opt.backoff_max_ms ? t->opt.backoff_max_ms : b * 2;
    timer_at(t, p->retry_at_ms);
}

/* Hands the head frame to gRPC if the stream may send. p->mu held. */
static void try_send(struct peer *p)
{
    struct cstream *cs = p->cs;
    if (!cs || cs->done || cs->send_busy || p->nsendable == 0)
        return;
    struct frame *f = p->head;
    p->head = f->next;
    if (!p->head)
        p->tail = NULL;
    p->nframes--;
    p->nsendable--;
    p->q_bytes -= f->len;
    p->q_msgs -= f->nmsgs;
    put_u32(f->buf + 32, f->nrec);
    /* The slice takes the frame's buffer: no copy. */
    grpc_slice sl = grpc_slice_new(f->buf, f->len, free);
    cs->send_buf = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    cs->send_msgs = f->nmsgs;
    cs->send_hbs = f->nhbs;
    cs->send_bytes = f->len;
    f->buf = NULL;
    frame_free(f);

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = cs->send_buf;
    cs->send_busy = 1;
    cs->pending++;
    grpc_call_error e = grpc_call_start_batch(cs->call, &op, 1, &cs->send_tag, NULL);
    if (e != GRPC_CALL_OK) {
        transport_logf(p->t, TRANSPORT_LOG_ERROR, "start SEND to node %llu failed: %d",
                      (unsigned long long)p->id, (int)e);
        grpc_byte_buffer_destroy(cs->send_buf);
        cs->send_buf = NULL;
        cs->send_busy = 0;
        p->st.drops_down += cs->send_msgs;
        p->st.drops += cs->send_msgs;
        cs->pending--;
    }
}

static void on_cs_start(rpc_tag *tag, int ok)
{
    struct cstream *cs = CS_OF(tag, start_tag);
    struct peer *p = cs->p;
    pthread_mutex_lock(&p->mu);
    if (ok && !cs->done && p->cs == cs) {
        cs->connected = 1;
        p->connected = 1;
        transport_logf(p->t, TRANSPORT_LOG_INFO, "stream to node %llu (%s) established",
                      (unsigned long long)p->id, p->addr);
    }
    cs_release(cs);
    pthread_mutex_unlock(&p->mu);
}

static void on_cs_send(rpc_tag *tag, int ok)
{
    struct cstream *cs = CS_OF(tag, send_tag);
    struct peer *p = cs->p;
    pthread_mutex_lock(&p->mu);
    grpc_byte_buffer_destroy(cs->send_buf);
    cs->send_buf = NULL;
    cs->send_busy = 0;
    if (ok) {
        p->st.frames_sent++;
        p->st.msgs_sent += cs->send_msgs;
        p->st.heartbeats_sent += cs->send_hbs;
        p->st.bytes_sent += cs->send_bytes;
    } else {
        p->st.drops_down += cs->send_msgs;
        p->st.drops += cs->send_msgs;
    }
    if (p->cs == cs)
        try_send(p);
    cs_release(cs);
    pthread_mutex_unlock(&p->mu);
}

/* The peer never sends messages on our stream; keep one RECV outstanding
 * anyway so the call's end is always observed (pitfall 8). */
static void start_recv(struct cstream *cs)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &cs->recv_buf;
    cs->pending++;
    if (grpc_call_start_batch(cs->call, &op, 1, &cs->recv_tag, NULL) != GRPC_CALL_OK)
        cs->pending--;
}

static void on_cs_recv(rpc_tag *tag, int ok)
{
    struct cstream *cs = CS_OF(tag, recv_tag);
    struct peer *p = cs->p;
    pthread_mutex_lock(&p->mu);
    int more = ok && cs->recv_buf != NULL;
    if (cs->recv_buf) {
        grpc_byte_buffer_destroy(cs->recv_buf);
        cs->recv_buf = NULL;
    }
    if (more && !cs->done)
        start_recv(cs);
    cs_release(cs);
    pthread_mutex_unlock(&p->mu);
}

/* The stream ended (peer gone, cancelled, or refused). Invariant 2. */
static void cs_ended(struct cstream *cs)
{
    struct peer *p = cs->p;
    transport *t = p->t;
    cs->done = 1;
    if (p->cs != cs)
        return;
    char *det = grpc_slice_to_c_string(cs->details);
    char msg[640];
    snprintf(msg, sizeof msg, "stream to %s ended: status %d%s%.300s", p->addr, (int)cs->status,
             det[0] ? ": " : "", det);
    gpr_free(det);
    size_t ml = strlen(msg);
    if (ml >= sizeof p->st.last_error)
        ml = sizeof p->st.last_error - 1;
    memcpy(p->st.last_error, msg, ml);
    p->st.last_error[ml] = '\0';
    if (!atomic_load(&t->stopping))
        transport_logf(t, cs->connected ? TRANSPORT_LOG_WARN : TRANSPORT_LOG_DEBUG,
                      "node %llu: %s", (unsigned long long)p->id, p->st.last_error);
    p->cs = NULL;
    p->connected = 0;
    drop_queue(p);
    /* A stream that stayed up a while resets the backoff; one that fails
     * at once (peer down, or refusing us) keeps doubling it. */
    if (cs->connected && now_ms() - cs->started_ms >= t->opt.backoff_max_ms)
        p->backoff_ms = t->opt.backoff_min_ms;
    if (p->reconnect_now) {
        p->reconnect_now = 0;
        start_stream(p);
    } else {
        schedule_retry(p);
    }
}

static void on_cs_status(rpc_tag *tag, int ok)
{
    struct cstream *cs = CS_OF(tag, status_tag);
    struct peer *p = cs->p;
    pthread_mutex_lock(&p->mu);
    cs_ended(cs);
    cs_release(cs);
    pthread_mutex_unlock(&p->mu);
}

/* Opens the stream to p. p->mu held. On failure the retry is scheduled. */
static void start_stream(struct peer *p)
{
    transport *t = p->t;
    if (atomic_load(&t->stopping) || p->cs || !p->ch)
        return;
    p->retry_at_ms = 0;
    struct cstream *cs = calloc(1, sizeof *cs);
    if (!cs) {
        snprintf(p->st.last_error, sizeof p->st.last_error, "out of memory");
        schedule_retry(p);
        return;
    }
    cs->start_tag.fn = on_cs_start;
    cs->send_tag.fn = on_cs_send;
    cs->recv_tag.fn = on_cs_recv;
    cs->status_tag.fn = on_cs_status;
    cs->p = p;
    cs->started_ms = now_ms();
    grpc_metadata_array_init(&cs->init_md);
    grpc_metadata_array_init(&cs->trail_md);
    cs->details = grpc_empty_slice();
    cs->call = grpc_channel_create_registered_call(p->ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
                                                   p->method, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                   NULL);
    pthread_mutex_lock(&t->mu);
    t->live_cstreams++;
    pthread_mutex_unlock(&t->mu);
    if (p->ever_started)
        p->st.reconnects++;
    p->ever_started = 1;
    p->cs = cs;

    /* Status first: it is what ends the stream (invariant 2). The extra
     * pending count is ours until the batches are started. */
    cs->pending = 1;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &cs->trail_md;
    ops[0].data.recv_status_on_client.status = &cs->status;
    ops[0].data.recv_status_on_client.status_details = &cs->details;
    cs->pending++;
    if (grpc_call_start_batch(cs->call, ops, 1, &cs->status_tag, NULL) != GRPC_CALL_OK) {
        cs->pending--;
        cs->status = GRPC_STATUS_INTERNAL;
        grpc_call_cancel(cs->call, NULL);
        cs_ended(cs);
        cs_release(cs);
        return;
    }
    /* Pitfall 2: RECV_INITIAL_METADATA in the first batch. */
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    auth_md_out_set(&t->auth_md, &ops[0]);
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &cs->init_md;
    cs->pending++;
    if (grpc_call_start_batch(cs->call, ops, 2, &cs->start_tag, NULL) != GRPC_CALL_OK) {
        cs->pending--;
        grpc_call_cancel(cs->call, NULL);
    }
    start_recv(cs);
    try_send(p);
    cs_release(cs);
}

static grpc_channel *channel_new(transport *t, const char *addr)
{
    /* gRPC's own reconnect backoff follows ours, so a new stream after our
     * backoff meets a channel that has tried again too. Its "min reconnect
     * backoff" is the minimum time one connection attempt may take.
     * Keepalive pings every second, answered within one, notice a peer
     * that vanished without a word (a partition that drops packets, a
     * SIGSTOPped or powered-off node): TCP alone would keep the dead
     * connection for minutes of retransmissions, and a healed partition
     * would wait that long. rpc_server.c lets the peers' servers accept
     * pings this often. */
    static const struct { const char *key; int val; } fixed[] = {
        { GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000 },
        { GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1 },
        { GRPC_ARG_KEEPALIVE_TIME_MS, 1000 },
        { GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 1000 },
        { GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1 },
        { GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0 },
    };
    enum { NFIXED = sizeof fixed / sizeof fixed[0], NARGS = NFIXED + 4 };
    const char *keys[NARGS] = { GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
                                GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                                GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                                GRPC_ARG_MAX_RECONNECT_BACKOFF_MS };
    int vals[NARGS] = { (int)t->opt.max_frame_bytes, (int)t->opt.max_frame_bytes,
                        t->opt.backoff_min_ms, t->opt.backoff_max_ms };
    for (int i = 0; i < NFIXED; i++) {
        keys[4 + i] = fixed[i].key;
        vals[4 + i] = fixed[i].val;
    }
    grpc_arg args[NARGS];
    for (int i = 0; i < NARGS; i++) {
        args[i].type = GRPC_ARG_INTEGER;
        args[i].key = (char *)keys[i];
        args[i].value.integer = vals[i];
    }
    grpc_channel_args cargs = { NARGS, args };
    grpc_channel_credentials *creds = tls_channel_creds(t->opt.tls);
    grpc_channel *ch = grpc_channel_create(addr, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* ---- the transport thread ------------------------------------------------ */

static void run_timers(transport *t)
{
    atomic_store(&t->next_timer_ms, 0);
    int64_t now = now_ms();
    size_t n = atomic_load_explicit(&t->npeers, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct peer *p = t->peers[i];
        pthread_mutex_lock(&p->mu);
        if (p->retry_at_ms && !p->cs) {
            if (now >= p->retry_at_ms)
                start_stream(p);
            else
                timer_at(t, p->retry_at_ms);
        }
        pthread_mutex_unlock(&p->mu);
    }
}

static void *cq_thread(void *arg)
{
    okv_thread_name("okv-transport");
    transport *t = arg;
    for (;;) {
        int64_t next = atomic_load(&t->next_timer_ms);
        int64_t wait = 1000;
        if (next) {
            wait = next - now_ms();
            if (wait < 0)
                wait = 0;
            if (wait > 1000)
                wait = 1000;
        }
        gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_millis(wait, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(t->cq, dl, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            rpc_tag *tag = ev.tag;
            tag->fn(tag, ev.success);
        }
        next = atomic_load(&t->next_timer_ms);
        if (next && now_ms() >= next)
            run_timers(t);
    }
    return NULL;
}

/* ---- public API -------------------------------------------------------- */

int transport_new(transport **out, rpc_server *srv, const struct transport_options *opt,
                  okv_error *err)
{
    *out = NULL;
    if (!opt || opt->version != TRANSPORT_OPTIONS_VERSION)
        return okv_error_set(err, OKV_EINVAL, "transport options: version must be %d",
                             TRANSPORT_OPTIONS_VERSION);
    if (opt->node_id == 0 || !opt->on_message)
        return okv_error_set(err, OKV_EINVAL, "transport options: node_id and on_message are "
                                              "required");
    if (opt->max_frame_bytes < TRANSPORT_MIN_FRAME || opt->max_frame_bytes > TRANSPORT_MAX_FRAME_LIMIT)
        return okv_error_set(err, OKV_EINVAL,
                             "transport options: max_frame_bytes %zu outside [%u, %u]",
                             opt->max_frame_bytes, (unsigned)TRANSPORT_MIN_FRAME,
                             (unsigned)TRANSPORT_MAX_FRAME_LIMIT);
    if (opt->max_queue_bytes < opt->max_frame_bytes || opt->max_queue_msgs == 0 ||
        opt->backoff_min_ms < 2 || opt->backoff_max_ms < opt->backoff_min_ms)
        return okv_error_set(err, OKV_EINVAL, "transport options: queue bounds must hold a "
                                              "frame, and 2 <= backoff_min_ms <= backoff_max_ms");
    transport *t = calloc(1, sizeof *t);
    if (!t)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    grpc_init();
    t->opt = *opt;
    auth_md_out_init(&t->auth_md, opt->auth_secret);
    t->srv = srv;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    int rc = rpc_server_add_stream_method(srv, TRANSPORT_METHOD, transport_on_stream, t, err);
    if (rc != OKV_OK)
        goto fail;
    t->cq = grpc_completion_queue_create_for_next(NULL);
    if (pthread_create(&t->thread, NULL, cq_thread, t) != 0) {
        grpc_completion_queue_shutdown(t->cq);
        while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(t->cq);
        rc = okv_error_set(err, OKV_EINTERNAL, "cannot start the transport thread");
        goto fail;
    }
    *out = t;
    return OKV_OK;
fail:
    /* The method stays registered on srv with t as its argument; that
     * server must not be started (its owner frees it on this error). */
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    grpc_shutdown();
    return rc;
}

int transport_set_peer(transport *t, uint64_t node_id, const char *address)
{
    if (!t || node_id == 0 || node_id == t->opt.node_id || !address || !address[0] ||
        strlen(address) >= sizeof t->peers[0]->addr)
        return OKV_EINVAL;
    struct peer *p = transport_find_peer(t, node_id);
    if (!p) {
        pthread_mutex_lock(&t->mu);
        p = transport_find_peer(t, node_id);
        if (!p) {
            size_t n = atomic_load(&t->npeers);
            if (n == TRANSPORT_MAX_PEERS) {
                pthread_mutex_unlock(&t->mu);
                return OKV_EINVAL;
            }
            p = calloc(1, sizeof *p);
            if (!p) {
                pthread_mutex_unlock(&t->mu);
                return OKV_ENOMEM;
            }
            p->t = t;
            p->id = node_id;
            p->backoff_ms = t->opt.backoff_min_ms;
            p->rng = (node_id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)now_ms() ^
                     t->opt.node_id;
            if (p->rng == 0)
                p->rng = 1;
            pthread_mutex_init(&p->mu, NULL);
            t->peers[n] = p;
            atomic_store_explicit(&t->npeers, n + 1, memory_order_release);
        }
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_lock(&p->mu);
    if (!p->ch || strcmp(p->addr, address) != 0) {
        snprintf(p->addr, sizeof p->addr, "%s", address);
        /* Live calls keep their own reference to the old channel. */
        if (p->ch)
            grpc_channel_destroy(p->ch);
        p->ch = channel_new(t, p->addr);
        p->method = grpc_channel_register_call(p->ch, TRANSPORT_METHOD, NULL, NULL);
        p->backoff_ms = t->opt.backoff_min_ms;
        if (p->cs) {
            p->reconnect_now = 1;
            grpc_call_cancel(p->cs->call, NULL);
        } else {
            start_stream(p);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return OKV_OK;
}

/* Whether m travels as an entry of a HEARTBEATS record: a heartbeat or
 * its response carrying only what the core sets on them (replication.c:
 * raft_replication_bcast_heartbeat sets term, commit, ctx;
 * raft_replication_handle_heartbeat sets term, ctx; raft_send sets type,
 * from, to and zeroes the rest). from and to must be the frame's nodes,
 * which the receiver puts back. Anything else goes as a MESSAGE. */
static int compact_heartbeat(const transport *t, uint64_t to_node, const struct raft_message *m)
{
    return (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_HEARTBEAT_RESP) &&
           m->from == t->opt.node_id && m->to == to_node && !m->transfer && m->log_term == 0 &&
           m->index == 0 && m->hint_index == 0 && m->hint_term == 0 && m->n_entries == 0;
}

static int drop(struct peer *p, uint64_t *counter)
{
    (*counter)++;
    p->st.drops++;
    pthread_mutex_unlock(&p->mu);
    return OKV_EUNAVAILABLE;
}

int transport_send(transport *t, uint64_t to_node, uint64_t group_id,
                   const struct raft_message *m)
{
    if (!t || !m)
        return OKV_EINVAL;
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX_)
        return OKV_EINVAL;
    struct peer *p = transport_find_peer(t, to_node);
    if (!p)
        return OKV_ENOTFOUND;
    if (OKV_FAILPOINTF("transport.drop.node%llu", (unsigned long long)to_node))
        return OKV_EUNAVAILABLE;   /* as if the network ate it */
    int hb = compact_heartbeat(t, to_node, m);
    /* A heartbeat costs at most its entry plus a new record and frame. */
    size_t msz = hb ? TRANSPORT_HBS_HDR + TRANSPORT_HB_ENTRY : raft_message_encoded_size(m);
    size_t max = t->opt.max_frame_bytes;
    int chunked = TRANSPORT_FRAME_HDR + TRANSPORT_REC_HDR + msz > max;
    size_t piece = max - TRANSPORT_FRAME_HDR - TRANSPORT_REC_HDR - TRANSPORT_CHUNK_HDR;
    size_t cost = TRANSPORT_FRAME_HDR + TRANSPORT_REC_HDR + msz;   /* worst case */
    uint8_t *enc = NULL;
    if (chunked) {
        size_t nchunks = (msz + piece - 1) / piece;
        cost = nchunks * (TRANSPORT_FRAME_HDR + TRANSPORT_REC_HDR + TRANSPORT_CHUNK_HDR) + msz;
        /* Encode before taking the lock: a snapshot may be large. */
        if (cost <= t->opt.max_queue_bytes) {
            size_t len;
            enc = malloc(msz);
            if (!enc)
                return OKV_ENOMEM;
            if (raft_message_encode(m, enc, msz, &len) != RAFT_OK || len != msz) {
                free(enc);
                return OKV_EINVAL;
            }
        }
    }
    pthread_mutex_lock(&p->mu);
    if (p->blocked) {
        free(enc);
        return drop(p, &p->st.drops_blocked);
    }
    if (!p->cs) {
        free(enc);
        return drop(p, &p->st.drops_down);
    }
    if (p->q_bytes + cost > t->opt.max_queue_bytes || p->q_msgs + 1 > t->opt.max_queue_msgs) {
        free(enc);
        return drop(p, &p->st.drops_queue_full);
    }
    if (hb) {
        uint8_t *at = reserve_hb(p);
        if (!at) {
            pthread_mutex_unlock(&p->mu);
            return OKV_ENOMEM;
        }
        put_u64(at, group_id);
        at[8] = m->type;
        at[9] = m->reject ? 1 : 0;
        put_u64(at + 10, m->term);
        put_u64(at + 18, m->commit);
        put_u64(at + 26, m->ctx);
    } else if (!chunked) {
        size_t rec = TRANSPORT_REC_HDR + msz, len;
        uint8_t *at = reserve(p, rec);
        if (!at) {
            pthread_mutex_unlock(&p->mu);
            return OKV_ENOMEM;
        }
        at[0] = TRANSPORT_REC_MESSAGE;
        put_u64(at + 1, group_id);
        put_u32(at + 9, (uint32_t)msz);
        if (raft_message_encode(m, at + TRANSPORT_REC_HDR, msz, &len) != RAFT_OK || len != msz) {
            unreserve(p, rec);
            pthread_mutex_unlock(&p->mu);
            return OKV_EINVAL;
        }
    } else {
        /* Invariant 4: all chunks are queued together, in order. */
        for (size_t off = 0; off < msz; off += piece) {
            size_t n = msz - off < piece ? msz - off : piece;
            size_t rec = TRANSPORT_REC_HDR + TRANSPORT_CHUNK_HDR + n;
            uint8_t *at = reserve(p, rec);
            if (!at) {
                /* Cannot finish the message: the stream must not carry a
                 * partial one, so end it (invariant 4 via drop_queue). */
                grpc_call_cancel(p->cs->call, NULL);
                free(enc);
                pthread_mutex_unlock(&p->mu);
                return OKV_ENOMEM;
            }
            at[0] = TRANSPORT_REC_CHUNK;
            put_u64(at + 1, group_id);
            put_u32(at + 9, (uint32_t)(TRANSPORT_CHUNK_HDR + n));
            put_u64(at + 13, msz);
            put_u64(at + 21, off);
            memcpy(at + TRANSPORT_REC_HDR + TRANSPORT_CHUNK_HDR, enc + off, n);
        }
        free(enc);
    }
    p->tail->nmsgs++;
    p->q_msgs++;
    pthread_mutex_unlock(&p->mu);
    return OKV_OK;
}

void transport_flush(transport *t)
{
    size_t n = atomic_load_explicit(&t->npeers, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct peer *p = t->peers[i];
        pthread_mutex_lock(&p->mu);
        close_tail(p);
        p->nsendable = p->nframes;
        try_send(p);
        pthread_mutex_unlock(&p->mu);
    }
}

void transport_block(transport *t, uint64_t node_id, int blocked)
{
    struct peer *p = t ? transport_find_peer(t, node_id) : NULL;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->blocked = blocked != 0;
    pthread_mutex_unlock(&p->mu);
}

static void add_stats(struct transport_stats *a, const struct transport_stats *b)
{
    a->frames_sent += b->frames_sent;
    a->msgs_sent += b->msgs_sent;
    a->heartbeats_sent += b->heartbeats_sent;
    a->heartbeats_recv += b->heartbeats_recv;
    a->bytes_sent += b->bytes_sent;
    a->frames_recv += b->frames_recv;
    a->msgs_recv += b->msgs_recv;
    a->bytes_recv += b->bytes_recv;
    a->drops += b->drops;
    a->drops_queue_full += b->drops_queue_full;
    a->drops_down += b->drops_down;
    a->drops_blocked += b->drops_blocked;
    a->reconnects += b->reconnects;
    a->rejected_frames += b->rejected_frames;
    a->decode_errors += b->decode_errors;
    a->chunk_drops += b->chunk_drops;
    a->queued_bytes += b->queued_bytes;
    a->queued_msgs += b->queued_msgs;
    if (b->last_recv_ms > a->last_recv_ms)
        a->last_recv_ms = b->last_recv_ms;
}

static void peer_stats(struct peer *p, struct transport_stats *st)
{
    pthread_mutex_lock(&p->mu);
    *st = p->st;
    st->known = 1;
    st->connected = p->connected;
    st->blocked = p->blocked;
    st->queued_bytes = p->q_bytes;
    st->queued_msgs = p->q_msgs;
    pthread_mutex_unlock(&p->mu);
}

int transport_stats(transport *t, uint64_t node_id, struct transport_stats *st)
{
    memset(st, 0, sizeof *st);
    if (node_id != TRANSPORT_ALL_PEERS) {
        struct peer *p = transport_find_peer(t, node_id);
        if (!p)
            return OKV_ENOTFOUND;
        peer_stats(p, st);
        return OKV_OK;
    }
    size_t n = atomic_load_explicit(&t->npeers, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct transport_stats one;
        peer_stats(t->peers[i], &one);
        add_stats(st, &one);
        st->connected += one.connected;   /* totals: peers connected */
        st->blocked += one.blocked;
    }
    st->known = (int)n;
    st->rejected_frames += atomic_load(&t->rejected_frames);
    st->decode_errors += atomic_load(&t->decode_errors);
    st->chunk_drops += atomic_load(&t->chunk_drops);
    return OKV_OK;
}

void transport_free(transport *t)
{
    if (!t)
        return;
    if (atomic_load(&t->live_sstreams) > 0) {
        /* Its streams still point here: freeing would be a use after free. */
        transport_logf(t, TRANSPORT_LOG_ERROR,
                      "transport_free called while the rpc_server still has %d of its streams; "
                      "shut the server down first (transport leaked)",
                      atomic_load(&t->live_sstreams));
        return;
    }
    atomic_store(&t->stopping, 1);
    size_t n = atomic_load_explicit(&t->npeers, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct peer *p = t->peers[i];
        pthread_mutex_lock(&p->mu);
        p->retry_at_ms = 0;
        if (p->cs)
            grpc_call_cancel(p->cs->call, NULL);
        pthread_mutex_unlock(&p->mu);
    }
    /* Pitfall 7: every call released before the queue shuts down. */
    pthread_mutex_lock(&t->mu);
    while (t->live_cstreams > 0)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    grpc_completion_queue_shutdown(t->cq);
    pthread_join(t->thread, NULL);
    grpc_completion_queue_destroy(t->cq);
    for (size_t i = 0; i < n; i++) {
        struct peer *p = t->peers[i];
        drop_queue(p);
        free(p->hb);
        if (p->ch)
            grpc_channel_destroy(p->ch);
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    grpc_shutdown();
}

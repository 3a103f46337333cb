/*
 * snap_send.c — see snap_send.h.
 *
 * Design notes
 * ------------
 * Each worker drives one call at a time, synchronously, on a completion
 * queue of its own: start the call, send the header, the chunks and the
 * trailer one SEND_MESSAGE at a time (GRPC-CORE-NOTES pitfall 5: the next
 * send starts when the previous one completed, which is also what bounds
 * memory — HTTP/2 flow control holds a send until the follower reads), then
 * half-close and wait for the status. RECV_STATUS_ON_CLIENT is started
 * first and RECV_INITIAL_METADATA rides in the first batch (pitfalls 2, 8),
 * so a refusal surfaces at once, not at a deadline.
 *
 * Every wait is bounded by io_timeout_ms; when one expires, or the sender
 * stops, the call is cancelled and every outstanding batch is waited for
 * before the call, the queue and the channel are destroyed (pitfall 7).
 * Each transfer gets its own channel (with a local subchannel pool, so its
 * own TCP connection): snapshots are rare, and a bulk stream must not sit
 * in front of the Raft messages on the transport's connection.
 *
 * Invariants:
 *   1. A job is in exactly one of: the queue, a worker's hands; its RocksDB
 *      snapshot is released exactly once, when the job is freed.
 *   2. (group, to) appears at most once among queued and running jobs.
 *   3. j->call is set only while the worker may still start batches on it,
 *      and only under s->mu, so snap_send_free can cancel it safely.
 */
#define _POSIX_C_SOURCE 200809L
#include "thread_name.h"
#include "snap_send.h"

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "fsm_snapshot.h"
#include "snap_format.h"
#include "auth_md_out.h"
#include "tls_creds.h"

#define MAX_WORKERS 16

typedef struct job {
    struct job *next;
    uint64_t to, group;
    struct raft_message m;        /* metadata only: no entries, no data */
    engine_snapshot *snap;
    grpc_call *call;              /* invariant 3 */
} job;

struct snap_send {
    struct snap_send_options o;
    auth_md_out auth_md;          /* sent when opening a transfer */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;             /* the queue */
    job *running[MAX_WORKERS];
    int stopping;
    pthread_t th[MAX_WORKERS];
    int nth;
    struct snap_send_stats st;
};

__attribute__((format(printf, 3, 4)))
static void slog(snap_send *s, int level, const char *fmt, ...)
{
    if (!s->o.log)
        return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->o.log(s->o.log_ctx, level, msg);
}

static void job_free(job *j)
{
    if (!j)
        return;
    engine_snapshot_free(j->snap);
    free(j);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- one transfer ------------------------------------------------------- */

enum { T_MD, T_SEND, T_CLOSE, T_STATUS, T_COUNT };

typedef struct xfer {
    snap_send *s;
    job *j;
    grpc_completion_queue *cq;
    grpc_channel *ch;
    grpc_call *call;
    char tags[T_COUNT];           /* their addresses are the batches' tags */
    int pending[T_COUNT];
    int ok[T_COUNT];
    grpc_metadata_array init_md, trail_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *send_buf;
} xfer;

/* Waits until batch t completed (1) or timeout_ms passed (0); -1 = forever. */
static int wait_for(xfer *x, int t, int timeout_ms)
{
    gpr_timespec dl = timeout_ms < 0 ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
                                     : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                                    gpr_time_from_millis(timeout_ms,
                                                                         GPR_TIMESPAN));
    while (x->pending[t]) {
        grpc_event ev = grpc_completion_queue_next(x->cq, dl, NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            return 0;
        int k = (int)((char *)ev.tag - x->tags);
        x->pending[k] = 0;
        x->ok[k] = ev.success;
    }
    return 1;
}

static int start(xfer *x, int t, grpc_op *ops, size_t n)
{
    x->pending[t] = 1;
    if (grpc_call_start_batch(x->call, ops, n, &x->tags[t], NULL) != GRPC_CALL_OK) {
        x->pending[t] = 0;
        return -1;
    }
    return 0;
}

/* Cancels the call and waits for every batch still outstanding: after
 * this nothing of the call refers to our buffers. */
static void cancel_and_drain(xfer *x)
{
    grpc_call_cancel(x->call, NULL);
    for (int t = 0; t < T_COUNT; t++)
        wait_for(x, t, -1);
}

/* Sends one message and waits for the send to complete. 0, or -1 with
 * the call cancelled or broken (the status says why). */
static int send_msg(xfer *x, const uint8_t *b, size_t len)
{
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)b, len);
    x->send_buf = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = x->send_buf;
    int rc = start(x, T_SEND, &op, 1);
    if (!rc && !wait_for(x, T_SEND, x->s->o.io_timeout_ms)) {
        cancel_and_drain(x);   /* the follower stopped reading */
        rc = -1;
    }
    grpc_byte_buffer_destroy(x->send_buf);
    x->send_buf = NULL;
    return rc || !x->ok[T_SEND] ? -1 : 0;
}

static grpc_channel *channel_new(const snap_send *s, const char *addr)
{
    grpc_arg args[3];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[0].value.integer = (int)SNAP_MAX_MESSAGE;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[1].value.integer = 1;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[2].value.integer = 64 * 1024;   /* the follower sends nothing but a status */
    grpc_channel_args cargs = { 3, args };
    grpc_channel_credentials *creds = tls_channel_creds(s->o.tls);
    grpc_channel *ch = grpc_channel_create(addr, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* Publishes (or clears) the call for snap_send_free; 1 if stopping. */
static int publish_call(snap_send *s, job *j, grpc_call *call)
{
    pthread_mutex_lock(&s->mu);
    j->call = call;
    int stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

struct counts {
    uint32_t chunks;
    uint64_t records, bytes, sum;
};

/* Fills chunks from the reader and sends each; 0 at the end of the
 * partition, or -1 with why. A record is never split: a chunk closes
 * before the record that would take it past chunk_bytes (unless it is the
 * chunk's first). */
static int stream_chunks(xfer *x, fsm_snapshot_reader *r, struct counts *c, char *why,
                         size_t cap)
{
    snap_send *s = x->s;
    snap_chunk ch = { 0 };
    okv_error err;
    int cf = 0;
    const uint8_t *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0;
    int failed = 0;   /* ours; a negative `more` alone is the reader's */
    int more = fsm_snapshot_reader_next(r, &cf, &k, &kl, &v, &vl, &err);
    while (more == 1 && !failed) {
        if (snap_chunk_begin(&ch, c->chunks)) {
            snprintf(why, cap, "out of memory");
            failed = 1;
            break;
        }
        while (more == 1) {
            size_t rl = SNAP_RECORD_HDR + kl + vl;
            if (SNAP_CHUNK_HDR + rl > SNAP_MAX_MESSAGE) {
                snprintf(why, cap, "a record of %zu bytes is over the stream's message limit",
                         rl);
                failed = 1;
                break;
            }
            if (ch.nrec > 0 && ch.len + rl > s->o.chunk_bytes)
                break;
            if (snap_chunk_add(&ch, cf, k, kl, v, vl)) {
                snprintf(why, cap, "out of memory");
                failed = 1;
                break;
            }
            more = fsm_snapshot_reader_next(r, &cf, &k, &kl, &v, &vl, &err);
        }
        if (failed || more < 0)
            break;
        snap_chunk_seal(&ch);
        c->sum = snap_checksum(c->sum, ch.buf, ch.len);
        c->bytes += ch.len;
        c->records += ch.nrec;
        if (send_msg(x, ch.buf, ch.len)) {
            snprintf(why, cap, "chunk %u could not be sent", (unsigned)c->chunks);
            failed = 1;
            break;
        }
        c->chunks++;
        OKV_FAILPOINT("snap.send.after_chunk");   /* sleep(MS): a slow stream */
    }
    if (!failed && more < 0) {
        snprintf(why, cap, "reading the partition: %.300s", err.msg);
        failed = 1;
    }
    snap_chunk_free(&ch);
    return failed ? -1 : 0;
}

/* Streams the header, the chunks and the trailer. 0, or -1 with why. */
static int stream_body(xfer *x, struct counts *c, char *why, size_t cap)
{
    snap_send *s = x->s;
    job *j = x->j;
    uint8_t hdr[SNAP_HEADER_MAX];
    struct snap_header h;
    memset(&h, 0, sizeof h);
    h.cluster_id = s->o.cluster_id;
    h.from = s->o.node_id;
    h.to = j->to;
    h.group = j->group;
    h.term = j->m.term;
    h.meta = j->m.snapshot.meta;
    size_t hl = snap_header_encode(&h, hdr, sizeof hdr);
    if (!hl) {
        snprintf(why, cap, "the snapshot's configuration does not encode");
        return -1;
    }
    if (send_msg(x, hdr, hl)) {
        snprintf(why, cap, "the header could not be sent");
        return -1;
    }
    fsm_snapshot_reader *r = NULL;
    okv_error err;
    if (fsm_snapshot_reader_new(&r, j->snap, j->group, &err)) {
        snprintf(why, cap, "%.300s", err.msg);
        return -1;
    }
    c->sum = SNAP_CHECKSUM_INIT;
    int rc = stream_chunks(x, r, c, why, cap);
    fsm_snapshot_reader_free(r);
    if (rc)
        return -1;
    struct snap_trailer t = { c->chunks, c->records, c->bytes, c->sum };
    uint8_t tb[SNAP_TRAILER_LEN];
    snap_trailer_encode(&t, tb);
    if (send_msg(x, tb, sizeof tb)) {
        snprintf(why, cap, "the trailer could not be sent");
        return -1;
    }
    return 0;
}

/* Half-closes and waits for the follower's verdict. 0 if it said OK. */
static int finish(xfer *x, char *why, size_t cap)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    if (start(x, T_CLOSE, &op, 1) || !wait_for(x, T_CLOSE, x->s->o.io_timeout_ms) ||
        !wait_for(x, T_STATUS, x->s->o.io_timeout_ms)) {
        snprintf(why, cap, "no answer from the follower within %d ms", x->s->o.io_timeout_ms);
        return -1;
    }
    return x->status == GRPC_STATUS_OK ? 0 : -1;
}

/* Runs one transfer. 0 when the follower acknowledged it. */
static int run(snap_send *s, job *j, struct counts *c, char *why, size_t cap)
{
    char addr[256];
    if (!s->o.peer_address || s->o.peer_address(s->o.peer_ctx, j->to, addr, sizeof addr)) {
        snprintf(why, cap, "no address known for node %llu", (unsigned long long)j->to);
        return -1;
    }
    xfer x;
    memset(&x, 0, sizeof x);
    x.s = s;
    x.j = j;
    grpc_metadata_array_init(&x.init_md);
    grpc_metadata_array_init(&x.trail_md);
    x.details = grpc_empty_slice();
    x.cq = grpc_completion_queue_create_for_next(NULL);
    x.ch = channel_new(s, addr);
    grpc_slice method = grpc_slice_from_static_string(SNAP_METHOD);
    x.call = grpc_channel_create_call(x.ch, NULL, GRPC_PROPAGATE_DEFAULTS, x.cq, method, NULL,
                                      gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_slice_unref(method);
    if (publish_call(s, j, x.call))
        grpc_call_cancel(x.call, NULL);

    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &x.trail_md;
    ops[0].data.recv_status_on_client.status = &x.status;
    ops[0].data.recv_status_on_client.status_details = &x.details;
    int rc = start(&x, T_STATUS, ops, 1);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    auth_md_out_set(&s->auth_md, &ops[0]);
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &x.init_md;
    if (!rc)
        rc = start(&x, T_MD, ops, 2);
    if (rc)
        snprintf(why, cap, "the call could not be started");
    else
        rc = stream_body(&x, c, why, cap);
    if (!rc)
        rc = finish(&x, why, cap);
    if (rc) {
        cancel_and_drain(&x);
        if (x.status != GRPC_STATUS_OK && x.status != GRPC_STATUS_CANCELLED) {
            /* The follower's (or gRPC's) reason beats ours. */
            char *det = grpc_slice_to_c_string(x.details);
            size_t n = strlen(why);
            snprintf(why + n, cap - n, "%sstatus %d%s%s", n ? "; " : "", (int)x.status,
                     det[0] ? ": " : "", det);
            gpr_free(det);
        }
    }
    for (int t = 0; t < T_COUNT; t++)
        wait_for(&x, t, -1);
    publish_call(s, j, NULL);
    grpc_call_unref(x.call);
    grpc_metadata_array_destroy(&x.init_md);
    grpc_metadata_array_destroy(&x.trail_md);
    grpc_slice_unref(x.details);
    grpc_completion_queue_shutdown(x.cq);
    while (grpc_completion_queue_next(x.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(x.cq);
    grpc_channel_destroy(x.ch);
    return rc;
}

/* ---- workers ---------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    okv_thread_name("okv-snap-send");
    snap_send *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && !s->head)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        job *j = s->head;
        s->head = j->next;
        if (!s->head)
            s->tail = NULL;
        s->st.waiting--;
        int slot = 0;
        while (s->running[slot])
            slot++;
        s->running[slot] = j;
        s->st.running++;
        pthread_mutex_unlock(&s->mu);

        struct counts c = { 0, 0, 0, 0 };
        char why[400] = "";
        int64_t t0 = now_ms();
        int rc = run(s, j, &c, why, sizeof why);
        int64_t ms = now_ms() - t0;
        unsigned hi = (unsigned)(j->group >> 32), lo = (unsigned)j->group;
        if (rc == 0)
            slog(s, 2, "group %u/%u: snapshot at index %llu sent to node %llu: %llu records, "
                       "%llu bytes in %u chunks, %lld ms",
                 hi, lo, (unsigned long long)j->m.snapshot.meta.index, (unsigned long long)j->to,
                 (unsigned long long)c.records, (unsigned long long)c.bytes, (unsigned)c.chunks,
                 (long long)ms);
        else
            slog(s, 1, "group %u/%u: snapshot at index %llu to node %llu failed after %u "
                       "chunks (%lld ms): %s; the leader will offer a new one",
                 hi, lo, (unsigned long long)j->m.snapshot.meta.index, (unsigned long long)j->to,
                 (unsigned)c.chunks, (long long)ms, why);
        pthread_mutex_lock(&s->mu);
        s->running[slot] = NULL;
        s->st.running--;
        if (rc == 0) {
            s->st.sent++;
            s->st.chunks += c.chunks;
            s->st.records += c.records;
            s->st.bytes += c.bytes;
        } else {
            s->st.failed++;
        }
        pthread_mutex_unlock(&s->mu);
        job_free(j);
    }
}

int snap_send_new(snap_send **out, const struct snap_send_options *o, okv_error *err)
{
    *out = NULL;
    snap_send *s = calloc(1, sizeof *s);
    if (!s)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    s->o = *o;
    auth_md_out_init(&s->auth_md, o->auth_secret);
    if (!s->o.chunk_bytes)
        s->o.chunk_bytes = SNAP_CHUNK_BYTES;
    if (s->o.chunk_bytes > SNAP_MAX_MESSAGE / 2)
        s->o.chunk_bytes = SNAP_MAX_MESSAGE / 2;
    if (s->o.workers <= 0)
        s->o.workers = 2;
    if (s->o.workers > MAX_WORKERS)
        s->o.workers = MAX_WORKERS;
    if (s->o.max_queued <= 0)
        s->o.max_queued = 64;
    if (s->o.io_timeout_ms <= 0)
        s->o.io_timeout_ms = 30000;
    grpc_init();
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    for (int i = 0; i < s->o.workers; i++) {
        if (pthread_create(&s->th[i], NULL, worker_main, s) != 0) {
            snap_send_free(s);
            return okv_error_set(err, OKV_EINTERNAL, "cannot start a snapshot sender thread");
        }
        s->nth++;
    }
    *out = s;
    return OKV_OK;
}

static int busy(const snap_send *s, uint64_t to, uint64_t group)
{
    for (const job *j = s->head; j; j = j->next)
        if (j->to == to && j->group == group)
            return 1;
    for (int i = 0; i < MAX_WORKERS; i++)
        if (s->running[i] && s->running[i]->to == to && s->running[i]->group == group)
            return 1;
    return 0;
}

int snap_send_start(snap_send *s, uint64_t to, uint64_t group, const struct raft_message *m,
                    engine_snapshot *snap)
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        engine_snapshot_free(snap);
        return OKV_EUNAVAILABLE;
    }
    j->to = to;
    j->group = group;
    j->m = *m;
    j->m.entries = NULL;
    j->m.n_entries = 0;
    j->m.snapshot.data = NULL;
    j->m.snapshot.len = 0;
    j->snap = snap;
    pthread_mutex_lock(&s->mu);
    int refuse = s->stopping || s->st.waiting >= s->o.max_queued || busy(s, to, group);
    if (refuse) {
        s->st.refused++;
    } else {
        if (s->tail)
            s->tail->next = j;
        else
            s->head = j;
        s->tail = j;
        s->st.waiting++;
        s->st.queued++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (refuse) {
        job_free(j);
        return OKV_EUNAVAILABLE;
    }
    return OKV_OK;
}

void snap_send_stats_get(snap_send *s, struct snap_send_stats *st)
{
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    pthread_mutex_unlock(&s->mu);
}

void snap_send_free(snap_send *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    for (int i = 0; i < MAX_WORKERS; i++)
        if (s->running[i] && s->running[i]->call)
            grpc_call_cancel(s->running[i]->call, NULL);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nth; i++)
        pthread_join(s->th[i], NULL);
    while (s->head) {
        job *j = s->head;
        s->head = j->next;
        job_free(j);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    grpc_shutdown();
}

/*
 * test_transport.c — the node-to-node Raft transport over real gRPC streams:
 * two or three rpc_servers on 127.0.0.1 in one process, each with a
 * transport. Every wait polls with a deadline; nothing sleeps longer than
 * one poll step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft_codec.h"
#include "rpc_stream.h"
#include "transport.h"

#define CLUSTER 0xC1u
/* A bound on every wait, never an expectation of speed: generous, since CI
 * runs this under ASan while other builds load every core. */
#define WAIT_MS 30000

/* ---- helpers ----------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

struct rec {
    struct rec *next;
    uint64_t from, group;
    struct raft_message m;
};

struct node {
    uint64_t id;
    rpc_server *srv;
    transport *t;
    char addr[128];
    pthread_mutex_t mu;
    struct rec *head, *tail;
    size_t n;
    atomic_int warnings;
};

static void on_message(void *arg, uint64_t from, uint64_t group, struct raft_message *m)
{
    struct node *n = arg;
    struct rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->from = from;
    r->group = group;
    r->m = *m;
    pthread_mutex_lock(&n->mu);
    if (n->tail)
        n->tail->next = r;
    else
        n->head = r;
    n->tail = r;
    n->n++;
    pthread_mutex_unlock(&n->mu);
}

static void on_log(void *ctx, int level, const char *msg)
{
    struct node *n = ctx;
    if (level <= TRANSPORT_LOG_WARN)
        atomic_fetch_add(&n->warnings, 1);
    if (getenv("TRANSPORT_TEST_VERBOSE"))
        fprintf(stderr, "[%d] %s\n", level, msg);
}

static size_t inbox_count(struct node *n)
{
    pthread_mutex_lock(&n->mu);
    size_t c = n->n;
    pthread_mutex_unlock(&n->mu);
    return c;
}

/* Takes the oldest received message (NULL if none). Free with rec_free. */
static struct rec *inbox_pop(struct node *n)
{
    pthread_mutex_lock(&n->mu);
    struct rec *r = n->head;
    if (r) {
        n->head = r->next;
        if (!n->head)
            n->tail = NULL;
        n->n--;
    }
    pthread_mutex_unlock(&n->mu);
    return r;
}

static void rec_free(struct rec *r)
{
    raft_message_release(&r->m);
    free(r);
}

static void inbox_clear(struct node *n)
{
    struct rec *r;
    while ((r = inbox_pop(n)))
        rec_free(r);
}

static int wait_count(struct node *n, size_t want, int ms)
{
    int64_t end = now_ms() + ms;
    while (inbox_count(n) < want) {
        if (now_ms() > end)
            return 0;
        sleep_ms(2);
    }
    return 1;
}

static void node_start_opts(struct node *n, uint64_t id, const char *addr,
                            const struct transport_options *base)
{
    okv_error err;
    n->id = id;
    pthread_mutex_init(&n->mu, NULL);
    n->head = n->tail = NULL;
    n->n = 0;
    atomic_store(&n->warnings, 0);
    int rc = rpc_server_new(&n->srv, addr, &err);
    if (rc != 0)
        fail_msg("rpc_server_new(%s): %s", addr, err.msg);
    struct transport_options o = TRANSPORT_OPTIONS_INIT;
    if (base)
        o = *base;
    o.cluster_id = CLUSTER;
    o.node_id = id;
    o.on_message = on_message;
    o.on_message_arg = n;
    o.log = on_log;
    o.log_ctx = n;
    o.log_level = TRANSPORT_LOG_DEBUG;
    rc = transport_new(&n->t, n->srv, &o, &err);
    if (rc != 0)
        fail_msg("transport_new: %s", err.msg);
    assert_int_equal(rpc_server_start(n->srv, 2, &err), 0);
    snprintf(n->addr, sizeof n->addr, "%s", rpc_server_address(n->srv));
}

static void node_start(struct node *n, uint64_t id, const char *addr)
{
    node_start_opts(n, id, addr, NULL);
}

/* The server first (it cancels the streams that point at the transport). */
static void node_stop(struct node *n)
{
    rpc_server_shutdown_and_free(n->srv, 0);
    transport_free(n->t);
    n->srv = NULL;
    n->t = NULL;
    inbox_clear(n);
    pthread_mutex_destroy(&n->mu);
}

static int connected(struct node *a, uint64_t b)
{
    struct transport_stats st;
    return transport_stats(a->t, b, &st) == 0 && st.connected;
}

static int wait_connected(struct node *a, uint64_t b, int ms)
{
    int64_t end = now_ms() + ms;
    while (!connected(a, b)) {
        if (now_ms() > end)
            return 0;
        sleep_ms(2);
    }
    return 1;
}

/* Makes every node a peer of every other and waits for all streams. */
static void mesh(struct node *ns, int k)
{
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++)
            if (i != j)
                assert_int_equal(transport_set_peer(ns[i].t, ns[j].id, ns[j].addr), 0);
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++)
            if (i != j)
                assert_true(wait_connected(&ns[i], ns[j].id, WAIT_MS));
}

static uint8_t pat(uint64_t seed, size_t i) { return (uint8_t)(seed * 131 + i * 7 + (i >> 9)); }

/* A deterministic message of the given type; seq lands in index. */
static void make_msg(struct raft_message *m, uint8_t type, uint64_t seq, uint32_t nent,
                     size_t snap_len)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->reject = (uint8_t)(seq & 1);
    m->transfer = type == RAFT_MSG_VOTE;
    m->from = 1 + seq % 5;
    m->to = 2 + seq % 3;
    m->term = seq * 3 + 1;
    m->log_term = seq * 3;
    m->index = seq;
    m->commit = seq / 2;
    m->hint_index = seq + 11;
    m->hint_term = seq + 13;
    m->ctx = seq ^ 0xABCDEFull;
    if (nent) {
        /* Entries and payloads in one allocation, as raft_message_release
         * expects (the decoder's layout). */
        size_t total = nent * sizeof *m->entries;
        for (uint32_t i = 0; i < nent; i++)
            total += (i * 37 + seq) % 300;
        m->n_entries = nent;
        m->entries = calloc(1, total);
        uint8_t *data = (uint8_t *)(m->entries + nent);
        for (uint32_t i = 0; i < nent; i++) {
            struct raft_entry *e = &m->entries[i];
            e->term = m->term;
            e->index = seq + i;
            e->type = (uint8_t)(i % 2);
            e->len = (uint32_t)((i * 37 + seq) % 300);
            if (e->len) {
                e->data = data;
                data += e->len;
                for (uint32_t b = 0; b < e->len; b++)
                    e->data[b] = pat(seq + i, b);
            }
        }
    }
    if (type == RAFT_MSG_SNAPSHOT) {
        m->snapshot.meta.index = seq + 100;
        m->snapshot.meta.term = seq + 2;
        m->snapshot.meta.conf.n_voters = 3;
        for (int v = 0; v < 3; v++)
            m->snapshot.meta.conf.voters[v] = (raft_id)v + 1;
        m->snapshot.meta.conf.n_learners = 1;
        m->snapshot.meta.conf.learners[0] = 9;
        m->snapshot.len = snap_len;
        if (snap_len) {
            m->snapshot.data = malloc(snap_len);
            for (size_t b = 0; b < snap_len; b++)
                m->snapshot.data[b] = pat(seq, b);
        }
    }
}

/* Same bytes on the wire means the same message. */
static void assert_msg_equal(const struct raft_message *a, const struct raft_message *b)
{
    size_t la = raft_message_encoded_size(a), lb = raft_message_encoded_size(b), n;
    assert_int_equal(la, lb);
    uint8_t *ba = malloc(la), *bb = malloc(lb);
    assert_int_equal(raft_message_encode(a, ba, la, &n), 0);
    assert_int_equal(raft_message_encode(b, bb, lb, &n), 0);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static struct transport_stats stats(struct node *n, uint64_t peer)
{
    struct transport_stats st;
    transport_stats(n->t, peer, &st);
    return st;
}

/* The sender counts a frame when gRPC completes its SEND, which may be a
 * moment after the receiver already has it. */
static struct transport_stats wait_sent(struct node *n, uint64_t peer, uint64_t msgs)
{
    int64_t end = now_ms() + WAIT_MS;
    struct transport_stats st = stats(n, peer);
    while (st.msgs_sent < msgs && now_ms() < end) {
        sleep_ms(2);
        st = stats(n, peer);
    }
    return st;
}

/* ---- a raw client that writes arbitrary bytes on the stream ------------- */

struct raw {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array md, tmd;
    grpc_status_code status;
    grpc_slice details;
};

static void raw_batch(struct raw *r, grpc_op *ops, size_t n, intptr_t tag)
{
    assert_int_equal(grpc_call_start_batch(r->call, ops, n, (void *)tag, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_pluck(
        r->cq, (void *)tag, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(10, GPR_TIMESPAN)),
        NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
}

static void raw_open(struct raw *r, const char *addr)
{
    grpc_init();
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    r->ch = grpc_channel_create(addr, creds, NULL);
    grpc_channel_credentials_release(creds);
    r->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method = grpc_slice_from_static_string(TRANSPORT_METHOD);
    r->call = grpc_channel_create_call(r->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq, method, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array_init(&r->md);
    grpc_metadata_array_init(&r->tmd);
    r->details = grpc_empty_slice();
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &r->md;
    raw_batch(r, ops, 2, 1);
}

static void raw_send(struct raw *r, const uint8_t *b, size_t len)
{
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)b, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    raw_batch(r, &op, 1, 2);
    grpc_byte_buffer_destroy(bb);
}

static void raw_close(struct raw *r)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[1].data.recv_status_on_client.trailing_metadata = &r->tmd;
    ops[1].data.recv_status_on_client.status = &r->status;
    ops[1].data.recv_status_on_client.status_details = &r->details;
    raw_batch(r, ops, 2, 3);
    assert_int_equal(r->status, GRPC_STATUS_OK);
    grpc_call_unref(r->call);
    grpc_metadata_array_destroy(&r->md);
    grpc_metadata_array_destroy(&r->tmd);
    grpc_slice_unref(r->details);
    grpc_channel_destroy(r->ch);
    grpc_completion_queue_shutdown(r->cq);
    while (grpc_completion_queue_pluck(r->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(r->cq);
    grpc_shutdown();
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Builds a frame byte by byte from docs/transport.md: one MESSAGE record.
 * Returns its length; *out is malloc'd. */
static size_t craft_frame(uint8_t **out, uint64_t cluster, uint64_t from, uint64_t to,
                          uint64_t group, const struct raft_message *m)
{
    size_t msz = raft_message_encoded_size(m), n;
    size_t len = 36 + 13 + msz;
    uint8_t *b = calloc(1, len);
    memcpy(b, "OKVT", 4);
    b[4] = 1;
    le64(b + 8, cluster);
    le64(b + 16, from);
    le64(b + 24, to);
    le32(b + 32, 1);
    b[36] = 1;
    le64(b + 37, group);
    le32(b + 45, (uint32_t)msz);
    assert_int_equal(raft_message_encode(m, b + 49, msz, &n), 0);
    *out = b;
    return len;
}

/* A frame built record by record (docs/transport.md), for the raw client. */
struct fbuf {
    uint8_t *b;
    size_t len;
    uint32_t nrec;
};

static void fb_start(struct fbuf *f, uint64_t from, uint64_t to)
{
    f->b = calloc(1, 36);
    f->len = 36;
    f->nrec = 0;
    memcpy(f->b, "OKVT", 4);
    f->b[4] = 1;
    le64(f->b + 8, CLUSTER);
    le64(f->b + 16, from);
    le64(f->b + 24, to);
}

static void fb_record(struct fbuf *f, uint8_t kind, uint64_t group, const uint8_t *payload,
                      size_t plen)
{
    f->b = realloc(f->b, f->len + 13 + plen);
    uint8_t *at = f->b + f->len;
    at[0] = kind;
    le64(at + 1, group);
    le32(at + 9, (uint32_t)plen);
    if (plen)
        memcpy(at + 13, payload, plen);
    f->len += 13 + plen;
    le32(f->b + 32, ++f->nrec);
}

static void fb_message(struct fbuf *f, uint64_t group, const struct raft_message *m)
{
    size_t msz = raft_message_encoded_size(m), n;
    uint8_t *enc = malloc(msz);
    assert_int_equal(raft_message_encode(m, enc, msz, &n), 0);
    fb_record(f, 1, group, enc, msz);
    free(enc);
}

/* One HEARTBEATS entry: group 8, type 1, flags 1, term 8, commit 8, ctx 8. */
static void hb_entry(uint8_t *e, uint64_t group, const struct raft_message *m)
{
    le64(e, group);
    e[8] = m->type;
    e[9] = m->reject;
    le64(e + 10, m->term);
    le64(e + 18, m->commit);
    le64(e + 26, m->ctx);
}

/* A heartbeat (or response) as the raft core makes it: only type, from,
 * to, term, commit, ctx (and reject, which the compact form carries too). */
static void make_hb(struct raft_message *m, uint8_t type, uint64_t from, uint64_t to, uint64_t seq)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->reject = type == RAFT_MSG_HEARTBEAT_RESP && seq % 3 == 0;
    m->from = from;
    m->to = to;
    m->term = seq * 5 + 2;
    m->commit = type == RAFT_MSG_HEARTBEAT ? seq * 7 + 1 : 0;
    m->ctx = seq ^ 0x5151ull;
}

/* Bytes of a frame holding MESSAGE records of the given encoded sizes and
 * one HEARTBEATS record of nhb entries (docs/transport.md). */
static uint64_t frame_bytes(const size_t *msg_sizes, int nmsg, uint32_t nhb)
{
    uint64_t n = 36;
    for (int i = 0; i < nmsg; i++)
        n += 13 + msg_sizes[i];
    if (nhb)
        n += 13 + 4 + (uint64_t)nhb * 34;
    return n;
}

/* ---- tests ------------------------------------------------------------- */

static void test_transport__every_message_type_arrives_intact(void **state)
{
    (void)state;
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    struct raft_message sent[RAFT_MSG_TYPE_MAX_];
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX_; type++) {
        struct raft_message *m = &sent[type - 1];
        make_msg(m, type, 1000 + type, type == RAFT_MSG_APPEND ? 20 : 0,
                 type == RAFT_MSG_SNAPSHOT ? 5000 : 0);
        assert_int_equal(transport_send(ns[0].t, 2, 77 + type, m), 0);
    }
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[1], RAFT_MSG_TYPE_MAX_, WAIT_MS));
    for (uint8_t type = RAFT_MSG_APPEND; type <= RAFT_MSG_TYPE_MAX_; type++) {
        struct rec *r = inbox_pop(&ns[1]);
        assert_non_null(r);
        assert_int_equal(r->from, 1);
        assert_int_equal(r->group, 77 + type);
        assert_msg_equal(&r->m, &sent[type - 1]);
        rec_free(r);
        raft_message_release(&sent[type - 1]);
    }
    /* All twelve rode in one frame. */
    struct transport_stats st = wait_sent(&ns[0], 2, RAFT_MSG_TYPE_MAX_);
    assert_int_equal(st.frames_sent, 1);
    assert_int_equal(st.msgs_sent, RAFT_MSG_TYPE_MAX_);
    st = stats(&ns[1], 1);
    assert_int_equal(st.frames_recv, 1);
    assert_int_equal(st.msgs_recv, RAFT_MSG_TYPE_MAX_);
    assert_int_equal(st.rejected_frames, 0);
    node_stop(&ns[1]);
    node_stop(&ns[0]);
}

static void test_transport__large_snapshot_is_chunked_and_reassembled(void **state)
{
    (void)state;
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    struct raft_message before, snap, after;
    make_msg(&before, RAFT_MSG_HEARTBEAT, 1, 0, 0);
    make_msg(&snap, RAFT_MSG_SNAPSHOT, 2, 0, (size_t)10 * 1024 * 1024);
    make_msg(&after, RAFT_MSG_APPEND, 3, 4, 0);
    assert_int_equal(transport_send(ns[0].t, 2, 5, &before), 0);
    assert_int_equal(transport_send(ns[0].t, 2, 6, &snap), 0);
    assert_int_equal(transport_send(ns[0].t, 2, 7, &after), 0);
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[1], 3, WAIT_MS * 2));
    struct raft_message *want[3] = { &before, &snap, &after };
    for (int i = 0; i < 3; i++) {
        struct rec *r = inbox_pop(&ns[1]);
        assert_int_equal(r->group, 5 + i);
        assert_msg_equal(&r->m, want[i]);
        rec_free(r);
        raft_message_release(want[i]);
    }
    struct transport_stats st = wait_sent(&ns[0], 2, 3);
    assert_true(st.frames_sent >= 3);   /* 10 MiB over 4 MiB frames */
    assert_int_equal(st.msgs_sent, 3);
    st = stats(&ns[1], 1);
    assert_int_equal(st.chunk_drops, 0);
    node_stop(&ns[0]);
    node_stop(&ns[1]);
}

/* Thousands of messages over many groups between three nodes: each sender's
 * messages arrive complete and in order, batched into few frames. */
static void test_transport__thousands_of_messages_many_groups_in_order(void **state)
{
    (void)state;
    enum { K = 3, PER_PEER = 6000, GROUPS = 200 };
    struct node ns[K];
    for (int i = 0; i < K; i++)
        node_start(&ns[i], (uint64_t)i + 1, "127.0.0.1:0");
    mesh(ns, K);
    for (uint64_t seq = 0; seq < PER_PEER; seq++) {
        for (int i = 0; i < K; i++) {
            for (int j = 0; j < K; j++) {
                if (i == j)
                    continue;
                struct raft_message m;
                make_msg(&m, (uint8_t)(seq % 2 ? RAFT_MSG_HEARTBEAT : RAFT_MSG_APPEND), seq,
                         seq % 2 ? 0 : (uint32_t)(seq % 3), 0);
                assert_int_equal(transport_send(ns[i].t, ns[j].id, seq % GROUPS, &m), 0);
                raft_message_release(&m);
            }
        }
        if (seq % 250 == 249)   /* one raft loop iteration */
            for (int i = 0; i < K; i++)
                transport_flush(ns[i].t);
    }
    for (int i = 0; i < K; i++)
        transport_flush(ns[i].t);
    for (int j = 0; j < K; j++) {
        assert_true(wait_count(&ns[j], (size_t)PER_PEER * (K - 1), WAIT_MS * 3));
        uint64_t next[K + 1] = { 0 };
        struct rec *r;
        while ((r = inbox_pop(&ns[j]))) {
            assert_true(r->from >= 1 && r->from <= K && r->from != ns[j].id);
            assert_int_equal(r->m.index, next[r->from]);
            assert_int_equal(r->group, next[r->from] % GROUPS);
            next[r->from]++;
            rec_free(r);
        }
        for (int i = 0; i < K; i++)
            if (i != j)
                assert_int_equal(next[ns[i].id], PER_PEER);
    }
    struct transport_stats st = wait_sent(&ns[0], 2, PER_PEER);
    assert_int_equal(st.msgs_sent, PER_PEER);
    assert_int_equal(st.drops, 0);
    assert_true(st.frames_sent <= PER_PEER / 100);   /* batched */
    st = stats(&ns[0], TRANSPORT_ALL_PEERS);
    assert_int_equal(st.known, 2);
    assert_int_equal(st.connected, 2);
    assert_int_equal(st.msgs_recv, (uint64_t)PER_PEER * 2);
    for (int i = 0; i < K; i++)
        node_stop(&ns[i]);
}

/* Probes (send_until_delivered) travel on a group of their own, with a
 * fresh index per call. */
#define PROBE_GROUP 4242
static atomic_uint_fast64_t probe_seq = 1;

/* 1 if n's inbox holds the probe with this index. */
static int inbox_has_probe(struct node *n, uint64_t index)
{
    pthread_mutex_lock(&n->mu);
    int found = 0;
    for (struct rec *r = n->head; r && !found; r = r->next)
        found = r->group == PROBE_GROUP && r->m.index == index;
    pthread_mutex_unlock(&n->mu);
    return found;
}

/* Sends one heartbeat per poll until one of this call's arrives. Others
 * may still be on their way when it returns (and a late one of an earlier
 * call proves nothing about now): pop_skipping_probes drops them. */
static int send_until_delivered(struct node *a, struct node *b, int ms)
{
    int64_t end = now_ms() + ms;
    uint64_t index = atomic_fetch_add(&probe_seq, 1);
    while (!inbox_has_probe(b, index)) {
        if (now_ms() > end)
            return 0;
        struct raft_message m;
        make_msg(&m, RAFT_MSG_HEARTBEAT, index, 0, 0);
        transport_send(a->t, b->id, PROBE_GROUP, &m);
        transport_flush(a->t);
        sleep_ms(5);
    }
    return 1;
}

/* The oldest message in n's inbox that is not a probe, waiting up to ms
 * for one; NULL if none came. */
static struct rec *pop_skipping_probes(struct node *n, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        struct rec *r = inbox_pop(n);
        if (r && r->group != PROBE_GROUP)
            return r;
        if (r) {
            rec_free(r);
            continue;
        }
        if (now_ms() > end)
            return NULL;
        sleep_ms(2);
    }
}

static void test_transport__peer_down_at_first_comes_up_later(void **state)
{
    (void)state;
    struct node a, b;
    /* Find a free port, then leave it unserved. */
    node_start(&b, 2, "127.0.0.1:0");
    char addr[128];
    snprintf(addr, sizeof addr, "%s", b.addr);
    node_stop(&b);
    node_start(&a, 1, "127.0.0.1:0");
    assert_int_equal(transport_set_peer(a.t, 2, addr), 0);
    struct raft_message m;
    make_msg(&m, RAFT_MSG_VOTE, 1, 0, 0);
    /* Send until a failed attempt was retried and something was dropped:
     * how many attempts fit in a given time depends on the machine's load. */
    int64_t end = now_ms() + WAIT_MS;
    struct transport_stats st = stats(&a, 2);
    while ((st.reconnects < 1 || st.drops == 0) && now_ms() < end) {
        transport_send(a.t, 2, 1, &m);
        transport_flush(a.t);
        sleep_ms(10);
        st = stats(&a, 2);
    }
    assert_int_equal(st.connected, 0);
    assert_true(st.drops > 0);
    assert_true(st.reconnects >= 1);
    assert_true(st.last_error[0] != '\0');
    node_start(&b, 2, addr);
    assert_int_equal(transport_set_peer(b.t, 1, a.addr), 0);
    assert_true(send_until_delivered(&a, &b, WAIT_MS));
    /* The receiver can have the message before the sender has handled its
     * stream's start (which sets connected). */
    assert_true(wait_connected(&a, 2, WAIT_MS));
    node_stop(&a);
    node_stop(&b);
}

static void test_transport__peer_killed_mid_stream_and_restarted(void **state)
{
    (void)state;
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    char addr[128];
    snprintf(addr, sizeof addr, "%s", ns[1].addr);
    /* Traffic in flight while the peer dies, a snapshot among it. */
    for (uint64_t seq = 0; seq < 2000; seq++) {
        struct raft_message m;
        make_msg(&m, seq == 10 ? RAFT_MSG_SNAPSHOT : RAFT_MSG_APPEND, seq, 2,
                 seq == 10 ? (size_t)6 * 1024 * 1024 : 0);
        transport_send(ns[0].t, 2, 1, &m);
        raft_message_release(&m);
        if (seq % 100 == 0)
            transport_flush(ns[0].t);
    }
    transport_flush(ns[0].t);
    node_stop(&ns[1]);
    int64_t end = now_ms() + WAIT_MS;
    while (connected(&ns[0], 2) && now_ms() < end)
        sleep_ms(2);
    assert_false(connected(&ns[0], 2));

    node_start(&ns[1], 2, addr);
    assert_int_equal(transport_set_peer(ns[1].t, 1, ns[0].addr), 0);
    assert_true(send_until_delivered(&ns[0], &ns[1], WAIT_MS));
    assert_true(wait_connected(&ns[0], 2, WAIT_MS));
    inbox_clear(&ns[1]);
    for (uint64_t seq = 0; seq < 100; seq++) {
        struct raft_message m;
        make_msg(&m, RAFT_MSG_APPEND, seq, 1, 0);
        assert_int_equal(transport_send(ns[0].t, 2, 3, &m), 0);
        raft_message_release(&m);
    }
    transport_flush(ns[0].t);
    /* Probes sent before these may still arrive first: skip them. */
    for (uint64_t seq = 0; seq < 100; seq++) {
        struct rec *r = pop_skipping_probes(&ns[1], WAIT_MS);
        assert_non_null(r);
        assert_int_equal(r->group, 3);
        assert_int_equal(r->m.index, seq);
        rec_free(r);
    }
    /* And the reverse direction works from the restarted node. */
    assert_true(send_until_delivered(&ns[1], &ns[0], WAIT_MS));
    assert_true(stats(&ns[0], 2).reconnects >= 1);
    node_stop(&ns[0]);
    node_stop(&ns[1]);
}

static void test_transport__address_change_reconnects(void **state)
{
    (void)state;
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    /* Node 2 moves to another port; node 1 learns the new address. */
    node_stop(&ns[1]);
    node_start(&ns[1], 2, "127.0.0.1:0");
    assert_int_equal(transport_set_peer(ns[1].t, 1, ns[0].addr), 0);
    assert_int_equal(transport_set_peer(ns[0].t, 2, ns[1].addr), 0);
    assert_true(send_until_delivered(&ns[0], &ns[1], WAIT_MS));
    /* The receiver can have the message before the sender has handled its
     * stream's start (which sets connected). */
    assert_true(wait_connected(&ns[0], 2, WAIT_MS));
    /* Setting the same address again keeps the stream: traffic sent after
     * it arrives, and no stream was started meanwhile (a reconnect would
     * have counted before anything could arrive on the new stream). */
    uint64_t rc = stats(&ns[0], 2).reconnects;
    assert_int_equal(transport_set_peer(ns[0].t, 2, ns[1].addr), 0);
    assert_true(send_until_delivered(&ns[0], &ns[1], WAIT_MS));
    assert_true(connected(&ns[0], 2));
    assert_int_equal(stats(&ns[0], 2).reconnects, rc);
    node_stop(&ns[0]);
    node_stop(&ns[1]);
}

static void test_transport__blocked_peer_gets_nothing(void **state)
{
    (void)state;
    struct node ns[3];
    for (int i = 0; i < 3; i++)
        node_start(&ns[i], (uint64_t)i + 1, "127.0.0.1:0");
    mesh(ns, 3);
    transport_block(ns[0].t, 2, 1);
    struct raft_message m;
    make_msg(&m, RAFT_MSG_APPEND, 5, 3, 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(transport_send(ns[0].t, 2, 1, &m), OKV_EUNAVAILABLE);
        assert_int_equal(transport_send(ns[0].t, 3, 1, &m), 0);
    }
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[2], 10, WAIT_MS));   /* node 3 unaffected */
    sleep_ms(50);
    assert_int_equal(inbox_count(&ns[1]), 0);
    struct transport_stats st = stats(&ns[0], 2);
    assert_int_equal(st.blocked, 1);
    assert_int_equal(st.drops_blocked, 10);
    assert_int_equal(st.drops, 10);
    transport_block(ns[0].t, 2, 0);
    assert_int_equal(transport_send(ns[0].t, 2, 1, &m), 0);
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[1], 1, WAIT_MS));
    raft_message_release(&m);
    for (int i = 0; i < 3; i++)
        node_stop(&ns[i]);
}

static void test_transport__foreign_cluster_and_unknown_node_refused(void **state)
{
    (void)state;
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    struct raft_message m;
    make_msg(&m, RAFT_MSG_HEARTBEAT, 9, 0, 0);
    struct raw r;
    raw_open(&r, ns[1].addr);
    uint8_t *f;
    size_t len = craft_frame(&f, CLUSTER + 1, 1, 2, 4, &m);   /* another cluster */
    raw_send(&r, f, len);
    free(f);
    len = craft_frame(&f, CLUSTER, 99, 2, 4, &m);   /* node not in the table */
    raw_send(&r, f, len);
    free(f);
    len = craft_frame(&f, CLUSTER, 1, 3, 4, &m);   /* addressed to another node */
    raw_send(&r, f, len);
    free(f);
    len = craft_frame(&f, CLUSTER, 1, 2, 4, &m);   /* fine: proves the doc's format */
    raw_send(&r, f, len);
    free(f);
    raw_close(&r);
    assert_true(wait_count(&ns[1], 1, WAIT_MS));
    struct rec *got = inbox_pop(&ns[1]);
    assert_int_equal(got->from, 1);
    assert_int_equal(got->group, 4);
    assert_msg_equal(&got->m, &m);
    rec_free(got);
    assert_int_equal(inbox_count(&ns[1]), 0);
    struct transport_stats st = stats(&ns[1], TRANSPORT_ALL_PEERS);
    assert_int_equal(st.rejected_frames, 3);
    assert_int_equal(stats(&ns[1], 1).rejected_frames, 1);
    assert_true(atomic_load(&ns[1].warnings) >= 3);
    raft_message_release(&m);
    node_stop(&ns[0]);
    node_stop(&ns[1]);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_transport__garbage_on_the_stream_refused_without_crash(void **state)
{
    (void)state;
    struct transport_options o = TRANSPORT_OPTIONS_INIT;
    o.max_reassembly_bytes = 1 << 20;
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start_opts(&ns[1], 2, "127.0.0.1:0", &o);
    mesh(ns, 2);
    struct raft_message m;
    make_msg(&m, RAFT_MSG_APPEND, 3, 3, 0);
    uint8_t *good;
    size_t glen = craft_frame(&good, CLUSTER, 1, 2, 8, &m);
    struct raw r;
    raw_open(&r, ns[1].addr);
    uint64_t seed = 0x5EEDu;
    uint8_t junk[512];
    raw_send(&r, junk, 0);   /* empty message */
    for (int i = 0; i < 100; i++) {   /* random bytes, some with a valid magic */
        size_t n = (size_t)(rng_next(&seed) % sizeof junk);
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t)rng_next(&seed);
        if (i % 2 && n >= 36)
            memcpy(junk, good, 36);
        raw_send(&r, junk, n);
    }
    for (size_t cut = 0; cut < glen; cut += 3)   /* every truncation */
        raw_send(&r, good, cut);
    uint8_t *bad = malloc(glen);
    for (int i = 0; i < 300; i++) {   /* byte flips past the header */
        memcpy(bad, good, glen);
        for (int k = 0; k < 3; k++)
            bad[36 + rng_next(&seed) % (glen - 36)] ^= (uint8_t)(1 + rng_next(&seed) % 255);
        raw_send(&r, bad, glen);
    }
    /* Chunks: huge total (over the cap), an out-of-order piece, an orphan. */
    uint8_t ch[36 + 13 + 16 + 8];
    memcpy(ch, good, 36);
    le32(ch + 32, 1);
    ch[36] = 2;
    le64(ch + 37, 8);
    le32(ch + 45, 24);
    uint64_t totals[3] = { (uint64_t)1 << 40, 64, 64 };
    uint64_t offs[3] = { 0, 0, 16 };
    for (int i = 0; i < 3; i++) {
        le64(ch + 49, totals[i]);
        le64(ch + 57, offs[i]);
        memset(ch + 65, 0xEE, 8);
        raw_send(&r, ch, sizeof ch);
    }
    /* A sentinel that must still get through, on the same stream. */
    struct raft_message sentinel;
    make_msg(&sentinel, RAFT_MSG_TIMEOUT_NOW, 777777, 0, 0);
    uint8_t *sf;
    size_t slen = craft_frame(&sf, CLUSTER, 1, 2, 9, &sentinel);
    raw_send(&r, sf, slen);
    raw_close(&r);
    int64_t end = now_ms() + WAIT_MS;
    int found = 0;
    while (!found && now_ms() < end) {
        struct rec *x = inbox_pop(&ns[1]);
        if (!x) {
            sleep_ms(2);
            continue;
        }
        found = x->group == 9 && x->m.index == 777777 && x->m.type == RAFT_MSG_TIMEOUT_NOW;
        rec_free(x);
    }
    assert_true(found);
    struct transport_stats st = stats(&ns[1], TRANSPORT_ALL_PEERS);
    assert_true(st.rejected_frames >= 100);
    assert_true(st.decode_errors + st.rejected_frames > 200);
    assert_true(st.chunk_drops >= 2);
    free(good);
    free(bad);
    free(sf);
    raft_message_release(&m);
    raft_message_release(&sentinel);
    /* The node still works. */
    assert_true(send_until_delivered(&ns[0], &ns[1], WAIT_MS));
    node_stop(&ns[0]);
    node_stop(&ns[1]);
}

static void test_transport__full_queue_drops_and_counts(void **state)
{
    (void)state;
    struct transport_options o = TRANSPORT_OPTIONS_INIT;
    o.max_queue_msgs = 100;
    struct node ns[2];
    node_start_opts(&ns[0], 1, "127.0.0.1:0", &o);
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    struct raft_message m;
    make_msg(&m, RAFT_MSG_HEARTBEAT, 1, 0, 0);
    int queued = 0;
    for (int i = 0; i < 150; i++)
        queued += transport_send(ns[0].t, 2, 1, &m) == 0;
    assert_int_equal(queued, 100);
    struct transport_stats st = stats(&ns[0], 2);
    assert_int_equal(st.drops_queue_full, 50);
    assert_int_equal(st.queued_msgs, 100);
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[1], 100, WAIT_MS));
    inbox_clear(&ns[1]);
    /* Coalesced heartbeats count against the same bounds. */
    wait_sent(&ns[0], 2, 100);
    raft_message_release(&m);
    make_hb(&m, RAFT_MSG_HEARTBEAT, 1, 2, 1);
    queued = 0;
    for (int i = 0; i < 150; i++)
        queued += transport_send(ns[0].t, 2, (uint64_t)i, &m) == 0;
    assert_int_equal(queued, 100);
    assert_int_equal(stats(&ns[0], 2).drops_queue_full, 100);
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[1], 100, WAIT_MS));
    assert_int_equal(wait_sent(&ns[0], 2, 200).heartbeats_sent, 100);
    raft_message_release(&m);
    node_stop(&ns[0]);
    node_stop(&ns[1]);
}

/* A chunked message beyond the receiver's reassembly cap is dropped and
 * counted; smaller frames still get the later messages through. */
static void test_transport__chunk_over_reassembly_cap_dropped(void **state)
{
    (void)state;
    struct transport_options small = TRANSPORT_OPTIONS_INIT;
    small.max_frame_bytes = 64 * 1024;
    small.max_reassembly_bytes = 512 * 1024;
    struct node ns[2];
    node_start_opts(&ns[0], 1, "127.0.0.1:0", &small);
    node_start_opts(&ns[1], 2, "127.0.0.1:0", &small);
    mesh(ns, 2);
    struct raft_message ok_snap, big, after;
    make_msg(&ok_snap, RAFT_MSG_SNAPSHOT, 1, 0, 300 * 1024);
    make_msg(&big, RAFT_MSG_SNAPSHOT, 2, 0, 1024 * 1024);
    make_msg(&after, RAFT_MSG_APPEND, 3, 2, 0);
    assert_int_equal(transport_send(ns[0].t, 2, 1, &ok_snap), 0);
    assert_int_equal(transport_send(ns[0].t, 2, 1, &big), 0);
    assert_int_equal(transport_send(ns[0].t, 2, 1, &after), 0);
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[1], 2, WAIT_MS));
    struct rec *r = inbox_pop(&ns[1]);
    assert_msg_equal(&r->m, &ok_snap);
    rec_free(r);
    r = inbox_pop(&ns[1]);
    assert_msg_equal(&r->m, &after);
    rec_free(r);
    assert_int_equal(stats(&ns[1], 1).chunk_drops, 1);
    assert_true(wait_sent(&ns[0], 2, 3).frames_sent > 20);
    raft_message_release(&ok_snap);
    raft_message_release(&big);
    raft_message_release(&after);
    node_stop(&ns[0]);
    node_stop(&ns[1]);
}

/* The case: every group's heartbeat of one raft loop iteration
 * travels in one HEARTBEATS record, after the frame's other records, and
 * each arrives as the message that was sent. */
static void test_transport__heartbeats_of_many_groups_coalesced(void **state)
{
    (void)state;
    enum { GROUPS = 24 };
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    struct raft_message app, hb[2 * GROUPS];
    make_msg(&app, RAFT_MSG_APPEND, 3, 2, 0);
    for (int round = 0; round < 2; round++) {   /* two iterations, two frames */
        for (int g = 0; g < GROUPS; g++) {
            int k = round * GROUPS + g;
            make_hb(&hb[k], (uint8_t)(g % 2 ? RAFT_MSG_HEARTBEAT_RESP : RAFT_MSG_HEARTBEAT), 1, 2,
                    (uint64_t)k);
            assert_int_equal(transport_send(ns[0].t, 2, 100 + (uint64_t)g, &hb[k]), 0);
            if (round == 0 && g == GROUPS / 2)   /* queued among the heartbeats */
                assert_int_equal(transport_send(ns[0].t, 2, 7, &app), 0);
        }
        transport_flush(ns[0].t);
    }
    assert_true(wait_count(&ns[1], 2 * GROUPS + 1, WAIT_MS));
    /* The frame's MESSAGE record first, then its heartbeats in send order,
     * then the next frame's heartbeats. */
    struct rec *r = inbox_pop(&ns[1]);
    assert_int_equal(r->group, 7);
    assert_msg_equal(&r->m, &app);
    rec_free(r);
    for (int k = 0; k < 2 * GROUPS; k++) {
        r = inbox_pop(&ns[1]);
        assert_non_null(r);
        assert_int_equal(r->from, 1);
        assert_int_equal(r->group, 100 + k % GROUPS);
        assert_msg_equal(&r->m, &hb[k]);
        assert_int_equal(r->m.from, 1);
        assert_int_equal(r->m.to, 2);
        rec_free(r);
    }
    struct transport_stats st = wait_sent(&ns[0], 2, 2 * GROUPS + 1);
    size_t asz = raft_message_encoded_size(&app);
    assert_int_equal(st.frames_sent, 2);
    assert_int_equal(st.msgs_sent, 2 * GROUPS + 1);
    assert_int_equal(st.heartbeats_sent, 2 * GROUPS);
    /* Exactly one HEARTBEATS record per frame: nothing else fits the bytes. */
    assert_int_equal(st.bytes_sent, frame_bytes(&asz, 1, GROUPS) + frame_bytes(NULL, 0, GROUPS));
    st = stats(&ns[1], 1);
    assert_int_equal(st.frames_recv, 2);
    assert_int_equal(st.heartbeats_recv, 2 * GROUPS);
    assert_int_equal(st.msgs_recv, 2 * GROUPS + 1);
    assert_int_equal(st.decode_errors, 0);
    raft_message_release(&app);
    node_stop(&ns[1]);
    node_stop(&ns[0]);
}

/* More heartbeats than one frame holds: each frame still stays within
 * max_frame_bytes and carries one HEARTBEATS record. */
static void test_transport__heartbeats_split_at_frame_limit(void **state)
{
    (void)state;
    enum { N = 100, PER_FRAME = (1024 - 36 - 13 - 4) / 34 };   /* 28 */
    struct transport_options small = TRANSPORT_OPTIONS_INIT;
    small.max_frame_bytes = 1024;
    struct node ns[2];
    node_start_opts(&ns[0], 1, "127.0.0.1:0", &small);
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    struct raft_message hb[N];
    for (int k = 0; k < N; k++) {
        make_hb(&hb[k], RAFT_MSG_HEARTBEAT, 1, 2, (uint64_t)k);
        assert_int_equal(transport_send(ns[0].t, 2, (uint64_t)k, &hb[k]), 0);
    }
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[1], N, WAIT_MS));
    for (int k = 0; k < N; k++) {
        struct rec *r = inbox_pop(&ns[1]);
        assert_int_equal(r->group, k);
        assert_msg_equal(&r->m, &hb[k]);
        rec_free(r);
    }
    enum { FRAMES = (N + PER_FRAME - 1) / PER_FRAME };
    struct transport_stats st = wait_sent(&ns[0], 2, N);
    assert_int_equal(st.frames_sent, FRAMES);
    assert_int_equal(st.heartbeats_sent, N);
    assert_int_equal(st.bytes_sent, (FRAMES - 1) * frame_bytes(NULL, 0, PER_FRAME) +
                                        frame_bytes(NULL, 0, N - (FRAMES - 1) * PER_FRAME));
    node_stop(&ns[1]);
    node_stop(&ns[0]);
}

/* A heartbeat with anything the compact entry cannot carry goes as a
 * MESSAGE record, in order with the other MESSAGE records, intact. */
static void test_transport__heartbeat_compact_form_cannot_carry_goes_as_message(void **state)
{
    (void)state;
    enum { K = 8 };
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    struct raft_message odd[K], plain;
    for (int i = 0; i < K; i++)
        make_hb(&odd[i], (uint8_t)(i % 2 ? RAFT_MSG_HEARTBEAT_RESP : RAFT_MSG_HEARTBEAT), 1, 2,
                (uint64_t)i + 50);
    make_msg(&odd[0], RAFT_MSG_HEARTBEAT, 60, 2, 0);   /* entries, every field set */
    odd[0].from = 1;
    odd[0].to = 2;
    odd[1].index = 9;
    odd[2].log_term = 4;
    odd[3].hint_index = 5;
    odd[4].hint_term = 6;
    odd[5].transfer = 1;
    odd[6].from = 3;   /* not this node: the frame cannot imply it */
    odd[7].to = 4;     /* not the destination */
    make_hb(&plain, RAFT_MSG_HEARTBEAT, 1, 2, 70);
    assert_int_equal(transport_send(ns[0].t, 2, 1, &plain), 0);
    for (int i = 0; i < K; i++)
        assert_int_equal(transport_send(ns[0].t, 2, 10 + (uint64_t)i, &odd[i]), 0);
    transport_flush(ns[0].t);
    assert_true(wait_count(&ns[1], K + 1, WAIT_MS));
    for (int i = 0; i < K; i++) {   /* the MESSAGE records, in order */
        struct rec *r = inbox_pop(&ns[1]);
        assert_int_equal(r->from, 1);
        assert_int_equal(r->group, 10 + i);
        assert_msg_equal(&r->m, &odd[i]);
        rec_free(r);
        raft_message_release(&odd[i]);
    }
    struct rec *r = inbox_pop(&ns[1]);   /* the frame's HEARTBEATS record last */
    assert_int_equal(r->group, 1);
    assert_msg_equal(&r->m, &plain);
    rec_free(r);
    struct transport_stats st = wait_sent(&ns[0], 2, K + 1);
    assert_int_equal(st.frames_sent, 1);
    assert_int_equal(st.heartbeats_sent, 1);
    assert_int_equal(stats(&ns[1], 1).heartbeats_recv, 1);
    node_stop(&ns[1]);
    node_stop(&ns[0]);
}

/* A HEARTBEATS record that is truncated, miscounted, or holds an entry of
 * another type or unknown flags is refused whole and counted as a decode
 * error; the frame's other records are still delivered. */
static void test_transport__malformed_heartbeats_record_refused_rest_delivered(void **state)
{
    (void)state;
    struct node ns[2];
    node_start(&ns[0], 1, "127.0.0.1:0");
    node_start(&ns[1], 2, "127.0.0.1:0");
    mesh(ns, 2);
    struct raft_message before, after, hb[2];
    make_msg(&before, RAFT_MSG_APPEND, 1, 2, 0);
    make_msg(&after, RAFT_MSG_VOTE, 2, 0, 0);
    make_hb(&hb[0], RAFT_MSG_HEARTBEAT, 1, 2, 1);
    make_hb(&hb[1], RAFT_MSG_HEARTBEAT_RESP, 1, 2, 3);   /* reject set */
    uint8_t good[4 + 2 * 34];
    le32(good, 2);
    hb_entry(good + 4, 31, &hb[0]);
    hb_entry(good + 4 + 34, 32, &hb[1]);
    enum { BAD = 6 };
    uint8_t bad[BAD][sizeof good];
    size_t bad_len[BAD];
    for (int i = 0; i < BAD; i++) {
        memcpy(bad[i], good, sizeof good);
        bad_len[i] = sizeof good;
    }
    bad_len[0] = sizeof good - 5;   /* truncated last entry */
    bad_len[1] = 2;                 /* shorter than the count */
    le32(bad[2], 3);                /* count says three, two follow */
    le32(bad[3], 0xFFFFFFFFu);      /* a count that would overflow */
    bad[4][4 + 34 + 8] = RAFT_MSG_APPEND;   /* not a heartbeat type */
    bad[5][4 + 8] = 99;                     /* unknown type */
    struct raw r;
    raw_open(&r, ns[1].addr);
    for (int i = 0; i <= BAD + 1; i++) {
        struct fbuf f;
        fb_start(&f, 1, 2);
        fb_message(&f, 5, &before);
        if (i < BAD)
            fb_record(&f, 3, 0, bad[i], bad_len[i]);
        else if (i == BAD) {   /* unknown flag bit */
            uint8_t fl[sizeof good];
            memcpy(fl, good, sizeof good);
            fl[4 + 9] = 2;
            fb_record(&f, 3, 0, fl, sizeof fl);
        } else {   /* well-formed: proves the doc's format */
            fb_record(&f, 3, 0, good, sizeof good);
        }
        fb_message(&f, 6, &after);
        raw_send(&r, f.b, f.len);
        free(f.b);
    }
    raw_close(&r);
    assert_true(wait_count(&ns[1], 2 * (BAD + 2) + 2, WAIT_MS));
    for (int i = 0; i <= BAD + 1; i++) {
        struct rec *x = inbox_pop(&ns[1]);
        assert_int_equal(x->group, 5);
        assert_msg_equal(&x->m, &before);
        rec_free(x);
        if (i == BAD + 1) {
            for (int k = 0; k < 2; k++) {
                x = inbox_pop(&ns[1]);
                assert_int_equal(x->from, 1);
                assert_int_equal(x->group, 31 + k);
                assert_msg_equal(&x->m, &hb[k]);
                rec_free(x);
            }
        }
        x = inbox_pop(&ns[1]);
        assert_int_equal(x->group, 6);
        assert_msg_equal(&x->m, &after);
        rec_free(x);
    }
    assert_int_equal(inbox_count(&ns[1]), 0);
    struct transport_stats st = stats(&ns[1], 1);
    assert_int_equal(st.decode_errors, BAD + 1);
    assert_int_equal(st.rejected_frames, 0);
    assert_int_equal(st.frames_recv, BAD + 2);
    assert_int_equal(st.heartbeats_recv, 2);
    assert_true(atomic_load(&ns[1].warnings) >= 1);
    raft_message_release(&before);
    raft_message_release(&after);
    node_stop(&ns[0]);
    node_stop(&ns[1]);
}

static void test_transport__clean_shutdown_with_streams_open(void **state)
{
    (void)state;
    struct node ns[3];
    for (int i = 0; i < 3; i++)
        node_start(&ns[i], (uint64_t)i + 1, "127.0.0.1:0");
    mesh(ns, 3);
    /* Frames queued and in flight everywhere when the nodes go away. */
    for (uint64_t seq = 0; seq < 3000; seq++) {
        struct raft_message m;
        make_msg(&m, RAFT_MSG_APPEND, seq, 4, seq == 5 ? (size_t)5 * 1024 * 1024 : 0);
        if (seq == 5)
            m.type = RAFT_MSG_SNAPSHOT;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                if (i != j)
                    transport_send(ns[i].t, ns[j].id, seq % 10, &m);
        raft_message_release(&m);
        if (seq % 500 == 0)
            for (int i = 0; i < 3; i++)
                transport_flush(ns[i].t);
    }
    /* No timing assertion: how long this takes depends on the machine's
     * load. A shutdown that hangs shows as ctest's TIMEOUT, a use after
     * free or a leak as ASan's report. */
    node_stop(&ns[1]);
    node_stop(&ns[0]);
    node_stop(&ns[2]);
}

static void test_transport__options_and_arguments_checked(void **state)
{
    (void)state;
    okv_error err;
    rpc_server *srv;
    assert_int_equal(rpc_server_new(&srv, "127.0.0.1:0", &err), 0);
    transport *t = NULL;
    struct transport_options o = TRANSPORT_OPTIONS_INIT;
    o.node_id = 1;
    o.on_message = on_message;
    o.max_frame_bytes = TRANSPORT_MAX_FRAME_LIMIT + 1;
    assert_int_equal(transport_new(&t, srv, &o, &err), OKV_EINVAL);
    o.max_frame_bytes = 4u << 20;
    o.node_id = 0;
    assert_int_equal(transport_new(&t, srv, &o, &err), OKV_EINVAL);
    o.node_id = 1;
    struct node n;
    memset(&n, 0, sizeof n);
    pthread_mutex_init(&n.mu, NULL);
    o.on_message_arg = &n;
    assert_int_equal(transport_new(&t, srv, &o, &err), 0);
    assert_int_equal(transport_set_peer(t, 1, "127.0.0.1:1"), OKV_EINVAL);   /* itself */
    assert_int_equal(transport_set_peer(t, 0, "127.0.0.1:1"), OKV_EINVAL);
    struct raft_message m;
    make_msg(&m, RAFT_MSG_APPEND, 1, 0, 0);
    assert_int_equal(transport_send(t, 5, 1, &m), OKV_ENOTFOUND);
    m.type = 99;
    assert_int_equal(transport_send(t, 5, 1, &m), OKV_EINVAL);
    struct transport_stats st;
    assert_int_equal(transport_stats(t, 5, &st), OKV_ENOTFOUND);
    assert_int_equal(st.known, 0);
    rpc_server_shutdown_and_free(srv, 0);   /* never started */
    transport_free(t);
    transport_free(NULL);
    pthread_mutex_destroy(&n.mu);
}

int main(void)
{
    /* TRANSPORT_TEST_FILTER=pattern runs only the matching tests. */
    if (getenv("TRANSPORT_TEST_FILTER"))
        cmocka_set_test_filter(getenv("TRANSPORT_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transport__every_message_type_arrives_intact),
        cmocka_unit_test(test_transport__large_snapshot_is_chunked_and_reassembled),
        cmocka_unit_test(test_transport__thousands_of_messages_many_groups_in_order),
        cmocka_unit_test(test_transport__peer_down_at_first_comes_up_later),
        cmocka_unit_test(test_transport__peer_killed_mid_stream_and_restarted),
        cmocka_unit_test(test_transport__address_change_reconnects),
        cmocka_unit_test(test_transport__blocked_peer_gets_nothing),
        cmocka_unit_test(test_transport__foreign_cluster_and_unknown_node_refused),
        cmocka_unit_test(test_transport__garbage_on_the_stream_refused_without_crash),
        cmocka_unit_test(test_transport__full_queue_drops_and_counts),
        cmocka_unit_test(test_transport__chunk_over_reassembly_cap_dropped),
        cmocka_unit_test(test_transport__heartbeats_of_many_groups_coalesced),
        cmocka_unit_test(test_transport__heartbeats_split_at_frame_limit),
        cmocka_unit_test(test_transport__heartbeat_compact_form_cannot_carry_goes_as_message),
        cmocka_unit_test(test_transport__malformed_heartbeats_record_refused_rest_delivered),
        cmocka_unit_test(test_transport__clean_shutdown_with_streams_open),
        cmocka_unit_test(test_transport__options_and_arguments_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Streamed partition snapshots over real RocksDB (and, in the last tests,
 * real gRPC): the stream format; a partition moved from one engine to
 * another through chunks, SST files and ingestion, exactly-once records
 * included; damaged, cut, reordered and foreign streams refused without the
 * receiving partition ever being touched; an install interrupted by a crash
 * (after its marker, after its ingest) finished by the next raftstore_new,
 * and one whose files are gone refused; the sender and the receiver over a
 * real gRPC call. No timing assertions: waits are bounded, never measured. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_sst.h"
#include "fsm.h"
#include "fsm_snapshot.h"
#include "keycodec.h"
#include "okv_test.h"
#include "raftlog.h"
#include "raftstore.h"
#include "rpc_server.h"
#include "snap_format.h"
#include "snap_recv.h"
#include "snap_send.h"

#define T 1u   /* table orders */
#define P 3u   /* the partition moved */
#define CLUSTER 0xc1u
#define LEADER 1u
#define FOLLOWER 2u

static uint64_t G(void) { return fsm_group_id(T, P); }

/* ---- one node's engine ------------------------------------------------------ */

typedef struct side {
    char *dir;
    engine *e;
    fsm *f;
} side;

static void side_open(side *s, const char *tag)
{
    okv_error err;
    if (!s->dir)
        s->dir = okv_test_tmpdir(tag);
    assert_int_equal(engine_open(&s->e, s->dir, NULL, &err), OKV_OK);
    assert_int_equal(fsm_new(&s->f, s->e, &err), OKV_OK);
}

static void side_close(side *s)
{
    fsm_free(s->f);
    engine_close(s->e);
    s->f = NULL;
    s->e = NULL;
}

static void side_free(side *s)
{
    if (s->e)
        side_close(s);
    okv_test_rmtree(s->dir);
    free(s->dir);
    s->dir = NULL;
}

static command_result apply_to(fsm *f, uint32_t part, uint64_t index, uint8_t op, const char *key,
                               const char *val, uint64_t client, uint64_t req)
{
    command c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.table_id = T;
    c.partition = part;
    c.key = (const uint8_t *)key;
    c.key_len = strlen(key);
    c.value = (const uint8_t *)(val ? val : "");
    c.value_len = val ? strlen(val) : 0;
    c.client_id = client;
    c.request_id = req;
    uint8_t buf[4096];
    command_encode(&c, buf);
    command_result r;
    okv_error err;
    if (fsm_apply(f, fsm_group_id(T, part), index, buf, command_encoded_size(&c), &r, &err))
        fail_msg("apply %llu: %s", (unsigned long long)index, err.msg);
    return r;
}

static void flush(fsm *f)
{
    okv_error err;
    assert_int_equal(fsm_flush(f, &err), OKV_OK);
}

/* The leader's partition: puts with client ids (exactly-once records), a
 * delete, values of a few hundred bytes so a small chunk size makes many
 * chunks; a neighbouring partition must never be touched. */
static void fill_leader(side *a, uint64_t *last)
{
    char key[32], val[400];
    uint64_t i = 1;
    for (; i <= 60; i++) {
        snprintf(key, sizeof key, "k%03llu", (unsigned long long)i);
        memset(val, 'a' + (int)(i % 26), sizeof val - 1);
        val[sizeof val - 1] = '\0';
        apply_to(a->f, P, i, CMD_PUT, key, val, 7, i);
    }
    apply_to(a->f, P, i++, CMD_DELETE, "k010", NULL, 7, 100);
    flush(a->f);
    *last = i - 1;
}

/* Everything the state machine keeps for group g, as text. */
static char *dump_group(engine *e, uint64_t g)
{
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    out[0] = '\0';
    uint8_t pfx[3][9];
    size_t pl[3] = { KEYCODEC_DATA_PREFIX_LEN, FSM_META_PREFIX_LEN, FSM_META_PREFIX_LEN };
    keycodec_data_prefix(pfx[0], (uint32_t)(g >> 32), (uint32_t)g);
    fsm_meta_prefix(pfx[1], 'D', g);
    fsm_meta_prefix(pfx[2], 'W', g);
    for (int r = 0; r < 3; r++) {
        engine_iter *it;
        okv_error err;
        assert_int_equal(engine_iter_new_prefix(&it, e, r ? ENGINE_CF_META : ENGINE_CF_DATA,
                                                pfx[r], pl[r], &err), OKV_OK);
        for (; engine_iter_valid(it); engine_iter_next(it)) {
            size_t kl, vl;
            const char *k = engine_iter_key(it, &kl);
            engine_iter_value(it, &vl);
            uint64_t h = snap_checksum(SNAP_CHECKSUM_INIT, k, kl);
            if (len + 64 > cap)
                out = realloc(out, cap *= 2);
            len += (size_t)snprintf(out + len, cap - len, "%d:%016llx:%zu:%zu\n", r,
                                    (unsigned long long)h, kl, vl);
        }
        engine_iter_free(it);
    }
    return out;
}

static uint64_t applied_of(fsm *f, uint64_t g)
{
    uint64_t a;
    okv_error err;
    assert_int_equal(fsm_applied_index(f, g, &a, &err), OKV_OK);
    return a;
}

static int dirs_in(const char *root)
{
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- a stream, built as a sender builds it --------------------------------- */

typedef struct msgs {
    uint8_t *m[4096];
    size_t len[4096];
    size_t n;
} msgs;

static void msgs_add(msgs *s, const uint8_t *b, size_t len)
{
    assert_true(s->n < 4096);
    s->m[s->n] = malloc(len ? len : 1);
    memcpy(s->m[s->n], b, len);
    s->len[s->n++] = len;
}

static void msgs_free(msgs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->m[i]);
    s->n = 0;
}

static struct snap_header header_for(uint64_t index)
{
    struct snap_header h;
    memset(&h, 0, sizeof h);
    h.cluster_id = CLUSTER;
    h.from = LEADER;
    h.to = FOLLOWER;
    h.group = G();
    h.term = 3;
    h.meta.index = index;
    h.meta.term = 2;
    h.meta.conf.n_voters = 3;
    for (int i = 0; i < 3; i++)
        h.meta.conf.voters[i] = (raft_id)(i + 1);
    return h;
}

static void build_stream(engine_snapshot *es, const struct snap_header *h, size_t chunk_bytes,
                         msgs *out)
{
    uint8_t hb[SNAP_HEADER_MAX];
    size_t hl = snap_header_encode(h, hb, sizeof hb);
    assert_true(hl > 0);
    msgs_add(out, hb, hl);
    fsm_snapshot_reader *r;
    okv_error err;
    assert_int_equal(fsm_snapshot_reader_new(&r, es, h->group, &err), OKV_OK);
    snap_chunk ch = { 0 };
    struct snap_trailer t = { 0, 0, 0, SNAP_CHECKSUM_INIT };
    int cf, more;
    const uint8_t *k, *v;
    size_t kl, vl;
    more = fsm_snapshot_reader_next(r, &cf, &k, &kl, &v, &vl, &err);
    while (more == 1) {
        assert_int_equal(snap_chunk_begin(&ch, t.chunks), 0);
        while (more == 1 && (ch.nrec == 0 || ch.len + SNAP_RECORD_HDR + kl + vl <= chunk_bytes)) {
            assert_int_equal(snap_chunk_add(&ch, cf, k, kl, v, vl), 0);
            more = fsm_snapshot_reader_next(r, &cf, &k, &kl, &v, &vl, &err);
        }
        snap_chunk_seal(&ch);
        t.chunks++;
        t.records += ch.nrec;
        t.bytes += ch.len;
        t.checksum = snap_checksum(t.checksum, ch.buf, ch.len);
        msgs_add(out, ch.buf, ch.len);
    }
    assert_int_equal(more, 0);
    snap_chunk_free(&ch);
    fsm_snapshot_reader_free(r);
    uint8_t tb[SNAP_TRAILER_LEN];
    snap_trailer_encode(&t, tb);
    msgs_add(out, tb, sizeof tb);
}

/* ---- the receiving side's raft store stand-in ---------------------------- */

static pthread_mutex_t got_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t got_cv = PTHREAD_COND_INITIALIZER;
static int got;                          /* deliveries */
static struct raft_message got_msg;      /* the last one (its data owned here) */
static uint64_t got_group;

static int deliver(void *ctx, uint64_t group, struct raft_message *m)
{
    (void)ctx;
    pthread_mutex_lock(&got_mu);
    raft_message_release(&got_msg);
    got_msg = *m;
    got_group = group;
    got++;
    pthread_cond_broadcast(&got_cv);
    pthread_mutex_unlock(&got_mu);
    return 0;
}

static int known(void *ctx, uint64_t node)
{
    (void)ctx;
    return node == LEADER;
}

static void reset_got(void)
{
    pthread_mutex_lock(&got_mu);
    raft_message_release(&got_msg);
    memset(&got_msg, 0, sizeof got_msg);
    got = 0;
    pthread_mutex_unlock(&got_mu);
}

static struct snap_recv_options recv_opts(engine *e)
{
    struct snap_recv_options o;
    memset(&o, 0, sizeof o);
    o.cluster_id = CLUSTER;
    o.node_id = FOLLOWER;
    o.e = e;
    o.known_peer = known;
    o.deliver = deliver;
    return o;
}

/* Feeds every message, then the half-close; returns the first error. */
static int feed_all(snap_recv *r, const msgs *s, okv_error *err)
{
    snap_rx *rx;
    assert_int_equal(snap_rx_new(&rx, r), OKV_OK);
    int rc = OKV_OK;
    for (size_t i = 0; i < s->n && !rc; i++)
        rc = snap_rx_feed(rx, s->m[i], s->len[i], err);
    if (!rc)
        rc = snap_rx_end(rx, err);
    snap_rx_free(rx);
    return rc;
}

/* What the raft loop does to install a delivered snapshot (minus the raft
 * log's own records, which raftstore.c stages in the same batch). */
static void install_delivered(engine *e, uint64_t index)
{
    char name[FSM_SNAPSHOT_NAME_MAX + 1], root[4096], dir[4300];
    assert_int_equal(fsm_snapshot_desc_decode(got_msg.snapshot.data, got_msg.snapshot.len, name),
                     FSM_SNAPSHOT_RECEIVED);
    assert_int_equal(fsm_snapshot_root(e, root, sizeof root), OKV_OK);
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    okv_error err;
    assert_int_equal(fsm_snapshot_mark_installing(e, G(), &got_msg.snapshot.meta, name, &err),
                     OKV_OK);
    assert_int_equal(fsm_snapshot_ingest(e, dir, &err), OKV_OK);
    engine_batch *b = engine_batch_new();
    fsm_snapshot_stage_installed(b, G(), index);
    assert_int_equal(engine_write(e, b, 1, &err), OKV_OK);
    engine_batch_free(b);
    assert_int_equal(fsm_snapshot_remove_dir(dir, &err), OKV_OK);
}

/* ---- the format ------------------------------------------------------------- */

static void test_snapshot__format_round_trips_and_refuses_cuts(void **state)
{
    (void)state;
    struct snap_header h = header_for(42), h2;
    uint8_t b[SNAP_HEADER_MAX];
    size_t n = snap_header_encode(&h, b, sizeof b);
    assert_int_equal(snap_header_decode(b, n, &h2), 0);
    assert_int_equal(h2.cluster_id, h.cluster_id);
    assert_int_equal(h2.from, h.from);
    assert_int_equal(h2.to, h.to);
    assert_int_equal(h2.group, h.group);
    assert_int_equal(h2.term, h.term);
    assert_int_equal(h2.meta.index, h.meta.index);
    assert_int_equal(h2.meta.term, h.meta.term);
    assert_int_equal(h2.meta.conf.n_voters, 3);
    assert_int_equal(h2.meta.conf.voters[2], 3);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(snap_header_decode(b, cut, &h2), -1);

    snap_chunk ch = { 0 };
    assert_int_equal(snap_chunk_begin(&ch, 5), 0);
    assert_int_equal(snap_chunk_add(&ch, SNAP_CF_DATA, "key", 3, "value", 5), 0);
    assert_int_equal(snap_chunk_add(&ch, SNAP_CF_META, "m", 1, "", 0), 0);
    snap_chunk_seal(&ch);
    snap_chunk_reader r;
    struct snap_record rec;
    assert_int_equal(snap_chunk_open(&r, ch.buf, ch.len), 0);
    assert_int_equal(r.seq, 5);
    assert_int_equal(snap_chunk_next(&r, &rec), 1);
    assert_int_equal(rec.cf, SNAP_CF_DATA);
    assert_memory_equal(rec.key, "key", 3);
    assert_memory_equal(rec.val, "value", 5);
    assert_int_equal(snap_chunk_next(&r, &rec), 1);
    assert_int_equal(rec.val_len, 0);
    assert_int_equal(snap_chunk_next(&r, &rec), 0);
    /* Every cut is refused somewhere (header or records), never read past. */
    for (size_t cut = 0; cut < ch.len; cut++) {
        int k = snap_chunk_open(&r, ch.buf, cut);
        if (k == 0)
            while ((k = snap_chunk_next(&r, &rec)) == 1)
                ;
        assert_int_equal(k, -1);
    }
    ch.buf[SNAP_CHUNK_HDR] = 9;   /* an unknown column family */
    assert_int_equal(snap_chunk_open(&r, ch.buf, ch.len), 0);
    assert_int_equal(snap_chunk_next(&r, &rec), -1);
    snap_chunk_free(&ch);

    struct snap_trailer t = { 3, 99, 12345, 0xdeadbeefcafef00dULL }, t2;
    uint8_t tb[SNAP_TRAILER_LEN];
    snap_trailer_encode(&t, tb);
    assert_int_equal(snap_trailer_decode(tb, sizeof tb, &t2), 0);
    assert_int_equal(t2.chunks, t.chunks);
    assert_int_equal(t2.records, t.records);
    assert_int_equal(t2.bytes, t.bytes);
    assert_int_equal(t2.checksum, t.checksum);
    assert_int_equal(snap_trailer_decode(tb, sizeof tb - 1, &t2), -1);
    tb[4] = 2;   /* another version */
    assert_int_equal(snap_kind_of(tb, sizeof tb), -1);
}

static void test_snapshot__descriptors_never_name_a_path_outside_the_root(void **state)
{
    (void)state;
    uint8_t d[FSM_SNAPSHOT_DESC_MAX];
    char name[FSM_SNAPSHOT_NAME_MAX + 1];
    size_t n = fsm_snapshot_desc_encode(d, FSM_SNAPSHOT_LOCAL, NULL);
    assert_int_equal(fsm_snapshot_desc_decode(d, n, name), FSM_SNAPSHOT_LOCAL);
    n = fsm_snapshot_desc_encode(d, FSM_SNAPSHOT_RECEIVED, "4294967299-12-1-7");
    assert_int_equal(fsm_snapshot_desc_decode(d, n, name), FSM_SNAPSHOT_RECEIVED);
    assert_string_equal(name, "4294967299-12-1-7");
    assert_int_equal(fsm_snapshot_desc_decode(d, n - 1, name), -1);
    const char *bad[] = { "../x", "a/b", "", "..", "12-1/..", "x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = fsm_snapshot_desc_encode(d, FSM_SNAPSHOT_RECEIVED, bad[i]);
        assert_int_equal(fsm_snapshot_desc_decode(d, n, name), -1);
    }
    assert_int_equal(fsm_snapshot_desc_decode((const uint8_t *)"OKVSNAP1", 8, name), -1);
}

/* ---- moving a partition -------------------------------------------------------- */

/* The follower had stale state in the partition (to be replaced) and data
 * in a neighbour (untouched). The snapshot is the leader's state at the
 * instant the RocksDB snapshot was taken, not what came after; a retry of a
 * request applied before it is answered from the moved exactly-once record. */
static void test_snapshot__stream_moves_data_and_exactly_once_records(void **state)
{
    (void)state;
    side a = { 0 }, b = { 0 };
    side_open(&a, "snap-a");
    side_open(&b, "snap-b");
    uint64_t last;
    fill_leader(&a, &last);
    engine_snapshot *es;
    okv_error err;
    assert_int_equal(engine_snapshot_new(&es, a.e, &err), OKV_OK);
    char *want = dump_group(a.e, G());
    apply_to(a.f, P, last + 1, CMD_PUT, "after", "x", 0, 0);   /* not in the snapshot */
    flush(a.f);

    apply_to(b.f, P, 1, CMD_PUT, "stale", "x", 9, 1);
    apply_to(b.f, P, 2, CMD_PUT, "k001", "old", 0, 0);
    apply_to(b.f, P + 1, 1, CMD_PUT, "neighbour", "y", 9, 2);
    flush(b.f);
    char *neighbour = dump_group(b.e, fsm_group_id(T, P + 1));

    msgs s = { .n = 0 };
    struct snap_header h = header_for(last);
    build_stream(es, &h, 2048, &s);
    assert_true(s.n > 10);   /* many chunks */
    snap_recv *r;
    struct snap_recv_options o = recv_opts(b.e);
    assert_int_equal(snap_recv_new(&r, NULL, &o, &err), OKV_OK);
    char root[4096];
    assert_int_equal(fsm_snapshot_root(b.e, root, sizeof root), OKV_OK);
    assert_int_equal(fsm_snapshot_clean_root(b.e, NULL, NULL, &err), OKV_OK);
    reset_got();
    assert_int_equal(feed_all(r, &s, &err), OKV_OK);
    assert_int_equal(got, 1);
    assert_int_equal(got_group, G());
    assert_int_equal(got_msg.type, RAFT_MSG_SNAPSHOT);
    assert_int_equal(got_msg.from, LEADER);
    assert_int_equal(got_msg.term, 3);
    assert_int_equal(got_msg.snapshot.meta.index, last);
    assert_int_equal(dirs_in(root), 1);
    /* Nothing of the partition changed before the install. */
    char v[512];
    uint8_t *val;
    size_t vl;
    uint64_t ver;
    assert_int_equal(fsm_get(b.f, T, P, (const uint8_t *)"stale", 5, &val, &vl, &ver, &err),
                     OKV_OK);
    free(val);

    install_delivered(b.e, last);
    char *have = dump_group(b.e, G());
    assert_string_equal(have, want);
    assert_int_equal(applied_of(b.f, G()), last);
    assert_int_equal(fsm_get(b.f, T, P, (const uint8_t *)"stale", 5, &val, &vl, &ver, &err),
                     OKV_ENOTFOUND);
    assert_int_equal(fsm_get(b.f, T, P, (const uint8_t *)"after", 5, &val, &vl, &ver, &err),
                     OKV_ENOTFOUND);
    assert_int_equal(fsm_get(b.f, T, P, (const uint8_t *)"k010", 4, &val, &vl, &ver, &err),
                     OKV_ENOTFOUND);
    assert_int_equal(fsm_get(b.f, T, P, (const uint8_t *)"k001", 4, &val, &vl, &ver, &err),
                     OKV_OK);
    assert_int_equal(ver, 1);
    free(val);
    /* A retry of request 2 of client 7 is answered, not applied again. */
    command_result cr = apply_to(b.f, P, last + 1, CMD_PUT, "k002", "again", 7, 2);
    assert_int_equal(cr.version, 2);
    flush(b.f);
    assert_int_equal(fsm_get(b.f, T, P, (const uint8_t *)"k002", 4, &val, &vl, &ver, &err),
                     OKV_OK);
    assert_int_equal(ver, 2);
    assert_true(vl < sizeof v && memcmp(val, "again", 5) != 0);
    free(val);
    char *neighbour2 = dump_group(b.e, fsm_group_id(T, P + 1));
    assert_string_equal(neighbour, neighbour2);
    assert_int_equal(dirs_in(root), 0);

    free(want);
    free(have);
    free(neighbour);
    free(neighbour2);
    msgs_free(&s);
    reset_got();
    snap_recv_free(r);
    engine_snapshot_free(es);
    side_free(&a);
    side_free(&b);
}

/* Damaged streams: each must be refused before delivery, leave no dir
 * behind, and leave the partition exactly as it was. */
static void test_snapshot__damaged_or_cut_streams_are_refused_without_touching_the_partition(
    void **state)
{
    (void)state;
    side a = { 0 }, b = { 0 };
    side_open(&a, "snap-a");
    side_open(&b, "snap-b");
    uint64_t last;
    fill_leader(&a, &last);
    apply_to(b.f, P, 1, CMD_PUT, "stale", "x", 9, 1);
    flush(b.f);
    char *before = dump_group(b.e, G());
    engine_snapshot *es;
    okv_error err;
    assert_int_equal(engine_snapshot_new(&es, a.e, &err), OKV_OK);
    struct snap_header h = header_for(last);
    msgs good = { .n = 0 };
    build_stream(es, &h, 4096, &good);
    size_t nchunks = good.n - 2;
    assert_true(nchunks >= 3);
    snap_recv *r;
    struct snap_recv_options o = recv_opts(b.e);
    assert_int_equal(snap_recv_new(&r, NULL, &o, &err), OKV_OK);
    char root[4096];
    assert_int_equal(fsm_snapshot_root(b.e, root, sizeof root), OKV_OK);
    assert_int_equal(fsm_snapshot_clean_root(b.e, NULL, NULL, &err), OKV_OK);
    reset_got();

    msgs s = { .n = 0 };
    int cases = 0;
#define EXPECT_REFUSED(what)                                                              \
    do {                                                                                  \
        int rc_ = feed_all(r, &s, &err);                                                  \
        if (rc_ == OKV_OK)                                                                \
            fail_msg("%s was accepted", what);                                            \
        assert_int_equal(got, 0);                                                         \
        assert_int_equal(dirs_in(root), 0);                                               \
        char *now_ = dump_group(b.e, G());                                                \
        assert_string_equal(now_, before);                                                \
        free(now_);                                                                       \
        msgs_free(&s);                                                                    \
        cases++;                                                                          \
    } while (0)

    /* a byte flipped anywhere in any chunk or in the trailer */
    for (size_t i = 1; i < good.n; i++)
        for (size_t off = 0; off < good.len[i]; off += 97) {
            for (size_t k = 0; k < good.n; k++)
                msgs_add(&s, good.m[k], good.len[k]);
            s.m[i][off] ^= 0x20;
            EXPECT_REFUSED("a flipped byte");
        }
    /* cut after every message but the last, and a last chunk cut short */
    for (size_t keep = 1; keep < good.n; keep++) {
        for (size_t k = 0; k < keep; k++)
            msgs_add(&s, good.m[k], good.len[k]);
        EXPECT_REFUSED("a stream cut short");
    }
    for (size_t k = 0; k + 1 < good.n; k++)
        msgs_add(&s, good.m[k], k == good.n - 2 ? good.len[k] / 2 : good.len[k]);
    msgs_add(&s, good.m[good.n - 1], good.len[good.n - 1]);
    EXPECT_REFUSED("a truncated chunk");
    /* a chunk dropped, a chunk twice, two chunks swapped */
    for (size_t k = 0; k < good.n; k++)
        if (k != 2)
            msgs_add(&s, good.m[k], good.len[k]);
    EXPECT_REFUSED("a missing chunk");
    for (size_t k = 0; k < good.n; k++) {
        msgs_add(&s, good.m[k], good.len[k]);
        if (k == 1)
            msgs_add(&s, good.m[k], good.len[k]);
    }
    EXPECT_REFUSED("a repeated chunk");
    for (size_t k = 0; k < good.n; k++)
        msgs_add(&s, good.m[k == 1 ? 2 : k == 2 ? 1 : k], good.len[k == 1 ? 2 : k == 2 ? 1 : k]);
    EXPECT_REFUSED("swapped chunks");
    /* something after the trailer */
    for (size_t k = 0; k < good.n; k++)
        msgs_add(&s, good.m[k], good.len[k]);
    msgs_add(&s, good.m[1], good.len[1]);
    EXPECT_REFUSED("a chunk after the trailer");
    /* another cluster, another node, an unknown sender */
    struct snap_header bad[3] = { h, h, h };
    bad[0].cluster_id = CLUSTER + 1;
    bad[1].to = 3;
    bad[2].from = 9;
    for (int i = 0; i < 3; i++) {
        uint8_t hb[SNAP_HEADER_MAX];
        msgs_add(&s, hb, snap_header_encode(&bad[i], hb, sizeof hb));
        for (size_t k = 1; k < good.n; k++)
            msgs_add(&s, good.m[k], good.len[k]);
        EXPECT_REFUSED("a foreign header");
    }
    /* a well-formed stream with a key of another partition, or out of
     * order: the trailer would check, the ranges and the order do not */
    const char *keys[2][2] = { { "a", NULL }, { "b", "a" } };
    for (int i = 0; i < 2; i++) {
        uint8_t hb[SNAP_HEADER_MAX];
        msgs_add(&s, hb, snap_header_encode(&h, hb, sizeof hb));
        snap_chunk ch = { 0 };
        assert_int_equal(snap_chunk_begin(&ch, 0), 0);
        for (int k = 0; k < 2 && keys[i][k]; k++) {
            uint8_t dk[64];
            size_t dl = keycodec_data_key(dk, T, i == 0 ? P + 1 : P, keys[i][k], 1);
            uint8_t vv[9] = { 0, 0, 0, 0, 0, 0, 0, 1, 'v' };
            assert_int_equal(snap_chunk_add(&ch, SNAP_CF_DATA, dk, dl, vv, sizeof vv), 0);
        }
        snap_chunk_seal(&ch);
        msgs_add(&s, ch.buf, ch.len);
        struct snap_trailer t = { 1, ch.nrec, ch.len,
                                  snap_checksum(SNAP_CHECKSUM_INIT, ch.buf, ch.len) };
        uint8_t tb[SNAP_TRAILER_LEN];
        snap_trailer_encode(&t, tb);
        msgs_add(&s, tb, sizeof tb);
        snap_chunk_free(&ch);
        EXPECT_REFUSED(i == 0 ? "a key of another partition" : "keys out of order");
    }
    printf("  %d damaged streams refused\n", cases);

    /* And the good one still goes through afterwards. */
    assert_int_equal(feed_all(r, &good, &err), OKV_OK);
    assert_int_equal(got, 1);
    reset_got();
    assert_int_equal(fsm_snapshot_clean_root(b.e, NULL, NULL, &err), OKV_OK);
    free(before);
    msgs_free(&good);
    snap_recv_free(r);
    engine_snapshot_free(es);
    side_free(&a);
    side_free(&b);
}

/* ---- an install interrupted by a crash --------------------------------------- */

static void net_send(void *ctx, uint64_t to, uint64_t group, const struct raft_message *m)
{
    (void)ctx;
    (void)to;
    (void)group;
    (void)m;
}

static void net_flush(void *ctx) { (void)ctx; }

static raftstore *store_open(engine *e, okv_error *err, int *rc)
{
    raftstore_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = FOLLOWER;
    cfg.e = e;
    cfg.net.send = net_send;
    cfg.net.flush = net_flush;
    raftstore *rs = NULL;
    *rc = raftstore_new(&rs, &cfg, err);
    return rs;
}

static int count_marker(void *ctx, uint64_t group, const struct raft_snapshot_meta *m,
                        const char *name)
{
    (void)group;
    (void)m;
    (void)name;
    (*(int *)ctx)++;
    return 0;
}

/* stage 0: crash right after the marker; 1: after the ingest. The next
 * raftstore_new finishes the install: same data, applied index, raft log
 * restarting at the snapshot, hard state raised, marker and files gone. */
static void crash_mid_install(int stage)
{
    side a = { 0 }, b = { 0 };
    side_open(&a, "snap-a");
    side_open(&b, "snap-b");
    uint64_t last;
    fill_leader(&a, &last);
    okv_error err;
    int rc;
    /* The follower's replica of the group exists, with some stale state. */
    raftstore *rs = store_open(b.e, &err, &rc);
    assert_int_equal(rc, OKV_OK);
    struct snap_header h = header_for(last);
    assert_int_equal(raftstore_bootstrap_group(rs, G(), &h.meta.conf, &err), OKV_OK);
    raftstore_free(rs);
    apply_to(b.f, P, 1, CMD_PUT, "stale", "x", 9, 1);
    flush(b.f);

    engine_snapshot *es;
    assert_int_equal(engine_snapshot_new(&es, a.e, &err), OKV_OK);
    char *want = dump_group(a.e, G());
    msgs s = { .n = 0 };
    build_stream(es, &h, 8192, &s);
    snap_recv *r;
    struct snap_recv_options o = recv_opts(b.e);
    assert_int_equal(snap_recv_new(&r, NULL, &o, &err), OKV_OK);
    reset_got();
    assert_int_equal(feed_all(r, &s, &err), OKV_OK);
    char name[FSM_SNAPSHOT_NAME_MAX + 1], root[4096], dir[4300];
    assert_int_equal(fsm_snapshot_desc_decode(got_msg.snapshot.data, got_msg.snapshot.len, name),
                     FSM_SNAPSHOT_RECEIVED);
    assert_int_equal(fsm_snapshot_root(b.e, root, sizeof root), OKV_OK);
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    assert_int_equal(fsm_snapshot_mark_installing(b.e, G(), &h.meta, name, &err), OKV_OK);
    if (stage == 1)
        assert_int_equal(fsm_snapshot_ingest(b.e, dir, &err), OKV_OK);
    /* "crash": nothing more is written; reopen */
    side_close(&b);
    side_open(&b, "snap-b");
    rs = store_open(b.e, &err, &rc);
    if (rc)
        fail_msg("raftstore_new after the crash: %s", err.msg);
    struct raftstore_snap_stats st;
    raftstore_snap_stats_get(rs, &st);
    assert_int_equal(st.recovered, 1);
    raftstore_free(rs);

    char *have = dump_group(b.e, G());
    assert_string_equal(have, want);
    assert_int_equal(applied_of(b.f, G()), last);
    struct raftlog *rl;
    assert_int_equal(raftlog_open(&rl, b.e, G(), &err), 0);
    assert_int_equal(raftlog_snapshot_index(rl), last);
    assert_int_equal(raftlog_first_index(rl), last + 1);
    struct raft_hard_state hs;
    raftlog_hard_state(rl, &hs);
    assert_true(hs.commit >= last);
    assert_true(hs.term >= h.meta.term);
    raftlog_free(rl);
    assert_int_equal(dirs_in(root), 0);
    int markers = 0;
    assert_int_equal(fsm_snapshot_list_installing(b.e, count_marker, &markers, &err), OKV_OK);
    assert_int_equal(markers, 0);
    free(want);
    free(have);
    msgs_free(&s);
    reset_got();
    snap_recv_free(r);
    engine_snapshot_free(es);
    side_free(&a);
    side_free(&b);
}

static void test_snapshot__crash_after_the_marker_is_finished_at_start(void **state)
{
    (void)state;
    crash_mid_install(0);
}

static void test_snapshot__crash_after_the_ingest_is_finished_at_start(void **state)
{
    (void)state;
    crash_mid_install(1);
}

/* Files gone under a marker: the node must refuse to start, saying what
 * to do, rather than run a replica in an unknown state. */
static void test_snapshot__an_install_without_its_files_refuses_to_start(void **state)
{
    (void)state;
    side b = { 0 };
    side_open(&b, "snap-b");
    okv_error err;
    int rc;
    raftstore *rs = store_open(b.e, &err, &rc);
    assert_int_equal(rc, OKV_OK);
    struct snap_header h = header_for(50);
    assert_int_equal(raftstore_bootstrap_group(rs, G(), &h.meta.conf, &err), OKV_OK);
    raftstore_free(rs);
    assert_int_equal(fsm_snapshot_mark_installing(b.e, G(), &h.meta, "1-50-1-1", &err), OKV_OK);
    rs = store_open(b.e, &err, &rc);
    assert_int_equal(rc, OKV_ECORRUPT);
    assert_null(rs);
    assert_non_null(strstr(err.msg, "move its data dir aside"));
    side_free(&b);
}

/* ---- over real gRPC -------------------------------------------------------------- */

static const char *server_addr;

static int peer_address(void *ctx, uint64_t node, char *buf, size_t cap)
{
    (void)ctx;
    if (node != FOLLOWER)
        return -1;
    snprintf(buf, cap, "%s", server_addr);
    return 0;
}

static int wait_got(int n, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    pthread_mutex_lock(&got_mu);
    while (got < n && pthread_cond_timedwait(&got_cv, &got_mu, &dl) == 0)
        ;
    int ok = got >= n;
    pthread_mutex_unlock(&got_mu);
    return ok;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* The sender streams from a RocksDB snapshot over a real call, in many
 * chunks; the receiver delivers it; installed, it equals the leader's
 * state. Then a receiver of another cluster refuses the stream: the sender
 * counts a failure and nothing is delivered or left on disk. */
static void test_snapshot__sender_and_receiver_over_grpc(void **state)
{
    (void)state;
    side a = { 0 }, b = { 0 };
    side_open(&a, "snap-a");
    side_open(&b, "snap-b");
    uint64_t last;
    fill_leader(&a, &last);
    char *want = dump_group(a.e, G());
    okv_error err;
    char root[4096];
    assert_int_equal(fsm_snapshot_root(b.e, root, sizeof root), OKV_OK);
    assert_int_equal(fsm_snapshot_clean_root(b.e, NULL, NULL, &err), OKV_OK);

    for (int round = 0; round < 2; round++) {
        rpc_server *srv;
        assert_int_equal(rpc_server_new(&srv, "127.0.0.1:0", &err), OKV_OK);
        server_addr = rpc_server_address(srv);
        snap_recv *r;
        struct snap_recv_options ro = recv_opts(b.e);
        if (round == 1)
            ro.cluster_id = CLUSTER + 1;   /* a node of another cluster */
        assert_int_equal(snap_recv_new(&r, srv, &ro, &err), OKV_OK);
        assert_int_equal(rpc_server_start(srv, 2, &err), OKV_OK);
        snap_send *s;
        struct snap_send_options so;
        memset(&so, 0, sizeof so);
        so.cluster_id = CLUSTER;
        so.node_id = LEADER;
        so.e = a.e;
        so.peer_address = peer_address;
        so.chunk_bytes = 3000;
        so.io_timeout_ms = 20000;
        assert_int_equal(snap_send_new(&s, &so, &err), OKV_OK);
        reset_got();
        engine_snapshot *es;
        assert_int_equal(engine_snapshot_new(&es, a.e, &err), OKV_OK);
        struct snap_header h = header_for(last);
        struct raft_message m;
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_SNAPSHOT;
        m.from = LEADER;
        m.to = FOLLOWER;
        m.term = h.term;
        m.snapshot.meta = h.meta;
        assert_int_equal(snap_send_start(s, FOLLOWER, G(), &m, es), OKV_OK);
        /* one transfer per (group, follower) */
        engine_snapshot *es2;
        assert_int_equal(engine_snapshot_new(&es2, a.e, &err), OKV_OK);
        assert_int_equal(snap_send_start(s, FOLLOWER, G(), &m, es2), OKV_EUNAVAILABLE);
        struct snap_send_stats st;
        for (int i = 0; i < 2000; i++) {   /* bounded: 20 s */
            snap_send_stats_get(s, &st);
            if (st.sent + st.failed > 0)
                break;
            sleep_ms(10);
        }
        if (round == 0) {
            assert_int_equal(st.sent, 1);
            assert_true(st.chunks > 10);
            assert_true(wait_got(1, 20000));
            assert_int_equal(got_msg.snapshot.meta.index, last);
            install_delivered(b.e, last);
            char *have = dump_group(b.e, G());
            assert_string_equal(have, want);
            free(have);
        } else {
            assert_int_equal(st.failed, 1);
            assert_int_equal(got, 0);
            assert_int_equal(dirs_in(root), 0);
        }
        snap_send_free(s);
        rpc_server_shutdown_and_free(srv, 0);
        snap_recv_free(r);
    }
    reset_got();
    free(want);
    side_free(&a);
    side_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot__format_round_trips_and_refuses_cuts),
        cmocka_unit_test(test_snapshot__descriptors_never_name_a_path_outside_the_root),
        cmocka_unit_test(test_snapshot__stream_moves_data_and_exactly_once_records),
        cmocka_unit_test(
            test_snapshot__damaged_or_cut_streams_are_refused_without_touching_the_partition),
        cmocka_unit_test(test_snapshot__crash_after_the_marker_is_finished_at_start),
        cmocka_unit_test(test_snapshot__crash_after_the_ingest_is_finished_at_start),
        cmocka_unit_test(test_snapshot__an_install_without_its_files_refuses_to_start),
        cmocka_unit_test(test_snapshot__sender_and_receiver_over_grpc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

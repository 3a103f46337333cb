/*
 * test_raftlog.c — the durable Raft log (server/replica/raftlog.c) against the
 * simulator's in-memory reference (tests/sim/memstore.c).
 *
 * Most tests are differential: every change is applied both to a memstore
 * and (staged into a batch, written with a synced engine_write) to a
 * raftlog, and afterwards every storage callback must answer exactly what
 * the memstore answers: first/last index, every term from first - 1 to last
 * and the errors just outside, the hard state and configuration, every
 * entry, the snapshot. A seeded random driver (struct pair) produces the
 * changes; the kill -9 test replays the same seed on a memstore in the
 * parent to know what the killed child had made durable.
 *
 * Every test gets its own mkdtemp dir under /tmp and removes it. The kill -9
 * test re-executes this binary with "--child" (a fresh exec, unlike a bare
 * fork, inherits none of RocksDB's threads).
 */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "keycodec.h"
#include "memstore.h"
#include "raft_codec.h"
#include "raftlog.h"

static const char *self_exe;

/* ---- fixture ------------------------------------------------------------- */

struct fixture {
    char dir[64];
    char db[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->dir, "/tmp/okv-test-raftlog-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->db, sizeof f->db, "%s/db", f->dir);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

/* ---- helpers ------------------------------------------------------------- */

static engine *open_engine(const char *dir)
{
    engine *e = NULL;
    okv_error err;
    int rc = engine_open(&e, dir, NULL, &err);
    if (rc != OKV_OK)
        fprintf(stderr, "engine_open(%s): %d %s\n", dir, rc, err.msg);
    assert_int_equal(rc, OKV_OK);
    return e;
}

static void write_sync(engine *e, engine_batch *b)
{
    okv_error err;
    int rc = engine_write(e, b, 1, &err);
    if (rc != OKV_OK)
        fprintf(stderr, "engine_write: %d %s\n", rc, err.msg);
    assert_int_equal(rc, OKV_OK);
    engine_batch_clear(b);
}

static struct raft_conf voters(uint32_t n)
{
    struct raft_conf c;
    memset(&c, 0, sizeof(c));
    c.n_voters = n;
    for (uint32_t k = 0; k < n; k++)
        c.voters[k] = k + 1;
    return c;
}

static struct raftlog *open_group(engine *e, uint64_t group)
{
    struct raftlog *rl = NULL;
    okv_error err;
    int rc = raftlog_open(&rl, e, group, &err);
    if (rc != 0)
        fprintf(stderr, "raftlog_open(%llu): %d %s\n",
                (unsigned long long)group, rc, err.msg);
    assert_int_equal(rc, 0);
    return rl;
}

static struct raftlog *create_group(engine *e, uint64_t group,
                                    const struct raft_conf *conf)
{
    struct raftlog *rl = NULL;
    okv_error err;
    engine_batch *b = engine_batch_new();
    assert_int_equal(raftlog_create(&rl, e, group, conf, b, &err), 0);
    write_sync(e, b);
    engine_batch_free(b);
    return rl;
}

static void assert_conf_equal(const struct raft_conf *a,
                              const struct raft_conf *b)
{
    assert_int_equal(a->n_voters, b->n_voters);
    assert_int_equal(a->n_learners, b->n_learners);
    for (uint32_t k = 0; k < a->n_voters; k++)
        assert_int_equal(a->voters[k], b->voters[k]);
    for (uint32_t k = 0; k < a->n_learners; k++)
        assert_int_equal(a->learners[k], b->learners[k]);
}

static void free_entries(struct raft_entry *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free(v[k].data);
    free(v);
}

/* Every storage callback of rl answers what memstore ms answers. */
static void assert_same(struct memstore *ms, struct raftlog *rl)
{
    const struct raft_storage_ops *m = &memstore_ops, *r = &raftlog_ops;
    uint64_t mf, rf, ml, rlast, mt, rt;
    struct raft_hard_state mhs, rhs;
    struct raft_conf mc, rc;

    assert_int_equal(m->first_index(ms, &mf), 0);
    assert_int_equal(r->first_index(rl, &rf), 0);
    assert_int_equal(mf, rf);
    assert_int_equal(m->last_index(ms, &ml), 0);
    assert_int_equal(r->last_index(rl, &rlast), 0);
    assert_int_equal(ml, rlast);

    assert_int_equal(m->initial_state(ms, &mhs, &mc), 0);
    assert_int_equal(r->initial_state(rl, &rhs, &rc), 0);
    assert_int_equal(mhs.term, rhs.term);
    assert_int_equal(mhs.vote, rhs.vote);
    assert_int_equal(mhs.commit, rhs.commit);
    assert_conf_equal(&mc, &rc);

    /* terms over the whole range and the errors just outside it */
    uint64_t from = mf >= 3 ? mf - 3 : 0;
    for (uint64_t i = from; i <= ml + 2; i++) {
        int a = m->term(ms, i, &mt);
        int b = r->term(rl, i, &rt);
        assert_int_equal(a, b);
        if (a == 0)
            assert_int_equal(mt, rt);
    }

    /* all entries, and the edge errors */
    if (ml >= mf) {
        struct raft_entry *ve = NULL, *vr = NULL;
        size_t ne = 0, nr = 0;
        assert_int_equal(m->entries(ms, mf, ml + 1, UINT64_MAX, &ve, &ne), 0);
        assert_int_equal(r->entries(rl, mf, ml + 1, UINT64_MAX, &vr, &nr), 0);
        assert_int_equal(ne, nr);
        assert_int_equal(ne, ml - mf + 1);
        for (size_t k = 0; k < ne; k++) {
            assert_int_equal(ve[k].index, vr[k].index);
            assert_int_equal(ve[k].term, vr[k].term);
            assert_int_equal(ve[k].type, vr[k].type);
            assert_int_equal(ve[k].len, vr[k].len);
            if (ve[k].len > 0)
                assert_memory_equal(ve[k].data, vr[k].data, ve[k].len);
            else
                assert_null(vr[k].data);
        }
        free_entries(ve, ne);
        free_entries(vr, nr);
    }
    struct raft_entry *v = (struct raft_entry *)1;
    size_t n = 7;
    if (mf >= 2) {
        assert_int_equal(r->entries(rl, mf - 1, ml + 1, 100, &v, &n),
                         RAFT_ERR_COMPACTED);
        assert_null(v);
        assert_int_equal(n, 0);
    }
    assert_int_equal(r->entries(rl, mf, ml + 2, 100, &v, &n),
                     RAFT_ERR_UNAVAILABLE);
    assert_int_equal(m->entries(ms, mf, ml + 2, 100, &v, &n),
                     RAFT_ERR_UNAVAILABLE);

    /* snapshot */
    struct raft_snapshot sm, sr;
    assert_int_equal(m->snapshot(ms, &sm), 0);
    assert_int_equal(r->snapshot(rl, &sr), 0);
    assert_int_equal(sm.meta.index, sr.meta.index);
    assert_int_equal(sm.meta.term, sr.meta.term);
    assert_conf_equal(&sm.meta.conf, &sr.meta.conf);
    assert_int_equal(sm.len, sr.len);
    if (sm.len > 0)
        assert_memory_equal(sm.data, sr.data, (size_t)sm.len);
    else
        assert_null(sr.data);
    free(sm.data);
    free(sr.data);
}

/* ---- seeded random driver ------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A memstore and (optionally) a raftlog receiving the same changes. */
struct pair {
    struct memstore ms;
    struct raftlog *rl; /* NULL: replay on the memstore only */
    uint64_t rng;
    uint64_t term;
};

static void pair_init(struct pair *p, uint64_t seed, struct raftlog *rl)
{
    struct raft_conf c = voters(3);
    memset(p, 0, sizeof(*p));
    memstore_init(&p->ms, &c);
    p->rl = rl;
    p->rng = seed * 0x9e3779b97f4a7c15ull + 1;
    p->term = 1;
}

static void pair_close(struct pair *p)
{
    memstore_close(&p->ms);
    raftlog_free(p->rl);
    p->rl = NULL;
}

static void random_conf(struct pair *p, struct raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->n_voters = 1 + (uint32_t)(rnd(&p->rng) % 5);
    c->n_learners = (uint32_t)(rnd(&p->rng) % 3);
    for (uint32_t k = 0; k < c->n_voters; k++)
        c->voters[k] = 1 + k;
    for (uint32_t k = 0; k < c->n_learners; k++)
        c->learners[k] = 10 + k;
}

/* One random change, applied to the memstore and staged into b. With
 * `second` (another change of this group is already staged in b) the
 * application's snapshot and compaction are not chosen: raftlog reads the
 * term of their index from disk, which the contract allows only for
 * written entries (they are applied ones in real use). */
static void pair_step2(struct pair *p, engine_batch *b, bool second)
{
    struct memstore *ms = &p->ms;
    uint64_t last = memstore_last_index(ms);
    uint64_t r = rnd(&p->rng) % 100;

    if (second && r >= 75 && r < 95)
        r = 60;
    if (r < 55) { /* append, sometimes over a conflicting tail */
        struct raft_entry ents[8];
        uint8_t payload[8][48];
        uint64_t first = last + 1;
        /* never below the snapshot: the core truncates only uncommitted
         * entries, and snapshots cover applied ones */
        uint64_t floor = ms->snap.meta.index > ms->off_index
                             ? ms->snap.meta.index : ms->off_index;
        if (r < 10 && last > floor)
            first = floor + 1 + rnd(&p->rng) % (last - floor);
        if (first <= last || rnd(&p->rng) % 4 == 0)
            p->term++;
        size_t n = 1 + (size_t)(rnd(&p->rng) % 8);
        for (size_t k = 0; k < n; k++) {
            ents[k].index = first + k;
            ents[k].term = p->term;
            ents[k].type = rnd(&p->rng) % 10 == 0 ? RAFT_ENTRY_CONF
                                                  : RAFT_ENTRY_NORMAL;
            ents[k].len = (uint32_t)(rnd(&p->rng) % 48);
            for (uint32_t j = 0; j < ents[k].len; j++)
                payload[k][j] = (uint8_t)rnd(&p->rng);
            ents[k].data = ents[k].len > 0 ? payload[k] : NULL;
        }
        memstore_append(ms, ents, n);
        if (p->rl)
            assert_int_equal(raftlog_stage_entries(p->rl, b, ents, n), 0);
    } else if (r < 75) { /* hard state */
        struct raft_hard_state hs = {p->term, 1 + rnd(&p->rng) % 3,
                                     rnd(&p->rng) % (last + 1)};
        memstore_set_hard_state(ms, &hs);
        if (p->rl)
            assert_int_equal(raftlog_stage_hard_state(p->rl, b, &hs), 0);
    } else if (r < 87) { /* the application snapshots (memstore also
                            compacts to the previous snapshot first) */
        uint64_t idx = ms->off_index + rnd(&p->rng) % (last - ms->off_index + 1);
        struct raft_conf c;
        uint8_t data[32];
        uint64_t len = rnd(&p->rng) % 33;
        random_conf(p, &c);
        for (uint64_t j = 0; j < len; j++)
            data[j] = (uint8_t)rnd(&p->rng);
        uint64_t prev = ms->snap.meta.index;
        bool moves = idx > prev;
        memstore_create_snapshot(ms, idx, &c, data, len);
        if (p->rl && moves) {
            assert_int_equal(raftlog_stage_compact(p->rl, b, prev, NULL), 0);
            assert_int_equal(raftlog_stage_save_snapshot(p->rl, b, idx, &c,
                                                         data, len), 0);
        }
    } else if (r < 95) { /* compact to the snapshot */
        uint64_t to = ms->snap.meta.index;
        memstore_compact_to_snapshot(ms);
        if (p->rl)
            assert_int_equal(raftlog_stage_compact(p->rl, b, to, NULL), 0);
    } else { /* install a snapshot from a "leader" */
        struct raft_snapshot s;
        uint8_t data[40];
        memset(&s, 0, sizeof(s));
        s.meta.index = ms->off_index + rnd(&p->rng) % (last + 20 - ms->off_index);
        if (s.meta.index == 0)
            s.meta.index = 1;
        s.meta.term = ++p->term;
        random_conf(p, &s.meta.conf);
        s.len = rnd(&p->rng) % 41;
        for (uint64_t j = 0; j < s.len; j++)
            data[j] = (uint8_t)rnd(&p->rng);
        s.data = s.len > 0 ? data : NULL;
        memstore_install_snapshot(ms, &s);
        if (p->rl)
            assert_int_equal(raftlog_stage_snapshot(p->rl, b, &s), 0);
    }
}

static void pair_step(struct pair *p, engine_batch *b)
{
    pair_step2(p, b, false);
}

/* ---- tests: single group ------------------------------------------------- */

static void test_raftlog__fresh_group_matches_memstore(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3), joiner;
    struct memstore ms;
    memset(&joiner, 0, sizeof(joiner));

    struct raftlog *rl = create_group(e, 7, &c);
    memstore_init(&ms, &c);
    assert_same(&ms, rl);
    assert_int_equal(raftlog_group(rl), 7);
    assert_int_equal(raftlog_first_index(rl), 1);
    assert_int_equal(raftlog_last_index(rl), 0);
    memstore_close(&ms);

    /* a replica that joins later starts with an empty configuration */
    struct raftlog *rj = create_group(e, 8, &joiner);
    memstore_init(&ms, &joiner);
    assert_same(&ms, rj);

    /* creating an existing group is refused; opening a missing one too */
    struct raftlog *dup = NULL;
    okv_error err;
    engine_batch *b = engine_batch_new();
    assert_int_equal(raftlog_create(&dup, e, 7, &c, b, &err), RAFT_ERR_INVALID);
    assert_null(dup);
    assert_int_equal(err.code, OKV_EINVAL);
    assert_int_equal(engine_batch_count(b), 0);
    assert_int_equal(raftlog_open(&dup, e, 9, &err), RAFT_ERR_UNAVAILABLE);
    assert_int_equal(err.code, OKV_ENOTFOUND);
    assert_non_null(strstr(err.msg, "raft group 9"));

    engine_batch_free(b);
    memstore_close(&ms);
    raftlog_free(rl);
    raftlog_free(rj);
    engine_close(e);
}

static void make_entries(struct raft_entry *v, uint8_t (*buf)[16], size_t n,
                         uint64_t first, uint64_t term)
{
    for (size_t k = 0; k < n; k++) {
        v[k].index = first + k;
        v[k].term = term;
        v[k].type = RAFT_ENTRY_NORMAL;
        v[k].len = (uint32_t)snprintf((char *)buf[k], 16, "e%llu.%llu",
                                      (unsigned long long)(first + k),
                                      (unsigned long long)term);
        v[k].data = buf[k];
    }
}

/* Both stores get the same append, staged and written synced. */
static void append_both(engine *e, struct memstore *ms, struct raftlog *rl,
                        uint64_t first, size_t n, uint64_t term)
{
    struct raft_entry v[64];
    uint8_t buf[64][16];
    engine_batch *b = engine_batch_new();
    make_entries(v, buf, n, first, term);
    memstore_append(ms, v, n);
    assert_int_equal(raftlog_stage_entries(rl, b, v, n), 0);
    write_sync(e, b);
    engine_batch_free(b);
}

static bool entry_key_exists(engine *e, uint64_t group, uint64_t index)
{
    uint8_t k[17];
    char *v = NULL;
    size_t len;
    k[0] = 'L';
    keycodec_put_u64be(k + 1, group);
    keycodec_put_u64be(k + 9, index);
    int rc = engine_get(e, ENGINE_CF_RAFT, k, sizeof(k), &v, &len, NULL);
    free(v);
    return rc == OKV_OK;
}

static void test_raftlog__append_and_overwrite_conflicting_tail(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3);
    struct memstore ms;
    memstore_init(&ms, &c);
    struct raftlog *rl = create_group(e, 1, &c);

    append_both(e, &ms, rl, 1, 10, 1);
    assert_same(&ms, rl);
    append_both(e, &ms, rl, 11, 5, 2);
    assert_same(&ms, rl);
    /* a new leader overwrites 6..8; 9..15 must disappear */
    append_both(e, &ms, rl, 6, 3, 3);
    assert_same(&ms, rl);
    assert_int_equal(raftlog_last_index(rl), 8);
    for (uint64_t i = 9; i <= 15; i++)
        assert_false(entry_key_exists(e, 1, i));
    assert_true(entry_key_exists(e, 1, 8));
    /* an append right after the end, and one replacing only the last */
    append_both(e, &ms, rl, 9, 2, 3);
    append_both(e, &ms, rl, 10, 1, 4);
    assert_same(&ms, rl);

    /* preconditions: a gap, a rewrite of the compaction point, a run whose
     * indices skip: refused, and the batch stays empty */
    struct raft_entry v[3];
    uint8_t buf[3][16];
    engine_batch *b = engine_batch_new();
    make_entries(v, buf, 3, 12, 4);
    assert_int_equal(raftlog_stage_entries(rl, b, v, 3), RAFT_ERR_INVALID);
    make_entries(v, buf, 3, 0, 4);
    assert_int_equal(raftlog_stage_entries(rl, b, v, 3), RAFT_ERR_INVALID);
    make_entries(v, buf, 3, 5, 4);
    v[2].index = 9;
    assert_int_equal(raftlog_stage_entries(rl, b, v, 3), RAFT_ERR_INVALID);
    assert_non_null(strstr(raftlog_errmsg(rl), "raft group 1"));
    assert_int_equal(engine_batch_count(b), 0);
    assert_int_equal(raftlog_stage_entries(rl, b, v, 0), 0);
    engine_batch_free(b);
    assert_same(&ms, rl);

    /* the same after a reopen from disk */
    raftlog_free(rl);
    engine_close(e);
    e = open_engine(f->db);
    rl = open_group(e, 1);
    assert_same(&ms, rl);

    memstore_close(&ms);
    raftlog_free(rl);
    engine_close(e);
}

static void test_raftlog__hard_state(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(5);
    struct raftlog *rl = create_group(e, 3, &c);
    struct raft_hard_state hs = {9, 4, 0}, got;
    struct raft_conf gc;
    engine_batch *b = engine_batch_new();

    assert_int_equal(raftlog_stage_hard_state(rl, b, &hs), 0);
    write_sync(e, b);
    assert_int_equal(raftlog_ops.initial_state(rl, &got, &gc), 0);
    assert_int_equal(got.term, 9);
    assert_int_equal(got.vote, 4);
    assert_conf_equal(&gc, &c);
    raftlog_free(rl);
    engine_close(e);

    e = open_engine(f->db);
    rl = open_group(e, 3);
    raftlog_hard_state(rl, &got);
    assert_int_equal(got.term, 9);
    assert_int_equal(got.vote, 4);
    assert_int_equal(got.commit, 0);
    engine_batch_free(b);
    raftlog_free(rl);
    engine_close(e);
}

static void test_raftlog__snapshot_install_resets_log(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3);
    struct memstore ms;
    memstore_init(&ms, &c);
    struct raftlog *rl = create_group(e, 1, &c);
    append_both(e, &ms, rl, 1, 20, 1);

    for (int round = 0; round < 2; round++) {
        /* round 0: behind the log's end; round 1: far beyond it */
        struct raft_snapshot s;
        uint8_t data[] = "application state";
        memset(&s, 0, sizeof(s));
        s.meta.index = round == 0 ? 12 : 100;
        s.meta.term = 2 + (uint64_t)round;
        s.meta.conf = voters(4);
        s.data = data;
        s.len = sizeof(data);
        engine_batch *b = engine_batch_new();
        memstore_install_snapshot(&ms, &s);
        assert_int_equal(raftlog_stage_snapshot(rl, b, &s), 0);
        write_sync(e, b);
        engine_batch_free(b);
        assert_same(&ms, rl);
        assert_int_equal(raftlog_first_index(rl), s.meta.index + 1);
        assert_int_equal(raftlog_last_index(rl), s.meta.index);
        assert_int_equal(raftlog_snapshot_index(rl), s.meta.index);
        for (uint64_t i = 1; i <= 20; i++)
            assert_false(entry_key_exists(e, 1, i));
    }
    append_both(e, &ms, rl, 101, 5, 3);
    assert_same(&ms, rl);
    raftlog_free(rl);
    engine_close(e);
    e = open_engine(f->db);
    rl = open_group(e, 1);
    assert_same(&ms, rl);
    memstore_close(&ms);
    raftlog_free(rl);
    engine_close(e);
}

static void test_raftlog__compaction_keeps_term_of_first_minus_one(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3), c5 = voters(5);
    struct memstore ms;
    memstore_init(&ms, &c);
    struct raftlog *rl = create_group(e, 1, &c);
    append_both(e, &ms, rl, 1, 10, 1);
    append_both(e, &ms, rl, 11, 10, 2);
    engine_batch *b = engine_batch_new();

    /* not past the snapshot (still at 0) */
    assert_int_equal(raftlog_stage_compact(rl, b, 5, &c), RAFT_ERR_INVALID);
    assert_int_equal(engine_batch_count(b), 0);

    memstore_create_snapshot(&ms, 15, &c5, "snap15", 6);
    assert_int_equal(raftlog_stage_save_snapshot(rl, b, 15, &c5, "snap15", 6), 0);
    write_sync(e, b);
    assert_same(&ms, rl);
    /* a snapshot never goes backwards */
    assert_int_equal(raftlog_stage_save_snapshot(rl, b, 12, &c5, "x", 1), 0);
    assert_int_equal(engine_batch_count(b), 0);
    /* beyond the log, beyond the snapshot, NULL conf off the snapshot */
    assert_int_equal(raftlog_stage_save_snapshot(rl, b, 21, &c5, "x", 1),
                     RAFT_ERR_INVALID);
    assert_int_equal(raftlog_stage_compact(rl, b, 16, &c5), RAFT_ERR_INVALID);
    assert_int_equal(raftlog_stage_compact(rl, b, 14, NULL), RAFT_ERR_INVALID);
    assert_int_equal(engine_batch_count(b), 0);

    memstore_compact_to_snapshot(&ms);
    assert_int_equal(raftlog_stage_compact(rl, b, 15, NULL), 0);
    write_sync(e, b);
    assert_same(&ms, rl);
    assert_int_equal(raftlog_first_index(rl), 16);
    uint64_t t;
    assert_int_equal(raftlog_ops.term(rl, 15, &t), 0);
    assert_int_equal(t, 2);
    assert_int_equal(raftlog_ops.term(rl, 14, &t), RAFT_ERR_COMPACTED);
    for (uint64_t i = 1; i <= 15; i++)
        assert_false(entry_key_exists(e, 1, i));
    /* compacting again to the same point is a no-op */
    assert_int_equal(raftlog_stage_compact(rl, b, 15, NULL), 0);
    assert_int_equal(engine_batch_count(b), 0);

    /* a compaction below the snapshot with the caller's configuration */
    memstore_create_snapshot(&ms, 20, &c, "snap20", 6);
    assert_int_equal(raftlog_stage_save_snapshot(rl, b, 20, &c, "snap20", 6), 0);
    assert_int_equal(raftlog_stage_compact(rl, b, 17, &c5), 0);
    write_sync(e, b);
    struct raft_hard_state hs;
    struct raft_conf gc;
    assert_int_equal(raftlog_ops.initial_state(rl, &hs, &gc), 0);
    assert_conf_equal(&gc, &c5);
    assert_int_equal(raftlog_first_index(rl), 18);

    raftlog_free(rl);
    engine_close(e);
    e = open_engine(f->db);
    rl = open_group(e, 1);
    assert_int_equal(raftlog_first_index(rl), 18);
    assert_int_equal(raftlog_last_index(rl), 20);
    assert_int_equal(raftlog_snapshot_index(rl), 20);
    assert_int_equal(raftlog_ops.term(rl, 17, &t), 0);
    assert_int_equal(t, 2);
    assert_int_equal(raftlog_ops.initial_state(rl, &hs, &gc), 0);
    assert_conf_equal(&gc, &c5);
    engine_batch_free(b);
    memstore_close(&ms);
    raftlog_free(rl);
    engine_close(e);
}

static void test_raftlog__max_bytes_returns_at_least_one_entry(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3);
    struct memstore ms;
    memstore_init(&ms, &c);
    struct raftlog *rl = create_group(e, 1, &c);
    append_both(e, &ms, rl, 1, 30, 1); /* payloads "e<i>.1": 4–5 bytes */

    uint64_t limits[] = {0, 1, 4, 5, 9, 10, 11, 23, 100, UINT64_MAX};
    for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
        for (uint64_t lo = 1; lo <= 30; lo += 7) {
            struct raft_entry *ve, *vr;
            size_t ne, nr;
            assert_int_equal(memstore_ops.entries(&ms, lo, 31, limits[l], &ve, &ne), 0);
            assert_int_equal(raftlog_ops.entries(rl, lo, 31, limits[l], &vr, &nr), 0);
            assert_int_equal(ne, nr);
            assert_true(nr >= 1);
            for (size_t k = 0; k < nr; k++)
                assert_int_equal(vr[k].index, lo + k);
            free_entries(ve, ne);
            free_entries(vr, nr);
        }
    }
    /* lo >= hi is UNAVAILABLE (as in memstore) */
    struct raft_entry *v;
    size_t n;
    assert_int_equal(raftlog_ops.entries(rl, 5, 5, 100, &v, &n),
                     RAFT_ERR_UNAVAILABLE);
    assert_int_equal(memstore_ops.entries(&ms, 5, 5, 100, &v, &n),
                     RAFT_ERR_UNAVAILABLE);
    memstore_close(&ms);
    raftlog_free(rl);
    engine_close(e);
}

/* Long random differential runs with reopens in between. */
static void test_raftlog__random_ops_match_memstore_across_reopen(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3);
    struct pair p;
    engine_batch *b = engine_batch_new();
    pair_init(&p, 42, create_group(e, 5, &c));

    for (int step = 1; step <= 1500; step++) {
        pair_step(&p, b);
        if (rnd(&p.rng) % 3 == 0)
            pair_step2(&p, b, true); /* two changes in one batch */
        write_sync(e, b);
        if (step % 50 == 0)
            assert_same(&p.ms, p.rl);
        if (step % 300 == 0) {
            raftlog_free(p.rl);
            engine_close(e);
            e = open_engine(f->db);
            p.rl = open_group(e, 5);
            assert_same(&p.ms, p.rl);
        }
    }
    engine_batch_free(b);
    pair_close(&p);
    engine_close(e);
}

/* ---- tests: many groups -------------------------------------------------- */

static int collect(void *ctx, uint64_t group)
{
    uint64_t *v = ctx;
    v[++v[0]] = group;
    return 0;
}

static int stop_at_second(void *ctx, uint64_t group)
{
    int *calls = ctx;
    return ++*calls == 2 ? 77 : 0;
}

static size_t count_keys(engine *e, uint8_t tag, uint64_t group)
{
    uint8_t pfx[9];
    engine_iter *it = NULL;
    size_t n = 0;
    pfx[0] = tag;
    keycodec_put_u64be(pfx + 1, group);
    assert_int_equal(engine_iter_new_prefix(&it, e, ENGINE_CF_RAFT, pfx, 9, NULL), 0);
    for (; engine_iter_valid(it); engine_iter_next(it))
        n++;
    engine_iter_free(it);
    return n;
}

/* A compaction of many entries drops them with one range tombstone: every
 * entry up to the point is gone (also after a reopen), every later one and
 * every entry of the neighbouring group stays. */
static void test_raftlog__large_compaction_deletes_exactly_its_range(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3);
    struct memstore ms1, ms2;
    memstore_init(&ms1, &c);
    memstore_init(&ms2, &c);
    struct raftlog *g1 = create_group(e, 1, &c);
    struct raftlog *g2 = create_group(e, 2, &c);
    for (uint64_t first = 1; first <= 500; first += 50) {
        append_both(e, &ms1, g1, first, 50, 1);
        append_both(e, &ms2, g2, first, 50, 1);
    }
    engine_batch *b = engine_batch_new();
    memstore_create_snapshot(&ms1, 400, &c, "snap400", 7);
    assert_int_equal(raftlog_stage_save_snapshot(g1, b, 400, &c, "snap400", 7), 0);
    memstore_compact_to_snapshot(&ms1);
    assert_int_equal(raftlog_stage_compact(g1, b, 400, NULL), 0);
    write_sync(e, b);
    assert_same(&ms1, g1);
    assert_same(&ms2, g2);
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 1; i <= 500; i++) {
            assert_int_equal(entry_key_exists(e, 1, i), i > 400);
            assert_true(entry_key_exists(e, 2, i));
        }
        assert_int_equal(count_keys(e, 'L' /* TAG_LOG */, 1), 100);
        if (round == 0) {
            raftlog_free(g1);
            raftlog_free(g2);
            engine_close(e);
            e = open_engine(f->db);
            okv_error err;
            assert_int_equal(raftlog_open(&g1, e, 1, &err), 0);
            assert_int_equal(raftlog_open(&g2, e, 2, &err), 0);
            assert_same(&ms1, g1);
            assert_same(&ms2, g2);
        }
    }
    engine_batch_free(b);
    raftlog_free(g1);
    raftlog_free(g2);
    memstore_close(&ms1);
    memstore_close(&ms2);
    engine_close(e);
}

static void test_raftlog__groups_interleaved_never_see_each_other(void **state)
{
    struct fixture *f = *state;
    /* ids chosen so that their keys are neighbours and extremes */
    const uint64_t ids[] = {0, 1, 2, 255, 256, UINT64_MAX - 1, UINT64_MAX};
    enum { G = sizeof(ids) / sizeof(ids[0]) };
    struct pair p[G];
    struct raft_conf c = voters(3);
    engine *e = open_engine(f->db);
    engine_batch *b = engine_batch_new();

    for (int g = 0; g < G; g++) {
        struct raftlog *rl = NULL;
        assert_int_equal(raftlog_create(&rl, e, ids[g], &c, b, NULL), 0);
        pair_init(&p[g], 1000 + (uint64_t)g, rl);
    }
    write_sync(e, b);
    for (int step = 1; step <= 400; step++) {
        /* one batch for all groups, like the raft loop */
        for (int g = 0; g < G; g++)
            if ((step + g) % 3 != 0)
                pair_step(&p[g], b);
        write_sync(e, b);
        if (step % 100 == 0)
            for (int g = 0; g < G; g++)
                assert_same(&p[g].ms, p[g].rl);
    }
    uint64_t got[16] = {0};
    assert_int_equal(raftlog_list_groups(e, collect, got, NULL), 0);
    assert_int_equal(got[0], G);
    for (int g = 0; g < G; g++)
        assert_int_equal(got[1 + g], ids[g]);
    int calls = 0;
    assert_int_equal(raftlog_list_groups(e, stop_at_second, &calls, NULL), 77);
    assert_int_equal(calls, 2);

    /* restart: every group reloads exactly */
    for (int g = 0; g < G; g++) {
        raftlog_free(p[g].rl);
        p[g].rl = NULL;
    }
    engine_close(e);
    e = open_engine(f->db);
    for (int g = 0; g < G; g++) {
        p[g].rl = open_group(e, ids[g]);
        assert_same(&p[g].ms, p[g].rl);
    }

    /* destroying group 256 removes all its keys and nothing else */
    assert_int_equal(raftlog_destroy_stage(p[4].rl, b), 0);
    assert_int_equal(raftlog_stage_hard_state(p[4].rl, b, &p[4].ms.hs),
                     RAFT_ERR_INVALID);
    write_sync(e, b);
    const uint8_t tags[] = {'H', 'L', 'S', 'T'};
    for (size_t t = 0; t < sizeof(tags); t++)
        assert_int_equal(count_keys(e, tags[t], 256), 0);
    memset(got, 0, sizeof(got));
    assert_int_equal(raftlog_list_groups(e, collect, got, NULL), 0);
    assert_int_equal(got[0], G - 1);
    struct raftlog *gone = NULL;
    assert_int_equal(raftlog_open(&gone, e, 256, NULL), RAFT_ERR_UNAVAILABLE);
    for (int g = 0; g < G; g++)
        if (g != 4)
            assert_same(&p[g].ms, p[g].rl);

    for (int g = 0; g < G; g++)
        pair_close(&p[g]);
    engine_batch_free(b);
    engine_close(e);
}

/* ---- tests: durability --------------------------------------------------- */

static void test_raftlog__unwritten_batch_leaves_nothing_visible(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3);
    struct memstore ms;
    memstore_init(&ms, &c);
    struct raftlog *rl = create_group(e, 1, &c);
    append_both(e, &ms, rl, 1, 10, 1);
    engine_batch *b = engine_batch_new();
    memstore_create_snapshot(&ms, 5, &c, "s", 1);
    assert_int_equal(raftlog_stage_save_snapshot(rl, b, 5, &c, "s", 1), 0);
    write_sync(e, b);

    /* everything staged, nothing written */
    struct raft_entry v[4];
    uint8_t buf[4][16];
    make_entries(v, buf, 4, 8, 2);
    struct raft_hard_state hs = {2, 2, 7};
    assert_int_equal(raftlog_stage_entries(rl, b, v, 4), 0);
    assert_int_equal(raftlog_stage_hard_state(rl, b, &hs), 0);
    assert_int_equal(raftlog_stage_compact(rl, b, 5, NULL), 0);
    assert_int_equal(raftlog_last_index(rl), 11); /* the cache moved */
    engine_batch_free(b);

    assert_int_equal(raftlog_reload(rl), 0);
    assert_same(&ms, rl);
    /* and a second handle from disk agrees */
    struct raftlog *r2 = open_group(e, 1);
    assert_same(&ms, r2);
    raftlog_free(r2);
    memstore_close(&ms);
    raftlog_free(rl);
    engine_close(e);
}

/* The kill -9 child: replays seed `seed` on a raftlog and a memstore,
 * writing one synced batch per step and reporting each step on fd 3 only
 * after its write returned; after `steps` steps it stages one more batch
 * and SIGKILLs itself without writing it. */
static int child_main(const char *db, uint64_t seed, int steps)
{
    engine *e = NULL;
    okv_error err;
    struct raftlog *rl = NULL;
    struct raft_conf c = voters(3);
    struct pair p;

    if (engine_open(&e, db, NULL, &err) != OKV_OK)
        return 2;
    engine_batch *b = engine_batch_new();
    if (raftlog_create(&rl, e, 11, &c, b, &err) != 0 ||
        engine_write(e, b, 1, &err) != OKV_OK)
        return 3;
    engine_batch_clear(b);
    pair_init(&p, seed, rl);
    for (int step = 1; step <= steps; step++) {
        pair_step(&p, b);
        if (engine_write(e, b, 1, &err) != OKV_OK)
            return 4;
        engine_batch_clear(b);
        if (write(3, &step, sizeof(step)) != (ssize_t)sizeof(step))
            return 5;
    }
    pair_step(&p, b);
    pair_step2(&p, b, true);
    raise(SIGKILL);
    return 6;
}

static void test_raftlog__kill9_between_synced_batches(void **state)
{
    struct fixture *f = *state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        char db[160], sseed[24], ssteps[24];
        int fds[2], steps = 150 + (int)seed * 60, last = 0, got;
        snprintf(db, sizeof db, "%s/kill%llu", f->dir, (unsigned long long)seed);
        snprintf(sseed, sizeof sseed, "%llu", (unsigned long long)seed);
        snprintf(ssteps, sizeof ssteps, "%d", steps);
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* the write end becomes fd 3 (the read end may be fd 3) */
            if (fds[1] != 3) {
                dup2(fds[1], 3);
                close(fds[1]);
            }
            if (fds[0] != 3)
                close(fds[0]);
            execl(self_exe, self_exe, "--child", db, sseed, ssteps, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        while (read(fds[0], &got, sizeof(got)) == (ssize_t)sizeof(got))
            last = got;
        close(fds[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
        assert_int_equal(last, steps);

        /* replay what was acknowledged on a memstore and compare */
        struct pair p;
        pair_init(&p, seed, NULL);
        for (int step = 1; step <= last; step++)
            pair_step(&p, NULL);
        engine *e = open_engine(db);
        p.rl = open_group(e, 11);
        assert_same(&p.ms, p.rl);
        pair_close(&p);
        engine_close(e);
    }
}

/* ---- tests: corruption --------------------------------------------------- */

static void raw_put(engine *e, uint8_t tag, uint64_t group, int with_index,
                    uint64_t index, const void *v, size_t len)
{
    uint8_t k[17];
    k[0] = tag;
    keycodec_put_u64be(k + 1, group);
    keycodec_put_u64be(k + 9, index);
    assert_int_equal(engine_put(e, ENGINE_CF_RAFT, k, with_index ? 17 : 9, v,
                                len, 1, NULL), OKV_OK);
}

static void raw_delete(engine *e, uint64_t group, uint64_t index)
{
    uint8_t k[17];
    k[0] = 'L';
    keycodec_put_u64be(k + 1, group);
    keycodec_put_u64be(k + 9, index);
    assert_int_equal(engine_delete(e, ENGINE_CF_RAFT, k, 17, 1, NULL), OKV_OK);
}

static void test_raftlog__corrupt_bytes_are_reported(void **state)
{
    struct fixture *f = *state;
    engine *e = open_engine(f->db);
    struct raft_conf c = voters(3);
    struct memstore ms;
    memstore_init(&ms, &c);
    struct raftlog *rl = create_group(e, 1, &c);
    append_both(e, &ms, rl, 1, 10, 1);
    struct raft_entry *v = NULL;
    size_t n = 0;
    uint64_t t;

    /* garbage in entry 5 */
    raw_put(e, 'L', 1, 1, 5, "garbage", 7);
    assert_int_equal(raftlog_ops.entries(rl, 1, 11, UINT64_MAX, &v, &n),
                     RAFT_ERR_CORRUPT);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_non_null(strstr(raftlog_errmsg(rl), "entry 5"));
    assert_int_equal(raftlog_ops.term(rl, 5, &t), RAFT_ERR_CORRUPT);
    /* entries before it still read */
    assert_int_equal(raftlog_ops.entries(rl, 1, 5, UINT64_MAX, &v, &n), 0);
    assert_int_equal(n, 4);
    free_entries(v, n);

    /* a well-formed entry stored under the wrong index */
    uint8_t enc[64];
    size_t len;
    struct raft_entry wrong = {1, 4, RAFT_ENTRY_NORMAL, 0, NULL};
    assert_int_equal(raft_entry_encode(&wrong, enc, sizeof(enc), &len), 0);
    raw_put(e, 'L', 1, 1, 5, enc, len);
    assert_int_equal(raftlog_ops.term(rl, 5, &t), RAFT_ERR_CORRUPT);
    assert_int_equal(raftlog_ops.entries(rl, 5, 6, 1, &v, &n), RAFT_ERR_CORRUPT);

    /* a hole */
    raw_delete(e, 1, 5);
    assert_int_equal(raftlog_ops.entries(rl, 3, 8, UINT64_MAX, &v, &n),
                     RAFT_ERR_CORRUPT);
    assert_int_equal(raftlog_ops.term(rl, 5, &t), RAFT_ERR_CORRUPT);
    assert_int_equal(raftlog_ops.entries(rl, 6, 11, UINT64_MAX, &v, &n), 0);
    free_entries(v, n);

    /* the last entry corrupt: found at open */
    raw_put(e, 'L', 1, 1, 10, "x", 1);
    struct raftlog *r2 = NULL;
    okv_error err;
    assert_int_equal(raftlog_open(&r2, e, 1, &err), RAFT_ERR_CORRUPT);
    assert_int_equal(err.code, OKV_ECORRUPT);
    assert_non_null(strstr(err.msg, "entry 10"));
    assert_int_equal(raftlog_reload(rl), RAFT_ERR_CORRUPT);

    /* a stray entry below the compaction point */
    engine_batch *b = engine_batch_new();
    append_both(e, &ms, rl, 10, 1, 1);
    memstore_create_snapshot(&ms, 4, &c, NULL, 0);
    assert_int_equal(raftlog_stage_save_snapshot(rl, b, 4, &c, NULL, 0), 0);
    assert_int_equal(raftlog_stage_compact(rl, b, 4, NULL), 0);
    write_sync(e, b);
    raw_put(e, 'L', 1, 1, 2, enc, len);
    assert_int_equal(raftlog_open(&r2, e, 1, &err), RAFT_ERR_CORRUPT);
    raw_delete(e, 1, 2);

    /* damaged 'T', 'H', 'S' */
    raw_put(e, 'H', 1, 0, 0, "short", 5);
    assert_int_equal(raftlog_open(&r2, e, 1, &err), RAFT_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "hard state"));
    struct raft_hard_state hs = {1, 1, 1};
    assert_int_equal(raftlog_stage_hard_state(rl, b, &hs), 0);
    write_sync(e, b);
    raw_put(e, 'S', 1, 0, 0, "\x01", 1);
    assert_int_equal(raftlog_open(&r2, e, 1, &err), RAFT_ERR_CORRUPT);
    struct raft_snapshot s;
    assert_int_equal(raftlog_ops.snapshot(rl, &s), RAFT_ERR_CORRUPT);
    assert_null(s.data);
    raw_put(e, 'T', 1, 0, 0, "\x02zzzzzzzzzzzzzzzzzzzzzzzzz", 27);
    assert_int_equal(raftlog_open(&r2, e, 1, &err), RAFT_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "compaction point"));
    assert_null(r2);
    /* a malformed 'T' key makes discovery fail */
    raw_put(e, 'T', 1, 1, 0, "", 0);
    uint64_t got[8] = {0};
    assert_int_equal(raftlog_list_groups(e, collect, got, &err), RAFT_ERR_CORRUPT);
    assert_int_equal(err.code, OKV_ECORRUPT);

    engine_batch_free(b);
    memstore_close(&ms);
    raftlog_free(rl);
    engine_close(e);
}

int main(int argc, char **argv)
{
    self_exe = argv[0];
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_raftlog__fresh_group_matches_memstore),
        T(test_raftlog__append_and_overwrite_conflicting_tail),
        T(test_raftlog__hard_state),
        T(test_raftlog__snapshot_install_resets_log),
        T(test_raftlog__compaction_keeps_term_of_first_minus_one),
        T(test_raftlog__max_bytes_returns_at_least_one_entry),
        T(test_raftlog__random_ops_match_memstore_across_reopen),
        T(test_raftlog__groups_interleaved_never_see_each_other),
        T(test_raftlog__large_compaction_deletes_exactly_its_range),
        T(test_raftlog__unwritten_batch_leaves_nothing_visible),
        T(test_raftlog__kill9_between_synced_batches),
        T(test_raftlog__corrupt_bytes_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

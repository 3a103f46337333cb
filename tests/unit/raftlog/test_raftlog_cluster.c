/*
 * test_raftlog_cluster.c — real Raft groups from the core (server/raft) with
 * raftlog storage: the proof that raftlog implements the storage contract
 * the core expects.
 *
 * Three nodes, each with its own RocksDB dir, each hosting replicas of two
 * groups (multi-raft: both groups share the node's engine and every round
 * persists both groups' Readies in ONE synced batch, the way orderkvd's raft
 * loop does). Messages go through the codec into an in-process FIFO queue;
 * messages to a stopped node are lost. The application is a running hash of
 * applied entries; it persists (applied index, hash) in the meta column
 * family after applying, snapshots every SNAP_EVERY entries (snapshot data =
 * applied index + hash) and compacts the log behind the snapshot.
 *
 * Faults: a follower is stopped while the others commit and compact past
 * its log (it must come back through a snapshot), the leader is restarted,
 * and finally the whole cluster is restarted. A restart frees the raft node,
 * the raftlog handles and the engine, reopens the engine, discovers the
 * groups with raftlog_list_groups, raftlog_open's them and raft_new's with
 * cfg.applied from the application's record.
 *
 * Checks: every node applies exactly the same sequence (each applied index
 * must carry the same running hash on every node; a snapshot install must
 * carry the hash the others had at its index), applies contiguously, and at
 * the end all nodes reach the same applied index with the same hash, every
 * proposal of the test has been applied, snapshots were installed and logs
 * compacted.
 */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"
#include "keycodec.h"
#include "raft_codec.h"
#include "raftlog.h"

#define N_NODES 3
#define N_GROUPS 2
#define TARGET 3000       /* proposals applied per group */
#define PER_ROUND 6       /* proposals per round per group */
#define SNAP_EVERY 150    /* application snapshot interval (entries) */
#define KEEP_BEHIND 40    /* entries kept below the snapshot on compaction */
#define MAX_INDEX 20000

struct replica {
    struct raftlog *rl;
    struct raft_node *raft;
    uint64_t applied;
    uint64_t hash;
};

struct node {
    char dir[128];
    engine *e;
    bool up;
    struct replica g[N_GROUPS];
};

struct qmsg {
    uint64_t group;
    raft_id to;
    uint8_t *buf;
    size_t len;
};

struct cluster {
    char root[64];
    struct node n[N_NODES + 1]; /* 1-based */
    struct qmsg *q;
    size_t nq, capq;
    uint64_t hash_at[N_GROUPS][MAX_INDEX]; /* 0 = nobody applied it yet */
    uint64_t props_at[N_GROUPS][MAX_INDEX]; /* proposals in 1..index */
    uint64_t next_seq[N_GROUPS];
    uint64_t snap_installs, compactions, restarts, rounds;
};

/* ---- helpers ------------------------------------------------------------- */

static uint64_t mix(uint64_t h, const struct raft_entry *e)
{
    h ^= e->index * 0x9e3779b97f4a7c15ull;
    h = (h ^ e->term) * 0x100000001b3ull;
    for (uint32_t k = 0; k < e->len; k++)
        h = (h ^ e->data[k]) * 0x100000001b3ull;
    return h | 1; /* never 0: 0 means unknown in hash_at */
}

static void app_key(uint8_t k[9], uint64_t group)
{
    k[0] = 'A';
    keycodec_put_u64be(k + 1, group);
}

static void enqueue(struct cluster *c, uint64_t group,
                    const struct raft_message *m)
{
    if (c->nq == c->capq) {
        c->capq = c->capq ? 2 * c->capq : 256;
        c->q = realloc(c->q, c->capq * sizeof(*c->q));
        assert_non_null(c->q);
    }
    size_t need = raft_message_encoded_size(m), len = 0;
    uint8_t *buf = malloc(need);
    assert_non_null(buf);
    assert_int_equal(raft_message_encode(m, buf, need, &len), 0);
    c->q[c->nq++] = (struct qmsg){group, m->to, buf, len};
}

static void deliver_all(struct cluster *c)
{
    struct qmsg *q = c->q;
    size_t nq = c->nq;
    c->q = NULL;
    c->nq = c->capq = 0;
    for (size_t k = 0; k < nq; k++) {
        struct node *n = q[k].to <= N_NODES ? &c->n[q[k].to] : NULL;
        if (n != NULL && n->up) {
            struct raft_message m;
            assert_int_equal(raft_message_decode(q[k].buf, q[k].len, &m), 0);
            (void)raft_step(n->g[q[k].group].raft, &m);
            raft_message_release(&m);
        }
        free(q[k].buf);
    }
    free(q);
}

/* ---- node lifecycle ------------------------------------------------------ */

static int found_group(void *ctx, uint64_t group)
{
    int *mask = ctx;
    assert_true(group < N_GROUPS);
    *mask |= 1 << group;
    return 0;
}

static void node_start(struct cluster *c, raft_id id, bool fresh)
{
    struct node *n = &c->n[id];
    okv_error err;
    int rc = engine_open(&n->e, n->dir, NULL, &err);
    if (rc != OKV_OK)
        fprintf(stderr, "engine_open: %s\n", err.msg);
    assert_int_equal(rc, OKV_OK);

    if (fresh) {
        struct raft_conf conf;
        memset(&conf, 0, sizeof(conf));
        conf.n_voters = N_NODES;
        for (uint32_t k = 0; k < N_NODES; k++)
            conf.voters[k] = k + 1;
        engine_batch *b = engine_batch_new();
        for (uint64_t g = 0; g < N_GROUPS; g++)
            assert_int_equal(raftlog_create(&n->g[g].rl, n->e, g, &conf, b,
                                            NULL), 0);
        assert_int_equal(engine_write(n->e, b, 1, NULL), OKV_OK);
        engine_batch_free(b);
    } else {
        int mask = 0;
        assert_int_equal(raftlog_list_groups(n->e, found_group, &mask, NULL), 0);
        assert_int_equal(mask, (1 << N_GROUPS) - 1);
        for (uint64_t g = 0; g < N_GROUPS; g++) {
            rc = raftlog_open(&n->g[g].rl, n->e, g, &err);
            if (rc != 0)
                fprintf(stderr, "raftlog_open: %s\n", err.msg);
            assert_int_equal(rc, 0);
        }
    }

    for (uint64_t g = 0; g < N_GROUPS; g++) {
        struct replica *r = &n->g[g];
        uint8_t k[9];
        char *v = NULL;
        size_t len = 0;
        /* the application's durable state, else the snapshot's */
        r->applied = r->hash = 0;
        app_key(k, g);
        rc = engine_get(n->e, ENGINE_CF_META, k, 9, &v, &len, NULL);
        if (rc == OKV_OK) {
            assert_int_equal(len, 16);
            r->applied = keycodec_get_u64be((uint8_t *)v);
            r->hash = keycodec_get_u64be((uint8_t *)v + 8);
            free(v);
        } else {
            assert_int_equal(rc, OKV_ENOTFOUND);
        }
        struct raft_snapshot s;
        assert_int_equal(raftlog_ops.snapshot(r->rl, &s), 0);
        if (s.meta.index > r->applied) {
            assert_int_equal(s.len, 16);
            r->applied = keycodec_get_u64be(s.data);
            r->hash = keycodec_get_u64be(s.data + 8);
        }
        free(s.data);
        assert_true(r->applied >= raftlog_first_index(r->rl) - 1);

        struct raft_config cfg;
        raft_config_init(&cfg);
        cfg.id = id;
        cfg.seed = id * 1000 + g + c->restarts * 7919;
        cfg.storage = &raftlog_ops;
        cfg.storage_ctx = r->rl;
        cfg.applied = r->applied;
        cfg.max_msg_bytes = 4096; /* several appends per catch-up */
        rc = raft_new(&cfg, &r->raft);
        assert_int_equal(rc, 0);
        struct raft_status st;
        raft_status(r->raft, &st);
        assert_int_equal(st.applied, r->applied);
    }
    n->up = true;
}

static void node_stop(struct cluster *c, raft_id id)
{
    struct node *n = &c->n[id];
    for (int g = 0; g < N_GROUPS; g++) {
        raft_free(n->g[g].raft);
        raftlog_free(n->g[g].rl);
        memset(&n->g[g], 0, sizeof(n->g[g]));
    }
    engine_close(n->e);
    n->e = NULL;
    n->up = false;
    c->restarts++;
}

/* ---- the raft loop of one node ------------------------------------------- */

static void check_applied(struct cluster *c, uint64_t g, uint64_t index,
                          uint64_t hash)
{
    assert_true(index < MAX_INDEX);
    if (c->hash_at[g][index] == 0)
        c->hash_at[g][index] = hash;
    else
        assert_int_equal(c->hash_at[g][index], hash);
}

static void apply(struct cluster *c, raft_id id, uint64_t g,
                  const struct raft_entry *e)
{
    struct replica *r = &c->n[id].g[g];
    assert_int_equal(e->index, r->applied + 1);
    r->hash = mix(r->hash, e);
    r->applied = e->index;
    check_applied(c, g, e->index, r->hash);
    c->props_at[g][e->index] = c->props_at[g][e->index - 1] +
                               (e->type == RAFT_ENTRY_NORMAL && e->len > 0);
}

/* The application's snapshot and compaction, outside raft calls. */
static void maybe_snapshot(struct cluster *c, raft_id id, engine_batch *b)
{
    struct node *n = &c->n[id];
    bool staged = false;
    for (uint64_t g = 0; g < N_GROUPS; g++) {
        struct replica *r = &n->g[g];
        uint64_t si = raftlog_snapshot_index(r->rl);
        if (r->applied < si + SNAP_EVERY)
            continue;
        struct raft_status st;
        raft_status(r->raft, &st);
        uint8_t data[16];
        keycodec_put_u64be(data, r->applied);
        keycodec_put_u64be(data + 8, r->hash);
        assert_int_equal(raftlog_stage_save_snapshot(r->rl, b, r->applied,
                                                     &st.conf, data, 16), 0);
        /* alternately compact to the snapshot and keep a tail behind it */
        uint64_t upto = (c->compactions % 2) ? r->applied
                                             : r->applied - KEEP_BEHIND;
        assert_int_equal(raftlog_stage_compact(r->rl, b, upto,
                                               upto == r->applied ? NULL
                                                                  : &st.conf),
                         0);
        c->compactions++;
        staged = true;
    }
    if (staged)
        assert_int_equal(engine_write(n->e, b, 1, NULL), OKV_OK);
    engine_batch_clear(b);
}

static void process_node(struct cluster *c, raft_id id)
{
    struct node *n = &c->n[id];
    struct raft_ready rd[N_GROUPS];
    bool has[N_GROUPS];
    bool any = false;
    engine_batch *b = engine_batch_new();

    for (uint64_t g = 0; g < N_GROUPS; g++) {
        struct replica *r = &n->g[g];
        has[g] = raft_has_ready(r->raft);
        if (!has[g])
            continue;
        any = true;
        assert_int_equal(raft_ready(r->raft, &rd[g]), 0);
        for (size_t k = 0; k < rd[g].n_msgs; k++)
            enqueue(c, g, &rd[g].msgs[k]);
        if (rd[g].snapshot != NULL)
            assert_int_equal(raftlog_stage_snapshot(r->rl, b, rd[g].snapshot), 0);
        assert_int_equal(raftlog_stage_entries(r->rl, b, rd[g].entries,
                                               rd[g].n_entries), 0);
        if (rd[g].hs_changed)
            assert_int_equal(raftlog_stage_hard_state(r->rl, b, &rd[g].hs), 0);
    }
    if (!any) {
        engine_batch_free(b);
        return;
    }
    /* group commit: every group's Ready in one synced write */
    assert_int_equal(engine_write(n->e, b, 1, NULL), OKV_OK);
    engine_batch_clear(b);

    for (uint64_t g = 0; g < N_GROUPS; g++) {
        if (!has[g])
            continue;
        struct replica *r = &n->g[g];
        for (size_t k = 0; k < rd[g].n_msgs_after_persist; k++)
            enqueue(c, g, &rd[g].msgs_after_persist[k]);
        if (rd[g].snapshot != NULL) {
            const struct raft_snapshot *s = rd[g].snapshot;
            assert_int_equal(s->len, 16);
            assert_int_equal(keycodec_get_u64be(s->data), s->meta.index);
            r->applied = s->meta.index;
            r->hash = keycodec_get_u64be(s->data + 8);
            check_applied(c, g, r->applied, r->hash);
            c->snap_installs++;
        }
        for (size_t k = 0; k < rd[g].n_committed; k++)
            apply(c, id, g, &rd[g].committed[k]);
        /* the application's state, in the meta column family */
        uint8_t k[9], v[16];
        app_key(k, g);
        keycodec_put_u64be(v, r->applied);
        keycodec_put_u64be(v + 8, r->hash);
        engine_batch_put(b, ENGINE_CF_META, k, 9, v, 16);
    }
    assert_int_equal(engine_write(n->e, b, 1, NULL), OKV_OK);
    engine_batch_clear(b);
    for (uint64_t g = 0; g < N_GROUPS; g++)
        if (has[g])
            raft_advance(n->g[g].raft);
    maybe_snapshot(c, id, b);
    engine_batch_free(b);
}

static raft_id leader_of(struct cluster *c, uint64_t g)
{
    for (raft_id id = 1; id <= N_NODES; id++) {
        if (!c->n[id].up)
            continue;
        struct raft_status st;
        raft_status(c->n[id].g[g].raft, &st);
        if (st.role == RAFT_LEADER)
            return id;
    }
    return 0;
}

static void propose(struct cluster *c, bool stop_proposing)
{
    for (uint64_t g = 0; g < N_GROUPS; g++) {
        raft_id l = leader_of(c, g);
        if (l == 0 || stop_proposing)
            continue;
        for (int k = 0; k < PER_ROUND; k++) {
            char buf[48];
            int len = snprintf(buf, sizeof buf, "group %llu proposal %llu",
                               (unsigned long long)g,
                               (unsigned long long)c->next_seq[g]);
            if (raft_propose(c->n[l].g[g].raft, buf, (uint32_t)len, NULL,
                             NULL) != 0)
                break;
            c->next_seq[g]++;
        }
    }
}

static void round_(struct cluster *c, bool stop_proposing)
{
    c->rounds++;
    for (raft_id id = 1; id <= N_NODES; id++)
        if (c->n[id].up)
            for (int g = 0; g < N_GROUPS; g++)
                (void)raft_tick(c->n[id].g[g].raft);
    deliver_all(c);
    propose(c, stop_proposing);
    for (raft_id id = 1; id <= N_NODES; id++)
        if (c->n[id].up)
            process_node(c, id);
}

static uint64_t min_proposals_applied(struct cluster *c)
{
    uint64_t m = UINT64_MAX;
    for (int g = 0; g < N_GROUPS; g++)
        for (raft_id id = 1; id <= N_NODES; id++)
            if (c->props_at[g][c->n[id].g[g].applied] < m)
                m = c->props_at[g][c->n[id].g[g].applied];
    return m;
}

static bool converged(struct cluster *c)
{
    for (int g = 0; g < N_GROUPS; g++) {
        uint64_t a = c->n[1].g[g].applied;
        raft_id l = leader_of(c, g);
        if (l == 0)
            return false;
        struct raft_status st;
        raft_status(c->n[l].g[g].raft, &st);
        for (raft_id id = 1; id <= N_NODES; id++)
            if (!c->n[id].up || c->n[id].g[g].applied != a ||
                a != st.last_index)
                return false;
    }
    return true;
}

/* ---- the test ------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    return remove(path);
}

static void run_until(struct cluster *c, uint64_t rounds, bool stop_proposing)
{
    for (uint64_t k = 0; k < rounds; k++)
        round_(c, stop_proposing);
}

static void test_raftlog__three_node_groups_apply_the_same_sequence(void **state)
{
    struct cluster *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    strcpy(c->root, "/tmp/okv-test-raftlog-cluster-XXXXXX");
    assert_non_null(mkdtemp(c->root));
    for (raft_id id = 1; id <= N_NODES; id++) {
        snprintf(c->n[id].dir, sizeof(c->n[id].dir), "%s/node%llu", c->root,
                 (unsigned long long)id);
        node_start(c, id, true);
    }

    /* 1. elect and replicate */
    run_until(c, 100, false);
    for (int g = 0; g < N_GROUPS; g++)
        assert_true(leader_of(c, g) != 0);

    /* 2. a follower of group 0 stops while the others go on and compact
     *    past its log; it must come back through a snapshot */
    raft_id l0 = leader_of(c, 0);
    raft_id down = l0 % N_NODES + 1;
    uint64_t down_applied = c->n[down].g[0].applied;
    node_stop(c, down);
    run_until(c, 60, false);
    for (int g = 0; g < N_GROUPS; g++) {
        raft_id l = leader_of(c, g);
        assert_true(l != 0);
        assert_true(raftlog_first_index(c->n[l].g[g].rl) > down_applied + 1);
    }
    uint64_t installs_before = c->snap_installs;
    node_start(c, down, false);
    run_until(c, 60, false);
    assert_true(c->snap_installs > installs_before);

    /* 3. the leader of group 1 restarts from disk */
    raft_id l1 = leader_of(c, 1);
    assert_true(l1 != 0);
    node_stop(c, l1);
    node_start(c, l1, false);
    run_until(c, 60, false);

    /* 4. propose until every node applied TARGET proposals per group,
     *    restarting one node every 50 rounds */
    uint64_t guard = 0;
    while (min_proposals_applied(c) < TARGET) {
        round_(c, c->next_seq[0] >= TARGET + 200 && c->next_seq[1] >= TARGET + 200);
        if (++guard % 50 == 0) {
            raft_id id = (raft_id)(guard / 50 % N_NODES) + 1;
            node_stop(c, id);
            node_start(c, id, false);
        }
        if (guard >= 3000) {
            for (int g = 0; g < N_GROUPS; g++)
                for (raft_id id = 1; id <= N_NODES; id++) {
                    struct raft_status st;
                    raft_status(c->n[id].g[g].raft, &st);
                    fprintf(stderr, "g%d n%llu role %d term %llu commit %llu "
                            "applied %llu last %llu first %llu props %llu "
                            "next %llu\n", g, (unsigned long long)id,
                            (int)st.role, (unsigned long long)st.term,
                            (unsigned long long)st.commit,
                            (unsigned long long)c->n[id].g[g].applied,
                            (unsigned long long)st.last_index,
                            (unsigned long long)st.first_index,
                            (unsigned long long)c->props_at[g][c->n[id].g[g].applied],
                            (unsigned long long)c->next_seq[g]);
                }
            fail_msg("no progress after %llu rounds", (unsigned long long)guard);
        }
    }

    /* 5. idle rounds with restarts: leaders must keep being elected */
    for (guard = 1; guard <= 300; guard++) {
        round_(c, true);
        if (guard % 50 == 0) {
            raft_id id = (raft_id)(guard / 50 % N_NODES) + 1;
            node_stop(c, id);
            node_start(c, id, false);
        }
    }
    run_until(c, 60, true);
    for (int g = 0; g < N_GROUPS; g++)
        assert_true(leader_of(c, g) != 0);

    /* 6. the whole cluster restarts from disk */
    for (raft_id id = 1; id <= N_NODES; id++)
        node_stop(c, id);
    for (raft_id id = 1; id <= N_NODES; id++)
        node_start(c, id, false);
    guard = 0;
    while (!converged(c)) {
        round_(c, true);
        assert_true(++guard < 1000);
    }
    for (int g = 0; g < N_GROUPS; g++) {
        uint64_t a = c->n[1].g[g].applied;
        for (raft_id id = 1; id <= N_NODES; id++) {
            assert_int_equal(c->n[id].g[g].applied, a);
            assert_int_equal(c->n[id].g[g].hash, c->hash_at[g][a]);
        }
    }
    assert_true(c->compactions > 0);
    fprintf(stderr,
            "rounds %llu, applied %llu/%llu, snapshot installs %llu, "
            "compactions %llu, restarts %llu\n",
            (unsigned long long)c->rounds,
            (unsigned long long)c->n[1].g[0].applied,
            (unsigned long long)c->n[1].g[1].applied,
            (unsigned long long)c->snap_installs,
            (unsigned long long)c->compactions,
            (unsigned long long)c->restarts);

    for (raft_id id = 1; id <= N_NODES; id++)
        node_stop(c, id);
    for (size_t k = 0; k < c->nq; k++)
        free(c->q[k].buf);
    free(c->q);
    assert_int_equal(nftw(c->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raftlog__three_node_groups_apply_the_same_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * raft_fixture.h — helpers shared by the raft unit tests.
 *
 * Two levels:
 *   - fx_node: one raft node over a memstore, driven message by message; its
 *     Ready is handled like the host would (persist, collect messages,
 *     apply, advance) and outgoing messages are kept (deep copies) for the
 *     test to inspect or hand to another node.
 *   - the simulator's sim_cluster (cluster.h) for multi-node behaviour, with
 *     sim_stabilize delivering everything until quiet.
 */
#ifndef ORDERKV_RAFT_FIXTURE_H
#define ORDERKV_RAFT_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"
#include "memstore.h"
#include "raft.h"
#include "raft_codec.h"

#define FX_MAX_OUT 512
#define FX_MAX_APPLIED 4096

struct fx_node {
    struct memstore ms;
    struct raft_node *r;
    struct raft_config cfg;
    struct raft_message out[FX_MAX_OUT]; /* owned copies */
    bool out_after[FX_MAX_OUT];          /* came from msgs_after_persist */
    size_t n_out;
    uint64_t applied[FX_MAX_APPLIED];    /* indexes applied, in order */
    size_t n_applied;
    struct raft_read_state reads[64];
    size_t n_reads;
    bool saw_snapshot;
};

static inline struct raft_conf fx_conf(uint32_t n_voters)
{
    struct raft_conf c;
    memset(&c, 0, sizeof(c));
    c.n_voters = n_voters;
    for (uint32_t k = 0; k < n_voters; k++)
        c.voters[k] = k + 1;
    return c;
}

static inline void fx_copy_msg(struct raft_message *dst,
                               const struct raft_message *src)
{
    size_t cap = raft_message_encoded_size(src), len;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(raft_message_encode(src, buf, cap, &len), 0);
    assert_int_equal(raft_message_decode(buf, len, dst), 0);
    free(buf);
}

static inline void fx_start(struct fx_node *f)
{
    assert_int_equal(raft_new(&f->cfg, &f->r), 0);
}

/* A node `id` of a fresh group whose voters are 1..n_voters. */
static inline void fx_init(struct fx_node *f, raft_id id, uint32_t n_voters)
{
    struct raft_conf c = fx_conf(n_voters);
    memset(f, 0, sizeof(*f));
    memstore_init(&f->ms, &c);
    raft_config_init(&f->cfg);
    f->cfg.id = id;
    f->cfg.seed = 42 + id;
    f->cfg.storage = &memstore_ops;
    f->cfg.storage_ctx = &f->ms;
    f->cfg.pre_vote = false;
    f->cfg.check_quorum = false;
    fx_start(f);
}

static inline void fx_clear(struct fx_node *f)
{
    for (size_t k = 0; k < f->n_out; k++)
        raft_message_release(&f->out[k]);
    f->n_out = 0;
}

static inline void fx_free(struct fx_node *f)
{
    fx_clear(f);
    raft_free(f->r);
    memstore_close(&f->ms);
}

/* Crash: drop the node (and anything not persisted), restart from ms. */
static inline void fx_restart(struct fx_node *f)
{
    raft_free(f->r);
    f->r = NULL;
    fx_start(f);
}

/* Handles every pending Ready like a host would. Returns how many. */
static inline int fx_flush(struct fx_node *f)
{
    int n = 0;
    while (raft_has_ready(f->r)) {
        struct raft_ready rd;
        assert_int_equal(raft_ready(f->r, &rd), 0);
        for (size_t k = 0; k < rd.n_msgs; k++) {
            assert_true(f->n_out < FX_MAX_OUT);
            fx_copy_msg(&f->out[f->n_out], &rd.msgs[k]);
            f->out_after[f->n_out++] = false;
        }
        if (rd.snapshot != NULL) {
            memstore_install_snapshot(&f->ms, rd.snapshot);
            f->saw_snapshot = true;
        }
        memstore_append(&f->ms, rd.entries, rd.n_entries);
        if (rd.hs_changed)
            memstore_set_hard_state(&f->ms, &rd.hs);
        for (size_t k = 0; k < rd.n_msgs_after_persist; k++) {
            assert_true(f->n_out < FX_MAX_OUT);
            fx_copy_msg(&f->out[f->n_out], &rd.msgs_after_persist[k]);
            f->out_after[f->n_out++] = true;
        }
        for (size_t k = 0; k < rd.n_committed; k++) {
            if (f->n_applied < FX_MAX_APPLIED)
                f->applied[f->n_applied++] = rd.committed[k].index;
        }
        for (size_t k = 0; k < rd.n_read_states && f->n_reads < 64; k++)
            f->reads[f->n_reads++] = rd.read_states[k];
        raft_advance(f->r);
        n++;
    }
    return n;
}

/* Finds the i-th (0-based) queued message of `type` (to `to`, or anyone if
 * to == 0). */
static inline struct raft_message *fx_find_nth(struct fx_node *f,
                                               uint8_t type, raft_id to,
                                               int nth)
{
    for (size_t k = 0; k < f->n_out; k++) {
        if (f->out[k].type == type && (to == 0 || f->out[k].to == to)) {
            if (nth-- == 0)
                return &f->out[k];
        }
    }
    return NULL;
}

static inline struct raft_message *fx_find(struct fx_node *f, uint8_t type,
                                           raft_id to)
{
    return fx_find_nth(f, type, to, 0);
}

static inline size_t fx_count(struct fx_node *f, uint8_t type)
{
    size_t n = 0;
    for (size_t k = 0; k < f->n_out; k++)
        n += f->out[k].type == type;
    return n;
}

static inline struct raft_message fx_msg(uint8_t type, raft_id from,
                                         raft_id to, uint64_t term)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    return m;
}

static inline struct raft_status fx_status(struct fx_node *f)
{
    struct raft_status st;
    raft_status(f->r, &st);
    return st;
}

/* Makes f leader of a group of n voters by feeding it grants. */
static inline void fx_make_leader(struct fx_node *f, uint32_t n)
{
    assert_int_equal(raft_campaign(f->r), 0);
    fx_flush(f);
    uint64_t term = fx_status(f).term;
    for (raft_id v = 1; v <= n; v++) {
        if (v == f->cfg.id)
            continue;
        struct raft_message g = fx_msg(RAFT_MSG_VOTE_RESP, v, f->cfg.id, term);
        raft_step(f->r, &g);
        if (fx_status(f).role == RAFT_LEADER)
            break;
    }
    assert_int_equal(fx_status(f).role, RAFT_LEADER);
    fx_flush(f);
    fx_clear(f);
}

/* Entries for hand-made appends. */
static inline struct raft_entry fx_entry(uint64_t index, uint64_t term)
{
    struct raft_entry e;
    memset(&e, 0, sizeof(e));
    e.index = index;
    e.term = term;
    return e;
}

/* ---- cluster helpers -------------------------------------------------- */

static inline void fx_cluster(struct sim_cluster *c, uint32_t n)
{
    struct sim_params p;
    sim_params_default(&p, n);
    memset(c, 0, sizeof(*c));
    chk_init(&c->chk);
    sim_cluster_init(c, &p, 1);
}

/* Without check-quorum, so tests can force elections by raft_campaign
 * without waiting for followers' leader leases to run out. */
static inline void fx_cluster_nolease(struct sim_cluster *c, uint32_t n)
{
    struct sim_params p;
    sim_params_default(&p, n);
    p.check_quorum = false;
    memset(c, 0, sizeof(*c));
    chk_init(&c->chk);
    sim_cluster_init(c, &p, 1);
}

static inline void fx_cluster_params(struct sim_cluster *c,
                                     const struct sim_params *p)
{
    memset(c, 0, sizeof(*c));
    chk_init(&c->chk);
    sim_cluster_init(c, p, 1);
}

static inline void fx_cluster_free(struct sim_cluster *c)
{
    assert_false(c->chk.violated);
    sim_cluster_close(c);
    free(c->net);
    chk_free(&c->chk);
}

static inline void fx_cluster_elect(struct sim_cluster *c, raft_id id)
{
    assert_int_equal(raft_campaign(c->nodes[id].raft), 0);
    sim_stabilize(c, 200);
    assert_int_equal(sim_leader(c), id);
}

static inline struct raft_status fx_cstatus(struct sim_cluster *c,
                                            raft_id id)
{
    struct raft_status st;
    raft_status(c->nodes[id].raft, &st);
    return st;
}

/* Ticks every up node once and stabilizes. */
static inline void fx_cluster_tick(struct sim_cluster *c, int ticks)
{
    for (int t = 0; t < ticks; t++) {
        for (raft_id id = 1; id <= c->n_total; id++)
            sim_tick(c, id);
        sim_stabilize(c, 50);
    }
}

#endif

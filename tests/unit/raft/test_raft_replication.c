/*
 * test_raft_replication.c — AppendEntries (Figure 2 receiver rules 1-5),
 * leader rules for nextIndex/matchIndex and commitment (§5.3, §5.4.2,
 * Figure 8), fast backtracking, pipelining, flow control and batching
 * (rules R1-R4 of replication.h).
 */
#include "raft_fixture.h"

/* Follower 1 of 3 holding entries (index, term) given in `terms`. */
static void follower_with(struct fx_node *f, const uint64_t *terms, size_t n,
                          uint64_t leader_term)
{
    struct raft_entry e[32];
    fx_init(f, 1, 3);
    for (size_t k = 0; k < n; k++)
        e[k] = fx_entry(k + 1, terms[k]);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, leader_term);
    a.entries = e;
    a.n_entries = (uint32_t)n;
    raft_step(f->r, &a);
    fx_flush(f);
    fx_clear(f);
}

static struct raft_message *append_and_answer(struct fx_node *f,
                                              struct raft_message *a)
{
    raft_step(f->r, a);
    fx_flush(f);
    return fx_find(f, RAFT_MSG_APPEND_RESP, a->from);
}

/* R1.1: reply false if term < currentTerm. */
static void test_raft__append_rejects_stale_term(void **state)
{
    uint64_t t[] = {1, 1};
    struct fx_node f;
    follower_with(&f, t, 2, 3);
    struct raft_entry e = fx_entry(3, 2);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 3, 1, 2);
    a.index = 2;
    a.log_term = 1;
    a.entries = &e;
    a.n_entries = 1;
    raft_step(f.r, &a);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).last_index, 2);
    assert_int_equal(fx_status(&f).leader, 2);
    fx_free(&f);
}

/* R1.2: no entry at prevLogIndex: reject; hint = our last index + 1. */
static void test_raft__append_rejects_missing_prev(void **state)
{
    uint64_t t[] = {1, 1};
    struct fx_node f;
    follower_with(&f, t, 2, 1);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 1);
    a.index = 5;
    a.log_term = 1;
    struct raft_message *r = append_and_answer(&f, &a);
    assert_non_null(r);
    assert_int_equal(r->reject, 1);
    assert_int_equal(r->index, 5);
    assert_int_equal(r->hint_term, 0);
    assert_int_equal(r->hint_index, 3);
    fx_free(&f);
}

/* R1.2 + fast backtracking: the follower names its conflicting term and
 * the first index it holds for it. */
static void test_raft__append_rejects_term_mismatch_with_hint(void **state)
{
    uint64_t t[] = {1, 2, 2, 2, 2};
    struct fx_node f;
    follower_with(&f, t, 5, 2);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 3, 1, 3);
    a.index = 5;
    a.log_term = 3;
    struct raft_message *r = append_and_answer(&f, &a);
    assert_int_equal(r->reject, 1);
    assert_int_equal(r->hint_term, 2);
    assert_int_equal(r->hint_index, 2);
    fx_free(&f);
}

/* R1.3: a conflicting entry and all that follow it are deleted. */
static void test_raft__append_truncates_conflicting_suffix(void **state)
{
    uint64_t t[] = {1, 1, 1, 1};
    struct fx_node f;
    follower_with(&f, t, 4, 1);
    struct raft_entry e = fx_entry(3, 2);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 3, 1, 2);
    a.index = 2;
    a.log_term = 1;
    a.entries = &e;
    a.n_entries = 1;
    struct raft_message *r = append_and_answer(&f, &a);
    assert_int_equal(r->reject, 0);
    assert_int_equal(r->index, 3);
    assert_int_equal(fx_status(&f).last_index, 3);
    uint64_t term;
    assert_int_equal(raft_term_at(f.r, 3, &term), 0);
    assert_int_equal(term, 2);
    assert_int_equal(memstore_last_index(&f.ms), 3); /* storage too */
    fx_free(&f);
}

/* R1.4: matching entries are kept (a duplicate or reordered append must
 * not cut off entries that came after it). */
static void test_raft__append_is_idempotent(void **state)
{
    uint64_t t[] = {1, 1, 1, 1};
    struct fx_node f;
    follower_with(&f, t, 4, 1);
    struct raft_entry e = fx_entry(2, 1);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 1);
    a.index = 1;
    a.log_term = 1;
    a.entries = &e;
    a.n_entries = 1;
    struct raft_message *r = append_and_answer(&f, &a);
    assert_int_equal(r->reject, 0);
    assert_int_equal(r->index, 2);
    assert_int_equal(fx_status(&f).last_index, 4);
    fx_free(&f);
}

/* R1.5: commitIndex = min(leaderCommit, index of last new entry). */
static void test_raft__append_commit_is_min_of_leader_and_last_new(void **state)
{
    uint64_t t[] = {1, 1, 1};
    struct fx_node f;
    follower_with(&f, t, 3, 1);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 1);
    a.index = 2;
    a.log_term = 1;
    a.commit = 10;
    raft_step(f.r, &a);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).commit, 2); /* not 3: not confirmed */
    assert_int_equal(f.n_applied, 2);
    fx_free(&f);
}

/* A1: the acknowledgement leaves only after the entries are durable. */
static void test_raft__append_ack_waits_for_persist(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_entry e = fx_entry(1, 1);
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 1);
    a.entries = &e;
    a.n_entries = 1;
    raft_step(f.r, &a);
    struct raft_ready rd;
    raft_ready(f.r, &rd);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.n_msgs, 0);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0].type, RAFT_MSG_APPEND_RESP);
    raft_advance(f.r);
    fx_free(&f);
}

/* A3: malformed appends are dropped, never trusted. */
static void test_raft__append_malformed_is_ignored(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_entry e[2] = {fx_entry(1, 1), fx_entry(3, 1)}; /* gap */
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 1);
    a.entries = e;
    a.n_entries = 2;
    raft_step(f.r, &a);
    e[1] = fx_entry(2, 5); /* term above the message's */
    raft_step(f.r, &a);
    e[1] = fx_entry(2, 1);
    e[1].type = RAFT_ENTRY_CONF; /* undecodable configuration */
    raft_step(f.r, &a);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).last_index, 0);
    assert_int_equal(fx_count(&f, RAFT_MSG_APPEND_RESP), 0);
    fx_free(&f);
}

/* R3 / Figure 8: a leader does not commit an entry of an earlier term by
 * counting replicas; it commits it only with an entry of its own term. */
static void test_raft__leader_commits_only_current_term(void **state)
{
    struct fx_node f;
    uint64_t t[] = {1, 1};
    follower_with(&f, t, 2, 1); /* node 1 holds (1,1), (2,1) */
    fx_make_leader(&f, 3);      /* term 2, appends (3,2) */
    uint64_t term = fx_status(&f).term;
    assert_int_equal(term, 2);
    /* A follower acknowledges index 2 (old term) only. */
    struct raft_message ack = fx_msg(RAFT_MSG_APPEND_RESP, 2, 1, term);
    ack.index = 2;
    raft_step(f.r, &ack);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).commit, 0);
    ack.index = 3;
    raft_step(f.r, &ack);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).commit, 3);
    fx_free(&f);
}

/* R3: the leader counts itself only for what it has persisted, so a
 * follower's ack alone does not commit in a 3-node group before the
 * leader's own write. */
static void test_raft__leader_counts_itself_after_persist(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    fx_make_leader(&f, 3);
    struct raft_message ack = fx_msg(RAFT_MSG_APPEND_RESP, 2, 1, 1);
    ack.index = 1;
    raft_step(f.r, &ack); /* node 2 -> REPLICATE */
    fx_flush(&f);
    uint64_t idx;
    assert_int_equal(raft_propose(f.r, "x", 1, &idx, NULL), 0);
    struct raft_ready rd;
    raft_ready(f.r, &rd);
    /* Appends leave before the leader's own write (Ready.msgs)... */
    assert_true(rd.n_msgs >= 1);
    assert_int_equal(rd.msgs[0].type, RAFT_MSG_APPEND);
    assert_int_equal(rd.n_entries, 1);
    memstore_append(&f.ms, rd.entries, rd.n_entries);
    if (rd.hs_changed)
        memstore_set_hard_state(&f.ms, &rd.hs);
    raft_advance(f.r);
    /* ...and an ack that arrives before the leader's write was handed out
     * and synced does not commit: the leader's own vote is missing. */
    assert_int_equal(raft_propose(f.r, "y", 1, &idx, NULL), 0);
    ack.index = idx;
    raft_step(f.r, &ack);
    assert_true(fx_status(&f).commit < idx);
    fx_flush(&f); /* persists; advance lets the leader count itself */
    assert_int_equal(fx_status(&f).commit, idx);
    fx_free(&f);
}

/* R2 + fast backtracking: one rejection moves nextIndex past a whole
 * conflicting term. */
static void test_raft__fast_backtracking_skips_conflicting_term(void **state)
{
    struct sim_cluster c;
    fx_cluster_nolease(&c, 3);
    fx_cluster_elect(&c, 1);
    for (int k = 0; k < 5; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    /* Node 3 goes away; node 1 (leader, term 2) appends 20 entries that
     * never reach anyone, then node 2 becomes leader with 3. */
    sim_isolate(&c, 1);
    for (int k = 0; k < 20; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    fx_cluster_elect(&c, 2);
    for (int k = 0; k < 3; k++)
        sim_propose(&c, 2, 0);
    sim_stabilize(&c, 100);
    sim_heal(&c);
    uint64_t before = c.events;
    for (raft_id id = 1; id <= 3; id++)
        sim_tick(&c, id);
    sim_stabilize(&c, 100);
    /* Node 1's 20 stale entries are replaced in a handful of messages,
     * not one round trip per entry. */
    assert_true(c.events - before < 20);
    uint64_t t1, t2;
    struct raft_status s2 = fx_cstatus(&c, 2);
    assert_int_equal(fx_cstatus(&c, 1).last_index, s2.last_index);
    raft_term_at(c.nodes[1].raft, s2.last_index, &t1);
    raft_term_at(c.nodes[2].raft, s2.last_index, &t2);
    assert_int_equal(t1, t2);
    fx_cluster_free(&c);
}

/* R4: in REPLICATE the leader streams appends without waiting, up to
 * max_inflight messages; an ack opens the window again. */
static void test_raft__pipelining_respects_inflight_window(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    raft_free(f.r);
    f.cfg.max_inflight = 3;
    f.cfg.max_msg_bytes = 1; /* one entry per message */
    fx_start(&f);
    fx_make_leader(&f, 3);
    struct raft_message ack = fx_msg(RAFT_MSG_APPEND_RESP, 2, 1, 1);
    ack.index = 1;
    raft_step(f.r, &ack); /* probe answered: node 2 -> REPLICATE */
    fx_flush(&f);
    fx_clear(&f);
    for (int k = 0; k < 10; k++)
        assert_int_equal(raft_propose(f.r, "abc", 3, NULL, NULL), 0);
    fx_flush(&f);
    size_t to2 = 0;
    for (size_t k = 0; k < f.n_out; k++)
        to2 += f.out[k].type == RAFT_MSG_APPEND && f.out[k].to == 2;
    assert_int_equal(to2, 3);
    fx_clear(&f);
    ack.index = 2;
    raft_step(f.r, &ack);
    fx_flush(&f);
    to2 = 0;
    for (size_t k = 0; k < f.n_out; k++)
        to2 += f.out[k].type == RAFT_MSG_APPEND && f.out[k].to == 2;
    assert_int_equal(to2, 1);
    fx_free(&f);
}

/* PROBE: one append at a time until the follower answers. */
static void test_raft__probe_sends_one_at_a_time(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    fx_make_leader(&f, 3);
    for (int k = 0; k < 5; k++) {
        raft_propose(f.r, "a", 1, NULL, NULL);
        fx_flush(&f);
    }
    size_t to3 = 0;
    for (size_t k = 0; k < f.n_out; k++)
        to3 += f.out[k].type == RAFT_MSG_APPEND && f.out[k].to == 3;
    assert_int_equal(to3, 0); /* the probe from election is outstanding */
    /* A heartbeat response unpauses the probe. */
    struct raft_message hr = fx_msg(RAFT_MSG_HEARTBEAT_RESP, 3, 1, 1);
    raft_step(f.r, &hr);
    fx_flush(&f);
    assert_non_null(fx_find(&f, RAFT_MSG_APPEND, 3));
    fx_free(&f);
}

/* Batching: many proposals between two Readies travel in one append per
 * follower, and max_msg_bytes splits them. */
static void test_raft__batches_proposals_per_message(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    fx_make_leader(&f, 3);
    struct raft_message ack = fx_msg(RAFT_MSG_APPEND_RESP, 2, 1, 1);
    ack.index = 1;
    raft_step(f.r, &ack);
    fx_flush(&f);
    fx_clear(&f);
    char payload[100] = {0};
    for (int k = 0; k < 100; k++)
        assert_int_equal(raft_propose(f.r, payload, 100, NULL, NULL), 0);
    fx_flush(&f);
    struct raft_message *a = fx_find(&f, RAFT_MSG_APPEND, 2);
    assert_non_null(a);
    assert_int_equal(a->n_entries, 100);
    assert_null(fx_find_nth(&f, RAFT_MSG_APPEND, 2, 1));
    fx_free(&f);

    fx_init(&f, 1, 3);
    raft_free(f.r);
    f.cfg.max_msg_bytes = 1000;
    fx_start(&f);
    fx_make_leader(&f, 3);
    raft_step(f.r, &ack);
    fx_flush(&f);
    fx_clear(&f);
    for (int k = 0; k < 100; k++)
        raft_propose(f.r, payload, 100, NULL, NULL);
    fx_flush(&f);
    size_t n = 0, total = 0;
    for (size_t k = 0; k < f.n_out; k++) {
        if (f.out[k].type != RAFT_MSG_APPEND || f.out[k].to != 2)
            continue;
        n++;
        total += f.out[k].n_entries;
        assert_true(f.out[k].n_entries <= 10);
    }
    assert_int_equal(total, 100); /* 10 messages fit the 256-message window */
    assert_true(n >= 10);
    fx_free(&f);
}

/* Heartbeats never tell a follower to commit beyond its match index. */
static void test_raft__heartbeat_commit_capped_at_match(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    fx_make_leader(&f, 3);
    struct raft_message ack = fx_msg(RAFT_MSG_APPEND_RESP, 2, 1, 1);
    ack.index = 1;
    raft_step(f.r, &ack);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).commit, 1);
    fx_clear(&f);
    for (int k = 0; k < f.cfg.heartbeat_tick; k++)
        raft_tick(f.r);
    fx_flush(&f);
    assert_int_equal(fx_find(&f, RAFT_MSG_HEARTBEAT, 2)->commit, 1);
    assert_int_equal(fx_find(&f, RAFT_MSG_HEARTBEAT, 3)->commit, 0);
    fx_free(&f);
}

static void test_raft__cluster_replicates_and_applies(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 5);
    fx_cluster_elect(&c, 3);
    for (int k = 0; k < 50; k++)
        assert_int_equal(sim_propose(&c, 3, (uint32_t)k), 0);
    sim_stabilize(&c, 200);
    uint64_t last = fx_cstatus(&c, 3).last_index;
    for (raft_id id = 1; id <= 5; id++) {
        assert_int_equal(fx_cstatus(&c, id).commit, last);
        assert_int_equal(c.nodes[id].applied, last);
    }
    assert_int_equal(c.acked, 50);
    fx_cluster_free(&c);
}

/* Appends lost in REPLICATE are recovered: the heartbeat response triggers
 * an empty append that the follower rejects, dropping back to PROBE. */
static void test_raft__lost_appends_recovered(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    c.drop_permille = 1000; /* drop every message in flight */
    for (int k = 0; k < 10; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 10);
    c.drop_permille = 0;
    fx_cluster_tick(&c, 3);
    uint64_t last = fx_cstatus(&c, 1).last_index;
    assert_int_equal(c.nodes[2].applied, last);
    assert_int_equal(c.nodes[3].applied, last);
    fx_cluster_free(&c);
}

/* Leader Completeness across a crash: committed entries are in the next
 * leader's log. */
static void test_raft__committed_entries_survive_leader_crash(void **state)
{
    struct sim_cluster c;
    fx_cluster_nolease(&c, 3);
    fx_cluster_elect(&c, 1);
    for (int k = 0; k < 10; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    uint64_t commit = fx_cstatus(&c, 1).commit;
    sim_node_crash(&c, 1);
    fx_cluster_elect(&c, 2);
    assert_true(fx_cstatus(&c, 2).last_index >= commit);
    sim_node_restart(&c, 1);
    sim_propose(&c, 2, 0);
    fx_cluster_tick(&c, 3);
    assert_true(c.nodes[1].applied > commit);
    fx_cluster_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__append_rejects_stale_term),
        cmocka_unit_test(test_raft__append_rejects_missing_prev),
        cmocka_unit_test(test_raft__append_rejects_term_mismatch_with_hint),
        cmocka_unit_test(test_raft__append_truncates_conflicting_suffix),
        cmocka_unit_test(test_raft__append_is_idempotent),
        cmocka_unit_test(test_raft__append_commit_is_min_of_leader_and_last_new),
        cmocka_unit_test(test_raft__append_ack_waits_for_persist),
        cmocka_unit_test(test_raft__append_malformed_is_ignored),
        cmocka_unit_test(test_raft__leader_commits_only_current_term),
        cmocka_unit_test(test_raft__leader_counts_itself_after_persist),
        cmocka_unit_test(test_raft__fast_backtracking_skips_conflicting_term),
        cmocka_unit_test(test_raft__pipelining_respects_inflight_window),
        cmocka_unit_test(test_raft__probe_sends_one_at_a_time),
        cmocka_unit_test(test_raft__batches_proposals_per_message),
        cmocka_unit_test(test_raft__heartbeat_commit_capped_at_match),
        cmocka_unit_test(test_raft__cluster_replicates_and_applies),
        cmocka_unit_test(test_raft__lost_appends_recovered),
        cmocka_unit_test(test_raft__committed_entries_survive_leader_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

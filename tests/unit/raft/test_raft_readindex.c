/*
 * test_raft_readindex.c — linearizable reads by ReadIndex (dissertation
 * §6.4; rules Q1-Q3 of readindex.h).
 */
#include "raft_fixture.h"

/* Leader of 3 that has committed its term's entry (node 2 acked it). */
static void committed_leader(struct fx_node *f)
{
    fx_init(f, 1, 3);
    fx_make_leader(f, 3);
    struct raft_message ack = fx_msg(RAFT_MSG_APPEND_RESP, 2, 1, 1);
    ack.index = 1;
    raft_step(f->r, &ack);
    fx_flush(f);
    fx_clear(f);
    assert_int_equal(fx_status(f).commit, 1);
}

/* Q2: the read index is the commit index, released only after a quorum
 * acknowledged a heartbeat sent after the request. */
static void test_raft__read_index_needs_quorum_heartbeat(void **state)
{
    struct fx_node f;
    committed_leader(&f);
    assert_int_equal(raft_read_index(f.r, 77), 0);
    fx_flush(&f);
    assert_int_equal(f.n_reads, 0);
    struct raft_message *hb = fx_find(&f, RAFT_MSG_HEARTBEAT, 3);
    assert_non_null(hb);
    uint64_t seq = hb->ctx;
    assert_true(seq > 0);
    /* An acknowledgement of an older round does not count. */
    struct raft_message r = fx_msg(RAFT_MSG_HEARTBEAT_RESP, 3, 1, 1);
    r.ctx = seq - 1;
    raft_step(f.r, &r);
    fx_flush(&f);
    assert_int_equal(f.n_reads, 0);
    r.ctx = seq;
    raft_step(f.r, &r);
    fx_flush(&f);
    assert_int_equal(f.n_reads, 1);
    assert_int_equal(f.reads[0].ctx, 77);
    assert_int_equal(f.reads[0].index, 1);
    fx_free(&f);
}

/* Q1: before the leader commits an entry of its term, reads wait. */
static void test_raft__read_index_waits_for_commit_in_term(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    fx_make_leader(&f, 3);
    assert_int_equal(raft_read_index(f.r, 5), 0);
    fx_flush(&f);
    assert_null(fx_find(&f, RAFT_MSG_HEARTBEAT, 2));
    struct raft_message ack = fx_msg(RAFT_MSG_APPEND_RESP, 2, 1, 1);
    ack.index = 1;
    raft_step(f.r, &ack);
    fx_flush(&f);
    struct raft_message *hb = fx_find(&f, RAFT_MSG_HEARTBEAT, 2);
    assert_non_null(hb);
    struct raft_message r = fx_msg(RAFT_MSG_HEARTBEAT_RESP, 2, 1, 1);
    r.ctx = hb->ctx;
    raft_step(f.r, &r);
    fx_flush(&f);
    assert_int_equal(f.n_reads, 1);
    assert_int_equal(f.reads[0].index, 1);
    fx_free(&f);
}

/* Q3: a follower forwards to its leader and gets the index back. */
static void test_raft__follower_read_index_forwarded(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    for (int k = 0; k < 3; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    uint64_t commit = fx_cstatus(&c, 1).commit;
    assert_int_equal(sim_read(&c, 2), 0);
    sim_stabilize(&c, 100);
    assert_int_equal(c.reads_done, 1);
    struct chk_slot *s = chk_map_get(&c.chk.reads, 1, 0);
    assert_non_null(s);
    assert_int_equal(s->v3, 1);
    assert_true(commit >= 4);
    fx_cluster_free(&c);
}

static void test_raft__read_index_without_leader_is_dropped(void **state)
{
    struct fx_node f;
    fx_init(&f, 2, 3);
    assert_int_equal(raft_read_index(f.r, 1), RAFT_ERR_DROPPED);
    fx_free(&f);
}

static void test_raft__single_voter_reads_immediately(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 1);
    assert_int_equal(raft_campaign(f.r), 0);
    assert_int_equal(raft_read_index(f.r, 9), 0); /* waits for Q1 */
    fx_flush(&f);
    assert_int_equal(f.n_reads, 1);
    assert_int_equal(f.reads[0].ctx, 9);
    assert_int_equal(raft_read_index(f.r, 10), 0);
    fx_flush(&f);
    assert_int_equal(f.n_reads, 2);
    fx_free(&f);
}

/* I3: a deposed leader forgets pending reads instead of answering them. */
static void test_raft__leader_change_drops_pending_reads(void **state)
{
    struct fx_node f;
    committed_leader(&f);
    raft_read_index(f.r, 3);
    fx_flush(&f);
    struct raft_message *hb = fx_find(&f, RAFT_MSG_HEARTBEAT, 2);
    uint64_t seq = hb->ctx;
    struct raft_message up = fx_msg(RAFT_MSG_APPEND, 2, 1, 5);
    raft_step(f.r, &up);
    struct raft_message r = fx_msg(RAFT_MSG_HEARTBEAT_RESP, 3, 1, 5);
    r.ctx = seq;
    raft_step(f.r, &r);
    fx_flush(&f);
    assert_int_equal(f.n_reads, 0);
    fx_free(&f);
}

/* K7 in miniature: a leader cut off from the majority cannot confirm a
 * read while the majority elects a new leader and commits a write. */
static void test_raft__partitioned_leader_cannot_serve_reads(void **state)
{
    struct sim_cluster c;
    fx_cluster_nolease(&c, 3);
    fx_cluster_elect(&c, 1);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_isolate(&c, 1);
    fx_cluster_elect(&c, 2);
    sim_propose(&c, 2, 0);
    sim_stabilize(&c, 100);
    assert_true(c.chk.max_acked_index > fx_cstatus(&c, 1).commit);
    assert_int_equal(fx_cstatus(&c, 1).role, RAFT_LEADER); /* still thinks */
    assert_int_equal(sim_read(&c, 1), 0);
    sim_stabilize(&c, 100);
    assert_int_equal(c.reads_done, 0);
    fx_cluster_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__read_index_needs_quorum_heartbeat),
        cmocka_unit_test(test_raft__read_index_waits_for_commit_in_term),
        cmocka_unit_test(test_raft__follower_read_index_forwarded),
        cmocka_unit_test(test_raft__read_index_without_leader_is_dropped),
        cmocka_unit_test(test_raft__single_voter_reads_immediately),
        cmocka_unit_test(test_raft__leader_change_drops_pending_reads),
        cmocka_unit_test(test_raft__partitioned_leader_cannot_serve_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_raft_transfer.c — leadership transfer (dissertation §3.10; rules
 * T1-T3 of transfer.h).
 */
#include "raft_fixture.h"

/* T1/T2: to an up-to-date voter: TIMEOUT_NOW, and it wins at once, even
 * though check-quorum leases would make the others ignore a normal
 * candidate. */
static void test_raft__transfer_to_up_to_date_follower(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    uint64_t term = fx_cstatus(&c, 1).term;
    assert_int_equal(raft_transfer_leader(c.nodes[1].raft, 3), 0);
    sim_stabilize(&c, 100);
    assert_int_equal(sim_leader(&c), 3);
    assert_int_equal(fx_cstatus(&c, 3).term, term + 1);
    assert_int_equal(fx_cstatus(&c, 1).role, RAFT_FOLLOWER);
    fx_cluster_free(&c);
}

/* T1: a lagging target is caught up first; proposals are refused with
 * TRANSFERRING meanwhile. */
static void test_raft__transfer_catches_up_lagging_target(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    sim_isolate(&c, 3);
    for (int k = 0; k < 10; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    assert_int_equal(raft_transfer_leader(c.nodes[1].raft, 3), 0);
    assert_int_equal(fx_cstatus(&c, 1).transferee, 3);
    assert_int_equal(sim_propose(&c, 1, 0), RAFT_ERR_TRANSFERRING);
    struct raft_conf_change cc = {RAFT_CC_REMOVE, 2};
    assert_int_equal(raft_propose_conf_change(c.nodes[1].raft, &cc, NULL),
                     RAFT_ERR_TRANSFERRING);
    sim_stabilize(&c, 100);
    assert_int_equal(sim_leader(&c), 1); /* target unreachable so far */
    sim_heal(&c);
    fx_cluster_tick(&c, 2);
    assert_int_equal(sim_leader(&c), 3);
    assert_int_equal(fx_cstatus(&c, 3).last_index,
                     fx_cstatus(&c, 1).last_index);
    fx_cluster_free(&c);
}

/* T3: a transfer that cannot finish is abandoned after an election
 * timeout and the leader serves proposals again. */
static void test_raft__transfer_aborts_after_timeout(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    sim_node_crash(&c, 3);
    assert_int_equal(raft_transfer_leader(c.nodes[1].raft, 3), 0);
    assert_int_equal(sim_propose(&c, 1, 0), RAFT_ERR_TRANSFERRING);
    fx_cluster_tick(&c, c.p.election_tick);
    assert_int_equal(fx_cstatus(&c, 1).transferee, RAFT_NONE);
    assert_int_equal(sim_leader(&c), 1);
    assert_int_equal(sim_propose(&c, 1, 0), 0);
    fx_cluster_free(&c);
}

static void test_raft__transfer_refusals(void **state)
{
    struct sim_params p;
    struct sim_cluster c;
    sim_params_default(&p, 3);
    p.n_spare = 1;
    fx_cluster_params(&c, &p);
    fx_cluster_elect(&c, 1);
    assert_int_equal(raft_transfer_leader(c.nodes[2].raft, 3),
                     RAFT_ERR_NOT_LEADER);
    assert_int_equal(raft_transfer_leader(c.nodes[1].raft, 9),
                     RAFT_ERR_INVALID);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_node_start(&c, 4);
    struct raft_conf_change cc = {RAFT_CC_ADD_LEARNER, 4};
    assert_int_equal(raft_propose_conf_change(c.nodes[1].raft, &cc, NULL),
                     0);
    sim_stabilize(&c, 100);
    assert_int_equal(raft_transfer_leader(c.nodes[1].raft, 4),
                     RAFT_ERR_INVALID); /* learners cannot lead */
    assert_int_equal(raft_transfer_leader(c.nodes[1].raft, 1), 0); /* self */
    assert_int_equal(fx_cstatus(&c, 1).transferee, RAFT_NONE);
    fx_cluster_free(&c);
}

/* TIMEOUT_NOW is ignored by learners (they cannot campaign). */
static void test_raft__timeout_now_ignored_by_learner(void **state)
{
    struct fx_node f;
    struct raft_conf c = fx_conf(3);
    memset(&f, 0, sizeof(f));
    c.learners[c.n_learners++] = 4;
    memstore_init(&f.ms, &c);
    raft_config_init(&f.cfg);
    f.cfg.id = 4;
    f.cfg.storage = &memstore_ops;
    f.cfg.storage_ctx = &f.ms;
    fx_start(&f);
    struct raft_message m = fx_msg(RAFT_MSG_TIMEOUT_NOW, 1, 4, 1);
    raft_step(f.r, &m);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).role, RAFT_FOLLOWER);
    assert_int_equal(fx_count(&f, RAFT_MSG_VOTE), 0);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__transfer_to_up_to_date_follower),
        cmocka_unit_test(test_raft__transfer_catches_up_lagging_target),
        cmocka_unit_test(test_raft__transfer_aborts_after_timeout),
        cmocka_unit_test(test_raft__transfer_refusals),
        cmocka_unit_test(test_raft__timeout_now_ignored_by_learner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

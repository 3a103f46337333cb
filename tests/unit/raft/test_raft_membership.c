/*
 * test_raft_membership.c — single-server membership changes (dissertation
 * §4.1-4.3; rules M1-M4 of membership.h), learners, and the configuration
 * helpers.
 */
#include "raft_fixture.h"

static bool cs_is_voter(struct sim_cluster *c, raft_id at, raft_id who)
{
    struct raft_status st = fx_cstatus(c, at);
    return raft_conf_is_voter(&st.conf, who);
}

static bool cs_is_learner(struct sim_cluster *c, raft_id at, raft_id who)
{
    struct raft_status st = fx_cstatus(c, at);
    return raft_conf_is_learner(&st.conf, who);
}

static bool fs_is_learner(struct fx_node *f, raft_id who)
{
    struct raft_status st = fx_status(f);
    return raft_conf_is_learner(&st.conf, who);
}

static int propose_cc(struct sim_cluster *c, raft_id leader, uint8_t type,
                      raft_id node)
{
    struct raft_conf_change cc = {type, node};
    return raft_propose_conf_change(c->nodes[leader].raft, &cc, NULL);
}

static void test_raft__conf_apply_validates(void **state)
{
    struct raft_conf c = fx_conf(1);
    struct raft_conf_change add = {RAFT_CC_ADD_LEARNER, 2};
    struct raft_conf_change promote = {RAFT_CC_PROMOTE, 2};
    struct raft_conf_change rm1 = {RAFT_CC_REMOVE, 1};
    struct raft_conf_change rm9 = {RAFT_CC_REMOVE, 9};
    struct raft_conf_change none = {RAFT_CC_ADD_LEARNER, 0};
    struct raft_conf_change bad = {42, 3};
    assert_int_equal(raft_conf_apply(&c, &rm1), RAFT_ERR_INVALID); /* last */
    assert_int_equal(raft_conf_apply(&c, &promote), RAFT_ERR_INVALID);
    assert_int_equal(raft_conf_apply(&c, &add), 0);
    assert_int_equal(raft_conf_apply(&c, &add), RAFT_ERR_INVALID);
    assert_true(raft_conf_is_learner(&c, 2));
    assert_int_equal(raft_conf_apply(&c, &promote), 0);
    assert_true(raft_conf_is_voter(&c, 2));
    assert_false(raft_conf_is_learner(&c, 2));
    assert_int_equal(raft_conf_apply(&c, &rm9), RAFT_ERR_INVALID);
    assert_int_equal(raft_conf_apply(&c, &none), RAFT_ERR_INVALID);
    assert_int_equal(raft_conf_apply(&c, &bad), RAFT_ERR_INVALID);
    assert_int_equal(raft_conf_apply(&c, &rm1), 0);
    assert_int_equal(c.n_voters, 1);
    struct raft_conf full = fx_conf(RAFT_MAX_NODES);
    struct raft_conf_change add99 = {RAFT_CC_ADD_LEARNER, 99};
    assert_int_equal(raft_conf_apply(&full, &add99), RAFT_ERR_INVALID);
}

/* M3: a learner receives the log but does not count for commitment. */
static void test_raft__learner_replicates_without_voting(void **state)
{
    struct sim_params p;
    struct sim_cluster c;
    sim_params_default(&p, 3);
    p.n_spare = 1;
    fx_cluster_params(&c, &p);
    fx_cluster_elect(&c, 1);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_node_start(&c, 4);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_ADD_LEARNER, 4), 0);
    sim_stabilize(&c, 100);
    struct raft_status st = fx_cstatus(&c, 4);
    assert_true(raft_conf_is_learner(&st.conf, 4));
    assert_int_equal(st.conf.n_voters, 3); /* learned the whole config */
    assert_int_equal(c.nodes[4].applied, fx_cstatus(&c, 1).commit);
    /* With two voters down, the learner cannot help commit. */
    sim_node_crash(&c, 2);
    sim_node_crash(&c, 3);
    uint64_t commit = fx_cstatus(&c, 1).commit;
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    assert_int_equal(fx_cstatus(&c, 1).commit, commit);
    fx_cluster_free(&c);
}

/* M3: promotion is refused until the learner caught up. */
static void test_raft__promote_requires_caught_up_learner(void **state)
{
    struct sim_params p;
    struct sim_cluster c;
    sim_params_default(&p, 3);
    p.n_spare = 1;
    fx_cluster_params(&c, &p);
    fx_cluster_elect(&c, 1);
    sim_node_start(&c, 4);
    sim_isolate(&c, 4);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_ADD_LEARNER, 4), 0);
    for (int k = 0; k < 5; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_PROMOTE, 4),
                     RAFT_ERR_NOT_CAUGHT_UP);
    sim_heal(&c);
    fx_cluster_tick(&c, 3);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_PROMOTE, 4), 0);
    sim_stabilize(&c, 100);
    assert_true(cs_is_voter(&c, 2, 4));
    assert_int_equal(fx_cstatus(&c, 1).conf.n_voters, 4);
    fx_cluster_free(&c);
}

/* M2: one uncommitted change at a time. */
static void test_raft__one_change_at_a_time(void **state)
{
    struct sim_params p;
    struct sim_cluster c;
    sim_params_default(&p, 3);
    p.n_spare = 2;
    fx_cluster_params(&c, &p);
    fx_cluster_elect(&c, 1);
    sim_node_start(&c, 4);
    sim_node_start(&c, 5);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_ADD_LEARNER, 4), 0);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_ADD_LEARNER, 5),
                     RAFT_ERR_CONF_PENDING);
    sim_stabilize(&c, 100);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_ADD_LEARNER, 5), 0);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_REMOVE, 99),
                     RAFT_ERR_CONF_PENDING);
    sim_stabilize(&c, 100);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_REMOVE, 99), RAFT_ERR_INVALID);
    fx_cluster_free(&c);
}

/* M2 (the single-server change bug fix): a new leader refuses changes
 * until it has committed an entry of its own term. */
static void test_raft__change_waits_for_commit_in_term(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    fx_make_leader(&f, 3);
    struct raft_conf_change cc = {RAFT_CC_ADD_LEARNER, 4};
    assert_int_equal(raft_propose_conf_change(f.r, &cc, NULL),
                     RAFT_ERR_CONF_PENDING);
    struct raft_message ack = fx_msg(RAFT_MSG_APPEND_RESP, 2, 1, 1);
    ack.index = 1;
    raft_step(f.r, &ack);
    fx_flush(&f);
    assert_int_equal(fx_status(&f).commit, 1);
    uint64_t idx;
    assert_int_equal(raft_propose_conf_change(f.r, &cc, &idx), 0);
    assert_int_equal(idx, 2);
    /* M1: in effect at once, before it commits. */
    assert_true(fs_is_learner(&f, 4));
    assert_int_equal(fx_status(&f).conf_index, 2);
    fx_free(&f);
}

/* M1: a follower uses a configuration as soon as it is appended and
 * reverts when the entry is truncated by a new leader. */
static void test_raft__follower_config_on_append_and_revert(void **state)
{
    struct fx_node f;
    fx_init(&f, 3, 3);
    struct raft_conf after = fx_conf(3);
    after.learners[after.n_learners++] = 4;
    struct raft_conf_change cc = {RAFT_CC_ADD_LEARNER, 4};
    uint8_t buf[256];
    size_t len;
    assert_int_equal(raft_conf_entry_encode(&cc, &after, buf, sizeof(buf),
                                            &len), 0);
    struct raft_entry e[2] = {fx_entry(1, 1), fx_entry(2, 1)};
    e[1].type = RAFT_ENTRY_CONF;
    e[1].data = buf;
    e[1].len = (uint32_t)len;
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 1, 3, 1);
    a.entries = e;
    a.n_entries = 2;
    a.commit = 1;
    raft_step(f.r, &a);
    fx_flush(&f);
    assert_true(fs_is_learner(&f, 4));
    /* A leader of term 2 overwrites index 2. */
    struct raft_entry e2 = fx_entry(2, 2);
    struct raft_message b = fx_msg(RAFT_MSG_APPEND, 2, 3, 2);
    b.index = 1;
    b.log_term = 1;
    b.entries = &e2;
    b.n_entries = 1;
    raft_step(f.r, &b);
    fx_flush(&f);
    assert_false(fs_is_learner(&f, 4));
    assert_int_equal(fx_status(&f).conf.n_voters, 3);
    fx_free(&f);
}

/* M4: a leader that removes itself keeps leading until the change
 * commits, then steps down; the others elect a leader. */
static void test_raft__removed_leader_steps_down(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 5);
    fx_cluster_elect(&c, 1);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_REMOVE, 1), 0);
    assert_int_equal(fx_cstatus(&c, 1).role, RAFT_LEADER);
    sim_stabilize(&c, 100);
    assert_int_equal(fx_cstatus(&c, 1).role, RAFT_FOLLOWER);
    sim_node_crash(&c, 1);
    int t = 0;
    while (sim_leader(&c) == RAFT_NONE && t++ < 100)
        fx_cluster_tick(&c, 1);
    raft_id l = sim_leader(&c);
    assert_true(l >= 2 && l <= 5);
    assert_int_equal(fx_cstatus(&c, l).conf.n_voters, 4);
    fx_cluster_free(&c);
}

/* Removing a voter shrinks the quorum: with 2 of 4 voters down, removing
 * one of the dead lets the remaining 3 commit again. */
static void test_raft__remove_shrinks_quorum(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 4);
    fx_cluster_elect(&c, 1);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_node_crash(&c, 4);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_REMOVE, 4), 0);
    sim_stabilize(&c, 100);
    assert_int_equal(fx_cstatus(&c, 1).conf.n_voters, 3);
    sim_node_crash(&c, 3);
    uint64_t before = fx_cstatus(&c, 1).commit;
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    assert_true(fx_cstatus(&c, 1).commit > before);
    fx_cluster_free(&c);
}

/* A restarted node rebuilds its configuration from the CONF entries in its
 * log (including the uncommitted last one, M1). */
static void test_raft__restart_replays_configuration(void **state)
{
    struct sim_params p;
    struct sim_cluster c;
    sim_params_default(&p, 3);
    p.n_spare = 1;
    fx_cluster_params(&c, &p);
    fx_cluster_elect(&c, 1);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_node_start(&c, 4);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_ADD_LEARNER, 4), 0);
    sim_stabilize(&c, 100);
    sim_node_crash(&c, 2);
    sim_node_restart(&c, 2);
    assert_true(cs_is_learner(&c, 2, 4));
    sim_node_crash(&c, 4);
    sim_node_restart(&c, 4);
    struct raft_status st = fx_cstatus(&c, 4);
    assert_int_equal(st.conf.n_voters, 3);
    assert_true(raft_conf_is_learner(&st.conf, 4));
    fx_cluster_free(&c);
}

/* Regression (simulator seeds 569, 834, 1336, ...): a node that joins with
 * an empty log must learn the whole membership, not just the deltas it
 * saw, or it elects itself as the only voter it knows. */
static void test_raft__joining_node_learns_full_membership(void **state)
{
    struct sim_params p;
    struct sim_cluster c;
    sim_params_default(&p, 5);
    p.n_spare = 1;
    fx_cluster_params(&c, &p);
    fx_cluster_elect(&c, 1);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_node_start(&c, 6);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_ADD_LEARNER, 6), 0);
    sim_stabilize(&c, 100);
    assert_int_equal(propose_cc(&c, 1, RAFT_CC_PROMOTE, 6), 0);
    sim_stabilize(&c, 100);
    struct raft_status st = fx_cstatus(&c, 6);
    assert_int_equal(st.conf.n_voters, 6);
    /* Alone, it cannot win an election. */
    for (raft_id id = 1; id <= 5; id++)
        sim_isolate(&c, id);
    assert_int_equal(raft_campaign(c.nodes[6].raft), 0);
    sim_stabilize(&c, 100);
    assert_int_not_equal(fx_cstatus(&c, 6).role, RAFT_LEADER);
    fx_cluster_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__conf_apply_validates),
        cmocka_unit_test(test_raft__learner_replicates_without_voting),
        cmocka_unit_test(test_raft__promote_requires_caught_up_learner),
        cmocka_unit_test(test_raft__one_change_at_a_time),
        cmocka_unit_test(test_raft__change_waits_for_commit_in_term),
        cmocka_unit_test(test_raft__follower_config_on_append_and_revert),
        cmocka_unit_test(test_raft__removed_leader_steps_down),
        cmocka_unit_test(test_raft__remove_shrinks_quorum),
        cmocka_unit_test(test_raft__restart_replays_configuration),
        cmocka_unit_test(test_raft__joining_node_learns_full_membership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_raft_snapshot.c — log compaction and InstallSnapshot (Raft paper §7;
 * rules S1-S2 of snapshot.h).
 */
#include "raft_fixture.h"

static struct raft_message snap_msg(uint64_t index, uint64_t term,
                                    uint32_t voters, uint8_t *data)
{
    struct raft_message m = fx_msg(RAFT_MSG_SNAPSHOT, 2, 1, term);
    m.snapshot.meta.index = index;
    m.snapshot.meta.term = term;
    m.snapshot.meta.conf = fx_conf(voters);
    m.snapshot.len = 4;
    m.snapshot.data = data;
    return m;
}

/* S2: a newer snapshot replaces the log; configuration and commit come
 * from it; the host gets it in the Ready, then applies from after it. */
static void test_raft__follower_installs_snapshot(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    uint8_t data[4] = {1, 2, 3, 4};
    struct raft_message m = snap_msg(20, 3, 5, data);
    raft_step(f.r, &m);
    struct raft_ready rd;
    assert_int_equal(raft_ready(f.r, &rd), 0);
    assert_non_null(rd.snapshot);
    assert_int_equal(rd.snapshot->meta.index, 20);
    assert_memory_equal(rd.snapshot->data, data, 4);
    assert_int_equal(rd.n_committed, 0);
    assert_int_equal(rd.n_msgs_after_persist, 1);
    assert_int_equal(rd.msgs_after_persist[0].index, 20);
    memstore_install_snapshot(&f.ms, rd.snapshot);
    memstore_set_hard_state(&f.ms, &rd.hs);
    raft_advance(f.r);
    struct raft_status st = fx_status(&f);
    assert_int_equal(st.commit, 20);
    assert_int_equal(st.applied, 20);
    assert_int_equal(st.conf.n_voters, 5);
    assert_int_equal(st.first_index, 21);
    /* After a restart it resumes from the installed snapshot. */
    fx_restart(&f);
    st = fx_status(&f);
    assert_int_equal(st.applied, 20);
    assert_int_equal(st.last_index, 20);
    assert_int_equal(st.conf.n_voters, 5);
    fx_free(&f);
}

/* S2: a snapshot at or below commit is ignored (never roll back). */
static void test_raft__stale_snapshot_ignored(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_entry e[3] = {fx_entry(1, 1), fx_entry(2, 1), fx_entry(3, 1)};
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 1);
    a.entries = e;
    a.n_entries = 3;
    a.commit = 3;
    raft_step(f.r, &a);
    fx_flush(&f);
    fx_clear(&f);
    uint8_t data[4] = {0};
    struct raft_message m = snap_msg(2, 1, 3, data);
    raft_step(f.r, &m);
    fx_flush(&f);
    assert_false(f.saw_snapshot);
    assert_int_equal(fx_find(&f, RAFT_MSG_APPEND_RESP, 2)->index, 3);
    assert_int_equal(fx_status(&f).last_index, 3);
    fx_free(&f);
}

/* S2: if our log has the snapshot's last entry, keep the log and only
 * advance commit. */
static void test_raft__snapshot_matching_log_keeps_log(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_entry e[4] = {fx_entry(1, 1), fx_entry(2, 1), fx_entry(3, 1),
                              fx_entry(4, 1)};
    struct raft_message a = fx_msg(RAFT_MSG_APPEND, 2, 1, 1);
    a.entries = e;
    a.n_entries = 4;
    raft_step(f.r, &a);
    fx_flush(&f);
    uint8_t data[4] = {0};
    struct raft_message m = snap_msg(3, 1, 3, data);
    raft_step(f.r, &m);
    fx_flush(&f);
    assert_false(f.saw_snapshot);
    assert_int_equal(fx_status(&f).commit, 3);
    assert_int_equal(fx_status(&f).last_index, 4);
    fx_free(&f);
}

static void test_raft__malformed_snapshot_ignored(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    uint8_t data[4] = {0};
    struct raft_message m = snap_msg(5, 1, 0, data); /* no voters */
    raft_step(f.r, &m);
    m = snap_msg(5, 9, 3, data); /* term beyond the message's */
    m.term = 2;
    raft_step(f.r, &m);
    fx_flush(&f);
    assert_false(f.saw_snapshot);
    assert_int_equal(fx_status(&f).last_index, 0);
    fx_free(&f);
}

/* S1: a follower that needs compacted entries gets the snapshot, catches
 * up and then receives entries again. */
static void test_raft__leader_sends_snapshot_to_lagging_follower(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    sim_node_crash(&c, 3);
    for (int k = 0; k < 30; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    for (raft_id id = 1; id <= 2; id++) {
        sim_snapshot(&c, id, true);
        sim_propose(&c, 1, 0);
        sim_stabilize(&c, 100);
        sim_snapshot(&c, id, true);
    }
    assert_true(c.nodes[1].store.off_index > 20);
    sim_node_restart(&c, 3);
    fx_cluster_tick(&c, 3);
    assert_true(c.n_snap_installs >= 1);
    for (int k = 0; k < 3; k++)
        sim_propose(&c, 1, 0);
    fx_cluster_tick(&c, 2);
    assert_int_equal(c.nodes[3].applied, fx_cstatus(&c, 1).commit);
    fx_cluster_free(&c);
}

/* A snapshot that is not ready yet (SNAPSHOT_TEMP) is retried later. */
static void test_raft__snapshot_temporarily_unavailable_retried(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    sim_node_crash(&c, 3);
    for (int k = 0; k < 10; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_snapshot(&c, 1, true);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_snapshot(&c, 1, true);
    c.nodes[1].store.snapshot_temp_failures = 2;
    sim_node_restart(&c, 3);
    fx_cluster_tick(&c, 6);
    assert_int_equal(c.nodes[1].store.snapshot_temp_failures, 0);
    assert_int_equal(c.nodes[3].applied, fx_cstatus(&c, 1).commit);
    fx_cluster_free(&c);
}

/* A lost snapshot message: after a stall the leader sends it again. */
static void test_raft__lost_snapshot_is_resent(void **state)
{
    struct sim_cluster c;
    fx_cluster(&c, 3);
    fx_cluster_elect(&c, 1);
    sim_node_crash(&c, 3);
    for (int k = 0; k < 10; k++)
        sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_snapshot(&c, 1, true);
    sim_propose(&c, 1, 0);
    sim_stabilize(&c, 100);
    sim_snapshot(&c, 1, true);
    sim_node_restart(&c, 3);
    c.link[1][3] = false; /* whatever leader 1 sends node 3 now is lost */
    fx_cluster_tick(&c, 3);
    c.link[1][3] = true;
    fx_cluster_tick(&c, 3 * 10);
    assert_int_equal(c.nodes[3].applied, fx_cstatus(&c, 1).commit);
    fx_cluster_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__follower_installs_snapshot),
        cmocka_unit_test(test_raft__stale_snapshot_ignored),
        cmocka_unit_test(test_raft__snapshot_matching_log_keeps_log),
        cmocka_unit_test(test_raft__malformed_snapshot_ignored),
        cmocka_unit_test(test_raft__leader_sends_snapshot_to_lagging_follower),
        cmocka_unit_test(test_raft__snapshot_temporarily_unavailable_retried),
        cmocka_unit_test(test_raft__lost_snapshot_is_resent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

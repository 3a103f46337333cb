/*
 * test_raft_progress.c — per-follower flow control (progress.h): state
 * transitions, stale responses, the in-flight window and quorum values.
 */
#include "raft_fixture.h"

#include "progress.h"

static void test_raft__progress_update_moves_match_and_next(void **state)
{
    struct raft_progress p;
    raft_progress_init(&p, 2, true, 5, 4);
    assert_false(raft_progress_maybe_update(&p, 0));
    assert_true(raft_progress_maybe_update(&p, 7));
    assert_int_equal(p.match, 7);
    assert_int_equal(p.next, 8);
    assert_false(raft_progress_maybe_update(&p, 6)); /* stale */
    assert_int_equal(p.match, 7);
    raft_progress_close(&p);
}

/* A rejection counts only for the probe we are waiting for (PROBE) or if it
 * is above match (REPLICATE); the hint is clamped to (match, rejected]. */
static void test_raft__progress_decrement_ignores_stale(void **state)
{
    struct raft_progress p;
    raft_progress_init(&p, 2, true, 10, 4);
    assert_false(raft_progress_maybe_decr_to(&p, 5, 3)); /* not our probe */
    assert_true(raft_progress_maybe_decr_to(&p, 9, 4));
    assert_int_equal(p.next, 4);
    assert_true(raft_progress_maybe_decr_to(&p, 3, 100));
    assert_int_equal(p.next, 3); /* hint above the rejected index */
    p.match = 2;
    raft_progress_become_replicate(&p);
    assert_int_equal(p.next, 3);
    raft_progress_sent(&p, 6, 3);
    assert_false(raft_progress_maybe_decr_to(&p, 2, 1)); /* <= match */
    assert_true(raft_progress_maybe_decr_to(&p, 5, 1));
    assert_int_equal(p.state, RAFT_PR_PROBE);
    assert_int_equal(p.next, 3); /* never below match + 1 */
    raft_progress_close(&p);
}

static void test_raft__progress_inflight_window(void **state)
{
    struct raft_progress p;
    raft_progress_init(&p, 2, true, 1, 3);
    raft_progress_become_replicate(&p);
    raft_progress_sent(&p, 2, 2);
    raft_progress_sent(&p, 4, 2);
    assert_false(raft_progress_is_paused(&p));
    raft_progress_sent(&p, 6, 2);
    assert_true(raft_progress_is_paused(&p));
    assert_int_equal(p.next, 7);
    raft_progress_free_to(&p, 3); /* frees the message ending at 2 */
    assert_false(raft_progress_is_paused(&p));
    assert_int_equal(p.in_count, 2);
    raft_progress_free_to(&p, 6);
    assert_int_equal(p.in_count, 0);
    raft_progress_close(&p);
}

static void test_raft__progress_probe_and_snapshot_pause(void **state)
{
    struct raft_progress p;
    raft_progress_init(&p, 2, true, 1, 3);
    assert_false(raft_progress_is_paused(&p));
    raft_progress_sent(&p, 0, 0);
    assert_true(raft_progress_is_paused(&p));
    raft_progress_become_snapshot(&p, 40);
    assert_true(raft_progress_is_paused(&p));
    raft_progress_become_probe(&p);
    assert_int_equal(p.next, 41); /* resumes after the snapshot */
    raft_progress_close(&p);
}

static void test_raft__quorum_value_is_majority_index(void **state)
{
    uint64_t v3[] = {5, 9, 7};
    assert_int_equal(raft_quorum_value(v3, 3, 2), 7);
    uint64_t v5[] = {1, 10, 3, 10, 2};
    assert_int_equal(raft_quorum_value(v5, 5, 3), 3);
    uint64_t v4[] = {4, 4, 1, 1};
    assert_int_equal(raft_quorum_value(v4, 4, 3), 1);
    uint64_t v1[] = {8};
    assert_int_equal(raft_quorum_value(v1, 1, 1), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__progress_update_moves_match_and_next),
        cmocka_unit_test(test_raft__progress_decrement_ignores_stale),
        cmocka_unit_test(test_raft__progress_inflight_window),
        cmocka_unit_test(test_raft__progress_probe_and_snapshot_pause),
        cmocka_unit_test(test_raft__quorum_value_is_majority_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

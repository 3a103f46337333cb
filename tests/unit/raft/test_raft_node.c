/*
 * test_raft_node.c — the node API contract (raft.h): configuration checks,
 * status codes for refused proposals, the Ready/advance protocol, restart
 * from storage and logging.
 */
#include "raft_fixture.h"

static void test_raft__new_rejects_bad_config(void **state)
{
    struct memstore ms;
    struct raft_conf c = fx_conf(3);
    struct raft_config cfg;
    struct raft_node *r;
    memstore_init(&ms, &c);
    raft_config_init(&cfg);
    cfg.storage = &memstore_ops;
    cfg.storage_ctx = &ms;
    assert_int_equal(raft_new(&cfg, &r), RAFT_ERR_INVALID); /* id 0 */
    assert_null(r);
    cfg.id = 1;
    cfg.election_tick = cfg.heartbeat_tick;
    assert_int_equal(raft_new(&cfg, &r), RAFT_ERR_INVALID);
    cfg.election_tick = 10;
    cfg.max_inflight = 0;
    assert_int_equal(raft_new(&cfg, &r), RAFT_ERR_INVALID);
    cfg.max_inflight = 4;
    struct raft_storage_ops broken = memstore_ops;
    broken.snapshot = NULL;
    cfg.storage = &broken;
    assert_int_equal(raft_new(&cfg, &r), RAFT_ERR_INVALID);
    cfg.storage = &memstore_ops;
    assert_int_equal(raft_new(&cfg, &r), 0);
    raft_free(r);
    raft_free(NULL);
    memstore_close(&ms);
}

static void test_raft__strerror_names_every_code(void **state)
{
    for (int rc = 0; rc >= RAFT_ERR_DROPPED; rc--) {
        const char *s = raft_strerror(rc);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
    }
    assert_string_equal(raft_strerror(-999), "unknown error");
}

/* Refused proposals say why: NOT_LEADER, TOO_LARGE, TRANSFERRING. */
static void test_raft__proposal_status_codes(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    assert_int_equal(raft_propose(f.r, "a", 1, NULL, NULL),
                     RAFT_ERR_NOT_LEADER);
    struct raft_conf_change cc = {RAFT_CC_ADD_LEARNER, 4};
    assert_int_equal(raft_propose_conf_change(f.r, &cc, NULL),
                     RAFT_ERR_NOT_LEADER);
    fx_make_leader(&f, 3);
    char big[64];
    memset(big, 1, sizeof(big));
    raft_free(f.r);
    f.cfg.max_entry_bytes = 32;
    fx_start(&f);
    fx_make_leader(&f, 3);
    assert_int_equal(raft_propose(f.r, big, 33, NULL, NULL),
                     RAFT_ERR_TOO_LARGE);
    uint64_t idx, term;
    assert_int_equal(raft_propose(f.r, big, 32, &idx, &term), 0);
    assert_int_equal(term, fx_status(&f).term);
    assert_int_equal(idx, fx_status(&f).last_index);
    assert_int_equal(raft_propose(f.r, NULL, 3, NULL, NULL),
                     RAFT_ERR_INVALID);
    assert_int_equal(raft_propose(f.r, NULL, 0, NULL, NULL), 0);
    assert_int_equal(raft_transfer_leader(f.r, 2), 0);
    assert_int_equal(raft_propose(f.r, big, 1, NULL, NULL),
                     RAFT_ERR_TRANSFERRING);
    fx_free(&f);
}

/* N3: nothing changes between raft_ready and raft_advance. */
static void test_raft__calls_between_ready_and_advance_are_busy(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 1);
    raft_campaign(f.r);
    assert_true(raft_has_ready(f.r));
    struct raft_ready rd;
    assert_int_equal(raft_ready(f.r, &rd), 0);
    assert_false(raft_has_ready(f.r));
    struct raft_ready rd2;
    assert_int_equal(raft_ready(f.r, &rd2), RAFT_ERR_BUSY);
    struct raft_message m = fx_msg(RAFT_MSG_HEARTBEAT, 2, 1, 9);
    assert_int_equal(raft_step(f.r, &m), RAFT_ERR_BUSY);
    assert_int_equal(raft_tick(f.r), RAFT_ERR_BUSY);
    assert_int_equal(raft_propose(f.r, "a", 1, NULL, NULL), RAFT_ERR_BUSY);
    assert_int_equal(raft_read_index(f.r, 1), RAFT_ERR_BUSY);
    assert_int_equal(raft_transfer_leader(f.r, 2), RAFT_ERR_BUSY);
    assert_int_equal(raft_campaign(f.r), RAFT_ERR_BUSY);
    struct raft_conf_change cc = {RAFT_CC_ADD_LEARNER, 2};
    assert_int_equal(raft_propose_conf_change(f.r, &cc, NULL), RAFT_ERR_BUSY);
    memstore_append(&f.ms, rd.entries, rd.n_entries);
    memstore_set_hard_state(&f.ms, &rd.hs);
    raft_advance(f.r);
    fx_flush(&f);
    assert_false(raft_has_ready(f.r));
    fx_free(&f);
}

static void test_raft__step_rejects_misaddressed_messages(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 3);
    struct raft_message m = fx_msg(RAFT_MSG_HEARTBEAT, 2, 5, 1);
    assert_int_equal(raft_step(f.r, &m), RAFT_ERR_INVALID);
    m = fx_msg(RAFT_MSG_HEARTBEAT, 1, 1, 1);
    assert_int_equal(raft_step(f.r, &m), RAFT_ERR_INVALID);
    m = fx_msg(0, 2, 1, 1);
    assert_int_equal(raft_step(f.r, &m), RAFT_ERR_INVALID);
    m = fx_msg(RAFT_MSG_TYPE_MAX_ + 1, 2, 1, 1);
    assert_int_equal(raft_step(f.r, &m), RAFT_ERR_INVALID);
    assert_int_equal(fx_status(&f).term, 0);
    fx_free(&f);
}

/* Restart recovers term, vote and commit from the hard state, and the
 * committed entries are applied again (the state machine is volatile
 * unless the host says otherwise through cfg.applied). */
static void test_raft__restart_restores_hard_state(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 1);
    raft_campaign(f.r);
    fx_flush(&f);
    for (int k = 0; k < 5; k++)
        raft_propose(f.r, "x", 1, NULL, NULL);
    fx_flush(&f);
    struct raft_status before = fx_status(&f);
    assert_int_equal(before.commit, 6);
    fx_restart(&f);
    struct raft_status after = fx_status(&f);
    assert_int_equal(after.term, before.term);
    assert_int_equal(after.vote, 1);
    assert_int_equal(after.commit, 6);
    assert_int_equal(after.role, RAFT_FOLLOWER);
    f.n_applied = 0;
    fx_flush(&f);
    assert_int_equal(f.n_applied, 6);
    /* With cfg.applied the host skips what it already applied. */
    raft_free(f.r);
    f.cfg.applied = 4;
    fx_start(&f);
    f.n_applied = 0;
    fx_flush(&f);
    assert_int_equal(f.n_applied, 2);
    assert_int_equal(f.applied[0], 5);
    fx_free(&f);
}

/* Committed entries per Ready are bounded by max_apply_bytes. */
static void test_raft__apply_is_bounded_per_ready(void **state)
{
    struct fx_node f;
    fx_init(&f, 1, 1);
    raft_free(f.r);
    f.cfg.max_apply_bytes = 10;
    fx_start(&f);
    raft_campaign(f.r);
    fx_flush(&f);
    for (int k = 0; k < 10; k++)
        raft_propose(f.r, "12345", 5, NULL, NULL);
    int readies = fx_flush(&f);
    assert_true(readies >= 5);
    assert_int_equal(fx_status(&f).applied, 11);
    fx_free(&f);
}

static void log_sink(void *ctx, int level, const char *msg)
{
    int *count = ctx;
    assert_true(level >= RAFT_LOG_INFO);
    assert_non_null(strstr(msg, "[1 t"));
    (*count)++;
}

/* The core logs only through the callback, at or above the asked level. */
static void test_raft__logs_through_callback(void **state)
{
    struct fx_node f;
    int count = 0;
    fx_init(&f, 1, 1);
    raft_free(f.r);
    f.cfg.log_fn = log_sink;
    f.cfg.log_ctx = &count;
    f.cfg.log_level = RAFT_LOG_INFO;
    fx_start(&f);
    raft_campaign(f.r);
    fx_flush(&f);
    assert_true(count >= 2); /* "started", "became leader" */
    fx_free(&f);
}

/* Idle nodes have nothing to do. */
static void test_raft__idle_node_has_no_ready(void **state)
{
    struct fx_node f;
    fx_init(&f, 2, 3);
    fx_flush(&f);
    assert_false(raft_has_ready(f.r));
    raft_tick(f.r);
    assert_false(raft_has_ready(f.r));
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__new_rejects_bad_config),
        cmocka_unit_test(test_raft__strerror_names_every_code),
        cmocka_unit_test(test_raft__proposal_status_codes),
        cmocka_unit_test(test_raft__calls_between_ready_and_advance_are_busy),
        cmocka_unit_test(test_raft__step_rejects_misaddressed_messages),
        cmocka_unit_test(test_raft__restart_restores_hard_state),
        cmocka_unit_test(test_raft__apply_is_bounded_per_ready),
        cmocka_unit_test(test_raft__logs_through_callback),
        cmocka_unit_test(test_raft__idle_node_has_no_ready),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

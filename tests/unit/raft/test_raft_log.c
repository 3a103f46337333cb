/*
 * test_raft_log.c — the log module (log.h): term lookups across storage and
 * memory, Figure 2's AppendEntries log rules in isolation, the binary
 * searches behind fast backtracking, slicing with byte limits, restore and
 * the memory tail's release after apply (invariants L1-L4).
 */
#include "raft_fixture.h"

#include "log.h"

struct lfx {
    struct memstore ms;
    struct raft_log log;
};

/* Storage holds entries 1..n_stored with the given terms. */
static void lfx_init(struct lfx *x, const uint64_t *terms, size_t n_stored)
{
    struct raft_conf c = fx_conf(3);
    struct raft_entry e[64];
    memstore_init(&x->ms, &c);
    for (size_t k = 0; k < n_stored; k++) {
        e[k] = fx_entry(k + 1, terms[k]);
        e[k].len = 1;
        e[k].data = (uint8_t *)"z";
    }
    memstore_append(&x->ms, e, n_stored);
    assert_int_equal(raft_log_init(&x->log, &memstore_ops, &x->ms), 0);
}

static void lfx_free(struct lfx *x)
{
    raft_log_close(&x->log);
    memstore_close(&x->ms);
}

static void append_terms(struct raft_log *l, const uint64_t *terms, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct raft_entry e = fx_entry(raft_log_last_index(l) + 1, terms[k]);
        raft_log_append_owned(l, &e);
    }
}

static void test_raft__log_terms_span_storage_and_memory(void **state)
{
    uint64_t st[] = {1, 1, 2};
    uint64_t mt[] = {3, 3};
    struct lfx x;
    lfx_init(&x, st, 3);
    append_terms(&x.log, mt, 2);
    raft_log_check(&x.log);
    uint64_t t;
    assert_int_equal(raft_log_last_index(&x.log), 5);
    assert_int_equal(raft_log_last_term(&x.log), 3);
    assert_int_equal(raft_log_term(&x.log, 0, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(raft_log_term(&x.log, 3, &t), 0);
    assert_int_equal(t, 2);
    assert_int_equal(raft_log_term(&x.log, 4, &t), 0);
    assert_int_equal(t, 3);
    assert_int_equal(raft_log_term(&x.log, 6, &t), RAFT_ERR_UNAVAILABLE);
    assert_true(raft_log_match_term(&x.log, 2, 1));
    assert_false(raft_log_match_term(&x.log, 2, 2));
    size_t n;
    assert_non_null(raft_log_unstable(&x.log, &n));
    assert_int_equal(n, 2);
    lfx_free(&x);
}

static void test_raft__log_compacted_terms_report_compacted(void **state)
{
    uint64_t st[] = {1, 1, 2, 2};
    struct lfx x;
    lfx_init(&x, st, 4);
    x.log.committed = x.log.applied = 4;
    struct raft_conf c = fx_conf(3);
    memstore_create_snapshot(&x.ms, 3, &c, NULL, 0);
    memstore_compact_to_snapshot(&x.ms);
    uint64_t t;
    assert_int_equal(raft_log_term(&x.log, 2, &t), RAFT_ERR_COMPACTED);
    assert_int_equal(raft_log_term(&x.log, 3, &t), 0); /* first - 1 */
    assert_int_equal(t, 2);
    assert_int_equal(raft_log_first_index(&x.log), 4);
    struct raft_slice s;
    assert_int_equal(raft_log_slice(&x.log, 2, 5, 100, &s),
                     RAFT_ERR_COMPACTED);
    lfx_free(&x);
}

/* §5.4.1 comparison. */
static void test_raft__log_up_to_date_compares_term_then_length(void **state)
{
    uint64_t st[] = {1, 2, 2};
    struct lfx x;
    lfx_init(&x, st, 3);
    assert_true(raft_log_is_up_to_date(&x.log, 3, 2));
    assert_true(raft_log_is_up_to_date(&x.log, 9, 2));
    assert_true(raft_log_is_up_to_date(&x.log, 1, 3));
    assert_false(raft_log_is_up_to_date(&x.log, 2, 2));
    assert_false(raft_log_is_up_to_date(&x.log, 9, 1));
    lfx_free(&x);
}

static void test_raft__log_maybe_append_rules(void **state)
{
    uint64_t st[] = {1, 1, 1, 1};
    struct lfx x;
    lfx_init(&x, st, 4);
    uint64_t last_new, trunc;
    struct raft_entry e[2] = {fx_entry(3, 2), fx_entry(4, 2)};
    /* prev mismatch: nothing changes */
    assert_false(raft_log_maybe_append(&x.log, 2, 5, 0, e, 2, &last_new,
                                       &trunc, false));
    assert_int_equal(raft_log_last_index(&x.log), 4);
    /* conflict at 3 truncates 3..4 (they are in storage only) */
    assert_true(raft_log_maybe_append(&x.log, 2, 1, 3, e, 2, &last_new,
                                      &trunc, false));
    assert_int_equal(trunc, 3);
    assert_int_equal(last_new, 4);
    assert_int_equal(raft_log_term_or_zero(&x.log, 3), 2);
    assert_int_equal(x.log.stable, 2);
    assert_int_equal(x.log.committed, 3);
    raft_log_check(&x.log);
    /* the same append again is a no-op */
    assert_true(raft_log_maybe_append(&x.log, 2, 1, 3, e, 2, &last_new,
                                      &trunc, false));
    assert_int_equal(trunc, 0);
    assert_int_equal(raft_log_last_index(&x.log), 4);
    lfx_free(&x);
}

static void test_raft__log_term_searches(void **state)
{
    uint64_t st[] = {1, 1, 2, 2, 2, 4, 4, 5};
    struct lfx x;
    lfx_init(&x, st, 8);
    assert_int_equal(raft_log_first_of_term(&x.log, 5, 0), 3);
    assert_int_equal(raft_log_first_of_term(&x.log, 5, 4), 4); /* floor */
    assert_int_equal(raft_log_first_of_term(&x.log, 1, 0), 1);
    assert_int_equal(raft_log_last_of_term(&x.log, 8, 2, 0), 5);
    assert_int_equal(raft_log_last_of_term(&x.log, 8, 4, 0), 7);
    assert_int_equal(raft_log_last_of_term(&x.log, 8, 3, 0), 0);
    assert_int_equal(raft_log_last_of_term(&x.log, 4, 2, 0), 4);
    assert_int_equal(raft_log_last_of_term(&x.log, 20, 5, 0), 8);
    lfx_free(&x);
}

static void test_raft__log_slice_respects_bytes(void **state)
{
    uint64_t st[] = {1, 1, 1};
    struct lfx x;
    lfx_init(&x, st, 3);
    uint8_t *d = malloc(10);
    memset(d, 7, 10);
    struct raft_entry e = fx_entry(4, 1);
    e.len = 10;
    e.data = d;
    raft_log_append_owned(&x.log, &e);
    struct raft_slice s;
    assert_int_equal(raft_log_slice(&x.log, 1, 5, 2, &s), 0);
    assert_int_equal(s.n, 2); /* storage entries are 1 byte each */
    raft_slice_free(&s);
    assert_int_equal(raft_log_slice(&x.log, 1, 5, 1000, &s), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.v[3].len, 10);
    assert_int_equal(s.v[3].data[9], 7);
    raft_slice_free(&s);
    assert_int_equal(raft_log_slice(&x.log, 4, 5, 1, &s), 0);
    assert_int_equal(s.n, 1); /* always at least one entry */
    raft_slice_free(&s);
    lfx_free(&x);
}

static void test_raft__log_restore_and_release(void **state)
{
    uint64_t st[] = {1};
    uint64_t mt[] = {1, 2, 2};
    struct lfx x;
    lfx_init(&x, st, 1);
    append_terms(&x.log, mt, 3);
    raft_log_stable_to(&x.log, 4);
    raft_log_commit_to(&x.log, 3);
    raft_log_applied_to(&x.log, 3);
    assert_int_equal(x.log.mem_first, 4); /* applied + stable entries gone */
    assert_int_equal(raft_log_term_or_zero(&x.log, 4), 2);
    struct raft_snapshot *snap = calloc(1, sizeof(*snap));
    snap->meta.index = 10;
    snap->meta.term = 3;
    raft_log_restore(&x.log, snap);
    assert_int_equal(raft_log_last_index(&x.log), 10);
    assert_int_equal(raft_log_last_term(&x.log), 3);
    assert_int_equal(x.log.committed, 10);
    assert_int_equal(raft_log_first_index(&x.log), 11);
    uint64_t t;
    assert_int_equal(raft_log_term(&x.log, 9, &t), RAFT_ERR_COMPACTED);
    raft_log_check(&x.log);
    lfx_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft__log_terms_span_storage_and_memory),
        cmocka_unit_test(test_raft__log_compacted_terms_report_compacted),
        cmocka_unit_test(test_raft__log_up_to_date_compares_term_then_length),
        cmocka_unit_test(test_raft__log_maybe_append_rules),
        cmocka_unit_test(test_raft__log_term_searches),
        cmocka_unit_test(test_raft__log_slice_respects_bytes),
        cmocka_unit_test(test_raft__log_restore_and_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

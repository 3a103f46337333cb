/*
 * test_shell_cluster.c — the per-partition view of a cluster
 * (client/shell/shell_cluster.h), on hand-made node reports: no server.
 * The rule numbers refer to the header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shell_cluster.h"

static const shell_cluster_table one_table[] = { { 1, "orders", 2 } };

static okv_replica_info rep(uint32_t table, uint32_t part, const char *role, uint64_t term,
                            uint64_t leader, uint64_t commit, uint64_t applied)
{
    okv_replica_info r = { table, part, role, term, leader, commit, applied, commit };
    return r;
}

static shell_cluster_view *aggregate(const shell_cluster_node *nodes, size_t n,
                                     const shell_cluster_table *tables, size_t nt)
{
    shell_cluster_input in = { nodes, n, tables, nt };
    shell_cluster_view *v = NULL;
    assert_int_equal(shell_cluster_aggregate(&in, &v), 0);
    assert_non_null(v);
    return v;
}

/* A healthy 3-node cluster: leader, term and lag per replica (rules 3-6). */
static void test_shell_cluster__healthy_rows_and_lag(void **state)
{
    okv_replica_info n1[] = { rep(1, 0, "leader", 2, 1, 10, 10),
                              rep(1, 1, "follower", 3, 2, 20, 18) };
    okv_replica_info n2[] = { rep(1, 0, "follower", 2, 1, 10, 9),
                              rep(1, 1, "leader", 3, 2, 21, 21) };
    okv_replica_info n3[] = { rep(1, 0, "follower", 2, 1, 8, 7),
                              rep(1, 1, "follower", 3, 2, 21, 21) };
    shell_cluster_node nodes[] = { { 1, "a:1", 1, n1, 2 }, { 2, "a:2", 1, n2, 2 },
                                   { 3, "a:3", 1, n3, 2 } };
    shell_cluster_view *v = aggregate(nodes, 3, one_table, 1);
    assert_int_equal(v->count, 2);
    assert_int_equal(v->leaderless, 0);

    const shell_partition_row *p0 = &v->rows[0];
    assert_string_equal(p0->table, "orders");
    assert_int_equal(p0->table_id, 1);
    assert_int_equal(p0->partition, 0);
    assert_true(p0->has_leader);
    assert_int_equal(p0->leader, 1);
    assert_int_equal(p0->term, 2);
    assert_int_equal(p0->leader_commit, 10);
    assert_int_equal(p0->replica_count, 3);
    uint64_t want_lag0[] = { 0, 1, 3 };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(p0->replicas[i].node, i + 1);
        assert_true(p0->replicas[i].lag_known);
        assert_int_equal(p0->replicas[i].lag, want_lag0[i]);
    }
    assert_string_equal(p0->replicas[0].role, "leader");
    assert_string_equal(p0->replicas[1].role, "follower");
    assert_int_equal(p0->replicas[2].commit, 8);
    assert_int_equal(p0->replicas[2].applied, 7);

    const shell_partition_row *p1 = &v->rows[1];
    assert_int_equal(p1->partition, 1);
    assert_int_equal(p1->leader, 2);
    assert_int_equal(p1->term, 3);
    assert_int_equal(p1->replicas[0].lag, 3);   /* 21 - 18 */
    assert_int_equal(p1->replicas[1].lag, 0);
    assert_int_equal(p1->replicas[0].leader_seen, 2);
    shell_cluster_view_free(v);
}

/* No replica claims leadership: no leader, highest term, lag unknown (3-5). */
static void test_shell_cluster__partition_without_leader(void **state)
{
    okv_replica_info n1[] = { rep(1, 0, "candidate", 5, 0, 10, 10) };
    okv_replica_info n2[] = { rep(1, 0, "follower", 4, 3, 10, 10) };
    shell_cluster_node nodes[] = { { 1, "a:1", 1, n1, 1 }, { 2, "a:2", 1, n2, 1 } };
    const shell_cluster_table t[] = { { 1, "orders", 1 } };
    shell_cluster_view *v = aggregate(nodes, 2, t, 1);
    assert_int_equal(v->count, 1);
    assert_int_equal(v->leaderless, 1);
    assert_false(v->rows[0].has_leader);
    assert_int_equal(v->rows[0].leader, 0);
    assert_int_equal(v->rows[0].term, 5);
    assert_int_equal(v->rows[0].replica_count, 2);
    assert_false(v->rows[0].replicas[0].lag_known);
    assert_false(v->rows[0].replicas[1].lag_known);
    assert_int_equal(v->rows[0].replicas[1].leader_seen, 3);
    shell_cluster_view_free(v);
}

/* A deposed leader of an older term keeps its role but does not lead (3). */
static void test_shell_cluster__stale_leader_loses_to_newer_term(void **state)
{
    okv_replica_info n1[] = { rep(1, 0, "leader", 2, 1, 10, 10) };
    okv_replica_info n2[] = { rep(1, 0, "leader", 3, 2, 12, 12) };
    okv_replica_info n3[] = { rep(1, 0, "follower", 3, 2, 12, 11) };
    /* Reported in an order where the stale leader comes last. */
    shell_cluster_node nodes[] = { { 2, "a:2", 1, n2, 1 }, { 3, "a:3", 1, n3, 1 },
                                   { 1, "a:1", 1, n1, 1 } };
    const shell_cluster_table t[] = { { 1, "orders", 1 } };
    shell_cluster_view *v = aggregate(nodes, 3, t, 1);
    const shell_partition_row *r = &v->rows[0];
    assert_int_equal(r->leader, 2);
    assert_int_equal(r->term, 3);
    assert_string_equal(r->replicas[0].role, "leader");   /* node 1, stale */
    assert_int_equal(r->replicas[0].node, 1);
    assert_int_equal(r->replicas[0].lag, 2);
    assert_int_equal(r->replicas[2].lag, 1);
    shell_cluster_view_free(v);
}

/* A node that did not answer contributes nothing, whatever it holds (2). */
static void test_shell_cluster__down_node_contributes_nothing(void **state)
{
    okv_replica_info n1[] = { rep(1, 0, "follower", 2, 3, 10, 10) };
    okv_replica_info n3[] = { rep(1, 0, "leader", 2, 3, 10, 10) };
    shell_cluster_node nodes[] = { { 1, "a:1", 1, n1, 1 }, { 2, "a:2", 0, NULL, 0 },
                                   { 3, "a:3", 0, n3, 1 } };
    const shell_cluster_table t[] = { { 1, "orders", 1 } };
    shell_cluster_view *v = aggregate(nodes, 3, t, 1);
    assert_int_equal(v->count, 1);
    assert_int_equal(v->rows[0].replica_count, 1);
    assert_int_equal(v->rows[0].replicas[0].node, 1);
    /* Node 1 still believes in node 3, but nobody up claims to lead. */
    assert_false(v->rows[0].has_leader);
    assert_int_equal(v->leaderless, 1);
    shell_cluster_view_free(v);
}

/* Nodes are asked at different moments: a follower may be ahead of the
 * leader's commit as sampled; lag never goes negative (5). */
static void test_shell_cluster__lag_is_clamped_at_zero(void **state)
{
    okv_replica_info n1[] = { rep(1, 0, "leader", 2, 1, 10, 10) };
    okv_replica_info n2[] = { rep(1, 0, "follower", 2, 1, 14, 13) };
    shell_cluster_node nodes[] = { { 1, "a:1", 1, n1, 1 }, { 2, "a:2", 1, n2, 1 } };
    const shell_cluster_table t[] = { { 1, "orders", 1 } };
    shell_cluster_view *v = aggregate(nodes, 2, t, 1);
    assert_true(v->rows[0].replicas[1].lag_known);
    assert_int_equal(v->rows[0].replicas[1].lag, 0);
    shell_cluster_view_free(v);
}

/* Every catalog partition gets a row, and so does a reported partition the
 * catalog does not name; rows are sorted by table id then partition (1). */
static void test_shell_cluster__rows_cover_catalog_and_reports(void **state)
{
    okv_replica_info n1[] = { rep(9, 0, "leader", 1, 1, 1, 1), rep(2, 1, "leader", 1, 1, 5, 5),
                              rep(1, 0, "leader", 1, 1, 3, 3) };
    shell_cluster_node nodes[] = { { 1, "a:1", 1, n1, 3 } };
    const shell_cluster_table t[] = { { 2, "payments", 2 }, { 1, "orders", 3 } };
    shell_cluster_view *v = aggregate(nodes, 1, t, 2);
    assert_int_equal(v->count, 6);   /* orders 0-2, payments 0-1, #9/0 */
    uint32_t want[][2] = { { 1, 0 }, { 1, 1 }, { 1, 2 }, { 2, 0 }, { 2, 1 }, { 9, 0 } };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(v->rows[i].table_id, want[i][0]);
        assert_int_equal(v->rows[i].partition, want[i][1]);
    }
    assert_string_equal(v->rows[0].table, "orders");
    assert_string_equal(v->rows[3].table, "payments");
    assert_null(v->rows[5].table);
    assert_int_equal(v->rows[1].replica_count, 0);
    assert_null(v->rows[1].replicas);
    assert_false(v->rows[1].has_leader);
    assert_true(v->rows[4].has_leader);
    assert_true(v->rows[5].has_leader);
    assert_int_equal(v->leaderless, 3);   /* orders/1, orders/2, payments/0 */
    shell_cluster_view_free(v);
}

/* A node that reports one partition twice counts once, first report wins (2). */
static void test_shell_cluster__duplicate_report_keeps_first(void **state)
{
    okv_replica_info n1[] = { rep(1, 0, "leader", 4, 1, 10, 10),
                              rep(1, 0, "follower", 9, 2, 1, 1) };
    shell_cluster_node nodes[] = { { 1, "a:1", 1, n1, 2 } };
    const shell_cluster_table t[] = { { 1, "orders", 1 } };
    shell_cluster_view *v = aggregate(nodes, 1, t, 1);
    assert_int_equal(v->rows[0].replica_count, 1);
    assert_string_equal(v->rows[0].replicas[0].role, "leader");
    assert_int_equal(v->rows[0].term, 4);
    shell_cluster_view_free(v);
}

static void test_shell_cluster__empty_input(void **state)
{
    shell_cluster_view *v = aggregate(NULL, 0, NULL, 0);
    assert_int_equal(v->count, 0);
    assert_int_equal(v->leaderless, 0);
    shell_cluster_view_free(v);
    shell_cluster_view_free(NULL);
}

static void test_shell_cluster__table_name_lookup(void **state)
{
    shell_cluster_input in = { NULL, 0, one_table, 1 };
    assert_string_equal(shell_cluster_table_name(&in, 1), "orders");
    assert_null(shell_cluster_table_name(&in, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_cluster__healthy_rows_and_lag),
        cmocka_unit_test(test_shell_cluster__partition_without_leader),
        cmocka_unit_test(test_shell_cluster__stale_leader_loses_to_newer_term),
        cmocka_unit_test(test_shell_cluster__down_node_contributes_nothing),
        cmocka_unit_test(test_shell_cluster__lag_is_clamped_at_zero),
        cmocka_unit_test(test_shell_cluster__rows_cover_catalog_and_reports),
        cmocka_unit_test(test_shell_cluster__duplicate_report_keeps_first),
        cmocka_unit_test(test_shell_cluster__empty_input),
        cmocka_unit_test(test_shell_cluster__table_name_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

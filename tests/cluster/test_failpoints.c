/* Rare paths of a 3-node cluster, reached with failpoints (common/failpoint.h;
 * this test exists only in builds with -DORDERKV_FAILPOINTS=ON):
 *
 *  a. a node crashes after its Raft batch is synced but before the entries
 *     are applied; restarted, it applies each entry exactly once;
 *  b. a lossy network: a fifth of all Raft messages between nodes vanish;
 *  c. a slow disk on one node (every synced batch takes 100 ms longer);
 *  d. answers to writes are lost (the write applied, the client hears
 *     UNAVAILABLE): the client sends the same request again and the
 *     partition's exactly-once table answers it, so a chain of
 *     compare-and-set increments never sees its own write as a conflict;
 *  e. the control for d: the same with the exactly-once table switched off
 *     (planted bug fsm.dedup.skip) must show conflicts — the check in d can
 *     fail;
 *  f. a follower behind the compacted log crashes in the middle of
 *     installing the streamed snapshot, after the SST files were ingested
 *     and before the batch that records the install; restarted, it finishes
 *     the install from the kept files and every acknowledged write is there.
 *
 * a–c run concurrent writers and read every write back (okv_load.h), through
 * each node on its own, so every replica's applied state is checked. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okv_cluster.h"
#include "okv_load.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

#define NODES 3
#define TICK_MS 50

typedef struct fx {
    okv_cluster *c;
    okv_client *cl;
    uint32_t partitions;   /* of orders */
    uint32_t orders_id;
} fx;

static int teardown(void **state)
{
    fx *f = *state;
    if (!f)
        return 0;
    okv_close(f->cl);
    okv_cluster_free(f->c);
    free(f);
    return 0;
}

static int setup(void **state)
{
    *state = calloc(1, sizeof(fx));
    return *state ? 0 : -1;
}

/* Starts the cluster, every node with env (NULL: none) and extra flags
 * (NULL: none); asserts it serves. */
static void start_with(fx *f, const char *env, const char *flags)
{
    if (okv_cluster_start_ex(&f->c, orderkvd_path, NODES, TICK_MS, env, flags) != 0 ||
        okv_cluster_wait_leaders(f->c, 20000) != 0) {
        okv_cluster_dump_logs(f->c, 20);
        fail_msg("the cluster (env %s) did not elect every leader within 20 s",
                 env ? env : "none");
    }
    assert_int_equal(okv_connect(&f->cl, f->c->all, NULL), OKV_OK);
    okv_status *s;
    assert_int_equal(okv_status_get(f->cl, &s, 5000), OKV_OK);
    for (size_t i = 0; i < okv_status_table_count(s); i++)
        if (strcmp(okv_status_table_name(s, i), "orders") == 0) {
            f->partitions = okv_status_table_partitions(s, i);
            f->orders_id = okv_status_table_id(s, i);
        }
    okv_status_free(s);
    assert_true(f->partitions > 0);
}

static void start(fx *f, const char *env) { start_with(f, env, NULL); }

/* Reads every write back through each node alone: that node's ReadIndex
 * read serves its own applied state. */
static void verify_on_every_node(fx *f, const okv_load *l)
{
    for (int id = 1; id <= NODES; id++) {
        okv_client *one;
        assert_int_equal(okv_cluster_connect_one(f->c, id, &one), OKV_OK);
        char via[32];
        snprintf(via, sizeof via, "node %d", id);
        assert_true(okv_load_verify(l, one, via) > 0);
        okv_close(one);
    }
}

static int log_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, fp))
        found = strstr(line, needle) != NULL;
    fclose(fp);
    return found;
}

/* ---- a. crash between the synced batch and apply ------------------------------ */

static void test_failpoints__crash_after_persist_before_apply(void **state)
{
    fx *f = *state;
    start(f, NULL);
    const int victim = 2;
    /* Restart the victim armed: it dies at its 80th synced batch, mid-load. */
    assert_int_equal(okv_cluster_node_stop(f->c, victim, 0), 0);
    okv_cluster_set_env(f->c, victim, "ORDERKV_FAILPOINTS=raft.persist.after_sync=crash@80");
    assert_int_equal(okv_cluster_node_start(f->c, victim), 0);
    okv_load l;
    okv_load_start(&l, f->c->all, f->partitions, "a", -1, 4);
    int died = 0;
    for (int i = 0; i < 300 && !died; i++) {   /* 15 s */
        okv_cluster_sleep_ms(50);
        died = okv_cluster_reap_dead(f->c) > 0;
    }
    if (!died) {
        okv_load_stop(&l);
        okv_cluster_dump_logs(f->c, 10);
        fail_msg("node %d did not reach its failpoint within 15 s", victim);
    }
    assert_true(log_contains(f->c->node[victim].log_path,
                             "failpoint raft.persist.after_sync: crashing"));
    okv_cluster_sleep_ms(500);   /* the others go on without it */
    okv_cluster_set_env(f->c, victim, NULL);
    assert_int_equal(okv_cluster_node_start(f->c, victim), 0);
    okv_cluster_sleep_ms(1000);
    okv_load_stop(&l);
    if (okv_cluster_wait_caught_up(f->c, victim, 15000) != 0)
        fail_msg("node %d did not catch up within 15 s of its restart", victim);
    verify_on_every_node(f, &l);
    assert_int_equal(okv_cluster_reap_dead(f->c), 0);
    okv_load_free(&l);
}

/* ---- b. a lossy network -------------------------------------------------------- */

static void test_failpoints__lossy_network_loses_no_acknowledged_write(void **state)
{
    fx *f = *state;
    start(f, "ORDERKV_FAILPOINTS=transport.drop.node1=20%;transport.drop.node2=20%;"
             "transport.drop.node3=20%");
    okv_load l;
    okv_load_start(&l, f->c->all, f->partitions, "b", -1, 3);
    okv_cluster_sleep_ms(3000);
    okv_load_stop(&l);
    printf("  b: %zu writes acknowledged with 20%% of Raft messages dropped\n",
           okv_load_count(&l, OKV_OK));
    /* Read back on a healthy network (thousands of reads through 20% loss
     * would take minutes): restart every node without the failpoint. */
    for (int id = 1; id <= NODES; id++) {
        assert_int_equal(okv_cluster_node_stop(f->c, id, 0), 0);
        okv_cluster_set_env(f->c, id, NULL);
    }
    for (int id = 1; id <= NODES; id++)
        assert_int_equal(okv_cluster_node_start(f->c, id), 0);
    if (okv_cluster_wait_leaders(f->c, 15000) != 0)
        fail_msg("no leaders after the restart");
    for (int id = 1; id <= NODES; id++)
        if (okv_cluster_wait_caught_up(f->c, id, 15000) != 0)
            fail_msg("node %d did not catch up within 15 s", id);
    verify_on_every_node(f, &l);
    assert_int_equal(okv_cluster_reap_dead(f->c), 0);
    okv_load_free(&l);
}

/* ---- c. a slow disk on one node ---------------------------------------------- */

static void test_failpoints__slow_fsync_on_one_node(void **state)
{
    fx *f = *state;
    start(f, NULL);
    assert_int_equal(okv_cluster_node_stop(f->c, 1, 0), 0);
    okv_cluster_set_env(f->c, 1, "ORDERKV_FAILPOINTS=raft.persist.before_sync=sleep(100)");
    assert_int_equal(okv_cluster_node_start(f->c, 1), 0);
    if (okv_cluster_wait_leaders(f->c, 15000) != 0)
        fail_msg("no leaders after restarting node 1 with a slow disk");
    okv_load l;
    okv_load_start(&l, f->c->all, f->partitions, "c", -1, 4);
    okv_cluster_sleep_ms(3000);
    okv_load_stop(&l);
    printf("  c: %zu writes acknowledged with node 1's syncs 100 ms slower\n",
           okv_load_count(&l, OKV_OK));
    if (okv_cluster_wait_caught_up(f->c, 1, 15000) != 0)
        fail_msg("node 1 did not catch up within 15 s");
    verify_on_every_node(f, &l);
    assert_int_equal(okv_cluster_reap_dead(f->c), 0);
    okv_load_free(&l);
}

/* ---- d/e. lost answers, retried with the same request id ----------------------- */

#define CAS_STEPS 30

/* CAS_STEPS increments of one counter by compare-and-set, one client alone.
 * Returns how many ended in OKV_ECONFLICT; asserts every other outcome is OK
 * and, when none conflicted, that the counter is CAS_STEPS. */
static int cas_chain(fx *f)
{
    const char *key = "fp-counter";
    int conflicts = 0;
    for (int i = 0; i < CAS_STEPS; i++) {
        okv_value *v = NULL;
        uint64_t version = 0;
        long n = 0;
        int rc = okv_get(f->cl, "orders", key, strlen(key), &v, 10000);
        if (rc == OKV_OK) {
            n = strtol(okv_value_data(v), NULL, 10);
            version = okv_value_version(v);
        } else if (rc != OKV_ENOTFOUND) {
            fail_msg("get: %s: %s", okv_strerror(rc), okv_errmsg(f->cl));
        }
        okv_value_free(v);
        char next[32];
        snprintf(next, sizeof next, "%ld", n + 1);
        rc = okv_put_if(f->cl, "orders", key, strlen(key), next, strlen(next), version, NULL,
                        10000);
        if (rc == OKV_ECONFLICT)
            conflicts++;
        else if (rc != OKV_OK)
            fail_msg("step %d: put_if: %s: %s", i, okv_strerror(rc), okv_errmsg(f->cl));
    }
    okv_value *v = NULL;
    assert_int_equal(okv_get(f->cl, "orders", key, strlen(key), &v, 10000), OKV_OK);
    long final = strtol(okv_value_data(v), NULL, 10);
    okv_value_free(v);
    printf("  counter after %d compare-and-set steps: %ld (%d conflicts)\n", CAS_STEPS, final,
           conflicts);
    if (conflicts == 0)
        assert_int_equal(final, CAS_STEPS);
    return conflicts;
}

static void test_failpoints__lost_answers_are_retried_exactly_once(void **state)
{
    fx *f = *state;
    start(f, "ORDERKV_FAILPOINTS=kv.reply.drop=40%");
    assert_int_equal(cas_chain(f), 0);
    assert_int_equal(okv_cluster_reap_dead(f->c), 0);
}

static void test_failpoints__without_dedup_retries_apply_twice(void **state)
{
    fx *f = *state;
    start(f, "ORDERKV_FAILPOINTS=kv.reply.drop=40%;fsm.dedup.skip=on");
    /* A retried write applied a second time fails its own version check:
     * the client reports a conflict for a write that did apply. */
    assert_true(cas_chain(f) > 0);
}

/* ---- f. crash between a snapshot's ingest and its final batch ----------------- */

static void test_failpoints__crash_mid_snapshot_install_is_finished_at_restart(void **state)
{
    fx *f = *state;
    start_with(f, NULL, "--raft-snapshot-entries 100 --raft-log-keep 20");
    const uint32_t p = 2;
    uint64_t leader = 0;
    for (int i = 0; i < 100 && !leader; i++) {
        leader = okv_cluster_leader(f->c, f->orders_id, p);
        if (!leader)
            okv_cluster_sleep_ms(50);
    }
    assert_true(leader > 0);
    int victim = (int)(leader % NODES) + 1;
    assert_int_equal(okv_cluster_node_stop(f->c, victim, 1), 128 + SIGKILL);
    /* Far more than snapshot-entries + log-keep while it is down. */
    okv_load l;
    okv_load_start(&l, f->c->all, f->partitions, "f", (int)p, 4);
    for (int i = 0; i < 400 && okv_load_count(&l, OKV_OK) < 600; i++)
        okv_cluster_sleep_ms(50);
    assert_true(okv_load_count(&l, OKV_OK) >= 600);
    /* Back, armed: it dies inside the install, after the ingest. (It may
     * die before its start is even confirmed; the log says which.) */
    okv_cluster_set_env(f->c, victim, "ORDERKV_FAILPOINTS=snap.install.after_ingest=crash");
    okv_cluster_node_start(f->c, victim);
    int died = 0;
    for (int i = 0; i < 400 && !died; i++) {   /* 20 s */
        okv_cluster_sleep_ms(50);
        died = okv_cluster_reap_dead(f->c) > 0 || f->c->node[victim].pid <= 0;
    }
    if (!died || !log_contains(f->c->node[victim].log_path,
                               "failpoint snap.install.after_ingest: crashing")) {
        okv_load_stop(&l);
        okv_cluster_dump_logs(f->c, 15);
        fail_msg("node %d did not crash in the middle of a snapshot install", victim);
    }
    okv_cluster_set_env(f->c, victim, NULL);
    assert_int_equal(okv_cluster_node_start(f->c, victim), 0);
    okv_cluster_sleep_ms(500);   /* writes go on while it catches up */
    okv_load_stop(&l);
    if (!log_contains(f->c->node[victim].log_path,
                      "finished a snapshot install a crash interrupted"))
        fail_msg("node %d did not finish the interrupted install at its restart", victim);
    if (okv_cluster_wait_caught_up(f->c, victim, 20000) != 0)
        fail_msg("node %d did not catch up within 20 s of its restart", victim);
    printf("  f: node %d crashed mid-install and finished it at restart; %zu writes\n", victim,
           okv_load_count(&l, OKV_OK));
    verify_on_every_node(f, &l);
    assert_int_equal(okv_cluster_reap_dead(f->c), 0);
    okv_load_free(&l);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_failpoints__crash_after_persist_before_apply),
        T(test_failpoints__lossy_network_loses_no_acknowledged_write),
        T(test_failpoints__slow_fsync_on_one_node),
        T(test_failpoints__lost_answers_are_retried_exactly_once),
        T(test_failpoints__without_dedup_retries_apply_twice),
        T(test_failpoints__crash_mid_snapshot_install_is_finished_at_restart),
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("OKV_TEST_FILTER"))   /* e.g. OKV_TEST_FILTER='*snapshot*' */
        cmocka_set_test_filter(getenv("OKV_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

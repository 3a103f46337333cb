/* The meta group and leader placement, on clusters of real orderkvd
 * processes on loopback:
 *
 * - the meta group (Raft group 0) is on every node of a 3-node cluster and
 *   its record (map, tables, epoch 1) is applied and checked everywhere;
 * - preferred leaders differ by at most one between nodes, on 3 and 5
 *   nodes, and leaders are spread that way again after a node returns;
 * - a node whose data dir was made with another partition count learns
 *   the cluster's record, says what differs and stops, while the rest of
 *   the cluster serves;
 * - so does a node started with another --raft-tick-ms or --read-mode than
 *   the cluster was created with (leader leases are safe only if every node
 *   times elections alike), and a node restarted with another tick is
 *   refused before it takes part in Raft;
 * - a client given one node's address learns every node from it, writes
 *   to every partition, and keeps working when that node dies;
 * - leaders serve reads under their lease (--read-mode lease, the default)
 *   and never with --read-mode read-index.
 *
 * Waits are bounded polls (a cluster settles at its own pace); nothing
 * asserts how fast. OKV_KEEP_CLUSTER_DIR=1 keeps the data dirs and logs. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "okv_cluster.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

#define TICK_MS 50
/* Bounds on waits, never expectations of speed: generous, since CI runs
 * these under ASan while other builds load every core. */
#define SETTLE_MS 60000
#define PUT_MS 30000

static int64_t now_ms(void) { return okv_cluster_now_ms(); }
static void sleep_ms(int ms) { okv_cluster_sleep_ms(ms); }

static int start(okv_cluster **c, int n)
{
    if (okv_cluster_start(c, orderkvd_path, n, TICK_MS) != 0 ||
        okv_cluster_wait_leaders(*c, SETTLE_MS) != 0) {
        okv_cluster_dump_logs(*c, 20);
        return -1;
    }
    return 0;
}

/* The meta state node id reports ("" if it did not answer). */
static void meta_of(okv_cluster *c, int id, char *state, size_t cap, uint64_t *epoch,
                    char *detail, size_t dcap)
{
    okv_status *s = NULL;
    state[0] = '\0';
    *epoch = 0;
    if (detail)
        detail[0] = '\0';
    if (okv_status_get_at(c->admin, c->addr[id], &s, 1000) != OKV_OK)
        return;
    const char *d = NULL;
    snprintf(state, cap, "%s", okv_status_meta(s, epoch, &d));
    if (detail)
        snprintf(detail, dcap, "%s", d ? d : "");
    okv_status_free(s);
}

static int wait_meta(okv_cluster *c, int id, const char *want, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    char st[32];
    uint64_t epoch;
    do {
        meta_of(c, id, st, sizeof st, &epoch, NULL, 0);
        if (strcmp(st, want) == 0)
            return 0;
        sleep_ms(50);
    } while (now_ms() < end);
    fprintf(stderr, "node %d: meta state '%s', wanted '%s'\n", id, st, want);
    return -1;
}

/* Leaders per node (index = node id) over every group, the meta group
 * included; returns max - min over live nodes, or -1 if a node did not
 * answer or some group it holds has no leader it knows of. */
static int leader_spread(okv_cluster *c, int *count)
{
    okv_cluster_replica r[OKV_CLUSTER_MAX_GROUPS];
    int lo = 1 << 30, hi = 0;
    for (int id = 1; id <= c->n; id++) {
        count[id] = 0;
        if (c->node[id].pid <= 0)
            continue;
        int k = okv_cluster_replicas(c, id, r, 1000);
        if (k < 0)
            return -1;
        for (int i = 0; i < k; i++) {
            if (!r[i].leader)
                return -1;
            if (strcmp(r[i].role, "leader") == 0)
                count[id]++;
        }
    }
    for (int id = 1; id <= c->n; id++) {
        if (c->node[id].pid <= 0)
            continue;
        lo = count[id] < lo ? count[id] : lo;
        hi = count[id] > hi ? count[id] : hi;
    }
    return hi - lo;
}

static int wait_spread_within_one(okv_cluster *c, int timeout_ms)
{
    int count[OKV_CLUSTER_MAX_NODES + 1];
    int64_t end = now_ms() + timeout_ms;
    int spread;
    do {
        spread = leader_spread(c, count);
        if (spread >= 0 && spread <= 1)
            return 0;
        sleep_ms(100);
    } while (now_ms() < end);
    fprintf(stderr, "leaders per node:");
    for (int id = 1; id <= c->n; id++)
        fprintf(stderr, " %d:%d", id, count[id]);
    fprintf(stderr, " (spread %d)\n", spread);
    return -1;
}

/* Replicas of the meta group (table id 0) that node id reports. */
static int meta_replicas_on(okv_cluster *c, int id)
{
    okv_cluster_replica r[OKV_CLUSTER_MAX_GROUPS];
    int k = okv_cluster_replicas(c, id, r, 1000), n = 0;
    for (int i = 0; i < k; i++)
        n += r[i].table_id == 0 && r[i].partition == 0;
    return n;
}

static void meta_group_records_the_cluster(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = start(cp, 3);
    okv_cluster *c = *cp;
    assert_int_equal(started, 0);
    for (int id = 1; id <= 3; id++) {
        assert_int_equal(wait_meta(c, id, "ok", SETTLE_MS), 0);
        char st[32];
        uint64_t epoch;
        meta_of(c, id, st, sizeof st, &epoch, NULL, 0);
        assert_int_equal(epoch, 1);
        assert_int_equal(meta_replicas_on(c, id), 1);
    }
    uint64_t leader = 0;
    int64_t end = now_ms() + SETTLE_MS;
    while (!(leader = okv_cluster_leader(c, 0, 0)) && now_ms() < end)
        sleep_ms(50);
    assert_true(leader >= 1 && leader <= 3);

    /* The record survives a restart of the whole cluster and is checked again. */
    for (int id = 1; id <= 3; id++)
        assert_int_equal(okv_cluster_node_stop(c, id, 0), 0);
    for (int id = 1; id <= 3; id++)
        assert_int_equal(okv_cluster_node_start(c, id), 0);
    for (int id = 1; id <= 3; id++)
        assert_int_equal(wait_meta(c, id, "ok", SETTLE_MS), 0);
}

static void leaders_spread_within_one_and_again_after_a_node_returns(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = start(cp, 3);
    okv_cluster *c = *cp;
    assert_int_equal(started, 0);
    assert_int_equal(wait_spread_within_one(c, SETTLE_MS), 0);

    /* Node 2 dies: the others take its partitions over. */
    assert_true(okv_cluster_node_stop(c, 2, 1) >= 0);
    assert_int_equal(okv_cluster_wait_leaders(c, SETTLE_MS), 0);
    int count[OKV_CLUSTER_MAX_NODES + 1];
    assert_true(leader_spread(c, count) >= 0);
    assert_int_equal(count[2], 0);

    /* It returns: leadership is handed back until the spread is even again. */
    assert_int_equal(okv_cluster_node_start(c, 2), 0);
    assert_int_equal(okv_cluster_wait_caught_up(c, 2, SETTLE_MS), 0);
    assert_int_equal(wait_spread_within_one(c, SETTLE_MS), 0);
    assert_true(leader_spread(c, count) >= 0);
    assert_true(count[2] >= 8);
}

static void five_nodes_spread_within_one(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = start(cp, 5);
    okv_cluster *c = *cp;
    assert_int_equal(started, 0);
    assert_int_equal(wait_spread_within_one(c, SETTLE_MS), 0);
    for (int id = 1; id <= 5; id++) {
        assert_int_equal(meta_replicas_on(c, id), 1);
        assert_int_equal(wait_meta(c, id, "ok", SETTLE_MS), 0);
    }
}

/* The cluster made again from fresh data dirs with nodes 1 and 2 only; 0
 * once both have checked the cluster's record (so it is written, with
 * their settings, before node 3 ever starts). */
static int refound_without_node3(okv_cluster *c)
{
    for (int id = 1; id <= 3; id++) {
        if (c->node[id].pid > 0 && okv_cluster_node_stop(c, id, 0) != 0)
            return -1;
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->data[id]);
        if (system(cmd) != 0)
            return -1;
    }
    if (okv_cluster_node_start(c, 1) != 0 || okv_cluster_node_start(c, 2) != 0 ||
        wait_meta(c, 1, "ok", SETTLE_MS) != 0 || wait_meta(c, 2, "ok", SETTLE_MS) != 0) {
        okv_cluster_dump_logs(c, 20);
        return -1;
    }
    return 0;
}

/* 20 puts through nodes 1 and 2 (a majority of every group); 0 if all
 * succeeded. Every group is first given time to elect a leader among them
 * (after a node stopped or returned, elections and leadership hand-backs
 * take as long as the machine's load makes them). */
static int nodes_1_and_2_serve(okv_cluster *c, const char *prefix)
{
    if (okv_cluster_wait_leaders(c, SETTLE_MS) != 0) {
        fprintf(stderr, "%s: some group of nodes 1 and 2 has no leader\n", prefix);
        okv_cluster_dump_logs(c, 20);
        return -1;
    }
    char two[160];
    snprintf(two, sizeof two, "%s,%s", c->addr[1], c->addr[2]);
    okv_client *cl;
    if (okv_connect(&cl, two, NULL) != OKV_OK)
        return -1;
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++) {
        char key[32];
        int kl = snprintf(key, sizeof key, "%s%d", prefix, i);
        int prc = okv_put(cl, "orders", key, (size_t)kl, "v", 1, NULL, PUT_MS);
        if (prc != OKV_OK) {
            fprintf(stderr, "put %s through nodes 1 and 2: %s: %s\n", key, okv_strerror(prc),
                    okv_errmsg(cl));
            rc = -1;
        }
    }
    okv_close(cl);
    return rc;
}

static void node_with_other_partition_count_stops(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = start(cp, 3);
    okv_cluster *c = *cp;
    assert_int_equal(started, 0);

    /* The same cluster made again from fresh data dirs, but node 3 is
     * started with 4 partitions per table instead of everyone else's 8 (a
     * wiped node rejoining under its old id would be unsafe for Raft
     * anyway; a fresh cluster is the mistake an operator can make). It
     * starts once nodes 1 and 2 have written the cluster's record: started
     * with them, it could win the meta group's first election and write
     * its own, and nodes 1 and 2 would be the ones to stop. */
    assert_int_equal(refound_without_node3(c), 0);
    const char *saved[7];
    memcpy(saved, c->flag, sizeof saved);
    c->flag[0] = "--partitions";
    c->flag[1] = "4";
    c->flag[2] = NULL;
    int rc = okv_cluster_node_start(c, 3);
    memcpy(c->flag, saved, sizeof saved);
    assert_int_equal(rc, 0);
    /* Node 3 learns the record, says what differs and stops (status 1). */
    int64_t end = now_ms() + SETTLE_MS;
    int died = 0;
    while (!(died = okv_cluster_reap_dead(c)) && now_ms() < end)
        sleep_ms(100);
    assert_int_equal(died, 1);
    assert_true(c->node[3].pid <= 0);
    static char log[1 << 20];
    FILE *lf = fopen(c->node[3].log_path, "r");
    assert_non_null(lf);
    size_t got = fread(log, 1, sizeof log - 1, lf);
    fclose(lf);
    log[got] = '\0';
    assert_non_null(strstr(log, "orders=1:4"));
    assert_non_null(strstr(log, "orders=1:8"));
    assert_non_null(strstr(log, "exit status 1"));

    /* Nodes 1 and 2 still form a majority of every group and serve. */
    assert_int_equal(nodes_1_and_2_serve(c, "m"), 0);
}

/* Size of a log file now (0 if it does not exist): what a later
 * log_has_since looks at starts there. */
static long log_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* 1 if the log at path holds needle after byte `from`. */
static int log_has_since(const char *path, long from, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t got = 0;
    if (buf && fseek(f, from, SEEK_SET) == 0)
        got = fread(buf, 1, cap - 1, f);
    fclose(f);
    if (!buf)
        return 0;
    buf[got] = '\0';
    int found = strstr(buf, needle) != NULL;
    if (!found)
        fprintf(stderr, "not in %s: '%s'\n", path, needle);
    free(buf);
    return found;
}

/* Starts node id with the cluster's flags plus `flag value` (a later flag
 * wins, so this overrides the cluster's --raft-tick-ms) and waits for it to
 * exit on its own. Returns its exit status, or -1 if it did not start or
 * still ran after timeout_ms (it is then killed). The process is not the
 * harness's: node[id].pid stays 0. Its output goes to node id's log. */
static int run_until_exit(okv_cluster *c, int id, const char *flag, const char *value,
                          int timeout_ms)
{
    char tick[16], node_id[16], log_path[4300];
    snprintf(tick, sizeof tick, "%d", c->tick_ms);
    snprintf(node_id, sizeof node_id, "%d", id);
    snprintf(log_path, sizeof log_path, "%s.log", c->data[id]);
    const char *bin = getenv("ORDERKVD");
    if (!bin || !bin[0])
        bin = c->orderkvd;
    const char *argv[] = { bin, "--data-dir", c->data[id], "--listen", c->addr[id],
                           "--node-id", node_id, "--initial-cluster", c->spec,
                           "--raft-tick-ms", tick, flag, value, NULL };
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {   /* the child of a threaded test: only exec */
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int64_t end = now_ms() + timeout_ms;
    int status = 0;
    do {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        sleep_ms(50);
    } while (now_ms() < end);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fprintf(stderr, "node %d (%s %s) still ran after %d ms; killed it\n", id, flag, value,
            timeout_ms);
    return -1;
}

/* Issue 10, item 8: a leader's lease lasts 0.9 x (election ticks - 1) x
 * its tick and is safe only because every follower waits a full election
 * timeout of its own ticks before voting. A node with another tick breaks
 * that silently, so the cluster's record holds the timing and a node that
 * differs stops. */
static void node_with_other_tick_stops(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = start(cp, 3);
    okv_cluster *c = *cp;
    assert_int_equal(started, 0);
    assert_int_equal(refound_without_node3(c), 0);

    /* A fresh node 3 with --raft-tick-ms 70 instead of 50 learns the
     * record, names both values and stops with status 1. */
    long from = log_size(c->node[3].log_path);
    assert_int_equal(run_until_exit(c, 3, "--raft-tick-ms", "70", SETTLE_MS), 1);
    assert_true(log_has_since(c->node[3].log_path, from,
                              "--raft-tick-ms is 70 here but 50 in the cluster's record"));
    assert_true(
        log_has_since(c->node[3].log_path, from, "restart this node with --raft-tick-ms 50"));
    assert_int_equal(nodes_1_and_2_serve(c, "tick"), 0);
    assert_int_equal(wait_meta(c, 1, "ok", SETTLE_MS), 0);
    assert_int_equal(wait_meta(c, 2, "ok", SETTLE_MS), 0);

    /* Node 1 restarted with the other tick is refused at once: the record
     * is on its disk, and it must not vote with the wrong timing even
     * briefly. With the cluster's tick it serves again. */
    assert_int_equal(okv_cluster_node_stop(c, 1, 0), 0);
    from = log_size(c->node[1].log_path);
    assert_int_equal(run_until_exit(c, 1, "--raft-tick-ms", "70", SETTLE_MS), 1);
    assert_true(log_has_since(c->node[1].log_path, from,
                              "--raft-tick-ms is 70 here but 50 in the cluster's record"));
    assert_int_equal(okv_cluster_node_start(c, 1), 0);
    assert_int_equal(wait_meta(c, 1, "ok", SETTLE_MS), 0);
    assert_int_equal(nodes_1_and_2_serve(c, "back"), 0);
}

/* The same for the read mode: a read-index node does not keep quiet after
 * a restart (raftstore boot_quiet), so it can vote a second leader in
 * while a lease of the first still runs. */
static void node_with_other_read_mode_stops(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = start(cp, 3);
    okv_cluster *c = *cp;
    assert_int_equal(started, 0);
    assert_int_equal(refound_without_node3(c), 0);

    long from = log_size(c->node[3].log_path);
    assert_int_equal(run_until_exit(c, 3, "--read-mode", "read-index", SETTLE_MS), 1);
    assert_true(log_has_since(c->node[3].log_path, from,
                              "--read-mode is read-index here but lease in the cluster's record"));
    assert_true(
        log_has_since(c->node[3].log_path, from, "restart this node with --read-mode lease"));
    assert_int_equal(nodes_1_and_2_serve(c, "mode"), 0);
    assert_int_equal(wait_meta(c, 1, "ok", SETTLE_MS), 0);
    assert_int_equal(wait_meta(c, 2, "ok", SETTLE_MS), 0);
}

static void client_given_one_address_learns_every_node(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = start(cp, 3);
    okv_cluster *c = *cp;
    assert_int_equal(started, 0);
    okv_client *cl;
    assert_int_equal(okv_connect(&cl, c->addr[1], NULL), OKV_OK);
    /* 64 keys cover all 8 partitions of orders, two thirds of them led by
     * nodes 2 and 3, which the client was never told about. */
    for (int i = 0; i < 64; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "one%d", i);
        assert_int_equal(okv_put(cl, "orders", key, (size_t)kl, key, (size_t)kl, NULL, 10000),
                         OKV_OK);
    }
    /* The only address it was given dies; the nodes it learned serve. */
    assert_true(okv_cluster_node_stop(c, 1, 1) >= 0);
    for (int i = 0; i < 64; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "one%d", i);
        okv_value *v = NULL;
        assert_int_equal(okv_get(cl, "orders", key, (size_t)kl, &v, 15000), OKV_OK);
        assert_int_equal(okv_value_len(v), (size_t)kl);
        assert_memory_equal(okv_value_data(v), key, (size_t)kl);
        okv_value_free(v);
        assert_int_equal(okv_put(cl, "orders", key, (size_t)kl, "x", 1, NULL, 15000), OKV_OK);
    }
    okv_close(cl);
}

/* Sum of a counter over the live nodes. */
static uint64_t counter_sum(okv_cluster *c, const char *name)
{
    uint64_t sum = 0;
    for (int id = 1; id <= c->n; id++) {
        okv_status *s = NULL;
        if (c->node[id].pid > 0 && okv_status_get_at(c->admin, c->addr[id], &s, 2000) == OKV_OK) {
            sum += okv_status_counter(s, name);
            okv_status_free(s);
        }
    }
    return sum;
}

/* Writes then reads 40 keys; returns how many reads were served under a
 * lease (0 when any call failed). */
static uint64_t read_some(okv_cluster *c)
{
    okv_client *cl;
    if (okv_connect(&cl, c->all, NULL) != OKV_OK)
        return 0;
    uint64_t before = counter_sum(c, "lease_reads"), reads_before = counter_sum(c, "reads");
    int ok = 1;
    for (int i = 0; i < 40 && ok; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "lease%d", i);
        ok = okv_put(cl, "orders", key, (size_t)kl, key, (size_t)kl, NULL, 10000) == OKV_OK;
        okv_value *v = NULL;
        ok = ok && okv_get(cl, "orders", key, (size_t)kl, &v, 10000) == OKV_OK &&
             okv_value_len(v) == (size_t)kl && memcmp(okv_value_data(v), key, (size_t)kl) == 0;
        okv_value_free(v);
    }
    okv_close(cl);
    assert_true(ok);
    assert_true(counter_sum(c, "reads") >= reads_before + 40);
    return counter_sum(c, "lease_reads") - before;
}

static void leaders_read_under_lease_unless_read_index_mode(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = start(cp, 3);
    okv_cluster *c = *cp;
    assert_int_equal(started, 0);
    /* The first read of a partition renews its lease through ReadIndex;
     * most later ones use it. */
    assert_true(read_some(c) > 0);

    /* The read mode is part of the cluster's record (a node with another
     * one stops): read-index mode is a cluster made so from fresh dirs. */
    for (int id = 1; id <= 3; id++) {
        assert_int_equal(okv_cluster_node_stop(c, id, 0), 0);
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->data[id]);
        assert_int_equal(system(cmd), 0);
    }
    const char *saved[7];
    memcpy(saved, c->flag, sizeof saved);
    c->flag[0] = "--read-mode";
    c->flag[1] = "read-index";
    c->flag[2] = NULL;
    int rc = 0;
    for (int id = 1; id <= 3 && rc == 0; id++)
        rc = okv_cluster_node_start(c, id);
    memcpy(c->flag, saved, sizeof saved);
    assert_int_equal(rc, 0);
    assert_int_equal(okv_cluster_wait_leaders(c, SETTLE_MS), 0);
    assert_int_equal(read_some(c), 0);
}

/* Runs after a failed assertion too: every node started is killed. */
static int teardown(void **state)
{
    okv_cluster_free(*state);
    *state = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(meta_group_records_the_cluster, teardown),
        cmocka_unit_test_teardown(leaders_spread_within_one_and_again_after_a_node_returns, teardown),
        cmocka_unit_test_teardown(five_nodes_spread_within_one, teardown),
        cmocka_unit_test_teardown(node_with_other_partition_count_stops, teardown),
        cmocka_unit_test_teardown(node_with_other_tick_stops, teardown),
        cmocka_unit_test_teardown(node_with_other_read_mode_stops, teardown),
        cmocka_unit_test_teardown(client_given_one_address_learns_every_node, teardown),
        cmocka_unit_test_teardown(leaders_read_under_lease_unless_read_index_mode, teardown),
    };
    if (getenv("OKV_TEST_FILTER"))   /* e.g. OKV_TEST_FILTER='*tick*' */
        cmocka_set_test_filter(getenv("OKV_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The audit log on a 3-node cluster of real orderkvd processes (issue 14,
 * part 3; docs/operations.md "Audit log"):
 *
 * - every node opens DATA/audit.log (started with --audit-max-bytes and
 *   --audit-keep, so the flags are accepted);
 * - a leader transfer through liborderkv is recorded, with result "ok",
 *   who "anonymous" and the client's loopback address, in the log of the
 *   node that led the partition, and read back with okv_audit_tail;
 * - a refused transfer (to a node outside the map) is recorded with its
 *   error;
 * - every line any node returns parses as JSON (Python's json module);
 * - every node then stops cleanly (exit status 0) with its log open.
 *
 * No assertion depends on which node leads or on timing: the records are
 * looked for on every node. OKV_KEEP_CLUSTER_DIR=1 keeps the data dirs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "okv_cluster.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

#define NODES 3
#define TICK_MS 50
#define CALL_MS 10000

static uint32_t orders_table_id(okv_client *cl)
{
    okv_status *s = NULL;
    assert_int_equal(okv_status_get(cl, &s, CALL_MS), OKV_OK);
    uint32_t id = 0;
    for (size_t i = 0; i < okv_status_table_count(s); i++)
        if (strcmp(okv_status_table_name(s, i), "orders") == 0)
            id = okv_status_table_id(s, i);
    okv_status_free(s);
    assert_true(id != 0);
    return id;
}

/* Every node's audit lines that contain `needle` and `result`, counted;
 * every line read is also written to `all` (one per line). */
static int count_records(okv_cluster *c, okv_client *cl, const char *needle, const char *result,
                         FILE *all)
{
    int n = 0;
    for (int id = 1; id <= NODES; id++) {
        okv_audit_lines *l = NULL;
        int rc = okv_audit_tail(cl, c->addr[id], 1000, &l, CALL_MS);
        if (rc != OKV_OK)
            fprintf(stderr, "audit tail of node %d: %s: %s\n", id, okv_strerror(rc),
                    okv_errmsg(cl));
        assert_int_equal(rc, OKV_OK);
        assert_string_equal(okv_audit_lines_address(l), c->addr[id]);
        for (size_t i = 0; i < okv_audit_lines_count(l); i++) {
            const char *line = okv_audit_lines_at(l, i);
            assert_null(strchr(line, '\n'));
            if (all)
                fprintf(all, "%s\n", line);
            if (strstr(line, needle) && strstr(line, result)) {
                if (!all)
                    fprintf(stderr, "node %d: %s\n", id, line);
                n++;
            }
        }
        assert_null(okv_audit_lines_at(l, okv_audit_lines_count(l)));
        okv_audit_lines_free(l);
    }
    return n;
}

static void transfers_are_recorded_and_read_back(void **state)
{
    okv_cluster **cp = (okv_cluster **)state;
    int started = okv_cluster_start_ex(cp, orderkvd_path, NODES, TICK_MS, NULL,
                                       "--audit-max-bytes 65536 --audit-keep 2");
    okv_cluster *c = *cp;
    if (started == 0)
        started = okv_cluster_wait_leaders(c, 15000);
    if (started != 0)
        okv_cluster_dump_logs(c, 20);
    assert_int_equal(started, 0);
    for (int id = 1; id <= NODES; id++) {
        char path[4300];
        struct stat st;
        snprintf(path, sizeof path, "%s/audit.log", c->data[id]);
        assert_int_equal(stat(path, &st), 0);
    }

    okv_client *cl = NULL;
    assert_int_equal(okv_connect(&cl, c->all, NULL), OKV_OK);
    uint32_t orders = orders_table_id(cl);
    uint64_t leader = 0;
    for (int i = 0; i < 100 && !leader; i++) {
        leader = okv_cluster_leader(c, orders, 0);
        if (!leader)
            okv_cluster_sleep_ms(50);
    }
    assert_true(leader != 0);
    uint64_t to = leader % NODES + 1;
    int rc = okv_transfer_leader(cl, "orders", 0, to, CALL_MS);
    if (rc != OKV_OK)
        fprintf(stderr, "transfer-leader: %s: %s\n", okv_strerror(rc), okv_errmsg(cl));
    assert_int_equal(rc, OKV_OK);

    /* Recorded where it was done, with result ok; a node the client asked
     * first may also have recorded its "not leader" answer. */
    char what[128];
    snprintf(what, sizeof what, "\"what\":\"transfer-leader table=orders partition=0 to=%llu\"",
             (unsigned long long)to);
    int others = count_records(c, cl, what, "\"result\":\"", NULL);
    int not_leader = count_records(c, cl, what, "\"result\":\"error: not leader: ", NULL);
    int ok = count_records(c, cl, what, "\"result\":\"ok\"", NULL);
    assert_true(ok >= 1);
    assert_int_equal(others, ok + not_leader);   /* nothing else happened to it */
    /* Who and from: "anonymous" (this cluster runs with --auth off, so no
     * call names a user) and this process's loopback connection as gRPC
     * saw it. cluster.auth checks named users in the log. */
    assert_int_equal(count_records(c, cl, what, "\"who\":\"anonymous\",\"from\":\"ipv4:127.0.0.1:",
                                   NULL),
                     others);

    /* A refused transfer is recorded with its error. */
    rc = okv_transfer_leader(cl, "orders", 0, 9, CALL_MS);
    assert_int_equal(rc, OKV_EINVAL);
    assert_true(count_records(c, cl, "\"what\":\"transfer-leader table=orders partition=0 to=9\"",
                              "\"result\":\"error: invalid argument: that node holds no replica "
                              "of the partition\"",
                              NULL) >= 1);

    /* No address: the client's first node. */
    okv_audit_lines *l = NULL;
    assert_int_equal(okv_audit_tail(cl, NULL, 0, &l, CALL_MS), OKV_OK);
    assert_string_equal(okv_audit_lines_address(l), c->addr[1]);
    okv_audit_lines_free(l);

    /* Every line of every node is JSON with the five fields. */
    char lines_path[4300];
    snprintf(lines_path, sizeof lines_path, "%s/audit-lines.json", c->dir);
    FILE *all = fopen(lines_path, "w");
    assert_non_null(all);
    count_records(c, cl, "", "", all);
    fclose(all);
    char cmd[4600];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import json, sys\n"
             "recs = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]\n"
             "assert recs and all(list(r) == ['time', 'who', 'from', 'what', 'result'] "
             "for r in recs), recs\" '%s'",
             lines_path);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    okv_close(cl);

    /* A clean stop with the log open. */
    for (int id = 1; id <= NODES; id++)
        assert_int_equal(okv_cluster_node_stop(c, id, 0), 0);
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
        cmocka_unit_test_teardown(transfers_are_recorded_and_read_back, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

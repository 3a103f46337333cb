/* Two-phase commit when the node driving a transaction crashes at each of
 * its steps (failpoints tpc.driver.*, common/failpoint.h; this test exists
 * only in builds with -DORDERKV_FAILPOINTS=ON). A 3-node cluster runs with
 * --txn-timeout-ms 1500, so the sweepers settle what a crash left within
 * seconds.
 *
 * Each case moves 10 from account A to account B, keys of table accounts
 * in two partitions; A is the first write, so A's partition coordinates.
 * The driver is node X, the leader of A's partition: X is restarted with
 * ORDERKV_FAILPOINTS=<failpoint>=crash (leadership returns to it, or is
 * handed to it), and the transfer is sent to X alone (a client that talks
 * to X only, so no resend reaches another node). X dies at the failpoint;
 * it is started again without it.
 *
 *  a. before_decide: every PREPARE answered, no DECIDE. The client hears
 *     an error; the sweepers abort it at its deadline: A and B keep their
 *     balances, okv_txn_status says aborted, and a new transfer on the
 *     same keys commits.
 *  b. before_reply: decided COMMIT, the client not told. The client hears
 *     an error, yet the transfer committed: both balances moved, through
 *     every node, and okv_txn_status says committed.
 *  c. before_resolve: the client was answered OK, B's partition is still
 *     PREPARED. A read of B right away returns the new balance (the read
 *     meets the lock and asks the coordinator, which resolves it), and
 *     later nothing is left locked (a new transfer commits).
 *  d. a participant restarts while the transaction is PREPARED: X crashes
 *     before_decide, then the leader of B's partition (or another node than
 *     X) is killed -9 and started again; the outcome is all or nothing
 *     (here nothing: only the dead driver could have decided COMMIT).
 *  e. the same with before_resolve: decided COMMIT, B's partition still
 *     PREPARED while its leader restarts; B's share applies afterwards.
 *  f. before_decide, sent through a client of every node: it resends the
 *     call (same request id) to another node, whose driver carries on with
 *     the same records; the answer it gets must be the truth (the balances
 *     and okv_txn_status agree with it).
 *  h. delay_vote (no crash): the coordinator's vote goes out past the
 *     deadline and the sweepers' grace. The sweeper aborted it first, so
 *     the late vote is turned down: the client hears "aborted" (CONFLICT),
 *     nothing moved, the status says aborted. Deadline ABORT, then COMMIT.
 *  i. delay_resolve (no crash): committed and answered, the driver's
 *     RESOLVE held past the deadline. The coordinator's sweeper, finding C
 *     COMMITTED and unfinished, resends RESOLVE (usually first, about a
 *     second on), or B's sweeper asks the coordinator (CHECK with abort),
 *     which answers COMMITTED; either way the commit stands everywhere.
 *     COMMIT, then the deadline's ABORT attempt.
 *  g. after_first_resolve, a transfer from A to B and C (three partitions):
 *     the client was answered OK and one participant's RESOLVE applied when
 *     X dies, the other's perhaps not. Reads of B and C right away see the
 *     new balances; once X is back the sweeper finishes the record; every
 *     node agrees, and a new transfer over the three keys commits.
 *
 * Cases j-o reach further than the driver's steps. In each, whatever the
 * client heard, the outcome is all or nothing, okv_txn_status agrees with
 * it, and afterwards a new transfer on the same keys commits (no lock
 * left behind).
 *  j. status after the records are forgotten: every node runs with
 *     tpc.retain.short (C kept 2 s, P 1 s after settling). One transfer
 *     commits, one fails its floor; their status answers the outcome and
 *     then, once FORGET applied, OKV_ENOTFOUND — never "aborted" for the
 *     commit (a settling query must not take a forgotten record for one
 *     never decided), and asking again settles nothing.
 *  k. B's partition's leader Y (not X) dies applying B's PREPARE
 *     (tpc.apply.before_prepare): the entry is committed, Y's answer never
 *     comes; the next leader applies it and the driver decides either way.
 *  l. the coordinator's leader X dies with its decision (the vote, or
 *     DECIDE) proposed (tpc.local.after_propose_decision: usually truncated,
 *     so the transfer aborts) or committed but not applied there
 *     (tpc.apply.before_decision: the next leader applies it; it commits
 *     unless the vote came past its deadline).
 *  m. a snapshot while PREPARED: a follower Y of B's partition is stopped;
 *     X crashes before_decide (no C, B PREPARED, nothing settles it before
 *     the 12 s deadline of this case's cluster); X back, 100 writes to B's
 *     partition make its leader snapshot and compact (--raft-snapshot-
 *     entries 64, --raft-log-keep 8); Y comes back through a snapshot and
 *     is made B's leader. Before the deadline a one-partition check of B
 *     still meets the lock (it travelled in the snapshot); past it the
 *     sweeper resolves from the P record and the lock goes.
 *  n. read-only validation racing RESOLVE (delay_resolve on X): an
 *     interactive read-only transaction reads one key before a committed
 *     transfer and the other after, while B's RESOLVE is held: it must
 *     fail with OKV_ECONFLICT (a committed pair is the transfer's balances
 *     exactly; here it would be torn). Then one reading both after it.
 *     Four rounds, alternating which key is read first.
 *  o. a late call after its settled status was forgotten: the driver,
 *     node X that does not lead A's partition, holds the call 6 s before
 *     starting (tpc.driver.before_start=sleep(6000), with tpc.retain.short
 *     everywhere). The client gives up at 1.5 s and settles the status
 *     ("aborted", final); the tombstone is forgotten; then the driver
 *     starts with a fresh deadline. Its vote must be turned down (the
 *     client's forgotten horizon covers its id): the balances agree with
 *     the first status.
 *
 * Waits are bounded (60 s). OKV_KEEP_CLUSTER_DIR=1 keeps the data dirs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keycodec.h"
#include "okv_cluster.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

#define NODES 3
#define TICK_MS 50
#define BOUND_MS 60000
#define TXN_TIMEOUT_FLAGS "--txn-timeout-ms 1500"
#define CALL_MS 4000        /* the crashing call's deadline */
#define INIT 100
#define AMT 10

static const char *TABLE = "accounts";

static int64_t now_ms(void) { return okv_cluster_now_ms(); }
static void sleep_ms(int ms) { okv_cluster_sleep_ms(ms); }

typedef struct fx {
    okv_cluster *c;
    okv_client *cl;          /* on every node's address */
    uint32_t table_id, partitions;
    char a[32], b[32];       /* A: coordinator partition; B: another */
    char c3[32];             /* C: a third partition (case g) */
    uint32_t pa, pb, pc;
    int three;               /* transfers move from A to B and C */
    uint64_t cid;            /* client id of the crashing call */
} fx;

static int teardown(void **state);

static int setup_failed(void **state, const char *why)
{
    fx *f = *state;
    fprintf(stderr, "setup: %s\n", why);
    okv_cluster_dump_logs(f->c, 15);
    teardown(state);
    *state = NULL;
    return -1;
}

static uint32_t part_of(const fx *f, const char *key)
{
    return keycodec_partition_of(key, strlen(key), f->partitions);
}

/* A cluster whose every node runs with env (NULL: none) and flags. */
static int setup_with(void **state, const char *env, const char *flags)
{
    fx *f = calloc(1, sizeof *f);
    *state = f;
    if (!f)
        return -1;
    if (okv_cluster_start_ex(&f->c, orderkvd_path, NODES, TICK_MS, env, flags) != 0)
        return setup_failed(state, "the cluster did not start");
    if (okv_cluster_wait_leaders(f->c, BOUND_MS) != 0)
        return setup_failed(state, "not every partition elected a leader");
    if (okv_connect(&f->cl, f->c->all, NULL) != OKV_OK)
        return setup_failed(state, "okv_connect failed");
    okv_status *s;
    if (okv_status_get(f->cl, &s, 5000) != OKV_OK)
        return setup_failed(state, "status failed");
    for (size_t i = 0; i < okv_status_table_count(s); i++)
        if (strcmp(okv_status_table_name(s, i), TABLE) == 0) {
            f->table_id = okv_status_table_id(s, i);
            f->partitions = okv_status_table_partitions(s, i);
        }
    okv_status_free(s);
    if (f->partitions < 2)
        return setup_failed(state, "no table 'accounts' with 2+ partitions");
    snprintf(f->a, sizeof f->a, "a1");
    for (unsigned i = 7;; i++) {
        snprintf(f->b, sizeof f->b, "b%u", i);
        if (part_of(f, f->b) != part_of(f, f->a))
            break;
    }
    f->pa = part_of(f, f->a);
    f->pb = part_of(f, f->b);
    for (unsigned i = 11; f->partitions >= 3; i++) {
        snprintf(f->c3, sizeof f->c3, "c%u", i);
        f->pc = part_of(f, f->c3);
        if (f->pc != f->pa && f->pc != f->pb)
            break;
    }
    f->cid = ((uint64_t)getpid() << 32) ^ (uint64_t)now_ms() ^ 0x5eed0000u;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL, TXN_TIMEOUT_FLAGS);
}

/* Case j: every node forgets settled records within seconds. */
static int setup_retain(void **state)
{
    return setup_with(state, "ORDERKV_FAILPOINTS=tpc.retain.short=on", TXN_TIMEOUT_FLAGS);
}

/* Case m: a long deadline (the transfer stays PREPARED while a snapshot
 * is made and sent), and a snapshot every 64 entries keeping 8. */
#define SNAP_TXN_TIMEOUT_MS 12000
static int setup_snap(void **state)
{
    return setup_with(state, NULL, "--txn-timeout-ms 12000 --raft-snapshot-entries 64 "
                                   "--raft-log-keep 8");
}

/* A node that died on its own (not at the failpoint the case set) fails
 * the test; reap_crash collects the expected one first. */
static int teardown(void **state)
{
    fx *f = *state;
    if (!f)
        return 0;
    int rc = 0;
    if (okv_cluster_reap_dead(f->c) > 0) {
        fprintf(stderr, "a node died during the test\n");
        okv_cluster_dump_logs(f->c, 20);
        rc = -1;
    }
    okv_close(f->cl);
    okv_cluster_free(f->c);
    free(f);
    return rc;
}

/* ---- helpers --------------------------------------------------------------- */

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

static int transient(int rc)
{
    return rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT || rc == OKV_ENOTLEADER ||
           rc == OKV_EUNKNOWN;
}

static int ambiguous(int rc)
{
    return rc == OKV_EUNKNOWN || rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT;
}

static int64_t get_counter(okv_client *cl, const char *key, const char *via)
{
    int64_t end = now_ms() + BOUND_MS;
    for (;;) {
        okv_value *val = NULL;
        int rc = okv_get(cl, TABLE, key, strlen(key), &val, 10000);
        if (rc == OKV_OK) {
            int64_t v = 0;
            int drc = okv_counter_decode(okv_value_data(val), okv_value_len(val), &v);
            okv_value_free(val);
            if (drc != OKV_OK)
                fail_msg("%s: %s is not a counter", via, key);
            return v;
        }
        if (!transient(rc) || now_ms() > end)
            fail_msg("%s: get %s: %s: %s", via, key, okv_strerror(rc), okv_errmsg(cl));
        sleep_ms(100);
    }
}

static void put_counter(fx *f, const char *key, int64_t v)
{
    uint8_t b[8];
    okv_counter_encode(v, b);
    int64_t end = now_ms() + BOUND_MS;
    int rc;
    while ((rc = okv_put(f->cl, TABLE, key, strlen(key), b, 8, NULL, 10000)) != OKV_OK) {
        if (!transient(rc) || now_ms() > end)
            fail_msg("put %s: %s: %s", key, okv_strerror(rc), okv_errmsg(f->cl));
        sleep_ms(100);
    }
}

static okv_txn_req *transfer_req(const fx *f, int64_t amt)
{
    okv_txn_req *t;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_add_floor(t, TABLE, f->a, strlen(f->a),
                                           f->three ? -2 * amt : -amt, 0), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, TABLE, f->b, strlen(f->b), amt), OKV_OK);
    if (f->three)
        assert_int_equal(okv_txn_req_add(t, TABLE, f->c3, strlen(f->c3), amt), OKV_OK);
    return t;
}

/* A and B through a fresh client and through every live node alone. */
static void expect_balances(fx *f, int64_t want_a, int64_t want_b, const char *when)
{
    okv_client *fresh;
    assert_int_equal(okv_connect(&fresh, f->c->all, NULL), OKV_OK);
    int64_t va = get_counter(fresh, f->a, "fresh client");
    int64_t vb = get_counter(fresh, f->b, "fresh client");
    okv_close(fresh);
    if (va != want_a || vb != want_b)
        fail_msg("%s: fresh client: %s = %lld, %s = %lld; expected %lld, %lld", when, f->a,
                 (long long)va, f->b, (long long)vb, (long long)want_a, (long long)want_b);
    for (int id = 1; id <= NODES; id++) {
        if (f->c->node[id].pid <= 0)
            continue;
        char via[32];
        snprintf(via, sizeof via, "node %d", id);
        okv_client *one;
        assert_int_equal(okv_cluster_connect_one(f->c, id, &one), OKV_OK);
        va = get_counter(one, f->a, via);
        vb = get_counter(one, f->b, via);
        okv_close(one);
        if (va != want_a || vb != want_b)
            fail_msg("%s: %s: %s = %lld, %s = %lld; expected %lld, %lld", when, via, f->a,
                     (long long)va, f->b, (long long)vb, (long long)want_a, (long long)want_b);
    }
}

/* What okv_txn_status says of the crashing call's transaction, asked
 * through every node with its client id (bounded while undecided). */
static int status_of(fx *f, uint64_t txn_id)
{
    okv_options o = OKV_OPTIONS_INIT;
    o.client_id = f->cid;
    okv_client *cl;
    assert_int_equal(okv_connect(&cl, f->c->all, &o), OKV_OK);
    okv_txn_req *t = transfer_req(f, AMT);
    int64_t end = now_ms() + BOUND_MS;
    int rc;
    okv_txn_outcome out;
    while ((rc = okv_txn_status(cl, t, txn_id, &out, 10000)) == OKV_EUNKNOWN ||
           rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT) {
        if (now_ms() > end)
            break;
        sleep_ms(200);
    }
    okv_txn_req_free(t);
    okv_close(cl);
    return rc;
}

/* A new transfer of amt on A and B commits (bounded: retried while a lock
 * is still held). */
static void transfer_commits(fx *f, int64_t amt, const char *when)
{
    okv_txn_req *t = transfer_req(f, amt);
    int64_t t0 = now_ms(), end = t0 + BOUND_MS;
    int rc, tries = 0;
    okv_txn_outcome o;
    for (;;) {
        rc = okv_txn_commit(f->cl, t, &o, 10000);
        tries++;
        if (rc == OKV_OK)
            break;
        if (rc != OKV_ECONFLICT || now_ms() > end)
            fail_msg("%s: a new transfer on the same keys: %s: %s (after %d tries)", when,
                     okv_strerror(rc), okv_errmsg(f->cl), tries);
        sleep_ms(100);
    }
    okv_txn_req_free(t);
    printf("  %s: a new transfer on the same keys committed after %d tries, %lld ms\n", when,
           tries, (long long)(now_ms() - t0));
}

static uint64_t leader_of(fx *f, uint32_t p)
{
    int64_t end = now_ms() + BOUND_MS;
    do {
        uint64_t l = okv_cluster_leader(f->c, f->table_id, p);
        if (l)
            return l;
        sleep_ms(50);
    } while (now_ms() < end);
    fail_msg("accounts/%u has no leader after %d ms", p, BOUND_MS);
    return 0;
}

static void wait_serving(fx *f, int id)
{
    if (okv_cluster_wait_leaders(f->c, BOUND_MS) != 0)
        fail_msg("not every partition has a leader after node %d started", id);
    if (okv_cluster_wait_caught_up(f->c, id, BOUND_MS) != 0)
        fail_msg("node %d did not catch up within %d ms", id, BOUND_MS);
    int64_t end = now_ms() + BOUND_MS;
    for (;;) {
        okv_status *s = NULL;
        const char *meta = "";
        char seen[32] = "";
        if (okv_status_get_at(f->cl, f->c->addr[id], &s, 2000) == OKV_OK) {
            meta = okv_status_meta(s, NULL, NULL);
            snprintf(seen, sizeof seen, "%s", meta ? meta : "");
            okv_status_free(s);
        }
        if (strcmp(seen, "ok") == 0)
            return;
        if (now_ms() > end)
            fail_msg("node %d's meta state is '%s' after %d ms", id, seen, BOUND_MS);
        sleep_ms(100);
    }
}

/* Restarts node x with the failpoint set and (best effort) makes it the
 * leader of A's partition again. */
static void arm(fx *f, int x, const char *fp)
{
    char env[128];
    snprintf(env, sizeof env, "ORDERKV_FAILPOINTS=%s=crash", fp);
    assert_int_equal(okv_cluster_node_stop(f->c, x, 0), 0);
    okv_cluster_set_env(f->c, x, env);
    assert_int_equal(okv_cluster_node_start(f->c, x), 0);
    wait_serving(f, x);
    int64_t end = now_ms() + 20000;
    uint64_t l;
    while ((l = okv_cluster_leader(f->c, f->table_id, f->pa)) != (uint64_t)x && now_ms() < end) {
        if (l)
            okv_transfer_leader(f->cl, TABLE, f->pa, (uint64_t)x, 5000);
        sleep_ms(300);
    }
    printf("  node %d restarted with %s; it %s the leader of accounts/%u\n", x, env,
           l == (uint64_t)x ? "is" : "is not (it still drives)", f->pa);
}

/* Waits (bounded) for node x to die at failpoint fp, and clears its
 * failpoints for its next start. */
static void wait_crash(fx *f, int x, const char *fp)
{
    int died = 0;
    for (int64_t end = now_ms() + 20000; !died && now_ms() < end;) {
        died = okv_cluster_reap_dead(f->c) > 0 || f->c->node[x].pid <= 0;
        if (!died)
            sleep_ms(50);
    }
    char needle[128];
    snprintf(needle, sizeof needle, "failpoint %s: crashing", fp);
    if (!died || !log_contains(f->c->node[x].log_path, needle)) {
        okv_cluster_dump_logs(f->c, 15);
        fail_msg("node %d did not crash at %s", x, fp);
    }
    okv_cluster_set_env(f->c, x, NULL);
}

/* Sends the transfer to node x alone (all_nodes: through a client of every
 * node, whose route to A's partition leads to x first, and which resends
 * elsewhere); x dies at failpoint fp. Returns the call's answer (and its
 * transaction id in *txn_id). */
static int crash_transfer_via(fx *f, int x, const char *fp, uint64_t *txn_id, int all_nodes)
{
    okv_options o = OKV_OPTIONS_INIT;
    o.listed_nodes_only = !all_nodes;
    o.client_id = f->cid;
    okv_client *one;
    assert_int_equal(okv_connect(&one, all_nodes ? f->c->all : f->c->addr[x], &o), OKV_OK);
    if (all_nodes) {
        /* The client learns A's partition's leader (x) from this put. */
        uint8_t b[8];
        okv_counter_encode(INIT, b);
        assert_int_equal(okv_put(one, TABLE, f->a, strlen(f->a), b, 8, NULL, 10000), OKV_OK);
    }
    okv_txn_req *t = transfer_req(f, AMT);
    okv_txn_outcome out;
    int64_t t0 = now_ms();
    int rc = okv_txn_commit(one, t, &out, all_nodes ? 15000 : CALL_MS);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rc ? okv_errmsg(one) : "");
    okv_txn_req_free(t);
    okv_close(one);
    *txn_id = out.txn_id;
    printf("  transfer via node %d: %s (%s) after %lld ms; txn %llu\n", x, okv_strerror(rc), msg,
           (long long)(now_ms() - t0), (unsigned long long)*txn_id);
    wait_crash(f, x, fp);
    return rc;
}

static int crash_transfer(fx *f, int x, const char *fp, uint64_t *txn_id)
{
    return crash_transfer_via(f, x, fp, txn_id, 0);
}

static void restart(fx *f, int id)
{
    okv_cluster_set_env(f->c, id, NULL);
    assert_int_equal(okv_cluster_node_start(f->c, id), 0);
    wait_serving(f, id);
}

/* The setup of every case: balances, and the driver armed. Returns X. */
static int prepare_case(fx *f, const char *fp)
{
    put_counter(f, f->a, INIT);
    put_counter(f, f->b, INIT);
    int x = (int)leader_of(f, f->pa);
    printf("  %s (partition %u) coordinates, %s (partition %u) participates; driver node %d\n",
           f->a, f->pa, f->b, f->pb, x);
    arm(f, x, fp);
    return x;
}

/* ---- a. before_decide ------------------------------------------------------ */

static void test_tpc_crash__before_decide_aborts(void **state)
{
    fx *f = *state;
    const char *fp = "tpc.driver.before_decide";
    int x = prepare_case(f, fp);
    uint64_t id;
    int rc = crash_transfer(f, x, fp, &id);
    if (!ambiguous(rc))
        fail_msg("the client heard %s from a driver that died before deciding",
                 okv_strerror(rc));
    /* Undecided or aborted: either way the old balances, even with X down. */
    expect_balances(f, INIT, INIT, "X down");
    restart(f, x);
    rc = status_of(f, id);
    printf("  status of the crashed transfer: %s\n", okv_strerror(rc));
    assert_int_equal(rc, OKV_ECONFLICT);
    expect_balances(f, INIT, INIT, "after the abort");
    transfer_commits(f, 5, "after the abort");
    expect_balances(f, INIT - 5, INIT + 5, "after a new transfer");
}

/* ---- b. before_reply ------------------------------------------------------- */

static void test_tpc_crash__before_reply_commits_anyway(void **state)
{
    fx *f = *state;
    const char *fp = "tpc.driver.before_reply";
    int x = prepare_case(f, fp);
    uint64_t id;
    int rc = crash_transfer(f, x, fp, &id);
    if (!ambiguous(rc))
        fail_msg("the client heard %s from a driver that died before answering",
                 okv_strerror(rc));
    expect_balances(f, INIT - AMT, INIT + AMT, "X down");
    restart(f, x);
    rc = status_of(f, id);
    printf("  status of the crashed transfer: %s\n", okv_strerror(rc));
    assert_int_equal(rc, OKV_OK);
    expect_balances(f, INIT - AMT, INIT + AMT, "X back");
    transfer_commits(f, 5, "after the commit");
    expect_balances(f, INIT - AMT - 5, INIT + AMT + 5, "after a new transfer");
}

/* ---- c. before_resolve ----------------------------------------------------- */

static void test_tpc_crash__before_resolve_reads_resolve_the_lock(void **state)
{
    fx *f = *state;
    const char *fp = "tpc.driver.before_resolve";
    int x = prepare_case(f, fp);
    uint64_t id;
    int rc = crash_transfer(f, x, fp, &id);
    /* Read your writes: B's partition is still PREPARED; the read meets
     * the lock and has the coordinator resolve it. */
    int64_t vb = get_counter(f->cl, f->b, "right after");
    int64_t va = get_counter(f->cl, f->a, "right after");
    printf("  right after: %s = %lld, %s = %lld\n", f->a, (long long)va, f->b, (long long)vb);
    assert_int_equal(rc, OKV_OK);
    assert_int_equal(vb, INIT + AMT);
    assert_int_equal(va, INIT - AMT);
    expect_balances(f, INIT - AMT, INIT + AMT, "X down");
    restart(f, x);
    assert_int_equal(status_of(f, id), OKV_OK);
    transfer_commits(f, 5, "after the commit");
    expect_balances(f, INIT - AMT - 5, INIT + AMT + 5, "after a new transfer");
}

/* ---- d, e. a participant restarts while PREPARED --------------------------- */

/* After X crashed: kill -9 the leader of B's partition (another node than
 * X if X leads it), so that only one node is left and nothing can decide;
 * then start it again. Returns it. */
static int restart_participant(fx *f, int x)
{
    uint64_t y = okv_cluster_leader(f->c, f->table_id, f->pb);
    if (y == 0 || y == (uint64_t)x)
        y = (uint64_t)(x % NODES + 1);
    int kst = okv_cluster_node_stop(f->c, (int)y, 1);
    assert_int_equal(kst, 128 + SIGKILL);
    printf("  node %llu (accounts/%u's participant side) killed -9 while the transfer is "
           "prepared\n", (unsigned long long)y, f->pb);
    sleep_ms(500);
    restart(f, (int)y);
    return (int)y;
}

static void test_tpc_crash__participant_restart_while_prepared_then_abort(void **state)
{
    fx *f = *state;
    const char *fp = "tpc.driver.before_decide";
    int x = prepare_case(f, fp);
    uint64_t id;
    int rc = crash_transfer(f, x, fp, &id);
    if (!ambiguous(rc))
        fail_msg("the client heard %s from a driver that died before deciding",
                 okv_strerror(rc));
    restart_participant(f, x);
    int64_t va = get_counter(f->cl, f->a, "participant back");
    int64_t vb = get_counter(f->cl, f->b, "participant back");
    printf("  participant back: %s = %lld, %s = %lld\n", f->a, (long long)va, f->b,
           (long long)vb);
    /* All or nothing; and nothing, as only the dead driver could commit. */
    if (!(va == INIT && vb == INIT) && !(va == INIT - AMT && vb == INIT + AMT))
        fail_msg("a partial transfer: %s = %lld, %s = %lld", f->a, (long long)va, f->b,
                 (long long)vb);
    assert_int_equal(va, INIT);
    rc = status_of(f, id);
    printf("  status of the crashed transfer: %s\n", okv_strerror(rc));
    assert_int_equal(rc, OKV_ECONFLICT);
    restart(f, x);
    expect_balances(f, INIT, INIT, "every node back");
    transfer_commits(f, 5, "after the abort");
    expect_balances(f, INIT - 5, INIT + 5, "after a new transfer");
}

static void test_tpc_crash__participant_restart_while_prepared_then_commit(void **state)
{
    fx *f = *state;
    const char *fp = "tpc.driver.before_resolve";
    int x = prepare_case(f, fp);
    uint64_t id;
    int rc = crash_transfer(f, x, fp, &id);
    assert_int_equal(rc, OKV_OK);
    restart_participant(f, x);
    int64_t vb = get_counter(f->cl, f->b, "participant back");
    int64_t va = get_counter(f->cl, f->a, "participant back");
    printf("  participant back: %s = %lld, %s = %lld\n", f->a, (long long)va, f->b,
           (long long)vb);
    assert_int_equal(va, INIT - AMT);
    assert_int_equal(vb, INIT + AMT);
    restart(f, x);
    expect_balances(f, INIT - AMT, INIT + AMT, "every node back");
    transfer_commits(f, 5, "after the commit");
    expect_balances(f, INIT - AMT - 5, INIT + AMT + 5, "after a new transfer");
}

/* ---- f. the client resends to another node --------------------------------- */

static void test_tpc_crash__resend_to_another_driver_is_exactly_once(void **state)
{
    fx *f = *state;
    const char *fp = "tpc.driver.before_decide";
    int x = prepare_case(f, fp);
    uint64_t id;
    /* X dies before deciding; the client sends the same request (same id)
     * to another node, whose driver finds the same records: the answer it
     * gets, whatever it is, must be the truth. */
    int rc = crash_transfer_via(f, x, fp, &id, 1);
    int st = status_of(f, id);
    printf("  the resent transfer: %s; its status: %s\n", okv_strerror(rc), okv_strerror(st));
    if (rc == OKV_OK || rc == OKV_ECONFLICT)
        assert_int_equal(st, rc);
    else if (!ambiguous(rc))
        fail_msg("the resent transfer: %s", okv_strerror(rc));
    if (st != OKV_OK && st != OKV_ECONFLICT)
        fail_msg("no outcome for the resent transfer: %s", okv_strerror(st));
    int moved = st == OKV_OK;
    expect_balances(f, INIT - moved * AMT, INIT + moved * AMT, "X down");
    restart(f, x);
    expect_balances(f, INIT - moved * AMT, INIT + moved * AMT, "X back");
    transfer_commits(f, 5, "afterwards");
    expect_balances(f, INIT - moved * AMT - 5, INIT + moved * AMT + 5, "after a new transfer");
}

/* ---- h, i. the deadline against the decision -------------------------------- */

/* Restarts the leader of A's partition, x, with failpoint spec fp_spec set
 * and makes it the leader again; returns x. The delayed step waits on the
 * driver's timer, so nothing else on x waits with it. */
static int arm_on(fx *f, const char *fp_spec)
{
    put_counter(f, f->a, INIT);
    put_counter(f, f->b, INIT);
    int x = (int)leader_of(f, f->pa);
    char env[128];
    snprintf(env, sizeof env, "ORDERKV_FAILPOINTS=%s", fp_spec);
    assert_int_equal(okv_cluster_node_stop(f->c, x, 0), 0);
    okv_cluster_set_env(f->c, x, env);
    assert_int_equal(okv_cluster_node_start(f->c, x), 0);
    wait_serving(f, x);
    int64_t end = now_ms() + 20000;
    uint64_t l;
    while ((l = okv_cluster_leader(f->c, f->table_id, f->pa)) != (uint64_t)x && now_ms() < end) {
        if (l)
            okv_transfer_leader(f->cl, TABLE, f->pa, (uint64_t)x, 5000);
        sleep_ms(300);
    }
    printf("  node %d runs with %s; %s coordinates from partition %u\n", x, env, f->a, f->pa);
    return x;
}

/* The transfer through node x alone, with time for delayed steps. */
static int slow_transfer(fx *f, int x, uint64_t *txn_id)
{
    okv_options o = OKV_OPTIONS_INIT;
    o.listed_nodes_only = 1;
    o.client_id = f->cid;
    okv_client *one;
    assert_int_equal(okv_connect(&one, f->c->addr[x], &o), OKV_OK);
    okv_txn_req *t = transfer_req(f, AMT);
    okv_txn_outcome out;
    int64_t t0 = now_ms();
    int rc = okv_txn_commit(one, t, &out, 20000);
    printf("  transfer via node %d: %s (%s) after %lld ms\n", x, okv_strerror(rc),
           rc ? okv_errmsg(one) : "", (long long)(now_ms() - t0));
    okv_txn_req_free(t);
    okv_close(one);
    *txn_id = out.txn_id;
    return rc;
}

static void test_tpc_crash__deadline_abort_beats_a_late_vote(void **state)
{
    fx *f = *state;
    int x = arm_on(f, "tpc.driver.delay_vote=on");
    uint64_t id;
    int rc = slow_transfer(f, x, &id);
    assert_int_equal(rc, OKV_ECONFLICT);
    expect_balances(f, INIT, INIT, "after the late vote");
    assert_int_equal(status_of(f, id), OKV_ECONFLICT);
    okv_cluster_set_env(f->c, x, NULL);
}

static void test_tpc_crash__a_commit_outlives_its_deadline(void **state)
{
    fx *f = *state;
    int x = arm_on(f, "tpc.driver.delay_resolve=on");
    uint64_t id;
    int rc = slow_transfer(f, x, &id);
    assert_int_equal(rc, OKV_OK);
    /* Past the deadline and the grace, before the delayed RESOLVE: B's
     * share is settled by its sweeper's question to the coordinator, or by
     * this read's; either way from the commit. */
    sleep_ms(2500 + 1500);
    expect_balances(f, INIT - AMT, INIT + AMT, "past the deadline");
    assert_int_equal(status_of(f, id), OKV_OK);
    okv_cluster_set_env(f->c, x, NULL);
}

/* ---- g. RESOLVE applied at some participants ----------------------------- */

/* C through a fresh client and through every live node alone. */
static void expect_c(fx *f, int64_t want, const char *when)
{
    okv_client *fresh;
    assert_int_equal(okv_connect(&fresh, f->c->all, NULL), OKV_OK);
    int64_t v = get_counter(fresh, f->c3, "fresh client");
    okv_close(fresh);
    if (v != want)
        fail_msg("%s: fresh client: %s = %lld; expected %lld", when, f->c3, (long long)v,
                 (long long)want);
    for (int id = 1; id <= NODES; id++) {
        if (f->c->node[id].pid <= 0)
            continue;
        okv_client *one;
        okv_options o = OKV_OPTIONS_INIT;
        o.listed_nodes_only = 1;
        assert_int_equal(okv_connect(&one, f->c->addr[id], &o), OKV_OK);
        char via[32];
        snprintf(via, sizeof via, "node %d", id);
        v = get_counter(one, f->c3, via);
        okv_close(one);
        if (v != want)
            fail_msg("%s: %s: %s = %lld; expected %lld", when, via, f->c3, (long long)v,
                     (long long)want);
    }
}

static void test_tpc_crash__resolve_at_some_participants_finishes(void **state)
{
    fx *f = *state;
    if (f->partitions < 3)
        skip();
    const char *fp = "tpc.driver.after_first_resolve";
    f->three = 1;
    put_counter(f, f->c3, INIT);
    int x = prepare_case(f, fp);
    printf("  %s (partition %u) participates too\n", f->c3, f->pc);
    uint64_t id;
    int rc = crash_transfer(f, x, fp, &id);
    assert_int_equal(rc, OKV_OK);   /* answered before any RESOLVE was sent */
    /* Whichever share is still PREPARED, a read of it meets its lock and
     * has the coordinator's partition (its new leader) resolve it. */
    expect_balances(f, INIT - 2 * AMT, INIT + AMT, "X down");
    expect_c(f, INIT + AMT, "X down");
    restart(f, x);
    expect_balances(f, INIT - 2 * AMT, INIT + AMT, "every node back");
    expect_c(f, INIT + AMT, "every node back");
    rc = status_of(f, id);
    printf("  status of the transfer: %s\n", okv_strerror(rc));
    assert_int_equal(rc, OKV_OK);
    transfer_commits(f, 5, "afterwards");
    expect_balances(f, INIT - 2 * AMT - 10, INIT + AMT + 5, "after a new transfer");
    expect_c(f, INIT + AMT + 5, "after a new transfer");
}

/* ---- helpers of cases j-n ---------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Best effort, bounded: makes node id the leader of accounts/p. Returns
 * whether it is. */
static int lead(fx *f, int id, uint32_t p)
{
    int64_t end = now_ms() + 20000;
    uint64_t l;
    while ((l = okv_cluster_leader(f->c, f->table_id, p)) != (uint64_t)id && now_ms() < end) {
        if (l)
            okv_transfer_leader(f->cl, TABLE, p, (uint64_t)id, 5000);
        sleep_ms(300);
    }
    return l == (uint64_t)id;
}

/* The transfer through a client of every node with the crash client id:
 * its answer, its transaction id in *txn_id. */
static int transfer_all(fx *f, uint64_t *txn_id)
{
    okv_options o = OKV_OPTIONS_INIT;
    o.client_id = f->cid;
    okv_client *cl;
    assert_int_equal(okv_connect(&cl, f->c->all, &o), OKV_OK);
    okv_txn_req *t = transfer_req(f, AMT);
    okv_txn_outcome out;
    int64_t t0 = now_ms();
    int rc = okv_txn_commit(cl, t, &out, 15000);
    printf("  transfer: %s (%s) after %lld ms; txn %llu\n", okv_strerror(rc),
           rc ? okv_errmsg(cl) : "", (long long)(now_ms() - t0),
           (unsigned long long)out.txn_id);
    okv_txn_req_free(t);
    okv_close(cl);
    *txn_id = out.txn_id;
    return rc;
}

/* The client's answer rc and okv_txn_status must agree: a definite answer
 * is the status, an ambiguous one is settled by it. Returns 1 if the
 * transfer committed, 0 if it aborted. */
static int outcome(fx *f, int rc, uint64_t txn_id, const char *when)
{
    int st = status_of(f, txn_id);
    printf("  %s: the client heard %s, the status says %s\n", when, okv_strerror(rc),
           okv_strerror(st));
    if (rc == OKV_OK || rc == OKV_ECONFLICT)
        assert_int_equal(st, rc);
    else if (!ambiguous(rc))
        fail_msg("%s: the transfer: %s", when, okv_strerror(rc));
    if (st != OKV_OK && st != OKV_ECONFLICT)
        fail_msg("%s: no outcome for the transfer: %s", when, okv_strerror(st));
    return st == OKV_OK;
}

/* ---- j. status after the records are forgotten ------------------------------ */

/* Commits (or fails, as want) a transfer of amt through cl; returns its
 * transaction id. Retried while locked or unavailable. */
static uint64_t commit_as(fx *f, okv_client *cl, int64_t amt, int want)
{
    okv_txn_req *t = transfer_req(f, amt);
    int64_t end = now_ms() + BOUND_MS;
    okv_txn_outcome o;
    for (;;) {
        int rc = okv_txn_commit(cl, t, &o, 10000);
        if (rc == want)
            break;
        if (ambiguous(rc) && want == OKV_OK && status_of(f, o.txn_id) == OKV_OK)
            break;   /* it committed all the same */
        if ((rc != OKV_ECONFLICT && !transient(rc)) || now_ms() > end)
            fail_msg("a transfer of %lld: %s: %s", (long long)amt, okv_strerror(rc),
                     okv_errmsg(cl));
        sleep_ms(100);
    }
    okv_txn_req_free(t);
    return o.txn_id;
}

static void test_tpc_crash__status_after_the_records_are_forgotten(void **state)
{
    fx *f = *state;
    put_counter(f, f->a, INIT);
    put_counter(f, f->b, INIT);
    okv_options o = OKV_OPTIONS_INIT;
    o.client_id = f->cid;
    okv_client *cl;
    assert_int_equal(okv_connect(&cl, f->c->all, &o), OKV_OK);
    uint64_t committed = commit_as(f, cl, AMT, OKV_OK);
    uint64_t failed = commit_as(f, cl, 10 * INIT, OKV_ECONDITION);   /* A's floor */
    okv_close(cl);
    printf("  txn %llu committed, txn %llu failed its condition\n",
           (unsigned long long)committed, (unsigned long long)failed);
    /* Until FORGET applies each answers its outcome, then "forgotten":
     * never "aborted" for the commit (a settling query must not take a
     * forgotten record for one never decided), never "committed" for the
     * other. */
    int64_t t0 = now_ms(), end = t0 + BOUND_MS;
    int sc, sf, rounds = 0;
    for (;; rounds++) {
        sc = status_of(f, committed);
        sf = status_of(f, failed);
        if (sc != OKV_OK && sc != OKV_ENOTFOUND)
            fail_msg("the committed transfer's status: %s", okv_strerror(sc));
        if (sf != OKV_ECONDITION && sf != OKV_ENOTFOUND)
            fail_msg("the failed transfer's status: %s", okv_strerror(sf));
        if (sc == OKV_ENOTFOUND && sf == OKV_ENOTFOUND)
            break;
        if (now_ms() > end)
            fail_msg("the records were not forgotten within %d ms (status %s, %s)", BOUND_MS,
                     okv_strerror(sc), okv_strerror(sf));
        sleep_ms(300);
    }
    printf("  both forgotten after %lld ms (%d rounds of status)\n",
           (long long)(now_ms() - t0), rounds);
    /* The queries settled nothing: asked again, still forgotten. */
    sleep_ms(1500);
    assert_int_equal(status_of(f, committed), OKV_ENOTFOUND);
    assert_int_equal(status_of(f, failed), OKV_ENOTFOUND);
    expect_balances(f, INIT - AMT, INIT + AMT, "after FORGET");
    transfer_commits(f, 5, "after FORGET");
    expect_balances(f, INIT - AMT - 5, INIT + AMT + 5, "after a new transfer");
}

/* ---- k. B's leader dies between proposing and applying PREPARE ------------- */

static void test_tpc_crash__participant_leader_dies_applying_prepare(void **state)
{
    fx *f = *state;
    const char *fp = "tpc.apply.before_prepare";
    put_counter(f, f->a, INIT);
    put_counter(f, f->b, INIT);
    int x = (int)leader_of(f, f->pa);
    int y = (int)leader_of(f, f->pb);
    if (y == x)
        y = x % NODES + 1;
    char env[128];
    snprintf(env, sizeof env, "ORDERKV_FAILPOINTS=%s=crash", fp);
    assert_int_equal(okv_cluster_node_stop(f->c, y, 0), 0);
    okv_cluster_set_env(f->c, y, env);
    assert_int_equal(okv_cluster_node_start(f->c, y), 0);
    wait_serving(f, y);
    int ly = lead(f, y, f->pb), lx = lead(f, x, f->pa);
    printf("  node %d runs with %s and %s accounts/%u; node %d %s accounts/%u\n", y, env,
           ly ? "leads" : "does not lead", f->pb, x, lx ? "leads" : "does not lead", f->pa);
    /* y dies applying B's PREPARE, which a majority has: the next leader
     * applies it; whatever the driver heard, all or nothing. */
    uint64_t id;
    int rc = transfer_all(f, &id);
    wait_crash(f, y, fp);
    int moved = outcome(f, rc, id, "node y down");
    expect_balances(f, INIT - moved * AMT, INIT + moved * AMT, "Y down");
    restart(f, y);
    expect_balances(f, INIT - moved * AMT, INIT + moved * AMT, "Y back");
    assert_int_equal(status_of(f, id), moved ? OKV_OK : OKV_ECONFLICT);
    transfer_commits(f, 5, "afterwards");
    expect_balances(f, INIT - moved * AMT - 5, INIT + moved * AMT + 5, "after a new transfer");
}

/* ---- l. the coordinator's leader dies with its decision proposed ----------- */

static void deposed_leader_decision(fx *f, const char *fp)
{
    int x = prepare_case(f, fp);
    uint64_t id;
    int rc = crash_transfer(f, x, fp, &id);
    if (!ambiguous(rc))
        fail_msg("the client heard %s from a driver that died with its decision proposed",
                 okv_strerror(rc));
    /* The entry reached a majority (the next leader commits it) or not
     * (it is truncated, and the transfer aborts): either, all or nothing. */
    int moved = outcome(f, rc, id, "X down");
    expect_balances(f, INIT - moved * AMT, INIT + moved * AMT, "X down");
    restart(f, x);
    expect_balances(f, INIT - moved * AMT, INIT + moved * AMT, "X back");
    assert_int_equal(status_of(f, id), moved ? OKV_OK : OKV_ECONFLICT);
    transfer_commits(f, 5, "afterwards");
    expect_balances(f, INIT - moved * AMT - 5, INIT + moved * AMT + 5, "after a new transfer");
}

static void test_tpc_crash__deposed_leader_decision_proposed(void **state)
{
    deposed_leader_decision(*state, "tpc.local.after_propose_decision");
}

static void test_tpc_crash__deposed_leader_decision_committed(void **state)
{
    deposed_leader_decision(*state, "tpc.apply.before_decision");
}

/* ---- m. a snapshot taken while PREPARED ------------------------------------- */

static void test_tpc_crash__snapshot_carries_a_prepared_share(void **state)
{
    fx *f = *state;
    const char *fp = "tpc.driver.before_decide";
    char k[32];   /* another key of B's partition, to fill its log */
    for (unsigned i = 1;; i++) {
        snprintf(k, sizeof k, "s%u", i);
        if (part_of(f, k) == f->pb)
            break;
    }
    int x = prepare_case(f, fp);
    uint64_t lb = leader_of(f, f->pb);
    int y = 1;   /* a follower of B's partition, not X */
    while (y == x || (uint64_t)y == lb)
        y++;
    assert_int_equal(okv_cluster_node_stop(f->c, y, 1), 128 + SIGKILL);
    printf("  node %d (a follower of accounts/%u) stopped\n", y, f->pb);
    int64_t sent = wall_ms();
    uint64_t id;
    int rc = crash_transfer(f, x, fp, &id);
    if (!ambiguous(rc))
        fail_msg("the client heard %s from a driver that died before deciding",
                 okv_strerror(rc));
    /* B is PREPARED, C absent: nothing settles it before the deadline. X
     * back, B's log grows past a snapshot and its compaction. */
    restart(f, x);
    for (int i = 0; i < 100; i++)
        put_counter(f, k, i);
    restart(f, y);
    char needle[64];
    snprintf(needle, sizeof needle, "group %u/%u: installed a snapshot", f->table_id, f->pb);
    if (!log_contains(f->c->node[y].log_path, needle))
        fail_msg("node %d caught up without a snapshot of accounts/%u", y, f->pb);
    int ly = lead(f, y, f->pb);
    /* Before the deadline the share is PREPARED wherever it is read: a
     * one-partition check of B meets the lock (it came in the snapshot). */
    okv_txn_req *t;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_exists(t, TABLE, f->b, strlen(f->b)), OKV_OK);
    okv_txn_outcome o;
    int crc = okv_txn_commit(f->cl, t, &o, 10000);
    int64_t answered = wall_ms();
    okv_txn_req_free(t);
    printf("  node %d installed a snapshot and %s accounts/%u; a check of %s %lld ms after "
           "the transfer: %s\n", y, ly ? "leads" : "does not lead", f->pb, f->b,
           (long long)(answered - sent), okv_strerror(crc));
    if (answered < sent + SNAP_TXN_TIMEOUT_MS)
        assert_int_equal(crc, OKV_ECONFLICT);
    else if (crc != OKV_OK && crc != OKV_ECONFLICT)
        fail_msg("a check of %s: %s", f->b, okv_strerror(crc));
    /* Nothing moved (only the dead driver could decide COMMIT); past the
     * deadline B's sweeper, on y if it leads, resolves from the P record
     * the snapshot carried and releases the lock. */
    expect_balances(f, INIT, INIT, "snapshot installed");
    assert_int_equal(status_of(f, id), OKV_ECONFLICT);
    transfer_commits(f, 5, "after the abort");
    expect_balances(f, INIT - 5, INIT + 5, "after a new transfer");
}

/* ---- n. read-only validation racing RESOLVE --------------------------------- */

static int64_t tx_counter(okv_tx *tx, const char *key)
{
    okv_value *v = NULL;
    int rc = okv_tx_get(tx, TABLE, key, strlen(key), &v, 10000);
    if (rc != OKV_OK)
        fail_msg("okv_tx_get %s: %s", key, okv_strerror(rc));
    int64_t n = 0;
    int drc = okv_counter_decode(okv_value_data(v), okv_value_len(v), &n);
    okv_value_free(v);
    if (drc != OKV_OK)
        fail_msg("%s is not a counter", key);
    return n;
}

/* A read-only transaction's answer: committed, it saw exactly (a, b);
 * else a conflict. */
static void expect_ro(okv_tx *tx, int64_t va, int64_t vb, int64_t a, int64_t b,
                      const char *when)
{
    okv_txn_outcome o;
    int rc = okv_tx_commit(tx, &o, 10000);
    okv_tx_free(tx);
    printf("  %s: read %lld + %lld: %s\n", when, (long long)va, (long long)vb,
           okv_strerror(rc));
    if (rc == OKV_OK && (va != a || vb != b || va + vb != 2 * INIT))
        fail_msg("%s: a read-only transaction committed %lld + %lld; the balances are "
                 "%lld + %lld", when, (long long)va, (long long)vb, (long long)a, (long long)b);
    if (rc != OKV_OK && rc != OKV_ECONFLICT)
        fail_msg("%s: a read-only transaction: %s", when, okv_strerror(rc));
}

static void test_tpc_crash__read_only_check_races_resolve(void **state)
{
    fx *f = *state;
    int x = arm_on(f, "tpc.driver.delay_resolve=on");
    int64_t a = INIT, b = INIT;
    for (int i = 0; i < 4; i++) {
        /* One key read before the transfer, the other after it, while B's
         * RESOLVE is held back: the pair is torn, so the check must fail. */
        const char *first = i % 2 ? f->b : f->a, *second = i % 2 ? f->a : f->b;
        okv_tx *tx;
        assert_int_equal(okv_tx_begin(f->cl, &tx), OKV_OK);
        int64_t v1 = tx_counter(tx, first);
        uint64_t id;
        int rc = slow_transfer(f, x, &id);
        int moved = outcome(f, rc, id, "the transfer");
        a -= moved * AMT;
        b += moved * AMT;
        int64_t v2 = tx_counter(tx, second);
        expect_ro(tx, i % 2 ? v2 : v1, i % 2 ? v1 : v2, a, b, "read across the transfer");
        /* Both reads after it (B's RESOLVE may still be held). */
        assert_int_equal(okv_tx_begin(f->cl, &tx), OKV_OK);
        v1 = tx_counter(tx, second);
        v2 = tx_counter(tx, first);
        expect_ro(tx, i % 2 ? v1 : v2, i % 2 ? v2 : v1, a, b, "read after the transfer");
    }
    expect_balances(f, a, b, "after the loop");
    okv_cluster_set_env(f->c, x, NULL);
}

/* ---- o. a late call after its settled status was forgotten ------------------ */

static void test_tpc_crash__a_late_call_cannot_commit_a_forgotten_abort(void **state)
{
    fx *f = *state;
    put_counter(f, f->a, INIT);
    put_counter(f, f->b, INIT);
    /* The driver: a node that does not lead A's partition, so that the
     * status queries (to that leader) do not wait behind the held call. */
    int x = (int)leader_of(f, f->pa) % NODES + 1;
    const char *env = "ORDERKV_FAILPOINTS=tpc.retain.short=on;tpc.driver.before_start=sleep(6000)";
    assert_int_equal(okv_cluster_node_stop(f->c, x, 0), 0);
    okv_cluster_set_env(f->c, x, env);
    assert_int_equal(okv_cluster_node_start(f->c, x), 0);
    wait_serving(f, x);
    uint64_t la = leader_of(f, f->pa);
    if (la == (uint64_t)x)
        lead(f, x % NODES + 1, f->pa);
    printf("  node %d runs with %s; node %llu leads accounts/%u\n", x, env,
           (unsigned long long)leader_of(f, f->pa), f->pa);
    /* The call waits 6 s before its driver starts (a call held up on its
     * way); the client gives up first and settles the outcome. */
    okv_options o = OKV_OPTIONS_INIT;
    o.listed_nodes_only = 1;
    o.client_id = f->cid;
    okv_client *one;
    assert_int_equal(okv_connect(&one, f->c->addr[x], &o), OKV_OK);
    okv_txn_req *t = transfer_req(f, AMT);
    okv_txn_outcome out;
    int64_t t0 = now_ms();
    int rc = okv_txn_commit(one, t, &out, 1500);
    okv_txn_req_free(t);
    okv_close(one);
    int st = status_of(f, out.txn_id);
    printf("  transfer via node %d: %s; its status %lld ms after the call: %s\n", x,
           okv_strerror(rc), (long long)(now_ms() - t0), okv_strerror(st));
    if (st != OKV_OK && st != OKV_ECONFLICT)
        fail_msg("no outcome for the transfer: %s", okv_strerror(st));
    if (rc == OKV_OK || rc == OKV_ECONFLICT)
        assert_int_equal(st, rc);
    /* The settled record is forgotten (2 s) while the call still waits;
     * then its driver runs with a fresh deadline. The status was final:
     * whatever the late driver does, the balances agree with it. */
    int seen_forgotten = 0;
    while (now_ms() < t0 + 6000 + 1500 + 2500) {
        int again = status_of(f, out.txn_id);
        if (again != st && again != OKV_ENOTFOUND)
            fail_msg("the status changed from %s to %s", okv_strerror(st),
                     okv_strerror(again));
        seen_forgotten |= again == OKV_ENOTFOUND;
        sleep_ms(500);
    }
    printf("  the settled record was %sseen forgotten while the call waited\n",
           seen_forgotten ? "" : "not ");
    int moved = st == OKV_OK;
    expect_balances(f, INIT - moved * AMT, INIT + moved * AMT, "after the late call");
    transfer_commits(f, 5, "afterwards");
    expect_balances(f, INIT - moved * AMT - 5, INIT + moved * AMT + 5, "after a new transfer");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tpc_crash__before_decide_aborts),
        T(test_tpc_crash__before_reply_commits_anyway),
        T(test_tpc_crash__before_resolve_reads_resolve_the_lock),
        T(test_tpc_crash__participant_restart_while_prepared_then_abort),
        T(test_tpc_crash__participant_restart_while_prepared_then_commit),
        T(test_tpc_crash__resend_to_another_driver_is_exactly_once),
        T(test_tpc_crash__resolve_at_some_participants_finishes),
        T(test_tpc_crash__deadline_abort_beats_a_late_vote),
        T(test_tpc_crash__a_commit_outlives_its_deadline),
        cmocka_unit_test_setup_teardown(test_tpc_crash__status_after_the_records_are_forgotten,
                                        setup_retain, teardown),
        T(test_tpc_crash__participant_leader_dies_applying_prepare),
        T(test_tpc_crash__deposed_leader_decision_proposed),
        T(test_tpc_crash__deposed_leader_decision_committed),
        cmocka_unit_test_setup_teardown(test_tpc_crash__snapshot_carries_a_prepared_share,
                                        setup_snap, teardown),
        T(test_tpc_crash__read_only_check_races_resolve),
        cmocka_unit_test_setup_teardown(test_tpc_crash__a_late_call_cannot_commit_a_forgotten_abort,
                                        setup_retain, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("OKV_TEST_FILTER"))   /* e.g. OKV_TEST_FILTER='*before_reply*' */
        cmocka_set_test_filter(getenv("OKV_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

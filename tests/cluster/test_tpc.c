/* Transactions across partitions (two-phase commit, server/coord/tpc_driver.h)
 * on a 3-node cluster of real orderkvd processes, driven through liborderkv:
 *
 *  a. a transfer between two accounts in different partitions commits
 *     atomically: both new balances, read through a fresh client and
 *     through every node alone (its own applied state);
 *  b. a condition, or an add's floor, that fails on the partition that is
 *     NOT the coordinator (the first write's) aborts the whole transaction
 *     with OKV_ECONDITION and the failed item numbered as in the request
 *     (conditions first, then writes); nothing applies anywhere;
 *  c. 4 threads of random transfers among 6 accounts in 6 partitions
 *     (floor 0, retried on OKV_ECONFLICT) while plain puts overwrite a
 *     counter some of the transfers also add to: the sum is conserved, no
 *     balance is negative, every balance is the initial one plus exactly
 *     the committed transfers, and no acknowledged put is lost under a
 *     transaction's RESOLVE;
 *  d. kill -9 of the leader of the coordinator partition in the middle of
 *     a stream of transfers, and its restart: the sum is conserved and
 *     every transfer that returned OKV_OK is reflected.
 *
 * Outcomes other than OK / ECONDITION / ECONFLICT (OKV_EUNKNOWN,
 * OKV_EUNAVAILABLE, OKV_ETIMEDOUT) are settled afterwards with
 * okv_txn_status; those it cannot settle (still unknown) leave the exact
 * balances open: the balances must then be the known outcome plus some
 * subset of them, and the sum must hold regardless.
 *
 * Waits are bounded (60 s), never expectations of speed. Results do not
 * depend on which node wins an election. OKV_KEEP_CLUSTER_DIR=1 keeps the
 * data dirs and logs. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keycodec.h"
#include "okv_cluster.h"
#include "okv_test.h"
#include "orderkv.h"

static const char *orderkvd_path = ORDERKVD_PATH;

#define NODES 3
#define TICK_MS 50
#define BOUND_MS 60000         /* every wait */
#define CALL_MS 15000          /* a transaction's client deadline */
#define INIT 100               /* every account's opening balance */
#define MAX_ACC 8
#define HITS MAX_ACC           /* index of the counter key in fx.key */
#define MAX_XFERS 4096

static const char *TABLE = "accounts";

static int64_t now_ms(void) { return okv_cluster_now_ms(); }
static void sleep_ms(int ms) { okv_cluster_sleep_ms(ms); }

/* ---- the fixture --------------------------------------------------------- */

typedef struct fx {
    okv_cluster *c;
    okv_client *cl;           /* on every node's address */
    uint32_t table_id;
    uint32_t partitions;      /* of accounts */
    int nacc;
    char key[MAX_ACC + 1][48];   /* accounts, then [HITS] */
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

static int setup_with(void **state, const char *flags)
{
    fx *f = calloc(1, sizeof *f);
    *state = f;
    if (!f)
        return -1;
    if (okv_cluster_start_ex(&f->c, orderkvd_path, NODES, TICK_MS, NULL, flags) != 0)
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
    return f->partitions >= 6 ? 0 : setup_failed(state, "no table 'accounts' with 6+ partitions");
}

static int setup(void **state) { return setup_with(state, NULL); }

/* d: a short transaction deadline, so what the killed driver left prepared
 * is aborted by the sweepers within seconds. */
static int setup_short_deadline(void **state) { return setup_with(state, "--txn-timeout-ms 3000"); }

/* A node that died on its own (not one of the test's kills) fails the test. */
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

static uint32_t part_of(const fx *f, const char *key)
{
    return keycodec_partition_of(key, strlen(key), f->partitions);
}

/* n account keys "<prefix><i>", each in a partition of its own. */
static void pick_accounts(fx *f, const char *prefix, int n)
{
    assert_true(n <= MAX_ACC && (uint32_t)n <= f->partitions);
    f->nacc = 0;
    for (unsigned i = 1; f->nacc < n; i++) {
        assert_true(i < 100000);
        char k[24];
        snprintf(k, sizeof k, "%.8s%u", prefix, i);
        int dup = 0;
        for (int j = 0; j < f->nacc; j++)
            dup |= part_of(f, f->key[j]) == part_of(f, k);
        if (!dup)
            snprintf(f->key[f->nacc++], sizeof f->key[0], "%s", k);
    }
    for (int i = 0; i < f->nacc; i++)
        for (int j = i + 1; j < f->nacc; j++)
            assert_int_not_equal(part_of(f, f->key[i]), part_of(f, f->key[j]));
    /* The counter of c shares the first account's partition (same text
     * before the '/'). */
    snprintf(f->key[HITS], sizeof f->key[0], "%.24s/hits", f->key[0]);
    assert_int_equal(part_of(f, f->key[HITS]), part_of(f, f->key[0]));
}

static int transient(int rc)
{
    return rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT || rc == OKV_ENOTLEADER ||
           rc == OKV_EUNKNOWN;
}

/* The counter at key through cl: OKV_OK with *v, or OKV_ENOTFOUND. A
 * transient failure is retried (bounded); anything else fails the test. */
static int get_counter(okv_client *cl, const char *key, int64_t *v, const char *via)
{
    int64_t end = now_ms() + BOUND_MS;
    for (;;) {
        okv_value *val = NULL;
        int rc = okv_get(cl, TABLE, key, strlen(key), &val, 10000);
        if (rc == OKV_OK) {
            int drc = okv_counter_decode(okv_value_data(val), okv_value_len(val), v);
            size_t len = okv_value_len(val);
            okv_value_free(val);
            if (drc != OKV_OK)
                fail_msg("%s: %s/%s holds %zu bytes, not a counter", via, TABLE, key, len);
            return OKV_OK;
        }
        if (rc == OKV_ENOTFOUND)
            return rc;
        if (!transient(rc) || now_ms() > end)
            fail_msg("%s: get %s/%s: %s: %s", via, TABLE, key, okv_strerror(rc), okv_errmsg(cl));
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
            fail_msg("put %s/%s: %s: %s", TABLE, key, okv_strerror(rc), okv_errmsg(f->cl));
        sleep_ms(100);
    }
}

/* Asks okv_txn_status until it settles (bounded): OKV_OK, OKV_ECONFLICT,
 * OKV_ECONDITION, or OKV_ENOTFOUND / OKV_EUNKNOWN if it never did. */
static int settle_status(okv_client *cl, const okv_txn_req *t, uint64_t txn_id,
                         okv_txn_outcome *o, int bound_ms)
{
    int64_t end = now_ms() + bound_ms;
    for (;;) {
        int rc = okv_txn_status(cl, t, txn_id, o, 10000);
        if (rc == OKV_OK || rc == OKV_ECONFLICT || rc == OKV_ECONDITION)
            return rc;
        if (rc != OKV_EUNKNOWN && rc != OKV_EUNAVAILABLE && rc != OKV_ETIMEDOUT &&
            rc != OKV_ENOTFOUND)
            fail_msg("txn status of %llu: %s: %s", (unsigned long long)txn_id, okv_strerror(rc),
                     okv_errmsg(cl));
        if (now_ms() > end)
            return rc == OKV_ENOTFOUND ? rc : OKV_EUNKNOWN;
        sleep_ms(250);
    }
}

/* Commits t until it has a definite outcome: OKV_OK or OKV_ECONDITION
 * (with *o). OKV_ECONFLICT (a lock) is retried after a pause; an
 * ambiguous answer is settled with okv_txn_status (and retried if that
 * says aborted). Fails the test past BOUND_MS. */
static int commit_definite(okv_client *cl, const okv_txn_req *t, okv_txn_outcome *o,
                           const char *what)
{
    int64_t end = now_ms() + BOUND_MS;
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = okv_txn_commit(cl, t, o, CALL_MS);
        if (rc != OKV_OK && rc != OKV_ECONDITION && rc != OKV_ECONFLICT) {
            if (rc != OKV_EUNKNOWN && rc != OKV_EUNAVAILABLE && rc != OKV_ETIMEDOUT)
                fail_msg("%s: %s: %s", what, okv_strerror(rc), okv_errmsg(cl));
            printf("  %s: %s (%s); asking its status\n", what, okv_strerror(rc), okv_errmsg(cl));
            okv_txn_outcome so;
            rc = settle_status(cl, t, o->txn_id, &so, BOUND_MS);
            if (rc == OKV_ENOTFOUND || rc == OKV_EUNKNOWN)
                fail_msg("%s: no outcome known for transaction %llu within %d ms", what,
                         (unsigned long long)o->txn_id, BOUND_MS);
            so.txn_id = o->txn_id;
            *o = so;
        }
        if (rc == OKV_OK || rc == OKV_ECONDITION)
            return rc;
        if (now_ms() > end)
            fail_msg("%s: still conflicting after %d ms (%s)", what, BOUND_MS, okv_errmsg(cl));
        sleep_ms(20 + 20 * (attempt % 10));
    }
}

/* The transfer amt from key a to key b, floor 0 at a (a's partition is
 * the coordinator: the first write's). */
static okv_txn_req *transfer_req(fx *f, int a, int b, int64_t amt)
{
    okv_txn_req *t;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_add_floor(t, TABLE, f->key[a], strlen(f->key[a]), -amt, 0),
                     OKV_OK);
    assert_int_equal(okv_txn_req_add(t, TABLE, f->key[b], strlen(f->key[b]), amt), OKV_OK);
    return t;
}

/* Asserts key's value on a fresh client and on every node alone. */
static void expect_everywhere(fx *f, const char *const *keys, const int64_t *want,
                              const int *present, int n)
{
    okv_client *fresh;
    assert_int_equal(okv_connect(&fresh, f->c->all, NULL), OKV_OK);
    for (int i = 0; i < n; i++) {
        int64_t v = 0;
        int rc = get_counter(fresh, keys[i], &v, "fresh client");
        if (present[i] && (rc != OKV_OK || v != want[i]))
            fail_msg("fresh client: %s = %lld (%s), expected %lld", keys[i], (long long)v,
                     okv_strerror(rc), (long long)want[i]);
        if (!present[i] && rc != OKV_ENOTFOUND)
            fail_msg("fresh client: %s exists (%lld), expected absent", keys[i], (long long)v);
    }
    okv_close(fresh);
    for (int id = 1; id <= NODES; id++) {
        okv_client *one;
        char via[32];
        snprintf(via, sizeof via, "node %d", id);
        assert_int_equal(okv_cluster_connect_one(f->c, id, &one), OKV_OK);
        for (int i = 0; i < n; i++) {
            int64_t v = 0;
            int rc = get_counter(one, keys[i], &v, via);
            if (present[i] && (rc != OKV_OK || v != want[i]))
                fail_msg("%s: %s = %lld (%s), expected %lld", via, keys[i], (long long)v,
                         okv_strerror(rc), (long long)want[i]);
            if (!present[i] && rc != OKV_ENOTFOUND)
                fail_msg("%s: %s exists (%lld), expected absent", via, keys[i], (long long)v);
        }
        okv_close(one);
    }
}

static void expect_balances(fx *f, const int64_t *want)
{
    const char *keys[MAX_ACC];
    int present[MAX_ACC];
    for (int i = 0; i < f->nacc; i++) {
        keys[i] = f->key[i];
        present[i] = 1;
    }
    expect_everywhere(f, keys, want, present, f->nacc);
}

/* ---- a. one transfer across partitions ------------------------------------- */

static void test_tpc__transfer_across_partitions_commits_atomically(void **state)
{
    fx *f = *state;
    /* "a1" and the first "b<i>" in another partition. */
    snprintf(f->key[0], sizeof f->key[0], "a1");
    for (unsigned i = 7;; i++) {
        snprintf(f->key[1], sizeof f->key[1], "b%u", i);
        if (part_of(f, f->key[1]) != part_of(f, f->key[0]))
            break;
    }
    f->nacc = 2;
    assert_int_not_equal(part_of(f, f->key[0]), part_of(f, f->key[1]));
    printf("  a: %s in partition %u, %s in partition %u\n", f->key[0], part_of(f, f->key[0]),
           f->key[1], part_of(f, f->key[1]));
    put_counter(f, f->key[0], INIT);
    put_counter(f, f->key[1], INIT);

    okv_txn_outcome o;
    okv_txn_req *t = transfer_req(f, 0, 1, 30);
    assert_int_equal(commit_definite(f->cl, t, &o, "a1 -> b"), OKV_OK);
    okv_txn_req_free(t);
    assert_int_equal(o.version, 0);   /* across partitions: no single version */
    int64_t want[2] = { INIT - 30, INIT + 30 };
    expect_balances(f, want);

    /* Back the other way: the coordinator is now the other partition. */
    t = transfer_req(f, 1, 0, 5);
    assert_int_equal(commit_definite(f->cl, t, &o, "b -> a1"), OKV_OK);
    okv_txn_req_free(t);
    want[0] += 5;
    want[1] -= 5;
    expect_balances(f, want);

    /* And one the floor refuses (b has 125 < 500): nothing moves. */
    t = transfer_req(f, 1, 0, 500);
    assert_int_equal(commit_definite(f->cl, t, &o, "b -> a1 (too much)"), OKV_ECONDITION);
    okv_txn_req_free(t);
    assert_int_equal(o.failed, 0);
    assert_int_equal(o.reason, OKV_TXN_FLOOR);
    expect_balances(f, want);
}

/* ---- a2. interactive: okv_tx_status, and okv_tx_scan across partitions ---- */

/* okv_tx_status until it answers for good (bounded): OKV_OK or a refusal. */
static int tx_status_settled(fx *f, okv_tx *t, uint64_t id)
{
    (void)f;
    okv_txn_outcome so;
    for (int i = 0;; i++) {
        int rc = okv_tx_status(t, id, &so, 10000);
        if (rc != OKV_EUNKNOWN && rc != OKV_EUNAVAILABLE && rc != OKV_ETIMEDOUT &&
            rc != OKV_ENOTLEADER)
            return rc;
        if (i == 60)
            fail_msg("okv_tx_status still %s after 60 tries", okv_strerror(rc));
        okv_cluster_sleep_ms(500);
    }
}

static void test_tpc__interactive_status_and_scans(void **state)
{
    fx *f = *state;
    snprintf(f->key[0], sizeof f->key[0], "ia1");
    for (unsigned i = 7;; i++) {
        snprintf(f->key[1], sizeof f->key[1], "ib%u", i);
        if (part_of(f, f->key[1]) != part_of(f, f->key[0]))
            break;
    }
    f->nacc = 2;
    put_counter(f, f->key[0], INIT);
    put_counter(f, f->key[1], INIT);

    /* A transfer across partitions; its status, asked as after an unknown
     * outcome, is committed; a stale one's is a conflict. */
    okv_tx *t;
    okv_txn_outcome o;
    assert_int_equal(okv_tx_begin(f->cl, &t), OKV_OK);
    okv_value *v = NULL;
    assert_int_equal(okv_tx_get(t, TABLE, f->key[0], strlen(f->key[0]), &v, 10000), OKV_OK);
    okv_value_free(v);
    assert_int_equal(okv_tx_add(t, TABLE, f->key[0], strlen(f->key[0]), -7), OKV_OK);
    assert_int_equal(okv_tx_add(t, TABLE, f->key[1], strlen(f->key[1]), 7), OKV_OK);
    int rc = okv_tx_commit(t, &o, 20000);
    int st = tx_status_settled(f, t, o.txn_id);
    if (rc != OKV_EUNKNOWN)
        assert_int_equal(st, rc);
    okv_tx_free(t);
    int moved = st == OKV_OK;
    int64_t want[2] = { INIT - 7 * moved, INIT + 7 * moved };
    expect_balances(f, want);
    assert_int_equal(okv_tx_begin(f->cl, &t), OKV_OK);
    assert_int_equal(okv_tx_get(t, TABLE, f->key[0], strlen(f->key[0]), &v, 10000), OKV_OK);
    okv_value_free(v);
    put_counter(f, f->key[0], INIT);   /* what it read changes */
    assert_int_equal(okv_tx_add(t, TABLE, f->key[1], strlen(f->key[1]), 1), OKV_OK);
    rc = okv_tx_commit(t, &o, 20000);
    if (rc != OKV_EUNKNOWN)
        assert_int_equal(rc, OKV_ECONFLICT);
    assert_int_equal(tx_status_settled(f, t, o.txn_id), OKV_ECONFLICT);
    okv_tx_free(t);

    /* A read-only scan over both partitions checks each one at commit:
     * unchanged, it commits; an insert in the range, in whichever
     * partition, is a conflict. */
    okv_scan_opts sc = OKV_SCAN_OPTS_INIT;
    sc.start = "i";
    sc.start_len = 1;
    sc.end = "j";
    sc.end_len = 1;
    sc.timeout_ms = 10000;
    okv_scan_result *r = NULL;
    assert_int_equal(okv_tx_begin(f->cl, &t), OKV_OK);
    assert_int_equal(okv_tx_scan(t, TABLE, &sc, &r), OKV_OK);
    assert_int_equal(okv_scan_result_count(r), 2);
    okv_scan_result_free(r);
    assert_int_equal(okv_tx_commit(t, &o, 20000), OKV_OK);
    okv_tx_free(t);
    assert_int_equal(okv_tx_begin(f->cl, &t), OKV_OK);
    assert_int_equal(okv_tx_scan(t, TABLE, &sc, &r), OKV_OK);
    okv_scan_result_free(r);
    put_counter(f, "ic-new", 1);
    assert_int_equal(okv_tx_commit(t, &o, 20000), OKV_ECONFLICT);
    okv_tx_free(t);
}

/* ---- b. a refusal at the partition that is not the coordinator -------------- */

static void test_tpc__condition_failing_at_a_participant_aborts_everything(void **state)
{
    fx *f = *state;
    pick_accounts(f, "acct", 2);
    const char *A = f->key[0], *B = f->key[1];
    char note[64];
    snprintf(note, sizeof note, "%.40s/note", B);   /* B's partition */
    assert_int_equal(part_of(f, note), part_of(f, B));
    put_counter(f, A, INIT);
    put_counter(f, B, INIT);
    okv_txn_outcome o;

    /* 1. Conditions: B >= 0 (holds), A >= 0 (holds), B == 999 (fails).
     * Writes: A first (A's partition coordinates), then B. In B's share
     * the failing condition is its second; in the request the third. */
    okv_txn_req *t;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_compare(t, TABLE, B, strlen(B), OKV_GE, 0), OKV_OK);
    assert_int_equal(okv_txn_req_compare(t, TABLE, A, strlen(A), OKV_GE, 0), OKV_OK);
    assert_int_equal(okv_txn_req_compare(t, TABLE, B, strlen(B), OKV_EQ, 999), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, TABLE, A, strlen(A), -10), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, TABLE, B, strlen(B), 10), OKV_OK);
    int rc = commit_definite(f->cl, t, &o, "condition at B");
    const char *msg = okv_errmsg(f->cl);
    okv_txn_req_free(t);
    printf("  b1: %s, failed %u reason %d: %s\n", okv_strerror(rc), o.failed, o.reason, msg);
    assert_int_equal(rc, OKV_ECONDITION);
    assert_int_equal(o.failed, 2);
    assert_int_equal(o.reason, OKV_TXN_CONDITION);

    /* 2. A floor: condition A exists; writes A += 500 (coordinator),
     * note := "x" and B -= 500 floor 0 (fails) in B's partition: write 2,
     * item 1 + 2 = 3 in the request. */
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_exists(t, TABLE, A, strlen(A)), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, TABLE, A, strlen(A), 500), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, TABLE, note, strlen(note), "x", 1), OKV_OK);
    assert_int_equal(okv_txn_req_add_floor(t, TABLE, B, strlen(B), -500, 0), OKV_OK);
    rc = commit_definite(f->cl, t, &o, "floor at B");
    msg = okv_errmsg(f->cl);
    okv_txn_req_free(t);
    printf("  b2: %s, failed %u reason %d: %s\n", okv_strerror(rc), o.failed, o.reason, msg);
    assert_int_equal(rc, OKV_ECONDITION);
    assert_int_equal(o.failed, 3);
    assert_int_equal(o.reason, OKV_TXN_FLOOR);

    /* Nothing applied anywhere: A, B as they were, the note absent. */
    const char *keys[3] = { A, B, note };
    int64_t want[3] = { INIT, INIT, 0 };
    int present[3] = { 1, 1, 0 };
    expect_everywhere(f, keys, want, present, 3);

    /* And nothing is left locked: the same keys commit now. */
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    assert_int_equal(okv_txn_req_add(t, TABLE, A, strlen(A), -10), OKV_OK);
    assert_int_equal(okv_txn_req_put(t, TABLE, note, strlen(note), "y", 1), OKV_OK);
    assert_int_equal(okv_txn_req_add_floor(t, TABLE, B, strlen(B), 10, 0), OKV_OK);
    assert_int_equal(commit_definite(f->cl, t, &o, "after the aborts"), OKV_OK);
    okv_txn_req_free(t);
    int64_t want2[2] = { INIT - 10, INIT + 10 };
    f->nacc = 2;
    expect_balances(f, want2);
}

/* ---- c, d: streams of transfers, every outcome recorded --------------------- */

typedef struct xfer {
    int nw;
    int key[3];          /* index into fx.key */
    int64_t delta[3];
    int floor[3];        /* add_floor(..., 0) */
    int rc;              /* okv_txn_commit's answer (the last attempt's) */
    uint64_t txn_id;
    int64_t t_start;     /* monotonic ms, the last attempt's start */
    int applied;         /* 1, 0, or -1 unknown */
    int worker;
} xfer;

static okv_txn_req *xfer_req(const fx *f, const xfer *x)
{
    okv_txn_req *t;
    if (okv_txn_req_new(&t) != OKV_OK)
        return NULL;
    for (int i = 0; i < x->nw; i++) {
        const char *k = f->key[x->key[i]];
        int rc = x->floor[i] ? okv_txn_req_add_floor(t, TABLE, k, strlen(k), x->delta[i], 0)
                             : okv_txn_req_add(t, TABLE, k, strlen(k), x->delta[i]);
        if (rc != OKV_OK) {
            okv_txn_req_free(t);
            return NULL;
        }
    }
    return t;
}

typedef struct worker {
    fx *f;
    int id;
    okv_client *cl;
    unsigned seed;
    int want;            /* transfers to do; -1: until stop */
    int hub;             /* d: every transfer's first write is account 0 */
    int with_hits;       /* c: transfers touching account 0 add 1 to HITS */
    int retry_conflicts;
    int64_t deadline;
    atomic_int *stop;
    atomic_int *oks;
    xfer *log;
    int n;
    int conflicts;       /* ECONFLICT attempts retried */
    int errors;          /* answers other than OK / ECONDITION / ECONFLICT / ambiguous */
    char first_error[256];
} worker;

static void random_xfer(worker *w, xfer *x)
{
    const fx *f = w->f;
    memset(x, 0, sizeof *x);
    x->worker = w->id;
    int64_t amt = 1 + (int64_t)(rand_r(&w->seed) % 40u);
    if (w->hub) {
        int other = 1 + (int)(rand_r(&w->seed) % (unsigned)(f->nacc - 1));
        int out = (int)(rand_r(&w->seed) % 2u);
        /* account 0's write first, whichever way the money goes */
        x->key[0] = 0;
        x->key[1] = other;
        x->delta[0] = out ? -amt : amt;
        x->delta[1] = out ? amt : -amt;
        x->floor[0] = out;
        x->floor[1] = !out;
        x->nw = 2;
        return;
    }
    int a, b;
    a = (int)(rand_r(&w->seed) % (unsigned)f->nacc);
    do
        b = (int)(rand_r(&w->seed) % (unsigned)f->nacc);
    while (b == a);
    x->key[0] = a;
    x->delta[0] = -amt;
    x->floor[0] = 1;
    x->key[1] = b;
    x->delta[1] = amt;
    x->nw = 2;
    if (w->with_hits && (a == 0 || b == 0)) {
        x->key[2] = HITS;
        x->delta[2] = 1;
        x->nw = 3;
    }
}

static int definite(int rc) { return rc == OKV_OK || rc == OKV_ECONDITION || rc == OKV_ECONFLICT; }

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; w->want < 0 || i < w->want; i++) {
        if (atomic_load(w->stop) || now_ms() > w->deadline || w->n >= MAX_XFERS)
            break;
        xfer x;
        random_xfer(w, &x);
        okv_txn_req *t = xfer_req(w->f, &x);
        if (!t) {
            w->errors++;
            break;
        }
        for (int attempt = 0;; attempt++) {
            okv_txn_outcome o;
            x.t_start = now_ms();
            x.rc = okv_txn_commit(w->cl, t, &o, CALL_MS);
            x.txn_id = o.txn_id;
            if (x.rc == OKV_ECONFLICT && w->retry_conflicts && attempt < 500 &&
                now_ms() < w->deadline && !atomic_load(w->stop)) {
                w->conflicts++;
                sleep_ms(5 + (int)(rand_r(&w->seed) % (unsigned)(10 + 10 * (attempt % 8))));
                continue;
            }
            break;
        }
        okv_txn_req_free(t);
        if (x.rc == OKV_ECONFLICT)
            sleep_ms(20);   /* d: the stream goes on, not as fast as it can */
        if (!definite(x.rc) && x.rc != OKV_EUNKNOWN && x.rc != OKV_EUNAVAILABLE &&
            x.rc != OKV_ETIMEDOUT && !w->errors++)
            snprintf(w->first_error, sizeof w->first_error, "%s: %s", okv_strerror(x.rc),
                     okv_errmsg(w->cl));
        x.applied = x.rc == OKV_OK ? 1 : definite(x.rc) ? 0 : -1;
        if (x.rc == OKV_OK)
            atomic_fetch_add(w->oks, 1);
        w->log[w->n++] = x;
    }
    return NULL;
}

/* c: plain puts of HITS while the transfers run. */
#define MAX_PUTS 1024
typedef struct put_rec {
    int64_t v;
    int rc;
    int64_t t_end;
} put_rec;

typedef struct putter {
    fx *f;
    okv_client *cl;
    atomic_int *stop;
    put_rec puts[MAX_PUTS];
    int n;
} putter;

static void *putter_main(void *arg)
{
    putter *p = arg;
    const char *k = p->f->key[HITS];
    while (!atomic_load(p->stop) && p->n < MAX_PUTS) {
        put_rec *r = &p->puts[p->n];
        r->v = (int64_t)(p->n + 1) * 1000000;
        uint8_t b[8];
        okv_counter_encode(r->v, b);
        r->rc = okv_put(p->cl, TABLE, k, strlen(k), b, 8, NULL, 10000);
        r->t_end = now_ms();
        p->n++;
        sleep_ms(150);
    }
    return NULL;
}

/* Waits until nothing holds a lock on the keys: a transaction adding 0 to
 * each commits (bounded). */
static void settle_locks(fx *f, int with_hits)
{
    okv_txn_req *t;
    assert_int_equal(okv_txn_req_new(&t), OKV_OK);
    for (int i = 0; i < f->nacc; i++)
        assert_int_equal(okv_txn_req_add(t, TABLE, f->key[i], strlen(f->key[i]), 0), OKV_OK);
    if (with_hits)
        assert_int_equal(okv_txn_req_add(t, TABLE, f->key[HITS], strlen(f->key[HITS]), 0),
                         OKV_OK);
    int64_t t0 = now_ms(), end = t0 + BOUND_MS;
    int rc, tries = 0;
    for (;;) {
        okv_txn_outcome o;
        rc = okv_txn_commit(f->cl, t, &o, CALL_MS);
        tries++;
        if (rc == OKV_OK)
            break;
        if ((rc != OKV_ECONFLICT && !transient(rc)) || now_ms() > end)
            fail_msg("a transaction adding 0 to every account did not commit within %d ms: "
                     "%s: %s", BOUND_MS, okv_strerror(rc), okv_errmsg(f->cl));
        sleep_ms(200);
    }
    okv_txn_req_free(t);
    printf("  locks settled: a transaction on every key committed after %d tries, %lld ms\n",
           tries, (long long)(now_ms() - t0));
}

/* Settles every ambiguous outcome with okv_txn_status, through the client
 * that committed it (its client id names the transaction). */
static int resolve_unknowns(fx *f, worker *ws, int nw)
{
    int unknown = 0, resolved = 0;
    for (int w = 0; w < nw; w++)
        for (int i = 0; i < ws[w].n; i++) {
            xfer *x = &ws[w].log[i];
            if (x->applied >= 0)
                continue;
            okv_txn_req *t = xfer_req(f, x);
            assert_non_null(t);
            okv_txn_outcome o;
            int rc = settle_status(ws[w].cl, t, x->txn_id, &o, 20000);
            okv_txn_req_free(t);
            printf("  worker %d transfer %d (txn %llu) answered %s; status: %s\n", w, i,
                   (unsigned long long)x->txn_id, okv_strerror(x->rc), okv_strerror(rc));
            if (rc == OKV_OK || rc == OKV_ECONFLICT || rc == OKV_ECONDITION) {
                x->applied = rc == OKV_OK;
                resolved++;
            } else {
                unknown++;
            }
        }
    if (resolved || unknown)
        printf("  %d ambiguous outcomes settled by okv_txn_status, %d still unknown\n", resolved,
               unknown);
    return unknown;
}

/* Reads every account (and HITS if asked) through cl until two rounds in
 * a row agree (bounded): a state no transaction was halfway through. */
static void snapshot(fx *f, okv_client *cl, const char *via, int with_hits, int64_t *vals)
{
    int64_t prev[MAX_ACC + 1];
    int n = with_hits ? HITS + 1 : f->nacc;
    int64_t end = now_ms() + BOUND_MS;
    for (int round = 0;; round++) {
        for (int i = 0; i < n; i++) {
            if (i >= f->nacc && i != HITS) {
                vals[i] = 0;
                continue;
            }
            if (get_counter(cl, f->key[i], &vals[i], via) == OKV_ENOTFOUND) {
                if (i != HITS)
                    fail_msg("%s: account %s is missing", via, f->key[i]);
                vals[i] = 0;
            }
        }
        if (round > 0 && memcmp(prev, vals, (size_t)n * sizeof *vals) == 0)
            return;
        if (now_ms() > end)
            fail_msg("%s: the balances kept changing for %d ms", via, BOUND_MS);
        memcpy(prev, vals, (size_t)n * sizeof *vals);
    }
}

/* Is target a sum of some subset of the unknown transfers' vectors? */
static int subset_sum(const fx *f, xfer **u, int nu, const int64_t *target)
{
    for (uint64_t mask = 0; mask < (1ull << nu); mask++) {
        int64_t s[MAX_ACC] = { 0 };
        for (int j = 0; j < nu; j++)
            if (mask & (1ull << j))
                for (int k = 0; k < u[j]->nw; k++)
                    if (u[j]->key[k] < f->nacc)
                        s[u[j]->key[k]] += u[j]->delta[k];
        if (memcmp(s, target, (size_t)f->nacc * sizeof *s) == 0)
            return 1;
    }
    return 0;
}

/* The checks on one snapshot of the balances. */
static void check_ledger(fx *f, worker *ws, int nw, const int64_t *vals, const char *via)
{
    int64_t sum = 0, base[MAX_ACC];
    for (int i = 0; i < f->nacc; i++) {
        sum += vals[i];
        base[i] = INIT;
        if (vals[i] < 0)
            fail_msg("%s: %s = %lld, below its floor 0", via, f->key[i], (long long)vals[i]);
    }
    if (sum != (int64_t)f->nacc * INIT)
        fail_msg("%s: the balances sum to %lld, not %lld", via, (long long)sum,
                 (long long)f->nacc * INIT);
    static xfer *u[MAX_XFERS];
    int nu = 0;
    for (int w = 0; w < nw; w++)
        for (int i = 0; i < ws[w].n; i++) {
            xfer *x = &ws[w].log[i];
            if (x->applied < 0 && nu < MAX_XFERS)
                u[nu++] = x;
            if (x->applied != 1)
                continue;
            for (int k = 0; k < x->nw; k++)
                if (x->key[k] < f->nacc)
                    base[x->key[k]] += x->delta[k];
        }
    int64_t diff[MAX_ACC];
    for (int i = 0; i < f->nacc; i++)
        diff[i] = vals[i] - base[i];
    if (nu > 20) {
        printf("  %s: %d outcomes unknown: only the sum and the floors checked\n", via, nu);
        return;
    }
    if (!subset_sum(f, u, nu, diff)) {
        for (int i = 0; i < f->nacc; i++)
            fprintf(stderr, "  %s: %s = %lld, committed transfers make it %lld\n", via,
                    f->key[i], (long long)vals[i], (long long)base[i]);
        fail_msg("%s: the balances are not the committed transfers plus any subset of the %d "
                 "with unknown outcomes", via, nu);
    }
}

/* c: the counter HITS against the plain puts and the transfers adding to it. */
static void check_hits(worker *ws, int nw, const putter *p, int64_t hits, const char *via)
{
    int last_ok = -1;
    int64_t vmax = 0;
    for (int i = 0; i < p->n; i++) {
        if (p->puts[i].rc == OKV_OK)
            last_ok = i;
        if (p->puts[i].rc == OKV_OK || p->puts[i].rc == OKV_EUNKNOWN)
            vmax = p->puts[i].v;
    }
    int maybe = 0, after = 0;
    for (int w = 0; w < nw; w++)
        for (int i = 0; i < ws[w].n; i++) {
            const xfer *x = &ws[w].log[i];
            if (x->nw < 3 || x->applied == 0)
                continue;
            maybe++;
            if (x->applied == 1 && last_ok >= 0 && x->t_start > p->puts[last_ok].t_end)
                after++;
        }
    if (last_ok < 0)
        fail_msg("no plain put of the counter succeeded in %d tries", p->n);
    int64_t vok = p->puts[last_ok].v;
    if (hits < vok)
        fail_msg("%s: the counter is %lld, below %lld that an acknowledged put wrote: a "
                 "transaction's RESOLVE overwrote a put that came after its PREPARE",
                 via, (long long)hits, (long long)vok);
    if (hits - vok < after)
        fail_msg("%s: the counter is %lld: %d committed transfers that began after the last "
                 "acknowledged put (%lld) are missing from it", via, (long long)hits, after,
                 (long long)vok);
    if (hits > vmax + maybe)
        fail_msg("%s: the counter is %lld, above the last put that may have applied (%lld) "
                 "plus every transfer adding to it (%d)", via, (long long)hits,
                 (long long)vmax, maybe);
}

static void start_workers(fx *f, worker *ws, pthread_t *th, int nw, int want, int hub,
                          int with_hits, atomic_int *stop, atomic_int *oks)
{
    for (int i = 0; i < nw; i++) {
        worker *w = &ws[i];
        memset(w, 0, sizeof *w);
        w->f = f;
        w->id = i;
        w->seed = (unsigned)(getpid() * 7919 + i * 104729 + now_ms());
        w->want = want;
        w->hub = hub;
        w->with_hits = with_hits;
        w->retry_conflicts = !hub;
        w->deadline = now_ms() + 4 * BOUND_MS;
        w->stop = stop;
        w->oks = oks;
        w->log = calloc(MAX_XFERS, sizeof *w->log);
        assert_non_null(w->log);
        assert_int_equal(okv_connect(&w->cl, f->c->all, NULL), OKV_OK);
    }
    for (int i = 0; i < nw; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
}

static void report(worker *ws, int nw, const char *tag)
{
    int n = 0, ok = 0, cond = 0, confl = 0, amb = 0, retried = 0;
    for (int w = 0; w < nw; w++) {
        retried += ws[w].conflicts;
        for (int i = 0; i < ws[w].n; i++) {
            int rc = ws[w].log[i].rc;
            n++;
            ok += rc == OKV_OK;
            cond += rc == OKV_ECONDITION;
            confl += rc == OKV_ECONFLICT;
            amb += !definite(rc);
        }
        if (ws[w].errors)
            fail_msg("worker %d: %d unexpected answers, the first %s", w, ws[w].errors,
                     ws[w].first_error);
    }
    printf("  %s: %d transfers: %d committed, %d refused by a floor, %d conflicted "
           "(after %d conflicting tries retried), %d ambiguous\n",
           tag, n, ok, cond, confl, retried, amb);
}

static void check_everywhere(fx *f, worker *ws, int nw, const putter *p, int unknown)
{
    int with_hits = p != NULL;
    int64_t all[MAX_ACC + 1];
    okv_client *fresh;
    assert_int_equal(okv_connect(&fresh, f->c->all, NULL), OKV_OK);
    snapshot(f, fresh, "fresh client", with_hits, all);
    okv_close(fresh);
    check_ledger(f, ws, nw, all, "fresh client");
    if (p)
        check_hits(ws, nw, p, all[HITS], "fresh client");
    for (int id = 1; id <= NODES; id++) {
        char via[32];
        snprintf(via, sizeof via, "node %d", id);
        if (okv_cluster_wait_caught_up(f->c, id, BOUND_MS) != 0)
            fail_msg("node %d did not catch up within %d ms", id, BOUND_MS);
        okv_client *one;
        assert_int_equal(okv_cluster_connect_one(f->c, id, &one), OKV_OK);
        int64_t v[MAX_ACC + 1];
        snapshot(f, one, via, with_hits, v);
        okv_close(one);
        check_ledger(f, ws, nw, v, via);
        if (p)
            check_hits(ws, nw, p, v[HITS], via);
        int n = with_hits ? HITS + 1 : f->nacc;
        for (int i = 0; !unknown && i < n; i++)
            if (v[i] != all[i] && (i < f->nacc || i == HITS))
                fail_msg("%s: %s = %lld, through every node %lld", via, f->key[i],
                         (long long)v[i], (long long)all[i]);
    }
}

static void free_workers(worker *ws, int nw)
{
    for (int i = 0; i < nw; i++) {
        okv_close(ws[i].cl);
        free(ws[i].log);
    }
}

/* ---- c. concurrent transfers, and plain puts meeting their locks ---------- */

#define C_WORKERS 4
#define C_TRANSFERS 50

static void test_tpc__concurrent_transfers_conserve_the_sum(void **state)
{
    fx *f = *state;
    pick_accounts(f, "acc", 6);
    for (int i = 0; i < f->nacc; i++) {
        put_counter(f, f->key[i], INIT);
        printf("  c: %s in partition %u\n", f->key[i], part_of(f, f->key[i]));
    }
    atomic_int stop = 0, oks = 0;
    worker ws[C_WORKERS];
    pthread_t th[C_WORKERS];
    putter *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->f = f;
    p->stop = &stop;
    assert_int_equal(okv_connect(&p->cl, f->c->all, NULL), OKV_OK);
    pthread_t pt;
    int64_t t0 = now_ms();
    start_workers(f, ws, th, C_WORKERS, C_TRANSFERS, 0, 1, &stop, &oks);
    assert_int_equal(pthread_create(&pt, NULL, putter_main, p), 0);
    for (int i = 0; i < C_WORKERS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&stop, 1);
    pthread_join(pt, NULL);
    printf("  c: %d workers done in %lld ms; %d plain puts of %s\n", C_WORKERS,
           (long long)(now_ms() - t0), p->n, f->key[HITS]);
    report(ws, C_WORKERS, "c");
    int put_ok = 0, put_unavail = 0, put_other = 0;
    for (int i = 0; i < p->n; i++) {
        put_ok += p->puts[i].rc == OKV_OK;
        put_unavail += p->puts[i].rc == OKV_EUNAVAILABLE || p->puts[i].rc == OKV_ETIMEDOUT;
        if (p->puts[i].rc != OKV_OK && p->puts[i].rc != OKV_EUNAVAILABLE &&
            p->puts[i].rc != OKV_ETIMEDOUT && p->puts[i].rc != OKV_EUNKNOWN)
            put_other++;
    }
    printf("  c: plain puts: %d acknowledged, %d not applied (unavailable/timed out), %d other\n",
           put_ok, put_unavail, put_other);
    assert_int_equal(put_other, 0);
    assert_true(atomic_load(&oks) > 0);

    settle_locks(f, 1);
    int unknown = resolve_unknowns(f, ws, C_WORKERS);
    check_everywhere(f, ws, C_WORKERS, p, unknown);
    okv_close(p->cl);
    free(p);
    free_workers(ws, C_WORKERS);
}

/* ---- d. kill -9 the coordinator partition's leader mid-stream --------------- */

#define D_WORKERS 3
#define D_OKS 10   /* committed transfers before the kill, and after the restart */

static int wait_oks(atomic_int *oks, int want, int bound_ms)
{
    int64_t end = now_ms() + bound_ms;
    while (atomic_load(oks) < want) {
        if (now_ms() > end)
            return -1;
        sleep_ms(20);
    }
    return 0;
}

static void test_tpc__kill9_coordinator_leader_mid_stream(void **state)
{
    fx *f = *state;
    pick_accounts(f, "hub", 4);
    for (int i = 0; i < f->nacc; i++)
        put_counter(f, f->key[i], INIT);
    uint32_t pc = part_of(f, f->key[0]);   /* every transfer's coordinator */
    atomic_int stop = 0, oks = 0;
    worker ws[D_WORKERS];
    pthread_t th[D_WORKERS];
    start_workers(f, ws, th, D_WORKERS, -1, 1, 0, &stop, &oks);
    int before = wait_oks(&oks, D_OKS, BOUND_MS);
    uint64_t leader = 0;
    for (int64_t end = now_ms() + BOUND_MS; !leader && now_ms() < end;) {
        leader = okv_cluster_leader(f->c, f->table_id, pc);
        if (!leader)
            sleep_ms(50);
    }
    int kst = -1, rst = -1, after = -1, at_kill = atomic_load(&oks), at_restart = 0;
    if (before == 0 && leader) {
        kst = okv_cluster_node_stop(f->c, (int)leader, 1);
        sleep_ms(1000);   /* the stream goes on without it */
        at_restart = atomic_load(&oks);
        rst = okv_cluster_node_start(f->c, (int)leader);
        after = wait_oks(&oks, at_restart + D_OKS, BOUND_MS);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < D_WORKERS; i++)
        pthread_join(th[i], NULL);
    printf("  d: coordinator partition %u, its leader node %llu killed after %d commits, "
           "restarted after %d, %d at the end\n",
           pc, (unsigned long long)leader, at_kill, at_restart, atomic_load(&oks));
    if (before != 0)
        fail_msg("fewer than %d transfers committed within %d ms", D_OKS, BOUND_MS);
    assert_true(leader > 0);
    assert_int_equal(kst, 128 + SIGKILL);
    assert_int_equal(rst, 0);
    if (after != 0)
        fail_msg("fewer than %d transfers committed within %d ms of the restart", D_OKS,
                 BOUND_MS);
    report(ws, D_WORKERS, "d");
    if (okv_cluster_wait_leaders(f->c, BOUND_MS) != 0)
        fail_msg("not every partition has a leader %d ms after the restart", BOUND_MS);
    settle_locks(f, 0);
    int unknown = resolve_unknowns(f, ws, D_WORKERS);
    check_everywhere(f, ws, D_WORKERS, NULL, unknown);
    free_workers(ws, D_WORKERS);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tpc__transfer_across_partitions_commits_atomically),
        T(test_tpc__interactive_status_and_scans),
        T(test_tpc__condition_failing_at_a_participant_aborts_everything),
        T(test_tpc__concurrent_transfers_conserve_the_sum),
        cmocka_unit_test_setup_teardown(test_tpc__kill9_coordinator_leader_mid_stream,
                                        setup_short_deadline, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getenv("OKV_TEST_FILTER"))   /* e.g. OKV_TEST_FILTER='*kill9*' */
        cmocka_set_test_filter(getenv("OKV_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

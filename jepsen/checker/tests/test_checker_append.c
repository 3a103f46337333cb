/*
 * test_checker_append.c — the list-append checker (append_check.h) on
 * hand-built histories: each anomaly class it must report, named, with the
 * transactions of the cycle in the explanation; histories it must accept
 * (serial, concurrent, unknown outcomes); format errors; and randomized
 * strictly serializable executions that must be valid, and turn invalid
 * when one read loses an element.
 */
#include "checker_test.h"

#include "sbuf.h"

/* Micro-ops as history JSON. */
#define APP(k, v) "[\"append\"," #k "," #v "]"
#define RD(k, l) "[\"r\"," #k "," l "]"
#define NIL "null"

static check_result *check(const char *json) { return run_checker(RUN_APPEND, json, NULL); }

/* r must be invalid with anomaly `name` counted `count` times, and the
 * explanation must show `name:` and each of the invoke indices given. */
static void expect_anomaly(check_result *r, const char *name, uint64_t count, const char *txn1,
                           const char *txn2)
{
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, name), count);
    char head[64];
    snprintf(head, sizeof head, "%s: %" PRIu64 " ", name, count);
    assert_contains(r->explanation, head);
    const char *section = strstr(r->explanation, head);
    if (txn1)
        assert_contains(section, txn1);
    if (txn2)
        assert_contains(section, txn2);
}

static void test_append__serial_is_valid(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) "," OP(1, ok, txn, "[" APP(1, 1) "]", 0) ","
        OP(2, invoke, txn, "[" RD(1, NIL) "," APP(2, 2) "]", 1) ","
        OP(3, ok, txn, "[" RD(1, "[1]") "," APP(2, 2) "]", 1) ","
        OP(4, invoke, txn, "[" APP(3, 7) "," RD(3, NIL) "," RD(1, NIL) "]", 0) ","
        OP(5, ok, txn, "[" APP(3, 7) "," RD(3, "[7]") "," RD(1, "[1]") "]", 0) ","
        OP(6, invoke, txn, "[" RD(1, NIL) "," RD(2, NIL) "," APP(1, 8) "]", 1) ","
        OP(7, ok, txn, "[" RD(1, "[1]") "," RD(2, "[2]") "," APP(1, 8) "]", 1) ","
        OP(8, invoke, txn, "[" RD(1, NIL) "]", 0) "," OP(9, ok, txn, "[" RD(1, "[1,8]") "]", 0) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    assert_int_equal(r->ops, 5);
    assert_int_equal(r->keys, 3);
    assert_int_equal(check_result_count_of(r, "ok-reads"), 6);
    assert_true(check_result_count_of(r, "rt") >= 4);
    assert_string_equal(r->explanation, "");
    check_result_free(r);
}

static void test_append__concurrent_non_conflicting_is_valid(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) ","
        OP(1, invoke, txn, "[" APP(2, 2) "]", 1) ","
        OP(2, invoke, txn, "[" RD(1, NIL) "]", 2) ","
        OP(3, ok, txn, "[" RD(1, "[]") "]", 2) ","     /* concurrent with the append: fine */
        OP(4, ok, txn, "[" APP(1, 1) "]", 0) ","
        OP(5, ok, txn, "[" APP(2, 2) "]", 1) ","
        OP(6, invoke, txn, "[" RD(1, NIL) "," RD(2, NIL) "]", 2) ","
        OP(7, ok, txn, "[" RD(1, "[1]") "," RD(2, "[2]") "]", 2) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    check_result_free(r);
}

static void test_append__unknown_outcomes_are_valid(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) "," OP(1, info, txn, "[" APP(1, 1) "]", 0) ","
        OP(2, invoke, txn, "[" APP(1, 2) "]", 1) "," OP(3, info, txn, "[" APP(1, 2) "]", 1) ","
        OP(4, invoke, txn, "[" APP(2, 3) "]", 2) "," OP(5, fail, txn, "[" APP(2, 3) "]", 2) ","
        OP(6, invoke, txn, "[" APP(2, 5) "]", 4) ","   /* never completes */
        OP(7, invoke, txn, "[" RD(1, NIL) "," RD(2, NIL) "]", 3) ","
        OP(8, ok, txn, "[" RD(1, "[1]") "," RD(2, "[5]") "]", 3) ","
        OP(9, invoke, txn, "[" RD(2, NIL) "]", 5) "," OP(10, fail, txn, "[" RD(2, NIL) "]", 5) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    assert_int_equal(check_result_count_of(r, "unknown"), 3);
    assert_int_equal(check_result_count_of(r, "failed"), 2);
    assert_int_equal(check_result_count_of(r, "nodes"), 3);   /* the reader, 1's and 5's writers */
    check_result_free(r);
}

static void test_append__no_read_is_unknown(void **state)
{
    (void)state;
    check_result *r = check("[" OP(0, invoke, txn, "[" APP(1, 1) "]", 0) ","
                            OP(1, ok, txn, "[" APP(1, 1) "]", 0) "]");
    assert_int_equal(r->validity, CHECK_UNKNOWN);
    check_result_free(r);
}

/* T1 and T2 append to keys 1 and 2 in opposite orders. */
static void test_append__g0(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "," APP(2, 2) "]", 0) ","
        OP(1, invoke, txn, "[" APP(1, 3) "," APP(2, 4) "]", 1) ","
        OP(2, ok, txn, "[" APP(1, 1) "," APP(2, 2) "]", 0) ","
        OP(3, ok, txn, "[" APP(1, 3) "," APP(2, 4) "]", 1) ","
        OP(4, invoke, txn, "[" RD(1, NIL) "," RD(2, NIL) "]", 2) ","
        OP(5, ok, txn, "[" RD(1, "[1,3]") "," RD(2, "[4,2]") "]", 2) "]");
    expect_anomaly(r, "G0", 1, "= index 0 (process 0", "= index 1 (process 1");
    assert_contains(r->explanation, "-ww-> T");
    assert_contains(r->explanation, "appended 4 to key 2, and T");
    assert_int_equal(check_result_anomaly_count(r, "G1c"), 0);
    assert_int_equal(check_result_anomaly_count(r, "G-single"), 0);
    assert_int_equal(r->anomalies[0].examples[0], 0);
    check_result_free(r);
}

static void test_append__g1a(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) "," OP(1, fail, txn, "[" APP(1, 1) "]", 0) ","
        OP(2, invoke, txn, "[" RD(1, NIL) "]", 1) "," OP(3, ok, txn, "[" RD(1, "[1]") "]", 1) "]");
    expect_anomaly(r, "G1a", 1, "T1 = index 2 (process 1", "T2 = index 0 (process 0");
    assert_contains(r->explanation, "appended by T2, which failed");
    check_result_free(r);
}

/* T2 sees T1's first append to key 1 but not its second. */
static void test_append__g1b(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "," APP(1, 2) "]", 0) ","
        OP(1, invoke, txn, "[" RD(1, NIL) "]", 1) ","
        OP(2, ok, txn, "[" RD(1, "[1]") "]", 1) ","
        OP(3, ok, txn, "[" APP(1, 1) "," APP(1, 2) "]", 0) ","
        OP(4, invoke, txn, "[" RD(1, NIL) "]", 1) "," OP(5, ok, txn, "[" RD(1, "[1,2]") "]", 1) "]");
    expect_anomaly(r, "G1b", 1, "T1 = index 1 (process 1", "T2 = index 0 (process 0");
    assert_contains(r->explanation, "intermediate read");
    check_result_free(r);
}

/* Each reads the other's append: information flows in a circle. */
static void test_append__g1c(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "," RD(2, NIL) "]", 0) ","
        OP(1, invoke, txn, "[" APP(2, 3) "," RD(1, NIL) "]", 1) ","
        OP(2, ok, txn, "[" APP(1, 1) "," RD(2, "[3]") "]", 0) ","
        OP(3, ok, txn, "[" APP(2, 3) "," RD(1, "[1]") "]", 1) "]");
    expect_anomaly(r, "G1c", 1, "= index 0 (process 0", "= index 1 (process 1");
    assert_contains(r->explanation, "-wr-> T");
    assert_int_equal(check_result_anomaly_count(r, "G0"), 0);
    check_result_free(r);
}

/* Read skew: T1 sees T2's append to key 2 but not the one to key 1. */
static void test_append__g_single(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "," APP(2, 2) "]", 0) ","
        OP(1, ok, txn, "[" APP(1, 1) "," APP(2, 2) "]", 0) ","
        OP(2, invoke, txn, "[" RD(1, NIL) "," RD(2, NIL) "]", 1) ","
        OP(3, invoke, txn, "[" APP(1, 3) "," APP(2, 4) "]", 2) ","
        OP(4, ok, txn, "[" RD(1, "[1]") "," RD(2, "[2,4]") "]", 1) ","
        OP(5, ok, txn, "[" APP(1, 3) "," APP(2, 4) "]", 2) ","
        OP(6, invoke, txn, "[" RD(1, NIL) "]", 0) "," OP(7, ok, txn, "[" RD(1, "[1,3]") "]", 0) "]");
    expect_anomaly(r, "G-single", 1, "= index 2 (process 1", "= index 3 (process 2");
    assert_contains(r->explanation, "-rw-> T");
    assert_contains(r->explanation, "appended 3, the element after 1 in key 1's order");
    assert_int_equal(check_result_anomaly_count(r, "G2"), 0);
    check_result_free(r);
}

/* Write skew: each reads the key the other appends to, both see it empty. */
static void test_append__g2_write_skew(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" RD(1, NIL) "," APP(2, 1) "]", 0) ","
        OP(1, invoke, txn, "[" RD(2, NIL) "," APP(1, 2) "]", 1) ","
        OP(2, ok, txn, "[" RD(1, "[]") "," APP(2, 1) "]", 0) ","
        OP(3, ok, txn, "[" RD(2, "[]") "," APP(1, 2) "]", 1) ","
        OP(4, invoke, txn, "[" RD(1, NIL) "," RD(2, NIL) "]", 2) ","
        OP(5, ok, txn, "[" RD(1, "[2]") "," RD(2, "[1]") "]", 2) "]");
    expect_anomaly(r, "G2", 1, "= index 0 (process 0", "= index 1 (process 1");
    assert_contains(r->explanation, "(nothing from others)");
    assert_int_equal(check_result_anomaly_count(r, "G-single"), 0);
    assert_int_equal(check_result_anomaly_count(r, "G2-realtime"), 0);
    check_result_free(r);
}

/* A stale read: T2 begins after T1 committed its append and misses it;
 * only real time orders them. */
static void test_append__realtime_stale_read(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) "," OP(1, ok, txn, "[" APP(1, 1) "]", 0) ","
        OP(2, invoke, txn, "[" RD(1, NIL) "]", 1) "," OP(3, ok, txn, "[" RD(1, "[]") "]", 1) ","
        OP(4, invoke, txn, "[" RD(1, NIL) "]", 2) "," OP(5, ok, txn, "[" RD(1, "[1]") "]", 2) "]");
    expect_anomaly(r, "G-single-realtime", 1, "= index 0 (process 0", "= index 2 (process 1");
    assert_contains(r->explanation, "-rt-> T");
    assert_contains(r->explanation, "completed (index 1, t=0.000000s) before T");
    assert_int_equal(check_result_anomaly_count(r, "G-single"), 0);
    check_result_free(r);
}

/* T1's append was acknowledged, a read that began later lacks it, and no
 * read ever saw it. */
static void test_append__lost_append(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) "," OP(1, ok, txn, "[" APP(1, 1) "]", 0) ","
        OP(2, invoke, txn, "[" APP(1, 2) "]", 1) "," OP(3, ok, txn, "[" APP(1, 2) "]", 1) ","
        OP(4, invoke, txn, "[" RD(1, NIL) "]", 2) "," OP(5, ok, txn, "[" RD(1, "[2]") "]", 2) "]");
    expect_anomaly(r, "lost-append", 1, "T1 = index 0 (process 0", "T2 = index 4 (process 2");
    assert_contains(r->explanation, "T1 appended 1 to key 1 and committed; no read ever saw it");
    check_result_free(r);
    /* The same read invoked before the append completed proves nothing. */
    r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) "," OP(1, invoke, txn, "[" RD(1, NIL) "]", 2) ","
        OP(2, ok, txn, "[" RD(1, "[]") "]", 2) "," OP(3, ok, txn, "[" APP(1, 1) "]", 0) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    check_result_free(r);
}

static void test_append__incompatible_order(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) "," OP(1, ok, txn, "[" APP(1, 1) "]", 0) ","
        OP(2, invoke, txn, "[" APP(1, 2) "]", 0) "," OP(3, ok, txn, "[" APP(1, 2) "]", 0) ","
        OP(4, invoke, txn, "[" RD(1, NIL) "]", 1) "," OP(5, ok, txn, "[" RD(1, "[1,2]") "]", 1) ","
        OP(6, invoke, txn, "[" RD(1, NIL) "]", 2) "," OP(7, ok, txn, "[" RD(1, "[2]") "]", 2) "]");
    expect_anomaly(r, "incompatible-order", 1, "T1 = index 6 (process 2", "not a prefix of the longest read of it, [1 2]");
    check_result_free(r);
}

static void test_append__duplicates_garbage_internal_bad_value(void **state)
{
    (void)state;
    check_result *r = check("["
        OP(0, invoke, txn, "[" APP(1, 1) "]", 0) "," OP(1, ok, txn, "[" APP(1, 1) "]", 0) ","
        OP(2, invoke, txn, "[" RD(1, NIL) "]", 1) "," OP(3, ok, txn, "[" RD(1, "[1,1]") "]", 1) ","
        OP(4, invoke, txn, "[" RD(2, NIL) "]", 1) "," OP(5, ok, txn, "[" RD(2, "[99]") "]", 1) ","
        OP(6, invoke, txn, "[" APP(3, 5) "," RD(3, NIL) "]", 2) ","
        OP(7, ok, txn, "[" APP(3, 5) "," RD(3, "[]") "]", 2) ","
        OP(8, invoke, txn, "[" RD(4, NIL) "]", 3) ","
        OP(9, ok, txn, "[" RD(4, "\"not a list (3 bytes): a,b\"") "]", 3) "]");
    expect_anomaly(r, "duplicate-elements", 1, "T1 = index 2 (process 1", NULL);
    expect_anomaly(r, "garbage-read", 1, "nobody appended 99", NULL);
    expect_anomaly(r, "internal", 1, "T1 = index 6 (process 2", NULL);
    expect_anomaly(r, "bad-value", 1, "T1 = index 8 (process 3", NULL);
    check_result_free(r);
}

static void test_append__format_errors(void **state)
{
    (void)state;
    expect_check_error(RUN_APPEND, "[" OP(0, invoke, read, "null", 0) "]", "every client op must be \"txn\"");
    expect_check_error(RUN_APPEND, "[" OP(0, invoke, txn, "[[\"delete\",1,1]]", 0) "]",
                       "name must be \"append\" or \"r\"");
    expect_check_error(RUN_APPEND, "[" OP(0, invoke, txn, "[" RD(1, "[1]") "]", 0) "]",
                       "an invoked read's value must be null");
    expect_check_error(RUN_APPEND, "[" OP(0, invoke, txn, "[" APP(1, 1) "]", 0) ","
                       OP(1, invoke, txn, "[" APP(1, 1) "]", 1) "]", "value 1 is appended to key 1 twice");
    expect_check_error(RUN_APPEND, "[" OP(0, invoke, txn, "[" APP(1, 1) "]", 0) ","
                       OP(1, ok, txn, "[" APP(1, 2) "]", 0) "]", "micro-op 0 differs from the invoke's");
    expect_check_error(RUN_APPEND, "[" OP(0, invoke, txn, "[" RD(1, NIL) "]", 0) ","
                       OP(1, ok, txn, "[" RD(1, NIL) "]", 0) "]", "an ok read must hold the list");
}

/* ---- randomized: a strictly serializable store ------------------------------ */

typedef struct sim_txn {
    int nmops;
    int append[4];
    int key[4];
    int value[4];
    char read[4][512];
    int applied;
} sim_txn;

static uint64_t sim_rng;
static uint64_t sim_next(void)
{
    sim_rng ^= sim_rng << 13;
    sim_rng ^= sim_rng >> 7;
    sim_rng ^= sim_rng << 17;
    return sim_rng;
}

static void sim_mops(sbuf *b, const sim_txn *t, int with_reads)
{
    sbuf_printf(b, "[");
    for (int i = 0; i < t->nmops; i++) {
        if (t->append[i])
            sbuf_printf(b, "%s[\"append\",%d,%d]", i ? "," : "", t->key[i], t->value[i]);
        else
            sbuf_printf(b, "%s[\"r\",%d,%s]", i ? "," : "", t->key[i], with_reads ? t->read[i] : "null");
    }
    sbuf_printf(b, "]");
}

/* Processes invoke, apply atomically at one point, then complete (ok;
 * sometimes info, applied or not; sometimes fail, not applied). Each
 * transaction applies between its invoke and completion, so the history is
 * strictly serializable. Then every pending op completes and one process
 * reads each key, one transaction per key. With drop, the first of those
 * final reads whose last element was appended by a transaction that
 * completed ok loses that element: a stale read (or a lost append, or,
 * when that transaction appended to the key twice, an intermediate read)
 * that must be caught. *dropped says whether one was dropped. */
static char *simulate(uint64_t seed, int n_events, int drop, int *dropped)
{
    enum { P = 4, KEYS = 3, MAXV = 4096 };
    sim_rng = seed | 1;
    static int lists[KEYS][400];
    static char value_ok[MAXV];
    int len[KEYS] = { 0 }, next_value = 1, pid[P], index = 0;
    sim_txn cur[P];
    int state[P] = { 0 };   /* 0 idle, 1 invoked, 2 applied */
    memset(value_ok, 0, sizeof value_ok);
    for (int p = 0; p < P; p++)
        pid[p] = p;
    int next_pid = P;
    *dropped = 0;
    sbuf b = SBUF_INIT;
    sbuf_printf(&b, "[");
    for (int ev = 0; ev < n_events + 3 * P + KEYS * 3; ev++) {
        /* Main events: a random process steps. Then 3P finishing events
         * (each process in turn completes what it has), then 3 events per
         * key for process 0: invoke, apply and complete its final read. */
        int final = ev >= n_events;
        int finishing = final && ev < n_events + 3 * P;
        int p = finishing ? (ev - n_events) % P : final ? 0 : (int)(sim_next() % P);
        sim_txn *t = &cur[p];
        const char *sep = index ? "," : "";
        if (state[p] == 0 && finishing)
            continue;
        if (state[p] == 0) {
            memset(t, 0, sizeof *t);
            int k0 = (ev - n_events - 3 * P) / 3;
            if (final && k0 >= KEYS)
                continue;
            t->nmops = final ? 1 : 1 + (int)(sim_next() % 4);
            for (int i = 0; i < t->nmops; i++) {
                t->append[i] = final ? 0 : (int)(sim_next() % 2);
                t->key[i] = final ? k0 : (int)(sim_next() % KEYS);
                if (t->append[i] && len[t->key[i]] + 4 < 400 && next_value < MAXV)
                    t->value[i] = next_value++;
                else
                    t->append[i] = 0;
            }
            sbuf_printf(&b, "%s{\"index\":%d,\"type\":\"invoke\",\"f\":\"txn\",\"value\":", sep, index);
            sim_mops(&b, t, 0);
            sbuf_printf(&b, ",\"process\":%d,\"time\":%d}", pid[p], index);
            index++;
            state[p] = 1;
        } else if (state[p] == 1 && (final ? !finishing : sim_next() % 4 != 0)) {
            for (int i = 0; i < t->nmops; i++) {
                int k = t->key[i];
                if (t->append[i]) {
                    lists[k][len[k]++] = t->value[i];
                    continue;
                }
                int n = len[k];
                if (final && drop && !*dropped && n && value_ok[lists[k][n - 1]]) {
                    n--;
                    *dropped = 1;
                }
                int off = snprintf(t->read[i], sizeof t->read[i], "[");
                for (int j = 0; j < n; j++)
                    off += snprintf(t->read[i] + off, sizeof t->read[i] - (size_t)off, "%s%d",
                                    j ? "," : "", lists[k][j]);
                snprintf(t->read[i] + off, sizeof t->read[i] - (size_t)off, "]");
            }
            state[p] = 2;
        } else {
            const char *type = state[p] == 2 ? (final || sim_next() % 10 ? "ok" : "info")
                                             : (sim_next() % 2 ? "fail" : "info");
            int ok = strcmp(type, "ok") == 0;
            for (int i = 0; ok && i < t->nmops; i++)
                if (t->append[i])
                    value_ok[t->value[i]] = 1;
            sbuf_printf(&b, "%s{\"index\":%d,\"type\":\"%s\",\"f\":\"txn\",\"value\":", sep, index,
                        type);
            sim_mops(&b, t, ok);
            sbuf_printf(&b, ",\"process\":%d,\"time\":%d}", pid[p], index);
            index++;
            if (strcmp(type, "info") == 0)
                pid[p] = next_pid++;
            state[p] = 0;
        }
    }
    sbuf_printf(&b, "]");
    return sbuf_take(&b);
}

static void test_append__random_serializable_histories_are_valid(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        int dropped;
        char *json = simulate(seed * 7919, 600, 0, &dropped);
        check_result *r = check(json);
        if (r->validity != CHECK_VALID)
            fail_msg("seed %" PRIu64 ": %s\n%s", seed, check_validity_name(r->validity), r->explanation);
        assert_true(check_result_count_of(r, "ok-reads") > 20);
        check_result_free(r);
        free(json);
    }
}

static void test_append__random_with_a_stale_final_read_is_invalid(void **state)
{
    (void)state;
    int tried = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        int dropped;
        char *json = simulate(seed * 104729, 600, 1, &dropped);
        if (dropped) {
            tried++;
            check_result *r = check(json);
            if (r->validity != CHECK_INVALID)
                fail_msg("seed %" PRIu64 ": still %s", seed, check_validity_name(r->validity));
            assert_true(check_result_anomaly_count(r, "G-single-realtime") +
                        check_result_anomaly_count(r, "G2-realtime") +
                        check_result_anomaly_count(r, "lost-append") +
                        check_result_anomaly_count(r, "G1b") > 0);
            check_result_free(r);
        }
        free(json);
    }
    assert_true(tried > 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append__serial_is_valid),
        cmocka_unit_test(test_append__concurrent_non_conflicting_is_valid),
        cmocka_unit_test(test_append__unknown_outcomes_are_valid),
        cmocka_unit_test(test_append__no_read_is_unknown),
        cmocka_unit_test(test_append__g0),
        cmocka_unit_test(test_append__g1a),
        cmocka_unit_test(test_append__g1b),
        cmocka_unit_test(test_append__g1c),
        cmocka_unit_test(test_append__g_single),
        cmocka_unit_test(test_append__g2_write_skew),
        cmocka_unit_test(test_append__realtime_stale_read),
        cmocka_unit_test(test_append__lost_append),
        cmocka_unit_test(test_append__incompatible_order),
        cmocka_unit_test(test_append__duplicates_garbage_internal_bad_value),
        cmocka_unit_test(test_append__format_errors),
        cmocka_unit_test(test_append__random_serializable_histories_are_valid),
        cmocka_unit_test(test_append__random_with_a_stale_final_read_is_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

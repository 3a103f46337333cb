/*
 * test_checker_orders.c — the orders checker: a valid history with every
 * op kind, retries and replays is valid; each property, broken by hand the
 * way a planted bug breaks it, is flagged with the order, key, sku or
 * account named.
 */
#include "checker_test.h"
#include "orders_check.h"
#include "order_status.h"

static check_result *check(const char *json)
{
    history *h = parse_history(json);
    okv_error e;
    okv_error_clear(&e);
    check_result *r = NULL;
    int rc = orders_check(&r, h, &e);
    history_free(h);
    if (rc)
        fail_msg("checker: %s", e.msg);
    if (r->validity != CHECK_VALID && getenv("CHECKER_TEST_VERBOSE"))
        print_message("%s\n", r->explanation);
    return r;
}

static void expect_error(const char *json, const char *needle)
{
    history *h = parse_history(json);
    okv_error e;
    okv_error_clear(&e);
    check_result *r = NULL;
    int rc = orders_check(&r, h, &e);
    history_free(h);
    assert_int_equal(rc, OKV_EINVAL);
    assert_null(r);
    if (!strstr(e.msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", e.msg, needle);
}

/* Order tuples of customer c1: o1 (2 x s1 at 100, reserving) and o2 (1 x
 * s2 at 30, not reserving). */
#define T(paid, shipped, cancelled) "[1," #paid "," #shipped ",0," #cancelled ",0]"
#define O1(st, cap, ref, pay, times) \
    "[\"o1\",\"c1\",\"" st "\",200," #cap "," #ref ",\"" pay "\",\"a1\",\"k1\",[[\"s1\",2,100,\"o1\"]]," times "]"
#define O2(st, times) "[\"o2\",\"c1\",\"" st "\",30,0,0,\"\",\"\",\"\",[[\"s2\",1,30,\"\"]]," times "]"
#define ITEMS1 "[[\"s1\",2,100,1]]"

#define SETUP                                                                                      \
    OP(0, invoke, set-stock, "[\"s1\",5]", 0) "," OP(1, ok, set-stock, "[\"s1\",5]", 0) ","        \
    OP(2, invoke, open-account, "[\"a1\"]", 0) "," OP(3, ok, open-account, "[\"a1\"]", 0) ","      \
    OP(4, invoke, deposit, "[\"a1\",1000,\"d1\"]", 0) "," OP(5, ok, deposit, "[\"a1\",1000,\"d1\"]", 0)

/* Main phase: o1 created, paid (an ambiguous attempt, then the same key
 * again), shipped, partly refunded; o2 created and cancelled; one
 * reservation alone; reads. */
#define MAIN                                                                                       \
    OP(6, invoke, create, "[\"c1\",\"k1\"," ITEMS1 "]", 1) ","                                     \
    OP(7, ok, create, "[\"c1\",\"k1\"," ITEMS1 "," O1("CREATED", 0, 0, "", T(0, 0, 0)) "]", 1) ","  \
    OP(8, invoke, pay, "[\"c1\",\"o1\",\"a1\",200,\"pk1\"]", 1) ","                                \
    OP(9, info, pay, "[\"c1\",\"o1\",\"a1\",200,\"pk1\"]", 1) ","                                  \
    OP(10, invoke, pay, "[\"c1\",\"o1\",\"a1\",200,\"pk1\"]", 5) ","                               \
    OP(11, ok, pay, "[\"c1\",\"o1\",\"a1\",200,\"pk1\",\"p1\"," O1("PAID", 200, 0, "p1", T(2, 0, 0)) "]", 5) "," \
    OP(12, invoke, ship, "[\"c1\",\"o1\"]", 2) ","                                                 \
    OP(13, ok, ship, "[\"c1\",\"o1\"," O1("SHIPPED", 200, 0, "p1", T(2, 3, 0)) "]", 2) ","         \
    OP(14, invoke, refund, "[\"c1\",\"o1\",50,\"rk1\"]", 2) ","                                    \
    OP(15, ok, refund, "[\"c1\",\"o1\",50,\"rk1\",\"r1\"," O1("PARTIALLY_REFUNDED", 200, 50, "p1", T(2, 3, 0)) "]", 2) "," \
    OP(16, invoke, create, "[\"c1\",\"\",[[\"s2\",1,30,0]]]", 3) ","                               \
    OP(17, ok, create, "[\"c1\",\"\",[[\"s2\",1,30,0]]," O2("CREATED", T(0, 0, 0)) "]", 3) ","     \
    OP(18, invoke, cancel, "[\"c1\",\"o2\"]", 3) ","                                               \
    OP(19, ok, cancel, "[\"c1\",\"o2\",null," O2("CANCELLED", T(0, 0, 9)) "]", 3) ","              \
    OP(20, invoke, reserve, "[\"s1\",1,\"sk1\"]", 4) ","                                           \
    OP(21, ok, reserve, "[\"s1\",1,\"sk1\",\"res1\"]", 4) ","                                      \
    OP(22, invoke, get-order, "[\"c1\",\"o1\"]", 4) ","                                            \
    OP(23, ok, get-order, "[\"c1\",\"o1\"," O1("PARTIALLY_REFUNDED", 200, 50, "p1", T(2, 3, 0)) "]", 4) "," \
    OP(24, invoke, pay, "[\"c1\",\"o1\",\"a1\",200,\"pk2\"]", 4) ","                               \
    OP(25, fail, pay, "[\"c1\",\"o1\",\"a1\",200,\"pk2\"]", 4) ","                                 \
    OP(26, invoke, get-stock, "[\"s1\"]", 4) "," OP(27, ok, get-stock, "[\"s1\",2]", 4) ","        \
    OP(28, invoke, get-account, "[\"a1\"]", 4) "," OP(29, ok, get-account, "[\"a1\",850]", 4)

#define FINAL_ORDERS(list) OP(50, invoke, final-orders, "[\"c1\"]", 10) "," OP(51, ok, final-orders, "[\"c1\"," list "]", 10)
#define GOOD_ORDERS "[" O1("PARTIALLY_REFUNDED", 200, 50, "p1", T(2, 3, 0)) "," O2("CANCELLED", T(0, 0, 9)) "]"
#define PAY1 "[\"p1\",\"o1\",200,\"a1\",\"pk1\"]"
#define REF1 "[\"r1\",\"o1\",\"p1\",50,\"a1\",\"rk1\"]"
#define FINAL_PAYMENTS(pays, refs) OP(52, invoke, final-payments, "[\"c1\"]", 10) "," OP(53, ok, final-payments, "[\"c1\"," pays "," refs "]", 10)
#define RES_O1 "[\"o1\",\"o1\",\"c1\",2,\"ACTIVE\"]"
#define RES_1 "[\"res1\",\"\",\"sk1\",1,\"ACTIVE\"]"
#define FINAL_STOCK(avail, res) OP(54, invoke, final-stock, "[\"s1\"]", 2) "," OP(55, ok, final-stock, "[\"s1\"," #avail "," res "]", 2)
#define FINAL_ACCOUNT(bal, deps) OP(56, invoke, final-account, "[\"a1\"]", 3) "," OP(57, ok, final-account, "[\"a1\"," #bal "," deps "]", 3)
#define DEPS "[[\"d1\",1000]]"

#define GOOD_FINAL                                                                                 \
    FINAL_ORDERS(GOOD_ORDERS) "," FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 "]") ","                   \
    FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") "," FINAL_ACCOUNT(850, DEPS)

static void assert_only(const check_result *r, const char *cls)
{
    for (size_t i = 0; i < r->n_anomalies; i++)
        if (strcmp(r->anomalies[i].name, cls) != 0 && r->anomalies[i].count)
            fail_msg("unexpected %s (%" PRIu64 ")\n%s", r->anomalies[i].name, r->anomalies[i].count,
                     r->explanation);
    assert_true(check_result_anomaly_count(r, cls) > 0);
    assert_int_equal(r->validity, CHECK_INVALID);
}

static void test_orders__valid_history_is_valid(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "," NEM(48, kill) "," GOOD_FINAL "]");
    if (r->validity != CHECK_VALID)
        fail_msg("%s", r->explanation);
    assert_string_equal(r->checker, "orders");
    assert_int_equal(check_result_count_of(r, "orders"), 2);
    assert_int_equal(check_result_count_of(r, "payments"), 1);
    assert_int_equal(check_result_count_of(r, "keyed-unknown"), 1);
    assert_int_equal(check_result_count_of(r, "skus-unchecked"), 0);
    assert_int_equal(check_result_count_of(r, "accounts-unchecked"), 0);
    assert_string_equal(r->explanation, "");
    check_result_free(r);
}

/* No final read: nothing to decide on. */
static void test_orders__no_final_read_is_unknown(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "]");
    assert_int_equal(r->validity, CHECK_UNKNOWN);
    check_result_free(r);
}

/* orders.idem.skip: two copies of one create with one key both applied. */
static void test_orders__one_key_two_orders(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN ","
        OP(38, invoke, create, "[\"c1\",\"k1\"," ITEMS1 "]", 6) ","
        OP(39, ok, create, "[\"c1\",\"k1\"," ITEMS1 ",[\"o3\",\"c1\",\"CREATED\",200,0,0,\"\",\"\",\"k1\",[[\"s1\",2,100,\"\"]]," T(0, 0, 0) "]]", 6) ","
        FINAL_ORDERS("[" O1("PARTIALLY_REFUNDED", 200, 50, "p1", T(2, 3, 0)) "," O2("CANCELLED", T(0, 0, 9))
                     ",[\"o3\",\"c1\",\"CREATED\",200,0,0,\"\",\"\",\"k1\",[[\"s1\",2,100,\"\"]]," T(0, 0, 0) "]]") ","
        FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 "]") "," FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") ","
        FINAL_ACCOUNT(850, DEPS) "]");
    assert_only(r, "key-two-effects");
    assert_int_equal(check_result_anomaly_count(r, "key-two-effects"), 2); /* answers, records */
    assert_contains(r->explanation, "create key \"k1\" was answered with two order ids, o1 and o3");
    assert_contains(r->explanation, "key \"k1\": the final state holds 2 orders made with it");
    check_result_free(r);
}

/* A deposit applied twice under one key: one record, two credits. */
static void test_orders__deposit_twice_is_an_account_mismatch(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "," FINAL_ORDERS(GOOD_ORDERS) ","
        FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 "]") "," FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") ","
        FINAL_ACCOUNT(1850, DEPS) "]");
    assert_only(r, "account-mismatch");
    assert_contains(r->explanation, "account a1: balance 1850, but deposits 1000 (1) - payments 200 (1) "
                                    "+ refunds 50 (1) = 850 (off by +1000)");
    check_result_free(r);
}

static void test_orders__two_payments_of_one_order(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "," FINAL_ORDERS(GOOD_ORDERS) ","
        FINAL_PAYMENTS("[" PAY1 ",[\"p2\",\"o1\",200,\"a1\",\"pk2\"]]", "[" REF1 "]") ","
        FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") "," FINAL_ACCOUNT(650, DEPS) "]");
    /* pk2's only attempt failed, yet its payment is there. */
    assert_int_equal(check_result_anomaly_count(r, "paid-twice"), 1);
    assert_int_equal(check_result_anomaly_count(r, "failed-but-present"), 1);
    assert_int_equal(check_result_anomaly_count(r, "account-mismatch"), 0);
    assert_contains(r->explanation, "order c1/o1 has 2 payments in the final state");
    check_result_free(r);
}

static void test_orders__lost_order_payment_and_refund(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "," FINAL_ORDERS("[" O2("CANCELLED", T(0, 0, 9)) "]") ","
        FINAL_PAYMENTS("[]", "[]") "," FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") ","
        FINAL_ACCOUNT(1000, DEPS) "]");
    assert_int_equal(check_result_anomaly_count(r, "lost-order"), 1);
    assert_int_equal(check_result_anomaly_count(r, "lost-payment"), 1);
    assert_int_equal(check_result_anomaly_count(r, "lost-refund"), 1);
    assert_int_equal(check_result_anomaly_count(r, "account-mismatch"), 0);
    assert_contains(r->explanation, "payment p1 was acknowledged but is not in the final payments of its customer");
    check_result_free(r);
}

static void test_orders__lost_reservation_and_deposit(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "," FINAL_ORDERS(GOOD_ORDERS) ","
        FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 "]") "," FINAL_STOCK(3, "[" RES_O1 "]") ","
        FINAL_ACCOUNT(-150, "[]") "]");
    assert_int_equal(check_result_anomaly_count(r, "lost-reservation"), 1);
    assert_int_equal(check_result_anomaly_count(r, "lost-deposit"), 1);
    assert_int_equal(check_result_anomaly_count(r, "negative-balance"), 1);
    assert_int_equal(check_result_anomaly_count(r, "stock-mismatch"), 0);
    check_result_free(r);
}

/* orders.reserve.no_floor: units taken beyond the stock. */
static void test_orders__oversell(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "," FINAL_ORDERS(GOOD_ORDERS) ","
        FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 "]") ","
        FINAL_STOCK(-3, "[" RES_O1 "," RES_1 ",[\"res2\",\"\",\"sk2\",5,\"ACTIVE\"]]") ","
        FINAL_ACCOUNT(850, DEPS) "]");
    assert_only(r, "oversell");
    assert_contains(r->explanation, "sku s1: stock 5, but 3 ACTIVE reservations hold 8 units and -3 are "
                                    "available (3 sold beyond the stock)");
    check_result_free(r);
}

static void test_orders__stock_that_does_not_add_up(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "," FINAL_ORDERS(GOOD_ORDERS) ","
        FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 "]") "," FINAL_STOCK(1, "[" RES_O1 "," RES_1 "]") ","
        FINAL_ACCOUNT(850, DEPS) "]");
    assert_only(r, "stock-mismatch");
    assert_contains(r->explanation, "sku s1: stock 5 != available 1 + ACTIVE 3");
    check_result_free(r);
}

/* A cancelled order whose stock was not given back. */
static void test_orders__reservation_not_released(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN ","
        FINAL_ORDERS("[" O1("CANCELLED", 200, 200, "p1", T(2, 0, 9)) "," O2("CANCELLED", T(0, 0, 9)) "]") ","
        FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 ",[\"r2\",\"o1\",\"p1\",150,\"a1\",\"\"]]") ","
        FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") "," FINAL_ACCOUNT(1000, DEPS) "]");
    /* o1 was seen SHIPPED before: cancelling it after is illegal too. */
    assert_int_equal(check_result_anomaly_count(r, "reservation-status"), 1);
    assert_int_equal(check_result_anomaly_count(r, "illegal-transition"), 1);
    assert_contains(r->explanation, "reservation o1 of order c1/o1 is ACTIVE, but the order is CANCELLED");
    check_result_free(r);
}

/* orders.transition.any: a CREATED order shipped. */
static void test_orders__shipped_without_payment(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN ","
        OP(38, invoke, ship, "[\"c1\",\"o2\"]", 6) ","
        OP(39, ok, ship, "[\"c1\",\"o2\"," O2("SHIPPED", T(0, 8, 0)) "]", 6) ","
        FINAL_ORDERS(GOOD_ORDERS) "," FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 "]") ","
        FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") "," FINAL_ACCOUNT(850, DEPS) "]");
    assert_int_equal(check_result_anomaly_count(r, "illegal-state"), 1);
    /* It was CANCELLED before, and CANCELLED again at the end. */
    assert_int_equal(check_result_anomaly_count(r, "illegal-transition"), 1);
    assert_contains(r->explanation, "order c1/o2: SHIPPED, but it was never paid");
    assert_contains(r->explanation, "order c1/o2 was CANCELLED, then SHIPPED");
    check_result_free(r);
}

/* Observations over time: a read sees the order back in an earlier state. */
static void test_orders__read_going_back(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN ","
        OP(38, invoke, get-order, "[\"c1\",\"o1\"]", 6) ","
        OP(39, ok, get-order, "[\"c1\",\"o1\"," O1("PAID", 200, 0, "p1", T(2, 0, 0)) "]", 6) ","
        OP(40, invoke, list-orders, "[\"c1\"]", 6) ","
        OP(41, ok, list-orders, "[\"c1\",[" O2("CREATED", T(0, 0, 0)) "]]", 6) ","
        OP(42, invoke, get-order, "[\"c1\",\"o2\"]", 6) "," OP(43, ok, get-order, "[\"c1\",\"o2\",null]", 6) ","
        FINAL_ORDERS(GOOD_ORDERS) "," FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 "]") ","
        FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") "," FINAL_ACCOUNT(850, DEPS) "]");
    assert_only(r, "illegal-transition");
    assert_int_equal(check_result_anomaly_count(r, "illegal-transition"), 2);
    assert_contains(r->explanation, "order c1/o1 was SHIPPED, then PAID: no legal path");
    assert_contains(r->explanation, "order c1/o2 was CANCELLED, then CREATED: it went back to CREATED");
    check_result_free(r);
}

/* A replayed answer is an old state: it may come after a newer read. */
static void test_orders__replay_of_an_old_answer_is_fine(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN ","
        OP(38, invoke, pay, "[\"c1\",\"o1\",\"a1\",200,\"pk1\"]", 6) ","
        OP(39, ok, pay, "[\"c1\",\"o1\",\"a1\",200,\"pk1\",\"p1\"," O1("PAID", 200, 0, "p1", T(2, 0, 0)) "]", 6) ","
        GOOD_FINAL "]");
    if (r->validity != CHECK_VALID)
        fail_msg("%s", r->explanation);
    check_result_free(r);
}

/* orders.refund.no_limit: more refunded than captured. */
static void test_orders__over_refund(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN ","
        OP(38, invoke, refund, "[\"c1\",\"o1\",180,\"rk2\"]", 6) ","
        OP(39, ok, refund, "[\"c1\",\"o1\",180,\"rk2\",\"r2\"," O1("PARTIALLY_REFUNDED", 200, 230, "p1", T(2, 3, 0)) "]", 6) ","
        FINAL_ORDERS("[" O1("PARTIALLY_REFUNDED", 200, 230, "p1", T(2, 3, 0)) "," O2("CANCELLED", T(0, 0, 9)) "]") ","
        FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 ",[\"r2\",\"o1\",\"p1\",180,\"a1\",\"rk2\"]]") ","
        FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") "," FINAL_ACCOUNT(1030, DEPS) "]");
    assert_only(r, "over-refund");
    assert_contains(r->explanation, "order c1/o1: refunded 230 of 200 captured");
    check_result_free(r);
}

static void test_orders__refunded_disagrees_with_refunds(void **state)
{
    (void)state;
    check_result *r = check("[" SETUP "," MAIN "," FINAL_ORDERS(GOOD_ORDERS) ","
        FINAL_PAYMENTS("[" PAY1 "]", "[" REF1 ",[\"r9\",\"o1\",\"p1\",20,\"a1\",\"\"]]") ","
        FINAL_STOCK(2, "[" RES_O1 "," RES_1 "]") "," FINAL_ACCOUNT(870, DEPS) "]");
    assert_only(r, "refund-mismatch");
    assert_contains(r->explanation, "order c1/o1 says refunded 50, its refunds sum to 70");
    check_result_free(r);
}

static void test_orders__format_errors(void **state)
{
    (void)state;
    expect_error("[" OP(0, invoke, pay, "[\"c1\",\"o1\"]", 0) "," OP(1, fail, pay, "[\"c1\",\"o1\"]", 0) "]",
                 "a pay's invoke value must have the shape sssis");
    expect_error("[" OP(0, invoke, ship, "[\"c1\",\"o1\"]", 0) "," OP(1, ok, ship, "[\"c1\",\"o1\",[1]]", 0) "]",
                 "an ok ship's value must have the shape ssO");
    expect_error("[" OP(0, invoke, bogus, "[]", 0) "]", "f \"bogus\" is not an orders op");
    expect_error("[" OP(0, invoke, set-stock, "[\"s1\",5]", 0) "," OP(1, ok, set-stock, "[\"s1\",5]", 0) ","
                 OP(2, invoke, set-stock, "[\"s1\",6]", 0) "," OP(3, ok, set-stock, "[\"s1\",6]", 0) "]",
                 "stock is set to two values");
}

/* The checker's table, written from the spec, against the server's. */
static void test_orders__step_table_matches_the_server(void **state)
{
    (void)state;
    for (int from = 0; from < ORD_STATUS_COUNT; from++)
        for (int to = 0; to < ORD_STATUS_COUNT; to++)
            if (orders_step_ok(from, to) != ord_transition_ok(from, to))
                fail_msg("%s -> %s: checker %d, server %d", ord_status_name(from), ord_status_name(to),
                         orders_step_ok(from, to), ord_transition_ok(from, to));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orders__valid_history_is_valid),
        cmocka_unit_test(test_orders__no_final_read_is_unknown),
        cmocka_unit_test(test_orders__one_key_two_orders),
        cmocka_unit_test(test_orders__deposit_twice_is_an_account_mismatch),
        cmocka_unit_test(test_orders__two_payments_of_one_order),
        cmocka_unit_test(test_orders__lost_order_payment_and_refund),
        cmocka_unit_test(test_orders__lost_reservation_and_deposit),
        cmocka_unit_test(test_orders__oversell),
        cmocka_unit_test(test_orders__stock_that_does_not_add_up),
        cmocka_unit_test(test_orders__reservation_not_released),
        cmocka_unit_test(test_orders__shipped_without_payment),
        cmocka_unit_test(test_orders__read_going_back),
        cmocka_unit_test(test_orders__replay_of_an_old_answer_is_fine),
        cmocka_unit_test(test_orders__over_refund),
        cmocka_unit_test(test_orders__refunded_disagrees_with_refunds),
        cmocka_unit_test(test_orders__format_errors),
        cmocka_unit_test(test_orders__step_table_matches_the_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

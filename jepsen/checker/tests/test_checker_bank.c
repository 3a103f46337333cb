/*
 * test_checker_bank.c — the bank checker: every ok read holds the N
 * accounts, each a counter, none negative, summing to N * initial.
 */
#include "checker_test.h"

static check_result *check(const char *json)
{
    return run_checker(RUN_BANK, json, NULL);
}

/* Three accounts of 100, created by process 0. */
#define INIT3 OP(0, invoke, init, "[3,100]", 0) "," OP(1, ok, init, "[3,100]", 0)

static void test_bank__transfers_that_keep_the_total_are_valid(void **state)
{
    check_result *r = check("[" INIT3 ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[[0,100],[1,100],[2,100]]", 1) ","
        OP(4, invoke, transfer, "[0,1,30]", 0) "," OP(5, ok, transfer, "[0,1,30]", 0) ","
        OP(6, invoke, transfer, "[2,0,60]", 2) ","
        OP(7, invoke, read, "null", 1) ","
        OP(8, fail, transfer, "[2,0,60]", 2) ","                       /* a floor stopped it */
        OP(9, ok, read, "[[0,70],[1,130],[2,100]]", 1) ","
        OP(10, invoke, transfer, "[1,2,50]", 0) "," OP(11, info, transfer, "[1,2,50]", 0) ","
        NEM(12, kill) ","
        OP(13, invoke, read, "null", 3) "," OP(14, fail, read, "null", 3) ","
        /* Keys come in byte order and an unknown transfer may have applied. */
        OP(15, invoke, read, "null", 1) "," OP(16, ok, read, "[[2,150],[0,70],[1,80]]", 1) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    assert_string_equal(r->checker, "bank");
    assert_int_equal(r->keys, 3);
    assert_int_equal(check_result_count_of(r, "accounts"), 3);
    assert_int_equal(check_result_count_of(r, "expected-total"), 300);
    assert_int_equal(check_result_count_of(r, "reads"), 3);
    assert_int_equal(check_result_count_of(r, "failed-reads"), 1);
    assert_int_equal(check_result_count_of(r, "transfers-ok"), 1);
    assert_int_equal(check_result_count_of(r, "transfers-failed"), 1);
    assert_int_equal(check_result_count_of(r, "transfers-unknown"), 1);
    for (size_t i = 0; i < r->n_anomalies; i++)
        assert_int_equal(r->anomalies[i].count, 0);
    assert_int_equal(r->n_anomalies, 5);
    check_result_free(r);
}

/* What the planted bug txn.partial does: a transfer whose floor stopped
 * its debit still applied its credit (written first): 30 appear from
 * nowhere, and every later read shows them. */
static void test_bank__partial_transfer_is_a_wrong_total(void **state)
{
    check_result *r = check("[" INIT3 ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[[0,100],[1,100],[2,100]]", 1) ","
        OP(4, invoke, transfer, "[0,1,30]", 0) "," OP(5, fail, transfer, "[0,1,30]", 0) ","
        OP(6, invoke, transfer, "[1,2,10]", 2) "," OP(7, ok, transfer, "[1,2,10]", 2) ","
        OP(8, invoke, read, "null", 1) "," OP(9, ok, read, "[[0,100],[1,120],[2,110]]", 1) ","
        OP(10, invoke, read, "null", 3) "," OP(11, ok, read, "[[0,100],[1,120],[2,110]]", 3) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "wrong-total"), 2);
    assert_int_equal(check_result_anomaly_count(r, "negative-balance"), 0);
    assert_int_equal(check_result_anomaly_count(r, "missing-account"), 0);
    const check_anomaly *a = &r->anomalies[0];
    assert_string_equal(a->name, "wrong-total");
    assert_int_equal(a->n_examples, 2);
    assert_int_equal(a->examples[0], 8);   /* the reads' invoke indices */
    assert_int_equal(a->examples[1], 10);
    assert_contains(r->explanation,
                    "wrong-total: 2 of 3 ok reads saw a total other than 300 (3 accounts x 100), from 330 to 330\n");
    assert_contains(r->explanation, "before the first of them, the read at index 2 (process 1, invoked "
                                    "t=0.000000s, ok t=0.000000s) had it; transfers in between: 1 committed, 1 "
                                    "failed, 0 of unknown outcome");
    assert_contains(r->explanation, "the read at index 8 (process 1, invoked t=0.000000s, ok t=0.000000s): "
                                    "total 330 (+30)\n        [[0,100],[1,120],[2,110]]\n");
    check_result_free(r);
}

/* Money destroyed (a committed transfer that applied only its debit). No
 * earlier read had the right total: the explanation points at the init. */
static void test_bank__lost_money_without_a_good_read_before(void **state)
{
    check_result *r = check("[" INIT3 ","
        OP(2, invoke, transfer, "[0,1,30]", 0) "," OP(3, ok, transfer, "[0,1,30]", 0) ","
        OP(4, invoke, read, "null", 1) "," OP(5, ok, read, "[[0,70],[1,100],[2,100]]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "wrong-total"), 1);
    assert_contains(r->explanation, "total 270 (-30)");
    assert_contains(r->explanation, "no read had the right total: compare with the init (total 300); "
                                    "transfers in between: 1 committed, 0 failed");
    check_result_free(r);
}

static void test_bank__negative_balance(void **state)
{
    check_result *r = check("[" INIT3 ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[[0,-10],[1,210],[2,100]]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "negative-balance"), 1);
    assert_int_equal(check_result_anomaly_count(r, "wrong-total"), 0);   /* the sum is right */
    assert_contains(r->explanation, "negative-balance: 1 of 1 ok reads saw a balance below 0");
    assert_contains(r->explanation, "ok t=0.000000s): account 0 at -10\n");
    check_result_free(r);
}

/* A read without every account is flagged as such; its total says nothing. */
static void test_bank__missing_account(void **state)
{
    check_result *r = check("[" INIT3 ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[[0,150],[2,150]]", 1) ","
        OP(4, invoke, read, "null", 1) "," OP(5, ok, read, "[]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "missing-account"), 2);
    assert_int_equal(check_result_anomaly_count(r, "wrong-total"), 0);
    assert_contains(r->explanation, "missing-account: 2 of 2 ok reads lacked an account");
    assert_contains(r->explanation, "ok t=0.000000s): lacks account 1 (of 0..2)\n");
    assert_contains(r->explanation, "lacks account 0, 1, 2 (of 0..2)\n");
    check_result_free(r);
}

static void test_bank__unexpected_accounts(void **state)
{
    check_result *r = check("[" INIT3 ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[[0,100],[1,100],[2,100],[3,0]]", 1) ","
        OP(4, invoke, read, "null", 1) "," OP(5, ok, read, "[[0,100],[1,100],[1,100],[2,100]]", 1) ","
        OP(6, invoke, read, "null", 1) ","
        OP(7, ok, read, "[[0,100],[\"not an account (3 bytes): 78 79 7a\",5],[1,100],[2,100]]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "unexpected-account"), 3);
    assert_int_equal(check_result_anomaly_count(r, "wrong-total"), 0);
    assert_int_equal(check_result_anomaly_count(r, "missing-account"), 0);
    assert_contains(r->explanation, "entry 3 names 3, not one of the accounts 0..2\n");
    assert_contains(r->explanation, "account 1 is listed twice (entries 1 and 2)\n");
    assert_contains(r->explanation, "entry 1 names ?, not one of the accounts 0..2 (\"?\" stands for a key");
    check_result_free(r);
}

static void test_bank__bad_value(void **state)
{
    check_result *r = check("[" INIT3 ","
        OP(2, invoke, read, "null", 1) ","
        OP(3, ok, read, "[[0,\"not a counter (5 bytes): 31 32 33 34 35\"],[1,100],[2,100]]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "bad-value"), 1);
    assert_int_equal(check_result_anomaly_count(r, "wrong-total"), 0);
    assert_contains(r->explanation, "bad-value: 1 of 1 ok reads saw a value that is not an 8-byte counter");
    assert_contains(r->explanation, "account 0 holds a value that is not an 8-byte counter");
    check_result_free(r);
}

/* Balances whose sum leaves int64 are a wrong total, not undefined behaviour. */
static void test_bank__overflowing_sum(void **state)
{
    check_result *r = check("["
        OP(0, invoke, init, "[2,100]", 0) "," OP(1, ok, init, "[2,100]", 0) ","
        OP(2, invoke, read, "null", 1) ","
        OP(3, ok, read, "[[0,9223372036854775807],[1,9223372036854775807]]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "wrong-total"), 1);
    assert_contains(r->explanation, "the balances overflow int64");
    assert_contains(r->explanation, "(2 accounts x 100), 1 overflowing int64\n");
    check_result_free(r);
}

/* Twelve accounts: bank/10 sorts before bank/2, the order must not matter. */
static void test_bank__many_accounts_in_key_order(void **state)
{
    check_result *r = check("["
        OP(0, invoke, init, "[12,100]", 0) "," OP(1, ok, init, "[12,100]", 0) ","
        OP(2, invoke, read, "null", 1) ","
        OP(3, ok, read, "[[0,100],[1,100],[10,100],[11,100],[2,100],[3,100],[4,100],[5,100],"
                        "[6,100],[7,100],[8,100],[9,100]]", 1) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    assert_int_equal(check_result_count_of(r, "expected-total"), 1200);
    check_result_free(r);
}

static void test_bank__no_ok_read_is_unknown(void **state)
{
    check_result *r = check("[" INIT3 ","
        OP(2, invoke, transfer, "[0,1,30]", 0) "," OP(3, ok, transfer, "[0,1,30]", 0) ","
        OP(4, invoke, read, "null", 1) "," OP(5, fail, read, "null", 1) "]");
    assert_int_equal(r->validity, CHECK_UNKNOWN);
    assert_contains(r->explanation, "the history has no ok read (1 reads failed)");
    check_result_free(r);
}

static void test_bank__format_errors(void **state)
{
    expect_check_error(RUN_BANK, "[" OP(0, invoke, read, "null", 1) "," OP(1, ok, read, "[]", 1) "]",
                       "no ok init op");
    expect_check_error(RUN_BANK, "[" OP(0, invoke, init, "[3,100]", 0) "," OP(1, fail, init, "[3,100]", 0) "]",
                       "no ok init op");
    expect_check_error(RUN_BANK, "[" OP(0, invoke, init, "[0,100]", 0) "]", "declares 0 accounts");
    expect_check_error(RUN_BANK, "[" OP(0, invoke, init, "[3]", 0) "]", "[accounts, initial balance]");
    expect_check_error(RUN_BANK, "[" OP(0, invoke, init, "[3,4611686018427387904]", 0) "]",
                       "overflows int64");
    expect_check_error(RUN_BANK, "[" INIT3 "," OP(2, invoke, init, "[4,100]", 1) "," OP(3, ok, init, "[4,100]", 1) "]",
                       "op index 2 (byte");
    expect_check_error(RUN_BANK, "[" INIT3 "," OP(2, invoke, init, "[4,100]", 1) "," OP(3, ok, init, "[4,100]", 1) "]",
                       "this init says 4 accounts of 100 but an earlier one said 3 of 100");
    expect_check_error(RUN_BANK, "[" INIT3 "," OP(2, invoke, transfer, "[0,1]", 1) "]", "[from, to, amount]");
    expect_check_error(RUN_BANK, "[" INIT3 "," OP(2, invoke, transfer, "[0,3,5]", 1) "]",
                       "names account 3, not one of the 3 accounts");
    expect_check_error(RUN_BANK, "[" OP(0, invoke, init, "[3,100]", 0) "," OP(1, invoke, read, "null", 1) ","
                       OP(2, ok, init, "[3,100]", 0) "]", "invoked before the init op completed");
    expect_check_error(RUN_BANK, "[" INIT3 "," OP(2, invoke, read, "1", 1) "]", "invoke value must be null");
    expect_check_error(RUN_BANK, "[" INIT3 "," OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[1,2]", 1) "]",
                       "array of [account, balance]");
    expect_check_error(RUN_BANK, "[" INIT3 "," OP(2, invoke, write, "1", 1) "]",
                       "bank workload: op index 2 (byte");
    expect_check_error(RUN_BANK, "[" INIT3 "," OP(2, invoke, write, "1", 1) "]",
                       "f \"write\" is not init, transfer or read");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bank__transfers_that_keep_the_total_are_valid),
        cmocka_unit_test(test_bank__partial_transfer_is_a_wrong_total),
        cmocka_unit_test(test_bank__lost_money_without_a_good_read_before),
        cmocka_unit_test(test_bank__negative_balance),
        cmocka_unit_test(test_bank__missing_account),
        cmocka_unit_test(test_bank__unexpected_accounts),
        cmocka_unit_test(test_bank__bad_value),
        cmocka_unit_test(test_bank__overflowing_sum),
        cmocka_unit_test(test_bank__many_accounts_in_key_order),
        cmocka_unit_test(test_bank__no_ok_read_is_unknown),
        cmocka_unit_test(test_bank__format_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

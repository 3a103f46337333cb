/*
 * test_checker_sequential.c — the sequential checker: a read that sees an
 * index must see every earlier acknowledged one.
 */
#include "checker_test.h"

static check_result *check(const char *json)
{
    return run_checker(RUN_SEQUENTIAL, json, NULL);
}

/* Writes 0..5 by process 0, each acknowledged before the next. */
#define WRITES_0_TO_5                                                          \
    OP(0, invoke, write, "0", 0) "," OP(1, ok, write, "0", 0) ","              \
    OP(2, invoke, write, "1", 0) "," OP(3, ok, write, "1", 0) ","              \
    OP(4, invoke, write, "2", 0) "," OP(5, ok, write, "2", 0) ","              \
    OP(6, invoke, write, "3", 0) "," OP(7, ok, write, "3", 0) ","              \
    OP(8, invoke, write, "4", 0) "," OP(9, ok, write, "4", 0) ","              \
    OP(10, invoke, write, "5", 0) "," OP(11, ok, write, "5", 0)

static void test_sequential__prefixes_are_valid(void **state)
{
    check_result *r = check("["
        OP(0, invoke, read, "9", 1) ","
        OP(1, invoke, write, "0", 0) "," OP(2, ok, write, "0", 0) ","
        OP(3, invoke, write, "1", 0) "," OP(4, ok, write, "1", 0) ","
        OP(5, ok, read, "[1,0]", 1) ","
        OP(6, invoke, read, "9", 1) "," OP(7, ok, read, "[1,0]", 1) ","
        OP(8, invoke, write, "2", 0) "," OP(9, ok, write, "2", 0) ","
        OP(10, invoke, read, "1", 2) "," OP(11, ok, read, "[1,0]", 2) ","  /* probe bound 1 */
        OP(12, invoke, read, "9", 2) "," OP(13, ok, read, "[2,1,0]", 2) ","
        OP(14, invoke, read, "9", 3) "," OP(15, ok, read, "[]", 3) "]");   /* stale, but no gap */
    assert_int_equal(r->validity, CHECK_VALID);
    assert_int_equal(check_result_count_of(r, "acknowledged"), 3);
    assert_int_equal(check_result_count_of(r, "reads"), 5);
    check_result_free(r);
}

/* A write of unknown outcome may never have happened: seeing later indices
 * without it is fine. A failed write retried with the same index is ok. */
static void test_sequential__unknown_and_retried_writes(void **state)
{
    check_result *r = check("["
        OP(0, invoke, write, "0", 0) "," OP(1, ok, write, "0", 0) ","
        OP(2, invoke, write, "1", 0) "," OP(3, info, write, "1", 0) ","
        OP(4, invoke, write, "2", 5) "," OP(5, fail, write, "2", 5) ","
        OP(6, invoke, write, "2", 5) "," OP(7, ok, write, "2", 5) ","
        OP(8, invoke, read, "5", 1) "," OP(9, ok, read, "[2,0]", 1) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    assert_int_equal(check_result_count_of(r, "unknown"), 1);
    assert_int_equal(check_result_count_of(r, "failed"), 0);
    check_result_free(r);
}

static void test_sequential__gap(void **state)
{
    check_result *r = check("[" WRITES_0_TO_5 ","
        OP(12, invoke, read, "5", 1) "," OP(13, ok, read, "[5,4,2,1,0]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "gap"), 1);
    assert_int_equal(check_result_anomaly_count(r, "missing-indices"), 1);
    assert_contains(r->explanation, "the read at index 12 (process 1, probe 5");
    assert_contains(r->explanation, "saw 5 but not 3; write of 3 invoked at index 6");
    check_result_free(r);
}

static void test_sequential__unexpected_index(void **state)
{
    check_result *r = check("["
        OP(0, invoke, write, "0", 0) "," OP(1, ok, write, "0", 0) ","
        OP(2, invoke, read, "9", 1) "," OP(3, ok, read, "[7,0]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "unexpected"), 1);
    assert_int_equal(check_result_anomaly_count(r, "gap"), 0);
    assert_contains(r->explanation, "7: never written, but the read at index 2");
    check_result_free(r);
}

static void test_sequential__failed_but_present(void **state)
{
    check_result *r = check("["
        OP(0, invoke, write, "0", 0) "," OP(1, ok, write, "0", 0) ","
        OP(2, invoke, write, "1", 0) "," OP(3, fail, write, "1", 0) ","
        OP(4, invoke, read, "3", 1) "," OP(5, ok, read, "[1,0]", 1) "]");
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "failed-but-present"), 1);
    assert_contains(r->explanation, "write of 1 invoked at index 2 (process 0, t=0.000000s, failed); yet the read at index 4");
    check_result_free(r);
}

static void test_sequential__no_read_is_unknown(void **state)
{
    check_result *r = check("[" WRITES_0_TO_5 "]");
    assert_int_equal(r->validity, CHECK_UNKNOWN);
    check_result_free(r);
}

static void test_sequential__format_errors(void **state)
{
    expect_check_error(RUN_SEQUENTIAL, "[" OP(0, invoke, read, "2", 0) "," OP(1, ok, read, "[3]", 0) "]",
                       "above its probe bound 2");
    expect_check_error(RUN_SEQUENTIAL, "[" OP(0, invoke, write, "-1", 0) "]", "non-negative integer index");
    expect_check_error(RUN_SEQUENTIAL, "[" OP(0, invoke, read, "null", 0) "]", "highest index to probe");
    expect_check_error(RUN_SEQUENTIAL, "[" OP(0, invoke, add, "1", 0) "]", "f \"add\" is not write or read");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential__prefixes_are_valid),
        cmocka_unit_test(test_sequential__unknown_and_retried_writes),
        cmocka_unit_test(test_sequential__gap),
        cmocka_unit_test(test_sequential__unexpected_index),
        cmocka_unit_test(test_sequential__failed_but_present),
        cmocka_unit_test(test_sequential__no_read_is_unknown),
        cmocka_unit_test(test_sequential__format_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_checker_set.c — the set checker: good histories (including adds of
 * unknown outcome, present or not) are valid; each anomaly class is caught
 * and named with its element.
 */
#include "checker_test.h"

static check_result *check(const char *json)
{
    return run_checker(RUN_SET, json, NULL);
}

static void expect_only(const check_result *r, const char *anomaly, int64_t element)
{
    static const char *const all[] = { "lost", "stale", "unexpected", "failed-but-present", "duplicated" };
    if (r->validity != CHECK_INVALID)
        fail_msg("expected invalid (%s), got %s:\n%s", anomaly, check_validity_name(r->validity), r->explanation);
    for (size_t i = 0; i < 5; i++) {
        uint64_t n = check_result_anomaly_count(r, all[i]);
        if (strcmp(all[i], anomaly) == 0 ? n != 1 : n != 0)
            fail_msg("anomaly %s: count %llu\n%s", all[i], (unsigned long long)n, r->explanation);
    }
    for (size_t i = 0; i < r->n_anomalies; i++)
        if (strcmp(r->anomalies[i].name, anomaly) == 0)
            assert_int_equal(r->anomalies[i].examples[0], element);
}

static void test_set__all_acknowledged_present(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "1", 0) "," OP(1, ok, add, "1", 0) ","
        OP(2, invoke, add, "2", 1) "," OP(3, ok, add, "2", 1) ","
        NEM(4, partition) ","
        OP(5, invoke, add, "3", 0) "," OP(6, fail, add, "3", 0) ","
        OP(7, invoke, read, "null", 2) "," OP(8, ok, read, "[2,1]", 2) ","
        OP(9, invoke, read, "null", 0) "," OP(10, ok, read, "[1,2]", 0) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    assert_int_equal(check_result_count_of(r, "attempted"), 3);
    assert_int_equal(check_result_count_of(r, "acknowledged"), 2);
    assert_int_equal(check_result_count_of(r, "failed"), 1);
    assert_int_equal(check_result_count_of(r, "reads"), 2);
    check_result_free(r);
}

static void test_set__info_adds_present_or_absent(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "1", 0) "," OP(1, info, add, "1", 0) ","
        OP(2, invoke, add, "2", 1) "," OP(3, info, add, "2", 1) ","
        OP(4, invoke, add, "3", 2) ","      /* never completes */
        OP(5, invoke, read, "null", 3) "," OP(6, ok, read, "[1]", 3) ","
        OP(7, invoke, read, "null", 3) "," OP(8, ok, read, "[1,3]", 3) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    assert_int_equal(check_result_count_of(r, "unknown"), 3);
    assert_int_equal(check_result_count_of(r, "recovered"), 2);
    check_result_free(r);
}

/* A read concurrent with an add may or may not see it. */
static void test_set__concurrent_add_may_be_missing(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "1", 0) "," OP(1, invoke, read, "null", 1) ","
        OP(2, ok, add, "1", 0) "," OP(3, ok, read, "[]", 1) ","
        OP(4, invoke, read, "null", 1) "," OP(5, ok, read, "[1]", 1) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    check_result_free(r);
}

static void test_set__lost(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "1", 0) "," OP(1, ok, add, "1", 0) ","
        OP(2, invoke, add, "2", 0) "," OP(3, ok, add, "2", 0) ","
        OP(4, invoke, read, "null", 1) "," OP(5, ok, read, "[1]", 1) "]");
    expect_only(r, "lost", 2);
    assert_contains(r->explanation, "lost: 1 element (e.g. 2)");
    assert_contains(r->explanation, "2: add at index 2 (process 0");
    assert_contains(r->explanation, "missing from the read at index 4 (process 1");
    assert_contains(r->explanation, "no read ever contained it");
    check_result_free(r);
}

/* Seen, then gone: an element of unknown outcome that a read saw is lost if
 * a later read no longer has it. */
static void test_set__seen_then_gone_is_lost(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "5", 0) "," OP(1, info, add, "5", 0) ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[5]", 1) ","
        OP(4, invoke, read, "null", 1) "," OP(5, ok, read, "[]", 1) "]");
    expect_only(r, "lost", 5);
    assert_contains(r->explanation, "last seen by the read at index 2");
    check_result_free(r);
}

static void test_set__stale(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "1", 0) "," OP(1, ok, add, "1", 0) ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[]", 1) ","
        OP(4, invoke, read, "null", 1) "," OP(5, ok, read, "[1]", 1) "]");
    expect_only(r, "stale", 1);
    assert_contains(r->explanation, "missing from the read at index 2");
    assert_contains(r->explanation, "the read at index 4 (process 1");
    assert_contains(r->explanation, "contains it again");
    check_result_free(r);
}

static void test_set__unexpected(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "1", 0) "," OP(1, ok, add, "1", 0) ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[1,99]", 1) "]");
    expect_only(r, "unexpected", 99);
    assert_contains(r->explanation, "99: never added, but the read at index 2");
    check_result_free(r);
    /* an element read before its add was even invoked */
    r = check("["
        OP(0, invoke, read, "null", 1) "," OP(1, ok, read, "[7]", 1) ","
        OP(2, invoke, add, "7", 0) "," OP(3, ok, add, "7", 0) ","
        OP(4, invoke, read, "null", 1) "," OP(5, ok, read, "[7]", 1) "]");
    expect_only(r, "unexpected", 7);
    assert_contains(r->explanation, "invoked only after the read at index 0");
    check_result_free(r);
}

static void test_set__failed_but_present(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "4", 0) ","
        "{\"index\":1,\"type\":\"fail\",\"f\":\"add\",\"value\":4,\"process\":0,\"time\":1,\"error\":\"aborted\"},"
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[4]", 1) "]");
    expect_only(r, "failed-but-present", 4);
    assert_contains(r->explanation, "error \"aborted\"); the add failed, yet the read at index 2");
    check_result_free(r);
}

static void test_set__duplicated(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "4", 0) "," OP(1, ok, add, "4", 0) ","
        OP(2, invoke, read, "null", 1) "," OP(3, ok, read, "[4,4]", 1) "]");
    expect_only(r, "duplicated", 4);
    check_result_free(r);
}

static void test_set__no_read_is_unknown(void **state)
{
    check_result *r = check("["
        OP(0, invoke, add, "4", 0) "," OP(1, ok, add, "4", 0) ","
        OP(2, invoke, read, "null", 1) "," OP(3, fail, read, "null", 1) "]");
    assert_int_equal(r->validity, CHECK_UNKNOWN);
    assert_contains(r->explanation, "no ok read");
    check_result_free(r);
}

static void test_set__format_errors(void **state)
{
    expect_check_error(RUN_SET, "[" OP(0, invoke, add, "[1]", 0) "]", "an add's value must be an integer");
    expect_check_error(RUN_SET, "[" OP(0, invoke, add, "1", 0) "," OP(1, ok, add, "1", 0) ","
                       OP(2, invoke, add, "1", 0) "]", "element 1 was already added at index 0");
    expect_check_error(RUN_SET, "[" OP(0, invoke, read, "null", 0) "," OP(1, ok, read, "[1,null]", 0) "]",
                       "array of integer elements");
    expect_check_error(RUN_SET, "[" OP(0, invoke, cas, "[1,[1,2]]", 0) "]", "f \"cas\" is not add or read");
}

/* Many elements and reads: the anomaly examples are the smallest ones and
 * the counts are exact. */
static void test_set__many_elements(void **state)
{
    enum { N = 3000 };
    size_t cap = N * 200 + 100000, len = 0;
    char *json = malloc(cap);
    len += (size_t)snprintf(json + len, cap - len, "[");
    int64_t idx = 0;
    for (int e = 0; e < N; e++) {
        int p = e % 7;
        len += (size_t)snprintf(json + len, cap - len,
            "{\"index\":%" PRId64 ",\"type\":\"invoke\",\"f\":\"add\",\"value\":%d,\"process\":%d,\"time\":0},"
            "{\"index\":%" PRId64 ",\"type\":\"%s\",\"f\":\"add\",\"value\":%d,\"process\":%d,\"time\":0},",
            idx, e, p, idx + 1, e % 100 == 50 ? "fail" : "ok", e, p);
        idx += 2;
    }
    /* final read: every element except multiples of 500 (lost: 0, 500, ...)
     * and without the failed ones; plus the failed 1050 (failed-but-present) */
    len += (size_t)snprintf(json + len, cap - len,
        "{\"index\":%" PRId64 ",\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"process\":9,\"time\":0},"
        "{\"index\":%" PRId64 ",\"type\":\"ok\",\"f\":\"read\",\"value\":[", idx, idx + 1);
    const char *sep = "";
    for (int e = 0; e < N; e++) {
        if ((e % 500 == 0 || e % 100 == 50) && e != 1050)
            continue;
        len += (size_t)snprintf(json + len, cap - len, "%s%d", sep, e);
        sep = ",";
    }
    len += (size_t)snprintf(json + len, cap - len, "],\"process\":9,\"time\":0}]");
    check_result *r = check(json);
    assert_int_equal(r->validity, CHECK_INVALID);
    assert_int_equal(check_result_anomaly_count(r, "lost"), 6);
    assert_int_equal(check_result_anomaly_count(r, "failed-but-present"), 1);
    assert_int_equal(check_result_anomaly_count(r, "stale"), 0);
    for (size_t i = 0; i < r->n_anomalies; i++)
        if (strcmp(r->anomalies[i].name, "lost") == 0) {
            assert_int_equal(r->anomalies[i].n_examples, 6);
            assert_int_equal(r->anomalies[i].examples[0], 0);
            assert_int_equal(r->anomalies[i].examples[5], 2500);
        }
    check_result_free(r);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set__all_acknowledged_present),
        cmocka_unit_test(test_set__info_adds_present_or_absent),
        cmocka_unit_test(test_set__concurrent_add_may_be_missing),
        cmocka_unit_test(test_set__lost),
        cmocka_unit_test(test_set__seen_then_gone_is_lost),
        cmocka_unit_test(test_set__stale),
        cmocka_unit_test(test_set__unexpected),
        cmocka_unit_test(test_set__failed_but_present),
        cmocka_unit_test(test_set__duplicated),
        cmocka_unit_test(test_set__no_read_is_unknown),
        cmocka_unit_test(test_set__format_errors),
        cmocka_unit_test(test_set__many_elements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

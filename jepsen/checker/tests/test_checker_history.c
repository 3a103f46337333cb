/*
 * test_checker_history.c — the history contract: ops are paired invoke to
 * completion, nemesis ops are counted apart, and a runner that breaks the
 * process discipline gets an error naming the op instead of a verdict.
 */
#include "checker_test.h"

#include "workload.h"

static void test_history__pairs_and_outcomes(void **state)
{
    history *h = parse_history("["
        OP(0, invoke, write, "[1,1]", 0) ","
        OP(1, invoke, read, "[1,null]", 1) ","
        NEM(2, partition) ","
        OP(3, ok, write, "[1,1]", 0) ","
        OP(4, invoke, write, "[1,2]", 0) ","
        "{\"index\":5,\"type\":\"fail\",\"f\":\"write\",\"value\":[1,2],\"process\":0,\"time\":5,\"error\":\"conflict\",\"node\":\"n3\"},"
        OP(6, info, read, "[1,null]", 1) ","
        OP(7, invoke, cas, "[1,[1,3]]", 2) ","
        NEM(8, heal) "]");
    assert_int_equal(h->n_ops, 9);
    assert_int_equal(h->n_invokes, 4);
    assert_int_equal(h->n_nemesis, 2);
    assert_int_equal(h->ops[0].pair, 3);
    assert_int_equal(h->ops[3].pair, 0);
    assert_int_equal(h->ops[1].pair, 6);
    assert_int_equal(h->ops[4].pair, 5);
    assert_int_equal(h->ops[7].pair, HISTORY_NONE);
    assert_int_equal(h->ops[2].pair, HISTORY_NONE);
    assert_int_equal(h->ops[2].process, HISTORY_NEMESIS);
    assert_int_equal(history_outcome(h, 0), HISTORY_OK);
    assert_int_equal(history_outcome(h, 4), HISTORY_FAIL);
    assert_int_equal(history_outcome(h, 1), HISTORY_INFO);
    assert_int_equal(history_outcome(h, 7), HISTORY_INFO); /* never completed */
    assert_string_equal(h->ops[5].error, "conflict");
    assert_null(h->ops[0].error);
    assert_int_equal(h->ops[7].fn, HISTORY_F_CAS);
    assert_int_equal(h->ops[2].fn, HISTORY_F_OTHER);
    assert_string_equal(history_f(h, &h->ops[2]), "partition");
    assert_int_equal(h->ops[7].value.kind, HV_LIST);
    assert_int_equal(h->ops[7].value.items[1].items[1].i, 3);
    char buf[64];
    assert_string_equal(history_value_str(&h->ops[7].value, buf, sizeof buf), "[1,[1,3]]");
    assert_string_equal(history_value_str(&h->ops[1].value, buf, sizeof buf), "[1,null]");
    assert_string_equal(history_value_str(&h->ops[7].value, buf, 9), "[1,[...");
    history_free(h);
}

static void expect_parse_error(const char *json, const char *needle)
{
    okv_error e;
    okv_error_clear(&e);
    history *h = NULL;
    int rc = history_parse(&h, json, strlen(json), &e);
    assert_int_equal(rc, OKV_EINVAL);
    assert_null(h);
    if (!strstr(e.msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", e.msg, needle);
}

static void test_history__broken_discipline_is_an_error(void **state)
{
    expect_parse_error("[" OP(0, ok, write, "[1,1]", 0) "]", "op index 0 (byte 1): process 0 completes \"write\" with no open invoke");
    expect_parse_error("[" OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, read, "[1,1]", 0) "]",
                       "its open invoke (index 0) is \"write\"");
    expect_parse_error("[" OP(0, invoke, write, "[1,1]", 0) "," OP(1, invoke, read, "[1,1]", 0) "]",
                       "op index 1 (byte 76): process 0 invokes while its invoke at index 0 is still open");
    expect_parse_error("[" OP(0, invoke, write, "[1,1]", 0) "," OP(1, info, write, "[1,1]", 0) ","
                       OP(2, invoke, read, "[1,null]", 0) "]", "invokes again after its info at index 1");
    expect_parse_error("[" OP(5, invoke, write, "[1,1]", 0) "," OP(5, ok, write, "[1,1]", 0) "]",
                       "index does not increase");
}

static void test_history__bad_fields_are_an_error(void **state)
{
    expect_parse_error("[1]", "op at byte 1: an op must be a JSON object, not integer");
    expect_parse_error("{}", "byte 0: expected '['");
    expect_parse_error("[{\"index\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"process\":0}]",
                       "missing member \"time\"");
    expect_parse_error("[{\"index\":0,\"type\":\"done\",\"f\":\"read\",\"value\":null,\"process\":0,\"time\":0}]",
                       "\"type\" must be");
    expect_parse_error("[{\"index\":-1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"process\":0,\"time\":0}]",
                       "\"index\" must be a non-negative integer");
    expect_parse_error("[{\"index\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"process\":\"n1\",\"time\":0}]",
                       "\"process\" must be");
    expect_parse_error("[{\"index\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"process\":0,\"time\":1.5}]",
                       "\"time\" must be");
    expect_parse_error("[{\"index\":0,\"type\":\"invoke\",\"f\":\"\",\"value\":null,\"process\":0,\"time\":0}]",
                       "\"f\" must be");
    expect_parse_error("[{\"index\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"process\":0,\"time\":0,\"time\":1}]",
                       "member \"time\" appears twice");
    expect_parse_error("[{\"index\":0,\"type\":\"fail\",\"f\":\"read\",\"value\":null,\"process\":0,\"time\":0,\"error\":7}]",
                       "\"error\" must be a string");
}

static void test_history__empty(void **state)
{
    history *h = parse_history(" [ ] ");
    assert_int_equal(h->n_ops, 0);
    history_free(h);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* Digits and a few structural characters swapped into real histories: most
 * still parse, giving odd but well-formed histories (values out of place,
 * processes crossed, elements changed). Every checker must answer a verdict
 * or OKV_EINVAL on each, never crash (this test also runs under ASan+UBSan). */
static void test_history__checkers_survive_corrupted_histories(void **state)
{
    static const char *const seeds[] = {
        "[" OP(0, invoke, write, "[1,1]", 0) "," OP(1, invoke, cas, "[1,[1,2]]", 1) ","
            OP(2, ok, write, "[1,1]", 0) "," OP(3, ok, cas, "[1,[1,2]]", 1) ","
            OP(4, invoke, read, "[1,null]", 0) "," OP(5, ok, read, "[1,2]", 0) ","
            OP(6, invoke, write, "[2,3]", 2) "," OP(7, info, write, "[2,3]", 2) ","
            OP(8, invoke, read, "[2,null]", 3) "," OP(9, ok, read, "[2,3]", 3) "]",
        "[" OP(0, invoke, add, "1", 0) "," OP(1, ok, add, "1", 0) ","
            OP(2, invoke, add, "2", 1) "," OP(3, fail, add, "2", 1) ","
            OP(4, invoke, add, "3", 2) "," OP(5, info, add, "3", 2) ","
            OP(6, invoke, read, "null", 3) "," OP(7, ok, read, "[1,3]", 3) "]",
        "[" OP(0, invoke, write, "0", 0) "," OP(1, ok, write, "0", 0) ","
            OP(2, invoke, write, "1", 0) "," OP(3, ok, write, "1", 0) ","
            OP(4, invoke, read, "3", 1) "," OP(5, ok, read, "[1,0]", 1) ","
            OP(6, invoke, write, "2", 0) "," OP(7, fail, write, "2", 0) "]",
        "[" OP(0, invoke, init, "[3,100]", 0) "," OP(1, ok, init, "[3,100]", 0) ","
            OP(2, invoke, transfer, "[0,1,30]", 0) "," OP(3, ok, transfer, "[0,1,30]", 0) ","
            OP(4, invoke, transfer, "[2,1,90]", 1) "," OP(5, fail, transfer, "[2,1,90]", 1) ","
            OP(6, invoke, read, "null", 2) "," OP(7, ok, read, "[[0,70],[1,130],[2,100]]", 2) "]",
        "[" OP(0, invoke, txn, "[[\"append\",1,1],[\"r\",2,null]]", 0) ","
            OP(1, invoke, txn, "[[\"append\",2,2],[\"r\",1,null]]", 1) ","
            OP(2, ok, txn, "[[\"append\",1,1],[\"r\",2,[]]]", 0) ","
            OP(3, ok, txn, "[[\"append\",2,2],[\"r\",1,[]]]", 1) ","
            OP(4, invoke, txn, "[[\"r\",1,null],[\"r\",2,null],[\"append\",1,3]]", 2) ","
            OP(5, ok, txn, "[[\"r\",1,[1]],[\"r\",2,[2]],[\"append\",1,3]]", 2) ","
            OP(6, invoke, txn, "[[\"append\",2,4]]", 3) "," OP(7, info, txn, "[[\"append\",2,4]]", 3) "]",
    };
#define N_SEEDS (sizeof seeds / sizeof seeds[0])
    static const char swaps[] = "0123456789-,[]n";
    rng_state = 0x5eed0002;
    size_t parsed = 0, checked = 0;
    for (int iter = 0; iter < 6000; iter++) {
        const char *src = seeds[iter % N_SEEDS];
        size_t len = strlen(src);
        char *copy = malloc(len);
        memcpy(copy, src, len);
        int flips = 1 + (int)(rng() % 3);
        for (int k = 0; k < flips; k++) {
            size_t at = rng() % len;
            if ((copy[at] >= '0' && copy[at] <= '9') || copy[at] == ',' || copy[at] == '-')
                copy[at] = swaps[rng() % (sizeof swaps - 1)];
        }
        okv_error e;
        history *h = NULL;
        int rc = history_parse(&h, copy, len, &e);
        if (rc != 0 && rc != OKV_EINVAL)
            fail_msg("seed 0x5eed0002 iteration %d: parse rc %d", iter, rc);
        if (rc == 0) {
            parsed++;
            for (workload w = WORKLOAD_REGISTER; w <= WORKLOAD_ORDERS; w++) {
                check_result *r = NULL;
                rc = workload_check(&r, w, h, NULL, &e);
                if (rc != 0 && rc != OKV_EINVAL)
                    fail_msg("seed 0x5eed0002 iteration %d: %s rc %d", iter, workload_name(w), rc);
                if (rc == 0) {
                    checked++;
                    assert_non_null(r->explanation);
                }
                check_result_free(r);
            }
        }
        history_free(h);
        free(copy);
    }
    assert_true(parsed > 1000);
    assert_true(checked > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history__pairs_and_outcomes),
        cmocka_unit_test(test_history__broken_discipline_is_an_error),
        cmocka_unit_test(test_history__bad_fields_are_an_error),
        cmocka_unit_test(test_history__empty),
        cmocka_unit_test(test_history__checkers_survive_corrupted_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

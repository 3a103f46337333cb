/* The Raft command codec: round trips and refusal of every malformed shape. */
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "okv_test.h"

static uint8_t *encode(const command *c, size_t *len)
{
    *len = command_encoded_size(c);
    uint8_t *buf = malloc(*len);
    command_encode(c, buf);
    return buf;
}

static command sample(void)
{
    command c;
    memset(&c, 0, sizeof c);
    c.op = CMD_PUT;
    c.check_version = 1;
    c.table_id = 2;
    c.partition = 7;
    c.client_id = 0x1122334455667788ULL;
    c.request_id = 42;
    c.watermark = 40;
    c.expected_version = 9;
    c.key = (const uint8_t *)"o1/p1";
    c.key_len = 5;
    c.value = (const uint8_t *)"\x00payload";
    c.value_len = 8;
    return c;
}

static void test_command__roundtrip(void **state)
{
    (void)state;
    command c = sample(), d;
    size_t len;
    uint8_t *buf = encode(&c, &len);
    okv_error err;
    assert_int_equal(command_decode(buf, len, &d, &err), OKV_OK);
    assert_int_equal(d.op, CMD_PUT);
    assert_true(d.check_version);
    assert_int_equal(d.table_id, 2);
    assert_int_equal(d.partition, 7);
    assert_true(d.client_id == c.client_id);
    assert_int_equal(d.request_id, 42);
    assert_int_equal(d.watermark, 40);
    assert_int_equal(d.expected_version, 9);
    assert_int_equal(d.key_len, 5);
    assert_memory_equal(d.key, "o1/p1", 5);
    assert_int_equal(d.value_len, 8);
    assert_memory_equal(d.value, "\x00payload", 8);
    free(buf);
}

static void test_command__every_truncation_is_refused(void **state)
{
    (void)state;
    command c = sample(), d;
    size_t len;
    uint8_t *buf = encode(&c, &len);
    okv_error err;
    for (size_t n = 0; n < len; n++)
        assert_int_equal(command_decode(buf, n, &d, &err), OKV_ECORRUPT);
    free(buf);
}

static void test_command__malformed_fields_are_refused(void **state)
{
    (void)state;
    command c = sample(), d;
    size_t len;
    okv_error err;
    struct { size_t off; uint8_t val; } cases[] = {
        { 0, 2 },      /* format version */
        { 1, 0 },      /* op */
        { 1, 3 },      /* TXN with a key */
        { 1, 4 },
        { 2, 0x80 },   /* unknown flag */
        { 43, 0xff },  /* key length huge */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *buf = encode(&c, &len);
        buf[cases[i].off] = cases[i].val;
        assert_int_equal(command_decode(buf, len, &d, &err), OKV_ECORRUPT);
        free(buf);
    }
    /* A delete must not carry a value; an empty key is refused. */
    c.op = CMD_DELETE;
    uint8_t *buf = encode(&c, &len);
    assert_int_equal(command_decode(buf, len, &d, &err), OKV_ECORRUPT);
    free(buf);
    c = sample();
    c.key_len = 0;
    buf = encode(&c, &len);
    assert_int_equal(command_decode(buf, len, &d, &err), OKV_ECORRUPT);
    free(buf);
    /* Trailing garbage after the value is refused too. */
    c = sample();
    size_t n = command_encoded_size(&c);
    buf = calloc(1, n + 3);
    command_encode(&c, buf);
    assert_int_equal(command_decode(buf, n + 3, &d, &err), OKV_ECORRUPT);
    free(buf);
}

static void test_command__result_roundtrip(void **state)
{
    (void)state;
    command_result r = { OKV_ECONFLICT, 0, 1, 0, 0, 0 }, s;
    uint8_t buf[COMMAND_RESULT_LEN];
    size_t n = command_result_encode(&r, buf);
    assert_int_equal(n, COMMAND_RESULT_V1_LEN);
    assert_int_equal(command_result_decode(buf, n, &s), 0);
    assert_int_equal(s.code, OKV_ECONFLICT);
    assert_int_equal(s.existed, 1);
    assert_int_equal(command_result_decode(buf, n - 1, &s), -1);
    assert_int_equal(command_result_decode(buf, n + 1, &s), -1);
    buf[13] = 7;
    assert_int_equal(command_result_decode(buf, n, &s), -1);
    /* A transaction that failed: version 2 carries which item and why. */
    command_result t = { OKV_ECONDITION, 0, 0, 258, 2, 0 };
    n = command_result_encode(&t, buf);
    assert_int_equal(n, COMMAND_RESULT_LEN);
    assert_int_equal(command_result_decode(buf, n, &s), 0);
    assert_int_equal(s.code, OKV_ECONDITION);
    assert_int_equal(s.failed, 258);
    assert_int_equal(s.reason, 2);
    assert_int_equal(command_result_decode(buf, COMMAND_RESULT_V1_LEN, &s), -1);
}

static void test_command__txn_carries_its_bytes_and_no_key(void **state)
{
    (void)state;
    command c = sample(), d;
    c.op = CMD_TXN;
    c.check_version = 0;
    c.key_len = 0;
    c.value = (const uint8_t *)"\x01txn";
    c.value_len = 4;
    size_t len;
    uint8_t *buf = encode(&c, &len);
    okv_error err;
    assert_int_equal(command_decode(buf, len, &d, &err), OKV_OK);
    assert_int_equal(d.op, CMD_TXN);
    assert_int_equal(d.value_len, 4);
    assert_memory_equal(d.value, "\x01txn", 4);
    free(buf);
    /* No transaction bytes, or a version check on a transaction: refused. */
    c.value_len = 0;
    buf = encode(&c, &len);
    assert_int_equal(command_decode(buf, len, &d, &err), OKV_ECORRUPT);
    free(buf);
    c.value_len = 4;
    c.check_version = 1;
    buf = encode(&c, &len);
    assert_int_equal(command_decode(buf, len, &d, &err), OKV_ECORRUPT);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command__roundtrip),
        cmocka_unit_test(test_command__every_truncation_is_refused),
        cmocka_unit_test(test_command__malformed_fields_are_refused),
        cmocka_unit_test(test_command__result_roundtrip),
        cmocka_unit_test(test_command__txn_carries_its_bytes_and_no_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Request decoding and validation: every limit and malformed input gets the
 * right code and a message that names the problem. */
#include <stdlib.h>
#include <string.h>

#include "okv_test.h"
#include "orderkv.pb-c.h"
#include "request.h"

static catalog cat;

static int setup(void **state)
{
    (void)state;
    catalog_init_default(&cat, 8);
    return 0;
}

/* Packs a protobuf message into a malloc'd buffer. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    protobuf_c_message_pack(m, buf);
    return buf;
}

static int decode_put(const char *table, const void *key, size_t klen, size_t vlen, request *r,
                      okv_error *err)
{
    Orderkv__V1__PutRequest m = ORDERKV__V1__PUT_REQUEST__INIT;
    uint8_t *val = calloc(1, vlen ? vlen : 1);
    m.table = (char *)table;
    m.key.data = (uint8_t *)key;
    m.key.len = klen;
    m.value.data = val;
    m.value.len = vlen;
    size_t len;
    uint8_t *buf = pack(&m.base, &len);
    int rc = request_decode(r, REQ_PUT, &cat, buf, len, err);
    free(buf);
    free(val);
    return rc;
}

static void test_request__put_valid(void **state)
{
    (void)state;
    request r;
    okv_error err;
    assert_int_equal(decode_put("orders", "cust1/o1", 8, 10, &r, &err), OKV_OK);
    assert_string_equal(r.table->name, "orders");
    assert_int_equal(r.key_len, 8);
    assert_int_equal(r.value_len, 10);
    assert_true(r.partition < 8);
    request_release(&r);
}

static int decode_put_ids(uint64_t client, uint64_t req, uint64_t watermark, request *r,
                          okv_error *err)
{
    Orderkv__V1__PutRequest m = ORDERKV__V1__PUT_REQUEST__INIT;
    m.table = "orders";
    m.key.data = (uint8_t *)"k";
    m.key.len = 1;
    m.client_id = client;
    m.request_id = req;
    m.watermark = watermark;
    size_t len;
    uint8_t *buf = pack(&m.base, &len);
    int rc = request_decode(r, REQ_PUT, &cat, buf, len, err);
    free(buf);
    return rc;
}

/* A watermark promises the client is done with every id below it: it may
 * equal the request's own id (nothing older in flight), never exceed it. */
static void test_request__watermark_at_most_the_request_id(void **state)
{
    (void)state;
    request r;
    okv_error err;
    assert_int_equal(decode_put_ids(7, 10, 10, &r, &err), OKV_OK);
    assert_int_equal(r.watermark, 10);
    request_release(&r);
    assert_int_equal(decode_put_ids(7, 10, 11, &r, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "watermark 11 is above the request id 10"));
    request_release(&r);
    assert_int_equal(decode_put_ids(0, 0, 3, &r, &err), OKV_EINVAL);
    request_release(&r);
}

static void test_request__unknown_table(void **state)
{
    (void)state;
    request r;
    okv_error err;
    assert_int_equal(decode_put("refunds", "k", 1, 1, &r, &err), OKV_ENOTFOUND);
    assert_non_null(strstr(err.msg, "unknown table 'refunds'"));
    assert_non_null(strstr(err.msg, "orders"));
}

static void test_request__empty_table(void **state)
{
    (void)state;
    request r;
    okv_error err;
    assert_int_equal(decode_put("", "k", 1, 1, &r, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "table name is empty"));
}

static void test_request__table_with_embedded_nul_is_refused(void **state)
{
    (void)state;
    /* GetRequest{table: "orders\0x", key: "k"} encoded by hand: protobuf-c
     * would hand the table over as "orders". */
    static const uint8_t wire[] = { 0x0a, 8, 'o', 'r', 'd', 'e', 'r', 's', 0, 'x', 0x12, 1, 'k' };
    request r;
    okv_error err;
    assert_int_equal(request_decode(&r, REQ_GET, &cat, wire, sizeof wire, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "NUL"));
    /* The same bytes without the NUL tail are a valid request. */
    static const uint8_t ok[] = { 0x0a, 6, 'o', 'r', 'd', 'e', 'r', 's', 0x12, 1, 'k' };
    assert_int_equal(request_decode(&r, REQ_GET, &cat, ok, sizeof ok, &err), OKV_OK);
    request_release(&r);
}

static void test_request__empty_key(void **state)
{
    (void)state;
    request r;
    okv_error err;
    assert_int_equal(decode_put("orders", "", 0, 1, &r, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "key is empty"));
}

static void test_request__key_limit(void **state)
{
    (void)state;
    char key[OKV_MAX_KEY_LEN + 1];
    memset(key, 'k', sizeof key);
    request r;
    okv_error err;
    assert_int_equal(decode_put("orders", key, OKV_MAX_KEY_LEN, 0, &r, &err), OKV_OK);
    request_release(&r);
    assert_int_equal(decode_put("orders", key, OKV_MAX_KEY_LEN + 1, 0, &r, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "1025 bytes; the limit is 1024"));
}

static void test_request__value_limit(void **state)
{
    (void)state;
    request r;
    okv_error err;
    assert_int_equal(decode_put("orders", "k", 1, OKV_MAX_VALUE_LEN, &r, &err), OKV_OK);
    request_release(&r);
    assert_int_equal(decode_put("orders", "k", 1, OKV_MAX_VALUE_LEN + 1, &r, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "value is"));
}

static void test_request__malformed_bytes(void **state)
{
    (void)state;
    static const uint8_t garbage[][6] = {
        { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },  /* bad varint tag */
        { 0x12, 0x7f, 'a', 'b', 0, 0 },          /* length past the end */
        { 0x0f, 0, 0, 0, 0, 0 },                 /* wire type 7 */
    };
    for (int kind = 0; kind < REQ_KIND_COUNT; kind++) {
        for (size_t i = 0; i < 3; i++) {
            request r;
            okv_error err;
            int rc = request_decode(&r, (enum request_kind)kind, &cat, garbage[i], 6, &err);
            assert_int_equal(rc, OKV_EPROTO);
            assert_non_null(strstr(err.msg, "malformed"));
        }
    }
}

static void test_request__empty_message_is_missing_table(void **state)
{
    (void)state;
    request r;
    okv_error err;
    /* Zero bytes decode to a message with every field default: no table. */
    assert_int_equal(request_decode(&r, REQ_GET, &cat, (const uint8_t *)"", 0, &err), OKV_EINVAL);
    assert_int_equal(request_decode(&r, REQ_STATUS, &cat, (const uint8_t *)"", 0, &err), OKV_OK);
    request_release(&r);
}

static int decode_scan(Orderkv__V1__ScanRequest *m, request *r, okv_error *err)
{
    size_t len;
    uint8_t *buf = pack(&m->base, &len);
    int rc = request_decode(r, REQ_SCAN, &cat, buf, len, err);
    free(buf);
    return rc;
}

static void test_request__scan_prefix_bounds(void **state)
{
    (void)state;
    Orderkv__V1__ScanRequest m = ORDERKV__V1__SCAN_REQUEST__INIT;
    m.table = "orders";
    m.prefix.data = (uint8_t *)"cust1/";
    m.prefix.len = 6;
    request r;
    okv_error err;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_OK);
    assert_int_equal(r.limit, OKV_SCAN_DEFAULT_LIMIT);
    assert_true(r.single_partition);   /* prefix holds a '/': one partition key */
    assert_true(r.has_upper);
    assert_memory_equal(r.upper, "cust10", 6);   /* '/' + 1 == '0' */
    request_release(&r);

    m.prefix.data = (uint8_t *)"cust";
    m.prefix.len = 4;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_OK);
    assert_false(r.single_partition);
    request_release(&r);
}

static void test_request__scan_all_ff_prefix_has_no_upper(void **state)
{
    (void)state;
    Orderkv__V1__ScanRequest m = ORDERKV__V1__SCAN_REQUEST__INIT;
    m.table = "orders";
    m.prefix.data = (uint8_t *)"\xff\xff";
    m.prefix.len = 2;
    request r;
    okv_error err;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_OK);
    assert_false(r.has_upper);
    request_release(&r);
}

static void test_request__scan_rejects_prefix_and_range(void **state)
{
    (void)state;
    Orderkv__V1__ScanRequest m = ORDERKV__V1__SCAN_REQUEST__INIT;
    m.table = "orders";
    m.prefix.data = (uint8_t *)"a";
    m.prefix.len = 1;
    m.start.data = (uint8_t *)"b";
    m.start.len = 1;
    request r;
    okv_error err;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "not both"));
}

static void test_request__scan_limits_and_empty_range(void **state)
{
    (void)state;
    Orderkv__V1__ScanRequest m = ORDERKV__V1__SCAN_REQUEST__INIT;
    m.table = "orders";
    m.limit = OKV_SCAN_MAX_LIMIT + 1;
    request r;
    okv_error err;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_EINVAL);
    m.limit = 5;
    m.start.data = (uint8_t *)"m";
    m.start.len = 1;
    m.end.data = (uint8_t *)"a";
    m.end.len = 1;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "start >= end"));
}

static void test_request__scan_resume_token(void **state)
{
    (void)state;
    Orderkv__V1__ScanRequest m = ORDERKV__V1__SCAN_REQUEST__INIT;
    m.table = "orders";
    m.start.data = (uint8_t *)"b";
    m.start.len = 1;
    m.end.data = (uint8_t *)"y";
    m.end.len = 1;
    uint8_t tok[8];
    size_t tlen = request_resume_token(tok, (const uint8_t *)"cat", 3);
    m.resume_token.data = tok;
    m.resume_token.len = tlen;
    request r;
    okv_error err;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_OK);
    /* The next page starts just after "cat": at "cat\0". */
    assert_int_equal(r.lower_len, 4);
    assert_memory_equal(r.lower, "cat\0", 4);
    request_release(&r);

    /* A token from outside the range, or of an unknown format, is refused. */
    tlen = request_resume_token(tok, (const uint8_t *)"zebra", 5);
    m.resume_token.len = tlen;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_EINVAL);
    tok[0] = 0x7f;
    assert_int_equal(decode_scan(&m, &r, &err), OKV_EINVAL);
    assert_non_null(strstr(err.msg, "resume token"));
}

static void test_request__same_partition_key_same_partition(void **state)
{
    (void)state;
    request a, b;
    okv_error err;
    assert_int_equal(decode_put("orders", "cust42/ord1", 11, 0, &a, &err), OKV_OK);
    assert_int_equal(decode_put("orders", "cust42/ord2/x", 13, 0, &b, &err), OKV_OK);
    assert_int_equal(a.partition, b.partition);
    request_release(&a);
    request_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request__put_valid),
        cmocka_unit_test(test_request__unknown_table),
        cmocka_unit_test(test_request__watermark_at_most_the_request_id),
        cmocka_unit_test(test_request__empty_table),
        cmocka_unit_test(test_request__table_with_embedded_nul_is_refused),
        cmocka_unit_test(test_request__empty_key),
        cmocka_unit_test(test_request__key_limit),
        cmocka_unit_test(test_request__value_limit),
        cmocka_unit_test(test_request__malformed_bytes),
        cmocka_unit_test(test_request__empty_message_is_missing_table),
        cmocka_unit_test(test_request__scan_prefix_bounds),
        cmocka_unit_test(test_request__scan_all_ff_prefix_has_no_upper),
        cmocka_unit_test(test_request__scan_rejects_prefix_and_range),
        cmocka_unit_test(test_request__scan_limits_and_empty_range),
        cmocka_unit_test(test_request__scan_resume_token),
        cmocka_unit_test(test_request__same_partition_key_same_partition),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}

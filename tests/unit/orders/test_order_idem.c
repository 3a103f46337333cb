/* server/orders/order_idem: the request hash (vectors, what it covers and
 * what it ignores), replay versus reuse, and retention. */
#include <string.h>

#include "okv_test.h"
#include "order_idem.h"

static void hash_is(const void *data, size_t len, uint64_t hi, uint64_t lo)
{
    ord_hash128 h = ord_fnv1a128(data, len);
    assert_int_equal(h.hi, hi);
    assert_int_equal(h.lo, lo);
}

/* Published FNV-1a 128 values (and Python big-integer arithmetic for the
 * long input). */
static void test_order_idem__fnv1a128_vectors(void **state)
{
    (void)state;
    hash_is("", 0, 0x6c62272e07bb0142ull, 0x62b821756295c58dull);
    hash_is("a", 1, 0xd228cb696f1a8cafull, 0x78912b704e4a8964ull);
    hash_is("foobar", 6, 0x343e1662793c64bfull, 0x6f0d3597ba446f18ull);
    uint8_t all[512];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (uint8_t)i;
    hash_is(all, sizeof all, 0xd0e864e37c68907aull, 0xf113bc8fe7e51b8dull);
}

static int eq(ord_hash128 a, ord_hash128 b) { return a.hi == b.hi && a.lo == b.lo; }

static void test_order_idem__pay_hash_covers_semantic_fields_only(void **state)
{
    (void)state;
    Orderkv__V1__PayOrderRequest a = ORDERKV__V1__PAY_ORDER_REQUEST__INIT;
    a.customer_id = "c1";
    a.order_id = "o1";
    a.account_id = "acct";
    a.method = "account";
    a.amount = 1234;
    a.currency = "CNY";
    a.idempotency_key = "k1";
    ord_hash128 base = ord_idem_hash_pay(&a);
    Orderkv__V1__PayOrderRequest b = a;
    b.idempotency_key = "another key";
    assert_true(eq(ord_idem_hash_pay(&b), base));   /* the key is the address, not the request */
    b = a;
    b.amount = 1235;
    assert_false(eq(ord_idem_hash_pay(&b), base));
    b = a;
    b.order_id = "o2";
    assert_false(eq(ord_idem_hash_pay(&b), base));
    b = a;
    b.account_id = "";
    assert_false(eq(ord_idem_hash_pay(&b), base));
    b = a;
    b.method = "card";
    assert_false(eq(ord_idem_hash_pay(&b), base));
    b = a;
    b.currency = "";
    assert_false(eq(ord_idem_hash_pay(&b), base));
    /* Length prefixes: moving a byte between fields is another request. */
    b = a;
    b.customer_id = "c1o";
    b.order_id = "1";
    assert_false(eq(ord_idem_hash_pay(&b), base));
}

static void test_order_idem__kinds_and_items_hash_apart(void **state)
{
    (void)state;
    Orderkv__V1__CreateOrderItem i1 = ORDERKV__V1__CREATE_ORDER_ITEM__INIT;
    Orderkv__V1__CreateOrderItem i2 = ORDERKV__V1__CREATE_ORDER_ITEM__INIT;
    i1.sku = "A";
    i1.quantity = 1;
    i1.unit_price = 100;
    i2.sku = "B";
    i2.quantity = 2;
    i2.unit_price = 50;
    Orderkv__V1__CreateOrderItem *ab[] = { &i1, &i2 }, *ba[] = { &i2, &i1 };
    Orderkv__V1__CreateOrderRequest r = ORDERKV__V1__CREATE_ORDER_REQUEST__INIT;
    r.customer_id = "c";
    r.currency = "CNY";
    r.n_items = 2;
    r.items = ab;
    ord_hash128 h1 = ord_idem_hash_create(&r);
    assert_true(eq(ord_idem_hash_create(&r), h1));   /* deterministic */
    r.items = ba;
    assert_false(eq(ord_idem_hash_create(&r), h1));
    r.items = ab;
    i2.reserve_stock = 1;
    assert_false(eq(ord_idem_hash_create(&r), h1));
    i2.reserve_stock = 0;
    r.reserve_stock = 1;
    assert_false(eq(ord_idem_hash_create(&r), h1));

    /* The same fields under another kind hash apart. */
    Orderkv__V1__DepositRequest d = ORDERKV__V1__DEPOSIT_REQUEST__INIT;
    Orderkv__V1__ReserveStockRequest s = ORDERKV__V1__RESERVE_STOCK_REQUEST__INIT;
    Orderkv__V1__RefundOrderRequest f = ORDERKV__V1__REFUND_ORDER_REQUEST__INIT;
    assert_false(eq(ord_idem_hash_deposit(&d), ord_idem_hash_reserve(&s)));
    assert_false(eq(ord_idem_hash_deposit(&d), ord_idem_hash_refund(&f)));
    f.reason = "damaged";
    ord_hash128 fr = ord_idem_hash_refund(&f);
    f.reason = "late";
    assert_false(eq(ord_idem_hash_refund(&f), fr));
}

static void test_order_idem__replay_and_reuse(void **state)
{
    (void)state;
    ord_hash128 h = { 1, 2 }, other = { 1, 3 };
    uint8_t resp[] = { 0x1a, 0x00 };
    Orderkv__V1__IdempotencyRecord rec;
    ord_idem_record_init(&rec, ORD_IDEM_PAY, h, resp, sizeof resp, 1000);
    assert_int_equal(rec.kind, ORD_IDEM_PAY);
    assert_int_equal(rec.created_at_ms, 1000);
    assert_int_equal(rec.schema_version, 1);
    ord_error e;
    assert_int_equal(ord_idem_check(&rec, ORD_IDEM_PAY, h, &e), 0);
    assert_int_equal(ord_idem_check(&rec, ORD_IDEM_PAY, other, &e), OKV_EIDEMPOTENCY);
    assert_int_equal(e.reason, ORD_R(IDEMPOTENCY_KEY_REUSED));
    assert_non_null(strstr(e.msg, "different pay request"));
    assert_int_equal(ord_idem_check(&rec, ORD_IDEM_REFUND, h, &e), OKV_EIDEMPOTENCY);
    assert_non_null(strstr(e.msg, "used by a pay request"));
    rec.response.len = 0;
    assert_int_equal(ord_idem_check(&rec, ORD_IDEM_PAY, h, &e), OKV_ECORRUPT);
}

static void test_order_idem__retention(void **state)
{
    (void)state;
    Orderkv__V1__IdempotencyRecord rec = ORDERKV__V1__IDEMPOTENCY_RECORD__INIT;
    const int64_t day = ORD_IDEM_RETENTION_DEFAULT_MS;
    assert_int_equal(day, 86400000);
    rec.created_at_ms = 1700000000000;
    assert_false(ord_idem_expired(&rec, rec.created_at_ms, day));
    assert_false(ord_idem_expired(&rec, rec.created_at_ms + day - 1, day));
    assert_true(ord_idem_expired(&rec, rec.created_at_ms + day, day));
    assert_false(ord_idem_expired(&rec, rec.created_at_ms - 5, day));   /* clock went back */
    assert_false(ord_idem_expired(&rec, INT64_MAX, 0));                 /* 0 = keep forever */
    assert_true(ord_idem_expired(&rec, INT64_MAX, INT64_MAX - rec.created_at_ms));
    rec.created_at_ms = INT64_MIN;   /* no overflow in the arithmetic */
    assert_true(ord_idem_expired(&rec, INT64_MAX, day));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_idem__fnv1a128_vectors),
        cmocka_unit_test(test_order_idem__pay_hash_covers_semantic_fields_only),
        cmocka_unit_test(test_order_idem__kinds_and_items_hash_apart),
        cmocka_unit_test(test_order_idem__replay_and_reuse),
        cmocka_unit_test(test_order_idem__retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

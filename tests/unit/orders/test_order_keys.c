/* server/orders/order_keys: the key layouts, built and parsed back, and the
 * id rules that keep one record's key from reading as another's. */
#include <string.h>

#include "okv_test.h"
#include "order_keys.h"

static void assert_key(const ord_key *k, const char *want)
{
    assert_int_equal(k->len, strlen(want));
    assert_memory_equal(k->buf, want, k->len);
}

static void assert_slice(ord_slice s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void test_order_keys__layouts(void **state)
{
    (void)state;
    ord_key k;
    assert_int_equal(ord_key_order(&k, "cust42", "o-9", NULL), 0);
    assert_key(&k, "cust42/o/o-9");
    assert_int_equal(ord_key_payment(&k, "cust42", "p-1", NULL), 0);
    assert_key(&k, "cust42/p/p-1");
    assert_int_equal(ord_key_refund(&k, "cust42", "r-1", NULL), 0);
    assert_key(&k, "cust42/r/r-1");
    assert_int_equal(ord_key_balance(&k, "acct-9", NULL), 0);
    assert_key(&k, "acct-9");
    assert_int_equal(ord_key_account(&k, "acct-9", NULL), 0);
    assert_key(&k, "acct-9/meta");
    assert_int_equal(ord_key_stock(&k, "SKU-1", NULL), 0);
    assert_key(&k, "SKU-1");
    assert_int_equal(ord_key_reservation(&k, "SKU-1", "o-9", NULL), 0);
    assert_key(&k, "SKU-1/r/o-9");
    assert_int_equal(ord_key_idem(&k, ORD_IDEM_PAY, "cust42", "key/with/slashes", NULL), 0);
    assert_key(&k, "cust42/i/pay/key/with/slashes");
    assert_int_equal(ord_key_idem(&k, ORD_IDEM_DEPOSIT, "acct-9", "d1", NULL), 0);
    assert_key(&k, "acct-9/i/deposit/d1");
    assert_int_equal(ord_key_idem(&k, ORD_IDEM_RESERVE, "SKU-1", "r1", NULL), 0);
    assert_key(&k, "SKU-1/i/reserve/r1");
    assert_int_equal(ord_key_orders_prefix(&k, "cust42", NULL), 0);
    assert_key(&k, "cust42/o/");
    assert_int_equal(ord_key_orders_start(&k, "cust42", "", NULL), 0);
    assert_key(&k, "cust42/o/");
    assert_int_equal(ord_key_orders_start(&k, "cust42", "o-9", NULL), 0);
    assert_int_equal(k.len, strlen("cust42/o/o-9") + 1);
    assert_memory_equal(k.buf, "cust42/o/o-9\0", k.len);
    assert_string_equal(ord_table_name(ORD_TABLE_STOCK), "stock");
    assert_int_equal(ord_idem_kind_table(ORD_IDEM_DEPOSIT), ORD_TABLE_ACCOUNTS);
    assert_int_equal(ord_idem_kind_table(ORD_IDEM_RESERVE), ORD_TABLE_STOCK);
    assert_int_equal(ord_idem_kind_table(ORD_IDEM_CREATE), ORD_TABLE_ORDERS);
    assert_null(ord_idem_kind_token(0));
}

/* The records that must share a partition do: same text before the first '/'. */
static void test_order_keys__partition_keys(void **state)
{
    (void)state;
    ord_key a, b;
    ord_key_order(&a, "c1", "o1", NULL);
    ord_key_idem(&b, ORD_IDEM_CREATE, "c1", "k", NULL);
    assert_memory_equal(a.buf, b.buf, 3);
    ord_key_balance(&a, "acct", NULL);
    ord_key_idem(&b, ORD_IDEM_DEPOSIT, "acct", "k", NULL);
    assert_memory_equal(a.buf, b.buf, a.len);
    assert_int_equal(b.buf[a.len], '/');
}

static void roundtrip(ord_table t, const ord_key *k, ord_key_type type, const char *owner,
                      const char *id)
{
    ord_key_parts parts;
    ord_error e;
    assert_int_equal(ord_key_parse(t, k->buf, k->len, &parts, &e), 0);
    assert_int_equal(parts.type, type);
    assert_slice(parts.owner, owner);
    assert_slice(parts.id, id);
}

static void test_order_keys__parse_round_trips(void **state)
{
    (void)state;
    ord_key k;
    ord_key_order(&k, "c", "o-1", NULL);
    roundtrip(ORD_TABLE_ORDERS, &k, ORD_KEY_ORDER, "c", "o-1");
    ord_key_payment(&k, "c", "p-1", NULL);
    roundtrip(ORD_TABLE_PAYMENTS, &k, ORD_KEY_PAYMENT, "c", "p-1");
    ord_key_refund(&k, "c", "r-1", NULL);
    roundtrip(ORD_TABLE_PAYMENTS, &k, ORD_KEY_REFUND, "c", "r-1");
    ord_key_balance(&k, "a", NULL);
    roundtrip(ORD_TABLE_ACCOUNTS, &k, ORD_KEY_BALANCE, "a", "");
    ord_key_account(&k, "a", NULL);
    roundtrip(ORD_TABLE_ACCOUNTS, &k, ORD_KEY_ACCOUNT, "a", "");
    ord_key_stock(&k, "s", NULL);
    roundtrip(ORD_TABLE_STOCK, &k, ORD_KEY_STOCK, "s", "");
    ord_key_reservation(&k, "s", "res", NULL);
    roundtrip(ORD_TABLE_STOCK, &k, ORD_KEY_RESERVATION, "s", "res");
    static const struct {
        ord_idem_kind kind;
        ord_table table;
    } kinds[] = { { ORD_IDEM_CREATE, ORD_TABLE_ORDERS }, { ORD_IDEM_PAY, ORD_TABLE_ORDERS },
                  { ORD_IDEM_REFUND, ORD_TABLE_ORDERS }, { ORD_IDEM_DEPOSIT, ORD_TABLE_ACCOUNTS },
                  { ORD_IDEM_RESERVE, ORD_TABLE_STOCK } };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        ord_key_idem(&k, kinds[i].kind, "own", "a/b c", NULL);
        roundtrip(kinds[i].table, &k, ORD_KEY_IDEM, "own", "a/b c");
        ord_key_parts parts;
        ord_key_parse(kinds[i].table, k.buf, k.len, &parts, NULL);
        assert_int_equal(parts.kind, kinds[i].kind);
    }
    /* UTF-8 ids are fine. */
    assert_int_equal(ord_key_order(&k, "客户", "订单-1", NULL), 0);
    roundtrip(ORD_TABLE_ORDERS, &k, ORD_KEY_ORDER, "客户", "订单-1");
}

static void test_order_keys__id_rules(void **state)
{
    (void)state;
    ord_error e;
    ord_key k;
    char longid[ORD_ID_MAX + 2];
    memset(longid, 'x', sizeof longid);
    longid[ORD_ID_MAX] = '\0';
    assert_int_equal(ord_id_check("order id", longid, &e), 0);
    longid[ORD_ID_MAX] = 'x';
    longid[ORD_ID_MAX + 1] = '\0';
    assert_int_equal(ord_id_check("order id", longid, &e), OKV_EINVAL);
    assert_non_null(strstr(e.msg, "limit is 128"));
    assert_int_equal(e.reason, ORD_R(INVALID));
    assert_int_equal(ord_id_check("order id", "", &e), OKV_EINVAL);
    assert_non_null(strstr(e.msg, "order id is empty"));
    assert_int_equal(ord_id_check("order id", NULL, &e), OKV_EINVAL);
    assert_int_equal(ord_id_check("customer id", "a/b", &e), OKV_EINVAL);
    assert_non_null(strstr(e.msg, "'/'"));
    assert_int_equal(ord_id_check("sku", "a\tb", &e), OKV_EINVAL);
    assert_int_equal(ord_id_check("sku", "a\x7f", &e), OKV_EINVAL);
    /* Builders refuse too, naming the bad part. */
    assert_int_equal(ord_key_order(&k, "c/x", "o", &e), OKV_EINVAL);
    assert_non_null(strstr(e.msg, "customer id"));
    assert_int_equal(ord_key_order(&k, "c", "o/x", &e), OKV_EINVAL);
    assert_non_null(strstr(e.msg, "order id"));
    assert_int_equal(ord_key_idem(&k, (ord_idem_kind)42, "c", "k", &e), OKV_EINVAL);
}

static void test_order_keys__idempotency_key_rules(void **state)
{
    (void)state;
    ord_error e;
    ord_key k;
    char key[ORD_IDEM_KEY_MAX + 2];
    memset(key, 'k', sizeof key);
    key[ORD_IDEM_KEY_MAX] = '\0';
    assert_int_equal(ord_idem_key_check(key, &e), 0);
    /* The longest key of all fits a KV key. */
    char owner[ORD_ID_MAX + 1];
    memset(owner, 'c', ORD_ID_MAX);
    owner[ORD_ID_MAX] = '\0';
    assert_int_equal(ord_key_idem(&k, ORD_IDEM_DEPOSIT, owner, key, &e), 0);
    assert_int_equal(k.len, ORD_KEY_MAX);
    assert_true(k.len <= OKV_MAX_KEY_LEN);
    key[ORD_IDEM_KEY_MAX] = 'k';
    key[ORD_IDEM_KEY_MAX + 1] = '\0';
    assert_int_equal(ord_idem_key_check(key, &e), OKV_EINVAL);
    assert_non_null(strstr(e.msg, "limit is 255"));
    assert_int_equal(ord_idem_key_check("", &e), OKV_EINVAL);
    assert_int_equal(ord_idem_key_check("a\nb", &e), OKV_EINVAL);
    assert_int_equal(ord_idem_key_check("a/b", &e), 0);
}

static void reject(ord_table t, const char *key, size_t len)
{
    ord_key_parts parts;
    ord_error e;
    ord_error_clear(&e);
    if (ord_key_parse(t, key, len, &parts, &e) != OKV_EINVAL)
        fail_msg("parsed '%.*s' in %s", (int)len, key, ord_table_name(t));
    assert_true(strlen(e.msg) > 0);
}

#define REJECT(t, lit) reject(t, lit, sizeof lit - 1)

static void test_order_keys__parse_rejects(void **state)
{
    (void)state;
    REJECT(ORD_TABLE_ORDERS, "");
    REJECT(ORD_TABLE_ORDERS, "cust");            /* no bare keys in orders */
    REJECT(ORD_TABLE_PAYMENTS, "cust");
    REJECT(ORD_TABLE_ORDERS, "/o/x");            /* empty customer */
    REJECT(ORD_TABLE_ORDERS, "c/o/");            /* empty order id */
    REJECT(ORD_TABLE_ORDERS, "c/o/a/b");         /* '/' in an order id */
    REJECT(ORD_TABLE_ORDERS, "c/x/a");           /* unknown tag */
    REJECT(ORD_TABLE_ORDERS, "c/oo/a");
    REJECT(ORD_TABLE_ORDERS, "c/p/a");           /* a payment tag in orders */
    REJECT(ORD_TABLE_STOCK, "s/p/a");
    REJECT(ORD_TABLE_ORDERS, "c/i/pay");         /* no key after the kind */
    REJECT(ORD_TABLE_ORDERS, "c/i/pay/");        /* empty idempotency key */
    REJECT(ORD_TABLE_ORDERS, "c/i/bogus/k");     /* unknown kind */
    REJECT(ORD_TABLE_ORDERS, "c/i/deposit/k");   /* deposit records live in accounts */
    REJECT(ORD_TABLE_ACCOUNTS, "a/metax");
    REJECT(ORD_TABLE_ACCOUNTS, "a/");
    REJECT(ORD_TABLE_ORDERS, "c\0/o/x");         /* control byte in the customer id */
    REJECT(ORD_TABLE_ORDERS, "c/o/x\0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_keys__layouts),
        cmocka_unit_test(test_order_keys__partition_keys),
        cmocka_unit_test(test_order_keys__parse_round_trips),
        cmocka_unit_test(test_order_keys__id_rules),
        cmocka_unit_test(test_order_keys__idempotency_key_rules),
        cmocka_unit_test(test_order_keys__parse_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

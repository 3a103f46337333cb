/* server/orders/order_money: minor units <-> text, exactly, at the edges. */
#include <string.h>

#include "okv_test.h"
#include "order_money.h"

static void fmt_is(int64_t v, const char *cur, const char *want)
{
    char buf[ORD_MONEY_TEXT_MAX];
    size_t n = ord_money_format(buf, sizeof buf, v, cur);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_order_money__exponents(void **state)
{
    (void)state;
    assert_int_equal(ord_currency_exponent("CNY"), 2);
    assert_int_equal(ord_currency_exponent("USD"), 2);
    assert_int_equal(ord_currency_exponent("JPY"), 0);
    assert_int_equal(ord_currency_exponent("KRW"), 0);
    assert_int_equal(ord_currency_exponent("BHD"), 3);
    assert_int_equal(ord_currency_exponent("KWD"), 3);
    assert_int_equal(ord_currency_exponent("JOD"), 3);
    assert_int_equal(ord_currency_exponent("OMR"), 3);
    assert_int_equal(ord_currency_exponent("TND"), 3);
    assert_int_equal(ord_currency_exponent("XYZ"), 2);
    assert_int_equal(ord_currency_exponent(NULL), 2);
    assert_int_equal(ord_currency_check("CNY", NULL), 0);
    assert_int_equal(ord_currency_check("cny", NULL), OKV_EINVAL);
    assert_int_equal(ord_currency_check("CNYY", NULL), OKV_EINVAL);
    assert_int_equal(ord_currency_check("", NULL), OKV_EINVAL);
    assert_int_equal(ord_currency_check(NULL, NULL), OKV_EINVAL);
}

static void test_order_money__format(void **state)
{
    (void)state;
    fmt_is(1234, "CNY", "12.34 CNY");
    fmt_is(5, "USD", "0.05 USD");
    fmt_is(-5, "USD", "-0.05 USD");
    fmt_is(0, "CNY", "0.00 CNY");
    fmt_is(1200, "JPY", "1200 JPY");
    fmt_is(-1200, "JPY", "-1200 JPY");
    fmt_is(1, "KWD", "0.001 KWD");
    fmt_is(INT64_MAX, "CNY", "92233720368547758.07 CNY");
    fmt_is(INT64_MIN, "CNY", "-92233720368547758.08 CNY");
    fmt_is(INT64_MIN, "KWD", "-9223372036854775.808 KWD");
    char small[6];
    assert_int_equal(ord_money_format(small, sizeof small, 1234, "CNY"), 0);
    assert_string_equal(small, "");
}

static int64_t parse_ok(const char *text, const char *cur)
{
    int64_t v = 42;
    ord_error e;
    ord_error_clear(&e);
    if (ord_money_parse(text, cur, &v, &e) != 0)
        fail_msg("'%s' %s: %s", text, cur, e.msg);
    return v;
}

static void parse_bad(const char *text, const char *cur, const char *msg_part)
{
    int64_t v = 42;
    ord_error e;
    ord_error_clear(&e);
    assert_int_equal(ord_money_parse(text, cur, &v, &e), OKV_EINVAL);
    assert_int_equal(v, 42);   /* untouched on error */
    if (!strstr(e.msg, msg_part))
        fail_msg("'%s': message '%s' lacks '%s'", text ? text : "(null)", e.msg, msg_part);
}

static void test_order_money__parse(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("12.34", "CNY"), 1234);
    assert_int_equal(parse_ok("12.3", "CNY"), 1230);
    assert_int_equal(parse_ok("12", "CNY"), 1200);
    assert_int_equal(parse_ok("0.01", "CNY"), 1);
    assert_int_equal(parse_ok("-0.05", "USD"), -5);
    assert_int_equal(parse_ok("-0", "USD"), 0);
    assert_int_equal(parse_ok("007.10", "USD"), 710);
    assert_int_equal(parse_ok("1200", "JPY"), 1200);
    assert_int_equal(parse_ok("1.234", "KWD"), 1234);
    assert_int_equal(parse_ok("12.34 CNY", "CNY"), 1234);
    assert_int_equal(parse_ok("92233720368547758.07", "CNY"), INT64_MAX);
    assert_int_equal(parse_ok("-92233720368547758.08", "CNY"), INT64_MIN);
    assert_int_equal(parse_ok("9223372036854775807", "JPY"), INT64_MAX);
    assert_int_equal(parse_ok("-9223372036854775808", "JPY"), INT64_MIN);
}

static void test_order_money__parse_rejects(void **state)
{
    (void)state;
    parse_bad("12.345", "CNY", "CNY has 2 decimal places");
    parse_bad("1.5", "JPY", "JPY has 0 decimal places");
    parse_bad("1.2345", "KWD", "3 decimal places");
    parse_bad("92233720368547758.08", "CNY", "too large");
    parse_bad("-92233720368547758.09", "CNY", "too large");
    parse_bad("9223372036854775808", "JPY", "too large");
    parse_bad("99999999999999999999", "CNY", "too large");
    parse_bad("100000000000000000", "CNY", "too large");   /* fits before scaling, not after */
    parse_bad("", "CNY", "empty");
    parse_bad(NULL, "CNY", "empty");
    parse_bad("-", "CNY", "no digits");
    parse_bad(".5", "CNY", "before '.'");
    parse_bad("5.", "CNY", "after '.'");
    parse_bad("1.2.3", "CNY", "unexpected '.'");
    parse_bad("1,50", "CNY", "unexpected ','");
    parse_bad("+1", "CNY", "unexpected '+'");
    parse_bad("1e3", "CNY", "unexpected 'e'");
    parse_bad(" 1", "CNY", "no digits");
    parse_bad("12.34 USD", "CNY", "not in CNY");
    parse_bad("12.34 ", "CNY", "not in CNY");
}

static void test_order_money__round_trip(void **state)
{
    (void)state;
    static const char *curs[] = { "CNY", "JPY", "KWD", "CLF" };
    static const int64_t vals[] = { 0, 1, -1, 99, 100, 101, 123456789, -987654321, INT64_MAX,
                                    INT64_MIN, INT64_MIN + 1 };
    for (size_t c = 0; c < 4; c++) {
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            char buf[ORD_MONEY_TEXT_MAX];
            assert_true(ord_money_format(buf, sizeof buf, vals[i], curs[c]) > 0);
            assert_int_equal(parse_ok(buf, curs[c]), vals[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_money__exponents),
        cmocka_unit_test(test_order_money__format),
        cmocka_unit_test(test_order_money__parse),
        cmocka_unit_test(test_order_money__parse_rejects),
        cmocka_unit_test(test_order_money__round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

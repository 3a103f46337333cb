/* server/orders/order_status: every (from, to) pair of the state machine
 * against a table written out here independently of the module's. */
#include <string.h>

#include "okv_test.h"
#include "order_status.h"

enum { U = ORD_UNSPECIFIED, C = ORD_CREATED, P = ORD_PAID, S = ORD_SHIPPED, D = ORD_COMPLETED,
       X = ORD_CANCELLED, R = ORD_REFUNDED, PR = ORD_PARTIALLY_REFUNDED };

/* EXPECT[from][to]: rows and columns in enum order U C P S D X R PR. */
static const int EXPECT[ORD_STATUS_COUNT][ORD_STATUS_COUNT] = {
    /*         U  C  P  S  D  X  R  PR */
    /* U  */ { 0, 0, 0, 0, 0, 0, 0, 0 },
    /* C  */ { 0, 0, 1, 0, 0, 1, 0, 0 },
    /* P  */ { 0, 0, 0, 1, 0, 1, 1, 1 },
    /* S  */ { 0, 0, 0, 0, 1, 0, 1, 1 },
    /* D  */ { 0, 0, 0, 0, 0, 0, 1, 1 },
    /* X  */ { 0, 0, 0, 0, 0, 0, 0, 0 },
    /* R  */ { 0, 0, 0, 0, 0, 0, 0, 0 },
    /* PR */ { 0, 0, 0, 0, 0, 0, 1, 1 },
};

static void test_order_status__every_pair(void **state)
{
    (void)state;
    int allowed = 0;
    for (int from = 0; from < ORD_STATUS_COUNT; from++) {
        for (int to = 0; to < ORD_STATUS_COUNT; to++) {
            int ok = ord_transition_ok(from, to);
            if (ok != EXPECT[from][to])
                fail_msg("%s -> %s: got %d, want %d", ord_status_name(from), ord_status_name(to),
                         ok, EXPECT[from][to]);
            ord_error e;
            ord_error_clear(&e);
            int rc = ord_transition_check("o-1", from, to, &e);
            assert_int_equal(rc, ok ? 0 : OKV_EILLEGAL);
            if (!ok) {
                assert_int_equal(e.reason, ORD_R(ILLEGAL_TRANSITION));
                assert_non_null(strstr(e.msg, ord_status_name(from)));
                assert_non_null(strstr(e.msg, ord_status_name(to)));
                assert_non_null(strstr(e.msg, "o-1"));
            }
            allowed += ok;
        }
    }
    assert_int_equal(allowed, 13);
}

static void test_order_status__no_resurrection_no_exit_from_final(void **state)
{
    (void)state;
    for (int s = -1; s <= ORD_STATUS_COUNT; s++) {
        assert_false(ord_transition_ok(s, ORD_CREATED));
        assert_false(ord_transition_ok(ORD_CANCELLED, s));
        assert_false(ord_transition_ok(ORD_REFUNDED, s));
    }
}

static void test_order_status__unknown_values_never_move(void **state)
{
    (void)state;
    assert_false(ord_transition_ok(ORD_CREATED, 99));
    assert_false(ord_transition_ok(99, ORD_PAID));
    assert_false(ord_transition_ok(-1, ORD_PAID));
    assert_string_equal(ord_status_name(99), "UNKNOWN");
    assert_string_equal(ord_status_name(ORD_PARTIALLY_REFUNDED), "PARTIALLY_REFUNDED");
}

static void test_order_status__messages_say_what_to_do(void **state)
{
    (void)state;
    ord_error e;
    assert_int_equal(ord_transition_check("o-17", ORD_SHIPPED, ORD_CANCELLED, &e), OKV_EILLEGAL);
    assert_string_equal(e.msg, "order o-17 is SHIPPED and cannot become CANCELLED: cancel is "
                               "allowed only while CREATED or PAID; refund it instead");
    assert_int_equal(ord_transition_check("o-1", ORD_PAID, ORD_PAID, &e), OKV_EILLEGAL);
    assert_non_null(strstr(e.msg, "idempotency key"));
    assert_int_equal(ord_transition_check("o-1", ORD_CANCELLED, ORD_PAID, &e), OKV_EILLEGAL);
    assert_non_null(strstr(e.msg, "final"));
}

static void test_order_status__reason_table(void **state)
{
    (void)state;
    assert_int_equal(ord_reason_code(ORD_R(NONE)), OKV_OK);
    assert_int_equal(ord_reason_code(ORD_R(ILLEGAL_TRANSITION)), OKV_EILLEGAL);
    assert_int_equal(ord_reason_code(ORD_R(REFUND_EXCEEDS_CAPTURED)), OKV_EILLEGAL);
    assert_int_equal(ord_reason_code(ORD_R(INSUFFICIENT_FUNDS)), OKV_EFUNDS);
    assert_int_equal(ord_reason_code(ORD_R(SOLD_OUT)), OKV_ESOLDOUT);
    assert_int_equal(ord_reason_code(ORD_R(IDEMPOTENCY_KEY_REUSED)), OKV_EIDEMPOTENCY);
    assert_int_equal(ord_reason_code(ORD_R(IN_PROGRESS)), OKV_EINPROGRESS);
    assert_int_equal(ord_reason_code(ORD_R(NOT_FOUND)), OKV_ENOTFOUND);
    assert_int_equal(ord_reason_code(ORD_R(AMOUNT_MISMATCH)), OKV_EINVAL);
    assert_int_equal(ord_reason_code(ORD_R(INVALID)), OKV_EINVAL);
    assert_int_equal(ord_reason_code(ORD_R(ALREADY_EXISTS)), OKV_ECONDITION);
    assert_int_equal(ord_reason_code(1000), OKV_EINVAL);
    /* Every reason has a name, and every new code a strerror text. */
    for (int r = 0; r <= ORD_R(ALREADY_EXISTS); r++)
        assert_string_not_equal(ord_reason_name(r), "UNKNOWN");
    for (int c = OKV_EINPROGRESS; c <= OKV_EILLEGAL; c++)
        assert_string_not_equal(okv_strerror(c), "unknown error code");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_status__every_pair),
        cmocka_unit_test(test_order_status__no_resurrection_no_exit_from_final),
        cmocka_unit_test(test_order_status__unknown_values_never_move),
        cmocka_unit_test(test_order_status__messages_say_what_to_do),
        cmocka_unit_test(test_order_status__reason_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

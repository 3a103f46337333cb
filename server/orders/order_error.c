#include "order_error.h"

#include <stdarg.h>
#include <stdio.h>

/* One row per OrdersError: its name and the code it travels as. Keep in
 * the order of the enum (proto/orders.proto); the table in that file's
 * header and in docs/orders.md say the same. */
static const struct {
    int reason;
    int code;
    const char *name;
} REASONS[] = {
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_NONE, OKV_OK, "NONE" },
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_ILLEGAL_TRANSITION, OKV_EILLEGAL,
      "ILLEGAL_TRANSITION" },
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_INSUFFICIENT_FUNDS, OKV_EFUNDS,
      "INSUFFICIENT_FUNDS" },
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_SOLD_OUT, OKV_ESOLDOUT, "SOLD_OUT" },
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_IDEMPOTENCY_KEY_REUSED, OKV_EIDEMPOTENCY,
      "IDEMPOTENCY_KEY_REUSED" },
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_NOT_FOUND, OKV_ENOTFOUND, "NOT_FOUND" },
    /* The pay amount is compared with a total fixed at creation: a wrong
     * argument, not a state that may change. */
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_AMOUNT_MISMATCH, OKV_EINVAL, "AMOUNT_MISMATCH" },
    /* Depends on the refunds so far, like a transition does: re-read the
     * order, never resend as is. */
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_REFUND_EXCEEDS_CAPTURED, OKV_EILLEGAL,
      "REFUND_EXCEEDS_CAPTURED" },
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_IN_PROGRESS, OKV_EINPROGRESS, "IN_PROGRESS" },
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_INVALID, OKV_EINVAL, "INVALID" },
    /* An absent condition that did not hold, as a transaction reports it. */
    { ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_ALREADY_EXISTS, OKV_ECONDITION, "ALREADY_EXISTS" },
};

#define N_REASONS (sizeof REASONS / sizeof REASONS[0])

int ord_reason_code(int reason)
{
    for (size_t i = 0; i < N_REASONS; i++)
        if (REASONS[i].reason == reason)
            return REASONS[i].code;
    return OKV_EINVAL;
}

const char *ord_reason_name(int reason)
{
    for (size_t i = 0; i < N_REASONS; i++)
        if (REASONS[i].reason == reason)
            return REASONS[i].name;
    return "UNKNOWN";
}

static int set(ord_error *err, int code, int reason, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        err->reason = reason;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

int ord_error_set(ord_error *err, int reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = set(err, ord_reason_code(reason), reason, fmt, ap);
    va_end(ap);
    return rc;
}

int ord_error_set_code(ord_error *err, int code, int reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = set(err, code, reason, fmt, ap);
    va_end(ap);
    return rc;
}

void ord_error_clear(ord_error *err)
{
    if (err) {
        err->code = OKV_OK;
        err->reason = ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_NONE;
        err->msg[0] = '\0';
    }
}

#include "order_status.h"

#include <stdint.h>

#include "failpoint.h"

#define BIT(s) (1u << (s))

/* NEXT[from] is the set of statuses `from` may move to (invariants S1-S4 in
 * the header). One table, so the planners, the tests and the Jepsen
 * checker's notion of "legal" cannot drift apart. */
static const uint32_t NEXT[ORD_STATUS_COUNT] = {
    [ORD_UNSPECIFIED] = 0,
    [ORD_CREATED] = BIT(ORD_PAID) | BIT(ORD_CANCELLED),
    [ORD_PAID] = BIT(ORD_SHIPPED) | BIT(ORD_CANCELLED) | BIT(ORD_PARTIALLY_REFUNDED) |
                 BIT(ORD_REFUNDED),
    [ORD_SHIPPED] = BIT(ORD_COMPLETED) | BIT(ORD_PARTIALLY_REFUNDED) | BIT(ORD_REFUNDED),
    [ORD_COMPLETED] = BIT(ORD_PARTIALLY_REFUNDED) | BIT(ORD_REFUNDED),
    [ORD_CANCELLED] = 0,
    [ORD_REFUNDED] = 0,
    [ORD_PARTIALLY_REFUNDED] = BIT(ORD_PARTIALLY_REFUNDED) | BIT(ORD_REFUNDED),
};

static const char *const NAMES[ORD_STATUS_COUNT] = {
    [ORD_UNSPECIFIED] = "UNSPECIFIED", [ORD_CREATED] = "CREATED",
    [ORD_PAID] = "PAID",               [ORD_SHIPPED] = "SHIPPED",
    [ORD_COMPLETED] = "COMPLETED",     [ORD_CANCELLED] = "CANCELLED",
    [ORD_REFUNDED] = "REFUNDED",       [ORD_PARTIALLY_REFUNDED] = "PARTIALLY_REFUNDED",
};

static int known(int s) { return s >= 0 && s < ORD_STATUS_COUNT; }

int ord_transition_ok(int from, int to)
{
    return known(from) && known(to) && (NEXT[from] & BIT(to)) != 0;
}

const char *ord_status_name(int status)
{
    return known(status) ? NAMES[status] : "UNKNOWN";
}

/* What the caller can do instead, for the refusals people actually meet. */
static const char *hint(int from, int to)
{
    if (from == ORD_CANCELLED || from == ORD_REFUNDED)
        return "it is final";
    switch (to) {
    case ORD_PAID:
        return from == ORD_CREATED ? "" : "it was paid already (resend a payment with its "
                                          "idempotency key to get the first payment back)";
    case ORD_SHIPPED: return "only a PAID order ships";
    case ORD_COMPLETED: return "only a SHIPPED order completes";
    case ORD_CANCELLED: return "cancel is allowed only while CREATED or PAID; refund it instead";
    case ORD_REFUNDED:
    case ORD_PARTIALLY_REFUNDED: return "only a paid order can be refunded";
    case ORD_CREATED: return "no order returns to CREATED";
    default: return "no such status";
    }
}

int ord_transition_check(const char *order_id, int from, int to, ord_error *err)
{
    /* Planted bug orders.transition.any (jepsen/tests/planted.sh): every
     * planner asks here, so with it on any transition is let through. */
    if (ord_transition_ok(from, to) || OKV_FAILPOINT("orders.transition.any"))
        return 0;
    return ord_error_set(err, ORD_R(ILLEGAL_TRANSITION),
                         "order %s is %s and cannot become %s: %s", order_id ? order_id : "",
                         ord_status_name(from), ord_status_name(to), hint(from, to));
}

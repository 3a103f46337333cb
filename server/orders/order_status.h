/*
 * order_status.h — the order state machine: which status may follow which.
 *
 *     CREATED ──pay──▶ PAID ──ship──▶ SHIPPED ──complete──▶ COMPLETED
 *        │               │               │                      │
 *        └──cancel──┐    ├──cancel──┐    └───────refund─────────┤
 *                   ▼    │          ▼                           ▼
 *               CANCELLED◀┘   (a paid order's cancel   PARTIALLY_REFUNDED ⟲
 *                             refunds it in full)        │ refund
 *                                                        ▼
 *                                                     REFUNDED
 *
 * Invariants the planners rely on (numbered, so tests and docs can cite them):
 *  S1. Nothing moves to CREATED (no resurrection) and nothing leaves
 *      CANCELLED or REFUNDED (final states).
 *  S2. CANCELLED only from CREATED or PAID: once shipped, goods are out of
 *      the door and the way back is a refund.
 *  S3. PARTIALLY_REFUNDED and REFUNDED only from PAID, SHIPPED, COMPLETED or
 *      PARTIALLY_REFUNDED: only captured money can be refunded. Which of the
 *      two follows is the refund planner's call (refunded == captured).
 *  S4. PARTIALLY_REFUNDED -> PARTIALLY_REFUNDED is the only self-transition
 *      (a second partial refund). Asking for the status an order already has
 *      otherwise is not a transition; the ship / complete / cancel planners
 *      answer it with the order unchanged (so a resend is harmless).
 *  S5. A partially refunded order no longer ships or completes: the brief
 *      folds refunds into the one status field (docs/orders.md discusses it).
 *
 * Pure: a table and two lookups.
 */
#ifndef OKV_ORDERS_STATUS_H
#define OKV_ORDERS_STATUS_H

#include "order_error.h"
#include "records.pb-c.h"

/* Short names for the wire values of orderkv.v1.OrderStatus. */
typedef enum ord_status {
    ORD_UNSPECIFIED = ORDERKV__V1__ORDER_STATUS__ORDER_STATUS_UNSPECIFIED,
    ORD_CREATED = ORDERKV__V1__ORDER_STATUS__CREATED,
    ORD_PAID = ORDERKV__V1__ORDER_STATUS__PAID,
    ORD_SHIPPED = ORDERKV__V1__ORDER_STATUS__SHIPPED,
    ORD_COMPLETED = ORDERKV__V1__ORDER_STATUS__COMPLETED,
    ORD_CANCELLED = ORDERKV__V1__ORDER_STATUS__CANCELLED,
    ORD_REFUNDED = ORDERKV__V1__ORDER_STATUS__REFUNDED,
    ORD_PARTIALLY_REFUNDED = ORDERKV__V1__ORDER_STATUS__PARTIALLY_REFUNDED
} ord_status;

#define ORD_STATUS_COUNT 8   /* values 0..7: every status this build knows */

/* 1 if an order in `from` may move to `to`, else 0. Values outside the
 * enum (a newer writer's status) are never ok. */
int ord_transition_ok(int from, int to);

/* "CREATED", "PAID", ...; "UNKNOWN" for a value outside the enum. Static,
 * never NULL. */
const char *ord_status_name(int status);

/* 0 if the transition is ok; otherwise OKV_EILLEGAL (reason
 * ILLEGAL_TRANSITION) with a message naming the order, both states and what
 * the caller can do instead, e.g. "order o-17 is SHIPPED and cannot become
 * CANCELLED: cancel is allowed only while CREATED or PAID; refund it
 * instead". order_id may be NULL. */
int ord_transition_check(const char *order_id, int from, int to, ord_error *err);

#endif

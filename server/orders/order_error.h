/*
 * order_error.h — how the orders rules say no.
 *
 * A refusal has three parts: the OrdersError reason of proto/orders.proto
 * (which rule), the okv code a C caller switches on (OKV_EILLEGAL,
 * OKV_EFUNDS, ...), and a message the user can act on ("order o-17 is
 * SHIPPED: it can no longer be cancelled; refund it instead"). The code is
 * derived from the reason by one table (ord_reason_code), the only place
 * that says which code a rule travels as; the gRPC status then follows from
 * the code (server/net rpc_status_for_code), as for every other call.
 *
 * Pure: no I/O, no allocation.
 */
#ifndef OKV_ORDERS_ERROR_H
#define OKV_ORDERS_ERROR_H

#include "errors.h"
#include "orders.pb-c.h"

/* ORD_R(SOLD_OUT) is ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_SOLD_OUT. */
#define ORD_R(name) ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_##name

typedef struct ord_error {
    int code;                  /* OKV_OK or an OKV_E* code */
    int reason;                /* Orderkv__V1__OrdersError */
    char msg[OKV_ERRMSG_MAX];
} ord_error;

/* The okv code a reason travels as (OKV_OK for NONE; OKV_EINVAL for an
 * unknown reason). */
int ord_reason_code(int reason);

/* "ILLEGAL_TRANSITION", ...; "UNKNOWN" for a value this build does not know. */
const char *ord_reason_name(int reason);

/* Sets err (if not NULL) to reason, its code and a printf-style message;
 * returns the code, so rules can `return ord_error_set(err, ..., "...")`. */
int ord_error_set(ord_error *err, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As ord_error_set with a code that is not the reason's (OKV_ENOMEM,
 * OKV_EFORMAT, OKV_ECORRUPT: failures of the server, not of a rule). */
int ord_error_set_code(ord_error *err, int code, int reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clears err to OKV_OK, reason NONE, empty message. Accepts NULL. */
void ord_error_clear(ord_error *err);

#endif

/*
 * order_plan.h — the orders rules as planners: request + the records as
 * they are now -> the transaction that carries the request out, or the rule
 * that refuses it.
 *
 * The service (server/api, later) reads the records a request needs, calls
 * one planner, and commits the plan as one orderkv transaction
 * (docs/transactions.md): conditions + writes, atomic across partitions.
 * The rules live here and only here; the transaction's conditions make sure
 * they still hold when it applies (a record read earlier may have changed:
 * then the service reads again and plans again).
 *
 * Every planner
 *  - is deterministic: time (now_ms) and new ids (order, payment, refund,
 *    reservation) come from the caller, so a test can state the exact plan;
 *  - checks the request's fields first (OKV_EINVAL, reason INVALID), then,
 *    when the request has an idempotency key and its record exists, answers
 *    from the record (a replay, even if the order changed since) or refuses
 *    the reused key, and only then applies the state rules;
 *  - on success returns a plan whose ops are the transaction: conditions
 *    first, then writes, so op i is the item a failed transaction reports as
 *    `failed == i`; the first write is to the partition that should
 *    coordinate (the order's, for every order operation);
 *  - puts in the plan the encoded response message the service answers with
 *    once the transaction commits (CreateOrderResponse, ...), and, for a
 *    request with an idempotency key, writes that same response into the
 *    idempotency record: a replay answers byte for byte what the first
 *    request was answered.
 * A plan with no ops (ord_plan_len == 0) needs no transaction: answer
 * ord_plan_response at once. That is a replay (ord_plan_is_replay) or a
 * request that finds its effect already there (ship a SHIPPED order, cancel
 * a CANCELLED one, create an account that exists exactly so).
 *
 * Inputs are borrowed for the call; a plan owns all its bytes.
 */
#ifndef OKV_ORDERS_PLAN_H
#define OKV_ORDERS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "order_error.h"
#include "order_idem.h"
#include "order_keys.h"

#define ORD_MAX_ITEMS 100u        /* items per order: 2 writes each when reserving, and
                                     a transaction has at most 256 writes */
#define ORD_TEXT_MAX 256u         /* refund reasons, account owners */
#define ORD_METHOD_MAX 64u

/* ---- the plan --------------------------------------------------------------- */

typedef enum ord_op_kind {
    ORD_OP_EXISTS = 1,     /* condition: the key exists */
    ORD_OP_ABSENT,         /* condition: the key does not exist */
    ORD_OP_VERSION_IS,     /* condition: the key's version == version */
    ORD_OP_PUT,            /* write: value */
    ORD_OP_DELETE,         /* write */
    ORD_OP_ADD             /* write: counter += delta; with has_floor the transaction
                              fails if the sum would be below floor */
} ord_op_kind;

/* What it means when this op stops the transaction (ord_plan_failure). */
typedef enum ord_on_fail {
    ORD_FAIL_RETRY = 1,    /* a record changed (or appeared) since it was read: read
                              again and plan again */
    ORD_FAIL_FUNDS,        /* an account debit hit its floor: INSUFFICIENT_FUNDS */
    ORD_FAIL_SOLD_OUT      /* a stock take hit its floor: SOLD_OUT */
} ord_on_fail;

typedef struct ord_op {
    ord_op_kind kind;
    ord_table table;
    ord_key key;
    const uint8_t *value;  /* PUT: owned by the plan; NULL with value_len 0 otherwise */
    size_t value_len;
    uint64_t version;      /* VERSION_IS */
    int64_t delta;         /* ADD */
    int has_floor;         /* ADD */
    int64_t floor;
    ord_on_fail on_fail;
} ord_op;

typedef struct ord_plan ord_plan;

void ord_plan_free(ord_plan *p);               /* accepts NULL */
size_t ord_plan_len(const ord_plan *p);        /* ops: conditions, then writes */
size_t ord_plan_conditions(const ord_plan *p); /* ops [0, n) are conditions */
const ord_op *ord_plan_op(const ord_plan *p, size_t i);   /* borrowed; NULL past the end */
/* The encoded response message to answer with once the plan committed
 * (at once if it has no ops). Borrowed for the plan's life. */
const uint8_t *ord_plan_response(const ord_plan *p, size_t *len);
int ord_plan_is_replay(const ord_plan *p);     /* answered from an idempotency record */
int ord_plan_has_idem(const ord_plan *p);      /* writes an idempotency record */

#define ORD_PLAN_RETRY 1

/* The transaction of plan p did not commit: item `failed` (numbered as the
 * plan's ops) stopped it for `txn_reason` (enum okv_txn_reason). Returns
 * ORD_PLAN_RETRY (read the records again and plan again: they changed, or
 * a concurrent copy of an idempotent request committed first and the new
 * plan will be its replay), or the rule's code with err set
 * (OKV_EFUNDS, OKV_ESOLDOUT, OKV_EINVAL for an overflow, OKV_ECORRUPT for a
 * value that is not a counter, OKV_EINTERNAL for an item the plan lacks). */
int ord_plan_failure(const ord_plan *p, uint32_t failed, int txn_reason, ord_error *err);

/* The transaction kept meeting another transaction's locks (OKV_ECONFLICT)
 * and the service gives up retrying: with an idempotency key that is most
 * likely a concurrent copy of this request, so OKV_EINPROGRESS (reason
 * IN_PROGRESS: resend shortly and get its result); otherwise OKV_ECONFLICT. */
int ord_plan_conflict(const ord_plan *p, ord_error *err);

/* ---- planners ----------------------------------------------------------------
 * Each returns 0 and *out (free with ord_plan_free), or a code with err set
 * and *out NULL. `idem` is the IdempotencyRecord stored under the request's
 * idempotency key (ord_key_idem), NULL if absent; ignored when the request
 * has no key. Versions are the KV versions the records were read at. */

typedef struct ord_create_in {
    const Orderkv__V1__CreateOrderRequest *req;
    const Orderkv__V1__IdempotencyRecord *idem;
    const char *order_id;        /* new; reservations are named after it */
    int64_t now_ms;
} ord_create_in;

/* CreateOrder. Ops: absent order, [absent idem], absent reservation per
 * reserving item; put order, [put idem], per reserving item add stock -q
 * floor 0 (SOLD_OUT) and put reservation. */
int ord_plan_create(ord_plan **out, const ord_create_in *in, ord_error *err);

typedef struct ord_pay_in {
    const Orderkv__V1__PayOrderRequest *req;
    const Orderkv__V1__Order *order;       /* NULL: not found */
    uint64_t order_version;
    const Orderkv__V1__Account *account;   /* req->account_id's record; NULL: not found */
    const Orderkv__V1__IdempotencyRecord *idem;
    const char *payment_id;                /* new */
    int64_t now_ms;
} ord_pay_in;

/* PayOrder: CREATED -> PAID. Ops: version order, [absent idem], absent
 * payment; put order, [put idem], put payment, [add account -amount floor 0
 * (INSUFFICIENT_FUNDS)]. */
int ord_plan_pay(ord_plan **out, const ord_pay_in *in, ord_error *err);

typedef struct ord_refund_in {
    const Orderkv__V1__RefundOrderRequest *req;
    const Orderkv__V1__Order *order;
    uint64_t order_version;
    const Orderkv__V1__IdempotencyRecord *idem;
    const char *refund_id;                 /* new */
    int64_t now_ms;
} ord_refund_in;

/* RefundOrder: 0 < amount <= captured - refunded. Ops: version order,
 * [absent idem], absent refund; put order, [put idem], put refund, [add
 * account +amount]. */
int ord_plan_refund(ord_plan **out, const ord_refund_in *in, ord_error *err);

typedef struct ord_cancel_in {
    const Orderkv__V1__CancelOrderRequest *req;
    const Orderkv__V1__Order *order;
    uint64_t order_version;
    const char *refund_id;                 /* new; used when money was captured */
    int64_t now_ms;
} ord_cancel_in;

/* CancelOrder: CREATED or PAID -> CANCELLED. Ops: version order, [absent
 * refund]; put order, [put refund, add account +(captured - refunded)], per
 * reserved item add stock +q and put the reservation RELEASED. */
int ord_plan_cancel(ord_plan **out, const ord_cancel_in *in, ord_error *err);

typedef struct ord_step_in {
    const char *customer_id;               /* the request's */
    const char *order_id;
    const Orderkv__V1__Order *order;
    uint64_t order_version;
    int64_t now_ms;
} ord_step_in;

/* ShipOrder (PAID -> SHIPPED) and CompleteOrder (SHIPPED -> COMPLETED).
 * Ops: version order; put order. */
int ord_plan_ship(ord_plan **out, const ord_step_in *in, ord_error *err);
int ord_plan_complete(ord_plan **out, const ord_step_in *in, ord_error *err);

typedef struct ord_account_in {
    const Orderkv__V1__CreateAccountRequest *req;
    const Orderkv__V1__Account *existing;  /* NULL: no account with that id */
    int64_t now_ms;
} ord_account_in;

/* CreateAccount. Ops: absent meta; put meta, add balance 0 (creates the
 * counter, keeps one that exists). */
int ord_plan_create_account(ord_plan **out, const ord_account_in *in, ord_error *err);

typedef struct ord_deposit_in {
    const Orderkv__V1__DepositRequest *req;
    const Orderkv__V1__Account *account;   /* NULL: not found */
    const Orderkv__V1__IdempotencyRecord *idem;
    int64_t now_ms;
} ord_deposit_in;

/* Deposit. Ops: [absent idem]; add balance +amount, [put idem]. */
int ord_plan_deposit(ord_plan **out, const ord_deposit_in *in, ord_error *err);

/* SetStock. Ops: put stock (the 8-byte counter). */
int ord_plan_set_stock(ord_plan **out, const Orderkv__V1__SetStockRequest *req, ord_error *err);

typedef struct ord_reserve_in {
    const Orderkv__V1__ReserveStockRequest *req;
    const Orderkv__V1__IdempotencyRecord *idem;
    const char *reservation_id;            /* new */
    int64_t now_ms;
} ord_reserve_in;

/* ReserveStock: one partition. Ops: [absent idem], absent reservation;
 * [put idem], add stock -q floor 0 (SOLD_OUT), put reservation. */
int ord_plan_reserve(ord_plan **out, const ord_reserve_in *in, ord_error *err);

#endif

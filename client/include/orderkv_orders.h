/*
 * orderkv_orders.h — liborderkv over the orders service (orderkv.v1.Orders,
 * proto/orders.proto): orders, payments, refunds, accounts and stock, with
 * their rules enforced by the cluster inside transactions (docs/orders.md).
 *
 * The shape (docs/client-api.md, "Orders and payments"):
 *  - Requests and responses are the protobuf-c messages generated from
 *    proto/orders.proto, and the records in them those of
 *    proto/records.proto (installed next to this header; liborderkv carries
 *    and exports their code). Build a request with its _INIT macro, e.g.
 *      Orderkv__V1__PayOrderRequest req = ORDERKV__V1__PAY_ORDER_REQUEST__INIT;
 *    The library only reads the request; it may be freed as soon as the call
 *    returns (also for the *_async forms: the request is encoded at once).
 *  - One function per RPC, synchronous and asynchronous, with the rules of
 *    orderkv.h (return codes, timeout_ms, callbacks on the completion thread).
 *  - A synchronous call stores the response in *out (out may be NULL if the
 *    caller does not want it): the caller owns it and frees it with
 *    okv_orders_response_free. On failure *out is NULL.
 *  - A refusal by a rule is a specific code, and okv_errmsg names the rule
 *    and the record ("order o-17 is SHIPPED: ..."):
 *      OKV_EILLEGAL     illegal transition, or a refund beyond what was captured
 *      OKV_EFUNDS       the account's balance is below the amount
 *      OKV_ESOLDOUT     too few units of a sku: a result, not worth a retry
 *      OKV_EIDEMPOTENCY the idempotency key was first used with another request
 *      OKV_EINPROGRESS  a request with the same key is being applied: resend
 *                       the same request shortly to get its result
 *      OKV_ENOTFOUND    the order, account or sku does not exist
 *      OKV_ECONDITION   CreateAccount: the id is taken with another currency/owner
 *      OKV_EINVAL       a bad request, or PayOrder's amount is not the total
 *    okv_orders_reason / okv_result_orders_reason give the OrdersError reason
 *    (ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_*) that tells apart the cases
 *    one code covers. A refused request changed nothing.
 *  - Resends. A request that may have reached the cluster and got no answer
 *    is resent by the library only if it carries an idempotency key (the
 *    cluster then answers the first request's response, and never applies it
 *    twice); without one the call returns OKV_EUNKNOWN: it may or may not
 *    have applied. Read before retrying, or use keys for anything that moves
 *    money: the same request with the same key may be resent after any
 *    error. Reads (get, list) are retried on any node.
 *  - Every call goes to the node that leads the partition of the record it
 *    changes first (orders: the customer's; accounts: the account's; stock:
 *    the sku's) to save a hop; any node serves them.
 *  - The service runs on a cluster (orderkvd --initial-cluster): a node
 *    alone answers OKV_EUNIMPLEMENTED.
 *
 * Money is int64 minor units of the record's currency (cents of CNY, yen);
 * okv_money_format / okv_money_parse convert to and from "12.34 CNY" with
 * the ISO 4217 exponents, without floating point.
 */
#ifndef ORDERKV_ORDERS_H
#define ORDERKV_ORDERS_H

#include <stddef.h>
#include <stdint.h>

#include "orderkv.h"
#include "orders.pb-c.h"   /* includes records.pb-c.h and orderkv.pb-c.h */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- calls --------------------------------------------------------------------
 *
 * Each RPC of proto/orders.proto as
 *   int okv_<x>(okv_client *c, const Req *req, Resp **out, int timeout_ms);
 *   int okv_<x>_async(okv_client *c, const Req *req, int timeout_ms,
 *                     okv_callback cb, void *arg);
 * A NULL client or request, or a request of another type, is OKV_EINVAL.
 */

/* Places an order (CREATED), reserving stock if asked (OKV_ESOLDOUT: nothing
 * created). Idempotency key: optional. */
OKV_API int okv_order_create(okv_client *c, const Orderkv__V1__CreateOrderRequest *req,
                             Orderkv__V1__CreateOrderResponse **out, int timeout_ms);
OKV_API int okv_order_create_async(okv_client *c, const Orderkv__V1__CreateOrderRequest *req,
                                   int timeout_ms, okv_callback cb, void *arg);

/* Reads one order (linearizable). OKV_ENOTFOUND if absent. */
OKV_API int okv_order_get(okv_client *c, const Orderkv__V1__GetOrderRequest *req,
                          Orderkv__V1__GetOrderResponse **out, int timeout_ms);
OKV_API int okv_order_get_async(okv_client *c, const Orderkv__V1__GetOrderRequest *req,
                                int timeout_ms, okv_callback cb, void *arg);

/* One page of a customer's orders, in order-id byte order; pass the
 * response's next_start_after as start_after for the next page ("" = done). */
OKV_API int okv_order_list(okv_client *c, const Orderkv__V1__ListOrdersRequest *req,
                           Orderkv__V1__ListOrdersResponse **out, int timeout_ms);
OKV_API int okv_order_list_async(okv_client *c, const Orderkv__V1__ListOrdersRequest *req,
                                 int timeout_ms, okv_callback cb, void *arg);

/* CREATED -> PAID, storing the payment and debiting the account (if given)
 * in one transaction. OKV_EFUNDS: nothing charged. OKV_EILLEGAL: the order
 * is not CREATED (a second payment). Idempotency key: recommended. */
OKV_API int okv_order_pay(okv_client *c, const Orderkv__V1__PayOrderRequest *req,
                          Orderkv__V1__PayOrderResponse **out, int timeout_ms);
OKV_API int okv_order_pay_async(okv_client *c, const Orderkv__V1__PayOrderRequest *req,
                                int timeout_ms, okv_callback cb, void *arg);

/* CREATED | PAID -> CANCELLED (a paid order is refunded in full; reserved
 * stock is released). Cancelling a CANCELLED order returns it unchanged. */
OKV_API int okv_order_cancel(okv_client *c, const Orderkv__V1__CancelOrderRequest *req,
                             Orderkv__V1__CancelOrderResponse **out, int timeout_ms);
OKV_API int okv_order_cancel_async(okv_client *c, const Orderkv__V1__CancelOrderRequest *req,
                                   int timeout_ms, okv_callback cb, void *arg);

/* PAID -> SHIPPED (a SHIPPED order is returned unchanged). */
OKV_API int okv_order_ship(okv_client *c, const Orderkv__V1__ShipOrderRequest *req,
                           Orderkv__V1__ShipOrderResponse **out, int timeout_ms);
OKV_API int okv_order_ship_async(okv_client *c, const Orderkv__V1__ShipOrderRequest *req,
                                 int timeout_ms, okv_callback cb, void *arg);

/* SHIPPED -> COMPLETED (a COMPLETED order is returned unchanged). */
OKV_API int okv_order_complete(okv_client *c, const Orderkv__V1__CompleteOrderRequest *req,
                               Orderkv__V1__CompleteOrderResponse **out, int timeout_ms);
OKV_API int okv_order_complete_async(okv_client *c,
                                     const Orderkv__V1__CompleteOrderRequest *req,
                                     int timeout_ms, okv_callback cb, void *arg);

/* Refunds part or all of what was captured back to the paying account.
 * OKV_EILLEGAL (reason REFUND_EXCEEDS_CAPTURED): more than is left; the
 * message says how much is. Idempotency key: recommended. */
OKV_API int okv_order_refund(okv_client *c, const Orderkv__V1__RefundOrderRequest *req,
                             Orderkv__V1__RefundOrderResponse **out, int timeout_ms);
OKV_API int okv_order_refund_async(okv_client *c, const Orderkv__V1__RefundOrderRequest *req,
                                   int timeout_ms, okv_callback cb, void *arg);

/* Creates an account with balance 0; the same request again returns it.
 * OKV_ECONDITION: the id is taken with another currency or owner. */
OKV_API int okv_account_create(okv_client *c, const Orderkv__V1__CreateAccountRequest *req,
                               Orderkv__V1__CreateAccountResponse **out, int timeout_ms);
OKV_API int okv_account_create_async(okv_client *c,
                                     const Orderkv__V1__CreateAccountRequest *req,
                                     int timeout_ms, okv_callback cb, void *arg);

/* The account and its balance (response.balance, minor units). */
OKV_API int okv_account_get(okv_client *c, const Orderkv__V1__GetAccountRequest *req,
                            Orderkv__V1__GetAccountResponse **out, int timeout_ms);
OKV_API int okv_account_get_async(okv_client *c, const Orderkv__V1__GetAccountRequest *req,
                                  int timeout_ms, okv_callback cb, void *arg);

/* Adds money to an account. Idempotency key: recommended. */
OKV_API int okv_account_deposit(okv_client *c, const Orderkv__V1__DepositRequest *req,
                                Orderkv__V1__DepositResponse **out, int timeout_ms);
OKV_API int okv_account_deposit_async(okv_client *c, const Orderkv__V1__DepositRequest *req,
                                      int timeout_ms, okv_callback cb, void *arg);

/* Sets the units available of a sku (creating it). Not resent after an
 * ambiguous attempt: a late copy could undo reservations made since. */
OKV_API int okv_stock_set(okv_client *c, const Orderkv__V1__SetStockRequest *req,
                          Orderkv__V1__SetStockResponse **out, int timeout_ms);
OKV_API int okv_stock_set_async(okv_client *c, const Orderkv__V1__SetStockRequest *req,
                                int timeout_ms, okv_callback cb, void *arg);

/* The units available of a sku. */
OKV_API int okv_stock_get(okv_client *c, const Orderkv__V1__GetStockRequest *req,
                          Orderkv__V1__GetStockResponse **out, int timeout_ms);
OKV_API int okv_stock_get_async(okv_client *c, const Orderkv__V1__GetStockRequest *req,
                                int timeout_ms, okv_callback cb, void *arg);

/* Takes quantity units if at least that many are available (the flash-sale
 * path). OKV_ESOLDOUT: nothing taken. Idempotency key: optional. */
OKV_API int okv_stock_reserve(okv_client *c, const Orderkv__V1__ReserveStockRequest *req,
                              Orderkv__V1__ReserveStockResponse **out, int timeout_ms);
OKV_API int okv_stock_reserve_async(okv_client *c, const Orderkv__V1__ReserveStockRequest *req,
                                    int timeout_ms, okv_callback cb, void *arg);

/* Frees a response returned by any function of this header (through **out
 * or okv_result_take_orders_response). Accepts NULL. */
OKV_API void okv_orders_response_free(void *resp);

/* ---- refusals -------------------------------------------------------------------- */

/* The OrdersError reason of the last failed call by this thread on c
 * (ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_NONE = 0 when the failure was not
 * a rule's: a timeout, OKV_EUNKNOWN, ..., or the last call was not an
 * orders call). Read it right after the call, like okv_errmsg. */
OKV_API int okv_orders_reason(const okv_client *c);

/* "ILLEGAL_TRANSITION", "SOLD_OUT", ... ("NONE" for 0, "UNKNOWN" for a value
 * this library does not know). Static; never NULL. */
OKV_API const char *okv_orders_reason_name(int reason);

/* ---- in a callback of the *_async forms --------------------------------------------- */

/* The response (borrowed: valid during the callback), to be cast to the
 * call's response type; NULL on failure or for a result of another call. */
OKV_API const void *okv_result_orders_response(const okv_result *r);
/* Moves the response out of r: the caller owns it and frees it with
 * okv_orders_response_free. NULL as for okv_result_orders_response. */
OKV_API void *okv_result_take_orders_response(const okv_result *r);
/* The OrdersError reason of a refusal (0 on success or otherwise). */
OKV_API int okv_result_orders_reason(const okv_result *r);

/* ---- money ------------------------------------------------------------------------- */

/* Room for any okv_money_format text ("-92233720368547758.08 CNY"). */
#define OKV_MONEY_TEXT_MAX 48

/* Digits after the point of an ISO 4217 currency: 0 for JPY, KRW, ...,
 * 3 for KWD, BHD, ..., 4 for CLF and UYW, 2 for every other code. */
OKV_API int okv_currency_exponent(const char *currency);

/* Writes "<amount> <currency>" into buf ("30.00 CNY", "-0.05 USD",
 * "1200 JPY"). Returns the length, or 0 (buf "") if cap is too small;
 * OKV_MONEY_TEXT_MAX always suffices. */
OKV_API size_t okv_money_format(char *buf, size_t cap, int64_t minor, const char *currency);

/* Parses "12.34" or "12.34 CNY" as minor units of currency (1234), exactly:
 * an optional '-', digits, optionally '.' and at most the currency's
 * exponent digits, optionally one space and the same currency code.
 * OKV_EINVAL otherwise (okv_errmsg(NULL) says why: "12.345 CNY: CNY has 2
 * decimal places", too large, another currency). */
OKV_API int okv_money_parse(const char *text, const char *currency, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* ORDERKV_ORDERS_H */

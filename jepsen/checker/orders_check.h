/*
 * orders_check.h — the orders workload: orders, payments, refunds, stock
 * and accounts under faults keep the rules of docs/orders.md.
 *
 * Workload ("orders", jepsen/runner/workload_orders.c). Strings are the
 * ids the runner or the server chose. An order, wherever an op returns one,
 * is the tuple O:
 *   [order_id, customer, status, total, captured, refunded, payment_id,
 *    account_id, merchant, items, times]
 *   status  "CREATED", "PAID", "SHIPPED", "COMPLETED", "CANCELLED",
 *           "REFUNDED", "PARTIALLY_REFUNDED"
 *   items   [[sku, quantity, unit_price, reservation_id], ...]
 *   times   [created, paid, shipped, completed, cancelled, refunded] (ms, 0 = never)
 * The runner puts a create's idempotency key in the order's merchant, and a
 * reserve's key in its reservation's customer, so the final state says
 * which key made which record.
 *
 * Ops (invoke value -> ok value; fail and info repeat the invoke's):
 *   set-stock     [sku, available]                  (setup, before any reserve)
 *   open-account  [account]                         (balance 0)
 *   deposit       [account, amount, key]
 *   create        [customer, key, [[sku, q, price, reserve 0|1], ...]]
 *                 -> [customer, key, items, O]
 *   pay           [customer, order_id, account, amount, key] -> + [payment_id, O]
 *   refund        [customer, order_id, amount, key]         -> + [refund_id, O]
 *   cancel        [customer, order_id]           -> + [refund_id or null, O]
 *   ship, complete [customer, order_id]          -> + [O]
 *   reserve       [sku, quantity, key]           -> + [reservation_id]
 *   get-order     [customer, order_id]           -> + [O or null]
 *   list-orders   [customer]                     -> [customer, [O, ...]]
 *   get-account   [account]                      -> [account, balance]
 *   get-stock     [sku]                          -> [sku, available]
 * Final reads (after healing; the last ok one per name counts):
 *   final-orders   [customer] -> [customer, [O, ...]]             every order
 *   final-payments [customer] -> [customer, [P, ...], [R, ...]]
 *                  P = [payment_id, order_id, amount, account, key]
 *                  R = [refund_id, order_id, payment_id, amount, account, key]
 *   final-stock    [sku] -> [sku, available, [[reservation_id, order_id,
 *                  customer, quantity, "ACTIVE"|"RELEASED"], ...]]
 *   final-account  [account] -> [account, balance, [[deposit key, amount], ...]]
 * An empty key ("") means the request had none.
 *
 * Outcomes: ok = applied (a keyed request's answer may be the replay of an
 * earlier attempt's), fail = this attempt certainly changed nothing, info =
 * unknown. Attempts of one idempotency key are one request: the key had an
 * effect at most once, whatever its attempts say.
 *
 * Anomalies (each makes the history invalid; examples are op indices):
 *   key-two-effects    attempts of one key answered with two ids, or the
 *                      final state holds two records of one key
 *   paid-twice         an order with two payments (final state), or seen
 *                      with two payment ids
 *   lost-order, lost-payment, lost-refund, lost-reservation, lost-deposit
 *                      an ok op's record missing from the final state
 *   failed-but-present a key whose every attempt failed has a record
 *   oversell           a sku's ACTIVE reservations exceed its stock, or
 *                      available < 0 in any read
 *   stock-mismatch     stock != available + ACTIVE reservations (final)
 *   reservation-status an order's reservation ACTIVE though the order is
 *                      CANCELLED, or RELEASED though it is not
 *   account-mismatch   balance != deposits - payments + refunds (final)
 *   negative-balance   a balance below 0 in any read
 *   illegal-state      an order whose fields contradict its status (SHIPPED
 *                      but never paid, CANCELLED after shipping, ...)
 *   illegal-transition two observations of an order, the first completed
 *                      before the second began, with no legal path from the
 *                      first to the second (a step back, a resurrection,
 *                      refunded going down), or an ok step that answered
 *                      another status than its own
 *   over-refund        refunded > captured, or an order's refunds sum above
 *                      what it captured
 *   refund-mismatch    an order's refunded != the sum of its refunds (final)
 * Unknown when no final read succeeded.
 */
#ifndef OKV_JEPSEN_ORDERS_CHECK_H
#define OKV_JEPSEN_ORDERS_CHECK_H

#include "errors.h"
#include "history.h"
#include "result.h"

/* Checks h as an orders history; *out is the caller's (check_result_free).
 * Errors: OKV_EINVAL (an op that does not follow the format; err names
 * it), OKV_ENOMEM. */
int orders_check(check_result **out, const history *h, okv_error *err);

/* 1 if f is an op of the orders workload (for --workload auto). */
int orders_op_known(const char *f);

/* The legal order transitions of docs/orders.md, written here from the
 * spec (not taken from the server, whose table is what is under test):
 * 1 if an order in status `from` may next be in status `to` (one step).
 * Statuses are the wire values 1..7 (CREATED..PARTIALLY_REFUNDED). */
int orders_step_ok(int from, int to);

#endif

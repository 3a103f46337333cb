/*
 * order_keys.h — where the orders service keeps its records, and the ids
 * that go into those keys.
 *
 * The partition key is the key up to its first '/', so the first segment
 * decides which Raft group holds a record (docs/orders.md "Key layouts"):
 *
 *   table     key                                 value
 *   orders    <customer>/o/<order_id>             Order
 *   orders    <customer>/i/<kind>/<idem_key>      IdempotencyRecord (create, pay, refund)
 *   payments  <customer>/p/<payment_id>           Payment
 *   payments  <customer>/r/<refund_id>            Refund
 *   accounts  <account>                           balance: 8-byte big-endian int64 counter
 *   accounts  <account>/meta                      Account
 *   accounts  <account>/i/deposit/<idem_key>      IdempotencyRecord (deposit)
 *   stock     <sku>                               available: counter
 *   stock     <sku>/r/<reservation_id>            Reservation
 *   stock     <sku>/i/reserve/<idem_key>          IdempotencyRecord (reserve)
 *
 * So: creating an order with its idempotency record is one partition (1PC);
 * a customer's orders list by the prefix "<customer>/o/"; a deposit and a
 * stock reservation, each with its idempotency record, are one partition;
 * paying touches three groups (orders, payments of the customer, the account).
 *
 * Ids (customer, order, payment, refund, account, reservation ids and skus):
 * 1..ORD_ID_MAX bytes, no '/', no ASCII control characters (0x00-0x1f, 0x7f).
 * Other bytes, UTF-8 included, are fine. Idempotency keys: 1..ORD_IDEM_KEY_MAX
 * bytes, no NUL and no control characters; '/' is allowed, because the key
 * is the last segment and parsing takes the rest of the key after the kind.
 *
 * Pure: keys are built into a caller's ord_key (no allocation).
 */
#ifndef OKV_ORDERS_KEYS_H
#define OKV_ORDERS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "order_error.h"

#define ORD_ID_MAX 128u
#define ORD_IDEM_KEY_MAX 255u
/* The longest key: "<id>/i/<longest kind>/<idem key>". */
#define ORD_KEY_MAX (ORD_ID_MAX + sizeof "/i/" - 1 + sizeof "deposit/" - 1 + ORD_IDEM_KEY_MAX)

_Static_assert(ORD_KEY_MAX <= OKV_MAX_KEY_LEN, "every orders key fits OKV_MAX_KEY_LEN");

typedef enum ord_table {
    ORD_TABLE_ORDERS,
    ORD_TABLE_PAYMENTS,
    ORD_TABLE_ACCOUNTS,
    ORD_TABLE_STOCK
} ord_table;

/* "orders", "payments", "accounts", "stock". Static. */
const char *ord_table_name(ord_table t);

/* The kinds of idempotency record; the values are IdempotencyKind's. */
typedef enum ord_idem_kind {
    ORD_IDEM_CREATE = ORDERKV__V1__IDEMPOTENCY_KIND__IDEM_CREATE_ORDER,
    ORD_IDEM_PAY = ORDERKV__V1__IDEMPOTENCY_KIND__IDEM_PAY_ORDER,
    ORD_IDEM_REFUND = ORDERKV__V1__IDEMPOTENCY_KIND__IDEM_REFUND_ORDER,
    ORD_IDEM_DEPOSIT = ORDERKV__V1__IDEMPOTENCY_KIND__IDEM_DEPOSIT,
    ORD_IDEM_RESERVE = ORDERKV__V1__IDEMPOTENCY_KIND__IDEM_RESERVE_STOCK
} ord_idem_kind;

/* The key segment of a kind: "create", "pay", "refund", "deposit",
 * "reserve"; NULL for a value that is not a kind. */
const char *ord_idem_kind_token(int kind);

/* The table an idempotency record of this kind lives in (the table of the
 * record the request changes first, so both share a partition). */
ord_table ord_idem_kind_table(ord_idem_kind kind);

typedef struct ord_key {
    size_t len;
    uint8_t buf[ORD_KEY_MAX];
} ord_key;

/* Checks an id; `what` names it in the message ("customer id"). OKV_EINVAL
 * (reason INVALID) with the rule it broke. */
int ord_id_check(const char *what, const char *id, ord_error *err);

/* Checks an idempotency key as the header says. */
int ord_idem_key_check(const char *key, ord_error *err);

/* Builders. Each checks its ids (OKV_EINVAL, nothing written to out on
 * error) and fills out. */
int ord_key_order(ord_key *out, const char *customer_id, const char *order_id, ord_error *err);
int ord_key_payment(ord_key *out, const char *customer_id, const char *payment_id,
                    ord_error *err);
int ord_key_refund(ord_key *out, const char *customer_id, const char *refund_id, ord_error *err);
int ord_key_balance(ord_key *out, const char *account_id, ord_error *err);
int ord_key_account(ord_key *out, const char *account_id, ord_error *err);
int ord_key_stock(ord_key *out, const char *sku, ord_error *err);
int ord_key_reservation(ord_key *out, const char *sku, const char *reservation_id,
                        ord_error *err);
/* The record guarding `idem_key` of `kind`; `owner` is the customer id
 * (create, pay, refund), the account id (deposit) or the sku (reserve). */
int ord_key_idem(ord_key *out, ord_idem_kind kind, const char *owner, const char *idem_key,
                 ord_error *err);

/* ListOrders: the prefix "<customer>/o/", and the first key after order
 * `start_after` ("<customer>/o/<start_after>\0"; the prefix itself when
 * start_after is "" or NULL). Scan [start, end of prefix). */
int ord_key_orders_prefix(ord_key *out, const char *customer_id, ord_error *err);
int ord_key_orders_start(ord_key *out, const char *customer_id, const char *start_after,
                         ord_error *err);

/* ---- parsing ---- */

typedef enum ord_key_type {
    ORD_KEY_ORDER = 1,
    ORD_KEY_IDEM,
    ORD_KEY_PAYMENT,
    ORD_KEY_REFUND,
    ORD_KEY_BALANCE,
    ORD_KEY_ACCOUNT,
    ORD_KEY_STOCK,
    ORD_KEY_RESERVATION
} ord_key_type;

/* A byte range inside the parsed key (not NUL-terminated). */
typedef struct ord_slice {
    const uint8_t *p;
    size_t len;
} ord_slice;

typedef struct ord_key_parts {
    ord_key_type type;
    ord_slice owner;          /* customer id, account id or sku */
    ord_slice id;             /* order, payment, refund or reservation id; the
                                 idempotency key for ORD_KEY_IDEM; empty else */
    ord_idem_kind kind;       /* ORD_KEY_IDEM only */
} ord_key_parts;

/* Parses a key of `table` as the layout above. The slices point into key,
 * borrowed for as long as key lives. OKV_EINVAL (reason INVALID) for a key
 * that is not one of the layouts or whose ids break the id rules. */
int ord_key_parse(ord_table table, const void *key, size_t len, ord_key_parts *out,
                  ord_error *err);

#endif

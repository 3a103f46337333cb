/*
 * pay_order.h — orderkv-bench --workload pay-order: what a shop does for
 * every sale, on orderkv's orders service through liborderkv's asynchronous
 * Orders API (orderkv_orders.h, docs/orders.md). The driver (driver.h,
 * "Orders paid") starts the requests; this module is the target's side:
 *
 *  - setup (driver_preload): open key k's account and fund it with the
 *    starting balance, a chain CreateAccount -> Deposit; the deposit carries
 *    an idempotency key, so the library may resend it after an ambiguous
 *    answer without funding the account twice.
 *  - pay (the load): a chain CreateOrder (one item, PAY_ORDER_PRICE, no
 *    stock reserved, no idempotency key: an order left unpaid by a failure
 *    moves no money) -> PayOrder from the account, with the idempotency key
 *    "pay-<order id>", so the library resends an ambiguous payment and the
 *    cluster never charges it twice. Each call's callback starts the next
 *    one on liborderkv's completion thread; the chain keeps within the
 *    request's deadline.
 *  - read (driver_verify): the account's balance, as an 8-byte counter.
 *
 * Ids. Key k (driver.h's key text) is customer "c<RUN>-<k>" paying from
 * account "a<RUN>-<k>", RUN the run id in hex: every run opens fresh
 * accounts whose starting balance it knows, and the customer's partition
 * (orders and payments tables) and the account's (accounts table) are
 * hashed independently, so payments spread over every partition of the
 * three tables.
 *
 * The tally. Every completion, in any phase (warmup, window, drain), is
 * counted: payments committed, refused by a rule (nothing charged), and
 * failed otherwise (the outcome unknown: charged or not). --verify then
 * checks, once the run is idle:
 *     sum of balances + committed x PAY_ORDER_PRICE == keys x balance
 * allowing, for each payment of unknown outcome, PAY_ORDER_PRICE more
 * missing from the balances (it may have been charged); anything else is
 * a mismatch: money created, lost or charged twice.
 */
#ifndef OKV_BENCH_PAY_ORDER_H
#define OKV_BENCH_PAY_ORDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "orderkv.h"

#define PAY_ORDER_PRICE 100           /* minor units: 1.00 CNY, the one item's price */
#define PAY_ORDER_CURRENCY "CNY"
#define PAY_ORDER_MAX_KEY 64          /* key bytes: the ids stay under the 128-byte limit */

/* The target's state for pay-order; embed it, pay_order_init() it. */
typedef struct pay_order {
    okv_client *c;
    uint32_t run_id;
    int64_t balance;                  /* every account's starting balance, minor units */
    int default_timeout_ms;           /* a chain's deadline when the driver passes 0 */
    _Atomic uint64_t created;         /* orders placed */
    _Atomic uint64_t create_failed;
    _Atomic uint64_t paid;            /* payments committed */
    _Atomic uint64_t pay_refused;     /* refused by a rule: nothing charged */
    _Atomic uint64_t pay_unknown;     /* failed otherwise: may have been charged */
    /* Where a chain's time goes: microseconds summed over the orders placed
     * (CreateOrder's submit to its callback) and over the payments
     * committed (PayOrder's submit to its callback). */
    _Atomic uint64_t create_us, pay_us;
} pay_order;

/* A snapshot of the tally (every phase of the run). */
typedef struct pay_tally {
    uint64_t created, create_failed, paid, pay_refused, pay_unknown;
    double create_ms, pay_ms;         /* mean time of a placed order's CreateOrder and of
                                         a committed payment's PayOrder; 0 if none */
} pay_tally;

/* --verify's answer. */
typedef struct pay_check {
    int done;                         /* every account was read */
    int code;                         /* if not, why */
    char msg[256];
    driver_sum s;                     /* the balances */
    int64_t deposits;                 /* keys x balance */
    int64_t paid_amount;              /* committed payments x PAY_ORDER_PRICE */
    int64_t gap;                      /* deposits - s.sum - paid_amount */
    uint64_t unknown;                 /* payments of unknown outcome */
    int ok;                           /* done, every account found, gap explained */
} pay_check;

void pay_order_init(pay_order *p, okv_client *c, uint32_t run_id, int64_t balance);

/* Bytes of per-slot state the chains need (driver_target.state_size). */
size_t pay_order_state_size(void);

/* The driver_target hooks (driver.h); ctx is the pay_order. */
int pay_order_setup(pay_order *p, driver_req *req, const void *key, size_t key_len,
                    int timeout_ms);
int pay_order_pay(pay_order *p, driver_req *req, const void *key, size_t key_len,
                  int timeout_ms);
int pay_order_read(pay_order *p, driver_req *req, const void *key, size_t key_len,
                   int timeout_ms);

/* The tally so far; exact once the driver is idle. */
void pay_order_tally(const pay_order *p, pay_tally *out);

/* Reads every account back (driver_verify, in_flight at a time) and checks
 * the money (above). Call only when no run is going on. */
void pay_order_verify(const pay_order *p, driver *d, uint64_t keys, int in_flight,
                      int timeout_ms, pay_check *out);

#endif

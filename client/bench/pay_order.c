/*
 * pay_order.c — the pay-order chains on liborderkv's asynchronous Orders
 * API (the model is in pay_order.h and driver.h).
 *
 * Every callback here runs on liborderkv's completion thread and must not
 * block: it starts the chain's next call (an *_async call, which returns at
 * once) or ends the request with driver_complete*(). A next call that
 * cannot be started ends the request with the code it returned, as the
 * etcd transfer chain does (bench.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "orderkv_orders.h"
#include "pay_order.h"

/* Room for "c" + 8 hex digits + "-" + a key of PAY_ORDER_MAX_KEY + NUL. */
#define ID_CAP (PAY_ORDER_MAX_KEY + 16)
/* Room for "pay-" + an order id (at most 128 bytes) + NUL. */
#define IDEM_CAP 160

/* What a chain carries from one call to the next: the slot's state
 * (driver_req_state), the target's alone while the request is in flight. */
typedef struct chain {
    pay_order *p;
    char customer[ID_CAP];
    char account[ID_CAP];
    double deadline;                  /* the whole chain's, monotonic seconds */
    double step_start;                /* the current call's submit, monotonic seconds */
} chain;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pay_order_init(pay_order *p, okv_client *c, uint32_t run_id, int64_t balance)
{
    memset(p, 0, sizeof *p);
    p->c = c;
    p->run_id = run_id;
    p->balance = balance;
    /* liborderkv's own default (OKV_OPTIONS_INIT), which is also what the
     * driver allows for the drain after the stop. */
    p->default_timeout_ms = 5000;
}

size_t pay_order_state_size(void)
{
    return sizeof(chain);
}

/* Fills the slot's state for key: the ids and the chain's deadline. The
 * caller (bench.c) keeps key_len <= PAY_ORDER_MAX_KEY. */
static chain *chain_begin(pay_order *p, driver_req *req, const void *key, size_t key_len,
                          int timeout_ms)
{
    chain *x = driver_req_state(req);
    int ms = timeout_ms > 0 ? timeout_ms : p->default_timeout_ms;
    x->p = p;
    snprintf(x->customer, sizeof x->customer, "c%08lx-%.*s", (unsigned long)p->run_id,
             (int)key_len, (const char *)key);
    snprintf(x->account, sizeof x->account, "a%08lx-%.*s", (unsigned long)p->run_id,
             (int)key_len, (const char *)key);
    x->step_start = now_s();
    x->deadline = x->step_start + ms / 1e3;
    return x;
}

/* Milliseconds left for the chain's next call; 0 if none are. */
static int left_ms(const chain *x)
{
    double ms = (x->deadline - now_s()) * 1e3;
    return ms >= 1 ? (int)ms : 0;
}

/* ---- setup: CreateAccount -> Deposit ---- */

static void setup_deposit_done(void *arg, const okv_result *r)
{
    driver_complete(arg, okv_result_code(r), okv_result_errmsg(r));
}

static void setup_account_done(void *arg, const okv_result *r)
{
    driver_req *req = arg;
    const chain *x = driver_req_state(req);
    int code = okv_result_code(r);
    if (code != OKV_OK) {
        driver_complete(req, code, okv_result_errmsg(r));
        return;
    }
    int ms = left_ms(x);
    if (!ms) {
        driver_complete(req, OKV_ETIMEDOUT, "the deadline passed before the deposit");
        return;
    }
    /* The key makes a resend after an ambiguous answer (the library's, or
     * a rerun's on the same account) a replay, never a second deposit. */
    char idem[IDEM_CAP];
    snprintf(idem, sizeof idem, "fund-%s", x->account);
    Orderkv__V1__DepositRequest rq = ORDERKV__V1__DEPOSIT_REQUEST__INIT;
    rq.account_id = (char *)x->account;
    rq.amount = x->p->balance;
    rq.idempotency_key = idem;
    int rc = okv_account_deposit_async(x->p->c, &rq, ms, setup_deposit_done, req);
    if (rc != OKV_OK)   /* not started: this completion ends the request */
        driver_complete(req, rc, okv_errmsg(x->p->c));
}

int pay_order_setup(pay_order *p, driver_req *req, const void *key, size_t key_len,
                    int timeout_ms)
{
    chain *x = chain_begin(p, req, key, key_len, timeout_ms);
    Orderkv__V1__CreateAccountRequest rq = ORDERKV__V1__CREATE_ACCOUNT_REQUEST__INIT;
    rq.account_id = x->account;
    rq.currency = PAY_ORDER_CURRENCY;
    rq.owner = x->customer;
    return okv_account_create_async(p->c, &rq, left_ms(x), setup_account_done, req);
}

/* ---- the load: CreateOrder -> PayOrder ---- */

/* A payment's failure that says nothing was charged: a rule refused it,
 * or it was never valid. Anything else (OKV_EUNKNOWN, a node lost after
 * the library's resends, ...) may have been charged. OKV_ETIMEDOUT and
 * OKV_EUNAVAILABLE say "not applied" too, but are counted as unknown all
 * the same: that only widens what --verify accepts, by at most one price
 * per such payment, and never makes a sound run fail. */
static int refused(int code)
{
    switch (code) {
    case OKV_EILLEGAL: case OKV_EFUNDS: case OKV_EIDEMPOTENCY: case OKV_EINVAL:
    case OKV_ENOTFOUND: case OKV_ECONDITION: case OKV_ESOLDOUT: case OKV_EUNIMPLEMENTED:
        return 1;
    default:
        return 0;
    }
}

/* Microseconds since the chain's current call was submitted. */
static uint64_t step_us(const chain *x)
{
    double us = (now_s() - x->step_start) * 1e6;
    return us > 0 ? (uint64_t)us : 0;
}

static void paid_done(void *arg, const okv_result *r)
{
    driver_req *req = arg;
    const chain *x = driver_req_state(req);
    pay_order *p = x->p;
    int code = okv_result_code(r);
    if (code == OKV_OK) {
        atomic_fetch_add_explicit(&p->paid, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->pay_us, step_us(x), memory_order_relaxed);
    }
    else if (refused(code))
        atomic_fetch_add_explicit(&p->pay_refused, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&p->pay_unknown, 1, memory_order_relaxed);
    driver_complete(req, code, okv_result_errmsg(r));
}

static void created_done(void *arg, const okv_result *r)
{
    driver_req *req = arg;
    chain *x = driver_req_state(req);
    pay_order *p = x->p;
    int code = okv_result_code(r);
    const char *errmsg = okv_result_errmsg(r);
    const Orderkv__V1__CreateOrderResponse *resp = okv_result_orders_response(r);
    if (code == OKV_OK && (!resp || !resp->order || !resp->order->order_id)) {
        code = OKV_EPROTO;   /* the server's bug: counted as one, not as a success */
        errmsg = "CreateOrder succeeded without an order";
    }
    if (code != OKV_OK) {
        atomic_fetch_add_explicit(&p->create_failed, 1, memory_order_relaxed);
        driver_complete(req, code, errmsg);
        return;
    }
    atomic_fetch_add_explicit(&p->created, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->create_us, step_us(x), memory_order_relaxed);
    x->step_start = now_s();
    int ms = left_ms(x);
    if (!ms) {
        driver_complete(req, OKV_ETIMEDOUT, "the deadline passed before the payment");
        return;
    }
    /* One key per order: a resend of this payment (the library's, after an
     * ambiguous answer) replays it; it can never pay another order. */
    char idem[IDEM_CAP];
    snprintf(idem, sizeof idem, "pay-%s", resp->order->order_id);
    Orderkv__V1__PayOrderRequest rq = ORDERKV__V1__PAY_ORDER_REQUEST__INIT;
    rq.customer_id = (char *)x->customer;
    rq.order_id = resp->order->order_id;
    rq.account_id = (char *)x->account;
    rq.amount = PAY_ORDER_PRICE;   /* the order's total: one item at this price */
    rq.idempotency_key = idem;
    /* The request is encoded before this returns (orderkv_orders.h), so
     * the borrowed order id and the stack buffers may go right after. */
    int rc = okv_order_pay_async(p->c, &rq, ms, paid_done, req);
    if (rc != OKV_OK) {   /* not started: nothing was sent, nothing charged */
        atomic_fetch_add_explicit(&p->pay_refused, 1, memory_order_relaxed);
        driver_complete(req, rc, okv_errmsg(p->c));
    }
}

int pay_order_pay(pay_order *p, driver_req *req, const void *key, size_t key_len,
                  int timeout_ms)
{
    chain *x = chain_begin(p, req, key, key_len, timeout_ms);
    Orderkv__V1__CreateOrderItem item = ORDERKV__V1__CREATE_ORDER_ITEM__INIT;
    item.sku = "bench-item";
    item.quantity = 1;
    item.unit_price = PAY_ORDER_PRICE;
    Orderkv__V1__CreateOrderItem *items[] = { &item };
    Orderkv__V1__CreateOrderRequest rq = ORDERKV__V1__CREATE_ORDER_REQUEST__INIT;
    rq.customer_id = x->customer;
    rq.currency = PAY_ORDER_CURRENCY;
    rq.n_items = 1;
    rq.items = items;
    return okv_order_create_async(p->c, &rq, left_ms(x), created_done, req);
}

/* ---- verify: each account's balance ---- */

/* The balance as the 8-byte counter driver_verify sums. */
static void read_done(void *arg, const okv_result *r)
{
    int code = okv_result_code(r);
    const Orderkv__V1__GetAccountResponse *resp = okv_result_orders_response(r);
    if (code != OKV_OK || !resp) {
        driver_complete_value(arg, code != OKV_OK ? code : OKV_EPROTO,
                              code != OKV_OK ? okv_result_errmsg(r)
                                             : "GetAccount succeeded without a response",
                              NULL, 0);
        return;
    }
    uint8_t counter[8];
    okv_counter_encode(resp->balance, counter);
    driver_complete_value(arg, OKV_OK, NULL, counter, sizeof counter);
}

int pay_order_read(pay_order *p, driver_req *req, const void *key, size_t key_len,
                   int timeout_ms)
{
    chain *x = chain_begin(p, req, key, key_len, timeout_ms);
    Orderkv__V1__GetAccountRequest rq = ORDERKV__V1__GET_ACCOUNT_REQUEST__INIT;
    rq.account_id = x->account;
    return okv_account_get_async(p->c, &rq, left_ms(x), read_done, req);
}

void pay_order_tally(const pay_order *p, pay_tally *out)
{
    out->created = atomic_load(&p->created);
    out->create_failed = atomic_load(&p->create_failed);
    out->paid = atomic_load(&p->paid);
    out->pay_refused = atomic_load(&p->pay_refused);
    out->pay_unknown = atomic_load(&p->pay_unknown);
    out->create_ms = out->created ? atomic_load(&p->create_us) / 1e3 / (double)out->created : 0;
    out->pay_ms = out->paid ? atomic_load(&p->pay_us) / 1e3 / (double)out->paid : 0;
}

void pay_order_verify(const pay_order *p, driver *d, uint64_t keys, int in_flight,
                      int timeout_ms, pay_check *out)
{
    memset(out, 0, sizeof *out);
    pay_tally t;
    pay_order_tally(p, &t);
    out->code = driver_verify(d, in_flight, timeout_ms, &out->s, out->msg, sizeof out->msg);
    out->done = out->code == OKV_OK;
    out->deposits = (int64_t)keys * p->balance;
    out->paid_amount = (int64_t)t.paid * PAY_ORDER_PRICE;
    out->gap = out->deposits - out->s.sum - out->paid_amount;
    out->unknown = t.pay_unknown;
    /* A gap is explained only by payments whose outcome the run never
     * learned, each of which took exactly the price or nothing. */
    int explained = out->gap == 0 ||
                    (out->gap > 0 && out->gap % PAY_ORDER_PRICE == 0 &&
                     (uint64_t)(out->gap / PAY_ORDER_PRICE) <= out->unknown);
    out->ok = out->done && out->s.found == keys && explained;
}

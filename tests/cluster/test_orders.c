/* The orders service through liborderkv (orderkv_orders.h) on a 3-node
 * cluster of real orderkvd processes:
 *
 *  a. the happy path: account, deposit, stock, an order reserving stock,
 *     pay (and its replay by key), get, list, ship, complete, partial and
 *     full refunds, a paid order cancelled; the asynchronous forms;
 *  b. every rule's code, with its OrdersError reason and a message:
 *     OKV_EILLEGAL, OKV_EFUNDS, OKV_ESOLDOUT, OKV_EIDEMPOTENCY,
 *     OKV_ENOTFOUND, OKV_ECONDITION, OKV_EINVAL (OKV_EINPROGRESS cannot be
 *     provoked from outside on demand; c accepts it as the documented
 *     "resend shortly" answer and checks what the resend gets);
 *  c. exactly once under concurrency: 8 threads paying one order with one
 *     key all get the same payment, one debit; 8 threads paying it with 8
 *     keys: one OK, seven OKV_EILLEGAL, one debit; 8 threads reserving the
 *     last 5 units: five OK, three OKV_ESOLDOUT, stock 0; 4 refunders never
 *     take refunded past captured.
 *
 * The threads resend their own request (same key) after an answer that
 * leaves the outcome open (OKV_EINPROGRESS, OKV_EUNKNOWN, OKV_ECONFLICT,
 * OKV_EUNAVAILABLE, OKV_ETIMEDOUT), as docs/orders.md tells callers to;
 * the assertions are only what must hold in every interleaving. Waits are
 * bounded (60 s). OKV_KEEP_CLUSTER_DIR=1 keeps the data dirs and logs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "okv_cluster.h"
#include "okv_test.h"
#include "orderkv.h"
#include "orderkv_orders.h"

static const char *orderkvd_path = ORDERKVD_PATH;

#define NODES 3
#define TICK_MS 50
#define BOUND_MS 60000
#define CALL_MS 15000
#define THREADS 8

#define R(name) ORDERKV__V1__ORDERS_ERROR__ORDERS_ERROR_##name
#define S(name) ORDERKV__V1__ORDER_STATUS__##name

typedef struct fx {
    okv_cluster *c;
    okv_client *cl;
    char run[16];             /* makes this run's ids unique */
} fx;

static fx *g;

static int group_teardown(void **state)
{
    (void)state;
    if (!g)
        return 0;
    int rc = okv_cluster_reap_dead(g->c) > 0 ? -1 : 0;
    if (rc)
        okv_cluster_dump_logs(g->c, 20);
    okv_close(g->cl);
    okv_cluster_free(g->c);
    free(g);
    g = NULL;
    return rc;
}

/* --idem-race / --idem-race-planted: the cluster runs with these failpoints. */
static const char *cluster_env;

static int group_setup(void **state)
{
    (void)state;
    g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    snprintf(g->run, sizeof g->run, "%lx", (unsigned long)time(NULL) ^ (unsigned long)rand());
    if (okv_cluster_start_env(&g->c, orderkvd_path, NODES, TICK_MS, cluster_env) != 0 ||
        okv_cluster_wait_leaders(g->c, BOUND_MS) != 0 ||
        okv_connect(&g->cl, g->c->all, NULL) != OKV_OK) {
        fprintf(stderr, "setup: the cluster did not come up\n");
        if (g->c)
            okv_cluster_dump_logs(g->c, 20);
        group_teardown(state);
        return -1;
    }
    return 0;
}

/* "<what>-<run>" */
static void id(char *buf, size_t cap, const char *what)
{
    snprintf(buf, cap, "%s-%s", what, g->run);
}

/* ---- small wrappers: each asserts the call's outcome -------------------------- */

static void account_new(const char *acct, const char *currency, int64_t deposit)
{
    Orderkv__V1__CreateAccountRequest rq = ORDERKV__V1__CREATE_ACCOUNT_REQUEST__INIT;
    rq.account_id = (char *)acct;
    rq.currency = (char *)currency;
    rq.owner = "test";
    Orderkv__V1__CreateAccountResponse *r = NULL;
    int rc = okv_account_create(g->cl, &rq, &r, CALL_MS);
    if (rc)
        fprintf(stderr, "account_create: %s: %s\n", okv_strerror(rc), okv_errmsg(g->cl));
    assert_int_equal(rc, OKV_OK);
    assert_non_null(r);
    assert_non_null(r->account);
    assert_string_equal(r->account->account_id, acct);
    okv_orders_response_free(r);
    if (deposit > 0) {
        Orderkv__V1__DepositRequest d = ORDERKV__V1__DEPOSIT_REQUEST__INIT;
        d.account_id = (char *)acct;
        d.amount = deposit;
        assert_int_equal(okv_account_deposit(g->cl, &d, NULL, CALL_MS), OKV_OK);
    }
}

static int64_t balance(const char *acct)
{
    Orderkv__V1__GetAccountRequest rq = ORDERKV__V1__GET_ACCOUNT_REQUEST__INIT;
    rq.account_id = (char *)acct;
    Orderkv__V1__GetAccountResponse *r = NULL;
    assert_int_equal(okv_account_get(g->cl, &rq, &r, CALL_MS), OKV_OK);
    int64_t b = r->balance;
    okv_orders_response_free(r);
    return b;
}

static void stock_set(const char *sku, int64_t n)
{
    Orderkv__V1__SetStockRequest rq = ORDERKV__V1__SET_STOCK_REQUEST__INIT;
    rq.sku = (char *)sku;
    rq.available = n;
    Orderkv__V1__SetStockResponse *r = NULL;
    assert_int_equal(okv_stock_set(g->cl, &rq, &r, CALL_MS), OKV_OK);
    assert_int_equal(r->available, n);
    okv_orders_response_free(r);
}

static int64_t stock(const char *sku)
{
    Orderkv__V1__GetStockRequest rq = ORDERKV__V1__GET_STOCK_REQUEST__INIT;
    rq.sku = (char *)sku;
    Orderkv__V1__GetStockResponse *r = NULL;
    assert_int_equal(okv_stock_get(g->cl, &rq, &r, CALL_MS), OKV_OK);
    int64_t n = r->available;
    okv_orders_response_free(r);
    return n;
}

/* Places an order of qty x price of sku (reserving stock if asked); the
 * order id into oid. Returns the code. */
static int order_new(const char *cust, const char *sku, uint32_t qty, int64_t price,
                     int reserve, const char *key, char *oid, size_t cap)
{
    Orderkv__V1__CreateOrderItem it = ORDERKV__V1__CREATE_ORDER_ITEM__INIT;
    it.sku = (char *)sku;
    it.quantity = qty;
    it.unit_price = price;
    it.reserve_stock = reserve;
    Orderkv__V1__CreateOrderItem *items[1] = { &it };
    Orderkv__V1__CreateOrderRequest rq = ORDERKV__V1__CREATE_ORDER_REQUEST__INIT;
    rq.customer_id = (char *)cust;
    rq.merchant_id = "m1";
    rq.currency = "CNY";
    rq.n_items = 1;
    rq.items = items;
    rq.idempotency_key = (char *)(key ? key : "");
    Orderkv__V1__CreateOrderResponse *r = NULL;
    int rc = okv_order_create(g->cl, &rq, &r, CALL_MS);
    if (rc == OKV_OK) {
        assert_non_null(r->order);
        assert_int_equal(r->order->status, S(CREATED));
        assert_int_equal(r->order->total, (int64_t)qty * price);
        snprintf(oid, cap, "%s", r->order->order_id);
    }
    okv_orders_response_free(r);
    return rc;
}

static Orderkv__V1__Order *order_get(const char *cust, const char *oid)
{
    Orderkv__V1__GetOrderRequest rq = ORDERKV__V1__GET_ORDER_REQUEST__INIT;
    rq.customer_id = (char *)cust;
    rq.order_id = (char *)oid;
    Orderkv__V1__GetOrderResponse *r = NULL;
    assert_int_equal(okv_order_get(g->cl, &rq, &r, CALL_MS), OKV_OK);
    Orderkv__V1__Order *o = r->order;
    r->order = NULL;   /* kept; the rest of the response goes */
    okv_orders_response_free(r);
    return o;
}

static int order_pay(const char *cust, const char *oid, const char *acct, int64_t amount,
                     const char *key, Orderkv__V1__PayOrderResponse **out)
{
    Orderkv__V1__PayOrderRequest rq = ORDERKV__V1__PAY_ORDER_REQUEST__INIT;
    rq.customer_id = (char *)cust;
    rq.order_id = (char *)oid;
    rq.account_id = (char *)acct;
    rq.amount = amount;
    rq.idempotency_key = (char *)(key ? key : "");
    return okv_order_pay(g->cl, &rq, out, CALL_MS);
}

static int order_refund(const char *cust, const char *oid, int64_t amount, const char *key,
                        Orderkv__V1__RefundOrderResponse **out)
{
    Orderkv__V1__RefundOrderRequest rq = ORDERKV__V1__REFUND_ORDER_REQUEST__INIT;
    rq.customer_id = (char *)cust;
    rq.order_id = (char *)oid;
    rq.amount = amount;
    rq.reason = "test";
    rq.idempotency_key = (char *)(key ? key : "");
    return okv_order_refund(g->cl, &rq, out, CALL_MS);
}

enum step { SHIP, COMPLETE, CANCEL };

static int order_step(enum step step, const char *cust, const char *oid, int *status)
{
    int rc;
    Orderkv__V1__Order *o = NULL;
    void *resp = NULL;
    if (step == SHIP) {
        Orderkv__V1__ShipOrderRequest rq = ORDERKV__V1__SHIP_ORDER_REQUEST__INIT;
        rq.customer_id = (char *)cust;
        rq.order_id = (char *)oid;
        Orderkv__V1__ShipOrderResponse *r = NULL;
        rc = okv_order_ship(g->cl, &rq, &r, CALL_MS);
        o = r ? r->order : NULL;
        resp = r;
    } else if (step == COMPLETE) {
        Orderkv__V1__CompleteOrderRequest rq = ORDERKV__V1__COMPLETE_ORDER_REQUEST__INIT;
        rq.customer_id = (char *)cust;
        rq.order_id = (char *)oid;
        Orderkv__V1__CompleteOrderResponse *r = NULL;
        rc = okv_order_complete(g->cl, &rq, &r, CALL_MS);
        o = r ? r->order : NULL;
        resp = r;
    } else {
        Orderkv__V1__CancelOrderRequest rq = ORDERKV__V1__CANCEL_ORDER_REQUEST__INIT;
        rq.customer_id = (char *)cust;
        rq.order_id = (char *)oid;
        Orderkv__V1__CancelOrderResponse *r = NULL;
        rc = okv_order_cancel(g->cl, &rq, &r, CALL_MS);
        o = r ? r->order : NULL;
        resp = r;
    }
    if (status)
        *status = o ? (int)o->status : -1;
    okv_orders_response_free(resp);
    return rc;
}

/* A refusal: its code, its reason, and a message naming what happened. */
static void assert_refused(int rc, int code, int reason)
{
    if (rc != code)
        fprintf(stderr, "expected %s, got %s: %s\n", okv_strerror(code), okv_strerror(rc),
                okv_errmsg(g->cl));
    assert_int_equal(rc, code);
    assert_int_equal(okv_orders_reason(g->cl), reason);
    assert_true(strlen(okv_errmsg(g->cl)) > 0);
}

/* ---- a. the happy path ------------------------------------------------------------ */

typedef struct async_box {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, rc, reason;
    void *resp;
} async_box;

static void async_cb(void *arg, const okv_result *r)
{
    async_box *b = arg;
    pthread_mutex_lock(&b->mu);
    b->rc = okv_result_code(r);
    b->reason = okv_result_orders_reason(r);
    /* Borrowed during the callback, then moved out to outlive it. */
    if (okv_result_orders_response(r))
        b->resp = okv_result_take_orders_response(r);
    b->done = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void async_wait(async_box *b)
{
    pthread_mutex_lock(&b->mu);
    while (!b->done)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static void test_orders__happy_path(void **state)
{
    (void)state;
    char acct[64], cust[64], sku[64], oid[128], oid2[128];
    id(acct, sizeof acct, "acct-happy");
    id(cust, sizeof cust, "cust-happy");
    id(sku, sizeof sku, "sku-happy");
    account_new(acct, "CNY", 10000);
    assert_int_equal(balance(acct), 10000);
    stock_set(sku, 10);

    assert_int_equal(order_new(cust, sku, 2, 1500, 1, NULL, oid, sizeof oid), OKV_OK);
    assert_int_equal(stock(sku), 8);

    Orderkv__V1__PayOrderResponse *p = NULL, *p2 = NULL;
    assert_int_equal(order_pay(cust, oid, acct, 3000, "pay-happy", &p), OKV_OK);
    assert_int_equal(p->order->status, S(PAID));
    assert_int_equal(p->order->captured, 3000);
    assert_int_equal(p->payment->amount, 3000);
    assert_string_equal(p->payment->order_id, oid);
    assert_int_equal(balance(acct), 7000);
    /* The replay: the same payment, no second debit. */
    assert_int_equal(order_pay(cust, oid, acct, 3000, "pay-happy", &p2), OKV_OK);
    assert_string_equal(p2->payment->payment_id, p->payment->payment_id);
    assert_int_equal(balance(acct), 7000);
    okv_orders_response_free(p);
    okv_orders_response_free(p2);

    /* get and list, the asynchronous forms */
    Orderkv__V1__GetOrderRequest gq = ORDERKV__V1__GET_ORDER_REQUEST__INIT;
    gq.customer_id = cust;
    gq.order_id = oid;
    async_box b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL };
    assert_int_equal(okv_order_get_async(g->cl, &gq, CALL_MS, async_cb, &b), OKV_OK);
    async_wait(&b);
    assert_int_equal(b.rc, OKV_OK);
    assert_int_equal(b.reason, 0);
    Orderkv__V1__GetOrderResponse *gr = b.resp;
    assert_non_null(gr);
    assert_int_equal(gr->order->status, S(PAID));
    okv_orders_response_free(gr);

    Orderkv__V1__ListOrdersRequest lq = ORDERKV__V1__LIST_ORDERS_REQUEST__INIT;
    lq.customer_id = cust;
    Orderkv__V1__ListOrdersResponse *lr = NULL;
    assert_int_equal(okv_order_list(g->cl, &lq, &lr, CALL_MS), OKV_OK);
    assert_int_equal(lr->n_orders, 1);
    assert_string_equal(lr->orders[0]->order_id, oid);
    assert_string_equal(lr->next_start_after, "");
    okv_orders_response_free(lr);

    int st;
    assert_int_equal(order_step(SHIP, cust, oid, &st), OKV_OK);
    assert_int_equal(st, S(SHIPPED));
    assert_int_equal(order_step(SHIP, cust, oid, &st), OKV_OK);   /* already so */
    assert_int_equal(st, S(SHIPPED));
    assert_int_equal(order_step(COMPLETE, cust, oid, &st), OKV_OK);
    assert_int_equal(st, S(COMPLETED));

    Orderkv__V1__RefundOrderResponse *rf = NULL;
    assert_int_equal(order_refund(cust, oid, 1000, "refund-1", &rf), OKV_OK);
    assert_int_equal(rf->order->status, S(PARTIALLY_REFUNDED));
    assert_int_equal(rf->refund->amount, 1000);
    okv_orders_response_free(rf);
    assert_int_equal(balance(acct), 8000);
    assert_int_equal(order_refund(cust, oid, 2000, "refund-2", &rf), OKV_OK);
    assert_int_equal(rf->order->status, S(REFUNDED));
    assert_int_equal(rf->order->refunded, 3000);
    okv_orders_response_free(rf);
    assert_int_equal(balance(acct), 10000);

    /* A paid order cancelled: refunded in full, its stock released. */
    assert_int_equal(order_new(cust, sku, 3, 100, 1, "create-2", oid2, sizeof oid2), OKV_OK);
    assert_int_equal(stock(sku), 5);
    assert_int_equal(order_pay(cust, oid2, acct, 300, NULL, NULL), OKV_OK);
    assert_int_equal(balance(acct), 9700);
    assert_int_equal(order_step(CANCEL, cust, oid2, &st), OKV_OK);
    assert_int_equal(st, S(CANCELLED));
    assert_int_equal(balance(acct), 10000);
    assert_int_equal(stock(sku), 8);
    Orderkv__V1__Order *o = order_get(cust, oid2);
    assert_int_equal(o->status, S(CANCELLED));
    assert_int_equal(o->refunded, 300);
    protobuf_c_message_free_unpacked(&o->base, NULL);

    /* A reservation alone, and the stock it took. */
    Orderkv__V1__ReserveStockRequest rq = ORDERKV__V1__RESERVE_STOCK_REQUEST__INIT;
    rq.sku = sku;
    rq.quantity = 2;
    rq.customer_id = cust;
    Orderkv__V1__ReserveStockResponse *rr = NULL;
    assert_int_equal(okv_stock_reserve(g->cl, &rq, &rr, CALL_MS), OKV_OK);
    assert_int_equal(rr->reservation->quantity, 2);
    okv_orders_response_free(rr);
    assert_int_equal(stock(sku), 6);
}

/* ---- b. every rule's code ------------------------------------------------------------ */

static void test_orders__every_error_code(void **state)
{
    (void)state;
    char acct[64], poor[64], cust[64], sku[64], oid[128], oid2[128];
    id(acct, sizeof acct, "acct-err");
    id(poor, sizeof poor, "acct-poor");
    id(cust, sizeof cust, "cust-err");
    id(sku, sizeof sku, "sku-err");
    account_new(acct, "CNY", 5000);
    account_new(poor, "CNY", 100);
    stock_set(sku, 2);
    assert_int_equal(order_new(cust, sku, 1, 1000, 0, NULL, oid, sizeof oid), OKV_OK);

    /* OKV_EILLEGAL: ship a CREATED order. */
    assert_refused(order_step(SHIP, cust, oid, NULL), OKV_EILLEGAL, R(ILLEGAL_TRANSITION));
    /* OKV_EFUNDS: nothing charged, the order still CREATED. */
    assert_refused(order_pay(cust, oid, poor, 1000, NULL, NULL), OKV_EFUNDS,
                   R(INSUFFICIENT_FUNDS));
    assert_int_equal(balance(poor), 100);
    Orderkv__V1__Order *o = order_get(cust, oid);
    assert_int_equal(o->status, S(CREATED));
    protobuf_c_message_free_unpacked(&o->base, NULL);
    /* OKV_EINVAL: the amount is not the total. */
    assert_refused(order_pay(cust, oid, acct, 999, NULL, NULL), OKV_EINVAL, R(AMOUNT_MISMATCH));

    assert_int_equal(order_pay(cust, oid, acct, 1000, "k-err", NULL), OKV_OK);
    /* OKV_EILLEGAL: a second payment (another key). */
    assert_refused(order_pay(cust, oid, acct, 1000, "k-err-2", NULL), OKV_EILLEGAL,
                   R(ILLEGAL_TRANSITION));
    /* OKV_EIDEMPOTENCY: the key with another request (another account). */
    assert_refused(order_pay(cust, oid, poor, 1000, "k-err", NULL), OKV_EIDEMPOTENCY,
                   R(IDEMPOTENCY_KEY_REUSED));
    /* OKV_EILLEGAL: a refund beyond what was captured. */
    assert_refused(order_refund(cust, oid, 1001, NULL, NULL), OKV_EILLEGAL,
                   R(REFUND_EXCEEDS_CAPTURED));
    assert_int_equal(balance(acct), 4000);

    /* OKV_ESOLDOUT: a reservation, and an order reserving, beyond the stock. */
    Orderkv__V1__ReserveStockRequest rq = ORDERKV__V1__RESERVE_STOCK_REQUEST__INIT;
    rq.sku = sku;
    rq.quantity = 3;
    assert_refused(okv_stock_reserve(g->cl, &rq, NULL, CALL_MS), OKV_ESOLDOUT, R(SOLD_OUT));
    assert_refused(order_new(cust, sku, 3, 10, 1, NULL, oid2, sizeof oid2), OKV_ESOLDOUT,
                   R(SOLD_OUT));
    assert_int_equal(stock(sku), 2);

    /* OKV_EIDEMPOTENCY on a deposit: the key with another amount. */
    Orderkv__V1__DepositRequest d = ORDERKV__V1__DEPOSIT_REQUEST__INIT;
    d.account_id = acct;
    d.amount = 100;
    d.idempotency_key = "dep-1";
    assert_int_equal(okv_account_deposit(g->cl, &d, NULL, CALL_MS), OKV_OK);
    assert_int_equal(okv_account_deposit(g->cl, &d, NULL, CALL_MS), OKV_OK);   /* replay */
    assert_int_equal(balance(acct), 4100);
    d.amount = 200;
    assert_refused(okv_account_deposit(g->cl, &d, NULL, CALL_MS), OKV_EIDEMPOTENCY,
                   R(IDEMPOTENCY_KEY_REUSED));

    /* OKV_ENOTFOUND: an order, an account, a sku. */
    Orderkv__V1__GetOrderRequest gq = ORDERKV__V1__GET_ORDER_REQUEST__INIT;
    gq.customer_id = cust;
    gq.order_id = "no-such-order";
    Orderkv__V1__GetOrderResponse *gr = (void *)1;
    assert_refused(okv_order_get(g->cl, &gq, &gr, CALL_MS), OKV_ENOTFOUND, R(NOT_FOUND));
    assert_null(gr);   /* *out is NULL on failure */
    assert_refused(order_pay(cust, "no-such-order", acct, 1, NULL, NULL), OKV_ENOTFOUND,
                   R(NOT_FOUND));
    Orderkv__V1__GetAccountRequest aq = ORDERKV__V1__GET_ACCOUNT_REQUEST__INIT;
    aq.account_id = "no-such-account";
    assert_refused(okv_account_get(g->cl, &aq, NULL, CALL_MS), OKV_ENOTFOUND, R(NOT_FOUND));
    Orderkv__V1__GetStockRequest sq = ORDERKV__V1__GET_STOCK_REQUEST__INIT;
    sq.sku = "no-such-sku";
    assert_refused(okv_stock_get(g->cl, &sq, NULL, CALL_MS), OKV_ENOTFOUND, R(NOT_FOUND));

    /* OKV_ECONDITION: the account id with another currency. */
    Orderkv__V1__CreateAccountRequest cq = ORDERKV__V1__CREATE_ACCOUNT_REQUEST__INIT;
    cq.account_id = acct;
    cq.currency = "USD";
    cq.owner = "test";
    assert_refused(okv_account_create(g->cl, &cq, NULL, CALL_MS), OKV_ECONDITION,
                   R(ALREADY_EXISTS));

    /* OKV_EINVAL: a malformed request (the server names the field), and a
     * request of the wrong type (refused by the library, sending nothing). */
    gq.customer_id = "";
    assert_refused(okv_order_get(g->cl, &gq, NULL, CALL_MS), OKV_EINVAL, R(INVALID));
    assert_int_equal(okv_order_ship(g->cl, (const Orderkv__V1__ShipOrderRequest *)&gq, NULL,
                                    CALL_MS),
                     OKV_EINVAL);
    assert_int_equal(okv_orders_reason(g->cl), 0);
    assert_int_equal(okv_order_get(g->cl, NULL, NULL, CALL_MS), OKV_EINVAL);

    /* The reason in an asynchronous callback. */
    async_box b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL };
    assert_int_equal(order_step(SHIP, cust, oid, NULL), OKV_OK);
    Orderkv__V1__PayOrderRequest pq = ORDERKV__V1__PAY_ORDER_REQUEST__INIT;
    pq.customer_id = cust;
    pq.order_id = oid;
    pq.amount = 1000;
    pq.method = "card";
    assert_int_equal(okv_order_pay_async(g->cl, &pq, CALL_MS, async_cb, &b), OKV_OK);
    async_wait(&b);
    assert_int_equal(b.rc, OKV_EILLEGAL);
    assert_int_equal(b.reason, R(ILLEGAL_TRANSITION));
    assert_null(b.resp);
    assert_string_equal(okv_orders_reason_name(b.reason), "ILLEGAL_TRANSITION");
}

/* ---- c. exactly once under concurrency ---------------------------------------------- */

/* An answer that leaves the request's outcome open: resend it as is. */
static int open_outcome(int rc)
{
    return rc == OKV_EINPROGRESS || rc == OKV_EUNKNOWN || rc == OKV_ECONFLICT ||
           rc == OKV_EUNAVAILABLE || rc == OKV_ETIMEDOUT;
}

typedef struct racer {
    pthread_t th;
    pthread_barrier_t *start;
    const char *cust, *oid, *acct, *sku;
    int64_t amount;
    char key[64];
    int rc;
    int resends;
    char payment_id[128];
    int refunds_ok;            /* refunders */
} racer;

static void *payer_main(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->start);
    int64_t until = okv_cluster_now_ms() + BOUND_MS;
    for (;;) {
        Orderkv__V1__PayOrderResponse *p = NULL;
        r->rc = order_pay(r->cust, r->oid, r->acct, r->amount, r->key, &p);
        if (r->rc == OKV_OK)
            snprintf(r->payment_id, sizeof r->payment_id, "%s", p->payment->payment_id);
        okv_orders_response_free(p);
        if (!open_outcome(r->rc) || okv_cluster_now_ms() > until)
            break;
        r->resends++;
        okv_cluster_sleep_ms(20);
    }
    return NULL;
}

static void race(racer *rs, int n, void *(*fn)(void *))
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        rs[i].start = &start;
        assert_int_equal(pthread_create(&rs[i].th, NULL, fn, &rs[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(rs[i].th, NULL);
    pthread_barrier_destroy(&start);
}

/* A fresh account holding `balance` (CNY) and a fresh one-item order of
 * `total` for a fresh customer, their ids named after `what`
 * (acct-WHAT-..., cust-WHAT-...). acct and cust hold 64 bytes, oid 128. */
static void order_with_account(const char *what, int64_t balance, int64_t total, char *acct,
                               char *cust, char *oid)
{
    char name[40];   /* + "-" + the run id fits in 64 */
    snprintf(name, sizeof name, "acct-%s", what);
    id(acct, 64, name);
    snprintf(name, sizeof name, "cust-%s", what);
    id(cust, 64, name);
    account_new(acct, "CNY", balance);
    assert_int_equal(order_new(cust, "sku-x", 1, total, 0, NULL, oid, 128), OKV_OK);
}

static void test_orders__same_key_pays_once(void **state)
{
    (void)state;
    char acct[64], cust[64], oid[128];
    order_with_account("samekey", 10000, 2500, acct, cust, oid);
    racer rs[THREADS];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < THREADS; i++) {
        rs[i] = (racer){ .cust = cust, .oid = oid, .acct = acct, .amount = 2500 };
        snprintf(rs[i].key, sizeof rs[i].key, "one-key");
    }
    race(rs, THREADS, payer_main);
    for (int i = 0; i < THREADS; i++) {
        if (rs[i].rc)
            fprintf(stderr, "payer %d: %s\n", i, okv_strerror(rs[i].rc));
        assert_int_equal(rs[i].rc, OKV_OK);
        assert_string_equal(rs[i].payment_id, rs[0].payment_id);
    }
    assert_int_equal(balance(acct), 10000 - 2500);
    Orderkv__V1__Order *o = order_get(cust, oid);
    assert_int_equal(o->status, S(PAID));
    assert_string_equal(o->payment_id, rs[0].payment_id);
    protobuf_c_message_free_unpacked(&o->base, NULL);
}

static void test_orders__different_keys_pay_once(void **state)
{
    (void)state;
    char acct[64], cust[64], oid[128];
    order_with_account("diffkey", 10000, 2500, acct, cust, oid);
    racer rs[THREADS];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < THREADS; i++) {
        rs[i] = (racer){ .cust = cust, .oid = oid, .acct = acct, .amount = 2500 };
        snprintf(rs[i].key, sizeof rs[i].key, "key-%d", i);
    }
    race(rs, THREADS, payer_main);
    int ok = 0, illegal = 0, winner = -1;
    for (int i = 0; i < THREADS; i++) {
        if (rs[i].rc == OKV_OK) {
            ok++;
            winner = i;
        } else if (rs[i].rc == OKV_EILLEGAL) {
            illegal++;
        } else {
            fprintf(stderr, "payer %d: %s\n", i, okv_strerror(rs[i].rc));
        }
    }
    assert_int_equal(ok, 1);
    assert_int_equal(illegal, THREADS - 1);
    assert_int_equal(balance(acct), 10000 - 2500);
    Orderkv__V1__Order *o = order_get(cust, oid);
    assert_string_equal(o->payment_id, rs[winner].payment_id);
    protobuf_c_message_free_unpacked(&o->base, NULL);
}

static void *reserver_main(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->start);
    int64_t until = okv_cluster_now_ms() + BOUND_MS;
    Orderkv__V1__ReserveStockRequest rq = ORDERKV__V1__RESERVE_STOCK_REQUEST__INIT;
    rq.sku = (char *)r->sku;
    rq.quantity = 1;
    rq.idempotency_key = r->key;   /* so a resend after an open answer is safe */
    for (;;) {
        r->rc = okv_stock_reserve(g->cl, &rq, NULL, CALL_MS);
        if (!open_outcome(r->rc) || okv_cluster_now_ms() > until)
            break;
        r->resends++;
        okv_cluster_sleep_ms(20);
    }
    return NULL;
}

static void test_orders__last_units_never_oversell(void **state)
{
    (void)state;
    char sku[64];
    id(sku, sizeof sku, "sku-flash");
    stock_set(sku, 5);
    racer rs[THREADS];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < THREADS; i++) {
        rs[i] = (racer){ .sku = sku };
        snprintf(rs[i].key, sizeof rs[i].key, "res-%d", i);
    }
    race(rs, THREADS, reserver_main);
    int ok = 0, sold_out = 0;
    for (int i = 0; i < THREADS; i++) {
        ok += rs[i].rc == OKV_OK;
        sold_out += rs[i].rc == OKV_ESOLDOUT;
        if (rs[i].rc != OKV_OK && rs[i].rc != OKV_ESOLDOUT)
            fprintf(stderr, "reserver %d: %s\n", i, okv_strerror(rs[i].rc));
    }
    assert_int_equal(ok, 5);
    assert_int_equal(sold_out, THREADS - 5);
    assert_int_equal(stock(sku), 0);
}

#define REFUNDERS 4
#define REFUND_EACH 300

/* Refunds REFUND_EACH, each time under a new key, until refused. */
static void *refunder_main(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->start);
    int64_t until = okv_cluster_now_ms() + BOUND_MS;
    for (int n = 0; okv_cluster_now_ms() < until; n++) {
        char key[96];
        snprintf(key, sizeof key, "%s-%d", r->key, n);
        int rc;
        do {
            rc = order_refund(r->cust, r->oid, REFUND_EACH, key, NULL);
            if (open_outcome(rc)) {
                r->resends++;
                okv_cluster_sleep_ms(20);
            }
        } while (open_outcome(rc) && okv_cluster_now_ms() < until);
        r->rc = rc;
        if (rc != OKV_OK)
            break;
        r->refunds_ok++;
    }
    return NULL;
}

static void test_orders__concurrent_refunds_never_exceed_captured(void **state)
{
    (void)state;
    char acct[64], cust[64], oid[128];
    order_with_account("refunds", 5000, 1000, acct, cust, oid);
    assert_int_equal(order_pay(cust, oid, acct, 1000, "pay-refunds", NULL), OKV_OK);
    racer rs[REFUNDERS];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < REFUNDERS; i++) {
        rs[i] = (racer){ .cust = cust, .oid = oid };
        snprintf(rs[i].key, sizeof rs[i].key, "refunder-%d", i);
    }
    race(rs, REFUNDERS, refunder_main);
    int total = 0;
    for (int i = 0; i < REFUNDERS; i++) {
        /* Every refunder stops at the rule, never at a transient error. */
        if (rs[i].rc != OKV_EILLEGAL)
            fprintf(stderr, "refunder %d ended with %s\n", i, okv_strerror(rs[i].rc));
        assert_int_equal(rs[i].rc, OKV_EILLEGAL);
        total += rs[i].refunds_ok;
    }
    /* 1000 captured: three refunds of 300 fit, a fourth never does. */
    assert_int_equal(total, 3);
    Orderkv__V1__Order *o = order_get(cust, oid);
    assert_int_equal(o->refunded, 3 * REFUND_EACH);
    assert_true(o->refunded <= o->captured);
    assert_int_equal(o->status, S(PARTIALLY_REFUNDED));
    protobuf_c_message_free_unpacked(&o->base, NULL);
    assert_int_equal(balance(acct), 5000 - 1000 + 3 * REFUND_EACH);
}

/* ---- a refusal from reads that straddle a same-key commit (failpoints) ------ */

/* With orders.reads.idem_first on every node, a request reads its
 * idempotency record at once and its other records 1.5 s later. Payer B
 * starts; 1 s later payer A sends the same key: A reads the key absent
 * (B has not committed), then the order after B committed it PAID, and
 * plans "illegal transition". The service must read the key again before
 * answering that, find B's record and replay B's answer. With
 * orders.confirm.skip (--idem-race-planted) it answers the refusal, and
 * the test must see it. */
static int planted_mode;

typedef struct late_payer {
    const char *cust, *oid, *acct;
    int delay_ms;
    int rc;
    char payment_id[128];
} late_payer;

static void *late_payer_main(void *arg)
{
    late_payer *p = arg;
    okv_cluster_sleep_ms(p->delay_ms);
    Orderkv__V1__PayOrderResponse *r = NULL;
    p->rc = order_pay(p->cust, p->oid, p->acct, 2500, "race-key", &r);
    if (p->rc == OKV_OK)
        snprintf(p->payment_id, sizeof p->payment_id, "%s", r->payment->payment_id);
    okv_orders_response_free(r);
    return NULL;
}

static void test_orders__a_refusal_is_checked_against_the_key(void **state)
{
    (void)state;
    char acct[64], cust[64], oid[128];
    order_with_account("idemrace", 10000, 2500, acct, cust, oid);
    late_payer b = { cust, oid, acct, 0, 0, "" }, a = { cust, oid, acct, 1000, 0, "" };
    pthread_t tb, ta;
    assert_int_equal(pthread_create(&tb, NULL, late_payer_main, &b), 0);
    assert_int_equal(pthread_create(&ta, NULL, late_payer_main, &a), 0);
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);
    printf("  payer B: %s %s; payer A (same key, 1 s later): %s %s\n", okv_strerror(b.rc),
           b.payment_id, okv_strerror(a.rc), a.payment_id);
    assert_int_equal(b.rc, OKV_OK);
    assert_int_equal(balance(acct), 10000 - 2500);
    if (planted_mode) {
        if (a.rc == OKV_OK)
            fail_msg("the planted bug (orders.confirm.skip) was not caught: payer A was "
                     "answered OK, so this test cannot tell a replay from a refusal");
        return;
    }
    assert_int_equal(a.rc, OKV_OK);
    assert_string_equal(a.payment_id, b.payment_id);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--idem-race") == 0 || strcmp(argv[i], "--idem-race-planted") == 0) {
            planted_mode = strcmp(argv[i], "--idem-race-planted") == 0;
            cluster_env = planted_mode
                              ? "ORDERKV_FAILPOINTS=orders.reads.idem_first=on;orders.confirm.skip=on"
                              : "ORDERKV_FAILPOINTS=orders.reads.idem_first=on";
            const struct CMUnitTest race_only[] = {
                cmocka_unit_test(test_orders__a_refusal_is_checked_against_the_key),
            };
            return cmocka_run_group_tests(race_only, group_setup, group_teardown);
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orders__happy_path),
        cmocka_unit_test(test_orders__every_error_code),
        cmocka_unit_test(test_orders__same_key_pays_once),
        cmocka_unit_test(test_orders__different_keys_pay_once),
        cmocka_unit_test(test_orders__last_units_never_oversell),
        cmocka_unit_test(test_orders__concurrent_refunds_never_exceed_captured),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * workload_orders.c — orders and payments under faults (issue 13 item 5;
 * docs/jepsen.md "orders"). Tables orders, payments, accounts, stock, all
 * through the orders service (liborderkv's orderkv_orders.h), final reads
 * of the raw records with okv_scan.
 *
 * Entities: customers c0..c5, accounts a0..a3 (CNY, a large deposit each at
 * setup), hot skus sku-0..sku-2 with OW_STOCK units each (sold out within
 * seconds, then cancels give units back), plain skus nobody reserves.
 *
 * Ops of the main phase, by share:
 *   create 18%   one or two items, a third reserving 1-3 units of a hot sku;
 *                keyed (the key is also the merchant id) 4 in 5
 *   pay 18%      a recent order with THE request for it (account and key
 *                follow from the order id, so every thread sends the same
 *                request: copies of one request race for real); 1 in 8 is
 *                instead a second payment with a fresh key (must be refused)
 *   refund 8%    1..total of a recent order, fresh key (may exceed what is
 *                left: must be refused)
 *   cancel 6%, ship 7%, complete 5%: on recent orders, whatever their status
 *                (the illegal ones must be refused)
 *   reserve 8%, deposit 4%: fresh keys
 *   dup burst 6% three copies of one keyed request at once
 *                (workload_orders_dup.c)
 *   reads 20%    get-order, list-orders, get-account, get-stock
 * A keyed request is resent with the same key after an ambiguous outcome
 * (OKV_EUNKNOWN, a timeout, unavailable, in progress), each attempt its
 * own op (workload_orders_req.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload_orders.h"

/* ---- names, keys, the order registry -------------------------------------------- */

void ow_customer(char *buf, size_t n, int i) { snprintf(buf, n, "c%d", i); }
void ow_account(char *buf, size_t n, int i) { snprintf(buf, n, "a%d", i); }
void ow_sku(char *buf, size_t n, int i) { snprintf(buf, n, "sku-%d", i); }

void ow_new_key(jclient *cl, const char *prefix, char *buf, size_t n)
{
    /* thread number + a per-thread counter kept in the thread's slot */
    uintptr_t seq = (uintptr_t)cl->wl_local + 1;
    cl->wl_local = (void *)seq;
    snprintf(buf, n, "%s%d-%lu", prefix, cl->thread_no, (unsigned long)seq);
}

void ow_pay_account(const char *order_id, char *buf, size_t n)
{
    unsigned h = 0;
    for (const char *p = order_id; *p; p++)
        h = h * 31 + (unsigned char)*p;
    ow_account(buf, n, (int)(h % OW_ACCOUNTS));
}

static ow_state *state_of(jclient *cl) { return runner_workload_state(cl->r); }

void ow_remember(jclient *cl, const Orderkv__V1__Order *o)
{
    ow_state *s = state_of(cl);
    if (!o || !o->order_id || strlen(o->order_id) >= sizeof s->orders[0].id)
        return;
    pthread_mutex_lock(&s->mu);
    ow_order *slot = &s->orders[s->n % OW_MAX_ORDERS];
    snprintf(slot->customer, sizeof slot->customer, "%s", o->customer_id);
    snprintf(slot->id, sizeof slot->id, "%s", o->order_id);
    slot->total = o->total;
    s->n++;
    pthread_mutex_unlock(&s->mu);
}

int ow_pick(jclient *cl, ow_order *out)
{
    ow_state *s = state_of(cl);
    pthread_mutex_lock(&s->mu);
    size_t n = s->n, window = n < OW_RECENT ? n : OW_RECENT;
    if (n)
        *out = s->orders[(n - 1 - client_rand_below(cl, window)) % OW_MAX_ORDERS];
    pthread_mutex_unlock(&s->mu);
    return n > 0;
}

/* ---- outcomes and values ---------------------------------------------------------- */

hist_type ow_outcome(int rc)
{
    switch (rc) {
    case OKV_OK: return HIST_OK;
    case OKV_EILLEGAL: case OKV_EFUNDS: case OKV_ESOLDOUT: case OKV_EIDEMPOTENCY:
    case OKV_ENOTFOUND: case OKV_EINVAL: case OKV_ECONDITION:
    case OKV_ECONFLICT: case OKV_ETIMEDOUT: case OKV_EUNAVAILABLE:
        return HIST_FAIL;
    default:
        return HIST_INFO;
    }
}

int ow_should_retry(int rc)
{
    return ow_outcome(rc) == HIST_INFO || rc == OKV_ETIMEDOUT || rc == OKV_EUNAVAILABLE ||
           rc == OKV_ECONFLICT;
}

static const char *status_name(int st)
{
    static const char *const N[] = { "UNSPECIFIED", "CREATED", "PAID", "SHIPPED", "COMPLETED",
                                     "CANCELLED", "REFUNDED", "PARTIALLY_REFUNDED" };
    return st >= 0 && st < 8 ? N[st] : "UNKNOWN";
}

static jv *s_or_empty(const char *s) { return jv_str(s ? s : ""); }

jv *ow_order_jv(const Orderkv__V1__Order *o)
{
    if (!o)
        return jv_null();
    jv *v = jv_pair(s_or_empty(o->order_id), s_or_empty(o->customer_id));
    jv_push(v, jv_str(status_name(o->status)));
    jv_push(v, jv_int(o->total));
    jv_push(v, jv_int(o->captured));
    jv_push(v, jv_int(o->refunded));
    jv_push(v, s_or_empty(o->payment_id));
    jv_push(v, s_or_empty(o->account_id));
    jv_push(v, s_or_empty(o->merchant_id));
    jv *items = jv_list();
    for (size_t i = 0; i < o->n_items; i++) {
        const Orderkv__V1__OrderItem *it = o->items[i];
        jv *x = jv_pair(s_or_empty(it->sku), jv_int(it->quantity));
        jv_push(x, jv_int(it->unit_price));
        jv_push(items, jv_push(x, s_or_empty(it->reservation_id)));
    }
    jv_push(v, items);
    jv *t = jv_pair(jv_int(o->created_at_ms), jv_int(o->paid_at_ms));
    jv_push(t, jv_int(o->shipped_at_ms));
    jv_push(t, jv_int(o->completed_at_ms));
    jv_push(t, jv_int(o->cancelled_at_ms));
    jv_push(t, jv_int(o->refunded_at_ms));
    return jv_push(v, t);
}

/* ---- ops that are not keyed requests of workload_orders_req.c ---------------------- */

static jv *pair_s(const char *a, const char *b) { return jv_pair(jv_str(a), jv_str(b)); }

/* Refund: a fresh key, resent with it after ambiguous outcomes. */
static void do_refund(jclient *cl, const ow_order *o)
{
    Orderkv__V1__RefundOrderRequest r = ORDERKV__V1__REFUND_ORDER_REQUEST__INIT;
    char key[64];
    ow_new_key(cl, "f", key, sizeof key);
    r.customer_id = (char *)o->customer;
    r.order_id = (char *)o->id;
    r.amount = 1 + (int64_t)client_rand_below(cl, (uint64_t)(o->total > 0 ? o->total : 1));
    r.idempotency_key = key;
    for (int attempt = 0;; attempt++) {
        char err[512];
        jv *v = pair_s(o->customer, o->id);
        jv_push(v, jv_int(r.amount));
        client_invoke(cl, "refund", jv_push(v, jv_str(key)));
        Orderkv__V1__RefundOrderResponse *resp = NULL;
        int rc = okv_order_refund(cl->c, &r, &resp, runner_config(cl->r)->op_timeout_ms);
        hist_type t = ow_outcome(rc);
        jv *done = pair_s(o->customer, o->id);
        jv_push(done, jv_int(r.amount));
        jv_push(done, jv_str(key));
        if (t == HIST_OK) {
            jv_push(done, s_or_empty(resp->refund ? resp->refund->refund_id : ""));
            jv_push(done, ow_order_jv(resp->order));
        }
        client_complete(cl, t, done, t == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err));
        okv_orders_response_free(resp);
        if (!ow_should_retry(rc) || attempt + 1 >= OW_RETRIES)
            return;
        sleep_ms(OW_RETRY_PAUSE_MS);
    }
}

/* A second payment of an order with a fresh key: a different request the
 * rules must refuse once the order is paid. */
static void do_rogue_pay(jclient *cl, const ow_order *o)
{
    ow_req q;
    if (ow_req_pay(cl, &q, o) != 0)
        return;
    ow_new_key(cl, "x", q.key, sizeof q.key);
    ow_req_run(cl, &q);
}

/* cancel, ship, complete: naturally idempotent (the server resends them
 * itself), no key. */
static void do_step(jclient *cl, const char *f, const ow_order *o)
{
    char err[512];
    int t_ms = runner_config(cl->r)->op_timeout_ms, rc;
    void *resp = NULL;
    const Orderkv__V1__Order *order = NULL;
    const char *refund = NULL;
    client_invoke(cl, f, pair_s(o->customer, o->id));
    if (strcmp(f, "cancel") == 0) {
        Orderkv__V1__CancelOrderRequest r = ORDERKV__V1__CANCEL_ORDER_REQUEST__INIT;
        r.customer_id = (char *)o->customer;
        r.order_id = (char *)o->id;
        rc = okv_order_cancel(cl->c, &r, (Orderkv__V1__CancelOrderResponse **)&resp, t_ms);
        if (rc == OKV_OK) {
            order = ((Orderkv__V1__CancelOrderResponse *)resp)->order;
            const Orderkv__V1__Refund *rf = ((Orderkv__V1__CancelOrderResponse *)resp)->refund;
            refund = rf ? rf->refund_id : NULL;
        }
    } else if (strcmp(f, "ship") == 0) {
        Orderkv__V1__ShipOrderRequest r = ORDERKV__V1__SHIP_ORDER_REQUEST__INIT;
        r.customer_id = (char *)o->customer;
        r.order_id = (char *)o->id;
        rc = okv_order_ship(cl->c, &r, (Orderkv__V1__ShipOrderResponse **)&resp, t_ms);
        if (rc == OKV_OK)
            order = ((Orderkv__V1__ShipOrderResponse *)resp)->order;
    } else {
        Orderkv__V1__CompleteOrderRequest r = ORDERKV__V1__COMPLETE_ORDER_REQUEST__INIT;
        r.customer_id = (char *)o->customer;
        r.order_id = (char *)o->id;
        rc = okv_order_complete(cl->c, &r, (Orderkv__V1__CompleteOrderResponse **)&resp, t_ms);
        if (rc == OKV_OK)
            order = ((Orderkv__V1__CompleteOrderResponse *)resp)->order;
    }
    hist_type t = ow_outcome(rc);
    jv *v = pair_s(o->customer, o->id);
    if (t == HIST_OK) {
        if (strcmp(f, "cancel") == 0)
            jv_push(v, refund && *refund ? jv_str(refund) : jv_null());
        jv_push(v, ow_order_jv(order));
    }
    client_complete(cl, t, v, t == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err));
    okv_orders_response_free(resp);
}

/* Reads have no effect: any error is a definite fail. */
static void do_get_order(jclient *cl, const ow_order *o)
{
    char err[512];
    Orderkv__V1__GetOrderRequest r = ORDERKV__V1__GET_ORDER_REQUEST__INIT;
    r.customer_id = (char *)o->customer;
    r.order_id = (char *)o->id;
    client_invoke(cl, "get-order", pair_s(o->customer, o->id));
    Orderkv__V1__GetOrderResponse *resp = NULL;
    int rc = okv_order_get(cl->c, &r, &resp, runner_config(cl->r)->op_timeout_ms);
    jv *v = pair_s(o->customer, o->id);
    if (rc == OKV_OK || rc == OKV_ENOTFOUND)
        client_complete(cl, HIST_OK, jv_push(v, ow_order_jv(rc == OKV_OK ? resp->order : NULL)), NULL);
    else
        client_complete(cl, HIST_FAIL, v, client_error(cl, rc, err, sizeof err));
    okv_orders_response_free(resp);
}

static void do_list(jclient *cl)
{
    char cust[16], err[512];
    ow_customer(cust, sizeof cust, (int)client_rand_below(cl, OW_CUSTOMERS));
    Orderkv__V1__ListOrdersRequest r = ORDERKV__V1__LIST_ORDERS_REQUEST__INIT;
    r.customer_id = cust;
    r.limit = 1000;
    client_invoke(cl, "list-orders", jv_push(jv_list(), jv_str(cust)));
    Orderkv__V1__ListOrdersResponse *resp = NULL;
    int rc = okv_order_list(cl->c, &r, &resp, runner_config(cl->r)->op_timeout_ms);
    if (rc == OKV_OK) {
        jv *l = jv_list();
        for (size_t i = 0; i < resp->n_orders; i++)
            jv_push(l, ow_order_jv(resp->orders[i]));
        client_complete(cl, HIST_OK, jv_pair(jv_str(cust), l), NULL);
    } else {
        client_complete(cl, HIST_FAIL, jv_push(jv_list(), jv_str(cust)), client_error(cl, rc, err, sizeof err));
    }
    okv_orders_response_free(resp);
}

static void do_get_account(jclient *cl)
{
    char acct[16], err[512];
    ow_account(acct, sizeof acct, (int)client_rand_below(cl, OW_ACCOUNTS));
    Orderkv__V1__GetAccountRequest r = ORDERKV__V1__GET_ACCOUNT_REQUEST__INIT;
    r.account_id = acct;
    client_invoke(cl, "get-account", jv_push(jv_list(), jv_str(acct)));
    Orderkv__V1__GetAccountResponse *resp = NULL;
    int rc = okv_account_get(cl->c, &r, &resp, runner_config(cl->r)->op_timeout_ms);
    if (rc == OKV_OK)
        client_complete(cl, HIST_OK, jv_pair(jv_str(acct), jv_int(resp->balance)), NULL);
    else
        client_complete(cl, HIST_FAIL, jv_push(jv_list(), jv_str(acct)), client_error(cl, rc, err, sizeof err));
    okv_orders_response_free(resp);
}

static void do_get_stock(jclient *cl)
{
    char sku[16], err[512];
    ow_sku(sku, sizeof sku, (int)client_rand_below(cl, OW_SKUS));
    Orderkv__V1__GetStockRequest r = ORDERKV__V1__GET_STOCK_REQUEST__INIT;
    r.sku = sku;
    client_invoke(cl, "get-stock", jv_push(jv_list(), jv_str(sku)));
    Orderkv__V1__GetStockResponse *resp = NULL;
    int rc = okv_stock_get(cl->c, &r, &resp, runner_config(cl->r)->op_timeout_ms);
    if (rc == OKV_OK)
        client_complete(cl, HIST_OK, jv_pair(jv_str(sku), jv_int(resp->available)), NULL);
    else
        client_complete(cl, HIST_FAIL, jv_push(jv_list(), jv_str(sku)), client_error(cl, rc, err, sizeof err));
    okv_orders_response_free(resp);
}

/* ---- the step ------------------------------------------------------------------------ */

static void orders_step(jclient *cl)
{
    unsigned d = (unsigned)client_rand_below(cl, 100);
    ow_order o;
    ow_req q;
    int have = ow_pick(cl, &o);
    if (d < 18 || !have) {
        ow_req_create(cl, &q, client_rand_below(cl, 5) != 0);
        ow_req_run(cl, &q);
    } else if (d < 36) {
        if (client_rand_below(cl, 8) == 0)
            do_rogue_pay(cl, &o);
        else if (ow_req_pay(cl, &q, &o) == 0)
            ow_req_run(cl, &q);
    } else if (d < 44) {
        do_refund(cl, &o);
    } else if (d < 50) {
        do_step(cl, "cancel", &o);
    } else if (d < 57) {
        do_step(cl, "ship", &o);
    } else if (d < 62) {
        do_step(cl, "complete", &o);
    } else if (d < 70) {
        ow_req_reserve(cl, &q);
        ow_req_run(cl, &q);
    } else if (d < 74) {
        ow_req_deposit(cl, &q);
        ow_req_run(cl, &q);
    } else if (d < 80) {
        ow_dup_burst(cl);
    } else if (d < 88) {
        do_get_order(cl, &o);
    } else if (d < 92) {
        do_list(cl);
    } else if (d < 96) {
        do_get_account(cl);
    } else {
        do_get_stock(cl);
    }
}

static void *orders_state_new(const run_config *cfg)
{
    (void)cfg;
    ow_state *s = calloc(1, sizeof *s);
    if (!s || !(s->orders = calloc(OW_MAX_ORDERS, sizeof *s->orders))) {
        fprintf(stderr, "okv-jepsen: orders: out of memory\n");
        abort();
    }
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

static void orders_state_free(void *state)
{
    ow_state *s = state;
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->orders);
    free(s);
}

/* Leader faults aim at the customers' partitions of table orders, where
 * every order operation coordinates. */
static const char *orders_focus_keys(const run_config *cfg)
{
    (void)cfg;
    return "c0,c1,c2,c3,c4,c5";
}

const workload workload_orders = {
    .name = "orders",
    .table = "orders",
    .focus_keys = orders_focus_keys,
    .state_new = orders_state_new,
    .state_free = orders_state_free,
    .setup = ow_setup,
    .step = orders_step,
    .final = ow_final,
};

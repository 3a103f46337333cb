/*
 * workload_orders_req.c — the orders workload's keyed requests (create,
 * pay, deposit, reserve): building them, recording them, and resending
 * the SAME request with the SAME key after an ambiguous outcome, each
 * attempt its own op, as a service that must never charge twice would.
 *
 * Tags, so the final state says which key made which record: a create's
 * key is also its merchant id, a reservation's key its customer id (both
 * ids: the keys hold no '/').
 */
#include <stdio.h>
#include <string.h>

#include "workload_orders.h"

const char *ow_kind_f(ow_kind k)
{
    static const char *const F[] = { "create", "pay", "deposit", "reserve" };
    return F[k];
}

void ow_req_create(jclient *cl, ow_req *q, int keyed)
{
    memset(q, 0, sizeof *q);
    q->kind = OW_CREATE;
    orderkv__v1__create_order_request__init(&q->create);
    ow_customer(q->customer, sizeof q->customer, (int)client_rand_below(cl, OW_CUSTOMERS));
    if (keyed)
        ow_new_key(cl, "k", q->key, sizeof q->key);
    /* A third of the orders reserve 1-3 units of a hot sku; each has a
     * plain item too. */
    size_t n = 0;
    if (client_rand_below(cl, 3) == 0) {
        ow_sku(q->sku, sizeof q->sku, (int)client_rand_below(cl, OW_SKUS));
        orderkv__v1__create_order_item__init(&q->items[n]);
        q->items[n].sku = q->sku;
        q->items[n].quantity = 1 + (uint32_t)client_rand_below(cl, 3);
        q->items[n].unit_price = 100 + (int64_t)client_rand_below(cl, 900);
        q->items[n].reserve_stock = 1;
        n++;
    }
    snprintf(q->plain_sku, sizeof q->plain_sku, "plain-%d", (int)client_rand_below(cl, 10));
    orderkv__v1__create_order_item__init(&q->items[n]);
    q->items[n].sku = q->plain_sku;
    q->items[n].quantity = 1 + (uint32_t)client_rand_below(cl, 2);
    q->items[n].unit_price = 100 + (int64_t)client_rand_below(cl, 900);
    n++;
    for (size_t i = 0; i < n; i++)
        q->item_ptrs[i] = &q->items[i];
    q->create.customer_id = q->customer;
    q->create.merchant_id = q->key;
    q->create.currency = (char *)OW_CURRENCY;
    q->create.n_items = n;
    q->create.items = q->item_ptrs;
    q->create.idempotency_key = q->key;
}

int ow_req_pay(jclient *cl, ow_req *q, const ow_order *o)
{
    (void)cl;
    memset(q, 0, sizeof *q);
    q->kind = OW_PAY;
    orderkv__v1__pay_order_request__init(&q->pay);
    snprintf(q->customer, sizeof q->customer, "%s", o->customer);
    snprintf(q->order_id, sizeof q->order_id, "%s", o->id);
    ow_pay_account(o->id, q->account, sizeof q->account);
    if (snprintf(q->key, sizeof q->key, "pay-%.59s", o->id) >= (int)sizeof q->key)
        return -1;   /* a longer order id than this workload expects */
    q->pay.customer_id = q->customer;
    q->pay.order_id = q->order_id;
    q->pay.account_id = q->account;
    q->pay.amount = o->total;
    q->pay.idempotency_key = q->key;
    return 0;
}

void ow_req_deposit(jclient *cl, ow_req *q)
{
    memset(q, 0, sizeof *q);
    q->kind = OW_DEPOSIT;
    orderkv__v1__deposit_request__init(&q->deposit);
    ow_account(q->account, sizeof q->account, (int)client_rand_below(cl, OW_ACCOUNTS));
    ow_new_key(cl, "d", q->key, sizeof q->key);
    q->deposit.account_id = q->account;
    q->deposit.amount = 1 + (int64_t)client_rand_below(cl, 5000);
    q->deposit.idempotency_key = q->key;
}

void ow_req_reserve(jclient *cl, ow_req *q)
{
    memset(q, 0, sizeof *q);
    q->kind = OW_RESERVE;
    orderkv__v1__reserve_stock_request__init(&q->reserve);
    ow_sku(q->sku, sizeof q->sku, (int)client_rand_below(cl, OW_SKUS));
    ow_new_key(cl, "r", q->key, sizeof q->key);
    q->reserve.sku = q->sku;
    q->reserve.quantity = 1 + (uint32_t)client_rand_below(cl, 2);
    q->reserve.customer_id = q->key;   /* the tag */
    q->reserve.idempotency_key = q->key;
}

static jv *items_jv(const Orderkv__V1__CreateOrderRequest *r)
{
    jv *l = jv_list();
    for (size_t i = 0; i < r->n_items; i++) {
        const Orderkv__V1__CreateOrderItem *it = r->items[i];
        jv *x = jv_pair(jv_str(it->sku), jv_int(it->quantity));
        jv_push(x, jv_int(it->unit_price));
        jv_push(l, jv_push(x, jv_int(it->reserve_stock ? 1 : 0)));
    }
    return l;
}

jv *ow_req_jv(const ow_req *q)
{
    jv *v;
    switch (q->kind) {
    case OW_CREATE:
        v = jv_pair(jv_str(q->customer), jv_str(q->key));
        return jv_push(v, items_jv(&q->create));
    case OW_PAY:
        v = jv_pair(jv_str(q->customer), jv_str(q->order_id));
        jv_push(v, jv_str(q->account));
        jv_push(v, jv_int(q->pay.amount));
        return jv_push(v, jv_str(q->key));
    case OW_DEPOSIT:
        v = jv_pair(jv_str(q->account), jv_int(q->deposit.amount));
        return jv_push(v, jv_str(q->key));
    default:
        v = jv_pair(jv_str(q->sku), jv_int(q->reserve.quantity));
        return jv_push(v, jv_str(q->key));
    }
}

jv *ow_ok_jv(const ow_req *q, const void *resp)
{
    jv *v = ow_req_jv(q);
    switch (q->kind) {
    case OW_CREATE:
        return jv_push(v, ow_order_jv(((const Orderkv__V1__CreateOrderResponse *)resp)->order));
    case OW_PAY: {
        const Orderkv__V1__PayOrderResponse *r = resp;
        jv_push(v, jv_str(r->payment ? r->payment->payment_id : ""));
        return jv_push(v, ow_order_jv(r->order));
    }
    case OW_DEPOSIT:
        return v;
    default: {
        const Orderkv__V1__ReserveStockResponse *r = resp;
        return jv_push(v, jv_str(r->reservation ? r->reservation->reservation_id : ""));
    }
    }
}

int ow_req_call(jclient *cl, const ow_req *q, void **resp, okv_callback cb, void *arg)
{
    int t = runner_config(cl->r)->op_timeout_ms;
    switch (q->kind) {
    case OW_CREATE:
        return cb ? okv_order_create_async(cl->c, &q->create, t, cb, arg)
                  : okv_order_create(cl->c, &q->create, (Orderkv__V1__CreateOrderResponse **)resp, t);
    case OW_PAY:
        return cb ? okv_order_pay_async(cl->c, &q->pay, t, cb, arg)
                  : okv_order_pay(cl->c, &q->pay, (Orderkv__V1__PayOrderResponse **)resp, t);
    case OW_DEPOSIT:
        return cb ? okv_account_deposit_async(cl->c, &q->deposit, t, cb, arg)
                  : okv_account_deposit(cl->c, &q->deposit, (Orderkv__V1__DepositResponse **)resp, t);
    default:
        return cb ? okv_stock_reserve_async(cl->c, &q->reserve, t, cb, arg)
                  : okv_stock_reserve(cl->c, &q->reserve, (Orderkv__V1__ReserveStockResponse **)resp, t);
    }
}

void ow_req_made(jclient *cl, ow_req *q, const Orderkv__V1__Order *o)
{
    ow_remember(cl, o);
    if (!o || !o->order_id || strlen(o->order_id) >= sizeof q->made.id)
        return;
    snprintf(q->made.customer, sizeof q->made.customer, "%s", o->customer_id);
    snprintf(q->made.id, sizeof q->made.id, "%s", o->order_id);
    q->made.total = o->total;
    q->made_ok = 1;
}

void ow_req_run(jclient *cl, ow_req *q)
{
    for (int attempt = 0;; attempt++) {
        char err[512];
        void *resp = NULL;
        client_invoke(cl, ow_kind_f(q->kind), ow_req_jv(q));
        int rc = ow_req_call(cl, q, &resp, NULL, NULL);
        hist_type t = ow_outcome(rc);
        if (t == HIST_OK && q->kind == OW_CREATE)
            ow_req_made(cl, q, ((Orderkv__V1__CreateOrderResponse *)resp)->order);
        /* client_error before client_complete: an info reconnects. */
        const char *e = t == HIST_OK ? NULL : client_error(cl, rc, err, sizeof err);
        client_complete(cl, t, t == HIST_OK ? ow_ok_jv(q, resp) : ow_req_jv(q), e);
        okv_orders_response_free(resp);
        /* Without a key a resend would be a new request: read instead. */
        if (!q->key[0] || !ow_should_retry(rc) || attempt + 1 >= OW_RETRIES)
            return;
        sleep_ms(OW_RETRY_PAUSE_MS);
    }
}

/*
 * service_orders_read.c — the orders service's reads: GetOrder,
 * ListOrders, GetAccount, GetStock. Linearizable reads through the node's
 * internal client; nothing is planned or written.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "order_keys.h"
#include "orderkv.h"
#include "orders.pb-c.h"
#include "orders_exec.h"
#include "records.pb-c.h"
#include "tpc_driver.h"

#define READ_TIMEOUT_MS 10000
#define LIST_DEFAULT 100u
#define LIST_MAX 1000u


/* The internal client, or NULL having answered that a node alone has no
 * orders service. */
static okv_client *client_or_refuse(rpc_call *call, node *n)
{
    if (service_refused_by_meta(call, n))
        return NULL;
    okv_client *c = n->tpc ? tpc_driver_client(n->tpc) : NULL;
    if (!c && n->rs)
        ox_reply_errorf(call, OKV_EUNAVAILABLE, ORD_R(NONE), "the node is starting; retry");
    else if (!c)
        ox_reply_errorf(call, OKV_EUNIMPLEMENTED, ORD_R(NONE), "the orders service runs on a "
                        "cluster (orderkvd --initial-cluster); this node runs alone");
    return c;
}

static void *decode(rpc_call *call, const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                    size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
    if (!m)
        ox_reply_errorf(call, OKV_EPROTO, ORD_R(INVALID), "malformed %s", d->name);
    return m;
}

/* A read failed for a reason other than absence. */
static void reply_read_failure(rpc_call *call, const okv_result *r, const char *what)
{
    ox_reply_errorf(call, okv_result_code(r), ORD_R(NONE), "reading the %s: %s", what,
               okv_result_errmsg(r));
}

/* ---- GetOrder ----------------------------------------------------------------- */

typedef struct one_read {
    rpc_call *call;
    char what[160];
} one_read;

static void order_read(void *arg, const okv_result *r)
{
    one_read *o = arg;
    int rc = okv_result_code(r);
    size_t len = 0;
    const void *val = okv_result_value(r, &len);
    Orderkv__V1__Order *order = NULL;
    if (rc == OKV_ENOTFOUND)
        ox_reply_errorf(o->call, OKV_ENOTFOUND, ORD_R(NOT_FOUND), "%s not found", o->what);
    else if (rc != OKV_OK)
        reply_read_failure(o->call, r, o->what);
    else if (!(order = orderkv__v1__order__unpack(NULL, len, val)))
        ox_reply_errorf(o->call, OKV_ECORRUPT, ORD_R(NONE), "the stored %s does not decode",
                        o->what);
    else {
        Orderkv__V1__GetOrderResponse resp = ORDERKV__V1__GET_ORDER_RESPONSE__INIT;
        resp.order = order;
        service_reply_message(o->call, &resp.base);
        orderkv__v1__order__free_unpacked(order, NULL);
    }
    free(o);
}

static void handle_get_order(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    okv_client *c = client_or_refuse(call, n);
    Orderkv__V1__GetOrderRequest *req =
        c ? decode(call, &orderkv__v1__get_order_request__descriptor, buf, len) : NULL;
    if (!req)
        return;
    ord_key k;
    ord_error err;
    ord_error_clear(&err);
    one_read *o = NULL;
    if (ord_key_order(&k, req->customer_id, req->order_id, &err) != 0) {
        ox_reply_error(call, &err);
    } else if (!(o = calloc(1, sizeof *o))) {
        ox_reply_errorf(call, OKV_ENOMEM, ORD_R(NONE), "out of memory");
    } else {
        o->call = call;
        snprintf(o->what, sizeof o->what, "order %.64s of customer %.64s", req->order_id,
                 req->customer_id);
        int rc = okv_get_async(c, "orders", k.buf, k.len, READ_TIMEOUT_MS, order_read, o);
        if (rc != OKV_OK) {
            ox_reply_errorf(call, rc, ORD_R(NONE), "reading the order: %s", okv_strerror(rc));
            free(o);
        }
    }
    orderkv__v1__get_order_request__free_unpacked(req, NULL);
}

/* ---- ListOrders ----------------------------------------------------------------- */

static void orders_listed(void *arg, const okv_result *r)
{
    rpc_call *call = arg;
    int rc = okv_result_code(r);
    if (rc != OKV_OK) {
        reply_read_failure(call, r, "customer's orders");
        return;
    }
    okv_scan_result *s = okv_result_take_scan(r);
    size_t n = s ? okv_scan_result_count(s) : 0;
    Orderkv__V1__Order **orders = calloc(n ? n : 1, sizeof *orders);
    size_t got = 0;
    int bad = 0;
    for (size_t i = 0; orders && i < n && !bad; i++) {
        size_t vl = 0;
        const void *v = okv_scan_result_value(s, i, &vl);
        if (!(orders[got] = orderkv__v1__order__unpack(NULL, vl, v)))
            bad = 1;
        else
            got++;
    }
    if (!orders) {
        ox_reply_errorf(call, OKV_ENOMEM, ORD_R(NONE), "out of memory");
    } else if (bad) {
        ox_reply_errorf(call, OKV_ECORRUPT, ORD_R(NONE), "a stored order does not decode");
    } else {
        Orderkv__V1__ListOrdersResponse resp = ORDERKV__V1__LIST_ORDERS_RESPONSE__INIT;
        resp.n_orders = got;
        resp.orders = orders;
        size_t tl = 0;
        /* More may follow when the page came back full; the next page
         * starts after this page's last order. */
        if (okv_scan_result_resume(s, &tl) && got)
            resp.next_start_after = orders[got - 1]->order_id;
        service_reply_message(call, &resp.base);
    }
    for (size_t i = 0; i < got; i++)
        orderkv__v1__order__free_unpacked(orders[i], NULL);
    free(orders);
    okv_scan_result_free(s);
}

static void handle_list_orders(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    okv_client *c = client_or_refuse(call, n);
    Orderkv__V1__ListOrdersRequest *req =
        c ? decode(call, &orderkv__v1__list_orders_request__descriptor, buf, len) : NULL;
    if (!req)
        return;
    ord_key prefix, start;
    ord_error err;
    ord_error_clear(&err);
    if (req->limit > LIST_MAX) {
        ox_reply_errorf(call, OKV_EINVAL, ORD_R(INVALID), "limit %u is over %u", req->limit,
                   LIST_MAX);
    } else if (ord_key_orders_prefix(&prefix, req->customer_id, &err) != 0 ||
               ord_key_orders_start(&start, req->customer_id, req->start_after, &err) != 0) {
        ox_reply_error(call, &err);
    } else {
        /* [start, end of the prefix): the prefix's last byte '/' plus one. */
        uint8_t end[ORD_KEY_MAX];
        memcpy(end, prefix.buf, prefix.len);
        end[prefix.len - 1]++;
        okv_scan_opts o = OKV_SCAN_OPTS_INIT;
        o.start = start.buf;
        o.start_len = start.len;
        o.end = end;
        o.end_len = prefix.len;
        o.limit = req->limit ? req->limit : LIST_DEFAULT;
        o.timeout_ms = READ_TIMEOUT_MS;
        int rc = okv_scan_async(c, "orders", &o, orders_listed, call);
        if (rc != OKV_OK)
            ox_reply_errorf(call, rc, ORD_R(NONE), "listing orders: %s", okv_strerror(rc));
    }
    orderkv__v1__list_orders_request__free_unpacked(req, NULL);
}

/* ---- GetAccount: its record and its balance --------------------------------------- */

typedef struct acct_read {
    rpc_call *call;
    _Atomic int pending;
    int rc[2];
    char msg[2][256];
    uint8_t *val[2];
    size_t len[2];
    char id[ORD_ID_MAX + 1];
} acct_read;

typedef struct acct_part {
    acct_read *a;
    int i;
} acct_part;

static void acct_reply(acct_read *a)
{
    int64_t balance = 0;
    Orderkv__V1__Account *acct = NULL;
    if (a->rc[0] == OKV_ENOTFOUND) {
        ox_reply_errorf(a->call, OKV_ENOTFOUND, ORD_R(NOT_FOUND), "account %s not found", a->id);
    } else if (a->rc[0] || (a->rc[1] && a->rc[1] != OKV_ENOTFOUND)) {
        int i = a->rc[0] ? 0 : 1;
        ox_reply_errorf(a->call, a->rc[i], ORD_R(NONE), "reading account %s: %s", a->id, a->msg[i]);
    } else if (!(acct = orderkv__v1__account__unpack(NULL, a->len[0], a->val[0])) ||
               (a->rc[1] == OKV_OK && okv_counter_decode(a->val[1], a->len[1], &balance))) {
        ox_reply_errorf(a->call, OKV_ECORRUPT, ORD_R(NONE), "the stored account %s does not decode",
                   a->id);
    } else {
        Orderkv__V1__GetAccountResponse resp = ORDERKV__V1__GET_ACCOUNT_RESPONSE__INIT;
        resp.account = acct;
        resp.balance = balance;
        service_reply_message(a->call, &resp.base);
    }
    if (acct)
        orderkv__v1__account__free_unpacked(acct, NULL);
    free(a->val[0]);
    free(a->val[1]);
    free(a);
}

static void acct_part_read(void *arg, const okv_result *r)
{
    acct_part *p = arg;
    acct_read *a = p->a;
    int i = p->i;
    free(p);
    a->rc[i] = okv_result_code(r);
    snprintf(a->msg[i], sizeof a->msg[i], "%s", okv_result_errmsg(r));
    if (a->rc[i] == OKV_OK) {
        size_t len = 0;
        const void *v = okv_result_value(r, &len);
        if ((a->val[i] = malloc(len ? len : 1))) {
            memcpy(a->val[i], v, len);
            a->len[i] = len;
        } else {
            a->rc[i] = OKV_ENOMEM;
        }
    }
    if (atomic_fetch_sub(&a->pending, 1) == 1)
        acct_reply(a);
}

static void handle_get_account(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    okv_client *c = client_or_refuse(call, n);
    Orderkv__V1__GetAccountRequest *req =
        c ? decode(call, &orderkv__v1__get_account_request__descriptor, buf, len) : NULL;
    if (!req)
        return;
    ord_key keys[2];
    ord_error err;
    ord_error_clear(&err);
    acct_read *a = NULL;
    if (ord_key_account(&keys[0], req->account_id, &err) != 0 ||
        ord_key_balance(&keys[1], req->account_id, &err) != 0) {
        ox_reply_error(call, &err);
    } else if (!(a = calloc(1, sizeof *a))) {
        ox_reply_errorf(call, OKV_ENOMEM, ORD_R(NONE), "out of memory");
    } else {
        a->call = call;
        snprintf(a->id, sizeof a->id, "%s", req->account_id);
        atomic_store(&a->pending, 3);   /* two reads and this function's hold */
        for (int i = 0; i < 2; i++) {
            acct_part *p = malloc(sizeof *p);
            int rc = OKV_ENOMEM;
            if (p) {
                p->a = a;
                p->i = i;
                rc = okv_get_async(c, "accounts", keys[i].buf, keys[i].len, READ_TIMEOUT_MS,
                                   acct_part_read, p);
                if (rc != OKV_OK)
                    free(p);
            }
            if (rc != OKV_OK) {
                a->rc[i] = rc;
                snprintf(a->msg[i], sizeof a->msg[i], "%s", okv_strerror(rc));
                atomic_fetch_sub(&a->pending, 1);
            }
        }
        if (atomic_fetch_sub(&a->pending, 1) == 1)
            acct_reply(a);
    }
    orderkv__v1__get_account_request__free_unpacked(req, NULL);
}

/* ---- GetStock ---------------------------------------------------------------------- */

typedef struct stock_read {
    rpc_call *call;
    char sku[ORD_ID_MAX + 1];
} stock_read;

static void stock_read_done(void *arg, const okv_result *r)
{
    stock_read *s = arg;
    int rc = okv_result_code(r);
    size_t len = 0;
    const void *v = okv_result_value(r, &len);
    int64_t avail = 0;
    if (rc == OKV_ENOTFOUND)
        ox_reply_errorf(s->call, OKV_ENOTFOUND, ORD_R(NOT_FOUND), "no stock for sku %s", s->sku);
    else if (rc != OKV_OK)
        reply_read_failure(s->call, r, "stock");
    else if (okv_counter_decode(v, len, &avail))
        ox_reply_errorf(s->call, OKV_ECORRUPT, ORD_R(NONE), "the stock of sku %s is not a counter",
                   s->sku);
    else {
        Orderkv__V1__GetStockResponse resp = ORDERKV__V1__GET_STOCK_RESPONSE__INIT;
        resp.sku = s->sku;
        resp.available = avail;
        service_reply_message(s->call, &resp.base);
    }
    free(s);
}

static void handle_get_stock(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    okv_client *c = client_or_refuse(call, n);
    Orderkv__V1__GetStockRequest *req =
        c ? decode(call, &orderkv__v1__get_stock_request__descriptor, buf, len) : NULL;
    if (!req)
        return;
    ord_key k;
    ord_error err;
    ord_error_clear(&err);
    stock_read *s = NULL;
    if (ord_key_stock(&k, req->sku, &err) != 0) {
        ox_reply_error(call, &err);
    } else if (!(s = calloc(1, sizeof *s))) {
        ox_reply_errorf(call, OKV_ENOMEM, ORD_R(NONE), "out of memory");
    } else {
        s->call = call;
        snprintf(s->sku, sizeof s->sku, "%s", req->sku);
        int rc = okv_get_async(c, "stock", k.buf, k.len, READ_TIMEOUT_MS, stock_read_done, s);
        if (rc != OKV_OK) {
            ox_reply_errorf(call, rc, ORD_R(NONE), "reading the stock: %s", okv_strerror(rc));
            free(s);
        }
    }
    orderkv__v1__get_stock_request__free_unpacked(req, NULL);
}

int service_orders_reads_register(node *n, okv_error *err);

int service_orders_reads_register(node *n, okv_error *err)
{
    int rc = rpc_server_add_method(n->rpc, "/orderkv.v1.Orders/GetOrder", handle_get_order, n,
                                   err);
    if (!rc)
        rc = rpc_server_add_method(n->rpc, "/orderkv.v1.Orders/ListOrders", handle_list_orders,
                                   n, err);
    if (!rc)
        rc = rpc_server_add_method(n->rpc, "/orderkv.v1.Orders/GetAccount", handle_get_account,
                                   n, err);
    if (!rc)
        rc = rpc_server_add_method(n->rpc, "/orderkv.v1.Orders/GetStock", handle_get_stock, n,
                                   err);
    return rc;
}

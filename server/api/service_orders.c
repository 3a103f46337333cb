/*
 * service_orders.c — orderkv.v1.Orders (proto/orders.proto): each request
 * is decoded here, told which records it reads, and run by orders_exec.c
 * with its planner from server/orders (the rules, pure). Reads (GetOrder,
 * ListOrders, GetAccount, GetStock) are linearizable reads through the
 * same internal client.
 *
 * The service runs on a cluster, where transactions span partitions; a
 * node alone answers UNIMPLEMENTED (orders_exec.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "order_idem.h"
#include "order_plan.h"
#include "orderkv.h"
#include "orders.pb-c.h"
#include "orders_exec.h"
#include "records.pb-c.h"
#include "tpc_driver.h"

#define READ_TIMEOUT_MS 10000

static void free_msg(void *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- decoding what was read --------------------------------------------------- */

/* The message at read i, unpacked (NULL if absent); *bad set when stored
 * bytes do not decode (err says which record). */
static ProtobufCMessage *unpack_read(ox *x, size_t i, const ProtobufCMessageDescriptor *d,
                                     const char *what, int *bad, ord_error *err)
{
    const ox_read *r = ox_read_at(x, i);
    if (!r)
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, r->len, r->val);
    if (!m) {
        *bad = 1;
        ord_error_set_code(err, OKV_ECORRUPT, ORD_R(NONE), "the stored %s record (%zu bytes) "
                           "does not decode", what, r->len);
    }
    return m;
}

#define UNPACK(x, i, type, desc, what, bad, err) \
    ((type *)unpack_read((x), (i), &(desc), (what), (bad), (err)))

static Orderkv__V1__IdempotencyRecord *idem_at(ox *x, size_t i, int *bad, ord_error *err)
{
    return UNPACK(x, i, Orderkv__V1__IdempotencyRecord,
                  orderkv__v1__idempotency_record__descriptor, "idempotency", bad, err);
}

static Orderkv__V1__Order *order_at(ox *x, size_t i, int *bad, ord_error *err)
{
    return UNPACK(x, i, Orderkv__V1__Order, orderkv__v1__order__descriptor, "order", bad, err);
}

static Orderkv__V1__Account *account_at(ox *x, size_t i, int *bad, ord_error *err)
{
    return UNPACK(x, i, Orderkv__V1__Account, orderkv__v1__account__descriptor, "account", bad,
                  err);
}

static uint64_t version_at(ox *x, size_t i)
{
    const ox_read *r = ox_read_at(x, i);
    return r ? r->version : 0;
}

/* ---- request plumbing ----------------------------------------------------------- */

/* Decodes a request or answers INVALID; NULL when answered. */
static ProtobufCMessage *decode(rpc_call *call, node *n, const ProtobufCMessageDescriptor *d,
                                const uint8_t *buf, size_t len)
{
    if (service_refused_by_meta(call, n))
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
    if (!m) {
        ord_error err;
        ord_error_set_code(&err, OKV_EPROTO, ORD_R(INVALID), "malformed %s", d->name);
        ox_reply_error(call, &err);
    }
    return m;
}

/* Adds a read of (table, key) to spec, built by fn's ord_key_* call. */
static ox_read *add_read(ox_spec *s, ord_table t)
{
    ox_read *r = &s->reads[s->nreads++];
    memset(r, 0, sizeof *r);
    r->table = t;
    return r;
}

/* add_read for an idempotency record (orders_exec.c reads it again before
 * a refusal is final). */
static ox_read *add_idem_read(ox_spec *s, ord_table t)
{
    ox_read *r = add_read(s, t);
    r->idem = 1;
    return r;
}

/* Answers err and frees the request: a bad id or key found before running. */
static void refuse(rpc_call *call, void *req, const ord_error *err)
{
    ox_reply_error(call, err);
    free_msg(req);
}

static int has(const char *s) { return s && s[0]; }

/* ---- CreateOrder ------------------------------------------------------------------ */

static int plan_create(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    const Orderkv__V1__CreateOrderRequest *req = rq;
    int bad = 0;
    Orderkv__V1__IdempotencyRecord *idem = has(req->idempotency_key) ? idem_at(x, 0, &bad, err)
                                                                      : NULL;
    int rc = OKV_ECORRUPT;
    if (!bad) {
        char id[64];
        ox_new_id(x, id, sizeof id);
        ord_create_in in = { req, idem, id, ox_now_ms() };
        rc = ord_plan_create(out, &in, err);
    }
    free_msg(idem);
    return rc;
}

static void handle_create(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__CreateOrderRequest *req =
        (void *)decode(call, n, &orderkv__v1__create_order_request__descriptor, buf, len);
    if (!req)
        return;
    ox_spec s = { "create order", req, free_msg, plan_create, 0, 0, { { 0 } } };
    ord_error err;
    ord_error_clear(&err);
    if (has(req->idempotency_key) &&
        ord_key_idem(&add_idem_read(&s, ORD_TABLE_ORDERS)->key, ORD_IDEM_CREATE, req->customer_id,
                     req->idempotency_key, &err) != 0) {
        refuse(call, req, &err);
        return;
    }
    ox_start(n, call, &s);
}

/* ---- PayOrder, RefundOrder, CancelOrder, ShipOrder, CompleteOrder ------------------ */

/* Reads 0: the order; then what each adds. */
static int order_read(ox_spec *s, const char *customer, const char *order_id, ord_error *err)
{
    return ord_key_order(&add_read(s, ORD_TABLE_ORDERS)->key, customer, order_id, err);
}

static int plan_pay(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    const Orderkv__V1__PayOrderRequest *req = rq;
    int bad = 0;
    size_t i = 1;
    Orderkv__V1__Order *order = order_at(x, 0, &bad, err);
    Orderkv__V1__IdempotencyRecord *idem =
        has(req->idempotency_key) ? idem_at(x, i++, &bad, err) : NULL;
    Orderkv__V1__Account *acct = has(req->account_id) ? account_at(x, i++, &bad, err) : NULL;
    int rc = OKV_ECORRUPT;
    if (!bad) {
        char id[64];
        ox_new_id(x, id, sizeof id);
        ord_pay_in in = { req, order, version_at(x, 0), acct, idem, id, ox_now_ms() };
        rc = ord_plan_pay(out, &in, err);
    }
    free_msg(order);
    free_msg(idem);
    free_msg(acct);
    return rc;
}

static void handle_pay(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__PayOrderRequest *req =
        (void *)decode(call, n, &orderkv__v1__pay_order_request__descriptor, buf, len);
    if (!req)
        return;
    ox_spec s = { "pay order", req, free_msg, plan_pay, 0, 0, { { 0 } } };
    ord_error err;
    ord_error_clear(&err);
    if (order_read(&s, req->customer_id, req->order_id, &err) != 0 ||
        (has(req->idempotency_key) &&
         ord_key_idem(&add_idem_read(&s, ORD_TABLE_ORDERS)->key, ORD_IDEM_PAY, req->customer_id,
                      req->idempotency_key, &err) != 0) ||
        (has(req->account_id) &&
         ord_key_account(&add_read(&s, ORD_TABLE_ACCOUNTS)->key, req->account_id, &err) != 0)) {
        refuse(call, req, &err);
        return;
    }
    ox_start(n, call, &s);
}

static int plan_refund(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    const Orderkv__V1__RefundOrderRequest *req = rq;
    int bad = 0;
    Orderkv__V1__Order *order = order_at(x, 0, &bad, err);
    Orderkv__V1__IdempotencyRecord *idem =
        has(req->idempotency_key) ? idem_at(x, 1, &bad, err) : NULL;
    int rc = OKV_ECORRUPT;
    if (!bad) {
        char id[64];
        ox_new_id(x, id, sizeof id);
        ord_refund_in in = { req, order, version_at(x, 0), idem, id, ox_now_ms() };
        rc = ord_plan_refund(out, &in, err);
    }
    free_msg(order);
    free_msg(idem);
    return rc;
}

static void handle_refund(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__RefundOrderRequest *req =
        (void *)decode(call, n, &orderkv__v1__refund_order_request__descriptor, buf, len);
    if (!req)
        return;
    ox_spec s = { "refund order", req, free_msg, plan_refund, 0, 0, { { 0 } } };
    ord_error err;
    ord_error_clear(&err);
    if (order_read(&s, req->customer_id, req->order_id, &err) != 0 ||
        (has(req->idempotency_key) &&
         ord_key_idem(&add_idem_read(&s, ORD_TABLE_ORDERS)->key, ORD_IDEM_REFUND, req->customer_id,
                      req->idempotency_key, &err) != 0)) {
        refuse(call, req, &err);
        return;
    }
    ox_start(n, call, &s);
}

static int plan_cancel(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    const Orderkv__V1__CancelOrderRequest *req = rq;
    int bad = 0;
    Orderkv__V1__Order *order = order_at(x, 0, &bad, err);
    int rc = OKV_ECORRUPT;
    if (!bad) {
        char id[64];
        ox_new_id(x, id, sizeof id);
        ord_cancel_in in = { req, order, version_at(x, 0), id, ox_now_ms() };
        rc = ord_plan_cancel(out, &in, err);
    }
    free_msg(order);
    return rc;
}

static void handle_cancel(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__CancelOrderRequest *req =
        (void *)decode(call, n, &orderkv__v1__cancel_order_request__descriptor, buf, len);
    if (!req)
        return;
    ox_spec s = { "cancel order", req, free_msg, plan_cancel, 1, 0, { { 0 } } };
    ord_error err;
    ord_error_clear(&err);
    if (order_read(&s, req->customer_id, req->order_id, &err) != 0) {
        refuse(call, req, &err);
        return;
    }
    ox_start(n, call, &s);
}

/* Ship and complete share a request shape: customer and order id. */
typedef struct step_req {
    ProtobufCMessage *msg;
    const char *customer_id;
    const char *order_id;
    int ship;
} step_req;

static void step_free(void *p)
{
    step_req *r = p;
    free_msg(r->msg);
    free(r);
}

static int plan_step(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    const step_req *req = rq;
    int bad = 0;
    Orderkv__V1__Order *order = order_at(x, 0, &bad, err);
    int rc = OKV_ECORRUPT;
    if (!bad) {
        ord_step_in in = { req->customer_id, req->order_id, order, version_at(x, 0),
                           ox_now_ms() };
        rc = req->ship ? ord_plan_ship(out, &in, err) : ord_plan_complete(out, &in, err);
    }
    free_msg(order);
    return rc;
}

static void handle_step(rpc_call *call, node *n, ProtobufCMessage *msg, const char *customer,
                        const char *order_id, int ship)
{
    step_req *r = calloc(1, sizeof *r);
    if (!r) {
        free_msg(msg);
        rpc_call_reply(call, OKV_ENOMEM, "out of memory", NULL, 0);
        return;
    }
    r->msg = msg;
    r->customer_id = customer;
    r->order_id = order_id;
    r->ship = ship;
    ox_spec s = { ship ? "ship order" : "complete order", r, step_free, plan_step, 1, 0,
                  { { 0 } } };
    ord_error err;
    ord_error_clear(&err);
    if (order_read(&s, customer, order_id, &err) != 0) {
        ox_reply_error(call, &err);
        step_free(r);
        return;
    }
    ox_start(n, call, &s);
}

static void handle_ship(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    Orderkv__V1__ShipOrderRequest *req =
        (void *)decode(call, arg, &orderkv__v1__ship_order_request__descriptor, buf, len);
    if (req)
        handle_step(call, arg, &req->base, req->customer_id, req->order_id, 1);
}

static void handle_complete(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    Orderkv__V1__CompleteOrderRequest *req =
        (void *)decode(call, arg, &orderkv__v1__complete_order_request__descriptor, buf, len);
    if (req)
        handle_step(call, arg, &req->base, req->customer_id, req->order_id, 0);
}

/* ---- accounts ----------------------------------------------------------------------- */

static int plan_create_account(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    int bad = 0;
    Orderkv__V1__Account *acct = account_at(x, 0, &bad, err);
    int rc = OKV_ECORRUPT;
    if (!bad) {
        ord_account_in in = { rq, acct, ox_now_ms() };
        rc = ord_plan_create_account(out, &in, err);
    }
    free_msg(acct);
    return rc;
}

static void handle_create_account(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__CreateAccountRequest *req =
        (void *)decode(call, n, &orderkv__v1__create_account_request__descriptor, buf, len);
    if (!req)
        return;
    ox_spec s = { "create account", req, free_msg, plan_create_account, 1, 0, { { 0 } } };
    ord_error err;
    ord_error_clear(&err);
    if (ord_key_account(&add_read(&s, ORD_TABLE_ACCOUNTS)->key, req->account_id, &err) != 0) {
        refuse(call, req, &err);
        return;
    }
    ox_start(n, call, &s);
}

static int plan_deposit(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    const Orderkv__V1__DepositRequest *req = rq;
    int bad = 0;
    Orderkv__V1__Account *acct = account_at(x, 0, &bad, err);
    Orderkv__V1__IdempotencyRecord *idem =
        has(req->idempotency_key) ? idem_at(x, 1, &bad, err) : NULL;
    int rc = OKV_ECORRUPT;
    if (!bad) {
        ord_deposit_in in = { req, acct, idem, ox_now_ms() };
        rc = ord_plan_deposit(out, &in, err);
    }
    free_msg(acct);
    free_msg(idem);
    return rc;
}

static void handle_deposit(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__DepositRequest *req =
        (void *)decode(call, n, &orderkv__v1__deposit_request__descriptor, buf, len);
    if (!req)
        return;
    ox_spec s = { "deposit", req, free_msg, plan_deposit, 0, 0, { { 0 } } };
    ord_error err;
    ord_error_clear(&err);
    if (ord_key_account(&add_read(&s, ORD_TABLE_ACCOUNTS)->key, req->account_id, &err) != 0 ||
        (has(req->idempotency_key) &&
         ord_key_idem(&add_idem_read(&s, ORD_TABLE_ACCOUNTS)->key, ORD_IDEM_DEPOSIT, req->account_id,
                      req->idempotency_key, &err) != 0)) {
        refuse(call, req, &err);
        return;
    }
    ox_start(n, call, &s);
}

/* ---- stock ------------------------------------------------------------------------ */

static int plan_set_stock(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    (void)x;
    return ord_plan_set_stock(out, rq, err);
}

static void handle_set_stock(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__SetStockRequest *req =
        (void *)decode(call, n, &orderkv__v1__set_stock_request__descriptor, buf, len);
    if (!req)
        return;
    ox_spec s = { "set stock", req, free_msg, plan_set_stock, 1, 0, { { 0 } } };
    ox_start(n, call, &s);
}

static int plan_reserve(ox *x, void *rq, ord_plan **out, ord_error *err)
{
    const Orderkv__V1__ReserveStockRequest *req = rq;
    int bad = 0;
    Orderkv__V1__IdempotencyRecord *idem =
        has(req->idempotency_key) ? idem_at(x, 0, &bad, err) : NULL;
    int rc = OKV_ECORRUPT;
    if (!bad) {
        char id[64];
        ox_new_id(x, id, sizeof id);
        ord_reserve_in in = { req, idem, id, ox_now_ms() };
        rc = ord_plan_reserve(out, &in, err);
    }
    free_msg(idem);
    return rc;
}

static void handle_reserve(rpc_call *call, const uint8_t *buf, size_t len, void *arg)
{
    node *n = arg;
    Orderkv__V1__ReserveStockRequest *req =
        (void *)decode(call, n, &orderkv__v1__reserve_stock_request__descriptor, buf, len);
    if (!req)
        return;
    ox_spec s = { "reserve stock", req, free_msg, plan_reserve, 0, 0, { { 0 } } };
    ord_error err;
    ord_error_clear(&err);
    if (has(req->idempotency_key) &&
        ord_key_idem(&add_idem_read(&s, ORD_TABLE_STOCK)->key, ORD_IDEM_RESERVE, req->sku,
                     req->idempotency_key, &err) != 0) {
        refuse(call, req, &err);
        return;
    }
    ox_start(n, call, &s);
}

/* ---- registration ------------------------------------------------------------------- */

int service_orders_reads_register(node *n, okv_error *err);

int service_orders_register(node *n, okv_error *err)
{
    static const struct {
        const char *name;
        rpc_handler fn;
    } methods[] = {
        { "CreateOrder", handle_create },     { "PayOrder", handle_pay },
        { "RefundOrder", handle_refund },     { "CancelOrder", handle_cancel },
        { "ShipOrder", handle_ship },         { "CompleteOrder", handle_complete },
        { "CreateAccount", handle_create_account }, { "Deposit", handle_deposit },
        { "SetStock", handle_set_stock },     { "ReserveStock", handle_reserve },
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        char path[96];
        snprintf(path, sizeof path, "/orderkv.v1.Orders/%s", methods[i].name);
        int rc = rpc_server_add_method(n->rpc, path, methods[i].fn, n, err);
        if (rc)
            return rc;
    }
    return service_orders_reads_register(n, err);
}

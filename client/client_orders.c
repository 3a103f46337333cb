/*
 * client_orders.c — the orders service (orderkv.v1.Orders) in liborderkv
 * (orderkv_orders.h): one table row per RPC, and every call an op of the
 * asynchronous core with client_call.c's rules, except for two things the
 * Orders calls differ in:
 *
 *  1. They carry no client id and request id, so the cluster cannot
 *     deduplicate a resend the way it does KV writes. A write that may have
 *     arrived is resent only when it carries an idempotency key (the server
 *     then answers the first request's stored response); otherwise the
 *     caller gets OKV_EUNKNOWN. A refusal the server states (NOT_LEADER,
 *     UNAVAILABLE with an orderkv Error) says nothing applied, and is
 *     retried as for any write.
 *  2. Any node serves them (the node's internal client runs the
 *     transaction), so routing to the leader of the first record's
 *     partition only saves a hop, and a success teaches nothing about
 *     leaders (op->orders_call).
 *
 * The rule outcomes come in the response body: Error.code (mapped to
 * OKV_EILLEGAL, OKV_EFUNDS, ... by client_interpret, never from the gRPC
 * status alone) and the OrdersError reason in field 2, which the
 * synchronous calls leave in the thread's last error (okv_orders_reason)
 * and the asynchronous ones in the op's kept refusal response.
 */
#include <stdlib.h>
#include <string.h>

#include "client_result.h"
#include "order_money.h"
#include "orderkv_orders.h"

/* Where a call routes: the partition key is the request's field 1 (the
 * customer, account or sku id) in the table of the record it changes or
 * reads first. */
enum route_by { BY_CUSTOMER, BY_ACCOUNT, BY_SKU };

typedef struct orders_rpc {
    enum client_method m;
    const ProtobufCMessageDescriptor *req;
    const ProtobufCMessageDescriptor *resp;
    int is_write;
    enum route_by route;
    unsigned idem_field;            /* the request's idempotency_key field; 0: none */
} orders_rpc;

#define RPC(m, req, resp, w, by, idem) \
    { m, &orderkv__v1__##req##__descriptor, &orderkv__v1__##resp##__descriptor, w, by, idem }

/* Indexed by method - M_ORDERS_FIRST. The idempotency key field numbers are
 * proto/orders.proto's. */
static const orders_rpc RPCS[] = {
    RPC(M_ORDER_CREATE, create_order_request, create_order_response, 1, BY_CUSTOMER, 6),
    RPC(M_ORDER_GET, get_order_request, get_order_response, 0, BY_CUSTOMER, 0),
    RPC(M_ORDER_LIST, list_orders_request, list_orders_response, 0, BY_CUSTOMER, 0),
    RPC(M_ORDER_PAY, pay_order_request, pay_order_response, 1, BY_CUSTOMER, 7),
    RPC(M_ORDER_CANCEL, cancel_order_request, cancel_order_response, 1, BY_CUSTOMER, 0),
    RPC(M_ORDER_SHIP, ship_order_request, ship_order_response, 1, BY_CUSTOMER, 0),
    RPC(M_ORDER_COMPLETE, complete_order_request, complete_order_response, 1, BY_CUSTOMER, 0),
    RPC(M_ORDER_REFUND, refund_order_request, refund_order_response, 1, BY_CUSTOMER, 5),
    RPC(M_ACCOUNT_CREATE, create_account_request, create_account_response, 1, BY_ACCOUNT, 0),
    RPC(M_ACCOUNT_GET, get_account_request, get_account_response, 0, BY_ACCOUNT, 0),
    RPC(M_ACCOUNT_DEPOSIT, deposit_request, deposit_response, 1, BY_ACCOUNT, 3),
    RPC(M_STOCK_SET, set_stock_request, set_stock_response, 1, BY_SKU, 0),
    RPC(M_STOCK_GET, get_stock_request, get_stock_response, 0, BY_SKU, 0),
    RPC(M_STOCK_RESERVE, reserve_stock_request, reserve_stock_response, 1, BY_SKU, 4),
};

_Static_assert(sizeof RPCS / sizeof RPCS[0] == M_COUNT - M_ORDERS_FIRST,
               "one row per Orders method");

static const orders_rpc *rpc_of(enum client_method m)
{
    if (m < M_ORDERS_FIRST || m >= M_COUNT)
        return NULL;
    return &RPCS[m - M_ORDERS_FIRST];
}

/* A string field of msg by number ("" when unset or not a string). */
static const char *string_field(const ProtobufCMessage *msg, unsigned number)
{
    const ProtobufCFieldDescriptor *f =
        number ? protobuf_c_message_descriptor_get_field(msg->descriptor, number) : NULL;
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return "";
    const char *s;
    memcpy(&s, (const char *)msg + f->offset, sizeof s);
    return s ? s : "";
}

/* The OrdersError of an Orders response: field 2 of every one of them. */
static int response_reason(const ProtobufCMessage *msg)
{
    if (!msg)
        return 0;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(msg->descriptor, 2);
    if (!f || f->type != PROTOBUF_C_TYPE_ENUM)
        return 0;
    int reason;
    memcpy(&reason, (const char *)msg + f->offset, sizeof reason);
    return reason;
}

/* The op for one call: the request checked, packed and routed. NULL with
 * *rc (recorded with client_fail) on a bad argument or no memory. */
static client_op *orders_op(okv_client *c, enum client_method m, const ProtobufCMessage *req,
                            int timeout_ms, int *rc)
{
    const orders_rpc *rpc = rpc_of(m);
    if (!req || !rpc || req->descriptor != rpc->req) {
        *rc = client_fail(c, OKV_EINVAL, "%s needs a %s request (got %s)",
                          client_method_path(m), rpc ? rpc->req->name : "?",
                          req && req->descriptor ? req->descriptor->name : "none");
        return NULL;
    }
    /* The partition key is the id up to its first '/'; ids hold no '/'
     * (docs/orders.md "Ids"), and an empty id is refused by the server, so
     * such a call is sent unrouted and gets the server's message. */
    const char *id = string_field(req, 1);
    const char *table = rpc->route == BY_CUSTOMER ? "orders"
                        : rpc->route == BY_ACCOUNT ? "accounts" : "stock";
    size_t id_len = strlen(id);
    if (id_len > OKV_MAX_KEY_LEN)
        id_len = OKV_MAX_KEY_LEN;
    client_route_key rk = { table, id, id_len, -1 };
    /* is_write 0 at creation: an Orders write takes no request id. */
    client_op *op = client_op_new(c, m, rpc->resp, 0, timeout_ms, id_len ? &rk : NULL);
    if (!op) {
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    op->is_write = rpc->is_write;
    op->orders_call = 1;
    op->resend_safe = string_field(req, rpc->idem_field)[0] != '\0';
    if (client_op_pack(op, req) != OKV_OK) {
        client_op_free(op);
        *rc = client_fail(c, OKV_ENOMEM, "out of memory");
        return NULL;
    }
    return op;
}

static int orders_call(okv_client *c, enum client_method m, const ProtobufCMessage *req,
                       ProtobufCMessage **out, int timeout_ms)
{
    if (out)
        *out = NULL;
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = orders_op(c, m, req, timeout_ms, &rc);
    if (!op)
        return rc;
    rc = client_op_wait(c, op);
    if (rc == OKV_OK && out) {
        *out = op->resp;
        op->resp = NULL;
    } else if (rc != OKV_OK) {
        /* op->resp, if any, is the refusal's body: it names the rule. */
        client_fail_reason(c, response_reason(op->resp));
    }
    client_op_free(op);
    return rc;
}

static int orders_call_async(okv_client *c, enum client_method m, const ProtobufCMessage *req,
                             int timeout_ms, okv_callback cb, void *arg)
{
    if (!c)
        return OKV_EINVAL;
    int rc;
    client_op *op = orders_op(c, m, req, timeout_ms, &rc);
    return op ? client_op_submit_async(c, op, cb, arg) : rc;
}

/* The two public forms of one RPC. The response travels as a
 * ProtobufCMessage and is converted once, here, to the caller's type. */
#define ORDERS_API(fn, M, Req, Resp)                                                        \
    int fn(okv_client *c, const Req *req, Resp **out, int timeout_ms)                       \
    {                                                                                       \
        ProtobufCMessage *m = NULL;                                                         \
        int rc = orders_call(c, M, (const ProtobufCMessage *)req, out ? &m : NULL,          \
                             timeout_ms);                                                   \
        if (out)                                                                            \
            *out = (Resp *)m;                                                               \
        return rc;                                                                          \
    }                                                                                       \
    int fn##_async(okv_client *c, const Req *req, int timeout_ms, okv_callback cb,          \
                   void *arg)                                                               \
    {                                                                                       \
        return orders_call_async(c, M, (const ProtobufCMessage *)req, timeout_ms, cb, arg); \
    }

ORDERS_API(okv_order_create, M_ORDER_CREATE, Orderkv__V1__CreateOrderRequest,
           Orderkv__V1__CreateOrderResponse)
ORDERS_API(okv_order_get, M_ORDER_GET, Orderkv__V1__GetOrderRequest,
           Orderkv__V1__GetOrderResponse)
ORDERS_API(okv_order_list, M_ORDER_LIST, Orderkv__V1__ListOrdersRequest,
           Orderkv__V1__ListOrdersResponse)
ORDERS_API(okv_order_pay, M_ORDER_PAY, Orderkv__V1__PayOrderRequest,
           Orderkv__V1__PayOrderResponse)
ORDERS_API(okv_order_cancel, M_ORDER_CANCEL, Orderkv__V1__CancelOrderRequest,
           Orderkv__V1__CancelOrderResponse)
ORDERS_API(okv_order_ship, M_ORDER_SHIP, Orderkv__V1__ShipOrderRequest,
           Orderkv__V1__ShipOrderResponse)
ORDERS_API(okv_order_complete, M_ORDER_COMPLETE, Orderkv__V1__CompleteOrderRequest,
           Orderkv__V1__CompleteOrderResponse)
ORDERS_API(okv_order_refund, M_ORDER_REFUND, Orderkv__V1__RefundOrderRequest,
           Orderkv__V1__RefundOrderResponse)
ORDERS_API(okv_account_create, M_ACCOUNT_CREATE, Orderkv__V1__CreateAccountRequest,
           Orderkv__V1__CreateAccountResponse)
ORDERS_API(okv_account_get, M_ACCOUNT_GET, Orderkv__V1__GetAccountRequest,
           Orderkv__V1__GetAccountResponse)
ORDERS_API(okv_account_deposit, M_ACCOUNT_DEPOSIT, Orderkv__V1__DepositRequest,
           Orderkv__V1__DepositResponse)
ORDERS_API(okv_stock_set, M_STOCK_SET, Orderkv__V1__SetStockRequest,
           Orderkv__V1__SetStockResponse)
ORDERS_API(okv_stock_get, M_STOCK_GET, Orderkv__V1__GetStockRequest,
           Orderkv__V1__GetStockResponse)
ORDERS_API(okv_stock_reserve, M_STOCK_RESERVE, Orderkv__V1__ReserveStockRequest,
           Orderkv__V1__ReserveStockResponse)

void okv_orders_response_free(void *resp)
{
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
}

const char *okv_orders_reason_name(int reason)
{
    return ord_reason_name(reason);
}

/* ---- results of the asynchronous forms ---------------------------------------------- */

static const client_op *orders_op_of(const okv_result *r)
{
    const client_op *op = client_result_op(r);
    return op && rpc_of(op->m) ? op : NULL;
}

const void *okv_result_orders_response(const okv_result *r)
{
    const client_op *op = orders_op_of(r);
    return op && okv_result_code(r) == OKV_OK ? op->resp : NULL;
}

void *okv_result_take_orders_response(const okv_result *r)
{
    return orders_op_of(r) ? client_result_take_resp(r) : NULL;
}

int okv_result_orders_reason(const okv_result *r)
{
    const client_op *op = orders_op_of(r);
    return op && okv_result_code(r) != OKV_OK ? response_reason(op->resp) : 0;
}

/* ---- money: server/orders/order_money.c, the one place its rules live -------------- */

int okv_currency_exponent(const char *currency)
{
    return ord_currency_exponent(currency);
}

size_t okv_money_format(char *buf, size_t cap, int64_t minor, const char *currency)
{
    if (!buf)
        return 0;
    return ord_money_format(buf, cap, minor, currency);
}

int okv_money_parse(const char *text, const char *currency, int64_t *out)
{
    if (!out)
        return client_fail(NULL, OKV_EINVAL, "okv_money_parse needs somewhere to put the amount");
    ord_error err;
    ord_error_clear(&err);
    int64_t v = 0;
    if (ord_money_parse(text, currency, &v, &err) != 0)
        return client_fail(NULL, err.code ? err.code : OKV_EINVAL, "%s", err.msg);
    *out = v;
    return OKV_OK;
}

/*
 * order_plan_create.c — CreateOrder: the order, its total, and the stock its
 * items reserve, in one transaction.
 *
 * The order and its idempotency record share the customer's partition; each
 * reserving item adds its sku's stock partition, where "take q if at least q
 * are left" is an add with floor 0 evaluated at apply. If any sku is short,
 * the whole transaction fails and no order exists (SOLD_OUT).
 */
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "order_money.h"
#include "order_plan_int.h"
#include "order_schema.h"

/* Item checks and the overflow-checked total. */
static int check_items(const Orderkv__V1__CreateOrderRequest *r, int64_t *total, ord_error *err)
{
    if (r->n_items == 0)
        return ord_error_set(err, ORD_R(INVALID), "an order needs at least one item");
    if (r->n_items > ORD_MAX_ITEMS)
        return ord_error_set(err, ORD_R(INVALID), "an order has at most %u items; this one has %zu",
                             ORD_MAX_ITEMS, r->n_items);
    int64_t sum = 0;
    for (size_t i = 0; i < r->n_items; i++) {
        const Orderkv__V1__CreateOrderItem *it = r->items[i];
        int rc = ord_id_check("sku", it->sku, err);
        if (rc)
            return rc;
        if (it->quantity == 0)
            return ord_error_set(err, ORD_R(INVALID), "item %zu (sku %s): quantity must be >= 1",
                                 i, it->sku);
        if (it->unit_price < 0)
            return ord_error_set(err, ORD_R(INVALID), "item %zu (sku %s): unit price is negative",
                                 i, it->sku);
        /* One stock key per sku per transaction, and one reservation per
         * (sku, order): a sku twice would need two. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->items[j]->sku, it->sku) == 0)
                return ord_error_set(err, ORD_R(INVALID),
                                     "sku %s appears in items %zu and %zu; list it once with "
                                     "the summed quantity", it->sku, j, i);
        int64_t line;
        if (__builtin_mul_overflow((int64_t)it->quantity, it->unit_price, &line) ||
            __builtin_add_overflow(sum, line, &sum))
            return ord_error_set(err, ORD_R(INVALID),
                                 "the order's total exceeds the int64 range (at item %zu)", i);
    }
    *total = sum;
    return 0;
}

static int check_request(const ord_create_in *in, int64_t *total, ord_error *err)
{
    const Orderkv__V1__CreateOrderRequest *r = in->req;
    int rc = ord_id_check("customer id", r->customer_id, err);
    if (rc == 0 && r->merchant_id && *r->merchant_id)
        rc = ord_id_check("merchant id", r->merchant_id, err);
    if (rc == 0)
        rc = ord_currency_check(r->currency, err);
    if (rc == 0)
        rc = check_items(r, total, err);
    if (rc == 0 && r->idempotency_key && *r->idempotency_key)
        rc = ord_idem_key_check(r->idempotency_key, err);
    if (rc == 0)
        rc = ord_id_check("order id", in->order_id, err);
    return rc;
}

static int reserves(const Orderkv__V1__CreateOrderRequest *r, size_t i)
{
    return r->reserve_stock || r->items[i]->reserve_stock;
}

int ord_plan_create(ord_plan **out, const ord_create_in *in, ord_error *err)
{
    const Orderkv__V1__CreateOrderRequest *r = in->req;
    *out = NULL;
    int64_t total = 0;
    int rc = check_request(in, &total, err);
    if (rc)
        return rc;
    int has_key = r->idempotency_key && *r->idempotency_key;
    ord_hash128 h = { 0, 0 };
    ord_key idem_key, order_key;
    if (has_key) {
        h = ord_idem_hash_create(r);
        rc = plan_try_replay(out, in->idem, ORD_IDEM_CREATE, h, err);
        if (rc)
            return rc > 0 ? 0 : rc;
        ord_key_idem(&idem_key, ORD_IDEM_CREATE, r->customer_id, r->idempotency_key, NULL);
    }
    ord_key_order(&order_key, r->customer_id, in->order_id, NULL);

    /* The order record; its items borrow the request's strings. */
    size_t n = r->n_items;
    Orderkv__V1__OrderItem *items = calloc(n, sizeof *items);
    Orderkv__V1__OrderItem **item_ptrs = calloc(n, sizeof *item_ptrs);
    ord_plan *p = plan_new();
    if (!items || !item_ptrs || !p) {
        free(items);
        free(item_ptrs);
        return plan_finish(out, NULL, err);
    }
    for (size_t i = 0; i < n; i++) {
        orderkv__v1__order_item__init(&items[i]);
        items[i].sku = r->items[i]->sku;
        items[i].quantity = r->items[i]->quantity;
        items[i].unit_price = r->items[i]->unit_price;
        /* Named after the order: unique per (sku, order), since a sku
         * appears once per order. */
        items[i].reservation_id = reserves(r, i) ? (char *)in->order_id : (char *)"";
        item_ptrs[i] = &items[i];
    }
    Orderkv__V1__Order o;
    orderkv__v1__order__init(&o);
    o.order_id = (char *)in->order_id;
    o.customer_id = r->customer_id;
    o.merchant_id = r->merchant_id;
    o.n_items = n;
    o.items = item_ptrs;
    o.total = total;
    o.currency = r->currency;
    o.status = ORDERKV__V1__ORDER_STATUS__CREATED;
    o.created_at_ms = in->now_ms;
    o.updated_at_ms = in->now_ms;
    o.schema_version = ORD_SCHEMA_VERSION;
    memcpy(p->currency, r->currency, 4);

    Orderkv__V1__CreateOrderResponse resp;
    orderkv__v1__create_order_response__init(&resp);
    resp.order = &o;
    plan_respond(p, &resp.base);

    /* Conditions: nothing is there yet (the ids are new; a clash means read
     * and plan again with new ids). Writes: the order first, so its
     * partition coordinates. */
    plan_absent(p, ORD_TABLE_ORDERS, &order_key);
    plan_put_msg(p, ORD_TABLE_ORDERS, &order_key, &o.base);
    if (has_key)
        plan_idem(p, &idem_key, ORD_IDEM_CREATE, h, in->now_ms);
    for (size_t i = 0; i < n; i++) {
        if (!reserves(r, i))
            continue;
        ord_key stock_key, res_key;
        ord_key_stock(&stock_key, items[i].sku, NULL);
        ord_key_reservation(&res_key, items[i].sku, in->order_id, NULL);
        Orderkv__V1__Reservation res;
        orderkv__v1__reservation__init(&res);
        res.reservation_id = (char *)in->order_id;
        res.sku = items[i].sku;
        res.order_id = (char *)in->order_id;
        res.customer_id = r->customer_id;
        res.quantity = items[i].quantity;
        res.status = ORDERKV__V1__RESERVATION_STATUS__RESERVATION_ACTIVE;
        res.created_at_ms = in->now_ms;
        res.schema_version = ORD_SCHEMA_VERSION;
        plan_absent(p, ORD_TABLE_STOCK, &res_key);
        /* Planted bug orders.reserve.no_floor, as in ord_plan_reserve. */
        plan_add(p, ORD_TABLE_STOCK, &stock_key, -(int64_t)items[i].quantity,
                 !OKV_FAILPOINT("orders.reserve.no_floor"), 0, ORD_FAIL_SOLD_OUT);
        plan_put_msg(p, ORD_TABLE_STOCK, &res_key, &res.base);
    }
    free(items);
    free(item_ptrs);
    return plan_finish(out, p, err);
}

/*
 * order_plan_stock.c — stock: setting a sku's units, and reserving some.
 *
 * A reservation is the flash-sale path: "take q if at least q are left" is
 * `add -q floor 0` on the sku's counter, and the Reservation record sits
 * beside it ("<sku>/r/<id>", same partition), so the whole request is one
 * Raft entry evaluated at apply: thousands share a batch, none oversells,
 * and a floor failure is SOLD_OUT, a result, not a retry.
 */
#include "failpoint.h"
#include "order_plan_int.h"
#include "order_schema.h"

static int has(const char *s) { return s && *s; }

int ord_plan_set_stock(ord_plan **out, const Orderkv__V1__SetStockRequest *req, ord_error *err)
{
    *out = NULL;
    int rc = ord_id_check("sku", req->sku, err);
    if (rc)
        return rc;
    if (req->available < 0)
        return ord_error_set(err, ORD_R(INVALID), "available must be >= 0");
    ord_plan *p = plan_new();
    if (!p)
        return plan_finish(out, NULL, err);
    Orderkv__V1__SetStockResponse resp;
    orderkv__v1__set_stock_response__init(&resp);
    resp.sku = req->sku;
    resp.available = req->available;
    plan_respond(p, &resp.base);
    ord_key k;
    ord_key_stock(&k, req->sku, NULL);
    plan_put_counter(p, ORD_TABLE_STOCK, &k, req->available);
    return plan_finish(out, p, err);
}

int ord_plan_reserve(ord_plan **out, const ord_reserve_in *in, ord_error *err)
{
    const Orderkv__V1__ReserveStockRequest *r = in->req;
    *out = NULL;
    int rc = ord_id_check("sku", r->sku, err);
    if (rc == 0 && has(r->customer_id))
        rc = ord_id_check("customer id", r->customer_id, err);
    if (rc == 0 && has(r->idempotency_key))
        rc = ord_idem_key_check(r->idempotency_key, err);
    if (rc == 0 && r->quantity == 0)
        return ord_error_set(err, ORD_R(INVALID), "quantity must be >= 1");
    if (rc == 0)
        rc = ord_id_check("reservation id", in->reservation_id, err);
    if (rc)
        return rc;
    int has_key = has(r->idempotency_key);
    ord_hash128 h = { 0, 0 };
    if (has_key) {
        h = ord_idem_hash_reserve(r);
        rc = plan_try_replay(out, in->idem, ORD_IDEM_RESERVE, h, err);
        if (rc)
            return rc > 0 ? 0 : rc;
    }
    Orderkv__V1__Reservation res;
    orderkv__v1__reservation__init(&res);
    res.reservation_id = (char *)in->reservation_id;
    res.sku = r->sku;
    res.customer_id = has(r->customer_id) ? r->customer_id : (char *)"";
    res.quantity = r->quantity;
    res.status = ORDERKV__V1__RESERVATION_STATUS__RESERVATION_ACTIVE;
    res.created_at_ms = in->now_ms;
    res.schema_version = ORD_SCHEMA_VERSION;

    ord_plan *p = plan_new();
    if (!p)
        return plan_finish(out, NULL, err);
    Orderkv__V1__ReserveStockResponse resp;
    orderkv__v1__reserve_stock_response__init(&resp);
    resp.reservation = &res;
    plan_respond(p, &resp.base);
    ord_key stock, rk, idem;
    ord_key_stock(&stock, r->sku, NULL);
    ord_key_reservation(&rk, r->sku, in->reservation_id, NULL);
    if (has_key) {
        ord_key_idem(&idem, ORD_IDEM_RESERVE, r->sku, r->idempotency_key, NULL);
        plan_idem(p, &idem, ORD_IDEM_RESERVE, h, in->now_ms);
    }
    plan_absent(p, ORD_TABLE_STOCK, &rk);
    /* Planted bug orders.reserve.no_floor (jepsen/tests/planted.sh): the
     * take without its floor, so a sold-out sku goes below 0: oversell. */
    plan_add(p, ORD_TABLE_STOCK, &stock, -(int64_t)r->quantity,
             !OKV_FAILPOINT("orders.reserve.no_floor"), 0, ORD_FAIL_SOLD_OUT);
    plan_put_msg(p, ORD_TABLE_STOCK, &rk, &res.base);
    return plan_finish(out, p, err);
}

/*
 * order_plan_step.c — fulfilment steps that move no money: ship and
 * complete. Each is the order rewritten under a version condition; asking
 * for the status the order already has answers it unchanged (S4), so a
 * warehouse system may resend freely.
 */
#include "order_plan_int.h"
#include "order_schema.h"
#include "order_status.h"

static int plan_step(ord_plan **out, const ord_step_in *in, int to, ord_error *err)
{
    *out = NULL;
    int rc = ord_id_check("customer id", in->customer_id, err);
    if (rc == 0)
        rc = ord_id_check("order id", in->order_id, err);
    if (rc == 0)
        rc = plan_order_found(in->order, in->customer_id, in->order_id, err);
    if (rc)
        return rc;
    const Orderkv__V1__Order *o = in->order;
    Orderkv__V1__Order after = *o;
    /* Both responses are {Error error = 1; OrdersError reason = 2; Order order = 3}. */
    Orderkv__V1__ShipOrderResponse ship;
    Orderkv__V1__CompleteOrderResponse done;
    orderkv__v1__ship_order_response__init(&ship);
    orderkv__v1__complete_order_response__init(&done);
    ProtobufCMessage *resp = to == ORD_SHIPPED ? &ship.base : &done.base;
    if ((int)o->status == to) {
        ship.order = done.order = (Orderkv__V1__Order *)o;
        return plan_answer(out, resp, err);
    }
    rc = ord_transition_check(o->order_id, o->status, to, err);
    if (rc)
        return rc;
    after.status = (Orderkv__V1__OrderStatus)to;
    if (to == ORD_SHIPPED)
        after.shipped_at_ms = in->now_ms;
    else
        after.completed_at_ms = in->now_ms;
    after.updated_at_ms = in->now_ms;
    after.schema_version = ORD_SCHEMA_VERSION;
    ship.order = done.order = &after;

    ord_plan *p = plan_new();
    if (!p)
        return plan_finish(out, NULL, err);
    plan_respond(p, resp);
    ord_key k;
    ord_key_order(&k, in->customer_id, in->order_id, NULL);
    plan_version_is(p, ORD_TABLE_ORDERS, &k, in->order_version);
    plan_put_msg(p, ORD_TABLE_ORDERS, &k, &after.base);
    return plan_finish(out, p, err);
}

int ord_plan_ship(ord_plan **out, const ord_step_in *in, ord_error *err)
{
    return plan_step(out, in, ORD_SHIPPED, err);
}

int ord_plan_complete(ord_plan **out, const ord_step_in *in, ord_error *err)
{
    return plan_step(out, in, ORD_COMPLETED, err);
}

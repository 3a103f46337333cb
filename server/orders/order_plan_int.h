/*
 * order_plan_int.h — building plans; private to server/orders.
 *
 * Builders record the first failure (out of memory) in the plan and make
 * later calls no-ops, so a planner adds all its ops and checks once at the
 * end (plan_finish).
 */
#ifndef OKV_ORDERS_PLAN_INT_H
#define OKV_ORDERS_PLAN_INT_H

#include <protobuf-c/protobuf-c.h>

#include "order_plan.h"

struct ord_plan {
    ord_op *conds, *writes;
    size_t n_conds, n_writes, cap_conds, cap_writes;
    uint8_t *response;
    size_t response_len;
    int replay;
    int has_idem;
    int oom;
    char currency[4];       /* of the money it moves, for failure messages */
};

ord_plan *plan_new(void);

/* Conditions. */
void plan_absent(ord_plan *p, ord_table t, const ord_key *k);
void plan_version_is(ord_plan *p, ord_table t, const ord_key *k, uint64_t version);
/* Writes. plan_put_msg packs m; plan_add's floor applies when has_floor. */
void plan_put_msg(ord_plan *p, ord_table t, const ord_key *k, const ProtobufCMessage *m);
void plan_put_counter(ord_plan *p, ord_table t, const ord_key *k, int64_t v);
void plan_add(ord_plan *p, ord_table t, const ord_key *k, int64_t delta, int has_floor,
              int64_t floor, ord_on_fail on_fail);

/* The response message (packed into the plan). */
void plan_respond(ord_plan *p, const ProtobufCMessage *m);

/* The idempotency record for a request with hash h: an absent condition on
 * its key and a put of {kind, h, the plan's response}. Call after
 * plan_respond. */
void plan_idem(ord_plan *p, const ord_key *k, ord_idem_kind kind, ord_hash128 h, int64_t now_ms);

/* If the request has an idempotency key whose record exists: 1 with *out a
 * replay plan of the stored response, or a code (key reused, out of
 * memory) with err set. 0 if planning goes on. */
int plan_try_replay(ord_plan **out, const Orderkv__V1__IdempotencyRecord *rec,
                    ord_idem_kind kind, ord_hash128 h, ord_error *err);

/* A plan without ops that answers m (the effect is already there). */
int plan_answer(ord_plan **out, const ProtobufCMessage *m, ord_error *err);

/* 0 and *out = p, or OKV_ENOMEM (p freed, *out NULL). */
int plan_finish(ord_plan **out, ord_plan *p, ord_error *err);

/* Shared checks. */
int plan_text_check(const char *what, const char *s, size_t max, ord_error *err);
/* An order that must exist: NOT_FOUND naming it, or its schema check. */
int plan_order_found(const Orderkv__V1__Order *o, const char *customer_id,
                     const char *order_id, ord_error *err);

#endif

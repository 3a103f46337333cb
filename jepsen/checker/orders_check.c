/*
 * orders_check.c — the orders checker's steps (rules in orders_check.h):
 * collect the history (orders_collect.c), then the keys and lost records
 * (orders_idem.c), stock and accounts (orders_money.c), order states and
 * paths (orders_status.c); then the verdict and the explanation, up to
 * DETAILS cases per anomaly class, each naming its order, key, sku or
 * account and the ops that show it.
 */
#include "orders_check.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "orders_int.h"

static const char *const CLASS[A_CLASSES] = {
    "key-two-effects", "paid-twice", "lost-order", "lost-payment", "lost-refund",
    "lost-reservation", "lost-deposit", "failed-but-present", "oversell", "stock-mismatch",
    "reservation-status", "account-mismatch", "negative-balance", "illegal-state",
    "illegal-transition", "over-refund", "refund-mismatch",
};

static const char *const MEANING[A_CLASSES] = {
    "one idempotency key, two effects",
    "an order paid more than once",
    "an acknowledged order missing at the end",
    "an acknowledged payment missing at the end",
    "an acknowledged refund missing at the end",
    "an acknowledged reservation missing at the end",
    "an acknowledged deposit missing at the end",
    "a request that certainly failed left a record",
    "more units reserved than the stock",
    "stock != available + ACTIVE reservations",
    "a reservation not released with its cancelled order, or released without",
    "balance != deposits - payments + refunds",
    "a balance below 0",
    "an order in a state the state machine cannot reach",
    "an order's observed history breaks the state machine",
    "more refunded than captured",
    "an order's refunded != the sum of its refunds",
};

const char *orders_kind_name(int kind)
{
    static const char *const K[K_KINDS] = { "create", "pay", "refund", "deposit", "reserve" };
    return kind >= 0 && kind < K_KINDS ? K[kind] : "?";
}

bool orders_flag(ostate *s, int c, size_t pos, sbuf **b)
{
    check_anomaly_add(check_result_anomaly(s->res, CLASS[c]), s->h->ops[pos].index);
    *b = &s->detail[c];
    return s->n_detail[c]++ < DETAILS;
}

static void value_to(sbuf *b, const history_value *v, size_t *left)
{
    if (!*left)
        return;
    size_t before = b->len;
    switch (v->kind) {
    case HV_NULL: sbuf_printf(b, "null"); break;
    case HV_INT: sbuf_printf(b, "%" PRId64, v->i); break;
    case HV_OTHER:
        if (v->s)
            sbuf_json_string(b, v->s);
        else
            sbuf_printf(b, "?");
        break;
    case HV_LIST:
        sbuf_printf(b, "[");
        for (size_t i = 0; i < v->n && *left; i++) {
            if (i)
                sbuf_printf(b, ",");
            value_to(b, &v->items[i], left);
        }
        sbuf_printf(b, "]");
        break;
    }
    size_t used = b->len - before;
    *left = used >= *left ? 0 : *left - used;
    if (!*left)
        sbuf_printf(b, "...");
}

void orders_value(sbuf *b, const history_value *v, size_t max)
{
    size_t left = max;
    value_to(b, v, &left);
}

void orders_describe(const ostate *s, sbuf *b, size_t inv)
{
    const history_op *op = &s->h->ops[inv];
    history_type t = history_outcome(s->h, inv);
    const history_op *done = op->pair != HISTORY_NONE ? &s->h->ops[op->pair] : NULL;
    sbuf_printf(b, "    %s ", history_f(s->h, op));
    orders_value(b, done && t == HISTORY_OK ? &done->value : &op->value, 600);
    sbuf_printf(b, " (index %" PRId64 ", process %" PRId64 ", invoked t=%.6fs, ", op->index,
                op->process, (double)op->time / 1e9);
    if (done)
        sbuf_printf(b, "%s t=%.6fs", history_type_name(done->type), (double)done->time / 1e9);
    else
        sbuf_printf(b, "never completed");
    if (done && done->error)
        sbuf_printf(b, ", error \"%s\"", done->error);
    sbuf_printf(b, ")\n");
}

static void state_free(ostate *s)
{
    strmap *maps[] = { &s->customers, &s->orders, &s->skus, &s->accounts, &s->keys,
                       &s->pays, &s->refunds, &s->reservations, &s->deposits };
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        strmap_free(maps[i]);
    free(s->cust);
    free(s->ord);
    free(s->sku);
    free(s->acct);
    free(s->key);
    free(s->pay);
    free(s->refund);
    free(s->resv);
    free(s->dep);
    free(s->snaps);
    for (int c = 0; c < A_CLASSES; c++)
        sbuf_free(&s->detail[c]);
}

static char *explain(ostate *s)
{
    sbuf b = SBUF_INIT;
    for (int c = 0; c < A_CLASSES; c++) {
        if (!s->n_detail[c])
            continue;
        sbuf_printf(&b, "%s: %zu (%s)%s\n", CLASS[c], s->n_detail[c], MEANING[c],
                    s->n_detail[c] > DETAILS ? "; the first ones:" : "");
        sbuf_append(&b, s->detail[c].s ? s->detail[c].s : "", s->detail[c].len);
    }
    return sbuf_take(&b);
}

int orders_check(check_result **out, const history *h, okv_error *err)
{
    *out = NULL;
    ostate s;
    memset(&s, 0, sizeof s);
    s.h = h;
    strmap *maps[] = { &s.customers, &s.orders, &s.skus, &s.accounts, &s.keys,
                       &s.pays, &s.refunds, &s.reservations, &s.deposits };
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        strmap_init(maps[i]);
    if (!(s.res = check_result_new("orders"))) {
        state_free(&s);
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    }
    for (int c = 0; c < A_CLASSES; c++)
        check_result_anomaly(s.res, CLASS[c]);
    int rc = orders_collect(&s, err);
    if (rc == 0) {
        orders_check_keys(&s);
        orders_check_lost(&s);
        orders_check_stock(&s);
        orders_check_accounts(&s);
        orders_check_states(&s);
        orders_check_paths(&s);
        if (s.oom)
            rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
    }
    check_result *r = s.res;
    if (rc == 0) {
        r->ops = h->n_invokes;
        r->keys = s.orders.n;
        check_result_count(r, "orders", s.orders.n);
        check_result_count(r, "customers", s.customers.n);
        check_result_count(r, "keys", s.keys.n);
        check_result_count(r, "observations", s.n_snaps);
        check_result_count(r, "final-reads", s.final_reads);
        check_result_count(r, "payments", s.pays.n);
        check_result_count(r, "refunds", s.refunds.n);
        check_result_count(r, "reservations", s.reservations.n);
        check_result_count(r, "keyed-ok", s.ops_by_outcome[0]);
        check_result_count(r, "keyed-failed", s.ops_by_outcome[1]);
        check_result_count(r, "keyed-unknown", s.ops_by_outcome[2]);
        bool bad = false;
        for (int c = 0; c < A_CLASSES; c++)
            bad |= s.n_detail[c] > 0;
        r->validity = bad ? CHECK_INVALID : s.final_reads ? CHECK_VALID : CHECK_UNKNOWN;
        r->explanation = explain(&s);
        if (!r->explanation)
            rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
    }
    state_free(&s);
    if (rc) {
        check_result_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

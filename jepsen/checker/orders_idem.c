/*
 * orders_idem.c — one effect per idempotency key, one payment per order,
 * and no acknowledged record lost.
 *
 * A key's attempts are one request (the runner resends with the same key
 * after any ambiguous outcome, and sometimes sends several copies at
 * once): every attempt that got an answer must have got the same id, and
 * the final state holds at most one record made with the key. A key whose
 * every attempt failed (certainly no effect) must have none. Deposits have
 * no id: a deposit applied twice shows in its account's balance
 * (orders_money.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "orders_int.h"

static const char *const RECORD[K_KINDS] = { "order", "payment", "refund", "deposit",
                                             "reservation" };

/* Attempts of one key answered with two ids. */
static void check_answers(ostate *s)
{
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE ||
            history_outcome(s->h, pos) != HISTORY_OK)
            continue;
        const char *f = history_f(s->h, op);
        int kind, key_at, at = orders_keyed(f, &kind, &key_at);
        if (at < 0)
            continue;
        const char *answer = orders_answer(&s->h->ops[op->pair].value, at);
        const char *key = op->value.items[key_at].s;
        if (!*key)
            continue;
        char buf[600];
        int n = snprintf(buf, sizeof buf, "%d:%s", kind, key);
        size_t id = n > 0 && (size_t)n < sizeof buf ? strmap_find(&s->keys, buf, (size_t)n) : NONE;
        if (id == NONE || !s->key[id].answer || strcmp(s->key[id].answer, answer) == 0)
            continue;
        sbuf *b;
        if (orders_flag(s, A_KEY_TWO, pos, &b)) {
            sbuf_printf(b, "  %s key \"%s\" was answered with two %s ids, %s and %s:\n", f, key,
                        RECORD[kind], s->key[id].answer, answer);
            orders_describe(s, b, s->key[id].answer_inv);
            orders_describe(s, b, pos);
        }
    }
}

/* Records per key in the final state. */
static void check_records(ostate *s)
{
    for (size_t id = 0; id < s->keys.n; id++) {
        const key_info *k = &s->key[id];
        sbuf *b;
        if (k->n_records > 1 && orders_flag(s, A_KEY_TWO, k->first_inv, &b)) {
            sbuf_printf(b, "  key \"%s\": the final state holds %zu %ss made with it (one "
                        "request, %zu effects); its first attempt:\n", k->key, k->n_records,
                        RECORD[k->kind], k->n_records);
            orders_describe(s, b, k->first_inv);
            sbuf_printf(b, "    the final read that shows them:\n");
            orders_describe(s, b, k->record_inv);
        }
        if (k->n_records && !k->any_ok && !k->any_info &&
            orders_flag(s, A_FAILED_PRESENT, k->first_inv, &b)) {
            sbuf_printf(b, "  key \"%s\": every attempt failed, yet the final state holds its %s; "
                        "the first attempt:\n", k->key, RECORD[k->kind]);
            orders_describe(s, b, k->first_inv);
        }
    }
}

void orders_check_keys(ostate *s)
{
    check_answers(s);
    check_records(s);
    for (size_t o = 0; o < s->orders.n; o++) {
        const ord_info *oi = &s->ord[o];
        sbuf *b;
        if (oi->n_payments < 2 || !orders_flag(s, A_PAID_TWICE, s->pay[oi->first_payment].inv, &b))
            continue;
        sbuf_printf(b, "  order %s has %zu payments in the final state:", strmap_key(&s->orders, o),
                    oi->n_payments);
        for (size_t p = 0; p < s->pays.n; p++) {
            const history_value *v = s->pay[p].v;
            const char *cust = strmap_key(&s->customers, s->pay[p].owner);
            size_t len = strlen(cust);
            const char *name = strmap_key(&s->orders, o);
            if (strncmp(name, cust, len) == 0 && name[len] == '/' && strcmp(name + len + 1, v->items[1].s) == 0) {
                sbuf_printf(b, " ");
                orders_value(b, v, 200);
            }
        }
        sbuf_printf(b, "\n    the final read:\n");
        orders_describe(s, b, s->pay[oi->first_payment].inv);
    }
}

/* ---- lost records ------------------------------------------------------------------- */

/* Is "<a>/<b>" in m? */
static bool has2(const strmap *m, const char *a, const char *b)
{
    char buf[600];
    int n = snprintf(buf, sizeof buf, "%s/%s", a, b);
    return n > 0 && (size_t)n < sizeof buf && strmap_find(m, buf, (size_t)n) != NONE;
}

static size_t find1(const strmap *m, const char *a)
{
    return strmap_find(m, a, strlen(a));
}

static void lost(ostate *s, int c, size_t pos, const char *what, const char *id, const char *where)
{
    sbuf *b;
    if (orders_flag(s, c, pos, &b)) {
        sbuf_printf(b, "  %s %s was acknowledged but is not in the final %s:\n", what, id, where);
        orders_describe(s, b, pos);
    }
}

/* An ok create's order, and the reservations its items took. */
static void lost_create(ostate *s, size_t pos, const history_value *ok)
{
    const history_value *o = &ok->items[3];
    const char *cust = ok->items[0].s, *oid = o->items[O_ID].s;
    size_t c = find1(&s->customers, cust), ord = orders_order_id(s, cust, oid);
    if (c != NONE && s->cust[c].orders_inv != NONE && ord != NONE && !s->ord[ord].final)
        lost(s, A_LOST_ORDER, pos, "order", oid, "orders of its customer");
    const history_value *items = &o->items[O_ITEMS];
    for (size_t i = 0; i < items->n; i++) {
        const history_value *it = &items->items[i];
        size_t k = find1(&s->skus, it->items[0].s);
        if (!*it->items[3].s || k == NONE || s->sku[k].final_inv == NONE)
            continue;
        if (!has2(&s->reservations, it->items[0].s, it->items[3].s))
            lost(s, A_LOST_RESERVATION, pos, "the reservation of order", oid, "reservations of its sku");
    }
}

void orders_check_lost(ostate *s)
{
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE ||
            history_outcome(s->h, pos) != HISTORY_OK)
            continue;
        const char *f = history_f(s->h, op);
        const history_value *ok = &s->h->ops[op->pair].value;
        const char *first = ok->items[0].s;
        size_t c = find1(&s->customers, first);
        bool paid_read = c != NONE && s->cust[c].payments_inv != NONE;
        if (strcmp(f, "create") == 0) {
            lost_create(s, pos, ok);
        } else if (strcmp(f, "pay") == 0 && paid_read && !has2(&s->pays, first, ok->items[5].s)) {
            lost(s, A_LOST_PAYMENT, pos, "payment", ok->items[5].s, "payments of its customer");
        } else if (strcmp(f, "refund") == 0 && paid_read && !has2(&s->refunds, first, ok->items[4].s)) {
            lost(s, A_LOST_REFUND, pos, "refund", ok->items[4].s, "refunds of its customer");
        } else if (strcmp(f, "cancel") == 0 && paid_read && ok->items[2].kind != HV_NULL &&
                   !has2(&s->refunds, first, ok->items[2].s)) {
            lost(s, A_LOST_REFUND, pos, "the cancel's refund", ok->items[2].s, "refunds of its customer");
        } else if (strcmp(f, "reserve") == 0) {
            size_t k = find1(&s->skus, first);
            if (k != NONE && s->sku[k].final_inv != NONE && !has2(&s->reservations, first, ok->items[3].s))
                lost(s, A_LOST_RESERVATION, pos, "reservation", ok->items[3].s, "reservations of its sku");
        } else if (strcmp(f, "deposit") == 0 && *ok->items[2].s) {
            size_t a = find1(&s->accounts, first);
            if (a != NONE && s->acct[a].final_inv != NONE && !has2(&s->deposits, first, ok->items[2].s))
                lost(s, A_LOST_DEPOSIT, pos, "the deposit with key", ok->items[2].s, "deposits of its account");
        }
    }
}

/*
 * orders_money.c — stock and accounts add up.
 *
 * Stock, per sku read at the end (docs/orders.md): the stock set at the
 * start = available + the quantities of the ACTIVE reservations; a
 * cancelled order's reservation is RELEASED (its units went back). Never
 * more ACTIVE units than the stock, never available < 0 (oversell).
 *
 * Accounts, per account read at the end: balance = the deposits recorded
 * (the deposit idempotency records found) - the payments from it + the
 * refunds to it, both as found in the final state. That needs every
 * customer's payments, since any customer may pay from any account; an
 * acknowledged payment, refund or deposit missing from the final state is
 * reported as lost (orders_idem.c), so ambiguous ones count exactly when
 * they are present.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "orders_int.h"

static void reservation_status(ostate *s, size_t k, const history_value *r)
{
    const char *oid = r->items[1].s, *cust = r->items[2].s;
    if (!*oid)
        return;
    char buf[600];
    int n = snprintf(buf, sizeof buf, "%s/%s", cust, oid);
    size_t ord = n > 0 && (size_t)n < sizeof buf ? strmap_find(&s->orders, buf, (size_t)n) : NONE;
    if (ord == NONE || !s->ord[ord].final)
        return;
    const history_value *o = s->ord[ord].final;
    bool cancelled = orders_status_of(o->items[O_STATUS].s) == S_CANCELLED;
    bool active = strcmp(r->items[4].s, "ACTIVE") == 0;
    sbuf *b;
    if (cancelled == active && orders_flag(s, A_RES_STATUS, s->sku[k].final_inv, &b)) {
        sbuf_printf(b, "  sku %s: reservation %s of order %s is %s, but the order is %s:\n    ",
                    strmap_key(&s->skus, k), r->items[0].s, buf, r->items[4].s,
                    o->items[O_STATUS].s);
        orders_value(b, o, 400);
        sbuf_printf(b, "\n");
        orders_describe(s, b, s->sku[k].final_inv);
    }
}

static void check_sku(ostate *s, size_t k)
{
    const sku_info *si = &s->sku[k];
    const char *sku = strmap_key(&s->skus, k);
    int64_t active = 0, released = 0;
    size_t n_active = 0;
    for (size_t i = 0; i < si->reservations->n; i++) {
        const history_value *r = &si->reservations->items[i];
        if (strcmp(r->items[4].s, "ACTIVE") == 0) {
            active += r->items[3].i;
            n_active++;
        } else {
            released += r->items[3].i;
        }
        reservation_status(s, k, r);
    }
    sbuf *b;
    if ((si->available < 0 || active > si->init) && orders_flag(s, A_OVERSELL, si->final_inv, &b)) {
        sbuf_printf(b, "  sku %s: stock %" PRId64 ", but %zu ACTIVE reservations hold %" PRId64
                    " units and %" PRId64 " are available (%" PRId64 " sold beyond the stock):\n",
                    sku, si->init, n_active, active, si->available,
                    active > si->init ? active - si->init : -si->available);
        orders_describe(s, b, si->final_inv);
    }
    if (si->available + active != si->init && orders_flag(s, A_STOCK, si->final_inv, &b)) {
        sbuf_printf(b, "  sku %s: stock %" PRId64 " != available %" PRId64 " + ACTIVE %" PRId64
                    " (%zu reservations; %" PRId64 " units RELEASED):\n", sku, si->init,
                    si->available, active, n_active, released);
        orders_describe(s, b, si->final_inv);
    }
}

/* Reads of a stock below 0 or a balance below 0, during the run too. */
static void check_reads(ostate *s)
{
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE ||
            history_outcome(s->h, pos) != HISTORY_OK)
            continue;
        const char *f = history_f(s->h, op);
        const history_value *ok = &s->h->ops[op->pair].value;
        bool stock = strcmp(f, "get-stock") == 0 || strcmp(f, "final-stock") == 0;
        bool acct = strcmp(f, "get-account") == 0 || strcmp(f, "final-account") == 0;
        sbuf *b;
        if ((stock || acct) && ok->items[1].i < 0 &&
            orders_flag(s, stock ? A_OVERSELL : A_NEGATIVE, pos, &b)) {
            sbuf_printf(b, "  %s %s read as %" PRId64 ":\n", stock ? "the stock of sku" : "the balance of account",
                        ok->items[0].s, ok->items[1].i);
            orders_describe(s, b, pos);
        }
    }
}

void orders_check_stock(ostate *s)
{
    size_t unchecked = 0;
    for (size_t k = 0; k < s->skus.n; k++) {
        if (s->sku[k].final_inv == NONE || !s->sku[k].has_init)
            unchecked++;
        else
            check_sku(s, k);
    }
    check_reads(s);
    check_result_count(s->res, "skus", s->skus.n);
    check_result_count(s->res, "skus-unchecked", unchecked);
}

/* Sums what the final state moved through account a. */
static void flows(const ostate *s, const char *acct, int64_t *paid, size_t *n_paid, int64_t *back,
                  size_t *n_back)
{
    *paid = *back = 0;
    *n_paid = *n_back = 0;
    for (size_t p = 0; p < s->pays.n; p++)
        if (strcmp(s->pay[p].v->items[3].s, acct) == 0) {
            *paid += s->pay[p].v->items[2].i;
            (*n_paid)++;
        }
    for (size_t r = 0; r < s->refunds.n; r++)
        if (strcmp(s->refund[r].v->items[4].s, acct) == 0) {
            *back += s->refund[r].v->items[3].i;
            (*n_back)++;
        }
}

void orders_check_accounts(ostate *s)
{
    size_t unchecked = 0;
    for (size_t a = 0; a < s->accounts.n; a++) {
        const acct_info *ai = &s->acct[a];
        if (ai->final_inv == NONE || !s->all_payments_read) {
            unchecked++;
            continue;
        }
        const char *acct = strmap_key(&s->accounts, a);
        int64_t dep = 0, paid, back;
        size_t n_paid, n_back;
        for (size_t i = 0; i < ai->deposits->n; i++)
            dep += ai->deposits->items[i].items[1].i;
        flows(s, acct, &paid, &n_paid, &back, &n_back);
        int64_t want = dep - paid + back;
        sbuf *b;
        if (want != ai->balance && orders_flag(s, A_ACCOUNT, ai->final_inv, &b)) {
            sbuf_printf(b, "  account %s: balance %" PRId64 ", but deposits %" PRId64 " (%zu) - "
                        "payments %" PRId64 " (%zu) + refunds %" PRId64 " (%zu) = %" PRId64
                        " (off by %+" PRId64 "):\n", acct, ai->balance, dep, ai->deposits->n,
                        paid, n_paid, back, n_back, want, ai->balance - want);
            orders_describe(s, b, ai->final_inv);
        }
    }
    check_result_count(s->res, "accounts", s->accounts.n);
    check_result_count(s->res, "accounts-unchecked", unchecked);
}

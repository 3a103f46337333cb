/*
 * orders_status.c — every order's observed history follows the state
 * machine of docs/orders.md:
 *
 *   CREATED -> PAID -> SHIPPED -> COMPLETED
 *   CREATED | PAID -> CANCELLED
 *   PAID | SHIPPED | COMPLETED | PARTIALLY_REFUNDED -> PARTIALLY_REFUNDED | REFUNDED
 *
 * Two kinds of evidence:
 *  1. Each observed order must be a state the machine can reach: its fields
 *     agree with its status (a SHIPPED order was paid, a CANCELLED one never
 *     shipped, refunded <= captured, ...). A step the server allowed against
 *     the rules leaves such a trace in the record.
 *  2. Observations over time: if the op that saw A completed before the op
 *     that saw B began, B must be reachable from A in zero or more steps,
 *     with refunded not smaller and the same payment. B must be seen within
 *     its op (a read, a step's answer, not a keyed request's answer, which
 *     may replay an older state); A may be any observation, since whatever
 *     it saw held before its op completed.
 * The table is written here from the spec, not taken from the server, whose
 * table is part of what is under test.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orders_int.h"

#define BIT(x) (1u << (x))

static const uint32_t STEP[S_COUNT] = {
    [S_CREATED] = BIT(S_PAID) | BIT(S_CANCELLED),
    [S_PAID] = BIT(S_SHIPPED) | BIT(S_CANCELLED) | BIT(S_PARTIALLY_REFUNDED) | BIT(S_REFUNDED),
    [S_SHIPPED] = BIT(S_COMPLETED) | BIT(S_PARTIALLY_REFUNDED) | BIT(S_REFUNDED),
    [S_COMPLETED] = BIT(S_PARTIALLY_REFUNDED) | BIT(S_REFUNDED),
    [S_PARTIALLY_REFUNDED] = BIT(S_PARTIALLY_REFUNDED) | BIT(S_REFUNDED),
};

static const char *const NAMES[S_COUNT] = { "?", "CREATED", "PAID", "SHIPPED", "COMPLETED",
                                            "CANCELLED", "REFUNDED", "PARTIALLY_REFUNDED" };

int orders_step_ok(int from, int to)
{
    return from > 0 && from < S_COUNT && to > 0 && to < S_COUNT && (STEP[from] & BIT(to)) != 0;
}

int orders_status_of(const char *name)
{
    for (int st = 1; name && st < S_COUNT; st++)
        if (strcmp(name, NAMES[st]) == 0)
            return st;
    return 0;
}

const char *orders_status_name(int status)
{
    return status > 0 && status < S_COUNT ? NAMES[status] : "?";
}

/* Statuses reachable from `from` in zero or more steps. */
static uint32_t reach(int from)
{
    uint32_t r = BIT(from), prev = 0;
    while (r != prev) {
        prev = r;
        for (int st = 1; st < S_COUNT; st++)
            if (r & BIT(st))
                r |= STEP[st];
    }
    return r;
}

/* ---- 1. states ------------------------------------------------------------------------ */

/* Why the tuple o is no state the machine reaches, or NULL. */
static const char *bad_state(const history_value *o)
{
    const history_value *t = o->items[O_TIMES].items;
    int64_t total = o->items[O_TOTAL].i, captured = o->items[O_CAPTURED].i,
            refunded = o->items[O_REFUNDED].i;
    bool paid = *o->items[O_PAYMENT].s && captured == total && t[T_PAID].i > 0;
    bool shipped = t[T_SHIPPED].i > 0, done = t[T_COMPLETED].i > 0, cancelled = t[T_CANCELLED].i > 0;
    switch (orders_status_of(o->items[O_STATUS].s)) {
    case S_CREATED:
        if (captured || refunded || *o->items[O_PAYMENT].s || t[T_PAID].i || shipped || cancelled)
            return "CREATED, but it carries a payment, a shipment or a cancellation";
        return NULL;
    case S_PAID:
        if (!paid)
            return "PAID without a payment of its total";
        return shipped || done || cancelled || refunded ? "PAID after it shipped, was cancelled or refunded" : NULL;
    case S_SHIPPED:
        if (!paid)
            return "SHIPPED, but it was never paid";
        return !shipped || done || cancelled || refunded ? "SHIPPED with the times or refunds of another state" : NULL;
    case S_COMPLETED:
        if (!paid || !shipped)
            return "COMPLETED, but it was never paid and shipped";
        return cancelled || refunded ? "COMPLETED after a cancellation or refund" : NULL;
    case S_CANCELLED:
        if (shipped || done)
            return "CANCELLED after it shipped";
        return !cancelled || refunded != captured ? "CANCELLED without a full refund of what it captured" : NULL;
    case S_PARTIALLY_REFUNDED:
        if (!paid || cancelled)
            return "PARTIALLY_REFUNDED, but it was never paid, or was cancelled";
        return refunded <= 0 || refunded >= captured ? "PARTIALLY_REFUNDED with refunded not between 0 and captured" : NULL;
    case S_REFUNDED:
        if (!paid || cancelled)
            return "REFUNDED, but it was never paid, or was cancelled";
        return refunded != captured ? "REFUNDED with refunded != captured" : NULL;
    default:
        return "a status outside the state machine";
    }
}

/* Once per order and class: 1 and *b if it should be described. */
static bool flag_order(ostate *s, size_t ord, int c, size_t pos, sbuf **b)
{
    if (s->ord[ord].flagged & BIT(c))
        return false;
    s->ord[ord].flagged |= BIT(c);
    return orders_flag(s, c, pos, b);
}

/* What each ok step must answer. */
static int step_status(const char *f)
{
    return strcmp(f, "ship") == 0 ? S_SHIPPED : strcmp(f, "complete") == 0 ? S_COMPLETED
         : strcmp(f, "cancel") == 0 ? S_CANCELLED : strcmp(f, "pay") == 0 ? S_PAID
         : strcmp(f, "create") == 0 ? S_CREATED : 0;
}

void orders_check_states(ostate *s)
{
    for (size_t i = 0; i < s->n_snaps; i++) {
        const o_snap *n = &s->snaps[i];
        const history_value *o = n->o;
        sbuf *b;
        if (o->items[O_REFUNDED].i > o->items[O_CAPTURED].i || o->items[O_REFUNDED].i < 0) {
            if (flag_order(s, n->ord, A_OVER_REFUND, n->inv, &b)) {
                sbuf_printf(b, "  order %s: refunded %" PRId64 " of %" PRId64 " captured:\n    ",
                            strmap_key(&s->orders, n->ord), o->items[O_REFUNDED].i, o->items[O_CAPTURED].i);
                orders_value(b, o, 400);
                sbuf_printf(b, "\n");
                orders_describe(s, b, n->inv);
            }
            continue;
        }
        const char *why = bad_state(o);
        if (why && flag_order(s, n->ord, A_ILLEGAL_STATE, n->inv, &b)) {
            sbuf_printf(b, "  order %s: %s:\n    ", strmap_key(&s->orders, n->ord), why);
            orders_value(b, o, 400);
            sbuf_printf(b, "\n");
            orders_describe(s, b, n->inv);
        }
        /* An ok step answers the status it moves to (or keeps). */
        const char *f = history_f(s->h, &s->h->ops[n->inv]);
        int want = step_status(f), got = orders_status_of(o->items[O_STATUS].s);
        bool refund_ok = strcmp(f, "refund") == 0 &&
                         (got == S_REFUNDED || got == S_PARTIALLY_REFUNDED);
        if (((want && got != want) || (strcmp(f, "refund") == 0 && !refund_ok)) &&
            flag_order(s, n->ord, A_ILLEGAL_TRANSITION, n->inv, &b)) {
            sbuf_printf(b, "  order %s: an ok %s answered it %s:\n", strmap_key(&s->orders, n->ord),
                        f, o->items[O_STATUS].s);
            orders_describe(s, b, n->inv);
        }
    }
    /* The final state: refunds recorded per order against what it says. */
    for (size_t ord = 0; ord < s->orders.n; ord++) {
        const ord_info *oi = &s->ord[ord];
        const char *name = strmap_key(&s->orders, ord);
        size_t c = strmap_find(&s->customers, name, (size_t)(strchr(name, '/') - name));
        if (!oi->final || c == NONE || s->cust[c].payments_inv == NONE)
            continue;
        int64_t captured = oi->final->items[O_CAPTURED].i, refunded = oi->final->items[O_REFUNDED].i;
        sbuf *b;
        if (oi->refunds > captured && flag_order(s, ord, A_OVER_REFUND, s->cust[c].payments_inv, &b)) {
            sbuf_printf(b, "  order %s: its refunds sum to %" PRId64 ", more than the %" PRId64
                        " it captured:\n", name, oi->refunds, captured);
            orders_describe(s, b, s->cust[c].payments_inv);
        } else if (oi->refunds != refunded &&
                   flag_order(s, ord, A_REFUND_MISMATCH, s->cust[c].payments_inv, &b)) {
            sbuf_printf(b, "  order %s says refunded %" PRId64 ", its refunds sum to %" PRId64 ":\n",
                        name, refunded, oi->refunds);
            orders_describe(s, b, s->cust[c].payments_inv);
        }
    }
}

/* ---- 2. over time ---------------------------------------------------------------------- */

static int by_order_then_ret(const void *a, const void *b)
{
    const o_snap *x = a, *y = b;
    if (x->ord != y->ord)
        return x->ord < y->ord ? -1 : 1;
    return x->ret < y->ret ? -1 : x->ret > y->ret;
}

/* Why B cannot follow A, or NULL. */
static const char *bad_path(const history_value *a, const history_value *b)
{
    int sa = orders_status_of(a->items[O_STATUS].s), sb = orders_status_of(b->items[O_STATUS].s);
    if (!sa || !sb)
        return NULL;   /* reported as an illegal state */
    if (!(reach(sa) & BIT(sb)))
        return sb == S_CREATED ? "it went back to CREATED (a resurrection)" : "no legal path leads from the first status to the second";
    if (b->items[O_REFUNDED].i < a->items[O_REFUNDED].i)
        return "refunded went down";
    const char *pa = a->items[O_PAYMENT].s, *pb = b->items[O_PAYMENT].s;
    if (*pa && strcmp(pa, pb) != 0)
        return "its payment changed";
    return NULL;
}

static void explain_path(ostate *s, const o_snap *a, const o_snap *b, const char *why)
{
    sbuf *out;
    int c = strcmp(why, "its payment changed") == 0 && *b->o->items[O_PAYMENT].s ? A_PAID_TWICE
                                                                                 : A_ILLEGAL_TRANSITION;
    if (!flag_order(s, a->ord, c, b->inv, &out))
        return;
    sbuf_printf(out, "  order %s was %s, then %s: %s; first seen\n", strmap_key(&s->orders, a->ord),
                a->o->items[O_STATUS].s, b->o->items[O_STATUS].s, why);
    orders_describe(s, out, a->inv);
    sbuf_printf(out, "      as ");
    orders_value(out, a->o, 400);
    sbuf_printf(out, "\n    and after that op completed,\n");
    orders_describe(s, out, b->inv);
    sbuf_printf(out, "      as ");
    orders_value(out, b->o, 400);
    sbuf_printf(out, "\n");
}

/* A get-order that found nothing, after the order was seen. */
static void check_vanished(ostate *s)
{
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE ||
            strcmp(history_f(s->h, op), "get-order") != 0 || history_outcome(s->h, pos) != HISTORY_OK ||
            s->h->ops[op->pair].value.items[2].kind != HV_NULL)
            continue;
        char buf[600];
        int n = snprintf(buf, sizeof buf, "%s/%s", op->value.items[0].s, op->value.items[1].s);
        size_t ord = n > 0 && (size_t)n < sizeof buf ? strmap_find(&s->orders, buf, (size_t)n) : NONE;
        for (size_t i = 0; ord != NONE && i < s->n_snaps; i++) {
            const o_snap *a = &s->snaps[i];
            sbuf *b;
            if (a->ord != ord || a->ret >= pos)
                continue;
            if (flag_order(s, ord, A_ILLEGAL_TRANSITION, pos, &b)) {
                sbuf_printf(b, "  order %s was seen, then not found:\n", buf);
                orders_describe(s, b, a->inv);
                orders_describe(s, b, pos);
            }
            break;
        }
    }
}

void orders_check_paths(ostate *s)
{
    if (s->n_snaps)   /* no snapshots: snaps may be NULL, which qsort must not get */
        qsort(s->snaps, s->n_snaps, sizeof *s->snaps, by_order_then_ret);
    for (size_t lo = 0, hi; lo < s->n_snaps; lo = hi) {
        for (hi = lo; hi < s->n_snaps && s->snaps[hi].ord == s->snaps[lo].ord; hi++)
            ;
        /* Sorted by completion: the A before a timed B are a prefix. */
        for (size_t j = lo; j < hi; j++) {
            const o_snap *b = &s->snaps[j];
            if (!b->timed)
                continue;
            for (size_t i = lo; i < hi && s->snaps[i].ret < b->inv; i++) {
                const char *why = bad_path(s->snaps[i].o, b->o);
                if (why)
                    explain_path(s, &s->snaps[i], b, why);
            }
        }
    }
    check_vanished(s);
}

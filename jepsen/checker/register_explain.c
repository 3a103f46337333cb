/*
 * register_explain.c — turns a non-linearizable key into text a person can
 * act on: first the ops that are impossible in any order (register_facts.c),
 * each with its cause in plain words; then what the search found: the op it
 * could not place, the deepest linearizable prefix, the register value after
 * it, and why each op that could come next does not fit.
 */
#include <inttypes.h>
#include <stdio.h>

#include "register_int.h"

#define SHOWN_IMPOSSIBLE 3 /* impossible ops listed per key */

static const char *val_str(lin_val v, char *buf, size_t n)
{
    if (v.null)
        snprintf(buf, n, "null");
    else
        snprintf(buf, n, "%" PRId64, v.v);
    return buf;
}

void register_describe_op(sbuf *b, const lin_op *op)
{
    char x[24], y[24];
    switch (op->kind) {
    case LIN_READ:
        sbuf_printf(b, "read -> %s", val_str(op->a, x, sizeof x));
        break;
    case LIN_WRITE:
        sbuf_printf(b, "write %s", val_str(op->a, x, sizeof x));
        break;
    case LIN_CAS:
        sbuf_printf(b, "cas %s->%s", val_str(op->a, x, sizeof x), val_str(op->b, y, sizeof y));
        break;
    }
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

/* "read -> 2 (index 812, process 4, invoked t=1.234567s, ok t=1.240000s)" */
static void describe(sbuf *b, const history *h, const reg_op *r)
{
    const history_op *inv = &h->ops[r->pos];
    register_describe_op(b, &r->op);
    sbuf_printf(b, " (index %" PRId64 ", process %" PRId64 ", invoked t=%.6fs, ", inv->index, inv->process,
                secs(inv->time));
    if (r->ret == HISTORY_NONE) {
        sbuf_printf(b, "never completed: outcome unknown)");
        return;
    }
    const history_op *done = &h->ops[r->ret];
    sbuf_printf(b, "%s t=%.6fs", history_type_name(done->type), secs(done->time));
    if (done->error)
        sbuf_printf(b, ", error \"%s\"", done->error);
    sbuf_printf(b, ")");
}

static lin_val set_value(const reg_op *r)
{
    return r->op.kind == LIN_WRITE ? r->op.a : r->op.b;
}

static bool sets(const reg_op *r, lin_val v)
{
    return r->op.kind != LIN_READ && lin_val_eq(set_value(r), v);
}

/* Lists up to 3 ops that set v: only failed ones, or only ones that did not fail. */
static void list_setters(sbuf *b, const history *h, const reg_op *kops, size_t n, lin_val v, bool failed)
{
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < 3; i++) {
        if (!sets(&kops[i], v) || (kops[i].outcome == HISTORY_FAIL) != failed)
            continue;
        sbuf_printf(b, "%s", shown ? "; " : "");
        describe(b, h, &kops[i]);
        shown++;
    }
}

/* For R4: an ok write or cas that began after every op setting v had
 * completed and finished before x began. */
static const reg_op *newer_write(const reg_op *kops, size_t n, const reg_op *x)
{
    size_t last_end = 0;
    for (size_t i = 0; i < n; i++)
        if (sets(&kops[i], x->op.a) && kops[i].outcome == HISTORY_OK && kops[i].ret > last_end)
            last_end = kops[i].ret;
    for (size_t i = 0; i < n; i++) {
        const reg_op *o = &kops[i];
        if (o->op.kind != LIN_READ && o->outcome == HISTORY_OK && o->pos > last_end && o->ret < x->pos)
            return o;
    }
    return NULL;
}

/* For R5: the first ok write or cas that completed before x began. */
static const reg_op *earlier_write(const reg_op *kops, size_t n, const reg_op *x)
{
    for (size_t i = 0; i < n; i++)
        if (kops[i].op.kind != LIN_READ && kops[i].outcome == HISTORY_OK && kops[i].ret < x->pos)
            return &kops[i];
    return NULL;
}

/* Appends the cause rule proves for x. */
static void cause(sbuf *b, const history *h, int64_t key, const reg_op *kops, size_t n, const reg_op *x,
                  reg_rule rule)
{
    char vs[24];
    val_str(x->op.a, vs, sizeof vs);
    const reg_op *o;
    switch (rule) {
    case REG_RULE_NONE:
        break;
    case REG_RULE_PHANTOM:
        sbuf_printf(b, "phantom value: no write or cas ever set key %" PRId64 " to %s, yet the read returned it",
                    key, vs);
        break;
    case REG_RULE_ONLY_FAILED_WRITES:
        sbuf_printf(b, "key %" PRId64 " was read as %s but every write of %s failed: ", key, vs, vs);
        list_setters(b, h, kops, n, x->op.a, true);
        break;
    case REG_RULE_WRITES_AFTER_READ:
        sbuf_printf(b, "every write of %s to key %" PRId64 " that did not fail began after this read returned: ",
                    vs, key);
        list_setters(b, h, kops, n, x->op.a, false);
        break;
    case REG_RULE_STALE_READ:
        sbuf_printf(b, "stale read: ");
        if ((o = newer_write(kops, n, x)))
            describe(b, h, o);
        sbuf_printf(b, " began after every write of %s had completed and finished before this read began", vs);
        break;
    case REG_RULE_ABSENT_AFTER_WRITE:
        sbuf_printf(b, "key %" PRId64 " was read as absent (null), but ", key);
        if ((o = earlier_write(kops, n, x)))
            describe(b, h, o);
        sbuf_printf(b, " completed before the read began, and a register never becomes absent again");
        break;
    case REG_RULE_CAS_FROM_UNSET:
        sbuf_printf(b, "this cas from %s succeeded, but no op that did not fail ever set key %" PRId64
                    " to %s: it should have failed", vs, key, vs);
        break;
    case REG_RULE_CAS_CONSUMED_TWICE: {
        size_t consumers = 0, producers = x->op.a.null ? 1 : 0;
        for (size_t i = 0; i < n; i++) {
            const reg_op *c = &kops[i];
            bool self = c->op.kind == LIN_CAS && lin_val_eq(c->op.a, c->op.b);
            consumers += c->op.kind == LIN_CAS && c->outcome == HISTORY_OK && lin_val_eq(c->op.a, x->op.a) && !self;
            producers += sets(c, x->op.a) && c->outcome != HISTORY_FAIL && !self;
        }
        sbuf_printf(b, "%zu cas ops from %s succeeded on key %" PRId64 ", but only %zu op%s ever set it to %s"
                    "%s; each time the value becomes %s only one cas from it can succeed",
                    consumers, vs, key, producers, producers == 1 ? "" : "s", vs,
                    x->op.a.null ? " (counting the initial absent value)" : "", vs);
        break;
    }
    }
}

static void explain_search(sbuf *b, const history *h, int64_t key, const reg_op *kops, size_t n,
                           const reg_verdict *v)
{
    const lin_report *rep = v->rep;
    char vs[24], ws[24];
    if (rep->outcome != LIN_VIOLATION) {
        sbuf_printf(b, "  (the search for the longest linearizable prefix stopped after %" PRIu64
                    " configurations: %s)\n", rep->states,
                    rep->outcome == LIN_TIME_LIMIT ? "time limit" : "its budget for a key already known to be invalid");
        return;
    }
    const reg_op *x = rep->blocking != LIN_NEVER ? &kops[v->lin_to_kop[rep->blocking]] : NULL;
    if (x) {
        sbuf_printf(b, "  cannot place: ");
        describe(b, h, x);
        sbuf_printf(b, "\n");
        reg_rule rule = reg_facts_rule(v->facts, x);
        if (rule != REG_RULE_NONE && !v->n_impossible) {
            sbuf_printf(b, "  why: ");
            cause(b, h, key, kops, n, x, rule);
            sbuf_printf(b, "\n");
        }
    }
    sbuf_printf(b, "  longest linearizable prefix: %zu op%s%s\n", rep->best_depth, rep->best_depth == 1 ? "" : "s",
                rep->best_depth > rep->n_best_tail ? ", ending with:" : (rep->best_depth ? ":" : ""));
    for (size_t i = 0; i < rep->n_best_tail; i++) {
        sbuf_printf(b, "    ");
        describe(b, h, &kops[v->lin_to_kop[rep->best_tail[i]]]);
        sbuf_printf(b, "\n");
    }
    sbuf_printf(b, "  after it key %" PRId64 " holds %s; the ops that could come next:\n", key,
                val_str(rep->best_state, vs, sizeof vs));
    for (size_t i = 0; i < rep->n_candidates; i++) {
        const reg_op *c = &kops[v->lin_to_kop[rep->candidates[i]]];
        lin_val after;
        sbuf_printf(b, "    ");
        describe(b, h, c);
        if (lin_step(rep->best_state, &c->op, &after))
            sbuf_printf(b, ": could apply (-> %s), but no order of the remaining ops works after it\n",
                        val_str(after, vs, sizeof vs));
        else
            sbuf_printf(b, ": needs %s, but key holds %s\n", val_str(c->op.a, vs, sizeof vs),
                        val_str(rep->best_state, ws, sizeof ws));
    }
}

void register_explain_key(sbuf *b, const history *h, int64_t key, const reg_op *kops, size_t n,
                          const reg_verdict *v)
{
    sbuf_printf(b, "key %" PRId64 ": not linearizable (%zu op%s on this key)\n", key, n, n == 1 ? "" : "s");
    if (v->n_impossible) {
        sbuf_printf(b, "  impossible in any order (%zu op%s%s):\n", v->n_impossible,
                    v->n_impossible == 1 ? "" : "s", v->n_impossible > SHOWN_IMPOSSIBLE ? ", first 3 shown" : "");
        size_t shown = 0;
        for (size_t i = 0; i < n && shown < SHOWN_IMPOSSIBLE; i++) {
            reg_rule rule = reg_facts_rule(v->facts, &kops[i]);
            if (rule == REG_RULE_NONE)
                continue;
            sbuf_printf(b, "    ");
            describe(b, h, &kops[i]);
            sbuf_printf(b, ": ");
            cause(b, h, key, kops, n, &kops[i], rule);
            sbuf_printf(b, "\n");
            shown++;
        }
    }
    explain_search(b, h, key, kops, n, v);
}

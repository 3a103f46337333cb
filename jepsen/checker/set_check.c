/*
 * set_check.c — the set checker (rules in set_check.h).
 *
 * Two passes over the ok reads, in invoke order:
 *   A. what each read contains: unexpected, failed-but-present and
 *      duplicated elements; for every element the read that first
 *      completed containing it (which makes it required) and the last read,
 *      by invoke, containing it;
 *   B. what each read lacks: elements sorted by the point from which they are
 *      required, so a read only walks those required before its invoke.
 * Cost: O(total read size + reads x required elements).
 */
#include "set_check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "sbuf.h"

#define NONE ((size_t)-1)
#define DETAILS 3 /* examples explained per anomaly class */

typedef struct elem {
    int64_t v;
    size_t add_pos;         /* history position of the add's invoke */
    history_type outcome;   /* OK, FAIL or INFO */
    size_t required_from;   /* history position, NONE = never required */
    size_t mark_a, mark_b;  /* read id + 1 of the last read marking it, per pass */
    size_t first_seen;      /* read id completing first among those containing it */
    size_t last_seen;       /* read id invoked last among those containing it */
    size_t first_miss;      /* first read (by invoke) that lacked it while required */
    size_t worst_miss;      /* read with the latest completion that lacked it */
    size_t dup_read;        /* a read listing it twice */
    bool premature;         /* a read completed before its add was invoked */
} elem;

typedef struct sread {
    size_t inv, ret;        /* history positions */
    const history_value *items;
    size_t n;
} sread;

typedef struct set_state {
    const history *h;
    elem *elems;
    size_t n_elems;
    imap by_value;          /* element -> index into elems */
    sread *reads;
    size_t n_reads;
    imap strays;            /* never-added element -> first read id containing it */
    check_result *res;
} set_state;


static int add_elem(set_state *s, size_t pos, okv_error *err)
{
    const history_op *op = &s->h->ops[pos];
    if (op->value.kind != HV_INT)
        return history_op_error(err, "set", op, "an add's value must be an integer element");
    uint64_t *slot = imap_get(&s->by_value, op->value.i);
    if (slot)
        return history_op_error(err, "set", op, "element %" PRId64 " was already added at index %" PRId64
                      " (elements must be unique)", op->value.i, s->h->ops[s->elems[*slot].add_pos].index);
    elem *e = &s->elems[s->n_elems];
    memset(e, 0, sizeof *e);
    e->v = op->value.i;
    e->add_pos = pos;
    e->outcome = history_outcome(s->h, pos);
    e->required_from = NONE;
    e->first_seen = e->last_seen = e->first_miss = e->worst_miss = e->dup_read = NONE;
    if (imap_put(&s->by_value, e->v, s->n_elems))
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    s->n_elems++;
    return 0;
}

static int add_read(set_state *s, size_t pos, okv_error *err)
{
    if (history_outcome(s->h, pos) != HISTORY_OK)
        return 0;
    const history_op *done = &s->h->ops[s->h->ops[pos].pair];
    const history_value *v = &done->value;
    if (v->kind != HV_LIST)
        return history_op_error(err, "set", done, "an ok read's value must be an array of integer elements");
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i].kind != HV_INT)
            return history_op_error(err, "set", done, "an ok read's value must be an array of integer elements");
    s->reads[s->n_reads++] = (sread){ pos, s->h->ops[pos].pair, v->items, v->n };
    return 0;
}

static int collect(set_state *s, okv_error *err)
{
    size_t n = s->h->n_invokes ? s->h->n_invokes : 1;
    s->elems = malloc(n * sizeof *s->elems);
    s->reads = malloc(n * sizeof *s->reads);
    if (!s->elems || !s->reads)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE)
            continue;
        int rc;
        if (op->fn == HISTORY_F_ADD)
            rc = add_elem(s, pos, err);
        else if (op->fn == HISTORY_F_READ)
            rc = add_read(s, pos, err);
        else
            rc = history_op_error(err, "set", op, "f \"%s\" is not add or read", history_f(s->h, op));
        if (rc)
            return rc;
    }
    return 0;
}

/* Pass A: what each read contains. */
static int scan_contents(set_state *s)
{
    check_anomaly *unexpected = check_result_anomaly(s->res, "unexpected");
    check_anomaly *failed = check_result_anomaly(s->res, "failed-but-present");
    check_anomaly *dup = check_result_anomaly(s->res, "duplicated");
    for (size_t r = 0; r < s->n_reads; r++) {
        const sread *rd = &s->reads[r];
        for (size_t i = 0; i < rd->n; i++) {
            int64_t x = rd->items[i].i;
            uint64_t *slot = imap_get(&s->by_value, x);
            if (!slot) {
                if (!imap_get(&s->strays, x)) {
                    if (imap_put(&s->strays, x, r))
                        return OKV_ENOMEM;
                    check_anomaly_add(unexpected, x);
                }
                continue;
            }
            elem *e = &s->elems[*slot];
            if (e->mark_a == r + 1) {
                if (e->dup_read == NONE) {
                    e->dup_read = r;
                    check_anomaly_add(dup, x);
                }
                continue;
            }
            e->mark_a = r + 1;
            if (e->add_pos > rd->ret && !e->premature) {
                e->premature = true;
                check_anomaly_add(unexpected, x);
            }
            if (e->outcome == HISTORY_FAIL && e->first_seen == NONE)
                check_anomaly_add(failed, x);
            if (e->first_seen == NONE || rd->ret < s->reads[e->first_seen].ret)
                e->first_seen = r;
            e->last_seen = r;
        }
    }
    return 0;
}

typedef struct req {
    size_t from; /* history position from which the element is required */
    size_t elem;
} req;

static int req_cmp(const void *a, const void *b)
{
    const req *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return x->elem < y->elem ? -1 : x->elem > y->elem;
}

/* Pass B: what each read lacks. */
static int scan_misses(set_state *s)
{
    req *order = malloc((s->n_elems ? s->n_elems : 1) * sizeof *order);
    if (!order)
        return OKV_ENOMEM;
    size_t n_req = 0;
    for (size_t i = 0; i < s->n_elems; i++) {
        elem *e = &s->elems[i];
        if (e->outcome == HISTORY_FAIL)
            continue;
        size_t from = NONE;
        if (e->outcome == HISTORY_OK)
            from = s->h->ops[e->add_pos].pair;
        if (e->first_seen != NONE && s->reads[e->first_seen].ret < from)
            from = s->reads[e->first_seen].ret;
        e->required_from = from;
        if (from != NONE)
            order[n_req++] = (req){ from, i };
    }
    qsort(order, n_req, sizeof *order, req_cmp);
    for (size_t r = 0; r < s->n_reads; r++) {
        const sread *rd = &s->reads[r];
        for (size_t i = 0; i < rd->n; i++) {
            uint64_t *slot = imap_get(&s->by_value, rd->items[i].i);
            if (slot)
                s->elems[*slot].mark_b = r + 1;
        }
        for (size_t k = 0; k < n_req && order[k].from < rd->inv; k++) {
            elem *e = &s->elems[order[k].elem];
            if (e->mark_b == r + 1)
                continue;
            if (e->first_miss == NONE)
                e->first_miss = r;
            if (e->worst_miss == NONE || rd->ret > s->reads[e->worst_miss].ret)
                e->worst_miss = r;
        }
    }
    free(order);
    return 0;
}

/* Sorts each missed element into lost or stale; counts the rest. */
static void classify(set_state *s)
{
    check_anomaly *lost = check_result_anomaly(s->res, "lost");
    check_anomaly *stale = check_result_anomaly(s->res, "stale");
    uint64_t ok = 0, failed = 0, unknown = 0, recovered = 0;
    for (size_t i = 0; i < s->n_elems; i++) {
        const elem *e = &s->elems[i];
        ok += e->outcome == HISTORY_OK;
        failed += e->outcome == HISTORY_FAIL;
        unknown += e->outcome == HISTORY_INFO;
        recovered += e->outcome == HISTORY_INFO && e->first_seen != NONE;
        if (e->worst_miss == NONE)
            continue;
        bool seen_after = e->last_seen != NONE &&
                          s->reads[e->last_seen].inv > s->reads[e->worst_miss].ret;
        check_anomaly_add(seen_after ? stale : lost, e->v);
    }
    check_result_count(s->res, "attempted", s->n_elems);
    check_result_count(s->res, "acknowledged", ok);
    check_result_count(s->res, "failed", failed);
    check_result_count(s->res, "unknown", unknown);
    check_result_count(s->res, "recovered", recovered);
    check_result_count(s->res, "reads", s->n_reads);
}

/* ---- explanation ---- */

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static void describe_read(sbuf *b, const set_state *s, size_t r)
{
    const history_op *inv = &s->h->ops[s->reads[r].inv];
    const history_op *done = &s->h->ops[s->reads[r].ret];
    sbuf_printf(b, "the read at index %" PRId64 " (process %" PRId64 ", invoked t=%.6fs, ok t=%.6fs, %zu elements)",
                inv->index, inv->process, secs(inv->time), secs(done->time), s->reads[r].n);
}

static void describe_add(sbuf *b, const set_state *s, const elem *e)
{
    const history_op *inv = &s->h->ops[e->add_pos];
    sbuf_printf(b, "add at index %" PRId64 " (process %" PRId64 ", invoked t=%.6fs", inv->index, inv->process,
                secs(inv->time));
    if (inv->pair == HISTORY_NONE) {
        sbuf_printf(b, ", never completed)");
        return;
    }
    const history_op *done = &s->h->ops[inv->pair];
    sbuf_printf(b, ", %s t=%.6fs", history_type_name(done->type), secs(done->time));
    if (done->error)
        sbuf_printf(b, ", error \"%s\"", done->error);
    sbuf_printf(b, ")");
}

static void explain_elem(sbuf *b, const set_state *s, const char *cls, int64_t x)
{
    uint64_t *slot = imap_get(&s->by_value, x);
    sbuf_printf(b, "    %" PRId64 ": ", x);
    if (!slot) {
        uint64_t *r = imap_get(&s->strays, x);
        sbuf_printf(b, "never added, but ");
        describe_read(b, s, r ? (size_t)*r : 0);
        sbuf_printf(b, " contains it\n");
        return;
    }
    const elem *e = &s->elems[*slot];
    describe_add(b, s, e);
    if (strcmp(cls, "lost") == 0 || strcmp(cls, "stale") == 0) {
        sbuf_printf(b, "; required by every read invoked after index %" PRId64 ", but missing from ",
                    s->h->ops[e->required_from].index);
        size_t r = strcmp(cls, "lost") == 0 ? e->worst_miss : e->first_miss;
        describe_read(b, s, r);
        if (strcmp(cls, "stale") == 0) {
            sbuf_printf(b, "; ");
            describe_read(b, s, e->last_seen);
            sbuf_printf(b, " contains it again\n");
        } else if (e->last_seen == NONE) {
            sbuf_printf(b, "; no read ever contained it\n");
        } else {
            sbuf_printf(b, " and every read after it; last seen by ");
            describe_read(b, s, e->last_seen);
            sbuf_printf(b, "\n");
        }
    } else if (strcmp(cls, "duplicated") == 0) {
        sbuf_printf(b, "; listed more than once by ");
        describe_read(b, s, e->dup_read);
        sbuf_printf(b, "\n");
    } else if (e->premature) {
        sbuf_printf(b, "; invoked only after ");
        describe_read(b, s, e->first_seen);
        sbuf_printf(b, " had completed, yet that read contains it\n");
    } else {
        sbuf_printf(b, "; the add failed, yet ");
        describe_read(b, s, e->first_seen);
        sbuf_printf(b, " contains it\n");
    }
}

static void explain(sbuf *b, const set_state *s)
{
    static const char *const classes[] = { "lost", "stale", "unexpected", "failed-but-present", "duplicated" };
    if (s->n_reads == 0)
        sbuf_printf(b, "the history has no ok read, so nothing can be said about the %zu adds\n", s->n_elems);
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        const check_anomaly *a = NULL;
        for (size_t i = 0; i < s->res->n_anomalies; i++)
            if (strcmp(s->res->anomalies[i].name, classes[c]) == 0)
                a = &s->res->anomalies[i];
        if (!a || !a->count)
            continue;
        sbuf_printf(b, "%s: %" PRIu64 " element%s (e.g.", classes[c], a->count, a->count == 1 ? "" : "s");
        for (size_t k = 0; k < a->n_examples; k++)
            sbuf_printf(b, " %" PRId64, a->examples[k]);
        sbuf_printf(b, ")\n");
        for (size_t k = 0; k < a->n_examples && k < DETAILS; k++)
            explain_elem(b, s, classes[c], a->examples[k]);
    }
}

int set_check(check_result **out, const history *h, okv_error *err)
{
    *out = NULL;
    set_state s = { .h = h };
    imap_init(&s.by_value);
    imap_init(&s.strays);
    s.res = check_result_new("set");
    int rc = s.res ? collect(&s, err) : okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (!rc) {
        /* every class appears in the result, zero or not */
        static const char *const classes[] = { "lost", "stale", "unexpected", "failed-but-present", "duplicated" };
        for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++)
            check_result_anomaly(s.res, classes[c]);
        rc = scan_contents(&s);
        if (!rc)
            rc = scan_misses(&s);
        if (rc)
            okv_error_set(err, rc, "out of memory");
    }
    if (!rc) {
        classify(&s);
        s.res->ops = h->n_invokes;
        s.res->keys = 1;
        bool bad = false;
        for (size_t i = 0; i < s.res->n_anomalies; i++)
            bad |= s.res->anomalies[i].count > 0;
        s.res->validity = bad ? CHECK_INVALID : s.n_reads == 0 ? CHECK_UNKNOWN : CHECK_VALID;
        sbuf b = SBUF_INIT;
        explain(&b, &s);
        if (!(s.res->explanation = sbuf_take(&b)))
            rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
    }
    free(s.elems);
    free(s.reads);
    imap_free(&s.by_value);
    imap_free(&s.strays);
    if (rc) {
        check_result_free(s.res);
        return rc;
    }
    *out = s.res;
    return 0;
}

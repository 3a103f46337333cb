/*
 * sequential_check.c — the sequential checker (rules in sequential_check.h).
 *
 * Writes are grouped by index (a failed write may be retried with the same
 * index): an index is ok if any write of it was ok (the first ok completion
 * counts), unknown if none was ok but one got info or never completed, and
 * failed if every write of it failed. Each read then checks only its highest
 * written index n against the ok indices below n, which costs
 * O(read size + ok indices below n) per read.
 */
#include "sequential_check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "sbuf.h"

#define NONE ((size_t)-1)
#define DETAILS 3

typedef struct widx {
    int64_t i;
    size_t first_inv;       /* position of the first invoke of a write of i */
    size_t ok_ret;          /* position of the first ok completion, or NONE */
    bool any_unknown;       /* some write of i got info or never completed */
    size_t mark;            /* read id + 1 of the last read containing it */
    size_t first_read;      /* first read containing it, or NONE */
    bool premature;         /* contained by a read that completed before its first invoke */
} widx;

typedef struct sread {
    size_t inv, ret;
    int64_t probe;          /* m */
    const history_value *items;
    size_t n;
} sread;

typedef struct gap {
    size_t read;
    int64_t seen;           /* n */
    int64_t first_missing;  /* smallest i missing */
    size_t n_missing;
} gap;

typedef struct seq_state {
    const history *h;
    widx *w;
    size_t n_w;
    imap by_index;          /* index -> into w */
    widx **ok_sorted;       /* ok entries of w by ascending index */
    size_t n_ok;
    sread *reads;
    size_t n_reads;
    imap strays;            /* never-written index -> first read containing it */
    gap gaps[DETAILS];
    size_t n_gaps;
    check_result *res;
} seq_state;


static int add_write(seq_state *s, size_t pos, okv_error *err)
{
    const history_op *op = &s->h->ops[pos];
    if (op->value.kind != HV_INT || op->value.i < 0)
        return history_op_error(err, "sequential", op, "a write's value must be a non-negative integer index");
    uint64_t *slot = imap_get(&s->by_index, op->value.i);
    widx *w;
    if (slot) {
        w = &s->w[*slot];
    } else {
        w = &s->w[s->n_w];
        memset(w, 0, sizeof *w);
        w->i = op->value.i;
        w->first_inv = pos;
        w->ok_ret = NONE;
        w->first_read = NONE;
        if (imap_put(&s->by_index, w->i, s->n_w))
            return okv_error_set(err, OKV_ENOMEM, "out of memory");
        s->n_w++;
    }
    history_type t = history_outcome(s->h, pos);
    if (t == HISTORY_OK && w->ok_ret == NONE)
        w->ok_ret = op->pair;
    if (t == HISTORY_INFO)
        w->any_unknown = true;
    return 0;
}

static int add_read(seq_state *s, size_t pos, okv_error *err)
{
    const history_op *inv = &s->h->ops[pos];
    if (inv->value.kind != HV_INT || inv->value.i < 0)
        return history_op_error(err, "sequential", inv, "a read's invoke value must be the highest index to probe (a non-negative integer)");
    if (history_outcome(s->h, pos) != HISTORY_OK)
        return 0;
    const history_op *done = &s->h->ops[inv->pair];
    const history_value *v = &done->value;
    if (v->kind != HV_LIST)
        return history_op_error(err, "sequential", done, "an ok read's value must be an array of indices");
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i].kind != HV_INT || v->items[i].i < 0)
            return history_op_error(err, "sequential", done, "an ok read's value must be an array of non-negative integer indices");
        if (v->items[i].i > inv->value.i)
            return history_op_error(err, "sequential", done, "the read found index %" PRId64 " above its probe bound %" PRId64,
                          v->items[i].i, inv->value.i);
    }
    s->reads[s->n_reads++] = (sread){ pos, inv->pair, inv->value.i, v->items, v->n };
    return 0;
}

static int collect(seq_state *s, okv_error *err)
{
    size_t n = s->h->n_invokes ? s->h->n_invokes : 1;
    s->w = malloc(n * sizeof *s->w);
    s->reads = malloc(n * sizeof *s->reads);
    s->ok_sorted = malloc(n * sizeof *s->ok_sorted);
    if (!s->w || !s->reads || !s->ok_sorted)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE)
            continue;
        int rc;
        if (op->fn == HISTORY_F_WRITE)
            rc = add_write(s, pos, err);
        else if (op->fn == HISTORY_F_READ)
            rc = add_read(s, pos, err);
        else
            rc = history_op_error(err, "sequential", op, "f \"%s\" is not write or read", history_f(s->h, op));
        if (rc)
            return rc;
    }
    return 0;
}

static int ok_cmp(const void *a, const void *b)
{
    const widx *x = *(const widx *const *)a, *y = *(const widx *const *)b;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* ok_sorted: the indices whose write was ok, ascending. */
static void sort_ok(seq_state *s)
{
    s->n_ok = 0;
    for (size_t k = 0; k < s->n_w; k++)
        if (s->w[k].ok_ret != NONE)
            s->ok_sorted[s->n_ok++] = &s->w[k];
    qsort(s->ok_sorted, s->n_ok, sizeof *s->ok_sorted, ok_cmp);
}

/* Marks what read r contains; returns the highest written index in it that
 * was invoked before the read completed, or NULL. */
static const widx *scan_contents(seq_state *s, size_t r, int *rc)
{
    const sread *rd = &s->reads[r];
    const widx *top = NULL;
    for (size_t k = 0; k < rd->n; k++) {
        int64_t x = rd->items[k].i;
        uint64_t *slot = imap_get(&s->by_index, x);
        if (!slot) {
            if (!imap_get(&s->strays, x)) {
                if (imap_put(&s->strays, x, r)) {
                    *rc = OKV_ENOMEM;
                    return NULL;
                }
                check_anomaly_add(check_result_anomaly(s->res, "unexpected"), x);
            }
            continue;
        }
        widx *w = &s->w[*slot];
        w->mark = r + 1;
        if (w->first_read == NONE) {
            w->first_read = r;
            if (w->ok_ret == NONE && !w->any_unknown)
                check_anomaly_add(check_result_anomaly(s->res, "failed-but-present"), x);
        }
        if (w->first_inv > rd->ret) {
            if (!w->premature) {
                w->premature = true;
                check_anomaly_add(check_result_anomaly(s->res, "unexpected"), x);
            }
            continue;
        }
        if (!top || w->i > top->i)
            top = w;
    }
    return top;
}

/* The gap rule for read r whose highest written index is top. */
static void check_gap(seq_state *s, size_t r, const widx *top)
{
    size_t missing = 0;
    int64_t first = 0;
    for (size_t k = 0; k < s->n_ok && s->ok_sorted[k]->i < top->i; k++) {
        const widx *w = s->ok_sorted[k];
        if (w->mark == r + 1 || w->ok_ret > top->first_inv)
            continue;
        if (!missing)
            first = w->i;
        missing++;
        check_anomaly_add(check_result_anomaly(s->res, "missing-indices"), w->i);
    }
    if (!missing)
        return;
    check_anomaly_add(check_result_anomaly(s->res, "gap"), s->h->ops[s->reads[r].inv].index);
    if (s->n_gaps < DETAILS)
        s->gaps[s->n_gaps++] = (gap){ r, top->i, first, missing };
}

/* ---- explanation ---- */

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static void describe_read(sbuf *b, const seq_state *s, size_t r)
{
    const sread *rd = &s->reads[r];
    const history_op *inv = &s->h->ops[rd->inv];
    sbuf_printf(b, "the read at index %" PRId64 " (process %" PRId64 ", probe %" PRId64
                ", invoked t=%.6fs, ok t=%.6fs, %zu found)",
                inv->index, inv->process, rd->probe, secs(inv->time), secs(s->h->ops[rd->ret].time), rd->n);
}

static void describe_write(sbuf *b, const seq_state *s, const widx *w)
{
    const history_op *inv = &s->h->ops[w->first_inv];
    sbuf_printf(b, "write of %" PRId64 " invoked at index %" PRId64 " (process %" PRId64 ", t=%.6fs", w->i,
                inv->index, inv->process, secs(inv->time));
    if (w->ok_ret != NONE)
        sbuf_printf(b, ", ok at index %" PRId64 " t=%.6fs)", s->h->ops[w->ok_ret].index,
                    secs(s->h->ops[w->ok_ret].time));
    else if (w->any_unknown)
        sbuf_printf(b, ", outcome unknown)");
    else
        sbuf_printf(b, ", failed)");
}

static const widx *find(const seq_state *s, int64_t i)
{
    uint64_t *slot = imap_get(&s->by_index, i);
    return slot ? &s->w[*slot] : NULL;
}

static void explain(sbuf *b, const seq_state *s)
{
    if (s->n_reads == 0)
        sbuf_printf(b, "the history has no ok read, so nothing can be said about the %zu written indices\n", s->n_w);
    const check_anomaly *gaps = check_result_anomaly(s->res, "gap");
    if (gaps->count)
        sbuf_printf(b, "gap: %" PRIu64 " reads saw an index but not an earlier acknowledged one "
                    "(%" PRIu64 " missing indices in all)\n", gaps->count,
                    check_result_anomaly(s->res, "missing-indices")->count);
    for (size_t g = 0; g < s->n_gaps; g++) {
        const gap *x = &s->gaps[g];
        sbuf_printf(b, "    ");
        describe_read(b, s, x->read);
        sbuf_printf(b, " saw %" PRId64 " but not %" PRId64 "%s", x->seen, x->first_missing,
                    x->n_missing > 1 ? " (and more below it)" : "");
        sbuf_printf(b, "; ");
        describe_write(b, s, find(s, x->first_missing));
        sbuf_printf(b, " was acknowledged before the ");
        describe_write(b, s, find(s, x->seen));
        sbuf_printf(b, "\n");
    }
    static const char *const classes[] = { "unexpected", "failed-but-present" };
    for (size_t c = 0; c < 2; c++) {
        const check_anomaly *a = check_result_anomaly(s->res, classes[c]);
        if (!a->count)
            continue;
        sbuf_printf(b, "%s: %" PRIu64 " indices (e.g.", classes[c], a->count);
        for (size_t k = 0; k < a->n_examples; k++)
            sbuf_printf(b, " %" PRId64, a->examples[k]);
        sbuf_printf(b, ")\n");
        for (size_t k = 0; k < a->n_examples && k < DETAILS; k++) {
            const widx *w = find(s, a->examples[k]);
            sbuf_printf(b, "    %" PRId64 ": ", a->examples[k]);
            if (!w) {
                uint64_t *r = imap_get(&s->strays, a->examples[k]);
                sbuf_printf(b, "never written, but ");
                describe_read(b, s, r ? (size_t)*r : 0);
                sbuf_printf(b, " found it\n");
                continue;
            }
            describe_write(b, s, w);
            sbuf_printf(b, w->premature ? "; invoked only after " : "; yet ");
            describe_read(b, s, w->first_read);
            sbuf_printf(b, w->premature ? " had completed, which found it\n" : " found it\n");
        }
    }
}

int sequential_check(check_result **out, const history *h, okv_error *err)
{
    *out = NULL;
    seq_state s = { .h = h };
    imap_init(&s.by_index);
    imap_init(&s.strays);
    s.res = check_result_new("sequential");
    int rc = s.res ? collect(&s, err) : okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (!rc) {
        static const char *const classes[] = { "gap", "unexpected", "failed-but-present", "missing-indices" };
        for (size_t c = 0; c < 4; c++)
            check_result_anomaly(s.res, classes[c]);
        sort_ok(&s);
        for (size_t r = 0; r < s.n_reads && !rc; r++) {
            const widx *top = scan_contents(&s, r, &rc);
            if (top)
                check_gap(&s, r, top);
        }
        if (rc)
            okv_error_set(err, rc, "out of memory");
    }
    if (!rc) {
        uint64_t ok = 0, failed = 0, unknown = 0;
        for (size_t k = 0; k < s.n_w; k++) {
            ok += s.w[k].ok_ret != NONE;
            unknown += s.w[k].ok_ret == NONE && s.w[k].any_unknown;
            failed += s.w[k].ok_ret == NONE && !s.w[k].any_unknown;
        }
        check_result_count(s.res, "written-indices", s.n_w);
        check_result_count(s.res, "acknowledged", ok);
        check_result_count(s.res, "failed", failed);
        check_result_count(s.res, "unknown", unknown);
        check_result_count(s.res, "reads", s.n_reads);
        s.res->ops = h->n_invokes;
        s.res->keys = 1;
        bool bad = check_result_anomaly_count(s.res, "gap") || check_result_anomaly_count(s.res, "unexpected") ||
                   check_result_anomaly_count(s.res, "failed-but-present");
        s.res->validity = bad ? CHECK_INVALID : s.n_reads == 0 ? CHECK_UNKNOWN : CHECK_VALID;
        sbuf b = SBUF_INIT;
        explain(&b, &s);
        if (!(s.res->explanation = sbuf_take(&b)))
            rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
    }
    free(s.w);
    free(s.reads);
    free(s.ok_sorted);
    imap_free(&s.by_index);
    imap_free(&s.strays);
    if (rc) {
        check_result_free(s.res);
        return rc;
    }
    *out = s.res;
    return 0;
}

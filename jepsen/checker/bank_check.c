/*
 * bank_check.c — the bank checker (rules in bank_check.h).
 *
 * The invariant needs no search: whatever order the transfers took effect
 * in, each moves money between two accounts, so every state a read can see
 * holds the same N accounts with the same total. One pass over the reads,
 * O(read size) each; an account is a dense integer below N, so "listed in
 * this read" is a per-account mark (the read's id) instead of a set.
 *
 * To help find the culprit of a wrong total, the explanation pairs the
 * first read with a wrong total with the last read that completed before it
 * began and had the right one, and counts the transfers that overlap the
 * time between the two by outcome: with the credit applied by a failed
 * transfer (a planted partial application) the failed ones are the suspects.
 */
#include "bank_check.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

#define NONE ((size_t)-1)
#define DETAILS 3 /* reads explained per anomaly class */

enum { C_WRONG_TOTAL, C_NEGATIVE, C_MISSING, C_UNEXPECTED, C_BAD_VALUE, C_CLASSES };
static const char *const CLASS[C_CLASSES] = { "wrong-total", "negative-balance", "missing-account",
                                              "unexpected-account", "bad-value" };

typedef struct bread {
    size_t inv, ret;              /* history positions */
    const history_value *v;       /* the ok value: [[account, balance], ...] */
    bool complete;                /* every account exactly once, each a counter */
    bool overflow;                /* the sum left int64 */
    int64_t total;                /* sum of the counters of the accounts listed */
} bread;

typedef struct bank_state {
    const history *h;
    int64_t n, initial, expected;
    size_t init_ret;              /* position of the first ok init's completion */
    bread *reads;
    size_t n_reads, failed_reads;
    uint64_t *mark;               /* per account: id + 1 of the last read listing it */
    uint64_t transfers[3];        /* by outcome: ok, fail, info */
    size_t detail[C_CLASSES][DETAILS];
    size_t n_detail[C_CLASSES];
    int64_t wrong_min, wrong_max; /* totals of the reads with a wrong total that fit int64 */
    uint64_t wrong_in_range;      /* how many reads those are */
    check_result *res;
} bank_state;

static bool is_int(const history_value *v) { return v->kind == HV_INT; }

/* ---- format ---------------------------------------------------------------- */

static int find_init(bank_state *s, okv_error *err)
{
    s->init_ret = NONE;
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE || op->fn != HISTORY_F_INIT)
            continue;
        const history_value *v = &op->value;
        if (v->kind != HV_LIST || v->n != 2 || !is_int(&v->items[0]) || !is_int(&v->items[1]))
            return history_op_error(err, "bank", op, "an init's value must be [accounts, initial balance]");
        int64_t n = v->items[0].i, initial = v->items[1].i;
        if (n < 1 || n > BANK_CHECK_MAX_ACCOUNTS)
            return history_op_error(err, "bank", op, "an init declares %" PRId64 " accounts; 1..%d are supported",
                                    n, BANK_CHECK_MAX_ACCOUNTS);
        if (initial < 0 || initial > INT64_MAX / n)
            return history_op_error(err, "bank", op, "an init's balance %" PRId64 " is negative or its total "
                                    "overflows int64", initial);
        if (history_outcome(s->h, pos) != HISTORY_OK)
            continue;
        if (s->init_ret == NONE) {
            s->n = n;
            s->initial = initial;
            s->init_ret = op->pair;
        } else if (n != s->n || initial != s->initial) {
            return history_op_error(err, "bank", op, "this init says %" PRId64 " accounts of %" PRId64
                                    " but an earlier one said %" PRId64 " of %" PRId64,
                                    n, initial, s->n, s->initial);
        }
    }
    if (s->init_ret == NONE)
        return okv_error_set(err, OKV_EINVAL, "bank workload: no ok init op, so the history does not say "
                             "how many accounts there are or what they held (okv-jepsen records one before "
                             "the main phase; is this a bank history?)");
    s->expected = s->n * s->initial;
    return 0;
}

static int add_transfer(bank_state *s, size_t pos, okv_error *err)
{
    const history_op *op = &s->h->ops[pos];
    const history_value *v = &op->value;
    if (v->kind != HV_LIST || v->n != 3 || !is_int(&v->items[0]) || !is_int(&v->items[1]) ||
        !is_int(&v->items[2]))
        return history_op_error(err, "bank", op, "a transfer's value must be [from, to, amount]");
    for (int k = 0; k < 2; k++)
        if (v->items[k].i < 0 || v->items[k].i >= s->n)
            return history_op_error(err, "bank", op, "a transfer names account %" PRId64 ", not one of the "
                                    "%" PRId64 " accounts", v->items[k].i, s->n);
    history_type t = history_outcome(s->h, pos);
    s->transfers[t == HISTORY_OK ? 0 : t == HISTORY_FAIL ? 1 : 2]++;
    return 0;
}

static int add_read(bank_state *s, size_t pos, okv_error *err)
{
    const history_op *inv = &s->h->ops[pos];
    if (inv->value.kind != HV_NULL)
        return history_op_error(err, "bank", inv, "a read's invoke value must be null");
    if (history_outcome(s->h, pos) != HISTORY_OK) {
        s->failed_reads++;
        return 0;
    }
    const history_op *done = &s->h->ops[inv->pair];
    const history_value *v = &done->value;
    if (v->kind != HV_LIST)
        return history_op_error(err, "bank", done, "an ok read's value must be an array of [account, balance]");
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i].kind != HV_LIST || v->items[i].n != 2)
            return history_op_error(err, "bank", done, "an ok read's value must be an array of [account, balance]");
    s->reads[s->n_reads++] = (bread){ pos, inv->pair, v, false, false, 0 };
    return 0;
}

static int collect(bank_state *s, okv_error *err)
{
    size_t n = s->h->n_invokes ? s->h->n_invokes : 1;
    s->reads = malloc(n * sizeof *s->reads);
    s->mark = calloc((size_t)s->n, sizeof *s->mark);
    if (!s->reads || !s->mark)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    for (size_t pos = 0; pos < s->h->n_ops; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE || op->fn == HISTORY_F_INIT)
            continue;
        /* The accounts exist from the init's completion on; an op before it
         * would be a runner bug, not the database's. */
        if (pos < s->init_ret && (op->fn == HISTORY_F_TRANSFER || op->fn == HISTORY_F_READ))
            return history_op_error(err, "bank", op, "invoked before the init op completed");
        int rc;
        if (op->fn == HISTORY_F_TRANSFER)
            rc = add_transfer(s, pos, err);
        else if (op->fn == HISTORY_F_READ)
            rc = add_read(s, pos, err);
        else
            rc = history_op_error(err, "bank", op, "f \"%s\" is not init, transfer or read", history_f(s->h, op));
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- the rules ----------------------------------------------------------- */

static void flag(bank_state *s, int c, size_t r)
{
    check_anomaly_add(check_result_anomaly(s->res, CLASS[c]), s->h->ops[s->reads[r].inv].index);
    if (s->n_detail[c] < DETAILS)
        s->detail[c][s->n_detail[c]++] = r;
}

static void check_read(bank_state *s, size_t r)
{
    bread *rd = &s->reads[r];
    uint64_t id = (uint64_t)r + 1;
    bool unexpected = false, bad = false, negative = false;
    int64_t present = 0, counters = 0;
    for (size_t i = 0; i < rd->v->n; i++) {
        const history_value *a = &rd->v->items[i].items[0], *b = &rd->v->items[i].items[1];
        if (!is_int(a) || a->i < 0 || a->i >= s->n || s->mark[a->i] == id) {
            unexpected = true;
            continue;
        }
        s->mark[a->i] = id;
        present++;
        if (!is_int(b)) {
            bad = true;
            continue;
        }
        counters++;
        negative |= b->i < 0;
        if ((b->i > 0 && rd->total > INT64_MAX - b->i) || (b->i < 0 && rd->total < INT64_MIN - b->i))
            rd->overflow = true;
        else
            rd->total += b->i;
    }
    rd->complete = present == s->n && counters == s->n;
    if (rd->complete && (rd->overflow || rd->total != s->expected)) {
        if (!rd->overflow) {
            if (!s->wrong_in_range || rd->total < s->wrong_min)
                s->wrong_min = rd->total;
            if (!s->wrong_in_range || rd->total > s->wrong_max)
                s->wrong_max = rd->total;
            s->wrong_in_range++;
        }
        flag(s, C_WRONG_TOTAL, r);
    }
    if (negative)
        flag(s, C_NEGATIVE, r);
    if (present < s->n)
        flag(s, C_MISSING, r);
    if (unexpected)
        flag(s, C_UNEXPECTED, r);
    if (bad)
        flag(s, C_BAD_VALUE, r);
}

/* ---- explanation ----------------------------------------------------------- */

static double secs(int64_t ns) { return (double)ns / 1e9; }

static void describe_read(sbuf *b, const bank_state *s, size_t r)
{
    const bread *rd = &s->reads[r];
    const history_op *inv = &s->h->ops[rd->inv];
    sbuf_printf(b, "the read at index %" PRId64 " (process %" PRId64 ", invoked t=%.6fs, ok t=%.6fs)",
                inv->index, inv->process, secs(inv->time), secs(s->h->ops[rd->ret].time));
}

static void show_value(sbuf *b, const bank_state *s, size_t r)
{
    char buf[400];
    sbuf_printf(b, "\n        %s\n", history_value_str(s->reads[r].v, buf, sizeof buf));
}

/* The facts of class c in read r, after "    <read>: ". */
static void describe_fact(sbuf *b, const bank_state *s, int c, size_t r)
{
    const bread *rd = &s->reads[r];
    const history_value *v = rd->v;
    if (c == C_WRONG_TOTAL) {
        if (rd->overflow)
            sbuf_printf(b, "the balances overflow int64");
        else
            sbuf_printf(b, "total %" PRId64 " (%+" PRId64 ")", rd->total, rd->total - s->expected);
        return;
    }
    if (c == C_MISSING) {
        /* Recomputed: later reads have overwritten the marks. */
        bool *seen = calloc((size_t)s->n, sizeof *seen);
        if (!seen)
            return;
        for (size_t i = 0; i < v->n; i++) {
            const history_value *a = &v->items[i].items[0];
            if (is_int(a) && a->i >= 0 && a->i < s->n)
                seen[a->i] = true;
        }
        int64_t missing = 0;
        sbuf_printf(b, "lacks account");
        for (int64_t a = 0; a < s->n; a++)
            if (!seen[a] && missing++ < 10)
                sbuf_printf(b, "%s %" PRId64, missing > 1 ? "," : "", a);
        if (missing > 10)
            sbuf_printf(b, " and %" PRId64 " more", missing - 10);
        sbuf_printf(b, " (of 0..%" PRId64 ")", s->n - 1);
        free(seen);
        return;
    }
    const char *sep = "";
    int shown = 0;
    bool text = false;
    for (size_t i = 0; i < v->n && shown < 5; i++) {
        const history_value *a = &v->items[i].items[0], *bal = &v->items[i].items[1];
        bool account = is_int(a) && a->i >= 0 && a->i < s->n;
        if (c == C_NEGATIVE && account && is_int(bal) && bal->i < 0) {
            sbuf_printf(b, "%saccount %" PRId64 " at %" PRId64, sep, a->i, bal->i);
        } else if (c == C_BAD_VALUE && account && !is_int(bal)) {
            sbuf_printf(b, "%saccount %" PRId64 " holds a value that is not an 8-byte counter", sep, a->i);
        } else if (c == C_UNEXPECTED && !account) {
            char buf[64];
            sbuf_printf(b, "%sentry %zu names %s, not one of the accounts 0..%" PRId64, sep, i,
                        history_value_str(a, buf, sizeof buf), s->n - 1);
            text |= a->kind == HV_OTHER;
        } else if (c == C_UNEXPECTED) {
            size_t first = 0;
            while (first < i && !(is_int(&v->items[first].items[0]) && v->items[first].items[0].i == a->i))
                first++;
            if (first == i)
                continue;
            sbuf_printf(b, "%saccount %" PRId64 " is listed twice (entries %zu and %zu)", sep, a->i, first, i);
        } else {
            continue;
        }
        sep = "; ";
        shown++;
    }
    if (text)
        sbuf_printf(b, " (\"?\" stands for a key okv-jepsen recorded as text: see history.json)");
}

/* Transfers that may have taken effect between the snapshots of read good
 * (or the init, if good is NONE) and read bad: invoked before bad completed,
 * and not completed before good was invoked. */
static void between(sbuf *b, const bank_state *s, size_t good, size_t bad)
{
    size_t from = good == NONE ? s->init_ret : s->reads[good].inv, to = s->reads[bad].ret;
    uint64_t by[3] = { 0, 0, 0 };
    for (size_t pos = 0; pos < to; pos++) {
        const history_op *op = &s->h->ops[pos];
        if (op->type != HISTORY_INVOKE || op->fn != HISTORY_F_TRANSFER || op->process == HISTORY_NEMESIS)
            continue;
        if (op->pair != HISTORY_NONE && op->pair < from)
            continue;
        history_type t = history_outcome(s->h, pos);
        by[t == HISTORY_OK ? 0 : t == HISTORY_FAIL ? 1 : 2]++;
    }
    sbuf_printf(b, "; transfers in between: %" PRIu64 " committed, %" PRIu64 " failed, %" PRIu64
                " of unknown outcome (a failed one must have had no effect)\n", by[0], by[1], by[2]);
}

static void explain_wrong_total(sbuf *b, const bank_state *s)
{
    const check_anomaly *a = check_result_anomaly(s->res, CLASS[C_WRONG_TOTAL]);
    sbuf_printf(b, "wrong-total: %" PRIu64 " of %zu ok reads saw a total other than %" PRId64 " (%" PRId64
                " accounts x %" PRId64 ")", a->count, s->n_reads, s->expected, s->n, s->initial);
    if (s->wrong_in_range)
        sbuf_printf(b, ", from %" PRId64 " to %" PRId64, s->wrong_min, s->wrong_max);
    if (s->wrong_in_range < a->count)
        sbuf_printf(b, "%s %" PRIu64 " overflowing int64", s->wrong_in_range ? "; and" : ",",
                    a->count - s->wrong_in_range);
    sbuf_printf(b, "\n");
    size_t first = s->detail[C_WRONG_TOTAL][0];
    /* The last read that completed before the first wrong one began and
     * still had the right total. */
    size_t good = NONE;
    for (size_t r = 0; r < first; r++) {
        const bread *rd = &s->reads[r];
        if (rd->complete && !rd->overflow && rd->total == s->expected && rd->ret < s->reads[first].inv &&
            (good == NONE || rd->ret > s->reads[good].ret))
            good = r;
    }
    sbuf_printf(b, "    before the first of them, ");
    if (good == NONE) {
        sbuf_printf(b, "no read had the right total: compare with the init (total %" PRId64 ")", s->expected);
    } else {
        describe_read(b, s, good);
        sbuf_printf(b, " had it");
    }
    between(b, s, good, first);
    sbuf_printf(b, "    transfers only move money, so some transaction applied in part: a committed "
                "transfer with one of its two writes, a failed one (e.g. stopped by its floor) that "
                "still applied a write, or a read that saw a transaction half-applied\n");
}

static void explain(sbuf *b, const bank_state *s)
{
    if (s->n_reads == 0)
        sbuf_printf(b, "the history has no ok read (%zu reads failed), so nothing can be said about the %"
                    PRId64 " accounts\n", s->failed_reads, s->n);
    static const char *const why[C_CLASSES] = {
        NULL,
        "saw a balance below 0, which every debit's floor of 0 forbids",
        "lacked an account (every account exists from the init on; transfers never delete one)",
        "listed an entry that is not one of the accounts, or an account twice",
        "saw a value that is not an 8-byte counter (transfers only add to counters)",
    };
    for (int c = 0; c < C_CLASSES; c++) {
        const check_anomaly *a = check_result_anomaly(s->res, CLASS[c]);
        if (!a->count)
            continue;
        if (c == C_WRONG_TOTAL)
            explain_wrong_total(b, s);
        else
            sbuf_printf(b, "%s: %" PRIu64 " of %zu ok reads %s\n", CLASS[c], a->count, s->n_reads, why[c]);
        for (size_t k = 0; k < s->n_detail[c]; k++) {
            sbuf_printf(b, "    ");
            describe_read(b, s, s->detail[c][k]);
            sbuf_printf(b, ": ");
            describe_fact(b, s, c, s->detail[c][k]);
            show_value(b, s, s->detail[c][k]);
        }
    }
}

int bank_check(check_result **out, const history *h, okv_error *err)
{
    *out = NULL;
    bank_state s = { .h = h };
    s.res = check_result_new("bank");
    int rc = s.res ? find_init(&s, err) : okv_error_set(err, OKV_ENOMEM, "out of memory");
    if (!rc)
        rc = collect(&s, err);
    if (!rc) {
        for (int c = 0; c < C_CLASSES; c++)
            check_result_anomaly(s.res, CLASS[c]);
        for (size_t r = 0; r < s.n_reads; r++)
            check_read(&s, r);
        check_result_count(s.res, "accounts", (uint64_t)s.n);
        check_result_count(s.res, "expected-total", (uint64_t)s.expected);
        check_result_count(s.res, "reads", s.n_reads);
        check_result_count(s.res, "failed-reads", s.failed_reads);
        check_result_count(s.res, "transfers-ok", s.transfers[0]);
        check_result_count(s.res, "transfers-failed", s.transfers[1]);
        check_result_count(s.res, "transfers-unknown", s.transfers[2]);
        s.res->ops = h->n_invokes;
        s.res->keys = (uint64_t)s.n;
        bool bad = false;
        for (int c = 0; c < C_CLASSES; c++)
            bad |= check_result_anomaly_count(s.res, CLASS[c]) > 0;
        s.res->validity = bad ? CHECK_INVALID : s.n_reads == 0 ? CHECK_UNKNOWN : CHECK_VALID;
        sbuf b = SBUF_INIT;
        explain(&b, &s);
        if (!(s.res->explanation = sbuf_take(&b)))
            rc = okv_error_set(err, OKV_ENOMEM, "out of memory");
    }
    free(s.reads);
    free(s.mark);
    if (rc) {
        check_result_free(s.res);
        return rc;
    }
    *out = s.res;
    return 0;
}

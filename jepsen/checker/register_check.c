/*
 * register_check.c — splits a register history by key and runs the
 * linearizability search (linear.c) on each key in ascending key order,
 * under one shared deadline and a per-key state budget.
 */
#include "register_check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linear.h"
#include "register_int.h"
#include "sbuf.h"


static bool to_val(const history_value *v, bool allow_null, lin_val *out)
{
    if (v->kind == HV_INT) {
        *out = (lin_val){ v->i, false };
        return true;
    }
    if (v->kind == HV_NULL && allow_null) {
        *out = (lin_val){ 0, true };
        return true;
    }
    return false;
}

static bool is_pair_with_key(const history_value *v)
{
    return v->kind == HV_LIST && v->n == 2 && v->items[0].kind == HV_INT;
}

/* Reads the register op invoked at pos into *r. */
static int read_op(const history *h, size_t pos, reg_op *r, okv_error *err)
{
    const history_op *inv = &h->ops[pos];
    const history_value *v = &inv->value;
    if (inv->fn != HISTORY_F_READ && inv->fn != HISTORY_F_WRITE && inv->fn != HISTORY_F_CAS)
        return history_op_error(err, "register", inv, "f \"%s\" is not read, write or cas", history_f(h, inv));
    if (!is_pair_with_key(v))
        return history_op_error(err, "register", inv, "value must be [key, v] with an integer key");
    memset(r, 0, sizeof *r);
    r->key = v->items[0].i;
    r->pos = pos;
    r->ret = inv->pair;
    r->outcome = history_outcome(h, pos);
    r->op.call = pos;
    r->op.ret = r->outcome == HISTORY_OK ? r->ret : LIN_NEVER;
    const history_value *arg = &v->items[1];
    const history_op *done = r->ret == HISTORY_NONE ? NULL : &h->ops[r->ret];
    if (done && is_pair_with_key(&done->value) && done->value.items[0].i != r->key)
        return history_op_error(err, "register", done, "completion names key %" PRId64 " but the invoke (index %" PRId64
                      ") names key %" PRId64, done->value.items[0].i, inv->index, r->key);
    switch (inv->fn) {
    case HISTORY_F_READ:
        r->op.kind = LIN_READ;
        if (r->outcome == HISTORY_OK &&
            (!is_pair_with_key(&done->value) || !to_val(&done->value.items[1], true, &r->op.a)))
            return history_op_error(err, "register", done, "an ok read's value must be [key, v] with v an integer or null");
        break;
    case HISTORY_F_WRITE:
        r->op.kind = LIN_WRITE;
        if (!to_val(arg, false, &r->op.a))
            return history_op_error(err, "register", inv, "a write's value must be [key, v] with v an integer");
        break;
    case HISTORY_F_CAS:
        r->op.kind = LIN_CAS;
        if (arg->kind != HV_LIST || arg->n != 2 || !to_val(&arg->items[0], true, &r->op.a) ||
            !to_val(&arg->items[1], false, &r->op.b))
            return history_op_error(err, "register", inv, "a cas's value must be [key, [old, new]] (old an integer or null, new an integer)");
        break;
    default:
        return history_op_error(err, "register", inv, "f \"%s\" is not read, write or cas", history_f(h, inv));
    }
    return 0;
}

static int reg_op_cmp(const void *a, const void *b)
{
    const reg_op *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Does the search need this op? (See register_check.h: outcomes.) */
static bool in_search(const reg_op *r)
{
    if (r->op.kind == LIN_READ)
        return r->outcome == HISTORY_OK;
    return r->outcome != HISTORY_FAIL;
}

typedef struct tally {
    uint64_t reads, writes, cas, failed, unknown, dropped_reads, states;
    uint64_t keys_valid, keys_invalid, keys_unknown;
} tally;

static void tally_op(tally *t, const reg_op *r)
{
    if (r->op.kind == LIN_READ) {
        t->reads++;
        t->dropped_reads += r->outcome != HISTORY_OK;
        return;
    }
    if (r->op.kind == LIN_WRITE)
        t->writes++;
    else
        t->cas++;
    t->failed += r->outcome == HISTORY_FAIL;
    t->unknown += r->outcome == HISTORY_INFO;
}

static const char *unknown_reason(lin_outcome o)
{
    return o == LIN_TIME_LIMIT ? "time limit reached" : "state budget exhausted";
}

/* The default state budget of a key whose search holds m ops: at most
 * REGISTER_DEFAULT_MAX_STATES, and at most REGISTER_MEMO_BYTES of memo. */
static uint64_t default_budget(size_t m)
{
    uint64_t per_entry = ((uint64_t)m + 63) / 64 * 8 + 48;
    uint64_t by_memory = REGISTER_MEMO_BYTES / per_entry;
    return by_memory < REGISTER_DEFAULT_MAX_STATES ? by_memory : REGISTER_DEFAULT_MAX_STATES;
}

/* Runs the search on one key's ops unless the deadline has passed. */
static int search_key(const lin_op *lops, size_t m, const lin_limits *lim, lin_report *rep)
{
    if (lim->now_ms && lim->now_ms(lim->clock_ctx) >= lim->deadline_ms) {
        memset(rep, 0, sizeof *rep);
        rep->outcome = LIN_TIME_LIMIT;
        return 0;
    }
    return lin_check(lops, m, lim, rep);
}

/* Checks one key: first the rules that prove an op impossible
 * (register_facts.c), then the search. A key with an impossible op is
 * invalid whatever the search says; the search then only serves the
 * explanation and gets a small budget. Appends to the explanation if the key
 * is not valid. */
static int check_key(const history *h, const reg_op *kops, size_t n, const lin_limits *key_lim,
                     uint64_t max_states, check_result *res, tally *t, sbuf *explain, sbuf *unknown_list)
{
    lin_op *lops = malloc(n * sizeof *lops);
    size_t *lin_to_kop = malloc(n * sizeof *lin_to_kop);
    reg_facts *facts = NULL;
    int rc = lops && lin_to_kop ? reg_facts_new(&facts, kops, n) : OKV_ENOMEM;
    if (rc) {
        free(lops);
        free(lin_to_kop);
        return rc;
    }
    int64_t key = kops[0].key;
    size_t n_impossible = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (reg_facts_rule(facts, &kops[i]) != REG_RULE_NONE) {
            n_impossible++;
            check_anomaly_add(check_result_anomaly(res, "impossible-ops"), h->ops[kops[i].pos].index);
        }
        if (in_search(&kops[i])) {
            lops[m] = kops[i].op;
            lin_to_kop[m++] = i;
        }
    }
    lin_limits lim = *key_lim;
    lim.max_states = max_states ? max_states : default_budget(m);
    if (n_impossible && lim.max_states > REGISTER_EXPLAIN_STATES)
        lim.max_states = REGISTER_EXPLAIN_STATES;
    lin_report rep;
    rc = search_key(lops, m, &lim, &rep);
    if (!rc) {
        t->states += rep.states;
        /* A linearization found is a witness and wins over the rules. */
        if (rep.outcome == LIN_VIOLATION || (n_impossible && rep.outcome != LIN_LINEARIZABLE)) {
            t->keys_invalid++;
            check_anomaly_add(check_result_anomaly(res, "invalid-keys"), key);
            if (t->keys_invalid <= REGISTER_EXPLAINED_KEYS) {
                reg_verdict v = { facts, n_impossible, &rep, lin_to_kop };
                register_explain_key(explain, h, key, kops, n, &v);
            }
        } else if (rep.outcome == LIN_LINEARIZABLE) {
            t->keys_valid++;
        } else {
            t->keys_unknown++;
            check_anomaly_add(check_result_anomaly(res, "unknown-keys"), key);
            if (t->keys_unknown <= 20)
                sbuf_printf(unknown_list, "  key %" PRId64 ": %s after %" PRIu64
                            " configurations (%zu ops in the search)\n",
                            key, unknown_reason(rep.outcome), rep.states, m);
        }
    }
    reg_facts_free(facts);
    free(lops);
    free(lin_to_kop);
    return rc;
}

static int collect(const history *h, reg_op **out, size_t *n_out, tally *t, okv_error *err)
{
    reg_op *ops = malloc((h->n_invokes ? h->n_invokes : 1) * sizeof *ops);
    if (!ops)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t pos = 0; pos < h->n_ops; pos++) {
        const history_op *op = &h->ops[pos];
        if (op->process == HISTORY_NEMESIS || op->type != HISTORY_INVOKE)
            continue;
        int rc = read_op(h, pos, &ops[n], err);
        if (rc) {
            free(ops);
            return rc;
        }
        tally_op(t, &ops[n]);
        n++;
    }
    qsort(ops, n, sizeof *ops, reg_op_cmp);
    *out = ops;
    *n_out = n;
    return 0;
}

static void finish(check_result *res, const tally *t)
{
    check_result_count(res, "reads", t->reads);
    check_result_count(res, "writes", t->writes);
    check_result_count(res, "cas", t->cas);
    check_result_count(res, "failed", t->failed);
    check_result_count(res, "unknown-outcome", t->unknown);
    check_result_count(res, "dropped-reads", t->dropped_reads);
    check_result_count(res, "keys-valid", t->keys_valid);
    check_result_count(res, "keys-invalid", t->keys_invalid);
    check_result_count(res, "keys-unknown", t->keys_unknown);
    check_result_count(res, "states", t->states);
    if (t->keys_invalid)
        res->validity = CHECK_INVALID;
    else if (t->keys_unknown)
        res->validity = CHECK_UNKNOWN;
    else
        res->validity = CHECK_VALID;
}

int register_check(check_result **out, const history *h, const register_options *opt, okv_error *err)
{
    *out = NULL;
    register_options defaults = REGISTER_OPTIONS_INIT;
    if (!opt)
        opt = &defaults;
    check_result *res = check_result_new("linearizable-register");
    if (!res)
        return okv_error_set(err, OKV_ENOMEM, "out of memory");
    tally t = { 0 };
    reg_op *ops = NULL;
    size_t n = 0;
    int rc = collect(h, &ops, &n, &t, err);
    if (rc) {
        check_result_free(res);
        return rc;
    }
    /* Every anomaly class appears, so JSON consumers see a 0. */
    check_result_anomaly(res, "invalid-keys");
    check_result_anomaly(res, "unknown-keys");
    check_result_anomaly(res, "impossible-ops");

    lin_limits lim = { 0, INT64_MAX, NULL, NULL };
    if (opt->now_ms && opt->time_limit_ms > 0) {
        lim.now_ms = opt->now_ms;
        lim.clock_ctx = opt->clock_ctx;
        lim.deadline_ms = opt->now_ms(opt->clock_ctx) + opt->time_limit_ms;
    }
    sbuf explain = SBUF_INIT, unknown_list = SBUF_INIT;
    res->ops = h->n_invokes;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i;
        while (j < n && ops[j].key == ops[i].key)
            j++;
        res->keys++;
        rc = check_key(h, ops + i, j - i, &lim, opt->max_states_per_key, res, &t, &explain, &unknown_list);
        i = j;
    }
    free(ops);
    if (!rc) {
        finish(res, &t);
        if (t.keys_invalid > REGISTER_EXPLAINED_KEYS) {
            const check_anomaly *a = check_result_anomaly(res, "invalid-keys");
            sbuf_printf(&explain, "%" PRIu64 " keys are not linearizable; the first %d are explained above "
                        "(smallest invalid keys:", t.keys_invalid, REGISTER_EXPLAINED_KEYS);
            for (size_t k = 0; k < a->n_examples; k++)
                sbuf_printf(&explain, " %" PRId64, a->examples[k]);
            sbuf_printf(&explain, ")\n");
        }
        if (n == 0) {
            res->validity = CHECK_UNKNOWN;
            sbuf_printf(&explain, "the history has no register ops, so there is nothing to check\n");
        }
        if (t.keys_unknown) {
            sbuf_printf(&explain, "%" PRIu64 " keys could not be decided%s:\n", t.keys_unknown,
                        t.keys_unknown > 20 ? " (first 20 listed)" : "");
            sbuf_append(&explain, unknown_list.s ? unknown_list.s : "", unknown_list.len);
        }
        res->explanation = sbuf_take(&explain);
        if (!res->explanation)
            rc = OKV_ENOMEM;
    }
    sbuf_free(&explain);
    sbuf_free(&unknown_list);
    if (rc) {
        check_result_free(res);
        return okv_error_set(err, rc, "out of memory");
    }
    *out = res;
    return 0;
}

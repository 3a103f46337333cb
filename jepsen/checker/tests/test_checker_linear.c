/*
 * test_checker_linear.c — the linearizability search and the impossibility
 * rules against a brute-force oracle on many small random register
 * histories: the search (with its reductions for reads and for ops of
 * unknown outcome) must agree with the oracle exactly, and a rule may only
 * fire on a history the oracle finds not linearizable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "linear.h"
#include "register_int.h"

#define MAX_OPS 8

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* ---- the oracle: every order, straight from the definition ---- */

static bool oracle_rec(const lin_op *ops, size_t n, bool *used, lin_val state)
{
    bool all_required = true;
    for (size_t i = 0; i < n; i++)
        if (!used[i] && ops[i].ret != LIN_NEVER)
            all_required = false;
    if (all_required)
        return true; /* the rest are of unknown outcome: they need not happen */
    for (size_t x = 0; x < n; x++) {
        if (used[x])
            continue;
        /* x may come next unless some op still to be placed returned before x was called */
        bool ok = true;
        for (size_t y = 0; y < n && ok; y++)
            if (y != x && !used[y] && ops[y].ret != LIN_NEVER && ops[y].ret < ops[x].call)
                ok = false;
        lin_val after;
        if (!ok || !lin_step(state, &ops[x], &after))
            continue;
        used[x] = true;
        bool found = oracle_rec(ops, n, used, after);
        used[x] = false;
        if (found)
            return true;
    }
    return false;
}

static bool oracle(const lin_op *ops, size_t n)
{
    bool used[MAX_OPS] = { false };
    lin_val init = { 0, true };
    return oracle_rec(ops, n, used, init);
}

/* ---- random histories ---- */

static lin_val random_val(bool allow_null)
{
    uint64_t r = rng() % 4;
    if (r == 3 && allow_null)
        return (lin_val){ 0, true };
    return (lin_val){ (int64_t)(r % 3), false };
}

/* Fills kops[0..n) with random ops on one key: random intervals over 2n
 * distinct positions, random kinds, values and outcomes (ok, fail, info). */
static void random_history(reg_op *kops, size_t n)
{
    size_t slots[2 * MAX_OPS];
    for (size_t i = 0; i < 2 * n; i++)
        slots[i] = i;
    for (size_t i = 2 * n; i > 1; i--) {
        size_t j = rng() % i, t = slots[i - 1];
        slots[i - 1] = slots[j];
        slots[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        size_t a = slots[2 * i], b = slots[2 * i + 1];
        reg_op *r = &kops[i];
        memset(r, 0, sizeof *r);
        r->pos = a < b ? a : b;
        r->ret = a < b ? b : a;
        uint64_t kind = rng() % 3;
        r->op.kind = kind == 0 ? LIN_READ : kind == 1 ? LIN_WRITE : LIN_CAS;
        r->op.a = random_val(r->op.kind != LIN_WRITE);
        r->op.b = random_val(false);
        uint64_t o = rng() % 10;
        r->outcome = o < 7 ? HISTORY_OK : o < 8 ? HISTORY_FAIL : HISTORY_INFO;
        if (r->op.kind == LIN_READ)
            r->outcome = o < 9 ? HISTORY_OK : HISTORY_FAIL;
        r->op.call = r->pos;
        r->op.ret = r->outcome == HISTORY_OK ? r->ret : LIN_NEVER;
    }
    /* kops must be in invoke order (register_check sorts them so) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && kops[j - 1].pos > kops[j].pos; j--) {
            reg_op t = kops[j];
            kops[j] = kops[j - 1];
            kops[j - 1] = t;
        }
}

static void describe(const reg_op *kops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sbuf b = SBUF_INIT;
        register_describe_op(&b, &kops[i].op);
        print_message("  [%zu, %zu] %s %s\n", kops[i].pos, kops[i].ret, b.s,
                      kops[i].outcome == HISTORY_OK ? "ok" : kops[i].outcome == HISTORY_FAIL ? "fail" : "info");
        sbuf_free(&b);
    }
}

static void test_linear__agrees_with_brute_force(void **state)
{
    rng_state = 0x5eed0003;
    size_t linearizable = 0, violations = 0, rule_hits = 0;
    for (int iter = 0; iter < 30000; iter++) {
        size_t n = 1 + rng() % MAX_OPS;
        reg_op kops[MAX_OPS];
        random_history(kops, n);
        lin_op lops[MAX_OPS];
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (kops[i].outcome != HISTORY_FAIL)
                lops[m++] = kops[i].op;
        bool expect = oracle(lops, m);
        lin_report rep;
        assert_int_equal(lin_check(lops, m, NULL, &rep), 0);
        bool got = rep.outcome == LIN_LINEARIZABLE;
        if (rep.outcome != LIN_LINEARIZABLE && rep.outcome != LIN_VIOLATION)
            fail_msg("iteration %d: no verdict", iter);
        if (got != expect) {
            describe(kops, n);
            fail_msg("seed 0x5eed0003 iteration %d: search says %s, brute force says %s", iter,
                     got ? "linearizable" : "not", expect ? "linearizable" : "not");
        }
        reg_facts *f;
        assert_int_equal(reg_facts_new(&f, kops, n), 0);
        for (size_t i = 0; i < n; i++) {
            reg_rule rule = reg_facts_rule(f, &kops[i]);
            if (rule == REG_RULE_NONE)
                continue;
            rule_hits++;
            if (expect) {
                describe(kops, n);
                fail_msg("seed 0x5eed0003 iteration %d: rule %d fired on op %zu of a linearizable history", iter,
                         (int)rule, i);
            }
        }
        reg_facts_free(f);
        linearizable += expect;
        violations += !expect;
    }
    /* the generator must produce both kinds, and the rules must fire often */
    assert_true(linearizable > 3000);
    assert_true(violations > 3000);
    assert_true(rule_hits > 1000);
}

/* The report of a violation: a prefix, the op that could not be placed,
 * and the value after the prefix. */
static void test_linear__report_names_the_blocking_op(void **state)
{
    lin_op ops[] = {
        { LIN_WRITE, { 1, false }, { 0, false }, 0, 1 },
        { LIN_WRITE, { 2, false }, { 0, false }, 2, 3 },
        { LIN_READ, { 1, false }, { 0, false }, 4, 5 },
    };
    lin_report rep;
    assert_int_equal(lin_check(ops, 3, NULL, &rep), 0);
    assert_int_equal(rep.outcome, LIN_VIOLATION);
    assert_int_equal(rep.best_depth, 2);
    assert_int_equal(rep.n_best_tail, 2);
    assert_int_equal(rep.best_tail[0], 0);
    assert_int_equal(rep.best_tail[1], 1);
    assert_int_equal(rep.best_state.v, 2);
    assert_int_equal(rep.blocking, 2);
    assert_int_equal(rep.n_candidates, 1);
    assert_int_equal(rep.candidates[0], 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear__agrees_with_brute_force),
        cmocka_unit_test(test_linear__report_names_the_blocking_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

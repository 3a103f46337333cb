/*
 * test_checker_register.c — the linearizability checker must accept every
 * linearizable register history here and catch every bad one, naming the
 * key and the op. The histories are JSON text, so the parser is exercised
 * on the way.
 */
#include "checker_test.h"

#include <stdbool.h>

static check_result *check(const char *json)
{
    return run_checker(RUN_REGISTER, json, NULL);
}

static void expect_valid(const char *json)
{
    check_result *r = check(json);
    if (r->validity != CHECK_VALID)
        fail_msg("expected valid, got %s:\n%s", check_validity_name(r->validity), r->explanation);
    check_result_free(r);
}

/* Expects invalid with exactly one bad key; returns the result to inspect. */
static check_result *expect_invalid(const char *json, int64_t key)
{
    check_result *r = check(json);
    if (r->validity != CHECK_INVALID)
        fail_msg("expected invalid, got %s:\n%s", check_validity_name(r->validity), r->explanation);
    const check_anomaly *a = check_result_anomaly(r, "invalid-keys");
    assert_int_equal(a->count, 1);
    assert_int_equal(a->examples[0], key);
    return r;
}

/* ---- valid histories ---- */

static void test_register__sequential_ops(void **state)
{
    expect_valid("["
        OP(0, invoke, read, "[1,null]", 0) "," OP(1, ok, read, "[1,null]", 0) ","
        OP(2, invoke, write, "[1,1]", 0) "," OP(3, ok, write, "[1,1]", 0) ","
        OP(4, invoke, read, "[1,null]", 1) "," OP(5, ok, read, "[1,1]", 1) ","
        OP(6, invoke, write, "[1,2]", 1) "," OP(7, ok, write, "[1,2]", 1) ","
        OP(8, invoke, cas, "[1,[2,3]]", 0) "," OP(9, ok, cas, "[1,[2,3]]", 0) ","
        OP(10, invoke, read, "[1,null]", 0) "," OP(11, ok, read, "[1,3]", 0) "]");
}

/* Two overlapping writes: reads during the overlap may see either value in
 * either order, as long as one order explains all reads. */
static void test_register__concurrent_writes_reads_of_either_value(void **state)
{
    expect_valid("["
        OP(0, invoke, write, "[1,1]", 0) ","
        OP(1, invoke, write, "[1,2]", 1) ","
        OP(2, invoke, read, "[1,null]", 2) ","
        OP(3, ok, read, "[1,2]", 2) ","
        OP(4, invoke, read, "[1,null]", 3) ","
        OP(5, ok, write, "[1,2]", 1) ","
        OP(6, ok, read, "[1,1]", 3) ","
        OP(7, ok, write, "[1,1]", 0) ","
        OP(8, invoke, read, "[1,null]", 2) ","
        OP(9, ok, read, "[1,1]", 2) "]");
    /* the other order: 1 first, then 2 is final */
    expect_valid("["
        OP(0, invoke, write, "[1,1]", 0) ","
        OP(1, invoke, write, "[1,2]", 1) ","
        OP(2, invoke, read, "[1,null]", 2) ","
        OP(3, ok, read, "[1,1]", 2) ","
        OP(4, ok, write, "[1,2]", 1) ","
        OP(5, ok, write, "[1,1]", 0) ","
        OP(6, invoke, read, "[1,null]", 2) ","
        OP(7, ok, read, "[1,2]", 2) "]");
}

static void test_register__info_write_later_observed(void **state)
{
    expect_valid("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, write, "[1,5]", 1) "," OP(3, info, write, "[1,5]", 1) ","
        NEM(4, kill) ","
        OP(5, invoke, read, "[1,null]", 0) "," OP(6, ok, read, "[1,1]", 0) ","
        OP(7, invoke, read, "[1,null]", 0) "," OP(8, ok, read, "[1,5]", 0) ","
        OP(9, invoke, read, "[1,null]", 2) "," OP(10, ok, read, "[1,5]", 2) "]");
    /* a write that never completed is the same as info */
    expect_valid("["
        OP(0, invoke, write, "[1,5]", 1) ","
        OP(1, invoke, read, "[1,null]", 0) "," OP(2, ok, read, "[1,5]", 0) "]");
}

static void test_register__info_write_never_observed(void **state)
{
    expect_valid("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, write, "[1,5]", 1) "," OP(3, info, write, "[1,5]", 1) ","
        OP(4, invoke, read, "[1,null]", 0) "," OP(5, ok, read, "[1,1]", 0) ","
        OP(6, invoke, cas, "[1,[3,4]]", 2) "," OP(7, info, cas, "[1,[3,4]]", 2) ","
        OP(8, invoke, read, "[1,null]", 0) "," OP(9, ok, read, "[1,1]", 0) "]");
}

static void test_register__cas_chain(void **state)
{
    expect_valid("["
        OP(0, invoke, cas, "[1,[null,0]]", 0) "," OP(1, ok, cas, "[1,[null,0]]", 0) ","
        OP(2, invoke, cas, "[1,[0,1]]", 1) "," OP(3, ok, cas, "[1,[0,1]]", 1) ","
        OP(4, invoke, cas, "[1,[1,2]]", 0) "," OP(5, ok, cas, "[1,[1,2]]", 0) ","
        OP(6, invoke, cas, "[1,[2,3]]", 1) "," OP(7, ok, cas, "[1,[2,3]]", 1) ","
        OP(8, invoke, read, "[1,null]", 0) "," OP(9, ok, read, "[1,3]", 0) "]");
}

static void test_register__failed_cas_has_no_effect(void **state)
{
    expect_valid("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, cas, "[1,[5,6]]", 1) "," OP(3, fail, cas, "[1,[5,6]]", 1) ","
        OP(4, invoke, cas, "[1,[1,6]]", 1) "," OP(5, fail, cas, "[1,[1,6]]", 1) ","
        OP(6, invoke, read, "[1,null]", 0) "," OP(7, ok, read, "[1,1]", 0) "]");
}

/* Reads that fail or time out say nothing, whatever their value claims. */
static void test_register__failed_and_info_reads_are_dropped(void **state)
{
    check_result *r = check("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, read, "[1,null]", 1) "," OP(3, fail, read, "[1,9]", 1) ","
        OP(4, invoke, read, "[1,null]", 1) "," OP(5, info, read, "[1,9]", 1) ","
        OP(6, invoke, read, "[1,null]", 2) "]");
    assert_int_equal(r->validity, CHECK_VALID);
    assert_int_equal(check_result_count_of(r, "dropped-reads"), 3);
    check_result_free(r);
}

/* ---- invalid histories ---- */

static void test_register__stale_read(void **state)
{
    check_result *r = expect_invalid("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, write, "[1,2]", 1) "," OP(3, ok, write, "[1,2]", 1) ","
        OP(4, invoke, read, "[1,null]", 2) "," OP(5, ok, read, "[1,1]", 2) "]", 1);
    assert_contains(r->explanation, "key 1: not linearizable");
    assert_contains(r->explanation, "cannot place: read -> 1 (index 4, process 2");
    assert_contains(r->explanation, "stale read: write 2 (index 2");
    assert_contains(r->explanation, "after it key 1 holds 2");
    check_result_free(r);
}

static void test_register__lost_write(void **state)
{
    check_result *r = expect_invalid("["
        OP(0, invoke, write, "[7,1]", 0) "," OP(1, ok, write, "[7,1]", 0) ","
        OP(2, invoke, read, "[7,null]", 1) "," OP(3, ok, read, "[7,1]", 1) ","
        OP(4, invoke, write, "[7,2]", 0) "," OP(5, ok, write, "[7,2]", 0) ","
        OP(6, invoke, read, "[7,null]", 1) "," OP(7, ok, read, "[7,1]", 1) ","
        OP(8, invoke, read, "[7,null]", 1) "," OP(9, ok, read, "[7,1]", 1) "]", 7);
    assert_contains(r->explanation, "cannot place: read -> 1 (index 6");
    assert_contains(r->explanation, "longest linearizable prefix: 3 ops:");
    check_result_free(r);
}

static void test_register__double_cas(void **state)
{
    check_result *r = expect_invalid("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, cas, "[1,[1,2]]", 1) "," OP(3, ok, cas, "[1,[1,2]]", 1) ","
        OP(4, invoke, cas, "[1,[1,2]]", 2) "," OP(5, ok, cas, "[1,[1,2]]", 2) "]", 1);
    assert_contains(r->explanation, "cannot place: cas 1->2 (index 4, process 2");
    assert_contains(r->explanation, "2 cas ops from 1 succeeded on key 1, but only 1 op ever set it to 1");
    check_result_free(r);
    /* concurrent, still impossible: only one can consume the 1 */
    r = expect_invalid("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, cas, "[1,[1,2]]", 1) "," OP(3, invoke, cas, "[1,[1,2]]", 2) ","
        OP(4, ok, cas, "[1,[1,2]]", 1) "," OP(5, ok, cas, "[1,[1,2]]", 2) "]", 1);
    check_result_free(r);
}

static void test_register__phantom_value(void **state)
{
    check_result *r = expect_invalid("["
        OP(0, invoke, write, "[3,1]", 0) "," OP(1, ok, write, "[3,1]", 0) ","
        OP(2, invoke, read, "[3,null]", 1) "," OP(3, ok, read, "[3,42]", 1) "]", 3);
    assert_contains(r->explanation, "phantom value: no write or cas ever set key 3 to 42");
    check_result_free(r);
}

static void test_register__failed_write_observed(void **state)
{
    check_result *r = expect_invalid("["
        OP(0, invoke, write, "[3,1]", 0) "," OP(1, ok, write, "[3,1]", 0) ","
        OP(2, invoke, write, "[3,2]", 1) ","
        "{\"index\":3,\"type\":\"fail\",\"f\":\"write\",\"value\":[3,2],\"process\":1,\"time\":3,\"error\":\"not leader\"},"
        OP(4, invoke, read, "[3,null]", 0) "," OP(5, ok, read, "[3,2]", 0) "]", 3);
    assert_contains(r->explanation, "key 3 was read as 2 but every write of 2 failed: write 2 (index 2, process 1");
    assert_contains(r->explanation, "error \"not leader\"");
    check_result_free(r);
}

static void test_register__read_after_cas_that_should_have_failed(void **state)
{
    check_result *r = expect_invalid("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, cas, "[1,[3,4]]", 1) "," OP(3, ok, cas, "[1,[3,4]]", 1) ","
        OP(4, invoke, read, "[1,null]", 0) "," OP(5, ok, read, "[1,4]", 0) "]", 1);
    assert_contains(r->explanation, "cannot place: cas 3->4 (index 2");
    assert_contains(r->explanation, "no op that did not fail ever set key 1 to 3: it should have failed");
    check_result_free(r);
}

static void test_register__absent_after_write(void **state)
{
    check_result *r = expect_invalid("["
        OP(0, invoke, write, "[1,1]", 0) "," OP(1, ok, write, "[1,1]", 0) ","
        OP(2, invoke, read, "[1,null]", 1) "," OP(3, ok, read, "[1,null]", 1) "]", 1);
    assert_contains(r->explanation, "read as absent (null), but write 1 (index 0");
    check_result_free(r);
}

static void test_register__only_the_bad_key_is_named(void **state)
{
    check_result *r = expect_invalid("["
        OP(0, invoke, write, "[1,10]", 0) "," OP(1, invoke, write, "[2,20]", 1) ","
        OP(2, invoke, write, "[3,30]", 2) "," OP(3, ok, write, "[1,10]", 0) ","
        OP(4, ok, write, "[2,20]", 1) "," OP(5, ok, write, "[3,30]", 2) ","
        OP(6, invoke, write, "[2,21]", 1) "," OP(7, ok, write, "[2,21]", 1) ","
        OP(8, invoke, read, "[1,null]", 0) "," OP(9, ok, read, "[1,10]", 0) ","
        OP(10, invoke, read, "[2,null]", 0) "," OP(11, ok, read, "[2,20]", 0) ","
        OP(12, invoke, read, "[3,null]", 2) "," OP(13, ok, read, "[3,30]", 2) "]", 2);
    assert_int_equal(r->keys, 3);
    assert_int_equal(check_result_count_of(r, "keys-valid"), 2);
    assert_contains(r->explanation, "key 2: not linearizable");
    assert_contains(r->explanation, "read -> 20 (index 10");
    assert_not_contains(r->explanation, "key 1:");
    assert_not_contains(r->explanation, "key 3:");
    check_result_free(r);
}

/* ---- budgets ---- */

/* Eight concurrent writes, then a read that only the write the search tries
 * first can explain (it must come last): more configurations than a tiny
 * budget allows, so key 5 is unknown rather than valid or invalid. */
static const char CONCURRENT[] = "["
    OP(0, invoke, write, "[5,0]", 0) "," OP(1, invoke, write, "[5,1]", 1) ","
    OP(2, invoke, write, "[5,2]", 2) "," OP(3, invoke, write, "[5,3]", 3) ","
    OP(4, invoke, write, "[5,4]", 4) "," OP(5, invoke, write, "[5,5]", 5) ","
    OP(6, invoke, write, "[5,6]", 6) "," OP(7, invoke, write, "[5,7]", 7) ","
    OP(8, ok, write, "[5,0]", 0) "," OP(9, ok, write, "[5,1]", 1) ","
    OP(10, ok, write, "[5,2]", 2) "," OP(11, ok, write, "[5,3]", 3) ","
    OP(12, ok, write, "[5,4]", 4) "," OP(13, ok, write, "[5,5]", 5) ","
    OP(14, ok, write, "[5,6]", 6) "," OP(15, ok, write, "[5,7]", 7) ","
    OP(16, invoke, read, "[5,null]", 8) "," OP(17, ok, read, "[5,0]", 8) ","
    OP(18, invoke, write, "[6,1]", 0) "," OP(19, ok, write, "[6,1]", 0) "]";

static void test_register__tiny_state_budget_gives_unknown(void **state)
{
    register_options opt = REGISTER_OPTIONS_INIT;
    opt.max_states_per_key = 20;
    check_result *r = run_checker(RUN_REGISTER, CONCURRENT, &opt);
    assert_int_equal(r->validity, CHECK_UNKNOWN);
    assert_int_equal(check_result_anomaly_count(r, "unknown-keys"), 1);
    assert_int_equal(check_result_count_of(r, "keys-valid"), 1);
    assert_contains(r->explanation, "key 5: state budget exhausted");
    check_result_free(r);
    /* with the default budget the same history is decided */
    r = run_checker(RUN_REGISTER, CONCURRENT, NULL);
    assert_int_equal(r->validity, CHECK_VALID);
    check_result_free(r);
}

/* A fake clock that moves 10 ms per reading: the time limit is reached
 * deterministically. */
static int64_t fake_now(void *ctx)
{
    int64_t *t = ctx;
    *t += 10;
    return *t;
}

static void test_register__time_limit_gives_unknown(void **state)
{
    int64_t clock = 0;
    register_options opt = REGISTER_OPTIONS_INIT;
    opt.time_limit_ms = 15;
    opt.now_ms = fake_now;
    opt.clock_ctx = &clock;
    check_result *r = run_checker(RUN_REGISTER, CONCURRENT, &opt);
    assert_int_equal(r->validity, CHECK_UNKNOWN);
    assert_contains(r->explanation, "time limit reached");
    check_result_free(r);
}

static void test_register__format_errors(void **state)
{
    expect_check_error(RUN_REGISTER, "[" OP(0, invoke, add, "1", 0) "]", "f \"add\" is not read, write or cas");
    expect_check_error(RUN_REGISTER, "[" OP(0, invoke, write, "5", 0) "]", "value must be [key, v]");
    expect_check_error(RUN_REGISTER, "[" OP(0, invoke, write, "[1,null]", 0) "]", "a write's value");
    expect_check_error(RUN_REGISTER, "[" OP(0, invoke, cas, "[1,2]", 0) "]", "a cas's value");
    expect_check_error(RUN_REGISTER, "[" OP(0, invoke, read, "[1,null]", 0) "," OP(1, ok, read, "[1,\"x\"]", 0) "]",
                       "an ok read's value");
    expect_check_error(RUN_REGISTER, "[" OP(0, invoke, read, "[1,null]", 0) "," OP(1, ok, read, "[2,5]", 0) "]",
                       "completion names key 2");
}

static void test_register__empty_history_is_unknown(void **state)
{
    check_result *r = run_checker(RUN_REGISTER, "[" NEM(0, kill) "]", NULL);
    assert_int_equal(r->validity, CHECK_UNKNOWN);
    check_result_free(r);
}

/* ---- randomized ---- */

/*
 * A simulated atomic register per key driven by concurrent processes: each
 * op is invoked, takes effect atomically at a random later step, and is
 * acknowledged at a random step after that; some ops crash (info) before or
 * after taking effect, and the process is replaced. Such a history is
 * linearizable by construction.
 */
typedef struct sim_op {
    int64_t index, process;
    const char *type, *f;
    char value[48];
} sim_op;

typedef struct sim {
    uint64_t rng;
    sim_op *ops;
    size_t n, cap;
} sim;

static uint64_t sim_rand(sim *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ull;
}

static sim_op *sim_emit(sim *s, const char *type, const char *f, int64_t process)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->ops = realloc(s->ops, s->cap * sizeof *s->ops);
    }
    sim_op *o = &s->ops[s->n];
    o->index = (int64_t)s->n++;
    o->process = process;
    o->type = type;
    o->f = f;
    return o;
}

typedef struct proc {
    int64_t id;
    int phase; /* 0 idle, 1 invoked, 2 applied */
    int kind;  /* 0 read, 1 write, 2 cas */
    int64_t key, a, b;
    bool ok;
    char result[24];
} proc;

static void set_value(sim_op *o, const proc *p, bool with_result)
{
    if (p->kind == 0)
        snprintf(o->value, sizeof o->value, "[%" PRId64 ",%s]", p->key, with_result ? p->result : "null");
    else if (p->kind == 1)
        snprintf(o->value, sizeof o->value, "[%" PRId64 ",%" PRId64 "]", p->key, p->a);
    else
        snprintf(o->value, sizeof o->value, "[%" PRId64 ",[%" PRId64 ",%" PRId64 "]]", p->key, p->a, p->b);
}

static const char *const FNAMES[] = { "read", "write", "cas" };

/* Generates about n_invokes ops over n_keys keys with n_procs concurrent
 * processes; values come from a small range so reads are ambiguous. */
static void simulate(sim *s, uint64_t seed, int n_keys, int n_procs, int n_invokes)
{
    memset(s, 0, sizeof *s);
    s->rng = seed * 0x9e3779b97f4a7c15ull + 1;
    int64_t reg[64];
    bool has[64] = { false };
    proc procs[32];
    for (int i = 0; i < n_procs; i++)
        procs[i] = (proc){ .id = i };
    int invoked = 0;
    while (invoked < n_invokes) {
        proc *p = &procs[sim_rand(s) % (uint64_t)n_procs];
        uint64_t roll = sim_rand(s) % 100;
        if (p->phase == 0) {
            p->kind = roll < 45 ? 0 : roll < 80 ? 1 : 2;
            p->key = (int64_t)(sim_rand(s) % (uint64_t)n_keys);
            p->a = (int64_t)(sim_rand(s) % 5);
            p->b = (int64_t)(sim_rand(s) % 5);
            set_value(sim_emit(s, "invoke", FNAMES[p->kind], p->id), p, false);
            p->phase = 1;
            invoked++;
        } else if (p->phase == 1 && roll < 2) {
            /* crash before taking effect */
            set_value(sim_emit(s, "info", FNAMES[p->kind], p->id), p, false);
            p->phase = 0;
            p->id += n_procs;
        } else if (p->phase == 1) {
            int64_t k = p->key;
            if (p->kind == 0) {
                if (has[k])
                    snprintf(p->result, sizeof p->result, "%" PRId64, reg[k]);
                else
                    snprintf(p->result, sizeof p->result, "null");
                p->ok = true;
            } else if (p->kind == 1) {
                reg[k] = p->a;
                has[k] = true;
                p->ok = true;
            } else {
                p->ok = has[k] && reg[k] == p->a;
                if (p->ok)
                    reg[k] = p->b;
            }
            p->phase = 2;
        } else if (roll < 2) {
            /* crash after taking effect */
            set_value(sim_emit(s, "info", FNAMES[p->kind], p->id), p, false);
            p->phase = 0;
            p->id += n_procs;
        } else {
            set_value(sim_emit(s, p->ok ? "ok" : "fail", FNAMES[p->kind], p->id), p, p->ok);
            p->phase = 0;
        }
    }
}

static char *sim_json(const sim *s)
{
    size_t cap = s->n * 128 + 4, len = 0;
    char *out = malloc(cap);
    out[len++] = '[';
    for (size_t i = 0; i < s->n; i++) {
        const sim_op *o = &s->ops[i];
        len += (size_t)snprintf(out + len, cap - len,
                                "%s{\"index\":%" PRId64 ",\"type\":\"%s\",\"f\":\"%s\",\"value\":%s,"
                                "\"process\":%" PRId64 ",\"time\":%" PRId64 "}",
                                i ? "," : "", o->index, o->type, o->f, o->value, o->process, o->index * 1000);
    }
    out[len++] = ']';
    out[len] = '\0';
    return out;
}

static void random_round(uint64_t seed, int n_keys, int n_procs, int n_invokes)
{
    sim s;
    simulate(&s, seed, n_keys, n_procs, n_invokes);
    char *json = sim_json(&s);
    check_result *r = run_checker(RUN_REGISTER, json, NULL);
    if (r->validity != CHECK_VALID)
        fail_msg("seed %" PRIu64 ": a simulated atomic register was judged %s:\n%s", seed,
                 check_validity_name(r->validity), r->explanation);
    check_result_free(r);
    free(json);

    /* Now make one ok read return a value nobody wrote. */
    size_t victims = 0;
    for (size_t i = 0; i < s.n; i++)
        victims += strcmp(s.ops[i].type, "ok") == 0 && strcmp(s.ops[i].f, "read") == 0;
    assert_true(victims > 0);
    size_t pick = (size_t)(seed * 7919) % victims;
    int64_t key = -1, index = -1;
    for (size_t i = 0; i < s.n; i++) {
        sim_op *o = &s.ops[i];
        if (strcmp(o->type, "ok") != 0 || strcmp(o->f, "read") != 0 || pick--)
            continue;
        key = strtoll(o->value + 1, NULL, 10);
        snprintf(o->value, sizeof o->value, "[%" PRId64 ",1000]", key);
        index = o->index;
        break;
    }
    json = sim_json(&s);
    r = run_checker(RUN_REGISTER, json, NULL);
    if (r->validity != CHECK_INVALID)
        fail_msg("seed %" PRIu64 ": a read of a phantom value (op index %" PRId64 ") was judged %s", seed, index,
                 check_validity_name(r->validity));
    const check_anomaly *a = check_result_anomaly(r, "invalid-keys");
    assert_int_equal(a->count, 1);
    assert_int_equal(a->examples[0], key);
    char want[64];
    snprintf(want, sizeof want, "key %" PRId64 " to 1000", key);
    assert_contains(r->explanation, want);
    check_result_free(r);
    free(json);
    free(s.ops);
}

/* One key, 10 processes, ~200 ops on it: the size the checker must handle
 * quickly (the CLI's time limit is the guard; no timing is asserted here). */
static void test_register__random_single_key_histories(void **state)
{
    for (uint64_t seed = 1; seed <= 30; seed++)
        random_round(seed, 1, 10, 200);
}

static void test_register__random_multi_key_histories(void **state)
{
    for (uint64_t seed = 100; seed < 110; seed++)
        random_round(seed, 8, 10, 1600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register__sequential_ops),
        cmocka_unit_test(test_register__concurrent_writes_reads_of_either_value),
        cmocka_unit_test(test_register__info_write_later_observed),
        cmocka_unit_test(test_register__info_write_never_observed),
        cmocka_unit_test(test_register__cas_chain),
        cmocka_unit_test(test_register__failed_cas_has_no_effect),
        cmocka_unit_test(test_register__failed_and_info_reads_are_dropped),
        cmocka_unit_test(test_register__stale_read),
        cmocka_unit_test(test_register__lost_write),
        cmocka_unit_test(test_register__double_cas),
        cmocka_unit_test(test_register__phantom_value),
        cmocka_unit_test(test_register__failed_write_observed),
        cmocka_unit_test(test_register__read_after_cas_that_should_have_failed),
        cmocka_unit_test(test_register__absent_after_write),
        cmocka_unit_test(test_register__only_the_bad_key_is_named),
        cmocka_unit_test(test_register__tiny_state_budget_gives_unknown),
        cmocka_unit_test(test_register__time_limit_gives_unknown),
        cmocka_unit_test(test_register__format_errors),
        cmocka_unit_test(test_register__empty_history_is_unknown),
        cmocka_unit_test(test_register__random_single_key_histories),
        cmocka_unit_test(test_register__random_multi_key_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * linear.c — Wing & Gong's linearizability search with Lowe's memo cache.
 *
 * Invariants of the search loop (lin_check):
 *   1. The event list holds, in history order, the call and return events of
 *      every op not yet linearized; linearizing an op lifts both of its
 *      events out, backtracking puts them back (dancing links, so restores
 *      happen in exact reverse order of removals).
 *   2. stack[0..depth) is the current linearization, and stack_state[i] is
 *      the register value before stack[i] was applied.
 *   3. bits/bits_hash describe exactly the ops on the stack (bits_hash is the
 *      XOR of their Zobrist keys, so it is updated in O(1)).
 *   4. Every configuration pushed is in the memo; a configuration already in
 *      the memo is never pushed again, which bounds the search by the number
 *      of distinct configurations.
 *   5. returns_left counts the return events still in the list: the history
 *      is linearizable as soon as it is 0 (every ok op placed; ops of unknown
 *      outcome still pending are simply never applied).
 *   6. Reads first: if a pending read (its call seen, before the first
 *      remaining return) returned the current value, it is linearized at
 *      once and nothing else is tried from this configuration; if that
 *      fails, the configuration fails. Sound because a read does not change
 *      the value: any successful order from here can move the read to the
 *      front (its precondition holds now, and taking its return out of the
 *      list earlier only relaxes real-time order for the rest). This removes
 *      the branching over the order of concurrent reads.
 *   7. An op of unknown outcome (a write or cas that may or may not have
 *      happened, and may have happened at any time after its call) is only
 *      tried when it changes the value and a pending read or cas would
 *      consume the new value. Sound because in any successful order such an
 *      op can be moved later, to just before the first op that depends on
 *      its value (it has no return to respect), or dropped if no op does
 *      (the next op then overwrites the value, or there is none; a cas from
 *      another value right after it would not apply). Without this, every
 *      crashed write doubles the configurations for the rest of the key.
 */
#include "linear.h"

#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "orderkv.h"

bool lin_val_eq(lin_val a, lin_val b)
{
    return a.null == b.null && (a.null || a.v == b.v);
}

bool lin_step(lin_val state, const lin_op *op, lin_val *next)
{
    switch (op->kind) {
    case LIN_READ:
        *next = state;
        return lin_val_eq(state, op->a);
    case LIN_WRITE:
        *next = op->a;
        return true;
    case LIN_CAS:
        if (!lin_val_eq(state, op->a))
            return false;
        *next = op->b;
        return true;
    }
    return false;
}

/* ---- memo: a hash set of (bitset, value) ---- */

typedef struct memo {
    size_t words;       /* uint64 words per bitset */
    size_t n, cap_e;    /* entries, allocated entries */
    uint64_t *bits;     /* entry i's bitset at bits[i * words] */
    lin_val *vals;
    uint64_t *hashes;
    uint32_t *slots;    /* entry index + 1, 0 = empty */
    size_t cap_s;       /* power of two */
} memo;

static void memo_free(memo *m)
{
    free(m->bits);
    free(m->vals);
    free(m->hashes);
    free(m->slots);
}

static uint64_t val_hash(lin_val v)
{
    return v.null ? 0x6a09e667f3bcc908ull : imap_mix((uint64_t)v.v ^ 0x243f6a8885a308d3ull);
}

static int memo_grow_slots(memo *m)
{
    size_t cap = m->cap_s ? m->cap_s * 2 : 1024;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return OKV_ENOMEM;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = (size_t)m->hashes[e] & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)(e + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->cap_s = cap;
    return 0;
}

static int memo_grow_entries(memo *m)
{
    size_t cap = m->cap_e ? m->cap_e * 2 : 1024;
    if (cap >= UINT32_MAX || cap > SIZE_MAX / (m->words * sizeof(uint64_t)))
        return OKV_ENOMEM;
    uint64_t *bits = realloc(m->bits, cap * m->words * sizeof *bits);
    if (!bits)
        return OKV_ENOMEM;
    m->bits = bits;
    lin_val *vals = realloc(m->vals, cap * sizeof *vals);
    if (!vals)
        return OKV_ENOMEM;
    m->vals = vals;
    uint64_t *hashes = realloc(m->hashes, cap * sizeof *hashes);
    if (!hashes)
        return OKV_ENOMEM;
    m->hashes = hashes;
    m->cap_e = cap;
    return 0;
}

/* Adds (bits, v) unless present: 1 if added, 0 if it was there, or OKV_ENOMEM. */
static int memo_insert(memo *m, const uint64_t *bits, uint64_t bits_hash, lin_val v)
{
    if ((m->n + 1) * 2 > m->cap_s && memo_grow_slots(m))
        return OKV_ENOMEM;
    uint64_t h = bits_hash ^ val_hash(v);
    size_t i = (size_t)h & (m->cap_s - 1);
    for (; m->slots[i]; i = (i + 1) & (m->cap_s - 1)) {
        size_t e = m->slots[i] - 1;
        if (m->hashes[e] == h && lin_val_eq(m->vals[e], v) &&
            memcmp(&m->bits[e * m->words], bits, m->words * sizeof *bits) == 0)
            return 0;
    }
    if (m->n == m->cap_e && memo_grow_entries(m))
        return OKV_ENOMEM;
    memcpy(&m->bits[m->n * m->words], bits, m->words * sizeof *bits);
    m->vals[m->n] = v;
    m->hashes[m->n] = h;
    m->slots[i] = (uint32_t)(m->n + 1);
    m->n++;
    return 1;
}

/* ---- the event list ---- */

typedef struct event {
    size_t pos;
    size_t op;
    bool call;
} event;

static int event_cmp(const void *a, const void *b)
{
    const event *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

typedef struct search {
    const lin_op *ops;
    size_t n;
    /* circular doubly linked event list; slot 0 is the head sentinel */
    size_t *ev_op;
    bool *ev_call;
    size_t *next, *prev;
    size_t *call_ev, *ret_ev; /* per op; ret_ev 0 = no return event */
    /* the linearization */
    uint64_t *bits;
    uint64_t *zobrist;
    uint64_t bits_hash;
    size_t *stack;
    lin_val *stack_state;
    bool *forced;             /* stack[i] was a forced read (invariant 6) */
    size_t depth;
    memo memo;
} search;

static void search_free(search *s)
{
    free(s->ev_op);
    free(s->ev_call);
    free(s->next);
    free(s->prev);
    free(s->call_ev);
    free(s->ret_ev);
    free(s->bits);
    free(s->zobrist);
    free(s->stack);
    free(s->stack_state);
    free(s->forced);
    memo_free(&s->memo);
}

static int search_init(search *s, const lin_op *ops, size_t n)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->n = n;
    size_t n_ev = 0;
    for (size_t i = 0; i < n; i++)
        n_ev += ops[i].ret == LIN_NEVER ? 1 : 2;
    size_t words = (n + 63) / 64;
    event *evs = malloc(n_ev * sizeof *evs);
    s->ev_op = malloc((n_ev + 1) * sizeof *s->ev_op);
    s->ev_call = malloc((n_ev + 1) * sizeof *s->ev_call);
    s->next = malloc((n_ev + 1) * sizeof *s->next);
    s->prev = malloc((n_ev + 1) * sizeof *s->prev);
    s->call_ev = malloc(n * sizeof *s->call_ev);
    s->ret_ev = calloc(n, sizeof *s->ret_ev);
    s->bits = calloc(words, sizeof *s->bits);
    s->zobrist = malloc(n * sizeof *s->zobrist);
    s->stack = malloc(n * sizeof *s->stack);
    s->stack_state = malloc(n * sizeof *s->stack_state);
    s->forced = malloc(n * sizeof *s->forced);
    s->memo.words = words;
    if (!evs || !s->ev_op || !s->ev_call || !s->next || !s->prev || !s->call_ev || !s->ret_ev ||
        !s->bits || !s->zobrist || !s->stack || !s->stack_state || !s->forced) {
        free(evs);
        return OKV_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        evs[k++] = (event){ ops[i].call, i, true };
        if (ops[i].ret != LIN_NEVER)
            evs[k++] = (event){ ops[i].ret, i, false };
        s->zobrist[i] = imap_mix(i * 0x9e3779b97f4a7c15ull + 0x5851f42d4c957f2dull);
    }
    qsort(evs, n_ev, sizeof *evs, event_cmp);
    for (size_t e = 1; e <= n_ev; e++) {
        s->ev_op[e] = evs[e - 1].op;
        s->ev_call[e] = evs[e - 1].call;
        if (s->ev_call[e])
            s->call_ev[s->ev_op[e]] = e;
        else
            s->ret_ev[s->ev_op[e]] = e;
        s->prev[e] = e - 1;
        s->next[e] = e == n_ev ? 0 : e + 1;
    }
    s->next[0] = n_ev ? 1 : 0;
    s->prev[0] = n_ev;
    s->ev_call[0] = false;
    free(evs);
    return 0;
}

static void unlink_ev(search *s, size_t e)
{
    s->next[s->prev[e]] = s->next[e];
    s->prev[s->next[e]] = s->prev[e];
}

static void relink_ev(search *s, size_t e)
{
    s->next[s->prev[e]] = e;
    s->prev[s->next[e]] = e;
}

static void lift(search *s, size_t op)
{
    unlink_ev(s, s->call_ev[op]);
    if (s->ret_ev[op])
        unlink_ev(s, s->ret_ev[op]);
}

static void unlift(search *s, size_t op)
{
    if (s->ret_ev[op])
        relink_ev(s, s->ret_ev[op]);
    relink_ev(s, s->call_ev[op]);
}

static void toggle(search *s, size_t op)
{
    s->bits[op / 64] ^= (uint64_t)1 << (op % 64);
    s->bits_hash ^= s->zobrist[op];
}

/* The first pending read (call seen, before the first remaining return)
 * whose value is the register's, or LIN_NEVER. */
static size_t applicable_read(const search *s, lin_val state)
{
    for (size_t e = s->next[0]; e && s->ev_call[e]; e = s->next[e]) {
        const lin_op *op = &s->ops[s->ev_op[e]];
        if (op->kind == LIN_READ && lin_val_eq(op->a, state))
            return s->ev_op[e];
    }
    return LIN_NEVER;
}

/* Invariant 7: is the op of unknown outcome op, which would change the value
 * from state to after, worth linearizing now? Only if the value changes and
 * a pending op (a read of it, or a cas from it) would consume the new value. */
static bool worth_trying(const search *s, size_t op, lin_val state, lin_val after)
{
    if (lin_val_eq(state, after))
        return false;
    for (size_t e = s->next[0]; e && s->ev_call[e]; e = s->next[e]) {
        const lin_op *c = &s->ops[s->ev_op[e]];
        if (s->ev_op[e] != op && (c->kind == LIN_READ || c->kind == LIN_CAS) && lin_val_eq(c->a, after))
            return true;
    }
    return false;
}

static void record_best(search *s, lin_report *rep, lin_val state)
{
    rep->best_depth = s->depth;
    size_t k = s->depth < LIN_TAIL ? s->depth : LIN_TAIL;
    memcpy(rep->best_tail, s->stack + (s->depth - k), k * sizeof *s->stack);
    rep->n_best_tail = k;
    rep->best_state = state;
    rep->blocking = LIN_NEVER;
    rep->n_candidates = 0;
}

/* The search could not get past return event ret from the deepest
 * configuration: note its op and the pending ops it tried. */
static void record_block(search *s, lin_report *rep, size_t ret)
{
    rep->blocking = ret ? s->ev_op[ret] : LIN_NEVER;
    rep->n_candidates = 0;
    for (size_t e = s->next[0]; e && e != ret; e = s->next[e])
        if (s->ev_call[e] && rep->n_candidates < LIN_CANDIDATES)
            rep->candidates[rep->n_candidates++] = s->ev_op[e];
}

int lin_check(const lin_op *ops, size_t n, const lin_limits *lim, lin_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->blocking = LIN_NEVER;
    rep->best_state.null = true;
    rep->outcome = LIN_LINEARIZABLE;
    if (n == 0)
        return 0;

    search s;
    int rc = search_init(&s, ops, n);
    if (rc) {
        search_free(&s);
        return rc;
    }
    size_t returns_left = 0;
    for (size_t i = 0; i < n; i++)
        returns_left += ops[i].ret != LIN_NEVER;

    lin_val state = { 0, true };
    bool pending_block = true; /* the deepest configuration has not hit a return yet */
    bool fresh = true;         /* at a configuration not yet scanned */
    uint64_t iterations = 0;
    size_t e = 0;
    while (returns_left > 0) {
        if ((++iterations & 1023) == 0 && lim && lim->now_ms &&
            lim->now_ms(lim->clock_ctx) >= lim->deadline_ms) {
            rep->outcome = LIN_TIME_LIMIT;
            break;
        }
        bool dead = false;
        size_t op = LIN_NEVER;
        if (fresh) {
            /* Invariant 6: a pending read that fits now is linearized now. */
            fresh = false;
            op = applicable_read(&s, state);
            e = s.next[0];
        } else if (e && s.ev_call[e]) {
            op = s.ev_op[e];
            e = s.next[e];
        }
        if (op != LIN_NEVER) {
            bool forced = ops[op].kind == LIN_READ;
            lin_val after;
            if (!lin_step(state, &ops[op], &after))
                continue;
            if (ops[op].ret == LIN_NEVER && !worth_trying(&s, op, state, after))
                continue;
            if (lim && lim->max_states && s.memo.n >= lim->max_states) {
                rep->outcome = LIN_STATE_BUDGET;
                break;
            }
            toggle(&s, op);
            int added = memo_insert(&s.memo, s.bits, s.bits_hash, after);
            if (added < 0) {
                rc = added;
                break;
            }
            if (!added) {
                toggle(&s, op);
                if (!forced)
                    continue;
                dead = true; /* the forced read's configuration failed before */
            } else {
                s.stack[s.depth] = op;
                s.stack_state[s.depth] = state;
                s.forced[s.depth] = forced;
                s.depth++;
                state = after;
                lift(&s, op);
                returns_left -= ops[op].ret != LIN_NEVER;
                if (s.depth > rep->best_depth) {
                    record_best(&s, rep, state);
                    pending_block = true;
                }
                fresh = true;
                continue;
            }
        }
        if (!dead && e && s.ev_call[e])
            continue;
        /* A return event (or, defensively, the end of the list): its op
         * must have been linearized by now, so this configuration is dead. */
        if (!dead && pending_block) {
            record_block(&s, rep, e);
            pending_block = false;
        }
        /* Backtrack; popping a forced read means its parent is dead too. */
        bool violation = false;
        for (;;) {
            if (s.depth == 0) {
                violation = true;
                break;
            }
            size_t top = s.stack[--s.depth];
            state = s.stack_state[s.depth];
            toggle(&s, top);
            unlift(&s, top);
            returns_left += ops[top].ret != LIN_NEVER;
            if (!s.forced[s.depth]) {
                e = s.next[s.call_ev[top]];
                break;
            }
        }
        if (violation) {
            rep->outcome = LIN_VIOLATION;
            break;
        }
    }
    rep->states = s.memo.n;
    search_free(&s);
    return rc;
}

/*
 * register_facts.c — ops of one register key that are impossible in any
 * order, found without searching.
 *
 * Each rule is a proof that no linearization exists, so a key with such an
 * op is invalid however large it is, and the explanation can lead with the
 * culprit. For an ok op x (values compared as in linear.h):
 *   R1  read of v, and no write or cas ever set v (phantom value);
 *   R2  read of v, and every op that set v failed;
 *   R3  read of v, and every op that set v without failing was invoked
 *       after the read returned;
 *   R4  read of v, every op that set v completed ok, and some ok write or
 *       cas that began after the last of them completed finished before the
 *       read began (so the value had moved on: a stale read);
 *   R5  read of null after some ok write or cas completed before the read
 *       began (a register never becomes absent again);
 *   R6  cas from v (v != new), and no op that did not fail ever set v;
 *   R7  more ok cas ops from v (v != new) than ops that set v, counting the
 *       initial null: each time the value becomes v, one cas can consume it.
 * Cost: O(n log n) to build, O(log n) per op.
 */
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "register_int.h"

#define NONE ((size_t)-1)

typedef struct vstats {
    size_t n_set;              /* ops that set the value, any outcome */
    size_t n_failed;           /* ... of which failed */
    size_t min_pos_live;       /* smallest invoke position of one that did not fail */
    size_t last_end;           /* latest ok completion of one */
    bool unbounded;            /* one did not fail and has no ok completion */
    size_t producers;          /* did not fail, and not a cas v->v */
    size_t consumers;          /* ok cas from the value, not v->v */
} vstats;

struct reg_facts {
    const reg_op *kops;
    size_t n;
    imap by_value;             /* value -> index into st */
    vstats *st;
    size_t n_st;
    vstats null_st;            /* cas from null */
    size_t *prod_pos;          /* ok writes and cas, by invoke position */
    size_t *suffix_min_ret;    /* min completion among prod_pos[i..] */
    size_t n_prod;
    size_t min_ok_ret;         /* earliest completion of an ok write or cas */
};

static bool is_self_cas(const reg_op *r)
{
    return r->op.kind == LIN_CAS && lin_val_eq(r->op.a, r->op.b);
}

static vstats *stats_for(reg_facts *f, lin_val v, bool create)
{
    if (v.null)
        return &f->null_st;
    uint64_t *slot = imap_get(&f->by_value, v.v);
    if (slot)
        return &f->st[*slot];
    if (!create || imap_put(&f->by_value, v.v, f->n_st))
        return NULL;
    vstats *s = &f->st[f->n_st++];
    memset(s, 0, sizeof *s);
    s->min_pos_live = NONE;
    return s;
}

static const vstats *stats_of(const reg_facts *f, lin_val v)
{
    return stats_for((reg_facts *)f, v, false);
}

int reg_facts_new(reg_facts **out, const reg_op *kops, size_t n)
{
    *out = NULL;
    reg_facts *f = calloc(1, sizeof *f);
    if (!f)
        return OKV_ENOMEM;
    f->kops = kops;
    f->n = n;
    imap_init(&f->by_value);
    f->null_st.min_pos_live = NONE;
    f->st = malloc((2 * n + 1) * sizeof *f->st); /* a cas may name two values */
    f->prod_pos = malloc((n ? n : 1) * sizeof *f->prod_pos);
    f->suffix_min_ret = malloc((n ? n : 1) * sizeof *f->suffix_min_ret);
    if (!f->st || !f->prod_pos || !f->suffix_min_ret) {
        reg_facts_free(f);
        return OKV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const reg_op *r = &kops[i];
        if (r->op.kind == LIN_READ)
            continue;
        lin_val set = r->op.kind == LIN_WRITE ? r->op.a : r->op.b;
        vstats *s = stats_for(f, set, true);
        if (!s) {
            reg_facts_free(f);
            return OKV_ENOMEM;
        }
        s->n_set++;
        if (r->outcome == HISTORY_FAIL) {
            s->n_failed++;
        } else {
            if (r->pos < s->min_pos_live)
                s->min_pos_live = r->pos;
            if (r->outcome == HISTORY_OK) {
                if (r->ret > s->last_end)
                    s->last_end = r->ret;
                f->prod_pos[f->n_prod] = i; /* kops are in invoke order */
                f->n_prod++;
            } else {
                s->unbounded = true;
            }
            s->producers += !is_self_cas(r);
        }
        if (r->op.kind == LIN_CAS && r->outcome == HISTORY_OK && !is_self_cas(r)) {
            vstats *from = stats_for(f, r->op.a, true);
            if (!from) {
                reg_facts_free(f);
                return OKV_ENOMEM;
            }
            from->consumers++;
        }
    }
    size_t min = NONE;
    for (size_t k = f->n_prod; k-- > 0;) {
        size_t ret = kops[f->prod_pos[k]].ret;
        min = ret < min ? ret : min;
        f->suffix_min_ret[k] = min;
    }
    f->min_ok_ret = min;
    *out = f;
    return 0;
}

void reg_facts_free(reg_facts *f)
{
    if (!f)
        return;
    imap_free(&f->by_value);
    free(f->st);
    free(f->prod_pos);
    free(f->suffix_min_ret);
    free(f);
}

/* The earliest completion among ok writes and cas invoked after pos. */
static size_t min_ret_after(const reg_facts *f, size_t pos)
{
    size_t lo = 0, hi = f->n_prod;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->kops[f->prod_pos[mid]].pos > pos)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < f->n_prod ? f->suffix_min_ret[lo] : NONE;
}

reg_rule reg_facts_rule(const reg_facts *f, const reg_op *x)
{
    if (x->outcome != HISTORY_OK)
        return REG_RULE_NONE;
    if (x->op.kind == LIN_READ && x->op.a.null)
        return f->min_ok_ret < x->pos ? REG_RULE_ABSENT_AFTER_WRITE : REG_RULE_NONE;
    if (x->op.kind == LIN_READ) {
        const vstats *s = stats_of(f, x->op.a);
        if (!s || s->n_set == 0)
            return REG_RULE_PHANTOM;
        if (s->n_set == s->n_failed)
            return REG_RULE_ONLY_FAILED_WRITES;
        if (s->min_pos_live > x->ret)
            return REG_RULE_WRITES_AFTER_READ;
        if (!s->unbounded && min_ret_after(f, s->last_end) < x->pos)
            return REG_RULE_STALE_READ;
        return REG_RULE_NONE;
    }
    if (x->op.kind == LIN_CAS && !is_self_cas(x)) {
        const vstats *s = stats_of(f, x->op.a);
        size_t producers = (x->op.a.null ? 1 : 0) + (s ? s->producers : 0);
        if (producers == 0)
            return REG_RULE_CAS_FROM_UNSET;
        if (s && s->consumers > producers)
            return REG_RULE_CAS_CONSUMED_TWICE;
    }
    return REG_RULE_NONE;
}

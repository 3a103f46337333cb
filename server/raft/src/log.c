/*
 * log.c — the Raft log as one node sees it: storage below, memory on top.
 *
 * Design notes
 * ------------
 * The host persists entries only while handling a Ready, so between two
 * Readies the newest entries exist only here. Keeping persisted-but-unapplied
 * entries in memory as well (from mem_first to stable) lets the leader send
 * and every node apply the common case without a storage round trip; storage
 * is only read for lagging followers and for apply after a restart.
 *
 * Invariants L1-L4 are listed in log.h; raft_log_check asserts L1-L3 and
 * raft_log_maybe_append asserts L4 before truncating anything.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "raft_assert.h"

static struct raft_entry *mem_at(const struct raft_log *l, uint64_t i)
{
    raft_assert(i >= l->mem_first && i < l->mem_first + l->n);
    return &l->mem[l->head + (size_t)(i - l->mem_first)];
}

int raft_log_init(struct raft_log *l, const struct raft_storage_ops *ops,
                  void *ctx)
{
    uint64_t first, last;
    int rc;

    memset(l, 0, sizeof(*l));
    l->ops = ops;
    l->ctx = ctx;
    rc = ops->first_index(ctx, &first);
    if (rc != 0)
        return RAFT_ERR_STORAGE;
    rc = ops->last_index(ctx, &last);
    if (rc != 0 || last + 1 < first)
        return RAFT_ERR_STORAGE;
    l->mem_first = last + 1;
    l->stable = last;
    l->committed = first - 1;
    l->applied = first - 1;
    return 0;
}

static void free_mem_range(struct raft_log *l, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++) {
        free(l->mem[l->head + k].data);
        l->mem[l->head + k].data = NULL;
    }
}

void raft_log_close(struct raft_log *l)
{
    free_mem_range(l, 0, l->n);
    free(l->mem);
    if (l->pending_snap != NULL) {
        free(l->pending_snap->data);
        free(l->pending_snap);
    }
    memset(l, 0, sizeof(*l));
}

uint64_t raft_log_last_index(const struct raft_log *l)
{
    return l->mem_first + l->n - 1;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
    uint64_t t = 0;
    int rc = raft_log_term(l, raft_log_last_index(l), &t);
    /* last >= first - 1 always, and storage keeps the term of first - 1. */
    raft_assert(rc == 0);
    return t;
}

uint64_t raft_log_first_index(const struct raft_log *l)
{
    uint64_t first = 0;
    if (l->pending_snap != NULL)
        return l->pending_snap->meta.index + 1;
    if (l->ops->first_index(l->ctx, &first) != 0)
        return l->mem_first;
    return first < l->mem_first ? first : l->mem_first;
}

int raft_log_term(const struct raft_log *l, uint64_t i, uint64_t *term)
{
    uint64_t last = raft_log_last_index(l);
    *term = 0;
    if (i >= l->mem_first && i <= last) {
        *term = mem_at(l, i)->term;
        return 0;
    }
    if (i > last)
        return RAFT_ERR_UNAVAILABLE;
    if (l->pending_snap != NULL) {
        if (i == l->pending_snap->meta.index) {
            *term = l->pending_snap->meta.term;
            return 0;
        }
        return RAFT_ERR_COMPACTED;
    }
    if (i == 0)
        return 0;
    int rc = l->ops->term(l->ctx, i, term);
    if (rc != 0) {
        *term = 0;
        return rc == RAFT_ERR_UNAVAILABLE ? rc : RAFT_ERR_COMPACTED;
    }
    return 0;
}

uint64_t raft_log_term_or_zero(const struct raft_log *l, uint64_t i)
{
    uint64_t t;
    return raft_log_term(l, i, &t) == 0 ? t : 0;
}

bool raft_log_match_term(const struct raft_log *l, uint64_t i, uint64_t term)
{
    uint64_t t;
    if (raft_log_term(l, i, &t) != 0)
        return false;
    return t == term;
}

bool raft_log_is_up_to_date(const struct raft_log *l, uint64_t last_index,
                            uint64_t last_term)
{
    uint64_t my_term = raft_log_last_term(l);
    return last_term > my_term ||
           (last_term == my_term && last_index >= raft_log_last_index(l));
}

static void reserve_one(struct raft_log *l)
{
    if (l->head + l->n < l->cap)
        return;
    if (l->head > 0 && l->head >= l->cap / 2) {
        /* Slide live entries to the front instead of growing: apply keeps
         * consuming from the head, so the array stays about one window. */
        memmove(l->mem, l->mem + l->head, l->n * sizeof(*l->mem));
        l->head = 0;
        return;
    }
    size_t cap = l->cap == 0 ? 64 : l->cap * 2;
    struct raft_entry *m = realloc(l->mem, cap * sizeof(*m));
    raft_assert(m != NULL);
    l->mem = m;
    l->cap = cap;
}

void raft_log_append_owned(struct raft_log *l, struct raft_entry *e)
{
    raft_assert(e->index == raft_log_last_index(l) + 1);
    reserve_one(l);
    l->mem[l->head + l->n] = *e;
    l->n++;
}

static void append_copy(struct raft_log *l, const struct raft_entry *e)
{
    struct raft_entry c = *e;
    if (e->len > 0) {
        c.data = malloc(e->len);
        raft_assert(c.data != NULL);
        memcpy(c.data, e->data, e->len);
    } else {
        c.data = NULL;
    }
    raft_log_append_owned(l, &c);
}

/* Drops every entry >= i (i > committed, checked by the caller). */
static void truncate_from(struct raft_log *l, uint64_t i)
{
    if (i >= l->mem_first) {
        size_t keep = (size_t)(i - l->mem_first);
        if (keep < l->n) {
            free_mem_range(l, keep, l->n);
            l->n = keep;
        }
    } else {
        /* The conflict is below the memory tail: everything cached goes and
         * the replacement entries will overwrite storage from i on. */
        free_mem_range(l, 0, l->n);
        l->n = 0;
        l->head = 0;
        l->mem_first = i;
    }
    if (l->stable > i - 1)
        l->stable = i - 1;
}

bool raft_log_maybe_append(struct raft_log *l, uint64_t prev_index,
                           uint64_t prev_term, uint64_t leader_commit,
                           const struct raft_entry *ents, size_t n,
                           uint64_t *last_new, uint64_t *truncated_at,
                           bool keep_conflict)
{
    size_t k;
#ifndef RAFT_PLANTED_BUGS
    (void)keep_conflict; /* planted-bug builds only */
#endif

    *truncated_at = 0;
    if (!raft_log_match_term(l, prev_index, prev_term))
        return false;
    *last_new = prev_index + n;
    for (k = 0; k < n; k++) {
        if (!raft_log_match_term(l, ents[k].index, ents[k].term))
            break;
    }
    if (k < n) {
        uint64_t ci = ents[k].index;
        /* L4: a conflict at or below commit means two different entries
         * were committed at one index — the log is already corrupt. */
        raft_assert(ci > l->committed);
        if (ci <= raft_log_last_index(l)) {
            *truncated_at = ci;
#ifdef RAFT_PLANTED_BUGS
            if (keep_conflict) {
                /* Planted bug: overwrite in place and keep the old suffix
                 * beyond the new entries (violates Figure 2 rule 3). */
                for (; k < n && ents[k].index <= raft_log_last_index(l); k++) {
                    struct raft_entry *m;
                    if (ents[k].index < l->mem_first)
                        break;
                    m = mem_at(l, ents[k].index);
                    free(m->data);
                    m->term = ents[k].term;
                    m->type = ents[k].type;
                    m->len = ents[k].len;
                    m->data = NULL;
                    if (m->len > 0) {
                        m->data = malloc(m->len);
                        raft_assert(m->data != NULL);
                        memcpy(m->data, ents[k].data, m->len);
                    }
                }
                if (l->stable > ci - 1 && ci >= l->mem_first)
                    l->stable = ci - 1;
                if (k < n && ents[k].index <= raft_log_last_index(l))
                    truncate_from(l, ents[k].index);
            } else
#endif
            {
                truncate_from(l, ci);
            }
        }
        for (; k < n; k++) {
            if (ents[k].index == raft_log_last_index(l) + 1)
                append_copy(l, &ents[k]);
        }
    }
    uint64_t c = leader_commit < *last_new ? leader_commit : *last_new;
    raft_log_commit_to(l, c);
    return true;
}

void raft_log_commit_to(struct raft_log *l, uint64_t c)
{
    if (c <= l->committed)
        return;
    raft_assert(c <= raft_log_last_index(l));
    l->committed = c;
}

/* Lowest index in [lo, hi] whose term is >= t; hi + 1 when none. Terms are
 * non-decreasing along a log (L3), so binary search is exact. */
static uint64_t lower_bound_term(const struct raft_log *l, uint64_t lo,
                                 uint64_t hi, uint64_t t)
{
    uint64_t a = lo, b = hi + 1;
    while (a < b) {
        uint64_t mid = a + (b - a) / 2;
        if (raft_log_term_or_zero(l, mid) >= t)
            b = mid;
        else
            a = mid + 1;
    }
    return a;
}

static uint64_t readable_floor(const struct raft_log *l, uint64_t floor)
{
    uint64_t f = raft_log_first_index(l);
    f = f > 0 ? f - 1 : 0;
    return floor > f ? floor : f;
}

uint64_t raft_log_first_of_term(const struct raft_log *l, uint64_t i,
                                uint64_t floor)
{
    uint64_t t = raft_log_term_or_zero(l, i);
    uint64_t lo = readable_floor(l, floor);
    if (lo > i)
        return i;
    return lower_bound_term(l, lo, i, t);
}

uint64_t raft_log_last_of_term(const struct raft_log *l, uint64_t i,
                               uint64_t t, uint64_t floor)
{
    uint64_t lo = readable_floor(l, floor);
    uint64_t last = raft_log_last_index(l);
    if (i > last)
        i = last;
    if (lo > i)
        return 0;
    /* First index with term > t, minus one, is the last with term <= t. */
    uint64_t j = lower_bound_term(l, lo, i, t + 1);
    if (j == lo)
        return 0;
    j--;
    return raft_log_term_or_zero(l, j) == t ? j : 0;
}

int raft_log_slice(const struct raft_log *l, uint64_t lo, uint64_t hi,
                   uint64_t max_bytes, struct raft_slice *s)
{
    uint64_t bytes = 0;

    memset(s, 0, sizeof(*s));
    raft_assert(lo < hi && hi <= raft_log_last_index(l) + 1);
    if (lo < raft_log_first_index(l))
        return RAFT_ERR_COMPACTED;
    s->v = malloc((size_t)(hi - lo) * sizeof(*s->v));
    raft_assert(s->v != NULL);
    if (lo < l->mem_first) {
        uint64_t shi = hi < l->mem_first ? hi : l->mem_first;
        int rc = l->ops->entries(l->ctx, lo, shi, max_bytes, &s->owned,
                                 &s->n_owned);
        if (rc != 0 || s->n_owned == 0) {
            raft_slice_free(s);
            return rc == RAFT_ERR_COMPACTED ? rc : RAFT_ERR_STORAGE;
        }
        for (size_t k = 0; k < s->n_owned; k++) {
            raft_assert(s->owned[k].index == lo + k);
            bytes += s->owned[k].len;
            s->v[s->n++] = s->owned[k];
        }
        if (lo + s->n_owned < shi)
            return 0; /* storage hit the byte limit */
        lo = shi;
    }
    for (uint64_t i = lo; i < hi; i++) {
        const struct raft_entry *e = mem_at(l, i);
        if (s->n > 0 && bytes + e->len > max_bytes)
            break;
        bytes += e->len;
        s->v[s->n++] = *e;
    }
    return 0;
}

void raft_slice_free(struct raft_slice *s)
{
    for (size_t k = 0; k < s->n_owned; k++)
        free(s->owned[k].data);
    free(s->owned);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

void raft_log_restore(struct raft_log *l, struct raft_snapshot *snap)
{
    free_mem_range(l, 0, l->n);
    l->n = 0;
    l->head = 0;
    l->mem_first = snap->meta.index + 1;
    l->stable = snap->meta.index;
    raft_assert(snap->meta.index >= l->committed);
    l->committed = snap->meta.index;
    if (l->pending_snap != NULL) {
        free(l->pending_snap->data);
        free(l->pending_snap);
    }
    l->pending_snap = snap;
}

void raft_log_stable_to(struct raft_log *l, uint64_t index)
{
    raft_assert(index <= raft_log_last_index(l));
    if (index > l->stable)
        l->stable = index;
}

void raft_log_applied_to(struct raft_log *l, uint64_t applied)
{
    raft_assert(applied <= l->committed);
    if (applied > l->applied)
        l->applied = applied;
    uint64_t drop_to = l->applied < l->stable ? l->applied : l->stable;
    if (drop_to < l->mem_first)
        return;
    size_t k = (size_t)(drop_to - l->mem_first + 1);
    free_mem_range(l, 0, k);
    l->head += k;
    l->n -= k;
    l->mem_first += k;
    if (l->n == 0)
        l->head = 0;
}

const struct raft_entry *raft_log_unstable(const struct raft_log *l,
                                           size_t *n)
{
    uint64_t last = raft_log_last_index(l);
    *n = (size_t)(last - l->stable);
    if (*n == 0)
        return NULL;
    return mem_at(l, l->stable + 1);
}

void raft_log_check(const struct raft_log *l)
{
    uint64_t last = raft_log_last_index(l);
    raft_assert(l->mem_first >= 1);
    raft_assert(l->stable + 1 >= l->mem_first && l->stable <= last); /* L1 */
    raft_assert(l->applied <= l->committed && l->committed <= last); /* L2 */
    for (size_t k = 0; k < l->n; k++) {                              /* L3 */
        const struct raft_entry *e = &l->mem[l->head + k];
        raft_assert(e->index == l->mem_first + k);
        if (k > 0)
            raft_assert(e->term >= l->mem[l->head + k - 1].term);
    }
}

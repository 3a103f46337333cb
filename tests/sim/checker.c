/*
 * checker.c — invariant bookkeeping for the simulator (properties K1-K8 in
 * checker.h). All structures are reset per seed, not freed, so a soak of a
 * million seeds does not spend its time in malloc.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void chk_map_clear(struct chk_map *m)
{
    if (m->s != NULL && m->n > 0)
        memset(m->s, 0, m->cap * sizeof(*m->s));
    m->n = 0;
}

void chk_map_free(struct chk_map *m)
{
    free(m->s);
    memset(m, 0, sizeof(*m));
}

static struct chk_slot *find_slot(struct chk_map *m, uint64_t k1, uint64_t k2)
{
    size_t i = (size_t)mix(k1, k2) & (m->cap - 1);
    for (;;) {
        struct chk_slot *s = &m->s[i];
        if (!s->used || (s->k1 == k1 && s->k2 == k2))
            return s;
        i = (i + 1) & (m->cap - 1);
    }
}

struct chk_slot *chk_map_get(struct chk_map *m, uint64_t k1, uint64_t k2)
{
    if (m->cap == 0)
        return NULL;
    struct chk_slot *s = find_slot(m, k1, k2);
    return s->used ? s : NULL;
}

static void grow(struct chk_map *m)
{
    struct chk_map old = *m;
    m->cap = old.cap == 0 ? 256 : old.cap * 2;
    m->s = calloc(m->cap, sizeof(*m->s));
    if (m->s == NULL)
        abort();
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.s[i].used) {
            *find_slot(m, old.s[i].k1, old.s[i].k2) = old.s[i];
            m->n++;
        }
    }
    free(old.s);
}

struct chk_slot *chk_map_put(struct chk_map *m, uint64_t k1, uint64_t k2,
                             bool *fresh)
{
    if ((m->n + 1) * 2 > m->cap)
        grow(m);
    struct chk_slot *s = find_slot(m, k1, k2);
    *fresh = !s->used;
    if (!s->used) {
        memset(s, 0, sizeof(*s));
        s->used = true;
        s->k1 = k1;
        s->k2 = k2;
        m->n++;
    }
    return s;
}

void chk_init(struct sim_checker *k)
{
    memset(k, 0, sizeof(*k));
}

void chk_reset(struct sim_checker *k)
{
    k->g_len = 0;
    k->c_len = 0;
    chk_map_clear(&k->leaders);
    chk_map_clear(&k->votes);
    chk_map_clear(&k->logm);
    chk_map_clear(&k->props);
    chk_map_clear(&k->reads);
    k->max_acked_index = 0;
    k->violated = false;
    k->msg[0] = '\0';
}

void chk_free(struct sim_checker *k)
{
    free(k->g_term);
    free(k->g_hash);
    free(k->g_roll);
    free(k->c_term);
    free(k->c_eterm);
    chk_map_free(&k->leaders);
    chk_map_free(&k->votes);
    chk_map_free(&k->logm);
    chk_map_free(&k->props);
    chk_map_free(&k->reads);
    memset(k, 0, sizeof(*k));
}

void chk_fail(struct sim_checker *k, const char *fmt, ...)
{
    va_list ap;
    if (k->violated)
        return;
    k->violated = true;
    va_start(ap, fmt);
    vsnprintf(k->msg, sizeof(k->msg), fmt, ap);
    va_end(ap);
}

uint64_t chk_hash_bytes(const void *data, size_t len, uint64_t h)
{
    const uint8_t *p = data;
    h ^= 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t chk_entry_hash(const struct raft_entry *e)
{
    return chk_hash_bytes(e->data, e->len, e->type + 1);
}

uint64_t chk_roll(uint64_t prev, uint64_t entry_hash)
{
    return mix(prev, entry_hash);
}

void chk_leader(struct sim_checker *k, uint64_t term, raft_id id)
{
    bool fresh;
    struct chk_slot *s = chk_map_put(&k->leaders, term, 0, &fresh);
    if (fresh)
        s->v1 = id;
    else if (s->v1 != id)
        chk_fail(k, "K1 election safety: term %llu has leaders %llu and %llu",
                 (unsigned long long)term, (unsigned long long)s->v1,
                 (unsigned long long)id);
}

void chk_vote(struct sim_checker *k, raft_id voter, uint64_t term,
              raft_id candidate)
{
    bool fresh;
    struct chk_slot *s = chk_map_put(&k->votes, voter, term, &fresh);
    if (fresh)
        s->v1 = candidate;
    else if (s->v1 != candidate)
        chk_fail(k, "K2 node %llu voted for %llu and %llu in term %llu",
                 (unsigned long long)voter, (unsigned long long)s->v1,
                 (unsigned long long)candidate, (unsigned long long)term);
}

void chk_persist(struct sim_checker *k, raft_id node, uint64_t prev_term,
                 const struct raft_entry *e)
{
    bool fresh;
    uint64_t h = chk_entry_hash(e);
    if (e->term < prev_term)
        chk_fail(k, "K3 node %llu persisted index %llu term %llu after term "
                    "%llu (terms must not decrease)",
                 (unsigned long long)node, (unsigned long long)e->index,
                 (unsigned long long)e->term, (unsigned long long)prev_term);
    struct chk_slot *s = chk_map_put(&k->logm, e->index, e->term, &fresh);
    if (fresh) {
        s->v1 = h;
        s->v2 = prev_term;
        return;
    }
    if (s->v1 != h || s->v2 != prev_term)
        chk_fail(k, "K3 log matching: node %llu entry (%llu, term %llu) "
                    "differs from an earlier one (content %s, prev term "
                    "%llu vs %llu)",
                 (unsigned long long)node, (unsigned long long)e->index,
                 (unsigned long long)e->term, s->v1 == h ? "same" : "differs",
                 (unsigned long long)prev_term, (unsigned long long)s->v2);
}

static void g_reserve(struct sim_checker *k, uint64_t i)
{
    if (i < k->g_cap)
        return;
    size_t cap = k->g_cap == 0 ? 1024 : k->g_cap;
    while (cap <= i)
        cap *= 2;
    k->g_term = realloc(k->g_term, cap * sizeof(uint64_t));
    k->g_hash = realloc(k->g_hash, cap * sizeof(uint64_t));
    k->g_roll = realloc(k->g_roll, cap * sizeof(uint64_t));
    if (!k->g_term || !k->g_hash || !k->g_roll)
        abort();
    k->g_cap = cap;
}

void chk_commit_seen(struct sim_checker *k, uint64_t term, uint64_t commit,
                     uint64_t (*term_of)(void *ctx, uint64_t i), void *ctx)
{
    if (commit <= k->c_len)
        return;
    if (commit >= k->c_cap) {
        size_t cap = k->c_cap == 0 ? 1024 : k->c_cap;
        while (cap <= commit)
            cap *= 2;
        k->c_term = realloc(k->c_term, cap * sizeof(uint64_t));
        k->c_eterm = realloc(k->c_eterm, cap * sizeof(uint64_t));
        if (!k->c_term || !k->c_eterm)
            abort();
        k->c_cap = cap;
    }
    for (uint64_t i = k->c_len + 1; i <= commit; i++) {
        k->c_term[i] = term;
        k->c_eterm[i] = term_of(ctx, i);
        if (k->c_eterm[i] == 0 && i <= k->g_len)
            k->c_eterm[i] = k->g_term[i];
    }
    k->c_len = commit;
}

uint64_t chk_apply(struct sim_checker *k, raft_id node,
                   const struct raft_entry *e, uint64_t roll_prev)
{
    uint64_t h = chk_entry_hash(e);
    uint64_t roll = chk_roll(roll_prev, h);
    uint64_t i = e->index;
    if (i <= k->g_len) {
        if (k->g_term[i] != e->term || k->g_hash[i] != h ||
            k->g_roll[i] != roll)
            chk_fail(k, "K5 state machine safety: node %llu applied (%llu, "
                        "term %llu) but the committed entry there has term "
                        "%llu%s",
                     (unsigned long long)node, (unsigned long long)i,
                     (unsigned long long)e->term,
                     (unsigned long long)k->g_term[i],
                     k->g_roll[i] != roll && k->g_term[i] == e->term
                         ? " (history before it differs)" : "");
        return roll;
    }
    if (i != k->g_len + 1) {
        chk_fail(k, "K5 node %llu applied index %llu beyond committed "
                    "sequence end %llu",
                 (unsigned long long)node, (unsigned long long)i,
                 (unsigned long long)k->g_len);
        return roll;
    }
    if (i > 1 && k->g_roll[i - 1] != roll_prev) {
        chk_fail(k, "K5 node %llu applied index %llu on a different history",
                 (unsigned long long)node, (unsigned long long)i);
        return roll;
    }
    g_reserve(k, i);
    k->g_term[i] = e->term;
    k->g_hash[i] = h;
    k->g_roll[i] = roll;
    k->g_len = i;
    return roll;
}

void chk_snapshot(struct sim_checker *k, raft_id node, uint64_t index,
                  uint64_t roll)
{
    if (index == 0)
        return;
    if (index > k->g_len || k->g_roll[index] != roll)
        chk_fail(k, "K5 node %llu installed a snapshot at %llu that is not a "
                    "prefix of the committed sequence",
                 (unsigned long long)node, (unsigned long long)index);
}

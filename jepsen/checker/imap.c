#include "imap.h"

#include <stdlib.h>

#include "orderkv.h"

void imap_init(imap *m)
{
    m->keys = NULL;
    m->vals = NULL;
    m->used = NULL;
    m->cap = 0;
    m->n = 0;
}

void imap_free(imap *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    imap_init(m);
}

uint64_t imap_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static size_t slot_of(const imap *m, int64_t key)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)imap_mix((uint64_t)key) & mask;
    while (m->used[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static int grow(imap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    if (cap < m->cap || cap > SIZE_MAX / sizeof(uint64_t))
        return OKV_ENOMEM;
    imap bigger = { malloc(cap * sizeof(int64_t)), malloc(cap * sizeof(uint64_t)),
                    calloc(cap, 1), cap, 0 };
    if (!bigger.keys || !bigger.vals || !bigger.used) {
        imap_free(&bigger);
        return OKV_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->used[i])
            continue;
        size_t j = slot_of(&bigger, m->keys[i]);
        bigger.used[j] = 1;
        bigger.keys[j] = m->keys[i];
        bigger.vals[j] = m->vals[i];
        bigger.n++;
    }
    imap_free(m);
    *m = bigger;
    return 0;
}

int imap_put(imap *m, int64_t key, uint64_t val)
{
    /* Keep the load at most one half so probes stay short. */
    if ((m->n + 1) * 2 > m->cap) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    size_t i = slot_of(m, key);
    if (!m->used[i]) {
        m->used[i] = 1;
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
    return 0;
}

uint64_t *imap_get(const imap *m, int64_t key)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key);
    return m->used[i] ? &m->vals[i] : NULL;
}

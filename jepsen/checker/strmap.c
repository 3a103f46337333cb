#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

void strmap_init(strmap *m)
{
    memset(m, 0, sizeof *m);
    arena_init(&m->mem, 16384);
}

void strmap_free(strmap *m)
{
    free(m->keys);
    free(m->slots);
    arena_free(&m->mem);
    memset(m, 0, sizeof *m);
}

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int same(const strmap *m, size_t id, const char *key, size_t len)
{
    const char *k = m->keys[id];
    return strlen(k) == len && memcmp(k, key, len) == 0;
}

size_t strmap_find(const strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return (size_t)-1;
    for (size_t i = fnv(key, len) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        size_t s = m->slots[i];
        if (!s)
            return (size_t)-1;
        if (same(m, s - 1, key, len))
            return s - 1;
    }
}

/* Doubles the table (load stays below 1/2). */
static int grow(strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    size_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return OKV_ENOMEM;
    for (size_t id = 0; id < m->n; id++) {
        size_t i = fnv(m->keys[id], strlen(m->keys[id])) & (cap - 1);
        while (slots[i])
            i = (i + 1) & (cap - 1);
        slots[i] = id + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int strmap_intern(strmap *m, const char *key, size_t len, size_t *id)
{
    size_t found = strmap_find(m, key, len);
    if (found != (size_t)-1) {
        *id = found;
        return 0;
    }
    if ((m->n + 1) * 2 > m->cap && grow(m))
        return OKV_ENOMEM;
    if (m->n == m->keys_cap) {
        size_t kc = m->keys_cap ? m->keys_cap * 2 : 64;
        const char **keys = realloc(m->keys, kc * sizeof *keys);
        if (!keys)
            return OKV_ENOMEM;
        m->keys = keys;
        m->keys_cap = kc;
    }
    char *copy = arena_alloc(&m->mem, len + 1);
    if (!copy)
        return OKV_ENOMEM;
    memcpy(copy, key, len);
    copy[len] = '\0';
    size_t i = fnv(key, len) & (m->cap - 1);
    while (m->slots[i])
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = m->n + 1;
    m->keys[m->n] = copy;
    *id = m->n++;
    return 0;
}

const char *strmap_key(const strmap *m, size_t id) { return m->keys[id]; }

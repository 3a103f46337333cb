/*
 * strmap.h — a hash map from byte strings to dense ids 0, 1, 2, ...
 *
 * The orders checker names things by strings the server chose (order,
 * payment and refund ids) or the runner chose (customers, skus, accounts,
 * idempotency keys); it turns each into a small integer once and then works
 * with arrays. Keys are copied into the map's arena. Open addressing with
 * linear probing, FNV-1a; no deletion.
 */
#ifndef OKV_JEPSEN_STRMAP_H
#define OKV_JEPSEN_STRMAP_H

#include <stddef.h>

#include "arena.h"

typedef struct strmap {
    const char **keys;     /* by id: the key (NUL-terminated copy) */
    size_t *slots;         /* hash table of id + 1; 0 = empty */
    size_t cap;            /* slots: a power of two, or 0 */
    size_t n;              /* ids handed out */
    size_t keys_cap;
    arena mem;
} strmap;

void strmap_init(strmap *m);
void strmap_free(strmap *m);

/* The id of key (len bytes), adding it if absent. 0 and *id, or OKV_ENOMEM. */
int strmap_intern(strmap *m, const char *key, size_t len, size_t *id);

/* The id of key, or (size_t)-1 if absent. */
size_t strmap_find(const strmap *m, const char *key, size_t len);

/* The key of id (borrowed from the map). */
const char *strmap_key(const strmap *m, size_t id);

#endif

/*
 * imap.h — a hash map from int64 keys to uint64 values.
 *
 * Used wherever a history names things by integers that may be sparse or
 * hostile (process ids, register keys, set elements, sequential indices): an
 * array indexed by the integer could be made arbitrarily large by one op.
 * Open addressing with linear probing; no deletion (callers store a
 * sentinel value instead).
 */
#ifndef OKV_JEPSEN_IMAP_H
#define OKV_JEPSEN_IMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct imap {
    int64_t *keys;
    uint64_t *vals;
    unsigned char *used;
    size_t cap; /* power of two, or 0 */
    size_t n;
} imap;

/* An empty map; no memory is taken until the first put. */
void imap_init(imap *m);

/* Releases the map's memory; it may be initialised again. */
void imap_free(imap *m);

/* Inserts key or replaces its value. 0, or OKV_ENOMEM. */
int imap_put(imap *m, int64_t key, uint64_t val);

/* The value slot of key (writable until the next put), or NULL if absent. */
uint64_t *imap_get(const imap *m, int64_t key);

/* A well-mixed 64-bit hash (splitmix64's finaliser); also used for Zobrist
 * keys by the linearizability search. */
uint64_t imap_mix(uint64_t x);

#endif

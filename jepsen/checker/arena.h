/*
 * arena.h — a bump allocator for many small objects that die together.
 *
 * The JSON tree of one history op and every op value of a history live in
 * arenas: allocation is a pointer bump, freeing is one call. Pointers stay
 * valid until arena_reset or arena_free (blocks are never moved).
 */
#ifndef OKV_JEPSEN_ARENA_H
#define OKV_JEPSEN_ARENA_H

#include <stddef.h>

typedef struct arena_block arena_block;

typedef struct arena {
    arena_block *head;  /* newest block first */
    size_t block_size;  /* usable bytes of a standard block */
} arena;

/* Prepares an empty arena; no memory is taken until the first alloc. */
void arena_init(arena *a, size_t block_size);

/* size bytes aligned for any type, or NULL when memory is exhausted.
 * A request larger than the block size gets a block of its own. */
void *arena_alloc(arena *a, size_t size);

/* Forgets every allocation but keeps the oldest block for reuse. */
void arena_reset(arena *a);

/* Releases all memory; the arena may be initialised again. */
void arena_free(arena *a);

#endif

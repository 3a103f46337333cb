#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

struct arena_block {
    arena_block *next;
    size_t cap;
    size_t used;
    max_align_t data[];
};

void arena_init(arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
}

static size_t round_up(size_t n)
{
    size_t al = alignof(max_align_t);
    return (n + al - 1) / al * al;
}

void *arena_alloc(arena *a, size_t size)
{
    size = round_up(size ? size : 1);
    if (size == 0) /* wrapped */
        return NULL;
    arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > a->block_size ? size : a->block_size;
        if (cap > SIZE_MAX - sizeof *b)
            return NULL;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

void arena_reset(arena *a)
{
    arena_block *b = a->head;
    if (!b)
        return;
    while (b->next) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
}

void arena_free(arena *a)
{
    arena_block *b = a->head;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

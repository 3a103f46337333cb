/*
 * engine_int.h — private structures of engine.c. Only engine.c and the
 * engine's own unit tests include this; everything else sees the opaque
 * handles of engine.h.
 */
#ifndef OKV_STORAGE_ENGINE_INT_H
#define OKV_STORAGE_ENGINE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <rocksdb/c.h>

#include "engine.h"
#include "engine_batch_int.h"

/* Always on, also in release builds: a broken storage invariant must stop the
 * process before it writes something wrong, and the line tells us where. */
#define engine_assert(cond)                                                     \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: storage invariant failed: %s\n", __FILE__,  \
                    __LINE__, #cond);                                           \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* RocksDB's names for our column families. Index 0 is RocksDB's mandatory
 * "default" family, which orderkv never writes; enum engine_cf c lives at
 * index c + 1. */
#define ENGINE_NUM_ROCKS_CFS (ENGINE_CF_COUNT + 1)

struct engine {
    char *dir;                                   /* strdup'd */
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[ENGINE_NUM_ROCKS_CFS];
    rocksdb_options_t *db_opts;                  /* also "default"'s CF options */
    rocksdb_options_t *cf_opts[ENGINE_NUM_ROCKS_CFS]; /* [0] aliases db_opts */
    rocksdb_cache_t *cache;                      /* shared by every CF */
    rocksdb_readoptions_t *ropts;                /* point reads; thread-safe */
    rocksdb_writeoptions_t *wopts_sync;
    rocksdb_writeoptions_t *wopts_nosync;
};

struct engine_iter {
    const engine *e;              /* for messages; must outlive the iterator */
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ropts; /* holds Slices pointing at lower/upper */
    char *lower;                  /* NULL: no lower bound */
    size_t lower_len;
    char *upper;                  /* NULL: no upper bound */
    size_t upper_len;
};

#endif

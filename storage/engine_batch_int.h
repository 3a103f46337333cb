/*
 * engine_batch_int.h — the write batch's record buffer, shared by both
 * implementations of engine.h: RocksDB (engine.c) and the node simulator's
 * memory disk (engine_mem.c). Nothing outside storage/ includes this.
 *
 * A batch is created without an engine (engine_batch_new takes none), but
 * RocksDB's rocksdb_writebatch_put_cf needs a column family handle, which
 * exists only per open DB. So a batch records its operations in its own
 * buffer and engine_write translates them. Record layout (native byte
 * order; never stored on disk):
 *   u8 op (BATCH_OP_PUT / _DELETE / _DELETE_RANGE), u8 cf, u32 key_len,
 *   u32 val_len, key bytes, value bytes (none for a delete; for a range
 *   delete the key is the begin and the value the end).
 */
#ifndef OKV_STORAGE_ENGINE_BATCH_INT_H
#define OKV_STORAGE_ENGINE_BATCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

enum { BATCH_OP_PUT = 1, BATCH_OP_DELETE = 2, BATCH_OP_DELETE_RANGE = 3 };
#define BATCH_REC_HEADER 10u

struct engine_batch {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t count;   /* operations recorded */
    int error;      /* sticky: OKV_ENOMEM or OKV_EINVAL from a put/delete that
                       could not be recorded; engine_write then writes nothing */
};

typedef struct engine_batch_rec {
    int op;
    enum engine_cf cf;
    const char *key;
    uint32_t key_len;
    const char *val;   /* the end key of a range delete */
    uint32_t val_len;
} engine_batch_rec;

/* Decodes the record at *off of a buffer of len bytes (the layout above)
 * into *r and advances *off: 1, or 0 at the end. */
int engine_batch_rec_next(const uint8_t *buf, size_t len, size_t *off, engine_batch_rec *r);

/* 1 if cf names one of our column families. */
int engine_cf_ok(enum engine_cf cf);

/* RocksDB's bytewise comparator: memcmp, then the shorter string first. */
int engine_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

#endif

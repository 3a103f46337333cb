/*
 * engine.h — orderkv's storage engine: one RocksDB per node.
 *
 * A node keeps everything in one RocksDB with three column families
 * (DESIGN.md "Node internals"):
 *   ENGINE_CF_RAFT  Raft log entries and hard state per group
 *   ENGINE_CF_DATA  rows; keys encoded by keycodec.h
 *   ENGINE_CF_META  format record, per-partition sequences, applied index,
 *                   dedup table, later transaction records and locks
 *
 * Opening checks the data dir: a fresh (absent or empty) dir is created with the
 * format record; an existing dir must hold exactly our column families and the
 * format record of ENGINE_FORMAT_VERSION, else the open fails with OKV_EFORMAT
 * (another version, or not an orderkv dir) or OKV_ECORRUPT (RocksDB reports
 * corruption), with a message naming the dir and what was found.
 *
 * Errors: every function returns OKV_OK or a negative OKV_E* code and, if err
 * is not NULL, fills it with a message. RocksDB statuses map as: NotFound ->
 * OKV_ENOTFOUND, Corruption -> OKV_ECORRUPT, IOError/NoSpace -> OKV_EIO,
 * InvalidArgument -> OKV_EINVAL, anything else -> OKV_EINTERNAL. A data dir
 * held by another process (RocksDB's LOCK) is OKV_EIO "... is in use ...".
 *
 * Threads: an engine may be used from many threads at once (RocksDB is), but a
 * batch or an iterator belongs to one thread at a time.
 */
#ifndef OKV_STORAGE_ENGINE_H
#define OKV_STORAGE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define ENGINE_FORMAT_VERSION 1u

/* Meta-CF key of the format record. Its value: "orderkv-format:<version>". */
#define ENGINE_FORMAT_KEY "\x00" "format"

enum engine_cf {
    ENGINE_CF_RAFT = 0,
    ENGINE_CF_DATA = 1,
    ENGINE_CF_META = 2,
    ENGINE_CF_COUNT = 3
};

typedef struct engine engine;
typedef struct engine_batch engine_batch;
typedef struct engine_iter engine_iter;

typedef struct engine_options {
    int create_if_missing;     /* 1: a missing/empty dir is initialised */
    size_t block_cache_bytes;  /* 0: 64 MiB */
} engine_options;

#define ENGINE_OPTIONS_INIT { 1, 0 }

/* Opens (or creates) the data dir `dir`. opts may be NULL for defaults. */
int engine_open(engine **out, const char *dir, const engine_options *opts, okv_error *err);

/* Flushes nothing extra (every acknowledged write was synced) and closes
 * RocksDB cleanly. Accepts NULL. No batch write or iterator may be live. */
void engine_close(engine *e);

/* An integer property of column family cf, read for metrics (e.g.
 * "rocksdb.estimate-num-keys", "rocksdb.cur-size-all-mem-tables"); any
 * thread. OKV_ENOTFOUND if the engine has no such property (the in-memory
 * engine has none). */
int engine_property_uint(engine *e, enum engine_cf cf, const char *name, uint64_t *out);

/* Point read. On success *val_out is malloc'd (caller frees with free()),
 * *len_out its length. OKV_ENOTFOUND if absent. */
int engine_get(engine *e, enum engine_cf cf, const void *key, size_t key_len,
               char **val_out, size_t *len_out, okv_error *err);

/* Single writes; sync = 1 waits for the WAL to reach disk (fdatasync). */
int engine_put(engine *e, enum engine_cf cf, const void *key, size_t key_len,
               const void *val, size_t val_len, int sync, okv_error *err);
int engine_delete(engine *e, enum engine_cf cf, const void *key, size_t key_len,
                  int sync, okv_error *err);

/* ---- atomic write batches ---------------------------------------------- */

engine_batch *engine_batch_new(void);   /* NULL only on out-of-memory */
void engine_batch_free(engine_batch *b); /* accepts NULL */
void engine_batch_put(engine_batch *b, enum engine_cf cf, const void *key, size_t key_len,
                      const void *val, size_t val_len);
void engine_batch_delete(engine_batch *b, enum engine_cf cf, const void *key, size_t key_len);
/* Deletes every key k of cf with begin <= k < end (a RocksDB range
 * tombstone: one record however many keys it covers). */
void engine_batch_delete_range(engine_batch *b, enum engine_cf cf, const void *begin,
                               size_t begin_len, const void *end, size_t end_len);
void engine_batch_clear(engine_batch *b);
size_t engine_batch_count(const engine_batch *b);   /* operations queued */

/* engine_batch_put/_delete cannot fail on the spot: an error while queueing
 * (out of memory, a bad column family) is remembered and returned by
 * engine_write, which then writes nothing. engine_batch_clear forgets it. */

/* Applies every operation of b atomically (all or none, also across a crash).
 * sync = 1: returns only after the batch is durable. b is left unchanged. */
int engine_write(engine *e, engine_batch *b, int sync, okv_error *err);

/* ---- forward iterators -------------------------------------------------- */

/* An iterator over keys k of cf with lower <= k < upper. lower NULL/0 = from
 * the first key; upper NULL = no upper bound. The bounds are copied. The
 * iterator starts positioned at the first key >= lower. */
int engine_iter_new(engine_iter **out, engine *e, enum engine_cf cf,
                    const void *lower, size_t lower_len,
                    const void *upper, size_t upper_len, okv_error *err);

/* An iterator over exactly the keys that start with prefix (prefix_len > 0). */
int engine_iter_new_prefix(engine_iter **out, engine *e, enum engine_cf cf,
                           const void *prefix, size_t prefix_len, okv_error *err);

void engine_iter_free(engine_iter *it);    /* accepts NULL */
int engine_iter_valid(const engine_iter *it);
void engine_iter_next(engine_iter *it);
/* Positions at the first key >= key, clamped to the iterator's bounds. */
void engine_iter_seek(engine_iter *it, const void *key, size_t key_len);
/* Borrowed; valid until the iterator moves or is freed. */
const char *engine_iter_key(const engine_iter *it, size_t *len_out);
const char *engine_iter_value(const engine_iter *it, size_t *len_out);
/* OKV_OK, or the error that ended the iteration early. */
int engine_iter_status(const engine_iter *it, okv_error *err);

/* Sets *out to the shortest byte string greater than every string that starts
 * with prefix: the prefix with its last non-0xff byte incremented and what
 * follows dropped. Returns its length, or 0 if none exists (all 0xff).
 * out must have room for prefix_len bytes. */
size_t engine_prefix_successor(const void *prefix, size_t prefix_len, uint8_t *out);

/* The data dir this engine was opened on (borrowed). */
const char *engine_dir(const engine *e);

#endif

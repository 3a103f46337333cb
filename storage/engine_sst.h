/*
 * engine_sst.h — RocksDB snapshots and external SST files: what a Raft
 * snapshot needs to move a partition between nodes without holding it in
 * memory (docs/storage-format.md "Partition snapshots").
 *
 *   sender:   engine_snapshot_new pins the DB's state at one instant; any
 *             thread then iterates it (engine_iter_new_prefix_at) while
 *             writes go on. Cost: a sequence number; RocksDB keeps the
 *             versions the snapshot still sees until it is freed.
 *   receiver: engine_sst_* writes sorted keys of one column family into an
 *             SST file (memory: one data block plus the file's index and
 *             filter); engine_ingest adds the file to the DB in one atomic
 *             step, copying it (the file stays where it is).
 *
 * A range deletion in an SST file does NOT delete the file's own keys
 * (RocksDB's SstFileWriter contract), so one file holding "delete the
 * partition's range" plus the partition's new keys replaces the partition
 * atomically for every reader of that column family.
 *
 * Errors as engine.h: OKV_OK or a negative OKV_E* code with a message.
 * Threads: a snapshot may be shared by threads; an iterator or a writer
 * belongs to one thread at a time.
 */
#ifndef OKV_STORAGE_ENGINE_SST_H
#define OKV_STORAGE_ENGINE_SST_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "errors.h"

typedef struct engine_snapshot engine_snapshot;
typedef struct engine_sst engine_sst;

/* Pins what e holds now. Free it (engine_snapshot_free) before engine_close. */
int engine_snapshot_new(engine_snapshot **out, engine *e, okv_error *err);

/* Accepts NULL. No iterator over s may be live. */
void engine_snapshot_free(engine_snapshot *s);

/* As engine_iter_new_prefix, but reading the state s pinned, and without
 * filling the block cache (a bulk scan). The iterator must be freed before
 * s. */
int engine_iter_new_prefix_at(engine_iter **out, engine_snapshot *s, enum engine_cf cf,
                              const void *prefix, size_t prefix_len, okv_error *err);

/* Creates the SST file `path` (truncating one that exists) for column
 * family cf of e, with that family's table options. */
int engine_sst_new(engine_sst **out, engine *e, enum engine_cf cf, const char *path,
                   okv_error *err);

/* Adds a range deletion [begin, end). It does not delete the file's own
 * keys; it may come before, between or after them. */
int engine_sst_delete_range(engine_sst *w, const void *begin, size_t begin_len, const void *end,
                            size_t end_len, okv_error *err);

/* Adds a key; keys must come in strictly increasing order (OKV_EINVAL
 * otherwise, from RocksDB). */
int engine_sst_put(engine_sst *w, const void *key, size_t key_len, const void *val,
                   size_t val_len, okv_error *err);

/* Completes the file and syncs it to disk. *size_out (may be NULL) gets its
 * size. No more puts afterwards. */
int engine_sst_finish(engine_sst *w, uint64_t *size_out, okv_error *err);

/* Accepts NULL. An unfinished file is left as it is (the caller removes it). */
void engine_sst_free(engine_sst *w);

/* Ingests the finished SST file at path into cf, atomically: readers see
 * none of it or all of it. The file is copied, never moved, so it survives
 * for a retry. Durable when it returns (RocksDB syncs the file and its
 * MANIFEST). Overlapping memtable data is flushed first. */
int engine_ingest(engine *e, enum engine_cf cf, const char *path, okv_error *err);

#endif

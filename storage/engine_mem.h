/*
 * engine_mem.h — the node simulator's disk: a second implementation of
 * engine.h and engine_sst.h (engine_mem.c, library okv_storage_mem) that
 * keeps every column family in memory and models what a power cut does to
 * RocksDB. Never linked into orderkvd; a program links either okv_storage
 * (RocksDB) or okv_storage_mem, never both.
 *
 * The model (what RocksDB promises with its WAL, sync = fdatasync):
 *   M1. A batch is atomic: after any crash it is there whole or not at all.
 *   M2. Batches survive a crash in the order they were written: a crash
 *       keeps every synced batch and some prefix of the unsynced ones after
 *       them (the page cache may have written part of the WAL; the torn
 *       last record is dropped at recovery).
 *   M3. A synced write makes itself and every earlier write durable.
 *   M4. An SST ingest is durable when it returns, and so is everything
 *       written before it (RocksDB flushes the memtable it overlaps).
 * A "disk" outlives the engines opened on it, as a data dir outlives the
 * process: the simulator crashes a node by closing its engine without
 * ceremony and calling engine_mem_disk_crash, then opens the same dir again.
 *
 * SST files for snapshot transfers are real files under the disk's dir
 * (created by the simulator): they are rare and small.
 *
 * Single-threaded: the simulator runs every node on one thread.
 */
#ifndef OKV_STORAGE_ENGINE_MEM_H
#define OKV_STORAGE_ENGINE_MEM_H

#include <stddef.h>

#include "errors.h"

typedef struct engine_mem_disk engine_mem_disk;

/* A new, empty disk that engine_open(dir) will open. dir must exist (the
 * snapshot root lives under it); it is copied. */
int engine_mem_disk_new(engine_mem_disk **out, const char *dir, okv_error *err);

/* Forgets the disk; no engine may be open on it. Accepts NULL. */
void engine_mem_disk_free(engine_mem_disk *d);

/* Unsynced batches written since the last synced write (M2). */
size_t engine_mem_disk_unsynced(const engine_mem_disk *d);

/* A power cut: the disk keeps its durable state and the first `keep`
 * unsynced batches (keep >= engine_mem_disk_unsynced keeps them all: a
 * process crash with the page cache intact). No engine may be open. */
void engine_mem_disk_crash(engine_mem_disk *d, size_t keep);

/* The next n synced writes fail with OKV_EIO and write nothing (an fsync
 * error: RocksDB then refuses further writes; the node must stop). */
void engine_mem_disk_fail_syncs(engine_mem_disk *d, int n);

/* Synced writes so far (batches and ingests). */
unsigned long engine_mem_disk_syncs(const engine_mem_disk *d);

#endif

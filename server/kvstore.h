/*
 * kvstore.h — the node's tables on top of the storage engine.
 *
 * Owns the engine, the catalog (read from or written to the data dir) and the
 * per-partition version sequences. Reads (get, scan) may run on any thread.
 * The write path — kvstore_stage_* then kvstore_commit — belongs to exactly
 * one thread, the committer (committer.h): versions are handed out in staging
 * order, so only one thread may stage.
 *
 * Versions: every write (put or delete) to a partition takes the next number
 * of that partition's sequence; the sequence is persisted in the same batch
 * as the write, so a version is never reused after a crash.
 */
#ifndef OKV_SERVER_KVSTORE_H
#define OKV_SERVER_KVSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "engine.h"
#include "errors.h"
#include "request.h"

typedef struct kvstore kvstore;

typedef struct kv_item {
    uint8_t *key;   size_t key_len;      /* owned by the kv_item array */
    uint8_t *value; size_t value_len;
    uint64_t version;
} kv_item;

/* Opens the data dir; on first boot records a catalog with `partitions`
 * partitions per table. On later boots the stored catalog wins; if
 * `partitions` differs, *partitions_ignored is set so the caller can warn. */
int kvstore_open(kvstore **out, const char *dir, uint32_t partitions,
                 int *partitions_ignored, okv_error *err);
void kvstore_close(kvstore *kv);    /* accepts NULL */

const catalog *kvstore_catalog(const kvstore *kv);
engine *kvstore_engine(kvstore *kv);

/* Reads a key: *value_out malloc'd (caller frees), OKV_ENOTFOUND if absent. */
int kvstore_get(kvstore *kv, const catalog_table *t, uint32_t partition, const uint8_t *key,
                size_t key_len, uint8_t **value_out, size_t *value_len, uint64_t *version,
                okv_error *err);

/* Runs a decoded scan request: up to r->limit items in key order. *more is
 * set when keys beyond the last one returned may exist. Free the items with
 * kvstore_items_free. */
int kvstore_scan(kvstore *kv, const request *r, kv_item **items_out, size_t *count_out,
                 int *more, okv_error *err);
void kvstore_items_free(kv_item *items, size_t count);

/* ---- write path (committer thread only) ------------------------------ */

typedef struct kv_write {
    int is_delete;
    const catalog_table *table;
    uint32_t partition;
    const uint8_t *key; size_t key_len;
    const uint8_t *value; size_t value_len;
    int check_version; uint64_t expected_version;
    /* results */
    uint64_t version;   /* the version this write took */
    int existed;        /* the key existed before the write */
} kv_write;

/* Evaluates w against the current stored state (not against writes staged
 * but not yet committed — the caller keeps those apart, see committer.c),
 * assigns its version and adds it to b. OKV_ECONFLICT (nothing staged) if a
 * version condition fails. */
int kvstore_stage(kvstore *kv, engine_batch *b, kv_write *w, okv_error *err);

/* Writes b durably (synced). On failure the in-memory sequences may be ahead
 * of the disk; the caller must stop writing (see committer.c). */
int kvstore_commit(kvstore *kv, engine_batch *b, okv_error *err);

#endif

/*
 * kvstore.h — the node's tables on top of the storage engine: the data dir,
 * its catalog, and reads.
 *
 * Owns the engine and the catalog (read from or written to the data dir).
 * Reads (get, scan) may run on any thread. Writes do not come through here:
 * the state machine (fsm.h) applies every write, from the Raft log in
 * cluster mode and from the committer (committer.h) in single-node mode, so
 * the rule for what a write does exists once. Reads decode the layout fsm
 * writes (keycodec.h: data key, then a version header before the value).
 *
 * Versions: a key's version is the index of the write that produced it in
 * its partition's group (fsm.h invariant 3): the Raft index in cluster mode,
 * the group's applied index + 1 in single-node mode.
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

/* Single-node data dirs written before writes went through the state
 * machine kept each partition's last version in a meta record of its own
 * (the `S` key, docs/storage-format.md). This moves each such record into
 * the partition group's applied index (`A`), which is the sequence now:
 * A becomes max(A, S) and S is deleted, all in one synced batch, so a crash
 * leaves either the old records or the new. Idempotent; a dir without `S`
 * keys is not written. Single-node mode only (committer_new calls it): a
 * cluster replica's applied index must never run ahead of its Raft log. */
int kvstore_migrate_sequences(kvstore *kv, okv_error *err);

#endif

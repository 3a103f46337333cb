/*
 * committer.h — group commit: the one thread that makes writes durable.
 *
 * Request threads (gRPC completion-queue threads) never write to RocksDB; they
 * hand each write to committer_submit and return at once. The committer thread
 * takes everything queued, stages it into one batch, writes that batch with a
 * single sync, and only then hands the batch to the completer thread, which
 * calls each write's `done` callback while the committer already runs the
 * next sync. While one sync is in progress, new writes queue up and share the
 * next one, so with N concurrent writers a sync carries up to N writes (see
 * docs/performance.md).
 *
 * Invariants:
 *  1. `done` runs only after the write is durable (synced) or has failed.
 *  2. Writes are staged in submission order; two writes to one key are never
 *     in the same batch (the second sees the first's effect on disk).
 *  3. After a failed sync the committer is poisoned: the disk state of that
 *     batch is unknown (fsync errors are not retryable), so every later write
 *     fails with OKV_EUNAVAILABLE until the node restarts and recovers from
 *     its WAL. Reads keep working.
 */
#ifndef OKV_SERVER_COMMITTER_H
#define OKV_SERVER_COMMITTER_H

#include <stdint.h>

#include "kvstore.h"

typedef struct committer committer;

typedef struct commit_op commit_op;
struct commit_op {
    kv_write w;
    int code;             /* result: OKV_OK or an error */
    okv_error err;
    /* Called on the completer thread (or, for a write refused before it was
     * staged, the committer or submitting thread) once the result is final.
     * It may free the op. It must not block for long. */
    void (*done)(commit_op *op);
    commit_op *next;      /* private to the committer */
};

typedef struct committer_stats {
    uint64_t writes;      /* writes made durable */
    uint64_t syncs;       /* synced batches written */
} committer_stats;

/* Starts the committer thread over kv (borrowed; must outlive the committer). */
int committer_new(committer **out, kvstore *kv, okv_error *err);

/* Queues op; op->done will be called exactly once. Thread-safe. After
 * committer_free has begun, ops fail with OKV_EUNAVAILABLE. */
void committer_submit(committer *c, commit_op *op);

void committer_get_stats(committer *c, committer_stats *out);

/* Finishes every queued write, stops the thread and frees. Accepts NULL. */
void committer_free(committer *c);

#endif
